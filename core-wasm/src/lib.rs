//! The ordering core: Fabric's Broadcast filters, block cutter and block builder.
//!
//! Deterministic and sans-IO: no clock, files, sockets, threads or randomness. Time
//! comes in as an argument and hashing/signature arithmetic through [`crypto::Crypto`],
//! which the wasm component imports from the host and the native build implements with
//! RustCrypto. The same inputs give the same blocks in both builds.

pub mod blockbuilder;
pub mod blockcutter;
pub mod blockheader;
pub mod channel;
// The WIT exports (and the host's crypto import) belong to the component build only:
// the test harness built for wasm32-wasip2 is a plain `wasi:cli` command, so any
// standard WASI runner can run the core's tests.
#[cfg(all(target_arch = "wasm32", not(test)))]
pub mod component;
pub mod config;
pub mod configtx;
pub mod crypto;
pub mod extension;
pub mod filters;
pub mod msp;
pub mod policies;
pub mod rejection;
pub mod systemchannel;

pub use crypto::{Crypto, NativeCrypto};
pub use extension::{EnvelopeView, NoPolicy, Policy, PolicyContext, Stage};
pub use rejection::Rejection;
// What a policy crate needs without depending on the protos crate itself.
pub use fabric_protos;
pub use fabric_protos::common::{HeaderType, Status};

// `export_core!` names this crate `ordering_core` (wit-bindgen's
// `default_bindings_module`), which must resolve here too.
extern crate self as ordering_core;

/// Exports the WIT world `ordering-core` (`wit/orderer.wit`) from this crate's
/// component with a [`Policy`] plugged in after Fabric's filters: the whole core
/// (filters, cutter, builder) plus the policy's rules. Use it once, at the root of a
/// `cdylib` crate built for `wasm32-wasip2`; the policy must be `Default` (one is made
/// per channel instance). On other targets, and in the crate's own tests, it expands
/// to nothing, so the crate's native unit tests build as usual.
///
/// ```ignore
/// ordering_core::export_core!(my_policy::MaxTxSize);
/// ```
#[macro_export]
macro_rules! export_core {
    ($policy:ty) => {
        #[cfg(all(target_arch = "wasm32", not(test)))]
        const _: () = {
            type __OrderingCoreWithPolicy = $crate::component::Component<$policy>;
    $crate::component::export!(__OrderingCoreWithPolicy with_types_in $crate::component);
        };
    };
}
