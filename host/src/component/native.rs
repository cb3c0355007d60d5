//! The built-in core linked into the host (`--native-core`): the same crate the
//! built-in component is built from, with the host's crypto called directly instead
//! of through the import. Its answers carry the WIT types, so everything above
//! [`super::CoreChannel`] cannot tell the two apart; a panic is caught and counted
//! as a fault, as a trap is for a component.

use super::exports::fabric::orderer::core::{BuiltBlock, Cut, Rejection as WitRejection, Verdict};
use super::{CoreFault, FaultKind, RingCrypto};
use anyhow::{Result, anyhow};
use ordering_core::{NoPolicy, Policy, Rejection, blockbuilder, channel, filters};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub type NativeChannel = ordering_core::channel::Channel<RingCrypto, NoPolicy>;

/// What the built-in component answers to `describe`, marked native.
pub fn describe() -> (String, String) {
    (
        format!("{} (native)", NoPolicy::NAME),
        NoPolicy::VERSION.into(),
    )
}

pub fn open(config_block: &[u8], tip_header: &[u8], label: &str) -> Result<NativeChannel> {
    let opened = catch_unwind(|| NativeChannel::open(RingCrypto, config_block, tip_header))
        .map_err(|panic| anyhow!(panicked(label, panic)))?;
    opened.map_err(|r| anyhow!("{r}"))
}

/// Runs one call; a panic becomes a trap fault.
pub fn call<T>(
    channel: &mut NativeChannel,
    f: impl FnOnce(&mut NativeChannel) -> T,
    label: &str,
) -> Result<T, CoreFault> {
    catch_unwind(AssertUnwindSafe(|| f(channel))).map_err(|panic| panicked(label, panic))
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

pub fn rejection(r: Rejection) -> WitRejection {
    WitRejection {
        status: r.status as i32 as u16,
        info: r.info,
    }
}

pub fn verdict(v: filters::Verdict) -> Verdict {
    Verdict {
        config_seq: v.config_seq,
        is_config_update: v.is_config_update,
    }
}

pub fn built_block(b: blockbuilder::BuiltBlock) -> BuiltBlock {
    BuiltBlock {
        number: b.number,
        header_der: b.header_der,
        encoded: b.encoded,
        is_config: b.is_config,
    }
}

/// The WIT `cut` record; why a message was dropped stays native-only, as in WIT.
pub fn cut(c: channel::Cut) -> Cut {
    Cut {
        blocks: c.blocks.into_iter().map(built_block).collect(),
        pending: c.pending,
    }
}
