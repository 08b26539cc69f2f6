//! The small binary encoding used for stored metadata: little-endian `u64`s, length-prefixed
//! byte strings and fixed-size digests. Decoding never panics; malformed input is a
//! [`StoreError::Decode`].

use super::{B3Digest, StoreError, B3_LEN};

/// Appends a little-endian `u64`.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads the encoding back, naming `what` in errors.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Decoder { buf, what }
    }

    pub(crate) fn err(&self, reason: &'static str) -> StoreError {
        StoreError::Decode {
            what: self.what,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(self.err("truncated"));
        }
        let (h, t) = self.buf.split_at(n);
        self.buf = t;
        Ok(h)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u64()?;
        if n > self.buf.len() as u64 {
            return Err(self.err("truncated"));
        }
        self.take(n as usize)
    }

    pub(crate) fn string(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not UTF-8"))
    }

    pub(crate) fn digest(&mut self) -> Result<B3Digest, StoreError> {
        let b = self.take(B3_LEN)?;
        let mut a = [0u8; B3_LEN];
        a.copy_from_slice(b);
        Ok(B3Digest(a))
    }

    /// A count of items each at least `min_item` bytes long; rejects counts the remaining
    /// input cannot hold, so a hostile count cannot make us allocate.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize, StoreError> {
        let n = self.u64()?;
        if n.saturating_mul(min_item.max(1) as u64) > self.buf.len() as u64 {
            return Err(self.err("count exceeds the data"));
        }
        Ok(n as usize)
    }

    pub(crate) fn finish(self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}
