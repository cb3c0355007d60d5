//! Faults of a core: a trap (a panic is one), the call deadline, or the memory
//! limit. The message that met one is answered with INTERNAL_SERVER_ERROR; the
//! instance is dropped and the fault counted against the component, by whoever
//! keeps the channel's account ([`FaultSink`]).

use super::engine::HostState;
use super::{CoreComponent, CoreLimits};
use fabric_protos::common::Status;
use ordering_core::Rejection;
use wasmtime::{ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};

#[derive(Clone, Debug, thiserror::Error)]
#[error("ordering core fault: {detail}")]
pub struct CoreFault {
    pub kind: FaultKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Deadline,
    Memory,
    Trap,
}

impl CoreFault {
    pub fn to_rejection(&self) -> Rejection {
        Rejection::new(Status::InternalServerError, self.to_string())
    }
}

/// Where a channel counts the faults of its components (the hot-swap slot, which
/// rolls back a component that keeps faulting).
pub trait FaultSink: Send + Sync {
    fn record_fault(&self, component: &CoreComponent, fault: &CoreFault);
}

/// wasmtime's `StoreLimits`, remembering that the memory limit was hit so the fault
/// reads "memory limit" rather than a generic trap. Growing past the limit traps
/// (rather than `memory.grow` returning -1, which a Rust guest turns into an abort
/// anyway).
pub(super) struct Limiter {
    inner: StoreLimits,
    memory_bytes: usize,
    exceeded: bool,
}

impl Limiter {
    pub(super) fn new(memory_bytes: usize) -> Self {
        Limiter {
            inner: StoreLimitsBuilder::new().memory_size(memory_bytes).build(),
            memory_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed && desired > self.memory_bytes {
            self.exceeded = true;
            wasmtime::bail!(
                "memory limit of {} MiB per instance exceeded (growing to {} MiB)",
                self.memory_bytes >> 20,
                desired >> 20
            );
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Names what went wrong in a failed wasm call.
pub(super) fn classify(
    error: wasmtime::Error,
    store: &Store<HostState>,
    label: &str,
    limits: CoreLimits,
) -> CoreFault {
    if store.data().limiter.exceeded {
        return CoreFault {
            kind: FaultKind::Memory,
            detail: format!(
                "{label}: memory limit of {} MiB per instance exceeded",
                limits.memory_bytes >> 20
            ),
        };
    }
    let (kind, detail) = match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            FaultKind::Deadline,
            format!(
                "deadline of {} ms per call exceeded",
                limits.call_deadline.as_millis()
            ),
        ),
        Some(Trap::UnreachableCodeReached) => (
            FaultKind::Trap,
            format!(
                "{} (a panic in the component)",
                Trap::UnreachableCodeReached
            ),
        ),
        Some(trap) => (FaultKind::Trap, trap.to_string()),
        None => (FaultKind::Trap, error.root_cause().to_string()),
    };
    CoreFault {
        kind,
        detail: format!("{label}: {detail}"),
    }
}
