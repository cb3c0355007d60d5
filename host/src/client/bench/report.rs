//! What a bench run measured, and how it is printed (a table or one JSON object).

use super::*;

pub(super) struct OrdererUse {
    pub(super) cpu_s: f64,
    pub(super) peak_rss_bytes: u64,
    pub(super) peak_since_start: bool,
}

/// The raw results of a run, before they become a report.
pub(super) struct Measured {
    pub(super) envelope_bytes: usize,
    pub(super) duration: Duration,
    pub(super) tally: Tally,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) orderer: Option<OrdererUse>,
    pub(super) client_cpu: f64,
    pub(super) floor_us: f64,
}

#[derive(Serialize)]
pub(super) struct StatusCount {
    pub(super) count: usize,
    pub(super) first_info: Option<String>,
}

/// What `--json` prints; the table shows the same fields.
#[derive(Serialize)]
pub(super) struct Report {
    pub(super) orderer: String,
    pub(super) channel: String,
    pub(super) envelopes: usize,
    pub(super) streams: usize,
    /// Every stream on one HTTP/2 connection (`--one-connection`).
    pub(super) one_connection: bool,
    pub(super) followers: usize,
    /// Envelopes/s offered with --rate; None: as fast as the orderer takes them.
    pub(super) offered_rate: Option<f64>,
    /// Mean size of a signed envelope.
    pub(super) envelope_bytes: usize,
    pub(super) payload_bytes: usize,
    /// From the first envelope offered to the last answer (or to the end of the
    /// streams, without any answer).
    pub(super) duration_s: f64,
    pub(super) acks_per_s: f64,
    /// Envelopes / time until the last follower had every envelope.
    pub(super) delivered_per_s: Option<f64>,
    /// From start until the last follower got the block with the last envelope.
    pub(super) last_block_s: Option<f64>,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) latency_p50_ms: Option<f64>,
    pub(super) latency_p99_ms: Option<f64>,
    pub(super) latency_max_ms: Option<f64>,
    /// By status name; UNANSWERED carries why answers stopped.
    pub(super) statuses: BTreeMap<String, StatusCount>,
    pub(super) orderer_cpu_s: Option<f64>,
    pub(super) orderer_cpu_us_per_envelope: Option<f64>,
    /// One P-256 verify of an envelope's signature over its payload (hence one
    /// SHA-256 of it), on this machine during the run: what no orderer can go under.
    pub(super) floor_us_per_envelope: f64,
    /// orderer_cpu_us_per_envelope / floor_us_per_envelope.
    pub(super) orderer_cpu_vs_floor: Option<f64>,
    pub(super) orderer_peak_rss_bytes: Option<u64>,
    /// "run_start" when the peak could be reset before the run, else "process_start".
    pub(super) orderer_peak_rss_since: Option<&'static str>,
    pub(super) client_cpu_us_per_envelope: f64,
}

impl Report {
    pub(super) fn new(load: &LoadArgs, plan: &Plan, streams: usize, m: Measured) -> Report {
        let n = load.count;
        let acked = success(&m.tally.statuses);
        let duration_s = m.duration.as_secs_f64();
        let all_delivered = m.deliveries.iter().all(|d| d.last_envelope_s.is_some());
        let last_block_s = m
            .deliveries
            .iter()
            .filter_map(|d| d.last_envelope_s)
            .reduce(f64::max);
        let last_block_s = last_block_s.filter(|_| all_delivered);
        let mut latencies = m.tally.latencies;
        latencies.sort_unstable();
        let at = |percent| percentile_ms(&latencies, percent);
        let per_envelope = |cpu: f64| round3(cpu * 1e6 / n as f64);
        Report {
            orderer: load.identity.orderer.clone(),
            channel: load.identity.channel.clone(),
            envelopes: n,
            streams,
            one_connection: load.one_connection,
            followers: plan.followers,
            offered_rate: plan.rate,
            envelope_bytes: m.envelope_bytes,
            payload_bytes: load.size,
            duration_s: round6(duration_s),
            acks_per_s: round3(acked as f64 / duration_s),
            delivered_per_s: last_block_s.map(|s| round3(acked as f64 / s)),
            last_block_s,
            deliveries: m.deliveries,
            latency_p50_ms: at(50),
            latency_p99_ms: at(99),
            latency_max_ms: at(100),
            statuses: status_counts(m.tally.statuses, m.tally.unanswered, m.tally.stopped),
            orderer_cpu_s: m.orderer.as_ref().map(|o| round6(o.cpu_s)),
            orderer_cpu_us_per_envelope: m.orderer.as_ref().map(|o| per_envelope(o.cpu_s)),
            floor_us_per_envelope: round3(m.floor_us),
            orderer_cpu_vs_floor: m
                .orderer
                .as_ref()
                .map(|o| round3(o.cpu_s * 1e6 / n as f64 / m.floor_us)),
            orderer_peak_rss_bytes: m.orderer.as_ref().map(|o| o.peak_rss_bytes),
            orderer_peak_rss_since: m.orderer.as_ref().map(|o| {
                if o.peak_since_start {
                    "run_start"
                } else {
                    "process_start"
                }
            }),
            client_cpu_us_per_envelope: per_envelope(m.client_cpu),
        }
    }

