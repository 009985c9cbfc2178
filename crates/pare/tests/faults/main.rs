//! Faults during `pare build`, each with what it must leave behind:
//! - SIGKILL during an `--output` write: the previous output intact, no half-written image (and
//!   the dead process's temps swept by the next pare that writes there);
//! - a full disk (a small tmpfs as the output or as TMPDIR; needs root): a clear one-line error
//!   and no partial image;
//! - Ctrl-C on every event of a whole build (its work dir appearing, then each progress line:
//!   every phase's start, containers starting, waits), with both runtimes: no container,
//!   mount, temp dir, process or network left;
//! - the Docker daemon going away mid-build (a proxy socket in DOCKER_HOST that the test cuts;
//!   the shared daemon itself is never touched): a clear error, quickly;
//! - four builds of different images at once on one daemon: no collision, all verify.
//!
//! Needs dockerd, root and the example images (`scripts/testbed examples`): behind the
//! `docker-tests` feature.
#![cfg(feature = "docker-tests")]

use std::collections::BTreeMap;

use std::io::{Read, Write};

use std::os::unix::net::{UnixListener, UnixStream};

use std::path::{Path, PathBuf};

use std::process::{Child, Command, Output, Stdio};

use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

const SMALL: &str = "pare-example/musl-busybox";

/// The tests here watch the daemon's containers of the same images (and time their signals):
/// one at a time, so that one test's containers are never taken for another's leftovers.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[path = "../common/cli.rs"]
mod cli;
use cli::pare;
use pare_test_support::names::image as test_image;

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `pare: error: …` lines of a run's stderr.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("pare: error:"))
        .collect()
}

fn sigint(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    // The process may have finished on its own just before.
    let _ = ok;
}

/// Waits (bounded) for `child` to exit; returns its exit code (128 + signal when killed by
/// one) and its piped stderr.
fn wait_for(child: &mut Child, limit: Duration) -> (Option<i32>, String) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut stderr).unwrap();
            }
            // Killed by a signal (a Ctrl-C before pare's handler is installed, nothing made
            // yet) counts as 128 + the signal, the shell's convention.
            use std::os::unix::process::ExitStatusExt;
            return (status.code().or(status.signal().map(|s| 128 + s)), stderr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("pare did not exit within {limit:?}");
}

/// Every file under `root` (relative path → bytes), leaving out pare's `.pare-…` temps.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if root.is_file() {
        out.insert(PathBuf::new(), std::fs::read(root).unwrap());
        return out;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(".pare-") {
                continue;
            }
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// `.pare-PID-…` temps of process `pid` anywhere under `dir`.
fn temps_of(dir: &Path, pid: u32) -> Vec<PathBuf> {
    let prefix = format!(".pare-{pid}-");
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path());
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    found
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `pare build` of the small image into `spec`, which must succeed.
/// `pare-build-*` work dirs in the temp dir whose owner file names process `pid`.
fn work_dirs_of(pid: u32) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pare-build-"))
        .filter(|e| {
            let owner = std::fs::read_to_string(e.path().join("owner")).unwrap_or_default();
            // HOST/PIDNS:PID:STARTTIME
            owner.trim().rsplit(':').nth(1) == Some(pid.to_string().as_str())
        })
        .map(|e| e.path())
        .collect()
}

fn small_build_into(spec: &str, artifacts: &Path) {
    let o = pare()
        .args([
            "build",
            SMALL,
            "--no-verify",
            "--output",
            spec,
            "--artifacts",
        ])
        .arg(artifacts)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// A tmpfs of `size` mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs (needs root)");
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Asserts a failed run reports "no space" in one `pare: error:` line naming `place`.
fn assert_no_space(o: &Output, place: &Path) {
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let errs = error_lines(&stderr);
    assert_eq!(errs.len(), 1, "{stderr}");
    assert!(
        errs[0].contains("No space left on device") && errs[0].contains(&*place.to_string_lossy()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// What a build may leave behind, as seen from outside.
#[derive(Debug, PartialEq, Eq)]
struct Leftovers {
    temp: Vec<String>,
    containers: Vec<String>,
    mounts: usize,
    processes: Vec<String>,
    networks: Vec<String>,
}

fn leftovers(tmp: &Path, images: &[&str]) -> Leftovers {
    let tmp_s = tmp.to_string_lossy().into_owned();
    let temp = std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut containers = Vec::new();
    for img in images {
        let o = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("ancestor={img}"),
            "--format",
            "{{.ID}} {{.Names}}",
        ]);
        containers.extend(text(&o.stdout).lines().map(str::to_string));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&tmp_s))
        .count();
    // Processes whose root or working directory is under the temp dir (the embedded runtime's
    // sandboxed app, its keeper).
    let mut processes = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for link in ["root", "cwd"] {
            if let Ok(t) = std::fs::read_link(e.path().join(link))
                && t.to_string_lossy().starts_with(&tmp_s)
            {
                processes.push(format!("{name} {link} {}", t.display()));
            }
        }
    }
    let o = docker(&["network", "ls", "--format", "{{.Name}}"]);
    let networks = text(&o.stdout)
        .lines()
        // pare names what it creates `pare-<hex>` (other tools' `pare…_default` compose
        // networks on a shared daemon are not ours).
        .filter(|n| n.starts_with("pare-"))
        .map(str::to_string)
        .collect();
    Leftovers {
        temp,
        containers,
        mounts,
        processes,
        networks,
    }
}

fn nothing_left() -> Leftovers {
    Leftovers {
        temp: vec![],
        containers: vec![],
        mounts: 0,
        processes: vec![],
        networks: vec![],
    }
}

/// A unix-socket proxy to the real Docker daemon that the test can cut, as if dockerd died.
struct DaemonProxy {
    socket: PathBuf,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<UnixStream>>>,
    _dir: tempfile::TempDir,
}

impl DaemonProxy {
    fn start() -> DaemonProxy {
        let upstream = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let (cut2, streams2) = (cut.clone(), streams.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                {
                    let mut s = streams2.lock().unwrap();
                    s.push(client.try_clone().unwrap());
                    s.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        DaemonProxy {
            socket,
            cut,
            streams,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon "goes away": open connections are cut and the socket refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.socket);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

mod interrupts;
mod writes;
