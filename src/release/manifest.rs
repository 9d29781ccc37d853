//! The signed manifest of a release, its verification and the bundle it rebuilds.

use sha2::{Digest, Sha256};

use super::keys::{KeySet, MAX_KEY_SET_BYTES, PublicKey, SecretKey, TrustRoot};
use crate::bundle::{Layout, MAX_SECTIONS, SectionEntry, container_header};
use crate::error::{Error, ReleaseError};

/// The most bytes a manifest's payload may have (ample for [`MAX_SECTIONS`] sections).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The most bytes a signed manifest may have: read no more from the network.
pub const MAX_MANIFEST_BYTES: usize =
    12 + 4 + 2 + MAX_KEY_SET_BYTES + 1 + 96 * 16 + 4 + MAX_PAYLOAD_BYTES + 96;
/// The largest bundle a manifest may describe.
pub const MAX_BUNDLE_BYTES: u64 = 1 << 30;
/// The longest channel name.
pub const MAX_CHANNEL: usize = 64;
/// The longest label.
pub const MAX_LABEL: usize = 256;

const MAGIC: [u8; 8] = *b"EDGRMNFT";
const FORMAT: u16 = 1;
const DOMAIN: &[u8] = b"edgerec manifest v1\0";

fn malformed(reason: impl Into<String>) -> Error {
    Error::Release(ReleaseError::Malformed {
        what: "manifest".into(),
        reason: reason.into(),
    })
}

/// Checks a channel name: 1 to [`MAX_CHANNEL`] characters of `a-z 0-9 . _ -`, not starting
/// with `.` (so it is safe as a file and URL path segment).
pub fn check_channel(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CHANNEL
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "channel {name:?}: 1 to {MAX_CHANNEL} of a-z 0-9 . _ -, not starting with '.'"
        )))
    }
}

/// What a release says: which bundle, for which channel, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The channel's publish sequence (≥ 1); devices never go back to a smaller one.
    pub version: u64,
    /// When it was signed (unix seconds).
    pub created: i64,
    /// After this time (unix seconds) devices refuse it and report their model stale.
    pub expires: i64,
    /// The serial of the key set that delegates the signing key (binds the two).
    pub key_set_serial: u64,
    /// The channel (see [`check_channel`]).
    pub channel: String,
    /// The model's human label (its `META` model version).
    pub label: String,
    /// The bundle's length in bytes.
    pub bundle_length: u64,
    /// The sha256 of the bundle's header and section table.
    pub header_sha256: [u8; 32],
    /// Every section of the bundle in container order.
    pub sections: Vec<SectionEntry>,
}

/// A manifest whose signatures, key set and policy checks passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The manifest.
    pub manifest: Manifest,
    /// The key set that delegated its signing key.
    pub key_set: KeySet,
    /// The key that signed it.
    pub signer: PublicKey,
}

/// What the device expects of a manifest besides valid signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The channel it follows.
    pub channel: &'a str,
    /// The time now (unix seconds), or `None` to skip expiry (re-opening the manifest of the
    /// model already installed: an expired model is still served, and reported stale).
    pub now: Option<i64>,
    /// The version of the installed release: a smaller one is a rollback.
    pub installed_version: Option<u64>,
    /// The largest key set serial the device has seen: a smaller one is a rollback.
    pub key_set_serial: Option<u64>,
}

impl Manifest {
    /// The manifest of `bundle` (its container verified, no payload decoded).
    pub fn for_bundle(
        bundle: &[u8],
        version: u64,
        channel: &str,
        label: &str,
        created: i64,
        expires: i64,
        key_set_serial: u64,
    ) -> Result<Manifest, Error> {
        let layout = Layout::of(bundle)?;
        let m = Manifest {
            version,
            created,
            expires,
            key_set_serial,
            channel: channel.to_string(),
            label: label.to_string(),
            bundle_length: bundle.len() as u64,
            header_sha256: layout.header_sha256,
            sections: layout.sections.iter().map(|(e, _)| *e).collect(),
        };
        m.check()?;
        Ok(m)
    }

