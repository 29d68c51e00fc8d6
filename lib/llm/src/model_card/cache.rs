//! [`CardFileCache`]: makes a card's files local, downloading URLs into a content-addressed
//! cache and verifying every checksum.

use std::path::{Path, PathBuf};

use super::{CheckedFile, ModelDeploymentCard, fetch};
use crate::Error;

/// A directory of verified card files stored as `blobs/<blake3 hex>`, so workers serving the
/// same files share one copy.
#[derive(Clone, Debug)]
pub struct CardFileCache {
    root: PathBuf,
}

impl CardFileCache {
    /// A cache rooted at `root` (created on first download).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A local, verified copy of `file`: local paths are verified in place; `http://` URLs
    /// (a worker's `/v1/metadata/...`) are downloaded once into the cache. Other schemes
    /// (`hf://`) are not supported.
    pub fn fetch(&self, file: &CheckedFile) -> Result<PathBuf, Error> {
        if file.is_local() {
            file.read_verified()?;
            return Ok(PathBuf::from(&file.path));
        }
        let blob = self.root.join("blobs").join(file.checksum.to_hex());
        if let Ok(bytes) = std::fs::read(&blob)
            && file.verify(&bytes).is_ok()
        {
            return Ok(blob);
        }
        let bytes = fetch::http_get(&file.path, file.size)?;
        file.verify(&bytes)?;
        let io = |source| Error::Io {
            path: blob.clone(),
            source,
        };
        let dir = blob.parent().expect("a blob path has a parent");
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            file.checksum.to_hex()
        ));
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, &blob).map_err(io)?;
        Ok(blob)
    }

    /// A copy of `card` whose files all point at verified local copies.
    pub fn localize(&self, card: &ModelDeploymentCard) -> Result<ModelDeploymentCard, Error> {
        let mut local = card.clone();
        for file in local.files_mut() {
            file.path = self.fetch(file)?.to_string_lossy().into_owned();
        }
        Ok(local)
    }
}

impl ModelDeploymentCard {
    /// Rewrites the card's local file paths into URLs served by the worker's status server,
    /// `http://{authority}/v1/metadata/{namespace}/{component}/{endpoint}/{slug}/{suffix}/{file}`
    /// (`suffix` is `_base` for the base model), and returns the URL paths with the local
    /// files to serve at them. Files that already are URLs are left alone.
    pub fn self_host(
        &mut self,
        authority: &str,
        namespace: &str,
        component: &str,
        endpoint: &str,
        suffix: &str,
    ) -> Vec<(String, PathBuf)> {
        let slug = self.slug.clone();
        let mut routes = Vec::new();
        for file in self.files_mut() {
            if !file.is_local() {
                continue;
            }
            let route = format!(
                "/v1/metadata/{namespace}/{component}/{endpoint}/{slug}/{suffix}/{}",
                file.file_name()
            );
            routes.push((route.clone(), PathBuf::from(&file.path)));
            file.path = format!("http://{authority}{route}");
        }
        routes
    }
}
