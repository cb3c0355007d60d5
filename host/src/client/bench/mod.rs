//! `orderer bench`: offered Broadcast load against any orderer address (ours or
//! Fabric's), with Deliver followers that time the envelopes into blocks.
//!
//! All envelopes are signed before the clock starts, so the client measures the orderer
//! and not its own signing. Ack latency is per envelope: a stream's answers come in
//! order, so answer i belongs to envelope i, timed from the moment tonic took it from
//! our outbound stream (after the rate limiter released it, with `--rate`).
//! Followers seek from the channel's height at start to forever and count the
//! envelopes of every non-config block after it: envelopes of other clients sent
//! during the run count too.
//!
//! `orderer broadcast` is the same run without followers, reported on one line.

mod report;

use super::{DeliverSession, Identity, connect, position, process_cpu_seconds, status_name};
use crate::identity::Signer;
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use fabric_protos::common::{Block, Envelope, HeaderType, Status};
use fabric_protos::orderer::BroadcastResponse;
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::seek_info::SeekBehavior;
use futures::Stream;
use prost::Message;
use report::{Measured, OrdererUse, Report, round6, success};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio::time::timeout_at;
use tonic::transport::Channel;

/// What `orderer broadcast` and `orderer bench` share.
#[derive(Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub identity: Identity,
    /// Number of envelopes.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub count: usize,
    /// Payload data bytes per envelope. The signed envelope adds the headers and the
    /// client's certificate: 2000 gives 3,096-byte envelopes with the dev identity.
    #[arg(short = 's', long, default_value_t = 2000)]
    pub size: usize,
    /// Concurrent Broadcast streams; the envelopes are dealt round-robin.
    #[arg(short = 'k', long, default_value_t = 1)]
    pub streams: usize,
    /// The orderer's process id (same machine): also report its CPU time per envelope.
    #[arg(long)]
    pub orderer_pid: Option<u32>,
    /// Seconds the whole run (acks and deliveries) may take; what has not arrived by
    /// then is reported missing.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Spread the envelopes round-robin over this many channels, named
    /// `<channel>-0` .. `<channel>-<N-1>` (as `orderer bench-channels` joins them).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Every Broadcast stream on one HTTP/2 connection, as gRPC clients of other
    /// languages multiplex them (default: a connection per stream).
    #[arg(long)]
    pub one_connection: bool,
}

impl LoadArgs {
    /// The channel envelope `i` goes to.
    fn channel_of(&self, i: usize) -> String {
        match self.channels {
            0 | 1 => self.identity.channel.clone(),
            n => format!("{}-{}", self.identity.channel, i % n),
        }
    }
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Deliver streams that follow the channel until every envelope is in a block.
    #[arg(short = 'f', long, default_value_t = 1)]
    pub followers: usize,
    /// Total offered envelopes/s, spread evenly over the streams (default: as fast as
    /// the orderer takes them).
    #[arg(long)]
    pub rate: Option<f64>,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// How a run differs between `bench` and `broadcast`.
struct Plan {
    followers: usize,
    rate: Option<f64>,
    /// Reset the orderer's VmHWM first; `broadcast` leaves it alone so that a peak
    /// over several runs stays readable.
    reset_peak_rss: bool,
}

pub async fn bench(args: BenchArgs) -> Result<()> {
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of envelopes per second");
    }
    let plan = Plan {
        followers: args.followers,
        rate: args.rate,
        reset_peak_rss: true,
    };
    let report = measure(&args.load, &plan).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    report.check(args.load.timeout)
}

