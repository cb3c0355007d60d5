//! End-to-end tests: the real binary, real gRPC over loopback, real files.

mod common;

mod bench;
mod broadcast;
mod cli;
mod config;
mod crash;
mod deliver;
mod disk;
mod fixture;
mod hostile;
mod hotswap;
mod operations;
mod ordereryaml;
mod osnadmin;
mod participation;
mod raft;
mod raft_catchup;
mod raft_fabric;
mod raft_membership;
mod readme;
mod restart;
mod syschannel;
mod tls;
