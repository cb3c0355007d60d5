//! The orderer's (and the CLI client's) signing identity, loaded from a Fabric MSP folder.
//!
//! A Fabric MSP folder holds `signcerts/<name>-cert.pem` (the X.509 certificate whose PEM
//! bytes become the `id_bytes` of the serialized identity) and `keystore/priv_sk` (the
//! ECDSA P-256 private key). Signatures are ECDSA P-256 over SHA-256, DER encoded and
//! normalized to low-S, as Fabric's BCCSP produces and its verifiers require.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use der::Decode;
use fabric_protos::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::msp::SerializedIdentity;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey;
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length of the nonce in a `SignatureHeader`, as Fabric's `crypto.GetRandomNonce`.
pub const NONCE_LEN: usize = 24;

/// A signing identity: MSP id, certificate and the matching P-256 private key.
#[derive(Clone)]
pub struct Signer {
    msp_id: String,
    certificate_pem: Bytes,
    serialized: Bytes,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("Signer")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads `signcerts/` (the first PEM certificate, by file name) and the private key
    /// from `keystore/` (`priv_sk`, else any `*_sk` file; PKCS#8 or SEC1 PEM) of the MSP
    /// folder `dir`, and checks that the key belongs to the certificate.
    pub fn from_msp_dir(dir: &Path, msp_id: &str) -> Result<Signer> {
        let fail = |msg: String| anyhow!("MSP folder {}: {msg}", dir.display());
        if !dir.is_dir() {
            return Err(fail("not found or not a directory".into()));
        }
        if msp_id.is_empty() {
            return Err(fail("the MSP id is empty".into()));
        }

        // signcerts/: the first file holding a PEM certificate.
        let signcerts = dir.join("signcerts");
        let mut cert = None;
        for path in sorted_files(&signcerts).map_err(|e| fail(folder_error("signcerts", &e)))? {
            let raw =
                std::fs::read(&path).map_err(|e| fail(format!("{}: {e}", rel(dir, &path))))?;
            if let Some(("CERTIFICATE", der)) = first_pem_block(&raw) {
                cert = Some((path, raw, der));
                break;
            }
        }
        let Some((cert_path, cert_pem, cert_der)) = cert else {
            return Err(fail("signcerts/ has no .pem certificate".into()));
        };
        let public_key = certificate_public_key(&cert_der)
            .map_err(|e| fail(format!("{}: {e}", rel(dir, &cert_path))))?;

        // keystore/: priv_sk first, then any *_sk; pick the key that matches.
        let keystore = dir.join("keystore");
        let mut candidates: Vec<PathBuf> = sorted_files(&keystore)
            .map_err(|e| fail(folder_error("keystore", &e)))?
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("_sk"))
            })
            .collect();
        candidates.sort_by_key(|p| p.file_name().map(|n| n != "priv_sk"));
        if candidates.is_empty() {
            return Err(fail(
                "keystore/ has no private key (priv_sk or *_sk)".into(),
            ));
        }
        let mut first_error = None;
        for path in &candidates {
            match read_private_key(path) {
                Ok(key) if *key.verifying_key() == public_key => {
                    return Ok(Signer::new(msp_id, Bytes::from(cert_pem), key));
                }
                Ok(_) => {
                    first_error.get_or_insert_with(|| {
                        format!(
                            "{} does not match the certificate {}",
                            rel(dir, path),
                            rel(dir, &cert_path)
                        )
                    });
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| format!("{}: {e}", rel(dir, path)));
                }
            }
        }
        Err(fail(first_error.unwrap_or_default()))
    }

    /// An identity from parts already in memory: the PEM certificate bytes (used as
    /// `id_bytes` exactly) and its private key. The caller vouches that they match.
    pub fn new(msp_id: &str, certificate_pem: Bytes, key: SigningKey) -> Signer {
        let serialized = SerializedIdentity {
            mspid: msp_id.to_string(),
            id_bytes: certificate_pem.clone(),
        }
        .encode_to_vec()
        .into();
        Signer {
            msp_id: msp_id.to_string(),
            certificate_pem,
            serialized,
            key,
        }
    }

    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The certificate, PEM, exactly as read from `signcerts/`.
    pub fn certificate_pem(&self) -> &Bytes {
        &self.certificate_pem
    }

    /// An encoded `msp.SerializedIdentity{mspid, id_bytes}`: the `creator` of headers.
    pub fn serialized_identity(&self) -> Bytes {
        self.serialized.clone()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// ECDSA P-256 over SHA-256 of `msg`: DER, low-S (Fabric rejects high-S).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(msg);
        let signature = signature.normalize_s().unwrap_or(signature);
        signature.to_der().as_bytes().to_vec()
    }

    /// A `SignatureHeader` with this identity as creator and a fresh random nonce.
    pub fn new_signature_header(&self) -> SignatureHeader {
        SignatureHeader {
            creator: self.serialized_identity(),
            nonce: new_nonce(),
        }
    }

    /// A signed envelope as Fabric clients make them (`protoutil.CreateSignedEnvelope`
    /// plus the tx id a peer CLI sets): channel header {type, version 0, timestamp,
    /// channel, tx_id = hex(SHA-256(nonce || creator)), epoch 0}, this identity's
    /// signature header, `data`, signed over the payload bytes.
    pub fn signed_envelope(
        &self,
        header_type: HeaderType,
        channel_id: &str,
        data: Bytes,
        timestamp: SystemTime,
    ) -> Envelope {
        self.signed_envelope_with_tls_binding(header_type, channel_id, data, timestamp, &[])
    }

    /// [`Signer::signed_envelope`] with the channel header's `tls_cert_hash` set
    /// (`protoutil.CreateSignedEnvelopeWithTLSBinding`): the SHA-256 of the client's TLS
    /// certificate, which Fabric's Deliver requires under mutual TLS.
    pub fn signed_envelope_with_tls_binding(
        &self,
        header_type: HeaderType,
        channel_id: &str,
        data: Bytes,
        timestamp: SystemTime,
        tls_cert_hash: &[u8],
    ) -> Envelope {
        let signature_header = self.new_signature_header();
        let channel_header = ChannelHeader {
            r#type: header_type as i32,
            version: 0,
            timestamp: Some(to_timestamp(timestamp)),
            channel_id: channel_id.to_string(),
            tx_id: compute_tx_id(&signature_header.nonce, &signature_header.creator),
            epoch: 0,
            tls_cert_hash: Bytes::copy_from_slice(tls_cert_hash),
            ..Default::default()
        };
        self.envelope(channel_header, signature_header, data)
    }

    /// An envelope as Fabric's `protoutil.CreateSignedEnvelope` makes the orderer's
    /// own messages (CONFIG envelopes): no tx id, a whole-second timestamp.
    pub fn orderer_envelope(
        &self,
        header_type: HeaderType,
        channel_id: &str,
        data: Bytes,
    ) -> Envelope {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let channel_header = ChannelHeader {
            r#type: header_type as i32,
            timestamp: Some(prost_types::Timestamp {
                seconds: now,
                nanos: 0,
            }),
            channel_id: channel_id.to_string(),
            ..Default::default()
        };
        self.envelope(channel_header, self.new_signature_header(), data)
    }

    fn envelope(
        &self,
        channel_header: ChannelHeader,
        signature_header: SignatureHeader,
        data: Bytes,
    ) -> Envelope {
        let payload = Payload {
            header: Some(Header {
                channel_header: channel_header.encode_to_vec().into(),
                signature_header: signature_header.encode_to_vec().into(),
            }),
            data,
        }
        .encode_to_vec();
        let signature = self.sign(&payload);
        Envelope {
            payload: payload.into(),
            signature: signature.into(),
        }
    }
}

