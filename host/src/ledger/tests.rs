use super::*;

use std::io::Write;

use fabric_protos::common::{BlockData, BlockMetadata};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Builds a chain of real blocks: data hash = SHA-256 of the concatenated data,
/// previous hash = Fabric's DER header hash of the previous header.
struct Gen {
    next: u64,
    prev_hash: Vec<u8>,
}

impl Gen {
    fn new() -> Gen {
        Gen {
            next: 0,
            prev_hash: Vec::new(),
        }
    }

    /// Continues the chain of `ledger`.
    fn after(ledger: &Ledger) -> Gen {
        Gen {
            next: ledger.height(),
            prev_hash: ledger.tip_hash().map(|h| h.to_vec()).unwrap_or_default(),
        }
    }

    fn block(&mut self, payload: usize) -> Block {
        let block = make_block(self.next, &self.prev_hash, payload);
        self.prev_hash = header_hash(block.header.as_ref().unwrap(), &NativeCrypto).to_vec();
        self.next += 1;
        block
    }

    fn encoded(&mut self, payload: usize) -> Bytes {
        Bytes::from(self.block(payload).encode_to_vec())
    }

    fn many(&mut self, count: usize, payload: usize) -> Vec<Bytes> {
        (0..count).map(|_| self.encoded(payload)).collect()
    }
}

fn make_block(number: u64, previous_hash: &[u8], payload: usize) -> Block {
    let data: Vec<Bytes> = (0..2u8)
        .map(|i| {
            Bytes::from(vec![
                (number as u8).wrapping_mul(7).wrapping_add(i);
                payload
            ])
        })
        .collect();
    let mut hasher = Sha256::new();
    for d in &data {
        hasher.update(d);
    }
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash: previous_hash.to_vec().into(),
            data_hash: hasher.finalize().to_vec().into(),
        }),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata {
            metadata: vec![Bytes::new(); 4],
        }),
    }
}

fn append_all(ledger: &Ledger, blocks: &[Bytes]) {
    for b in blocks {
        ledger.append(b.clone()).unwrap();
    }
}

fn record_len(block: &Bytes) -> u64 {
    (prost::encoding::encoded_len_varint(block.len() as u64) + block.len()) as u64
}