/// `orderer broadcast`: the bench without followers, on one line.
pub async fn broadcast(args: LoadArgs) -> Result<()> {
    let plan = Plan {
        followers: 0,
        rate: None,
        reset_peak_rss: false,
    };
    let report = measure(&args, &plan).await?;
    for (status, count) in report.statuses.iter().filter(|(s, _)| *s != "SUCCESS") {
        eprintln!("{status}: {}", count.first_info.as_deref().unwrap_or(""));
    }
    let counts: Vec<String> = report
        .statuses
        .iter()
        .map(|(s, c)| format!("{s}={}", c.count))
        .collect();
    println!(
        "broadcast {} envelopes ({} B each, {} B of payload data) over {} stream(s) in {:.3} s: {:.0} acks/s; {}",
        report.envelopes,
        report.envelope_bytes,
        report.payload_bytes,
        report.streams,
        report.duration_s,
        report.acks_per_s,
        counts.join(" ")
    );
    if let (Some(cpu), Some(per)) = (report.orderer_cpu_s, report.orderer_cpu_us_per_envelope) {
        println!("orderer CPU: {cpu:.2} s, {per:.1} µs per envelope");
    }
    report.check(args.timeout)
}

/// Shared by the tasks of one run.
struct Clock {
    start: Instant,
    deadline: tokio::time::Instant,
    acks: AtomicUsize,
    /// Envelopes each follower has seen so far.
    delivered: Vec<AtomicUsize>,
}

async fn measure(load: &LoadArgs, plan: &Plan) -> Result<Report> {
    if load.count == 0 {
        bail!("-n must be at least 1");
    }
    let id = &load.identity;
    if load.channels > 1 && plan.followers > 0 {
        bail!("--channels spreads the load over channels; followers follow one: use -f 0");
    }
    // One connection per Broadcast stream by default, as separate clients would have.
    let mut clients = Vec::new();
    for i in 0..load.streams.max(1) {
        clients.push(match clients.first() {
            Some(first) if load.one_connection && i > 0 => AtomicBroadcastClient::clone(first),
            _ => connect(id).await?,
        });
    }
    let signer = Signer::from_msp_dir(&id.msp_dir, &id.msp_id)?;
    let streams = load.streams.max(1);
    let batches = presign(&signer, load, streams);
    let envelope_bytes = batches
        .iter()
        .flatten()
        .map(|e| e.encoded_len())
        .sum::<usize>()
        / load.count;
    let sample: Vec<Envelope> = batches.iter().flatten().take(1000).cloned().collect();
    let opening = Duration::from_secs(load.timeout);
    let followers = tokio::time::timeout(opening, open_followers(id, plan.followers))
        .await
        .map_err(|_| {
            anyhow!(
                "no answer to the followers' first Deliver request within --timeout {} s",
                load.timeout
            )
        })??;

    let usage = Usage::before(load.orderer_pid, plan.reset_peak_rss)?;
    let (duration, tally, deliveries) = timed(clients, batches, followers, load, plan).await?;
    let (orderer, client_cpu) = usage.after()?;
    let floor_us = verify_floor_us(&signer, &sample)?;
    let measured = Measured {
        floor_us,
        envelope_bytes,
        duration,
        tally,
        deliveries,
        orderer,
        client_cpu,
    };
    Ok(Report::new(load, plan, streams, measured))
}

/// The clock runs here: every Broadcast stream until its last answer (that is the
/// duration) and every follower until its last envelope.
async fn timed(
    clients: Vec<AtomicBroadcastClient<Channel>>,
    batches: Vec<Vec<Envelope>>,
    followers: Vec<DeliverSession>,
    load: &LoadArgs,
    plan: &Plan,
) -> Result<(Duration, Tally, Vec<Delivery>)> {
    let start = Instant::now();
    let clock = Arc::new(Clock {
        start,
        deadline: (start + Duration::from_secs(load.timeout)).into(),
        acks: AtomicUsize::new(0),
        delivered: (0..followers.len()).map(|_| AtomicUsize::new(0)).collect(),
    });
    let progress = tokio::spawn(show_progress(clock.clone(), load.count));
    let stride = batches.len();
    let senders: Vec<_> = batches
        .into_iter()
        .zip(clients)
        .enumerate()
        .map(|(first, (batch, client))| {
            let pace = Pace {
                first,
                stride,
                rate: plan.rate,
            };
            tokio::spawn(broadcast_stream(client, batch, pace, clock.clone()))
        })
        .collect();
    // Followers wait for every envelope, or only for the acknowledged ones once the
    // answers are in: a rejected envelope never arrives.
    let (target, targets) = watch::channel(load.count);
    let watchers: Vec<_> = followers
        .into_iter()
        .enumerate()
        .map(|(f, session)| tokio::spawn(follow(session, f, targets.clone(), clock.clone())))
        .collect();

    let mut tally = Tally::default();
    for sender in senders {
        tally.merge(sender.await?);
    }
    let duration = match tally.last_answer {
        0 => start.elapsed(),
        ns => Duration::from_nanos(ns),
    };
    target.send_replace(success(&tally.statuses));
    let mut deliveries = Vec::new();
    for watcher in watchers {
        deliveries.push(watcher.await?);
    }
    progress.abort();
    clear_progress();
    Ok((duration, tally, deliveries))
}

