//! Dev crypto material in Fabric's MSP folder layout, as `cryptogen` makes it.
//!
//! Real X.509 ECDSA P-256: one CA and one TLS CA per org, node and user certificates
//! signed by them, NodeOUs enabled. Key identifiers are computed as cryptogen does
//! (SHA-256 of the uncompressed public point), keys are PKCS#8 PEM in `keystore/priv_sk`.

use std::path::Path;

use anyhow::{Context, Result};
use rand::RngCore;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The orderer org of the dev network.
pub const ORDERER_MSP_ID: &str = "OrdererMSP";
pub const ORDERER_DOMAIN: &str = "example.com";
pub const ORDERER_NODE: &str = "orderer0";
/// The client (application) org of the dev network.
pub const CLIENT_MSP_ID: &str = "Org1MSP";
pub const CLIENT_DOMAIN: &str = "org1.example.com";

/// Paths inside a crypto folder made by [`generate_crypto`] (and by cryptogen for the
/// same names).
pub fn orderer_org_dir(crypto_dir: &Path) -> std::path::PathBuf {
    crypto_dir.join("ordererOrganizations").join(ORDERER_DOMAIN)
}
pub fn client_org_dir(crypto_dir: &Path) -> std::path::PathBuf {
    crypto_dir.join("peerOrganizations").join(CLIENT_DOMAIN)
}
pub fn orderer_node_msp_dir(crypto_dir: &Path) -> std::path::PathBuf {
    orderer_org_dir(crypto_dir)
        .join("orderers")
        .join(format!("{ORDERER_NODE}.{ORDERER_DOMAIN}"))
        .join("msp")
}
pub fn user_msp_dir(org_dir: &Path, user: &str, domain: &str) -> std::path::PathBuf {
    org_dir
        .join("users")
        .join(format!("{user}@{domain}"))
        .join("msp")
}

/// Generates the dev network's crypto material under `dir` (created if missing):
/// `ordererOrganizations/example.com` (OrdererMSP: `orderers/orderer0.example.com`,
/// `users/Admin@example.com`) and `peerOrganizations/org1.example.com` (Org1MSP:
/// `users/User1@org1.example.com`, `users/Admin@org1.example.com`).
pub fn generate_crypto(dir: &Path) -> Result<()> {
    let orderer_org = Org::new(ORDERER_DOMAIN)?;
    let base = orderer_org_dir(dir);
    orderer_org.write_org_folders(&base)?;
    let node = format!("{ORDERER_NODE}.{ORDERER_DOMAIN}");
    orderer_org.write_identity(
        &base.join("orderers").join(&node),
        &node,
        "orderer",
        &[ORDERER_NODE, "localhost", "127.0.0.1"],
        TlsRole::Server,
    )?;
    let admin = format!("Admin@{ORDERER_DOMAIN}");
    orderer_org.write_identity(
        &base.join("users").join(&admin),
        &admin,
        "admin",
        &[],
        TlsRole::Client,
    )?;

    let client_org = Org::new(CLIENT_DOMAIN)?;
    let base = client_org_dir(dir);
    client_org.write_org_folders(&base)?;
    for (user, ou) in [("User1", "client"), ("Admin", "admin")] {
        let name = format!("{user}@{CLIENT_DOMAIN}");
        client_org.write_identity(
            &base.join("users").join(&name),
            &name,
            ou,
            &[],
            TlsRole::Client,
        )?;
    }
    Ok(())
}

/// A certificate authority: its certificate (kept for rcgen's issuer data) and key.
struct Ca {
    cert: Certificate,
    key: KeyPair,
    file_name: String,
}

/// One organization: its signing CA and its TLS CA.
struct Org {
    domain: String,
    ca: Ca,
    tlsca: Ca,
    not_before: OffsetDateTime,
}

#[derive(Clone, Copy, PartialEq)]
enum TlsRole {
    Server,
    Client,
}

impl Org {
    fn new(domain: &str) -> Result<Org> {
        // cryptogen: now rounded to the minute, minus 5 minutes; valid for 10 years.
        let now = OffsetDateTime::now_utc();
        let not_before = now.replace_second(0)?.replace_nanosecond(0)? - Duration::minutes(5);
        Ok(Org {
            domain: domain.to_string(),
            ca: new_ca(&format!("ca.{domain}"), domain, not_before)?,
            tlsca: new_ca(&format!("tlsca.{domain}"), domain, not_before)?,
            not_before,
        })
    }