fn blockfile(dir: &Path, n: u32) -> PathBuf {
    dir.join(file_name(n))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn block_files(dir: &Path) -> usize {
    scan::list_files(dir).unwrap().len()
}

fn assert_holds(ledger: &Ledger, blocks: &[Bytes]) {
    assert_eq!(ledger.height(), blocks.len() as u64);
    for (n, b) in blocks.iter().enumerate() {
        assert_eq!(ledger.get(n as u64).unwrap().as_ref(), Some(b), "block {n}");
    }
    assert_eq!(ledger.get(blocks.len() as u64).unwrap(), None);
    let tip = blocks.last().map(|b| decode_header(b).unwrap());
    assert_eq!(ledger.tip_header(), tip);
    assert_eq!(
        ledger.tip_hash(),
        tip.as_ref().map(|h| header_hash(h, &NativeCrypto))
    );
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

/// Runs `f` with a tracing subscriber that records log lines, returned as text.
fn with_captured_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    (out, log)
}

fn open_err(dir: &Path) -> String {
    match Ledger::open_with(dir, 1000) {
        Ok(_) => panic!("opening {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn ledger_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ledger>();
}

#[test]
fn new_ledger_is_empty_and_creates_its_directory() {
    let tmp = TempDir::new().unwrap();
    let dir = channel_dir(tmp.path(), "mychannel");
    assert_eq!(dir, tmp.path().join("chains").join("mychannel"));
    let ledger = Ledger::open(&dir).unwrap();
    assert_eq!(ledger.dir(), dir);
    assert_eq!(ledger.height(), 0);
    assert_eq!(ledger.tip_header(), None);
    assert_eq!(ledger.tip_hash(), None);
    assert_eq!(ledger.get(0).unwrap(), None);
    assert_eq!(*ledger.watch_height().borrow(), 0);
    assert_eq!(file_len(&blockfile(&dir, 0)), 0);
    drop(ledger);
    assert_eq!(Ledger::open(&dir).unwrap().height(), 0);
}

#[test]
fn append_get_reopen_round_trip() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let mut blocks = chain.many(10, 100);
    {
        let ledger = Ledger::open(tmp.path()).unwrap();
        append_all(&ledger, &blocks);
        assert_holds(&ledger, &blocks);
        let on_disk: u64 = blocks.iter().map(record_len).sum();
        assert_eq!(file_len(&blockfile(tmp.path(), 0)), on_disk);
    }
    let ledger = Ledger::open(tmp.path()).unwrap();
    assert_holds(&ledger, &blocks);
    // The chain continues from the reopened tip.
    let next = chain.block(100);
    ledger.append_block(&next).unwrap();
    blocks.push(Bytes::from(next.encode_to_vec()));
    assert_holds(&ledger, &blocks);
    drop(ledger);
    assert_holds(&Ledger::open(tmp.path()).unwrap(), &blocks);
}

#[test]
fn rotates_files_and_reads_across_them_after_reopen() {
    let tmp = TempDir::new().unwrap();
    let max = 1000;
    let mut chain = Gen::new();
    let mut blocks = chain.many(9, 200);
    let rec = record_len(&blocks[1]);
    assert!(2 * rec <= max && 3 * rec > max, "two records per file");
    {
        let ledger = Ledger::open_with(tmp.path(), max).unwrap();
        append_all(&ledger, &blocks);
        assert_holds(&ledger, &blocks);
    }
    assert_eq!(block_files(tmp.path()), 5);
    for n in 0..5 {
        let len = file_len(&blockfile(tmp.path(), n));
        assert!(len > 0 && len <= max, "blockfile {n} is {len} bytes");
    }
    // Reopen with the same and with a different maximum: records are found either way.
    assert_holds(&Ledger::open_with(tmp.path(), max).unwrap(), &blocks);
    let ledger = Ledger::open(tmp.path()).unwrap();
    assert_holds(&ledger, &blocks);
    drop(ledger);
    let ledger = Ledger::open_with(tmp.path(), max).unwrap();
    let more = chain.many(2, 200);
    append_all(&ledger, &more);
    blocks.extend(more);
    assert_holds(&ledger, &blocks);
    assert_eq!(
        block_files(tmp.path()),
        6,
        "the last file is filled, then a new one starts"
    );
}

#[test]
fn oversized_block_goes_alone_in_a_file() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let blocks = vec![chain.encoded(10), chain.encoded(3000), chain.encoded(10)];
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    append_all(&ledger, &blocks);
    assert_holds(&ledger, &blocks);
    for (n, b) in blocks.iter().enumerate() {
        assert_eq!(file_len(&blockfile(tmp.path(), n as u32)), record_len(b));
    }
    drop(ledger);
    assert_holds(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
}

#[test]
fn torn_tail_is_truncated_and_appends_continue() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let blocks = chain.many(5, 100);
    let path = blockfile(tmp.path(), 0);
    append_all(&Ledger::open(tmp.path()).unwrap(), &blocks);
    let full = file_len(&path);
    // A crash in the middle of writing block 4.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full - 3)
        .unwrap();

    let (ledger, log) = with_captured_logs(|| Ledger::open(tmp.path()).unwrap());
    assert_holds(&ledger, &blocks[..4]);
    let kept = full - record_len(&blocks[4]);
    assert_eq!(file_len(&path), kept);
    let removed = full - 3 - kept;
    assert!(
        log.contains("WARN")
            && log.contains(&path.display().to_string())
            && log.contains(&format!("removing {removed} bytes")),
        "{log}"
    );
    ledger.append(blocks[4].clone()).unwrap();
    assert_holds(&ledger, &blocks);
    assert_eq!(file_len(&path), full);
    drop(ledger);
    assert_holds(&Ledger::open(tmp.path()).unwrap(), &blocks);
}

#[test]
fn garbage_tail_is_truncated() {
    // A partial length prefix; a complete prefix with a short body; a prefix whose
    // length runs far past the end; a zero-filled tail (size extended, data lost).
    let garbage: [&[u8]; 5] = [
        &[0xff],
        &[0xff, 0xff, 0x80],
        &[0x10, 1, 2, 3],
        &[0xff, 0xff, 0xff, 0x7f],
        &[0; 4096],
    ];
    for tail in garbage {
        let tmp = TempDir::new().unwrap();
        let mut chain = Gen::new();
        let mut blocks = chain.many(3, 50);
        let path = blockfile(tmp.path(), 0);
        append_all(&Ledger::open(tmp.path()).unwrap(), &blocks);
        let full = file_len(&path);
        append_bytes(&path, tail);

        let ledger = Ledger::open(tmp.path()).unwrap();
        assert_holds(&ledger, &blocks);
        assert_eq!(
            file_len(&path),
            full,
            "tail {:?}",
            &tail[..tail.len().min(4)]
        );
        let next = chain.encoded(50);
        ledger.append(next.clone()).unwrap();
        blocks.push(next);
        drop(ledger);
        assert_holds(&Ledger::open(tmp.path()).unwrap(), &blocks);
    }
}

#[test]
fn torn_first_record_of_a_new_file_is_truncated() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let blocks = chain.many(5, 200); // two per 1000-byte file: files 0, 1, 2
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    let last = blockfile(tmp.path(), 2);
    assert_eq!(file_len(&last), record_len(&blocks[4]));
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(10)
        .unwrap();

    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    assert_holds(&ledger, &blocks[..4]);
    assert_eq!(file_len(&last), 0);
    ledger.append(blocks[4].clone()).unwrap();
    assert_eq!(block_files(tmp.path()), 3, "the empty last file is reused");
    drop(ledger);
    assert_holds(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
}

#[test]
fn rejects_wrong_number() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let blocks = chain.many(3, 10);
    let ledger = Ledger::open(tmp.path()).unwrap();
    ledger.append(blocks[0].clone()).unwrap();
    for (bad, got) in [(&blocks[2], 2), (&blocks[0], 0)] {
        let err = ledger.append(bad.clone()).unwrap_err();
        match err.downcast_ref::<AppendError>() {
            Some(AppendError::WrongNumber {
                expected: 1,
                got: g,
            }) if *g == got => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("height is 1"), "{err}");
    }
    assert_holds(&ledger, &blocks[..1]);
    assert_eq!(file_len(&blockfile(tmp.path(), 0)), record_len(&blocks[0]));
    // Block 0 on a non-empty ledger, and a first block other than 0.
    let empty = TempDir::new().unwrap();
    let ledger = Ledger::open(empty.path()).unwrap();
    let err = ledger.append(blocks[1].clone()).unwrap_err();
    assert!(matches!(
        err.downcast_ref(),
        Some(AppendError::WrongNumber {
            expected: 0,
            got: 1
        })
    ));
    assert_eq!(ledger.height(), 0);
}

