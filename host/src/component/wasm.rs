//! A core as a wasm component: one `Store` per channel instance, every call under
//! the epoch deadline and the memory limit, answers converted to the core's types.

use super::crypto::HostCrypto;
use super::engine::exports::fabric::orderer::core as wit;
use super::engine::{HostState, OrderingCore, OrderingCorePre, deadline_ticks, engine, linker};
use super::fault::classify;
use super::{CoreFault, CoreLimits, FaultKind, Instance, OpenError};
use fabric_protos::common::Status;
use ordering_core::Rejection;
use ordering_core::blockbuilder::BuiltBlock;
use ordering_core::channel::Cut;
use ordering_core::filters::Verdict;
use std::panic::{AssertUnwindSafe, catch_unwind};
use wasmtime::Store;
use wasmtime::component::{Component, ResourceAny};

/// A compiled, linked component, ready to instantiate.
pub(super) struct WasmCore {
    pre: OrderingCorePre<HostState>,
}

impl WasmCore {
    pub(super) fn link(component: &Component) -> anyhow::Result<Self> {
        let pre = linker()
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("linking the core component: {e}"))?;
        let pre = OrderingCorePre::new(pre)
            .map_err(|e| anyhow::anyhow!("the component does not export the core: {e}"))?;
        Ok(WasmCore { pre })
    }

    fn instantiate(
        &self,
        limits: CoreLimits,
        crypto: HostCrypto,
        label: &str,
    ) -> Result<(Store<HostState>, OrderingCore), CoreFault> {
        let mut store = Store::new(engine(), HostState::new(limits.memory_bytes, crypto));
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.call_deadline));
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => Ok((store, bindings)),
            Err(e) => Err(classify(e, &store, label, limits)),
        }
    }

    /// Name and version the component reports, asked in a fresh instance.
    pub(super) fn describe(
        &self,
        limits: CoreLimits,
        crypto: HostCrypto,
        label: &str,
    ) -> Result<(String, String), CoreFault> {
        let (mut store, bindings) = self.instantiate(limits, crypto, label)?;
        bindings
            .fabric_orderer_core()
            .call_describe(&mut store)
            .map_err(|e| classify(e, &store, label, limits))
    }

    pub(super) fn open(
        &self,
        limits: CoreLimits,
        crypto: HostCrypto,
        label: &str,
        config_block: &[u8],
        tip_header: &[u8],
    ) -> Result<WasmInstance, OpenError> {
        let (mut store, bindings) = self.instantiate(limits, crypto, label)?;
        let opened = bindings
            .fabric_orderer_core()
            .channel()
            .call_open(&mut store, config_block, tip_header)
            .map_err(|e| classify(e, &store, label, limits))?;
        let channel = opened.map_err(rejection)?;
        Ok(WasmInstance {
            store,
            bindings,
            channel,
            deadline: deadline_ticks(limits.call_deadline),
            limits,
            label: label.into(),
        })
    }
}

pub(super) struct WasmInstance {
    store: Store<HostState>,
    bindings: OrderingCore,
    channel: ResourceAny,
    /// Epoch ticks each call may run.
    deadline: u64,
    limits: CoreLimits,
    label: Box<str>,
}

