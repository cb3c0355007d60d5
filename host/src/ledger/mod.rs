//! The orderer's file ledger (Fabric's `common/ledger/blkstorage` + `fileledger`).
//!
//! One [`Ledger`] per channel, in `<location>/chains/<channel>/`. Blocks are stored as
//! records `varint(length) ++ common.Block` in `blockfile_000000`, `blockfile_000001`,
//! ...; a block that would push a file past the maximum size (64 MiB by default)
//! starts the next file, and a block larger than the maximum sits alone in its file.
//!
//! The index (block number -> file, offset, length) is kept in memory and persisted
//! beside the block files in `index` (16 bytes per block, see `index.rs`), so an open
//! reads that file instead of walking every block file: on open only the index records
//! that agree with the block files are trusted, the files are walked by their length
//! prefixes (bodies skipped) from where those records end, a torn tail left by a crash
//! mid-append is truncated, and the index is rewritten from there (a missing, short or
//! corrupt index is rebuilt; one that claims more than the files hold is cut back).
//! Every append is fsynced before the block becomes visible (height, [`Ledger::get`],
//! [`Ledger::watch_height`]), so a crash never loses a block a client could have seen;
//! its index record is written after that fsync and never fsynced itself.
//!
//! A failed write or fsync (a full disk, EIO) is rolled back: the last file is cut
//! back to its last durable record and files the append created are removed, so the
//! same blocks can be appended again once the disk takes them, at the same offsets
//! (what a failed fsync may have dropped from the page cache is written again from
//! memory). Until an append succeeds, [`Ledger::write_failure`] says why the last one
//! failed. Only when the rollback fails too does the ledger refuse appends until it
//! is reopened.
//!
//! Concurrency: appends are serialized (an internal mutex; in practice one chain task
//! per channel appends), reads come from any number of Deliver tasks and only take a
//! read lock long enough to copy a cached block or a file handle; file reads use
//! positioned I/O (`pread`) on a handle shared with the writer. All methods block on
//! disk I/O (an append waits for fsync): call them from `spawn_blocking` or
//! `block_in_place` when that matters. Recent blocks are served from memory.

mod index;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use fabric_protos::common::{Block, BlockHeader};
use ordering_core::NativeCrypto;
use ordering_core::blockheader::header_hash;
use prost::Message;
use tokio::sync::watch;
use tracing::{info, warn};

use scan::file_name;

/// Fabric's default block file size.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 << 20;
/// The unit a failed fsync may drop: the page cache's page.
const PAGE: u64 = 4096;
/// The recent-block cache holds at most this many blocks...
const CACHE_BLOCKS: usize = 128;
/// ...and at most this many bytes.
const CACHE_BYTES: usize = 64 << 20;

/// `<location>/chains/<channel>`. The channel name must already be validated (Fabric's
/// `[a-z][a-z0-9.-]*`), which keeps it a single path component.
pub fn channel_dir(location: &Path, channel: &str) -> PathBuf {
    location.join("chains").join(channel)
}

/// Why an append was refused. Returned inside `anyhow::Error`; downcast to match.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("cannot decode the block header: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the block has no header")]
    MissingHeader,
    #[error("block number {got} is not the next block: the ledger height is {expected}")]
    WrongNumber { expected: u64, got: u64 },
    #[error(
        "block {number}: previous hash {got} does not match the header hash of block {} ({expected})",
        number - 1
    )]
    WrongPreviousHash {
        number: u64,
        expected: String,
        got: String,
    },
    #[error("the block is {0} bytes, over the 4 GiB record limit")]
    TooLarge(usize),
    #[error("the ledger refuses appends after an I/O error ({0}); reopen it to recover")]
    Failed(String),
}

/// Where a block's body is: file number, offset of the body (after the length
/// prefix), body length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    file: u32,
    offset: u64,
    len: u32,
}

/// What readers see; changed only under the write lock, after fsync.
struct State {
    index: Vec<Loc>,
    /// One handle per block file, by file number, shared with the writer.
    files: Vec<Arc<File>>,
    tip: Option<BlockHeader>,
    tip_hash: [u8; 32],
    /// The newest blocks, ending at height - 1.
    cache: VecDeque<Bytes>,
    cache_bytes: usize,
}

impl State {
    fn cache_push(&mut self, block: Bytes) {
        self.cache_bytes += block.len();
        self.cache.push_back(block);
        while self.cache.len() > CACHE_BLOCKS
            || (self.cache_bytes > CACHE_BYTES && !self.cache.is_empty())
        {
            let old = self.cache.pop_front().expect("cache is not empty");
            self.cache_bytes -= old.len();
        }
    }
}

