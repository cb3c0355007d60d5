//! The metrics `/metrics` serves, with Fabric v2.5's names, labels, types and
//! buckets (orderer/common/broadcast, common/deliver, orderer/common/blockcutter,
//! common/ledger/blkstorage, common/grpcmetrics, orderer/common/multichannel,
//! core/operations), plus ours for the ordering core (`orderer_core_*`).
//!
//! One process-wide set ([`metrics`]): every instrumented site is one line, and no
//! module has to carry a handle through its constructors. Gauges that describe
//! state (heights, participation, the component in force) are not updated where the
//! state changes but set from the registrar just before a scrape
//! ([`super::Operations::on_scrape`]), so removed channels disappear from them.

use fabric_protos::common::{ChannelHeader, HeaderType, Status};
use prometheus::{
    Counter, CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry,
    TextEncoder,
};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Fabric's ledger commit-time buckets (blkstorage/metrics.go); every other
/// histogram takes Prometheus' defaults, as Fabric's do.
const COMMIT_TIME_BUCKETS: &[f64] = &[0.005, 0.01, 0.015, 0.05, 0.1, 1.0, 10.0];

pub struct Metrics {
    registry: Registry,
    pub broadcast_validate_duration: HistogramVec,
    pub broadcast_enqueue_duration: HistogramVec,
    pub broadcast_processed_count: CounterVec,
    pub deliver_streams_opened: Counter,
    pub deliver_streams_closed: Counter,
    pub deliver_requests_received: CounterVec,
    pub deliver_requests_completed: CounterVec,
    pub deliver_blocks_sent: CounterVec,
    pub blockcutter_block_fill_duration: HistogramVec,
    pub ledger_blockchain_height: GaugeVec,
    pub ledger_blockstorage_commit_time: HistogramVec,
    pub grpc_stream_request_duration: HistogramVec,
    pub grpc_stream_requests_received: CounterVec,
    pub grpc_stream_requests_completed: CounterVec,
    pub grpc_stream_messages_received: CounterVec,
    pub grpc_stream_messages_sent: CounterVec,
    pub grpc_unary_request_duration: HistogramVec,
    pub grpc_unary_requests_received: CounterVec,
    pub grpc_unary_requests_completed: CounterVec,
    pub participation_status: GaugeVec,
    pub participation_consensus_relation: GaugeVec,
    pub fabric_version: GaugeVec,
    pub core_calls: CounterVec,
    pub core_call_duration: HistogramVec,
    pub core_faults: CounterVec,
    pub core_swaps: CounterVec,
    pub core_component: GaugeVec,
    pub etcdraft: EtcdRaftMetrics,
}

/// Fabric's `consensus_etcdraft_*` metrics, labelled by channel.
pub struct EtcdRaftMetrics {
    pub cluster_size: GaugeVec,
    pub is_leader: GaugeVec,
    pub active_nodes: GaugeVec,
    pub committed_block_number: GaugeVec,
    pub snapshot_block_number: GaugeVec,
    pub leader_changes: CounterVec,
    pub proposal_failures: CounterVec,
    pub data_persist_duration: HistogramVec,
    pub normal_proposals_received: CounterVec,
    pub config_proposals_received: CounterVec,
}

