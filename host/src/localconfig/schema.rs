//! The struct tree of Fabric v2.5's orderer.yaml (its `localconfig.TopLevel`), one
//! field per key, with Fabric's key spelling. A field's type is the Go field's: ports
//! are u16, Go's `int` is i64, sizes are Fabric's int32/uint32. `Default` is Go's zero
//! value; [`super::LocalConfig::fabric_defaults`] has the values Fabric fills in.

use std::time::Duration;

use super::KafkaVersion;
use super::decode::section;
use super::yaml::Value;

section! {
    /// The whole file (`TopLevel`).
    #[derive(Default)]
    LocalConfig {
        general: General = "General",
        file_ledger: FileLedger = "FileLedger",
        /// Parsed and checked as Fabric does; Kafka ordering is not implemented.
        kafka: Kafka = "Kafka",
        debug: Debug = "Debug",
        /// Free-form settings for the consensus plugin (etcdraft: WALDir, SnapDir,
        /// EvictionSuspicion, TickIntervalOverride), as Fabric keeps them.
        consensus: Value = "Consensus",
        operations: Operations = "Operations",
        metrics: Metrics = "Metrics",
        channel_participation: ChannelParticipation = "ChannelParticipation",
        admin: Admin = "Admin",
    }
}

section! {
    /// Settings common to every orderer type.
    #[derive(Default)]
    General {
        listen_address: String = "ListenAddress",
        listen_port: u16 = "ListenPort",
        /// The client-facing gRPC listener's TLS (and, by default, the cluster's).
        tls: Tls = "TLS",
        cluster: Cluster = "Cluster",
        keepalive: Keepalive = "Keepalive",
        /// Not in the sample file; Fabric v2.5 reads it but no longer uses it.
        connection_timeout: Duration = "ConnectionTimeout",
        /// Old name of BootstrapMethod, used when BootstrapMethod is unset.
        genesis_method: String = "GenesisMethod",
        /// Old name of BootstrapFile, used when BootstrapFile is unset.
        genesis_file: String = "GenesisFile",
        /// `file` (a system channel from BootstrapFile) or `none`.
        bootstrap_method: String = "BootstrapMethod",
        bootstrap_file: String = "BootstrapFile",
        profile: Profile = "Profile",
        local_msp_dir: String = "LocalMSPDir",
        local_msp_id: String = "LocalMSPID",
        bccsp: Bccsp = "BCCSP",
        authentication: Authentication = "Authentication",
        max_recv_msg_size: i32 = "MaxRecvMsgSize",
        max_send_msg_size: i32 = "MaxSendMsgSize",
    }
}

section! {
    /// Intra-cluster (Raft/BFT) communication.
    #[derive(Default)]
    Cluster {
        /// With ListenPort, ServerCertificate and ServerPrivateKey: a separate
        /// cluster listener; all four unset means the general listener serves it.
        listen_address: String = "ListenAddress",
        listen_port: u16 = "ListenPort",
        /// Not translated against the config folder (Fabric does not either).
        server_certificate: String = "ServerCertificate",
        server_private_key: String = "ServerPrivateKey",
        /// Unset: General.TLS.Certificate is used.
        client_certificate: String = "ClientCertificate",
        /// Unset: General.TLS.PrivateKey is used.
        client_private_key: String = "ClientPrivateKey",
        root_cas: Vec<String> = "RootCAs",
        dial_timeout: Duration = "DialTimeout",
        rpc_timeout: Duration = "RPCTimeout",
        replication_buffer_size: i64 = "ReplicationBufferSize",
        replication_pull_timeout: Duration = "ReplicationPullTimeout",
        replication_retry_timeout: Duration = "ReplicationRetryTimeout",
        replication_background_refresh_interval: Duration = "ReplicationBackgroundRefreshInterval",
        replication_max_retries: i64 = "ReplicationMaxRetries",
        /// Egress buffer per peer, in messages.
        send_buffer_size: i64 = "SendBufferSize",
        cert_expiration_warning_threshold: Duration = "CertExpirationWarningThreshold",
        tls_handshake_time_shift: Duration = "TLSHandshakeTimeShift",
    }
}

section! {
    /// gRPC server keepalive.
    #[derive(Default)]
    Keepalive {
        /// Clients pinging more often than this are disconnected.
        server_min_interval: Duration = "ServerMinInterval",
        server_interval: Duration = "ServerInterval",
        server_timeout: Duration = "ServerTimeout",
    }
}

section! {
    /// TLS of a listener. File names, except under Kafka, where Fabric takes PEM text
    /// (or `{File: path}`).
    #[derive(Default)]
    Tls {
        enabled: bool = "Enabled",
        private_key: String = "PrivateKey",
        certificate: String = "Certificate",
        /// Extra CAs for outbound connections to other orderers.
        root_cas: Vec<String> = "RootCAs",
        client_auth_required: bool = "ClientAuthRequired",
        /// Extra CAs for client certificates, on top of the channels' MSPs.
        client_root_cas: Vec<String> = "ClientRootCAs",
        /// Accept handshakes as if the clock were this much earlier (expired certs).
        tls_handshake_time_shift: Duration = "TLSHandshakeTimeShift",
    }
}

section! {
    /// Kafka SASL/PLAIN credentials.
    #[derive(Default)]
    SaslPlain {
        enabled: bool = "Enabled",
        user: String = "User",
        password: String = "Password",
    }
}

section! {
    /// Client message authentication.
    #[derive(Default)]
    Authentication {
        /// Accepted skew between a Deliver request's timestamp and the server clock.
        time_window: Duration = "TimeWindow",
        no_expiration_checks: bool = "NoExpirationChecks",
    }
}

