//! The setup protocol: encoding, decoding of bad frames, and the caller's side of the
//! start-up handshake over a real socket pair.

use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::process::{Failure, await_ready};
use super::protocol::{Channel, DecodeError, RecvError, SetupError, SetupMsg, SetupOp, SetupPhase};
use super::syscall::{LinuxSyscall, Syscall};

fn samples() -> Vec<SetupMsg> {
    vec![
        SetupMsg::Pid(4242),
        SetupMsg::Ready,
        SetupMsg::Go,
        SetupMsg::Exited(9),
        SetupMsg::Error(SetupError::Sys {
            op: SetupOp::MountTmpfs,
            path: Some("/tmp/pare-run-ab".into()),
            errno: Errno::EPERM,
        }),
        SetupMsg::Error(SetupError::Sys {
            op: SetupOp::DropCapability(38),
            path: None,
            errno: Errno::EINVAL,
        }),
        SetupMsg::Error(SetupError::Io {
            op: SetupOp::Mkdir,
            path: "/srv/ü".into(),
            os_error: libc::EEXIST,
        }),
        SetupMsg::Error(SetupError::User {
            user: "nobody2".into(),
            reason: "user \"nobody2\" not found in /etc/passwd".into(),
        }),
        SetupMsg::Error(SetupError::Exec {
            program: "/no/such".into(),
            errno: Errno::ENOENT,
        }),
        SetupMsg::Error(SetupError::Sys {
            op: SetupOp::SetNs(libc::CLONE_NEWNET),
            path: None,
            errno: Errno::EPERM,
        }),
        SetupMsg::Error(SetupError::Sys {
            op: SetupOp::Dup2(2),
            path: None,
            errno: Errno::EBADF,
        }),
        SetupMsg::Error(SetupError::EmptyCommand),
        SetupMsg::Error(SetupError::TempPathNotUtf8),
        SetupMsg::Error(SetupError::Panicked),
    ]
}

#[test]
fn every_message_survives_encoding() {
    for m in samples() {
        let frame = m.encode();
        assert_eq!(SetupMsg::decode(&frame), Ok(Some((m.clone(), frame.len()))));
        // Two frames back to back: the first is decoded and its length given.
        let mut two = frame.clone();
        two.extend_from_slice(&SetupMsg::Ready.encode());
        assert_eq!(SetupMsg::decode(&two), Ok(Some((m, frame.len()))));
    }
}

#[test]
fn errors_read_as_before() {
    let texts: Vec<String> = samples()
        .into_iter()
        .filter_map(|m| match m {
            SetupMsg::Error(e) => Some(e.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "mount tmpfs on /tmp/pare-run-ab: EPERM: Operation not permitted",
            "drop capability 38: EINVAL: Invalid argument",
            "mkdir /srv/ü: File exists (os error 17)",
            "user \"nobody2\" not found in /etc/passwd",
            "exec /no/such: ENOENT: No such file or directory",
            "setns CloneFlags(CLONE_NEWNET): EPERM: Operation not permitted",
            "dup2 stderr: EBADF: Bad file number",
            "empty command",
            "temp path is not UTF-8",
            "panic in sandbox child",
        ]
    );
    assert_eq!(SetupPhase::Sandbox.to_string(), "sandbox setup failed: ");
    assert_eq!(
        SetupPhase::ContainerExec(vec!["id".into()]).to_string(),
        "exec [\"id\"]: "
    );
}

#[test]
fn short_frames_wait_and_bad_frames_are_errors_never_panics() {
    for m in samples() {
        let frame = m.encode();
        for cut in 0..frame.len() {
            assert_eq!(
                SetupMsg::decode(&frame[..cut]),
                Ok(None),
                "{m:?} cut at {cut}"
            );
        }
        // A frame whose length claims less than its fields need.
        for short in 1..frame.len() - 4 {
            let mut f = frame[..4 + short].to_vec();
            f[..4].copy_from_slice(&(short as u32).to_le_bytes());
            let r = SetupMsg::decode(&f);
            assert!(r.is_err() || r == Ok(None), "{m:?} claimed {short}: {r:?}");
        }
    }
    assert_eq!(
        SetupMsg::decode(&[1, 0, 0, 0, 99]),
        Err(DecodeError::UnknownTag(99))
    );
    assert_eq!(
        SetupMsg::decode(&[0xff, 0xff, 0xff, 0x7f]),
        Err(DecodeError::TooLong(0x7fff_ffff))
    );
    assert_eq!(
        SetupMsg::decode(&[2, 0, 0, 0, 2, 0]),
        Err(DecodeError::Trailing(1))
    );
    let mut bad_utf8 = vec![0, 0, 0, 0, 4, 3, 1, 0, 0, 0, 0xff, 0, 0, 0, 0];
    let n = bad_utf8.len() as u32 - 4;
    bad_utf8[..4].copy_from_slice(&n.to_le_bytes());
    assert_eq!(SetupMsg::decode(&bad_utf8), Err(DecodeError::NotUtf8));
    // Pseudo-random bodies of every length below 64 behind a matching header.
    let mut x: u32 = 0x1234_5678;
    for len in 0..64usize {
        for _ in 0..200 {
            let mut body: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 24) as u8
                })
                .collect();
            let mut f = (len as u32).to_le_bytes().to_vec();
            f.append(&mut body);
            let _ = SetupMsg::decode(&f);
        }
    }
}

