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
#[cfg(target_arch = "wasm32")]
pub mod component;
pub mod config;
pub mod crypto;
pub mod filters;
pub mod msp;
pub mod rejection;

pub use crypto::{Crypto, NativeCrypto};
pub use rejection::Rejection;
