//! Nix's base-32 encoding.
//!
//! Nix uses its own base-32 variant for store path digests and for hashes printed in the
//! "nix32" form. The alphabet omits `e`, `o`, `t` and `u`, and the bits are taken from the
//! *end* of the input first: the first character of the encoding holds the most significant
//! bits of the last byte.

use thiserror::Error;

/// The 32 characters of Nix's base-32 alphabet, in digit order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Errors from [`decode`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Nixbase32Error {
    /// A character outside the nixbase32 alphabet.
    #[error("invalid character {0:?} in nixbase32 string")]
    InvalidCharacter(char),
    /// The string's length is not the encoding length of any byte string.
    #[error("invalid nixbase32 string length {0}")]
    InvalidLength(usize),
    /// The leading character carries bits beyond the decoded length (non-canonical encoding).
    #[error("nixbase32 string has non-zero padding bits")]
    NonZeroPadding,
}

/// Number of nixbase32 characters needed to encode `len` bytes.
pub const fn encode_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len * 8 - 1) / 5 + 1
    }
}

/// Number of bytes encoded by a nixbase32 string of `len` characters.
pub const fn decode_len(len: usize) -> usize {
    len * 5 / 8
}

/// The digit of each byte, or [`NOT_A_DIGIT`]: a table, since store paths are parsed by the
/// thousand when derivations are created.
const DIGITS: [u8; 256] = {
    let mut table = [NOT_A_DIGIT; 256];
    let mut d = 0;
    while d < ALPHABET.len() {
        table[ALPHABET[d] as usize] = d as u8;
        d += 1;
    }
    table
};
const NOT_A_DIGIT: u8 = 0xff;

fn digit_of(c: u8) -> Option<u8> {
    match DIGITS[c as usize] {
        NOT_A_DIGIT => None,
        d => Some(d),
    }
}

/// Encodes `input` in nixbase32.
pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(encode_len(input.len()));
    encode_to(input, &mut out);
    out
}

/// Appends the nixbase32 encoding of `input` to `out` (store paths are printed by the
/// thousand; this spares them an allocation each).
pub fn encode_to(input: &[u8], out: &mut String) {
    let len = encode_len(input.len());
    out.reserve(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let lo = (input[i] as u16) >> j;
        let hi = if i + 1 < input.len() {
            (input[i + 1] as u16) << (8 - j)
        } else {
            0
        };
        out.push(ALPHABET[((lo | hi) & 0x1f) as usize] as char);
    }
}

/// Decodes a nixbase32 string, rejecting invalid characters, impossible lengths and
/// non-canonical encodings.
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Nixbase32Error> {
    let input = input.as_ref();
    let size = decode_len(input.len());
    if encode_len(size) != input.len() {
        return Err(Nixbase32Error::InvalidLength(input.len()));
    }
    let mut out = vec![0u8; size];
    decode_into(input, &mut out)?;
    Ok(out)
}

/// Decodes `input` (of the encoding length of `out`) into `out`, which must be zeroed.
fn decode_into(input: &[u8], out: &mut [u8]) -> Result<(), Nixbase32Error> {
    let size = out.len();
    for (n, &c) in input.iter().rev().enumerate() {
        let digit = digit_of(c).ok_or(Nixbase32Error::InvalidCharacter(c as char))? as u16;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        out[i] |= (digit << j) as u8;
        let carry = digit >> (8 - j);
        if i + 1 < size {
            out[i + 1] |= carry as u8;
        } else if carry != 0 {
            return Err(Nixbase32Error::NonZeroPadding);
        }
    }
    Ok(())
}