    /// Err when an envelope was not acknowledged with SUCCESS or not delivered.
    pub(super) fn check(&self, timeout: u64) -> Result<()> {
        let acked = self.statuses.get("SUCCESS").map_or(0, |s| s.count);
        if acked < self.envelopes {
            bail!(
                "{} of {} envelopes were not acknowledged with SUCCESS",
                self.envelopes - acked,
                self.envelopes
            );
        }
        for (i, d) in self.deliveries.iter().enumerate() {
            if d.last_envelope_s.is_none() {
                let why = d.error.as_deref().unwrap_or("");
                bail!(
                    "follower {} received {} of {} envelopes within {timeout} s: {why}",
                    i + 1,
                    d.delivered,
                    self.envelopes
                );
            }
        }
        Ok(())
    }

    pub(super) fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            (
                "orderer".into(),
                format!("{} (channel {})", self.orderer, self.channel),
            ),
            (
                "envelopes".into(),
                format!(
                    "{} of {} B ({} B payload data)",
                    self.envelopes, self.envelope_bytes, self.payload_bytes
                ),
            ),
            (
                "streams".into(),
                format!(
                    "{} Broadcast{}, {} Deliver",
                    self.streams,
                    if self.one_connection {
                        " on one connection"
                    } else {
                        ""
                    },
                    self.followers
                ),
            ),
            (
                "offered".into(),
                self.offered_rate
                    .map_or("as fast as acknowledged".into(), |r| {
                        format!("{r} envelopes/s")
                    }),
            ),
            (
                "duration".into(),
                format!("{:.3} s (start to last ack)", self.duration_s),
            ),
            ("acks/s".into(), format!("{:.0}", self.acks_per_s)),
        ];
        if self.followers > 0 {
            rows.push((
                "delivered/s".into(),
                self.delivered_per_s
                    .map_or("-".into(), |r| format!("{r:.0}")),
            ));
            rows.push((
                "last block".into(),
                self.last_block_s
                    .map_or("-".into(), |s| format!("{s:.3} s after start")),
            ));
        }
        for (i, d) in self.deliveries.iter().enumerate() {
            let when = d.last_envelope_s.map_or_else(
                || d.error.clone().unwrap_or_default(),
                |s| format!("complete at {s:.3} s"),
            );
            rows.push((
                format!("follower {}", i + 1),
                format!("{} envelopes, {when}", d.delivered),
            ));
        }
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
        rows.push((
            "ack latency ms".into(),
            format!(
                "p50 {}  p99 {}  max {}",
                ms(self.latency_p50_ms),
                ms(self.latency_p99_ms),
                ms(self.latency_max_ms)
            ),
        ));
        for (status, s) in &self.statuses {
            let info = s
                .first_info
                .as_deref()
                .map_or(String::new(), |i| format!(" (first: {i})"));
            rows.push((status.clone(), format!("{}{info}", s.count)));
        }
        if let (Some(cpu), Some(per)) = (self.orderer_cpu_s, self.orderer_cpu_us_per_envelope) {
            rows.push((
                "orderer CPU".into(),
                format!("{per:.1} µs/envelope ({cpu:.2} s)"),
            ));
        }
        let ratio = self
            .orderer_cpu_vs_floor
            .map_or(String::new(), |r| format!(" (orderer: {r:.2}x)"));
        rows.push((
            "floor".into(),
            format!(
                "{:.1} µs/envelope: one P-256 verify over the payload{ratio}",
                self.floor_us_per_envelope
            ),
        ));
        if let (Some(rss), Some(since)) = (self.orderer_peak_rss_bytes, self.orderer_peak_rss_since)
        {
            let since = if since == "run_start" {
                "since the run started"
            } else {
                "since the orderer started"
            };
            rows.push((
                "orderer peak RSS".into(),
                format!("{:.1} MiB ({since})", rss as f64 / (1 << 20) as f64),
            ));
        }
        rows.push((
            "client CPU".into(),
            format!("{:.1} µs/envelope", self.client_cpu_us_per_envelope),
        ));
        rows.iter().map(|(k, v)| format!("{k:<18}{v}\n")).collect()
    }
}

pub(super) fn success(statuses: &BTreeMap<i32, (usize, String)>) -> usize {
    statuses.get(&(Status::Success as i32)).map_or(0, |s| s.0)
}

/// Counts by status name; first_info only where it tells something (not SUCCESS).
pub(super) fn status_counts(
    statuses: BTreeMap<i32, (usize, String)>,
    unanswered: usize,
    stopped: Option<String>,
) -> BTreeMap<String, StatusCount> {
    let mut counts: BTreeMap<String, StatusCount> = statuses
        .into_iter()
        .map(|(code, (count, info))| {
            let name = Status::try_from(code).map_or(code.to_string(), |s| s.as_str_name().into());
            let first_info = Some(info).filter(|i| !i.is_empty() && code != Status::Success as i32);
            (name, StatusCount { count, first_info })
        })
        .collect();
    if unanswered > 0 {
        counts.insert(
            "UNANSWERED".into(),
            StatusCount {
                count: unanswered,
                first_info: stopped,
            },
        );
    }
    counts
}

/// Nearest-rank percentile of sorted nanoseconds, in ms with µs precision.
pub(super) fn percentile_ms(sorted: &[u64], percent: usize) -> Option<f64> {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).map(|ns| (ns / 1000) as f64 / 1000.0)
}

pub(super) fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

pub(super) fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