#[test]
fn rejects_wrong_previous_hash() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let genesis = chain.block(10);
    let ledger = Ledger::open(tmp.path()).unwrap();
    ledger.append_block(&genesis).unwrap();
    let tip_hash = hex::encode(ledger.tip_hash().unwrap());
    let genesis_data_hash = genesis.header.as_ref().unwrap().data_hash.to_vec();
    for prev in [vec![0u8; 32], Vec::new(), genesis_data_hash] {
        let err = ledger.append_block(&make_block(1, &prev, 10)).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref(),
                Some(AppendError::WrongPreviousHash { number: 1, .. })
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&tip_hash) && msg.contains(&hex::encode(&prev)),
            "{msg}"
        );
    }
    assert_eq!(ledger.height(), 1);
    ledger.append_block(&chain.block(10)).unwrap();
    assert_eq!(ledger.height(), 2);
}

#[test]
fn genesis_accepts_any_previous_hash() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen {
        next: 0,
        prev_hash: b"not a real hash".to_vec(),
    };
    let blocks = chain.many(2, 10);
    let ledger = Ledger::open(tmp.path()).unwrap();
    append_all(&ledger, &blocks);
    assert_holds(&ledger, &blocks);
}

#[test]
fn rejects_undecodable_and_headerless_blocks() {
    let tmp = TempDir::new().unwrap();
    let ledger = Ledger::open(tmp.path()).unwrap();
    let err = ledger.append(Bytes::from_static(&[0xff; 8])).unwrap_err();
    assert!(
        matches!(err.downcast_ref(), Some(AppendError::Decode(_))),
        "{err}"
    );
    let headerless = Block {
        header: None,
        data: Some(BlockData::default()),
        metadata: None,
    };
    let err = ledger.append_block(&headerless).unwrap_err();
    assert!(
        matches!(err.downcast_ref(), Some(AppendError::MissingHeader)),
        "{err}"
    );
    assert_eq!(ledger.height(), 0);
    assert_eq!(file_len(&blockfile(tmp.path(), 0)), 0);
}

