//! The container setup against the recording fake kernel: mount order, what reaches the
//! host, credentials and the keeper's duties, all without root.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use nix::mount::MsFlags;
use nix::sys::signal::Signal;

use super::init::init_main;
use super::keeper::{NAMESPACES, keeper_main};
use super::process::{SandboxEnds, make_ends};
use super::protocol::{Channel, SetupMsg};
use super::runtime::Plan;
use super::syscall::LinuxSyscall;
use super::syscall::test::{Call, FAKE_CHILD, RecordingSyscall};
use crate::{OUTPUT_DIR, SENSOR_PATH};

fn plan(sensor: bool, user: Option<&str>) -> Plan {
    Plan {
        tmp: PathBuf::from("/t/pare-run-1"),
        oldroot: ".pare-oldroot-ab".into(),
        overlay_opts: CString::new(
            "lowerdir=/img,upperdir=/t/pare-run-1/upper,workdir=/t/pare-run-1/work",
        )
        .unwrap(),
        hostname: "box".into(),
        argv: vec![CString::new("/bin/app").unwrap()],
        env: vec!["PATH=/bin".into()],
        user: user.map(Into::into),
        workdir: "/srv".into(),
        sensor: sensor.then(|| (PathBuf::from("/host/sensor"), PathBuf::from("/host/out"))),
        caps: vec![0, 1],
    }
}

/// The sandbox's ends, the caller's end of the setup channel, and the caller's ends of the
/// pipes (kept open: a closed lifeline would tell the keeper the caller is gone).
fn ends() -> (SandboxEnds, Channel, Vec<OwnedFd>) {
    let (ends, mine) = make_ends(&LinuxSyscall).unwrap();
    let keep = vec![mine.life_w, mine.exec_r, mine.out_r, mine.serr_r];
    (ends, mine.ctl, keep)
}

/// Everything on the caller's end of the channel, up to its end.
fn received(mut ctl: Channel) -> Vec<SetupMsg> {
    let mut got = Vec::new();
    while let Ok(m) = ctl.recv(&LinuxSyscall, Duration::from_secs(5)) {
        got.push(m);
    }
    got
}

/// Runs init against `sys` with the go signal already sent; returns init's error (the fake's
/// execve fails) and what init sent on the channel before that.
fn run_init(sys: &RecordingSyscall, plan: &Plan) -> (String, Vec<SetupMsg>) {
    let (ends, ctl, _keep) = ends();
    ctl.send(&SetupMsg::Go).unwrap();
    let err = match init_main(sys, plan, &ends) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    drop(ends);
    (err.to_string(), received(ctl))
}

fn pos(calls: &[Call], f: impl Fn(&Call) -> bool) -> usize {
    calls.iter().position(f).expect("call recorded")
}

