//! The trace model: what the sensor records inside the container ([`SensorReport`]), what a
//! probe asked and got back ([`ProbeSpec`], [`ProbeOutcome`]), and the whole [`Profile`] that
//! `pare profile` writes as `profile.json` and `pare build` reads.
//!
//! This crate has no dependencies but serde so that the static sensor can link it.
//! The JSON schema is documented in `docs/profile-json.md`; bump [`SCHEMA_VERSION`] on any
//! incompatible change.

#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The version written into `profile.json` and `sensor.json` (`version`), for the schema
/// this crate describes.
pub const SCHEMA_VERSION: u32 = 1;

/// How a path was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    /// open/openat/openat2/creat (read side).
    Open,
    /// Opened for writing.
    Write,
    /// stat/lstat/newfstatat/statx/access/faccessat/statfs.
    Stat,
    /// execve/execveat target (and the interpreter the kernel loads).
    Exec,
    /// readlink/readlinkat, or a link followed while resolving.
    Readlink,
    /// chdir/fchdir.
    Chdir,
    /// Created during the run (mkdir, creat, O_CREAT, rename target, link, symlink, bind).
    Create,
    /// unlink/rmdir/rename source.
    Delete,
    /// chmod/chown/utime/truncate and similar metadata changes.
    Modify,
    /// inotify watches.
    Watch,
    /// unix-socket bind/connect.
    Socket,
    /// Seen by fanotify (open or access) without a matching syscall record.
    Fanotify,
}

impl AccessKind {
    /// The name, as in JSON: `open`, `exec`, `readlink`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Open => "open",
            AccessKind::Write => "write",
            AccessKind::Stat => "stat",
            AccessKind::Exec => "exec",
            AccessKind::Readlink => "readlink",
            AccessKind::Chdir => "chdir",
            AccessKind::Create => "create",
            AccessKind::Delete => "delete",
            AccessKind::Modify => "modify",
            AccessKind::Watch => "watch",
            AccessKind::Socket => "socket",
            AccessKind::Fanotify => "fanotify",
        }
    }
}

impl std::fmt::Display for AccessKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything known about one path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Every way the path was touched during the run.
    pub kinds: BTreeSet<AccessKind>,
    /// Executables (by path) of the processes that touched it.
    #[serde(default)]
    pub processes: BTreeSet<String>,
    /// Syscall names that touched it, e.g. `openat`.
    #[serde(default)]
    pub syscalls: BTreeSet<String>,
    /// True when at least one access succeeded (the path existed).
    #[serde(default)]
    pub found: bool,
    /// True when at least one access failed with ENOENT (probed but absent).
    #[serde(default)]
    pub missing: bool,
    /// When the path is a symlink: what it points to (the raw link text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<String>,
}

/// One successful exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    /// The process ID (in the container's PID namespace) that called exec.
    pub pid: i32,
    /// The executable's path as the exec call named it (lossy UTF-8).
    pub path: String,
    /// The arguments the program got, `argv[0]` first.
    pub argv: Vec<String>,
}

/// How the traced program ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit status, or 128+signal when killed by a signal.
    pub code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The signal's name (`SIGTERM`, `SIGKILL`) when a signal ended it.
    pub signal: Option<String>,
}

/// Syscalls the sensor lets the app make without stopping it: its seccomp filter allows them
/// instead of handing them to the tracer. They name no path, and apps make them by the hundred
/// thousand (an Erlang VM's schedulers: `futex`, `sched_yield`, `read`, `write`), each stop
/// costing two context switches. They are never listed in [`SensorReport::syscalls`], in
/// either tracing mode, so both modes report the same; the seccomp profile pare writes allows
/// every one of them anyway (pare-profile's `RUNTIME_BASELINE`, which a test there checks).
pub const UNTRACED_SYSCALLS: &[&str] = &[
    "close",
    "epoll_pwait",
    "futex",
    "getpid",
    "gettid",
    "madvise",
    "mprotect",
    "munmap",
    "nanosleep",
    "pread64",
    "read",
    "rt_sigprocmask",
    "sched_yield",
    "write",
];

