//! `docker://` — images in a registry (the OCI distribution API), through `oci-client`.
//!
//! Reading: the manifest (or index, resolved to one platform) is fetched by tag or digest
//! with a bounded read (`manifest.rs`: at most [`MAX_MANIFEST`] bytes are ever read),
//! its digest checked and its media type checked against Docker v2 schema 2 and OCI; the
//! config and layers are blobs, fetched into a content-addressed cache
//! ([`RegistryOptions::cache_dir`], `~/.cache/pare/blobs` by default) — atomically, and only
//! renamed into place once the size and digest match — and served from there afterwards.
//! A layer that is not cached yet is streamed: the tar reader gets the bytes as they arrive
//! while they are also written to the cache, so the analysis overlaps the download.
//!
//! Writing ([`push_layout`]): the blobs of an image in an OCI layout are uploaded (skipped when
//! the destination has them, mounted from another repository of the same registry when one is
//! named), and the manifest goes last, so a failed push never moves the tag.
//!
//! Requests that fail with 429, a 5xx or a connection error are retried a bounded number of
//! times with exponential backoff; redirects are followed at most 10 times.

mod auth;
mod blobs;
mod error;
mod manifest;
mod push;
mod sweep;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

pub use auth::AuthSource;
pub use error::RegistryError;
pub use push::{PushOptions, PushedImage, push_layout};

use crate::layout::{choose_platform, image_from_manifest};
use crate::{ImageSource, Platform, SourceError};
use blobs::{BlobCache, RegistryStore};
use error::{classify, root_cause, with_attempts};

/// Largest manifest or index accepted (the limit containerd and the distribution spec use).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;
const MAX_DEPTH: usize = 8;

pub(crate) const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT: [&str; 4] = [
    MT_OCI_MANIFEST,
    MT_OCI_INDEX,
    MT_DOCKER_MANIFEST,
    MT_DOCKER_LIST,
];

/// How to talk to registries. The binary sets these once from its flags
/// ([`set_registry_options`]); every `docker://` source and output uses them.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `USER:PASS` (`--creds`); otherwise the auth files and the Docker config are looked up.
    pub creds: Option<String>,
    /// `false` (`--tls-verify=false`): accept any certificate and fall back to plain HTTP.
    /// Loopback registries (`localhost`, `127.0.0.0/8`, `::1`) may always use plain HTTP,
    /// as Docker allows.
    pub tls_verify: bool,
    /// Extra CA certificates (PEM files `*.crt`, `*.pem` in this directory, as skopeo's
    /// `--cert-dir`); `/etc/containers/certs.d/HOST/` and `/etc/docker/certs.d/HOST/` are
    /// always read.
    pub cert_dir: Option<PathBuf>,
    /// The blob cache; `$XDG_CACHE_HOME/pare/blobs` or `~/.cache/pare/blobs` when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Read and connect timeout for each request.
    pub timeout: Duration,
    /// Attempts for a request that fails with 429/5xx or a connection error.
    pub attempts: u32,
    /// First backoff delay (doubled at each retry).
    pub backoff: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            creds: None,
            tls_verify: true,
            cert_dir: None,
            cache_dir: None,
            timeout: Duration::from_secs(60),
            attempts: 4,
            backoff: Duration::from_millis(250),
        }
    }
}

static OPTIONS: RwLock<Option<RegistryOptions>> = RwLock::new(None);

/// Sets the options every later `docker://` access uses.
pub fn set_registry_options(options: RegistryOptions) {
    *OPTIONS.write().unwrap_or_else(|e| e.into_inner()) = Some(options);
}

/// The options set by [`set_registry_options`], or the defaults.
pub fn registry_options() -> RegistryOptions {
    OPTIONS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// A connection to one repository of one registry.
pub(crate) struct Repo {
    pub(crate) client: Client,
    /// A reqwest client configured as `client`, for the bounded manifest GET
    /// (`manifest.rs`), and the scheme both use.
    http: reqwest::Client,
    scheme: &'static str,
    /// The Bearer token `client`'s `auth` got, if the registry wants one.
    token: Option<String>,
    pub(crate) reference: Reference,
    pub(crate) auth: RegistryAuth,
    pub(crate) options: RegistryOptions,
    /// The reference as the user wrote it (`docker://…`), for messages.
    pub(crate) display: String,
    pub(crate) runtime: Arc<tokio::runtime::Runtime>,
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.starts_with("127.") || h == "::1"
}

fn read_certs(dir: &std::path::Path, out: &mut Vec<Certificate>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "crt" || ext == "pem" {
            if let Ok(data) = std::fs::read(&p) {
                out.push(Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                });
            }
        }
    }
}

/// Whether the system trust store (what reqwest's verifier loads: `$SSL_CERT_FILE`,
/// `$SSL_CERT_DIR`, `/etc/ssl/certs`, …) holds at least one certificate. Checked once.
fn has_system_roots() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty())
}

fn install_crypto() {
    // reqwest is built without a bundled provider; pare uses ring everywhere.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn runtime() -> Result<Arc<tokio::runtime::Runtime>, RegistryError> {
    static RT: std::sync::OnceLock<Arc<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt.clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pare-registry")
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Runtime(e.to_string()))?;
    Ok(RT.get_or_init(|| Arc::new(rt)).clone())
}

