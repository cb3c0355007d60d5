//! Protobuf messages compatible field-for-field with Hyperledger Fabric v2.5.
//!
//! The `.proto` sources live in `proto/fabric/`; code is generated at build time.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

mod encoded;

pub mod orderer {
    include!(concat!(env!("OUT_DIR"), "/orderer.rs"));

    pub use crate::encoded::EncodedDeliverResponse;

    #[cfg(feature = "grpc")]
    include!(concat!(env!("OUT_DIR"), "/orderer.AtomicBroadcast.rs"));
    #[cfg(feature = "grpc")]
    include!(concat!(env!("OUT_DIR"), "/orderer.Cluster.rs"));

    pub mod etcdraft {
        include!(concat!(env!("OUT_DIR"), "/etcdraft.rs"));
    }
}

/// etcd raft's wire messages, as Fabric's etcdraft sends them in
/// `orderer::ConsensusRequest.payload` (see `proto/etcd/raftpb/raft.proto`).
pub mod raftpb {
    include!(concat!(env!("OUT_DIR"), "/raftpb.rs"));
}

pub use prost::Message;
pub use prost_types::Timestamp;