/// What the in-container sensor writes to `OUTPUT/sensor.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorReport {
    /// The schema version the sensor wrote ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// The command that was run (ENTRYPOINT + CMD after resolution).
    pub command: Vec<String>,
    /// The user ID the command ran as, after applying the image's USER.
    pub uid: u32,
    /// The group ID the command ran as.
    pub gid: u32,
    /// Absolute, normalized paths (symlinks not resolved: each link in a chain is its own entry).
    pub files: BTreeMap<String, FileRecord>,
    /// Every successful exec, in the order they happened.
    pub execs: Vec<ExecRecord>,
    /// Names of the syscalls observed, e.g. `openat`; never those of [`UNTRACED_SYSCALLS`].
    pub syscalls: BTreeSet<String>,
    /// Whether fanotify was active in addition to ptrace.
    pub fanotify: bool,
    /// Human-readable notices (e.g. "fanotify unavailable: EPERM; ptrace only").
    #[serde(default)]
    pub notices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// How the traced command ended; `None` when the sensor was stopped before it did.
    pub exit: Option<ExitInfo>,
}

/// A probe to run against the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeSpec {
    /// An HTTP(S) request to a container port.
    Http {
        /// Container port.
        port: u16,
        #[serde(default = "default_method")]
        /// The request method; `GET` when omitted.
        method: String,
        /// The request target, starting with `/` (may hold a query string).
        path: String,
        #[serde(default)]
        /// Extra request headers, as (name, value) pairs, sent in order.
        headers: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// The request body, sent as is.
        body: Option<String>,
        #[serde(default)]
        /// Speak TLS (the server's certificate is not checked: it is the app's own).
        https: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// The status the user expects; another status makes the probe fail (checked at profile
        /// time, independent of replay comparison).
        expect_status: Option<u16>,
    },
    /// Connect to a container TCP port and see whether it answers.
    Tcp {
        /// Container port.
        port: u16,
    },
    /// A command run inside the container.
    Exec {
        /// The command and its arguments, run without a shell.
        argv: Vec<String>,
    },
    /// A command run on the host with `{host}` and `{port:N}` substituted.
    HostExec {
        /// The command line, run by the host's shell after substitution.
        command: String,
    },
    /// The container's own run to completion.
    Job,
    /// A protocol handshake with a database or broker (`kind: protocol`), see [`Protocol`].
    Protocol {
        /// Container port.
        port: u16,
        /// Which handshake to speak.
        protocol: Protocol,
    },
}

/// A wire protocol whose handshake a probe speaks: enough of it to get the server's own
/// answer (greeting, authentication request, error class), never a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RESP: `PING`, then `INFO server`.
    Redis,
    /// PostgreSQL: `SSLRequest`, then a `StartupMessage`.
    Postgres,
    /// MySQL/MariaDB: the server's initial handshake packet.
    Mysql,
    /// AMQP 0-9-1: the protocol header, answered by `Connection.Start`.
    Amqp,
}

impl Protocol {
    /// Every protocol, in declaration order (for listing and trying them).
    pub const ALL: [Protocol; 4] = [
        Protocol::Redis,
        Protocol::Postgres,
        Protocol::Mysql,
        Protocol::Amqp,
    ];

