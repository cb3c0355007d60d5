//! The wasm ordering core inside wasmtime: one engine per process (epoch interruption
//! on), compiled components cached on disk by SHA-256, one `Store` per channel
//! instance. Calls are synchronous and short (filters, cutter) and each runs under a
//! deadline and a memory limit: a component that traps, loops or blows up its memory
//! answers that message with INTERNAL_SERVER_ERROR, it never takes the orderer down.
//! The host's crypto import runs at native speed, with `ring`. With `--native-core` the
//! same core crate runs linked into the host instead (see `native`), behind the same
//! types, to measure what wasm costs.

use anyhow::Result;
use fabric_protos::common::Status;
use ordering_core::{Crypto, NativeCrypto, Rejection};
use sha2::{Digest, Sha256};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod native;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "ordering-core",
});

use exports::fabric::orderer::core::{BuiltBlock, Cut, Rejection as WitRejection, Verdict};

/// The core built by this workspace, embedded at compile time.
pub const BUILTIN_CORE: &[u8] = include_bytes!(env!("ORDERING_CORE_WASM"));

/// The host's arithmetic for the core's `crypto` import: `ring`, whose ECDSA P-256
/// verify takes ~36 µs here against ~185 µs for RustCrypto's (`NativeCrypto`, which
/// stays the reference). The answers are the same: a signature verifies under both
/// or neither (low-S is the core's check, made before it calls; high-S signatures
/// verify here).
#[derive(Clone, Copy, Debug, Default)]
pub struct RingCrypto;

impl Crypto for RingCrypto {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, data);
        digest
            .as_ref()
            .try_into()
            .expect("a SHA-256 digest is 32 bytes")
    }

    fn verify_p256(&self, public_key: &[u8], message: &[u8], signature_der: &[u8]) -> bool {
        // ring takes uncompressed SEC1 points only; a compressed key (which Go's x509,
        // hence Fabric, would refuse anyway) gets NativeCrypto's answer, so wasm and
        // native builds never disagree.
        if public_key.len() != 65 || public_key[0] != 0x04 {
            return NativeCrypto.verify_p256(public_key, message, signature_der);
        }
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            public_key,
        )
        .verify(message, signature_der)
        .is_ok()
    }
}

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

/// How often the engine's epoch advances; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The process's one engine: epoch interruption on, the epoch advanced every
/// [`EPOCH_TICK`] by a background thread. Every `Store` gets a deadline before it
/// instantiates and before each call (without one, instantiation itself traps).
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).expect("creating the wasmtime engine");
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch thread");
        engine
    })
}

/// The host's imports, linked once.
fn linker() -> &'static Linker<HostState> {
    static LINKER: OnceLock<Linker<HostState>> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("linking WASI");
        OrderingCore::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .expect("linking the crypto import");
        linker
    })
}

/// Epoch ticks for a deadline: rounded up, plus one for the tick in progress.
fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1) + 1
}

/// The key of this engine's compiled code in cache file names: a SHA-256 of
/// [`Engine::precompile_compatibility_hash`] (wasmtime version, target, settings).
fn engine_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        struct ShaHasher(Sha256);
        impl std::hash::Hasher for ShaHasher {
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
            fn finish(&self) -> u64 {
                let digest = self.0.clone().finalize();
                u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
            }
        }
        let mut hasher = ShaHasher(Sha256::new());
        engine().precompile_compatibility_hash().hash(&mut hasher);
        hex::encode(&hasher.0.finalize()[..8])
    })
}

/// A fault inside a component: a trap (a panic is one), the call deadline, or the
/// memory limit. The message that met it is answered with INTERNAL_SERVER_ERROR and
/// this text; the instance is dropped and the fault counted against the component.
#[derive(Clone, Debug)]
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

impl std::fmt::Display for CoreFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ordering core fault: {}", self.detail)
    }
}

impl std::error::Error for CoreFault {}

impl CoreFault {
    pub fn to_rejection(&self) -> Rejection {
        Rejection::new(Status::InternalServerError, self.to_string())
    }
}

/// Per-instance host state: an empty WASI context (the core does no I/O; std's
/// imports still need satisfying), the crypto import, and the memory limiter.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    crypto: HostCrypto,
}