#[test]
fn root_is_mounted_in_order() {
    let sys = RecordingSyscall::default();
    let (err, sent) = run_init(&sys, &plan(true, None));
    assert_eq!(sent, [SetupMsg::Ready], "ready sent, nothing else");
    assert!(err.starts_with("exec /bin/app: ENOENT"), "{err}");
    let calls = sys.calls();
    let targets: Vec<&str> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Mount { target, .. } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        [
            "/",
            "/t/pare-run-1",
            "/t/pare-run-1/root",
            "/proc",
            "/dev",
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/pts",
            "/dev/shm",
            "/sys",
            "/tmp",
            SENSOR_PATH,
            SENSOR_PATH,
            OUTPUT_DIR,
        ]
    );
    let Call::Mount { flags, .. } = &calls[pos(&calls, |c| matches!(c, Call::Mount { .. }))] else {
        unreachable!()
    };
    assert_eq!(
        *flags,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        "/ rprivate first"
    );
    let overlay = calls
        .iter()
        .find_map(|c| match c {
            Call::Mount {
                fstype: Some(t),
                data,
                ..
            } if t == "overlay" => data.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(overlay, plan(true, None).overlay_opts.to_str().unwrap());
    // Every bind comes from an fd opened before pivot_root, never from a path in the image.
    for c in &calls {
        if let Call::Mount {
            source: Some(s),
            flags,
            ..
        } = c
        {
            if flags.contains(MsFlags::MS_BIND) {
                assert!(s.starts_with("/proc/self/fd/"), "{c:?}");
            }
        }
    }
    let pivot = pos(&calls, |c| matches!(c, Call::PivotRoot(..)));
    assert_eq!(
        calls[pivot],
        Call::PivotRoot(".".into(), ".pare-oldroot-ab".into())
    );
    assert_eq!(calls[pivot - 2], Call::Chdir("/t/pare-run-1/root".into()));
    assert!(pos(&calls, |c| matches!(c, Call::OpenPath(_))) < pivot);
    let last_open = calls
        .iter()
        .rposition(|c| matches!(c, Call::OpenPath(_)))
        .unwrap();
    assert!(last_open < pivot, "host paths opened before pivot_root");
    assert_eq!(calls[last_open], Call::OpenPath("/host/out".into()));
    let overlay_at = pos(
        &calls,
        |c| matches!(c, Call::Mount { target, .. } if target == "/t/pare-run-1/root"),
    );
    assert!(overlay_at < pivot);
    // The sensor is bound read-only; the old root goes after the last bind, before /etc.
    let ro = pos(&calls, |c| {
        matches!(c, Call::Mount { target, flags, .. }
            if target == SENSOR_PATH && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY))
    });
    let detach = pos(&calls, |c| {
        *c == Call::UmountDetach("/.pare-oldroot-ab".into())
    });
    assert!(ro < detach);
    let last_mount = calls
        .iter()
        .rposition(|c| matches!(c, Call::Mount { .. }))
        .unwrap();
    assert!(last_mount < detach);
    assert_eq!(
        calls[detach + 1],
        Call::RemoveDir("/.pare-oldroot-ab".into())
    );
    let hosts = pos(
        &calls,
        |c| matches!(c, Call::WriteFile(p, _) if p == "/etc/hosts"),
    );
    assert!(detach < hosts);
    // Then hostname, loopback, capabilities, stdio, signals, umask, fds, exec: in this order.
    let order = [
        pos(&calls, |c| *c == Call::Hostname("box".into())),
        pos(&calls, |c| *c == Call::LoopbackUp),
        pos(&calls, |c| *c == Call::CapDrop(2)),
        pos(&calls, |c| matches!(c, Call::Dup2(_))),
        pos(&calls, |c| *c == Call::ResetSignals),
        pos(&calls, |c| *c == Call::Umask(0o022)),
        pos(&calls, |c| {
            matches!(c, Call::CloseRange { cloexec: true, .. })
        }),
        pos(&calls, |c| matches!(c, Call::Execve(..))),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(hosts < order[0]);
    assert!(!calls.contains(&Call::CapDrop(0)) && !calls.contains(&Call::CapDrop(1)));
    assert!(
        matches!(calls.last(), Some(Call::Execve(p, a)) if p == "/bin/app" && a == &["/bin/app"])
    );
}

#[test]
fn no_sensor_no_sensor_mounts_and_the_user_is_dropped_to_last() {
    let mut sys = RecordingSyscall::default();
    sys.files.insert(
        "/etc/passwd".into(),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n".into(),
    );
    sys.files
        .insert("/etc/group".into(), "staff:x:50:app\n".into());
    let (err, _) = run_init(&sys, &plan(false, Some("app")));
    assert!(err.contains("/bin/app"), "{err}");
    let calls = sys.calls();
    assert!(!calls.iter().any(|c| matches!(c, Call::Mount { target, .. }
        if target == SENSOR_PATH || target == OUTPUT_DIR)));
    let creds: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c, Call::SetGroups(_) | Call::SetGid(_) | Call::SetUid(_)))
        .collect();
    assert_eq!(
        creds,
        [
            &Call::SetGroups(vec![1001, 50]),
            &Call::SetGid(1001),
            &Call::SetUid(1000)
        ]
    );
    let chdir = pos(&calls, |c| *c == Call::Chdir("/srv".into()));
    let setuid = pos(&calls, |c| *c == Call::SetUid(1000));
    let caps = calls
        .iter()
        .rposition(|c| matches!(c, Call::CapDrop(_)))
        .unwrap();
    assert!(
        caps < chdir && chdir < setuid,
        "caps, then WORKDIR, then the user"
    );
}

#[test]
fn etc_files_are_replaced_unless_a_directory() {
    let mut sys = RecordingSyscall::default();
    sys.dirs.push("/etc/hostname".into());
    let _ = run_init(&sys, &plan(false, None));
    let calls = sys.calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::WriteFile(p, _) if p == "/etc/hostname"))
    );
    assert!(calls.contains(&Call::WriteFile(
        "/etc/resolv.conf".into(),
        "# pare embedded runtime: the sandbox has no network beyond loopback\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n".into()
    )));
}

#[test]
fn keeper_unshares_forks_init_and_reports_its_pid_and_status() {
    let sys = RecordingSyscall::default();
    let p = plan(false, None);
    let (ends, ctl, _keep) = ends();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        keeper_main(&sys, &p, &ends)
    }));
    let msg = r.err().and_then(|e| e.downcast::<String>().ok()).unwrap();
    assert_eq!(*msg, "RecordingSyscall: exit(0)");
    drop(ends);
    assert_eq!(
        received(ctl),
        [SetupMsg::Pid(FAKE_CHILD), SetupMsg::Exited(0)],
        "init's pid, then its raw wait status"
    );
    let calls = sys.calls();
    assert_eq!(
        calls[..3],
        [Call::SetPgid, Call::Unshare(NAMESPACES), Call::Fork]
    );
    assert!(calls.contains(&Call::WaitPid(FAKE_CHILD)));
    assert!(!calls.contains(&Call::Kill(FAKE_CHILD, Signal::SIGKILL)));
}
