//! The Raft log raft-rs reads (Fabric's `RaftStorage` over etcd's `MemoryStorage`):
//! the entries since the last compaction and the last snapshot, whose data is a block.
//! raft-rs's own `MemStorage` cannot hold a snapshot's data (it makes up an empty one
//! when a follower needs it), so a leader could not send Fabric's kind of snapshot.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

#[derive(Default)]
pub struct Log {
    hard_state: HardState,
    conf_state: ConfState,
    /// The last snapshot taken or received (index 0: none).
    snapshot: Snapshot,
    /// Index and term of the last entry compacted away.
    base: (u64, u64),
    /// The entries after `base`, contiguous.
    entries: Vec<Entry>,
}

impl Log {
    pub fn new(conf_state: ConfState) -> Log {
        Log {
            conf_state,
            ..Default::default()
        }
    }

    pub fn snapshot_of(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        self.conf_state = conf_state;
    }

    fn first(&self) -> u64 {
        self.base.0 + 1
    }

    fn last(&self) -> u64 {
        self.entries.last().map_or(self.base.0, |e| e.index)
    }

    /// The entries after `index`.
    pub fn entries_after(&self, index: u64) -> &[Entry] {
        let skip = index.saturating_sub(self.base.0) as usize;
        &self.entries[skip.min(self.entries.len())..]
    }

    /// Appends entries, replacing every entry from the first one's index on.
    pub fn append(&mut self, entries: &[Entry]) -> raft::Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.base.0 || first.index > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Other(
                format!(
                    "appending entry {} to a log of entries {}..={}",
                    first.index,
                    self.first(),
                    self.last()
                )
                .into(),
            )));
        }
        self.entries.truncate((first.index - self.first()) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// A snapshot taken at `index` (applied here): the log keeps the entries after
    /// `keep_from`, so a follower a little behind gets entries, not the snapshot.
    pub fn take_snapshot(&mut self, index: u64, data: bytes::Bytes, keep_from: u64) {
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = raft::Storage::term(self, index).unwrap_or(self.hard_state.term);
        meta.set_conf_state(self.conf_state.clone());
        snapshot.data = data;
        self.snapshot = snapshot;
        let compact = keep_from.min(index);
        if compact > self.base.0 {
            let term = raft::Storage::term(self, compact).unwrap_or(0);
            self.entries.drain(..(compact - self.base.0) as usize);
            self.base = (compact, term);
        }
    }

    /// A snapshot from the leader (or the disk): the log restarts after it.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.base = (meta.index, meta.term);
        self.entries.clear();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.get_conf_state().clone();
        self.snapshot = snapshot;
    }
}

impl raft::Storage for Log {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = (low - self.first()) as usize;
        let to = (high - self.first()) as usize;
        let mut entries = self.entries[from..to].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.base.0 {
            return Ok(self.base.1);
        }
        if index == self.snapshot.get_metadata().index && index != 0 {
            return Ok(self.snapshot.get_metadata().term);
        }
        if index < self.base.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(index - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _: u64, _: u64) -> raft::Result<Snapshot> {
        if self.snapshot.get_metadata().index == 0 {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn a_snapshot_compacts_all_but_the_catch_up_entries_and_is_served_with_its_data() {
        let mut log = Log::new(ConfState::from((vec![1, 2, 3], vec![])));
        let entries: Vec<Entry> = (1..=10).map(|i| entry(i, 1 + i / 6)).collect();
        log.append(&entries).unwrap();
        assert!(matches!(
            log.snapshot(0, 2),
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        ));
        log.take_snapshot(8, bytes::Bytes::from_static(b"block"), 4);
        assert_eq!(log.first_index().unwrap(), 5);
        assert_eq!(log.term(4).unwrap(), 1);
        assert!(matches!(
            log.term(3),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert!(matches!(
            log.entries(4, 6, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert_eq!(
            log.entries(5, 11, None, GetEntriesContext::empty(false))
                .unwrap()
                .len(),
            6
        );
        let snapshot = log.snapshot(0, 2).unwrap();
        assert_eq!(snapshot.get_metadata().index, 8);
        assert_eq!(snapshot.get_metadata().term, 2);
        assert_eq!(
            snapshot.get_metadata().get_conf_state().voters,
            vec![1, 2, 3]
        );
        assert_eq!(&snapshot.data[..], b"block");

        // A conflicting entry replaces the rest of the log.
        log.append(&[entry(7, 3)]).unwrap();
        assert_eq!(log.last_index().unwrap(), 7);
        assert!(log.append(&[entry(3, 3)]).is_err(), "compacted");
        assert!(log.append(&[entry(9, 3)]).is_err(), "a gap");
    }

    #[test]
    fn an_applied_snapshot_replaces_the_log() {
        let mut log = Log::new(ConfState::default());
        log.append(&[entry(1, 1), entry(2, 1)]).unwrap();
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = 20;
        snapshot.mut_metadata().term = 4;
        snapshot
            .mut_metadata()
            .set_conf_state(ConfState::from((vec![1, 2], vec![])));
        log.apply_snapshot(snapshot);
        assert_eq!(log.first_index().unwrap(), 21);
        assert_eq!(log.last_index().unwrap(), 20);
        assert_eq!(log.term(20).unwrap(), 4);
        let state = log.initial_state().unwrap();
        assert_eq!(state.hard_state.commit, 20);
        assert_eq!(state.conf_state.voters, vec![1, 2]);
        log.append(&[entry(21, 4)]).unwrap();
        assert_eq!(log.entries_after(20).len(), 1);
    }
}
