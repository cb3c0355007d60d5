//! One channel's component in force, the ones it replaced, and their faults.

use super::CoreSettings;
use crate::component::{CoreComponent, CoreFault, FaultSink};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

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
    pub(super) swapping: tokio::sync::Mutex<()>,
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

    pub(super) fn previous(&self) -> Option<Arc<CoreComponent>> {
        let state = self.state.lock().unwrap();
        state.previous.last().map(|e| e.component.clone())
    }

    /// `component` is in force; the one it replaced becomes the latest previous.
    pub(super) fn installed(&self, component: Arc<CoreComponent>) {
        let mut state = self.state.lock().unwrap();
        let replaced = std::mem::replace(&mut state.current, Entry::new(component));
        state.previous.push(replaced);
        let excess = state.previous.len().saturating_sub(self.settings.history);
        state.previous.drain(..excess);
        state.recent_faults.clear();
    }

    /// The latest previous component is in force again; the one replaced is dropped.
    pub(super) fn rolled_back(&self) {
        let mut state = self.state.lock().unwrap();
        if let Some(mut previous) = state.previous.pop() {
            previous.since = SystemTime::now();
            state.current = previous;
        }
        state.recent_faults.clear();
    }
}

impl FaultSink for CoreSlot {
    /// Counts a fault of `component`; K faults of the component in force within T
    /// ask the supervisor to roll back.
    fn record_fault(&self, component: &CoreComponent, fault: &CoreFault) {
        let mut state = self.state.lock().unwrap();
        state.faults_total += 1;
        crate::operations::metrics()
            .core_faults
            .with_label_values(&[&self.channel_id])
            .inc();
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
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a unix time (proleptic Gregorian, UTC).
pub fn rfc3339(unix: u64) -> String {
    crate::protoutil::rfc3339_nano(unix, 0)
}
