//! Fixtures from the real Fabric v2.5.12 tools (`testdata/fabric`) and helpers to
//! sign fresh envelopes and mint certificates with the fixture keys (test keys), for
//! the core's tests and policy crates' (feature `testkit`).

use std::path::PathBuf;

use base64ct::{Base64, Encoding};
use der::{Decode, Encode};
use fabric_protos::common::{Block, ChannelHeader, Envelope, Header, Payload, SignatureHeader};
use fabric_protos::msp::SerializedIdentity;
use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};
use p256::pkcs8::DecodePrivateKey;
use pem_rfc7468::LineEnding;
use prost::Message;

use super::ChannelConfig;
use crate::crypto::NativeCrypto;

/// [`NativeCrypto`] counting signature verifications, to see what is cached.
#[derive(Debug, Default)]
pub struct CountingCrypto {
    verifies: std::cell::Cell<usize>,
}

impl CountingCrypto {
    pub fn verifies(&self) -> usize {
        self.verifies.get()
    }
}

impl crate::crypto::Crypto for CountingCrypto {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        NativeCrypto.sha256(data)
    }

    fn verify_p256(&self, public_key: &[u8], message: &[u8], signature_der: &[u8]) -> bool {
        self.verifies.set(self.verifies.get() + 1);
        NativeCrypto.verify_p256(public_key, message, signature_der)
    }
}

pub fn fabric_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("FABRIC_FIXTURES")).join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = fabric_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn etcdraft_config() -> ChannelConfig {
    ChannelConfig::from_config_block(
        &read("blocks/mychannel-etcdraft-genesis.block"),
        &NativeCrypto,
    )
    .expect("genesis config")
}

/// The envelopes of a block file.
pub fn block_envelopes(rel: &str) -> Vec<Vec<u8>> {
    let block = Block::decode(read(rel).as_slice()).unwrap();
    block
        .data
        .unwrap()
        .data
        .iter()
        .map(|d| d.to_vec())
        .collect()
}

pub fn channel_header(envelope: &[u8]) -> ChannelHeader {
    let env = Envelope::decode(envelope).unwrap();
    let payload = Payload::decode(env.payload.as_ref()).unwrap();
    ChannelHeader::decode(payload.header.unwrap().channel_header.as_ref()).unwrap()
}

/// The channel header timestamp, in Unix nanoseconds.
pub fn envelope_time_nanos(envelope: &[u8]) -> u64 {
    let ts = channel_header(envelope).timestamp.unwrap();
    ts.seconds as u64 * 1_000_000_000 + ts.nanos as u64
}

/// The creator (serialized identity) of an envelope.
pub fn creator(envelope: &[u8]) -> Vec<u8> {
    let env = Envelope::decode(envelope).unwrap();
    let payload = Payload::decode(env.payload.as_ref()).unwrap();
    SignatureHeader::decode(payload.header.unwrap().signature_header.as_ref())
        .unwrap()
        .creator
        .to_vec()
}

/// A fixture identity: MSP id, certificate PEM and private key.
pub struct Signer {
    pub msp_id: String,
    pub cert_pem: Vec<u8>,
    pub key: SigningKey,
}

fn key_from(rel: &str) -> SigningKey {
    let pem = String::from_utf8(read(rel)).unwrap();
    SigningKey::from_pkcs8_pem(&pem).unwrap()
}

fn signer(msp_id: &str, msp_dir: &str, cert_file: &str) -> Signer {
    Signer {
        msp_id: msp_id.into(),
        cert_pem: read(&format!("{msp_dir}/signcerts/{cert_file}")),
        key: key_from(&format!("{msp_dir}/keystore/priv_sk")),
    }
}

const ORG1: &str = "crypto/peerOrganizations/org1.example.com";
const ORDERER_ORG: &str = "crypto/ordererOrganizations/example.com";

pub fn user1() -> Signer {
    signer(
        "Org1MSP",
        &format!("{ORG1}/users/User1@org1.example.com/msp"),
        "User1@org1.example.com-cert.pem",
    )
}

pub fn admin1() -> Signer {
    signer(
        "Org1MSP",
        &format!("{ORG1}/users/Admin@org1.example.com/msp"),
        "Admin@org1.example.com-cert.pem",
    )
}

pub fn peer0() -> Signer {
    signer(
        "Org1MSP",
        &format!("{ORG1}/peers/peer0.org1.example.com/msp"),
        "peer0.org1.example.com-cert.pem",
    )
}

pub fn orderer_admin() -> Signer {
    signer(
        "OrdererMSP",
        &format!("{ORDERER_ORG}/users/Admin@example.com/msp"),
        "Admin@example.com-cert.pem",
    )
}

pub fn orderer0() -> Signer {
    signer(
        "OrdererMSP",
        &format!("{ORDERER_ORG}/orderers/orderer0.example.com/msp"),
        "orderer0.example.com-cert.pem",
    )
}

pub fn org1_ca_key() -> SigningKey {
    key_from(&format!("{ORG1}/ca/priv_sk"))
}

pub fn org1_ca_pem() -> Vec<u8> {
    read(&format!("{ORG1}/ca/ca.org1.example.com-cert.pem"))
}

/// DER ECDSA signature, low-S.
pub fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(message);
    let sig = sig.normalize_s().unwrap_or(sig);
    sig.to_der().as_bytes().to_vec()
}

