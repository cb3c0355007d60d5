//! What Fabric does after decoding (its `completeInitialization`): zero values replaced
//! by defaults, start-up refusals for inconsistent settings, and relative paths taken
//! against the config file's folder. Also the default and sample values a set key is
//! compared with to tell whether the operator changed it.

use std::time::Duration;

use super::convert::translate_path;
use super::schema::LocalConfig;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Fills Fabric's defaults into zero fields, in Fabric's order. `Err((key, problem))`
/// where Fabric panics at start.
pub(crate) fn complete(c: &mut LocalConfig) -> Result<(), (&'static str, &'static str)> {
    fn set<T: PartialEq + Default>(field: &mut T, default: T) {
        if *field == T::default() {
            *field = default;
        }
    }
    let g = &mut c.general;
    set(&mut g.listen_address, "127.0.0.1".into());
    set(&mut g.listen_port, 7050);
    if g.bootstrap_method.is_empty() {
        g.bootstrap_method = match g.genesis_method.as_str() {
            "" => "file".into(),
            old => old.into(),
        };
    }
    if g.bootstrap_file.is_empty() {
        g.bootstrap_file = match g.genesis_file.as_str() {
            "" => "genesisblock".into(),
            old => old.into(),
        };
    }
    let cl = &mut g.cluster;
    set(&mut cl.rpc_timeout, secs(7));
    set(&mut cl.dial_timeout, secs(5));
    set(&mut cl.replication_max_retries, 12);
    set(&mut cl.send_buffer_size, 100);
    set(&mut cl.replication_buffer_size, 20 * 1024 * 1024);
    set(&mut cl.replication_pull_timeout, secs(5));
    set(&mut cl.replication_retry_timeout, secs(5));
    set(
        &mut cl.replication_background_refresh_interval,
        secs(5 * 60),
    );
    set(
        &mut cl.cert_expiration_warning_threshold,
        secs(7 * 24 * 3600),
    );

    let k = &mut c.kafka;
    if k.tls.enabled {
        // Fabric tests RootCAs against nil; an empty list counts as unset here.
        let missing = [
            (k.tls.certificate.is_empty(), "Kafka.TLS.Certificate"),
            (k.tls.private_key.is_empty(), "Kafka.TLS.PrivateKey"),
            (k.tls.root_cas.is_empty(), "Kafka.TLS.RootCAs"),
        ];
        if let Some((_, key)) = missing.into_iter().find(|(m, _)| *m) {
            return Err((key, "must be set when Kafka.TLS.Enabled is true"));
        }
    }
    if k.sasl_plain.enabled {
        if k.sasl_plain.user.is_empty() {
            return Err((
                "Kafka.SASLPlain.User",
                "must be set when Kafka.SASLPlain.Enabled is true",
            ));
        }
        if k.sasl_plain.password.is_empty() {
            let problem = "must be set when Kafka.SASLPlain.Enabled is true";
            return Err(("Kafka.SASLPlain.Password", problem));
        }
    }

    let g = &mut c.general;
    if g.profile.enabled {
        set(&mut g.profile.address, "0.0.0.0:6060".into());
    }
    set(&mut g.local_msp_dir, "msp".into());
    set(&mut g.local_msp_id, "SampleOrg".into());
    set(&mut g.authentication.time_window, secs(15 * 60));

    let r = &mut c.kafka.retry;
    set(&mut r.short_interval, secs(60));
    set(&mut r.short_total, secs(10 * 60));
    set(&mut r.long_interval, secs(10 * 60));
    set(&mut r.long_total, secs(12 * 3600));
    set(&mut r.network_timeouts.dial_timeout, secs(30));
    set(&mut r.network_timeouts.read_timeout, secs(30));
    set(&mut r.network_timeouts.write_timeout, secs(30));
    set(&mut r.metadata.retry_backoff, Duration::from_millis(250));
    set(&mut r.metadata.retry_max, 3);
    set(&mut r.producer.retry_backoff, Duration::from_millis(100));
    set(&mut r.producer.retry_max, 3);
    set(&mut r.consumer.retry_backoff, secs(2));
    set(&mut c.kafka.version, super::KafkaVersion([0, 10, 2, 0]));

    if c.admin.tls.enabled && !c.admin.tls.client_auth_required {
        let problem =
            "must be true when Admin.TLS.Enabled is true (the admin API needs mutual TLS)";
        return Err(("Admin.TLS.ClientAuthRequired", problem));
    }
    set(&mut c.general.max_recv_msg_size, 100 * 1024 * 1024);
    set(&mut c.general.max_send_msg_size, 100 * 1024 * 1024);
    Ok(())
}

