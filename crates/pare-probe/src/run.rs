//! Running one probe against a container (HTTP, TCP, exec, protocol handshakes, the app's
//! own job) and a host command against its endpoints, and what each records.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pare_runtime::Container;

use crate::compare::describe;
use crate::ports::port_alive;
use crate::{ProbeError, ProbeOptions, ProbeOutcome, ProbeRecord, ProbeSpec, Protocol};
use crate::{digest, endpoint, host_header, http, links, proto};

/// Authorities that count as the app's own origin for container port `port` reached at `addr`.
pub(crate) fn origins(port: u16, https: bool, addr: SocketAddr) -> Vec<String> {
    let mut v = vec![
        host_header(port, https),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        addr.to_string(),
    ];
    if (port == 80 && !https) || (port == 443 && https) {
        v.push("127.0.0.1".into());
    }
    v
}

/// Headers kept in outcomes: they decide what a client does with the answer.
const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "content-encoding"];

fn http_outcome(
    resp: &http::Response,
    path: &str,
    port: u16,
    https: bool,
    addr: SocketAddr,
) -> ProbeOutcome {
    let mut headers = BTreeMap::new();
    for name in KEPT_HEADERS {
        if let Some(v) = resp.header(name) {
            let v = if name == "location" {
                // Strip our own origin so the host port chosen by the runtime does not matter;
                // relative targets are resolved against the request path.
                links::resolve(path, v, https, &origins(port, https, addr))
                    .unwrap_or_else(|| v.to_string())
            } else {
                v.trim().to_string()
            };
            headers.insert(name.to_string(), v);
        }
    }
    ProbeOutcome {
        http_status: Some(resp.status),
        headers,
        body_digest: Some(digest(&resp.body)),
        body_len: Some(resp.body.len() as u64),
        ..Default::default()
    }
}

pub(crate) fn error_outcome(e: impl std::fmt::Display) -> ProbeOutcome {
    ProbeOutcome {
        error: Some(e.to_string()),
        ..Default::default()
    }
}

/// Runs one HTTP request described by an `Http` spec and returns the raw response too.
pub(crate) fn http_probe(
    container: &dyn Container,
    spec: &ProbeSpec,
    opts: &ProbeOptions,
) -> (ProbeOutcome, Option<http::Response>) {
    let ProbeSpec::Http {
        port,
        method,
        path,
        headers,
        body,
        https,
        ..
    } = spec
    else {
        return (error_outcome("not an HTTP probe"), None);
    };
    let addr = match endpoint(container, *port) {
        Ok(a) => a,
        Err(e) => return (error_outcome(pare_progress::chain(&e)), None),
    };
    let host = host_header(*port, *https);
    let req = http::Request {
        method,
        path,
        host: &host,
        headers,
        body: body.as_deref().map(str::as_bytes),
        https: *https,
    };
    match http::request(addr, &req, opts.timeout) {
        Ok(resp) => (http_outcome(&resp, path, *port, *https, addr), Some(resp)),
        Err(e) => (error_outcome(pare_progress::chain(&e)), None),
    }
}

/// Runs one probe and records its outcome. Never fails: problems land in `outcome.error`.
pub fn run_probe(container: &dyn Container, spec: &ProbeSpec, opts: &ProbeOptions) -> ProbeRecord {
    use pare_progress::Progress;
    opts.progress.waiting(&match spec {
        ProbeSpec::Job => "the job to exit".to_string(),
        other => format!("the probe {}", describe(other)),
    });
    let start = Instant::now();
    let outcome = match spec {
        ProbeSpec::Http { .. } => http_probe(container, spec, opts).0,
        ProbeSpec::Tcp { port } => match endpoint(container, *port) {
            Ok(addr) => ProbeOutcome {
                connected: Some(port_alive(container, *port, addr, opts.timeout)),
                ..Default::default()
            },
            Err(e) => error_outcome(pare_progress::chain(&e)),
        },
        ProbeSpec::Exec { argv } => match container.exec(argv, opts.timeout) {
            Ok(out) => ProbeOutcome {
                exit_code: Some(out.exit_code),
                body_digest: Some(digest(&out.stdout)),
                body_len: Some(out.stdout.len() as u64),
                ..Default::default()
            },
            Err(e) => error_outcome(pare_progress::chain(&e)),
        },
        ProbeSpec::HostExec { command } => match host_exec(container, command, opts.timeout) {
            Ok((code, stdout)) => ProbeOutcome {
                exit_code: Some(code),
                body_digest: Some(digest(&stdout)),
                body_len: Some(stdout.len() as u64),
                ..Default::default()
            },
            Err(e) => error_outcome(pare_progress::chain(&e)),
        },
        ProbeSpec::Job => job_outcome(container, opts.job_timeout),
        ProbeSpec::Protocol { port, protocol } => {
            protocol_outcome(container, *port, *protocol, opts)
        }
    };
    ProbeRecord {
        spec: spec.clone(),
        outcome,
        millis: start.elapsed().as_millis() as u64,
    }
}

