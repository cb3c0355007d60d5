//! The Raft write-ahead log of one channel (`Consensus.WALDir/<channel>/wal`), in our
//! own format: records of `length u32 | crc32 u32 | body`, little-endian, where a body
//! is an entry (`1 | type u8 | term u64 | index u64 | data`) or a hard state
//! (`2 | term u64 | vote u64 | commit u64`). Each Ready's records are written and
//! fsynced before its messages leave and before its committed blocks are written, so
//! what a node acknowledged survives a crash. Reading stops at the first record that
//! is short or fails its CRC (a write the crash cut off, never synced) and the file is
//! cut there. An entry overwrites every later one, as in Raft's log.
//! Not yet: snapshots and compaction (the log grows with the chain).

use anyhow::{Context, Result, bail};
use raft::eraftpb::{Entry, EntryType, HardState};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;

pub struct Wal {
    file: File,
    path: PathBuf,
}

/// What a WAL held when it was opened.
#[derive(Debug, Default)]
pub struct Restored {
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
}

impl Wal {
    /// The WAL in `dir`, created if absent; `None` as restored when it was new.
    pub fn open(dir: &Path) -> Result<(Wal, Option<Restored>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("wal");
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if !existed {
            // The file's name must survive a crash too.
            File::open(dir)?.sync_all()?;
            return Ok((Wal { file, path }, None));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (restored, valid) =
            replay(&bytes).with_context(|| format!("reading {}", path.display()))?;
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
        Ok((Wal { file, path }, Some(restored)))
    }

    /// Appends `entries` and `hard_state` and fsyncs them.
    pub fn append(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<()> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
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
        self.file
            .write_all(&out)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
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