    /// The payload bytes the signature covers.
    fn payload(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.sections.len() * 46);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.created.to_le_bytes());
        b.extend_from_slice(&self.expires.to_le_bytes());
        b.extend_from_slice(&self.key_set_serial.to_le_bytes());
        for s in [&self.channel, &self.label] {
            b.extend_from_slice(&(s.len() as u16).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        b.extend_from_slice(&self.bundle_length.to_le_bytes());
        b.extend_from_slice(&self.header_sha256);
        b.extend_from_slice(&(self.sections.len() as u16).to_le_bytes());
        for s in &self.sections {
            b.extend_from_slice(&s.tag);
            b.extend_from_slice(&s.version.to_le_bytes());
            b.extend_from_slice(&s.length.to_le_bytes());
            b.extend_from_slice(&s.sha256);
        }
        b
    }

    /// Checks the fields a reader checks: version ≥ 1, channel, label, the sections rebuild a
    /// header with `header_sha256`, and add up to `bundle_length` ≤ [`MAX_BUNDLE_BYTES`].
    fn check(&self) -> Result<(), Error> {
        if self.version == 0 {
            return Err(malformed("version 0"));
        }
        check_channel(&self.channel).map_err(|e| malformed(e.to_string()))?;
        if self.label.len() > MAX_LABEL {
            return Err(malformed(format!("label longer than {MAX_LABEL} bytes")));
        }
        let header = container_header(&self.sections).map_err(|e| malformed(e.to_string()))?;
        let digest: [u8; 32] = Sha256::digest(&header[..header.len() - 32]).into();
        if digest != self.header_sha256 {
            return Err(malformed(
                "the sections do not make the bundle header it names",
            ));
        }
        let total = self
            .sections
            .iter()
            .try_fold(header.len() as u64, |t, s| t.checked_add(s.length))
            .ok_or_else(|| malformed("section lengths overflow"))?;
        if total != self.bundle_length || total > MAX_BUNDLE_BYTES {
            return Err(malformed(format!(
                "bundle length {} (sections add up to {total}, at most {MAX_BUNDLE_BYTES})",
                self.bundle_length
            )));
        }
        Ok(())
    }

    /// The signed manifest: the key set statement `key_set` (as [`KeySet::sign`] wrote it),
    /// this manifest's payload, and `key`'s signature over it.
    pub fn sign(&self, key_set: &[u8], key: &SecretKey) -> Result<Vec<u8>, Error> {
        self.check()?;
        if key_set.len() > MAX_KEY_SET_BYTES + 3 + 96 * 16 {
            return Err(malformed("key set statement too long"));
        }
        let payload = self.payload();
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(malformed("payload too long"));
        }
        let mut out = Vec::with_capacity(16 + key_set.len() + payload.len() + 96);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(key_set.len() as u32).to_le_bytes());
        out.extend_from_slice(key_set);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&key.public_key().0);
        out.extend_from_slice(&key.sign(&[DOMAIN, &payload]));
        Ok(out)
    }

    /// Verifies a signed manifest, in this order, touching nothing it has not verified:
    /// framing (bounded lengths), the key set's root signatures, the key set (expiry,
    /// rollback), that the key set delegates the manifest's signer, the manifest's signature —
    /// and only then parses the payload and checks its key set serial, channel, expiry,
    /// rollback and section table. A manifest of the installed version passes (the caller
    /// sees nothing new). Never panics; reads at most [`MAX_MANIFEST_BYTES`].
    pub fn verify(bytes: &[u8], root: &TrustRoot, expect: &Expect<'_>) -> Result<Verified, Error> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(malformed(format!("longer than {MAX_MANIFEST_BYTES} bytes")));
        }
        if bytes.len() < 16 || bytes[..8] != MAGIC {
            return Err(malformed("bad magic or truncated"));
        }
        let format = u16::from_le_bytes([bytes[8], bytes[9]]);
        if format != FORMAT || bytes[10..12] != [0, 0] {
            return Err(malformed(format!("format {format}")));
        }
        let mut at = 12;
        let key_set_bytes = frame(bytes, &mut at, MAX_KEY_SET_BYTES + 3 + 96 * 16)?;
        let payload = frame(bytes, &mut at, MAX_PAYLOAD_BYTES)?;
        if bytes.len() != at + 96 {
            return Err(malformed("signature missing or bytes after it"));
        }
        let signer = PublicKey(bytes[at..at + 32].try_into().expect("32 bytes"));
        let signature: [u8; 64] = bytes[at + 32..].try_into().expect("64 bytes");

        let key_set = KeySet::verify(key_set_bytes, root)?;
        not_expired("key set", key_set.expires, expect.now)?;
        not_older("key set serial", key_set.serial, expect.key_set_serial)?;
        if !key_set.keys.contains(&signer) {
            return Err(Error::Release(ReleaseError::UntrustedKey(format!(
                "the manifest is signed by {}, which key set {} does not list",
                signer.to_hex(),
                key_set.serial
            ))));
        }
        if !signer.verifies(&[DOMAIN, payload], &signature) {
            return Err(Error::Release(ReleaseError::BadSignature {
                what: "manifest".into(),
            }));
        }

        let manifest = parse_payload(payload)?;
        if manifest.key_set_serial != key_set.serial {
            return Err(malformed(format!(
                "signed under key set {}, carries key set {}",
                manifest.key_set_serial, key_set.serial
            )));
        }
        if manifest.channel != expect.channel {
            return Err(Error::Release(ReleaseError::WrongChannel {
                expected: expect.channel.to_string(),
                found: manifest.channel,
            }));
        }
        not_expired("manifest", manifest.expires, expect.now)?;
        not_older(
            "manifest version",
            manifest.version,
            expect.installed_version,
        )?;
        Ok(Verified {
            manifest,
            key_set,
            signer,
        })
    }

    /// Checks one section's bytes against the manifest's entry `index`: the length, then the
    /// sha256. A client checks the length while the bytes stream in (see
    /// [`Manifest::sections`]) and calls this on the whole blob.
    pub fn check_section(&self, index: usize, bytes: &[u8]) -> Result<(), Error> {
        let entry = self.sections.get(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "section {index} of a manifest with {}",
                self.sections.len()
            ))
        })?;
        let name = String::from_utf8_lossy(&entry.tag).into_owned();
        if bytes.len() as u64 != entry.length {
            return Err(Error::Release(ReleaseError::SectionMismatch(format!(
                "{name}: {} bytes, the manifest says {}",
                bytes.len(),
                entry.length
            ))));
        }
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if digest != entry.sha256 {
            return Err(Error::Release(ReleaseError::SectionMismatch(format!(
                "{name}: sha256 differs from the manifest's"
            ))));
        }
        Ok(())
    }

    /// The bundle the manifest names, rebuilt from its sections' bytes (one per entry, in
    /// order): each checked with [`Manifest::check_section`], the header laid out from the
    /// entries. Decoding it (`Recommender::from_bytes`) checks everything again.
    pub fn assemble(&self, payloads: &[&[u8]]) -> Result<Vec<u8>, Error> {
        if payloads.len() != self.sections.len() {
            return Err(Error::Release(ReleaseError::SectionMismatch(format!(
                "{} sections given, the manifest lists {}",
                payloads.len(),
                self.sections.len()
            ))));
        }
        for (i, p) in payloads.iter().enumerate() {
            self.check_section(i, p)?;
        }
        // check() ran when the manifest was parsed: the header matches and the length fits.
        let mut out = container_header(&self.sections)?;
        out.reserve(self.bundle_length as usize - out.len());
        for p in payloads {
            out.extend_from_slice(p);
        }
        Ok(out)
    }
}

