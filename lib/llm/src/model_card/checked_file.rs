//! [`CheckedFile`]: a file reference with its blake3 checksum and size.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A blake3 digest, written `blake3:<64 lowercase hex digits>` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The 64 hex digits, without the `blake3:` prefix.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Checksum {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        s.strip_prefix("blake3:")
            .and_then(|hex| blake3::Hash::from_hex(hex).ok())
            .map(|hash| Self(*hash.as_bytes()))
            .ok_or_else(|| Error::InvalidChecksum(s.to_owned()))
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A file the card refers to: where to get it, what it must hash to, and how big it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedFile {
    /// A local path or a URL (`http://host:port/v1/metadata/...`, `hf://repo/file`).
    pub path: String,
    /// The blake3 checksum of the contents.
    pub checksum: Checksum,
    /// The size in bytes.
    pub size: u64,
}

impl CheckedFile {
    /// Reads a local file and records its checksum and size.
    pub fn from_local(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_string_lossy().into_owned(),
            checksum: Checksum::of(&bytes),
            size: bytes.len() as u64,
        })
    }

    /// Whether `path` is a local path (not a URL).
    pub fn is_local(&self) -> bool {
        !self.path.contains("://")
    }

    /// The file name (last path segment), e.g. `tokenizer.json`.
    pub fn file_name(&self) -> &str {
        self.path.rsplit(['/', '\\']).next().unwrap_or(&self.path)
    }

    /// Checks `bytes` against the recorded checksum.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), Error> {
        let actual = Checksum::of(bytes);
        if actual == self.checksum {
            Ok(())
        } else {
            Err(Error::ChecksumMismatch {
                path: self.path.clone(),
                expected: self.checksum.to_string(),
                actual: actual.to_string(),
            })
        }
    }

    /// Reads the file from its local path and verifies its checksum.
    ///
    /// URLs return [`Error::UnsupportedLocation`]; fetch them through a
    /// [`CardFileCache`](super::CardFileCache).
    pub fn read_verified(&self) -> Result<Vec<u8>, Error> {
        if !self.is_local() {
            return Err(Error::UnsupportedLocation(self.path.clone()));
        }
        let bytes = std::fs::read(&self.path).map_err(|source| Error::Io {
            path: self.path.clone().into(),
            source,
        })?;
        self.verify(&bytes)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_round_trips_through_its_wire_form() {
        let sum = Checksum::of(b"hello");
        let text = sum.to_string();
        assert!(text.starts_with("blake3:") && text.len() == 7 + 64);
        assert_eq!(text.parse::<Checksum>().unwrap(), sum);
        assert!("sha256:00".parse::<Checksum>().is_err());
        assert!("blake3:zz".parse::<Checksum>().is_err());
    }

    #[test]
    fn tampered_file_fails_verification_with_both_sums() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"{}").unwrap();
        let file = CheckedFile::from_local(&path).unwrap();
        assert_eq!(file.size, 2);
        assert_eq!(file.file_name(), "config.json");
        assert_eq!(file.read_verified().unwrap(), b"{}");

        std::fs::write(&path, b"{ }").unwrap();
        let err = file.read_verified().unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&file.checksum.to_string()));
    }

    #[test]
    fn urls_are_not_fetched() {
        let file = CheckedFile {
            path: "http://w:1/v1/metadata/ns/c/e/m/_base/config.json".into(),
            checksum: Checksum::of(b""),
            size: 0,
        };
        assert!(!file.is_local());
        assert!(matches!(
            file.read_verified(),
            Err(Error::UnsupportedLocation(_))
        ));
    }
}
