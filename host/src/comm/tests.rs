use super::tls::*;
use std::path::{Path, PathBuf};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fabric/crypto/ordererOrganizations/example.com")
        .join(path)
}

fn files(cert: PathBuf, key: PathBuf, client_root_cas: Option<Vec<PathBuf>>) -> ServerTlsFiles {
    ServerTlsFiles {
        section: "General.TLS".into(),
        certificate: cert,
        private_key: key,
        client_root_cas,
    }
}

const SERVER: &str = "orderers/orderer0.example.com/tls";

#[test]
fn cryptogen_certificates_make_a_server_config() {
    let tls = files(
        fixture(&format!("{SERVER}/server.crt")),
        fixture(&format!("{SERVER}/server.key")),
        Some(vec![fixture(&format!("{SERVER}/ca.crt"))]),
    );
    let config = tls.server_config(&[b"h2"]).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
}

#[test]
fn errors_name_the_setting_the_file_and_the_problem() {
    let cert = fixture(&format!("{SERVER}/server.crt"));
    let key = fixture(&format!("{SERVER}/server.key"));
    let err = |tls: ServerTlsFiles| tls.server_config(&[b"h2"]).unwrap_err().to_string();

    assert_eq!(
        err(files(cert.clone(), cert.clone(), None)),
        format!(
            "General.TLS.PrivateKey {}: no private key found",
            cert.display()
        )
    );
    assert_eq!(
        err(files(key.clone(), key.clone(), None)),
        format!(
            "General.TLS.Certificate {}: no certificate found",
            key.display()
        )
    );
    let missing = PathBuf::from("/nonexistent/server.crt");
    assert_eq!(
        err(files(missing.clone(), key.clone(), None)),
        "General.TLS.Certificate /nonexistent/server.crt: No such file or directory (os error 2)"
    );
    // Another key than the certificate's.
    let other = fixture("users/Admin@example.com/tls/client.key");
    assert!(
        err(files(cert.clone(), other.clone(), None)).starts_with(&format!(
            "General.TLS.PrivateKey {}: does not fit",
            other.display()
        )),
    );
    assert_eq!(
        err(files(cert.clone(), key.clone(), Some(vec![]))),
        "General.TLS.ClientRootCAs: no CA given, but General.TLS.ClientAuthRequired is true: no client could connect"
    );
    assert_eq!(
        err(files(cert.clone(), key.clone(), Some(vec![key.clone()]))),
        format!(
            "General.TLS.ClientRootCAs {}: no certificate found",
            key.display()
        )
    );
}

#[test]
fn the_client_config_hashes_its_certificate_as_fabric() {
    let dir = fixture("users/Admin@example.com/tls");
    let tls = ClientTls::from_files(
        &dir.join("ca.crt"),
        Some((&dir.join("client.crt"), &dir.join("client.key"))),
        Some("orderer0.example.com"),
    )
    .unwrap();
    let der = certificates("--tls-cert", &dir.join("client.crt")).unwrap();
    assert_eq!(tls.cert_hash(), Some(cert_hash(&der[0])));
    let err = ClientTls::from_files(&dir.join("ca.crt"), None, Some("not a name!"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("--tls-server-name: \"not a name!\""),
        "{err}"
    );
}
