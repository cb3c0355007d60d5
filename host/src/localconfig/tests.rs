use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::complete::KNOWN_VALUES;
use super::convert::*;
use super::decode::Field;
use super::*;

/// An environment made of `pairs`, nothing else (the process's is never read).
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

/// Writes `text` as orderer.yaml in a fresh folder.
fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orderer.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn load(text: &str, env: &[(&str, &str)]) -> Result<(Loaded, String), ConfigError> {
    let (dir, path) = write(text);
    let loaded = LocalConfig::load(Some(&path), &env_of(env))?;
    Ok((loaded, dir.path().to_string_lossy().into_owned()))
}

fn load_err(text: &str, env: &[(&str, &str)]) -> String {
    let (dir, path) = write(text);
    let err = LocalConfig::load(Some(&path), &env_of(env))
        .unwrap_err()
        .to_string();
    err.replace(&dir.path().display().to_string(), "DIR")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Our own orderer.yaml in the shape of Fabric's sample (which the test network's
/// image ships), with every section present.
const SAMPLE_LIKE: &str = "
General:
  ListenAddress: 127.0.0.1
  ListenPort: 7050
  TLS:
    Enabled: false
    PrivateKey: tls/server.key
    Certificate: tls/server.crt
    RootCAs: [tls/ca.crt]
    ClientAuthRequired: false
    ClientRootCAs:
  Keepalive: {ServerMinInterval: 60s, ServerInterval: 7200s, ServerTimeout: 20s}
  MaxRecvMsgSize: 104857600
  MaxSendMsgSize: 104857600
  Cluster:
    SendBufferSize: 100
    ClientCertificate:
    ClientPrivateKey:
    ListenPort:
    ListenAddress:
  BootstrapMethod: file
  BootstrapFile:
  LocalMSPDir: msp
  LocalMSPID: SampleOrg
  Profile: {Enabled: false, Address: 0.0.0.0:6060}
  BCCSP:
    Default: SW
    SW: {Hash: SHA2, Security: 256, FileKeyStore: {KeyStore: }}
  Authentication:
    TimeWindow: 15m
FileLedger:
  Location: /var/hyperledger/production/orderer
Debug:
  BroadcastTraceDir:
Operations:
  ListenAddress: 127.0.0.1:8443
  TLS: {Enabled: false, ClientRootCAs: []}
Metrics:
  Provider: disabled
  Statsd: {Network: udp, Address: 127.0.0.1:8125, WriteInterval: 30s, Prefix: }
Admin:
  ListenAddress: 127.0.0.1:9443
  TLS: {Enabled: false, ClientAuthRequired: true, ClientRootCAs: []}
ChannelParticipation:
  Enabled: false
  MaxRequestBodySize: 1 MB
Consensus:
  WALDir: /var/hyperledger/production/orderer/etcdraft/wal
  SnapDir: /var/hyperledger/production/orderer/etcdraft/snapshot
";

const TEST_NETWORK_ENV: &[(&str, &str)] = &[
    ("FABRIC_LOGGING_SPEC", "INFO"),
    ("ORDERER_GENERAL_LISTENADDRESS", "0.0.0.0"),
    ("ORDERER_GENERAL_LISTENPORT", "7050"),
    ("ORDERER_GENERAL_LOCALMSPID", "OrdererMSP"),
    (
        "ORDERER_GENERAL_LOCALMSPDIR",
        "/var/hyperledger/orderer/msp",
    ),
    ("ORDERER_GENERAL_TLS_ENABLED", "true"),
    (
        "ORDERER_GENERAL_TLS_PRIVATEKEY",
        "/var/hyperledger/orderer/tls/server.key",
    ),
    (
        "ORDERER_GENERAL_TLS_CERTIFICATE",
        "/var/hyperledger/orderer/tls/server.crt",
    ),
    (
        "ORDERER_GENERAL_TLS_ROOTCAS",
        "[/var/hyperledger/orderer/tls/ca.crt]",
    ),
    (
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE",
        "/var/hyperledger/orderer/tls/server.crt",
    ),
    (
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY",
        "/var/hyperledger/orderer/tls/server.key",
    ),
    (
        "ORDERER_GENERAL_CLUSTER_ROOTCAS",
        "[/var/hyperledger/orderer/tls/ca.crt]",
    ),
    ("ORDERER_GENERAL_BOOTSTRAPMETHOD", "none"),
    ("ORDERER_CHANNELPARTICIPATION_ENABLED", "true"),
    ("ORDERER_ADMIN_TLS_ENABLED", "true"),
    (
        "ORDERER_ADMIN_TLS_CERTIFICATE",
        "/var/hyperledger/orderer/tls/server.crt",
    ),
    (
        "ORDERER_ADMIN_TLS_PRIVATEKEY",
        "/var/hyperledger/orderer/tls/server.key",
    ),
    (
        "ORDERER_ADMIN_TLS_ROOTCAS",
        "[/var/hyperledger/orderer/tls/ca.crt]",
    ),
    (
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS",
        "[/var/hyperledger/orderer/tls/ca.crt]",
    ),
    ("ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED", "true"),
    ("ORDERER_ADMIN_LISTENADDRESS", "0.0.0.0:7053"),
    (
        "ORDERER_OPERATIONS_LISTENADDRESS",
        "orderer.example.com:9443",
    ),
    ("ORDERER_METRICS_PROVIDER", "prometheus"),
];

#[test]
fn test_network_environment_over_sample_like_file() {
    let (loaded, dir) = load(SAMPLE_LIKE, TEST_NETWORK_ENV).unwrap();
    let c = &loaded.config;
    let tls = "/var/hyperledger/orderer/tls";
    assert_eq!(c.general.listen_address, "0.0.0.0");
    assert_eq!(c.general.listen_port, 7050);
    assert_eq!(c.general.local_msp_id, "OrdererMSP");
    assert_eq!(c.general.local_msp_dir, "/var/hyperledger/orderer/msp");
    assert!(c.general.tls.enabled);
    assert_eq!(c.general.tls.private_key, format!("{tls}/server.key"));
    assert_eq!(c.general.tls.certificate, format!("{tls}/server.crt"));
    assert_eq!(c.general.tls.root_cas, [format!("{tls}/ca.crt")]);
    assert_eq!(
        c.general.cluster.client_certificate,
        format!("{tls}/server.crt")
    );
    assert_eq!(
        c.general.cluster.client_private_key,
        format!("{tls}/server.key")
    );
    // Absent from the file, but its section is there, so the variable is read.
    assert_eq!(c.general.cluster.root_cas, [format!("{tls}/ca.crt")]);
    assert_eq!(c.general.bootstrap_method, "none");
    assert_eq!(c.general.bootstrap_file, format!("{dir}/genesisblock"));
    assert!(c.channel_participation.enabled);
    assert_eq!(c.channel_participation.max_request_body_size, 1 << 20);
    assert!(c.admin.tls.enabled && c.admin.tls.client_auth_required);
    assert_eq!(c.admin.tls.certificate, format!("{tls}/server.crt"));
    assert_eq!(c.admin.tls.root_cas, [format!("{tls}/ca.crt")]);
    assert_eq!(c.admin.tls.client_root_cas, [format!("{tls}/ca.crt")]);
    assert_eq!(c.admin.listen_address, "0.0.0.0:7053");
    assert_eq!(c.operations.listen_address, "orderer.example.com:9443");
    assert_eq!(c.metrics.provider, "prometheus");
    assert_eq!(c.metrics.statsd.write_interval, Duration::from_secs(30));
    assert_eq!(
        c.general.keepalive.server_interval,
        Duration::from_secs(7200)
    );
    assert_eq!(
        c.general.authentication.time_window,
        Duration::from_secs(900)
    );
    assert_eq!(
        c.file_ledger.location,
        "/var/hyperledger/production/orderer"
    );
    assert_eq!(c.general.bccsp, Bccsp::default());
    assert!(loaded.ignored_env.is_empty(), "{:?}", loaded.ignored_env);

    let source = |key: &str| {
        loaded
            .settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.source.clone())
    };
    assert_eq!(
        source("General.ListenPort"),
        Some(Source::Env("ORDERER_GENERAL_LISTENPORT".into()))
    );
    assert_eq!(source("General.MaxRecvMsgSize"), Some(Source::File));
    assert_eq!(
        source("General.BootstrapFile"),
        None,
        "null in the file is absent"
    );
    let etcdraft = loaded.etcdraft().unwrap();
    assert_eq!(
        etcdraft.wal_dir,
        "/var/hyperledger/production/orderer/etcdraft/wal"
    );
    assert_eq!(etcdraft.eviction_suspicion, "");
}

