//! Generates the Fabric messages, etcd raft's wire messages (and, with the `grpc`
//! feature, the AtomicBroadcast and Cluster clients, the Broadcast server and the
//! Cluster server) with
//! protox, a pure-Rust proto compiler, so no system `protoc` is needed.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "common/common.proto",
    "common/configtx.proto",
    "common/configuration.proto",
    "common/policies.proto",
    "msp/identities.proto",
    "msp/msp_config.proto",
    "msp/msp_principal.proto",
    "orderer/ab.proto",
    "orderer/cluster.proto",
    "orderer/configuration.proto",
    "orderer/etcdraft/configuration.proto",
    "orderer/etcdraft/metadata.proto",
    // etcd's, under proto/etcd/: the payload of cluster.proto's ConsensusRequest.
    "raftpb/raft.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let roots = [PathBuf::from("fabric"), PathBuf::from("etcd")];
    println!("cargo:rerun-if-changed=fabric");
    println!("cargo:rerun-if-changed=etcd");
    let fds = protox::compile(FILES, &roots)?;

    let mut config = prost_build::Config::new();
    // Bytes fields share the decoded frame instead of copying; BTreeMaps make our own
    // encodings of config maps deterministic (sorted keys).
    config.bytes(["."]);
    config.btree_map(["."]);

    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(grpc)
        .compile_fds_with_config(fds, config)?;
    if grpc {
        server();
    }
    Ok(())
}

/// The AtomicBroadcast server's Broadcast, generated from this description rather
/// than from ab.proto: the orderer serves Deliver itself, writing the blocks the
/// ledger holds encoded (`EncodedDeliverResponse`) without copying them.
fn server() {
    use tonic_build::manual::{Builder, Method, Service};
    let method = |name: &str, route: &str, input: &str, output: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path("tonic_prost::ProstCodec")
            .client_streaming()
            .server_streaming()
            .build()
    };
    let service = Service::builder()
        .name("AtomicBroadcast")
        .package("orderer")
        .method(method(
            "broadcast",
            "Broadcast",
            "crate::common::Envelope",
            "crate::orderer::BroadcastResponse",
        ))
        .build();
    // orderer.Cluster's server (its client is generated from cluster.proto above).
    let cluster = Service::builder()
        .name("Cluster")
        .package("orderer")
        .method(method(
            "step",
            "Step",
            "crate::orderer::StepRequest",
            "crate::orderer::StepResponse",
        ))
        .build();
    Builder::new()
        .build_client(false)
        .build_server(true)
        .compile(&[service, cluster]);
}
