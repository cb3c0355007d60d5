use super::*;
use clap::Parser;
use std::collections::HashMap;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    start: StartArgs,
}

fn args(flags: &[&str]) -> StartArgs {
    let argv = std::iter::once("orderer").chain(flags.iter().copied());
    Cli::try_parse_from(argv).unwrap().start
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

/// `yaml` as orderer.yaml in a fresh folder, given to `--config` after `flags`.
fn with_file(
    yaml: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Result<Settings, SettingsError>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orderer.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut all = flags.to_vec();
    let file_arg = file.to_str().unwrap().to_string();
    all.extend(["--config", &file_arg]);
    let settings = args(&all).settings(&env_of(env));
    (dir, settings)
}

/// No file anywhere Fabric looks: `FABRIC_CFG_PATH` points at an empty folder and
/// the test runs in the package folder, which has no orderer.yaml.
fn without_file(flags: &[&str], env: &[(&str, &str)]) -> Settings {
    let empty = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    let cfg = empty.path().to_str().unwrap().to_string();
    env.push(("FABRIC_CFG_PATH", &cfg));
    args(flags).settings(&env_of(&env)).unwrap()
}

const YAML: &str = "
General:
  ListenAddress: 0.0.0.0
  ListenPort: 7150
  BootstrapMethod: none
  LocalMSPDir: msp
  LocalMSPID: FileMSP
  TLS:
    Enabled: true
    Certificate: tls/server.crt
    PrivateKey: tls/server.key
    ClientAuthRequired: true
    ClientRootCAs: [tls/ca.crt]
  Cluster:
    ListenPort: 7051
FileLedger:
  Location: ledger
Admin:
  ListenAddress: 127.0.0.1:7153
Operations:
  ListenAddress: 127.0.0.1:9444
";

#[test]
fn no_file_no_flags_is_the_dev_default() {
    let s = without_file(&[], &[]);
    assert_eq!(s.file, None);
    assert_eq!(s.listen, "127.0.0.1:7050");
    assert_eq!(s.data_dir, PathBuf::from("./orderer-data"));
    assert_eq!(s.msp, None, "the dev default generates the MSP");
    assert_eq!(s.admin_listen, "127.0.0.1:9443");
    assert_eq!((s.tls, s.admin_tls), (None, None));
    assert!(s.unimplemented.is_empty(), "{:?}", s.unimplemented);
    let s = without_file(&[], &[("ORDERER_METRICS_PROVIDER", "statsd")]);
    assert_eq!(
        s.unimplemented,
        ["Metrics.Provider statsd (ORDERER_METRICS_PROVIDER; metrics disabled)"]
    );
}

#[test]
fn no_file_the_environment_sets_keys() {
    let s = without_file(
        &[],
        &[
            ("ORDERER_GENERAL_LISTENPORT", "7999"),
            ("ORDERER_FILELEDGER_LOCATION", "/tmp/ledger"),
            ("ORDERER_ADMIN_LISTENADDRESS", "127.0.0.1:0"),
            ("ORDERER_GENERAL_CLUSTER_LISTENPORT", "7051"),
        ],
    );
    assert_eq!(s.listen, "127.0.0.1:7999");
    assert_eq!(s.data_dir, PathBuf::from("/tmp/ledger"));
    assert_eq!(s.admin_listen, "127.0.0.1:0");
    assert_eq!(s.msp, None);
    assert_eq!(
        s.unimplemented,
        vec!["General.Cluster.ListenPort (ORDERER_GENERAL_CLUSTER_LISTENPORT)"]
    );
}

#[test]
fn the_file_gives_values_with_paths_against_its_folder() {
    let (dir, s) = with_file(YAML, &[], &[]);
    let s = s.unwrap();
    let d = dir.path();
    assert_eq!(s.file, Some(d.join("orderer.yaml")));
    assert_eq!(s.listen, "0.0.0.0:7150");
    assert_eq!(s.data_dir, d.join("ledger"));
    assert_eq!(s.msp, Some((d.join("msp"), "FileMSP".into())));
    assert_eq!(s.admin_listen, "127.0.0.1:7153");
    assert_eq!(
        s.tls,
        Some(ServerTlsFiles {
            section: "General.TLS".into(),
            certificate: d.join("tls/server.crt"),
            private_key: d.join("tls/server.key"),
            client_root_cas: Some(vec![d.join("tls/ca.crt")]),
            client_auth_optional: false,
        })
    );
    assert_eq!(
        s.unimplemented,
        vec!["General.Cluster.ListenPort"],
        "named once, at start"
    );
    assert_eq!(s.operations_listen, "127.0.0.1:9444");
    // Keys the file does not have take Go's zero values, as in Fabric.
    assert_eq!(s.metrics_provider, "");
    assert!(!s.participation_enabled);
    assert_eq!(s.max_request_body_size, 0);
}

#[test]
fn operations_metrics_and_participation_without_a_file() {
    let s = without_file(&[], &[]);
    assert_eq!(s.operations_listen, "127.0.0.1:8443");
    assert_eq!(s.operations_tls, None);
    assert_eq!(s.metrics_provider, "prometheus");
    assert!(s.participation_enabled);
    assert_eq!(s.max_request_body_size, 1024 * 1024);
    let s = without_file(
        &["--operations-listen", "127.0.0.1:0"],
        &[
            ("ORDERER_OPERATIONS_LISTENADDRESS", "127.0.0.1:7443"),
            ("ORDERER_METRICS_PROVIDER", "disabled"),
            ("ORDERER_CHANNELPARTICIPATION_ENABLED", "false"),
            ("ORDERER_CHANNELPARTICIPATION_MAXREQUESTBODYSIZE", "2 MB"),
        ],
    );
    assert_eq!(s.operations_listen, "127.0.0.1:0", "the flag wins");
    assert_eq!(s.metrics_provider, "disabled");
    assert!(!s.participation_enabled);
    assert_eq!(s.max_request_body_size, 2 * 1024 * 1024);
    assert!(s.unimplemented.is_empty(), "{:?}", s.unimplemented);
}

#[test]
fn operations_tls_verifies_client_certificates_if_given() {
    let env = [
        ("ORDERER_OPERATIONS_TLS_ENABLED", "true"),
        ("ORDERER_OPERATIONS_TLS_CERTIFICATE", "/c.crt"),
        ("ORDERER_OPERATIONS_TLS_PRIVATEKEY", "/k.key"),
        ("ORDERER_OPERATIONS_TLS_CLIENTROOTCAS", "[/ca.crt]"),
    ];
    let tls = without_file(&[], &env).operations_tls.unwrap();
    assert_eq!(tls.client_root_cas, Some(vec![PathBuf::from("/ca.crt")]));
    assert!(tls.client_auth_optional);
    let mut env = env.to_vec();
    env.push(("ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED", "true"));
    let tls = without_file(&[], &env).operations_tls.unwrap();
    assert!(!tls.client_auth_optional);
}

#[test]
fn env_beats_the_file_and_flags_beat_both() {
    let env = [
        ("ORDERER_GENERAL_LISTENPORT", "7250"),
        ("ORDERER_GENERAL_LOCALMSPID", "EnvMSP"),
        ("ORDERER_FILELEDGER_LOCATION", "/env/ledger"),
        ("ORDERER_ADMIN_LISTENADDRESS", "127.0.0.1:7253"),
        ("ORDERER_GENERAL_TLS_ENABLED", "false"),
    ];
    let (dir, s) = with_file(YAML, &[], &env);
    let s = s.unwrap();
    assert_eq!(s.listen, "0.0.0.0:7250");
    assert_eq!(s.msp, Some((dir.path().join("msp"), "EnvMSP".into())));
    assert_eq!(s.data_dir, PathBuf::from("/env/ledger"));
    assert_eq!(s.admin_listen, "127.0.0.1:7253");
    assert_eq!(s.tls, None);

    let flags = [
        "--listen",
        "127.0.0.1:7350",
        "--msp-id",
        "FlagMSP",
        "--data-dir",
        "/flag/ledger",
        "--admin-listen",
        "127.0.0.1:7353",
    ];
    let (_dir, s) = with_file(YAML, &flags, &env);
    let s = s.unwrap();
    assert_eq!(s.listen, "127.0.0.1:7350");
    assert_eq!(s.msp.unwrap().1, "FlagMSP");
    assert_eq!(s.data_dir, PathBuf::from("/flag/ledger"));
    assert_eq!(s.admin_listen, "127.0.0.1:7353");
}

#[test]
fn flags_beat_the_environment_without_a_file() {
    let s = without_file(
        &["--listen", "127.0.0.1:1", "--data-dir", "d"],
        &[
            ("ORDERER_GENERAL_LISTENADDRESS", "10.0.0.1"),
            ("ORDERER_FILELEDGER_LOCATION", "/env"),
        ],
    );
    assert_eq!(s.listen, "127.0.0.1:1");
    assert_eq!(s.data_dir, PathBuf::from("d"));
}

#[test]
fn one_half_of_the_msp_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    let cfg = empty.path().to_str().unwrap();
    let env = env_of(&[
        ("FABRIC_CFG_PATH", cfg),
        ("ORDERER_GENERAL_LOCALMSPID", "X"),
    ]);
    let err = args(&[]).settings(&env).unwrap_err().to_string();
    assert_eq!(
        err,
        "--msp-dir (General.LocalMSPDir) is required with --msp-id"
    );
}

