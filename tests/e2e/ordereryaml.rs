//! orderer.yaml end to end: a file of ours with environment overrides, and Fabric's
//! own sample file with a test-network orderer's environment, unchanged.

use crate::common::*;
use crate::tls::{client_tls, logged, server_file, start_error};
use fabric_protos::common::Status;
use std::process::Command;

fn free_port() -> u16 {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn orderer_yaml_with_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let yaml = format!(
        "General:
  ListenAddress: 127.0.0.1
  ListenPort: 7050
  BootstrapMethod: none
  LocalMSPDir: {msp}
  LocalMSPID: OrdererMSP
  TLS:
    Enabled: false
    Certificate: {cert}
    PrivateKey: {key}
  Cluster:
    ListenPort: 7051
FileLedger:
  Location: file-ledger
Admin:
  ListenAddress: 127.0.0.1:0
Operations:
  ListenAddress: 127.0.0.1:0
",
        msp = fixture_msp(ORDERER0_MSP).display(),
        cert = server_file("server.crt"),
        key = server_file("server.key"),
    );
    let file = dir.path().join("orderer.yaml");
    std::fs::write(&file, yaml).unwrap();
    let ledger = dir.path().join("env-ledger");
    let genesis = fabric().join("blocks/mychannel-etcdraft-genesis.block");
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderer"));
    command
        .args(["start", "--config", file.to_str().unwrap()])
        .args(["--genesis-block", genesis.to_str().unwrap()])
        .env("ORDERER_GENERAL_LISTENPORT", port.to_string())
        .env("ORDERER_GENERAL_TLS_ENABLED", "true")
        .env("ORDERER_FILELEDGER_LOCATION", &ledger);
    let mut orderer = Orderer::run(command, dir.path());
    assert_eq!(orderer.addr, format!("127.0.0.1:{port}"));
    assert!(
        ledger.join("chains/mychannel").is_dir(),
        "the environment's ledger"
    );
    assert!(!dir.path().join("file-ledger").exists());
    logged(
        &orderer,
        "not implemented, ignored: General.Cluster.ListenPort\n",
        1,
    )
    .await;
    orderer.tls = Some(client_tls(None));
    let answers = broadcast(&orderer, vec![tx(&user1(), "mychannel", 10, 0)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);

    // A malformed value: one line naming the file (or variable), the key and the
    // problem.
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderer"));
    command
        .args(["start", "--config", file.to_str().unwrap()])
        .env("ORDERER_GENERAL_LISTENPORT", "seventy");
    let err = start_error(command);
    assert_eq!(
        err.trim(),
        "error: ORDERER_GENERAL_LISTENPORT: expected an integer, got \"seventy\""
    );
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &bad,
        text.replace("ListenPort: 7050", "ListenPort: seventy"),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderer"));
    command.args(["start", "--config", bad.to_str().unwrap()]);
    let err = start_error(command);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}: General.ListenPort:", bad.display())),
        "{err}"
    );
}

/// Fabric v2.5.12's sampleconfig/orderer.yaml (from the Fabric build `FABRIC_REF`
/// names: Fabric's source is not part of this repository), found through
/// FABRIC_CFG_PATH, with the environment test-network's compose file gives
/// orderer.example.com (paths and addresses moved to the fixtures and this machine).
#[tokio::test(flavor = "multi_thread")]
async fn fabric_sample_orderer_yaml_with_a_test_network_environment() {
    let Some(fabric_ref) = std::env::var_os("FABRIC_REF") else {
        eprintln!(
            "skipped: FABRIC_REF is not set (Fabric's sampleconfig/orderer.yaml comes from its build)"
        );
        return;
    };
    let sampleconfig = std::path::Path::new(&fabric_ref).join("src/sampleconfig");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tls = |name: &str| server_file(name);
    let msp = fixture_msp(ORDERER0_MSP);
    let env = [
        ("FABRIC_CFG_PATH", sampleconfig.display().to_string()),
        ("FABRIC_LOGGING_SPEC", "INFO".into()),
        ("ORDERER_GENERAL_LISTENADDRESS", "127.0.0.1".into()),
        ("ORDERER_GENERAL_LISTENPORT", port.to_string()),
        ("ORDERER_GENERAL_LOCALMSPID", "OrdererMSP".into()),
        ("ORDERER_GENERAL_LOCALMSPDIR", msp.display().to_string()),
        ("ORDERER_GENERAL_TLS_ENABLED", "true".into()),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", tls("server.key")),
        ("ORDERER_GENERAL_TLS_CERTIFICATE", tls("server.crt")),
        (
            "ORDERER_GENERAL_TLS_ROOTCAS",
            format!("[{}]", tls("ca.crt")),
        ),
        (
            "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE",
            tls("server.crt"),
        ),
        (
            "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY",
            tls("server.key"),
        ),
        (
            "ORDERER_GENERAL_CLUSTER_ROOTCAS",
            format!("[{}]", tls("ca.crt")),
        ),
        ("ORDERER_GENERAL_BOOTSTRAPMETHOD", "none".into()),
        ("ORDERER_CHANNELPARTICIPATION_ENABLED", "true".into()),
        ("ORDERER_ADMIN_TLS_ENABLED", "true".into()),
        ("ORDERER_ADMIN_TLS_CERTIFICATE", tls("server.crt")),
        ("ORDERER_ADMIN_TLS_PRIVATEKEY", tls("server.key")),
        ("ORDERER_ADMIN_TLS_ROOTCAS", format!("[{}]", tls("ca.crt"))),
        (
            "ORDERER_ADMIN_TLS_CLIENTROOTCAS",
            format!("[{}]", tls("ca.crt")),
        ),
        ("ORDERER_ADMIN_LISTENADDRESS", "127.0.0.1:0".into()),
        ("ORDERER_OPERATIONS_LISTENADDRESS", "127.0.0.1:0".into()),
        ("ORDERER_METRICS_PROVIDER", "prometheus".into()),
        (
            "ORDERER_FILELEDGER_LOCATION",
            dir.path().join("ledger").display().to_string(),
        ),
    ];
    let genesis = fabric().join("blocks/mychannel-etcdraft-genesis.block");
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderer"));
    command
        .args(["start", "--genesis-block", genesis.to_str().unwrap()])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut orderer = Orderer::run(command, dir.path());
    assert_eq!(orderer.addr, format!("127.0.0.1:{port}"));
    let log = logged(&orderer, "not implemented, ignored: ", 1).await;
    let warning = log.lines().find(|l| l.contains("not implemented")).unwrap();
    for key in [
        "General.TLS.RootCAs (ORDERER_GENERAL_TLS_ROOTCAS)",
        "General.Cluster.ClientCertificate (ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE)",
    ] {
        assert!(warning.contains(key), "{key}: {warning}");
    }
    for implemented in ["ChannelParticipation", "Operations", "Metrics.Provider"] {
        assert!(!warning.contains(implemented), "{implemented}: {warning}");
    }
    assert_eq!(
        log.matches("not implemented, ignored").count(),
        1,
        "one warning"
    );
    orderer.tls = Some(client_tls(None));
    let answers = broadcast(&orderer, vec![tx(&user1(), "mychannel", 10, 0)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
}