/// The process' metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = Counter::new(name, help).expect("a valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let counters = |name: &str, help: &str, labels: &[&str]| {
            let c = CounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let histograms = |name: &str, help: &str, labels: &[&str], buckets: Option<&[f64]>| {
            let mut opts = HistogramOpts::new(name, help);
            if let Some(buckets) = buckets {
                opts = opts.buckets(buckets.to_vec());
            }
            let h = HistogramVec::new(opts, labels).expect("a valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        const BROADCAST: &[&str] = &["channel", "type", "status"];
        const DELIVER: &[&str] = &["channel", "filtered", "data_type"];
        const CHANNEL: &[&str] = &["channel"];
        const METHOD: &[&str] = &["service", "method"];
        const METHOD_CODE: &[&str] = &["service", "method", "code"];
        Metrics {
            broadcast_validate_duration: histograms(
                "broadcast_validate_duration",
                "The time to validate a transaction in seconds.",
                BROADCAST,
                None,
            ),
            broadcast_enqueue_duration: histograms(
                "broadcast_enqueue_duration",
                "The time to enqueue a transaction in seconds.",
                BROADCAST,
                None,
            ),
            broadcast_processed_count: counters(
                "broadcast_processed_count",
                "The number of transactions processed.",
                BROADCAST,
            ),
            deliver_streams_opened: counter(
                "deliver_streams_opened",
                "The number of GRPC streams that have been opened for the deliver service.",
            ),
            deliver_streams_closed: counter(
                "deliver_streams_closed",
                "The number of GRPC streams that have been closed for the deliver service.",
            ),
            deliver_requests_received: counters(
                "deliver_requests_received",
                "The number of deliver requests that have been received.",
                DELIVER,
            ),
            deliver_requests_completed: counters(
                "deliver_requests_completed",
                "The number of deliver requests that have been completed.",
                &["channel", "filtered", "data_type", "success"],
            ),
            deliver_blocks_sent: counters(
                "deliver_blocks_sent",
                "The number of blocks sent by the deliver service.",
                DELIVER,
            ),
            blockcutter_block_fill_duration: histograms(
                "blockcutter_block_fill_duration",
                "The time from first transaction enqueing to the block being cut in seconds.",
                CHANNEL,
                None,
            ),
            ledger_blockchain_height: gauges(
                "ledger_blockchain_height",
                "Height of the chain in blocks.",
                CHANNEL,
            ),
            ledger_blockstorage_commit_time: histograms(
                "ledger_blockstorage_commit_time",
                "Time taken in seconds for committing the block to storage.",
                CHANNEL,
                Some(COMMIT_TIME_BUCKETS),
            ),
            grpc_stream_request_duration: histograms(
                "grpc_server_stream_request_duration",
                "The time to complete a stream request.",
                METHOD_CODE,
                None,
            ),
            grpc_stream_requests_received: counters(
                "grpc_server_stream_requests_received",
                "The number of stream requests received.",
                METHOD,
            ),
            grpc_stream_requests_completed: counters(
                "grpc_server_stream_requests_completed",
                "The number of stream requests completed.",
                METHOD_CODE,
            ),
            grpc_stream_messages_received: counters(
                "grpc_server_stream_messages_received",
                "The number of stream messages received.",
                METHOD,
            ),
            grpc_stream_messages_sent: counters(
                "grpc_server_stream_messages_sent",
                "The number of stream messages sent.",
                METHOD,
            ),
            grpc_unary_request_duration: histograms(
                "grpc_server_unary_request_duration",
                "The time to complete a unary request.",
                METHOD_CODE,
                None,
            ),
            grpc_unary_requests_received: counters(
                "grpc_server_unary_requests_received",
                "The number of unary requests received.",
                METHOD,
            ),
            grpc_unary_requests_completed: counters(
                "grpc_server_unary_requests_completed",
                "The number of unary requests completed.",
                METHOD_CODE,
            ),
            participation_status: gauges(
                "participation_status",
                "The channel participation status of the node: 0 if inactive, 1 if active, 2 if onboarding, 3 if failed.",
                CHANNEL,
            ),
            participation_consensus_relation: gauges(
                "participation_consensus_relation",
                "The channel participation consensus relation of the node: 0 if other, 1 if consenter, 2 if follower, 3 if config-tracker.",
                CHANNEL,
            ),
            fabric_version: gauges(
                "fabric_version",
                "The active version of Fabric.",
                &["version"],
            ),
            core_calls: counters(
                "orderer_core_calls",
                "The number of calls into the ordering core component, by call.",
                &["call"],
            ),
            core_call_duration: histograms(
                "orderer_core_call_duration",
                "The time of one call into the ordering core component in seconds, by call (validate: Fabric's filters on one envelope).",
                &["call"],
                Some(&[
                    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                    0.01, 0.1, 1.0,
                ]),
            ),
            core_faults: counters(
                "orderer_core_faults",
                "The number of faults (traps, deadlines, memory limit) of a channel's core components.",
                CHANNEL,
            ),
            core_swaps: counters(
                "orderer_core_swaps",
                "The number of component swaps of a channel, by kind (load, rollback, automatic_rollback).",
                &["channel", "kind"],
            ),
            core_component: gauges(
                "orderer_core_component",
                "1 for the core component in force on a channel.",
                &["channel", "sha256", "name", "version"],
            ),
            etcdraft: EtcdRaftMetrics {
                cluster_size: gauges(
                    "consensus_etcdraft_cluster_size",
                    "Number of nodes in this channel.",
                    CHANNEL,
                ),
                is_leader: gauges(
                    "consensus_etcdraft_is_leader",
                    "The leadership status of the current node: 1 if it is the leader else 0.",
                    CHANNEL,
                ),
                active_nodes: gauges(
                    "consensus_etcdraft_active_nodes",
                    "Number of active nodes in this channel.",
                    CHANNEL,
                ),
                committed_block_number: gauges(
                    "consensus_etcdraft_committed_block_number",
                    "The block number of the latest block committed.",
                    CHANNEL,
                ),
                snapshot_block_number: gauges(
                    "consensus_etcdraft_snapshot_block_number",
                    "The block number of the latest snapshot.",
                    CHANNEL,
                ),
                leader_changes: counters(
                    "consensus_etcdraft_leader_changes",
                    "The number of leader changes since process start.",
                    CHANNEL,
                ),
                proposal_failures: counters(
                    "consensus_etcdraft_proposal_failures",
                    "The number of proposal failures.",
                    CHANNEL,
                ),
                data_persist_duration: histograms(
                    "consensus_etcdraft_data_persist_duration",
                    "The time taken for etcd/raft data to be persisted in storage (in seconds).",
                    CHANNEL,
                    None,
                ),
                normal_proposals_received: counters(
                    "consensus_etcdraft_normal_proposals_received",
                    "The total number of proposals received for normal type transactions.",
                    CHANNEL,
                ),
                config_proposals_received: counters(
                    "consensus_etcdraft_config_proposals_received",
                    "The total number of proposals received for config type transactions.",
                    CHANNEL,
                ),
            },
            registry,
        }
    }

    /// Everything registered, in Prometheus' text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a malformed family, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// One processed Broadcast message, as Fabric's MetricsTracker records it;
    /// `labels` are channel, type and status, as Fabric spells them (`SUCCESS`, `ENDORSER_TRANSACTION`),
    /// `unknown` where the header could not be read.
    pub fn broadcast(&self, labels: [&str; 3], validate: Duration, enqueue: Option<Duration>) {
        self.broadcast_validate_duration
            .with_label_values(&labels)
            .observe(validate.as_secs_f64());
        if let Some(enqueue) = enqueue {
            self.broadcast_enqueue_duration
                .with_label_values(&labels)
                .observe(enqueue.as_secs_f64());
        }
        self.broadcast_processed_count
            .with_label_values(&labels)
            .inc();
    }

    /// One call into a core instance took `took`.
    pub fn core_call(&self, call: &str, took: Duration) {
        self.core_calls.with_label_values(&[call]).inc();
        self.core_call_duration
            .with_label_values(&[call])
            .observe(took.as_secs_f64());
    }
}

