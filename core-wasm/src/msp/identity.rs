//! Identities: a creator as parsed from its `SerializedIdentity`, and as validated.

use std::sync::Arc;

use fabric_protos::msp::SerializedIdentity;
use prost::Message;

use super::cert::ParsedCert;
use super::error::MspError;
use super::pem::pem_decode;
use super::signature::verify_signature;
use crate::crypto::Crypto;

/// A validated member of an MSP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub msp_id: String,
    /// SEC1 uncompressed P-256 point.
    pub public_key: Vec<u8>,
    pub not_before_unix_nanos: u64,
    pub not_after_unix_nanos: u64,
    /// The OU values of the certificate's subject, in order.
    pub organizational_units: Vec<String>,
    /// The certificate, DER (Fabric compares identities by it).
    pub cert_der: Vec<u8>,
    /// Fabric's certifiers identifier of the identity's chain: SHA-256 over the DER of
    /// the chain from the issuing CA up to the root (the `CertifiersIdentifier` of
    /// its OUs).
    pub certifiers_identifier: Vec<u8>,
}

impl Identity {
    /// Verifies a Fabric signature by this identity: ECDSA P-256 with SHA-256,
    /// DER-encoded, low-S.
    pub fn verify(&self, message: &[u8], signature_der: &[u8], crypto: &dyn Crypto) -> bool {
        verify_signature(&self.public_key, message, signature_der, crypto)
    }
}

/// A creator as found in a signature header: the MSP id and its parsed certificate.
/// Parse it once per envelope, then validate and verify with it.
#[derive(Clone, Debug)]
pub struct ParsedIdentity {
    pub msp_id: String,
    pub cert: ParsedCert,
}

impl ParsedIdentity {
    /// Decodes a `msp.SerializedIdentity` whose `id_bytes` is a PEM certificate.
    pub fn from_serialized(serialized: &[u8]) -> Result<Self, MspError> {
        let sid = SerializedIdentity::decode(serialized).map_err(MspError::Deserialize)?;
        let der = pem_decode(&sid.id_bytes).ok_or(MspError::Pem)?;
        let cert = ParsedCert::from_der(&der).map_err(MspError::Certificate)?;
        Ok(ParsedIdentity {
            msp_id: sid.mspid,
            cert,
        })
    }
}

/// The creator of a message as first seen, before any signature check: validated
/// earlier under this manager (from its cache), or parsed and still to be validated.
/// Its NotAfter and MSP id are known either way, for the checks that come before
/// validation (expiry, maintenance mode). Get one from [`MspManager::creator`](super::MspManager::creator) and
/// validate it with the same manager's [`MspManager::validate_creator`](super::MspManager::validate_creator).
#[derive(Debug)]
pub struct Creator(pub(super) CreatorState);

#[derive(Debug)]
pub(super) enum CreatorState {
    Validated(Arc<Identity>),
    Parsed {
        serialized: Box<[u8]>,
        parsed: Box<ParsedIdentity>,
    },
}

impl Creator {
    pub fn msp_id(&self) -> &str {
        match &self.0 {
            CreatorState::Validated(identity) => &identity.msp_id,
            CreatorState::Parsed { parsed, .. } => &parsed.msp_id,
        }
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        match &self.0 {
            CreatorState::Validated(identity) => &identity.cert_der,
            CreatorState::Parsed { parsed, .. } => &parsed.cert.raw,
        }
    }

    /// The SEC1 P-256 public key, `None` when the certificate has another key type.
    pub fn public_key(&self) -> Option<&[u8]> {
        match &self.0 {
            CreatorState::Validated(identity) => Some(&identity.public_key),
            CreatorState::Parsed { parsed, .. } => parsed.cert.public_key(),
        }
    }

    /// The certificate's NotAfter, in unix nanos.
    pub fn not_after_unix_nanos(&self) -> u64 {
        match &self.0 {
            CreatorState::Validated(identity) => identity.not_after_unix_nanos,
            CreatorState::Parsed { parsed, .. } => parsed.cert.not_after_unix_nanos,
        }
    }
}