#[test]
fn bootstrap_method_file_names_the_system_channel_genesis_block() {
    let yaml = YAML.replace("BootstrapMethod: none", "BootstrapMethod: file");
    let (dir, s) = with_file(&yaml, &[], &[]);
    // General.BootstrapFile, relative to the file's folder.
    let genesis = dir.path().join("genesisblock");
    assert_eq!(s.unwrap().bootstrap_file, Some(genesis));
    // Fabric's default when the file does not say: also `file`.
    let yaml = YAML.replace("  BootstrapMethod: none\n", "");
    let (dir, s) = with_file(&yaml, &[], &[]);
    assert_eq!(
        s.unwrap().bootstrap_file,
        Some(dir.path().join("genesisblock"))
    );
    // The flag beats the file.
    let (_dir, s) = with_file(&yaml, &["--bootstrap-file", "/sys.block"], &[]);
    assert_eq!(s.unwrap().bootstrap_file, Some("/sys.block".into()));
    let (_dir, s) = with_file(&yaml, &[], &[("ORDERER_GENERAL_BOOTSTRAPMETHOD", "none")]);
    assert_eq!(s.unwrap().bootstrap_file, None);
    let (_dir, s) = with_file(&yaml, &[], &[("ORDERER_GENERAL_BOOTSTRAPMETHOD", "kafka")]);
    assert_eq!(
        s.unwrap_err().to_string(),
        "ORDERER_GENERAL_BOOTSTRAPMETHOD: General.BootstrapMethod: unknown bootstrap method \"kafka\" (none or file)"
    );
}

