//! pare-sensor: the static in-container tracer. See crates/pare-sensor/README.md.
//!
//! `pare-sensor --output DIR [--user USER] [--workdir DIR] [--no-fanotify] [--grace SECS] -- CMD...`
//! runs CMD as the image's USER under ptrace (+ fanotify when allowed), acts as PID 1 (signal
//! forwarding, zombie reaping), writes `DIR/sensor.json` and exits with the app's exit code.

mod args;
mod child;
mod error;
mod fanotify;
mod filter;
mod paths;
mod recorder;
#[allow(unsafe_code)]
mod sys;
mod syscalls;
mod tracer;

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::Pid;
use pare_trace::{AccessKind, ExitInfo, SCHEMA_VERSION, SensorReport};

use crate::args::Args;
use crate::child::{ChildPlan, start_child};
use crate::error::SensorError;
use crate::tracer::{Shared, Tracer};

/// Signals forwarded to the app's main process.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn main() {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pare-sensor: {}", pare_progress::chain(&e));
            std::process::exit(2);
        }
    };
    let mut report = SensorReport {
        version: SCHEMA_VERSION,
        command: args
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        ..SensorReport::default()
    };
    // A bug must still end in a report and exit code 2, never in a bare abort.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&args, &mut report)));
    let code = match result {
        Ok(Ok(code)) => code,
        Err(_) => {
            eprintln!("pare-sensor: internal error (see the panic message above)");
            report
                .notices
                .push("sensor internal error (panic); the trace is incomplete".into());
            2
        }
        Ok(Err(e)) => {
            eprintln!("pare-sensor: {}", pare_progress::chain(&e));
            report
                .notices
                .push(format!("sensor error: {}", pare_progress::chain(&e)));
            match e {
                SensorError::Command { code, .. } => code,
                _ => 2,
            }
        }
    };
    if let Err(e) = write_report(&args.output, &report) {
        eprintln!("pare-sensor: {}", pare_progress::chain(&e));
        std::process::exit(2);
    }
    std::process::exit(code);
}

/// Writes `dir/sensor.json` atomically (temp file + rename).
fn write_report(dir: &Path, report: &SensorReport) -> Result<(), SensorError> {
    let io = |path: PathBuf| move |source| SensorError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let tmp = dir.join(format!(".sensor.json.{}.tmp", std::process::id()));
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(&tmp, json).map_err(io(tmp.clone()))?;
    let dst = dir.join("sensor.json");
    std::fs::rename(&tmp, &dst).map_err(io(dst))
}

fn read_or_empty(path: &str) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// PATH lookup with the app's PATH, like execvp but done here (static binary, no shell).
fn find_program(cmd: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, SensorError> {
    use std::os::unix::fs::PermissionsExt;
    let name = cmd.to_string_lossy().into_owned();
    let err = |reason: &str, code| SensorError::Command {
        command: name.clone(),
        reason: reason.into(),
        code,
    };
    if cmd.is_empty() {
        return Err(err("empty command", 127));
    }
    if cmd.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(cmd));
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut not_exec = None;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let cand = Path::new(OsStr::from_bytes(dir)).join(cmd);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            not_exec.get_or_insert(cand);
        }
    }
    match not_exec {
        Some(_) => Err(err("permission denied", 126)),
        None => Err(err("executable file not found in $PATH", 127)),
    }
}

fn cstring(b: &[u8], what: &str) -> Result<CString, SensorError> {
    CString::new(b).map_err(|_| SensorError::Usage(format!("{what} contains a NUL byte")))
}

