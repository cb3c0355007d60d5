//! Compiled components on disk: a restart (or loading the same bytes again)
//! deserializes instead of compiling with cranelift.

use super::engine::{engine, engine_key};
use super::{CoreComponent, CoreLimits};
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;

/// Where compiled components live: `<data-dir>/components/<sha256>-<engine>.cwasm`,
/// so a restart (or loading the same bytes again) deserializes instead of compiling.
pub struct ComponentCache {
    dir: PathBuf,
    compiled: AtomicU64,
    deserialized: AtomicU64,
}

/// How a cache served its loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Compiled with cranelift (a miss).
    pub compiled: u64,
    /// Deserialized from a precompiled artifact on disk (a hit).
    pub deserialized: u64,
}

impl ComponentCache {
    pub fn new(dir: PathBuf) -> Self {
        ComponentCache {
            dir,
            compiled: AtomicU64::new(0),
            deserialized: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            deserialized: self.deserialized.load(Ordering::Relaxed),
        }
    }

    /// The artifact file of a component.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", engine_key()))
    }

    /// Compiles `wasm` (or loads its precompiled artifact), links the host's imports
    /// and checks it answers `describe`. Blocking and CPU-heavy on a miss (~100 ms):
    /// call it off the async runtime.
    pub fn load(&self, wasm: &[u8], limits: CoreLimits) -> Result<CoreComponent> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let path = self.path(&sha256);
        let component = match self.deserialize(&path) {
            Some(component) => component,
            None => self.compile(wasm, &path)?,
        };
        CoreComponent::from_component(&component, sha256, limits)
    }

    fn deserialize(&self, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output: we
        // wrote it, with `Engine::precompile_component` of this engine (its settings
        // are in the file name, and wasmtime checks its version and settings header
        // again), to a temporary name that is fsynced and renamed into place, so no
        // torn file is ever under this name. The folder is the orderer's data folder:
        // whoever can write there can already replace the ledger and the signing key.
        match unsafe { Component::deserialize_file(engine(), path) } {
            Ok(component) => {
                self.deserialized.fetch_add(1, Ordering::Relaxed);
                Some(component)
            }
            Err(e) => {
                tracing::warn!("ignoring precompiled component {}: {e:#}", path.display());
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    fn compile(&self, wasm: &[u8], path: &Path) -> Result<Component> {
        let artifact = engine()
            .precompile_component(wasm)
            .map_err(|e| anyhow::anyhow!("compiling the core component: {e}"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = write_atomically(path, &artifact) {
            tracing::warn!(
                "could not cache the compiled component at {}: {e:#}",
                path.display()
            );
        }
        // SAFETY: `artifact` is what `precompile_component` of this engine just returned.
        unsafe { Component::deserialize(engine(), &artifact) }
            .map_err(|e| anyhow::anyhow!("loading the compiled component: {e}"))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("cache files live in a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
