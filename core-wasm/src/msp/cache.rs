//! The identity cache (Fabric's `msp/cache`).

use std::sync::{Arc, Mutex, PoisonError};

use super::identity::Identity;

/// How many validated identities an [`MspManager`](super::MspManager) remembers before it forgets them
/// all (a channel rarely has that many active clients; at ~1 KB per entry the cache
/// stays under ~5 MB).
pub const IDENTITY_CACHE_CAPACITY: usize = 4096;

/// Fabric's MSP cache (`msp/cache`): serialized identity -> validated identity.
///
/// Validating an identity (chain signatures, CRLs, OUs) depends only on the MSP
/// config and the identity's bytes, never on the clock (the chain is checked at
/// NotBefore + 1s, see [`crate::msp`]), so an answer stays right for the life of
/// the config; a config change builds a new manager, hence a new cache. Only valid
/// identities are cached: an invalid one is validated again each time. When full,
/// the cache is cleared: simple, and the same inputs give the same behaviour.
///
/// The entries are kept sorted by [`key_order`] and found by binary search. A hit
/// compares the whole serialized identity (~1 KB) once, 8 bytes at a time: in wasm,
/// `memcmp` (what comparing two byte slices calls) is a byte loop, and the lookup is
/// on the path of every message. A miss mostly stops at the length or within the
/// first words that differ. An insert shifts the entries after it (three words
/// each), a cost only a newly validated identity pays, after its chain check.
///
/// A `Mutex` keeps the manager `Sync` natively; in wasm (one thread) it costs a flag.
#[derive(Default)]
pub(super) struct IdentityCache {
    pub(super) entries: Mutex<Vec<CacheEntry>>,
    pub(super) capacity: Option<usize>,
}

/// A serialized identity and its validated identity.
type CacheEntry = (Box<[u8]>, Arc<Identity>);

/// The order of the identity cache's keys: by length, then 8 bytes at a time (as
/// little-endian words), then the last bytes. Any total order consistent with
/// equality would do, as the order is never seen outside the cache; this one is
/// cheap in wasm, where comparing whole words beats `memcmp`'s byte loop by far.
pub(super) fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        let (a_words, a_rest) = a.as_chunks::<8>();
        let (b_words, b_rest) = b.as_chunks::<8>();
        for (x, y) in a_words.iter().zip(b_words) {
            let (x, y) = (u64::from_le_bytes(*x), u64::from_le_bytes(*y));
            if x != y {
                return x.cmp(&y);
            }
        }
        a_rest.cmp(b_rest)
    })
}

impl IdentityCache {
    fn capacity(&self) -> usize {
        self.capacity.unwrap_or(IDENTITY_CACHE_CAPACITY)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<CacheEntry>> {
        // A panic while holding the lock cannot leave the entries half-updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, serialized: &[u8]) -> Option<Arc<Identity>> {
        let entries = self.entries();
        let i = entries
            .binary_search_by(|(key, _)| key_order(key, serialized))
            .ok()?;
        Some(entries[i].1.clone())
    }

    pub(super) fn insert(&self, serialized: &[u8], identity: Arc<Identity>) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity() {
            entries.clear();
        }
        match entries.binary_search_by(|(key, _)| key_order(key, serialized)) {
            Ok(i) => entries[i].1 = identity,
            Err(i) => entries.insert(i, (serialized.into(), identity)),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries().len()
    }
}

/// A clone starts empty: the cache only saves work, it never changes an answer.
impl Clone for IdentityCache {
    fn clone(&self) -> Self {
        IdentityCache {
            entries: Mutex::default(),
            capacity: self.capacity,
        }
    }
}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityCache({} entries)", self.len())
    }
}
