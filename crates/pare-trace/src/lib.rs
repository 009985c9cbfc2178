//! The trace model: what the sensor records inside the container ([`SensorReport`]), what a
//! probe asked and got back ([`ProbeSpec`], [`ProbeOutcome`]), and the whole [`Profile`] that
//! `pare profile` writes as `profile.json` and `pare build` reads.
//!
//! This crate has no dependencies but serde so that the static sensor can link it.
//! The JSON schema is documented in `docs/profile-json.md`; bump [`SCHEMA_VERSION`] on any
//! incompatible change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

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
    pub pid: i32,
    pub path: String,
    pub argv: Vec<String>,
}

/// How the traced program ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit status, or 128+signal when killed by a signal.
    pub code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// What the in-container sensor writes to `OUTPUT/sensor.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorReport {
    pub version: u32,
    /// The command that was run (ENTRYPOINT + CMD after resolution).
    pub command: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    /// Absolute, normalized paths (symlinks not resolved: each link in a chain is its own entry).
    pub files: BTreeMap<String, FileRecord>,
    pub execs: Vec<ExecRecord>,
    /// Names of the syscalls observed, e.g. `openat`.
    pub syscalls: BTreeSet<String>,
    /// Whether fanotify was active in addition to ptrace.
    pub fanotify: bool,
    /// Human-readable notices (e.g. "fanotify unavailable: EPERM; ptrace only").
    #[serde(default)]
    pub notices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
}

/// A probe to run against the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeSpec {
    Http {
        /// Container port.
        port: u16,
        #[serde(default = "default_method")]
        method: String,
        path: String,
        #[serde(default)]
        headers: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        #[serde(default)]
        https: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_status: Option<u16>,
    },
    Tcp {
        port: u16,
    },
    /// A command run inside the container.
    Exec {
        argv: Vec<String>,
    },
    /// A command run on the host with `{host}` and `{port:N}` substituted.
    HostExec {
        command: String,
    },
    /// The container's own run to completion.
    Job,
    /// A protocol handshake with a database or broker (`kind: protocol`), see [`Protocol`].
    Protocol {
        port: u16,
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
    pub http_status: Option<u16>,
    /// Headers that matter for equivalence (content-type, location…), lower-cased names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `sha256:…` of the response body or stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    pub volatile: Vec<String>,
}

/// A probe and its recorded answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub spec: ProbeSpec,
    pub outcome: ProbeOutcome,
    /// How long it took, in milliseconds (informational; never compared).
    #[serde(default)]
    pub millis: u64,
}

/// The image a profile was taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub reference: String,
    pub config_digest: String,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub workdir: String,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

/// `profile.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub version: u32,
    pub image: ImageInfo,
    /// `docker` or `embedded`.
    pub runtime: String,
    pub sensor: SensorReport,
    pub probes: Vec<ProbeRecord>,
    /// Readiness, findings and the app's state after the probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
}

/// How the app was doing at a point of the run (at the end of the probes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AppState {
    Running,
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
    /// `--ready-log REGEX`, `--ready-url URL`, `--ready-cmd CMD` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_url: Option<String>,
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
    pub novelty: u64,
    pub listens: u64,
}

impl SensorActivity {
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
mod activity_tests {
    use super::*;

    #[test]
    fn access_kind_display_is_its_json_name() {
        use AccessKind::*;
        for k in [
            Open, Write, Stat, Exec, Readlink, Chdir, Create, Delete, Modify, Watch, Socket,
            Fanotify,
        ] {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
    }

    #[test]
    fn activity_round_trips_and_rejects_garbage() {
        let a = SensorActivity {
            novelty: 42,
            listens: 2,
        };
        assert_eq!(SensorActivity::parse(&a.render()), Some(a));
        assert_eq!(SensorActivity::parse("novelty 1\n"), None);
        assert_eq!(SensorActivity::parse("novelty x\nlistens 1\n"), None);
        assert_eq!(SensorActivity::parse(""), None);
    }
}
