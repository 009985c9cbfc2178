//! Parallel, deterministic gzip (pigz-style).
//!
//! The uncompressed stream is cut into fixed [`CHUNK`]-byte pieces. Each piece is deflated on
//! its own (raw deflate, primed with the previous piece's last 32 KiB as dictionary), ending
//! in a sync flush, the last one with a final block; the pieces are concatenated into one gzip
//! member with a fixed header (no name, mtime 0, OS 255) and the CRC-32/size trailer. The
//! bytes depend only on the input and the level, never on the number of threads.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes of uncompressed input per independently deflated piece.
pub const CHUNK: usize = 1 << 20;
const WINDOW: usize = 32 * 1024;
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A [`Write`] that gzips what it is given into `inner`, deflating up to `threads` full
/// [`CHUNK`]s at once. The output is one gzip member whose bytes depend only on the input and
/// the level; call [`ParGz::finish`] to write the last piece and the trailer (dropping it
/// without does not, and leaves a truncated stream).
pub struct ParGz<W: Write> {
    inner: W,
    level: u32,
    threads: usize,
    chunk: usize,
    /// The piece being filled.
    buf: Vec<u8>,
    /// Full pieces waiting for compression.
    batch: Vec<Vec<u8>>,
    /// Last 32 KiB of the previous piece (the next piece's dictionary).
    dict: Vec<u8>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParGz<W> {
    /// A compressor writing to `inner` at zlib `level` (0–9) with up to `threads` pieces
    /// deflated in parallel (0 is treated as 1). Nothing is written until the first piece is
    /// full or [`ParGz::finish`] is called.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        Self::with_chunk(inner, level, threads, CHUNK)
    }

    /// Tests use small pieces; images always use [`CHUNK`] (the bytes depend on it).
    pub(crate) fn with_chunk(inner: W, level: u32, threads: usize, chunk: usize) -> Self {
        ParGz {
            inner,
            level,
            threads: threads.max(1),
            chunk: chunk.max(1),
            buf: Vec::with_capacity(chunk),
            batch: Vec::new(),
            dict: Vec::new(),
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// Threads to use by default: the machine's parallelism, at most 8.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8)
    }

    fn compress_batch(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&HEADER)?;
            self.header_written = true;
        }
        let pieces = std::mem::take(&mut self.batch);
        let n = pieces.len();
        // Dictionaries: the previous piece's tail.
        let mut dicts = Vec::with_capacity(n);
        let mut prev = std::mem::take(&mut self.dict);
        for p in &pieces {
            dicts.push(prev);
            prev = p[p.len().saturating_sub(WINDOW)..].to_vec();
        }
        self.dict = prev;
        let level = self.level;
        let outs: Vec<io::Result<Vec<u8>>> = if n == 1 || self.threads == 1 {
            pieces
                .iter()
                .zip(&dicts)
                .enumerate()
                .map(|(i, (p, d))| deflate(p, d, level, last && i + 1 == n))
                .collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = pieces
                    .iter()
                    .zip(&dicts)
                    .enumerate()
                    .map(|(i, (p, d))| s.spawn(move || deflate(p, d, level, last && i + 1 == n)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(io::Error::other("compression thread panicked"))
                        })
                    })
                    .collect()
            })
        };
        for o in outs {
            self.inner.write_all(&o?)?;
        }
        Ok(())
    }

    /// Writes the rest, the final block and the trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.buf);
        self.batch.push(rest);
        self.compress_batch(true)?;
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let k = data.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&data[..k]);
        self.crc.update(&data[..k]);
        if self.buf.len() == self.chunk {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
            self.batch.push(full);
            if self.batch.len() >= self.threads {
                self.compress_batch(false)?;
            }
        }
        Ok(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Raw deflate of one piece: sync-flushed, or finished when `last`.
fn deflate(data: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(8192));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is in and zlib left output space unused.
            _ if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn data(n: usize) -> Vec<u8> {
        // Compressible but not trivial.
        let mut x = 0x1234_5678u32;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 == 0 {
                    (x % 251) as u8
                } else {
                    b"pare layer "[i % 11]
                }
            })
            .collect()
    }

    /// Small pieces keep the test fast in debug builds; 40 KiB > the 32 KiB dictionary window.
    const T_CHUNK: usize = 40 * 1024;

    fn gz(input: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut w = ParGz::with_chunk(Vec::new(), 6, threads, T_CHUNK);
        for c in input.chunks(write_size.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_and_is_independent_of_threads_and_write_sizes() {
        for n in [0, 1, 1000, T_CHUNK, T_CHUNK + 1, 7 * T_CHUNK + 12345] {
            let input = data(n);
            let a = gz(&input, 1, 4096);
            let b = gz(&input, 4, 100_000);
            let c = gz(&input, 3, if n < 10_000 { 7 } else { 4099 });
            assert_eq!(a, b, "n={n}");
            assert_eq!(a, c, "n={n}");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&a[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input, "n={n}");
        }
        // The real piece size too, once.
        let input = data(CHUNK + 100);
        let mut w = ParGz::new(Vec::new(), 6, 2);
        w.write_all(&input).unwrap();
        let out = w.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }
}