/// Checks, without decoding, that `input` is the canonical nixbase32 encoding of `size`
/// bytes: what [`decode_fixed`] accepts. Store path digests (20 bytes, 32 characters, no
/// spare bits) are checked by the thousand when `.drv` paths are computed.
pub fn check(input: &[u8], size: usize) -> Result<(), Nixbase32Error> {
    if input.len() != encode_len(size) {
        return Err(Nixbase32Error::InvalidLength(input.len()));
    }
    if let Some(&c) = input.iter().find(|&&c| digit_of(c).is_none()) {
        return Err(Nixbase32Error::InvalidCharacter(c as char));
    }
    // The first character holds the most significant bits; those past `size` bytes must be 0.
    let spare = input.len() * 5 - size * 8;
    match input.first().and_then(|&c| digit_of(c)) {
        Some(top) if spare > 0 && top >> (5 - spare) != 0 => Err(Nixbase32Error::NonZeroPadding),
        _ => Ok(()),
    }
}

/// Decodes a nixbase32 string that must encode exactly `N` bytes.
pub fn decode_fixed<const N: usize>(input: impl AsRef<[u8]>) -> Result<[u8; N], Nixbase32Error> {
    let input = input.as_ref();
    if input.len() != encode_len(N) {
        return Err(Nixbase32Error::InvalidLength(input.len()));
    }
    let mut out = [0u8; N];
    decode_into(input, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x1f]), "0z");
        assert_eq!(decode("0z").unwrap(), vec![0x1f]);
        // sha256 of "hi\n" as printed by `nix-hash --type sha256 --flat --base32`.
        let hex = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";
        let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap();
        let s = encode(&bytes);
        assert_eq!(s, "1r3v22qkypccqifzbww5lrn6hf1chi23m6zzkyvb8bvg457nxslq");
        assert_eq!(decode(&s).unwrap(), bytes);
    }

    #[test]
    fn known_values_and_lengths() {
        // sha256 of the empty string, as Nix prints it in nix32.
        let empty_sha256 = data_encoding::HEXLOWER
            .decode(b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .unwrap();
        assert_eq!(
            encode(&empty_sha256),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(encode(&[0xff]), "7z");
        assert_eq!(decode("7z").unwrap(), vec![0xff]);
        // 0x1ff does not fit in a byte.
        assert_eq!(decode("8z"), Err(Nixbase32Error::NonZeroPadding));
        assert_eq!(encode_len(20), 32);
        assert_eq!(encode_len(32), 52);
        assert_eq!(decode_len(52), 32);
    }

    #[test]
    fn roundtrip_all_lengths() {
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = encode(&data);
            assert_eq!(enc.len(), encode_len(len));
            assert_eq!(decode(&enc).unwrap(), data);
        }
    }

    #[test]
    fn check_accepts_what_decode_accepts() {
        let mut inputs: Vec<String> = vec!["0z".into(), "7z".into(), "8z".into(), "zz".into()];
        for len in 0..12usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 91 + 200) as u8).collect();
            let enc = encode(&data);
            for top in ALPHABET.iter() {
                let mut s = enc.clone().into_bytes();
                if let Some(first) = s.first_mut() {
                    *first = *top;
                }
                inputs.push(String::from_utf8(s).unwrap());
            }
            inputs.push(enc.replace('1', "e"));
        }
        for input in &inputs {
            for size in 0..9 {
                let decoded = decode(input).map(|v| v.len() == size);
                let checked = check(input.as_bytes(), size);
                match decoded {
                    Ok(true) => assert_eq!(checked, Ok(()), "{input} {size}"),
                    Ok(false) => assert!(checked.is_err(), "{input} {size}"),
                    Err(e) => {
                        if encode_len(size) == input.len() {
                            assert_eq!(checked, Err(e), "{input} {size}")
                        } else {
                            assert!(checked.is_err(), "{input} {size}")
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode("0e"), Err(Nixbase32Error::InvalidCharacter('e')));
        assert_eq!(decode("0"), Err(Nixbase32Error::InvalidLength(1)));
        // 'z' = 31 in the top position of a one-byte encoding sets bit 8+.
        assert_eq!(decode("zz"), Err(Nixbase32Error::NonZeroPadding));
        assert!(decode_fixed::<20>("abc").is_err());
    }
}
