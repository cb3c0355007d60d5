//! The wasm ordering core inside wasmtime: one engine and compiled component per
//! process, one `Store` per channel instance. Calls are synchronous and short
//! (filters, cutter); the host's crypto import runs at native speed.

use anyhow::Result;
use fabric_protos::common::Status;
use ordering_core::{Crypto, NativeCrypto, Rejection};
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "ordering-core",
});

use exports::fabric::orderer::core::{BuiltBlock, Cut, Rejection as WitRejection, Verdict};

/// The core built by this workspace, embedded at compile time.
pub const BUILTIN_CORE: &[u8] = include_bytes!(env!("ORDERING_CORE_WASM"));

/// Per-instance host state: an empty WASI context (the core does no I/O; std's
/// imports still need satisfying) and the crypto import.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
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
        NativeCrypto.sha256(&data).to_vec()
    }

    fn verify_p256(&mut self, public_key: Vec<u8>, message: Vec<u8>, signature: Vec<u8>) -> bool {
        NativeCrypto.verify_p256(&public_key, &message, &signature)
    }
}

/// A compiled core, ready to instantiate many times.
pub struct CoreComponent {
    engine: Engine,
    pre: OrderingCorePre<HostState>,
}

impl CoreComponent {
    /// Compiles a component (its bytes) and links the host's imports.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        let engine = Engine::new(&Config::new())?;
        let component = Component::new(&engine, wasm)
            .map_err(|e| anyhow::anyhow!("compiling the core component: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        OrderingCore::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let pre = OrderingCorePre::new(linker.instantiate_pre(&component)?)?;
        Ok(CoreComponent { engine, pre })
    }

    pub fn builtin() -> Result<Self> {
        Self::new(BUILTIN_CORE)
    }

    /// Name and version the component reports.
    pub fn describe(&self) -> Result<(String, String)> {
        let (mut store, bindings) = self.instantiate()?;
        Ok(bindings.fabric_orderer_core().call_describe(&mut store)?)
    }

    fn instantiate(&self) -> Result<(Store<HostState>, OrderingCore)> {
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok((store, bindings))
    }

    /// Opens one channel instance from its latest config block and tip header.
    pub fn open_channel(&self, config_block: &[u8], tip_header: &[u8]) -> Result<CoreChannel> {
        let (mut store, bindings) = self.instantiate()?;
        let opened = bindings.fabric_orderer_core().channel().call_open(
            &mut store,
            config_block,
            tip_header,
        )?;
        let channel = opened.map_err(|r| anyhow::anyhow!("{}", to_rejection(r)))?;
        Ok(CoreChannel {
            store,
            bindings,
            channel,
            faulted: false,
        })
    }
}

/// One instance of the core holding one channel's state.
pub struct CoreChannel {
    store: Store<HostState>,
    bindings: OrderingCore,
    channel: ResourceAny,
    /// A trap leaves a component instance unusable: it is dropped, not reused.
    faulted: bool,
}

/// A block the core cut: the encoded block without metadata, and the DER header.
pub type CoreBlock = BuiltBlock;

impl CoreChannel {
    pub fn validate(&mut self, envelope: &[u8], now_unix_nanos: u64) -> Result<Verdict, Rejection> {
        let api = self.bindings.fabric_orderer_core().channel();
        match api.call_validate(&mut self.store, self.channel, envelope, now_unix_nanos) {
            Ok(verdict) => verdict.map_err(to_rejection),
            Err(trap) => Err(self.fault(trap)),
        }
    }

    /// Ok: the creator certificate's NotAfter, in unix nanos.
    pub fn authorize_deliver(
        &mut self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<u64, Rejection> {
        let api = self.bindings.fabric_orderer_core().channel();
        match api.call_authorize_deliver(&mut self.store, self.channel, envelope, now_unix_nanos) {
            Ok(answer) => answer.map_err(to_rejection),
            Err(trap) => Err(self.fault(trap)),
        }
    }

    pub fn is_faulted(&self) -> bool {
        self.faulted
    }

    /// A trap inside the core answers the message, it never takes the orderer down.
    fn fault(&mut self, trap: wasmtime::Error) -> Rejection {
        tracing::error!("ordering core fault: {trap:#}");
        self.faulted = true;
        Rejection::new(
            Status::InternalServerError,
            format!("ordering core fault: {trap}"),
        )
    }

    pub fn order(&mut self, envelope: &[u8], config_seq: u64, now_unix_nanos: u64) -> Result<Cut> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_order(
            &mut self.store,
            self.channel,
            envelope,
            config_seq,
            now_unix_nanos,
        )?)
    }

    pub fn cut(&mut self) -> Result<Option<CoreBlock>> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_cut(&mut self.store, self.channel)?)
    }

    pub fn batch_timeout_ms(&mut self) -> Result<u64> {
        let api = self.bindings.fabric_orderer_core().channel();
        Ok(api.call_batch_timeout_ms(&mut self.store, self.channel)?)
    }
}

fn to_rejection(r: WitRejection) -> Rejection {
    let status = Status::try_from(r.status as i32).unwrap_or(Status::InternalServerError);
    Rejection::new(status, r.info)
}
