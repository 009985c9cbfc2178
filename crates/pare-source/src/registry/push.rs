//! Pushing an image from an OCI layout to `docker://NAME`: blobs first (skipped when present,
//! mounted from another repository of the same registry when possible), the manifest last.

use std::path::{Path, PathBuf};

use oci_client::{Reference, RegistryOperation};
use oci_spec::image::{ImageIndex, ImageManifest};

use super::{MT_OCI_MANIFEST, Repo, manifest_media_type, registry_options};
use crate::SourceError;
use crate::digest::sha256_hex;

/// What to push and how.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Repositories (`docker://…` names without the prefix) on the same registry to mount
    /// blobs from instead of uploading them, tried in order.
    pub mount_from: Vec<String>,
}

/// What [`push_layout`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `docker://NAME@sha256:…`
    pub reference: String,
    /// `sha256:…` of the manifest as pushed (byte-identical to the layout's).
    pub manifest_digest: String,
    /// Blobs (layers and config) sent in full.
    pub uploaded: usize,
    /// Blobs cross-mounted from one of [`PushOptions::mount_from`] instead of uploaded.
    pub mounted: usize,
    /// Blobs the registry already had in the repository, so nothing was sent.
    pub present: usize,
    /// Bytes sent in uploads.
    pub bytes_uploaded: u64,
}

fn layout_err(path: &Path, what: &'static str, message: String) -> SourceError {
    SourceError::Malformed {
        path: path.to_path_buf(),
        what,
        message,
        source: None,
    }
}