#[test]
fn concurrent_readers_while_appending() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(300, 64); // more than the cache holds
    let ledger = Ledger::open_with(tmp.path(), 4096).unwrap(); // many rotations
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for r in 0..4u64 {
            let (ledger, blocks, done) = (&ledger, &blocks, &done);
            s.spawn(move || {
                let mut reads = 0u64;
                let mut x = r + 1;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::Acquire);
                    let height = ledger.height();
                    if height > 0 {
                        // Mix the newest block, old (file) blocks and pseudo-random ones.
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        for n in [height - 1, (x >> 33) % height, r % height] {
                            let got = ledger.get(n).unwrap().expect("below the height");
                            assert_eq!(got, blocks[n as usize], "block {n}");
                            reads += 1;
                        }
                    }
                    if finished {
                        break;
                    }
                }
                assert!(reads > 0);
            });
        }
        for b in &blocks {
            ledger.append(b.clone()).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    assert_holds(&ledger, &blocks);
    assert!(block_files(tmp.path()) > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_height_sees_new_heights() {
    let tmp = TempDir::new().unwrap();
    let ledger = Arc::new(Ledger::open(tmp.path()).unwrap());
    let blocks = Gen::new().many(5, 10);
    let mut rx = ledger.watch_height();
    assert_eq!(*rx.borrow_and_update(), 0);

    let watcher = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                rx.changed().await.unwrap();
                let height = *rx.borrow_and_update();
                // A woken watcher always finds the block.
                assert!(ledger.get(height - 1).unwrap().is_some());
                seen.push(height);
                if height == 5 {
                    return seen;
                }
            }
        })
    };
    let writer = {
        let ledger = ledger.clone();
        let blocks = blocks.clone();
        tokio::task::spawn_blocking(move || append_all(&ledger, &blocks))
    };
    writer.await.unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), watcher)
        .await
        .expect("the watcher sees height 5")
        .unwrap();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&5));

    // A receiver taken later starts at the current height; wait_for wakes on append.
    let mut late = ledger.watch_height();
    assert_eq!(*late.borrow(), 5);
    let next = Gen::after(&ledger).encoded(10);
    let ledger2 = ledger.clone();
    tokio::task::spawn_blocking(move || ledger2.append(next).unwrap())
        .await
        .unwrap();
    assert_eq!(*late.wait_for(|&h| h == 6).await.unwrap(), 6);
}

#[test]
fn corrupt_middle_record_is_an_error_naming_file_and_offset() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(3, 50);
    append_all(&Ledger::open(tmp.path()).unwrap(), &blocks);
    // The scan meets the corruption only when the index does not cover it (an open
    // with a complete index reads no block file but the tail's).
    fs::remove_file(index_path(tmp.path())).unwrap();
    let path = blockfile(tmp.path(), 0);
    let second = record_len(&blocks[0]);

    // A length prefix that never ends.
    let original = fs::read(&path).unwrap();
    overwrite(&path, second, &[0xff; 11]);
    let msg = open_err(tmp.path());
    assert!(
        msg.contains("blockfile_000000") && msg.contains(&format!("offset {second}")),
        "{msg}"
    );

    // A zero length followed by data.
    fs::write(&path, &original).unwrap();
    overwrite(&path, second, &[0]);
    let msg = open_err(tmp.path());
    assert!(
        msg.contains("blockfile_000000") && msg.contains(&format!("offset {second}")),
        "{msg}"
    );
    assert!(msg.contains("zero length"), "{msg}");

    // Nothing was truncated by the failed opens.
    assert_eq!(file_len(&path), original.len() as u64);
}

