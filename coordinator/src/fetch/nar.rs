//! NAR files as binary caches serve them: compressed with `xz`, `bzip2` or `zstd` (as the
//! narinfo's `Compression` says), or not at all.

use std::io::Read;

use super::FetchError;

/// Decompresses a NAR file compressed with `compression`; `what` names it in errors.
pub fn decompress(data: Vec<u8>, compression: &str, what: &str) -> Result<Vec<u8>, FetchError> {
    let fail = |reason: String| FetchError::Unpack {
        what: what.to_string(),
        reason,
    };
    let mut out = Vec::new();
    match compression {
        "none" | "" => return Ok(data),
        "xz" => lzma_rs::xz_decompress(&mut data.as_slice(), &mut out)
            .map_err(|e| fail(format!("not an xz stream: {e}")))?,
        "bzip2" => {
            bzip2::read::MultiBzDecoder::new(data.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| fail(format!("not a bzip2 stream: {e}")))?;
        }
        "zstd" => {
            ruzstd::decoding::StreamingDecoder::new(data.as_slice())
                .map_err(|e| fail(format!("not a zstd stream: {e}")))?
                .read_to_end(&mut out)
                .map_err(|e| fail(format!("not a zstd stream: {e}")))?;
        }
        other => return Err(fail(format!("unsupported compression '{other}'"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressions() {
        let data = b"nix-archive-1 and more".to_vec();
        assert_eq!(decompress(data.clone(), "none", "x").unwrap(), data);
        let mut bz = Vec::new();
        std::io::Write::write_all(
            &mut bzip2::write::BzEncoder::new(&mut bz, bzip2::Compression::fast()),
            &data,
        )
        .unwrap();
        assert_eq!(decompress(bz, "bzip2", "x").unwrap(), data);
        let e = decompress(data.clone(), "xz", "x.nar.xz").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unpacking 'x.nar.xz': not an xz stream"),
            "{e}"
        );
        let e = decompress(data, "lz4", "x").unwrap_err();
        assert!(
            e.to_string().contains("unsupported compression 'lz4'"),
            "{e}"
        );
    }
}
