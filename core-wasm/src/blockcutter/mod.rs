//! Fabric's block cutter (`orderer/common/blockcutter`): groups ordered messages into
//! batches by count and by bytes. The batch timer is not here: the host owns it and
//! calls [`BlockCutter::cut`] when it fires (as Fabric's consenters do).
//!
//! The rules, applied to each message in order:
//! 1. A message's size is `len(payload) + len(signature)`.
//! 2. A message larger than `PreferredMaxBytes` cuts whatever is pending, then goes
//!    alone into a batch of its own.
//! 3. If the pending bytes plus the message would exceed `PreferredMaxBytes`, the
//!    pending batch is cut first, then the message starts a new one.
//! 4. Once the pending batch holds `MaxMessageCount` messages, it is cut.
//!
//! Sizes are summed in `u64`: Fabric sums in `uint32`, which could only wrap with a
//! `PreferredMaxBytes` near 4 GiB, far above what any channel config allows in practice.

use crate::config::BatchSize;

/// Something the cutter can batch: it only needs the Fabric size of the message.
pub trait BatchItem {
    /// `len(payload) + len(signature)` of the envelope.
    fn size_bytes(&self) -> u64;
}

impl BatchItem for fabric_protos::common::Envelope {
    fn size_bytes(&self) -> u64 {
        self.payload.len() as u64 + self.signature.len() as u64
    }
}

/// The limits the cutter applies (from the channel's `Orderer/BatchSize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutterLimits {
    pub max_message_count: u32,
    pub preferred_max_bytes: u32,
}

impl From<BatchSize> for CutterLimits {
    fn from(b: BatchSize) -> Self {
        CutterLimits {
            max_message_count: b.max_message_count,
            preferred_max_bytes: b.preferred_max_bytes,
        }
    }
}

/// The result of [`BlockCutter::ordered`]: zero, one or two batches cut, and whether
/// messages remain pending afterwards (the host keeps its batch timer running while
/// they do).
#[derive(Debug, PartialEq, Eq)]
pub struct Ordered<T> {
    pub batches: Vec<Vec<T>>,
    pub pending: bool,
}

/// One channel's block cutter: the pending batch and the limits it is cut by.
#[derive(Debug)]
pub struct BlockCutter<T> {
    limits: CutterLimits,
    pending: Vec<T>,
    pending_bytes: u64,
}

impl<T: BatchItem> BlockCutter<T> {
    pub fn new(limits: CutterLimits) -> Self {
        BlockCutter {
            limits,
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> CutterLimits {
        self.limits
    }

    /// New limits (a config change); they apply from the next message on. The pending
    /// batch is kept, as in Fabric, where the cutter reads the current config on each
    /// message.
    pub fn set_limits(&mut self, limits: CutterLimits) {
        self.limits = limits;
    }

    /// Number of messages pending.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Total size of the pending messages.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// The pending messages, in order.
    pub fn pending(&self) -> &[T] {
        &self.pending
    }

    /// Whether messages are pending.
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Orders one message: Fabric's `receiver.Ordered`. See the module docs.
    pub fn ordered(&mut self, msg: T) -> Ordered<T> {
        let size = msg.size_bytes();
        let preferred = u64::from(self.limits.preferred_max_bytes);
        let mut batches = Vec::new();

        if size > preferred {
            // Isolate it: cut pending (if any), then the message alone.
            if !self.pending.is_empty() {
                batches.push(self.cut());
            }
            batches.push(vec![msg]);
            return Ordered {
                batches,
                pending: false,
            };
        }

        if self.pending_bytes + size > preferred {
            // Never empty here: size alone fits within preferred.
            batches.push(self.cut());
        }

        self.pending.push(msg);
        self.pending_bytes += size;
        let mut pending = true;

        if self.pending.len() as u64 >= u64::from(self.limits.max_message_count) {
            batches.push(self.cut());
            pending = false;
        }

        Ordered { batches, pending }
    }

    /// Returns the pending batch (possibly empty) and starts a new one: Fabric's
    /// `receiver.Cut`, called on batch timeout and before config messages.
    pub fn cut(&mut self) -> Vec<T> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests;
