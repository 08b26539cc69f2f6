//! Reading files of a binary cache: a directory (`file://`) or an HTTP server
//! (`http://`, `https://`), with the timeouts of Nix's `connect-timeout` and
//! `stalled-download-timeout`.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use thiserror::Error;

/// Why a file of a cache could not be read.
#[derive(Debug, Error)]
#[error("unable to download '{url}': {reason}")]
pub struct TransportError {
    /// The file's URL.
    pub url: String,
    /// Why.
    pub reason: String,
}

/// Timeouts of HTTP caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for a connection (Nix's `connect-timeout`).
    pub connect: Duration,
    /// Longest time without a byte received (Nix's `stalled-download-timeout`).
    pub stalled: Duration,
}

/// Where a cache's files are.
pub enum Transport {
    /// A directory.
    File(PathBuf),
    /// An HTTP(S) server: the base URL without a final `/`.
    Http {
        /// The base URL.
        base: String,
        /// The client, with its timeouts.
        agent: ureq::Agent,
        /// Longest time without a byte received.
        stalled: Duration,
    },
}

/// Size of the pieces a body is handed over in.
const PIECE: usize = 1 << 16;

impl Transport {
    /// The transport of the cache at `url` (`file:///dir`, `http(s)://host/path`; a query
    /// such as `?priority=10` is not part of it), or `None` for another scheme.
    pub fn for_url(url: &str, timeouts: Timeouts) -> Option<Transport> {
        let base = url
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        if let Some(dir) = base.strip_prefix("file://") {
            return Some(Transport::File(PathBuf::from(dir)));
        }
        if base.starts_with("http://") || base.starts_with("https://") {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_connect(Some(timeouts.connect))
                .timeout_recv_response(Some(timeouts.stalled))
                .timeout_send_request(Some(timeouts.stalled))
                .http_status_as_error(false)
                .build()
                .into();
            return Some(Transport::Http {
                base: base.to_string(),
                agent,
                stalled: timeouts.stalled,
            });
        }
        None
    }

    /// The URL of the file `rel` (for messages).
    pub fn url_of(&self, rel: &str) -> String {
        match self {
            Transport::File(dir) => format!("file://{}/{rel}", dir.display()),
            Transport::Http { base, .. } => format!("{base}/{rel}"),
        }
    }

    /// Opens the file `rel` (relative to the cache) for reading, or `None` if the cache
    /// does not have it.
    pub fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send>>, TransportError> {
        let fail = |reason: String| TransportError {
            url: self.url_of(rel),
            reason,
        };
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(fail("the path leaves the cache".into()));
        }
        match self {
            Transport::File(dir) => match std::fs::File::open(dir.join(rel)) {
                Ok(f) => Ok(Some(Box::new(f))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(fail(e.to_string())),
            },
            Transport::Http {
                base,
                agent,
                stalled,
            } => {
                let response = agent
                    .get(&format!("{base}/{rel}"))
                    .call()
                    .map_err(|e| fail(describe(&e)))?;
                match response.status().as_u16() {
                    200..=299 => {}
                    // S3 answers 403 for what it does not have.
                    404 | 403 | 410 => return Ok(None),
                    status => return Err(fail(format!("HTTP error {status}"))),
                }
                let body = response.into_body().into_reader();
                Ok(Some(Box::new(StallGuard::new(body, *stalled))))
            }
        }
    }

    /// Reads the whole file `rel`, refusing one larger than `limit` bytes.
    pub fn read_small(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, TransportError> {
        let Some(r) = self.open(rel)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        r.take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| TransportError {
                url: self.url_of(rel),
                reason: e.to_string(),
            })?;
        if out.len() as u64 > limit {
            return Err(TransportError {
                url: self.url_of(rel),
                reason: format!("the file is larger than {limit} bytes"),
            });
        }
        Ok(Some(out))
    }
}

/// A client error as a user should read it.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timeout (the cache did not answer in time)".into(),
        ureq::Error::HostNotFound => "the host name could not be resolved".into(),
        ureq::Error::ConnectionFailed => "the connection failed".into(),
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => {
            "timeout (the cache did not answer in time)".into()
        }
        other => other.to_string(),
    }
}

/// A body read on a thread of its own and handed over in pieces, so that a server that
/// stops sending in the middle of a body is given up on after `stalled` without a byte,
/// however large the body (the HTTP client's own timeouts bound whole phases only). The
/// reading thread ends with the connection, at the latest when the client's socket
/// times out.
struct StallGuard {
    pieces: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    stalled: Duration,
    done: bool,
}

impl StallGuard {
    fn new<R: Read + Send + 'static>(mut r: R, stalled: Duration) -> StallGuard {
        // A few pieces in flight: the reader never gets far ahead of the consumer.
        let (tx, rx) = mpsc::sync_channel(4);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; PIECE];
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
        StallGuard {
            pieces: rx,
            current: Vec::new(),
            at: 0,
            stalled,
            done: false,
        }
    }
}

impl Read for StallGuard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.pieces.recv_timeout(self.stalled) {
                Ok(Ok(piece)) => {
                    self.current = piece;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    return Ok(0);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the download stalled: nothing received for {} s",
                            self.stalled.as_secs_f64()
                        ),
                    ))
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nix-cache-info"), b"StoreDir: /nix/store\n").unwrap();
        let t = Transport::for_url(
            &format!("file://{}/?priority=3", dir.path().display()),
            Timeouts {
                connect: Duration::from_secs(1),
                stalled: Duration::from_secs(1),
            },
        )
        .unwrap();
        assert_eq!(
            t.read_small("nix-cache-info", 100).unwrap().unwrap(),
            b"StoreDir: /nix/store\n"
        );
        assert!(t.read_small("missing.narinfo", 100).unwrap().is_none());
        let e = t.read_small("nix-cache-info", 5).unwrap_err();
        assert!(e.reason.contains("larger than 5 bytes"), "{e}");
        assert!(t.open("../etc/passwd").is_err());
        assert!(Transport::for_url("s3://bucket", t_default()).is_none());
    }

    fn t_default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(1),
            stalled: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_stalled_body_times_out() {
        struct Slow(u8);
        impl Read for Slow {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    std::thread::sleep(Duration::from_secs(2));
                    return Ok(0);
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let mut g = StallGuard::new(Slow(3), Duration::from_millis(200));
        let mut out = Vec::new();
        let e = g.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(out, b"xxx");
    }
}