#[test]
fn defaults_when_keys_are_absent() {
    let (loaded, dir) = load("General:\n", &[]).unwrap();
    let c = &loaded.config;
    assert!(loaded.settings.is_empty());
    assert_eq!(
        (c.general.listen_address.as_str(), c.general.listen_port),
        ("127.0.0.1", 7050)
    );
    assert_eq!(c.general.bootstrap_method, "file");
    assert_eq!(c.general.bootstrap_file, format!("{dir}/genesisblock"));
    assert_eq!(c.general.local_msp_dir, format!("{dir}/msp"));
    assert_eq!(c.general.local_msp_id, "SampleOrg");
    assert_eq!(c.general.max_recv_msg_size, 100 << 20);
    assert_eq!(c.general.max_send_msg_size, 100 << 20);
    assert_eq!(
        c.general.authentication.time_window,
        Duration::from_secs(900)
    );
    let cl = &c.general.cluster;
    assert_eq!(
        (cl.dial_timeout, cl.rpc_timeout),
        (Duration::from_secs(5), Duration::from_secs(7))
    );
    assert_eq!(
        (cl.send_buffer_size, cl.replication_buffer_size),
        (100, 20 << 20)
    );
    assert_eq!(cl.replication_max_retries, 12);
    assert_eq!(
        cl.cert_expiration_warning_threshold,
        Duration::from_secs(7 * 86400)
    );
    assert!(cl.client_certificate.is_empty(), "only translated when set");
    // As in Fabric, unset translated paths become the config folder itself.
    assert_eq!(c.general.tls.private_key, dir);
    assert_eq!(c.file_ledger.location, dir);
    // Not filled by Fabric either: the sample file's values are not defaults.
    assert_eq!(c.operations.listen_address, "");
    assert_eq!(c.admin.listen_address, "");
    assert!(!c.admin.tls.client_auth_required);
    assert_eq!(c.metrics.provider, "");
    assert_eq!(c.channel_participation.max_request_body_size, 0);
    assert_eq!(c.kafka.topic.replication_factor, 0);
    assert_eq!(c.kafka.retry.short_interval, Duration::from_secs(60));
    assert_eq!(
        c.kafka.retry.network_timeouts.read_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(c.kafka.version.to_string(), "0.10.2.0");
    assert_eq!(
        (
            c.general.bccsp.default.as_str(),
            c.general.bccsp.sw.security
        ),
        ("SW", 256)
    );
    assert!(!c.general.profile.enabled && c.general.profile.address.is_empty());
    assert_eq!(c.consensus, Value::Null);

    let defaults = LocalConfig::fabric_defaults();
    assert_eq!(defaults.general.local_msp_dir, "msp");
    assert_eq!(defaults.general.tls.private_key, ".");
    // Old key names still fill the new ones.
    let (old, _) = load(
        "General: {GenesisMethod: none, GenesisFile: /g.block}\n",
        &[],
    )
    .unwrap();
    assert_eq!(old.config.general.bootstrap_method, "none");
    assert_eq!(old.config.general.bootstrap_file, "/g.block");
    let (prof, _) = load("General: {Profile: {Enabled: true}}\n", &[]).unwrap();
    assert_eq!(prof.config.general.profile.address, "0.0.0.0:6060");
}

#[test]
fn known_values_table_agrees_with_fabric_defaults() {
    let mut zero = HashMap::new();
    LocalConfig::default().visit("", &mut |key, leaf| {
        zero.insert(key.to_string(), leaf.render());
    });
    let mut seen = 0;
    LocalConfig::fabric_defaults().visit("", &mut |key, leaf| {
        seen += 1;
        let default = KNOWN_VALUES
            .iter()
            .find(|(k, _, _)| *k == key)
            .and_then(|(_, d, _)| *d);
        // Filled only when profiling is enabled.
        let default = default.filter(|_| key != "General.Profile.Address");
        match default {
            Some(text) => assert!(
                leaf.equals_text(text),
                "{key}: {} is not {text}",
                leaf.render()
            ),
            // Filled by Fabric (paths apart, which translation alone changes): listed?
            None => assert!(
                zero[key] == leaf.render() || PATH_KEYS.contains(&key),
                "{key} = {} is not in KNOWN_VALUES",
                leaf.render()
            ),
        }
    });
    assert_eq!(seen, zero.len());
    for (key, _, _) in KNOWN_VALUES {
        assert!(
            zero.contains_key(*key) || key.starts_with("Consensus."),
            "{key} is not a key"
        );
    }
}

#[test]
fn fabric_cfg_path_lookup() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (da, db) = (
        a.path().to_string_lossy().into_owned(),
        b.path().to_string_lossy().into_owned(),
    );
    assert_eq!(find_in(&[da.clone(), db.clone()]), None);
    std::fs::write(b.path().join("orderer.yml"), "General:\n").unwrap();
    assert_eq!(
        find_in(&[da.clone(), db.clone()]),
        Some(b.path().join("orderer.yml"))
    );
    std::fs::write(b.path().join("orderer.yaml"), "General:\n").unwrap();
    assert_eq!(
        find_in(&[da.clone(), db.clone()]),
        Some(b.path().join("orderer.yaml"))
    );
    std::fs::write(a.path().join("orderer.yml"), "General:\n").unwrap();
    assert_eq!(
        find_in(&[da.clone(), db]),
        Some(a.path().join("orderer.yml"))
    );
    // $FABRIC_CFG_PATH comes first, a trailing slash is fine, and load uses it.
    let env = env_of(&[
        ("FABRIC_CFG_PATH", &format!("{da}/")),
        ("ORDERER_GENERAL_LISTENPORT", "7051"),
    ]);
    assert_eq!(find_file(&env), Some(a.path().join("orderer.yml")));
    let loaded = LocalConfig::load(None, &env).unwrap();
    assert_eq!(loaded.file, Some(a.path().join("orderer.yml")));
    assert_eq!(loaded.config.general.local_msp_dir, format!("{da}/msp"));
    // Found in ".", the path stays relative, and so do the translated ones.
    assert!(
        find_in(&[".".into()])
            .is_none_or(|p| p == Path::new("orderer.yaml") || p == Path::new("orderer.yml"))
    );
    assert_eq!(go_dir("orderer.yaml"), ".");
    assert_eq!(translate_path(".", "msp"), "msp");
}

