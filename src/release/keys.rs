//! Keys: ed25519 key pairs, the trust root a device pins, and the key set the root delegates
//! release signing to.
//!
//! Text forms (what `edgerec keys generate` writes and clients are given):
//!
//! * a public key: 64 lowercase hex digits;
//! * a secret key: `edgerec-ed25519-secret:` then 64 hex digits (the 32-byte seed);
//! * a trust root: one public key (threshold 1), or `T:KEY,KEY,…` — any `T` of the listed
//!   root keys must sign a key set.
//!
//! A key set (the signed statement the root makes) is bytes:
//!
//! | field | size |
//! |---|---|
//! | body length *b* | `u16`, at most [`MAX_KEY_SET_BYTES`] |
//! | body: magic `b"EDGRKSET"`, version `u16` (1), serial `u64`, expires `i64` (unix seconds), key count `u8` (1 ..= [`MAX_KEYS`]), the keys (32 bytes each) | *b* |
//! | signature count `u8` (1 ..= [`MAX_KEYS`]) | 1 |
//! | per signature: the signer's public key (32), the signature (64) over `"edgerec key set v1\0"` ‖ body | 96 each |
//!
//! Nothing may follow. Rotating the signing key is publishing a key set with a larger serial
//! that lists the new key and not the old one: a device that has seen it refuses manifests
//! signed by the old key, and refuses the old key set (rollback).

use ed25519_dalek::{Signature, Signer as _, VerifyingKey};

use crate::error::{Error, ReleaseError};

/// The most keys a trust root or a key set lists, and signatures a key set carries.
pub const MAX_KEYS: usize = 16;
/// The largest key set body.
pub const MAX_KEY_SET_BYTES: usize = 2 + 8 + 8 + 8 + 1 + 32 * MAX_KEYS;

const KEY_SET_MAGIC: [u8; 8] = *b"EDGRKSET";
const KEY_SET_VERSION: u16 = 1;
const KEY_SET_DOMAIN: &[u8] = b"edgerec key set v1\0";
const SECRET_PREFIX: &str = "edgerec-ed25519-secret:";

fn malformed(what: &str, reason: impl Into<String>) -> Error {
    Error::Release(ReleaseError::Malformed {
        what: what.into(),
        reason: reason.into(),
    })
}

/// A bad key or trust root given by configuration (not received bytes).
fn invalid(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{what}: {reason}"))
}

/// Lowercase hex: how keys, signatures' subjects and section hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(what: &str, s: &str) -> Result<[u8; 32], Error> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(what, "expected 64 hex digits"));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(out)
}

/// An ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses 64 hex digits.
    pub fn parse(text: &str) -> Result<PublicKey, Error> {
        let bytes = unhex32("public key", text)?;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|_| invalid("public key", "not a point on the curve"))?;
        Ok(PublicKey(bytes))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Whether `signature` over `message` verifies with this key (strict verification: no
    /// small-order keys, no malleable signatures).
    pub(crate) fn verifies(&self, message: &[&[u8]], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let joined: Vec<u8> = message.concat();
        key.verify_strict(&joined, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// An ed25519 secret key (its 32-byte seed). Never printed: `Debug` shows the public key.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// The key of a 32-byte seed (which must come from a cryptographic random source).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Parses the text form `edgerec-ed25519-secret:<64 hex digits>`.
    pub fn parse(text: &str) -> Result<SecretKey, Error> {
        let hex = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| invalid("secret key", format!("expected {SECRET_PREFIX}…")))?;
        Ok(SecretKey::from_seed(unhex32("secret key", hex)?))
    }

    /// The text form, for a key file.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", hex(&self.0.to_bytes()))
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs the concatenation of `message`.
    pub(crate) fn sign(&self, message: &[&[u8]]) -> [u8; 64] {
        self.0.sign(&message.concat()).to_bytes()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key().to_hex())
    }
}

/// What a device trusts: root keys, any `threshold` of which must sign a key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    /// How many distinct root keys must sign.
    pub threshold: usize,
    /// The root keys (distinct).
    pub keys: Vec<PublicKey>,
}

impl TrustRoot {
    /// One key that signs alone.
    pub fn single(key: PublicKey) -> TrustRoot {
        TrustRoot {
            threshold: 1,
            keys: vec![key],
        }
    }

