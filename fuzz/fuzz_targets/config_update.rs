#![no_main]
//! Config updates in the native core, as the host runs them, against real genesis
//! configs. The first byte picks what the rest is:
//! 0. a CONFIG_UPDATE envelope for mychannel: Broadcast filters, then configtx's
//!    proposal, wrapped as the orderer wraps it, validated again and ordered;
//! 1. a `ConfigUpdate` in the orderer admin's signed envelope, then as 0;
//! 2. a channel creation request on the system channel: the new channel's config,
//!    wrapped in an ORDERER_TRANSACTION, the system chain filter, ordered;
//! 3. a `ConfigUpdate` in a signed creation request, then as 2;
//! 4. a CONFIG envelope for mychannel: validated and ordered.

use std::sync::LazyLock;

use fabric_protos::common::{
    BlockHeader, ChannelHeader, ConfigEnvelope, ConfigUpdateEnvelope, Envelope, HeaderType, Payload,
};
use libfuzzer_sys::fuzz_target;
use orderer_fuzz::{
    APP_GENESIS, AcceptAll, NOW, SYSTEM_GENESIS, block_envelopes, config_at, envelope_like, fixture,
};
use ordering_core::channel::Channel;
use ordering_core::config::ChannelConfig;
use prost::Message;

struct Fixtures {
    app: (ChannelConfig, BlockHeader),
    system: (ChannelConfig, BlockHeader),
    /// A CONFIG_UPDATE signed by mychannel's orderer admin (BatchSize 500 -> 10).
    app_update: Vec<u8>,
    /// A channel creation request signed by Org1's admin.
    creation: Vec<u8>,
    /// A CONFIG envelope the orderer made (block 1's).
    orderer_config: Vec<u8>,
    /// An ORDERER_TRANSACTION the orderer admin signed.
    orderer_transaction: Vec<u8>,
}

static FIXTURES: LazyLock<Fixtures> = LazyLock::new(|| Fixtures {
    app: config_at(APP_GENESIS),
    system: config_at(SYSTEM_GENESIS),
    app_update: fixture("updates/update-batchsize-signed-by-orderer-admin.env"),
    creation: fixture("syschannel/appchannel-create-signed.tx"),
    orderer_config: block_envelopes(&fixture("updates/config-block-1.block")).remove(0),
    orderer_transaction: fixture("syschannel/envelopes/sys-orderer-transaction-by-ord-admin.env"),
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = &*FIXTURES;
    let (config, tip) = if mode % 5 == 2 || mode % 5 == 3 {
        &f.system
    } else {
        &f.app
    };
    let mut channel = Channel::with_config(AcceptAll, config.clone(), tip);
    match mode % 5 {
        0 => update(&mut channel, rest),
        1 => update(&mut channel, &with_config_update(&f.app_update, rest)),
        2 => create(&mut channel, rest),
        3 => create(&mut channel, &with_config_update(&f.creation, rest)),
        _ => order_config(&mut channel, rest),
    }
});

/// `template` (a signed CONFIG_UPDATE) carrying `update` as its `ConfigUpdate`, its
/// config signatures kept.
fn with_config_update(template: &[u8], update: &[u8]) -> Vec<u8> {
    let (chdr, data) = open(template);
    let mut update_env = ConfigUpdateEnvelope::decode(data.as_slice()).expect("a fixture");
    update_env.config_update = update.to_vec().into();
    let kind = HeaderType::ConfigUpdate;
    envelope_like(
        template,
        kind,
        &chdr.channel_id,
        &update_env.encode_to_vec(),
    )
}

/// A fixture envelope's channel header and payload data.
fn open(envelope: &[u8]) -> (ChannelHeader, Vec<u8>) {
    let envelope = Envelope::decode(envelope).expect("a fixture");
    let payload = Payload::decode(envelope.payload.as_ref()).expect("a fixture");
    let header = payload.header.expect("a fixture");
    let chdr = ChannelHeader::decode(header.channel_header.as_ref()).expect("a fixture");
    (chdr, payload.data.to_vec())
}

/// Broadcast of a config update: the host proposes only what the filters accepted.
fn update(channel: &mut Channel<AcceptAll>, envelope: &[u8]) {
    if !channel
        .validate(envelope, NOW)
        .is_ok_and(|v| v.is_config_update)
    {
        return;
    }
    let Ok(next) = channel.propose_config_update(envelope, NOW) else {
        return;
    };
    let config = channel.config().channel_id.clone();
    let wrapped = envelope_like(&FIXTURES.orderer_config, HeaderType::Config, &config, &next);
    order_config(channel, &wrapped);
}

/// A CONFIG envelope that passes `validate_config` is ordered into a config block that
/// puts it in force, and that block opens the channel again (as at every restart).
fn order_config(channel: &mut Channel<AcceptAll>, envelope: &[u8]) {
    let Ok(verdict) = channel.validate_config(envelope, NOW) else {
        return;
    };
    let sequence = channel.config_sequence();
    let cut = channel.order(envelope, verdict.config_seq, NOW);
    assert_eq!(cut.dropped, None, "a validated config was dropped");
    let block = cut.blocks.last().expect("a config block");
    assert!(block.is_config);
    assert_eq!(channel.config_sequence(), sequence + 1);
    if let Err(e) = ChannelConfig::from_config_block(&block.encoded, &AcceptAll) {
        panic!("the config block written does not open: {e}");
    }
}

/// A channel creation request, as the host's system channel processes it: an
/// accepted ORDERER_TRANSACTION carries a config the new channel opens with.
fn create(system: &mut Channel<AcceptAll>, request: &[u8]) {
    let Ok(first) = system.propose_channel_creation(request, NOW) else {
        return;
    };
    let new_channel = Envelope::decode(request)
        .ok()
        .and_then(|e| Payload::decode(e.payload.as_ref()).ok())
        .and_then(|p| ChannelHeader::decode(p.header?.channel_header.as_ref()).ok())
        .map(|chdr| chdr.channel_id)
        .unwrap_or_default();
    let f = &*FIXTURES;
    let config_tx = envelope_like(
        &f.orderer_transaction,
        HeaderType::Config,
        &new_channel,
        &first,
    );
    let kind = HeaderType::OrdererTransaction;
    let id = system.config().channel_id.clone();
    let transaction = envelope_like(&f.orderer_transaction, kind, &id, &config_tx);
    let Ok(verdict) = system.validate_orderer_transaction(&transaction, 1, NOW) else {
        return;
    };
    let first = ConfigEnvelope::decode(first.as_slice()).expect("the core's encoding");
    let config = first.config.expect("a config");
    if let Err(e) = ChannelConfig::from_config(&new_channel, &config, &AcceptAll) {
        panic!("an accepted channel creation makes a channel that does not open: {e}");
    }
    let cut = system.order(&transaction, verdict.config_seq, NOW);
    assert_eq!(
        cut.dropped, None,
        "an accepted channel creation was dropped"
    );
}