/// The keys Fabric resolves against the config file's folder (`TranslatePathInPlace`):
/// General.TLS.{PrivateKey, Certificate, RootCAs, ClientRootCAs}, General.Cluster.
/// {ClientCertificate, ClientPrivateKey} (when set), General.Cluster.RootCAs,
/// General.BootstrapFile, General.LocalMSPDir and FileLedger.Location. An empty
/// PrivateKey, Certificate or Location becomes the folder itself, as in Fabric.
pub const TRANSLATED: [&str; 10] = [
    "General.TLS.PrivateKey",
    "General.TLS.Certificate",
    "General.TLS.RootCAs",
    "General.TLS.ClientRootCAs",
    "General.Cluster.ClientCertificate",
    "General.Cluster.ClientPrivateKey",
    "General.Cluster.RootCAs",
    "General.BootstrapFile",
    "General.LocalMSPDir",
    "FileLedger.Location",
];

/// Applies [`TRANSLATED`] with `dir`, the folder of the file (`filepath.Dir`).
pub(crate) fn translate(c: &mut LocalConfig, dir: &str) {
    let one = |p: &mut String| *p = translate_path(dir, p);
    let all = |v: &mut Vec<String>| v.iter_mut().for_each(|p| *p = translate_path(dir, p));
    let g = &mut c.general;
    if !g.cluster.client_private_key.is_empty() {
        one(&mut g.cluster.client_private_key);
    }
    if !g.cluster.client_certificate.is_empty() {
        one(&mut g.cluster.client_certificate);
    }
    all(&mut g.cluster.root_cas);
    all(&mut g.tls.root_cas);
    all(&mut g.tls.client_root_cas);
    one(&mut g.tls.private_key);
    one(&mut g.tls.certificate);
    one(&mut g.bootstrap_file);
    one(&mut g.local_msp_dir);
    one(&mut c.file_ledger.location);
}