/// Waits for the container's own process to finish and records its exit code and stdout.
fn job_outcome(container: &dyn Container, timeout: Duration) -> ProbeOutcome {
    match container.wait(timeout) {
        Ok(Some(exit)) => {
            let stdout = container.logs().map(|(o, _)| o).unwrap_or_default();
            ProbeOutcome {
                exit_code: Some(exit.code),
                body_digest: Some(digest(&stdout)),
                body_len: Some(stdout.len() as u64),
                ..Default::default()
            }
        }
        Ok(None) => error_outcome(format!("still running after {}s", timeout.as_secs())),
        Err(e) => error_outcome(pare_progress::chain(&e)),
    }
}

/// Talks `protocol` to container port `port` and records the server's masked answer.
fn protocol_outcome(
    container: &dyn Container,
    port: u16,
    protocol: Protocol,
    opts: &ProbeOptions,
) -> ProbeOutcome {
    let addr = match endpoint(container, port) {
        Ok(a) => a,
        Err(e) => return error_outcome(pare_progress::chain(&e)),
    };
    // A server that says it is still starting gets asked again (for up to the probe timeout),
    // so the outcome is its answer once it serves, whenever the probe happened to run.
    match proto::handshake_when_serving(addr, protocol, opts.timeout, opts.timeout) {
        Ok(fields) => ProbeOutcome {
            fields,
            ..Default::default()
        },
        Err(e) => error_outcome(e.detail()),
    }
}

/// Runs a host command (`sh -c`) with `{host}` and `{port:N}` replaced by the endpoint of
/// container port N. Returns its exit code and stdout.
pub fn host_exec(
    container: &dyn Container,
    command: &str,
    timeout: Duration,
) -> Result<(i32, Vec<u8>), ProbeError> {
    let expanded = expand_host_command(command, &|p| container.endpoint(p))?;
    let err = |message: &str, source| ProbeError::HostExec {
        command: command.to_string(),
        message: message.to_string(),
        source,
    };
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&expanded)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| err("cannot start sh", Some(e)))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(http::MAX_BODY as u64).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child
            .try_wait()
            .map_err(|e| err("cannot wait for sh", Some(e)))?
        {
            Some(st) => break st,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let timed_out = format!("timed out after {}s", timeout.as_secs());
                return Err(err(&timed_out, None));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = reader.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok((code, out))
}

/// Replaces `{host}` with the IP of the endpoints (that of the first `{port:N}` named, else
/// `127.0.0.1`) and `{port:N}` with the host port of container port N. Other braces are kept.
pub fn expand_host_command(
    command: &str,
    endpoint: &dyn Fn(u16) -> Option<SocketAddr>,
) -> Result<String, ProbeError> {
    enum Tok<'a> {
        Text(&'a str),
        Host,
        Port(u16),
    }
    let mut toks = Vec::new();
    let mut rest = command;
    while let Some(i) = rest.find('{') {
        toks.push(Tok::Text(&rest[..i]));
        let tail = &rest[i..];
        let Some(end) = tail.find('}') else {
            rest = tail;
            break;
        };
        let token = &tail[1..end];
        if token == "host" {
            toks.push(Tok::Host);
        } else if let Some(n) = token.strip_prefix("port:") {
            let port: u16 = n.trim().parse().map_err(|_| ProbeError::HostExec {
                command: command.into(),
                message: format!("bad placeholder {{{token}}}"),
                source: None,
            })?;
            toks.push(Tok::Port(port));
        } else {
            toks.push(Tok::Text(&tail[..=end]));
        }
        rest = &tail[end + 1..];
    }
    toks.push(Tok::Text(rest));
    let mut ports = BTreeMap::new();
    let mut host = None;
    for t in &toks {
        if let Tok::Port(p) = t {
            let addr = endpoint(*p).ok_or(ProbeError::NoEndpoint { port: *p })?;
            host.get_or_insert_with(|| addr.ip().to_string());
            ports.insert(*p, addr.port());
        }
    }
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Text(s) => out.push_str(s),
            Tok::Host => out.push_str(&host),
            Tok::Port(p) => out.push_str(&ports.get(&p).copied().unwrap_or(p).to_string()),
        }
    }
    Ok(out)
}