/// Fabric's broadcast MetricsTracker: one per message, recorded with the answer.
pub struct BroadcastTracker {
    start: Instant,
    channel: String,
    kind: &'static str,
    validated: Option<Instant>,
}

impl Default for BroadcastTracker {
    fn default() -> Self {
        BroadcastTracker {
            start: Instant::now(),
            channel: "unknown".into(),
            kind: "unknown",
            validated: None,
        }
    }
}

impl BroadcastTracker {
    /// The message's channel header was read.
    pub fn header(&mut self, chdr: &ChannelHeader) {
        self.channel = chdr.channel_id.clone();
        self.kind = HeaderType::try_from(chdr.r#type).map_or("unknown", |t| t.as_str_name());
    }

    /// Validation is over; what follows is the enqueue (handing it to consensus).
    pub fn validated(&mut self) {
        self.validated = Some(Instant::now());
    }

    pub fn record(&self, status: i32) {
        let now = Instant::now();
        let status = Status::try_from(status).map_or("unknown", |s| s.as_str_name());
        let validated = self.validated.unwrap_or(now);
        let enqueue = self.validated.map(|v| now - v);
        let labels = [self.channel.as_str(), self.kind, status];
        metrics().broadcast(labels, validated - self.start, enqueue);
    }
}

/// A Deliver stream, counted opened now and closed when dropped.
pub struct DeliverStream(());

impl DeliverStream {
    pub fn open() -> DeliverStream {
        metrics().deliver_streams_opened.inc();
        DeliverStream(())
    }
}

impl Drop for DeliverStream {
    fn drop(&mut self) {
        metrics().deliver_streams_closed.inc();
    }
}

/// A Deliver request for a channel served: received now, completed when dropped,
/// successful only if [`DeliverRequest::finish`] says so.
pub struct DeliverRequest {
    channel: String,
    success: bool,
}

impl DeliverRequest {
    pub fn received(channel: &str) -> DeliverRequest {
        let m = metrics();
        m.deliver_requests_received
            .with_label_values(&deliver_labels(channel))
            .inc();
        DeliverRequest {
            channel: channel.to_string(),
            success: false,
        }
    }