    /// Checks the threshold and the keys: 1 ≤ threshold ≤ keys ≤ [`MAX_KEYS`], no key twice.
    pub fn new(threshold: usize, keys: Vec<PublicKey>) -> Result<TrustRoot, Error> {
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(invalid(
                "trust root",
                format!("{} keys, 1 to {MAX_KEYS} allowed", keys.len()),
            ));
        }
        if threshold == 0 || threshold > keys.len() {
            return Err(invalid(
                "trust root",
                format!("threshold {threshold} for {} keys", keys.len()),
            ));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].contains(k) {
                return Err(invalid("trust root", format!("key {} twice", k.to_hex())));
            }
        }
        Ok(TrustRoot { threshold, keys })
    }

    /// Parses `KEY` or `T:KEY,KEY,…`.
    pub fn parse(text: &str) -> Result<TrustRoot, Error> {
        let text = text.trim();
        if text.len() > 8 + (64 + 1) * MAX_KEYS {
            return Err(invalid("trust root", "too long"));
        }
        let (threshold, keys) = match text.split_once(':') {
            None => (1, text),
            Some((t, keys)) => {
                let t = t
                    .parse::<usize>()
                    .map_err(|_| invalid("trust root", format!("threshold {t:?}")))?;
                (t, keys)
            }
        };
        let keys = keys
            .split(',')
            .map(PublicKey::parse)
            .collect::<Result<Vec<_>, _>>()?;
        TrustRoot::new(threshold, keys)
    }

    /// The text form [`TrustRoot::parse`] reads.
    pub fn to_text(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(PublicKey::to_hex).collect();
        if self.threshold == 1 && self.keys.len() == 1 {
            keys[0].clone()
        } else {
            format!("{}:{}", self.threshold, keys.join(","))
        }
    }
}

/// The keys a trust root delegates release signing to, for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// Grows with every new key set; a device refuses a smaller one than it has seen.
    pub serial: u64,
    /// After this time (unix seconds) the key set no longer vouches for anything.
    pub expires: i64,
    /// The keys that may sign manifests (distinct, 1 ..= [`MAX_KEYS`]).
    pub keys: Vec<PublicKey>,
}

