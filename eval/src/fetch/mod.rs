//! The mechanics behind the fetcher builtins (`fetchurl`, `fetchTarball`, `fetchGit`,
//! `fetchTree`): downloading a URL to a file, unpacking an archive, exporting a git
//! revision, and remembering what was fetched. What is fetched is then added to the store
//! through [`crate::io::EvalIO::add_path`]; nothing here knows about the store.

pub mod archive;
pub mod cache;
pub mod closure;
pub mod git;

use std::io::{self, Write};
use std::path::Path;

/// Why a fetch failed. The messages are the ones users see after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL could not be read.
    #[error("unable to download '{url}': {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong, e.g. that the host could not be resolved.
        reason: String,
    },
    /// The scheme is not one we can fetch.
    #[error("unsupported URL scheme in '{0}': tvix fetches file://, http:// and https:// URLs")]
    UnsupportedScheme(String),
    /// The archive could not be unpacked.
    #[error("unpacking '{what}': {reason}")]
    Unpack {
        /// The URL or file being unpacked.
        what: String,
        /// Why.
        reason: String,
    },
    /// A git command failed.
    #[error("{0}")]
    Git(String),
    /// A local file operation failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

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

/// The last path component of a URL (query and fragment removed), which names what
/// `fetchurl` stores when no name is given.
pub fn url_base_name(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = &url[..end];
    path.rsplit('/').next().unwrap_or(path)
}

/// `lastModifiedDate`: a Unix time as `%Y%m%d%H%M%S` in UTC.
pub fn format_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(format_date(0), "19700101000000");
        assert_eq!(format_date(1_795_644_103), "20261125220143");
        assert_eq!(format_date(951_782_400), "20000229000000");
    }

    #[test]
    fn base_names_drop_queries() {
        assert_eq!(url_base_name("https://e.com/a/b.tar.gz?x=1#f"), "b.tar.gz");
        assert_eq!(url_base_name("file:///tmp/x"), "x");
    }

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
