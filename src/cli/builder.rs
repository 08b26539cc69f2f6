//! `tvix builder ...`: serve a build service to other machines.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tvix_build::ServiceOptions;

/// `tvix builder ...`: the builder subcommands.
#[derive(Args)]
pub(super) struct BuilderArgs {
    #[command(subcommand)]
    command: BuilderCommand,
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Serve a build service to `grpc+unix://` and `grpc+http://` clients until killed.
    ///
    /// Builds read their inputs from `--store` and ingest their outputs into it, and only
    /// digests travel between client and daemon: clients must use the same store (e.g.
    /// both talk to one `tvix store daemon`, or share a `local://` directory on one
    /// machine).
    Daemon {
        /// `unix:///path/to/socket` or `HOST:PORT` (port 0 picks a free port; the
        /// address to connect to is printed on standard error).
        #[arg(long, value_name = "ADDRESS")]
        listen: String,
        /// The store builds read from and write to. Defaults to `$TVIX_STORE`, else
        /// `local://`.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// The build service that runs the builds: `oci://` (runc on this machine), or
        /// another daemon (`grpc+unix://`, `grpc+http://`).
        #[arg(long, value_name = "URL", default_value = "oci://")]
        build_service: String,
        /// Where the build service keeps its state (bundles, build directories).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Set a Nix setting of the building machine: `sandbox-paths`,
        /// `extra-sandbox-paths`, `system-features`, `extra-system-features`,
        /// `extra-platforms`. Others are ignored with a warning.
        #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
        option: Vec<String>,
    },
}

pub(super) fn builder_command(args: BuilderArgs) -> i32 {
    let res = match args.command {
        BuilderCommand::Daemon {
            listen,
            store,
            build_service,
            state_dir,
            option,
        } => service_options(&option).and_then(|mut opts| {
            opts.state_dir = state_dir;
            let store = store.unwrap_or_else(tvix_store::castore::default_store_url);
            daemon_command(&listen, &store, &build_service, &opts)
        }),
    };
    match res {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

/// Nix's default `system-features` (what `extra-system-features` adds to).
fn default_system_features() -> BTreeSet<String> {
    let mut f: BTreeSet<String> = ["nixos-test", "benchmark", "big-parallel"]
        .into_iter()
        .map(String::from)
        .collect();
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm {
        f.insert("kvm".into());
    }
    f
}

/// The service options `--option NAME VALUE` pairs set (values are whitespace-separated
/// lists, as in `nix.conf`).
fn service_options(pairs: &[String]) -> Result<ServiceOptions, String> {
    let mut opts = ServiceOptions::default();
    for pair in pairs.chunks(2) {
        let [name, value] = pair else {
            return Err("--option takes a name and a value".into());
        };
        let words = || value.split_whitespace().map(String::from);
        match name.as_str() {
            "sandbox-paths" => opts.sandbox_paths = words().collect(),
            "extra-sandbox-paths" => opts.sandbox_paths.extend(words()),
            "system-features" => opts.system_features = Some(words().collect()),
            "extra-system-features" => opts
                .system_features
                .get_or_insert_with(default_system_features)
                .extend(words()),
            "extra-platforms" => opts.extra_platforms.extend(words()),
            other => eprintln!("warning: unknown setting '{other}'"),
        }
    }
    Ok(opts)
}

fn daemon_command(
    listen: &str,
    store_url: &str,
    service_url: &str,
    opts: &ServiceOptions,
) -> Result<i32, String> {
    use tvix_build::grpc::{parse_listen_addr, Server};
    let addr = parse_listen_addr(listen).map_err(|e| e.to_string())?;
    let store = tvix_store::open(store_url).map_err(|e| e.to_string())?;
    let service = tvix_build::open(service_url, store.into(), opts).map_err(|e| e.to_string())?;
    let caps = service.capabilities().map_err(|e| e.to_string())?;
    let server = Server::start(service.into(), &addr).map_err(|e| e.to_string())?;
    let features: Vec<&str> = caps.features.iter().map(String::as_str).collect();
    eprintln!(
        "building with {service_url} (systems: {}; features: {}) into {store_url}; serving on {}",
        caps.systems.join(" "),
        features.join(" "),
        server.url()
    );
    server.wait().map_err(|e| e.to_string())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = service_options(&strings(&[
            "sandbox-paths",
            "/bin/sh=/x/sh /etc/hosts?",
            "extra-sandbox-paths",
            "/opt",
            "system-features",
            "kvm  uid-range",
            "extra-system-features",
            "gccarch-znver3",
            "extra-platforms",
            "i686-linux",
            "max-jobs",
            "4",
        ]))
        .unwrap();
        assert_eq!(o.sandbox_paths, ["/bin/sh=/x/sh", "/etc/hosts?", "/opt"]);
        let f: Vec<&str> = o
            .system_features
            .as_ref()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(f, ["gccarch-znver3", "kvm", "uid-range"]);
        assert_eq!(o.extra_platforms, ["i686-linux"]);

        let o = service_options(&strings(&["extra-system-features", "x"])).unwrap();
        let f = o.system_features.unwrap();
        assert!(f.contains("x") && f.contains("big-parallel"));
        assert_eq!(service_options(&[]).unwrap(), ServiceOptions::default());
    }
}
