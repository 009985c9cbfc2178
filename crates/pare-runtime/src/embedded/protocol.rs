//! The setup protocol: one message type, [`SetupMsg`], over one channel, with the sandbox
//! children's failures as a typed [`SetupError`].
//!
//! The channel is a `SOCK_SEQPACKET` socket pair made before the keeper is forked: the
//! caller holds one end; the keeper and init share the other.
//!
//! ```text
//! keeper → caller  Pid(init's host pid)           after forking init
//! init   → caller  Ready                          root built, namespaces final
//! caller → init    Go                             namespace handles opened: exec now
//! any    → caller  Error(SetupError)              then the sender exits
//! keeper → caller  Exited(raw wait status)        when init has exited
//! ```
//!
//! Two pipes carry no data and only end: the lifeline (caller → keeper: when the caller is
//! gone the keeper kills init) and the exec pipe (init's write end is close-on-exec, so its
//! end tells the caller that init has exec'd or died; an exec error arrives first as `Error`).
//!
//! Encoding: a frame is a little-endian `u32` length, then a tag byte and the fields
//! (integers little-endian, strings as `u32` length + UTF-8). Decoding never panics: a short,
//! long or garbled frame is a [`DecodeError`].

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::process::wait_readable;
pub use super::setup_error::{SetupError, SetupOp, SetupPhase};
use super::syscall::Syscall;

/// Frames longer than this are refused (a message is a few hundred bytes at most).
const MAX_FRAME: usize = 64 << 10;

/// One message of the setup protocol (see the module docs for who sends which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetupMsg {
    Pid(i32),
    Ready,
    Go,
    Error(SetupError),
    Exited(i32),
}

/// A frame that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame or a field in it ends before its declared length (including a pipe closed
    /// mid-frame).
    #[error("frame ends early")]
    Truncated,
    /// The length prefix announces more than 64 KiB (the frame's byte count), refused
    /// before reading.
    #[error("frame of {0} bytes is too long")]
    TooLong(usize),
    /// The message or field tag byte is not one this protocol version defines.
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    /// A string field (path, program, user) is not valid UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// The message decoded completely but this many bytes of the frame were left over.
    #[error("{0} bytes after the message")]
    Trailing(usize),
    /// A well-formed message this receiver never expects (its tag).
    #[error("unexpected message (tag {0})")]
    Unexpected(u8),
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
}

struct Dec<'a>(&'a [u8]);

impl Dec<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::NotUtf8)
    }
}

fn op_code(op: SetupOp) -> (u8, u32) {
    use SetupOp::*;
    match op {
        MakeRootPrivate => (0, 0),
        MountTmpfs => (1, 0),
        MountOverlay => (2, 0),
        Mount => (3, 0),
        BindMount => (4, 0),
        RemountReadOnly => (5, 0),
        DetachOldRoot => (6, 0),
        PivotRoot => (7, 0),
        Chdir => (8, 0),
        Mkdir => (9, 0),
        Rmdir => (10, 0),
        Create => (11, 0),
        Replace => (12, 0),
        Write => (13, 0),
        Symlink => (14, 0),
        Open => (15, 0),
        SetHostname => (16, 0),
        Socket => (17, 0),
        GetLoopbackFlags => (18, 0),
        SetLoopbackUp => (19, 0),
        DropCapability(c) => (20, c),
        SetGroups => (21, 0),
        SetGid(g) => (22, g),
        SetUid(u) => (23, u),
        Dup2(fd) => (24, fd as u32),
        Unshare => (25, 0),
        ForkInit => (26, 0),
        SetNs(f) => (27, f as u32),
        ForkInPidNs => (28, 0),
        OpenRead => (29, 0),
    }
}

fn op_from(code: u8, arg: u32) -> Result<SetupOp, DecodeError> {
    use SetupOp::*;
    Ok(match code {
        0 => MakeRootPrivate,
        1 => MountTmpfs,
        2 => MountOverlay,
        3 => Mount,
        4 => BindMount,
        5 => RemountReadOnly,
        6 => DetachOldRoot,
        7 => PivotRoot,
        8 => Chdir,
        9 => Mkdir,
        10 => Rmdir,
        11 => Create,
        12 => Replace,
        13 => Write,
        14 => Symlink,
        15 => Open,
        16 => SetHostname,
        17 => Socket,
        18 => GetLoopbackFlags,
        19 => SetLoopbackUp,
        20 => DropCapability(arg),
        21 => SetGroups,
        22 => SetGid(arg),
        23 => SetUid(arg),
        24 => Dup2(arg as i32),
        25 => Unshare,
        26 => ForkInit,
        27 => SetNs(arg as i32),
        28 => ForkInPidNs,
        29 => OpenRead,
        t => return Err(DecodeError::UnknownTag(t)),
    })
}

fn encode_error(e: &mut Enc, err: &SetupError) {
    match err {
        SetupError::Sys { op, path, errno } => {
            let (c, a) = op_code(*op);
            e.u8(0).u8(c).u32(a).i32(*errno as i32);
            match path {
                Some(p) => e.u8(1).str(p),
                None => e.u8(0),
            };
        }
        SetupError::Io { op, path, os_error } => {
            let (c, a) = op_code(*op);
            e.u8(1).u8(c).u32(a).i32(*os_error).str(path);
        }
        SetupError::User { user, reason } => {
            e.u8(2).str(user).str(reason);
        }
        SetupError::Exec { program, errno } => {
            e.u8(3).str(program).i32(*errno as i32);
        }
        SetupError::EmptyCommand => {
            e.u8(4);
        }
        SetupError::TempPathNotUtf8 => {
            e.u8(5);
        }
        SetupError::Panicked => {
            e.u8(6);
        }
        SetupError::Garbled(_) => {
            // Only ever made by a receiver; sent on, it says no more than a panic would.
            e.u8(6);
        }
    }
}

