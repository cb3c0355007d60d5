//! A minimal WASI preview 2 runner, built from the host's own wasmtime, so the
//! ordering core's unit tests can run compiled to wasm32-wasip2:
//!
//! ```text
//! CARGO_TARGET_WASM32_WASIP2_RUNNER=target/release/wasm-test-runner \
//!     cargo test --release --target wasm32-wasip2 -p ordering-core
//! ```
//!
//! Usage: `wasm-test-runner <file.wasm> [args...]`. The file is a component exporting
//! `wasi:cli/run` (what rustc builds for wasm32-wasip2 binaries and test harnesses).
//! The guest inherits stdio, the environment and the arguments (argv[0] is the file),
//! and sees the host's `/` as `/` (tests read fixtures by absolute paths, e.g. from
//! `env!("CARGO_MANIFEST_DIR")`). Exit code: 0 when `run` returns Ok, 1 when it returns Err, the
//! code given to `wasi:cli/exit`, or 101 (as a native Rust panic) on a trap.

use std::process::ExitCode;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Config, Engine, Result, Store, bail};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            // A trap (a panic in the guest aborts) or a setup failure.
            eprintln!("wasm-test-runner: {e:#}");
            ExitCode::from(101)
        }
    }
}

fn run() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(wasm) = args.first() else {
        bail!("usage: wasm-test-runner <file.wasm> [args...]");
    };

    let engine = Engine::new(&Config::new())?;
    let component =
        Component::from_file(&engine, wasm).with_context(|| format!("loading {wasm}"))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio()
        .inherit_env()
        .args(&args)
        .preopened_dir("/", "/", FsPerms::ReadWrite)
        .context("preopening /")?;
    // No "." preopen for the current directory: wasi-libc strips "/" and "./" from
    // preopen names, so "/" and "." tie for every path and the one preopened last
    // wins, which breaks absolute paths (and wasi-libc ignores `initial_cwd`, so the
    // guest's cwd is "/" either way). Guests that need relative paths would have to
    // chdir themselves.
    let state = State {
        wasi: wasi.build(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(&engine, state);

    let command = Command::instantiate(&mut store, &component, &linker)
        .with_context(|| format!("instantiating {wasm}"))?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            // Exit codes beyond a byte are truncated by the OS anyway.
            Some(&I32Exit(code)) => Ok(ExitCode::from(code as u8)),
            None => Err(e),
        },
    }
}