/// CPU (orderer and client) and the orderer's peak RSS around the timed part.
struct Usage {
    orderer: Option<(u32, f64)>,
    peak_since_start: bool,
    client_cpu: f64,
}

impl Usage {
    fn before(pid: Option<u32>, reset_peak_rss: bool) -> Result<Usage> {
        Ok(Usage {
            peak_since_start: pid.is_some_and(|p| reset_peak_rss && reset_peak(p)),
            orderer: pid
                .map(|p| Ok::<_, anyhow::Error>((p, process_cpu_seconds(p)?)))
                .transpose()?,
            client_cpu: process_cpu_seconds(std::process::id())?,
        })
    }

    fn after(self) -> Result<(Option<OrdererUse>, f64)> {
        let client_cpu = process_cpu_seconds(std::process::id())? - self.client_cpu;
        let orderer = match self.orderer {
            Some((pid, before)) => Some(OrdererUse {
                cpu_s: process_cpu_seconds(pid)? - before,
                peak_rss_bytes: peak_rss_bytes(pid)?,
                peak_since_start: self.peak_since_start,
            }),
            None => None,
        };
        Ok((orderer, client_cpu))
    }
}

/// Signs `count` envelopes on every core (the orderer is idle meanwhile) and deals
/// them round-robin over the streams.
fn presign(signer: &Signer, load: &LoadArgs, streams: usize) -> Vec<Vec<Envelope>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let count = load.count;
    let signed: Vec<Vec<Envelope>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * count / threads..(t + 1) * count / threads;
                scope.spawn(move || {
                    range
                        .map(|i| transaction(signer, &load.channel_of(i), i, load.size))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing thread"))
            .collect()
    });
    let mut batches: Vec<Vec<Envelope>> = (0..streams)
        .map(|_| Vec::with_capacity(count / streams + 1))
        .collect();
    for (i, env) in signed.into_iter().flatten().enumerate() {
        batches[i % streams].push(env);
    }
    batches
}

/// The floor of an orderer's CPU per envelope: µs for one ECDSA P-256 verify of an
/// envelope's signature over its payload (which hashes the payload), with the ring
/// verifier our orderer uses, in this thread's CPU time; every sample must verify.
fn verify_floor_us(signer: &Signer, sample: &[Envelope]) -> Result<f64> {
    use crate::component::RingCrypto;
    use ordering_core::Crypto;
    let point = signer.verifying_key().to_encoded_point(false);
    let started = thread_cpu_seconds();
    for env in sample {
        if !RingCrypto.verify_p256(point.as_bytes(), &env.payload, &env.signature) {
            bail!("the client's own signature does not verify");
        }
    }
    Ok((thread_cpu_seconds() - started) * 1e6 / sample.len().max(1) as f64)
}

fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Envelope `i`: an ENDORSER_TRANSACTION whose payload data differs per envelope.
fn transaction(signer: &Signer, channel: &str, i: usize, size: usize) -> Envelope {
    let data = Bytes::from((0..size).map(|j| (i + j) as u8).collect::<Vec<u8>>());
    signer.signed_envelope(
        HeaderType::EndorserTransaction,
        channel,
        data,
        SystemTime::now(),
    )
}

