//! Writers for tests of code that streams its output.

use std::io::{self, Write};

/// A pipe whose reader goes away after `limit` bytes: it takes bytes up to the limit, then
/// every write fails with `BrokenPipe`, as stdout does under `| head -c N`. It records the
/// largest single write it was offered, so a test can tell output streamed in pieces from a
/// whole document built first and handed over in one write.
#[derive(Debug, Default)]
pub struct ClosingPipe {
    /// The bytes taken before the pipe closed.
    pub taken: Vec<u8>,
    /// How many bytes it takes before every write fails.
    pub limit: usize,
    /// The length of the largest buffer one `write` call offered.
    pub largest_write: usize,
}

impl ClosingPipe {
    /// A pipe that takes `limit` bytes, then is closed.
    pub fn new(limit: usize) -> Self {
        ClosingPipe {
            limit,
            ..Self::default()
        }
    }
}

impl Write for ClosingPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.largest_write = self.largest_write.max(buf.len());
        let room = self.limit - self.taken.len();
        if room == 0 && !buf.is_empty() {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        let n = room.min(buf.len());
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Asserts that `write` streams `whole`: given an open pipe it writes exactly those bytes, in
/// pieces of at most a quarter of them (a document built first comes in one write), and given
/// a pipe that closes part-way it stops with an error of kind `BrokenPipe` (what pare's
/// closed-pipe check looks for) after the bytes the pipe took.
pub fn assert_streams(whole: &[u8], write: impl Fn(&mut ClosingPipe) -> io::Result<()>) {
    assert!(whole.len() >= 64, "too short to tell streaming apart");
    let mut open = ClosingPipe::new(usize::MAX);
    write(&mut open).expect("writing to an open pipe");
    assert!(open.taken == whole, "the streamed bytes differ");
    assert!(
        open.largest_write <= whole.len() / 4,
        "one write of {} of the {} bytes: not streamed",
        open.largest_write,
        whole.len()
    );
    let mut closing = ClosingPipe::new(whole.len() / 2);
    let err = write(&mut closing).expect_err("a closed pipe is an error");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    assert!(closing.taken == whole[..whole.len() / 2]);
}
