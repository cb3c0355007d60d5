//! `orderer bench` as a user runs it: against a spawned orderer, at full speed and at a
//! fixed rate, and against an address where nothing listens.

use crate::common::*;
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
