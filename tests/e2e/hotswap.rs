//! `orderer start --core FILE`: every channel starts on that component, compiled once
//! and read from the disk cache (`<data-dir>/components`) on the next start. Swapping
//! while serving is tested through the library API (host/src/hotswap/tests.rs).

use crate::common::*;
use fabric_protos::common::Status;
use std::time::Duration;

const CH: &str = "mychannel";
const WAIT: Duration = Duration::from_secs(20);

fn cached_artifacts(data_dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("components"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn fixture_with_core(data_dir: &std::path::Path, core: &str) -> Orderer {
    Orderer::fixture_on(data_dir, &fixture_msp(ORDERER0_MSP), &["--core", core], &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn start_with_core_file_serves_that_component_and_caches_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = test_components::MAX_TX_SIZE;
    let user = user1();
    let mut orderer = fixture_with_core(dir.path(), policy);
    let responses = broadcast(
        &orderer,
        vec![tx(&user, CH, 100, 1), tx(&user, CH, 20 * 1024, 2)],
    )
    .await;
    assert_eq!(
        statuses(&responses),
        vec![Status::Success as i32, Status::BadRequest as i32]
    );
    assert!(
        responses[1].info.contains("(policy max-tx-size"),
        "{}",
        responses[1].info
    );
    let blocks = wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await;
    assert_eq!(tx_count(&blocks[0]), 1);
    let artifacts = cached_artifacts(dir.path());
    assert_eq!(
        artifacts.len(),
        1,
        "only the --core component: {artifacts:?}"
    );
    orderer.kill();

    // Restarted: the same artifact serves, nothing new is compiled.
    let orderer = fixture_with_core(dir.path(), policy);
    assert_eq!(cached_artifacts(dir.path()), artifacts);
    let responses = broadcast(
        &orderer,
        vec![tx(&user, CH, 200, 3), tx(&user, CH, 20 * 1024, 4)],
    )
    .await;
    assert_eq!(
        statuses(&responses),
        vec![Status::Success as i32, Status::BadRequest as i32]
    );
    let blocks = wait_blocks(&orderer, &user, CH, 2, 2, WAIT).await;
    assert_eq!(tx_count(&blocks[0]), 1);
}

#[test]
fn start_refuses_a_core_file_that_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(["start", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--core")
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("core component") && stderr.contains("compiling"),
        "{stderr}"
    );
}

/// `orderer core ...` against the admin API, as an operator runs it.
fn core_cli(orderer: &Orderer, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orderer"))
        .arg("core")
        .args(args)
        .args(["--admin", &orderer.admin])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_swaps_the_core_while_serving() {
    const DEV: &str = "devchannel";
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    let policy = test_components::MAX_TX_SIZE;

    let (ok, status, err) = core_cli(&orderer, &["status", "--channel", DEV]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["name"], "ordering-core");
    let builtin_sha = status["sha256"].as_str().unwrap().to_string();

    // A dry run first compiles the policy into the orderer's cache, so the load below
    // lands well inside the batch timeout even on a busy machine.
    let (ok, _, err) = core_cli(&orderer, &["dry-run", "--channel", DEV, policy]);
    assert!(ok, "{err}");
    // Three messages wait in the cutter (2 s BatchTimeout) while the core is swapped.
    let pending = (0..3).map(|i| tx(&user, DEV, 100, i)).collect();
    assert!(
        broadcast(&orderer, pending)
            .await
            .iter()
            .all(|r| r.status == Status::Success as i32)
    );
    let (ok, loaded, err) = core_cli(&orderer, &["load", "--channel", DEV, policy]);
    assert!(ok, "{err}");
    let loaded: serde_json::Value = serde_json::from_str(&loaded).unwrap();
    assert_eq!(loaded["name"], "max-tx-size");
    assert_eq!(loaded["previous"][0]["sha256"], builtin_sha.as_str());

    // The policy is in force: Org1MSP may send at most 16 KiB.
    let big = broadcast(&orderer, vec![tx(&user, DEV, 20 * 1024, 9)]).await;
    assert_eq!(statuses(&big), vec![Status::BadRequest as i32]);
    assert!(big[0].info.contains("Org1MSP"), "{}", big[0].info);
    let small = broadcast(&orderer, vec![tx(&user, DEV, 100, 10)]).await;
    assert_eq!(statuses(&small), vec![Status::Success as i32]);
    // The pending batch survived the swap: one block with all four, in order.
    let block = &wait_blocks(&orderer, &user, DEV, 1, 1, WAIT).await[0];
    assert_eq!(tx_count(block), 4);

    // Back to the built-in core: the big message is accepted again, and a dry run
    // of the policy names it as the one it would reject.
    let (ok, back, err) = core_cli(&orderer, &["rollback", "--channel", DEV]);
    assert!(ok, "{err}");
    assert!(back.contains(&builtin_sha));
    let big = broadcast(&orderer, vec![tx(&user, DEV, 20 * 1024, 11)]).await;
    assert_eq!(statuses(&big), vec![Status::Success as i32]);
    let (ok, report, err) = core_cli(&orderer, &["dry-run", "--channel", DEV, policy]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let rejected = report.as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report}");
    assert_eq!(rejected[0]["status_name"], "BAD_REQUEST");

    // Bad requests change nothing and say why.
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let (ok, _, err) = core_cli(
        &orderer,
        &["load", "--channel", DEV, garbage.to_str().unwrap()],
    );
    assert!(!ok && err.contains("400"), "{err}");
    let (ok, _, err) = core_cli(&orderer, &["status", "--channel", "nosuchchannel"]);
    assert!(
        !ok && err.contains("404") && err.contains("nosuchchannel"),
        "{err}"
    );
    let (_, status, _) = core_cli(&orderer, &["status", "--channel", DEV]);
    assert!(
        status.contains(&builtin_sha),
        "still the built-in core: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn native_core_orders_and_hands_over_to_a_component() {
    const DEV: &str = "devchannel";
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::spawn(dir.path(), &["--native-core"]);
    let user = dev_user(dir.path());
    let (ok, status, err) = core_cli(&orderer, &["status", "--channel", DEV]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["sha256"], "native", "{status}");

    let sent = (0..3).map(|i| tx(&user, DEV, 20 * 1024, i)).collect();
    assert_eq!(
        statuses(&broadcast(&orderer, sent).await),
        vec![Status::Success as i32; 3]
    );
    let block = &wait_blocks(&orderer, &user, DEV, 1, 1, WAIT).await[0];
    assert_eq!(tx_count(block), 3);

    // A wasm component takes over from the native core, and gives it back.
    let policy = test_components::MAX_TX_SIZE;
    let (ok, _, err) = core_cli(&orderer, &["load", "--channel", DEV, policy]);
    assert!(ok, "{err}");
    let big = broadcast(&orderer, vec![tx(&user, DEV, 20 * 1024, 9)]).await;
    assert_eq!(statuses(&big), vec![Status::BadRequest as i32]);
    let (ok, back, err) = core_cli(&orderer, &["rollback", "--channel", DEV]);
    assert!(ok && back.contains("\"native\""), "{back} {err}");
    let big = broadcast(&orderer, vec![tx(&user, DEV, 20 * 1024, 10)]).await;
    assert_eq!(statuses(&big), vec![Status::Success as i32]);
}

#[test]
fn native_core_and_a_core_file_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(["start", "--native-core", "--core", "x.wasm", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--native-core") && stderr.contains("--core"),
        "{stderr}"
    );
}

/// `--require-signed-components`: only a component signed by an admin of the
/// orderer's org (`orderer core sign`) is loaded; the signer is logged.
#[tokio::test(flavor = "multi_thread")]
async fn signed_components_are_required_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let msp = fixture_msp(ORDERER0_MSP);
    let orderer = Orderer::fixture_on(dir.path(), &msp, &["--require-signed-components"], &[]);
    let policy = test_components::MAX_TX_SIZE;
    let sign = |msp: &str, id: &str, output: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_orderer"))
            .args(["core", "sign", policy, "--msp-dir"])
            .arg(fixture_msp(msp))
            .args(["--msp-id", id, "--output"])
            .arg(output)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let load = |file: &str, sig: Option<&std::path::Path>| {
        let mut args = vec!["load", "--channel", CH, file];
        if let Some(sig) = sig {
            args.extend(["--signature", sig.to_str().unwrap()]);
        }
        core_cli(&orderer, &args)
    };

    let (ok, _, err) = load(policy, None);
    assert!(
        !ok && err.contains("403") && err.contains("only signed components"),
        "{err}"
    );
    let org1 = dir.path().join("org1-admin.sig");
    sign(ORG1_ADMIN_MSP, "Org1MSP", &org1);
    let (ok, _, err) = load(policy, Some(&org1));
    let refusal = "does not satisfy /Channel/Orderer/OrdererOrg/Admins";
    assert!(!ok && err.contains("403") && err.contains(refusal), "{err}");

    let admin = dir.path().join("admin.sig");
    sign(
        "ordererOrganizations/example.com/users/Admin@example.com/msp",
        "OrdererMSP",
        &admin,
    );
    // That signature is for max-tx-size, not for another component.
    let (ok, _, err) = load(test_components::RATE_LIMIT, Some(&admin));
    assert!(!ok && err.contains(refusal), "{err}");
    let (ok, loaded, err) = load(policy, Some(&admin));
    assert!(ok, "{err}");
    let loaded: serde_json::Value = serde_json::from_str(&loaded).unwrap();
    assert_eq!(loaded["name"], "max-tx-size");
    let log = orderer.log();
    assert!(
        log.contains("core swap: component signed by OrdererMSP CN=Admin@example.com"),
        "{log}"
    );
}
