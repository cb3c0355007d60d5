//! Tells the tests where Fabric's fixtures are (`testdata/fabric` in the repository),
//! as a resolved path: under a WASI runner the tests see the host's filesystem
//! through a preopened `/`, where a symlink cannot be followed.

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let fixtures = manifest.join("../testdata/fabric");
    let resolved = std::fs::canonicalize(&fixtures).unwrap_or(fixtures);
    println!("cargo:rustc-env=FABRIC_FIXTURES={}", resolved.display());
    println!("cargo:rerun-if-changed=build.rs");
}