impl WasmInstance {
    /// One call into the channel resource, under the deadline.
    fn call<T>(
        &mut self,
        f: impl FnOnce(
            &wit::GuestChannel<'_>,
            &mut Store<HostState>,
            ResourceAny,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, CoreFault> {
        self.store.set_epoch_deadline(self.deadline);
        let channel = self.bindings.fabric_orderer_core().channel();
        // A host function that panics unwinds through the component to here. One does
        // when a component writes to stdout or stderr from a call made on the async
        // runtime (wasmtime-wasi serves streams with a blocking `block_on`): the core
        // does no I/O, so that is a fault of the component, not of the orderer.
        let called = catch_unwind(AssertUnwindSafe(|| {
            f(&channel, &mut self.store, self.channel)
        }));
        match called {
            Ok(result) => result.map_err(|e| classify(e, &self.store, &self.label, self.limits)),
            Err(_) => Err(CoreFault {
                kind: FaultKind::Trap,
                detail: format!(
                    "{}: the component used WASI I/O (stdout, stderr), which an ordering core may not",
                    self.label
                ),
            }),
        }
    }
}

fn rejection(r: wit::Rejection) -> Rejection {
    let status = Status::try_from(r.status as i32).unwrap_or(Status::InternalServerError);
    Rejection::new(status, r.info)
}

fn verdict(v: wit::Verdict) -> Verdict {
    Verdict {
        config_seq: v.config_seq,
        is_config_update: v.is_config_update,
    }
}

fn built_block(b: wit::BuiltBlock) -> BuiltBlock {
    BuiltBlock {
        number: b.number,
        header_der: b.header_der,
        encoded: b.encoded,
        is_config: b.is_config,
    }
}

type Answer<T> = Result<Result<T, Rejection>, CoreFault>;

impl Instance for WasmInstance {
    fn validate(&mut self, envelope: &[u8], now: u64) -> Answer<Verdict> {
        let answer = self.call(|c, s, ch| c.call_validate(s, ch, envelope, now))?;
        Ok(answer.map(verdict).map_err(rejection))
    }

    fn authorize_deliver(&mut self, envelope: &[u8], now: u64) -> Answer<u64> {
        let answer = self.call(|c, s, ch| c.call_authorize_deliver(s, ch, envelope, now))?;
        Ok(answer.map_err(rejection))
    }

    fn propose_config_update(&mut self, envelope: &[u8], now: u64) -> Answer<Vec<u8>> {
        let answer = self.call(|c, s, ch| c.call_propose_config_update(s, ch, envelope, now))?;
        Ok(answer.map_err(rejection))
    }

    fn validate_config(&mut self, envelope: &[u8], now: u64) -> Answer<Verdict> {
        let answer = self.call(|c, s, ch| c.call_validate_config(s, ch, envelope, now))?;
        Ok(answer.map(verdict).map_err(rejection))
    }

    fn propose_channel_creation(&mut self, envelope: &[u8], now: u64) -> Answer<Vec<u8>> {
        let answer = self.call(|c, s, ch| c.call_propose_channel_creation(s, ch, envelope, now))?;
        Ok(answer.map_err(rejection))
    }

    fn validate_orderer_transaction(
        &mut self,
        envelope: &[u8],
        now: u64,
        channels: u64,
    ) -> Answer<Verdict> {
        let answer = self
            .call(|c, s, ch| c.call_validate_orderer_transaction(s, ch, envelope, now, channels))?;
        Ok(answer.map(verdict).map_err(rejection))
    }

    fn config_sequence(&mut self) -> Result<u64, CoreFault> {
        self.call(|c, s, ch| c.call_config_sequence(s, ch))
    }

    fn order(&mut self, envelope: &[u8], config_seq: u64, now: u64) -> Result<Cut, CoreFault> {
        let cut = self.call(|c, s, ch| c.call_order(s, ch, envelope, config_seq, now))?;
        Ok(Cut {
            blocks: cut.blocks.into_iter().map(built_block).collect(),
            pending: cut.pending,
            // The WIT record does not say why a message was dropped.
            dropped: None,
        })
    }

    fn cut(&mut self) -> Result<Option<BuiltBlock>, CoreFault> {
        Ok(self.call(|c, s, ch| c.call_cut(s, ch))?.map(built_block))
    }

    fn batch_timeout_ms(&mut self) -> Result<u64, CoreFault> {
        self.call(|c, s, ch| c.call_batch_timeout_ms(s, ch))
    }

    fn pending(&mut self) -> Result<Vec<Vec<u8>>, CoreFault> {
        self.call(|c, s, ch| c.call_pending(s, ch))
    }
}