/// Fabric's transaction id (`protoutil.ComputeTxID`): hex(SHA-256(nonce || creator)).
pub fn compute_tx_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(nonce);
    hasher.update(creator);
    hex::encode(hasher.finalize())
}

/// A fresh random 24-byte nonce, as Fabric's `protoutil.CreateNonce`.
pub fn new_nonce() -> Bytes {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    Bytes::copy_from_slice(&nonce)
}

/// A protobuf `Timestamp` for `time` (times before 1970 clamp to the epoch).
pub fn to_timestamp(time: SystemTime) -> prost_types::Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

/// The P-256 public key of a DER X.509 certificate.
pub fn certificate_public_key(cert_der: &[u8]) -> Result<VerifyingKey> {
    let cert =
        x509_cert::Certificate::from_der(cert_der).context("not a valid X.509 certificate")?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let point = spki.subject_public_key.raw_bytes();
    VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| anyhow!("the certificate's public key is not ECDSA P-256"))
}

/// The first PEM block of `raw`: its label and decoded contents.
pub fn first_pem_block(raw: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    let text = std::str::from_utf8(raw).ok()?;
    let begin = text.find("-----BEGIN ")?;
    let label_end = begin
        + text[begin..]
            .find("-----\n")
            .or_else(|| text[begin..].find("-----\r\n"))?;
    let label = &text[begin + "-----BEGIN ".len()..label_end];
    let end_marker = format!("-----END {label}-----");
    let end = label_end + text[label_end..].find(&end_marker)? + end_marker.len();
    let (decoded_label, der) = der::pem::decode_vec(&text.as_bytes()[begin..end]).ok()?;
    // Map the label onto the few this module cares about, to return a 'static str.
    let label = match decoded_label {
        "CERTIFICATE" => "CERTIFICATE",
        "PRIVATE KEY" => "PRIVATE KEY",
        "EC PRIVATE KEY" => "EC PRIVATE KEY",
        _ => "OTHER",
    };
    Some((label, der))
}

