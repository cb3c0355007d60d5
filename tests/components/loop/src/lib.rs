//! A deliberately broken component for fault-containment tests: `validate` never
//! returns (it spins forever once Fabric's filters have accepted a message). The host
//! must stop it with its epoch deadline. Everything else is the normal core.

use ordering_core::{EnvelopeView, Policy, PolicyContext, Rejection};

#[derive(Default)]
pub struct Loop;

impl Policy for Loop {
    const NAME: &'static str = "broken-loop";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(&self, _: &PolicyContext<'_>, _: &EnvelopeView<'_>, _: u64) -> Result<(), Rejection> {
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

ordering_core::export_core!(Loop);