/// `expired` if `expires` is before `now` (no clock: nothing to check).
fn not_expired(what: &str, expires: i64, now: Option<i64>) -> Result<(), Error> {
    match now {
        Some(now) if expires < now => Err(Error::Release(ReleaseError::Expired {
            what: what.into(),
            expires,
            now,
        })),
        _ => Ok(()),
    }
}

/// `rollback` if `found` is below what the device holds.
fn not_older(what: &str, found: u64, installed: Option<u64>) -> Result<(), Error> {
    match installed {
        Some(installed) if found < installed => Err(Error::Release(ReleaseError::Rollback {
            what: what.into(),
            found,
            installed,
        })),
        _ => Ok(()),
    }
}

/// A `u32` length and that many bytes at `*at`, at most `max`.
fn frame<'a>(bytes: &'a [u8], at: &mut usize, max: usize) -> Result<&'a [u8], Error> {
    let len_bytes = bytes
        .get(*at..*at + 4)
        .ok_or_else(|| malformed("truncated"))?;
    let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
    if len > max {
        return Err(malformed(format!("a {len}-byte field, at most {max}")));
    }
    let start = *at + 4;
    let field = bytes
        .get(start..start + len)
        .ok_or_else(|| malformed("truncated"))?;
    *at = start + len;
    Ok(field)
}

/// Reads the (verified) payload.
fn parse_payload(b: &[u8]) -> Result<Manifest, Error> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], Error> {
        let s = b
            .get(at..at + n)
            .ok_or_else(|| malformed("payload truncated"))?;
        at += n;
        Ok(s)
    };
    let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
    let version = u64_(take(8)?);
    let created = u64_(take(8)?) as i64;
    let expires = u64_(take(8)?) as i64;
    let key_set_serial = u64_(take(8)?);
    let mut text = |max: usize| -> Result<String, Error> {
        let n = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        if n > max {
            return Err(malformed(format!("a {n}-byte string, at most {max}")));
        }
        String::from_utf8(take(n)?.to_vec()).map_err(|_| malformed("string is not UTF-8"))
    };
    let channel = text(MAX_CHANNEL)?;
    let label = text(MAX_LABEL)?;
    let bundle_length = u64_(take(8)?);
    let header_sha256: [u8; 32] = take(32)?.try_into().expect("32 bytes");
    let n = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
    if n > MAX_SECTIONS as usize {
        return Err(malformed(format!("{n} sections, at most {MAX_SECTIONS}")));
    }
    let mut sections = Vec::with_capacity(n);
    for _ in 0..n {
        let e = take(46)?;
        sections.push(SectionEntry {
            tag: e[..4].try_into().expect("4 bytes"),
            version: u16::from_le_bytes([e[4], e[5]]),
            length: u64::from_le_bytes(e[6..14].try_into().expect("8 bytes")),
            sha256: e[14..46].try_into().expect("32 bytes"),
        });
    }
    if at != b.len() {
        return Err(malformed("bytes after the section table"));
    }
    let m = Manifest {
        version,
        created,
        expires,
        key_set_serial,
        channel,
        label,
        bundle_length,
        header_sha256,
        sections,
    };
    m.check()?;
    Ok(m)
}
