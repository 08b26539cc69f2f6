//! What the fetcher builtins (`fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`,
//! `fetchClosure`) exchange with the IO that does the fetching: the requests, results and
//! errors of [`crate::io::EvalIO`]'s fetch methods, and the pure helpers of their Nix
//! semantics. The mechanics (HTTP, archives, git, the fetch cache) are not the
//! evaluator's: the coordinator's IO implements them.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

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
    /// This evaluation's IO does not fetch (compute-only IO, the language server unless
    /// its settings allow it); the message says what was asked and what allows it.
    #[error("{0}")]
    Refused(String),
}

/// The git revision a fetch exported.
#[derive(Debug, Clone)]
pub struct GitRevision {
    /// The commit hash (40 zeros for a dirty working tree).
    pub rev: String,
    /// Commits reachable from it (0 for a dirty working tree).
    pub rev_count: u64,
    /// Its commit time (of `HEAD` for a dirty working tree), seconds since the epoch.
    pub last_modified: i64,
    /// Whether the working tree's uncommitted changes were exported.
    pub dirty: bool,
}

/// Which revision of a git repository to export.
pub struct GitRequest<'a> {
    /// A path, `file://` URL or remote URL.
    pub url: &'a str,
    /// A branch or tag name, or a full `refs/...` name.
    pub git_ref: Option<&'a str>,
    /// A commit hash.
    pub rev: Option<&'a str>,
}

/// A remembered fetch: its fields and how long ago it was stored.
pub struct CacheEntry {
    /// The fields given to [`crate::io::EvalIO::fetch_cache_put`].
    pub fields: BTreeMap<String, String>,
    /// The time since the entry was written.
    pub age: Duration,
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
}
