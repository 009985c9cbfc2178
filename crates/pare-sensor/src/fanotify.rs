//! fanotify on the root mount, in a thread: catches opens the ptrace decoder could miss (and
//! processes that are not traced, such as `docker exec` probes). Without FID reporting, which
//! fails on overlayfs: each event carries an fd whose path is read from `/proc/self/fd`.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::tracer::Shared;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};

use crate::paths::lossy;

#[derive(Debug, Default)]
pub struct FanPath {
    pub exec: bool,
    pub processes: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct FanResult {
    pub paths: HashMap<String, FanPath>,
    /// Events kept (after dropping the sensor's own and, off PID 1, untraced processes').
    pub events: u64,
    pub overflowed: bool,
    pub errors: Vec<String>,
}

pub struct FanHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<FanResult>,
}

impl FanHandle {
    /// Stops the thread after it has drained the events queued so far.
    pub fn finish(self) -> FanResult {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_else(|_| FanResult {
            errors: vec!["fanotify thread panicked".into()],
            ..FanResult::default()
        })
    }
}

/// Starts watching. `only_pids`: when set, events from other processes are ignored (used when
/// the sensor is not the PID 1 of its own namespace, e.g. in tests on a host).
pub fn start(only_pids: Option<Arc<Shared>>) -> Result<FanHandle, String> {
    let fan = Fanotify::init(
        InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK,
        EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
    )
    .map_err(|e| format!("fanotify_init: {e}"))?;
    let full = MaskFlags::FAN_OPEN | MaskFlags::FAN_ACCESS | MaskFlags::FAN_OPEN_EXEC;
    let mut last = Errno::UnknownErrno;
    let mut marked = false;
    'outer: for how in [MarkFlags::FAN_MARK_MOUNT, MarkFlags::FAN_MARK_FILESYSTEM] {
        // FAN_OPEN_EXEC needs Linux 5.0; retry without it.
        for mask in [full, MaskFlags::FAN_OPEN | MaskFlags::FAN_ACCESS] {
            match fan.mark(
                MarkFlags::FAN_MARK_ADD | how,
                mask,
                nix::fcntl::AT_FDCWD,
                Some("/"),
            ) {
                Ok(()) => {
                    marked = true;
                    break 'outer;
                }
                Err(e) => last = e,
            }
        }
    }
    if !marked {
        return Err(format!("fanotify_mark /: {last}"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("fanotify".into())
        .spawn(move || run(fan, stop2, only_pids))
        .map_err(|e| format!("fanotify thread: {e}"))?;
    Ok(FanHandle { stop, thread })
}

fn run(fan: Fanotify, stop: Arc<AtomicBool>, only_pids: Option<Arc<Shared>>) -> FanResult {
    let me = std::process::id() as i32;
    let mut res = FanResult::default();
    let mut exes: HashMap<i32, String> = HashMap::new();
    let mut drain_until: Option<std::time::Instant> = None;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if stopping {
            // Events of the app's last accesses are queued before its exit was reported: drain
            // what is queued now, but do not chase a busy filesystem (other processes) forever.
            let until = *drain_until.get_or_insert_with(|| {
                std::time::Instant::now() + std::time::Duration::from_millis(100)
            });
            if std::time::Instant::now() > until {
                break;
            }
        }
        let ready = {
            let mut fds = [PollFd::new(fan.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::from(if stopping { 0u16 } else { 100u16 }),
            ) {
                Ok(n) => n > 0,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    res.errors.push(format!("poll: {e}"));
                    break;
                }
            }
        };
        if !ready {
            if stopping {
                break;
            }
            continue;
        }
        loop {
            if drain_until.is_some_and(|u| std::time::Instant::now() > u) {
                break;
            }
            let events = match fan.read_events() {
                Ok(ev) if ev.is_empty() => break,
                Ok(ev) => ev,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => break,
                Err(e) => {
                    res.errors.push(format!("read fanotify: {e}"));
                    return res;
                }
            };
            for ev in events {
                let mask = ev.mask();
                if mask.contains(MaskFlags::FAN_Q_OVERFLOW) {
                    res.overflowed = true;
                    continue;
                }
                let pid = ev.pid();
                if pid == me || pid <= 0 {
                    continue;
                }
                if let Some(only) = &only_pids {
                    if !only.pids.lock().map(|s| s.contains(&pid)).unwrap_or(false) {
                        continue;
                    }
                }
                let Some(fd) = ev.fd() else { continue };
                let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                else {
                    continue;
                };
                let bytes = target.as_os_str().as_bytes();
                if bytes.first() != Some(&b'/') || bytes.ends_with(b" (deleted)") {
                    continue;
                }
                let exe = match exes.get(&pid) {
                    Some(e) => e.clone(),
                    None => {
                        let e = std::fs::read_link(format!("/proc/{pid}/exe"))
                            .map(|p| lossy(p.as_os_str().as_bytes()))
                            .unwrap_or_default();
                        // Runtime helpers (runc init for `docker exec`) run a binary from outside
                        // the container root: no useful name, and it changes at their exec.
                        let e = if e.len() > 1 && e.starts_with('/') && !e.ends_with(" (deleted)") {
                            e
                        } else {
                            String::new()
                        };
                        if !e.is_empty() {
                            exes.insert(pid, e.clone());
                        }
                        e
                    }
                };
                res.events += 1;
                let entry = res.paths.entry(lossy(bytes)).or_default();
                if mask.contains(MaskFlags::FAN_OPEN_EXEC) {
                    entry.exec = true;
                    // The process is exec'ing: its exe changes.
                    exes.remove(&pid);
                }
                if !exe.is_empty() && !entry.processes.contains(&exe) {
                    entry.processes.insert(exe);
                }
            }
        }
    }
    res
}
