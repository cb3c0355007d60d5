//! TLS end to end with cryptogen's certificates: Broadcast and Deliver over TLS 1.2 and
//! 1.3, mutual TLS refusing clients at the handshake (no certificate, another CA, an
//! expired certificate), trusting the TLS CAs of the channels' orgs as Fabric does,
//! Fabric's Deliver TLS binding, the admin listener's mutual TLS, and our CLI's TLS
//! flags.

use crate::common::*;
use fabric_protos::common::{HeaderType, Status};
use fabric_protos::orderer::SeekInfo;
use fabric_protos::orderer::seek_info::SeekBehavior;
use orderer::comm::ClientTls;
use orderer::identity::Signer;
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const CH: &str = "mychannel";
const ORDERER_TLS: &str = "ordererOrganizations/example.com/orderers/orderer0.example.com/tls";
const ORG1_TLS_CA: &str =
    "peerOrganizations/org1.example.com/tlsca/tlsca.org1.example.com-cert.pem";
const USER1_TLS: &str = "peerOrganizations/org1.example.com/users/User1@org1.example.com/tls";
const ORDERER_TLS_CA: &str = "ordererOrganizations/example.com/tlsca/tlsca.example.com-cert.pem";
const ADMIN_TLS: &str = "ordererOrganizations/example.com/users/Admin@example.com/tls";

fn crypto(path: &str) -> String {
    fixture_msp(path).to_str().unwrap().to_string()
}

pub fn server_file(name: &str) -> String {
    crypto(&format!("{ORDERER_TLS}/{name}"))
}

/// General.TLS on, with orderer0's server certificate.
pub fn tls_env() -> Vec<(&'static str, String)> {
    vec![
        ("ORDERER_GENERAL_TLS_ENABLED", "true".into()),
        ("ORDERER_GENERAL_TLS_CERTIFICATE", server_file("server.crt")),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", server_file("server.key")),
    ]
}

/// orderer0 on the fixture `mychannel`, with `env`.
fn fixture_with(dir: &Path, env: &[(&str, String)]) -> Orderer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Orderer::fixture_on(dir, &fixture_msp(ORDERER0_MSP), &[], &env)
}

/// Trusts orderer0's TLS CA; presents `identity` (certificate, key) if given.
pub fn client_tls(identity: Option<(&Path, &Path)>) -> ClientTls {
    ClientTls::from_files(Path::new(&server_file("ca.crt")), identity, None).unwrap()
}

fn user1_tls() -> ClientTls {
    let dir = fixture_msp(USER1_TLS);
    client_tls(Some((&dir.join("client.crt"), &dir.join("client.key"))))
}