fn decode_error(d: &mut Dec<'_>) -> Result<SetupError, DecodeError> {
    Ok(match d.u8()? {
        0 => {
            let op = op_from(d.u8()?, d.u32()?)?;
            let errno = Errno::from_raw(d.i32()?);
            let path = match d.u8()? {
                0 => None,
                1 => Some(d.str()?),
                t => return Err(DecodeError::UnknownTag(t)),
            };
            SetupError::Sys { op, path, errno }
        }
        1 => {
            let op = op_from(d.u8()?, d.u32()?)?;
            let os_error = d.i32()?;
            SetupError::Io {
                op,
                path: d.str()?,
                os_error,
            }
        }
        2 => SetupError::User {
            user: d.str()?,
            reason: d.str()?,
        },
        3 => SetupError::Exec {
            program: d.str()?,
            errno: Errno::from_raw(d.i32()?),
        },
        4 => SetupError::EmptyCommand,
        5 => SetupError::TempPathNotUtf8,
        6 => SetupError::Panicked,
        t => return Err(DecodeError::UnknownTag(t)),
    })
}

impl SetupMsg {
    /// The tag byte of this message in a frame.
    pub(crate) fn tag(&self) -> u8 {
        match self {
            SetupMsg::Pid(_) => 1,
            SetupMsg::Ready => 2,
            SetupMsg::Go => 3,
            SetupMsg::Error(_) => 4,
            SetupMsg::Exited(_) => 5,
        }
    }

    /// One frame: length, then the message.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![0; 4]);
        e.u8(self.tag());
        match self {
            SetupMsg::Pid(p) | SetupMsg::Exited(p) => {
                e.i32(*p);
            }
            SetupMsg::Ready | SetupMsg::Go => {}
            SetupMsg::Error(err) => encode_error(&mut e, err),
        }
        let len = (e.0.len() - 4) as u32;
        e.0[..4].copy_from_slice(&len.to_le_bytes());
        e.0
    }

    /// The first frame of `buf` and its length in bytes; `Ok(None)` when `buf` holds only
    /// part of a frame.
    pub(crate) fn decode(buf: &[u8]) -> Result<Option<(SetupMsg, usize)>, DecodeError> {
        let Some(head) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(DecodeError::TooLong(len));
        }
        let Some(body) = buf.get(4..4 + len) else {
            return Ok(None);
        };
        let mut d = Dec(body);
        let msg = match d.u8()? {
            1 => SetupMsg::Pid(d.i32()?),
            2 => SetupMsg::Ready,
            3 => SetupMsg::Go,
            4 => SetupMsg::Error(decode_error(&mut d)?),
            5 => SetupMsg::Exited(d.i32()?),
            t => return Err(DecodeError::UnknownTag(t)),
        };
        if !d.0.is_empty() {
            return Err(DecodeError::Trailing(d.0.len()));
        }
        Ok(Some((msg, 4 + len)))
    }
}

/// What [`Channel::recv`] got instead of a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// Every sender is gone (a partial frame at the end is `Garbled(Truncated)`).
    Closed,
    TimedOut,
    Garbled(DecodeError),
}

/// One end of the setup channel (a socket pair or a pipe).
pub(crate) struct Channel {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Channel {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Self {
            fd,
            buf: Vec::new(),
        }
    }

    /// Another handle on the same channel (a close-on-exec dup), with its own buffer.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(Self::new(self.fd.try_clone()?))
    }

    /// Sends one message in one write (a socket pair keeps it one packet).
    pub(crate) fn send(&self, msg: &SetupMsg) -> nix::Result<()> {
        let frame = msg.encode();
        let mut rest = frame.as_slice();
        while !rest.is_empty() {
            match nix::unistd::write(&self.fd, rest) {
                Ok(0) => return Err(Errno::EPIPE),
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next message, waiting at most `timeout`.
    pub(crate) fn recv(
        &mut self,
        sys: &dyn Syscall,
        timeout: Duration,
    ) -> Result<SetupMsg, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            match SetupMsg::decode(&self.buf) {
                Ok(Some((msg, n))) => {
                    self.buf.drain(..n);
                    return Ok(msg);
                }
                Ok(None) => {}
                Err(e) => return Err(RecvError::Garbled(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !wait_readable(sys, &self.fd, left) {
                return Err(RecvError::TimedOut);
            }
            let mut chunk = [0u8; MAX_FRAME + 4];
            match nix::unistd::read(&self.fd, &mut chunk) {
                Ok(0) if self.buf.is_empty() => return Err(RecvError::Closed),
                Ok(0) => return Err(RecvError::Garbled(DecodeError::Truncated)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => return Err(RecvError::Closed),
            }
        }
    }

    /// Blocks until a message arrives or the channel closes.
    pub(crate) fn recv_blocking(&mut self, sys: &dyn Syscall) -> Result<SetupMsg, RecvError> {
        loop {
            match self.recv(sys, Duration::from_secs(3600)) {
                Err(RecvError::TimedOut) => {}
                r => return r,
            }
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
