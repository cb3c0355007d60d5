//! Builds the ordering core as a wasm32-wasip2 component and embeds it in the binary,
//! so `cargo run` and `cargo test` need no manual step. Installs the wasm target with
//! rustup when it is missing (these machines set RUSTUP_AUTO_INSTALL=0).
//!
//! The same cargo invocation builds the example filter policies and the deliberately
//! broken components (`policies/`), which tests load from the paths given in
//! [`COMPONENTS`]' environment variables (they are not embedded).

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// The built-in core: package, and the variable naming its embedded copy.
const BUILTIN: (&str, &str) = ("ordering-core-builtin", "ORDERING_CORE_WASM");

/// Components for tests and examples: package, and the variable naming its path.
const COMPONENTS: &[(&str, &str)] = &[
    ("max-tx-size", "POLICY_MAX_TX_SIZE_WASM"),
    ("rate-limit", "POLICY_RATE_LIMIT_WASM"),
    ("broken-loop", "BROKEN_LOOP_WASM"),
    ("broken-panic", "BROKEN_PANIC_WASM"),
    ("broken-alloc", "BROKEN_ALLOC_WASM"),
];

/// `target/wasm32-wasip2/release/<crate>.wasm` of a package.
fn artifact(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for dir in [
        "core-wasm/src",
        "core-wasm/Cargo.toml",
        "core-wasm/builtin",
        "policies",
        "wit",
        "proto/fabric",
        "proto/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // <target>/<profile>/build/orderer-*/out -> <target>/wasm-core, shared by rebuilds.
    let target_dir = out_dir.ancestors().nth(4).unwrap().join("wasm-core");

    ensure_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET]);
    for (package, _) in std::iter::once(&BUILTIN).chain(COMPONENTS) {
        command.args(["-p", package]);
    }
    let status = command
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("run cargo to build the wasm core");
    assert!(status.success(), "building the wasm core failed");

    let built = artifact(&target_dir, BUILTIN.0);
    let embedded = out_dir.join("ordering_core.wasm");
    std::fs::copy(&built, &embedded).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    println!("cargo:rustc-env={}={}", BUILTIN.1, embedded.display());
    for (package, var) in COMPONENTS {
        let path = artifact(&target_dir, package);
        assert!(path.exists(), "{} was not built", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    if libdir.as_deref().is_some_and(Path::exists) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
    );
}