/// Deliver streams already asked for every block from the channel's current height
/// on, so that none can miss a block of the run.
async fn open_followers(id: &Identity, count: usize) -> Result<Vec<DeliverSession>> {
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        sessions.push(DeliverSession::open(id).await?);
    }
    let Some(first) = sessions.first_mut() else {
        return Ok(sessions);
    };
    let height = first.tip().await?.header.unwrap_or_default().number + 1;
    for session in &sessions {
        let from = position(&height.to_string())?;
        session
            .send(from, position("forever")?, SeekBehavior::BlockUntilReady)
            .await?;
    }
    Ok(sessions)
}

/// When a stream's envelopes may go: envelope j of stream `first` is envelope
/// `j * stride + first` of the run, due at that index / rate.
#[derive(Clone, Copy)]
struct Pace {
    first: usize,
    stride: usize,
    rate: Option<f64>,
}

impl Pace {
    fn due(&self, start: Instant, j: usize) -> Option<Instant> {
        let index = (j * self.stride + self.first) as f64;
        self.rate
            .map(|r| start + Duration::from_secs_f64(index / r))
    }
}

/// The stream tonic sends from: each envelope waits for its due time, and the time
/// tonic takes it (nanoseconds since start) goes into `sent_at`.
fn released(
    envelopes: Vec<Envelope>,
    pace: Pace,
    start: Instant,
    sent_at: Arc<[AtomicU64]>,
) -> impl Stream<Item = Envelope> + Send + 'static {
    let items = envelopes.into_iter().enumerate();
    futures::stream::unfold((items, sent_at), move |(mut items, sent_at)| async move {
        let (j, env) = items.next()?;
        // Only a future due time costs a timer: envelopes already due go at once.
        if let Some(due) = pace.due(start, j).filter(|&due| due > Instant::now()) {
            tokio::time::sleep_until(due.into()).await;
        }
        sent_at[j].store(start.elapsed().as_nanos() as u64, Ordering::Release);
        Some((env, (items, sent_at)))
    })
}

/// The answers of one or more Broadcast streams.
#[derive(Default)]
struct Tally {
    /// Ack latency of every answer, nanoseconds.
    latencies: Vec<u64>,
    /// Status code -> (count, first info text).
    statuses: BTreeMap<i32, (usize, String)>,
    unanswered: usize,
    /// Why answers stopped early (a gRPC error, the timeout), first seen.
    stopped: Option<String>,
    /// When the last answer came, nanoseconds since start: the end of the
    /// duration, not the stream's close, which the orderer may delay.
    last_answer: u64,
}

