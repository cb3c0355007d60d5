//! The built-in core linked into the host (`--native-core`): the same crate the
//! built-in component is built from, with the host's crypto called directly instead
//! of through the import, so what wasm costs can be measured against it. A panic is
//! caught and counted as a fault, as a trap is for a component; deadlines and memory
//! limits do not apply.

use super::crypto::RingCrypto;
use super::{CoreFault, FaultKind, Instance, OpenError};
use ordering_core::blockbuilder::BuiltBlock;
use ordering_core::channel::Cut;
use ordering_core::filters::Verdict;
use ordering_core::{NoPolicy, Policy, Rejection};
use std::panic::{AssertUnwindSafe, catch_unwind};

type Channel = ordering_core::channel::Channel<RingCrypto, NoPolicy>;

/// What the built-in component answers to `describe`, marked native.
pub(super) fn describe() -> (String, String) {
    (
        format!("{} (native)", NoPolicy::NAME),
        NoPolicy::VERSION.into(),
    )
}

pub(super) struct NativeInstance {
    channel: Channel,
    label: Box<str>,
}

impl NativeInstance {
    pub(super) fn open(
        config_block: &[u8],
        tip_header: &[u8],
        label: &str,
    ) -> Result<Self, OpenError> {
        let opened = catch_unwind(|| Channel::open(RingCrypto, config_block, tip_header))
            .map_err(|panic| panicked(label, panic))?;
        Ok(NativeInstance {
            channel: opened?,
            label: label.into(),
        })
    }

    fn call<T>(&mut self, f: impl FnOnce(&mut Channel) -> T) -> Result<T, CoreFault> {
        catch_unwind(AssertUnwindSafe(|| f(&mut self.channel)))
            .map_err(|panic| panicked(&self.label, panic))
    }
}

fn panicked(label: &str, panic: Box<dyn std::any::Any + Send>) -> CoreFault {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    CoreFault {
        kind: FaultKind::Trap,
        detail: format!("{label}: panicked: {message}"),
    }
}

type Answer<T> = Result<Result<T, Rejection>, CoreFault>;

impl Instance for NativeInstance {
    fn validate(&mut self, envelope: &[u8], now: u64) -> Answer<Verdict> {
        self.call(|c| c.validate(envelope, now))
    }

    fn authorize_deliver(&mut self, envelope: &[u8], now: u64) -> Answer<u64> {
        self.call(|c| c.authorize_deliver(envelope, now))
    }

    fn propose_config_update(&mut self, envelope: &[u8], now: u64) -> Answer<Vec<u8>> {
        self.call(|c| c.propose_config_update(envelope, now))
    }

    fn validate_config(&mut self, envelope: &[u8], now: u64) -> Answer<Verdict> {
        self.call(|c| c.validate_config(envelope, now))
    }

    fn propose_channel_creation(&mut self, envelope: &[u8], now: u64) -> Answer<Vec<u8>> {
        self.call(|c| c.propose_channel_creation(envelope, now))
    }

    fn validate_orderer_transaction(
        &mut self,
        envelope: &[u8],
        now: u64,
        channels: u64,
    ) -> Answer<Verdict> {
        self.call(|c| c.validate_orderer_transaction(envelope, channels, now))
    }

    fn config_sequence(&mut self) -> Result<u64, CoreFault> {
        self.call(|c| c.config_sequence())
    }

    fn order(&mut self, envelope: &[u8], config_seq: u64, now: u64) -> Result<Cut, CoreFault> {
        self.call(|c| c.order(envelope, config_seq, now))
    }

    fn cut(&mut self) -> Result<Option<BuiltBlock>, CoreFault> {
        self.call(|c| c.cut())
    }

    fn batch_timeout_ms(&mut self) -> Result<u64, CoreFault> {
        self.call(|c| c.batch_timeout_ms())
    }

    fn pending(&mut self) -> Result<Vec<Vec<u8>>, CoreFault> {
        self.call(|c| c.pending_envelopes())
    }
}
