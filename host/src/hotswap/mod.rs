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

pub mod signature;
mod slot;

pub use slot::{ComponentInfo, CoreSlot, CoreState, rfc3339};

use crate::component::{ComponentCache, CoreComponent, CoreLimits};
use crate::protoutil::channel_header;
use bytes::Bytes;
use prost::Message;
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
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
    /// A component is loaded only with an orderer org admin's signature
    /// ([`signature`]).
    pub require_signed: bool,
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            limits: CoreLimits::default(),
            fault_threshold: 5,
            fault_window: Duration::from_secs(60),
            recent_envelopes: 1000,
            history: 8,
            require_signed: false,
        }
    }
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

/// What a swap needs of a channel (multichannel's ChainSupport).
pub trait Swappable: Send + Sync + 'static {
    fn channel_id(&self) -> &str;
    fn slot(&self) -> &CoreSlot;
    fn recent(&self) -> &RecentEnvelopes;
    /// The latest config block and the tip header, where a candidate is checked.
    fn config_and_tip(&self) -> (Bytes, Vec<u8>);
    /// Puts `component` in force: the chain's cutter (an ordered event), then the
    /// validators.
    fn switch(
        &self,
        component: Arc<CoreComponent>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Loads a component (compiled off the async runtime, or read from the cache),
/// self-checks it on the channel, and puts it in force. No change on error.
pub async fn load(
    channel: &impl Swappable,
    cache: &Arc<ComponentCache>,
    limits: CoreLimits,
    wasm: Vec<u8>,
) -> Result<CoreState, String> {
    let started = std::time::Instant::now();
    let component = compile(cache, limits, wasm).await?;
    let loaded = started.elapsed();
    let state = install(channel, Arc::new(component)).await?;
    tracing::info!(
        channel = channel.channel_id(),
        "core swap: loaded in {loaded:?}, in force {:?} after the request",
        started.elapsed()
    );
    Ok(state)
}

async fn compile(
    cache: &Arc<ComponentCache>,
    limits: CoreLimits,
    wasm: Vec<u8>,
) -> Result<CoreComponent, String> {
    let cache = cache.clone();
    tokio::task::spawn_blocking(move || cache.load(&wasm, limits))
        .await
        .map_err(|e| format!("loading the component: {e}"))?
        .map_err(|e| format!("{e:#}"))
}

/// Puts `component` in force on the channel (a no-op when it already is).
pub async fn install(
    channel: &impl Swappable,
    component: Arc<CoreComponent>,
) -> Result<CoreState, String> {
    let slot = channel.slot();
    let _one_at_a_time = slot.swapping.lock().await;
    if slot.current().sha256() == component.sha256() {
        return Ok(slot.state());
    }
    switch(channel, component.clone()).await?;
    slot.installed(component);
    swapped(channel.channel_id(), "load");
    let state = slot.state();
    tracing::info!(
        channel = channel.channel_id(),
        "ordering core {} {} ({}) in force",
        state.name,
        state.version,
        state.sha256
    );
    Ok(state)
}

/// Back to the previous component. With `from`, only if `from` (a sha256) is still
/// in force: an automatic rollback never goes back twice for one burst of faults.
pub async fn rollback(channel: &impl Swappable, from: Option<&str>) -> Result<CoreState, String> {
    let slot = channel.slot();
    let _one_at_a_time = slot.swapping.lock().await;
    if from.is_some_and(|sha| slot.current().sha256() != sha) {
        return Ok(slot.state());
    }
    let previous = slot
        .previous()
        .ok_or("no previous component to roll back to")?;
    switch(channel, previous).await?;
    slot.rolled_back();
    swapped(
        channel.channel_id(),
        if from.is_some() {
            "automatic_rollback"
        } else {
            "rollback"
        },
    );
    let state = slot.state();
    tracing::warn!(
        channel = channel.channel_id(),
        "rolled back: ordering core {} {} ({}) in force",
        state.name,
        state.version,
        state.sha256
    );
    Ok(state)
}

fn swapped(channel: &str, kind: &str) {
    let swaps = &crate::operations::metrics().core_swaps;
    swaps.with_label_values(&[channel, kind]).inc();
}

/// Self-check (the candidate opens the channel at its config and tip, and answers
/// `describe`), then the switch.
async fn switch(channel: &impl Swappable, component: Arc<CoreComponent>) -> Result<(), String> {
    let (config_block, tip) = channel.config_and_tip();
    let candidate = component.clone();
    tokio::task::spawn_blocking(move || {
        candidate.open_channel(&config_block, &tip)?;
        candidate.describe()?;
        anyhow::Ok(())
    })
    .await
    .map_err(|e| format!("self-check: {e}"))?
    .map_err(|e| format!("self-check: the component cannot open the channel: {e:#}"))?;
    channel.switch(component).await
}

/// Which of the channel's recent accepted envelopes (the last N) the candidate
/// would reject, and why. Nothing changes.
pub async fn dry_run(
    channel: &impl Swappable,
    cache: &Arc<ComponentCache>,
    limits: CoreLimits,
    wasm: Vec<u8>,
) -> Result<Vec<DryRunVerdict>, String> {
    let recent = channel.recent().snapshot();
    let (config_block, tip) = channel.config_and_tip();
    let candidate = compile(cache, limits, wasm).await?;
    tokio::task::spawn_blocking(move || verdicts(&candidate, &config_block, &tip, &recent))
        .await
        .map_err(|e| format!("dry run: {e}"))?
}

fn verdicts(
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
        .and_then(|e| channel_header(&e).ok())
        .map(|h| h.tx_id)
        .unwrap_or_default()
}

/// Rolls a channel back by itself when its component keeps faulting.
pub fn supervise<S: Swappable>(channel: Weak<S>, mut rollbacks: mpsc::UnboundedReceiver<String>) {
    tokio::spawn(async move {
        while let Some(sha256) = rollbacks.recv().await {
            let Some(channel) = channel.upgrade() else {
                return;
            };
            tracing::error!(
                channel = channel.channel_id(),
                "component {sha256} faulted too often; rolling back to the last good component"
            );
            if let Err(e) = rollback(&*channel, Some(&sha256)).await {
                tracing::error!(
                    channel = channel.channel_id(),
                    "automatic rollback failed: {e}"
                );
            }
        }
    });
}

#[cfg(test)]
mod tests;
