//! The mechanics behind the fetcher builtins (`fetchurl`, `fetchTarball`, `fetchGit`,
//! `fetchTree`, `fetchClosure`), which the evaluator reaches through its IO's fetch
//! methods ([`crate::eval_io::Gated`]): downloading a URL to a file, unpacking an
//! archive, exporting a git revision, decompressing a binary cache's NAR, and remembering
//! what was fetched. The Nix semantics of the builtins (arguments, hashes, names, results)
//! stay in the evaluator; what is fetched is added to the store through its IO.

pub mod archive;
pub mod cache;
pub mod git;
pub mod nar;

pub use tvix_eval::fetch::FetchError;

use std::io::{self, Write};
use std::path::Path;

/// Downloads `url` (`file://`, `http://`, `https://`) into the file `dest`.
pub fn download(url: &str, dest: &Path) -> Result<(), FetchError> {
    let fail = |reason: String| FetchError::Download {
        url: url.to_string(),
        reason,
    };
    if let Some(path) = url.strip_prefix("file://") {
        let path = percent_decode(path);
        std::fs::copy(&path, dest).map_err(|e| fail(e.to_string()))?;
        return Ok(());
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::UnsupportedScheme(url.to_string()));
    }
    let response = ureq::get(url).call().map_err(|e| {
        let offline = "(is there a network connection?)";
        let reason = match &e {
            ureq::Error::Io(io)
                if io.to_string().contains("lookup")
                    || matches!(
                        io.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                    ) =>
            {
                format!("{io} {offline}")
            }
            ureq::Error::HostNotFound => format!("the host name could not be resolved {offline}"),
            ureq::Error::ConnectionFailed => format!("the connection failed {offline}"),
            other => other.to_string(),
        };
        fail(reason)
    })?;
    let mut body = response.into_body().into_reader();
    let mut out = io::BufWriter::new(std::fs::File::create(dest)?);
    io::copy(&mut body, &mut out).map_err(|e| fail(e.to_string()))?;
    out.flush()?;
    Ok(())
}

/// `%XX` escapes in a `file://` URL's path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_read_and_missing_ones_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a b");
        std::fs::write(&src, b"data").unwrap();
        let dest = dir.path().join("out");
        download(
            &format!("file://{}", dir.path().join("a%20b").display()),
            &dest,
        )
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        let err = download("file:///nonexistent/x", &dest).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("unable to download 'file:///nonexistent/x': "));
        let err = download("ftp://e.com/x", &dest).unwrap_err();
        assert!(err.to_string().contains("unsupported URL scheme"), "{err}");
    }
}