/// The arithmetic behind a component's crypto import: [`RingCrypto`] unless
/// [`CoreComponent::with_crypto`] says otherwise.
pub type HostCrypto = Arc<dyn Crypto + Send + Sync>;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl fabric::orderer::crypto::Host for HostState {
    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        self.crypto.sha256(&data).to_vec()
    }

    fn verify_p256(&mut self, public_key: Vec<u8>, message: Vec<u8>, signature: Vec<u8>) -> bool {
        self.crypto.verify_p256(&public_key, &message, &signature)
    }
}

/// wasmtime's `StoreLimits`, remembering that the memory limit was hit so the fault
/// reads "memory limit" rather than a generic trap. Growing past the limit traps
/// (rather than `memory.grow` returning -1, which a Rust guest turns into an abort
/// anyway).
struct Limiter {
    inner: StoreLimits,
    memory_bytes: usize,
    exceeded: bool,
}

impl Limiter {
    fn new(memory_bytes: usize) -> Self {
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

/// Where compiled components live: `<data-dir>/components/<sha256>-<engine>.cwasm`,
/// so a restart (or loading the same bytes again) deserializes instead of compiling.
pub struct ComponentCache {
    dir: PathBuf,
    compiled: AtomicU64,
    deserialized: AtomicU64,
}

/// How a cache served its loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Compiled with cranelift (a miss).
    pub compiled: u64,
    /// Deserialized from a precompiled artifact on disk (a hit).
    pub deserialized: u64,
}

impl ComponentCache {
    pub fn new(dir: PathBuf) -> Self {
        ComponentCache {
            dir,
            compiled: AtomicU64::new(0),
            deserialized: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            deserialized: self.deserialized.load(Ordering::Relaxed),
        }
    }

    /// The artifact file of a component.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", engine_key()))
    }