#[test]
fn no_file_gives_defaults_and_reads_env_for_every_key() {
    let empty = tempfile::tempdir().unwrap();
    let cfg = empty.path().to_string_lossy().into_owned();
    let env = env_of(&[
        ("FABRIC_CFG_PATH", &cfg),
        ("ORDERER_ADMIN_LISTENADDRESS", "127.0.0.1:7053"),
        ("ORDERER_GENERAL_TLS_ROOTCAS", "[a.crt, /b.crt]"),
    ]);
    if find_file(&env).is_some() {
        println!("skipped: this machine has an orderer.yaml in . or /etc/hyperledger/fabric");
        return;
    }
    let loaded = LocalConfig::load(None, &env).unwrap();
    assert_eq!(loaded.file, None);
    assert_eq!(loaded.config.admin.listen_address, "127.0.0.1:7053");
    assert_eq!(loaded.config.general.tls.root_cas, s(&["a.crt", "/b.crt"]));
    assert_eq!(loaded.config.general.listen_port, 7050);
    assert_eq!(loaded.settings.len(), 2);
}

#[test]
fn env_overrides_follow_fabric_mapping() {
    let text = "General:\n  ListenPort: 7050\n  TLS:\n    Enabled: false\n  BCCSP:\n    SW:\n      Hash: SHA2\n\
                Consensus:\n  WALDir: /wal\n  Nested: {Deep: 1}\n";
    let (loaded, _) = load(
        text,
        &[
            ("ORDERER_GENERAL_LISTENPORT", "8050"),
            ("ORDERER_GENERAL_LISTENADDRESS", "10.0.0.1"),
            ("ORDERER_GENERAL_TLS_ENABLED", "TRUE"),
            ("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", ""),
            ("ORDERER_GENERAL_BCCSP_SW_HASH", "SHA3"),
            ("ORDERER_GENERAL_BCCSP_SW_SECURITY", "384"),
            ("ORDERER_CONSENSUS_WALDIR", "/elsewhere"),
            ("ORDERER_CONSENSUS_NESTED_DEEP", "2"),
            ("ORDERER_CONSENSUS_SNAPDIR", "/snap"),
            ("ORDERER_ADMIN_LISTENADDRESS", "0.0.0.0:7053"),
            ("ORDERER_OPERATIONS_TLS_ENABLED", "true"),
            ("orderer_general_localmspid", "lowercase"),
        ],
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.general.listen_port, 8050, "env beats the file");
    assert_eq!(
        c.general.listen_address, "10.0.0.1",
        "known key absent from the file"
    );
    assert!(c.general.tls.enabled);
    assert!(
        !c.general.tls.client_auth_required,
        "an empty value is ignored"
    );
    assert_eq!(c.general.bccsp.sw.hash, "SHA3", "BCCSP key in the file");
    assert_eq!(
        c.general.bccsp.sw.security, 256,
        "BCCSP key absent from the file: not read"
    );
    assert_eq!(
        c.consensus.get("waldir"),
        Some(&Value::Str("/elsewhere".into()))
    );
    assert_eq!(
        c.consensus.get("Nested").unwrap().get("Deep"),
        Some(&Value::Str("2".into()))
    );
    assert_eq!(
        c.consensus.get("SnapDir"),
        None,
        "Consensus keys absent from the file: not read"
    );
    assert_eq!(
        c.admin.listen_address, "",
        "no Admin section in the file: not read"
    );
    assert_eq!(
        c.general.local_msp_id, "SampleOrg",
        "variables are upper case"
    );
    let mut ignored = loaded.ignored_env.clone();
    ignored.sort();
    assert_eq!(
        ignored,
        [
            "ORDERER_ADMIN_LISTENADDRESS",
            "ORDERER_GENERAL_BCCSP_SW_SECURITY",
            "ORDERER_OPERATIONS_TLS_ENABLED"
        ]
    );
    let keys: Vec<&str> = loaded.settings.iter().map(|s| s.key.as_str()).collect();
    assert!(keys.contains(&"Consensus.Nested.Deep") && keys.contains(&"General.ListenAddress"));
}

