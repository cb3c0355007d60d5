//! Bad input at start: a one-line error naming the file or flag, and a non-zero exit.

use crate::common::*;
use fabric_protos::common::{Block, ConfigEnvelope, Envelope, Payload};
use fabric_protos::orderer::ConsensusType;
use fabric_protos::orderer::etcdraft::{ConfigMetadata, Consenter};
use prost::Message;
use std::path::Path;
use std::process::Command;

/// Runs `orderer start ARGS` expecting it to fail; returns its stderr's error line.
fn start_fails(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(["start", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("ORDERER_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn fixture_args<'a>(msp: &'a str, genesis: &'a str) -> Vec<&'a str> {
    vec![
        "--listen",
        "127.0.0.1:0",
        "--msp-dir",
        msp,
        "--msp-id",
        "OrdererMSP",
        "--genesis-block",
        genesis,
    ]
}

#[test]
fn bad_files_and_flags_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let msp = fixture_msp(ORDERER0_MSP);
    let msp = msp.to_str().unwrap();

    let missing = dir.path().join("nope.block");
    let err = start_fails(dir.path(), &fixture_args(msp, missing.to_str().unwrap()));
    assert!(err.contains("nope.block"), "{err}");

    let garbage = dir.path().join("garbage.block");
    std::fs::write(&garbage, b"\x0a\xffthis is not a block").unwrap();
    let err = start_fails(dir.path(), &fixture_args(msp, garbage.to_str().unwrap()));
    assert!(err.contains("garbage.block"), "{err}");

    let genesis = fabric().join("blocks/mychannel-etcdraft-genesis.block");
    let err = start_fails(
        dir.path(),
        &fixture_args("/no/such/msp", genesis.to_str().unwrap()),
    );
    assert!(err.contains("/no/such/msp"), "{err}");

    let err = start_fails(dir.path(), &["--listen", "127.0.0.1:0", "--msp-dir", msp]);
    assert!(err.contains("--msp-id"), "{err}");

    let err = start_fails(dir.path(), &["--listen", "256.1.1.1:99999"]);
    assert!(err.contains("256.1.1.1:99999"), "{err}");
}

/// Raft between orderers identifies consenters by their TLS certificates.
#[test]
fn multi_node_raft_channels_need_tls() {
    let dir = tempfile::tempdir().unwrap();
    let three = dir.path().join("three-consenters.block");
    std::fs::write(&three, with_consenters(3)).unwrap();
    let msp = fixture_msp(ORDERER0_MSP);
    let err = start_fails(
        dir.path(),
        &fixture_args(msp.to_str().unwrap(), three.to_str().unwrap()),
    );
    assert!(
        err.contains("three-consenters.block")
            && err.contains("3 etcdraft consenters: Raft between orderers needs General.TLS"),
        "{err}"
    );
}

/// Fabric's fixture genesis block with its etcdraft consenter set grown to `n`.
fn with_consenters(n: usize) -> Vec<u8> {
    let raw = std::fs::read(fabric().join("blocks/mychannel-etcdraft-genesis.block")).unwrap();
    let mut block = Block::decode(raw.as_slice()).unwrap();
    let data = block.data.as_mut().unwrap();
    let mut env = Envelope::decode(data.data[0].clone()).unwrap();
    let mut payload = Payload::decode(env.payload.clone()).unwrap();
    let mut config_env = ConfigEnvelope::decode(payload.data.clone()).unwrap();
    let orderer = config_env
        .config
        .as_mut()
        .unwrap()
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap();
    let value = orderer.values.get_mut("ConsensusType").unwrap();
    let mut consensus = ConsensusType::decode(value.value.clone()).unwrap();
    let mut metadata = ConfigMetadata::decode(consensus.metadata.clone()).unwrap();
    let first: Consenter = metadata.consenters[0].clone();
    metadata.consenters = (0..n)
        .map(|i| Consenter {
            port: first.port + i as u32,
            ..first.clone()
        })
        .collect();
    consensus.metadata = metadata.encode_to_vec().into();
    value.value = consensus.encode_to_vec().into();
    payload.data = config_env.encode_to_vec().into();
    env.payload = payload.encode_to_vec().into();
    data.data[0] = env.encode_to_vec().into();
    let digest = ordering_core::Crypto::sha256(&ordering_core::NativeCrypto, &data.data[0]);
    block.header.as_mut().unwrap().data_hash = digest.to_vec().into();
    block.encode_to_vec()
}
