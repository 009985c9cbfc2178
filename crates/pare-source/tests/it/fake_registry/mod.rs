//! A small in-process registry for the faults a real one cannot produce. It serves one OCI
//! layout (tags from `org.opencontainers.image.ref.name`, manifests and blobs by digest),
//! accepts pushes into memory, and misbehaves as [`Fault`] says. HTTP/1.1, one thread per
//! connection, `Connection: close`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Fault {
    None,
    /// Every repository request answers this status.
    All(u16),
    ManifestStatus(u16),
    BlobStatus(u16),
    /// The first `n` blob GETs answer `code`, then the blob is served.
    FlakyBlob {
        code: u16,
        n: usize,
    },
    /// One byte of every layer blob is changed.
    CorruptBlob,
    /// Layer blobs announce their full length and stop halfway.
    TruncateBlob,
    /// Layer blobs send half, then nothing for a minute.
    StallBlob,
    /// Blob GETs redirect to themselves.
    RedirectLoop,
    /// The manifest served for the tag is this document instead.
    Manifest(Vec<u8>),
    /// The manifest for the tag never ends: a JSON start, then padding for up to 1 GiB, with
    /// `Content-Length: 1 GiB` when `announce`, else until the connection closes.
    EndlessManifest {
        announce: bool,
    },
    /// Blob uploads fail with 500.
    FailUpload,
}

pub struct FakeRegistry {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Manifests pushed, by tag or digest.
    pub pushed_manifests: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// Manifest body bytes written to clients (by [`Fault::EndlessManifest`]).
    pub manifest_bytes_sent: Arc<AtomicUsize>,
}

struct State {
    layout: PathBuf,
    fault: Fault,
    blob_gets: AtomicUsize,
    uploads: Mutex<HashMap<String, Vec<u8>>>,
    requests: Arc<Mutex<Vec<String>>>,
    pushed: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    manifest_bytes_sent: Arc<AtomicUsize>,
}

impl FakeRegistry {
    pub fn start(layout: &Path, fault: Fault) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let pushed = Arc::new(Mutex::new(HashMap::new()));
        let sent = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            manifest_bytes_sent: sent.clone(),
            layout: layout.to_path_buf(),
            fault,
            blob_gets: AtomicUsize::new(0),
            uploads: Mutex::new(HashMap::new()),
            requests: requests.clone(),
            pushed: pushed.clone(),
        });
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &state);
                });
            }
        });
        FakeRegistry {
            addr,
            requests,
            pushed_manifests: pushed,
            manifest_bytes_sent: sent,
        }
    }
}

