use super::*;

/// A test message: an id and a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Msg(u32, u64);

impl BatchItem for Msg {
    fn size_bytes(&self) -> u64 {
        self.1
    }
}

fn cutter(max_message_count: u32, preferred_max_bytes: u32) -> BlockCutter<Msg> {
    BlockCutter::new(CutterLimits {
        max_message_count,
        preferred_max_bytes,
    })
}

fn ids(batches: &[Vec<Msg>]) -> Vec<Vec<u32>> {
    batches
        .iter()
        .map(|b| b.iter().map(|m| m.0).collect())
        .collect()
}

// Fabric: "Ordered ... when the message does not trigger a batch cut".
#[test]
fn message_below_limits_stays_pending() {
    let mut c = cutter(2, 100);
    let r = c.ordered(Msg(1, 10));
    assert!(r.batches.is_empty());
    assert!(r.pending);
    assert_eq!(c.pending_count(), 1);
    assert_eq!(c.pending_bytes(), 10);
    assert!(c.is_pending());
}

// Fabric: "when enqueuing a message causes the batch to be full" (count).
#[test]
fn reaching_max_message_count_cuts() {
    let mut c = cutter(2, 100);
    assert!(c.ordered(Msg(1, 10)).batches.is_empty());
    let r = c.ordered(Msg(2, 10));
    assert_eq!(ids(&r.batches), vec![vec![1, 2]]);
    assert!(!r.pending);
    assert!(!c.is_pending());
    assert_eq!(c.pending_bytes(), 0);
    // The next message starts a fresh batch.
    let r = c.ordered(Msg(3, 10));
    assert!(r.batches.is_empty());
    assert!(r.pending);
}

#[test]
fn max_message_count_one_cuts_every_message() {
    let mut c = cutter(1, 100);
    for i in 0..3 {
        let r = c.ordered(Msg(i, 5));
        assert_eq!(ids(&r.batches), vec![vec![i]]);
        assert!(!r.pending);
    }
}

// Fabric: "when the message will overflow the preferred bytes" -> cut the pending
// batch first, then the message is pending alone.
#[test]
fn overflowing_preferred_bytes_cuts_pending_first() {
    let mut c = cutter(10, 100);
    c.ordered(Msg(1, 40));
    c.ordered(Msg(2, 40));
    let r = c.ordered(Msg(3, 30)); // 80 + 30 > 100
    assert_eq!(ids(&r.batches), vec![vec![1, 2]]);
    assert!(r.pending);
    assert_eq!(c.pending_count(), 1);
    assert_eq!(c.pending_bytes(), 30);
    assert_eq!(ids(&[c.cut()]), vec![vec![3]]);
}

// Exactly PreferredMaxBytes in total is allowed (the test is strictly greater).
#[test]
fn filling_preferred_bytes_exactly_does_not_cut() {
    let mut c = cutter(10, 100);
    c.ordered(Msg(1, 60));
    let r = c.ordered(Msg(2, 40));
    assert!(r.batches.is_empty());
    assert!(r.pending);
    assert_eq!(c.pending_bytes(), 100);
    // A message of exactly PreferredMaxBytes is not isolated.
    let mut c = cutter(10, 100);
    let r = c.ordered(Msg(1, 100));
    assert!(r.batches.is_empty());
    assert!(r.pending);
}

// Overflow and count in one call: the pending batch is cut for bytes, then the
// message alone reaches the count (MaxMessageCount 1 after a config change).
#[test]
fn overflow_then_count_gives_two_batches() {
    let mut c = cutter(10, 100);
    c.ordered(Msg(1, 90));
    c.set_limits(CutterLimits {
        max_message_count: 1,
        preferred_max_bytes: 100,
    });
    let r = c.ordered(Msg(2, 20));
    assert_eq!(ids(&r.batches), vec![vec![1], vec![2]]);
    assert!(!r.pending);
}

// Fabric: "when the message is larger than the preferred max bytes" with nothing
// pending: one batch holding only it.
#[test]
fn oversized_message_alone_is_its_own_batch() {
    let mut c = cutter(10, 100);
    let r = c.ordered(Msg(1, 101));
    assert_eq!(ids(&r.batches), vec![vec![1]]);
    assert!(!r.pending);
    assert!(!c.is_pending());
}

// Fabric: "... and there are pending messages": two batches, pending first.
#[test]
fn oversized_message_cuts_pending_then_isolates() {
    let mut c = cutter(10, 100);
    c.ordered(Msg(1, 10));
    c.ordered(Msg(2, 10));
    let r = c.ordered(Msg(3, 500));
    assert_eq!(ids(&r.batches), vec![vec![1, 2], vec![3]]);
    assert!(!r.pending);
    assert!(!c.is_pending());
    assert_eq!(c.pending_bytes(), 0);
}

#[test]
fn cut_returns_pending_and_resets() {
    let mut c = cutter(10, 100);
    assert!(c.cut().is_empty());
    c.ordered(Msg(1, 10));
    c.ordered(Msg(2, 10));
    assert_eq!(ids(&[c.cut()]), vec![vec![1, 2]]);
    assert!(!c.is_pending());
    assert_eq!(c.pending_bytes(), 0);
    assert!(c.cut().is_empty());
}

// A config change takes effect for the next message, keeping the pending batch.
#[test]
fn new_limits_apply_to_the_next_message() {
    let mut c = cutter(500, 1000);
    for i in 0..5 {
        assert!(c.ordered(Msg(i, 10)).batches.is_empty());
    }
    c.set_limits(CutterLimits {
        max_message_count: 6,
        preferred_max_bytes: 1000,
    });
    assert_eq!(c.limits().max_message_count, 6);
    let r = c.ordered(Msg(5, 10));
    assert_eq!(ids(&r.batches), vec![(0..6).collect::<Vec<_>>()]);
    // Lowering the count below what is pending cuts on the next message.
    for i in 0..3 {
        c.ordered(Msg(i, 10));
    }
    c.set_limits(CutterLimits {
        max_message_count: 2,
        preferred_max_bytes: 1000,
    });
    let r = c.ordered(Msg(9, 10));
    assert_eq!(ids(&r.batches), vec![vec![0, 1, 2, 9]]);
}

#[test]
fn envelope_size_is_payload_plus_signature() {
    let env = fabric_protos::common::Envelope {
        payload: vec![0u8; 7].into(),
        signature: vec![0u8; 5].into(),
    };
    assert_eq!(env.size_bytes(), 12);
}

// A long run mixing all rules never loses, duplicates or reorders a message, and
// no batch breaks the limits except an isolated oversized message.
#[test]
fn mixed_sequence_preserves_order_and_limits() {
    let mut c = cutter(4, 100);
    let mut seen = Vec::new();
    let mut batches = Vec::new();
    let mut x: u64 = 12345;
    for i in 0..1000u32 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = (x >> 33) % 130;
        let r = c.ordered(Msg(i, size));
        assert_eq!(r.pending, c.is_pending());
        batches.extend(r.batches);
        if i % 97 == 0 {
            let b = c.cut();
            if !b.is_empty() {
                batches.push(b);
            }
        }
    }
    let last = c.cut();
    if !last.is_empty() {
        batches.push(last);
    }
    for b in &batches {
        assert!(!b.is_empty());
        let bytes: u64 = b.iter().map(|m| m.1).sum();
        assert!(b.len() <= 4);
        assert!(bytes <= 100 || b.len() == 1, "{b:?}");
        seen.extend(b.iter().map(|m| m.0));
    }
    assert_eq!(seen, (0..1000).collect::<Vec<_>>());
}
