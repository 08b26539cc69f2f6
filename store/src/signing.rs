//! ed25519 signatures of store paths, as binary caches carry them (`Sig:` lines of a
//! narinfo) and as `nix-store --generate-binary-cache-key NAME SECRET PUBLIC` writes keys:
//! `NAME:<base64 of the 64-byte secret key>` (the seed and then the public key) and
//! `NAME:<base64 of the 32-byte public key>`. A signature is `NAME:<base64 of 64 bytes>`
//! over a path's fingerprint ([`crate::narinfo::fingerprint`]).

use data_encoding::BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use thiserror::Error;

/// Why a key or signature was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not `NAME:BASE64`.
    #[error("{what} '{text}' is not of the form NAME:BASE64")]
    Form {
        /// A secret key, a public key or a signature.
        what: &'static str,
        /// What was given, cut short.
        text: String,
    },
    /// The base64 part does not decode to the right number of bytes.
    #[error("{what} '{name}' is not {len} bytes of base64")]
    Length {
        /// A secret key, a public key or a signature.
        what: &'static str,
        /// The key's name.
        name: String,
        /// The length it must have.
        len: usize,
    },
    /// The secret key's public half does not belong to its seed.
    #[error("secret key '{0}' is corrupt: its public half does not match")]
    Mismatch(String),
}

/// Splits `NAME:BASE64` and decodes the base64 part into exactly `N` bytes.
fn split<const N: usize>(what: &'static str, text: &str) -> Result<(String, [u8; N]), KeyError> {
    let text = text.trim();
    let (name, b64) = text
        .split_once(':')
        .filter(|(n, b)| !n.is_empty() && !b.is_empty())
        .ok_or_else(|| KeyError::Form {
            what,
            text: text.chars().take(80).collect(),
        })?;
    let length = || KeyError::Length {
        what,
        name: name.to_string(),
        len: N,
    };
    let bytes = BASE64.decode(b64.as_bytes()).map_err(|_| length())?;
    let bytes: [u8; N] = bytes.try_into().map_err(|_| length())?;
    Ok((name.to_string(), bytes))
}

/// A secret key that signs paths.
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself is never printed.
        f.debug_struct("SecretKey")
            .field("name", &self.name)
            .finish()
    }
}

impl SecretKey {
    /// Parses `NAME:BASE64` as `nix-store --generate-binary-cache-key` writes it.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let (name, bytes) = split::<64>("secret key", text)?;
        let key =
            SigningKey::from_keypair_bytes(&bytes).map_err(|_| KeyError::Mismatch(name.clone()))?;
        Ok(SecretKey { name, key })
    }

    /// A key named `name` from a 32-byte seed (for tests and key generation).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> SecretKey {
        SecretKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME:BASE64`, as the key file holds it.
    pub fn to_text(&self) -> String {
        format!(
            "{}:{}",
            self.name,
            BASE64.encode(&self.key.to_keypair_bytes())
        )
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The signature of `fingerprint`: `NAME:BASE64`.
    pub fn sign(&self, fingerprint: &str) -> String {
        let sig = self.key.sign(fingerprint.as_bytes());
        format!("{}:{}", self.name, BASE64.encode(&sig.to_bytes()))
    }
}

/// A public key that checks signatures (an entry of `trusted-public-keys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Parses `NAME:BASE64`.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let (name, bytes) = split::<32>("public key", text)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Length {
            what: "public key",
            name: name.clone(),
            len: 32,
        })?;
        Ok(PublicKey { name, key })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME:BASE64`.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.name, BASE64.encode(self.key.as_bytes()))
    }

    /// Whether `signature` (`NAME:BASE64`) is this key's signature of `fingerprint`. A
    /// signature by another key name, or one that does not decode, is not.
    pub fn verifies(&self, fingerprint: &str, signature: &str) -> bool {
        let Ok((name, bytes)) = split::<64>("signature", signature) else {
            return false;
        };
        name == self.name
            && self
                .key
                .verify(fingerprint.as_bytes(), &Signature::from_bytes(&bytes))
                .is_ok()
    }
}

/// Whether one of `signatures` is a valid signature of `fingerprint` by one of `keys`.
pub fn verified_by_any(fingerprint: &str, signatures: &[String], keys: &[PublicKey]) -> bool {
    signatures
        .iter()
        .any(|s| keys.iter().any(|k| k.verifies(fingerprint, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let sk = SecretKey::from_seed("test-1", &[7; 32]);
        let parsed = SecretKey::parse(&sk.to_text()).unwrap();
        assert_eq!(parsed.to_text(), sk.to_text());
        let pk = PublicKey::parse(&sk.public().to_text()).unwrap();
        assert_eq!(pk.name(), "test-1");
        let sig = sk.sign("1;/nix/store/x;sha256:y;1;");
        assert!(sig.starts_with("test-1:"));
        assert!(pk.verifies("1;/nix/store/x;sha256:y;1;", &sig));
        assert!(!pk.verifies("1;/nix/store/x;sha256:y;2;", &sig));
        let other = SecretKey::from_seed("test-1", &[8; 32]).sign("1;/nix/store/x;sha256:y;1;");
        assert!(!pk.verifies("1;/nix/store/x;sha256:y;1;", &other));
        let renamed = sig.replacen("test-1", "test-2", 1);
        assert!(!pk.verifies("1;/nix/store/x;sha256:y;1;", &renamed));
        assert!(verified_by_any(
            "1;/nix/store/x;sha256:y;1;",
            &[other, sig],
            &[pk]
        ));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            PublicKey::parse("nocolon"),
            Err(KeyError::Form { .. })
        ));
        assert!(matches!(
            PublicKey::parse("k:AAAA"),
            Err(KeyError::Length { len: 32, .. })
        ));
        assert!(matches!(
            SecretKey::parse("k:!!!"),
            Err(KeyError::Length { len: 64, .. })
        ));
        // A secret key whose public half belongs to another seed.
        let mut bytes = SecretKey::from_seed("k", &[1; 32]).key.to_keypair_bytes();
        bytes[40] ^= 1;
        let text = format!("k:{}", BASE64.encode(&bytes));
        assert_eq!(
            SecretKey::parse(&text).unwrap_err(),
            KeyError::Mismatch("k".into())
        );
        let pk = SecretKey::from_seed("k", &[1; 32]).public();
        assert!(!pk.verifies("x", "k:garbage"));
    }
}