fn run(args: &Args, report: &mut SensorReport) -> Result<i32, SensorError> {
    let t0 = Instant::now();
    let me = nix::unistd::getpid();
    let pid1 = me.as_raw() == 1;
    if !pid1 {
        // Orphans of the app re-parent to us, as they would to a container's PID 1.
        if let Err(e) = sys::become_subreaper() {
            report.notices.push(format!("PR_SET_CHILD_SUBREAPER: {e}"));
        }
    }
    if std::fs::read_link("/proc/self/exe").is_err() {
        report.notices.push(
            "/proc is not mounted: relative and dirfd paths cannot be resolved and are not recorded".into(),
        );
    }
    std::fs::create_dir_all(&args.output).map_err(|source| SensorError::Io {
        path: args.output.clone(),
        source,
    })?;
    // Fail now, not after the run, when the report cannot be written.
    let probe = args.output.join(format!(".sensor-probe.{}", me.as_raw()));
    std::fs::write(&probe, b"").map_err(|source| SensorError::Io {
        path: probe.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&probe);

    // USER, HOME, WORKDIR, PATH lookup.
    let passwd = read_or_empty("/etc/passwd");
    let creds = match &args.user {
        Some(spec) => Some(
            pare_user::resolve(spec, &passwd, &read_or_empty("/etc/group")).map_err(|e| {
                SensorError::User {
                    spec: spec.clone(),
                    reason: e.to_string(),
                }
            })?,
        ),
        None => None,
    };
    let (uid, gid) = match &creds {
        Some(c) => (c.uid, c.gid),
        None => (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ),
    };
    report.uid = uid;
    report.gid = gid;
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    if args.home_from_user {
        // The runtime started the sensor as root (HOME=/root); the app gets its own HOME.
        env.retain(|(k, _)| k != "HOME");
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        let home = creds
            .as_ref()
            .map(|c| c.home.clone())
            .or_else(|| pare_user::home_of(uid, &passwd))
            .unwrap_or_else(|| "/".into());
        env.push(("HOME".into(), home.into()));
    }
    let workdir = match &args.workdir {
        Some(w) => {
            if !Path::new(w).is_dir() {
                std::fs::create_dir_all(w).map_err(|source| SensorError::Io {
                    path: w.into(),
                    source,
                })?;
                report.notices.push(format!("created missing WORKDIR {w}"));
            }
            Some(cstring(w.as_bytes(), "--workdir")?)
        }
        None => None,
    };
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str());
    let cmd0 = args
        .command
        .first()
        .ok_or_else(|| SensorError::Usage("no command".into()))?;
    // Relative program paths are relative to WORKDIR, as for docker.
    let mut program = find_program(cmd0, path_var)?;
    if program.is_relative() {
        if let Some(w) = &args.workdir {
            program = Path::new(w).join(program);
        }
    }
    let plan = ChildPlan {
        program: cstring(program.as_os_str().as_bytes(), "command")?,
        argv: args
            .command
            .iter()
            .map(|a| cstring(a.as_bytes(), "argument"))
            .collect::<Result<_, _>>()?,
        envp: env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                cstring(&kv, "environment")
            })
            .collect::<Result<_, _>>()?,
        creds,
        workdir,
        seccomp: args
            .seccomp
            .then(|| filter::program(&filter::untraced_numbers())),
    };

    // Signals: blocked in every thread, taken by a sigwait thread, forwarded to the app.
    let shared = Arc::new(Shared::default());
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    for s in FORWARDED {
        // A handler (never run: the signals stay blocked) keeps PID 1 from dropping them.
        sys::keep_with_noop_handler(s);
    }
    sys::default_disposition(Signal::SIGCHLD);
    set.thread_block()
        .map_err(|e| SensorError::sys("sigprocmask", e))?;
    spawn_signal_thread(set, shared.clone(), args.grace);

    // fanotify before the app starts, so that its first opens are seen.
    let fan = if args.fanotify {
        // Not PID 1 (e.g. tests on a host): fanotify sees the whole machine, so only events of
        // traced pids are kept.
        match fanotify::start(if pid1 { None } else { Some(shared.clone()) }) {
            Ok(h) => Some(h),
            Err(e) => {
                report
                    .notices
                    .push(format!("fanotify unavailable ({e}); ptrace only"));
                None
            }
        }
    } else {
        report
            .notices
            .push("fanotify disabled (--no-fanotify); ptrace only".into());
        None
    };

    spawn_activity_writer(&args.output, shared.clone());
    let child = start_child(&plan, &set)?;
    shared.main_pid.store(child.as_raw(), Ordering::SeqCst);
    shared.main_alive.store(true, Ordering::SeqCst);
    let early = shared.early_signal.swap(0, Ordering::SeqCst);
    if let Ok(sig) = Signal::try_from(early) {
        // Raised again now that there is an app to forward it to.
        let _ = signal::kill(me, sig);
    }
    let mut tracer = Tracer::new(child.as_raw(), shared.clone());
    let exit: ExitInfo = tracer.run();

    let fan_result = fan.map(fanotify::FanHandle::finish);
    report.files = std::mem::take(&mut tracer.rec.files);
    if let Some(spec) = &args.user {
        record_user_lookup(report, spec);
    }
    report.execs = std::mem::take(&mut tracer.execs);
    report.syscalls = tracer.syscall_names().collect();
    report.notices.append(&mut tracer.notices);
    if report.syscalls.contains("io_uring_setup") {
        report.notices.push(
            "the app uses io_uring: file operations submitted through it bypass ptrace (fanotify still sees opens)"
                .into(),
        );
    }
    report.fanotify = fan_result.is_some();
    let mut fan_events = 0;
    if let Some(fr) = fan_result {
        fan_events = fr.events;
        if fr.overflowed {
            report
                .notices
                .push("fanotify queue overflowed: some events were lost".into());
        }
        report.notices.extend(fr.errors);
        for (path, fp) in fr.paths {
            let rec = report.files.entry(path).or_default();
            if !rec.found {
                rec.kinds.insert(AccessKind::Fanotify);
                if fp.exec {
                    rec.kinds.insert(AccessKind::Exec);
                }
                rec.found = true;
            }
            rec.processes.extend(fp.processes);
        }
    }
    report.notices.push(format!(
        "ptrace ({} mode): {} syscall stops, {} processes/threads, {} files; fanotify: {} events; {} ms",
        if tracer.seccomp { "seccomp" } else { "syscall" },
        tracer.stops,
        tracer.processes,
        report.files.len(),
        fan_events,
        t0.elapsed().as_millis()
    ));
    let code = exit.code;
    report.exit = Some(exit);
    Ok(code)
}

