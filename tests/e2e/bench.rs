//! `orderer bench` as a user runs it: against a spawned orderer, at full speed and at a
//! fixed rate, and against an address where nothing listens.

use crate::common::*;
use crate::raft::free_port;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const USER1_DEV_MSP: &str =
    "crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp";

/// `orderer bench` with `args`, a command line's words.
fn bench(orderer_addr: &str, msp_dir: &Path, args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(["bench", "--orderer", orderer_addr, "--msp-id", "Org1MSP"])
        .arg("--msp-dir")
        .arg(msp_dir)
        .args(args.split_whitespace())
        .output()
        .unwrap()
}

/// Runs the bench against `orderer` expecting success; its JSON report.
fn bench_json(orderer: &Orderer, args: &str) -> Value {
    let out = bench(&orderer.addr, &orderer.data_dir.join(USER1_DEV_MSP), args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

fn f64_of(report: &Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} in {report}"))
}

#[test]
fn bench_reports_acks_deliveries_latency_and_orderer_use() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let pid = orderer.pid();
    let report = bench_json(
        &orderer,
        &format!("-n 300 -k 3 -f 2 --json --orderer-pid {pid}"),
    );

    assert_eq!(report["statuses"]["SUCCESS"]["count"], 300, "{report}");
    assert_eq!(report["statuses"].as_object().unwrap().len(), 1, "{report}");
    let deliveries = report["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    for d in deliveries {
        assert_eq!(d["delivered"], 300, "{report}");
        assert!(d["last_envelope_s"].as_f64().unwrap() > 0.0, "{report}");
    }
    let last_block = f64_of(&report, "last_block_s");
    assert!(last_block > 0.0);
    assert!((f64_of(&report, "delivered_per_s") - 300.0 / last_block).abs() < 1.0);
    assert!(f64_of(&report, "acks_per_s") > 0.0);
    let (p50, p99, max) = (
        f64_of(&report, "latency_p50_ms"),
        f64_of(&report, "latency_p99_ms"),
        f64_of(&report, "latency_max_ms"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    // Envelopes of 2000 payload bytes plus headers and the dev client's certificate.
    assert!(f64_of(&report, "envelope_bytes") > 2000.0);
    assert!(f64_of(&report, "orderer_cpu_us_per_envelope") > 0.0);
    assert!(f64_of(&report, "orderer_peak_rss_bytes") > 0.0);
    assert_eq!(report["orderer_peak_rss_since"], "run_start");
}

#[test]
fn bench_at_a_rate_takes_count_over_rate() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let report = bench_json(&orderer, "-n 300 -k 3 --rate 500 --json");
    assert_eq!(report["statuses"]["SUCCESS"]["count"], 300, "{report}");
    assert_eq!(report["offered_rate"], 500.0);
    let duration = f64_of(&report, "duration_s");
    assert!(duration >= 0.8 * 300.0 / 500.0, "{duration} s: {report}");
}

#[test]
fn bench_names_an_unreachable_orderer() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = bench(&addr, &fixture_msp(USER1_MSP), "-n 10 --json");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no report without an orderer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn bench_on_one_connection_reports_the_verify_floor() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let pid = orderer.pid();
    let report = bench_json(
        &orderer,
        &format!("-n 300 -k 3 -f 1 --one-connection --json --orderer-pid {pid}"),
    );
    assert_eq!(report["statuses"]["SUCCESS"]["count"], 300, "{report}");
    assert_eq!(report["one_connection"], true);
    assert_eq!(report["deliveries"][0]["delivered"], 300, "{report}");
    let (cpu, floor) = (
        f64_of(&report, "orderer_cpu_us_per_envelope"),
        f64_of(&report, "floor_us_per_envelope"),
    );
    // A P-256 verify takes microseconds, not nanoseconds or milliseconds.
    assert!((1.0..1000.0).contains(&floor), "{report}");
    let ratio = f64_of(&report, "orderer_cpu_vs_floor");
    assert!((ratio - cpu / floor).abs() < 0.01, "{report}");
}

#[test]
fn bench_timeout_ends_the_run_with_partial_figures() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    // 2,000 envelopes at 500/s cannot be in within one second.
    let out = bench(
        &orderer.addr,
        &orderer.data_dir.join(USER1_DEV_MSP),
        "-n 2000 -k 2 -f 1 --rate 500 --timeout 1 --json",
    );
    assert!(!out.status.success(), "a run cut by --timeout fails");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the partial report");
    let acked = report["statuses"]["SUCCESS"]["count"].as_u64().unwrap();
    assert!(0 < acked && acked < 2000, "{report}");
    assert_eq!(
        report["statuses"]["UNANSWERED"]["count"].as_u64().unwrap(),
        2000 - acked
    );
    assert_eq!(report["deliveries"][0]["error"], "timed out", "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("were not acknowledged with SUCCESS"),
        "{stderr}"
    );
}

/// Fabric's own orderer (FABRIC_REF), started by scripts/fabric-orderer.sh on the
/// fixture channel: the bench completes with Deliver followers, whose first answer a
/// Go server sends only with the first block.
#[test]
fn bench_measures_fabrics_orderer_with_followers() {
    let Some(reference) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fabric-orderer.sh");
    let started = Command::new("bash")
        .arg(script)
        .arg(dir.path().join("fabric"))
        .args([port.to_string(), admin.to_string()])
        .env("FABRIC_REF", reference)
        .env("ORDERER_BIN", env!("CARGO_BIN_EXE_orderer"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(started.status.success(), "Fabric's orderer: {stderr}");
    let pid = String::from_utf8(started.stdout)
        .unwrap()
        .trim()
        .to_string();
    let stop = KillOnDrop(pid.clone());
    let tls_ca = fabric()
        .join("crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/tls/ca.crt");
    let out = bench(
        &format!("127.0.0.1:{port}"),
        &fixture_msp(USER1_MSP),
        &format!(
            "--channel mychannel --tls-ca {} -n 500 -k 2 -f 2 --timeout 30 --json --orderer-pid {pid}",
            tls_ca.display()
        ),
    );
    drop(stop);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench against Fabric: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["statuses"]["SUCCESS"]["count"], 500, "{report}");
    for d in report["deliveries"].as_array().unwrap() {
        assert_eq!(d["delivered"], 500, "{report}");
    }
    assert!(f64_of(&report, "orderer_cpu_us_per_envelope") > 0.0);
    println!(
        "Fabric's orderer: {} acks/s, {} µs/envelope ({}x the floor)",
        report["acks_per_s"], report["orderer_cpu_us_per_envelope"], report["orderer_cpu_vs_floor"]
    );
}

/// SIGKILLs a process that is not our child (Fabric's orderer, started detached).
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.0]).status();
    }
}
