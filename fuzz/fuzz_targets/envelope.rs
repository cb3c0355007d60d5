#![no_main]
//! Broadcast in the native core: an envelope through the filters of an application
//! and a system channel (and Deliver's access check, the config and orderer
//! transaction filters), then, when accepted, ordered: re-marshalled as Fabric's
//! block writer does, cut and built into a block.

use std::sync::LazyLock;

use bytes::Bytes;
use fabric_protos::common::{BlockHeader, Envelope};
use libfuzzer_sys::fuzz_target;
use orderer_fuzz::{APP_GENESIS, AcceptAll, NOW, SYSTEM_GENESIS, config_at};
use ordering_core::blockbuilder::marshal_envelope;
use ordering_core::channel::Channel;
use ordering_core::config::ChannelConfig;
use prost::Message;

static CHANNELS: LazyLock<[(ChannelConfig, BlockHeader); 2]> =
    LazyLock::new(|| [config_at(APP_GENESIS), config_at(SYSTEM_GENESIS)]);

fuzz_target!(|data: &[u8]| {
    check_marshal(data);
    for (config, tip) in CHANNELS.iter() {
        // A fresh channel (and identity cache) per input: runs reproduce.
        let mut channel = Channel::with_config(AcceptAll, config.clone(), tip);
        let _ = channel.authorize_deliver(data, NOW);
        let _ = channel.validate_config(data, NOW);
        if config.is_system_channel() {
            let _ = channel.validate_orderer_transaction(data, 1, NOW);
        }
        let Ok(verdict) = channel.validate(data, NOW) else {
            continue;
        };
        // The host proposes a config update instead (the config_update target).
        if verdict.is_config_update {
            continue;
        }
        let cut = channel.order(data, verdict.config_seq, NOW);
        assert_eq!(cut.dropped, None, "an accepted envelope was dropped");
        let blocks = cut.blocks.len() + usize::from(channel.cut().is_some());
        assert_eq!(blocks, 1, "one envelope, one block");
    }
});

/// What the block writer stores for an envelope decodes to the same envelope, and is
/// stored unchanged when written again; whatever prost decodes, it can marshal.
fn check_marshal(data: &[u8]) {
    let Ok(decoded) = Envelope::decode(data) else {
        return;
    };
    let marshalled = marshal_envelope(Bytes::copy_from_slice(data))
        .expect("prost decodes it, so the block writer must marshal it");
    let again = Envelope::decode(marshalled.data().clone()).expect("a marshalled envelope decodes");
    assert_eq!(again, decoded);
    let twice = marshal_envelope(marshalled.data().clone()).expect("marshals again");
    assert_eq!(twice.data(), marshalled.data());
}
