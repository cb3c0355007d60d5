//! A deliberately broken component for fault-containment tests: `validate` panics
//! (a wasm trap) once Fabric's filters have accepted a message. Everything else is the
//! normal core.

use ordering_core::{EnvelopeView, Policy, PolicyContext, Rejection};

#[derive(Default)]
pub struct Panic;

impl Policy for Panic {
    const NAME: &'static str = "broken-panic";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(&self, _: &PolicyContext<'_>, _: &EnvelopeView<'_>, _: u64) -> Result<(), Rejection> {
        panic!("broken-panic: deliberate panic in validate");
    }
}

ordering_core::export_core!(Panic);
