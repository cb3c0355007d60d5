//! Certificate revocation lists.

use der::Decode;
use der::asn1::ObjectIdentifier;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use super::cert::{OID_AUTHORITY_KEY_ID, first_inner_tlv};
use super::pem::pem_decode;

/// A parsed revocation list.
#[derive(Clone, Debug)]
pub(super) struct Crl {
    pub(super) tbs: Vec<u8>,
    pub(super) signature_algorithm: ObjectIdentifier,
    pub(super) signature: Vec<u8>,
    pub(super) authority_key_id: Option<Vec<u8>>,
    pub(super) revoked_serials: Vec<Vec<u8>>,
}

impl Crl {
    pub(super) fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der =
            pem_decode(pem).ok_or_else(|| "could not decode the PEM structure".to_string())?;
        let list = CertificateList::from_der(&der)
            .map_err(|e| format!("could not parse RevocationList: {e}"))?;
        let tbs = first_inner_tlv(&der)
            .ok_or_else(|| "could not parse RevocationList".to_string())?
            .to_vec();
        let mut authority_key_id = None;
        for ext in list.tbs_cert_list.crl_extensions.iter().flatten() {
            if ext.extn_id == OID_AUTHORITY_KEY_ID
                && let Ok(aki) = AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes())
            {
                authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
            }
        }
        let revoked_serials = list
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .map(|r| r.serial_number.as_bytes().to_vec())
            .collect();
        Ok(Crl {
            tbs,
            signature_algorithm: list.signature_algorithm.oid,
            signature: list.signature.raw_bytes().to_vec(),
            authority_key_id,
            revoked_serials,
        })
    }
}