impl KeySet {
    fn body(&self) -> Result<Vec<u8>, Error> {
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return Err(invalid(
                "key set",
                format!("{} keys, 1 to {MAX_KEYS} allowed", self.keys.len()),
            ));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if self.keys[..i].contains(k) {
                return Err(invalid("key set", format!("key {} twice", k.to_hex())));
            }
        }
        let mut b = Vec::with_capacity(MAX_KEY_SET_BYTES);
        b.extend_from_slice(&KEY_SET_MAGIC);
        b.extend_from_slice(&KEY_SET_VERSION.to_le_bytes());
        b.extend_from_slice(&self.serial.to_le_bytes());
        b.extend_from_slice(&self.expires.to_le_bytes());
        b.push(self.keys.len() as u8);
        for k in &self.keys {
            b.extend_from_slice(&k.0);
        }
        Ok(b)
    }

    /// The signed statement: this key set signed by each of `roots` (distinct).
    pub fn sign(&self, roots: &[&SecretKey]) -> Result<Vec<u8>, Error> {
        if roots.is_empty() || roots.len() > MAX_KEYS {
            return Err(invalid(
                "key set",
                format!("{} signers, 1 to {MAX_KEYS} allowed", roots.len()),
            ));
        }
        let body = self.body()?;
        let mut out = Vec::with_capacity(2 + body.len() + 1 + 96 * roots.len());
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(roots.len() as u8);
        for r in roots {
            out.extend_from_slice(&r.public_key().0);
            out.extend_from_slice(&r.sign(&[KEY_SET_DOMAIN, &body]));
        }
        Ok(out)
    }

    /// Verifies a signed key set against `root` — the signatures first, then the body:
    /// at least `root.threshold` distinct root keys must have signed it. Signatures by keys
    /// outside the root are ignored; a root key's signature that does not verify is
    /// `bad_signature`. Bounded: at most [`MAX_KEYS`] signatures are checked.
    pub fn verify(bytes: &[u8], root: &TrustRoot) -> Result<KeySet, Error> {
        let what = "key set";
        let cut = |reason: &str| malformed(what, reason.to_string());
        if bytes.len() < 2 {
            return Err(cut("truncated"));
        }
        let body_len = u16::from_le_bytes([bytes[0], bytes[1]]) as usize;
        if body_len > MAX_KEY_SET_BYTES {
            return Err(cut("body too long"));
        }
        let body = bytes.get(2..2 + body_len).ok_or_else(|| cut("truncated"))?;
        let rest = &bytes[2 + body_len..];
        let (&count, sigs) = rest.split_first().ok_or_else(|| cut("truncated"))?;
        let count = count as usize;
        if count == 0 || count > MAX_KEYS {
            return Err(malformed(what, format!("{count} signatures")));
        }
        if sigs.len() != 96 * count {
            return Err(malformed(
                what,
                format!("{} signature bytes for {count} signatures", sigs.len()),
            ));
        }
        let mut signed_by: Vec<PublicKey> = Vec::new();
        for chunk in sigs.chunks_exact(96) {
            let key = PublicKey(chunk[..32].try_into().expect("32 bytes"));
            let signature: [u8; 64] = chunk[32..].try_into().expect("64 bytes");
            if !root.keys.contains(&key) || signed_by.contains(&key) {
                continue;
            }
            if !key.verifies(&[KEY_SET_DOMAIN, body], &signature) {
                return Err(Error::Release(ReleaseError::BadSignature {
                    what: "key set".into(),
                }));
            }
            signed_by.push(key);
        }
        if signed_by.len() < root.threshold {
            return Err(Error::Release(ReleaseError::UntrustedKey(format!(
                "the key set is signed by {} of the trusted root keys, {} needed",
                signed_by.len(),
                root.threshold
            ))));
        }
        Self::parse_body(body)
    }

    fn parse_body(body: &[u8]) -> Result<KeySet, Error> {
        let what = "key set";
        if body.len() < 27 || body[..8] != KEY_SET_MAGIC {
            return Err(malformed(what, "bad magic or truncated body"));
        }
        let version = u16::from_le_bytes([body[8], body[9]]);
        if version != KEY_SET_VERSION {
            return Err(malformed(what, format!("version {version}")));
        }
        let serial = u64::from_le_bytes(body[10..18].try_into().expect("8 bytes"));
        let expires = i64::from_le_bytes(body[18..26].try_into().expect("8 bytes"));
        let n = body[26] as usize;
        if n == 0 || n > MAX_KEYS || body.len() != 27 + 32 * n {
            return Err(malformed(
                what,
                format!("{n} keys in {} bytes", body.len() - 27),
            ));
        }
        let mut keys: Vec<PublicKey> = Vec::with_capacity(n);
        for chunk in body[27..].chunks_exact(32) {
            let key = PublicKey(chunk.try_into().expect("32 bytes"));
            if keys.contains(&key) {
                return Err(malformed(what, format!("key {} twice", key.to_hex())));
            }
            keys.push(key);
        }
        Ok(KeySet {
            serial,
            expires,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn text_forms_round_trip() {
        let k = key(1);
        assert_eq!(
            SecretKey::parse(&k.to_text()).unwrap().public_key(),
            k.public_key()
        );
        let p = k.public_key();
        assert_eq!(PublicKey::parse(&p.to_hex()).unwrap(), p);
        let root = TrustRoot::new(2, vec![key(1).public_key(), key(2).public_key()]).unwrap();
        assert_eq!(TrustRoot::parse(&root.to_text()).unwrap(), root);
        assert_eq!(TrustRoot::parse(&p.to_hex()).unwrap(), TrustRoot::single(p));
        assert!(!format!("{k:?}").contains(&k.to_text()[SECRET_PREFIX.len()..]));
        for bad in [
            "",
            "zz",
            "3:",
            "0:aa",
            &format!("3:{},{}", p.to_hex(), key(2).public_key().to_hex()),
        ] {
            assert_eq!(
                TrustRoot::parse(bad).unwrap_err().code(),
                "invalid_argument",
                "{bad}"
            );
        }
        let dup = format!("1:{},{}", p.to_hex(), p.to_hex());
        assert!(TrustRoot::parse(&dup).is_err());
    }

    #[test]
    fn key_sets_need_the_threshold_of_root_signatures() {
        let (a, b, c) = (key(1), key(2), key(3));
        let root = TrustRoot::new(2, vec![a.public_key(), b.public_key()]).unwrap();
        let set = KeySet {
            serial: 7,
            expires: 1_000,
            keys: vec![c.public_key()],
        };
        let both = set.sign(&[&a, &b]).unwrap();
        assert_eq!(KeySet::verify(&both, &root).unwrap(), set);
        // One root key, or one root key plus an outsider: below the threshold.
        for signers in [vec![&a], vec![&a, &c], vec![&a, &a]] {
            let bytes = set.sign(&signers).unwrap();
            assert_eq!(
                KeySet::verify(&bytes, &root).unwrap_err().code(),
                "untrusted_key"
            );
        }
        // Any change to the body breaks a root signature.
        let mut tampered = both.clone();
        tampered[12] ^= 1;
        assert_eq!(
            KeySet::verify(&tampered, &root).unwrap_err().code(),
            "bad_signature"
        );
        // Every truncation and an extra byte are refused without panicking.
        for len in 0..both.len() {
            assert!(KeySet::verify(&both[..len], &root).is_err(), "cut at {len}");
        }
        let mut extra = both.clone();
        extra.push(0);
        assert!(KeySet::verify(&extra, &root).is_err());
    }
}
