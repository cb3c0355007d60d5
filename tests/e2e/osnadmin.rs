//! `orderer channel join|list|remove` and Fabric's own `osnadmin channel
//! join|list|remove` (v2.5.12, `$FABRIC_REF/bin/osnadmin`, plain HTTP: no
//! `--ca-file`) against the real binary's admin listener: the same steps print the
//! same thing, byte for byte, as osnadmin prints against Fabric's orderer.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CH: &str = "mychannel";

/// One step of the session: what it does, and what both tools print.
enum Step {
    List(Option<&'static str>),
    Join(&'static str),
    Remove(&'static str),
}

fn block(name: &str) -> PathBuf {
    fabric().join("blocks").join(name)
}

fn info(status: u16) -> String {
    format!(
        "Status: {status}\n{{\n\t\"name\": \"{CH}\",\n\t\"url\": \"/participation/v1/channels/{CH}\",\n\t\"consensusRelation\": \"other\",\n\t\"status\": \"active\",\n\t\"height\": 1\n}}\n\n"
    )
}

fn error(status: u16, text: &str) -> String {
    format!("Status: {status}\n{{\n\t\"error\": \"{text}\"\n}}\n\n")
}

fn session() -> Vec<(Step, String)> {
    let empty =
        "Status: 200\n{\n\t\"systemChannel\": null,\n\t\"channels\": null\n}\n\n".to_string();
    let one = format!(
        "Status: 200\n{{\n\t\"systemChannel\": null,\n\t\"channels\": [\n\t\t{{\n\t\t\t\"name\": \"{CH}\",\n\t\t\t\"url\": \"/participation/v1/channels/{CH}\"\n\t\t}}\n\t]\n}}\n\n"
    );
    vec![
        (Step::List(None), empty.clone()),
        (Step::Join("mychannel-solo-genesis.block"), info(201)),
        (Step::List(None), one),
        (Step::List(Some(CH)), info(200)),
        (
            Step::Join("mychannel-etcdraft-genesis.block"),
            error(405, "cannot join: channel already exists"),
        ),
        (
            Step::Join("mychannel-etcdraft-block-1.block"),
            error(400, "invalid join block: block is not a config block"),
        ),
        (
            Step::List(Some("nosuchchannel")),
            error(404, "channel does not exist"),
        ),
        (Step::Remove(CH), "Status: 204\n\n".to_string()),
        (
            Step::Remove(CH),
            error(404, "cannot remove: channel does not exist"),
        ),
        (Step::List(None), empty),
    ]
}

/// Runs `args` and returns what it printed; it must exit 0, as osnadmin does for
/// every HTTP answer.
fn run(program: &Path, args: &[String]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn ours(admin: &str, step: &Step) -> Vec<String> {
    let mut args = vec!["channel".to_string()];
    match step {
        Step::List(channel) => {
            args.extend(["list".into(), "--admin".into(), admin.into()]);
            args.extend(channel.map(String::from));
        }
        Step::Join(file) => args.extend([
            "join".into(),
            "--admin".into(),
            admin.into(),
            "--config-block".into(),
            block(file).display().to_string(),
        ]),
        Step::Remove(channel) => args.extend([
            "remove".into(),
            "--admin".into(),
            admin.into(),
            channel.to_string(),
        ]),
    }
    args
}

fn osnadmin(admin: &str, step: &Step) -> Vec<String> {
    let mut args: Vec<String> = vec!["channel".into()];
    match step {
        Step::List(channel) => {
            args.extend(["list".into(), "-o".into(), admin.into()]);
            if let Some(channel) = channel {
                args.extend(["-c".into(), channel.to_string()]);
            }
        }
        Step::Join(file) => args.extend([
            "join".into(),
            "-o".into(),
            admin.into(),
            "--channelID".into(),
            CH.into(),
            "--config-block".into(),
            block(file).display().to_string(),
        ]),
        Step::Remove(channel) => args.extend([
            "remove".into(),
            "-o".into(),
            admin.into(),
            "-c".into(),
            channel.to_string(),
        ]),
    }
    args
}

/// The whole session with one tool against a fresh orderer with no channel.
fn check(program: &Path, args_of: fn(&str, &Step) -> Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let msp = fixture_msp(ORDERER0_MSP);
    let orderer = Orderer::spawn(
        dir.path(),
        &["--msp-dir", msp.to_str().unwrap(), "--msp-id", "OrdererMSP"],
    );
    for (step, expected) in session() {
        let args = args_of(&orderer.admin, &step);
        let printed = run(program, &args);
        println!("$ {} {}\n{printed}", program.display(), args.join(" "));
        assert_eq!(printed, expected, "{args:?}");
    }
}

#[test]
fn orderer_channel_prints_what_osnadmin_prints() {
    check(Path::new(env!("CARGO_BIN_EXE_orderer")), ours);
}

#[test]
fn fabric_osnadmin_joins_lists_and_removes() {
    let Some(reference) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    check(&PathBuf::from(reference).join("bin/osnadmin"), osnadmin);
}
