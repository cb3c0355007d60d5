//! Fabric's active-node tracker and disseminator. The leader counts itself and the
//! followers raft saw lately; once the count held for four more ticks it sends the
//! list as `ClusterMetadata` with its next message to each node (and again every
//! fourth tick). Followers take the list from the leader only. The list decides
//! whether a consenter change would cost the quorum, on every node, so a Fabric
//! follower under our leader must get it exactly as Fabric's leader sends it.

use bytes::Bytes;
use fabric_protos::orderer::etcdraft::ClusterMetadata;
use prost::Message;
use std::collections::HashSet;

#[derive(Default)]
pub struct Tracker {
    active: Vec<u64>,
    /// Ticks the count has held.
    held: usize,
    /// The marshalled list last made stable, and the nodes it was sent to since.
    metadata: Bytes,
    sent: HashSet<u64>,
}

impl Tracker {
    /// The nodes thought alive: the leader's own count, a follower's last word
    /// from the leader, none without a leader.
    pub fn active(&self) -> &[u64] {
        &self.active
    }

    /// No leader: nothing is known to be alive.
    pub fn leaderless(&mut self) {
        self.active.clear();
    }

    /// One tick on the leader, with the peers raft saw lately (read before the tick
    /// resets them). Returns the count when it is stable and sent out.
    pub fn check(&mut self, id: u64, recent: impl IntoIterator<Item = u64>) -> Option<usize> {
        let mut current = vec![id];
        let mut others: Vec<u64> = recent.into_iter().filter(|peer| *peer != id).collect();
        others.sort_unstable();
        current.extend(others);
        let changed = current.len() != self.active.len();
        self.active = current;
        if changed {
            self.held = 0;
            return None;
        }
        if self.held < 3 {
            self.held += 1;
            return None;
        }
        self.held = 0;
        self.metadata = ClusterMetadata {
            active_nodes: self.active.clone(),
        }
        .encode_to_vec()
        .into();
        self.sent.clear();
        Some(self.active.len())
    }

    /// The metadata to put on the next message to `to`: the list once per node
    /// after it was made, empty otherwise.
    pub fn metadata_for(&mut self, to: u64) -> Bytes {
        if self.metadata.is_empty() || !self.sent.insert(to) {
            return Bytes::new();
        }
        self.metadata.clone()
    }

    /// A follower's copy of the leader's list. Returns its length.
    pub fn learn(&mut self, metadata: &[u8]) -> Result<usize, String> {
        let list = ClusterMetadata::decode(metadata)
            .map_err(|e| format!("failed to unmarshal ClusterMetadata: {e}"))?;
        self.active = list.active_nodes;
        Ok(self.active.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sent_once_to_each_node_after_it_held_three_ticks_and_again_every_fourth() {
        let mut tracker = Tracker::default();
        assert_eq!(tracker.check(2, [3, 1, 2]), None, "a new count");
        assert_eq!(tracker.active(), [2, 1, 3]);
        assert!(tracker.metadata_for(1).is_empty(), "not stable yet");
        assert_eq!(tracker.check(2, [1, 3]), None);
        assert_eq!(tracker.check(2, [1, 3]), None);
        assert_eq!(tracker.check(2, [1, 3]), None);
        assert_eq!(tracker.check(2, [1, 3]), Some(3));
        let sent = tracker.metadata_for(1);
        assert_eq!(
            ClusterMetadata::decode(sent).unwrap().active_nodes,
            [2, 1, 3]
        );
        assert!(tracker.metadata_for(1).is_empty(), "once per node");
        assert!(!tracker.metadata_for(3).is_empty());
        for _ in 0..3 {
            assert_eq!(tracker.check(2, [1, 3]), None);
        }
        assert_eq!(tracker.check(2, [1, 3]), Some(3));
        assert!(!tracker.metadata_for(1).is_empty(), "sent again");

        // A node goes quiet: the count starts over, the last list is still what goes out.
        assert_eq!(tracker.check(2, [1]), None);
        assert_eq!(tracker.active(), [2, 1]);
        assert!(!tracker.metadata_for(3).is_empty());
    }

    #[test]
    fn a_follower_takes_the_leaders_list_and_names_what_it_cannot_read() {
        let mut tracker = Tracker::default();
        let list = ClusterMetadata {
            active_nodes: vec![1, 3],
        };
        assert_eq!(tracker.learn(&list.encode_to_vec()), Ok(2));
        assert_eq!(tracker.active(), [1, 3]);
        let error = tracker.learn(&[0xff]).unwrap_err();
        assert!(
            error.starts_with("failed to unmarshal ClusterMetadata: "),
            "{error}"
        );
        tracker.leaderless();
        assert!(tracker.active().is_empty());
    }
}
