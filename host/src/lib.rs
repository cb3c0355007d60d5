//! A Hyperledger Fabric compatible ordering service whose filters, block cutter and
//! block builder run as a WebAssembly component. The binary is `orderer`; the modules
//! are public so end-to-end tests and tools can sign and check like a client does.
//! docs/ARCHITECTURE.md walks through them in the order a transaction meets them.

pub mod admin;
pub mod audit;
pub mod bootstrap;
pub mod broadcast;
pub mod channelparticipation;
pub mod client;
pub mod cluster;
pub mod comm;
pub mod component;
pub mod config;
pub mod consensus;
pub mod deliver;
#[cfg(test)]
mod determinism_tests;
pub mod fabhttp;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hotswap;
pub mod identity;
pub mod keyfile;
pub mod ledger;
pub mod localconfig;
pub mod msgprocessor;
pub mod multichannel;
pub mod operations;
#[cfg(test)]
mod policy_tests;
pub mod protoutil;
pub mod server;
#[cfg(test)]
mod testkit;