#[test]
fn lists_from_yaml_and_env() {
    let pem = "junk\n-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n\
               -----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n";
    let (dir, _) = write("");
    let pem_path = dir.path().join("cas.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let text = format!(
        "General:\n  TLS:\n    RootCAs:\n      - /a.crt\n      - b.crt\n    ClientRootCAs: /single.crt\n  \
         Cluster: {{RootCAs: [/x, /y]}}\nKafka:\n  TLS: {{RootCAs: {{File: {}}}}}\n\
         Admin:\n  TLS: {{RootCAs: [], ClientRootCAs: [7050, true]}}\nOperations:\n  TLS: {{RootCAs: }}\n",
        pem_path.display()
    );
    let (loaded, d) = load(
        &text,
        &[("ORDERER_OPERATIONS_TLS_ROOTCAS", "[ /o1 ,o2,  ]")],
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.general.tls.root_cas,
        [s(&["/a.crt"]), vec![format!("{d}/b.crt")]].concat()
    );
    assert_eq!(
        c.general.tls.client_root_cas,
        s(&["/single.crt"]),
        "one bare item is a list"
    );
    assert_eq!(c.general.cluster.root_cas, s(&["/x", "/y"]));
    assert_eq!(
        c.kafka.tls.root_cas,
        ["-----BEGIN CERTIFICATE-----\nQUJDREVG\n-----END CERTIFICATE-----\n"]
    );
    assert_eq!(c.admin.tls.root_cas, Vec::<String>::new());
    assert_eq!(
        c.admin.tls.client_root_cas,
        s(&["7050", "1"]),
        "Go's weak typing"
    );
    assert_eq!(
        c.operations.tls.root_cas,
        s(&["/o1", "o2", ""]),
        "items trimmed, as Fabric"
    );
    let (empty, _) = load(
        "General:\n  TLS: {}\n",
        &[("ORDERER_GENERAL_TLS_ROOTCAS", "[]")],
    )
    .unwrap();
    assert_eq!(
        empty.config.general.tls.root_cas.len(),
        1,
        "Fabric reads [] as one empty item"
    );
    let (bare, _) = load(
        "General:\n  TLS: {}\n",
        &[("ORDERER_GENERAL_TLS_CLIENTROOTCAS", "/a,/b")],
    )
    .unwrap();
    assert_eq!(
        bare.config.general.tls.client_root_cas,
        s(&["/a,/b"]),
        "no brackets: one item"
    );
}

#[test]
fn durations_as_go_parses_them() {
    let ns = |t: &str| go_parse_duration(t);
    assert_eq!(ns("10s"), Some(10_000_000_000));
    assert_eq!(ns("1m30s"), Some(90_000_000_000));
    assert_eq!(ns("1.5h"), Some(5_400_000_000_000));
    assert_eq!(ns("300ms"), Some(300_000_000));
    assert_eq!(ns("2h45m0.5s"), Some(9_900_500_000_000));
    assert_eq!(ns("1us"), Some(1000));
    assert_eq!(ns("1µs"), Some(1000));
    assert_eq!(ns(".5s"), Some(500_000_000));
    assert_eq!(ns("0"), Some(0));
    assert_eq!(ns("-5s"), Some(-5_000_000_000));
    for bad in ["", "10", "s", "10 s", "1d", ".s", "3000000h", "1.5.5s"] {
        assert_eq!(ns(bad), None, "{bad:?}");
    }
    let text =
        "General:\n  Keepalive: {ServerMinInterval: 1m30s, ServerInterval: 15, ServerTimeout: 0}\n";
    let (loaded, _) = load(
        text,
        &[("ORDERER_GENERAL_KEEPALIVE_SERVERTIMEOUT", "250ms")],
    )
    .unwrap();
    let k = &loaded.config.general.keepalive;
    assert_eq!(k.server_min_interval, Duration::from_secs(90));
    assert_eq!(
        k.server_interval,
        Duration::from_nanos(15),
        "a bare number is nanoseconds"
    );
    assert_eq!(k.server_timeout, Duration::from_millis(250));
}

