//! A deliberately broken component for fault-containment tests: `validate` allocates
//! without bound (64 MiB chunks, each written to, until the allocator fails: at the
//! host's memory limit, or at wasm32's 4 GiB) once Fabric's filters have accepted a
//! message. Everything else is the normal core.

use ordering_core::{EnvelopeView, Policy, PolicyContext, Rejection};

#[derive(Default)]
pub struct Alloc;

const CHUNK: usize = 64 << 20;

impl Policy for Alloc {
    const NAME: &'static str = "broken-alloc";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(&self, _: &PolicyContext<'_>, _: &EnvelopeView<'_>, _: u64) -> Result<(), Rejection> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xa5; CHUNK]);
            std::hint::black_box(&hoard);
        }
    }
}

ordering_core::export_core!(Alloc);
