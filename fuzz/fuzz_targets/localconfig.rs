#![no_main]
//! orderer.yaml as `orderer start` reads it: the file (the input up to its first NUL
//! byte) and `ORDERER_*` variables (`NAME=value` lines after it) through Fabric's
//! loader, defaults and checks, then the start settings resolved from them.

use std::collections::HashMap;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use orderer::config::StartArgs;
use orderer::localconfig::LocalConfig;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    start: StartArgs,
}

/// `{File: path}` and `*_FILE` variables read the file they name: inputs that could
/// name a device or a FIFO (which never end) are skipped, escapes included.
const SKIPPED: [&str; 6] = ["/dev", "/proc", "/sys", "/run", "/tmp", "\\"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if SKIPPED.iter().any(|s| text.contains(s)) {
        return;
    }
    let (yaml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let env: HashMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let env = |name: &str| env.get(name).map(|v| v.to_string());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("orderer.yaml");
    std::fs::write(&file, yaml).expect("writing orderer.yaml");
    let argv = ["orderer".as_ref(), "--config".as_ref(), file.as_os_str()];
    let args = Cli::try_parse_from(argv).expect("the flags parse").start;
    let Ok(loaded) = LocalConfig::load(args.config.as_deref(), &env) else {
        return;
    };
    let _ = loaded.config.flatten();
    let _ = loaded.unimplemented(&["General", "FileLedger"]);
    let _ = loaded.etcdraft();
    let _ = args.resolve(&loaded);
});
