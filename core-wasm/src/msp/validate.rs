//! Fabric's `validateIdentity`: the certification chain, the revocation lists and the
//! organizational units of an identity under one X.509 MSP.

use std::fmt::Write as _;

use super::cert::{OID_ECDSA_WITH_SHA256, ParsedCert};
use super::x509::Msp;
use crate::crypto::Crypto;

const MAX_CHAIN_DEPTH: usize = 10;

impl Msp {
    /// The issuers of `cert` up to (and including) a root, checked at `at`: Go's
    /// `x509.Certificate.Verify` as Fabric configures it (single chain).
    pub(super) fn build_chain<'a>(
        &'a self,
        cert: &ParsedCert,
        at: u64,
        crypto: &dyn Crypto,
    ) -> Result<Vec<&'a ParsedCert>, String> {
        let mut last_error = None;
        let found = self.find_parents(cert, at, crypto, 0, &mut last_error);
        found.ok_or_else(|| match last_error {
            Some(e) => format!(
                "x509: certificate signed by unknown authority (possibly because of \"{e}\" while trying to verify candidate authority certificate)"
            ),
            None => "x509: certificate signed by unknown authority".to_string(),
        })
    }

    fn find_parents<'a>(
        &'a self,
        cert: &ParsedCert,
        at: u64,
        crypto: &dyn Crypto,
        depth: usize,
        last_error: &mut Option<String>,
    ) -> Option<Vec<&'a ParsedCert>> {
        if depth > MAX_CHAIN_DEPTH {
            return None;
        }
        for root in self.roots.iter().filter(|r| r.subject == cert.issuer) {
            if let Err(e) = root
                .check_time(at)
                .and_then(|_| cert.is_signed_by(root, crypto))
            {
                *last_error = Some(e);
                continue;
            }
            return Some(vec![root]);
        }
        for inter in self
            .intermediates
            .iter()
            .filter(|r| r.subject == cert.issuer)
        {
            if inter.raw == cert.raw {
                continue;
            }
            if !inter.is_ca {
                *last_error =
                    Some("x509: certificate is not authorized to sign other certificates".into());
                continue;
            }
            if let Err(e) = inter
                .check_time(at)
                .and_then(|_| cert.is_signed_by(inter, crypto))
            {
                *last_error = Some(e);
                continue;
            }
            if let Some(rest) = self.find_parents(inter, at, crypto, depth + 1, last_error) {
                let mut chain = vec![inter];
                chain.extend(rest);
                return Some(chain);
            }
        }
        None
    }

    /// Fabric's `validateIdentity`: chain, revocation, OUs. Returns the certifiers
    /// identifier of the identity's chain.
    pub(super) fn validate(
        &self,
        cert: &ParsedCert,
        crypto: &dyn Crypto,
    ) -> Result<Vec<u8>, String> {
        if cert.is_ca {
            return Err("could not obtain certification chain: An X509 certificate with Basic Constraint: Certificate Authority equals true cannot be used as an identity".into());
        }
        let at = cert.not_before_unix_nanos.saturating_add(1_000_000_000);
        let chain = cert
            .check_time(at)
            .and_then(|_| self.build_chain(cert, at, crypto))
            .map_err(|e| {
                format!(
                    "could not obtain certification chain: the supplied identity is not valid: {e}"
                )
            })?;
        self.check_revocation(cert, chain[0], crypto)
            .map_err(|e| format!("could not validate identity against certification chain: {e}"))?;
        let certifiers = chain_identifier(&chain, crypto);
        self.validate_ous(cert, &certifiers)
            .map_err(|e| format!("could not validate identity's OUs: {e}"))?;
        Ok(certifiers)
    }

    /// Fabric's `validateCertAgainstChain`: the signer must have a subject key
    /// identifier; a CRL with that authority key identifier, signed by the signer,
    /// listing the serial number revokes the certificate.
    fn check_revocation(
        &self,
        cert: &ParsedCert,
        signer: &ParsedCert,
        crypto: &dyn Crypto,
    ) -> Result<(), String> {
        let Some(ski) = &signer.subject_key_id else {
            return Err("could not obtain Subject Key Identifier for signer cert: subjectKeyIdentifier not found in certificate".into());
        };
        for crl in &self.crls {
            let Some(aki) = &crl.authority_key_id else {
                return Err("could not obtain Authority Key Identifier for crl: authorityKeyIdentifier not found in certificate".into());
            };
            if aki != ski || !crl.revoked_serials.contains(&cert.serial) {
                continue;
            }
            let signed = crl.signature_algorithm == OID_ECDSA_WITH_SHA256
                && signer
                    .public_key()
                    .is_some_and(|key| crypto.verify_p256(key, &crl.tbs, &crl.signature));
            if signed {
                return Err("The certificate has been revoked".into());
            }
        }
        Ok(())
    }

    /// Fabric's `validateIdentityOUsV142` (MSP version 1.4.3 and later).
    fn validate_ous(&self, cert: &ParsedCert, certifiers: &[u8]) -> Result<(), String> {
        let ouids = || ou_ids_string(&cert.organizational_units, certifiers);
        if !self.ou_identifiers.is_empty() {
            let found = cert.organizational_units.iter().any(|ou| {
                self.ou_identifiers
                    .get(ou)
                    .is_some_and(|ids| ids.iter().any(|id| id == certifiers))
            });
            if !found {
                if cert.organizational_units.is_empty() {
                    return Err(
                        "the identity certificate does not contain an Organizational Unit (OU)"
                            .into(),
                    );
                }
                return Err(format!(
                    "none of the identity's organizational units {} are in MSP {}",
                    ouids(),
                    self.name
                ));
            }
        }
        let Some(roles) = &self.node_ous else {
            return Ok(());
        };
        let mut counter = 0;
        for ou in &cert.organizational_units {
            // Later roles with the same OU value replace earlier ones, as in Fabric's map.
            let Some(role) = roles.iter().rev().find(|r| &r.ou == ou) else {
                continue;
            };
            if !role.certifiers.is_empty() && role.certifiers != certifiers {
                return Err(format!(
                    "certifiersIdentifier does not match: {}, MSP: [{}]",
                    ouids(),
                    self.name
                ));
            }
            counter += 1;
            if counter > 1 {
                break;
            }
        }
        match counter {
            0 => Err(format!(
                "the identity does not have an OU that resolves to client, peer, orderer, or admin role. OUs: {}, MSP: [{}]",
                ouids(),
                self.name
            )),
            1 => Ok(()),
            _ => Err(format!(
                "the identity must have a client, a peer, an orderer, or an admin OU role to be valid, not a combination of them. OUs: {}, MSP: [{}]",
                ouids(),
                self.name
            )),
        }
    }
}

/// SHA-256 over the concatenated DER of a chain (Fabric's certification chain
/// identifier, with the default SHA256 identity identifier hash function).
pub(super) fn chain_identifier(chain: &[&ParsedCert], crypto: &dyn Crypto) -> Vec<u8> {
    let mut all = Vec::new();
    for cert in chain {
        all.extend_from_slice(&cert.raw);
    }
    crypto.sha256(&all).to_vec()
}

/// Fabric's `OUIDs.String()`: `[client(0123456789ABCDEF) ...]`.
fn ou_ids_string(ous: &[String], certifiers: &[u8]) -> String {
    let mut hex = String::new();
    for b in certifiers.iter().take(8) {
        let _ = write!(hex, "{b:02X}");
    }
    let items: Vec<String> = ous.iter().map(|ou| format!("{ou}({hex})")).collect();
    format!("[{}]", items.join(" "))
}