#[test]
fn torn_record_in_a_file_that_is_not_the_last_is_an_error() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(5, 200);
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    let path = blockfile(tmp.path(), 0);
    let len = file_len(&path);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let msg = open_err(tmp.path());
    assert!(
        msg.contains("blockfile_000000")
            && msg.contains(&format!("offset {}", record_len(&blocks[0]))),
        "{msg}"
    );
    assert_eq!(file_len(&path), len - 2, "not truncated");
}

#[test]
fn missing_block_file_is_an_error() {
    let tmp = TempDir::new().unwrap();
    append_all(
        &Ledger::open_with(tmp.path(), 1000).unwrap(),
        &Gen::new().many(5, 200),
    );
    fs::remove_file(blockfile(tmp.path(), 1)).unwrap();
    let msg = open_err(tmp.path());
    assert!(msg.contains("blockfile_000001 is missing"), "{msg}");
}

#[test]
fn undecodable_last_block_is_an_error() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(3, 50);
    append_all(&Ledger::open(tmp.path()).unwrap(), &blocks);
    let path = blockfile(tmp.path(), 0);
    let last = record_len(&blocks[0]) + record_len(&blocks[1]);
    let body = last + prost::encoding::encoded_len_varint(blocks[2].len() as u64) as u64;
    overwrite(&path, body, &[0xff; 12]);
    let msg = open_err(tmp.path());
    assert!(
        msg.contains("blockfile_000000") && msg.contains(&format!("offset {body}")),
        "{msg}"
    );
}

#[test]
fn last_block_number_must_match_the_record_count() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let genesis = chain.encoded(10);
    chain.next = 5;
    let stray = chain.encoded(10);
    let mut file = Vec::new();
    for b in [&genesis, &stray] {
        prost::encoding::encode_varint(b.len() as u64, &mut file);
        file.extend_from_slice(b);
    }
    fs::write(blockfile(tmp.path(), 0), file).unwrap();
    let msg = open_err(tmp.path());
    assert!(
        msg.contains("blockfile_000000") && msg.contains("number 5") && msg.contains("2 blocks"),
        "{msg}"
    );
}

#[test]
fn recent_blocks_are_served_from_memory() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(200, 10);
    let ledger = Ledger::open(tmp.path()).unwrap();
    append_all(&ledger, &blocks);
    assert_eq!(ledger.read_state().cache.len(), CACHE_BLOCKS);
    // Pull the file out from under the ledger: cached blocks still come back, older
    // ones now fail with the file and offset.
    let path = blockfile(tmp.path(), 0);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let first_cached = 200 - CACHE_BLOCKS as u64;
    for n in first_cached..200 {
        assert_eq!(ledger.get(n).unwrap().as_ref(), Some(&blocks[n as usize]));
    }
    let msg = format!("{:#}", ledger.get(first_cached - 1).unwrap_err());
    assert!(
        msg.contains("blockfile_000000") && msg.contains("offset"),
        "{msg}"
    );
}

#[test]
fn reopened_ledger_caches_its_tip_and_reads_the_rest_from_files() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(20, 10);
    append_all(&Ledger::open(tmp.path()).unwrap(), &blocks);
    let ledger = Ledger::open(tmp.path()).unwrap();
    assert_eq!(ledger.read_state().cache.len(), 1);
    assert_holds(&ledger, &blocks);
}

#[test]
fn cache_is_bounded_by_bytes() {
    let tmp = TempDir::new().unwrap();
    let ledger = Ledger::open(tmp.path()).unwrap();
    let mut state = ledger.write_state();
    let chunk = Bytes::from(vec![0u8; CACHE_BYTES / 4 + 1]);
    for _ in 0..4 {
        state.cache_push(chunk.clone());
    }
    assert_eq!(state.cache.len(), 3);
    assert_eq!(state.cache_bytes, 3 * chunk.len());
    state.cache_push(Bytes::from(vec![0u8; CACHE_BYTES + 1]));
    assert!(
        state.cache.is_empty() && state.cache_bytes == 0,
        "a block over the budget is not kept"
    );
}