section! {
    /// Go pprof HTTP endpoint.
    #[derive(Default)]
    Profile {
        enabled: bool = "Enabled",
        address: String = "Address",
    }
}

section! {
    /// Block storage.
    #[derive(Default)]
    FileLedger {
        location: String = "Location",
        /// Accepted for compatibility; Fabric ignores it.
        prefix: String = "Prefix",
    }
}

section! {
    /// The Kafka-based orderer's client settings.
    #[derive(Default)]
    Kafka {
        retry: Retry = "Retry",
        verbose: bool = "Verbose",
        version: KafkaVersion = "Version",
        tls: Tls = "TLS",
        sasl_plain: SaslPlain = "SASLPlain",
        topic: Topic = "Topic",
    }
}

section! {
    /// Kafka connection retries.
    #[derive(Default)]
    Retry {
        short_interval: Duration = "ShortInterval",
        short_total: Duration = "ShortTotal",
        long_interval: Duration = "LongInterval",
        long_total: Duration = "LongTotal",
        network_timeouts: NetworkTimeouts = "NetworkTimeouts",
        metadata: RetryPolicy = "Metadata",
        producer: RetryPolicy = "Producer",
        consumer: ConsumerRetry = "Consumer",
    }
}

section! {
    /// Kafka socket timeouts.
    #[derive(Default)]
    NetworkTimeouts {
        dial_timeout: Duration = "DialTimeout",
        read_timeout: Duration = "ReadTimeout",
        write_timeout: Duration = "WriteTimeout",
    }
}

section! {
    /// Kafka metadata and producer retries (Fabric's `Metadata` and `Producer`).
    #[derive(Default)]
    RetryPolicy {
        retry_max: i64 = "RetryMax",
        retry_backoff: Duration = "RetryBackoff",
    }
}

section! {
    /// Kafka consumer retries.
    #[derive(Default)]
    ConsumerRetry {
        retry_backoff: Duration = "RetryBackoff",
    }
}

section! {
    /// Kafka topic creation.
    #[derive(Default)]
    Topic {
        replication_factor: i16 = "ReplicationFactor",
    }
}

section! {
    /// Request tracing to files.
    #[derive(Default)]
    Debug {
        broadcast_trace_dir: String = "BroadcastTraceDir",
        deliver_trace_dir: String = "DeliverTraceDir",
    }
}

section! {
    /// The operations (health, metrics, log level) HTTP server. Its TLS file names are
    /// not translated against the config folder (Fabric does not either).
    #[derive(Default)]
    Operations {
        listen_address: String = "ListenAddress",
        tls: Tls = "TLS",
    }
}

section! {
    /// Metrics: `prometheus`, `statsd`, or anything else for none.
    #[derive(Default)]
    Metrics {
        provider: String = "Provider",
        statsd: Statsd = "Statsd",
    }
}

section! {
    /// The statsd client.
    #[derive(Default)]
    Statsd {
        /// `udp` or `tcp`.
        network: String = "Network",
        address: String = "Address",
        write_interval: Duration = "WriteInterval",
        prefix: String = "Prefix",
    }
}

section! {
    /// The admin (channel participation) HTTP server. With TLS it requires mutual TLS;
    /// its TLS file names are not translated against the config folder.
    #[derive(Default)]
    Admin {
        listen_address: String = "ListenAddress",
        tls: Tls = "TLS",
    }
}

section! {
    /// The channel participation API (served by the admin server).
    #[derive(Default)]
    ChannelParticipation {
        enabled: bool = "Enabled",
        /// Bytes; `1 MB`-style sizes accepted. Absent, Fabric leaves it 0 (its
        /// documented 1 MB is only the sample file's value), so every join is refused.
        max_request_body_size: u32 = "MaxRequestBodySize",
    }
}

section! {
    /// The crypto provider. Fabric decodes this section apart: keys absent from the
    /// file read no environment variable, unknown keys are ignored, and absent keys
    /// keep the defaults (SW, SHA2, 256).
    Bccsp lenient = true {
        /// `SW`; `PKCS11` only in Fabric builds with the pkcs11 tag.
        default: String = "Default",
        sw: SwOpts = "SW",
        /// Ignored by Fabric's default build (no pkcs11 tag), parsed here to be seen.
        pkcs11: Pkcs11Opts = "PKCS11",
    }
}

impl Default for Bccsp {
    fn default() -> Self {
        Bccsp {
            default: "SW".into(),
            sw: SwOpts::default(),
            pkcs11: Pkcs11Opts::default(),
        }
    }
}

section! {
    /// The software crypto provider.
    SwOpts lenient = true {
        hash: String = "Hash",
        security: i64 = "Security",
        file_key_store: FileKeyStore = "FileKeyStore",
    }
}

impl Default for SwOpts {
    fn default() -> Self {
        SwOpts {
            hash: "SHA2".into(),
            security: 256,
            file_key_store: FileKeyStore::default(),
        }
    }
}

section! {
    /// Where the software provider keeps keys.
    #[derive(Default)]
    FileKeyStore lenient = true {
        /// Dead in Fabric v2.5: its decoder matches the Go field name KeyStorePath, not
        /// this key, so the orderer always uses LocalMSPDir/keystore.
        key_store: String = "KeyStore",
    }
}

section! {
    /// The PKCS#11 provider.
    #[derive(Default)]
    Pkcs11Opts lenient = true {
        library: String = "Library",
        label: String = "Label",
        pin: String = "Pin",
        hash: String = "Hash",
        security: i64 = "Security",
        software_verify: bool = "SoftwareVerify",
        immutable: bool = "Immutable",
        alt_id: String = "AltID",
    }
}
