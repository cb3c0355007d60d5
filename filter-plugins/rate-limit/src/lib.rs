//! Filter policy: a rate limit per creator identity, on the time the host passes in.
//!
//! Each creator (its serialized identity: MSP id and certificate) has a token bucket
//! of [`BURST`] tokens refilled at [`RATE_PER_SEC`] tokens per second of the host's
//! `now`; each Broadcast message takes one. With the bucket empty the message is
//! refused with SERVICE_UNAVAILABLE (the client may retry later). Messages checked
//! again by `order` after a config change are not counted twice. Deterministic: the
//! same messages at the same `now` give the same answers.
//!
//! The buckets belong to one channel instance of the component: a host that spreads
//! one channel's Broadcast over several instances gets one limit per instance.
//!
//! Build the component with
//! `cargo build --release --target wasm32-wasip2 -p rate-limit`
//! (`target/wasm32-wasip2/release/rate_limit.wasm`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use ordering_core::{EnvelopeView, Policy, PolicyContext, Rejection, Stage, Status};

/// Sustained rate: messages per second per creator.
pub const RATE_PER_SEC: u64 = 100;
/// Bucket size: messages a creator may send at once after being idle.
pub const BURST: u64 = 200;
/// Buckets kept before idle (full) ones are dropped.
const MAX_TRACKED: usize = 10_000;

const NANOS: u128 = 1_000_000_000;
/// One token, in the bucket's unit (token-nanoseconds, exact in integers).
const TOKEN: u128 = NANOS;
const CAPACITY: u128 = BURST as u128 * TOKEN;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens times 10^9.
    level: u128,
    /// The `now` the level was computed at.
    at: u64,
}

impl Bucket {
    /// The level at `now` (time never runs backwards for a bucket).
    fn refill(&mut self, now: u64) {
        if now > self.at {
            let elapsed = u128::from(now - self.at);
            self.level = (self.level + elapsed * u128::from(RATE_PER_SEC)).min(CAPACITY);
            self.at = now;
        }
    }

    fn is_full_at(&self, now: u64) -> bool {
        let mut b = *self;
        b.refill(now);
        b.level == CAPACITY
    }
}

#[derive(Debug, Default)]
pub struct RateLimit {
    buckets: RefCell<BTreeMap<Vec<u8>, Bucket>>,
}

impl RateLimit {
    /// Creators with a bucket (for tests).
    pub fn tracked(&self) -> usize {
        self.buckets.borrow().len()
    }
}

impl Policy for RateLimit {
    const NAME: &'static str = "rate-limit";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(
        &self,
        ctx: &PolicyContext<'_>,
        envelope: &EnvelopeView<'_>,
        now_unix_nanos: u64,
    ) -> Result<(), Rejection> {
        if ctx.stage == Stage::Revalidation {
            return Ok(());
        }
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(envelope.creator) {
            buckets.retain(|_, b| !b.is_full_at(now_unix_nanos));
        }
        let bucket = buckets.entry(envelope.creator.to_vec()).or_insert(Bucket {
            level: CAPACITY,
            at: now_unix_nanos,
        });
        bucket.refill(now_unix_nanos);
        if bucket.level < TOKEN {
            let wait_ms = (TOKEN - bucket.level).div_ceil(u128::from(RATE_PER_SEC) * 1_000_000);
            let subject = envelope.creator_common_name().unwrap_or_else(|| "?".into());
            return Err(Rejection::new(
                Status::ServiceUnavailable,
                format!(
                    "rate limit exceeded for {}/{subject}: at most {RATE_PER_SEC} messages/s \
                     (burst {BURST}) per creator on channel {}; retry in {wait_ms} ms \
                     (policy {} {})",
                    envelope.creator_msp_id,
                    ctx.channel_id(),
                    Self::NAME,
                    Self::VERSION
                ),
            ));
        }
        bucket.level -= TOKEN;
        Ok(())
    }
}