    /// The request ends with `status` (None: the client went away).
    pub fn finish(mut self, status: Option<Status>) -> Option<Status> {
        self.success = status == Some(Status::Success);
        status
    }
}

impl Drop for DeliverRequest {
    fn drop(&mut self) {
        let [channel, filtered, data_type] = deliver_labels(&self.channel);
        let success = if self.success { "true" } else { "false" };
        metrics()
            .deliver_requests_completed
            .with_label_values(&[channel, filtered, data_type, success])
            .inc();
    }
}

/// One block sent on a Deliver stream of `channel`.
pub fn deliver_block_sent(channel: &str) {
    metrics()
        .deliver_blocks_sent
        .with_label_values(&deliver_labels(channel))
        .inc();
}

/// The ledger of `channel` committed `blocks` blocks together in `took`: each of them
/// waited that long.
pub fn ledger_committed(channel: &str, blocks: usize, took: Duration) {
    let histogram = metrics()
        .ledger_blockstorage_commit_time
        .with_label_values(&[channel]);
    for _ in 0..blocks {
        histogram.observe(took.as_secs_f64());
    }
}

/// A block of `channel` was cut `fill` after its first message was enqueued.
pub fn block_filled(channel: &str, fill: Duration) {
    metrics()
        .blockcutter_block_fill_duration
        .with_label_values(&[channel])
        .observe(fill.as_secs_f64());
}

/// Fabric's label values for a Deliver request on `channel`: never filtered, always
/// blocks (the orderer serves no filtered blocks or private data).
pub fn deliver_labels(channel: &str) -> [&str; 3] {
    [channel, "false", "block"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_labels_are_fabrics() {
        let m = metrics();
        m.broadcast(
            ["names-test", "ENDORSER_TRANSACTION", "SUCCESS"],
            Duration::from_micros(50),
            Some(Duration::from_micros(5)),
        );
        m.deliver_streams_opened.inc();
        m.ledger_blockstorage_commit_time
            .with_label_values(&["names-test"])
            .observe(0.002);
        let text = m.render();
        for line in [
            "# TYPE broadcast_processed_count counter",
            "broadcast_processed_count{channel=\"names-test\",status=\"SUCCESS\",type=\"ENDORSER_TRANSACTION\"} 1",
            "# TYPE broadcast_validate_duration histogram",
            "broadcast_validate_duration_bucket{channel=\"names-test\",status=\"SUCCESS\",type=\"ENDORSER_TRANSACTION\",le=\"0.005\"} 1",
            "# TYPE deliver_streams_opened counter",
            "ledger_blockstorage_commit_time_bucket{channel=\"names-test\",le=\"0.005\"} 1",
            "ledger_blockstorage_commit_time_bucket{channel=\"names-test\",le=\"0.015\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        // Go's client does not add `_total` to Fabric's counter names.
        assert!(!text.contains("broadcast_processed_count_total"));
    }
}
