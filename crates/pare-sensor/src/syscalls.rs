//! Syscall numbers → names for the native architecture.

use std::borrow::Cow;

#[path = "syscall_table.rs"]
mod table;

/// The audit architecture the kernel reports in `PTRACE_GET_SYSCALL_INFO` for native syscalls
/// (`AUDIT_ARCH_X86_64` / `AUDIT_ARCH_AARCH64` from `linux/audit.h`).
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: u32 = 0xC000_00B7;

/// Numbers the libc crate lacks on some architectures.
#[cfg(target_arch = "x86_64")]
pub const SYS_RENAMEAT: libc::c_long = libc::SYS_renameat;
#[cfg(target_arch = "aarch64")]
pub const SYS_RENAMEAT: libc::c_long = 38;
/// fchmodat2 (Linux 6.6), the same number on every architecture.
pub const SYS_FCHMODAT2: libc::c_long = 452;

/// The name of syscall `nr`, or `syscall_NR` when the table does not know it.
pub fn name(nr: u64) -> Cow<'static, str> {
    match usize::try_from(nr).ok().and_then(|i| table::NAMES.get(i)) {
        Some(n) if !n.is_empty() => Cow::Borrowed(n),
        _ => Cow::Owned(format!("syscall_{nr}")),
    }
}

/// The number of the syscall called `name` on this architecture, if it has one.
pub fn number(name: &str) -> Option<u64> {
    table::NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == name)
        .map(|i| i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_libc_numbers() {
        assert_eq!(name(libc::SYS_openat as u64), "openat");
        assert_eq!(name(libc::SYS_execve as u64), "execve");
        assert_eq!(name(libc::SYS_newfstatat as u64), "newfstatat");
        assert_eq!(name(libc::SYS_statx as u64), "statx");
        assert_eq!(name(libc::SYS_openat2 as u64), "openat2");
        assert_eq!(name(libc::SYS_faccessat2 as u64), "faccessat2");
        assert_eq!(name(libc::SYS_exit_group as u64), "exit_group");
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(name(libc::SYS_open as u64), "open");
            assert_eq!(name(libc::SYS_fchmodat2 as u64), "fchmodat2");
            assert_eq!(SYS_FCHMODAT2, libc::SYS_fchmodat2);
        }
        assert_eq!(name(SYS_RENAMEAT as u64), "renameat");
        assert_eq!(name(SYS_FCHMODAT2 as u64), "fchmodat2");
        assert_eq!(name(100_000), "syscall_100000");
        assert_eq!(number("openat"), Some(libc::SYS_openat as u64));
        assert_eq!(number("futex"), Some(libc::SYS_futex as u64));
        assert_eq!(number(""), None);
        assert_eq!(number("no_such_call"), None);
    }
}
