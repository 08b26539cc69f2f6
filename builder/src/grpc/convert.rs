//! Conversions between the protocol's messages and the builder's types. Every conversion
//! from a message validates it: a request's nodes (digest lengths, symlink targets) and
//! then the whole request ([`BuildRequest::validate`]); a result against the request it
//! answers (exactly its outputs, in its order; valid nodes and hashes; references among
//! its needles); capabilities and failures for their own rules.

use std::collections::BTreeSet;
use std::time::Duration;

use tvix_store::castore::{Node, StoreError};
use tvix_store::grpc::node_to_proto;
use tvix_store::grpc::proto as sp;

use super::proto;
use crate::{
    BuildError, BuildEvent, BuildOutput, BuildRequest, BuildResult, Capabilities, Constraints,
    InvalidRequest, SandboxFile, ScratchDir,
};

/// A castore node from a message; `what` names it in errors.
fn node_from_proto(what: &str, n: Option<sp::Node>) -> Result<Node, String> {
    tvix_store::grpc::node_from_proto("node", n).map_err(|e| format!("{what}: {e}"))
}

/// Milliseconds on the wire: sub-millisecond remainders round up, so a limit never
/// becomes zero or shorter.
fn millis(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The message form of a request.
pub(crate) fn request_to_proto(r: &BuildRequest) -> proto::BuildRequest {
    proto::BuildRequest {
        program: r.program.clone(),
        argv: r.argv.clone(),
        env: r
            .env
            .iter()
            .map(|(name, value)| proto::EnvVar {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        working_dir: r.working_dir.clone(),
        scratch_dirs: r
            .scratch_dirs
            .iter()
            .map(|d| proto::ScratchDir {
                path: d.path.clone(),
                mode: d.mode,
            })
            .collect(),
        store_dir: r.store_dir.clone(),
        inputs: r
            .inputs
            .iter()
            .map(|(path, node)| proto::Input {
                path: path.clone(),
                node: Some(node_to_proto(node)),
            })
            .collect(),
        outputs: r.outputs.clone(),
        network: r.network,
        host_files: r.host_files.clone(),
        files: r
            .files
            .iter()
            .map(|f| proto::SandboxFile {
                path: f.path.clone(),
                contents: f.contents.clone(),
                mode: f.mode,
            })
            .collect(),
        needles: r.needles.clone(),
        constraints: Some(proto::Constraints {
            system: r.constraints.system.clone(),
            required_features: r.constraints.required_features.iter().cloned().collect(),
            timeout_ms: r.constraints.timeout.map(millis),
            max_silent_time_ms: r.constraints.max_silent_time.map(millis),
        }),
        keep_failed: r.keep_failed,
    }
}

/// A request from a message: its nodes are checked, then the request as a whole.
pub(crate) fn request_from_proto(m: proto::BuildRequest) -> Result<BuildRequest, InvalidRequest> {
    let inputs = m
        .inputs
        .into_iter()
        .map(|i| {
            let node = node_from_proto(&format!("input '{}'", i.path), i.node)?;
            Ok((i.path, node))
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(InvalidRequest)?;
    let c = m
        .constraints
        .ok_or_else(|| InvalidRequest("the constraints are missing".into()))?;
    let request = BuildRequest {
        program: m.program,
        argv: m.argv,
        env: m.env.into_iter().map(|v| (v.name, v.value)).collect(),
        working_dir: m.working_dir,
        scratch_dirs: m
            .scratch_dirs
            .into_iter()
            .map(|d| ScratchDir {
                path: d.path,
                mode: d.mode,
            })
            .collect(),
        store_dir: m.store_dir,
        inputs,
        outputs: m.outputs,
        network: m.network,
        host_files: m.host_files,
        files: m
            .files
            .into_iter()
            .map(|f| SandboxFile {
                path: f.path,
                contents: f.contents,
                mode: f.mode,
            })
            .collect(),
        needles: m.needles,
        constraints: Constraints {
            system: c.system,
            required_features: c.required_features.into_iter().collect(),
            timeout: c.timeout_ms.map(Duration::from_millis),
            max_silent_time: c.max_silent_time_ms.map(Duration::from_millis),
        },
        keep_failed: m.keep_failed,
    };
    request.validate()?;
    Ok(request)
}

pub(crate) fn capabilities_to_proto(c: &Capabilities) -> proto::Capabilities {
    proto::Capabilities {
        systems: c.systems.clone(),
        features: c.features.iter().cloned().collect(),
    }
}

pub(crate) fn capabilities_from_proto(m: proto::Capabilities) -> Result<Capabilities, String> {
    if m.systems.iter().chain(&m.features).any(|s| s.is_empty()) {
        return Err("capabilities name an empty system or feature".into());
    }
    Ok(Capabilities {
        systems: m.systems,
        features: m.features.into_iter().collect(),
    })
}

pub(crate) fn result_to_proto(r: &BuildResult) -> proto::BuildResult {
    proto::BuildResult {
        outputs: r
            .outputs
            .iter()
            .map(|o| proto::Output {
                path: o.path.clone(),
                node: Some(node_to_proto(&o.node)),
                nar_sha256: o.nar_sha256.to_vec(),
                nar_size: o.nar_size,
                references: o.references.iter().cloned().collect(),
            })
            .collect(),
    }
}

/// A result from a message, checked against the request it answers.
pub(crate) fn result_from_proto(
    m: proto::BuildResult,
    request: &BuildRequest,
) -> Result<BuildResult, String> {
    if m.outputs.len() != request.outputs.len() {
        return Err(format!(
            "the result has {} outputs, the request {}",
            m.outputs.len(),
            request.outputs.len()
        ));
    }
    let needles: BTreeSet<&str> = request.needles.iter().map(String::as_str).collect();
    let mut outputs = Vec::with_capacity(m.outputs.len());
    for (o, wanted) in m.outputs.into_iter().zip(&request.outputs) {
        if &o.path != wanted {
            return Err(format!(
                "the result has output '{}' where the request has '{wanted}'",
                o.path
            ));
        }
        let what = format!("output '{}'", o.path);
        let node = node_from_proto(&what, o.node)?;
        let nar_sha256: [u8; 32] = o.nar_sha256[..].try_into().map_err(|_| {
            format!(
                "{what}: NAR sha256 has {} bytes, not 32",
                o.nar_sha256.len()
            )
        })?;
        // The smallest NAR (a symlink or an empty file) is longer than this.
        if o.nar_size < 64 {
            return Err(format!("{what}: NAR size {} is too small", o.nar_size));
        }
        let mut references = BTreeSet::new();
        for r in o.references {
            if !needles.contains(r.as_str()) {
                return Err(format!("{what}: reference '{r}' is not a needle"));
            }
            references.insert(r);
        }
        outputs.push(BuildOutput {
            path: o.path,
            node,
            nar_sha256,
            nar_size: o.nar_size,
            references,
        });
    }
    Ok(BuildResult { outputs })
}

pub(crate) fn event_to_proto(e: BuildEvent) -> proto::build_response::Kind {
    use proto::build_response::Kind;
    match e {
        BuildEvent::Started { machine } => Kind::Started(proto::Started { machine }),
        BuildEvent::Log(line) => Kind::Log(line),
        BuildEvent::Phase(p) => Kind::Phase(p),
        BuildEvent::KeptBuildDir(d) => Kind::KeptBuildDir(d),
    }
}

/// The message form of a build's failure.
pub(crate) fn failure_to_proto(e: &BuildError) -> proto::BuildFailure {
    use proto::build_failure::Kind;
    let kind = match e {
        BuildError::InvalidRequest(InvalidRequest(m)) => Kind::InvalidRequest(m.clone()),
        BuildError::Unsupported(m) => Kind::Unsupported(m.clone()),
        BuildError::ExitCode(c) => Kind::ExitCode(*c),
        BuildError::Signal(s) => Kind::Signal(*s),
        BuildError::TimedOut(s) => Kind::TimedOutSecs(*s),
        BuildError::Silent(s) => Kind::SilentSecs(*s),
        BuildError::MissingOutput(p) => Kind::MissingOutput(p.clone()),
        BuildError::BadOutput { path, reason } => Kind::BadOutput(proto::BadOutput {
            path: path.clone(),
            reason: reason.clone(),
        }),
        BuildError::Cancelled => Kind::Cancelled(proto::Empty {}),
        BuildError::Sandbox(m) => Kind::Sandbox(m.clone()),
        BuildError::Store(e) => Kind::Store(e.to_string()),
        BuildError::Io(e) => Kind::Io(e.to_string()),
        // A relaying daemon that lost the next one is itself still there: to its client
        // that is the service failing, not a lost machine.
        BuildError::Remote { .. } | BuildError::BadUrl { .. } | BuildError::Lost { .. } => {
            Kind::Remote(e.to_string())
        }
    };
    proto::BuildFailure { kind: Some(kind) }
}

/// A failure from a message of the service at `url`.
pub(crate) fn failure_from_proto(m: proto::BuildFailure, url: &str) -> BuildError {
    use proto::build_failure::Kind;
    let remote = |message: String| BuildError::Remote {
        url: url.to_string(),
        message,
    };
    match m.kind {
        None => remote("invalid response: a failure without a kind".into()),
        Some(Kind::InvalidRequest(m)) => BuildError::InvalidRequest(InvalidRequest(m)),
        Some(Kind::Unsupported(m)) => BuildError::Unsupported(m),
        Some(Kind::ExitCode(c)) => BuildError::ExitCode(c),
        Some(Kind::Signal(s)) => BuildError::Signal(s),
        Some(Kind::TimedOutSecs(s)) => BuildError::TimedOut(s),
        Some(Kind::SilentSecs(s)) => BuildError::Silent(s),
        Some(Kind::MissingOutput(p)) => BuildError::MissingOutput(p),
        Some(Kind::BadOutput(b)) => BuildError::BadOutput {
            path: b.path,
            reason: b.reason,
        },
        Some(Kind::Cancelled(_)) => BuildError::Cancelled,
        Some(Kind::Sandbox(m)) => BuildError::Sandbox(m),
        Some(Kind::Store(message)) => BuildError::Store(StoreError::Remote {
            url: format!("of the build service {url}"),
            message,
        }),
        Some(Kind::Io(m)) => BuildError::Io(std::io::Error::other(m)),
        Some(Kind::Remote(m)) => remote(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_store::castore::B3Digest;

    fn request() -> BuildRequest {
        BuildRequest {
            program: "/nix/store/00000000000000000000000000000000-sh/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec![("out".into(), "/nix/store/1-x".into())],
            working_dir: "/build".into(),
            scratch_dirs: vec![ScratchDir {
                path: "/build".into(),
                mode: 0o700,
            }],
            store_dir: "/nix/store".into(),
            inputs: vec![
                (
                    "/nix/store/00000000000000000000000000000000-sh".into(),
                    Node::Directory {
                        digest: B3Digest([7; 32]),
                        size: 3,
                    },
                ),
                (
                    "/nix/store/2-f".into(),
                    Node::File {
                        digest: B3Digest([8; 32]),
                        size: 10,
                        executable: true,
                    },
                ),
                (
                    "/nix/store/3-l".into(),
                    Node::Symlink {
                        target: b"/x".to_vec(),
                    },
                ),
            ],
            outputs: vec!["/nix/store/1-x".into()],
            network: true,
            host_files: vec!["/etc/resolv.conf".into()],
            files: vec![SandboxFile {
                path: "/etc/passwd".into(),
                contents: b"root:x:0:0::/:/bin/sh\n".to_vec(),
                mode: 0o444,
            }],
            needles: vec!["1".into(), "2".into()],
            constraints: Constraints {
                system: "x86_64-linux".into(),
                required_features: ["kvm".to_string()].into(),
                timeout: Some(Duration::from_secs(3600)),
                max_silent_time: Some(Duration::from_micros(1500)),
            },
            keep_failed: true,
        }
    }

    #[test]
    fn requests_round_trip() {
        let r = request();
        let back = request_from_proto(request_to_proto(&r)).unwrap();
        let mut expected = r;
        // 1.5 ms travels as 2 ms: limits are rounded up, never down.
        expected.constraints.max_silent_time = Some(Duration::from_millis(2));
        assert_eq!(back, expected);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let mut m = request_to_proto(&request());
        if let Some(sp::node::Kind::Directory(d)) = m.inputs[0].node.as_mut().unwrap().kind.as_mut()
        {
            d.digest = vec![1, 2, 3].into();
        }
        let e = request_from_proto(m).unwrap_err();
        assert!(e.0.contains("digest has 3 bytes"), "{e}");

        let mut m = request_to_proto(&request());
        m.inputs[2].node = Some(sp::Node {
            kind: Some(sp::node::Kind::Symlink(sp::SymlinkNode {
                target: vec![].into(),
            })),
        });
        assert!(request_from_proto(m).is_err());

        let mut m = request_to_proto(&request());
        m.inputs[1].node = None;
        assert!(request_from_proto(m).is_err());

        let mut m = request_to_proto(&request());
        m.constraints = None;
        assert!(request_from_proto(m).is_err());

        let mut m = request_to_proto(&request());
        m.outputs[0] = "relative/out".into();
        assert!(request_from_proto(m).is_err());
    }

    fn output() -> BuildOutput {
        BuildOutput {
            path: "/nix/store/1-x".into(),
            node: Node::File {
                digest: B3Digest([9; 32]),
                size: 4,
                executable: false,
            },
            nar_sha256: [5; 32],
            nar_size: 120,
            references: ["2".to_string()].into(),
        }
    }

    #[test]
    fn results_are_checked_against_the_request() {
        let r = request();
        let ok = BuildResult {
            outputs: vec![output()],
        };
        assert_eq!(result_from_proto(result_to_proto(&ok), &r).unwrap(), ok);

        type Edit = fn(&mut proto::BuildResult);
        let edits: Vec<(&str, Edit)> = vec![
            ("extra output", |m| m.outputs.push(m.outputs[0].clone())),
            ("no outputs", |m| m.outputs.clear()),
            ("other path", |m| {
                m.outputs[0].path = "/nix/store/9-y".into()
            }),
            ("short hash", |m| {
                m.outputs[0].nar_sha256.pop();
            }),
            ("tiny NAR", |m| m.outputs[0].nar_size = 3),
            ("not a needle", |m| m.outputs[0].references.push("z".into())),
            ("no node", |m| m.outputs[0].node = None),
        ];
        for (what, edit) in edits {
            let mut m = result_to_proto(&ok);
            edit(&mut m);
            assert!(result_from_proto(m, &r).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn failures_round_trip() {
        let cases = vec![
            BuildError::InvalidRequest(InvalidRequest("x".into())),
            BuildError::Unsupported("aarch64-linux".into()),
            BuildError::ExitCode(3),
            BuildError::Signal(9),
            BuildError::TimedOut(10),
            BuildError::Silent(5),
            BuildError::MissingOutput("/nix/store/1-x".into()),
            BuildError::BadOutput {
                path: "/nix/store/1-x".into(),
                reason: "world-writable".into(),
            },
            BuildError::Cancelled,
            BuildError::Sandbox("runc failed".into()),
        ];
        for e in cases {
            let back = failure_from_proto(failure_to_proto(&e), "grpc+unix:///s");
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{e}"
            );
        }
        let store = failure_from_proto(
            failure_to_proto(&BuildError::Store(StoreError::PathNotValid("p".into()))),
            "u",
        );
        assert!(matches!(store, BuildError::Store(_)), "{store}");
        assert!(store.to_string().contains("p"), "{store}");
        let io = failure_from_proto(
            failure_to_proto(&BuildError::Io(std::io::Error::other("disk full"))),
            "u",
        );
        assert!(matches!(io, BuildError::Io(_)) && io.to_string().contains("disk full"));
        let none = failure_from_proto(proto::BuildFailure { kind: None }, "u");
        assert!(matches!(none, BuildError::Remote { .. }));
    }

    #[test]
    fn capabilities_round_trip() {
        let c = Capabilities {
            systems: vec!["x86_64-linux".into(), "i686-linux".into()],
            features: ["kvm".to_string(), "big-parallel".to_string()].into(),
        };
        assert_eq!(
            capabilities_from_proto(capabilities_to_proto(&c)).unwrap(),
            c
        );
        assert!(capabilities_from_proto(proto::Capabilities {
            systems: vec![String::new()],
            features: vec![],
        })
        .is_err());
    }
}
