//! The seccomp-bpf program of seccomp mode (see `tracer`): every syscall stops in the tracer
//! (`SECCOMP_RET_TRACE`) except the frequent path-less calls of
//! [`pare_trace::UNTRACED_SYSCALLS`], which it allows. Calls of another architecture (32-bit
//! `int 0x80` on x86_64) always stop, so the tracer still notices them. Built before fork: the
//! traced child only hands it to `seccomp(2)`.

use crate::syscalls;

/// `offsetof(struct seccomp_data, nr)`.
const NR_OFFSET: u32 = 0;
/// `offsetof(struct seccomp_data, arch)`.
const ARCH_OFFSET: u32 = 4;

/// The numbers of [`pare_trace::UNTRACED_SYSCALLS`] on this architecture, sorted (names the
/// architecture lacks are left out).
pub(crate) fn untraced_numbers() -> Vec<u64> {
    let mut nrs: Vec<u64> = pare_trace::UNTRACED_SYSCALLS
        .iter()
        .filter_map(|n| syscalls::number(n))
        .collect();
    nrs.sort_unstable();
    nrs.dedup();
    nrs
}

fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The program: load the arch, stop on a foreign one; load the number, allow it when it is one
/// of `allowed` (at most 254 numbers: a jump reaches 255 instructions), stop otherwise.
pub(crate) fn program(allowed: &[u64]) -> Vec<libc::sock_filter> {
    let allowed: Vec<u32> = allowed
        .iter()
        .filter_map(|n| u32::try_from(*n).ok())
        .take(254)
        .collect();
    let n = allowed.len();
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut p = Vec::with_capacity(n + 5);
    p.push(insn(load, 0, 0, ARCH_OFFSET));
    // A foreign arch jumps over the number checks to the trace return.
    p.push(insn(jeq, 0, (n + 1) as u8, syscalls::NATIVE_ARCH));
    p.push(insn(load, 0, 0, NR_OFFSET));
    for (i, nr) in allowed.iter().enumerate() {
        // From check i, the allow return is n - i instructions further on.
        p.push(insn(jeq, (n - i) as u8, 0, *nr));
    }
    p.push(insn(ret, 0, 0, libc::SECCOMP_RET_TRACE));
    p.push(insn(ret, 0, 0, libc::SECCOMP_RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel does for the instructions it uses.
    fn verdict(p: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = p[pc];
            match u32::from(i.code) {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    acc = match i.k {
                        NR_OFFSET => nr,
                        ARCH_OFFSET => arch,
                        k => panic!("load of offset {k}"),
                    };
                    pc += 1;
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    let skip = if acc == i.k { i.jt } else { i.jf };
                    pc += 1 + usize::from(skip);
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    #[test]
    fn allows_the_untraced_calls_and_traces_all_others() {
        let allowed = untraced_numbers();
        assert!(allowed.len() >= 10, "{allowed:?}");
        let p = program(&allowed);
        let native = syscalls::NATIVE_ARCH;
        for nr in 0..600u32 {
            let want = if allowed.contains(&u64::from(nr)) {
                libc::SECCOMP_RET_ALLOW
            } else {
                libc::SECCOMP_RET_TRACE
            };
            assert_eq!(
                verdict(&p, native, nr),
                want,
                "{}",
                syscalls::name(nr.into())
            );
            // 32-bit calls use other numbers: they always stop.
            assert_eq!(verdict(&p, 0x4000_0003, nr), libc::SECCOMP_RET_TRACE);
        }
        for path_call in [
            "openat",
            "execve",
            "newfstatat",
            "mmap",
            "clone",
            "exit_group",
        ] {
            let nr = syscalls::number(path_call).unwrap() as u32;
            assert_eq!(
                verdict(&p, native, nr),
                libc::SECCOMP_RET_TRACE,
                "{path_call}"
            );
        }
        let futex = syscalls::number("futex").unwrap() as u32;
        assert_eq!(verdict(&p, native, futex), libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn with_nothing_allowed_every_call_stops() {
        let p = program(&[]);
        for nr in 0..600 {
            assert_eq!(
                verdict(&p, syscalls::NATIVE_ARCH, nr),
                libc::SECCOMP_RET_TRACE
            );
        }
    }
}
