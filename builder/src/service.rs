//! [`open`]: a build service by URL, as stores are opened.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use tvix_store::StoreService;

use crate::{BuildError, BuildService};

/// Settings of the machine that builds, as Nix reads them from its configuration
/// (`--option NAME VALUE`, `nix.conf`); a remote service has its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    /// Nix's `sandbox-paths`: host paths made visible in every build, each `PATH`,
    /// `TARGET=SOURCE`, with a trailing `?` when the source may be missing.
    pub sandbox_paths: Vec<String>,
    /// Nix's `system-features`; `None` for the default (`nixos-test benchmark
    /// big-parallel`, plus `kvm` where `/dev/kvm` is usable).
    pub system_features: Option<BTreeSet<String>>,
    /// Nix's `extra-platforms`: systems built besides the machine's own.
    pub extra_platforms: Vec<String>,
    /// Where a local backend keeps its state (bundles, build directories, materialised
    /// inputs); `None` for its default.
    pub state_dir: Option<PathBuf>,
}

/// Opens the build service a URL names. Builds read their inputs from `store` and ingest
/// their outputs into it.
///
/// `grpc+unix:///path/to/socket` and `grpc+http://HOST:PORT` reach a `tvix builder
/// daemon`: it has its own store and options, so `store` must be the store the daemon
/// uses (e.g. the same `tvix store daemon`) and `options` are not used.
pub fn open(
    url: &str,
    store: Arc<dyn StoreService>,
    options: &ServiceOptions,
) -> Result<Box<dyn BuildService>, BuildError> {
    if url.starts_with("grpc+unix://") || url.starts_with("grpc+http://") {
        #[cfg(feature = "grpc")]
        return Ok(Box::new(crate::grpc::GrpcBuildService::connect(url)?));
        #[cfg(not(feature = "grpc"))]
        return Err(BuildError::BadUrl {
            url: url.to_string(),
            reason: "tvix-build was built without its `grpc` feature".into(),
        });
    }
    if let Some(rest) = url.strip_prefix("oci://") {
        // `oci://` uses the options' state directory or the default one;
        // `oci:///abs/dir` names it.
        let state_dir = match rest {
            "" => options
                .state_dir
                .clone()
                .unwrap_or_else(crate::oci::default_state_dir),
            p if p.starts_with('/') => PathBuf::from(p),
            _ => {
                return Err(BuildError::BadUrl {
                    url: url.to_string(),
                    reason: "expected oci:// or oci:///absolute/state/dir".into(),
                })
            }
        };
        return Ok(Box::new(crate::oci::OciBuildService::new(
            store, state_dir, options,
        )?));
    }
    Err(BuildError::BadUrl {
        url: url.to_string(),
        reason: "no backend for this scheme".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Arc<dyn StoreService> {
        Arc::from(tvix_store::open("memory://").unwrap())
    }

    #[test]
    fn oci_urls() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("oci://{}", dir.path().display());
        assert!(open(&url, store(), &ServiceOptions::default()).is_ok());
        assert!(dir.path().join("inputs").is_dir());
        let options = ServiceOptions {
            state_dir: Some(dir.path().join("from-options")),
            ..Default::default()
        };
        assert!(open("oci://", store(), &options).is_ok());
        assert!(dir.path().join("from-options").is_dir());
        assert!(matches!(
            open("oci://relative", store(), &options),
            Err(BuildError::BadUrl { .. })
        ));
        assert!(matches!(
            open("nope://", store(), &options),
            Err(BuildError::BadUrl { .. })
        ));
        let bad_paths = ServiceOptions {
            sandbox_paths: vec!["relative".into()],
            ..options
        };
        assert!(open("oci://", store(), &bad_paths).is_err());
    }
}
