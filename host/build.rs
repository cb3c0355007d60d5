//! Builds the built-in ordering core as a wasm32-wasip2 component and embeds it in
//! the binary, so `cargo run` and `cargo test` need no manual step. (The components
//! tests load are built by `tests/components`, a dev-dependency.)

#[path = "wasm_build.rs"]
mod wasm_build;

fn main() {
    let built = wasm_build::build(
        &["ordering-core-builtin"],
        &[
            "core-wasm/src",
            "core-wasm/Cargo.toml",
            "core-wasm/builtin",
            "wit",
            "proto/fabric",
            "proto/src",
        ],
    );
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let embedded = out_dir.join("ordering_core.wasm");
    std::fs::copy(&built[0], &embedded)
        .unwrap_or_else(|e| panic!("copy {}: {e}", built[0].display()));
    println!("cargo:rustc-env=ORDERING_CORE_WASM={}", embedded.display());
}
