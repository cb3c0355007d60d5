//! Builds workspace packages for `wasm32-wasip2` from a build script: one nested cargo
//! call into `<target>/wasm-core` (shared by every build script that uses this, so the
//! core crate compiles once for wasm). Installs the wasm target with rustup when it is
//! missing (these machines set RUSTUP_AUTO_INSTALL=0). Included by `host/build.rs` and
//! `tests/components/build.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Builds `packages` (release) and returns each one's `.wasm`, in order. Reruns the
/// build script when anything under `watch` (paths relative to the workspace) changes.
pub fn build(packages: &[&str], watch: &[&str]) -> Vec<PathBuf> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root")
        .to_path_buf();
    for dir in watch {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // <target>/<profile>/build/<crate>-*/out -> <target>/wasm-core, shared by rebuilds.
    let target_dir = out_dir.ancestors().nth(4).unwrap().join("wasm-core");

    println!("cargo:rerun-if-env-changed={TOOLCHAIN_VAR}");
    ensure_target();
    let mut command = tool("cargo", "CARGO");
    command
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET]);
    for package in packages {
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
        .expect("run cargo to build wasm components");
    assert!(
        status.success(),
        "building {packages:?} for {TARGET} failed"
    );
    packages
        .iter()
        .map(|package| {
            let path = artifact(&target_dir, package);
            assert!(path.exists(), "{} was not built", path.display());
            path
        })
        .collect()
}

/// Set to a rustup toolchain, the wasm build runs on it instead of this build's: the
/// fuzz build runs on a nightly that may have no wasm32-wasip2 to install.
const TOOLCHAIN_VAR: &str = "ORDERER_WASM_TOOLCHAIN";

/// The nested build's `rustc` or `cargo`: this build's (`RUSTC`, `CARGO`), or the
/// [`TOOLCHAIN_VAR`] toolchain's.
fn tool(name: &str, var: &str) -> Command {
    let Ok(toolchain) = std::env::var(TOOLCHAIN_VAR) else {
        return Command::new(std::env::var(var).unwrap_or_else(|_| name.into()));
    };
    let mut command = Command::new("rustup");
    command.args(["run", &toolchain, name]);
    // The outer build's compiler and toolchain would win over `rustup run`'s.
    command.env_remove("RUSTC").env_remove("RUSTUP_TOOLCHAIN");
    command
}

/// `target/wasm32-wasip2/release/<crate>.wasm` of a package.
fn artifact(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

fn ensure_target() {
    let libdir = tool("rustc", "RUSTC")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    if libdir.as_deref().is_some_and(Path::exists) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let mut add = Command::new("rustup");
    add.args(["target", "add", TARGET]);
    if let Ok(toolchain) = std::env::var(TOOLCHAIN_VAR) {
        add.args(["--toolchain", &toolchain]);
    }
    let ok = add.status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
    );
}
