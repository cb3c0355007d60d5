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
pub mod filters;
pub mod msp;
pub mod policies;
pub mod rejection;

pub use crypto::{Crypto, NativeCrypto};
pub use rejection::Rejection;
