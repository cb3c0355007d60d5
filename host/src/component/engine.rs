//! The process's one wasmtime engine (epoch interruption on, the epoch advanced by a
//! background thread), the linker of the host's imports, and the per-instance host
//! state: an empty WASI context, the crypto import and the memory limiter.

use super::crypto::HostCrypto;
use super::fault::Limiter;
use sha2::{Digest, Sha256};
use std::hash::Hash;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "ordering-core",
});

/// How often the engine's epoch advances; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine: every `Store` gets a deadline before it instantiates and before each
/// call (without one, instantiation itself traps).
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
pub(super) fn linker() -> &'static Linker<HostState> {
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
pub(super) fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1) + 1
}

/// The key of this engine's compiled code in cache file names: a SHA-256 of
/// [`Engine::precompile_compatibility_hash`] (wasmtime version, target, settings).
pub(super) fn engine_key() -> &'static str {
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

/// Per-instance host state: the core does no I/O, but std's WASI imports still need
/// satisfying.
pub(super) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    crypto: HostCrypto,
}

impl HostState {
    pub(super) fn new(memory_bytes: usize, crypto: HostCrypto) -> Self {
        HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(memory_bytes),
            crypto,
        }
    }
}

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
