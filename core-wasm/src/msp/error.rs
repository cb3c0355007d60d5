//! The MSP's errors, displayed with Fabric's texts.

use thiserror::Error;

use super::cert::format_unix_nanos;

/// Why a certificate could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CertError {
    #[error("could not decode the PEM structure")]
    Pem,
    #[error("x509: malformed certificate: {0}")]
    Malformed(der::Error),
    /// The certificate decoded, but its `tbsCertificate` bytes could not be found.
    #[error("x509: malformed certificate")]
    Tbs,
    #[error("x509: malformed basic constraints: {0}")]
    BasicConstraints(der::Error),
    /// The issuer or subject name did not encode again.
    #[error("{0}")]
    Name(der::Error),
}

/// A time outside a certificate's validity period (Go's `x509.CertificateInvalidError`
/// for `Expired`).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "x509: certificate has expired or is not yet valid: current time {} is {} {}",
    format_unix_nanos(*at_unix_nanos),
    if *before { "before" } else { "after" },
    format_unix_nanos(*bound_unix_nanos)
)]
pub struct ValidityError {
    pub at_unix_nanos: u64,
    /// Whether `at` is before NotBefore (else after NotAfter).
    pub before: bool,
    /// The NotBefore or NotAfter passed.
    pub bound_unix_nanos: u64,
}

/// Why an MSP config or an identity was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MspError {
    #[error("could not deserialize a SerializedIdentity: {0}")]
    Deserialize(prost::DecodeError),
    #[error("could not decode the PEM structure")]
    Pem,
    #[error("parseCertificate failed: {0}")]
    Certificate(CertError),
    #[error("MSP {0} is not defined on channel")]
    UnknownMsp(String),
    #[error("MSP {msp_id} is of type {kind}, which this orderer does not support")]
    UnsupportedType { msp_id: String, kind: i32 },
    #[error("failed to import certificate's public key: only EC P-256 keys are supported")]
    NotP256,
    /// Fabric's `validateIdentity` refused it: chain, revocation or OUs.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Validity(#[from] ValidityError),
    #[error("error unmarshalling msp config: {0}")]
    MspConfig(prost::DecodeError),
    #[error("error unmarshalling fabric msp config: {0}")]
    FabricMspConfig(prost::DecodeError),
    /// Fabric's `bccspmsp.Setup` refused the config.
    #[error("{0}")]
    Setup(String),
    #[error("Attempted to define two different versions of MSP: {0}")]
    Duplicate(String),
}
