//! The component runtime: a core (a wasm component in wasmtime, or the core crate
//! linked natively with `--native-core`) and its channel instances. Calls are
//! synchronous and short (filters, cutter); in wasm each runs under a deadline and a
//! memory limit, so a component that traps, loops or blows up its memory answers that
//! message with INTERNAL_SERVER_ERROR and never takes the orderer down. The host's
//! crypto import runs at native speed, with `ring`.
//!
//! - `engine`: the wasmtime engine, its epoch thread, the linker, per-store state;
//! - `cache`: compiled components on disk;
//! - `fault`: what a fault is, the memory limiter, and who counts faults;
//! - `wasm` / `native`: the two implementations of [`Instance`], in the core's types.

mod cache;
mod crypto;
mod engine;
mod fault;
mod native;
mod wasm;

pub use cache::{CacheStats, ComponentCache};
pub use crypto::{HostCrypto, RingCrypto};
pub use engine::engine;
pub use fault::{CoreFault, FaultKind, FaultSink};

use anyhow::Result;
use ordering_core::blockbuilder::BuiltBlock;
use ordering_core::channel::Cut;
use ordering_core::filters::Verdict;
use ordering_core::{Crypto, Rejection};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use wasm::WasmCore;
use wasmtime::component::Component;

/// The core built by this workspace, embedded at compile time.
pub const BUILTIN_CORE: &[u8] = include_bytes!(env!("ORDERING_CORE_WASM"));

/// What the natively linked core goes by where a component has its SHA-256.
pub const NATIVE_CORE_ID: &str = "native";

/// A block the core cut: the encoded block without metadata, and the DER header.
pub type CoreBlock = BuiltBlock;

/// Wall-clock and memory limits every instance of a core runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreLimits {
    /// The budget of one call into the component; instantiation gets the same.
    pub call_deadline: Duration,
    /// The linear memory one instance may grow to, in bytes.
    pub memory_bytes: usize,
}

impl Default for CoreLimits {
    fn default() -> Self {
        CoreLimits {
            call_deadline: Duration::from_millis(200),
            memory_bytes: 256 << 20,
        }
    }
}

/// Why a channel instance could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The core refused the channel (e.g. a config block it cannot parse).
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Fault(#[from] CoreFault),
}

/// One channel instance in the core's own types: a wasm component's store, or the
/// natively linked crate. The outer error is a fault, the inner one the core's answer.
trait Instance: Send {
    fn validate(&mut self, envelope: &[u8], now: u64) -> Answer<Verdict>;
    fn authorize_deliver(&mut self, envelope: &[u8], now: u64) -> Answer<u64>;
    fn propose_config_update(&mut self, envelope: &[u8], now: u64) -> Answer<Vec<u8>>;
    fn validate_config(&mut self, envelope: &[u8], now: u64) -> Answer<Verdict>;
    fn propose_channel_creation(&mut self, envelope: &[u8], now: u64) -> Answer<Vec<u8>>;
    fn validate_orderer_transaction(
        &mut self,
        envelope: &[u8],
        now: u64,
        channels: u64,
    ) -> Answer<Verdict>;
    fn config_sequence(&mut self) -> Result<u64, CoreFault>;
    fn order(&mut self, envelope: &[u8], config_seq: u64, now: u64) -> Result<Cut, CoreFault>;
    fn cut(&mut self) -> Result<Option<BuiltBlock>, CoreFault>;
    fn batch_timeout_ms(&mut self) -> Result<u64, CoreFault>;
    fn pending(&mut self) -> Result<Vec<Vec<u8>>, CoreFault>;
}

type Answer<T> = Result<Result<T, Rejection>, CoreFault>;

/// A core ready to instantiate many times: a compiled component, named by the
/// SHA-256 of its bytes, or the core crate linked into the host (`--native-core`).
/// Name and version are what it answered to `describe` when loaded.
pub struct CoreComponent {
    runtime: Option<WasmCore>,
    sha256: String,
    name: String,
    version: String,
    limits: CoreLimits,
    /// "name version (sha256 prefix)", for fault texts and logs.
    label: Arc<str>,
    crypto: HostCrypto,
}

impl std::fmt::Debug for CoreComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CoreComponent({})", self.label)
    }
}

