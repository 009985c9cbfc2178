//! The manifest GET, read with a bound: oci-client reads a whole response body into memory
//! before anything can look at its size, so a registry (or anything in between) that sends
//! an endless manifest would take all the memory. This request goes through a reqwest client
//! configured as oci-client's (the same certificates, verification and timeouts), with the
//! credentials oci-client's `auth` settled on (its Bearer token, or basic auth), refuses a
//! `Content-Length` over [`MAX_MANIFEST`] without reading, and stops reading one byte past
//! it otherwise. Errors come back as oci-client errors, so they are classified and retried
//! like every other request.

use oci_client::Reference;
use oci_client::client::Certificate;
use oci_client::errors::{OciDistributionError, OciEnvelope};
use oci_client::secrets::RegistryAuth;

use super::MAX_MANIFEST;

/// What a bounded manifest GET gave.
pub(crate) enum Fetched {
    /// The body (at most [`MAX_MANIFEST`] bytes) and the `Docker-Content-Digest` header.
    Body(Vec<u8>, Option<String>),
    /// The body is larger than [`MAX_MANIFEST`]: its announced size when it had one.
    TooLarge(Option<u64>),
}

/// A reqwest client configured as oci-client's.
pub(crate) fn http_client(
    accept_invalid_certificates: bool,
    certs: &[Certificate],
    read_timeout: std::time::Duration,
    connect_timeout: std::time::Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut roots = Vec::new();
    for c in certs {
        roots.push(reqwest::Certificate::from_pem(&c.data)?);
    }
    reqwest::Client::builder()
        .danger_accept_invalid_certs(accept_invalid_certificates)
        .tls_certs_merge(roots)
        .read_timeout(read_timeout)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("pare/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// GETs the manifest `reference` names over `scheme`, sending `token` (a Bearer token) or
/// else `auth`'s basic credentials.
pub(crate) async fn get(
    http: &reqwest::Client,
    scheme: &str,
    reference: &Reference,
    auth: &RegistryAuth,
    token: Option<&str>,
    accept: &[&str],
) -> Result<Fetched, OciDistributionError> {
    let target = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_string();
    let url = format!(
        "{scheme}://{}/v2/{}/manifests/{target}",
        reference.resolve_registry(),
        reference.repository()
    );
    let mut req = http.get(&url).header("Accept", accept.join(", "));
    match (token, auth) {
        (Some(t), _) => req = req.bearer_auth(t),
        (None, RegistryAuth::Basic(user, pass)) => req = req.basic_auth(user, Some(pass)),
        _ => {}
    }
    let mut res = req.send().await?;
    let status = res.status();
    let announced = res.content_length();
    if !status.is_success() {
        let body = read_bounded(&mut res, 64 * 1024).await?.unwrap_or_default();
        let text = String::from_utf8_lossy(&body).to_string();
        if let Ok(envelope) = serde_json::from_str::<OciEnvelope>(&text) {
            if !envelope.errors.is_empty() {
                return Err(OciDistributionError::RegistryError { envelope, url });
            }
        }
        return Err(OciDistributionError::ServerError {
            code: status.as_u16(),
            url,
            message: text,
        });
    }
    if announced.is_some_and(|n| n > MAX_MANIFEST as u64) {
        return Ok(Fetched::TooLarge(announced));
    }
    let digest = res
        .headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(match read_bounded(&mut res, MAX_MANIFEST).await? {
        Some(body) => Fetched::Body(body, digest),
        None => Fetched::TooLarge(None),
    })
}

/// The body if it has at most `limit` bytes; `None` as soon as it has more (the rest is
/// never read: the connection is dropped).
async fn read_bounded(
    res: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
