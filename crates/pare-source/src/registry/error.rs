//! What went wrong talking to a registry, and how an `oci-client` error is classified:
//! which failures are worth a retry, and the one line that names the cause.

use std::path::PathBuf;

use oci_client::errors::OciDistributionError;

use super::MAX_MANIFEST;

/// What went wrong talking to a registry. Wrapped in [`SourceError::Registry`](crate::SourceError::Registry), which names the
/// reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is not a valid `REGISTRY/NAME[:TAG|@DIGEST]` for the registry client; holds
    /// the parser's message.
    #[error("invalid reference: {0}")]
    Reference(String),
    /// `--creds` has no `:` or an empty user name.
    #[error("--creds must be USER:PASS")]
    BadCreds,
    /// An `auth.json` (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`) exists
    /// but cannot be read, is not JSON, or holds an entry that does not decode to
    /// `USER:PASS`. An absent file is skipped, not an error.
    #[error("{path}: {message}")]
    AuthFile {
        /// The auth file.
        path: PathBuf,
        /// What is wrong with it (never the secret).
        message: String,
    },
    /// Docker's credential helper (`credHelpers`/`credsStore`) failed for a reason other
    /// than "not found", which falls back to anonymous access.
    #[error("credential helper for {host}: {message}")]
    CredentialHelper {
        /// The registry host whose credentials were asked for.
        host: String,
        /// The helper's message.
        message: String,
    },
    /// HTTP 401 (or the registry's `UNAUTHORIZED` code): no credentials where some are
    /// needed, or wrong ones. Not retried.
    #[error("authentication required or credentials rejected (401)")]
    Unauthorized,
    /// The token server (the realm of the registry's `Bearer` challenge) would not issue a
    /// token, usually for wrong credentials; holds its reason on one line. Not retried, and
    /// not a reason to fall back to plain HTTP.
    #[error("the token server refused the credentials: {reason}")]
    TokenRefused {
        /// The token server's message (its `errors[0].message` or `details` when it sends
        /// JSON).
        reason: String,
    },
    /// HTTP 403 (or `DENIED`): the credentials are valid but lack access. Not retried.
    #[error("access denied (403)")]
    Denied,
    /// HTTP 404 for a manifest, or `MANIFEST_UNKNOWN`/`NAME_UNKNOWN`: no such repository or
    /// tag. Not retried.
    #[error("manifest not found (404)")]
    ManifestNotFound,
    /// HTTP 404 (or `BLOB_UNKNOWN`) for a blob the manifest references. Not retried.
    #[error("blob {digest} not found (404)")]
    BlobNotFound {
        /// `sha256:…` of the blob asked for.
        digest: String,
    },
    /// Any other HTTP error status; 429 and 5xx are retried, and this is the last one.
    #[error("HTTP {code}{}", retried(*.attempts))]
    Status {
        /// The HTTP status code.
        code: u16,
        /// How many requests were made in all (1 when not retried).
        attempts: u32,
        /// The first line of the registry's message.
        message: String,
    },
    /// The request did not get an HTTP answer (connection refused, TLS, timeout) or the
    /// registry's error code is not one of the above.
    #[error("{message}{}", retried(*.attempts))]
    Transport {
        /// The innermost cause, on one line. Kept as text on purpose: an HTTP client's
        /// chain repeats itself over five or six levels (request → hyper → io → TLS) and
        /// may hold an HTML body; `root_cause` keeps the one line worth reading, and
        /// `oci_client`'s error is borrowed by the retry loop's classification, not owned.
        message: String,
        /// How many requests were made in all (1 when not retried).
        attempts: u32,
    },
    /// The registry sent (or announced) a manifest over [`MAX_MANIFEST`] bytes; refused
    /// without reading past the limit.
    #[error("manifest is {}more than the {MAX_MANIFEST}-byte limit", announced(*.size))]
    ManifestTooLarge {
        /// The size its `Content-Length` announced; `None` when it had none (reading stopped
        /// at the limit).
        size: Option<u64>,
    },
    /// The manifest's media type is neither a Docker v2 schema 2 nor an OCI manifest or
    /// index (e.g. schema 1).
    #[error("unsupported manifest media type `{media_type}` (expected Docker v2 schema 2 or OCI)")]
    UnsupportedMediaType {
        /// The media type as the registry sent it.
        media_type: String,
    },
    /// A manifest, index or config from the registry does not parse, or indexes are nested
    /// too deep.
    #[error(
        "malformed {what}{}{message}",
        if message.is_empty() { "" } else { ": " }
    )]
    Malformed {
        /// Which document, e.g. `manifest` or `image index`.
        what: &'static str,
        /// The rule it breaks, in words (`indexes nested more than 8 deep`); empty when
        /// `source` says what is wrong.
        message: String,
        /// The parser's error, when the document does not parse.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The background async runtime the registry client runs on could not be started; holds
    /// the cause.
    #[error("{0}")]
    Runtime(String),
    /// No system CA certificates could be loaded: the client needs them even to talk plain
    /// HTTP, so nothing is attempted.
    #[error(
        "no CA certificates on this system (install ca-certificates, or set SSL_CERT_FILE); \
         they are needed even for plain-HTTP registries"
    )]
    NoCaCertificates,
}

