//! The Raft write-ahead log of one channel (`Consensus.WALDir/<channel>/wal`), in our
//! own format: records of `length u32 | crc32 u32 | body`, little-endian, where a body
//! is an entry (`1 | type u8 | term u64 | index u64 | data`) or a hard state
//! (`2 | term u64 | vote u64 | commit u64`). Each Ready's records are written and
//! fsynced before its messages leave and before its committed blocks are written, so
//! what a node acknowledged survives a crash. Reading stops at the first record that
//! is short or fails its CRC (a write the crash cut off, never synced) and the file is
//! cut there. An entry overwrites every later one, as in Raft's log.
//!
//! The last snapshot is one record in `Consensus.SnapDir/<channel>/snapshot` (`index
//! u64 | term u64 | voters: count u32, ids u64... | learners: the same | data`),
//! replaced by a rename once its new content is synced. After a snapshot the log is
//! compacted: the entries still kept and the hard state go to a new file that
//! replaces `wal` by a rename, so a crash leaves either log whole.

use anyhow::{Context, Result, bail, ensure};
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;

pub struct Wal {
    file: File,
    path: PathBuf,
    snap_dir: PathBuf,
}

/// What a WAL held when it was opened: the last snapshot, and the entries after it.
#[derive(Debug, Default)]
pub struct Restored {
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
}

impl Wal {
    /// The WAL in `dir` and the snapshots in `snap_dir`, created if absent; `None` as
    /// restored when the WAL was new.
    pub fn open(dir: &Path, snap_dir: &Path) -> Result<(Wal, Option<Restored>)> {
        for dir in [dir, snap_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let path = dir.join("wal");
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let snap_dir = snap_dir.to_path_buf();
        if !existed {
            // The file's name must survive a crash too.
            File::open(dir)?.sync_all()?;
            return Ok((
                Wal {
                    file,
                    path,
                    snap_dir,
                },
                None,
            ));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (mut restored, valid) =
            replay(&bytes).with_context(|| format!("reading {}", path.display()))?;
        restored.snapshot = read_snapshot(&snap_dir)?;
        if let Some(snapshot) = &restored.snapshot {
            // What the snapshot holds is not replayed: those entries may be gone.
            let index = snapshot.get_metadata().index;
            restored.entries.retain(|e| e.index > index);
        }
        if valid < bytes.len() {
            tracing::warn!(
                "{}: cutting {} bytes of an unfinished write at offset {valid}",
                path.display(),
                bytes.len() - valid
            );
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        let wal = Wal {
            file,
            path,
            snap_dir,
        };
        Ok((wal, Some(restored)))
    }

    /// Appends `entries` and `hard_state` and fsyncs them.
    pub fn append(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<()> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        let out = records(entries, hard_state);
        self.file
            .write_all(&out)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Makes `snapshot` the one a restart starts from (synced before this returns).
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        let mut body = Vec::with_capacity(64 + snapshot.data.len());
        body.extend_from_slice(&meta.index.to_le_bytes());
        body.extend_from_slice(&meta.term.to_le_bytes());
        let conf = meta.get_conf_state();
        for ids in [&conf.voters, &conf.learners] {
            body.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            ids.iter()
                .for_each(|id| body.extend_from_slice(&id.to_le_bytes()));
        }
        body.extend_from_slice(&snapshot.data);
        let mut out = Vec::new();
        record(&mut out, &body);
        replace(&self.snap_dir.join(SNAPSHOT), &out)
    }

    /// Replaces the log by `entries` and `hard_state` (after a snapshot: the entries
    /// it does not hold).
    pub fn compact(&mut self, entries: &[Entry], hard_state: &HardState) -> Result<()> {
        replace(&self.path, &records(entries, Some(hard_state)))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        Ok(())
    }
}

const SNAPSHOT: &str = "snapshot";

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
    })();
    written.with_context(|| format!("writing {}", path.display()))
}

/// The snapshot in `dir`, if one was saved.
fn read_snapshot(dir: &Path) -> Result<Option<Snapshot>> {
    let path = dir.join(SNAPSHOT);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let parsed = (|| -> Result<Snapshot> {
        ensure!(bytes.len() >= 8, "shorter than a record header");
        let length = u32::from_le_bytes(bytes[0..4].try_into()?) as usize;
        let body = bytes.get(8..8 + length).context("cut short")?;
        ensure!(
            crc32fast::hash(body) == u32::from_le_bytes(bytes[4..8].try_into()?),
            "CRC mismatch"
        );
        let mut at = 0;
        let mut take = |n: usize| -> Result<&[u8]> {
            let part = body.get(at..at + n).context("cut short")?;
            at += n;
            Ok(part)
        };
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = u64::from_le_bytes(take(8)?.try_into()?);
        meta.term = u64::from_le_bytes(take(8)?.try_into()?);
        let mut ids = || -> Result<Vec<u64>> {
            let count = u32::from_le_bytes(take(4)?.try_into()?) as usize;
            (0..count)
                .map(|_| Ok(u64::from_le_bytes(take(8)?.try_into()?)))
                .collect()
        };
        let (voters, learners) = (ids()?, ids()?);
        meta.set_conf_state(ConfState::from((voters, learners)));
        snapshot.data = bytes::Bytes::copy_from_slice(&body[at..]);
        Ok(snapshot)
    })();
    parsed
        .map(Some)
        .with_context(|| format!("reading {}", path.display()))
}

/// The records of `entries` and `hard_state`.
fn records(entries: &[Entry], hard_state: Option<&HardState>) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut body = Vec::with_capacity(18 + entry.data.len());
        body.push(ENTRY);
        body.push(entry.get_entry_type() as u8);
        body.extend_from_slice(&entry.term.to_le_bytes());
        body.extend_from_slice(&entry.index.to_le_bytes());
        body.extend_from_slice(&entry.data);
        record(&mut out, &body);
    }
    if let Some(hard) = hard_state {
        let mut body = vec![HARD_STATE];
        for value in [hard.term, hard.vote, hard.commit] {
            body.extend_from_slice(&value.to_le_bytes());
        }
        record(&mut out, &body);
    }
    out
}

fn record(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// The log in `bytes`, and how many bytes of it are whole records.
fn replay(bytes: &[u8]) -> Result<(Restored, usize)> {
    let mut restored = Restored::default();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let Some(body) = bytes.get(at + 8..at + 8 + length) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap());
        match body.first() {
            Some(&ENTRY) if body.len() >= 18 => {
                let mut entry = Entry::default();
                entry.set_entry_type(match body[1] {
                    0 => EntryType::EntryNormal,
                    1 => EntryType::EntryConfChange,
                    other => bail!("entry type {other} at offset {at}"),
                });
                entry.term = u64_at(2);
                entry.index = u64_at(10);
                entry.data = bytes::Bytes::copy_from_slice(&body[18..]);
                while restored
                    .entries
                    .last()
                    .is_some_and(|e| e.index >= entry.index)
                {
                    restored.entries.pop();
                }
                restored.entries.push(entry);
            }
            Some(&HARD_STATE) if body.len() == 25 => {
                restored.hard_state = HardState {
                    term: u64_at(1),
                    vote: u64_at(9),
                    commit: u64_at(17),
                    ..Default::default()
                };
            }
            _ => bail!("a record of unknown kind at offset {at}"),
        }
        at += 8 + length;
    }
    Ok((restored, at))
}
