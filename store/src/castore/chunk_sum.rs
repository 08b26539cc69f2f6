//! The fast checksum of a chunk in a local pack: how a chunk read back from this store's
//! own disk is checked without re-hashing it with BLAKE3.
//!
//! When the local backend appends a chunk to its pack it takes the chunk's CRC-64/NVME
//! (`crc-fast`, SIMD: it runs about as fast as the bytes come from memory, three times
//! BLAKE3's speed here) of the very bytes whose BLAKE3 digest the caller has just
//! computed, and records it with the chunk's location. A read then compares the bytes from the pack with that checksum before any
//! of them is returned; BLAKE3 is used only if there is no checksum (a location recorded
//! by an older tvix, a chunk from another backend) or if the checksum does not match (so
//! a damaged checksum never rejects good bytes: the chunk is corrupt only if its BLAKE3
//! digest differs too).
//!
//! What this protects against: anything that changes bytes between the write and the
//! read by accident (the disk, the file system, a stray write into a pack, a pack cut
//! short or swapped for another): a CRC-64 catches every error burst of up to 64 bits and
//! misses a random change with a probability of 2^-64. What it does not protect against:
//! someone who rewrites pack files on purpose, since a CRC is easy to forge; only
//! `tvix store verify` (every chunk against its BLAKE3 digest) finds that. Chunks that
//! come from elsewhere (a gRPC daemon, an object store, a binary cache) are still checked
//! against their BLAKE3 digest.

/// The checksum of a chunk's bytes, as recorded with its location in a local pack.
pub(crate) fn of(data: &[u8]) -> u64 {
    crc_fast::crc64_nvme(data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_crc64_nvme() {
        // The check value of CRC-64/NVME (the CRC catalogue's "123456789").
        assert_eq!(super::of(b"123456789"), 0xae8b_1486_0a79_9888);
        assert_ne!(super::of(b"123456789"), super::of(b"123456788"));
    }
}
