//! Paths of the components tests load, built for `wasm32-wasip2` by this crate's
//! build script. Only tests depend on this crate, so a plain build of the orderer
//! does not build them.

/// `filter-plugins/max-tx-size`: a per-organization maximum transaction size.
pub const MAX_TX_SIZE: &str = env!("MAX_TX_SIZE_WASM");
/// `filter-plugins/rate-limit`: a per-creator token bucket.
pub const RATE_LIMIT: &str = env!("RATE_LIMIT_WASM");
/// `tests/components/loop`: `validate` never returns.
pub const BROKEN_LOOP: &str = env!("BROKEN_LOOP_WASM");
/// `tests/components/panic`: `validate` panics.
pub const BROKEN_PANIC: &str = env!("BROKEN_PANIC_WASM");
/// `tests/components/alloc`: `validate` allocates without bound.
pub const BROKEN_ALLOC: &str = env!("BROKEN_ALLOC_WASM");