// The persisted index.

fn index_path(dir: &Path) -> PathBuf {
    dir.join(index::INDEX_FILE)
}

/// Whole records in the index file.
fn index_records(dir: &Path) -> u64 {
    (file_len(&index_path(dir)) - index::record_offset(0)) / 16
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn report(from_index: u64, scanned: u64) -> OpenReport {
    OpenReport {
        from_index,
        scanned,
    }
}

/// Reopens, checks the blocks, and that a further reopen needs no scan.
fn assert_recovers(dir: &Path, max: u64, blocks: &[Bytes], expected: OpenReport) {
    let ledger = Ledger::open_with(dir, max).unwrap();
    assert_eq!(ledger.open_report(), expected);
    assert_holds(&ledger, blocks);
    drop(ledger);
    assert_eq!(index_records(dir), blocks.len() as u64, "index rewritten");
    let ledger = Ledger::open_with(dir, max).unwrap();
    assert_eq!(ledger.open_report(), report(blocks.len() as u64, 0));
    assert_holds(&ledger, blocks);
}

#[test]
fn index_survives_restart_and_open_scans_nothing() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let mut blocks = chain.many(9, 200);
    {
        let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
        assert_eq!(ledger.open_report(), report(0, 0));
        append_all(&ledger, &blocks);
    }
    assert_eq!(index_records(tmp.path()), 9);
    assert_eq!(block_files(tmp.path()), 5);
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    assert_eq!(ledger.open_report(), report(9, 0));
    assert_holds(&ledger, &blocks);
    // Appends after a reopen extend the index.
    let more = chain.many(3, 200);
    append_all(&ledger, &more);
    blocks.extend(more);
    drop(ledger);
    assert_eq!(index_records(tmp.path()), 12);
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    assert_eq!(ledger.open_report(), report(12, 0));
    assert_holds(&ledger, &blocks);

    // The open really reads no block file but the one holding the tail (file 5):
    // with the others zeroed (same sizes), the index still serves the ledger...
    drop(ledger);
    for n in 0..5 {
        let path = blockfile(tmp.path(), n);
        fs::write(&path, vec![0u8; file_len(&path) as usize]).unwrap();
    }
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    assert_eq!(ledger.open_report(), report(12, 0));
    assert_eq!(ledger.height(), 12);
    // ...and reads of those blocks return what is there now.
    assert_eq!(ledger.get(0).unwrap().unwrap(), vec![0u8; blocks[0].len()]);
}

#[test]
fn batch_append_is_one_visible_step_and_indexed() {
    let tmp = TempDir::new().unwrap();
    let mut chain = Gen::new();
    let blocks = chain.many(9, 200);
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    let mut rx = ledger.watch_height();
    ledger.append_batch(&blocks[..1]).unwrap();
    ledger.append_batch(&[]).unwrap();
    ledger.append_batch(&blocks[1..]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 9);
    assert_holds(&ledger, &blocks);
    assert_eq!(block_files(tmp.path()), 5, "rotates inside a batch");

    // A bad block anywhere in a batch refuses all of it.
    let mut next = chain.many(3, 200);
    let mut bad = next.clone();
    bad[2] = make_block(11, &[0; 32], 200).encode_to_vec().into();
    let err = ledger.append_batch(&bad).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref(),
            Some(AppendError::WrongPreviousHash { number: 11, .. })
        ),
        "{err}"
    );
    bad.swap(0, 1);
    let err = ledger.append_batch(&bad).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref(),
            Some(AppendError::WrongNumber {
                expected: 9,
                got: 10
            })
        ),
        "{err}"
    );
    assert_holds(&ledger, &blocks);
    assert!(!rx.has_changed().unwrap());
    ledger.append_batch(&next).unwrap();
    let mut all = blocks;
    all.append(&mut next);
    drop(ledger);
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    assert_eq!(ledger.open_report(), report(12, 0));
    assert_holds(&ledger, &all);
}

