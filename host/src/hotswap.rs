//! Swapping a channel's core component while serving (DESIGN.md, "Hot swap").
//!
//! A swap is: load (compile or read the precompiled artifact, off the async runtime),
//! self-check (the candidate opens the channel at its current config and tip, and
//! answers `describe`), then switch. The chain task switches its cutter as an
//! ordered event on its queue: it reads the old instance's pending envelopes, opens
//! the new component at the ledger's tip and orders them into it again, so the
//! pending batch survives with no loss, no duplicate and no early cut (same batch
//! limits). Then the validator pool takes the new component: new validations run on
//! it, calls in flight finish on the old one, idle old instances are dropped.
//!
//! Faults (trap, deadline, memory limit) are counted per component; K of them within
//! T seconds roll the channel back to the previous component by itself.

use crate::component::{CoreComponent, CoreFault, CoreLimits};
use crate::registrar::ChainSupport;
use bytes::Bytes;
use prost::Message;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Tunables of the ordering core per channel.
#[derive(Clone, Debug)]
pub struct CoreSettings {
    /// Deadline per call and memory per instance.
    pub limits: CoreLimits,
    /// K: this many faults of the component in force within `fault_window`...
    pub fault_threshold: usize,
    /// T: ...roll the channel back to the previous component.
    pub fault_window: Duration,
    /// N: how many recent accepted envelopes a channel keeps for dry runs.
    pub recent_envelopes: usize,
    /// How many previous components a channel remembers (for rollback).
    pub history: usize,
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            limits: CoreLimits::default(),
            fault_threshold: 5,
            fault_window: Duration::from_secs(60),
            recent_envelopes: 1000,
            history: 8,
        }
    }
}

/// A channel's component in force, as the admin API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CoreState {
    pub channel: String,
    pub sha256: String,
    pub name: String,
    pub version: String,
    /// When it came into force on this channel, RFC 3339 (UTC).
    pub since: String,
    pub since_unix: u64,
    /// Faults (traps, deadlines, memory limit) of this component on this channel.
    pub faults: u64,
    /// Faults of every component this channel has run since start.
    pub faults_total: u64,
    /// Components it replaced, most recent first; `rollback` goes to the first.
    pub previous: Vec<ComponentInfo>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ComponentInfo {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub since: String,
    pub since_unix: u64,
    pub faults: u64,
}

/// An envelope of the channel's recent past the candidate would reject.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DryRunVerdict {
    /// Position among the recent envelopes checked, 0 the oldest.
    pub index: usize,
    pub tx_id: String,
    /// Fabric `common.Status` code and name.
    pub status: i32,
    pub status_name: String,
    pub info: String,
}

/// The last N envelopes the chain accepted, with the time they were ordered, for
/// dry runs. Written by the chain task only.
pub struct RecentEnvelopes {
    capacity: usize,
    ring: Mutex<VecDeque<(Bytes, u64)>>,
}

impl RecentEnvelopes {
    pub fn new(capacity: usize) -> Self {
        RecentEnvelopes {
            capacity,
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
        }
    }

    pub fn push(&self, envelope: Bytes, now_unix_nanos: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut ring = self.ring.lock().unwrap();
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back((envelope, now_unix_nanos));
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<(Bytes, u64)> {
        self.ring.lock().unwrap().iter().cloned().collect()
    }
}

struct Entry {
    component: Arc<CoreComponent>,
    since: SystemTime,
    faults: u64,
}

impl Entry {
    fn new(component: Arc<CoreComponent>) -> Self {
        Entry {
            component,
            since: SystemTime::now(),
            faults: 0,
        }
    }

    fn info(&self) -> ComponentInfo {
        let since_unix = unix_seconds(self.since);
        ComponentInfo {
            sha256: self.component.sha256().to_string(),
            name: self.component.name().to_string(),
            version: self.component.version().to_string(),
            since: rfc3339(since_unix),
            since_unix,
            faults: self.faults,
        }
    }
}

struct SlotState {
    current: Entry,
    /// Most recent last.
    previous: Vec<Entry>,
    recent_faults: VecDeque<Instant>,
    faults_total: u64,
}

/// One channel's component in force, the ones it replaced, and their faults.
pub struct CoreSlot {
    channel_id: String,
    settings: CoreSettings,
    state: Mutex<SlotState>,
    /// One swap at a time per channel.
    swapping: tokio::sync::Mutex<()>,
    /// Asks the channel's supervisor to roll back from this component (sha256).
    rollback: mpsc::UnboundedSender<String>,
}

impl CoreSlot {
    pub fn new(
        channel_id: &str,
        component: Arc<CoreComponent>,
        settings: CoreSettings,
    ) -> (Arc<CoreSlot>, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = CoreSlot {
            channel_id: channel_id.to_string(),
            settings,
            state: Mutex::new(SlotState {
                current: Entry::new(component),
                previous: Vec::new(),
                recent_faults: VecDeque::new(),
                faults_total: 0,
            }),
            swapping: tokio::sync::Mutex::new(()),
            rollback: tx,
        };
        (Arc::new(slot), rx)
    }

    pub fn current(&self) -> Arc<CoreComponent> {
        self.state.lock().unwrap().current.component.clone()
    }

    pub fn state(&self) -> CoreState {
        let state = self.state.lock().unwrap();
        let current = state.current.info();
        CoreState {
            channel: self.channel_id.clone(),
            sha256: current.sha256,
            name: current.name,
            version: current.version,
            since: current.since,
            since_unix: current.since_unix,
            faults: current.faults,
            faults_total: state.faults_total,
            previous: state.previous.iter().rev().map(Entry::info).collect(),
        }
    }

