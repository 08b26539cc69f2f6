//! Build machines: Nix's `builders` setting, read for tvix builder daemons.
//!
//! The setting is a list of machines, one per line or `;`-separated, `#` starting a
//! comment. Each machine is whitespace-separated fields, `-` standing for an empty one:
//!
//! 1. the URL: a `tvix builder daemon`, `grpc+http://HOST:PORT` or
//!    `grpc+unix:///PATH`. Nix's `ssh://`, `ssh-ng://` and bare host names are parsed
//!    like the others but never used (a tvix builder shares the coordinator's store
//!    instead of receiving copies): the run warns that it does not use them, as for a
//!    builder it cannot reach, so a Nix user's `/etc/nix/machines` with SSH builders
//!    does not stop local builds;
//! 2. the systems it builds for, comma-separated (default: this machine's `system`);
//! 3. an SSH identity file (must be empty for a tvix builder daemon);
//! 4. how many builds it runs at once (default 1);
//! 5. its speed factor, a positive number (default 1);
//! 6. its supported features, comma-separated;
//! 7. its mandatory features, comma-separated (it takes only derivations that require
//!    all of them; they count as supported too);
//! 8. an SSH host key (must be empty for a tvix builder daemon).
//!
//! An entry `@FILE` stands for the machines listed in that file (a missing file lists
//! none, as in Nix); Nix's default value is `@/etc/nix/machines`.
//!
//! Parsing ([`parse`]) is a pure function; [`read`] also reads `@FILE` entries.

use std::collections::BTreeSet;
use std::path::Path;

use thiserror::Error;

/// Nix's default `builders`.
pub const DEFAULT_BUILDERS: &str = "@/etc/nix/machines";

/// A machine that builds derivations: a remote builder, or this machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// The build service's URL (`localhost` for this machine).
    pub url: String,
    /// The systems it builds for.
    pub systems: BTreeSet<String>,
    /// How many builds it runs at once (0: none).
    pub max_jobs: usize,
    /// How fast it is relative to the others (positive).
    pub speed_factor: f64,
    /// The features it supports (the mandatory ones included).
    pub supported_features: BTreeSet<String>,
    /// The features a derivation must require to be built here.
    pub mandatory_features: BTreeSet<String>,
}

impl Machine {
    /// This machine: its systems (`system` and `extra-platforms`), `system-features` and
    /// `max-jobs`.
    pub fn this_machine(
        systems: BTreeSet<String>,
        features: BTreeSet<String>,
        max_jobs: usize,
    ) -> Machine {
        Machine {
            url: "localhost".into(),
            systems,
            max_jobs,
            speed_factor: 1.0,
            supported_features: features,
            mandatory_features: BTreeSet::new(),
        }
    }

    /// Whether it can build a derivation for `system` requiring `features` (Nix's
    /// `allSupported` and `mandatoryMet`).
    pub fn can_build(&self, system: &str, features: &BTreeSet<String>) -> bool {
        self.systems.contains(system)
            && features.is_subset(&self.supported_features)
            && self.mandatory_features.is_subset(features)
    }
}

/// Why the `builders` setting was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MachinesError {
    /// A field has a value it cannot have.
    #[error("builder '{line}': invalid {field} '{value}'")]
    BadField {
        /// The machine's entry.
        line: String,
        /// Which field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A field only SSH builders have.
    #[error("builder '{line}': an SSH {field} has no meaning for a tvix builder daemon")]
    SshField {
        /// The machine's entry.
        line: String,
        /// Which field.
        field: &'static str,
    },
    /// Too many fields.
    #[error("builder '{line}': more than 8 fields")]
    TooManyFields {
        /// The machine's entry.
        line: String,
    },
    /// A machines file exists but cannot be read.
    #[error("reading the machines file '{file}': {reason}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

/// The entries of a `builders` value: split on newlines and `;`, comments and blanks
/// dropped.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', ';'])
        .map(|e| e.split('#').next().unwrap_or_default().trim())
        .filter(|e| !e.is_empty())
}

/// Parses a `builders` value without `@FILE` entries (an `@` entry is refused as a URL).
/// `this_system` is the default of the systems field.
pub fn parse(text: &str, this_system: &str) -> Result<Vec<Machine>, MachinesError> {
    entries(text).map(|e| parse_entry(e, this_system)).collect()
}

/// Parses a `builders` value, reading the machines of each `@FILE` entry.
pub fn read(text: &str, this_system: &str) -> Result<Vec<Machine>, MachinesError> {
    let mut machines = Vec::new();
    for entry in entries(text) {
        match entry.strip_prefix('@') {
            Some(file) => {
                let file = file.trim();
                match std::fs::read_to_string(Path::new(file)) {
                    Ok(contents) => machines.extend(parse(&contents, this_system)?),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(MachinesError::Read {
                            file: file.to_string(),
                            reason: e.to_string(),
                        })
                    }
                }
            }
            None => machines.push(parse_entry(entry, this_system)?),
        }
    }
    Ok(machines)
}