#[test]
fn deleted_index_is_rebuilt() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(9, 200);
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    fs::remove_file(index_path(tmp.path())).unwrap();
    assert_recovers(tmp.path(), 1000, &blocks, report(0, 9));
}

#[test]
fn truncated_index_is_repaired() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(9, 200);
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    let path = index_path(tmp.path());
    // Cut inside record 4: records 0..=3 stay, the rest is scanned (from file 2).
    set_len(&path, index::record_offset(4) + 7);
    assert_recovers(tmp.path(), 1000, &blocks, report(4, 5));
    // Only the header left; then not even a whole header.
    set_len(&path, index::record_offset(0));
    assert_recovers(tmp.path(), 1000, &blocks, report(0, 9));
    set_len(&path, 3);
    assert_recovers(tmp.path(), 1000, &blocks, report(0, 9));
}

#[test]
fn corrupt_index_is_repaired() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(9, 200);
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    let path = index_path(tmp.path());
    let good = fs::read(&path).unwrap();

    // Record 5 (the second in file 2) with a wrong offset or file number: records
    // from 5 on are not trusted. With a wrong length it still tiles file 2 but not
    // the start of file 3, and its length prefix is not the block file's: file 2 is
    // scanned again.
    for (field, value, expected) in [
        (4, 3u8, report(5, 4)),
        (0, 1, report(5, 4)),
        (12, 1, report(4, 5)),
    ] {
        fs::write(&path, &good).unwrap();
        overwrite(&path, index::record_offset(5) + field, &[value]);
        assert_recovers(tmp.path(), 1000, &blocks, expected);
    }
    // Garbage records after the last one.
    fs::write(&path, &good).unwrap();
    append_bytes(&path, &[0x5a; 40]);
    assert_recovers(tmp.path(), 1000, &blocks, report(9, 0));
    // Another header (another format): rebuilt.
    fs::write(&path, &good).unwrap();
    overwrite(&path, 0, b"X");
    assert_recovers(tmp.path(), 1000, &blocks, report(0, 9));
}

#[test]
fn index_tail_not_matching_its_block_file_is_rescanned() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(5, 200); // files 0, 1, 2
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    // Records 0 and 1 (file 0), then one record covering all of file 1: they tile
    // the files, but file 1 starts with block 2's length prefix, not that one's.
    let path = index_path(tmp.path());
    let mut fake = fs::read(&path).unwrap();
    fake.truncate(index::record_offset(2) as usize);
    let size = file_len(&blockfile(tmp.path(), 1));
    let len = size - 2;
    assert_eq!(prost::encoding::encoded_len_varint(len), 2);
    fake.extend_from_slice(&index::encode(Loc {
        file: 1,
        offset: 2,
        len: len as u32,
    }));
    fs::write(&path, fake).unwrap();
    // File 0 is trusted, files 1 and 2 are scanned.
    assert_recovers(tmp.path(), 1000, &blocks, report(2, 3));
}

#[test]
fn index_of_another_ledger_is_not_trusted() {
    let tmp = TempDir::new().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let blocks_a = Gen::new().many(6, 200);
    let blocks_b = Gen::new().many(6, 150);
    append_all(&Ledger::open_with(&a, 1000).unwrap(), &blocks_a);
    append_all(&Ledger::open_with(&b, 1000).unwrap(), &blocks_b);
    fs::copy(index_path(&a), index_path(&b)).unwrap();
    assert_recovers(&b, 1000, &blocks_b, report(0, 6));
}

#[test]
fn torn_block_file_tail_with_an_index_pointing_past_it() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(5, 100);
    let path = blockfile(tmp.path(), 0);
    append_all(&Ledger::open(tmp.path()).unwrap(), &blocks);
    assert_eq!(index_records(tmp.path()), 5);
    let full = file_len(&path);
    // Block 4's record loses its last bytes; the index still names it.
    set_len(&path, full - 3);
    let (ledger, log) = with_captured_logs(|| Ledger::open(tmp.path()).unwrap());
    assert_eq!(ledger.open_report(), report(4, 0));
    assert_holds(&ledger, &blocks[..4]);
    assert_eq!(file_len(&path), full - record_len(&blocks[4]));
    assert!(log.contains("claims 5 blocks"), "{log}");
    assert_eq!(
        index_records(tmp.path()),
        4,
        "cut back to what the files hold"
    );
    ledger.append(blocks[4].clone()).unwrap();
    drop(ledger);
    assert_recovers(tmp.path(), DEFAULT_MAX_FILE_SIZE, &blocks, report(5, 0));
}

