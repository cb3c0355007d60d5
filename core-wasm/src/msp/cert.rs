//! X.509 certificates: the parts the MSP needs, decoded once; validity periods with
//! Go's texts.

use std::time::Duration;

use der::asn1::ObjectIdentifier;
use der::{DateTime, Decode, Encode, Header, Reader, SliceReader, Tag};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};

use super::error::{CertError, ValidityError};
use super::pem::pem_decode;
use crate::crypto::Crypto;

pub(super) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(super) const OID_PRIME256V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(super) const OID_ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub(super) const OID_BASIC_CONSTRAINTS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.19");
pub(super) const OID_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
pub(super) const OID_AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
pub(super) const OID_ORGANIZATIONAL_UNIT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.4.11");

/// The full TLV bytes of the first element inside a DER SEQUENCE (a certificate's
/// `tbsCertificate`, a CRL's `tbsCertList`), exactly as they were signed.
pub(super) fn first_inner_tlv(der: &[u8]) -> Option<&[u8]> {
    let mut reader = SliceReader::new(der).ok()?;
    Header::decode(&mut reader)
        .ok()?
        .tag
        .assert_eq(Tag::Sequence)
        .ok()?;
    reader.tlv_bytes().ok()
}

/// Formats Unix nanoseconds as an RFC 3339 UTC time (seconds precision).
pub fn format_unix_nanos(nanos: u64) -> String {
    DateTime::from_unix_duration(Duration::from_secs(nanos / 1_000_000_000))
        .expect("u64 nanoseconds end in 2554, within DateTime's range")
        .to_string()
}

/// The parts of an X.509 certificate the MSP needs, decoded once.
#[derive(Clone, Debug)]
pub struct ParsedCert {
    /// The whole certificate, DER.
    pub raw: Vec<u8>,
    /// The signed `tbsCertificate` bytes, exactly as in `raw`.
    pub(super) tbs: Vec<u8>,
    pub(super) signature_algorithm: ObjectIdentifier,
    pub(super) signature: Vec<u8>,
    pub(super) issuer: Vec<u8>,
    pub(super) subject: Vec<u8>,
    /// Common name of the subject, for messages.
    pub(super) common_name: String,
    pub not_before_unix_nanos: u64,
    pub not_after_unix_nanos: u64,
    /// SEC1 point when the key is EC P-256.
    pub(super) public_key: Option<Vec<u8>>,
    pub(super) is_ca: bool,
    pub(super) subject_key_id: Option<Vec<u8>>,
    pub(super) serial: Vec<u8>,
    pub organizational_units: Vec<String>,
}

fn unix_nanos(t: x509_cert::time::Time) -> u64 {
    u64::try_from(t.to_unix_duration().as_nanos()).unwrap_or(u64::MAX)
}

fn name_attribute_strings(name: &x509_cert::name::Name, oid: ObjectIdentifier) -> Vec<String> {
    let mut values = Vec::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == oid {
                values.push(String::from_utf8_lossy(atv.value.value()).into_owned());
            }
        }
    }
    values
}

impl ParsedCert {
    /// Decodes a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let cert = Certificate::from_der(der).map_err(CertError::Malformed)?;
        let tbs = first_inner_tlv(der).ok_or(CertError::Tbs)?.to_vec();
        let t = &cert.tbs_certificate;
        let spki = &t.subject_public_key_info;
        let public_key = (spki.algorithm.oid == OID_EC_PUBLIC_KEY
            && spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                == Some(OID_PRIME256V1))
        .then(|| spki.subject_public_key.raw_bytes().to_vec());
        let mut is_ca = false;
        let mut subject_key_id = None;
        for ext in t.extensions.iter().flatten() {
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == OID_BASIC_CONSTRAINTS {
                let bc = BasicConstraints::from_der(value).map_err(CertError::BasicConstraints)?;
                is_ca = bc.ca;
            } else if ext.extn_id == OID_SUBJECT_KEY_ID
                && let Ok(ski) = SubjectKeyIdentifier::from_der(value)
            {
                subject_key_id = Some(ski.0.as_bytes().to_vec());
            }
        }
        let common_name =
            name_attribute_strings(&t.subject, ObjectIdentifier::new_unwrap("2.5.4.3"))
                .into_iter()
                .next()
                .unwrap_or_default();
        Ok(ParsedCert {
            raw: der.to_vec(),
            tbs,
            signature_algorithm: cert.signature_algorithm.oid,
            signature: cert.signature.raw_bytes().to_vec(),
            issuer: t.issuer.to_der().map_err(CertError::Name)?,
            subject: t.subject.to_der().map_err(CertError::Name)?,
            common_name,
            not_before_unix_nanos: unix_nanos(t.validity.not_before),
            not_after_unix_nanos: unix_nanos(t.validity.not_after),
            public_key,
            is_ca,
            subject_key_id,
            serial: t.serial_number.as_bytes().to_vec(),
            organizational_units: name_attribute_strings(&t.subject, OID_ORGANIZATIONAL_UNIT),
        })
    }

    /// Decodes the first PEM block of `pem` as a certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertError> {
        let der = pem_decode(pem).ok_or(CertError::Pem)?;
        Self::from_der(&der)
    }

    /// SEC1 public key, when the certificate holds an EC P-256 key.
    /// The serial number (DER INTEGER content).
    pub fn serial_number(&self) -> &[u8] {
        &self.serial
    }

    /// The first common name (CN) of the subject, empty when there is none.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    /// Whether `self` was signed by `issuer`'s key (ECDSA with SHA-256 over P-256;
    /// high-S certificate signatures are accepted, as Fabric sanitises them).
    pub(super) fn is_signed_by(
        &self,
        issuer: &ParsedCert,
        crypto: &dyn Crypto,
    ) -> Result<(), String> {
        if self.signature_algorithm != OID_ECDSA_WITH_SHA256 {
            return Err(format!(
                "x509: cannot verify signature: algorithm {} is not supported",
                self.signature_algorithm
            ));
        }
        let Some(key) = issuer.public_key() else {
            return Err("x509: cannot verify signature: issuer key is not EC P-256".into());
        };
        if crypto.verify_p256(key, &self.tbs, &self.signature) {
            Ok(())
        } else {
            Err("x509: ECDSA verification failure".into())
        }
    }

    pub(super) fn check_time(&self, at_unix_nanos: u64) -> Result<(), String> {
        check_validity(
            self.not_before_unix_nanos,
            self.not_after_unix_nanos,
            at_unix_nanos,
        )
        .map_err(|e| e.to_string())
    }
}

/// Whether `at` lies within a certificate's validity period, with Go's x509 texts.
pub(super) fn check_validity(
    not_before: u64,
    not_after: u64,
    at_unix_nanos: u64,
) -> Result<(), ValidityError> {
    let invalid = |before, bound_unix_nanos| ValidityError {
        at_unix_nanos,
        before,
        bound_unix_nanos,
    };
    if at_unix_nanos < not_before {
        return Err(invalid(true, not_before));
    }
    if at_unix_nanos > not_after {
        return Err(invalid(false, not_after));
    }
    Ok(())
}
