use super::tls::*;
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        client_auth_optional: false,
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

/// Channels whose TLS CAs are those of a config block, changed by the test.
struct FakeChannels(std::sync::Mutex<Vec<(String, u64, Vec<u8>)>>);

impl super::ChannelRoots for FakeChannels {
    fn stamp(&self) -> Vec<(String, u64)> {
        let channels = self.0.lock().unwrap();
        channels.iter().map(|(n, s, _)| (n.clone(), *s)).collect()
    }
    fn roots(&self) -> Vec<CertificateDer<'static>> {
        let channels = self.0.lock().unwrap();
        channels
            .iter()
            .flat_map(|(_, _, block)| super::trust::config_block_tls_cas(block))
            .collect()
    }
}

fn peer_org(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fabric/crypto/peerOrganizations/org1.example.com")
        .join(path)
}

#[test]
fn a_config_block_gives_every_orgs_tls_ca() {
    let block = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/fabric/blocks/mychannel-etcdraft-genesis.block"),
    )
    .unwrap();
    let cas = super::trust::config_block_tls_cas(&block);
    let org1 = certificates("ca", &peer_org("tlsca/tlsca.org1.example.com-cert.pem")).unwrap();
    let orderer = certificates("ca", &fixture(&format!("{SERVER}/ca.crt"))).unwrap();
    assert!(
        cas.contains(&org1[0]),
        "Org1's TLS CA among {} CAs",
        cas.len()
    );
    assert!(cas.contains(&orderer[0]), "the orderer org's TLS CA");
}

#[test]
fn client_certificates_chain_to_a_channels_tls_ca_as_the_roots_follow_the_channels() {
    use rustls::server::danger::ClientCertVerifier;
    let genesis = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/fabric/blocks/mychannel-etcdraft-genesis.block"),
    )
    .unwrap();
    let channels = Arc::new(FakeChannels(Default::default()));
    // ClientRootCAs: only the orderer org's TLS CA.
    let configured = certificates("ca", &fixture(&format!("{SERVER}/ca.crt"))).unwrap();
    let verifier = super::trust::ChannelClientVerifier::new(
        configured,
        channels.clone(),
        super::tls::provider(),
    );
    let user1 = certificates(
        "c",
        &peer_org("users/User1@org1.example.com/tls/client.crt"),
    )
    .unwrap();
    let admin = certificates("c", &fixture("users/Admin@example.com/tls/client.crt")).unwrap();
    let now = rustls_pki_types::UnixTime::now();

    assert!(
        verifier.verify_client_cert(&admin[0], &[], now).is_ok(),
        "ClientRootCAs"
    );
    assert!(
        verifier.verify_client_cert(&user1[0], &[], now).is_err(),
        "Org1 is in no channel yet"
    );
    channels
        .0
        .lock()
        .unwrap()
        .push(("mychannel".into(), 0, genesis));
    assert!(
        verifier.verify_client_cert(&user1[0], &[], now).is_ok(),
        "Org1's TLS CA, from the channel's config"
    );
    let self_signed = rcgen::generate_simple_self_signed(vec!["user1".into()]).unwrap();
    assert!(
        verifier
            .verify_client_cert(self_signed.cert.der(), &[], now)
            .is_err()
    );
    channels.0.lock().unwrap().clear();
    assert!(
        verifier.verify_client_cert(&user1[0], &[], now).is_err(),
        "the channel was removed"
    );
}

#[test]
fn with_the_channels_cas_client_root_cas_may_be_empty() {
    let tls = files(
        fixture(&format!("{SERVER}/server.crt")),
        fixture(&format!("{SERVER}/server.key")),
        Some(vec![]),
    );
    let channels: Arc<dyn super::ChannelRoots> = Arc::new(super::trust::NoChannels);
    assert!(tls.server_config_with(&[b"h2"], Some(channels)).is_ok());
}