#[test]
fn tls_without_its_files_is_an_error() {
    let s = tempfile::tempdir().unwrap();
    let cfg = s.path().to_str().unwrap();
    let env = env_of(&[
        ("FABRIC_CFG_PATH", cfg),
        ("ORDERER_GENERAL_TLS_ENABLED", "true"),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", "/k"),
    ]);
    let err = args(&[]).settings(&env).unwrap_err().to_string();
    assert_eq!(
        err,
        "ORDERER_GENERAL_TLS_ENABLED: General.TLS.Certificate: must be set when General.TLS.Enabled is true"
    );
}

#[test]
fn admin_tls_needs_client_auth_as_in_fabric() {
    let yaml = YAML.replace(
        "Admin:\n  ListenAddress: 127.0.0.1:7153\n",
        "Admin:\n  ListenAddress: 127.0.0.1:7153\n  TLS:\n    Enabled: true\n    Certificate: c\n    PrivateKey: k\n",
    );
    let (_dir, s) = with_file(&yaml, &[], &[]);
    assert!(
        s.unwrap_err()
            .to_string()
            .ends_with("Admin.TLS.ClientAuthRequired: must be true when Admin.TLS.Enabled is true (the admin API needs mutual TLS)")
    );
    let (_dir, s) = with_file(
        &yaml,
        &[],
        &[
            ("ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED", "true"),
            ("ORDERER_ADMIN_TLS_CLIENTROOTCAS", "[/a.crt, /b.crt]"),
        ],
    );
    let admin = s.unwrap().admin_tls.unwrap();
    assert_eq!(
        admin.certificate,
        PathBuf::from("c"),
        "not translated, as in Fabric"
    );
    assert_eq!(
        admin.client_root_cas,
        Some(vec![PathBuf::from("/a.crt"), PathBuf::from("/b.crt")])
    );
}

#[test]
fn grpc_limits_and_keepalive_as_fabric_reads_them() {
    let s = without_file(&[], &[]);
    assert_eq!(s.grpc, ServerLimits::default());
    assert_eq!(s.grpc.max_recv_msg_size, 100 * 1024 * 1024);
    let yaml = "General:\n  MaxRecvMsgSize: 4194304\n  Keepalive:\n    ServerMinInterval: 60s\n    \
                ServerInterval: 30s\n    ServerTimeout: 0s\n";
    let env = [("ORDERER_GENERAL_MAXSENDMSGSIZE", "8388608")];
    let (_dir, s) = with_file(yaml, &[], &env);
    let s = s.unwrap();
    assert_eq!(s.grpc.max_recv_msg_size, 4 * 1024 * 1024);
    assert_eq!(s.grpc.max_send_msg_size, 8 * 1024 * 1024);
    assert_eq!(s.grpc.keepalive_interval, Duration::from_secs(30));
    assert_eq!(
        s.grpc.keepalive_timeout,
        Duration::from_secs(20),
        "0: gRPC's default"
    );
    // The sample file's ServerMinInterval is not a choice worth a warning.
    assert!(s.unimplemented.is_empty(), "{:?}", s.unimplemented);

    let (_dir, s) = with_file(
        "General:\n  Keepalive:\n    ServerMinInterval: 5s\n",
        &[],
        &[],
    );
    assert_eq!(
        s.unwrap().unimplemented,
        ["General.Keepalive.ServerMinInterval"]
    );
    let env = [("ORDERER_GENERAL_MAXRECVMSGSIZE", "-1")];
    let (_dir, s) = with_file("General: {}\n", &[], &env);
    let e = s.unwrap_err().to_string();
    assert_eq!(
        e,
        "ORDERER_GENERAL_MAXRECVMSGSIZE: General.MaxRecvMsgSize: -1 is not a size in bytes \
         (0 for the default, 100 MiB)"
    );
}