impl Repo {
    /// Parses `name` (what follows `docker://`), resolves credentials and picks the scheme.
    pub(crate) fn connect(
        name: &str,
        options: RegistryOptions,
        op: RegistryOperation,
    ) -> Result<Repo, SourceError> {
        let display = format!("docker://{name}");
        let wrap = |source: RegistryError| SourceError::Registry {
            reference: display.clone(),
            source,
        };
        install_crypto();
        let reference: Reference = name
            .parse()
            .map_err(|e: oci_client::ParseError| wrap(RegistryError::Reference(e.to_string())))?;
        let host = reference.resolve_registry().to_string();
        let (auth, _source) =
            auth::resolve(reference.registry(), options.creds.as_deref()).map_err(wrap)?;
        let mut certs = Vec::new();
        for base in ["/etc/containers/certs.d", "/etc/docker/certs.d"] {
            read_certs(&std::path::Path::new(base).join(&host), &mut certs);
        }
        if let Some(dir) = &options.cert_dir {
            read_certs(dir, &mut certs);
        }
        let runtime = runtime().map_err(wrap)?;
        // reqwest (through oci-client, which builds a default client too) panics when the
        // system has no CA certificate at all: refuse cleanly instead.
        if !has_system_roots() {
            return Err(wrap(RegistryError::NoCaCertificates));
        }
        let transport = |e: &(dyn std::error::Error + 'static)| {
            wrap(RegistryError::Transport {
                message: root_cause(e),
                attempts: 1,
            })
        };
        let http = manifest::http_client(
            !options.tls_verify,
            &certs,
            options.timeout,
            options.timeout.min(Duration::from_secs(30)),
        )
        .map_err(|e| transport(&e))?;
        let make = |protocol: ClientProtocol| -> Result<Client, SourceError> {
            let config = ClientConfig {
                protocol,
                accept_invalid_certificates: !options.tls_verify,
                extra_root_certificates: certs.clone(),
                read_timeout: Some(options.timeout),
                connect_timeout: Some(options.timeout.min(Duration::from_secs(30))),
                use_monolithic_push: true,
                platform_resolver: None,
                ..Default::default()
            };
            Client::try_from(config).map_err(|e| transport(&e))
        };
        let https = make(ClientProtocol::Https)?;
        let mut repo = Repo {
            client: https,
            http,
            scheme: "https",
            token: None,
            reference,
            auth,
            options: options.clone(),
            display: display.clone(),
            runtime,
        };
        // Authenticate (or find out that none is needed); over plain HTTP when HTTPS does not
        // answer and plain HTTP is allowed. The HTTPS probe is not retried when plain HTTP
        // may follow: a plain registry would make every run wait for the backoff.
        let may_fall_back = !options.tls_verify || is_loopback(&host);
        if may_fall_back {
            repo.options.attempts = 1;
        }
        let probe = repo.authenticate(op);
        repo.options.attempts = options.attempts;
        match probe {
            Ok(token) => {
                repo.token = token;
                Ok(repo)
            }
            Err(SourceError::Registry {
                source: RegistryError::Transport { message, .. },
                ..
            }) if may_fall_back => {
                repo.client = make(ClientProtocol::Http)?;
                repo.scheme = "http";
                repo.token = repo.authenticate(op).map_err(|e| match e {
                    SourceError::Registry {
                        source:
                            RegistryError::Transport {
                                message: m2,
                                attempts,
                            },
                        reference,
                    } => SourceError::Registry {
                        reference,
                        source: RegistryError::Transport {
                            message: format!("https: {message}; http: {m2}"),
                            attempts,
                        },
                    },
                    e => e,
                })?;
                Ok(repo)
            }
            Err(e) => Err(e),
        }
    }

    /// Authenticates (or finds out that none is needed): the Bearer token, if any.
    fn authenticate(&self, op: RegistryOperation) -> Result<Option<String>, SourceError> {
        let client = &self.client;
        let reference = &self.reference;
        let auth = &self.auth;
        self.call(
            None,
            || async move { client.auth(reference, auth, op).await },
        )
    }

    pub(crate) fn err(&self, source: RegistryError) -> SourceError {
        SourceError::Registry {
            reference: self.display.clone(),
            source,
        }
    }