/// Waits until the orderer has logged `needle` `times` times.
pub async fn logged(orderer: &Orderer, needle: &str, times: usize) -> String {
    for _ in 0..100 {
        let log = orderer.log();
        if log.matches(needle).count() >= times {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} not logged {times} time(s):\n{}", orderer.log());
}

/// One Broadcast over a connection made with `tls`: its status, or the error text.
async fn try_broadcast(orderer: &Orderer, tls: Option<ClientTls>) -> Result<i32, String> {
    let mut client = orderer
        .try_client(tls)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let envelope = tx(&user1(), CH, 10, 0);
    let mut answers = client
        .broadcast(tokio_stream::iter(vec![envelope]))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    match answers.message().await {
        Ok(Some(answer)) => Ok(answer.status),
        Ok(None) => Err("no answer".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A raw handshake offering only `version`: what was negotiated.
async fn handshake(
    addr: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> (String, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(server_file("ca.crt")).unwrap();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let conn = tls.get_ref().1;
    (
        format!("{:?}", conn.protocol_version().unwrap()),
        conn.alpn_protocol().unwrap_or_default().to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_and_deliver_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut orderer = fixture_with(dir.path(), &tls_env());
    orderer.tls = Some(client_tls(None));
    let user = user1();

    for (version, name) in [
        (&rustls::version::TLS12, "TLSv1_2"),
        (&rustls::version::TLS13, "TLSv1_3"),
    ] {
        assert_eq!(
            handshake(&orderer.addr, version).await,
            (name.into(), b"h2".to_vec())
        );
    }
    assert!(
        try_broadcast(&orderer, None).await.is_err(),
        "plaintext is not spoken on a TLS listener"
    );

    let sent = (0..3).map(|i| tx(&user, CH, 100, i)).collect();
    let answers = broadcast(&orderer, sent).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32; 3]);
    let blocks = wait_blocks(&orderer, &user, CH, 0, 1, Duration::from_secs(10)).await;
    assert_eq!(tx_count(&blocks[1]), 3);

    // The CLI: --tls-ca (the server's certificate names 127.0.0.1), and
    // --tls-server-name for a name the certificate carries.
    let user_msp = fixture_msp(USER1_MSP);
    let ca = server_file("ca.crt");
    for extra in [&[][..], &["--tls-server-name", "orderer0.example.com"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
            .args(["deliver", "--orderer", &orderer.addr, "--channel", CH])
            .args([
                "--msp-id",
                "Org1MSP",
                "--msp-dir",
                user_msp.to_str().unwrap(),
            ])
            .args(["--tls-ca", &ca])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("block 1 txs=3"), "{stdout}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args([
            "broadcast",
            "--orderer",
            &orderer.addr,
            "--channel",
            CH,
            "-n",
            "20",
        ])
        .args([
            "--msp-id",
            "Org1MSP",
            "--msp-dir",
            user_msp.to_str().unwrap(),
        ])
        .args(["--tls-ca", &ca, "--tls-server-name", "wrong.example.com"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a name the certificate does not carry"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args([
            "broadcast",
            "--orderer",
            &orderer.addr,
            "--channel",
            CH,
            "-n",
            "20",
        ])
        .args([
            "--msp-id",
            "Org1MSP",
            "--msp-dir",
            user_msp.to_str().unwrap(),
        ])
        .args(["--tls-ca", &ca])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("SUCCESS=20"),
        "{stdout}"
    );
}

/// A CA made here, and certificates it issues, as PEM files in `dir`.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
        TestCa { cert, key, dir }
    }

    fn ca_file(&self) -> String {
        self.dir.join("ca.crt").to_str().unwrap().into()
    }

    /// A client certificate valid from `from` to `until` (years): (cert, key) files.
    fn client(&self, name: &str, from: i32, until: i32) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(until, 1, 1);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let (cert_file, key_file) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

fn bound_seek(signer: &Signer, hash: &[u8]) -> fabric_protos::common::Envelope {
    let seek = SeekInfo {
        start: Some(oldest()),
        stop: Some(specified(0)),
        behavior: SeekBehavior::FailIfNotReady as i32,
        ..Default::default()
    };
    signer.signed_envelope_with_tls_binding(
        HeaderType::DeliverSeekInfo,
        CH,
        seek.encode_to_vec().into(),
        SystemTime::now(),
        hash,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_refuses_clients_at_the_handshake_and_binds_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = TestCa::new(dir.path(), "trusted-ca");
    let other = TestCa::new(dir.path(), "other-ca");
    let mut env = tls_env();
    env.push(("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true".into()));
    let roots = format!("[{}, {}]", crypto(ORG1_TLS_CA), trusted.ca_file());
    env.push(("ORDERER_GENERAL_TLS_CLIENTROOTCAS", roots));
    let mut orderer = fixture_with(&dir.path().join("orderer"), &env);
    orderer.tls = Some(user1_tls());

    const REFUSED: &str = "client listener: TLS handshake with 127.0.0.1:";
    let good = trusted.client("good", 2020, 2100);
    assert_eq!(
        try_broadcast(&orderer, Some(client_tls(Some((&good.0, &good.1))))).await,
        Ok(Status::Success as i32),
        "a certificate of a trusted CA"
    );
    let expired = trusted.client("expired", 2020, 2021);
    let foreign = other.client("foreign", 2020, 2100);
    let cases = [
        ("no client certificate", client_tls(None)),
        ("another CA", client_tls(Some((&foreign.0, &foreign.1)))),
        ("expired", client_tls(Some((&expired.0, &expired.1)))),
    ];
    for (n, (case, tls)) in cases.into_iter().enumerate() {
        let result = try_broadcast(&orderer, Some(tls)).await;
        assert!(result.is_err(), "{case}: {result:?}");
        logged(&orderer, REFUSED, n + 1).await;
    }
    let log = orderer.log();
    for reason in [
        "peer sent no certificates",
        "UnknownIssuer",
        "certificate expired",
    ] {
        assert!(log.contains(reason), "{reason}:\n{log}");
    }

    // Deliver under mutual TLS: the channel header must carry the client
    // certificate's hash (Fabric's BindingInspector), else BAD_REQUEST.
    let user = user1();
    let hash = user1_tls().cert_hash().unwrap();
    let (blocks, status) = deliver(&orderer, bound_seek(&user, &hash)).await;
    assert_eq!((blocks.len(), status), (1, Some(Status::Success)));
    let (blocks, status) = deliver(&orderer, bound_seek(&user, &[])).await;
    assert_eq!((blocks.len(), status), (0, Some(Status::BadRequest)));
    logged(&orderer, "client didn't include its TLS cert hash", 1).await;
    let (_, status) = deliver(&orderer, bound_seek(&user, &[7; 32])).await;
    assert_eq!(status, Some(Status::BadRequest));
    logged(&orderer, "claimed TLS cert hash is [7 7 7", 1).await;
    // Broadcast has no binding in Fabric.
    assert_eq!(
        statuses(&broadcast(&orderer, vec![tx(&user, CH, 10, 1)]).await),
        vec![200]
    );

    // Our CLI binds its Deliver requests itself.
    let user_tls = fixture_msp(USER1_TLS);
    let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args([
            "deliver",
            "--orderer",
            &orderer.addr,
            "--channel",
            CH,
            "--stop",
            "0",
        ])
        .args([
            "--msp-id",
            "Org1MSP",
            "--msp-dir",
            fixture_msp(USER1_MSP).to_str().unwrap(),
        ])
        .args(["--tls-ca", &server_file("ca.crt")])
        .args(["--tls-cert", user_tls.join("client.crt").to_str().unwrap()])
        .args(["--tls-key", user_tls.join("client.key").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("status SUCCESS (200)"), "{stdout}");
}

/// `orderer core ...` against `admin`, with `tls` flags.
fn core_cli(admin: &str, command: &[&str], tls: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orderer"))
        .arg("core")
        .args(command)
        .args(["--admin", admin, "--channel", CH])
        .args(tls)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = tls_env();
    env.extend([
        ("ORDERER_ADMIN_TLS_ENABLED", "true".into()),
        ("ORDERER_ADMIN_TLS_CERTIFICATE", server_file("server.crt")),
        ("ORDERER_ADMIN_TLS_PRIVATEKEY", server_file("server.key")),
        ("ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED", "true".into()),
        ("ORDERER_ADMIN_TLS_CLIENTROOTCAS", crypto(ORDERER_TLS_CA)),
    ]);
    let orderer = fixture_with(dir.path(), &env);
    let ca = server_file("ca.crt");
    let admin_tls = fixture_msp(ADMIN_TLS);
    let (cert, key) = (admin_tls.join("client.crt"), admin_tls.join("client.key"));
    let with_cert = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];

    let out = core_cli(&orderer.admin, &["status"], &with_cert);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["sha256"].as_str().is_some_and(|s| s.len() == 64),
        "{status}"
    );

    // A swap without a client certificate, or without TLS: refused, and logged
    // with the client's address.
    let wasm = dir.path().join("core.wasm");
    std::fs::write(&wasm, orderer::component::BUILTIN_CORE).unwrap();
    let load = ["load", wasm.to_str().unwrap()];
    let out = core_cli(&orderer.admin, &load, &["--tls-ca", &ca]);
    assert!(!out.status.success());
    logged(&orderer, "admin listener: TLS handshake with 127.0.0.1:", 1).await;
    assert!(!core_cli(&orderer.admin, &load, &[]).status.success());
    // A client certificate of another organization's TLS CA (Org1's User1).
    let user_tls = fixture_msp(USER1_TLS);
    let user_cert = user_tls.join("client.crt");
    let user_key = user_tls.join("client.key");
    let user = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        user_cert.to_str().unwrap(),
        "--tls-key",
        user_key.to_str().unwrap(),
    ];
    assert!(!core_cli(&orderer.admin, &load, &user).status.success());
    logged(&orderer, "admin listener: TLS handshake with 127.0.0.1:", 3).await;
    let out = core_cli(&orderer.admin, &["status"], &with_cert);
    let after: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(after["since"], status["since"], "no swap happened");

    // The admin's swap: done, and logged with who did it.
    let out = core_cli(&orderer.admin, &load, &with_cert);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = format!("audit: PUT /core/v1/channels/{CH} by CN=Admin@example.com,");
    let log = logged(&orderer, &audit, 1).await;
    let line = log.lines().find(|l| l.contains(&audit)).unwrap();
    assert!(
        line.contains(" from 127.0.0.1:") && line.ends_with(": 200"),
        "{line}"
    );
    assert!(!log.contains("audit: GET"), "reads are not audited");
}

/// Runs a start that must fail; its stderr.
pub fn start_error(mut command: Command) -> String {
    let out = command
        .env_remove("FABRIC_CFG_PATH")
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A dev-default start with an admin listener on every interface, and `extra`.
fn start_on_all_interfaces(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderer"));
    command
        .args([
            "start",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
            "--operations-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env_remove("FABRIC_CFG_PATH");
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_admin_listener_needs_tls_or_an_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_error(start_on_all_interfaces(dir.path(), &[]));
    assert!(
        err.contains("Admin.ListenAddress 0.0.0.0:") && err.contains("--admin-insecure"),
        "{err}"
    );
    let command = start_on_all_interfaces(dir.path(), &["--admin-insecure"]);
    let orderer = Orderer::run(command, dir.path());
    assert!(orderer.admin.starts_with("0.0.0.0:"), "{}", orderer.admin);
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_trusts_the_tls_cas_of_the_channels_orgs() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = tls_env();
    env.push(("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true".into()));
    // Only the orderer org's TLS CA: Org1's comes from mychannel's config, as in Fabric.
    let roots = format!("[{}]", crypto(ORDERER_TLS_CA));
    env.push(("ORDERER_GENERAL_TLS_CLIENTROOTCAS", roots));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let msp = fixture_msp(ORDERER0_MSP);
    let flags = ["--msp-dir", msp.to_str().unwrap(), "--msp-id", "OrdererMSP"];
    let orderer = Orderer::spawn_with_env(&dir.path().join("orderer"), &flags, &env);

    let before = try_broadcast(&orderer, Some(user1_tls())).await;
    assert!(before.is_err(), "Org1 is in no channel yet: {before:?}");
    let genesis = fabric().join("blocks/mychannel-etcdraft-genesis.block");
    let join = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args([
            "channel",
            "join",
            "--admin",
            &orderer.admin,
            "--config-block",
        ])
        .arg(&genesis)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&join.stdout).starts_with("Status: 201"),
        "{join:?}"
    );
    assert_eq!(
        try_broadcast(&orderer, Some(user1_tls())).await,
        Ok(Status::Success as i32),
        "Org1's User1 without Org1's TLS CA in ClientRootCAs"
    );

    let self_signed = rcgen::generate_simple_self_signed(vec!["user1".into()]).unwrap();
    let (cert, key) = (dir.path().join("self.crt"), dir.path().join("self.key"));
    std::fs::write(&cert, self_signed.cert.pem()).unwrap();
    std::fs::write(&key, self_signed.key_pair.serialize_pem()).unwrap();
    let refused = try_broadcast(&orderer, Some(client_tls(Some((&cert, &key))))).await;
    assert!(refused.is_err(), "a self-signed certificate: {refused:?}");
    let log = logged(
        &orderer,
        "client listener: TLS handshake with 127.0.0.1:",
        2,
    )
    .await;
    assert!(log.contains("UnknownIssuer"), "{log}");
}

/// As ssh: the orderer warns at start about private keys others may read (its MSP
/// keystore's, its TLS key), and says nothing about keys only their owner can read.
#[tokio::test(flavor = "multi_thread")]
async fn private_keys_open_to_others_are_warned_about_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let msp = dir.path().join("msp");
    copy_tree(&fixture_msp(ORDERER0_MSP), &msp);
    let key = dir.path().join("server.key");
    std::fs::copy(server_file("server.key"), &key).unwrap();
    let keystore_key = msp.join("keystore/priv_sk");
    let start = |mode: u32, data: &str| {
        for file in [&key, &keystore_key] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let env = [
            ("ORDERER_GENERAL_TLS_ENABLED", "true"),
            (
                "ORDERER_GENERAL_TLS_CERTIFICATE",
                &server_file("server.crt"),
            ),
            ("ORDERER_GENERAL_TLS_PRIVATEKEY", key.to_str().unwrap()),
        ];
        Orderer::fixture_on(&dir.path().join(data), &msp, &[], &env)
    };
    let open = start(0o644, "open");
    let log = open.log();
    let warned = |setting: &str, path: &Path| {
        let warning = format!(
            "{setting} {}: permissions 0644 are too open",
            path.display()
        );
        log.contains(&warning)
    };
    assert!(warned("General.TLS.PrivateKey", &key), "{log}");
    assert!(
        warned("General.LocalMSPDir keystore", &keystore_key),
        "{log}"
    );
    drop(open);
    let closed = start(0o600, "closed");
    assert!(!closed.log().contains("too open"), "{}", closed.log());
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
