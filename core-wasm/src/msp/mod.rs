//! Membership service providers (Fabric's `msp` package, X.509 flavour): who is a
//! member of which organisation.
//!
//! An [`MspManager`] is built from the `MSPConfig`s of a channel config. It parses
//! every root and intermediate CA certificate (and CRL) once, at construction. A
//! creator (`msp.SerializedIdentity`) is parsed into a [`ParsedIdentity`], then
//! validated the way Fabric's `bccspmsp.validateIdentity` does: a certification chain
//! to one of the MSP's root CAs (signatures checked through [`Crypto`](crate::Crypto)), no CA used
//! as an identity, the revocation lists, and the organizational-unit rules (OU
//! identifiers, NodeOUs). Valid identities are cached per manager (Fabric's MSP
//! cache), so a returning creator is neither parsed nor chain-checked again; message
//! signatures are always verified.
//!
//! Like Fabric, the chain is checked at the leaf's `NotBefore + 1s` (Fabric's
//! `getValidityOptsForCert`, FAB-3678), not at the current time: whether an identity
//! has expired is the job of the expiration filter (Broadcast) and the session check
//! (Deliver). [`MspManager::validate_identity`] adds the check at `now` for callers
//! that want both.
//!
//! Error texts follow Fabric's `msp/mspimpl.go`, `msp/mspimplvalidate.go` and
//! `msp/mspmgrimpl.go`.

mod cache;
mod cert;
mod crl;
mod error;
mod identity;
mod manager;
mod pem;
mod signature;
mod validate;
mod x509;

pub use cache::IDENTITY_CACHE_CAPACITY;
pub use cert::{ParsedCert, format_unix_nanos};
pub use error::{CertError, MspError, ValidityError};
pub use identity::{Creator, Identity, ParsedIdentity};
pub use manager::{MspManager, msp_config_name};
pub use pem::pem_decode;
pub use signature::{P256_ORDER, ecdsa_signature_s, is_low_s, verify_signature};
pub(crate) use x509::Msp;
pub use x509::NodeRole;

#[cfg(test)]
pub(crate) mod tests;
