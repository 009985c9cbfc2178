//! `seccomp.json`: a Docker/OCI seccomp profile that allows what the app was seen doing.
//!
//! The default action is `SCMP_ACT_ERRNO` (EPERM). Allowed: every syscall the sensor observed,
//! plus [`RUNTIME_BASELINE`], the calls a container runtime makes *after* it has installed the
//! filter and before (and while) it replaces itself with the app. A handful of newer syscalls
//! that C libraries probe and fall back from ([`ENOSYS_FALLBACK`]) answer `ENOSYS` instead of
//! `EPERM` when they were not observed, so that a libc on another kernel still takes its
//! fallback path instead of failing. The baseline also holds every call the sensor lets through
//! untraced ([`pare_trace::UNTRACED_SYSCALLS`]): those are never in the observed set.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};

/// Syscalls the runtime needs once the filter is in place.
///
/// runc (Docker, containerd) loads the filter as late as it can, but its init process still
/// runs Go code between `seccomp(2)` and `execve(2)`: the Go runtime's scheduler and signal
/// handling (`futex`, `nanosleep`, `sched_yield`, `rt_sig*`, `sigaltstack`, `tgkill`,
/// `gettid`, `getpid`, `epoll_*`, `mmap`/`munmap`/`madvise`), the final `capset`/`prctl`
/// (no-new-privs, capabilities), closing leftover descriptors (`close`, `close_range`,
/// `fcntl`), reading `/proc/self/fd` (`openat`, `getdents64`, `newfstatat`, `fstat`), the
/// parent-death check (`getppid`), a last write to its sync pipe (`write`), checking that
/// `/proc/self/fd` really is procfs (`fstatfs`, `statfs`), checking the program is executable
/// (`faccessat2`, `faccessat`; Go calls faccessat2 and does not fall back on `EPERM`, so runc
/// fails with "exec …: operation not permitted" without it), checking the working directory
/// (`getcwd`: "failed to verify if current working directory is safe") and the `execve`.
/// Then the dynamic loader of the new program runs before the app's own first instruction
/// (`brk`, `arch_prctl`, `set_tid_address`, `set_robust_list`, `rseq`, `mprotect`,
/// `pread64`, `read`, `access`, `prlimit64`, `getrandom`), and every process ends with `exit`
/// or `exit_group`. When the image runs as another user, runc switches with `setgroups`,
/// `setgid` and `setuid` before the filter on most versions and after it on some; they are
/// listed so the profile works either way. The sensor's own calls are not in the observed
/// set (it traces the app, not itself), so nothing here comes from pare.
pub const RUNTIME_BASELINE: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "close",
    "close_range",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setuid",
    "sigaltstack",
    "statfs",
    "tgkill",
    "write",
];

/// Newer syscalls that glibc, musl and language runtimes try first and fall back from when
/// the kernel answers `ENOSYS` (but not `EPERM`).
pub const ENOSYS_FALLBACK: &[&str] = &[
    "clone3",
    "close_range",
    "epoll_pwait2",
    "faccessat2",
    "fchmodat2",
    "openat2",
    "pidfd_open",
    "pidfd_send_signal",
    "statx",
];

const ENOSYS: u32 = 38;
const EPERM: u32 = 1;

/// Builds the profile from the observed syscall names.
pub fn seccomp_profile(observed: &BTreeSet<String>) -> LinuxSeccomp {
    let mut allowed: BTreeSet<String> = observed
        .iter()
        .filter(|s| is_syscall_name(s))
        .cloned()
        .collect();
    allowed.extend(RUNTIME_BASELINE.iter().map(|s| s.to_string()));
    let fallback: Vec<String> = ENOSYS_FALLBACK
        .iter()
        .filter(|s| !allowed.contains(**s))
        .map(|s| s.to_string())
        .collect();
    let mut rules = vec![
        LinuxSyscallBuilder::default()
            .names(allowed.into_iter().collect::<Vec<_>>())
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()
            .expect("all fields set"),
    ];
    if !fallback.is_empty() {
        rules.push(
            LinuxSyscallBuilder::default()
                .names(fallback)
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()
                .expect("all fields set"),
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
        .syscalls(rules)
        .build()
        .expect("all fields set")
}

/// The sensor reports names; anything else (numbers of unknown syscalls, garbage) is dropped
/// because libseccomp would reject the whole profile.
fn is_syscall_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

/// The profile as pretty JSON, as `docker run --security-opt seccomp=FILE` reads it.
pub fn seccomp_json(observed: &BTreeSet<String>) -> String {
    serde_json::to_string_pretty(&seccomp_profile(observed)).expect("seccomp profile serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_round_trips_through_oci_spec_and_lists_observed_calls() {
        let observed: BTreeSet<String> = [
            "accept4",
            "bind",
            "listen",
            "openat",
            "statx",
            "bogus name!",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let json = seccomp_json(&observed);
        let parsed: LinuxSeccomp = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(parsed.default_errno_ret(), Some(1));
        let rules = parsed.syscalls().as_ref().unwrap();
        let allow = &rules[0];
        assert_eq!(allow.action(), LinuxSeccompAction::ScmpActAllow);
        for s in ["accept4", "bind", "listen", "execve", "exit_group", "statx"] {
            assert!(allow.names().contains(&s.to_string()), "{s} missing");
        }
        assert!(!allow.names().iter().any(|n| n.contains(' ')));
        // statx was observed, so it is allowed and not in the ENOSYS list.
        let enosys = &rules[1];
        assert_eq!(enosys.errno_ret(), Some(38));
        assert!(enosys.names().contains(&"clone3".to_string()));
        assert!(!enosys.names().contains(&"statx".to_string()));
        // Docker's field names and spellings.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(
            v["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(v["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn the_calls_the_sensor_does_not_trace_are_allowed_unobserved() {
        // The sensor's filter lets these through without a stop, so they are never observed:
        // a profile that did not allow them on its own would fail the app (futex → EPERM).
        let json = seccomp_json(&BTreeSet::new());
        let parsed: LinuxSeccomp = serde_json::from_str(&json).unwrap();
        let allow = &parsed.syscalls().as_ref().unwrap()[0];
        for s in pare_trace::UNTRACED_SYSCALLS {
            assert!(allow.names().contains(&s.to_string()), "{s} not allowed");
        }
    }
}