/// Values a key may have without the operator having chosen anything: Fabric's
/// default for an absent key (besides the zero value), and the value in v2.5's sample
/// orderer.yaml (which Fabric's images ship as /etc/hyperledger/fabric/orderer.yaml).
/// As (key, default when absent, sample value), in YAML scalar syntax.
pub(crate) const KNOWN_VALUES: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "General.ListenAddress",
        Some("127.0.0.1"),
        Some("127.0.0.1"),
    ),
    ("General.ListenPort", Some("7050"), Some("7050")),
    ("General.TLS.PrivateKey", None, Some("tls/server.key")),
    ("General.TLS.Certificate", None, Some("tls/server.crt")),
    ("General.TLS.RootCAs", None, Some("tls/ca.crt")),
    ("General.Keepalive.ServerMinInterval", None, Some("60s")),
    ("General.Keepalive.ServerInterval", None, Some("7200s")),
    ("General.Keepalive.ServerTimeout", None, Some("20s")),
    (
        "General.MaxRecvMsgSize",
        Some("104857600"),
        Some("104857600"),
    ),
    (
        "General.MaxSendMsgSize",
        Some("104857600"),
        Some("104857600"),
    ),
    ("General.Cluster.SendBufferSize", Some("100"), Some("100")),
    ("General.Cluster.DialTimeout", Some("5s"), None),
    ("General.Cluster.RPCTimeout", Some("7s"), None),
    (
        "General.Cluster.ReplicationBufferSize",
        Some("20971520"),
        None,
    ),
    ("General.Cluster.ReplicationPullTimeout", Some("5s"), None),
    ("General.Cluster.ReplicationRetryTimeout", Some("5s"), None),
    (
        "General.Cluster.ReplicationBackgroundRefreshInterval",
        Some("5m"),
        None,
    ),
    ("General.Cluster.ReplicationMaxRetries", Some("12"), None),
    (
        "General.Cluster.CertExpirationWarningThreshold",
        Some("168h"),
        None,
    ),
    ("General.BootstrapMethod", Some("file"), Some("file")),
    ("General.BootstrapFile", Some("genesisblock"), None),
    ("General.LocalMSPDir", Some("msp"), Some("msp")),
    ("General.LocalMSPID", Some("SampleOrg"), Some("SampleOrg")),
    (
        "General.Profile.Address",
        Some("0.0.0.0:6060"),
        Some("0.0.0.0:6060"),
    ),
    ("General.BCCSP.Default", Some("SW"), Some("SW")),
    ("General.BCCSP.SW.Hash", Some("SHA2"), Some("SHA2")),
    ("General.BCCSP.SW.Security", Some("256"), Some("256")),
    (
        "General.Authentication.TimeWindow",
        Some("15m"),
        Some("15m"),
    ),
    (
        "FileLedger.Location",
        None,
        Some("/var/hyperledger/production/orderer"),
    ),
    ("Kafka.Retry.ShortInterval", Some("1m"), Some("5s")),
    ("Kafka.Retry.ShortTotal", Some("10m"), Some("10m")),
    ("Kafka.Retry.LongInterval", Some("10m"), Some("5m")),
    ("Kafka.Retry.LongTotal", Some("12h"), Some("12h")),
    (
        "Kafka.Retry.NetworkTimeouts.DialTimeout",
        Some("30s"),
        Some("10s"),
    ),
    (
        "Kafka.Retry.NetworkTimeouts.ReadTimeout",
        Some("30s"),
        Some("10s"),
    ),
    (
        "Kafka.Retry.NetworkTimeouts.WriteTimeout",
        Some("30s"),
        Some("10s"),
    ),
    (
        "Kafka.Retry.Metadata.RetryBackoff",
        Some("250ms"),
        Some("250ms"),
    ),
    ("Kafka.Retry.Metadata.RetryMax", Some("3"), Some("3")),
    (
        "Kafka.Retry.Producer.RetryBackoff",
        Some("100ms"),
        Some("100ms"),
    ),
    ("Kafka.Retry.Producer.RetryMax", Some("3"), Some("3")),
    ("Kafka.Retry.Consumer.RetryBackoff", Some("2s"), Some("2s")),
    ("Kafka.Version", Some("0.10.2.0"), None),
    ("Kafka.Topic.ReplicationFactor", None, Some("3")),
    ("Operations.ListenAddress", None, Some("127.0.0.1:8443")),
    ("Metrics.Provider", None, Some("disabled")),
    ("Metrics.Statsd.Network", None, Some("udp")),
    ("Metrics.Statsd.Address", None, Some("127.0.0.1:8125")),
    ("Metrics.Statsd.WriteInterval", None, Some("30s")),
    ("Admin.ListenAddress", None, Some("127.0.0.1:9443")),
    ("Admin.TLS.ClientAuthRequired", None, Some("true")),
    (
        "ChannelParticipation.MaxRequestBodySize",
        None,
        Some("1 MB"),
    ),
    (
        "Consensus.WALDir",
        None,
        Some("/var/hyperledger/production/orderer/etcdraft/wal"),
    ),
    (
        "Consensus.SnapDir",
        None,
        Some("/var/hyperledger/production/orderer/etcdraft/snapshot"),
    ),
];

/// Whether a leaf holds a value the operator chose: not the zero value, not Fabric's
/// default, not the sample file's value.
pub(crate) fn is_chosen(key: &str, leaf: &dyn super::decode::Leaf) -> bool {
    if leaf.is_zero() {
        return false;
    }
    let known = KNOWN_VALUES
        .iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(key));
    let Some((_, default, sample)) = known else {
        return true;
    };
    ![default, sample]
        .into_iter()
        .flatten()
        .any(|text| leaf.equals_text(text))
}
