//! Signed releases: how a device decides that a bundle from the network is the publisher's,
//! current, and whole — before it parses any of it.
//!
//! A publisher splits a bundle into its sections (content-addressed by sha256, so a device
//! downloads only the sections it does not hold) and signs a [`Manifest`] per channel: the
//! channel's publish sequence (`version`), creation and expiry times, the model's label, the
//! bundle's header hash and length, and every section's tag, version, length and sha256.
//!
//! Trust is two-level, so a signing key can be rotated without touching devices: a device pins
//! a [`TrustRoot`] (root public keys and a threshold); the root signs a [`KeySet`] (a serial,
//! an expiry and the keys that may sign manifests); a manifest carries the key set and is
//! signed by one of its keys. [`Manifest::verify`] checks, in order and touching nothing it
//! has not verified: the framing (every length bounded before use), the key set's root
//! signatures, its expiry and serial (never below one seen), that it lists the manifest's
//! signer, the manifest's signature, and only then the manifest itself (its channel, expiry,
//! version — never below the installed one — and that its section table rebuilds the header it
//! names). [`Manifest::assemble`] rebuilds the bundle from section bytes, each checked against
//! the manifest (length, then sha256).
//!
//! Signatures are ed25519 (`ed25519-dalek`, strict verification), computed by this crate, so
//! TV browsers without WebCrypto Ed25519 verify the same way as native code.
//!
//! A signed manifest, all integers little-endian:
//!
//! | field | size |
//! |---|---|
//! | magic `b"EDGRMNFT"`, format `u16` (1), reserved `u16` (0) | 12 |
//! | key set statement length, then the statement ([`keys`]) | 4 + … |
//! | payload length (at most [`MAX_PAYLOAD_BYTES`]), then the payload | 4 + … |
//! | the signer's public key, its signature over `"edgerec manifest v1\0"` ‖ payload | 96 |
//!
//! The payload: `version u64, created i64, expires i64, key_set_serial u64, channel (u16
//! length + UTF-8, at most` [`MAX_CHANNEL`]`), label (u16 length + UTF-8, at most`
//! [`MAX_LABEL`]`), bundle_length u64, header_sha256 [32], section count u16` (at most
//! [`crate::bundle::MAX_SECTIONS`]), then per section `tag [4], version u16, length u64,
//! sha256 [32]`. Nothing may follow.
//!
//! ```
//! use edgerec::release::{Expect, KeySet, Manifest, SecretKey, TrustRoot};
//! let bundle = edgerec::test_support::tiny_contents().encode();
//! let key = SecretKey::from_seed([7; 32]); // from a cryptographic random source in practice
//! let key_set = KeySet { serial: 1, expires: 2_000_000_000, keys: vec![key.public_key()] };
//! let statement = key_set.sign(&[&key])?;
//! let manifest = Manifest::for_bundle(&bundle, 1, "stable", "demo", 0, 1_900_000_000, 1)?;
//! let signed = manifest.sign(&statement, &key)?;
//!
//! let root = TrustRoot::single(key.public_key());
//! let expect = Expect { channel: "stable", now: Some(1_800_000_000), installed_version: None, key_set_serial: None };
//! let verified = Manifest::verify(&signed, &root, &expect)?;
//! let sections = edgerec::bundle::Layout::of(&bundle)?;
//! let payloads: Vec<&[u8]> = sections.sections.iter().map(|(_, p)| *p).collect();
//! assert_eq!(verified.manifest.assemble(&payloads)?, bundle);
//! # Ok::<(), edgerec::Error>(())
//! ```

pub mod keys;
mod manifest;

