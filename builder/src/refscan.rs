//! Streaming search for many needles at once (reference scanning of NAR serialisations).
//!
//! Needles of one length are looked up as a set: a window is only hashed when each of its
//! bytes occurs in some needle of that length, and a byte that occurs in none lets the scan
//! jump past it (Nix's needles are base-32 hash parts, so in binary data most windows are
//! skipped after looking at one byte). Matches spanning two writes are found by scanning the
//! tail of the previous write together with the head of the next.

use std::collections::{BTreeSet, HashSet};
use std::io;

/// The needles of one length.
struct Group {
    len: usize,
    /// Bytes that occur in some needle of this length.
    allowed: [bool; 256],
    needles: HashSet<Vec<u8>>,
}

impl Group {
    /// Adds every needle of this group occurring in `buf` to `found`.
    fn scan(&self, buf: &[u8], found: &mut HashSet<Vec<u8>>) {
        let l = self.len;
        let mut i = 0;
        'windows: while i + l <= buf.len() {
            // Check from the end, so that a foreign byte skips the most.
            for j in (i..i + l).rev() {
                if !self.allowed[buf[j] as usize] {
                    i = j + 1;
                    continue 'windows;
                }
            }
            let w = &buf[i..i + l];
            if self.needles.contains(w) && !found.contains(w) {
                found.insert(w.to_vec());
            }
            i += 1;
        }
    }
}

/// A [`io::Write`] sink that remembers which needles went through it.
pub struct RefScanner {
    groups: Vec<Group>,
    /// The last `max_len - 1` bytes written (a match may start there).
    tail: Vec<u8>,
    max_len: usize,
    found: HashSet<Vec<u8>>,
}

impl RefScanner {
    /// A scanner for `needles` (empty ones are ignored).
    pub fn new<S: AsRef<[u8]>>(needles: &[S]) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        for n in needles.iter().map(AsRef::as_ref).filter(|n| !n.is_empty()) {
            let g = match groups.iter_mut().position(|g| g.len == n.len()) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(Group {
                        len: n.len(),
                        allowed: [false; 256],
                        needles: HashSet::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            for &b in n {
                g.allowed[b as usize] = true;
            }
            g.needles.insert(n.to_vec());
        }
        let max_len = groups.iter().map(|g| g.len).max().unwrap_or(0);
        RefScanner {
            groups,
            tail: Vec::new(),
            max_len,
            found: HashSet::new(),
        }
    }

    /// Scans `data` as the continuation of everything scanned before.
    pub fn feed(&mut self, data: &[u8]) {
        if self.max_len == 0 || data.is_empty() {
            return;
        }
        let keep = self.max_len - 1;
        if !self.tail.is_empty() {
            // Matches that start in the tail end within the first `keep` bytes of data.
            let mut seam = self.tail.clone();
            seam.extend_from_slice(&data[..data.len().min(keep)]);
            for g in &self.groups {
                g.scan(&seam, &mut self.found);
            }
        }
        for g in &self.groups {
            g.scan(data, &mut self.found);
        }
        if data.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - keep..]);
        } else {
            self.tail.extend_from_slice(data);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
    }

    /// The needles seen so far.
    pub fn found(&self) -> BTreeSet<String> {
        self.found
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }
}

impl io::Write for RefScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(data: &[u8], needles: &[&str], piece: usize) -> BTreeSet<String> {
        let mut s = RefScanner::new(needles);
        for c in data.chunks(piece) {
            s.feed(c);
        }
        s.found()
    }

    #[test]
    fn finds_needles_whole_and_across_every_split() {
        let a = "0123456789abcdfghijklmnpqrsvwxyz";
        let b = "zyxwvsrqpnmlkjihgfdcba9876543210";
        let c = "short";
        let mut data = vec![0u8, 255, b'x'];
        data.extend_from_slice(b"..");
        data.extend_from_slice(a.as_bytes());
        data.extend_from_slice(&[7; 100]);
        data.extend_from_slice(c.as_bytes());
        let expected: BTreeSet<String> = [a, c].iter().map(|s| s.to_string()).collect();
        for piece in 1..=data.len() {
            assert_eq!(
                scan_in_pieces(&data, &[a, b, c], piece),
                expected,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn overlapping_and_adjacent_needles() {
        let data = b"aaabaaab";
        let found = scan_in_pieces(data, &["aab", "baa", "bb"], 3);
        let expected: BTreeSet<String> = ["aab", "baa"].iter().map(|s| s.to_string()).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn no_needles_and_no_data() {
        let mut s = RefScanner::new::<&str>(&[]);
        s.feed(b"anything");
        assert!(s.found().is_empty());
        let s = RefScanner::new(&["x"]);
        assert!(s.found().is_empty());
    }

    #[test]
    fn a_partial_needle_at_the_end_is_not_a_match() {
        let found = scan_in_pieces(b"...abc", &["abcd"], 2);
        assert!(found.is_empty());
    }
}