    /// Compiles `wasm` (or loads its precompiled artifact), links the host's imports
    /// and checks it answers `describe`. Blocking and CPU-heavy on a miss (~100 ms):
    /// call it off the async runtime.
    pub fn load(&self, wasm: &[u8], limits: CoreLimits) -> Result<CoreComponent> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let path = self.path(&sha256);
        let component = match self.deserialize(&path) {
            Some(component) => component,
            None => self.compile(wasm, &path)?,
        };
        CoreComponent::from_component(&component, sha256, limits)
    }

    fn deserialize(&self, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output: we
        // wrote it, with `Engine::precompile_component` of this engine (its settings
        // are in the file name, and wasmtime checks its version and settings header
        // again), to a temporary name that is fsynced and renamed into place, so no
        // torn file is ever under this name. The folder is the orderer's data folder:
        // whoever can write there can already replace the ledger and the signing key.
        match unsafe { Component::deserialize_file(engine(), path) } {
            Ok(component) => {
                self.deserialized.fetch_add(1, Ordering::Relaxed);
                Some(component)
            }
            Err(e) => {
                tracing::warn!("ignoring precompiled component {}: {e:#}", path.display());
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    fn compile(&self, wasm: &[u8], path: &Path) -> Result<Component> {
        let artifact = engine()
            .precompile_component(wasm)
            .map_err(|e| anyhow::anyhow!("compiling the core component: {e}"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = write_atomically(path, &artifact) {
            tracing::warn!(
                "could not cache the compiled component at {}: {e:#}",
                path.display()
            );
        }
        // SAFETY: `artifact` is what `precompile_component` of this engine just returned.
        unsafe { Component::deserialize(engine(), &artifact) }
            .map_err(|e| anyhow::anyhow!("loading the compiled component: {e}"))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("cache files live in a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A core ready to instantiate many times: a compiled component, named by the
/// SHA-256 of its bytes, or the core crate linked into the host (`--native-core`).
/// Name and version are what it answered to `describe` when loaded.
pub struct CoreComponent {
    runtime: Runtime,
    sha256: String,
    name: String,
    version: String,
    limits: CoreLimits,
    /// "name version (sha256 prefix)", for fault texts and logs.
    label: Arc<str>,
    crypto: HostCrypto,
}

enum Runtime {
    Wasm(Box<OrderingCorePre<HostState>>),
    /// The built-in core's code compiled into the host: what the wasm build costs is
    /// measured against it. Panics are still caught as faults; deadlines and memory
    /// limits do not apply.
    Native,
}

/// What the natively linked core goes by where a component has its SHA-256.
pub const NATIVE_CORE_ID: &str = "native";

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
            runtime: Runtime::Native,
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
        let pre = linker()
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("linking the core component: {e}"))?;
        let pre = OrderingCorePre::new(pre)
            .map_err(|e| anyhow::anyhow!("the component does not export the core: {e}"))?;
        let mut core = CoreComponent {
            runtime: Runtime::Wasm(Box::new(pre)),
            label: sha256[..12].into(),
            sha256,
            name: String::new(),
            version: String::new(),
            limits,
            crypto: Arc::new(RingCrypto),
        };
        let (name, version) = core
            .describe()
            .map_err(|e| anyhow::anyhow!("describe: {e}"))?;
        core.label = format!("{name} {version} ({})", &core.sha256[..12]).into();
        core.name = name;
        core.version = version;
        Ok(core)
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
        matches!(self.runtime, Runtime::Native)
    }

    /// Name and version the component reports (asked again, under the limits).
    pub fn describe(&self) -> Result<(String, String), CoreFault> {
        let Runtime::Wasm(pre) = &self.runtime else {
            return Ok(native::describe());
        };
        let (mut store, bindings) = self.instantiate(pre)?;
        store.set_epoch_deadline(deadline_ticks(self.limits.call_deadline));
        bindings
            .fabric_orderer_core()
            .call_describe(&mut store)
            .map_err(|e| classify(e, &store, &self.label, self.limits))
    }

    fn instantiate(
        &self,
        pre: &OrderingCorePre<HostState>,
    ) -> Result<(Store<HostState>, OrderingCore), CoreFault> {
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(self.limits.memory_bytes),
            crypto: self.crypto.clone(),
        };
        let mut store = Store::new(engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(self.limits.call_deadline));
        match pre.instantiate(&mut store) {
            Ok(bindings) => Ok((store, bindings)),
            Err(e) => Err(classify(e, &store, &self.label, self.limits)),
        }
    }

    /// Opens one channel instance from its latest config block and tip header.
    /// A fault comes back as a [`CoreFault`] inside the error.
    pub fn open_channel(&self, config_block: &[u8], tip_header: &[u8]) -> Result<CoreChannel> {
        let instance = match &self.runtime {
            Runtime::Native => {
                let channel = native::open(config_block, tip_header, &self.label)?;
                Instance::Native(Box::new(channel))
            }
            Runtime::Wasm(pre) => {
                let (mut store, bindings) = self.instantiate(pre)?;
                store.set_epoch_deadline(deadline_ticks(self.limits.call_deadline));
                let opened = bindings
                    .fabric_orderer_core()
                    .channel()
                    .call_open(&mut store, config_block, tip_header)
                    .map_err(|e| classify(e, &store, &self.label, self.limits))?;
                let channel = opened.map_err(|r| anyhow::anyhow!("{}", to_rejection(r)))?;
                Instance::Wasm(Box::new(WasmInstance {
                    store,
                    bindings,
                    channel,
                    deadline: deadline_ticks(self.limits.call_deadline),
                }))
            }
        };
        Ok(CoreChannel {
            instance,
            limits: self.limits,
            label: self.label.clone(),
            fault: None,
        })
    }
}

/// Names what went wrong in a failed call.
fn classify(
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
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CoreFault {
            kind: FaultKind::Deadline,
            detail: format!(
                "{label}: deadline of {} ms per call exceeded",
                limits.call_deadline.as_millis()
            ),
        },
        Some(Trap::UnreachableCodeReached) => CoreFault {
            kind: FaultKind::Trap,
            detail: format!(
                "{label}: {} (a panic in the component)",
                Trap::UnreachableCodeReached
            ),
        },
        Some(trap) => CoreFault {
            kind: FaultKind::Trap,
            detail: format!("{label}: {trap}"),
        },
        None => CoreFault {
            kind: FaultKind::Trap,
            detail: format!("{label}: {}", error.root_cause()),
        },
    }
}

/// One instance of the core holding one channel's state.
pub struct CoreChannel {
    instance: Instance,
    limits: CoreLimits,
    label: Arc<str>,
    /// A fault leaves a component instance unusable: it is dropped, not reused.
    fault: Option<CoreFault>,
}

enum Instance {
    Wasm(Box<WasmInstance>),
    Native(Box<native::NativeChannel>),
}

struct WasmInstance {
    store: Store<HostState>,
    bindings: OrderingCore,
    channel: ResourceAny,
    /// Epoch ticks each call may run.
    deadline: u64,
}

/// A block the core cut: the encoded block without metadata, and the DER header.
pub type CoreBlock = BuiltBlock;

impl CoreChannel {
    /// Runs one call, in the component under the deadline or natively; a failure (a
    /// trap, a panic) is a fault, and the instance is not called again.
    fn call<T>(
        &mut self,
        wasm: impl FnOnce(&mut Store<HostState>, &OrderingCore, ResourceAny) -> wasmtime::Result<T>,
        native: impl FnOnce(&mut native::NativeChannel) -> T,
    ) -> Result<T, CoreFault> {
        if let Some(fault) = &self.fault {
            return Err(CoreFault {
                kind: fault.kind,
                detail: format!("{}: instance unusable after an earlier fault", self.label),
            });
        }
        let result = match &mut self.instance {
            Instance::Native(channel) => native::call(channel, native, &self.label),
            Instance::Wasm(w) => {
                w.store.set_epoch_deadline(w.deadline);
                wasm(&mut w.store, &w.bindings, w.channel)
                    .map_err(|e| classify(e, &w.store, &self.label, self.limits))
            }
        };
        result.inspect_err(|fault| {
            tracing::error!("{fault}");
            self.fault = Some(fault.clone());
        })
    }

    /// Validation-side calls: a fault is answered like a rejection.
    fn answer<T>(
        &mut self,
        wasm: impl FnOnce(
            &mut Store<HostState>,
            &OrderingCore,
            ResourceAny,
        ) -> wasmtime::Result<Result<T, WitRejection>>,
        native: impl FnOnce(&mut native::NativeChannel) -> Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        let native = |c: &mut native::NativeChannel| native(c).map_err(native::rejection);
        match self.call(wasm, native) {
            Ok(answer) => answer.map_err(to_rejection),
            Err(fault) => Err(fault.to_rejection()),
        }
    }

    pub fn validate(&mut self, envelope: &[u8], now_unix_nanos: u64) -> Result<Verdict, Rejection> {
        self.answer(
            |store, b, ch| {
                b.fabric_orderer_core()
                    .channel()
                    .call_validate(store, ch, envelope, now_unix_nanos)
            },
            |c| c.validate(envelope, now_unix_nanos).map(native::verdict),
        )
    }

    /// Ok: the creator certificate's NotAfter, in unix nanos.
    pub fn authorize_deliver(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<u64, Rejection> {
        self.answer(
            |store, b, ch| {
                b.fabric_orderer_core().channel().call_authorize_deliver(
                    store,
                    ch,
                    envelope,
                    now_unix_nanos,
                )
            },
            |c| c.authorize_deliver(envelope, now_unix_nanos),
        )
    }

    pub fn is_faulted(&self) -> bool {
        self.fault.is_some()
    }

    /// The fault that made this instance unusable, if one did.
    pub fn fault(&self) -> Option<&CoreFault> {
        self.fault.as_ref()
    }

    /// Ok: the encoded ConfigEnvelope the update leads to, for the orderer to sign.
    pub fn propose_config_update(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, Rejection> {
        self.answer(
            |store, b, ch| {
                b.fabric_orderer_core()
                    .channel()
                    .call_propose_config_update(store, ch, envelope, now_unix_nanos)
            },
            |c| c.propose_config_update(envelope, now_unix_nanos),
        )
    }

    pub fn validate_config(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        self.answer(
            |store, b, ch| {
                b.fabric_orderer_core().channel().call_validate_config(
                    store,
                    ch,
                    envelope,
                    now_unix_nanos,
                )
            },
            |c| {
                c.validate_config(envelope, now_unix_nanos)
                    .map(native::verdict)
            },
        )
    }

    pub fn config_sequence(&mut self) -> Result<u64, CoreFault> {
        self.call(
            |store, b, ch| {
                b.fabric_orderer_core()
                    .channel()
                    .call_config_sequence(store, ch)
            },
            |c| c.config_sequence(),
        )
    }

    pub fn order(
        &mut self,
        envelope: &[u8],
        config_seq: u64,
        now_unix_nanos: u64,
    ) -> Result<Cut, CoreFault> {
        self.call(
            |store, b, ch| {
                b.fabric_orderer_core().channel().call_order(
                    store,
                    ch,
                    envelope,
                    config_seq,
                    now_unix_nanos,
                )
            },
            |c| native::cut(c.order(envelope, config_seq, now_unix_nanos)),
        )
    }

    pub fn cut(&mut self) -> Result<Option<CoreBlock>, CoreFault> {
        self.call(
            |store, b, ch| b.fabric_orderer_core().channel().call_cut(store, ch),
            |c| c.cut().map(native::built_block),
        )
    }

    pub fn batch_timeout_ms(&mut self) -> Result<u64, CoreFault> {
        self.call(
            |store, b, ch| {
                b.fabric_orderer_core()
                    .channel()
                    .call_batch_timeout_ms(store, ch)
            },
            |c| c.batch_timeout_ms(),
        )
    }

    /// The envelopes pending in the cutter, in order (moved across on a hot swap).
    pub fn pending(&mut self) -> Result<Vec<Vec<u8>>, CoreFault> {
        self.call(
            |store, b, ch| b.fabric_orderer_core().channel().call_pending(store, ch),
            |c| c.pending_envelopes(),
        )
    }
}

fn to_rejection(r: WitRejection) -> Rejection {
    let status = Status::try_from(r.status as i32).unwrap_or(Status::InternalServerError);
    Rejection::new(status, r.info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};

    /// P-256 order n, for the high-S twin n - s.
    const N: [u8; 32] = ordering_core::msp::P256_ORDER;

    fn sub_from_n(s: &[u8]) -> Vec<u8> {
        let mut padded = [0u8; 32];
        padded[32 - s.len()..].copy_from_slice(s);
        let (mut out, mut borrow) = ([0u8; 32], 0i16);
        for i in (0..32).rev() {
            let d = N[i] as i16 - padded[i] as i16 - borrow;
            borrow = i16::from(d < 0);
            out[i] = d.rem_euclid(256) as u8;
        }
        out.to_vec()
    }

    /// A DER INTEGER of a big-endian unsigned value, minimally encoded.
    fn der_int(v: &[u8]) -> Vec<u8> {
        let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1)..];
        let mut body = if v[0] & 0x80 != 0 { vec![0] } else { vec![] };
        body.extend_from_slice(v);
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    }

    fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = der_int(r);
        body.extend(der_int(s));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn ring_agrees_with_native_crypto() {
        let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let compressed = key
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec();
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        let other_public = other
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let message = vec![0xab; 3072];
        let sig: Signature = key.sign(&message);
        let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
        let valid = der_sig(&r, &s);
        let high_s = der_sig(&r, &sub_from_n(&s));
        let mut tampered_message = message.clone();
        tampered_message[100] ^= 1;
        let mut non_minimal = valid.clone();
        non_minimal[1] += 1;
        non_minimal[3] += 1;
        non_minimal.insert(4, 0);
        let mut trailing = valid.clone();
        trailing.push(0);
        // (name, public key, message, signature)
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], Vec<u8>);
        let cases: Vec<Case> = vec![
            ("valid", &public, &message, valid.clone()),
            ("high-S twin", &public, &message, high_s.clone()),
            (
                "tampered message",
                &public,
                &tampered_message,
                valid.clone(),
            ),
            ("other key", &other_public, &message, valid.clone()),
            ("compressed key", &compressed, &message, valid.clone()),
            ("truncated key", &public[..64], &message, valid.clone()),
            ("r = 0", &public, &message, der_sig(&[0], &s)),
            ("s = n", &public, &message, der_sig(&r, &N)),
            ("non-minimal DER", &public, &message, non_minimal),
            ("trailing byte", &public, &message, trailing),
            ("empty", &public, &message, vec![]),
            ("garbage", &public, &message, b"junk".to_vec()),
        ];
        for (name, key, message, sig) in &cases {
            assert_eq!(
                RingCrypto.verify_p256(key, message, sig),
                NativeCrypto.verify_p256(key, message, sig),
                "{name}"
            );
        }
        assert!(RingCrypto.verify_p256(&public, &message, &valid));
        assert!(
            RingCrypto.verify_p256(&public, &message, &high_s),
            "low-S is the core's check"
        );
        assert!(!RingCrypto.verify_p256(&public, &tampered_message, &valid));
        for data in [&b""[..], b"abc", &message] {
            assert_eq!(RingCrypto.sha256(data), NativeCrypto.sha256(data));
        }
    }
}