/// The append side: the current (last) file and its size.
struct Writer {
    number: u32,
    file: Arc<File>,
    size: u64,
    /// Set when a failed append could not be rolled back: the files' state is then
    /// unknown, so appends stop until a reopen.
    failed: Option<String>,
    /// After a rolled-back append: the offset of the page the failed append began in.
    /// A failed fsync may have dropped that page, and with it the end of the record
    /// before (durable, but on the same page), so the next append writes the file
    /// again from there.
    redo_from: Option<u64>,
    /// The persisted index, appended after each fsync.
    index: index::Index,
}

/// A channel's block store. `Send + Sync`: share it in an `Arc`.
pub struct Ledger {
    dir: PathBuf,
    max_file_size: u64,
    state: RwLock<State>,
    writer: Mutex<Writer>,
    height: watch::Sender<u64>,
    report: OpenReport,
    /// Why the last append failed, until one succeeds; the flag is the lock-free
    /// check Broadcast makes per envelope.
    last_failure: Mutex<Option<String>>,
    failing: AtomicBool,
}

/// How [`Ledger::open`] found the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Blocks located from the persisted index, without reading the block files.
    pub from_index: u64,
    /// Blocks located by walking the block files (none when the index was complete).
    pub scanned: u64,
}

/// Decodes only field 1 of a `common.Block`; data and metadata are skipped.
#[derive(Clone, PartialEq, Message)]
struct HeaderOnly {
    #[prost(message, optional, tag = "1")]
    header: Option<BlockHeader>,
}