#[test]
fn byte_sizes_for_max_request_body_size() {
    let size = |text: &str| -> Result<u32, String> {
        let yaml = format!("ChannelParticipation:\n  MaxRequestBodySize: {text}\n");
        load(&yaml, &[])
            .map(|(l, _)| l.config.channel_participation.max_request_body_size)
            .map_err(|e| e.to_string())
    };
    assert_eq!(size("1 MB"), Ok(1 << 20));
    assert_eq!(size("512k"), Ok(512 << 10));
    assert_eq!(size("2gb"), Ok(2 << 30));
    assert_eq!(size("3\tKb"), Ok(3 << 10));
    assert_eq!(size("1048576"), Ok(1 << 20));
    assert_eq!(size("\"4096\""), Ok(4096));
    assert!(
        size("4 GB")
            .unwrap_err()
            .ends_with("expected an integer from 0 to 4294967295, got \"4 GB\"")
    );
    assert!(
        size("1 TB")
            .unwrap_err()
            .contains("expected an integer or a byte size such as \"1 MB\"")
    );
    assert_eq!(
        byte_size("010k"),
        Some(Ok(8 << 10)),
        "Go reads a leading 0 as octal"
    );
    assert_eq!(byte_size("1 MiB"), None);
}

#[test]
fn yaml_scalars_resolve_as_fabric_yaml_v2() {
    let text = "General:\n  ListenPort: 017\n  TLS: {Enabled: yes, ClientAuthRequired: On}\n  LocalMSPID: 12\n  \
                ListenAddress: ~\n  Profile: {Enabled: off, Address: no}\n  MaxRecvMsgSize: 0x10\n  \
                MaxSendMsgSize: 1_000\n  Cluster: {ReplicationMaxRetries: 2.9, SendBufferSize: \"0b11\"}\n";
    let (loaded, _) = load(text, &[]).unwrap();
    let g = &loaded.config.general;
    assert_eq!(g.listen_port, 15, "octal, as Go reads it");
    assert!(g.tls.enabled && g.tls.client_auth_required);
    assert_eq!(g.local_msp_id, "12");
    assert_eq!(g.listen_address, "127.0.0.1", "null is absent");
    assert_eq!(
        g.profile.address, "0",
        "a YAML 1.1 boolean becomes \"0\" in a string field"
    );
    assert_eq!((g.max_recv_msg_size, g.max_send_msg_size), (16, 1000));
    assert_eq!(
        (
            g.cluster.replication_max_retries,
            g.cluster.send_buffer_size
        ),
        (2, 3)
    );
    assert_eq!(yaml::resolve_plain("08"), Value::Float(8.0));
    assert_eq!(yaml::resolve_plain("1e3"), Value::Float(1000.0));
    assert_eq!(
        yaml::resolve_plain("2001-12-14"),
        Value::Str("2001-12-14".into())
    );
    assert_eq!(yaml::resolve_plain("-0x10"), Value::Int(-16));
    assert_eq!(
        yaml::resolve_plain("18446744073709551615"),
        Value::Int(u64::MAX.into())
    );
    let err = load_err("General:\n  TLS: {Enabled: \"yes\"}\n", &[]);
    assert_eq!(
        err,
        "DIR/orderer.yaml: General.TLS.Enabled: expected a boolean (true or false), got \"yes\""
    );
    // Anchors, aliases and merge keys.
    let text = "base: &tls {Enabled: true, Certificate: c.crt}\n";
    let tree = yaml::parse(&format!(
        "{text}General:\n  TLS: {{<<: *tls, Certificate: mine.crt}}\n"
    ))
    .unwrap()
    .unwrap();
    let tls = tree.get("General").unwrap().get("TLS").unwrap();
    assert_eq!(tls.get("Enabled"), Some(&Value::Bool(true)));
    assert_eq!(tls.get("Certificate"), Some(&Value::Str("mine.crt".into())));
    // As yaml.v2: a merge overwrites the keys before it; a repeated key, the last wins.
    let text = format!("{text}TLS: {{Certificate: mine.crt, <<: *tls, Enabled: 0, Enabled: 1}}\n");
    let tree = yaml::parse(&text).unwrap().unwrap();
    let tls = tree.get("TLS").unwrap();
    assert_eq!(tls.get("Certificate"), Some(&Value::Str("c.crt".into())));
    assert_eq!(tls.get("Enabled"), Some(&Value::Int(1)));
}

#[test]
fn go_integer_and_path_syntax() {
    assert_eq!(go_parse_signed("0x1F", 32), Ok(31));
    assert_eq!(go_parse_signed("-0o17", 32), Ok(-15));
    assert_eq!(go_parse_signed("1_000", 32), Ok(1000));
    assert_eq!(go_parse_signed("+5", 8), Ok(5));
    assert_eq!(go_parse_signed("128", 8), Err(IntError::Range));
    assert_eq!(go_parse_signed("-128", 8), Ok(-128));
    assert_eq!(go_parse_signed("1__0", 32), Err(IntError::Syntax));
    assert_eq!(go_parse_signed("_1", 32), Err(IntError::Syntax));
    assert_eq!(go_parse_signed("09", 32), Err(IntError::Syntax));
    assert_eq!(go_parse_unsigned("+5", 16), Err(IntError::Syntax));
    assert_eq!(go_parse_unsigned("65536", 16), Err(IntError::Range));
    assert_eq!(go_parse_bool("T"), Some(true));
    assert_eq!(go_parse_bool("yes"), None);
    assert_eq!(go_clean("a/./b/../c//d/"), "a/c/d");
    assert_eq!(go_clean("/../x"), "/x");
    assert_eq!(go_clean("../../x"), "../../x");
    assert_eq!(go_clean(""), ".");
    assert_eq!(
        go_dir("/etc/hyperledger/fabric/orderer.yaml"),
        "/etc/hyperledger/fabric"
    );
    assert_eq!(go_dir("conf/orderer.yaml"), "conf");
    assert_eq!(go_dir("orderer.yaml"), ".");
    assert_eq!(
        translate_path("/cfg", "./tls/../tls/server.key"),
        "/cfg/tls/server.key"
    );
    assert_eq!(translate_path("/cfg", "/abs//kept"), "/abs//kept");
    assert_eq!(kafka_version("2.3.0"), Ok([1, 0, 0, 0]));
    assert_eq!(kafka_version("v0.10.2.1"), Ok([0, 10, 2, 0]));
    assert_eq!(kafka_version("0.9"), Ok([0, 9, 0, 0]));
    assert!(kafka_version("0.8.1").is_err() && kafka_version("1.0.0-beta").is_err());
}