pub fn serialized(msp_id: &str, cert_pem: &[u8]) -> Vec<u8> {
    SerializedIdentity {
        mspid: msp_id.into(),
        id_bytes: cert_pem.to_vec().into(),
    }
    .encode_to_vec()
}

impl Signer {
    pub fn creator(&self) -> Vec<u8> {
        serialized(&self.msp_id, &self.cert_pem)
    }

    /// A signed envelope of `header_type` for `channel_id` at `now_nanos`.
    pub fn envelope(
        &self,
        channel_id: &str,
        header_type: i32,
        now_nanos: u64,
        data: &[u8],
    ) -> Vec<u8> {
        let payload = payload(self.creator(), channel_id, header_type, now_nanos, data);
        let signature = sign(&self.key, &payload);
        Envelope {
            payload: payload.into(),
            signature: signature.into(),
        }
        .encode_to_vec()
    }
}

pub fn payload(
    creator: Vec<u8>,
    channel_id: &str,
    header_type: i32,
    now_nanos: u64,
    data: &[u8],
) -> Vec<u8> {
    let chdr = ChannelHeader {
        r#type: header_type,
        channel_id: channel_id.into(),
        timestamp: Some(prost_types_timestamp(now_nanos)),
        tx_id: format!("tx-{now_nanos}"),
        ..Default::default()
    };
    let shdr = SignatureHeader {
        creator: creator.into(),
        nonce: vec![7u8; 24].into(),
    };
    Payload {
        header: Some(Header {
            channel_header: chdr.encode_to_vec().into(),
            signature_header: shdr.encode_to_vec().into(),
        }),
        data: data.to_vec().into(),
    }
    .encode_to_vec()
}

fn prost_types_timestamp(nanos: u64) -> fabric_protos::Timestamp {
    fabric_protos::Timestamp {
        seconds: (nanos / 1_000_000_000) as i64,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}

/// A DER TLV with a definite length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let tag = der::Tag::try_from(tag).unwrap();
    let mut out = der::Header::new(tag, content.len())
        .unwrap()
        .to_der()
        .unwrap();
    out.extend_from_slice(content);
    out
}

/// Splits a DER TLV into (tag, content, rest).
pub fn split_tlv(data: &[u8]) -> (u8, &[u8], &[u8]) {
    let mut reader = der::SliceReader::new(data).unwrap();
    let header = der::Header::decode(&mut reader).unwrap();
    let start = usize::try_from(header.encoded_len().unwrap()).unwrap();
    let end = start + usize::try_from(header.length).unwrap();
    (u8::from(header.tag), &data[start..end], &data[end..])
}

/// The same ECDSA signature with S replaced by n - S (equally valid mathematically).
pub fn high_s_twin(signature_der: &[u8]) -> Vec<u8> {
    let (r, s) = Signature::from_der(signature_der).unwrap().split_scalars();
    let twin = Signature::from_scalars(r, -s).unwrap();
    twin.to_der().as_bytes().to_vec()
}

pub fn base64_encode(data: &[u8]) -> String {
    Base64::encode_string(data)
}

pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    pem_rfc7468::encode_string(label, LineEnding::LF, der)
        .unwrap()
        .into_bytes()
}

/// Re-signs `cert_pem` with `ca_key` after `edit` changed its TBS bytes; `high_s`
/// makes the certificate signature high-S.
pub fn mint_cert(
    cert_pem: &[u8],
    ca_key: &SigningKey,
    edit: impl FnOnce(&mut Vec<u8>),
    high_s: bool,
) -> Vec<u8> {
    let der = crate::msp::pem_decode(cert_pem).unwrap();
    let (_, body, _) = split_tlv(&der);
    let (_, _, after_tbs) = split_tlv(body);
    let mut tbs = body[..body.len() - after_tbs.len()].to_vec();
    let (_, _, after_alg) = split_tlv(after_tbs);
    let alg = &after_tbs[..after_tbs.len() - after_alg.len()];
    edit(&mut tbs);
    let mut sig = sign(ca_key, &tbs);
    if high_s {
        sig = high_s_twin(&sig);
    }
    let mut bits = vec![0u8];
    bits.extend(sig);
    let mut content = tbs;
    content.extend_from_slice(alg);
    content.extend(tlv(0x03, &bits));
    pem("CERTIFICATE", &tlv(0x30, &content))
}

/// The `MSPConfig` of org `org` of the Application group of the genesis block.
pub fn genesis_application_msp(org: &str) -> fabric_protos::msp::MspConfig {
    let env = &block_envelopes("blocks/mychannel-etcdraft-genesis.block")[0];
    let env = Envelope::decode(env.as_slice()).unwrap();
    let payload = Payload::decode(env.payload.as_ref()).unwrap();
    let config = fabric_protos::common::ConfigEnvelope::decode(payload.data.as_ref())
        .unwrap()
        .config
        .unwrap();
    let app = &config.channel_group.unwrap().groups["Application"];
    let value = &app.groups[org].values["MSP"];
    fabric_protos::msp::MspConfig::decode(value.value.as_ref()).unwrap()
}

/// Replaces the first occurrence of `from` by `to` (same length) in `bytes`.
pub fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let pos = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    bytes[pos..pos + to.len()].copy_from_slice(to);
}