    /// The lower-case name used in probe files and output: `redis`, `postgres`, `mysql`, `amqp`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Redis => "redis",
            Protocol::Postgres => "postgres",
            Protocol::Mysql => "mysql",
            Protocol::Amqp => "amqp",
        }
    }

    /// The port the protocol is usually served on.
    pub fn default_port(self) -> Option<u16> {
        Some(match self {
            Protocol::Redis => 6379,
            Protocol::Postgres => 5432,
            Protocol::Mysql => 3306,
            Protocol::Amqp => 5672,
        })
    }

    /// The protocol usually served on `port` (a hint only: classification still talks to it).
    pub fn for_port(port: u16) -> Option<Protocol> {
        match port {
            6379 | 6380 => Some(Protocol::Redis),
            5432 | 5433 => Some(Protocol::Postgres),
            3306 | 3307 => Some(Protocol::Mysql),
            5672 => Some(Protocol::Amqp),
            _ => None,
        }
    }
}

impl ProbeSpec {
    /// The container port a network probe talks to (`None` for exec, host-exec and jobs).
    pub fn port(&self) -> Option<u16> {
        match self {
            ProbeSpec::Http { port, .. }
            | ProbeSpec::Tcp { port }
            | ProbeSpec::Protocol { port, .. } => Some(*port),
            _ => None,
        }
    }
}

fn default_method() -> String {
    "GET".into()
}

/// What a probe got back. Only stable facts are kept, so that replays compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The HTTP status code, for HTTP probes that got a response.
    pub http_status: Option<u16>,
    /// Headers that matter for equivalence (content-type, location…), lower-cased names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `sha256:…` of the response body or stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Length in bytes of the response body or stdout.
    pub body_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The exit status of an exec, host-exec or job probe.
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// For TCP probes: whether the app accepts connections on the port (a proxy that
    /// accepts and hangs up at once, with nothing listening inside, does not count).
    pub connected: Option<bool>,
    /// What a protocol probe learned from the server's answer (`redis.version`,
    /// `postgres.auth`…), with per-connection values (salts, ids, keys) left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Error text when the probe could not run at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Fields seen to change between two identical requests while profiling (e.g. `body` for
    /// a page that prints the time). Replays do not compare them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volatile: Vec<VolatileField>,
}

/// A field of a [`ProbeOutcome`] that may legitimately change between two identical
/// requests: the body or a kept header. Status, exit code, connectivity and errors never
/// are. In JSON (`profile.json`) it is the text a replay names the field by: `"body"` or
/// `"header:NAME"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VolatileField {
    /// The body (HTTP) or stdout (exec): its digest and length.
    Body,
    /// A kept response header, by its lower-case name.
    Header(String),
}

impl VolatileField {
    /// The field a replay names `field` (`body`, `header:NAME`), when it may be volatile;
    /// `None` for the fields that never are (`status`, `exit_code`, `connected`, `error`…).
    pub fn parse(field: &str) -> Option<Self> {
        match field {
            "body" => Some(Self::Body),
            _ => field
                .strip_prefix("header:")
                .map(|name| Self::Header(name.to_string())),
        }
    }

    /// `fields` as a reader sees them: `body, header:content-type`.
    pub fn join(fields: &[Self]) -> String {
        fields
            .iter()
            .map(Self::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for VolatileField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Body => f.write_str("body"),
            Self::Header(name) => write!(f, "header:{name}"),
        }
    }
}

impl PartialEq<str> for VolatileField {
    fn eq(&self, other: &str) -> bool {
        match self {
            Self::Body => other == "body",
            Self::Header(name) => other.strip_prefix("header:") == Some(name.as_str()),
        }
    }
}

impl PartialEq<&str> for VolatileField {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for VolatileField {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl Serialize for VolatileField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VolatileField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} cannot be volatile (only \"body\" and \"header:NAME\")"
            ))
        })
    }
}

/// A probe and its recorded answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The probe as run.
    pub spec: ProbeSpec,
    /// What it got back (its stable facts).
    pub outcome: ProbeOutcome,
    /// How long it took, in milliseconds (informational; never compared).
    #[serde(default)]
    pub millis: u64,
}