#[test]
fn relative_paths_resolved_against_the_config_folder() {
    let text = "General:\n  TLS:\n    PrivateKey: tls/server.key\n    Certificate: ./tls/../tls/server.crt\n    \
                RootCAs: [ca.crt, /abs/ca.crt]\n    ClientRootCAs: [client-ca.crt]\n  Cluster:\n    \
                ClientCertificate: c.crt\n    ClientPrivateKey: c.key\n    RootCAs: [cluster-ca.crt]\n    \
                ServerCertificate: s.crt\n    ServerPrivateKey: s.key\n  BootstrapFile: genesis.block\n  \
                LocalMSPDir: ../msp\nFileLedger: {Location: data}\nAdmin:\n  TLS: {Certificate: admin.crt}\n\
                Operations:\n  TLS: {Certificate: ops.crt}\nDebug: {BroadcastTraceDir: trace}\n\
                Consensus: {WALDir: wal}\n";
    let (loaded, d) = load(
        text,
        &[("ORDERER_GENERAL_TLS_PRIVATEKEY", "env/server.key")],
    )
    .unwrap();
    let (c, parent) = (&loaded.config, convert::go_dir(&d));
    let g = &c.general;
    assert_eq!(
        g.tls.private_key,
        format!("{d}/env/server.key"),
        "env values are translated too"
    );
    assert_eq!(g.tls.certificate, format!("{d}/tls/server.crt"));
    assert_eq!(
        g.tls.root_cas,
        [format!("{d}/ca.crt"), "/abs/ca.crt".into()]
    );
    assert_eq!(g.tls.client_root_cas, [format!("{d}/client-ca.crt")]);
    assert_eq!(g.cluster.client_certificate, format!("{d}/c.crt"));
    assert_eq!(g.cluster.client_private_key, format!("{d}/c.key"));
    assert_eq!(g.cluster.root_cas, [format!("{d}/cluster-ca.crt")]);
    assert_eq!(g.bootstrap_file, format!("{d}/genesis.block"));
    assert_eq!(g.local_msp_dir, format!("{parent}/msp"));
    assert_eq!(c.file_ledger.location, format!("{d}/data"));
    // Fabric leaves these relative to the working directory.
    assert_eq!(
        (
            g.cluster.server_certificate.as_str(),
            g.cluster.server_private_key.as_str()
        ),
        ("s.crt", "s.key")
    );
    assert_eq!(c.admin.tls.certificate, "admin.crt");
    assert_eq!(c.operations.tls.certificate, "ops.crt");
    assert_eq!(c.debug.broadcast_trace_dir, "trace");
    assert_eq!(loaded.etcdraft().unwrap().wal_dir, "wal");
    assert_eq!(PATH_KEYS.len(), 10);
}

#[test]
fn file_contents_for_string_fields() {
    let (dir, _) = write("");
    let key = dir.path().join("kafka.key");
    std::fs::write(&key, "KEY PEM").unwrap();
    let other = dir.path().join("other.key");
    std::fs::write(&other, "OTHER PEM").unwrap();
    let text = format!(
        "Kafka:\n  TLS:\n    PrivateKey: {{File: {}}}\n    Certificate:\n",
        key.display()
    );
    let other = other.display().to_string();
    let (loaded, _) = load(&text, &[("ORDERER_KAFKA_TLS_CERTIFICATE_FILE", &other)]).unwrap();
    assert_eq!(loaded.config.kafka.tls.private_key, "KEY PEM");
    assert_eq!(loaded.config.kafka.tls.certificate, "OTHER PEM");
    let (loaded, _) = load(&text, &[("ORDERER_KAFKA_TLS_PRIVATEKEY_FILE", &other)]).unwrap();
    assert_eq!(
        loaded.config.kafka.tls.private_key, "OTHER PEM",
        "env names another file"
    );
    let err = load_err(
        "Kafka:\n  TLS:\n    PrivateKey: {File: /nonexistent/k}\n",
        &[],
    );
    assert!(
        err.starts_with(
            "DIR/orderer.yaml: Kafka.TLS.PrivateKey: reading File \"/nonexistent/k\": "
        ),
        "{err}"
    );
    let err = load_err("Kafka:\n  TLS:\n    PrivateKey: {File: }\n", &[]);
    assert_eq!(
        err,
        "DIR/orderer.yaml: Kafka.TLS.PrivateKey: File: has no value"
    );
}