#[test]
fn index_naming_a_lost_block_file_is_cut_back() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(5, 200); // files 0, 1, 2
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    // The last file vanished (as if its creation was never made durable).
    fs::remove_file(blockfile(tmp.path(), 2)).unwrap();
    assert_recovers(tmp.path(), 1000, &blocks[..4], report(4, 0));
    // The first record of a new file torn: the index names it, the file is cut to 0.
    let ledger = Ledger::open_with(tmp.path(), 1000).unwrap();
    ledger.append(blocks[4].clone()).unwrap();
    drop(ledger);
    set_len(&blockfile(tmp.path(), 2), 10);
    assert_recovers(tmp.path(), 1000, &blocks[..4], report(4, 0));
    assert_eq!(file_len(&blockfile(tmp.path(), 2)), 0);
}

/// A kill (or power loss) after the index records were written but before the
/// blocks' data reached the disk: the block file is short, or has its size but
/// zeros where the records should be.
#[test]
fn kill_after_index_write_before_block_fsync() {
    for zero_filled in [false, true] {
        let tmp = TempDir::new().unwrap();
        let mut chain = Gen::new();
        let blocks = chain.many(6, 100);
        let path = blockfile(tmp.path(), 0);
        let ledger = Ledger::open(tmp.path()).unwrap();
        append_all(&ledger, &blocks[..4]);
        let durable = file_len(&path);
        append_all(&ledger, &blocks[4..]);
        drop(ledger);
        assert_eq!(index_records(tmp.path()), 6);
        // Blocks 4 and 5 never reached the disk.
        let full = file_len(&path);
        if zero_filled {
            overwrite(&path, durable, &vec![0u8; (full - durable) as usize]);
        } else {
            set_len(&path, durable);
        }
        let ledger = Ledger::open(tmp.path()).unwrap();
        // With zeros the tail's prefix does not match, so file 0 is scanned again.
        let expected = if zero_filled {
            report(0, 4)
        } else {
            report(4, 0)
        };
        assert_eq!(ledger.open_report(), expected, "zero filled: {zero_filled}");
        assert_holds(&ledger, &blocks[..4]);
        assert_eq!(file_len(&path), durable);
        assert_eq!(index_records(tmp.path()), 4);
        // The chain continues from block 3, and the blocks can be written again.
        ledger.append_batch(&blocks[4..]).unwrap();
        drop(ledger);
        assert_recovers(tmp.path(), DEFAULT_MAX_FILE_SIZE, &blocks, report(6, 0));
    }
}

/// The index record was lost (power loss before the page cache reached the disk)
/// but the block was fsynced: the block is found by the scan and indexed again.
#[test]
fn block_without_its_index_record_is_found() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(7, 200);
    append_all(&Ledger::open_with(tmp.path(), 1000).unwrap(), &blocks);
    set_len(&index_path(tmp.path()), index::record_offset(5));
    assert_recovers(tmp.path(), 1000, &blocks, report(5, 2));
}

#[test]
fn failed_index_write_does_not_fail_appends() {
    let tmp = TempDir::new().unwrap();
    let blocks = Gen::new().many(6, 100);
    let ledger = Ledger::open(tmp.path()).unwrap();
    append_all(&ledger, &blocks[..3]);
    // A write error: the index handle becomes read-only.
    ledger.lock_writer().index = index::Index::open_read_only(tmp.path());
    let (_, log) = with_captured_logs(|| append_all(&ledger, &blocks[3..]));
    assert!(log.contains("no longer updated"), "{log}");
    assert_holds(&ledger, &blocks);
    drop(ledger);
    assert_recovers(tmp.path(), DEFAULT_MAX_FILE_SIZE, &blocks, report(3, 3));
}
