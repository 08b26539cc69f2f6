//! What `builtins.fetchClosure` reads from a binary cache (`http(s)://`, and `file://` for
//! a cache on disk): `nix-cache-info`, the `.narinfo` of each store path, and its NAR,
//! compressed (`xz`, `bzip2`, `zstd`) or not.

use std::io::Read;

use super::FetchError;

/// The fields of a `.narinfo` file that fetching a closure uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NarInfo {
    /// The store path (absolute).
    pub store_path: String,
    /// Where the NAR is, relative to the cache.
    pub url: String,
    /// How the NAR file is compressed (`none` if not said).
    pub compression: String,
    /// The NAR's hash, `sha256:` and nix32.
    pub nar_hash: String,
    /// The NAR's size in bytes.
    pub nar_size: u64,
    /// The base names of the referenced store paths.
    pub references: Vec<String>,
    /// The content address (`fixed:...` or `text:...`), if the path has one.
    pub ca: Option<String>,
}

/// Parses a `.narinfo` file (lines of `Key: value`); `what` names it in errors.
pub fn parse_narinfo(text: &str, what: &str) -> Result<NarInfo, FetchError> {
    let bad = |reason: String| FetchError::Download {
        url: what.to_string(),
        reason,
    };
    let mut info = NarInfo {
        compression: "bzip2".to_string(),
        ..NarInfo::default()
    };
    let mut size = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .ok_or_else(|| bad(format!("malformed line '{line}' in the narinfo")))?;
        match key {
            "StorePath" => info.store_path = value.to_string(),
            "URL" => info.url = value.to_string(),
            "Compression" => info.compression = value.to_string(),
            "NarHash" => info.nar_hash = value.to_string(),
            "NarSize" => {
                size = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("invalid NarSize '{value}'")))?,
                )
            }
            "References" => {
                info.references = value.split_whitespace().map(str::to_string).collect()
            }
            "CA" if !value.is_empty() => info.ca = Some(value.to_string()),
            _ => {}
        }
    }
    for (field, missing) in [
        ("StorePath", info.store_path.is_empty()),
        ("URL", info.url.is_empty()),
        ("NarHash", info.nar_hash.is_empty()),
        ("NarSize", size.is_none()),
    ] {
        if missing {
            return Err(bad(format!("the narinfo has no '{field}' field")));
        }
    }
    info.nar_size = size.unwrap_or_default();
    Ok(info)
}

/// The contents of `url` (a file of a binary cache).
pub fn fetch_bytes(url: &str) -> Result<Vec<u8>, FetchError> {
    let tmp = tempfile::NamedTempFile::new()?;
    super::download(url, tmp.path())?;
    Ok(std::fs::read(tmp.path())?)
}

/// Decompresses a NAR file compressed with `compression` (as a narinfo names it).
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
    fn narinfo_fields() {
        let text = "StorePath: /nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt\n\
                    URL: nar/17gd.nar.xz\nCompression: xz\nFileSize: 128\n\
                    NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\n\
                    NarSize: 120\nReferences: \n\
                    CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\n";
        let i = parse_narinfo(text, "x.narinfo").unwrap();
        assert_eq!(i.url, "nar/17gd.nar.xz");
        assert_eq!(i.compression, "xz");
        assert_eq!(i.nar_size, 120);
        assert!(i.references.is_empty());
        assert!(i.ca.as_deref().unwrap().starts_with("fixed:r:sha256:"));
        let e = parse_narinfo("StorePath: /nix/store/x\n", "x.narinfo").unwrap_err();
        assert!(e.to_string().contains("no 'URL' field"), "{e}");
        assert!(parse_narinfo("garbage", "x.narinfo").is_err());
    }
}
