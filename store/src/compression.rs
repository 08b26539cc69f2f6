//! NAR file compression as binary caches use it (a narinfo's `Compression`: `none`,
//! `xz`, `bzip2`, `zstd`), always streaming: [`Compression::decoder`] wraps a reader and
//! [`Compression::encoder`] a writer, so a NAR of any size goes through in small buffers.

use std::fmt;
use std::io::{self, BufReader, Read, Write};

use thiserror::Error;

/// A compression name this implementation does not know.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unsupported compression '{0}' (supported: none, xz, bzip2, zstd)")]
pub struct UnknownCompression(pub String);

/// How a NAR file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// xz (Nix's default for `nix copy --to file://`).
    Xz,
    /// bzip2 (what a narinfo without `Compression` means).
    Bzip2,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Parses a narinfo's `Compression` value; an empty one is bzip2, as in Nix.
    pub fn parse(name: &str) -> Result<Compression, UnknownCompression> {
        match name {
            "none" => Ok(Compression::None),
            "xz" => Ok(Compression::Xz),
            "bzip2" | "" => Ok(Compression::Bzip2),
            "zstd" => Ok(Compression::Zstd),
            other => Err(UnknownCompression(other.to_string())),
        }
    }

    /// The name a narinfo uses.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
        }
    }

    /// The file name extension after `.nar` (`""`, `.xz`, `.bz2`, `.zst`), as Nix names
    /// NAR files in a cache.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Xz => ".xz",
            Compression::Bzip2 => ".bz2",
            Compression::Zstd => ".zst",
        }
    }

    /// A reader of the decompressed bytes of `r`. A corrupt or truncated stream is an
    /// error of the reader, never a short read that looks complete.
    pub fn decoder<'a, R: Read + Send + 'a>(self, r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(
                BufReader::with_capacity(1 << 16, r),
            )?),
        })
    }

    /// A writer that compresses into `w`; [`Encoder::finish`] ends the stream.
    pub fn encoder<W: Write>(self, w: W) -> io::Result<Encoder<W>> {
        Ok(Encoder(match self {
            Compression::None => Inner::None(w),
            // Nix's default xz preset.
            Compression::Xz => Inner::Xz(liblzma::write::XzEncoder::new(w, 6)),
            Compression::Bzip2 => Inner::Bzip2(bzip2::write::BzEncoder::new(
                w,
                bzip2::Compression::default(),
            )),
            // zstd's default level, as Nix uses it.
            Compression::Zstd => Inner::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
        }))
    }
}

/// Reads at most `left` bytes of a decompressed NAR and fails past them: a NAR larger
/// than its narinfo's `NarSize` is cut off where it passes that size, so a lying cache
/// or uploader cannot fill the castore.
pub struct SizeLimit<R> {
    inner: R,
    left: u64,
}

impl<R> SizeLimit<R> {
    /// `inner`, limited to `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        SizeLimit { inner, left: limit }
    }
}

impl<R: Read> Read for SizeLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One byte more than announced is enough to know.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the NAR is larger than the narinfo's NarSize",
                )),
            };
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

enum Inner<W: Write> {
    None(W),
    Xz(liblzma::write::XzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// A compressing writer ([`Compression::encoder`]).
pub struct Encoder<W: Write>(Inner<W>);

impl<W: Write> Encoder<W> {
    /// Ends the compressed stream and returns the inner writer (flushed).
    pub fn finish(self) -> io::Result<W> {
        let mut w = match self.0 {
            Inner::None(w) => w,
            Inner::Xz(e) => e.finish()?,
            Inner::Bzip2(e) => e.finish()?,
            Inner::Zstd(e) => e.finish()?,
        };
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::None(w) => w.write(buf),
            Inner::Xz(e) => e.write(buf),
            Inner::Bzip2(e) => e.write(buf),
            Inner::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Inner::None(w) => w.flush(),
            Inner::Xz(e) => e.flush(),
            Inner::Bzip2(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 4] = [
        Compression::None,
        Compression::Xz,
        Compression::Bzip2,
        Compression::Zstd,
    ];

    fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut e = c.encoder(Vec::new()).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in ALL {
            assert_eq!(Compression::parse(c.name()).unwrap(), c);
            let packed = compress(c, &data);
            if c != Compression::None {
                assert!(packed.len() < data.len() / 2, "{c} compresses");
            }
            let mut out = Vec::new();
            c.decoder(packed.as_slice())
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{c}");
        }
        assert_eq!(Compression::parse("").unwrap(), Compression::Bzip2);
        assert_eq!(
            Compression::parse("lz4").unwrap_err().to_string(),
            "unsupported compression 'lz4' (supported: none, xz, bzip2, zstd)"
        );
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        let data = vec![42u8; 100_000];
        for c in [Compression::Xz, Compression::Bzip2, Compression::Zstd] {
            let packed = compress(c, &data);
            let cut = &packed[..packed.len() / 2];
            let mut out = Vec::new();
            let r = c.decoder(cut).and_then(|mut d| d.read_to_end(&mut out));
            assert!(r.is_err(), "{c}: a truncated stream is an error");
            let mut bad = packed.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 0xff;
            bad[mid + 1] ^= 0x55;
            let mut out = Vec::new();
            let r = c
                .decoder(bad.as_slice())
                .and_then(|mut d| d.read_to_end(&mut out));
            assert!(r.is_err() || out != data, "{c}: corruption is noticed");
        }
    }
}
