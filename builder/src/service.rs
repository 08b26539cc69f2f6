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
/// `oci://` (or `oci:///abs/state/dir`) runs builds with runc on this machine; its
/// `?inputs=copy` parameter copies build inputs into the state directory instead of
/// bind-mounting them from the store's FUSE mount (`?inputs=mount`, the default).
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
        let (rest, inputs) = oci_parameters(url, rest)?;
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
            store, state_dir, options, inputs,
        )?));
    }
    let ssh = url.starts_with("ssh://") || url.starts_with("ssh-ng://");
    Err(BuildError::BadUrl {
        url: url.to_string(),
        reason: if ssh {
            "Nix's ssh:// and ssh-ng:// builders are not supported: tvix builds on tvix builder \
             daemons (grpc+http://HOST:PORT, grpc+unix:///PATH), which share the store"
                .into()
        } else {
            "no backend for this scheme".into()
        },
    })
}

/// Splits `oci://` URL's query (`?inputs=mount|copy`) from the rest, as Nix store URLs
/// carry their settings.
fn oci_parameters<'a>(
    url: &str,
    rest: &'a str,
) -> Result<(&'a str, crate::oci::InputsMode), BuildError> {
    let bad = |reason: String| BuildError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let Some((rest, query)) = rest.split_once('?') else {
        return Ok((rest, crate::oci::InputsMode::Mount));
    };
    let mut inputs = crate::oci::InputsMode::Mount;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("inputs", "mount")) => inputs = crate::oci::InputsMode::Mount,
            Some(("inputs", "copy")) => inputs = crate::oci::InputsMode::Copy,
            Some(("inputs", v)) => {
                return Err(bad(format!("inputs must be 'mount' or 'copy', not '{v}'")))
            }
            _ => return Err(bad(format!("unknown parameter '{pair}' (known: inputs)"))),
        }
    }
    Ok((rest, inputs))
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

    #[test]
    fn oci_inputs_parameter() {
        use crate::oci::InputsMode;
        fn p(u: &'static str) -> Result<(&'static str, InputsMode), BuildError> {
            oci_parameters(u, u.strip_prefix("oci://").unwrap())
        }
        assert_eq!(p("oci://").unwrap(), ("", InputsMode::Mount));
        assert_eq!(p("oci://?inputs=copy").unwrap(), ("", InputsMode::Copy));
        assert_eq!(
            p("oci:///var/x?inputs=mount").unwrap(),
            ("/var/x", InputsMode::Mount)
        );
        assert!(matches!(
            p("oci://?inputs=fast"),
            Err(BuildError::BadUrl { reason, .. }) if reason.contains("'fast'")
        ));
        assert!(matches!(
            p("oci://?sandbox=false"),
            Err(BuildError::BadUrl { reason, .. }) if reason.contains("sandbox=false")
        ));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("oci://{}?inputs=copy", dir.path().display());
        assert!(open(&url, store(), &ServiceOptions::default()).is_ok());
        assert!(dir.path().join("inputs").is_dir());
    }
}