fn reply(
    conn: &mut TcpStream,
    code: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {code} X\r\nConnection: close\r\n");
    let has_len = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

/// [`Fault::EndlessManifest`]: writes until the client hangs up or 1 GiB went, counting.
fn endless_manifest(
    conn: &mut TcpStream,
    announce: bool,
    sent: &AtomicUsize,
) -> std::io::Result<()> {
    const GIB: usize = 1 << 30;
    let mut head = "HTTP/1.1 200 OK\r\nConnection: close\r\n".to_string();
    head.push_str("Content-Type: application/vnd.oci.image.manifest.v1+json\r\n");
    if announce {
        head.push_str(&format!("Content-Length: {GIB}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    let start = br#"{"schemaVersion":2,"annotations":{"pad":""#;
    conn.write_all(start)?;
    let pad = vec![b'x'; 64 * 1024];
    let mut total = start.len();
    while total < GIB {
        conn.write_all(&pad)?;
        total += pad.len();
        sent.fetch_add(pad.len(), Ordering::Relaxed);
    }
    conn.flush()
}

fn error_body(code: &str) -> Vec<u8> {
    format!(r#"{{"errors":[{{"code":"{code}","message":"fake","detail":null}}]}}"#).into_bytes()
}

fn status_reply(conn: &mut TcpStream, code: u16) -> std::io::Result<()> {
    let (name, ct) = match code {
        401 => ("UNAUTHORIZED", true),
        403 => ("DENIED", true),
        404 => ("NOT_FOUND", true),
        429 => ("TOOMANYREQUESTS", true),
        _ => ("", false),
    };
    let mut headers = Vec::new();
    if code == 401 {
        headers.push(("WWW-Authenticate", "Basic realm=\"fake\"".to_string()));
    }
    if ct {
        headers.push(("Content-Type", "application/json".to_string()));
        reply(conn, code, &headers, &error_body(name))
    } else {
        reply(conn, code, &headers, b"fake failure")
    }
}

fn media_type_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into())
}

fn sha256(bytes: &[u8]) -> String {
    pare_source::sha256_digest(bytes)
}

fn handle(mut conn: TcpStream, st: &State) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(()); // a TLS hello or garbage: hang up
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut content_length = 0usize;
    // `Range: bytes=0-` (how pare asks for blobs) is answered with 206, as distribution does.
    let mut whole_range = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("range") && v.trim() == "bytes=0-" {
                whole_range = true;
            }
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    st.requests.lock().unwrap().push(format!("{method} {path}"));
    if path == "/v2/" {
        return reply(&mut conn, 200, &[], b"{}");
    }
    if let Fault::All(code) = st.fault {
        return status_reply(&mut conn, code);
    }
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    if let Some((_repo, reference)) = rest.rsplit_once("/manifests/") {
        if method == "PUT" {
            let digest = sha256(&body);
            let mut pushed = st.pushed.lock().unwrap();
            pushed.insert(reference.to_string(), body.clone());
            pushed.insert(digest.clone(), body);
            return reply(
                &mut conn,
                201,
                &[
                    ("Location", format!("/v2/{_repo}/manifests/{digest}")),
                    ("Docker-Content-Digest", digest),
                ],
                b"",
            );
        }
        if let Fault::ManifestStatus(code) = st.fault {
            return status_reply(&mut conn, code);
        }
        if let (Fault::EndlessManifest { announce }, "GET") = (&st.fault, method.as_str()) {
            return endless_manifest(&mut conn, *announce, &st.manifest_bytes_sent);
        }
        let bytes = if let Some(hex) = reference.strip_prefix("sha256:") {
            std::fs::read(st.layout.join("blobs/sha256").join(hex)).ok()
        } else if let Fault::Manifest(doc) = &st.fault {
            Some(doc.clone())
        } else {
            tagged_manifest(&st.layout, reference)
        };
        let Some(bytes) = bytes else {
            return status_reply(&mut conn, 404);
        };
        let headers = [
            ("Content-Type", media_type_of(&bytes)),
            ("Docker-Content-Digest", sha256(&bytes)),
        ];
        let body: &[u8] = if method == "HEAD" { b"" } else { &bytes };
        if method == "HEAD" {
            let mut h = headers.to_vec();
            h.push(("Content-Length", bytes.len().to_string()));
            return reply(&mut conn, 200, &h, body);
        }
        return reply(&mut conn, 200, &headers, body);
    }
    if let Some((repo, tail)) = rest.split_once("/blobs/") {
        if tail.starts_with("uploads") {
            if st.fault == Fault::FailUpload {
                return status_reply(&mut conn, 500);
            }
            if method == "POST" {
                return reply(
                    &mut conn,
                    202,
                    &[
                        ("Location", format!("/v2/{repo}/blobs/uploads/u1")),
                        ("Range", "0-0".into()),
                    ],
                    b"",
                );
            }
            // PUT …/uploads/u1?digest=… with the whole blob (monolithic).
            let digest = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("digest="))
                .unwrap_or("")
                .replace("%3A", ":");
            st.uploads.lock().unwrap().insert(digest.clone(), body);
            return reply(
                &mut conn,
                201,
                &[
                    ("Location", format!("/v2/{repo}/blobs/{digest}")),
                    ("Docker-Content-Digest", digest),
                ],
                b"",
            );
        }
        let digest = tail.to_string();
        let uploaded = st.uploads.lock().unwrap().get(&digest).cloned();
        let stored = digest
            .strip_prefix("sha256:")
            .and_then(|h| std::fs::read(st.layout.join("blobs/sha256").join(h)).ok());
        let Some(mut bytes) = uploaded.or(stored) else {
            return status_reply(&mut conn, 404);
        };
        if method == "HEAD" {
            return reply(
                &mut conn,
                200,
                &[("Content-Length", bytes.len().to_string())],
                b"",
            );
        }
        let n = st.blob_gets.fetch_add(1, Ordering::SeqCst);
        let is_layer = bytes.len() > 600 || !bytes.starts_with(b"{");
        match &st.fault {
            Fault::BlobStatus(code) => return status_reply(&mut conn, *code),
            Fault::FlakyBlob { code, n: fails } if n < *fails => {
                return status_reply(&mut conn, *code);
            }
            Fault::RedirectLoop => {
                return reply(&mut conn, 307, &[("Location", path.to_string())], b"");
            }
            Fault::CorruptBlob if is_layer => {
                let last = bytes.len() - 1;
                bytes[last] ^= 0xff;
            }
            Fault::TruncateBlob if is_layer => {
                let half = bytes.len() / 2;
                let h = [("Content-Length", bytes.len().to_string())];
                let mut head = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    h[0].1
                );
                head.push_str("");
                conn.write_all(head.as_bytes())?;
                conn.write_all(&bytes[..half])?;
                conn.flush()?;
                return conn.shutdown(std::net::Shutdown::Both);
            }
            Fault::StallBlob if is_layer => {
                let half = bytes.len() / 2;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                );
                conn.write_all(head.as_bytes())?;
                conn.write_all(&bytes[..half])?;
                conn.flush()?;
                std::thread::sleep(Duration::from_secs(60));
                return Ok(());
            }
            _ => {}
        }
        if whole_range && !bytes.is_empty() {
            let len = bytes.len();
            return reply(
                &mut conn,
                206,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", format!("bytes 0-{}/{len}", len - 1)),
                ],
                &bytes,
            );
        }
        return reply(
            &mut conn,
            200,
            &[("Content-Type", "application/octet-stream".into())],
            &bytes,
        );
    }
    status_reply(&mut conn, 404)
}

/// The manifest (or index) tagged `tag` in the layout's `index.json`.
fn tagged_manifest(layout: &Path, tag: &str) -> Option<Vec<u8>> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).ok()?).ok()?;
    let entries = index.get("manifests")?.as_array()?;
    let entry = entries.iter().find(|e| {
        e.pointer("/annotations/org.opencontainers.image.ref.name")
            .and_then(|n| n.as_str())
            .is_some_and(|n| n == tag || n.ends_with(&format!(":{tag}")))
    })?;
    let digest = entry.get("digest")?.as_str()?;
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:")?),
    )
    .ok()
}
