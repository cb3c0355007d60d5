#![no_main]
//! The file ledger's recovery on open: fuzz bytes as the block files and the index
//! (flipped, torn, truncated, made up), then every block read back. An open may
//! refuse the files, but never panic; one that succeeds must read every block it
//! counts, open again to the same blocks, and take the next block.
//!
//! Input: a flags byte (bit 0: write an index file; bits 1-2: the block file size
//! limit), then the index, then up to four block files, separated by [`SEP`].

use std::path::Path;

use bytes::Bytes;
use fabric_protos::common::{Block, BlockData, BlockHeader};
use libfuzzer_sys::fuzz_target;
use orderer::ledger::{DEFAULT_MAX_FILE_SIZE, Ledger};
use prost::Message;

/// Between the index and each block file (`fuzz/seeds.py` writes the same).
const SEP: &[u8] = b"\xf0BLKFILE";
const MAX_FILE_SIZES: [u64; 4] = [DEFAULT_MAX_FILE_SIZE, 1, 512, 4096];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    // tmpfs where there is one: an fsync there costs nothing.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let mut parts = split(rest);
    let index = parts.next().unwrap_or_default();
    if flags & 1 != 0 {
        std::fs::write(dir.path().join("index"), index).expect("writing the index");
    }
    for (n, file) in parts.take(4).enumerate() {
        let path = dir.path().join(format!("blockfile_{n:06}"));
        std::fs::write(path, file).expect("writing a block file");
    }
    let max_file_size = MAX_FILE_SIZES[usize::from(flags >> 1 & 3)];

    let Ok(ledger) = Ledger::open_with(dir.path(), max_file_size) else {
        return;
    };
    let blocks = read_all(&ledger);
    let tip_hash = ledger.tip_hash();
    drop(ledger);
    let ledger = Ledger::open_with(dir.path(), max_file_size).expect("opens again");
    assert_eq!(
        read_all(&ledger),
        blocks,
        "the second open reads other blocks"
    );

    let next = next_block(blocks.len() as u64, tip_hash);
    ledger.append(next.clone()).expect("appends the next block");
    drop(ledger);
    let ledger = Ledger::open_with(dir.path(), max_file_size).expect("opens after an append");
    let mut expected = blocks;
    expected.push(next);
    assert_eq!(
        read_all(&ledger),
        expected,
        "the block appended is not read back"
    );
});

fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest?;
        match data.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                rest = Some(&data[i + SEP.len()..]);
                Some(&data[..i])
            }
            None => rest.take(),
        }
    })
}

/// Every block below the height; each must be there.
fn read_all(ledger: &Ledger) -> Vec<Bytes> {
    let height = ledger.height();
    let blocks = (0..height)
        .map(|n| match ledger.get(n) {
            Ok(Some(block)) => block,
            other => panic!("block {n} of {height}: {other:?}"),
        })
        .collect();
    assert_eq!(ledger.get(height).expect("reads"), None);
    blocks
}

fn next_block(number: u64, previous_hash: Option<[u8; 32]>) -> Bytes {
    let block = Block {
        header: Some(BlockHeader {
            number,
            previous_hash: previous_hash.map(|h| h.to_vec()).unwrap_or_default().into(),
            data_hash: vec![0; 32].into(),
        }),
        data: Some(BlockData {
            data: vec![vec![0x5a; 100].into()],
        }),
        metadata: None,
    };
    Bytes::from(block.encode_to_vec())
}