fn parse_entry(line: &str, this_system: &str) -> Result<Machine, MachinesError> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() > 8 {
        return Err(MachinesError::TooManyFields { line: line.into() });
    }
    // Absent and `-` are both empty.
    let field = |i: usize| fields.get(i).copied().filter(|f| *f != "-");
    let list = |i: usize| -> BTreeSet<String> {
        field(i)
            .map(|f| {
                f.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let url = fields[0];
    // SSH machines keep their SSH fields: they are listed (and passed over when the
    // run opens its builders), not refused.
    let tvix_daemon = url.starts_with("grpc+http://") || url.starts_with("grpc+unix://");
    let bad = |field: &'static str, value: &str| MachinesError::BadField {
        line: line.into(),
        field,
        value: value.into(),
    };
    let mut systems = list(1);
    if systems.is_empty() {
        systems.insert(this_system.to_string());
    }
    if tvix_daemon && field(2).is_some() {
        return Err(MachinesError::SshField {
            line: line.into(),
            field: "identity file",
        });
    }
    let max_jobs = match field(3) {
        Some(v) => v.parse().map_err(|_| bad("maximum number of jobs", v))?,
        None => 1,
    };
    let speed_factor = match field(4) {
        Some(v) => match v.parse::<f64>() {
            Ok(f) if f > 0.0 && f.is_finite() => f,
            _ => return Err(bad("speed factor", v)),
        },
        None => 1.0,
    };
    let mandatory_features = list(6);
    let mut supported_features = list(5);
    supported_features.extend(mandatory_features.iter().cloned());
    if tvix_daemon && field(7).is_some() {
        return Err(MachinesError::SshField {
            line: line.into(),
            field: "host key",
        });
    }
    Ok(Machine {
        url: url.to_string(),
        systems,
        max_jobs,
        speed_factor,
        supported_features,
        mandatory_features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_and_defaults() {
        let m = parse(
            "grpc+http://a:1 x86_64-linux,i686-linux - 4 2.5 kvm,big-parallel benchmark -\n\
             # a comment\n\
             grpc+unix:///run/b.sock ; grpc+http://c:3 - - - - - - # trailing",
            "x86_64-linux",
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].url, "grpc+http://a:1");
        assert_eq!(m[0].systems, set(&["i686-linux", "x86_64-linux"]));
        assert_eq!(m[0].max_jobs, 4);
        assert_eq!(m[0].speed_factor, 2.5);
        assert_eq!(
            m[0].supported_features,
            set(&["benchmark", "big-parallel", "kvm"])
        );
        assert_eq!(m[0].mandatory_features, set(&["benchmark"]));
        for d in &m[1..] {
            assert_eq!(d.systems, set(&["x86_64-linux"]));
            assert_eq!((d.max_jobs, d.speed_factor), (1, 1.0));
            assert!(d.supported_features.is_empty() && d.mandatory_features.is_empty());
        }
        assert_eq!(m[1].url, "grpc+unix:///run/b.sock");
        assert!(parse("  \n ; # nothing\n", "x").unwrap().is_empty());
    }

    #[test]
    fn ssh_machines_are_listed_with_their_fields_and_bad_fields_refused() {
        let m = parse(
            "grpc+http://ok:1\nssh://mac x86_64-darwin /root/.ssh/id 4 2 - - AAAA\nssh-ng://b\nbuilder.example.org",
            "x",
        )
        .unwrap();
        let urls: Vec<&str> = m.iter().map(|m| m.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "grpc+http://ok:1",
                "ssh://mac",
                "ssh-ng://b",
                "builder.example.org"
            ]
        );
        assert_eq!(m[1].max_jobs, 4);
        assert!(m[1].systems.contains("x86_64-darwin"));
        assert_eq!(
            parse("grpc+http://a:1 - - many", "x")
                .unwrap_err()
                .to_string(),
            "builder 'grpc+http://a:1 - - many': invalid maximum number of jobs 'many'"
        );
        for speed in ["0", "-1", "fast", "inf"] {
            assert!(matches!(
                parse(&format!("grpc+http://a:1 - - 1 {speed}"), "x").unwrap_err(),
                MachinesError::BadField {
                    field: "speed factor",
                    ..
                }
            ));
        }
        assert!(matches!(
            parse("grpc+http://a:1 - /root/.ssh/id", "x").unwrap_err(),
            MachinesError::SshField { .. }
        ));
        assert!(matches!(
            parse("grpc+http://a:1 - - 1 1 - - AAAA", "x").unwrap_err(),
            MachinesError::SshField { .. }
        ));
        assert!(matches!(
            parse("grpc+http://a:1 - - 1 1 - - - extra", "x").unwrap_err(),
            MachinesError::TooManyFields { .. }
        ));
    }

    #[test]
    fn files_are_read_and_a_missing_one_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("machines");
        std::fs::write(&file, "grpc+http://f:1 - - 2\ngrpc+http://g:1\n").unwrap();
        let text = format!(
            "grpc+http://a:1 ; @{} ; @{}/missing",
            file.display(),
            dir.path().display()
        );
        let urls: Vec<String> = read(&text, "x")
            .unwrap()
            .into_iter()
            .map(|m| m.url)
            .collect();
        assert_eq!(
            urls,
            ["grpc+http://a:1", "grpc+http://f:1", "grpc+http://g:1"]
        );
        std::fs::write(&file, "ssh://x - /id\n").unwrap();
        assert_eq!(
            read(&format!("@{}", file.display()), "x").unwrap()[0].url,
            "ssh://x"
        );
    }

    #[test]
    fn matching_follows_systems_and_features() {
        let m = parse("grpc+http://a:1 x86_64-linux - 1 1 kvm big", "x").unwrap();
        let m = &m[0];
        assert!(m.can_build("x86_64-linux", &set(&["big"])));
        assert!(m.can_build("x86_64-linux", &set(&["big", "kvm"])));
        // The mandatory feature must be required.
        assert!(!m.can_build("x86_64-linux", &set(&[])));
        assert!(!m.can_build("x86_64-linux", &set(&["big", "gpu"])));
        assert!(!m.can_build("aarch64-linux", &set(&["big"])));
    }
}
