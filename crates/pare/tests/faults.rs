//! Faults during `pare build`, each with what it must leave behind:
//! - SIGKILL during an `--output` write: the previous output intact, no half-written image (and
//!   the dead process's temps swept by the next pare that writes there);
//! - a full disk (a small tmpfs as the output or as TMPDIR; needs root): a clear one-line error
//!   and no partial image;
//! - Ctrl-C at spread-out random points of whole builds (so in every phase), repeated, with both
//!   runtimes: no container, mount, temp dir, process or network left;
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

fn pare() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("pare"))
}

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

#[test]
fn kill_9_during_an_output_write_keeps_the_previous_output() {
    let _serial = serial();
    let work = tempfile::tempdir().unwrap();
    for (kind, name) in [("docker-archive", "slim.tar"), ("oci", "slim-layout")] {
        let target = work.path().join(name);
        let spec = format!("{kind}:{}:slim", target.display());
        let art = tempfile::tempdir().unwrap();
        // The previous output: the small image's slim build.
        small_build_into(&spec, art.path());
        let before = snapshot(&target);
        assert!(!before.is_empty());

        // A big build into the same output, killed while it writes the layer.
        let art2 = tempfile::tempdir().unwrap();
        let mut child = pare()
            .args([
                "build",
                "pare-example/jdk",
                "--no-verify",
                "--output",
                &spec,
            ])
            .arg("--artifacts")
            .arg(art2.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let t = Instant::now();
        let mut seen = Vec::new();
        while t.elapsed() < Duration::from_secs(300) {
            seen = temps_of(work.path(), pid);
            if !seen.is_empty() || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            !seen.is_empty(),
            "{kind}: never saw the output being written"
        );
        std::thread::sleep(Duration::from_millis(100));
        child.kill().unwrap();
        child.wait().unwrap();

        // Every file of the previous output is still there, byte for byte; anything new is
        // a complete content-addressed blob (never a partial file under a final name).
        let after = snapshot(&target);
        for (p, bytes) in &before {
            assert!(
                after.get(p) == Some(bytes),
                "{kind}: {} changed or vanished after SIGKILL",
                p.display()
            );
        }
        for (p, bytes) in &after {
            if before.contains_key(p) {
                continue;
            }
            assert!(
                p.starts_with("blobs/sha256")
                    && p.file_name().unwrap().to_string_lossy() == hex_sha256(bytes),
                "{kind}: new file {} is not a complete blob",
                p.display()
            );
        }
        let o = pare()
            .args(["xray", "--format", "json", &spec])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", text(&o.stderr));

        // The next pare writing there sweeps the dead one's temps (once they sat idle).
        assert!(!temps_of(work.path(), pid).is_empty());
        std::thread::sleep(Duration::from_secs(6));
        small_build_into(&spec, art.path());
        assert!(
            temps_of(work.path(), pid).is_empty(),
            "{kind}: the killed pare's temps were not swept: {:?}",
            temps_of(work.path(), pid)
        );
    }
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

#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn a_full_disk_gives_a_clear_error_and_no_partial_image() {
    let _serial = serial();
    let image = "pare-example/python-web";
    // The output on a full filesystem.
    let out = Tmpfs::new("2m");
    let art = tempfile::tempdir().unwrap();
    for spec in [
        format!("docker-archive:{}/slim.tar", out.path().display()),
        format!("oci:{}/layout:slim", out.path().display()),
    ] {
        let o = pare()
            .args([
                "build",
                image,
                "--no-verify",
                "--output",
                &spec,
                "--artifacts",
            ])
            .arg(art.path())
            .output()
            .unwrap();
        assert_no_space(&o, out.path());
        assert!(out.entries().is_empty(), "{spec}: left {:?}", out.entries());
    }
    // TMPDIR (the work dir: extracted files, the layer for `docker load`) on a full filesystem.
    let tmp = Tmpfs::new("2m");
    let tag = "pare-test/faults-full-disk:slim";
    let o = pare()
        .args(["build", image, "--no-verify", "--tag", tag, "--artifacts"])
        .arg(art.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_no_space(&o, tmp.path());
    assert!(tmp.entries().is_empty(), "TMPDIR: left {:?}", tmp.entries());
    let inspect = docker(&["image", "inspect", tag]);
    assert!(
        !inspect.status.success(),
        "a partial image was loaded as {tag}"
    );
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

/// A small xorshift generator seeded from the clock (printed, so a failure can be replayed
/// with PARE_TEST_SEED).
fn rng() -> impl FnMut() -> f64 {
    let seed = std::env::var("PARE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("PARE_TEST_SEED={seed}");
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn ctrl_c_at_random_points_of_every_phase_leaves_nothing_behind() {
    let _serial = serial();
    let mut next = rng();
    const RUNS: u32 = 8;
    for runtime in ["docker", "embedded"] {
        let tag = format!("pare-test/faults-ctrl-c:{runtime}");
        let build = |tmp: &Path, art: &Path| {
            let mut c = pare();
            c.args(["build", SMALL, "--runtime", runtime, "--tag", &tag])
                .arg("--artifacts")
                .arg(art)
                .env("TMPDIR", tmp)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        };
        // How long a whole build takes: the interrupts are spread over it.
        let (tmp, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let t = Instant::now();
        let o = build(tmp.path(), art.path()).output().unwrap();
        let full = t.elapsed();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let _ = docker(&["rmi", "-f", &tag]);
        let mut phases_hit = Vec::new();
        for i in 0..RUNS {
            let at = full.mul_f64((f64::from(i) + next()) / f64::from(RUNS));
            let (tmp, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut child = build(tmp.path(), art.path()).spawn().unwrap();
            std::thread::sleep(at);
            sigint(&child);
            let (code, stderr) = wait_for(&mut child, Duration::from_secs(60));
            // The phase that was running: the last progress line naming one.
            let phase = stderr
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("pare build: "))
                .and_then(|l| l.split(':').next())
                .unwrap_or("start")
                .to_string();
            phases_hit.push(format!("{:.2}s→{phase}({code:?})", at.as_secs_f64()));
            assert!(
                code == Some(130) || code == Some(0),
                "{runtime} run {i} at {at:?}: exit {code:?}\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            let left = leftovers(tmp.path(), &[SMALL, &tag]);
            let _ = docker(&["rmi", "-f", &tag]);
            assert_eq!(
                left,
                nothing_left(),
                "{runtime} run {i}, interrupted at {at:?} (in {phase}): left behind"
            );
            assert!(
                temps_of(art.path(), child.id()).is_empty(),
                "temps in the artifacts dir"
            );
        }
        eprintln!("{runtime}: full build {full:?}; interrupted {phases_hit:?}");
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

#[test]
fn dockerd_going_away_mid_build_gives_a_clear_error() {
    let _serial = serial();
    let proxy = DaemonProxy::start();
    let tag = "pare-test/faults-dockerd-gone:slim";
    let art = tempfile::tempdir().unwrap();
    let before: Vec<String> = leftovers(art.path(), &[SMALL]).containers;
    let mut child = pare()
        .args(["build", SMALL, "--runtime", "docker", "--tag", tag])
        .arg("--artifacts")
        .arg(art.path())
        .env("DOCKER_HOST", proxy.host())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cut once the profile container runs (seen through the real daemon): mid-profile.
    let t = Instant::now();
    let mut started = Vec::new();
    while t.elapsed() < Duration::from_secs(60) && started.is_empty() {
        let o = docker(&[
            "ps",
            "--filter",
            &format!("ancestor={SMALL}"),
            "--filter",
            "status=running",
            "--format",
            "{{.ID}} {{.Names}}",
        ]);
        started = text(&o.stdout)
            .lines()
            .filter(|c| !before.iter().any(|b| b == c))
            .map(str::to_string)
            .collect();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!started.is_empty(), "the profile container never started");
    proxy.cut();
    let cut_at = Instant::now();
    let (code, stderr) = wait_for(&mut child, Duration::from_secs(120));
    let took = cut_at.elapsed();
    // The container pare could no longer remove (its daemon was gone) is ours to clean up.
    for c in leftovers(art.path(), &[SMALL]).containers {
        if !before.contains(&c) {
            let id = c.split(' ').next().unwrap_or_default().to_string();
            let _ = docker(&["rm", "-f", &id]);
        }
    }
    let _ = docker(&["rmi", "-f", tag]);
    assert_eq!(code, Some(2), "{stderr}");
    let errs = error_lines(&stderr);
    assert_eq!(errs.len(), 1, "{stderr}");
    assert!(
        errs[0].to_lowercase().contains("docker") && errs[0].contains(&proxy.host()),
        "the error should name the daemon it lost: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        took < Duration::from_secs(60),
        "pare took {took:?} to notice"
    );
    eprintln!("after {took:?}: {}", errs[0]);
}

#[test]
fn four_builds_at_once_do_not_collide_and_all_verify() {
    let _serial = serial();
    let images = ["musl-busybox", "shell-entrypoint", "go-server", "cli-job"];
    // One shared TMPDIR and working directory, separate artifacts and tags.
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, String, tempfile::TempDir, Child)> = images
        .iter()
        .map(|name| {
            let tag = format!("pare-test/faults-concurrent-{name}:slim");
            let art = tempfile::tempdir().unwrap();
            let child = pare()
                .args(["build", &format!("pare-example/{name}"), "--tag", &tag])
                .args(["--timeout", "180", "--artifacts"])
                .arg(art.path())
                .env("TMPDIR", tmp.path())
                .current_dir(cwd.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (*name, tag, art, child)
        })
        .collect();
    let mut digests = Vec::new();
    let mut failures = Vec::new();
    for (name, tag, art, child) in runs {
        let o = child.wait_with_output().unwrap();
        let report: serde_json::Value = std::fs::read(art.path().join("report.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let id = text(&docker(&["image", "inspect", "-f", "{{.Id}}", &tag]).stdout);
        let _ = docker(&["rmi", "-f", &tag]);
        if o.status.code() != Some(0) || !text(&o.stdout).contains("verification (passed)") {
            failures.push(format!(
                "{tag}: exit {:?}\n{}\n{}",
                o.status.code(),
                text(&o.stdout),
                text(&o.stderr)
            ));
            continue;
        }
        // The report is this build's own: it names its own source image.
        let src = report["source"]["reference"].as_str().unwrap_or_default();
        assert!(
            src.contains(&format!("pare-example/{name}")),
            "{tag}: its report is another build's ({src})"
        );
        digests.push((tag, id.trim().to_string()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let mut ids: Vec<&String> = digests.iter().map(|(_, d)| d).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), images.len(), "slim images collided: {digests:?}");
    let left = leftovers(tmp.path(), &[]);
    assert_eq!(left, nothing_left(), "left behind in the shared TMPDIR");
    let cwd_left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().flatten().collect();
    assert!(
        cwd_left.is_empty(),
        "written into the working directory: {cwd_left:?}"
    );
}
