//! NAR files as binary caches serve them: compressed with `xz`, `bzip2` or `zstd` (as the
//! narinfo's `Compression` says), or not at all; decompressed as a stream.

use std::io::{self, Read};

use tvix_store::compression::Compression;

use super::FetchError;

/// Why decompressing failed, as an I/O error of the stream: the file it came from (`what`)
/// and what was wrong.
struct Named<'a> {
    inner: Box<dyn Read + Send + 'a>,
    what: String,
    compression: Compression,
}

impl Read for Named<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "unpacking '{}': not a valid {} stream: {e}",
                    self.what, self.compression
                ),
            )
        })
    }
}

/// A reader of the decompressed contents of `data`, a NAR file compressed with
/// `compression`; `what` names it in errors.
pub fn decompress<'a>(
    data: Box<dyn Read + Send + 'a>,
    compression: &str,
    what: &str,
) -> Result<Box<dyn Read + Send + 'a>, FetchError> {
    let c = Compression::parse(compression).map_err(|e| FetchError::Unpack {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    let inner = c.decoder(data).map_err(|e| FetchError::Unpack {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Box::new(Named {
        inner,
        what: what.to_string(),
        compression: c,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &[u8], compression: &str, what: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        decompress(Box::new(data), compression, what)
            .map_err(|e| e.to_string())?
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn compressions() {
        let data = b"nix-archive-1 and more".to_vec();
        assert_eq!(all(&data, "none", "x").unwrap(), data);
        let mut bz = Vec::new();
        std::io::Write::write_all(
            &mut bzip2::write::BzEncoder::new(&mut bz, bzip2::Compression::fast()),
            &data,
        )
        .unwrap();
        assert_eq!(all(&bz, "bzip2", "x").unwrap(), data);
        let e = all(&data, "xz", "x.nar.xz").unwrap_err();
        assert!(
            e.starts_with("unpacking 'x.nar.xz': not a valid xz stream"),
            "{e}"
        );
        let e = all(&data, "lz4", "x").unwrap_err();
        assert!(e.contains("unsupported compression 'lz4'"), "{e}");
    }
}