pub use keys::{KeySet, PublicKey, SecretKey, TrustRoot, hex};
pub use manifest::{
    Expect, MAX_BUNDLE_BYTES, MAX_CHANNEL, MAX_LABEL, MAX_MANIFEST_BYTES, MAX_PAYLOAD_BYTES,
    Manifest, Verified, check_channel,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Layout;
    use crate::test_support::tiny_contents;

    struct Fixture {
        root: SecretKey,
        signer: SecretKey,
        bundle: Vec<u8>,
    }

    fn fixture() -> Fixture {
        Fixture {
            root: SecretKey::from_seed([1; 32]),
            signer: SecretKey::from_seed([2; 32]),
            bundle: tiny_contents().encode(),
        }
    }

    impl Fixture {
        fn trust(&self) -> TrustRoot {
            TrustRoot::single(self.root.public_key())
        }
        fn key_set(&self, serial: u64, keys: &[&SecretKey]) -> Vec<u8> {
            KeySet {
                serial,
                expires: 3_000,
                keys: keys.iter().map(|k| k.public_key()).collect(),
            }
            .sign(&[&self.root])
            .unwrap()
        }
        fn manifest(&self, version: u64) -> Manifest {
            Manifest::for_bundle(&self.bundle, version, "stable", "tiny", 100, 2_000, 1).unwrap()
        }
        fn signed(&self, version: u64) -> Vec<u8> {
            self.manifest(version)
                .sign(&self.key_set(1, &[&self.signer]), &self.signer)
                .unwrap()
        }
    }

    fn expect() -> Expect<'static> {
        Expect {
            channel: "stable",
            now: Some(1_000),
            installed_version: None,
            key_set_serial: None,
        }
    }

    fn code(bytes: &[u8], root: &TrustRoot, e: &Expect<'_>) -> &'static str {
        Manifest::verify(bytes, root, e).unwrap_err().code()
    }

    #[test]
    fn a_signed_manifest_verifies_and_rebuilds_the_bundle() {
        let f = fixture();
        let v = Manifest::verify(&f.signed(3), &f.trust(), &expect()).unwrap();
        assert_eq!(v.manifest, f.manifest(3));
        assert_eq!(v.signer, f.signer.public_key());
        let layout = Layout::of(&f.bundle).unwrap();
        let payloads: Vec<&[u8]> = layout.sections.iter().map(|(_, p)| *p).collect();
        assert_eq!(v.manifest.assemble(&payloads).unwrap(), f.bundle);
        // The installed version itself passes (nothing new); an older one is a rollback.
        let same = Expect {
            installed_version: Some(3),
            ..expect()
        };
        assert!(Manifest::verify(&f.signed(3), &f.trust(), &same).is_ok());
        assert_eq!(code(&f.signed(2), &f.trust(), &same), "rollback");
    }

    #[test]
    fn signatures_keys_expiry_and_channel_are_enforced() {
        let f = fixture();
        let signed = f.signed(1);
        // Every single-bit flip is refused (framing, a signature, or the payload).
        for i in 0..signed.len() {
            let mut b = signed.clone();
            b[i] ^= 0x10;
            assert!(
                Manifest::verify(&b, &f.trust(), &expect()).is_err(),
                "flip at byte {i} accepted"
            );
        }
        // Every truncation, and a byte too many.
        for len in 0..signed.len() {
            assert!(Manifest::verify(&signed[..len], &f.trust(), &expect()).is_err());
        }
        let mut extra = signed.clone();
        extra.push(0);
        assert_eq!(code(&extra, &f.trust(), &expect()), "bad_manifest");
        // An unknown root.
        let other = TrustRoot::single(SecretKey::from_seed([9; 32]).public_key());
        assert_eq!(code(&signed, &other, &expect()), "untrusted_key");
        // A signer the key set does not list.
        let stranger = SecretKey::from_seed([5; 32]);
        let by_stranger = f
            .manifest(1)
            .sign(&f.key_set(1, &[&f.signer]), &stranger)
            .unwrap();
        assert_eq!(code(&by_stranger, &f.trust(), &expect()), "untrusted_key");
        // Expired manifest, expired key set, another channel.
        let late = Expect {
            now: Some(2_001),
            ..expect()
        };
        assert_eq!(code(&signed, &f.trust(), &late), "expired");
        let later = Expect {
            now: Some(3_001),
            ..expect()
        };
        assert_eq!(code(&signed, &f.trust(), &later), "expired");
        let beta = Expect {
            channel: "beta",
            ..expect()
        };
        assert_eq!(code(&signed, &f.trust(), &beta), "wrong_channel");
        // Without a clock (re-opening the installed release), expiry is not checked.
        let offline = Expect { now: None, ..late };
        assert!(Manifest::verify(&signed, &f.trust(), &offline).is_ok());
    }

    #[test]
    fn a_rotated_out_key_is_refused_once_the_new_key_set_was_seen() {
        let f = fixture();
        let new_signer = SecretKey::from_seed([3; 32]);
        let rotated = Manifest::for_bundle(&f.bundle, 2, "stable", "tiny", 100, 2_000, 2)
            .unwrap()
            .sign(&f.key_set(2, &[&new_signer]), &new_signer)
            .unwrap();
        let v = Manifest::verify(&rotated, &f.trust(), &expect()).unwrap();
        assert_eq!(v.key_set.serial, 2);
        let seen = Expect {
            key_set_serial: Some(2),
            ..expect()
        };
        // The old key under the old key set: a key-set rollback.
        assert_eq!(code(&f.signed(3), &f.trust(), &seen), "rollback");
        // The old key under the new key set, which no longer lists it.
        let old_key_new_set = Manifest::for_bundle(&f.bundle, 3, "stable", "tiny", 100, 2_000, 2)
            .unwrap()
            .sign(&f.key_set(2, &[&new_signer]), &f.signer)
            .unwrap();
        assert_eq!(code(&old_key_new_set, &f.trust(), &seen), "untrusted_key");
        // A payload naming another key set serial than the one it carries.
        let unbound = f
            .manifest(3)
            .sign(&f.key_set(2, &[&f.signer]), &f.signer)
            .unwrap();
        assert_eq!(code(&unbound, &f.trust(), &expect()), "bad_manifest");
    }

    fn as_refs(p: &[Vec<u8>]) -> Vec<&[u8]> {
        p.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn sections_must_match_the_manifest() {
        let f = fixture();
        let m = f.manifest(1);
        let layout = Layout::of(&f.bundle).unwrap();
        let payloads: Vec<Vec<u8>> = layout.sections.iter().map(|(_, p)| p.to_vec()).collect();
        let mut wrong = payloads.clone();
        wrong[1][0] ^= 1;
        assert_eq!(
            m.assemble(&as_refs(&wrong)).unwrap_err().code(),
            "section_mismatch"
        );
        let mut short = payloads.clone();
        short[0].pop();
        assert_eq!(
            m.assemble(&as_refs(&short)).unwrap_err().code(),
            "section_mismatch"
        );
        assert_eq!(
            m.assemble(&as_refs(&payloads[1..])).unwrap_err().code(),
            "section_mismatch"
        );
        // A section of another bundle in its place (mix-and-match): its hash differs.
        let mut other = tiny_contents();
        other.meta.model_version = "other".into();
        let other_bytes = other.encode();
        let other_layout = Layout::of(&other_bytes).unwrap();
        let mut mixed = as_refs(&payloads);
        mixed[0] = other_layout.sections[0].1;
        assert_eq!(m.assemble(&mixed).unwrap_err().code(), "section_mismatch");
        // A manifest whose table does not rebuild the header it names cannot be signed.
        let mut bad = m.clone();
        bad.sections.swap(0, 1);
        let statement = f.key_set(1, &[&f.signer]);
        assert_eq!(
            bad.sign(&statement, &f.signer).unwrap_err().code(),
            "bad_manifest"
        );
        let mut dup = m.clone();
        dup.sections[1].tag = dup.sections[0].tag;
        assert!(dup.sign(&statement, &f.signer).is_err());
    }

    #[test]
    fn channel_names_are_path_safe() {
        for ok in ["stable", "beta-2", "tv.eu_1"] {
            assert!(check_channel(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "Stable", "a b", &"x".repeat(65)] {
            assert!(check_channel(bad).is_err(), "{bad}");
        }
    }
}