/// The image a profile was taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The image reference as given to `pare profile`.
    pub reference: String,
    /// `sha256:…` of the image's config blob (Docker's image ID).
    pub config_digest: String,
    #[serde(default)]
    /// ENTRYPOINT as run: the image's, or a service override's.
    pub entrypoint: Vec<String>,
    #[serde(default)]
    /// CMD as run: the image's, or a service override's.
    pub cmd: Vec<String>,
    #[serde(default)]
    /// USER as run; empty for the runtime's default (root).
    pub user: String,
    #[serde(default)]
    /// WORKDIR as run; empty for `/`.
    pub workdir: String,
    #[serde(default)]
    /// EXPOSEd ports as written in the config (`8080/tcp`), sorted.
    pub exposed_ports: Vec<String>,
}

/// `profile.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The schema version it was written with ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// The image the profile was taken from, and how it ran.
    pub image: ImageInfo,
    /// `docker` or `embedded`.
    pub runtime: String,
    /// What the sensor recorded: files, execs, syscalls, and how the app ended.
    pub sensor: SensorReport,
    /// The probes run and their answers, in order; verification replays these.
    pub probes: Vec<ProbeRecord>,
    /// Readiness, findings and the app's state after the probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
}

/// How the app was doing at a point of the run (at the end of the probes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AppState {
    /// The app's process was still running.
    Running,
    /// The app's process had exited, with this status.
    Exited(ExitInfo),
}

/// How the profiled run got ready and what it showed beyond the probes (absent in profiles
/// written before it existed). Verification replays this too: it waits for the same ports
/// the same way, and compares [`after_probes`](Self::after_probes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// How readiness was decided, in words (printed by profile and build).
    pub readiness: String,
    /// Milliseconds from the start until ready.
    #[serde(default)]
    pub ready_millis: u64,
    /// Ports that answered, with what answered: `http`, `https`, `tcp` (a protocol answer or
    /// a hang-up) or `listening` (accepted, never said anything while the app was idle).
    #[serde(default)]
    pub ports: BTreeMap<u16, String>,
    /// EXPOSEd ports nothing listened on once the app was idle (`80/tcp`). Not probed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unused_exposed: Vec<String>,
    /// Findings for the user (`EXPOSE 80/tcp: nothing listens`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Ports the user declared not to answer (`--expect-closed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_closed: Vec<u16>,
    /// The user declared the image a job (`--job`): it may exit before any port answers.
    #[serde(default)]
    pub job: bool,
    /// `--ready-log REGEX` as given: ready when a line of the app's output matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_log: Option<String>,
    /// `--ready-url URL` as given: ready when `GET URL` answers below 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_url: Option<String>,
    /// `--ready-cmd CMD` as given: ready when the command, run in the container, exits 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_cmd: Option<String>,
    /// Whether the app still ran when the probes ended (compared by verification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_probes: Option<AppState>,
}

/// The file (in the sensor's output dir) where the sensor keeps a live count of what the app
/// does, so that the readiness wait can tell a busy app from an idle one.
pub const ACTIVITY_FILE: &str = "activity";

/// The sensor's live counters (`ACTIVITY_FILE`): `novelty N` grows whenever the app does
/// something new (a new path, syscall name or exec), `listens N` counts its `listen()` calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SensorActivity {
    /// Grows by one for each new path, syscall name or exec the app shows.
    pub novelty: u64,
    /// How many `listen()` calls the app made.
    pub listens: u64,
}

impl SensorActivity {
    /// The file's text: `novelty N` and `listens N`, one per line.
    pub fn render(&self) -> String {
        format!("novelty {}\nlistens {}\n", self.novelty, self.listens)
    }

    /// Parses [`render`](Self::render)'s output; `None` when a line is missing or malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let mut novelty = None;
        let mut listens = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("novelty", n)) => novelty = n.trim().parse().ok(),
                Some(("listens", n)) => listens = n.trim().parse().ok(),
                _ => {}
            }
        }
        Some(SensorActivity {
            novelty: novelty?,
            listens: listens?,
        })
    }
}

#[cfg(test)]
mod tests;