ordering_core::export_core!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{Block, HeaderType};
    use ordering_core::NativeCrypto;
    use ordering_core::channel::Channel;
    use ordering_core::config::testkit;
    use prost::Message;

    const ENDORSER: i32 = HeaderType::EndorserTransaction as i32;
    /// 2027-01-01T00:00:00Z: inside the fixture certificates' validity.
    const NOW: u64 = 1_798_761_600_000_000_000;

    fn channel() -> Channel<NativeCrypto, RateLimit> {
        let genesis = testkit::read("blocks/mychannel-etcdraft-genesis.block");
        let tip = Block::decode(genesis.as_slice())
            .unwrap()
            .header
            .unwrap()
            .encode_to_vec();
        Channel::open_with_policy(NativeCrypto, RateLimit::default(), &genesis, &tip).unwrap()
    }

    fn message(signer: &testkit::Signer, i: u64) -> Vec<u8> {
        signer.envelope("mychannel", ENDORSER, NOW, &i.to_be_bytes())
    }

    #[test]
    fn burst_then_refused_then_refilled() {
        let channel = channel();
        let user1 = testkit::user1();
        let envelopes: Vec<Vec<u8>> = (0..BURST + 2).map(|i| message(&user1, i)).collect();
        for env in &envelopes[..BURST as usize] {
            channel.validate(env, NOW).unwrap();
        }
        let err = channel
            .validate(&envelopes[BURST as usize], NOW)
            .unwrap_err();
        assert_eq!(err.status, Status::ServiceUnavailable);
        assert!(
            err.info.starts_with(
                "rate limit exceeded for Org1MSP/User1@org1.example.com: at most 100 \
                 messages/s (burst 200) per creator on channel mychannel; retry in 10 ms"
            ),
            "{}",
            err.info
        );
        // 10 ms later: one token back, one message.
        let later = NOW + 10_000_000;
        channel.validate(&envelopes[BURST as usize], later).unwrap();
        assert!(
            channel
                .validate(&envelopes[BURST as usize + 1], later)
                .is_err()
        );
        // Time going backwards neither refills nor breaks the bucket.
        assert!(channel.validate(&envelopes[0], NOW).is_err());
        // 2 s of idleness: the whole burst is back.
        let idle = later + 2_000_000_000;
        for env in &envelopes[..BURST as usize] {
            channel.validate(env, idle).unwrap();
        }
        assert!(channel.validate(&envelopes[0], idle).is_err());
    }

    /// The bucket is per creator: another identity is not affected.
    #[test]
    fn buckets_are_per_creator() {
        let channel = channel();
        let user1 = testkit::user1();
        let admin1 = testkit::admin1();
        for i in 0..BURST {
            channel.validate(&message(&user1, i), NOW).unwrap();
        }
        assert!(channel.validate(&message(&user1, 0), NOW).is_err());
        channel.validate(&message(&admin1, 0), NOW).unwrap();
        assert_eq!(channel.policy().tracked(), 2);
    }

    /// Refused messages take no token; rejected-by-Fabric messages take none either.
    #[test]
    fn only_accepted_messages_count() {
        let channel = channel();
        let user1 = testkit::user1();
        let other_channel = user1.envelope("otherchannel", ENDORSER, NOW, b"x");
        for _ in 0..2 * BURST {
            assert!(channel.validate(&other_channel, NOW).is_err());
        }
        for i in 0..BURST {
            channel.validate(&message(&user1, i), NOW).unwrap();
        }
    }

    /// `order` revalidating after a config change does not count messages again.
    #[test]
    fn revalidation_does_not_count() {
        let mut channel = channel();
        let user1 = testkit::user1();
        let envelopes: Vec<Vec<u8>> = (0..BURST).map(|i| message(&user1, i)).collect();
        for env in &envelopes {
            channel.validate(env, NOW).unwrap();
        }
        let mut next = channel.config().clone();
        next.sequence = 1;
        channel.update_config(next);
        for env in &envelopes {
            assert_eq!(channel.order(env, 0, NOW).dropped, None);
        }
        assert_eq!(channel.pending_envelopes().len(), BURST as usize);
    }
}
