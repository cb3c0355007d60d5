//! A Hyperledger Fabric compatible ordering service whose filters, block cutter and
//! block builder run as a WebAssembly component. The binary is `orderer`; the modules
//! are public so end-to-end tests and tools can sign and check like a client does.

pub mod admin;
pub mod blockwriter;
pub mod bootstrap;
pub mod broadcast;
pub mod chain;
pub mod client;
pub mod component;
pub mod config;
pub mod configupdate;
pub mod deliver;
#[cfg(test)]
mod determinism_tests;
pub mod hotswap;
pub mod identity;
pub mod ledger;
pub mod localconfig;
#[cfg(test)]
mod policy_tests;
pub mod registrar;
pub mod server;
