//! What a request to the binary cache asks for, decided from its method and path alone
//! (no I/O), so every shape of request, good or garbage, is testable without a server.

use crate::compression::Compression;
use crate::nixbase32;
use crate::store_path::{StorePath, DIGEST_LEN};

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/nix-cache-info`.
    CacheInfo,
    /// `/<hash part>.narinfo`.
    NarInfo {
        /// The store path digest the hash part encodes.
        digest: [u8; DIGEST_LEN],
    },
    /// `/nar/<hash part>-<NAR sha256, nixbase32>.nar[.xz|.zst|.bz2]`: the NAR of a path,
    /// compressed as the extension says. The NAR hash makes the URL name one content:
    /// a client holding a narinfo of an older registration gets a 404, not other bytes.
    Nar {
        /// The store path digest.
        digest: [u8; DIGEST_LEN],
        /// The NAR's sha256.
        nar_sha256: [u8; 32],
        /// How to compress it.
        compression: Compression,
    },
    /// `/nar/<file sha256, nixbase32>.nar[.xz|.zst|.bz2]`: a NAR file named by the hash of
    /// its (compressed) bytes, as `nix copy --to http://...` uploads them.
    NarFile {
        /// The sha256 of the file.
        file_sha256: [u8; 32],
        /// Its compression.
        compression: Compression,
    },
    /// `/<hash part>.ls`: the NAR listing of a path.
    Listing {
        /// The store path digest.
        digest: [u8; DIGEST_LEN],
    },
    /// `/log/<derivation base name>`: the build log of a derivation.
    Log {
        /// The derivation.
        drv: StorePath,
    },
    /// Anything else (a 404).
    NotFound,
}

/// The HTTP methods the cache distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`: the resource.
    Get,
    /// `HEAD`: the headers only (Nix asks this to check whether a path exists).
    Head,
    /// `PUT`: an upload (`nix copy --to http://...`).
    Put,
    /// Anything else.
    Other,
}

/// Where a NAR of `digest` with NAR hash `nar_sha256`, compressed with `compression`, is
/// served (relative to the cache root, as a narinfo's `URL`).
pub fn nar_url(
    digest: &[u8; DIGEST_LEN],
    nar_sha256: &[u8; 32],
    compression: Compression,
) -> String {
    format!(
        "nar/{}-{}.nar{}",
        nixbase32::encode(digest),
        nixbase32::encode(nar_sha256),
        compression.extension()
    )
}

/// Decodes a nixbase32 string of exactly `N` bytes.
fn decode_exact<const N: usize>(s: &str) -> Option<[u8; N]> {
    nixbase32::decode(s).ok()?.try_into().ok()
}

/// The route of a request for `path` (the URL path, without the query).
pub fn route(path: &str) -> Route {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path == "nix-cache-info" {
        return Route::CacheInfo;
    }
    if let Some(hash) = path.strip_suffix(".ls") {
        return match decode_exact::<DIGEST_LEN>(hash) {
            Some(digest) => Route::Listing { digest },
            None => Route::NotFound,
        };
    }
    if let Some(name) = path.strip_prefix("log/") {
        return match StorePath::from_base_name(name) {
            Ok(drv) if name.ends_with(".drv") => Route::Log { drv },
            _ => Route::NotFound,
        };
    }
    if let Some(hash) = path.strip_suffix(".narinfo") {
        return match decode_exact::<DIGEST_LEN>(hash) {
            Some(digest) => Route::NarInfo { digest },
            None => Route::NotFound,
        };
    }
    if let Some(file) = path.strip_prefix("nar/") {
        return nar_route(file).unwrap_or(Route::NotFound);
    }
    Route::NotFound
}

fn nar_route(file: &str) -> Option<Route> {
    let compressions = [
        Compression::None,
        Compression::Xz,
        Compression::Zstd,
        Compression::Bzip2,
    ];
    // Longest extension first: ".nar" alone is a suffix of none of the others' names,
    // but checking the compressed ones first keeps the match unambiguous.
    let (stem, compression) = compressions.iter().rev().find_map(|c| {
        let suffix = format!(".nar{}", c.extension());
        file.strip_suffix(&suffix).map(|stem| (stem, *c))
    })?;
    let Some((hash, nar)) = stem.split_once('-') else {
        return Some(Route::NarFile {
            file_sha256: decode_exact(stem)?,
            compression,
        });
    };
    Some(Route::Nar {
        digest: decode_exact(hash)?,
        nar_sha256: decode_exact(nar)?,
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_cache_layout() {
        assert_eq!(route("/nix-cache-info"), Route::CacheInfo);
        let digest = [7u8; DIGEST_LEN];
        let hash = nixbase32::encode(&digest);
        assert_eq!(
            route(&format!("/{hash}.narinfo")),
            Route::NarInfo { digest }
        );
        assert_eq!(route(&format!("/{hash}.ls")), Route::Listing { digest });
        let drv = format!("{hash}-x.drv");
        assert_eq!(
            route(&format!("/log/{drv}")),
            Route::Log {
                drv: StorePath::from_base_name(&drv).unwrap()
            }
        );
        for c in [
            Compression::None,
            Compression::Xz,
            Compression::Zstd,
            Compression::Bzip2,
        ] {
            let url = nar_url(&digest, &[9; 32], c);
            assert_eq!(
                route(&format!("/{url}")),
                Route::Nar {
                    digest,
                    nar_sha256: [9; 32],
                    compression: c
                }
            );
            let file = nixbase32::encode(&[3; 32]);
            assert_eq!(
                route(&format!("/nar/{file}.nar{}", c.extension())),
                Route::NarFile {
                    file_sha256: [3; 32],
                    compression: c
                }
            );
        }
    }

    #[test]
    fn garbage_is_not_found() {
        for p in [
            "/",
            "",
            "/x.narinfo",
            "/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.narinfo",
            "/0000000000000000000000000000000.narinfo",
            "/nar/",
            "/nar/abc.nar",
            "/nar/00000000000000000000000000000000.nar",
            "/nar/00000000000000000000000000000000-zz.nar.xz",
            "/nar/00000000000000000000000000000000-0000000000000000000000000000000000000000000000000000.nar.gz",
            "/../etc/passwd",
            "/nix-cache-info/x",
            "/x.ls",
            "/log/",
            "/log/x.drv",
            "/log/00000000000000000000000000000000-not-a-drv",
            "/log/00000000000000000000000000000000-x.drv/y",
            "/nar/0000.nar",
        ] {
            assert_eq!(route(p), Route::NotFound, "{p}");
        }
    }
}