fn pair() -> (Channel, Channel) {
    let (a, b) = LinuxSyscall.socketpair().unwrap();
    (Channel::new(a), Channel::new(b))
}

#[test]
fn channel_reports_garbage_and_a_cut_frame() {
    let (mut caller, child) = pair();
    nix::unistd::write(&child, &[1, 0, 0, 0, 77]).unwrap();
    assert_eq!(
        caller.recv(&LinuxSyscall, Duration::from_secs(5)),
        Err(RecvError::Garbled(DecodeError::UnknownTag(77)))
    );
    let (mut caller, child) = pair();
    let frame = SetupMsg::Pid(7).encode();
    nix::unistd::write(&child, &frame[..6]).unwrap();
    drop(child);
    assert_eq!(
        caller.recv(&LinuxSyscall, Duration::from_secs(5)),
        Err(RecvError::Garbled(DecodeError::Truncated))
    );
    let (mut caller, _child) = pair();
    assert_eq!(
        caller.recv(&LinuxSyscall, Duration::from_millis(10)),
        Err(RecvError::TimedOut)
    );
}

#[test]
fn handshake_accepts_pid_and_ready_in_either_order() {
    for order in [
        [SetupMsg::Pid(31), SetupMsg::Ready],
        [SetupMsg::Ready, SetupMsg::Pid(31)],
    ] {
        let (mut caller, child) = pair();
        for m in &order {
            child.send(m).unwrap();
        }
        let pid = await_ready(&LinuxSyscall, &mut caller, Duration::from_secs(5)).unwrap();
        assert_eq!(pid, Pid::from_raw(31));
    }
}

#[test]
fn handshake_failures_say_what_happened() {
    let err = SetupError::Sys {
        op: SetupOp::Unshare,
        path: None,
        errno: Errno::EPERM,
    };
    // The keeper failed before forking init.
    let (mut caller, child) = pair();
    child.send(&SetupMsg::Error(err.clone())).unwrap();
    match await_ready(&LinuxSyscall, &mut caller, Duration::from_secs(5)) {
        Err((Failure::Child(e), None)) => assert_eq!(e, err),
        r => panic!("{r:?}"),
    }
    // init failed: its pid is known, so the caller can kill it.
    let (mut caller, child) = pair();
    child.send(&SetupMsg::Pid(8)).unwrap();
    child.send(&SetupMsg::Error(SetupError::Panicked)).unwrap();
    match await_ready(&LinuxSyscall, &mut caller, Duration::from_secs(5)) {
        Err((Failure::Child(SetupError::Panicked), Some(p))) => assert_eq!(p.as_raw(), 8),
        r => panic!("{r:?}"),
    }
    // init died without a word: the keeper's exit report ends the wait.
    let (mut caller, child) = pair();
    child.send(&SetupMsg::Pid(8)).unwrap();
    child.send(&SetupMsg::Exited(9)).unwrap();
    match await_ready(&LinuxSyscall, &mut caller, Duration::from_secs(5)) {
        Err((Failure::Other(m), Some(_))) => assert_eq!(m, "sandbox init exited during setup"),
        r => panic!("{r:?}"),
    }
    // Everything on the other side closed.
    let (mut caller, child) = pair();
    drop(child);
    assert!(matches!(
        await_ready(&LinuxSyscall, &mut caller, Duration::from_secs(5)),
        Err((Failure::Other(_), None))
    ));
    // Nothing at all: the time-out.
    let (mut caller, _child) = pair();
    match await_ready(&LinuxSyscall, &mut caller, Duration::from_millis(20)) {
        Err((Failure::Other(m), None)) => assert!(m.contains("did not finish within"), "{m}"),
        r => panic!("{r:?}"),
    }
    // A message only the caller sends.
    let (mut caller, child) = pair();
    child.send(&SetupMsg::Go).unwrap();
    match await_ready(&LinuxSyscall, &mut caller, Duration::from_secs(5)) {
        Err((Failure::Child(SetupError::Garbled(DecodeError::Unexpected(3))), None)) => {}
        r => panic!("{r:?}"),
    }
}