/// The header of an encoded `common.Block`, without decoding its data.
pub fn decode_header(block: &[u8]) -> Result<BlockHeader, AppendError> {
    HeaderOnly::decode(block)?
        .header
        .ok_or(AppendError::MissingHeader)
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir` with 64 MiB block files.
    pub fn open(dir: &Path) -> Result<Ledger> {
        Self::open_with(dir, DEFAULT_MAX_FILE_SIZE)
    }

    /// Opens (or creates) the ledger in `dir`: loads the block index (see the module
    /// documentation), scans the block files from where it ends, truncates a torn
    /// tail, and checks that the last block is number `count - 1`. A corrupt record
    /// met by the scan is an error naming file and offset.
    pub fn open_with(dir: &Path, max_file_size: u64) -> Result<Ledger> {
        ensure!(
            max_file_size > 0,
            "the maximum block file size must be positive"
        );
        fs::create_dir_all(dir)
            .with_context(|| format!("creating ledger directory {}", dir.display()))?;
        let mut numbers = scan::list_files(dir)?;
        if numbers.is_empty() {
            let path = dir.join(file_name(0));
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            scan::sync_dir(dir)?;
            numbers.push(0);
        }
        let mut files = Vec::with_capacity(numbers.len());
        let mut sizes = Vec::with_capacity(numbers.len());
        for &n in &numbers {
            let (file, size) =
                scan::open_file(&dir.join(file_name(n)), n as usize + 1 == numbers.len())?;
            files.push(file);
            sizes.push(size);
        }

        // The index's records that agree with the block files.
        let index::Loaded {
            index: mut index_file,
            records,
            header_ok,
        } = index::Index::open(dir);
        let recorded = records.len();
        let mut trusted = index::consistent_prefix(&records, &sizes);
        if let Some(&tail) = trusted.checked_sub(1).map(|i| &records[i]) {
            let path = dir.join(file_name(tail.file));
            let matches = index::prefix_matches(&files[tail.file as usize], tail)
                .with_context(|| format!("reading {} at offset {}", path.display(), tail.offset))?;
            if !matches {
                // Keep the files before; rescan the one the tail is in.
                trusted = records[..trusted].partition_point(|l| l.file < tail.file);
                warn!(
                    file = %path.display(),
                    "ledger: the block index does not match {} at offset {}; scanning that file again",
                    path.display(),
                    tail.offset
                );
            }
        }
        if trusted < recorded {
            warn!(
                dir = %dir.display(),
                "ledger: the block index claims {recorded} blocks but only its first {trusted} agree with the block files; rebuilding it from there"
            );
        }
        let mut locs = records;
        locs.truncate(trusted);

        // Scan what the index does not cover.
        let (resume_file, resume_at) = locs
            .last()
            .map_or((0, 0), |l| (l.file, l.offset + u64::from(l.len)));
        let mut last_len = *sizes.last().expect("at least one block file");
        for n in resume_file as usize..files.len() {
            let is_last = n + 1 == files.len();
            let from = if n == resume_file as usize {
                resume_at
            } else {
                0
            };
            let valid = scan::scan_file(
                &files[n],
                &dir.join(file_name(n as u32)),
                n as u32,
                is_last,
                from,
                sizes[n],
                &mut locs,
            )?;
            if is_last {
                last_len = valid;
            }
        }
        let scanned = locs.len() - trusted;
        if !header_ok || trusted < recorded || scanned > 0 {
            if scanned > 0 && trusted < locs.len() / 2 {
                info!(
                    dir = %dir.display(),
                    "ledger: rebuilt the block index of {}: {scanned} blocks scanned, {trusted} from the index",
                    dir.display()
                );
            }
            index_file.rewrite(trusted as u64, &locs[trusted..]);
        }
        let report = OpenReport {
            from_index: trusted as u64,
            scanned: scanned as u64,
        };
        let files: Vec<Arc<File>> = files.into_iter().map(Arc::new).collect();
        let index = locs;

        let mut state = State {
            index,
            files,
            tip: None,
            tip_hash: [0; 32],
            cache: VecDeque::new(),
            cache_bytes: 0,
        };
        if let Some(&loc) = state.index.last() {
            let path = dir.join(file_name(loc.file));
            let bytes = read_at(&state.files[loc.file as usize], loc).with_context(|| {
                format!(
                    "{}: reading the last block at offset {}",
                    path.display(),
                    loc.offset
                )
            })?;
            let block = Block::decode(bytes.clone()).map_err(|e| {
                anyhow!(
                    "{}: corrupt record at offset {}: {e}",
                    path.display(),
                    loc.offset
                )
            })?;
            let Some(header) = block.header else {
                bail!(
                    "{}: corrupt record at offset {}: block without a header",
                    path.display(),
                    loc.offset
                );
            };
            let count = state.index.len() as u64;
            if header.number != count - 1 {
                bail!(
                    "{}: the last block, at offset {}, is number {} but the block files hold {count} blocks",
                    path.display(),
                    loc.offset,
                    header.number
                );
            }
            state.tip_hash = header_hash(&header, &NativeCrypto);
            state.tip = Some(header);
            state.cache_push(bytes);
        }

        let height = state.index.len() as u64;
        let writer = Writer {
            number: *numbers.last().expect("at least one block file"),
            file: state.files.last().expect("at least one block file").clone(),
            size: last_len,
            failed: None,
            redo_from: None,
            index: index_file,
        };
        Ok(Ledger {
            dir: dir.to_path_buf(),
            max_file_size,
            state: RwLock::new(state),
            writer: Mutex::new(writer),
            height: watch::Sender::new(height),
            report,
            last_failure: Mutex::new(None),
            failing: AtomicBool::new(false),
        })
    }

    /// How the open found the blocks.
    pub fn open_report(&self) -> OpenReport {
        self.report
    }

    /// The ledger's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number of blocks; the next block's number.
    pub fn height(&self) -> u64 {
        self.read_state().index.len() as u64
    }

    /// The newest block's header, `None` while the ledger is empty.
    pub fn tip_header(&self) -> Option<BlockHeader> {
        self.read_state().tip.clone()
    }

    /// The newest block's header hash (what the next block's `previous_hash` holds).
    pub fn tip_hash(&self) -> Option<[u8; 32]> {
        let state = self.read_state();
        state.tip.as_ref().map(|_| state.tip_hash)
    }

    /// Why the last append failed (a failed write or fsync), unless one succeeded
    /// since: `/healthz`, Broadcast. Does not wait for an append in progress.
    pub fn write_failure(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_failure(&self, why: Option<String>) {
        let mut last = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.failing.store(why.is_some(), Ordering::Release);
        *last = why;
    }

    /// Encodes and appends `block`; see [`Ledger::append`].
    pub fn append_block(&self, block: &Block) -> Result<()> {
        self.append(Bytes::from(block.encode_to_vec()))
    }

    /// Appends an encoded `common.Block`. Its number must equal the height and its
    /// previous hash the tip's header hash (any previous hash for block 0). The record
    /// is written and fsynced, then the block becomes visible and watchers wake.
    pub fn append(&self, block: Bytes) -> Result<()> {
        self.append_batch(std::slice::from_ref(&block))
    }

    /// Appends consecutive encoded blocks with one fsync per block file touched (a
    /// restore or a bulk load; [`Ledger::append`] is a batch of one). Every block is
    /// checked first as `append` checks it, each against the one before; then the
    /// records are written and fsynced, and only then do all of them become visible
    /// at once. On an error nothing becomes visible.
    pub fn append_batch(&self, blocks: &[Bytes]) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut lens = Vec::with_capacity(blocks.len());
        for block in blocks {
            lens.push(u32::try_from(block.len()).map_err(|_| AppendError::TooLarge(block.len()))?);
        }

        let mut writer = self.lock_writer();
        if let Some(why) = &writer.failed {
            return Err(AppendError::Failed(why.clone()).into());
        }
        let (mut expected, mut tip_hash) = {
            let state = self.read_state();
            (state.index.len() as u64, state.tip_hash)
        };
        let mut tip = None;
        for block in blocks {
            let header = decode_header(block)?;
            if header.number != expected {
                return Err(AppendError::WrongNumber {
                    expected,
                    got: header.number,
                }
                .into());
            }
            if header.number > 0 && header.previous_hash[..] != tip_hash[..] {
                return Err(AppendError::WrongPreviousHash {
                    number: header.number,
                    expected: hex::encode(tip_hash),
                    got: hex::encode(&header.previous_hash),
                }
                .into());
            }
            tip_hash = header_hash(&header, &NativeCrypto);
            expected += 1;
            tip = Some(header);
        }
        let tip = tip.expect("at least one block");

        let start = (writer.number, writer.size);
        let mut new_files = Vec::new();
        let mut locs = Vec::with_capacity(blocks.len());
        let written = self.redo_tail(&mut writer).and_then(|()| {
            self.write_records(&mut writer, blocks, &lens, &mut new_files, &mut locs)
        });
        if let Err(e) = written {
            let first_number = expected - blocks.len() as u64;
            let e = e.context(format!("appending block {first_number}"));
            match self.roll_back(&mut writer, start, &new_files) {
                Ok(()) => self.set_failure(Some(format!("{e:#}"))),
                Err(rollback) => {
                    let why = format!("{e:#}; then rolling it back failed: {rollback:#}");
                    writer.failed = Some(why.clone());
                    self.set_failure(Some(why));
                }
            }
            return Err(e);
        }

        writer.redo_from = None;
        // After the fsync: the index never names a block that is not durable.
        writer.index.append(&locs);

        let height = {
            let mut state = self.write_state();
            state.files.extend(new_files);
            debug_assert_eq!(state.files.len(), writer.number as usize + 1);
            state.index.extend_from_slice(&locs);
            state.tip = Some(tip);
            state.tip_hash = tip_hash;
            // Only the newest blocks can stay in the cache.
            let skip = blocks.len().saturating_sub(CACHE_BLOCKS);
            for block in &blocks[skip..] {
                state.cache_push(block.clone());
            }
            state.index.len() as u64
        };
        drop(writer);
        if self.failing.load(Ordering::Acquire) {
            self.set_failure(None);
        }
        self.height.send_replace(height);
        Ok(())
    }

    /// Undoes a failed append: the file it started in is cut back to `start` (file,
    /// size), the files it created are removed, and the writer is back where it was,
    /// so the same records can be written again. Nothing is synced here: the device
    /// may refuse that too, and the next append's fsync makes the cut durable with
    /// the records written over it (until then, a crash leaves what the scan on open
    /// cuts as a torn tail, as after any crash mid-append).
    fn roll_back(
        &self,
        writer: &mut Writer,
        start: (u32, u64),
        new_files: &[Arc<File>],
    ) -> Result<()> {
        let first = self.read_state().files[start.0 as usize].clone();
        let path = self.dir.join(file_name(start.0));
        first
            .set_len(start.1)
            .with_context(|| format!("truncating {} to {} bytes", path.display(), start.1))?;
        for n in (start.0 + 1..=writer.number).rev() {
            let path = self.dir.join(file_name(n));
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        if !new_files.is_empty() {
            let _ = scan::sync_dir(&self.dir);
        }
        writer.number = start.0;
        writer.file = first;
        writer.size = start.1;
        writer.redo_from = Some(writer.redo_from.unwrap_or(start.1) / PAGE * PAGE);
        Ok(())
    }

    /// Writes the last file again from `redo_from` to its end, from the blocks'
    /// bytes (the newest are in memory); the append's fsync then covers them.
    fn redo_tail(&self, writer: &mut Writer) -> Result<()> {
        let Some(from) = writer.redo_from.filter(|&from| from < writer.size) else {
            return Ok(());
        };
        let locs: Vec<(u64, Loc)> = {
            let state = self.read_state();
            let mut tail = Vec::new();
            for (number, loc) in state.index.iter().enumerate().rev() {
                if loc.file != writer.number || loc.offset + u64::from(loc.len) <= from {
                    break;
                }
                tail.push((number as u64, *loc));
            }
            tail.reverse();
            tail
        };
        let Some(&(_, first)) = locs.first() else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for &(number, loc) in &locs {
            prost::encoding::encode_varint(u64::from(loc.len), &mut bytes);
            let body = self
                .get(number)?
                .context("a block of the index is missing")?;
            bytes.extend_from_slice(&body);
        }
        let record_start = first.offset - index::prefix_len(first.len);
        let skip = from.saturating_sub(record_start) as usize;
        let path = self.dir.join(file_name(writer.number));
        writer
            .file
            .write_all_at(&bytes[skip..], record_start + skip as u64)
            .with_context(|| format!("writing {} again from offset {from}", path.display()))
    }

    /// Writes the records of `blocks`, starting new files as needed (each file is
    /// fsynced before the next starts, and the last one at the end).
    fn write_records(
        &self,
        writer: &mut Writer,
        blocks: &[Bytes],
        lens: &[u32],
        new_files: &mut Vec<Arc<File>>,
        locs: &mut Vec<Loc>,
    ) -> Result<()> {
        let mut prefix = Vec::with_capacity(10);
        let mut dirty = false;
        for (block, &len) in blocks.iter().zip(lens) {
            prefix.clear();
            prost::encoding::encode_varint(u64::from(len), &mut prefix);
            let record = prefix.len() as u64 + u64::from(len);
            if writer.size > 0 && writer.size + record > self.max_file_size {
                if dirty {
                    writer.file.sync_data().with_context(|| {
                        format!(
                            "syncing {}",
                            self.dir.join(file_name(writer.number)).display()
                        )
                    })?;
                }
                let n = writer.number + 1;
                let path = self.dir.join(file_name(n));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("creating block file {}", path.display()))?;
                let file = Arc::new(file);
                // Pushed before the directory sync, so a failure still truncates it.
                new_files.push(file.clone());
                writer.number = n;
                writer.file = file;
                writer.size = 0;
                scan::sync_dir(&self.dir)?;
            }
            let offset = writer.size;
            writer
                .file
                .write_all_at(&prefix, offset)
                .and_then(|()| {
                    writer
                        .file
                        .write_all_at(block, offset + prefix.len() as u64)
                })
                .with_context(|| {
                    format!(
                        "writing {}",
                        self.dir.join(file_name(writer.number)).display()
                    )
                })?;
            dirty = true;
            writer.size = offset + record;
            locs.push(Loc {
                file: writer.number,
                offset: offset + prefix.len() as u64,
                len,
            });
        }
        writer.file.sync_data().with_context(|| {
            format!(
                "syncing {}",
                self.dir.join(file_name(writer.number)).display()
            )
        })
    }

    /// The encoded block `number`, `None` at or past the height. Recent blocks come
    /// from memory; older ones are read from their file (positioned read).
    pub fn get(&self, number: u64) -> Result<Option<Bytes>> {
        let (file, loc) = {
            let state = self.read_state();
            let height = state.index.len() as u64;
            if number >= height {
                return Ok(None);
            }
            let first_cached = height - state.cache.len() as u64;
            if number >= first_cached {
                return Ok(Some(state.cache[(number - first_cached) as usize].clone()));
            }
            let loc = state.index[number as usize];
            (state.files[loc.file as usize].clone(), loc)
        };
        let bytes = read_at(&file, loc).with_context(|| {
            format!(
                "reading block {number} from {} at offset {}",
                self.dir.join(file_name(loc.file)).display(),
                loc.offset
            )
        })?;
        Ok(Some(bytes))
    }

    /// A receiver of the height, updated after each append's fsync.
    pub fn watch_height(&self) -> watch::Receiver<u64> {
        self.height.subscribe()
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn read_at(file: &File, loc: Loc) -> std::io::Result<Bytes> {
    let mut buf = vec![0u8; loc.len as usize];
    file.read_exact_at(&mut buf, loc.offset)?;
    Ok(Bytes::from(buf))
}
