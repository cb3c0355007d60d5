//! The persisted block index, `<dir>/index`, beside the block files (Fabric keeps its
//! block index in a LevelDB beside them): an 8-byte header, then one 16-byte record
//! per block in block order: file number (u32), body offset (u64), body length (u32),
//! little endian. It spares the open a walk over every block file.
//!
//! The index is a cache of what the block files say, written after the blocks' fsync
//! and never fsynced itself. On open only its records that agree with the block files
//! are trusted: they must tile the files record after record from the start of
//! `blockfile_000000` (a file that is not the last exactly covered), lie inside the
//! files, and the last one's length prefix must be in its block file. The files are
//! then scanned from the end of the last trusted record, and the index rewritten from
//! there: a missing, short, torn or corrupt index is rebuilt, and one that claims more
//! than the files hold (a crash, a torn block file) is cut back. Index I/O errors are
//! never fatal: they are logged, the index stops being written, and the next open
//! scans what it lacks.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::Loc;

pub(super) const INDEX_FILE: &str = "index";
/// "orderer ledger index, version 1".
const MAGIC: [u8; 8] = *b"OLIDX\0\0\x01";
const HEADER: u64 = MAGIC.len() as u64;
const RECORD: usize = 16;

pub(super) struct Index {
    /// `None` after an I/O error: the index is no longer written.
    file: Option<File>,
    path: PathBuf,
    /// Records in the file.
    count: u64,
}

/// What [`Index::open`] found.
pub(super) struct Loaded {
    pub index: Index,
    /// Every whole record after a valid header, unchecked.
    pub records: Vec<Loc>,
    /// False when the file was missing, empty or had another header.
    pub header_ok: bool,
}

impl Index {
    /// Opens (or creates) `<dir>/index` and reads its records.
    pub fn open(dir: &Path) -> Loaded {
        let path = dir.join(INDEX_FILE);
        let mut raw = Vec::new();
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(|mut file| file.read_to_end(&mut raw).map(|_| file));
        let file = match opened {
            Ok(file) => Some(file),
            Err(e) => {
                warn!(index = %path.display(), "ledger: cannot read the block index {}: {e}; scanning the block files", path.display());
                raw.clear();
                None
            }
        };
        let header_ok = raw.len() >= HEADER as usize && raw[..HEADER as usize] == MAGIC;
        let records: Vec<Loc> = if header_ok {
            raw[HEADER as usize..]
                .chunks_exact(RECORD)
                .map(decode)
                .collect()
        } else {
            Vec::new()
        };
        let count = records.len() as u64;
        Loaded {
            index: Index { file, path, count },
            records,
            header_ok,
        }
    }

    /// Keeps the first `keep` records, drops the rest and appends `more`.
    pub fn rewrite(&mut self, keep: u64, more: &[Loc]) {
        let result = self.file.as_ref().map_or(Ok(()), |file| {
            file.set_len(HEADER + keep * RECORD as u64)
                .and_then(|()| file.write_all_at(&MAGIC, 0))
        });
        match result {
            Ok(()) => {
                self.count = keep;
                self.append(more);
            }
            Err(e) => self.fail(&e),
        }
    }