/// Reads a PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM P-256 private key.
fn read_private_key(path: &Path) -> Result<SigningKey> {
    let raw = std::fs::read(path)?;
    let key = match first_pem_block(&raw) {
        Some(("PRIVATE KEY", der)) => p256::SecretKey::from_pkcs8_der(&der)
            .map_err(|e| anyhow!("not a PKCS#8 EC P-256 private key ({e})"))?,
        Some(("EC PRIVATE KEY", der)) => p256::SecretKey::from_sec1_der(&der)
            .map_err(|e| anyhow!("not a SEC1 EC P-256 private key ({e})"))?,
        Some(_) => bail!("PEM block is not a private key"),
        None => bail!("no PEM content"),
    };
    Ok(SigningKey::from(key))
}

/// The regular files of `dir`, sorted by name (as Go's `os.ReadDir`).
fn sorted_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn folder_error(name: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("{name}/ is missing")
    } else {
        format!("{name}/: {e}")
    }
}

/// `path` relative to `base` for messages (`signcerts/x.pem`).
fn rel(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
    }

    fn orderer_msp() -> PathBuf {
        fixtures().join("crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/msp")
    }

    fn user1_msp() -> PathBuf {
        fixtures()
            .join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp")
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn is_low_s(der: &[u8]) -> bool {
        let sig = Signature::from_der(der).unwrap();
        sig.normalize_s().is_none()
    }

    #[test]
    fn identity_loads_fabric_msp_folders() {
        for (dir, msp_id, cert) in [
            (
                orderer_msp(),
                "OrdererMSP",
                "signcerts/orderer0.example.com-cert.pem",
            ),
            (
                user1_msp(),
                "Org1MSP",
                "signcerts/User1@org1.example.com-cert.pem",
            ),
        ] {
            let signer = Signer::from_msp_dir(&dir, msp_id).unwrap();
            assert_eq!(signer.msp_id(), msp_id);
            let pem = std::fs::read(dir.join(cert)).unwrap();
            assert_eq!(signer.certificate_pem().as_ref(), pem.as_slice());
            let id = SerializedIdentity::decode(signer.serialized_identity()).unwrap();
            assert_eq!(id.mspid, msp_id);
            assert_eq!(
                id.id_bytes.as_ref(),
                pem.as_slice(),
                "id_bytes are the PEM file bytes"
            );
            assert!(format!("{signer:?}").contains(msp_id));
        }
    }

    #[test]
    fn identity_signatures_verify_and_are_low_s() {
        let signer = Signer::from_msp_dir(&orderer_msp(), "OrdererMSP").unwrap();
        let cert_der = first_pem_block(signer.certificate_pem()).unwrap().1;
        let public_key = certificate_public_key(&cert_der).unwrap();
        for i in 0..64u32 {
            let msg = format!("message {i}");
            let der = signer.sign(msg.as_bytes());
            let sig = Signature::from_der(&der).unwrap();
            assert!(public_key.verify(msg.as_bytes(), &sig).is_ok());
            assert!(is_low_s(&der), "signature {i} is high-S");
            // The core's verifier (the one the filters use) agrees.
            use ordering_core::Crypto;
            let point = public_key.to_encoded_point(false);
            assert!(ordering_core::NativeCrypto.verify_p256(
                point.as_bytes(),
                msg.as_bytes(),
                &der
            ));
        }
    }

    #[test]
    fn identity_signature_header_and_signed_envelope() {
        let signer = Signer::from_msp_dir(&user1_msp(), "Org1MSP").unwrap();
        let a = signer.new_signature_header();
        let b = signer.new_signature_header();
        assert_eq!(a.nonce.len(), NONCE_LEN);
        assert_ne!(a.nonce, b.nonce, "nonces are random");
        assert_eq!(a.creator, signer.serialized_identity());

        let when = UNIX_EPOCH + std::time::Duration::new(1_800_000_000, 123);
        let env = signer.signed_envelope(
            HeaderType::EndorserTransaction,
            "mychannel",
            Bytes::from_static(b"tx"),
            when,
        );
        let sig = Signature::from_der(&env.signature).unwrap();
        assert!(signer.verifying_key().verify(&env.payload, &sig).is_ok());
        assert!(is_low_s(&env.signature));

        let payload = Payload::decode(env.payload.clone()).unwrap();
        assert_eq!(payload.data.as_ref(), b"tx");
        let header = payload.header.unwrap();
        let ch = ChannelHeader::decode(header.channel_header).unwrap();
        let sh = SignatureHeader::decode(header.signature_header).unwrap();
        assert_eq!(ch.r#type, HeaderType::EndorserTransaction as i32);
        assert_eq!(ch.version, 0);
        assert_eq!(ch.epoch, 0);
        assert_eq!(ch.channel_id, "mychannel");
        assert_eq!(
            ch.timestamp,
            Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 123
            })
        );
        assert_eq!(sh.creator, signer.serialized_identity());
        assert_eq!(sh.nonce.len(), NONCE_LEN);
        let mut concat = sh.nonce.to_vec();
        concat.extend_from_slice(&sh.creator);
        assert_eq!(ch.tx_id, hex::encode(Sha256::digest(&concat)));
        assert_eq!(ch.tx_id.len(), 64);
    }

    #[test]
    fn identity_tx_id_formula() {
        // SHA-256("abc") with an empty creator, and the split point does not matter.
        assert_eq!(
            compute_tx_id(b"abc", b""),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(compute_tx_id(b"a", b"bc"), compute_tx_id(b"abc", b""));
    }

    #[test]
    fn identity_accepts_sec1_and_named_sk_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("msp");
        copy_dir(&orderer_msp(), &dir);
        let key = p256::SecretKey::from_pkcs8_pem(
            &std::fs::read_to_string(dir.join("keystore/priv_sk")).unwrap(),
        )
        .unwrap();
        std::fs::remove_file(dir.join("keystore/priv_sk")).unwrap();
        let sec1 = key.to_sec1_pem(p256::pkcs8::LineEnding::LF).unwrap();
        std::fs::write(dir.join("keystore/0123abcd_sk"), sec1.as_bytes()).unwrap();
        let signer = Signer::from_msp_dir(&dir, "OrdererMSP").unwrap();
        let reference = Signer::from_msp_dir(&orderer_msp(), "OrdererMSP").unwrap();
        assert_eq!(signer.verifying_key(), reference.verifying_key());
    }

    #[test]
    fn identity_errors_name_the_path_and_problem() {
        let tmp = tempfile::tempdir().unwrap();

        // Missing folder.
        let missing = tmp.path().join("nope");
        let err = Signer::from_msp_dir(&missing, "OrdererMSP")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("not found"),
            "{err}"
        );

        // No certificate.
        let dir = tmp.path().join("nocert");
        copy_dir(&orderer_msp(), &dir);
        std::fs::remove_file(dir.join("signcerts/orderer0.example.com-cert.pem")).unwrap();
        let err = Signer::from_msp_dir(&dir, "OrdererMSP")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "MSP folder {}: signcerts/ has no .pem certificate",
                dir.display()
            )
        );

        // No key.
        let dir = tmp.path().join("nokey");
        copy_dir(&orderer_msp(), &dir);
        std::fs::remove_file(dir.join("keystore/priv_sk")).unwrap();
        let err = Signer::from_msp_dir(&dir, "OrdererMSP")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "MSP folder {}: keystore/ has no private key (priv_sk or *_sk)",
                dir.display()
            )
        );

        // No keystore folder at all.
        std::fs::remove_dir(dir.join("keystore")).unwrap();
        let err = Signer::from_msp_dir(&dir, "OrdererMSP")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("MSP folder {}: keystore/ is missing", dir.display())
        );

        // A key of another identity.
        let dir = tmp.path().join("mismatch");
        copy_dir(&orderer_msp(), &dir);
        std::fs::copy(
            user1_msp().join("keystore/priv_sk"),
            dir.join("keystore/priv_sk"),
        )
        .unwrap();
        let err = Signer::from_msp_dir(&dir, "OrdererMSP")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "MSP folder {}: keystore/priv_sk does not match the certificate signcerts/orderer0.example.com-cert.pem",
                dir.display()
            )
        );

        // Garbage key.
        std::fs::write(dir.join("keystore/priv_sk"), b"not a key").unwrap();
        let err = Signer::from_msp_dir(&dir, "OrdererMSP")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "MSP folder {}: keystore/priv_sk: no PEM content",
                dir.display()
            )
        );
        assert!(!err.contains('\n'));
    }
}
