#![no_main]
//! The component boundary: the built-in core, compiled and instantiated by the host's
//! loader in wasmtime (deadline and memory limit as in production, the real crypto
//! import), fed fuzz bytes through every WIT call. A trap or a refusal is an answer;
//! the host must never crash.
//!
//! Input: a byte choosing the channel (bit 0: the system channel), then calls, each an
//! op byte, a 16-bit little-endian length and that many argument bytes.

use std::sync::LazyLock;

use fabric_protos::common::Block;
use libfuzzer_sys::fuzz_target;
use orderer::component::{CoreChannel, CoreComponent};
use orderer_fuzz::{APP_GENESIS, NOW, SYSTEM_GENESIS, fixture};
use prost::Message;

static CORE: LazyLock<CoreComponent> =
    LazyLock::new(|| CoreComponent::builtin().expect("the built-in core compiles"));

/// Each genesis block and its encoded header.
static GENESIS: LazyLock<[(Vec<u8>, Vec<u8>); 2]> = LazyLock::new(|| {
    [APP_GENESIS, SYSTEM_GENESIS].map(|rel| {
        let block = fixture(rel);
        let header = Block::decode(block.as_slice()).expect("a block").header;
        (block, header.expect("a header").encode_to_vec())
    })
});

// Compiled before the first input: a 15 s compile is not a slow input.
fuzz_target!(init: LazyLock::force(&CORE), |data: &[u8]| {
    let Some((&which, mut calls)) = data.split_first() else {
        return;
    };
    let (block, header) = &GENESIS[usize::from(which & 1)];
    let Ok(mut channel) = CORE.open_channel(block, header) else {
        return;
    };
    while let [op, lo, hi, rest @ ..] = calls {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (arg, next) = rest.split_at(len);
        calls = next;
        if let Some(reopened) = call(&mut channel, *op, arg, block, header) {
            channel = reopened;
        }
    }
});

/// One WIT call; ops 10 and 11 open a new instance (fuzz bytes as the config block
/// or the tip header), which replaces the channel if it opens.
fn call(
    channel: &mut CoreChannel,
    op: u8,
    arg: &[u8],
    block: &[u8],
    header: &[u8],
) -> Option<CoreChannel> {
    let small = arg.first().copied().unwrap_or_default().into();
    // Whether it answered (a trap or a refusal is an answer too) does not matter.
    let _answered = match op % 12 {
        0 => channel.validate(arg, NOW).is_ok(),
        1 => channel.authorize_deliver(arg, NOW).is_ok(),
        2 => channel.propose_config_update(arg, NOW).is_ok(),
        3 => channel.validate_config(arg, NOW).is_ok(),
        4 => channel.propose_channel_creation(arg, NOW).is_ok(),
        5 => channel
            .validate_orderer_transaction(arg, NOW, small)
            .is_ok(),
        6 => channel.order(arg, small, NOW).is_ok(),
        7 => channel.cut().is_ok(),
        8 => channel.config_sequence().is_ok() && channel.batch_timeout_ms().is_ok(),
        9 => channel.pending().is_ok() && CORE.describe().is_ok(),
        10 => return CORE.open_channel(arg, header).ok(),
        _ => return CORE.open_channel(block, arg).ok(),
    };
    None
}
