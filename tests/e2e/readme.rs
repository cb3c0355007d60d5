//! The README's first command, exactly as printed, on a fresh data folder: it must
//! start the orderer on the embedded dev default (no other step, no file).

use crate::common::*;
use fabric_protos::common::Status;
use std::path::Path;
use std::process::Command;

/// The first line of the README's first code block, without its comment.
fn first_command(readme: &str) -> String {
    let block = readme
        .split("```")
        .nth(1)
        .expect("a code block in the README");
    let line = block
        .lines()
        .skip(1)
        .find(|l| !l.trim().is_empty())
        .expect("a command in the first code block");
    line.split('#').next().unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readmes_first_command_starts_the_dev_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let line = first_command(&readme);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "cargo", "{line}");

    // As printed, from the repository's root; only where it writes and listens
    // moves (Fabric's environment variables), so it cannot meet another orderer.
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(&words[1..])
        .current_dir(&root)
        .env_remove("FABRIC_CFG_PATH")
        .env_remove("ORDERER_GENERAL_LOCALMSPDIR")
        .env_remove("ORDERER_GENERAL_LOCALMSPID")
        .env("ORDERER_FILELEDGER_LOCATION", dir.path())
        .env("ORDERER_GENERAL_LISTENADDRESS", "127.0.0.1")
        .env("ORDERER_GENERAL_LISTENPORT", port.to_string())
        .env("ORDERER_ADMIN_LISTENADDRESS", "127.0.0.1:0")
        .env("ORDERER_OPERATIONS_LISTENADDRESS", "127.0.0.1:0");
    let orderer = Orderer::run(command, dir.path());
    assert_eq!(orderer.addr, format!("127.0.0.1:{port}"));
    assert!(
        orderer
            .stdout
            .iter()
            .any(|l| l == "dev default: channel devchannel"),
        "{:?}",
        orderer.stdout
    );

    let user = dev_user(dir.path());
    let answers = broadcast(&orderer, vec![tx(&user, "devchannel", 100, 1)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
}