/// A USER given by name is resolved by the container runtime from the image's `/etc/passwd` (and
/// `/etc/group`), as the sensor did here: the image needs those files even if the app never opens
/// them. Recorded with the sensor as the process. Numeric users need neither.
fn record_user_lookup(report: &mut SensorReport, spec: &str) {
    let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
    let named = |s: &str| !s.is_empty() && s.parse::<u32>().is_err();
    let me = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (needed, path) in [
        (named(user), "/etc/passwd"),
        (named(user) || named(group), "/etc/group"),
    ] {
        if !needed {
            continue;
        }
        let rec = report.files.entry(path.to_string()).or_default();
        rec.kinds.insert(AccessKind::Open);
        if Path::new(path).exists() {
            rec.found = true;
        } else {
            rec.missing = true;
        }
        if !me.is_empty() {
            rec.processes.insert(me.clone());
        }
    }
}

/// Keeps `OUTPUT/activity` (see `pare_trace::SensorActivity`) current: rewritten (temp file
/// + rename) at most every 100 ms, only when a count changed.
fn spawn_activity_writer(dir: &Path, shared: Arc<Shared>) {
    let path = dir.join(pare_trace::ACTIVITY_FILE);
    let tmp = dir.join(format!(".{}.tmp", pare_trace::ACTIVITY_FILE));
    let _ = std::thread::Builder::new()
        .name("activity".into())
        .spawn(move || {
            let mut last = None;
            loop {
                let now = pare_trace::SensorActivity {
                    novelty: shared.novelty.load(Ordering::Relaxed),
                    listens: shared.listens.load(Ordering::Relaxed),
                };
                if last != Some(now)
                    && std::fs::write(&tmp, now.render()).is_ok()
                    && std::fs::rename(&tmp, &path).is_ok()
                {
                    last = Some(now);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
}

fn spawn_signal_thread(set: SigSet, shared: Arc<Shared>, grace: std::time::Duration) {
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut killer_started = false;
        loop {
            let Ok(sig) = set.wait() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            let pid = shared.main_pid.load(Ordering::SeqCst);
            if pid <= 0 {
                shared.early_signal.store(sig as i32, Ordering::SeqCst);
                continue;
            }
            if !shared.main_alive.load(Ordering::SeqCst) {
                continue;
            }
            let _ = signal::kill(Pid::from_raw(pid), sig);
            if sig == Signal::SIGTERM && !killer_started {
                killer_started = true;
                let shared = shared.clone();
                let _ = std::thread::Builder::new().name("grace".into()).spawn(move || {
                    std::thread::sleep(grace);
                    if shared.main_alive.load(Ordering::SeqCst) {
                        eprintln!("pare-sensor: app still running {:?} after SIGTERM; sending SIGKILL", grace);
                        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                });
            }
        }
    });
}