impl CoreComponent {
    /// Compiles a component (its bytes) without the disk cache, default limits.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        let component = Component::new(engine(), wasm)
            .map_err(|e| anyhow::anyhow!("compiling the core component: {e}"))?;
        Self::from_component(
            &component,
            hex::encode(Sha256::digest(wasm)),
            CoreLimits::default(),
        )
    }

    pub fn builtin() -> Result<Self> {
        Self::new(BUILTIN_CORE)
    }

    /// The built-in core linked natively (no policy, like the built-in component).
    pub fn native() -> Self {
        let (name, version) = native::describe();
        CoreComponent {
            runtime: None,
            label: format!("{name} {version} ({NATIVE_CORE_ID})").into(),
            sha256: NATIVE_CORE_ID.into(),
            name,
            version,
            limits: CoreLimits::default(),
            crypto: Arc::new(RingCrypto),
        }
    }

    /// The same component with other arithmetic behind its crypto import (benches take
    /// the ECDSA verify out with it). Not for the natively linked core, whose crypto
    /// is [`RingCrypto`] by type.
    pub fn with_crypto(mut self, crypto: impl Crypto + Send + Sync + 'static) -> Self {
        self.crypto = Arc::new(crypto);
        self
    }

    fn from_component(component: &Component, sha256: String, limits: CoreLimits) -> Result<Self> {
        let wasm = WasmCore::link(component)?;
        let crypto: HostCrypto = Arc::new(RingCrypto);
        let (name, version) = wasm
            .describe(limits, crypto.clone(), &sha256[..12])
            .map_err(|e| anyhow::anyhow!("describe: {e}"))?;
        Ok(CoreComponent {
            runtime: Some(wasm),
            label: format!("{name} {version} ({})", &sha256[..12]).into(),
            sha256,
            name,
            version,
            limits,
            crypto,
        })
    }

    /// The SHA-256 of the component's bytes, hex ([`NATIVE_CORE_ID`] for the native core).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn limits(&self) -> CoreLimits {
        self.limits
    }

    /// Whether this is the natively linked core rather than a wasm component.
    pub fn is_native(&self) -> bool {
        self.runtime.is_none()
    }

    /// Name and version the component reports (asked again, under the limits).
    pub fn describe(&self) -> Result<(String, String), CoreFault> {
        match &self.runtime {
            None => Ok(native::describe()),
            Some(wasm) => wasm.describe(self.limits, self.crypto.clone(), &self.label),
        }
    }

    /// Opens one channel instance from its latest config block and tip header.
    pub fn open_channel(
        &self,
        config_block: &[u8],
        tip_header: &[u8],
    ) -> Result<CoreChannel, OpenError> {
        let instance: Box<dyn Instance> = match &self.runtime {
            None => Box::new(native::NativeInstance::open(
                config_block,
                tip_header,
                &self.label,
            )?),
            Some(wasm) => Box::new(wasm.open(
                self.limits,
                self.crypto.clone(),
                &self.label,
                config_block,
                tip_header,
            )?),
        };
        Ok(CoreChannel {
            instance,
            label: self.label.clone(),
            fault: None,
        })
    }
}

/// One instance of the core holding one channel's state. A fault leaves it unusable:
/// every later call answers that fault again.
pub struct CoreChannel {
    instance: Box<dyn Instance>,
    label: Arc<str>,
    fault: Option<CoreFault>,
}

/// Counts and times one call into the core (`orderer_core_calls`, `_call_duration`).
fn timed<R>(call: &str, f: impl FnOnce() -> R) -> R {
    let started = std::time::Instant::now();
    let result = f();
    crate::operations::metrics().core_call(call, started.elapsed());
    result
}

impl CoreChannel {
    /// Runs one call unless an earlier one faulted; remembers a new fault.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Instance) -> Result<T, CoreFault>,
    ) -> Result<T, CoreFault> {
        if let Some(fault) = &self.fault {
            return Err(CoreFault {
                kind: fault.kind,
                detail: format!("{}: instance unusable after an earlier fault", self.label),
            });
        }
        f(self.instance.as_mut()).inspect_err(|fault| {
            tracing::error!("{fault}");
            self.fault = Some(fault.clone());
        })
    }

    /// Validation-side calls: a fault is answered like a rejection.
    fn answer<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Instance) -> Answer<T>,
    ) -> Result<T, Rejection> {
        self.call(f)
            .unwrap_or_else(|fault| Err(fault.to_rejection()))
    }

    pub fn validate(&mut self, envelope: &[u8], now_unix_nanos: u64) -> Result<Verdict, Rejection> {
        timed("validate", || {
            self.answer(|i| i.validate(envelope, now_unix_nanos))
        })
    }

    /// Ok: the creator certificate's NotAfter, in unix nanos.
    pub fn authorize_deliver(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<u64, Rejection> {
        timed("authorize_deliver", || {
            self.answer(|i| i.authorize_deliver(envelope, now_unix_nanos))
        })
    }

    /// Ok: the encoded ConfigEnvelope the update leads to, for the orderer to sign.
    pub fn propose_config_update(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, Rejection> {
        timed("propose_config_update", || {
            self.answer(|i| i.propose_config_update(envelope, now_unix_nanos))
        })
    }

    pub fn validate_config(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        self.answer(|i| i.validate_config(envelope, now_unix_nanos))
    }

    /// System channel: Ok is the encoded first ConfigEnvelope of the channel the
    /// creation request creates, for the orderer to sign.
    pub fn propose_channel_creation(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, Rejection> {
        self.answer(|i| i.propose_channel_creation(envelope, now_unix_nanos))
    }

    /// System channel: the filters of an ORDERER_TRANSACTION; `channels` is how many
    /// channels this orderer has.
    pub fn validate_orderer_transaction(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
        channels: u64,
    ) -> Result<Verdict, Rejection> {
        self.answer(|i| i.validate_orderer_transaction(envelope, now_unix_nanos, channels))
    }

    pub fn config_sequence(&mut self) -> Result<u64, CoreFault> {
        self.call(|i| i.config_sequence())
    }

    pub fn order(
        &mut self,
        envelope: &[u8],
        config_seq: u64,
        now_unix_nanos: u64,
    ) -> Result<Cut, CoreFault> {
        timed("order", || {
            self.call(|i| i.order(envelope, config_seq, now_unix_nanos))
        })
    }

    pub fn cut(&mut self) -> Result<Option<CoreBlock>, CoreFault> {
        timed("cut", || self.call(|i| i.cut()))
    }

    pub fn batch_timeout_ms(&mut self) -> Result<u64, CoreFault> {
        self.call(|i| i.batch_timeout_ms())
    }

    /// The envelopes pending in the cutter, in order (moved across on a hot swap).
    pub fn pending(&mut self) -> Result<Vec<Vec<u8>>, CoreFault> {
        self.call(|i| i.pending())
    }

    pub fn is_faulted(&self) -> bool {
        self.fault.is_some()
    }

    /// The fault that made this instance unusable, if one did.
    pub fn fault(&self) -> Option<&CoreFault> {
        self.fault.as_ref()
    }
}