    /// Runs one request with the retry policy. `blob` names the blob for 404 messages.
    pub(crate) fn call<T, F, Fut>(&self, blob: Option<&str>, f: F) -> Result<T, SourceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        self.runtime.block_on(self.call_async(blob, f))
    }

    pub(crate) async fn call_async<T, F, Fut>(
        &self,
        blob: Option<&str>,
        f: F,
    ) -> Result<T, SourceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let attempts = self.options.attempts.max(1);
        let mut delay = self.options.backoff;
        let mut n = 0;
        loop {
            n += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let (err, retry) = classify(&e, blob);
                    if !retry || n >= attempts {
                        return Err(self.err(with_attempts(err, n)));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// This repository at `digest`.
    pub(crate) fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    /// Fetches a manifest or index by tag or digest: its bytes, digest and media type,
    /// refusing oversized ones and unknown media types.
    pub(crate) fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, String, &'static str), SourceError> {
        let (http, scheme, auth) = (&self.http, self.scheme, &self.auth);
        let token = self.token.as_deref();
        let fetched = self.call(None, || async move {
            manifest::get(http, scheme, reference, auth, token, &ACCEPT).await
        })?;
        let (bytes, header) = match fetched {
            manifest::Fetched::Body(bytes, header) => (bytes, header),
            manifest::Fetched::TooLarge(size) => {
                return Err(self.err(RegistryError::ManifestTooLarge { size }));
            }
        };
        let media_type = manifest_media_type(&bytes).map_err(|e| self.err(e))?;
        let actual = crate::sha256_digest(&bytes);
        // By digest: the bytes must hash to it. By tag: to the digest the registry named,
        // when it named one with the same algorithm.
        let want = reference
            .digest()
            .map(str::to_string)
            .or(header.filter(|h| h.starts_with("sha256:")));
        if let Some(want) = want {
            if actual != want {
                return Err(SourceError::DigestMismatch {
                    digest: want,
                    actual,
                });
            }
        }
        Ok((bytes, actual, media_type))
    }
}

/// The media type of a manifest document, from its `mediaType` field (or its shape when OCI
/// leaves the field out); unknown types and schema 1 are refused.
pub(crate) fn manifest_media_type(bytes: &[u8]) -> Result<&'static str, RegistryError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| RegistryError::Malformed {
            what: "manifest",
            message: String::new(),
            source: Some(Box::new(e)),
        })?;
    let declared = value.get("mediaType").and_then(|m| m.as_str());
    if let Some(mt) = declared {
        return ACCEPT.iter().find(|a| **a == mt).copied().ok_or_else(|| {
            RegistryError::UnsupportedMediaType {
                media_type: mt.to_string(),
            }
        });
    }
    if value.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(RegistryError::UnsupportedMediaType {
            media_type: "schema 1 (no mediaType, schemaVersion != 2)".into(),
        });
    }
    if value.get("manifests").is_some() {
        Ok(MT_OCI_INDEX)
    } else if value.get("layers").is_some() {
        Ok(MT_OCI_MANIFEST)
    } else {
        Err(RegistryError::UnsupportedMediaType {
            media_type: "(none: neither an index nor an image manifest)".into(),
        })
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == MT_OCI_INDEX || media_type == MT_DOCKER_LIST
}

/// Resolves `docker://NAME` to one image manifest for `platform`: `(digest, manifest)`.
pub(crate) fn resolve(
    repo: &Repo,
    platform: &Platform,
) -> Result<(String, ImageManifest), SourceError> {
    let mut reference = repo.reference.clone();
    for _ in 0..MAX_DEPTH {
        let (bytes, digest, media_type) = repo.fetch_manifest(&reference)?;
        let malformed = |what: &'static str, e: serde_json::Error| {
            repo.err(RegistryError::Malformed {
                what,
                message: String::new(),
                source: Some(Box::new(e)),
            })
        };
        if is_index(media_type) {
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| malformed("image index", e))?;
            let entries: Vec<Descriptor> = index.manifests().clone();
            let chosen = choose_platform(&entries, platform, &repo.display)?;
            reference = repo.at_digest(chosen.digest().as_ref());
        } else {
            let manifest: ImageManifest =
                serde_json::from_slice(&bytes).map_err(|e| malformed("image manifest", e))?;
            return Ok((digest, manifest));
        }
    }
    Err(repo.err(RegistryError::Malformed {
        what: "image index",
        message: format!("indexes nested more than {MAX_DEPTH} deep"),
        source: None,
    }))
}

/// Opens `docker://NAME` for reading.
pub(crate) fn open_registry(
    name: &str,
    platform: &Platform,
) -> Result<Box<dyn ImageSource>, SourceError> {
    let options = registry_options();
    let cache = BlobCache::new(options.cache_dir.clone())?;
    let repo = Arc::new(Repo::connect(name, options, RegistryOperation::Pull)?);
    let (digest, manifest) = resolve(&repo, platform)?;
    // oci-client verified the digest against the bytes, so it is a well-formed one.
    let digest = digest.parse().map_err(|e: oci_spec::OciSpecError| {
        repo.err(RegistryError::Malformed {
            what: "manifest digest",
            message: String::new(),
            source: Some(Box::new(e)),
        })
    })?;
    let display = repo.display.clone();
    let store = Arc::new(RegistryStore { repo, cache });
    Ok(Box::new(image_from_manifest(
        store,
        display,
        Some(digest),
        &manifest,
        "registry",
    )?))
}

/// The default blob cache directory.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pare").join("blobs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}"#).unwrap(),
            MT_DOCKER_MANIFEST
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            MT_OCI_INDEX
        );
        assert!(matches!(
            manifest_media_type(
                br#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#
            ),
            Err(RegistryError::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            manifest_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#),
            Err(RegistryError::UnsupportedMediaType { .. })
        ));
        assert!(manifest_media_type(b"not json").is_err());
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example:5000"));
    }
}
