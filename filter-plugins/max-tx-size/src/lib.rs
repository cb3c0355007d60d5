//! Filter policy: a maximum transaction size per organization.
//!
//! Fabric has one limit per channel (`Orderer/BatchSize/AbsoluteMaxBytes`). This
//! policy adds a tighter one per creator MSP, from the table [`LIMITS`] compiled into
//! the component: a message whose size (Fabric's: `len(payload) + len(signature)`)
//! exceeds its organization's limit is refused with BAD_REQUEST. Organizations not in
//! the table get only the channel's limit. CONFIG_UPDATE messages are not limited
//! here (channel administration stays under the channel's own limit).
//!
//! Build the component with
//! `cargo build --release --target wasm32-wasip2 -p max-tx-size`
//! (`target/wasm32-wasip2/release/max_tx_size.wasm`).

use ordering_core::{EnvelopeView, Policy, PolicyContext, Rejection};

/// MSP id -> maximum message size in bytes.
pub const LIMITS: &[(&str, u64)] = &[("Org1MSP", 16 * 1024), ("Org2MSP", 1024 * 1024)];

/// The limit for an MSP, `None` when the table has none.
pub fn limit_for(msp_id: &str) -> Option<u64> {
    LIMITS
        .iter()
        .find(|(id, _)| *id == msp_id)
        .map(|(_, limit)| *limit)
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MaxTxSize;

impl Policy for MaxTxSize {
    const NAME: &'static str = "max-tx-size";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(
        &self,
        _ctx: &PolicyContext<'_>,
        envelope: &EnvelopeView<'_>,
        _now_unix_nanos: u64,
    ) -> Result<(), Rejection> {
        if envelope.is_config_update {
            return Ok(());
        }
        let msp = envelope.creator_msp_id;
        let Some(limit) = limit_for(msp) else {
            return Ok(());
        };
        let size = envelope.size_bytes();
        if size > limit {
            return Err(Rejection::bad_request(format!(
                "message of {size} bytes from {msp} exceeds the maximum of {limit} bytes \
                 for {msp} (policy {} {})",
                Self::NAME,
                Self::VERSION
            )));
        }
        Ok(())
    }
}

ordering_core::export_core!(MaxTxSize);

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{Block, Envelope, HeaderType, Status};
    use ordering_core::NativeCrypto;
    use ordering_core::channel::Channel;
    use ordering_core::config::testkit;
    use prost::Message;

    const ENDORSER: i32 = HeaderType::EndorserTransaction as i32;
    /// 2027-01-01T00:00:00Z: inside the fixture certificates' validity.
    const NOW: u64 = 1_798_761_600_000_000_000;

    fn channel() -> Channel<NativeCrypto, MaxTxSize> {
        let genesis = testkit::read("blocks/mychannel-etcdraft-genesis.block");
        let tip = Block::decode(genesis.as_slice())
            .unwrap()
            .header
            .unwrap()
            .encode_to_vec();
        Channel::open_with_policy(NativeCrypto, MaxTxSize, &genesis, &tip).unwrap()
    }

    /// A message from `signer` whose Fabric size is exactly `size` bytes.
    fn message_of_size(signer: &testkit::Signer, size: u64, t: u64) -> Vec<u8> {
        let probe = signer.envelope("mychannel", ENDORSER, t, b"");
        let env = Envelope::decode(probe.as_slice()).unwrap();
        let overhead = (env.payload.len() + env.signature.len()) as u64;
        // The data field's length prefix grows with the data and DER signatures vary
        // by a byte or two (with the signed bytes): try lengths around the estimate,
        // and timestamps a few nanoseconds apart.
        let estimate = size.saturating_sub(overhead + 3) as usize;
        (0..64)
            .flat_map(|dt| (estimate.saturating_sub(8)..estimate + 8).map(move |len| (dt, len)))
            .map(|(dt, len)| signer.envelope("mychannel", ENDORSER, t + dt, &vec![7; len]))
            .find(|e| {
                let env = Envelope::decode(e.as_slice()).unwrap();
                (env.payload.len() + env.signature.len()) as u64 == size
            })
            .unwrap_or_else(|| panic!("no message of exactly {size} bytes"))
    }

    #[test]
    fn org1_limit_is_enforced() {
        let channel = channel();
        let user1 = testkit::user1();
        let limit = limit_for("Org1MSP").unwrap();
        let at_limit = message_of_size(&user1, limit, NOW);
        assert!(channel.validate(&at_limit, NOW).is_ok());
        let over = message_of_size(&user1, limit + 1, NOW);
        let err = channel.validate(&over, NOW).unwrap_err();
        assert_eq!(err.status, Status::BadRequest);
        assert_eq!(
            err.info,
            format!(
                "message of {} bytes from Org1MSP exceeds the maximum of {limit} bytes for \
                 Org1MSP (policy max-tx-size {})",
                limit + 1,
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    /// The orderer org has no entry: only the channel's AbsoluteMaxBytes applies.
    #[test]
    fn unlisted_org_is_not_limited() {
        let channel = channel();
        let admin = testkit::orderer_admin();
        let big = admin.envelope("mychannel", ENDORSER, NOW, &vec![1; 64 * 1024]);
        assert!(channel.validate(&big, NOW).is_ok());
        assert_eq!(limit_for("OrdererMSP"), None);
    }

    /// Fabric's own filters still run first: a bad signature is FORBIDDEN whatever
    /// the size.
    #[test]
    fn fabric_filters_run_first() {
        let channel = channel();
        let user1 = testkit::user1();
        let mut env = Envelope::decode(message_of_size(&user1, 20_000, NOW).as_slice()).unwrap();
        env.signature = testkit::sign(&user1.key, b"other").into();
        let err = channel.validate(&env.encode_to_vec(), NOW).unwrap_err();
        assert_eq!(err.status, Status::Forbidden);
    }

    /// A message over the limit that was validated under an older config is dropped
    /// when `order` revalidates it.
    #[test]
    fn revalidation_applies_the_policy() {
        let mut channel = channel();
        let user1 = testkit::user1();
        let mut next = channel.config().clone();
        next.sequence = 1;
        channel.update_config(next);
        let over = message_of_size(&user1, 20_000, NOW);
        let cut = channel.order(&over, 0, NOW);
        assert_eq!(cut.dropped.unwrap().status, Status::BadRequest);
        let ok = message_of_size(&user1, 1_000, NOW);
        assert_eq!(channel.order(&ok, 0, NOW).dropped, None);
        assert_eq!(channel.pending_envelopes(), vec![ok]);
    }
}
