//! HTTP range requests (RFC 9110 §14) on resources of a known length, decided from the
//! `Range` header alone (no I/O). One range is served (`bytes=a-b`, `bytes=a-`,
//! `bytes=-n`); a header that is not of this form, or asks for several ranges, is ignored
//! and the whole resource sent, as the RFC allows.

/// How to answer a request for a resource of a known length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// `200`: all of it.
    Full,
    /// `206`: bytes `start..=end`.
    Partial {
        /// The first byte.
        start: u64,
        /// The last byte (inclusive).
        end: u64,
    },
    /// `416`: the range starts past the end.
    Unsatisfiable,
}

/// The answer to the `Range` header `header` (if any) for a resource of `len` bytes.
pub fn answer(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        // The last n bytes.
        ("", n) => match number(n) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => RangeAnswer::Full,
        },
        (a, b) => {
            let Some(start) = number(a) else {
                return RangeAnswer::Full;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match number(b) {
                    Some(end) if end >= start => end,
                    _ => return RangeAnswer::Full,
                }
            };
            if start >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        let p = |start, end| RangeAnswer::Partial { start, end };
        assert_eq!(answer(Some("bytes=0-9"), 100), p(0, 9));
        assert_eq!(answer(Some("bytes=10-"), 100), p(10, 99));
        assert_eq!(answer(Some("bytes=90-200"), 100), p(90, 99));
        assert_eq!(answer(Some("bytes=-10"), 100), p(90, 99));
        assert_eq!(answer(Some("bytes=-1000"), 100), p(0, 99));
        assert_eq!(answer(Some("bytes=99-99"), 100), p(99, 99));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(answer(Some("bytes=100-"), 100), RangeAnswer::Unsatisfiable);
        assert_eq!(
            answer(Some("bytes=200-300"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(answer(Some("bytes=-0"), 100), RangeAnswer::Unsatisfiable);
        assert_eq!(answer(Some("bytes=0-"), 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn ignored() {
        for h in [
            None,
            Some(""),
            Some("bytes"),
            Some("items=0-1"),
            Some("bytes=5-1"),
            Some("bytes=0-1,5-6"),
            Some("bytes=a-b"),
            Some("bytes=-"),
            Some("bytes=+1-2"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert_eq!(answer(h, 100), RangeAnswer::Full, "{h:?}");
        }
    }
}
