//! The wasm component's export of the WIT world `ordering-core` (`wit/orderer.wit`):
//! the `core` interface backed by [`Channel`], with [`HostCrypto`] calling the
//! imported `crypto` interface so that hashing and signature checks run at native
//! speed in the host.
//!
//! The glue is generic over the operator's [`Policy`]; a crate exports it with
//! [`crate::export_core!`] (the built-in core, `core-wasm/builtin`, with
//! [`crate::extension::NoPolicy`]). It is not exported from this crate itself, so
//! that any number of policy crates can link it.

use std::cell::RefCell;
use std::marker::PhantomData;

use bytes::Bytes;

use crate::blockbuilder::BuiltBlock;
use crate::channel::{self, Channel};
use crate::crypto::Crypto;
use crate::extension::Policy;
use crate::rejection::Rejection;

wit_bindgen::generate!({
    // Relative to the crate root (core-wasm/).
    path: "../wit",
    world: "ordering-core",
    // `export!` is used by other crates (through `export_core!`), where this module
    // is `ordering_core::component`.
    pub_export_macro: true,
    default_bindings_module: "ordering_core::component",
});

use exports::fabric::orderer::core as wit;
use fabric::orderer::crypto as host;

/// [`Crypto`] through the host's `crypto` import.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCrypto;

impl Crypto for HostCrypto {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let digest = host::sha256(data);
        digest
            .as_slice()
            .try_into()
            .expect("host sha256 returned a digest that is not 32 bytes")
    }

    fn verify_p256(&self, public_key: &[u8], message: &[u8], signature_der: &[u8]) -> bool {
        host::verify_p256(public_key, message, signature_der)
    }
}

/// The component: the WIT `core` interface with policy `P`.
pub struct Component<P>(PhantomData<P>);

/// The `channel` resource: one channel's state, mutated by `order` and `cut`.
pub struct ChannelResource<P>(RefCell<Channel<HostCrypto, P>>);

fn rejection(r: Rejection) -> wit::Rejection {
    wit::Rejection {
        status: r.status as i32 as u16,
        info: r.info,
    }
}

fn verdict(v: crate::filters::Verdict) -> wit::Verdict {
    wit::Verdict {
        config_seq: v.config_seq,
        is_config_update: v.is_config_update,
    }
}

fn built_block(b: BuiltBlock) -> wit::BuiltBlock {
    wit::BuiltBlock {
        number: b.number,
        header_der: b.header_der,
        encoded: b.encoded,
        is_config: b.is_config,
    }
}

/// A panic traps without printing first: printing is a WASI stream call, which the
/// host serves only off its async runtime, and the trap already says it was a panic.
fn silence_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

impl<P: Policy + Default> wit::Guest for Component<P> {
    type Channel = ChannelResource<P>;

    fn describe() -> (String, String) {
        silence_panics();
        (P::NAME.into(), P::VERSION.into())
    }
}

impl<P: Policy + Default> wit::GuestChannel for ChannelResource<P> {
    fn open(config_block: Vec<u8>, tip_header: Vec<u8>) -> Result<wit::Channel, wit::Rejection> {
        silence_panics();
        let channel =
            Channel::open_with_policy(HostCrypto, P::default(), &config_block, &tip_header)
                .map_err(rejection)?;
        Ok(wit::Channel::new(ChannelResource(RefCell::new(channel))))
    }

    fn validate(
        &self,
        envelope: Vec<u8>,
        now_unix_nanos: u64,
    ) -> Result<wit::Verdict, wit::Rejection> {
        // The decoded message shares the envelope's buffer instead of copying fields.
        self.0
            .borrow()
            .validate_bytes(Bytes::from(envelope), now_unix_nanos)
            .map(verdict)
            .map_err(rejection)
    }

    fn propose_config_update(
        &self,
        envelope: Vec<u8>,
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, wit::Rejection> {
        self.0
            .borrow()
            .propose_config_update(&envelope, now_unix_nanos)
            .map_err(rejection)
    }

    fn validate_config(
        &self,
        envelope: Vec<u8>,
        now_unix_nanos: u64,
    ) -> Result<wit::Verdict, wit::Rejection> {
        self.0
            .borrow()
            .validate_config(&envelope, now_unix_nanos)
            .map(verdict)
            .map_err(rejection)
    }

    fn propose_channel_creation(
        &self,
        envelope: Vec<u8>,
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, wit::Rejection> {
        self.0
            .borrow()
            .propose_channel_creation(&envelope, now_unix_nanos)
            .map_err(rejection)
    }

    fn validate_orderer_transaction(
        &self,
        envelope: Vec<u8>,
        now_unix_nanos: u64,
        channels: u64,
    ) -> Result<wit::Verdict, wit::Rejection> {
        self.0
            .borrow()
            .validate_orderer_transaction(&envelope, channels, now_unix_nanos)
            .map(verdict)
            .map_err(rejection)
    }

    fn config_sequence(&self) -> u64 {
        self.0.borrow().config_sequence()
    }

    fn authorize_deliver(
        &self,
        envelope: Vec<u8>,
        now_unix_nanos: u64,
    ) -> Result<u64, wit::Rejection> {
        self.0
            .borrow()
            .authorize_deliver(&envelope, now_unix_nanos)
            .map_err(rejection)
    }

    fn order(&self, envelope: Vec<u8>, config_seq: u64, now_unix_nanos: u64) -> wit::Cut {
        // The envelope's buffer moves into the block builder without a copy.
        let channel::Cut {
            blocks, pending, ..
        } = self
            .0
            .borrow_mut()
            .order_bytes(Bytes::from(envelope), config_seq, now_unix_nanos);
        wit::Cut {
            blocks: blocks.into_iter().map(built_block).collect(),
            pending,
        }
    }

    fn cut(&self) -> Option<wit::BuiltBlock> {
        self.0.borrow_mut().cut().map(built_block)
    }

    fn batch_timeout_ms(&self) -> u64 {
        self.0.borrow().batch_timeout_ms()
    }

    fn pending(&self) -> Vec<Vec<u8>> {
        self.0.borrow().pending_envelopes()
    }
}