impl Tally {
    /// An answer at `now` to the envelope handed over at `sent` (ns since start).
    fn answer(&mut self, resp: BroadcastResponse, sent: u64, now: u64) {
        self.latencies.push(now.saturating_sub(sent));
        self.last_answer = now;
        self.statuses.entry(resp.status).or_insert((0, resp.info)).0 += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (status, (count, info)) in other.statuses {
            self.statuses.entry(status).or_insert((0, info)).0 += count;
        }
        self.unanswered += other.unanswered;
        self.stopped = self.stopped.take().or(other.stopped);
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

async fn broadcast_stream(
    mut client: AtomicBroadcastClient<Channel>,
    envelopes: Vec<Envelope>,
    pace: Pace,
    clock: Arc<Clock>,
) -> Tally {
    let count = envelopes.len();
    let sent_at: Arc<[AtomicU64]> = (0..count).map(|_| AtomicU64::new(0)).collect();
    let outbound = released(envelopes, pace, clock.start, sent_at.clone());
    let mut tally = Tally {
        latencies: Vec::with_capacity(count),
        ..Tally::default()
    };
    let answers = async {
        let mut inbound = client.broadcast(outbound).await?.into_inner();
        while let Some(resp) = inbound.message().await? {
            let Some(sent) = sent_at.get(tally.latencies.len()) else {
                break;
            };
            let now = clock.start.elapsed().as_nanos() as u64;
            tally.answer(resp, sent.load(Ordering::Acquire), now);
            clock.acks.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<_, tonic::Status>(())
    };
    let outcome = timeout_at(clock.deadline, answers).await;
    tally.unanswered = count - tally.latencies.len();
    tally.stopped = match outcome {
        Ok(Ok(())) if tally.unanswered == 0 => None,
        Ok(Ok(())) => Some("the orderer closed the stream".into()),
        Ok(Err(status)) => Some(format!("gRPC {:?}: {}", status.code(), status.message())),
        Err(_) => Some("timed out".into()),
    };
    tally
}

/// What one follower saw.
#[derive(Serialize)]
struct Delivery {
    delivered: usize,
    /// When the block that completed the run's envelopes arrived.
    last_envelope_s: Option<f64>,
    error: Option<String>,
}

/// Counts the envelopes of non-config blocks until `target` have arrived (the
/// sender of `target` outlives the followers, so `changed` never fails).
async fn follow(
    mut session: DeliverSession,
    slot: usize,
    mut target: watch::Receiver<usize>,
    clock: Arc<Clock>,
) -> Delivery {
    let mut delivery = Delivery {
        delivered: 0,
        last_envelope_s: None,
        error: None,
    };
    let blocks = async {
        while delivery.delivered < *target.borrow_and_update() {
            let block = tokio::select! {
                next = session.next() => next?,
                _ = target.changed() => continue,
            };
            let block = block.map_err(|s| anyhow!("deliver ended with {}", status_name(s)))?;
            if !is_config(&block) {
                delivery.delivered += block.data.as_ref().map_or(0, |d| d.data.len());
                clock.delivered[slot].store(delivery.delivered, Ordering::Relaxed);
            }
        }
        delivery.last_envelope_s = Some(round6(clock.start.elapsed().as_secs_f64()));
        anyhow::Ok(())
    };
    let outcome = timeout_at(clock.deadline, blocks).await;
    delivery.error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => Some("timed out".into()),
    };
    delivery
}

fn is_config(block: &Block) -> bool {
    let first = block.data.as_ref().and_then(|d| d.data.first());
    first
        .and_then(|raw| Envelope::decode(raw.clone()).ok())
        .and_then(|env| crate::protoutil::channel_header(&env).ok())
        .is_some_and(|h| h.r#type == HeaderType::Config as i32)
}

/// About once a second on a terminal's stderr, overwritten in place.
async fn show_progress(clock: Arc<Clock>, count: usize) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let acks = clock.acks.load(Ordering::Relaxed);
        let secs = clock.start.elapsed().as_secs_f64();
        let delivered = clock
            .delivered
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .min();
        let delivered = delivered.map_or(String::new(), |d| format!(", delivered {d}/{count}"));
        eprint!(
            "\r{acks}/{count} acks ({:.0}/s){delivered}   ",
            acks as f64 / secs
        );
    }
}

fn clear_progress() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}

/// Sets the kernel's peak-RSS mark (VmHWM) of `pid` back to its current RSS, so that
/// the peak covers the run only; false when not allowed.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// VmHWM of `pid`, from /proc (Linux).
fn peak_rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("{path}: no VmHWM"))?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::report::percentile_ms;
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile_ms(&ns, 50), Some(50.0));
        assert_eq!(percentile_ms(&ns, 99), Some(99.0));
        assert_eq!(percentile_ms(&ns, 100), Some(100.0));
        assert_eq!(percentile_ms(&[1_234_567], 50), Some(1.234));
        assert_eq!(percentile_ms(&[], 50), None);
    }

    #[test]
    fn pace_spreads_the_rate_over_streams() {
        let start = Instant::now();
        let pace = Pace {
            first: 1,
            stride: 4,
            rate: Some(100.0),
        };
        // Envelope 2 of stream 1 is envelope 9 of the run: due at 90 ms.
        assert_eq!(pace.due(start, 2), Some(start + Duration::from_millis(90)));
        assert_eq!(Pace { rate: None, ..pace }.due(start, 2), None);
    }
}