/// A file, an environment, the error's start.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn error_shapes() {
    let cases: &[Case] = &[
        (
            "General:\n  ListenPort: abc\n",
            &[],
            "DIR/orderer.yaml: General.ListenPort: expected an integer, got \"abc\"",
        ),
        (
            "General:\n  ListenPort: 1\n",
            &[("ORDERER_GENERAL_LISTENPORT", "abc")],
            "ORDERER_GENERAL_LISTENPORT: expected an integer, got \"abc\"",
        ),
        (
            "General:\n  ListenPort: 70000\n",
            &[],
            "DIR/orderer.yaml: General.ListenPort: expected an integer from 0 to 65535, got 70000",
        ),
        (
            "General:\n  ListenPort: -1\n",
            &[],
            "DIR/orderer.yaml: General.ListenPort: expected an integer from 0 to 65535, got -1",
        ),
        (
            "General:\n  TLS:\n    Enabled: maybe\n",
            &[],
            "DIR/orderer.yaml: General.TLS.Enabled: expected a boolean (true or false), got \"maybe\"",
        ),
        (
            "General:\n  TLS: {}\n",
            &[("ORDERER_GENERAL_TLS_ENABLED", "maybe")],
            "ORDERER_GENERAL_TLS_ENABLED: expected a boolean (true or false), got \"maybe\"",
        ),
        (
            "General:\n  Authentication: {TimeWindow: 15 minutes}\n",
            &[],
            "DIR/orderer.yaml: General.Authentication.TimeWindow: expected a duration such as \"10s\" or \"1m30s\", got \"15 minutes\"",
        ),
        (
            "General:\n  Authentication: {TimeWindow: -1s}\n",
            &[],
            "DIR/orderer.yaml: General.Authentication.TimeWindow: a negative duration is not supported, got \"-1s\"",
        ),
        (
            "General:\n  Keepalive: {ServerTimeout: [1s]}\n",
            &[],
            "DIR/orderer.yaml: General.Keepalive.ServerTimeout: expected a duration such as \"10s\", got a list",
        ),
        (
            "General:\n  ListenAddress: [a]\n",
            &[],
            "DIR/orderer.yaml: General.ListenAddress: expected a string, got a list",
        ),
        (
            "General:\n  ListenAddress: x\n",
            &[("ORDERER_GENERAL_LISTENADDRESS", "[a,b]")],
            "ORDERER_GENERAL_LISTENADDRESS: expected a string, got the list \"[a,b]\"",
        ),
        (
            "General:\n  TLS:\n    RootCAs: [ok, [nested]]\n",
            &[],
            "DIR/orderer.yaml: General.TLS.RootCAs: item 1: expected a string, got a list",
        ),
        (
            "General:\n  ListenPortt: 7050\n",
            &[],
            "DIR/orderer.yaml: General.ListenPortt: not a key of Fabric v2.5's orderer.yaml",
        ),
        (
            "Nope: 1\n",
            &[],
            "DIR/orderer.yaml: Nope: not a key of Fabric v2.5's orderer.yaml",
        ),
        (
            "General:\n  ListenPort: 1\n  listenport: 2\n",
            &[],
            "DIR/orderer.yaml: General.listenport: ListenPort and listenport are the same key (keys ignore case)",
        ),
        (
            "General:\n  TLS: yes\n",
            &[],
            "DIR/orderer.yaml: General.TLS: expected a mapping, got true",
        ),
        (
            "General:\n  TLS: {}\n",
            &[("ORDERER_GENERAL_TLS", "on")],
            "ORDERER_GENERAL_TLS: expected a mapping, got \"on\"",
        ),
        (
            "General:\n  ListenPort: [1\n",
            &[],
            "DIR/orderer.yaml: line 3, column 1: ",
        ),
        (
            "- a\n- b\n",
            &[],
            "DIR/orderer.yaml: line 1, column 1: the top level must be a mapping, got a list",
        ),
        (
            "# only a comment\n",
            &[],
            "DIR/orderer.yaml: line 1, column 1: no YAML document in the file",
        ),
        (
            "7050: x\n",
            &[],
            "DIR/orderer.yaml: line 1, column 1: a key must be a string, got 7050",
        ),
        (
            "Admin:\n  TLS: {Enabled: true}\n",
            &[],
            "DIR/orderer.yaml: Admin.TLS.ClientAuthRequired: must be true when Admin.TLS.Enabled is true (the admin API needs mutual TLS)",
        ),
        (
            "Admin:\n  TLS: {Enabled: true, ClientAuthRequired: true}\n",
            &[("ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED", "false")],
            "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED: Admin.TLS.ClientAuthRequired: must be true when Admin.TLS.Enabled is true (the admin API needs mutual TLS)",
        ),
        (
            "Kafka:\n  TLS: {Enabled: true, PrivateKey: k, RootCAs: [r]}\n",
            &[],
            "DIR/orderer.yaml: Kafka.TLS.Certificate: must be set when Kafka.TLS.Enabled is true",
        ),
        (
            "Kafka:\n  SASLPlain: {Enabled: true, User: u}\n",
            &[],
            "DIR/orderer.yaml: Kafka.SASLPlain.Password: must be set when Kafka.SASLPlain.Enabled is true",
        ),
        (
            "Kafka:\n  Version: 0.8.1\n",
            &[],
            "DIR/orderer.yaml: Kafka.Version: unsupported Kafka version \"0.8.1\"",
        ),
        (
            "Kafka:\n  Version: 1.0\n",
            &[],
            "DIR/orderer.yaml: Kafka.Version: expected a Kafka version such as \"2.3.0\", got 1",
        ),
        (
            "Kafka:\n  Topic: {ReplicationFactor: 40000}\n",
            &[],
            "DIR/orderer.yaml: Kafka.Topic.ReplicationFactor: expected an integer from -32768 to 32767, got 40000",
        ),
    ];
    for (text, env, want) in cases {
        let got = load_err(text, env);
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        assert!(!got.contains('\n'), "one line: {got}");
    }
    let missing = Path::new("/nonexistent/orderer.yaml");
    let err = LocalConfig::load(Some(missing), &env_of(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/orderer.yaml: No such file"),
        "{err}"
    );
    let (loaded, _) = load("Consensus:\n  WALDir: 5\n", &[]).unwrap();
    assert_eq!(
        loaded.etcdraft().unwrap_err().to_string(),
        format!(
            "{}: Consensus.WALDir: expected a string, got 5",
            loaded.file.as_ref().unwrap().display()
        )
    );
    // Unknown keys with no value pass, as Fabric drops null values before its check.
    assert!(load("General:\n  Unheard:\n", &[]).is_ok());
    // Unknown keys are ignored under BCCSP, as Fabric decodes it apart.
    assert!(
        load(
            "General:\n  BCCSP: {SW: {Whatever: 1}, PKCS11: {Library: /lib.so}}\n",
            &[]
        )
        .is_ok()
    );
}