    /// Counts a fault of `component`; K faults of the component in force within T
    /// ask the supervisor to roll back.
    pub fn record_fault(&self, component: &CoreComponent, fault: &CoreFault) {
        let mut state = self.state.lock().unwrap();
        state.faults_total += 1;
        if state.current.component.sha256() != component.sha256() {
            // A call that was in flight on a component already replaced.
            if let Some(entry) = state
                .previous
                .iter_mut()
                .rev()
                .find(|e| e.component.sha256() == component.sha256())
            {
                entry.faults += 1;
            }
            return;
        }
        state.current.faults += 1;
        let now = Instant::now();
        let window = self.settings.fault_window;
        state.recent_faults.push_back(now);
        while state
            .recent_faults
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            state.recent_faults.pop_front();
        }
        tracing::warn!(
            channel = %self.channel_id,
            faults = state.current.faults,
            "{fault} (within {window:?}: {} of {})",
            state.recent_faults.len(),
            self.settings.fault_threshold
        );
        if state.recent_faults.len() >= self.settings.fault_threshold.max(1) {
            state.recent_faults.clear();
            let _ = self.rollback.send(component.sha256().to_string());
        }
    }

    fn previous(&self) -> Option<Arc<CoreComponent>> {
        let state = self.state.lock().unwrap();
        state.previous.last().map(|e| e.component.clone())
    }

    /// `component` is in force; the one it replaced becomes the latest previous.
    fn installed(&self, component: Arc<CoreComponent>) {
        let mut state = self.state.lock().unwrap();
        let replaced = std::mem::replace(&mut state.current, Entry::new(component));
        state.previous.push(replaced);
        let excess = state.previous.len().saturating_sub(self.settings.history);
        state.previous.drain(..excess);
        state.recent_faults.clear();
    }

    /// The latest previous component is in force again; the one replaced is dropped.
    fn rolled_back(&self) {
        let mut state = self.state.lock().unwrap();
        if let Some(mut previous) = state.previous.pop() {
            previous.since = SystemTime::now();
            state.current = previous;
        }
        state.recent_faults.clear();
    }
}

/// Puts `component` in force on the channel (a no-op when it already is).
pub async fn install(
    support: &ChainSupport,
    component: Arc<CoreComponent>,
) -> Result<CoreState, String> {
    let _one_at_a_time = support.core.swapping.lock().await;
    if support.core.current().sha256() == component.sha256() {
        return Ok(support.core.state());
    }
    switch(support, component.clone()).await?;
    support.core.installed(component);
    let state = support.core.state();
    tracing::info!(
        channel = %support.channel_id,
        "ordering core {} {} ({}) in force",
        state.name,
        state.version,
        state.sha256
    );
    Ok(state)
}

/// Back to the previous component. With `from`, only if `from` (a sha256) is still
/// in force: an automatic rollback never goes back twice for one burst of faults.
pub async fn rollback(support: &ChainSupport, from: Option<&str>) -> Result<CoreState, String> {
    let _one_at_a_time = support.core.swapping.lock().await;
    if from.is_some_and(|sha| support.core.current().sha256() != sha) {
        return Ok(support.core.state());
    }
    let previous = support
        .core
        .previous()
        .ok_or("no previous component to roll back to")?;
    switch(support, previous).await?;
    support.core.rolled_back();
    let state = support.core.state();
    tracing::warn!(
        channel = %support.channel_id,
        "rolled back: ordering core {} {} ({}) in force",
        state.name,
        state.version,
        state.sha256
    );
    Ok(state)
}

/// Self-check, then the chain's cutter (an ordered event), then the validators.
async fn switch(support: &ChainSupport, component: Arc<CoreComponent>) -> Result<(), String> {
    let (config_block, _) = support.validators.config();
    let tip = support
        .ledger
        .tip_header()
        .unwrap_or_default()
        .encode_to_vec();
    let candidate = component.clone();
    tokio::task::spawn_blocking(move || {
        candidate.open_channel(&config_block, &tip)?;
        candidate.describe()?;
        anyhow::Ok(())
    })
    .await
    .map_err(|e| format!("self-check: {e}"))?
    .map_err(|e| format!("self-check: the component cannot open the channel: {e:#}"))?;
    support.chain.swap(component.clone()).await?;
    support.validators.set_core(component);
    Ok(())
}

/// Which of the channel's recent envelopes `candidate` would reject.
pub fn dry_run(
    candidate: &CoreComponent,
    config_block: &[u8],
    tip_header: &[u8],
    recent: &[(Bytes, u64)],
) -> Result<Vec<DryRunVerdict>, String> {
    let open = || {
        candidate
            .open_channel(config_block, tip_header)
            .map_err(|e| format!("the candidate cannot open the channel: {e:#}"))
    };
    let mut instance = open()?;
    let mut verdicts = Vec::new();
    for (index, (envelope, at)) in recent.iter().enumerate() {
        if instance.is_faulted() {
            instance = open()?;
        }
        if let Err(rejection) = instance.validate(envelope, *at) {
            verdicts.push(DryRunVerdict {
                index,
                tx_id: tx_id(envelope),
                status: rejection.status as i32,
                status_name: rejection.status.as_str_name().to_string(),
                info: rejection.info,
            });
        }
    }
    Ok(verdicts)
}

fn tx_id(envelope: &[u8]) -> String {
    fabric_protos::common::Envelope::decode(envelope)
        .ok()
        .and_then(|e| crate::broadcast::channel_header(&e).ok())
        .map(|h| h.tx_id)
        .unwrap_or_default()
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a unix time (proleptic Gregorian, UTC).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests;