    /// Appends the records of the blocks just written (no fsync).
    pub fn append(&mut self, locs: &[Loc]) {
        let Some(file) = &self.file else {
            return;
        };
        if locs.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(locs.len() * RECORD);
        for loc in locs {
            buf.extend_from_slice(&encode(*loc));
        }
        match file.write_all_at(&buf, HEADER + self.count * RECORD as u64) {
            Ok(()) => self.count += locs.len() as u64,
            Err(e) => self.fail(&e),
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        warn!(
            index = %self.path.display(),
            "ledger: cannot write the block index {}: {e}; it is no longer updated, the next open scans the block files it lacks",
            self.path.display()
        );
        self.file = None;
    }
}

pub(super) fn encode(loc: Loc) -> [u8; RECORD] {
    let mut out = [0u8; RECORD];
    out[..4].copy_from_slice(&loc.file.to_le_bytes());
    out[4..12].copy_from_slice(&loc.offset.to_le_bytes());
    out[12..].copy_from_slice(&loc.len.to_le_bytes());
    out
}

fn decode(raw: &[u8]) -> Loc {
    Loc {
        file: u32::from_le_bytes(raw[..4].try_into().expect("4 bytes")),
        offset: u64::from_le_bytes(raw[4..12].try_into().expect("8 bytes")),
        len: u32::from_le_bytes(raw[12..16].try_into().expect("4 bytes")),
    }
}

pub(super) fn prefix_len(len: u32) -> u64 {
    prost::encoding::encoded_len_varint(u64::from(len)) as u64
}

/// How many leading `records` are what appends write into files of `sizes` bytes:
/// each record's length prefix starts where the previous record ends, or at offset 0
/// of the next file when the previous one ends exactly at its file's end; the first
/// record starts file 0; every record lies inside its file.
pub(super) fn consistent_prefix(records: &[Loc], sizes: &[u64]) -> usize {
    let mut end: Option<(u32, u64)> = None;
    for (i, loc) in records.iter().enumerate() {
        let Some(&size) = sizes.get(loc.file as usize) else {
            return i;
        };
        let Some(start) = loc.offset.checked_sub(prefix_len(loc.len)) else {
            return i;
        };
        let inside = loc.len > 0
            && loc
                .offset
                .checked_add(u64::from(loc.len))
                .is_some_and(|e| e <= size);
        let follows = match end {
            None => loc.file == 0 && start == 0,
            Some((file, at)) => {
                (loc.file == file && start == at)
                    || (loc.file == file + 1 && start == 0 && at == sizes[file as usize])
            }
        };
        if !inside || !follows {
            return i;
        }
        end = Some((loc.file, loc.offset + u64::from(loc.len)));
    }
    records.len()
}

/// Whether the length prefix before `loc`'s body in `file` is `loc.len`.
pub(super) fn prefix_matches(file: &File, loc: Loc) -> std::io::Result<bool> {
    let n = prefix_len(loc.len);
    let mut found = vec![0u8; n as usize];
    file.read_exact_at(&mut found, loc.offset - n)?;
    let mut expected = Vec::with_capacity(n as usize);
    prost::encoding::encode_varint(u64::from(loc.len), &mut expected);
    Ok(found == expected)
}

#[cfg(test)]
pub(super) fn record_offset(n: u64) -> u64 {
    HEADER + n * RECORD as u64
}

#[cfg(test)]
impl Index {
    /// The index of `dir` on a read-only handle: every write fails.
    pub fn open_read_only(dir: &Path) -> Index {
        let path = dir.join(INDEX_FILE);
        let file = File::open(&path).unwrap();
        let count = (file.metadata().unwrap().len() - HEADER) / RECORD as u64;
        Index {
            file: Some(file),
            path,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: u32, offset: u64, len: u32) -> Loc {
        Loc { file, offset, len }
    }

    #[test]
    fn records_round_trip() {
        let l = loc(7, 1 << 40, u32::MAX);
        assert_eq!(decode(&encode(l)), l);
    }

    #[test]
    fn consistent_prefix_follows_appends() {
        // File 0: records of 100 and 200 bytes (1-byte and 2-byte prefixes), exactly
        // covering it; file 1: one record of 50.
        let good = [loc(0, 1, 100), loc(0, 103, 200), loc(1, 1, 50)];
        let sizes = [303, 51];
        assert_eq!(consistent_prefix(&good, &sizes), 3);
        assert_eq!(consistent_prefix(&good, &[303, 50]), 2, "past the end");
        assert_eq!(
            consistent_prefix(&good, &[304, 51]),
            2,
            "file 0 not covered"
        );
        assert_eq!(consistent_prefix(&good, &[303]), 2, "file 1 missing");
        assert_eq!(consistent_prefix(&good[1..], &sizes), 0, "not at the start");
        let gap = [loc(0, 1, 100), loc(0, 104, 200)];
        assert_eq!(consistent_prefix(&gap, &[400]), 1);
        let skip = [loc(0, 1, 100), loc(2, 1, 50)];
        assert_eq!(consistent_prefix(&skip, &[101, 0, 51]), 1);
        assert_eq!(consistent_prefix(&[loc(0, 1, 0)], &[10]), 0, "zero length");
        assert_eq!(
            consistent_prefix(&[loc(0, 0, 5)], &[10]),
            0,
            "no room for a prefix"
        );
        let huge = [loc(0, u64::MAX - 2, 100)];
        assert_eq!(consistent_prefix(&huge, &[u64::MAX]), 0, "overflow");
    }
}