    /// `ca/`, `tlsca/` and the org's verifying `msp/` (cacerts, tlscacerts, config.yaml).
    fn write_org_folders(&self, base: &Path) -> Result<()> {
        for (sub, ca) in [("ca", &self.ca), ("tlsca", &self.tlsca)] {
            write(
                &base.join(sub).join(&ca.file_name),
                ca.cert.pem().as_bytes(),
            )?;
            write_key(&base.join(sub).join("priv_sk"), &ca.key.serialize_pem())?;
        }
        self.write_verifying_msp(&base.join("msp"))
    }

    fn write_verifying_msp(&self, msp: &Path) -> Result<()> {
        write(
            &msp.join("cacerts").join(&self.ca.file_name),
            self.ca.cert.pem().as_bytes(),
        )?;
        write(
            &msp.join("tlscacerts").join(&self.tlsca.file_name),
            self.tlsca.cert.pem().as_bytes(),
        )?;
        write(
            &msp.join("config.yaml"),
            node_ous_config_yaml(&self.ca.file_name).as_bytes(),
        )
    }

    /// `<base>/msp` (signcerts, keystore/priv_sk, cacerts, tlscacerts, config.yaml) and
    /// `<base>/tls` (ca.crt, server|client .crt/.key).
    fn write_identity(
        &self,
        base: &Path,
        name: &str,
        ou: &str,
        sans: &[&str],
        tls: TlsRole,
    ) -> Result<()> {
        let msp = base.join("msp");
        self.write_verifying_msp(&msp)?;
        let (cert, key) = self.leaf(&self.ca, name, Some(ou), &[], false)?;
        write(
            &msp.join("signcerts").join(format!("{name}-cert.pem")),
            cert.as_bytes(),
        )?;
        write_key(&msp.join("keystore").join("priv_sk"), &key)?;

        let mut tls_sans = vec![name];
        tls_sans.extend_from_slice(sans);
        let (cert, key) = self.leaf(&self.tlsca, name, None, &tls_sans, true)?;
        let prefix = if tls == TlsRole::Server {
            "server"
        } else {
            "client"
        };
        let tls_dir = base.join("tls");
        write(&tls_dir.join("ca.crt"), self.tlsca.cert.pem().as_bytes())?;
        write(&tls_dir.join(format!("{prefix}.crt")), cert.as_bytes())?;
        write_key(&tls_dir.join(format!("{prefix}.key")), &key)
    }

    /// A leaf certificate signed by `ca`: (certificate PEM, PKCS#8 key PEM).
    fn leaf(
        &self,
        ca: &Ca,
        cn: &str,
        ou: Option<&str>,
        sans: &[&str],
        tls: bool,
    ) -> Result<(String, String)> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = base_params(self.not_before, &key);
        let mut dn = locality_dn();
        if let Some(ou) = ou {
            dn.push(DnType::OrganizationalUnitName, ou);
        }
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        if tls {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.subject_alt_names = sans
                .iter()
                .map(|s| match s.parse() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => Ok(SanType::DnsName((*s).try_into()?)),
                })
                .collect::<Result<_, rcgen::Error>>()?;
        } else {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        }
        let cert = params
            .signed_by(&key, &ca.cert, &ca.key)
            .with_context(|| format!("signing the certificate of {cn} ({})", self.domain))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn new_ca(cn: &str, org: &str, not_before: OffsetDateTime) -> Result<Ca> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = base_params(not_before, &key);
    let mut dn = locality_dn();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params
        .self_signed(&key)
        .with_context(|| format!("self-signing the CA {cn}"))?;
    Ok(Ca {
        cert,
        key,
        file_name: format!("{cn}-cert.pem"),
    })
}

/// Validity (10 years, as cryptogen), a random 128-bit serial, and cryptogen's key
/// identifier: SHA-256 of the uncompressed public point.
fn base_params(not_before: OffsetDateTime, key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(3650);
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01; // positive and of a fixed length
    params.serial_number = Some(SerialNumber::from(serial.to_vec()));
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(Sha256::digest(key.public_key_raw()).to_vec());
    params
}

/// C=US, ST=California, L=San Francisco: cryptogen's fixed subject prefix.
fn locality_dn() -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "California");
    dn.push(DnType::LocalityName, "San Francisco");
    dn
}

/// The `config.yaml` cryptogen writes with `EnableNodeOUs: true`.
pub fn node_ous_config_yaml(ca_file_name: &str) -> String {
    let mut yaml = String::from("NodeOUs:\n  Enable: true\n");
    for (key, ou) in [
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ] {
        yaml.push_str(&format!(
            "  {key}:\n    Certificate: cacerts/{ca_file_name}\n    OrganizationalUnitIdentifier: {ou}\n"
        ));
    }
    yaml
}

fn write(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// A private key file, readable by its owner only (cryptogen writes 0600).
fn write_key(path: &Path, pem: &str) -> Result<()> {
    write(path, pem.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}
