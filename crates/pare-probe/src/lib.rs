#![deny(missing_docs)]
//! HTTP/TCP/exec probes and their recorded answers.
//!
//! Probes reach the app through a [`Container`] (host-side endpoints for container ports, and
//! `exec`), so they work the same with every runtime. Each probe yields a [`ProbeOutcome`] that
//! keeps only stable facts (status, `content-type`, `location` with the origin stripped, body
//! digest and length, exit code, stdout digest), so that replaying the probes against a slim
//! image compares equal when the app behaves the same. Requests send `Host: localhost:PORT`
//! with the *container* port, so absolute links an app builds from `Host` do not depend on the
//! random host port a runtime picked.
//!
//! Modules: `run` runs one probe (and host commands), `ports` tells whether a port is up and
//! what answers on it, `crawl` follows an app's links, `compare` decides what a replay must
//! match; `http` is the HTTP/1.1 client (why hand-written: see there), `proto` the handshakes,
//! `ready` the readiness wait, `spec` the probe syntax.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pare_runtime::{Container, RuntimeError};
pub use pare_trace::{ExitInfo, ProbeOutcome, ProbeRecord, ProbeSpec, Protocol, VolatileField};
use sha2::{Digest, Sha256};

mod compare;
mod crawl;
pub mod http;
pub mod links;
mod ports;
pub mod proto;
mod ready;
mod run;
mod spec;

pub use compare::{
    Difference, Mismatch, Replay, check_expectation, compare, describe, describe_outcome,
    mark_volatile, mark_volatile_across, may_be_volatile, replay,
};
pub use crawl::crawl;
pub use ports::{PortKind, Readiness, classify_port, port_alive, port_list, wait_ready};
pub use run::{expand_host_command, host_exec, run_probe};

pub use ready::{Activity, ReadyPlan, ReadyReport, ReadySign, describe_exit, wait_until_ready};

pub use spec::{HttpFlag, exec_argv, parse_http_flag, parse_probe_file, parse_probes};

/// Errors of the probe machinery (a probe that gets a bad answer is not an error: it is
/// recorded in its outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// Connecting to, writing to or reading from the app failed.
    #[error("{addr}")]
    Io {
        /// The address the probe connected to.
        addr: SocketAddr,
        /// What the socket said.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake or session failed.
    #[error("{addr}: TLS")]
    Tls {
        /// The address the probe connected to.
        addr: SocketAddr,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// The port answered, but not with an HTTP response.
    #[error("{addr}: not an HTTP answer: {message}")]
    NotHttp {
        /// The address the probe connected to.
        addr: SocketAddr,
        /// What was wrong, in words, quoting the start of the answer.
        message: String,
    },
    /// The runtime gave no host address for a container port.
    #[error("container port {port} is not published by the runtime")]
    NoEndpoint {
        /// The container port.
        port: u16,
    },
    /// A probe file could not be read.
    #[error("{path}")]
    File {
        /// The probe file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A probe file is not YAML of a probe list's shape.
    #[error("{path}: not a probe list")]
    NotProbeList {
        /// The probe file.
        path: PathBuf,
        /// The YAML parser's error, with its line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// A probe of a probe file is not valid.
    #[error("{path}: {message}")]
    Spec {
        /// The probe file.
        path: PathBuf,
        /// What is wrong, in words, with the probe's number (`probe 2: needs a port`).
        message: String,
    },
    /// An `--http-probe` flag is not valid.
    #[error("--http-probe {flag:?}: {message}")]
    Flag {
        /// The flag's value as given.
        flag: String,
        /// What is wrong with it, in words.
        message: String,
    },
    /// A host command could not be run (or named a port that is not published).
    #[error("host command {command:?}: {message}")]
    HostExec {
        /// The command as given.
        command: String,
        /// Why it could not run, in words (`timed out after 5s`, `bad placeholder {port:x}`).
        message: String,
        /// The operating system's error, when starting or waiting for `sh` failed.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The runtime failed (e.g. an `exec` into the container).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Limits for probing.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Per request / per command.
    pub timeout: Duration,
    /// How many link levels below `/` the crawl follows.
    pub crawl_depth: usize,
    /// Most requests one crawl makes (per port).
    pub crawl_max: usize,
    /// How long a job may run before it counts as hung.
    pub job_timeout: Duration,
    /// Told which probe runs (or that a job's exit is awaited).
    pub progress: pare_progress::Reporter,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(10),
            crawl_depth: 3,
            crawl_max: 50,
            job_timeout: Duration::from_secs(60),
            progress: pare_progress::Reporter::default(),
        }
    }
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The `Host` header sent to container port `port`.
pub fn host_header(port: u16, https: bool) -> String {
    if (port == 80 && !https) || (port == 443 && https) {
        "localhost".into()
    } else {
        format!("localhost:{port}")
    }
}

fn endpoint(container: &dyn Container, port: u16) -> Result<SocketAddr, ProbeError> {
    container
        .endpoint(port)
        .ok_or(ProbeError::NoEndpoint { port })
}

/// Reads a probe file (YAML or JSON). See [`parse_probes`] for the format.
pub fn read_probe_file(path: &Path) -> Result<Vec<ProbeSpec>, ProbeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProbeError::File {
        path: path.into(),
        source: e,
    })?;
    parse_probe_file(&text, path)
}
