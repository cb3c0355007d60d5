//! The built-in core, which the orderer embeds: `ordering-core` exported as a
//! `wasm32-wasip2` component with no filter policy beyond Fabric's own (it reports
//! itself as "ordering-core"). It lives in its own crate because the export macro may
//! be used only once per component, and policy crates link `ordering-core` too.
//!
//! `cargo build --release --target wasm32-wasip2 -p ordering-core-builtin`
//! gives `target/wasm32-wasip2/release/ordering_core_builtin.wasm`.

ordering_core::export_core!(ordering_core::NoPolicy);
