//! Compiled-artifact cache on disk, so a restart with many plugins does not recompile them.
//!
//! An entry is keyed by the sha256 of the uploaded bytes (which determine the component) together with the engine's configuration (wasmtime's
//! precompile compatibility hash plus the fuel and epoch flags): an artifact compiled for another engine is never
//! offered to this one. A file holds a magic tag, the CRC-32 of the artifact and the artifact; it is written to a
//! temp file and renamed into place, so a reader sees a whole entry or none. A file that fails the checksum or that
//! wasmtime refuses is ignored (and overwritten by the next compile), never trusted blindly.
//!
//! Why CRC-32 and not sha256: the checksum guards against accidental damage (a torn or bit-rotted file), not an
//! attacker (one who can write the host's cache dir can replace the host itself). CRC-32 catches every burst error
//! up to 32 bits and any other damage but one time in 2^32, at about 20 GB/s against sha256's 1.5 GB/s: a cached load of a
//! 900 KB artifact went from 2.48 ms to 0.99 ms (BENCHMARKS.md, "Plugin runtime").

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Starts every cache file: names the layout below.
const MAGIC: &[u8; 8] = b"PPART\x00\x00\x02";
use wasmtime::Engine;
use wasmtime::component::Component;

/// Bumped when the on-disk layout changes.
const FORMAT: &str = "pingpost-artifact-v2";
/// Magic tag and CRC-32 of the artifact.
const HEADER_LEN: usize = MAGIC.len() + 4;

/// The artifact cache of one engine configuration.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// A cache in `dir` (created when missing) for artifacts of `engine`, whose fuel flag is `fuel`.
    pub fn open(dir: &Path, engine: &Engine, fuel: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{FORMAT}/{:016x}/fuel={fuel}/epoch=true", hasher.finish());
        Ok(ArtifactCache { dir: dir.to_owned(), engine_key })
    }

    /// The cache key, for this engine, of an upload whose sha256 is `upload_sha256`.
    pub fn key(&self, upload_sha256: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.engine_key.as_bytes());
        hasher.update([0]);
        hasher.update(upload_sha256);
        hex::encode(hasher.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The cached component for `key`, or `None` when missing, corrupt or refused by wasmtime.
    pub fn get(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.path(key);
        let file = std::fs::read(&path).ok()?;
        if file.len() < HEADER_LEN || !file.starts_with(MAGIC) {
            tracing::warn!(path = %path.display(), "ignoring an artifact cache file with no pingpost header");
            return None;
        }
        let (header, artifact) = file.split_at(HEADER_LEN);
        if header[MAGIC.len()..] != crc32fast::hash(artifact).to_le_bytes() {
            tracing::warn!(path = %path.display(), "ignoring an artifact cache file that fails its checksum");
            return None;
        }
        // SAFETY: `deserialize` trusts the artifact to be wasmtime's own output for this engine. The file is one
        // this host wrote itself (`put`) in its own cache dir, under a key that includes the engine configuration,
        // and its checksum was verified just above, so it is the exact bytes `Component::serialize` produced.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an artifact cache file wasmtime refused");
                None
            }
        }
    }

    /// Deletes the artifact under `key`, if there is one (a failure is logged: the file is only a cache).
    pub fn remove(&self, key: &str) {
        let path = self.path(key);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not delete an artifact cache file");
        }
    }

    /// Stores `component`'s artifact under `key`, atomically. A failure is logged and otherwise ignored: the cache
    /// only saves time.
    pub fn put(&self, key: &str, component: &Component) {
        if let Err(e) = self.try_put(key, component) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not write an artifact cache file");
        }
    }

    fn try_put(&self, key: &str, component: &Component) -> wasmtime::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let artifact = component.serialize()?;
        let tmp = self.dir.join(format!(".{key}.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&crc32fast::hash(&artifact).to_le_bytes())?;
            file.write_all(&artifact)?;
            file.sync_all()?;
            std::fs::rename(&tmp, self.path(key))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(written?)
    }
}
