//! Signed components (`--require-signed-components`): a component is put in force only
//! with a detached signature by an admin of this orderer's org. The signature is an
//! ECDSA signature over the component's SHA-256, by an identity that satisfies the
//! channel config's `/Channel/Orderer/<org>/Admins` policy, where `<org>` is the
//! orderer org whose MSP is this orderer's LocalMSPID. The `.sig` file is Fabric's
//! `common.MetadataSignature` (a `SignatureHeader` with the signer as creator, and the
//! signature), as block signatures are written; it travels hex-encoded in [`HEADER`].

use crate::identity::Signer;
use fabric_protos::common::{MetadataSignature, SignatureHeader};
use fabric_protos::msp::MspConfig;
use ordering_core::config::ChannelConfig;
use ordering_core::msp::msp_config_name;
use ordering_core::policies::SignedData;
use ordering_core::{Crypto, NativeCrypto};
use prost::Message;

/// The HTTP header of a component upload that carries its signature file (hex).
pub const HEADER: &str = "component-signature";

/// The `.sig` file of `wasm`, signed by `signer`.
pub fn sign(signer: &Signer, wasm: &[u8]) -> Vec<u8> {
    let header = SignatureHeader {
        creator: signer.serialized_identity(),
        nonce: Default::default(),
    };
    MetadataSignature {
        signature_header: header.encode_to_vec().into(),
        signature: signer.sign(&NativeCrypto.sha256(wasm)).into(),
        identifier_header: Default::default(),
    }
    .encode_to_vec()
}

/// Checks the signature file `sig` of `wasm` against the channel config in
/// `config_block`: Ok with the signer's MSP id and certificate subject.
pub fn verify(
    config_block: &[u8],
    msp_id: &str,
    wasm: &[u8],
    sig: &[u8],
) -> Result<String, String> {
    let sig = MetadataSignature::decode(sig)
        .map_err(|e| format!("the component signature does not decode: {e}"))?;
    let header = SignatureHeader::decode(sig.signature_header.as_ref())
        .map_err(|e| format!("the component signature's header does not decode: {e}"))?;
    let config = ChannelConfig::from_config_block(config_block, &NativeCrypto)
        .map_err(|e| format!("the channel's config block: {e}"))?;
    let org = orderer_org(&config, msp_id)
        .ok_or_else(|| format!("the channel has no orderer org whose MSP is {msp_id}"))?;
    let path = format!("/Channel/Orderer/{org}/Admins");
    let digest = NativeCrypto.sha256(wasm);
    let signed = SignedData {
        data: &digest,
        identity: &header.creator,
        signature: &sig.signature,
    };
    let now = crate::protoutil::now_unix_nanos();
    config
        .policies
        .evaluate(&path, &[signed], &config.msps, now, &NativeCrypto)
        .map_err(|e| format!("the component signature does not satisfy {path}: {e}"))?;
    Ok(signer_name(&header.creator))
}

/// The name of the Orderer group's org whose MSP is `msp_id`.
fn orderer_org(config: &ChannelConfig, msp_id: &str) -> Option<String> {
    let orderer = config
        .config
        .channel_group
        .as_ref()?
        .groups
        .get("Orderer")?;
    orderer.groups.iter().find_map(|(name, org)| {
        let msp = MspConfig::decode(org.values.get("MSP")?.value.as_ref()).ok()?;
        (msp_config_name(&msp).ok()? == msp_id).then(|| name.clone())
    })
}

/// `MSPID CN=...` of a serialized identity, for the log.
fn signer_name(creator: &[u8]) -> String {
    let Ok(identity) = fabric_protos::msp::SerializedIdentity::decode(creator) else {
        return "an identity that does not decode".into();
    };
    let subject = der::pem::decode_vec(&identity.id_bytes)
        .ok()
        .and_then(|(_, der)| crate::audit::subject(&der).ok())
        .unwrap_or_default();
    format!("{} {subject}", identity.mspid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn genesis() -> Vec<u8> {
        let path = "../testdata/fabric/blocks/mychannel-etcdraft-genesis.block";
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
    }

    #[test]
    fn only_an_admin_of_this_orderers_org_signs_components() {
        let (block, wasm) = (genesis(), b"\0asm component bytes".to_vec());
        let admin = testkit::orderer_admin();
        let sig = sign(&admin, &wasm);
        let who = verify(&block, "OrdererMSP", &wasm, &sig).unwrap();
        assert!(who.starts_with("OrdererMSP CN=Admin@example.com"), "{who}");

        let other = verify(&block, "OrdererMSP", b"another component", &sig).unwrap_err();
        assert!(
            other.contains("does not satisfy /Channel/Orderer/OrdererOrg/Admins"),
            "{other}"
        );
        let member = sign(&testkit::orderer0(), &wasm);
        let e = verify(&block, "OrdererMSP", &wasm, &member).unwrap_err();
        assert!(
            e.contains("does not satisfy"),
            "a member, not an admin: {e}"
        );
        let org1_admin = sign(&testkit::org1_admin(), &wasm);
        let e = verify(&block, "OrdererMSP", &wasm, &org1_admin).unwrap_err();
        assert!(e.contains("does not satisfy"), "{e}");
        let e = verify(&block, "Org1MSP", &wasm, &sig).unwrap_err();
        assert_eq!(e, "the channel has no orderer org whose MSP is Org1MSP");
        let e = verify(&block, "OrdererMSP", &wasm, b"\xff\xff").unwrap_err();
        assert!(
            e.starts_with("the component signature does not decode"),
            "{e}"
        );
    }
}
