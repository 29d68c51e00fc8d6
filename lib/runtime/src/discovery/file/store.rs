//! Blocking file operations of the file discovery store: one JSON file per key.
//!
//! Layout (Dynamo 1.6.1): `{root}/{bucket}/{encoded key}` where the file name is the key with
//! every non-alphanumeric byte percent-encoded (`/` → `%2F`, `-` → `%2D`, `_` → `%5F`).
//! Writes go to `.tmp_*` in the same directory and are renamed into place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::discovery::key::percent_decode_strict;
use crate::discovery::{Bucket, DiscoveryError, DiscoveryRecord};

/// Prefix of in-flight temporary files.
const TMP_PREFIX: &str = ".tmp_";

/// The file name of `key`: every byte outside `[A-Za-z0-9]` becomes `%XX`.
pub fn encode_file_name(key: &str) -> String {
    utf8_percent_encode(key, NON_ALPHANUMERIC).to_string()
}

/// The key stored in file `name`; `None` for temporary or foreign files.
pub fn decode_file_name(name: &str) -> Option<String> {
    if name.starts_with('.') {
        return None;
    }
    percent_decode_strict(name)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DiscoveryError + '_ {
    move |source| DiscoveryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory of `bucket` under `root`.
pub fn bucket_dir(root: &Path, bucket: Bucket) -> PathBuf {
    root.join(bucket.as_str())
}

/// The file holding `key` of `bucket` under `root`.
pub fn key_path(root: &Path, bucket: Bucket, key: &str) -> PathBuf {
    bucket_dir(root, bucket).join(encode_file_name(key))
}

/// Writes `record` atomically (temporary file + rename) and returns its path.
pub fn write_record(root: &Path, record: &DiscoveryRecord) -> Result<PathBuf, DiscoveryError> {
    let dir = bucket_dir(root, record.bucket());
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let body = serde_json::to_vec(record).map_err(|source| DiscoveryError::Json {
        key: record.key(),
        source,
    })?;
    let path = key_path(root, record.bucket(), &record.key());
    let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&body)?;
        file.sync_data()?;
        fs::rename(&tmp, &path)
    };
    if let Err(source) = write() {
        // Best effort: the sweep also removes stale temporaries.
        let _ = fs::remove_file(&tmp);
        return Err(DiscoveryError::Io { path, source });
    }
    Ok(path)
}

/// Removes a file; a missing file is not an error.
pub fn remove_file(path: &Path) -> Result<(), DiscoveryError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Sets the mtime of `path` to now; `Ok(false)` if the file no longer exists.
pub fn touch(path: &Path) -> Result<bool, DiscoveryError> {
    match fs::File::options().write(true).open(path) {
        Ok(file) => file
            .set_modified(SystemTime::now())
            .map(|()| true)
            .map_err(io_err(path)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Whether a file last modified at `modified` has outlived `ttl` at `now`.
pub fn is_expired(modified: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    now.duration_since(modified).is_ok_and(|age| age > ttl)
}

/// Deletes every file (records and stale temporaries) older than `ttl` in all buckets.
/// Returns how many files were removed.
pub fn sweep_expired(root: &Path, ttl: Duration) -> usize {
    let now = SystemTime::now();
    let mut removed = 0;
    for bucket in Bucket::ALL {
        let Ok(entries) = fs::read_dir(bucket_dir(root, bucket)) else {
            continue;
        };
        for entry in entries.flatten() {
            let expired = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| is_expired(m, now, ttl));
            if expired && fs::remove_file(entry.path()).is_ok() {
                tracing::debug!(path = %entry.path().display(), "file discovery: removed expired entry");
                removed += 1;
            }
        }
    }
    removed
}

/// What the scanner remembers about one file, to skip rereading unchanged files.
#[derive(Debug, Clone)]
pub struct ScannedFile {
    /// Modification time at the last read.
    pub modified: SystemTime,
    /// Length at the last read.
    pub len: u64,
    /// The decoded record, or `None` if the content was invalid.
    pub record: Option<DiscoveryRecord>,
}

/// Reads the live (unexpired) records of `bucket` whose keys start with `prefix`.
///
/// `cache` maps file names to their last scan and is updated in place; files whose mtime and
/// length did not change are not reread. Invalid files are logged once per change and skipped.
pub fn scan_bucket(
    root: &Path,
    bucket: Bucket,
    prefix: &str,
    ttl: Duration,
    cache: &mut BTreeMap<String, ScannedFile>,
) -> BTreeMap<String, DiscoveryRecord> {
    let dir = bucket_dir(root, bucket);
    let now = SystemTime::now();
    let mut live = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        cache.clear();
        return live;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(key) = decode_file_name(&name) else {
            continue;
        };
        if !key.starts_with(prefix) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(modified) = meta.modified() else {
            continue;
        };
        if !meta.is_file() || is_expired(modified, now, ttl) {
            continue;
        }
        seen.insert(name.clone());
        let unchanged = cache
            .get(&name)
            .is_some_and(|c| c.len == meta.len() && c.modified == modified);
        if !unchanged {
            let record = read_record(&entry.path(), &key);
            cache.insert(
                name.clone(),
                ScannedFile {
                    modified,
                    len: meta.len(),
                    record,
                },
            );
        }
        if let Some(record) = cache.get(&name).and_then(|c| c.record.clone()) {
            live.insert(key, record);
        }
    }
    cache.retain(|name, _| seen.contains(name));
    live
}

fn read_record(path: &Path, key: &str) -> Option<DiscoveryRecord> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "file discovery: cannot read record");
            }
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(key, error = %e, "file discovery: skipping invalid record");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_match_dynamo() {
        assert_eq!(
            encode_file_name("myexp/backend/generate/f03b24c00b376816"),
            "myexp%2Fbackend%2Fgenerate%2Ff03b24c00b376816"
        );
        assert_eq!(encode_file_name("a-b_c"), "a%2Db%5Fc");
        assert_eq!(decode_file_name("a%2Db%5Fc").as_deref(), Some("a-b_c"));
        assert_eq!(decode_file_name(".tmp_0123"), None);
        assert_eq!(decode_file_name("bad%zz"), None);
    }

    #[test]
    fn expiry_uses_age() {
        let now = SystemTime::now();
        let ttl = Duration::from_secs(10);
        assert!(!is_expired(now, now, ttl));
        assert!(is_expired(now - Duration::from_secs(11), now, ttl));
        assert!(!is_expired(now + Duration::from_secs(5), now, ttl));
    }
}