fn announced(size: Option<u64>) -> String {
    size.map(|n| format!("{n} bytes, ")).unwrap_or_default()
}

fn retried(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// The first line of a server's message, bounded (error bodies may be HTML pages).
fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// The innermost cause of an error, one line.
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    let mut parts = vec![cur.to_string()];
    while let Some(next) = cur.source() {
        let s = next.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = next;
    }
    first_line(&parts.join(": "))
}

/// What a token server said when it refused: the message of a registry-style error envelope
/// (`{"errors":[{"code":…,"message":…}]}`) or of Docker Hub's `{"details":…}`, else the first
/// line of the body, else "no reason given".
fn token_server_reason(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = json.as_ref().and_then(|v| {
        let first = &v["errors"][0];
        first["message"]
            .as_str()
            .or(first["code"].as_str())
            .or(v["details"].as_str())
            .or(v["message"].as_str())
            .map(str::to_string)
    });
    let reason = first_line(&from_json.unwrap_or_else(|| body.to_string()));
    if reason.is_empty() {
        "no reason given".into()
    } else {
        reason
    }
}

/// Maps an oci-client error; `Err(retryable)` is returned for the retry loop.
pub(super) fn classify(e: &OciDistributionError, blob: Option<&str>) -> (RegistryError, bool) {
    use oci_client::errors::OciErrorCode as C;
    match e {
        OciDistributionError::UnauthorizedError { .. } => (RegistryError::Unauthorized, false),
        OciDistributionError::AuthenticationFailure(m) => (
            RegistryError::TokenRefused {
                reason: token_server_reason(m),
            },
            false,
        ),
        OciDistributionError::ImageManifestNotFoundError(_) => {
            (RegistryError::ManifestNotFound, false)
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(C::Unauthorized) => (RegistryError::Unauthorized, false),
                Some(C::Denied) => (RegistryError::Denied, false),
                Some(C::ManifestUnknown) | Some(C::NameUnknown) => {
                    (RegistryError::ManifestNotFound, false)
                }
                Some(C::NotFound) if blob.is_none() => (RegistryError::ManifestNotFound, false),
                Some(C::BlobUnknown) | Some(C::NotFound) => (
                    RegistryError::BlobNotFound {
                        digest: blob.unwrap_or("?").to_string(),
                    },
                    false,
                ),
                Some(C::Toomanyrequests) => (
                    RegistryError::Status {
                        code: 429,
                        attempts: 1,
                        message: "too many requests".into(),
                    },
                    true,
                ),
                _ => (
                    RegistryError::Transport {
                        message: first_line(&e.to_string()),
                        attempts: 1,
                    },
                    false,
                ),
            }
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let err = match (code, blob) {
                (401, _) => RegistryError::Unauthorized,
                (403, _) => RegistryError::Denied,
                (404, Some(d)) => RegistryError::BlobNotFound { digest: d.into() },
                (404, None) => RegistryError::ManifestNotFound,
                _ => RegistryError::Status {
                    code: *code,
                    attempts: 1,
                    message: first_line(message),
                },
            };
            (err, *code == 429 || *code >= 500)
        }
        OciDistributionError::RequestError(r) => {
            let retry = (r.is_connect() || r.is_timeout()) && !r.is_redirect();
            let message = if r.is_redirect() {
                "too many redirects (redirect loop?)".to_string()
            } else if r.is_timeout() {
                "timed out waiting for the registry".to_string()
            } else {
                root_cause(r)
            };
            (
                RegistryError::Transport {
                    message,
                    attempts: 1,
                },
                retry,
            )
        }
        other => (
            RegistryError::Transport {
                message: root_cause(other),
                attempts: 1,
            },
            false,
        ),
    }
}

pub(super) fn with_attempts(e: RegistryError, n: u32) -> RegistryError {
    match e {
        RegistryError::Status { code, message, .. } => RegistryError::Status {
            code,
            attempts: n,
            message,
        },
        RegistryError::Transport { message, .. } => RegistryError::Transport {
            message,
            attempts: n,
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_its_own_error_with_the_servers_reason() {
        let cases = [
            (
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong credentials"}]}"#,
                "wrong credentials",
            ),
            (
                r#"{"details":"incorrect username or password"}"#,
                "incorrect username or password",
            ),
            ("<html>\n<body>Forbidden</body>", "<html>"),
            ("", "no reason given"),
        ];
        for (body, reason) in cases {
            let e = OciDistributionError::AuthenticationFailure(body.into());
            let (err, retry) = classify(&e, None);
            assert!(!retry);
            // Not a transport error: that would make a loopback registry fall back to HTTP.
            assert!(
                matches!(&err, RegistryError::TokenRefused { reason: r } if r == reason),
                "{err:?}"
            );
        }
    }
}