#[test]
fn unimplemented_settings_are_the_chosen_ones() {
    let text = format!("{SAMPLE_LIKE}Kafka:\n  Retry: {{ShortInterval: 5s, LongTotal: 1h}}\n");
    let (loaded, _) = load(&text, TEST_NETWORK_ENV).unwrap();
    let chosen: Vec<&str> = loaded
        .settings
        .iter()
        .filter(|s| s.chosen)
        .map(|s| s.key.as_str())
        .collect();
    assert!(chosen.contains(&"General.ListenAddress") && chosen.contains(&"Metrics.Provider"));
    assert!(chosen.contains(&"Kafka.Retry.LongTotal"));
    assert!(
        !chosen.contains(&"Kafka.Retry.ShortInterval"),
        "the sample's value"
    );
    assert!(
        !chosen.contains(&"General.ListenPort"),
        "7050 from the env is the default"
    );
    assert!(
        !chosen.contains(&"ChannelParticipation.MaxRequestBodySize"),
        "the sample's 1 MB"
    );
    assert!(!chosen.contains(&"Consensus.WALDir"));
    let implemented = [
        "General.ListenAddress",
        "General.ListenPort",
        "general.tls",
        "General.LocalMSPDir",
        "General.LocalMSPID",
        "General.BootstrapMethod",
        "ChannelParticipation",
        "Admin",
    ];
    let warn: Vec<&str> = loaded
        .unimplemented(&implemented)
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(
        warn,
        [
            "General.Cluster.ClientCertificate",
            "General.Cluster.ClientPrivateKey",
            "General.Cluster.RootCAs",
            "Kafka.Retry.LongTotal",
            "Operations.ListenAddress",
            "Metrics.Provider"
        ]
    );
    // A section prefix covers only whole key parts.
    let warn = loaded.unimplemented(&[
        "General",
        "Operations",
        "Metrics",
        "Kafka.Retry.Long",
        "ChannelParticipation",
        "Admin",
    ]);
    assert_eq!(
        warn.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
        ["Kafka.Retry.LongTotal"]
    );
}

/// Found by `scripts/fuzz.sh localconfig`: a Consensus key with a multi-byte
/// character where an implemented key ends panicked (`orderer start` checks
/// `Consensus.WALDir`, 16 bytes).
#[test]
fn unimplemented_keys_with_multibyte_characters() {
    let (loaded, _) = load("Consensus:\n  Snap\u{20ac}Dir: /srv/snap\n", &[]).unwrap();
    let warn = loaded.unimplemented(&["Consensus.WALDir", "Consensus.Snap"]);
    let keys: Vec<&str> = warn.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["Consensus.Snap\u{20ac}Dir"]);
}

#[test]
fn flatten_lists_every_leaf() {
    let flat = LocalConfig::fabric_defaults().flatten();
    let get = |k: &str| {
        flat.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("General.ListenPort"), Some("7050"));
    assert_eq!(get("General.Authentication.TimeWindow"), Some("900s"));
    assert_eq!(get("General.BCCSP.SW.Hash"), Some("\"SHA2\""));
    assert_eq!(get("Kafka.Version"), Some("0.10.2.0"));
    assert_eq!(flat.len(), 106);
}

/// Fabric's own sample orderer.yaml at `$FABRIC_REF/src/sampleconfig/orderer.yaml`.
#[test]
fn fabric_sample_orderer_yaml() {
    let Ok(root) = std::env::var("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let path = Path::new(&root).join("src/sampleconfig/orderer.yaml");
    let loaded = LocalConfig::load(Some(&path), &env_of(&[])).unwrap();
    let dir = path.parent().unwrap().display().to_string();
    // Every value equals the sample value we know (or the zero value) ...
    let chosen: Vec<&Setting> = loaded.settings.iter().filter(|s| s.chosen).collect();
    assert!(
        chosen.is_empty(),
        "values unlike the known sample values: {chosen:?}"
    );
    // ... and every sample value we know is in the file.
    for (key, _, sample) in KNOWN_VALUES {
        let present = loaded.settings.iter().any(|s| s.key == *key);
        assert_eq!(present, sample.is_some(), "{key}");
    }
    assert!(loaded.settings.iter().all(|s| s.source == Source::File));
    let c = &loaded.config;
    assert_eq!(c.general.tls.root_cas, [format!("{dir}/tls/ca.crt")]);
    assert_eq!(c.general.tls.private_key, format!("{dir}/tls/server.key"));
    assert_eq!(c.general.local_msp_dir, format!("{dir}/msp"));
    assert_eq!(c.general.bootstrap_file, format!("{dir}/genesisblock"));
    assert_eq!(
        c.general.keepalive.server_min_interval,
        Duration::from_secs(60)
    );
    assert_eq!(c.kafka.retry.short_interval, Duration::from_secs(5));
    assert_eq!(c.kafka.topic.replication_factor, 3);
    assert_eq!(c.admin.listen_address, "127.0.0.1:9443");
    assert!(c.admin.tls.client_auth_required);
    assert_eq!(c.channel_participation.max_request_body_size, 1 << 20);
    assert_eq!(c.metrics.statsd.address, "127.0.0.1:8125");
    assert_eq!(
        loaded.etcdraft().unwrap().snap_dir,
        "/var/hyperledger/production/orderer/etcdraft/snapshot"
    );
    println!(
        "{} keys of Fabric's sample orderer.yaml read",
        loaded.settings.len()
    );
    // The test network's environment over the same file (its image ships this file).
    let net = LocalConfig::load(Some(&path), &env_of(TEST_NETWORK_ENV)).unwrap();
    assert!(net.ignored_env.is_empty(), "{:?}", net.ignored_env);
    assert_eq!(
        net.config.general.cluster.root_cas,
        ["/var/hyperledger/orderer/tls/ca.crt"]
    );
    assert_eq!(net.config.admin.listen_address, "0.0.0.0:7053");
    assert_eq!(
        net.settings
            .iter()
            .filter(|s| matches!(s.source, Source::Env(_)))
            .count(),
        TEST_NETWORK_ENV.len() - 1
    );
}
