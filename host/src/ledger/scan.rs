//! Recovery on open: list the block files, walk their records by length prefix
//! (bodies are skipped, not read), and cut a torn tail left by a crash mid-append.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use tracing::warn;

use super::Loc;

pub(super) const FILE_PREFIX: &str = "blockfile_";

/// `blockfile_000042`.
pub(super) fn file_name(number: u32) -> String {
    format!("{FILE_PREFIX}{number:06}")
}

/// The numbers of the block files in `dir`, checked to run 0, 1, 2, ... with no gap.
/// Other names are left alone.
pub(super) fn list_files(dir: &Path) -> Result<Vec<u32>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)) else {
            continue;
        };
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match digits.parse::<u32>() {
            Ok(n) => numbers.push(n),
            Err(_) => bail!("{}: block file number out of range", entry.path().display()),
        }
    }
    numbers.sort_unstable();
    for (expected, &n) in numbers.iter().enumerate() {
        if n as usize != expected {
            bail!(
                "{}: {} is missing (block files must be numbered from 0 without gaps)",
                dir.display(),
                file_name(expected as u32)
            );
        }
    }
    Ok(numbers)
}

/// Opens block file `path` (writable when it is the last: its tail may be cut) and
/// returns it with its size.
pub(super) fn open_file(path: &Path, is_last: bool) -> Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(is_last)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?
        .len();
    Ok((file, len))
}

/// How a file's record walk ended.
enum End {
    /// Every byte belongs to a complete record.
    Clean,
    /// A record that starts at `at` runs past the end of the file.
    Torn { at: u64, why: &'static str },
    /// A zero length prefix at `at`: never written by `append`.
    ZeroLength { at: u64 },
}

/// Walks the records of block file `number` (`len` bytes) from offset `from`, which
/// must be the start of a record, pushing each one's location to `locs`; returns the
/// length of the valid records. In the last file a torn tail (or a zero-filled one,
/// as a crash can leave after the size was extended) is truncated with a warning;
/// anywhere else it is an error naming file and offset.
pub(super) fn scan_file(
    file: &File,
    path: &Path,
    number: u32,
    is_last: bool,
    from: u64,
    len: u64,
    locs: &mut Vec<Loc>,
) -> Result<u64> {
    let first = locs.len();
    let end = walk(file, number, from, len, locs)
        .with_context(|| format!("scanning {}", path.display()))?;
    let valid = match end {
        End::Clean => len,
        End::ZeroLength { at } if !is_last || !all_zero(file, at, len)? => {
            bail!(
                "{}: corrupt record at offset {at}: zero length",
                path.display()
            )
        }
        End::ZeroLength { at } => at,
        End::Torn { at, why } if !is_last => bail!(
            "{}: corrupt record at offset {at}: {why} (only the last block file may have a torn tail)",
            path.display()
        ),
        End::Torn { at, .. } => at,
    };
    if valid < len {
        warn!(
            file = %path.display(),
            offset = valid,
            removed = len - valid,
            "ledger: truncating torn tail of {}: removing {} bytes after offset {} ({} complete records found after offset {from})",
            path.display(),
            len - valid,
            valid,
            locs.len() - first,
        );
        file.set_len(valid)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("truncating the torn tail of {}", path.display()))?;
    }
    Ok(valid)
}

/// Reads the length prefixes and seeks over the bodies. A buffered reader keeps the
/// seeks of small records inside its buffer, so a scan costs about one read per
/// 64 KiB of small blocks, or two syscalls per large block.
fn walk(file: &File, number: u32, from: u64, len: u64, locs: &mut Vec<Loc>) -> Result<End> {
    let mut reader = BufReader::with_capacity(64 << 10, file);
    reader.seek(SeekFrom::Start(from))?;
    let mut pos = from;
    while pos < len {
        let start = pos;
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            if pos == len {
                return Ok(End::Torn {
                    at: start,
                    why: "partial length prefix",
                });
            }
            let byte = read_byte(&mut reader)?;
            pos += 1;
            if shift == 63 && byte > 1 {
                bail!("corrupt record at offset {start}: length prefix overflows 64 bits");
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        if value == 0 {
            return Ok(End::ZeroLength { at: start });
        }
        if value > len - pos {
            return Ok(End::Torn {
                at: start,
                why: "record shorter than its length",
            });
        }
        let Ok(body_len) = u32::try_from(value) else {
            bail!("corrupt record at offset {start}: length {value} is over 4 GiB");
        };
        locs.push(Loc {
            file: number,
            offset: pos,
            len: body_len,
        });
        reader.seek_relative(value as i64)?;
        pos += value;
    }
    Ok(End::Clean)
}

fn read_byte(reader: &mut BufReader<&File>) -> std::io::Result<u8> {
    let buf = reader.fill_buf()?;
    let Some(&byte) = buf.first() else {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    };
    reader.consume(1);
    Ok(byte)
}

fn all_zero(file: &File, from: u64, to: u64) -> Result<bool> {
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = from;
    while pos < to {
        let n = buf.len().min((to - pos) as usize);
        file.read_exact_at(&mut buf[..n], pos)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

/// fsync a directory, so a newly created block file survives a crash.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}
