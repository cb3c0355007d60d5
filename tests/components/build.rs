//! Builds the example filter plugins and the deliberately broken components for
//! `wasm32-wasip2` and names their paths for `src/lib.rs`.

#[path = "../../host/wasm_build.rs"]
mod wasm_build;

const COMPONENTS: &[(&str, &str)] = &[
    ("max-tx-size", "MAX_TX_SIZE_WASM"),
    ("rate-limit", "RATE_LIMIT_WASM"),
    ("broken-loop", "BROKEN_LOOP_WASM"),
    ("broken-panic", "BROKEN_PANIC_WASM"),
    ("broken-alloc", "BROKEN_ALLOC_WASM"),
];

fn main() {
    let packages: Vec<&str> = COMPONENTS.iter().map(|(package, _)| *package).collect();
    let built = wasm_build::build(
        &packages,
        &[
            "core-wasm/src",
            "core-wasm/Cargo.toml",
            "filter-plugins",
            "tests/components",
            "wit",
            "proto/fabric",
            "proto/src",
        ],
    );
    for ((_, var), path) in COMPONENTS.iter().zip(built) {
        println!("cargo:rustc-env={var}={}", path.display());
    }
}