/// A layout document that does not parse: the parser's error is the source.
fn unparsable(
    path: &Path,
    what: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> SourceError {
    SourceError::Malformed {
        path: path.to_path_buf(),
        what,
        message: String::new(),
        source: Some(source.into()),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn blob_file(dir: &Path, digest: &str) -> Result<PathBuf, SourceError> {
    let hex = sha256_hex(digest)
        .ok_or_else(|| layout_err(dir, "digest", format!("unsupported digest `{digest}`")))?;
    Ok(dir.join("blobs/sha256").join(hex))
}

/// Pushes the image tagged `tag` (or the only one) of the OCI layout `dir` to
/// `docker://dest`. The manifest bytes are pushed as they are, so the digest is the layout's.
pub fn push_layout(
    dir: &Path,
    tag: Option<&str>,
    dest: &str,
    options: &PushOptions,
) -> Result<PushedImage, SourceError> {
    let index_path = dir.join("index.json");
    let index: ImageIndex = serde_json::from_slice(&read(&index_path)?)
        .map_err(|e| unparsable(&index_path, "index.json", e))?;
    let entries: Vec<_> = index
        .manifests()
        .iter()
        .filter(|d| match tag {
            Some(t) => d
                .annotations()
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .is_some_and(|n| n == t),
            None => true,
        })
        .collect();
    let desc = match entries.as_slice() {
        [one] => *one,
        [] => {
            return Err(layout_err(
                &index_path,
                "index.json",
                format!("no image tagged `{}`", tag.unwrap_or("")),
            ));
        }
        _ => {
            return Err(layout_err(
                &index_path,
                "index.json",
                "several images; name one with :TAG".into(),
            ));
        }
    };
    let manifest_digest = desc.digest().to_string();
    let manifest_path = blob_file(dir, &manifest_digest)?;
    let manifest_bytes = read(&manifest_path)?;
    let actual = crate::sha256_digest(&manifest_bytes);
    if actual != manifest_digest {
        return Err(SourceError::DigestMismatch {
            digest: manifest_digest,
            actual,
        });
    }
    let media_type = manifest_media_type(&manifest_bytes)
        .map_err(|e| unparsable(&manifest_path, "manifest", e))?;
    if media_type != MT_OCI_MANIFEST && media_type != super::MT_DOCKER_MANIFEST {
        return Err(layout_err(
            &manifest_path,
            "manifest",
            "only single-platform images can be pushed".into(),
        ));
    }
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| unparsable(&manifest_path, "manifest", e))?;

    let repo = Repo::connect(dest, registry_options(), RegistryOperation::Push)?;
    let mut blobs = vec![(
        manifest.config().digest().to_string(),
        manifest.config().size(),
    )];
    for l in manifest.layers() {
        blobs.push((l.digest().to_string(), l.size()));
    }
    let mut pushed = PushedImage {
        reference: String::new(),
        manifest_digest: manifest_digest.clone(),
        uploaded: 0,
        mounted: 0,
        present: 0,
        bytes_uploaded: 0,
    };
    let mut seen = std::collections::HashSet::new();
    for (digest, size) in blobs {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let file = blob_file(dir, &digest)?;
        match push_blob(&repo, &digest, size, &file, options)? {
            Pushed::Present => pushed.present += 1,
            Pushed::Mounted => pushed.mounted += 1,
            Pushed::Uploaded => {
                pushed.uploaded += 1;
                pushed.bytes_uploaded += size;
            }
        }
    }
    // The manifest last: until now the destination tag is untouched.
    let client = &repo.client;
    let reference = &repo.reference;
    let body = bytes::Bytes::from(manifest_bytes);
    let content_type = reqwest_header(media_type);
    repo.call(None, || {
        let body = body.clone();
        let content_type = content_type.clone();
        async move {
            client
                .push_manifest_raw(reference, body, content_type)
                .await
        }
    })?;
    // What was pushed is now also in the blob cache: reading it back costs no download.
    if let Ok(cache) = super::blobs::BlobCache::new(registry_options().cache_dir) {
        for (digest, _) in
            std::iter::once((manifest_digest.clone(), 0)).chain(seen.iter().map(|d| (d.clone(), 0)))
        {
            if let (Ok(src), Some(hex)) = (blob_file(dir, &digest), sha256_hex(&digest)) {
                cache.insert_copy(&src, hex);
            }
        }
    }
    pushed.reference = format!(
        "docker://{}/{}@{}",
        repo.reference.registry(),
        repo.reference.repository(),
        manifest_digest
    );
    Ok(pushed)
}

fn reqwest_header(media_type: &'static str) -> http::HeaderValue {
    http::HeaderValue::from_static(media_type)
}

enum Pushed {
    Present,
    Mounted,
    Uploaded,
}

fn push_blob(
    repo: &Repo,
    digest: &str,
    size: u64,
    file: &Path,
    options: &PushOptions,
) -> Result<Pushed, SourceError> {
    let client = &repo.client;
    let reference = &repo.reference;
    let exists = || {
        repo.call(Some(digest), || async move {
            client.blob_exists(reference, digest).await
        })
    };
    if exists()? {
        return Ok(Pushed::Present);
    }
    for from in &options.mount_from {
        let Ok(source) = from.parse::<Reference>() else {
            continue;
        };
        if source.resolve_registry() != reference.resolve_registry()
            || source.repository() == reference.repository()
        {
            continue;
        }
        let source = &source;
        let mounted = repo.call(Some(digest), || async move {
            client.mount_blob(reference, source, digest).await
        });
        // A registry may answer a mount with an upload session instead (202); check.
        if mounted.is_ok() && exists()? {
            return Ok(Pushed::Mounted);
        }
    }
    let meta = std::fs::metadata(file).map_err(|source| SourceError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    if meta.len() != size {
        return Err(SourceError::SizeMismatch {
            digest: digest.to_string(),
            expected: size,
            actual: meta.len(),
        });
    }
    repo.call(Some(digest), || {
        let file = file.to_path_buf();
        async move {
            let stream = file_stream(file).await?;
            client
                .push_blob_stream(reference, stream, digest, Some(size))
                .await
        }
    })?;
    Ok(Pushed::Uploaded)
}

type Chunk = Result<bytes::Bytes, oci_client::errors::OciDistributionError>;

/// The file as a stream of 1 MiB chunks.
async fn file_stream(
    path: PathBuf,
) -> Result<
    impl futures_util::Stream<Item = Chunk> + Send + 'static,
    oci_client::errors::OciDistributionError,
> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(&path).await?;
    Ok(futures_util::stream::unfold(
        Some(file),
        |state| async move {
            let mut file = state?;
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e.into()), None)),
            }
        },
    ))
}
