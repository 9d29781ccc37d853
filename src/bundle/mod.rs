//! The model bundle: the one file the server publishes and the device loads.
//!
//! # Format, version 1
//!
//! All integers are little-endian. A bundle is a header, a section table, a checksum of both,
//! then the sections' payloads back to back:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"EDGEREC\0"` |
//! | 8 | 2 | format version, `1` ([`FORMAT_VERSION`]) |
//! | 10 | 2 | flags, `0` (reserved) |
//! | 12 | 4 | section count *n*, at most [`MAX_SECTIONS`] |
//! | 16 | 56 × *n* | section table entries |
//! | 16 + 56*n* | 32 | sha256 of bytes `0 .. 16 + 56n` (header and table) |
//! | 48 + 56*n* | … | payloads, in table order, contiguous, nothing after the last |
//!
//! A table entry is: tag (4 ASCII bytes), section version (`u16`), reserved (`u16`, zero),
//! payload offset (`u64`), payload length (`u64`), sha256 of the payload (32 bytes).
//!
//! The reader checks, in this order: magic, format version, that the table is complete, the
//! header checksum, that every payload lies inside the bytes given, every payload's sha256 —
//! and only then parses a payload. Each failure is a distinct [`BundleError`].
//!
//! Sections of format 1 (all required; see [`sections`] for each payload's layout):
//!
//! | tag | version | content |
//! |---|---|---|
//! | `META` | 1 | model version, creation time, dataset, seed, trainer, recipe |
//! | `CATL` | 1 | genre names; items with id, title, year and genres |
//! | `POPL` | 1 | time-decayed popularity per item, normalised to max 1 |
//! | `GENV` | 1 | per-genre IDF weights and L2-normalised item genre vectors |
//! | `BLND` | 1 | blend parameters fitted by the trainer |
//!
//! Growing the format: a new capability adds a section with a new tag. Readers skip tags they do
//! not know, so older devices keep loading newer bundles as long as the sections they need are
//! there. Changing an existing payload bumps that section's version; changing the container bumps
//! [`FORMAT_VERSION`].
//!
//! ```
//! use edgerec::bundle::{Bundle, BundleContents};
//! # let contents = edgerec::bundle::tests_support::tiny_contents();
//! let bytes: Vec<u8> = contents.encode();
//! let bundle = Bundle::from_bytes(&bytes)?;
//! assert_eq!(bundle.contents().catalog.len(), contents.catalog.len());
//!
//! let mut corrupt = bytes.clone();
//! let last = corrupt.len() - 1;
//! corrupt[last] ^= 0x01;
//! assert_eq!(Bundle::from_bytes(&corrupt).unwrap_err().code(), "checksum_mismatch");
//! # Ok::<(), edgerec::Error>(())
//! ```

mod codec;
pub mod sections;

use sha2::{Digest, Sha256};

use crate::error::{BundleError, Result};
pub use sections::{BlendParams, GenreVectors, Meta, Popularity};

use crate::catalog::Catalog;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"EDGEREC\0";
/// The container version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// The most sections a bundle may declare (bounds the table before anything is allocated).
pub const MAX_SECTIONS: u32 = 256;

const FIXED_HEADER: usize = 16;
const ENTRY: usize = 56;
const HASH: usize = 32;

/// A section's four-byte tag.
pub type Tag = [u8; 4];

/// Everything a version-1 bundle carries, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleContents {
    /// Provenance of the model.
    pub meta: Meta,
    /// The titles the device may recommend.
    pub catalog: Catalog,
    /// Time-decayed popularity, one score per catalog item.
    pub popularity: Popularity,
    /// Content vectors for genre affinity, one row per catalog item.
    pub genre_vectors: GenreVectors,
    /// How the candidate sources are blended.
    pub blend: BlendParams,
}

impl BundleContents {
    /// Encodes the contents as a version-1 bundle. Panics only if the contents are internally
    /// inconsistent (checked with [`BundleContents::validate`] first — a trainer bug).
    pub fn encode(&self) -> Vec<u8> {
        if let Err(e) = self.validate() {
            panic!("refusing to encode an inconsistent bundle: {e}");
        }
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&self.meta));
        w.section(*b"CATL", 1, sections::encode_catalog(&self.catalog));
        w.section(*b"POPL", 1, sections::encode_popularity(&self.popularity));
        w.section(
            *b"GENV",
            1,
            sections::encode_genre_vectors(&self.genre_vectors),
        );
        w.section(*b"BLND", 1, sections::encode_blend(&self.blend));
        w.finish()
    }

    /// Checks that the sections agree with each other (item counts, vector dimensions).
    pub fn validate(&self) -> Result<(), BundleError> {
        let n = self.catalog.len();
        let bad = |what: &str, reason: String| {
            Err(BundleError::Malformed {
                what: what.to_string(),
                reason,
            })
        };
        if self.popularity.scores.len() != n {
            return bad(
                "POPL",
                format!(
                    "{} scores for {n} catalog items",
                    self.popularity.scores.len()
                ),
            );
        }
        let dim = self.catalog.genres().len();
        if self.genre_vectors.dim() != dim {
            return bad(
                "GENV",
                format!("{} dimensions for {dim} genres", self.genre_vectors.dim()),
            );
        }
        if self.genre_vectors.rows() != n {
            return bad(
                "GENV",
                format!("{} rows for {n} catalog items", self.genre_vectors.rows()),
            );
        }
        Ok(())
    }
}

/// A loaded, verified bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    contents: BundleContents,
    sha256: [u8; 32],
}

impl Bundle {
    /// Verifies and decodes a bundle. Cost: one sha256 pass over the bytes plus decoding;
    /// allocation is bounded by the input length. Never panics on any input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle> {
        let table = read_table(bytes)?;
        let find = |tag: &Tag| -> Result<(u16, &[u8]), BundleError> {
            table
                .iter()
                .find(|e| &e.tag == tag)
                .map(|e| (e.version, e.payload))
                .ok_or_else(|| BundleError::MissingSection { tag: tag_name(tag) })
        };
        let check_version = |tag: &Tag, found: u16| -> Result<(), BundleError> {
            if found == 1 {
                Ok(())
            } else {
                Err(BundleError::UnsupportedVersion {
                    what: tag_name(tag),
                    found,
                    supported: 1,
                })
            }
        };
        let section = |tag: &Tag| -> Result<&[u8], BundleError> {
            let (v, p) = find(tag)?;
            check_version(tag, v)?;
            Ok(p)
        };
        let contents = BundleContents {
            meta: sections::decode_meta(section(b"META")?)?,
            catalog: sections::decode_catalog(section(b"CATL")?)?,
            popularity: sections::decode_popularity(section(b"POPL")?)?,
            genre_vectors: sections::decode_genre_vectors(section(b"GENV")?)?,
            blend: sections::decode_blend(section(b"BLND")?)?,
        };
        contents.validate()?;
        Ok(Bundle {
            contents,
            sha256: Sha256::digest(bytes).into(),
        })
    }

    /// The decoded sections.
    pub fn contents(&self) -> &BundleContents {
        &self.contents
    }

    /// The sha256 of the whole bundle file, as lowercase hex: a content address for caches.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn tag_name(tag: &Tag) -> String {
    tag.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// One verified entry of the section table.
struct Entry<'a> {
    tag: Tag,
    version: u16,
    payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Validates the container and returns the verified sections. Index arithmetic below only
/// happens after the lengths it relies on were checked.
fn read_table(bytes: &[u8]) -> Result<Vec<Entry<'_>>, BundleError> {
    let available = bytes.len() as u64;
    let truncated = |needed: usize| BundleError::Truncated {
        needed: needed as u64,
        available,
    };
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(BundleError::BadMagic);
    }
    if bytes.len() < FIXED_HEADER {
        return Err(truncated(FIXED_HEADER));
    }
    let version = u16_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(BundleError::UnsupportedVersion {
            what: "format".into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let count = u32_at(bytes, 12);
    if count > MAX_SECTIONS {
        return Err(BundleError::Malformed {
            what: "header".into(),
            reason: format!("{count} sections declared, at most {MAX_SECTIONS} allowed"),
        });
    }
    let count = count as usize;
    let table_end = FIXED_HEADER + ENTRY * count;
    let header_end = table_end + HASH;
    if bytes.len() < header_end {
        return Err(truncated(header_end));
    }
    let digest: [u8; 32] = Sha256::digest(&bytes[..table_end]).into();
    if digest[..] != bytes[table_end..header_end] {
        return Err(BundleError::ChecksumMismatch {
            what: "header".into(),
        });
    }
    let malformed = |reason: String| BundleError::Malformed {
        what: "header".into(),
        reason,
    };
    if u16_at(bytes, 10) != 0 {
        return Err(malformed("reserved flags are not zero".into()));
    }

    let mut entries = Vec::with_capacity(count);
    let mut expected_offset = header_end as u64;
    for i in 0..count {
        let e = &bytes[FIXED_HEADER + ENTRY * i..FIXED_HEADER + ENTRY * (i + 1)];
        let tag: Tag = e[0..4].try_into().expect("4 bytes");
        let name = tag_name(&tag);
        if !tag.iter().all(u8::is_ascii_alphanumeric) {
            return Err(malformed(format!(
                "section {i} has an invalid tag {name:?}"
            )));
        }
        if entries.iter().any(|x: &Entry<'_>| x.tag == tag) {
            return Err(malformed(format!("section {name} appears twice")));
        }
        if u16_at(e, 6) != 0 {
            return Err(malformed(format!(
                "section {name} has non-zero reserved bits"
            )));
        }
        let offset = u64_at(e, 8);
        let length = u64_at(e, 16);
        if offset != expected_offset {
            return Err(malformed(format!(
                "section {name} starts at {offset}, expected {expected_offset}"
            )));
        }
        let end = offset
            .checked_add(length)
            .ok_or_else(|| malformed(format!("section {name} length overflows")))?;
        if end > available {
            return Err(BundleError::Truncated {
                needed: end,
                available,
            });
        }
        // Both fit in usize: they are at most bytes.len().
        let payload = &bytes[offset as usize..end as usize];
        let digest: [u8; 32] = Sha256::digest(payload).into();
        if digest[..] != e[24..56] {
            return Err(BundleError::ChecksumMismatch { what: name });
        }
        entries.push(Entry {
            tag,
            version: u16_at(e, 4),
            payload,
        });
        expected_offset = end;
    }
    if expected_offset != available {
        return Err(malformed(format!(
            "{} bytes after the last section",
            available - expected_offset
        )));
    }
    Ok(entries)
}

/// Builds the container around section payloads (the writer side of [`Bundle::from_bytes`]).
#[derive(Debug, Default)]
pub struct ContainerWriter {
    sections: Vec<(Tag, u16, Vec<u8>)>,
}

impl ContainerWriter {
    /// Adds a section. Tags must be four ASCII letters or digits and unique.
    pub fn section(&mut self, tag: Tag, version: u16, payload: Vec<u8>) -> &mut Self {
        assert!(tag.iter().all(u8::is_ascii_alphanumeric), "invalid tag");
        assert!(
            self.sections.iter().all(|s| s.0 != tag),
            "duplicate section tag"
        );
        self.sections.push((tag, version, payload));
        self
    }

    /// Lays out header, table, checksum and payloads.
    pub fn finish(&self) -> Vec<u8> {
        let n = self.sections.len();
        assert!(n as u32 <= MAX_SECTIONS, "too many sections");
        let header_end = FIXED_HEADER + ENTRY * n + HASH;
        let total = header_end + self.sections.iter().map(|s| s.2.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        let mut offset = header_end as u64;
        for (tag, version, payload) in &self.sections {
            out.extend_from_slice(tag);
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(&Sha256::digest(payload));
            offset += payload.len() as u64;
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        for (_, _, payload) in &self.sections {
            out.extend_from_slice(payload);
        }
        out
    }
}

#[doc(hidden)]
pub mod tests_support {
    //! A tiny, hand-made bundle for doctests and unit tests.
    use super::*;
    use crate::catalog::Item;

    /// Four items over three genres.
    pub fn tiny_contents() -> BundleContents {
        let genres = vec!["Action".to_string(), "Comedy".into(), "Drama".into()];
        let items = vec![
            Item::new(10, "Alpha", Some(1995), vec![0]),
            Item::new(20, "Beta", Some(1996), vec![1]),
            Item::new(30, "Gamma", None, vec![0, 2]),
            Item::new(40, "Delta", Some(1990), vec![2]),
        ];
        let catalog = Catalog::new(genres, items).expect("valid catalog");
        let genre_vectors = GenreVectors::from_catalog(&catalog, vec![1.0, 1.0, 1.0]);
        BundleContents {
            meta: Meta {
                model_version: "tiny-1".into(),
                created_at: 0,
                dataset: "hand-made".into(),
                seed: 7,
                trainer: "tests".into(),
                recipe: "{}".into(),
            },
            catalog,
            popularity: Popularity {
                half_life_days: 30.0,
                reference_time: 0,
                scores: vec![1.0, 0.5, 0.25, 0.75],
            },
            genre_vectors,
            blend: BlendParams {
                popularity_weight: 0.1,
                recency_decay: 0.5,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::tiny_contents;
    use super::*;
    use crate::Error;

    fn code(bytes: &[u8]) -> &'static str {
        Bundle::from_bytes(bytes).unwrap_err().code()
    }

    #[test]
    fn round_trip_is_exact() {
        let c = tiny_contents();
        let bytes = c.encode();
        assert_eq!(Bundle::from_bytes(&bytes).unwrap().contents(), &c);
        // Encoding is deterministic.
        assert_eq!(bytes, c.encode());
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = tiny_contents().encode();
        for len in 0..bytes.len() {
            let err = Bundle::from_bytes(&bytes[..len]).unwrap_err();
            assert_eq!(err.code(), "truncated", "cut at {len}: {err}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = tiny_contents().encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let err = Bundle::from_bytes(&b).unwrap_err();
                let expected: &[&str] = match i {
                    0..8 => &["bad_magic"],
                    8..10 => &["unsupported_version"],
                    // A flipped section count can point the checksum past the end.
                    12..16 => &["checksum_mismatch", "malformed", "truncated"],
                    _ => &["checksum_mismatch", "malformed"],
                };
                assert!(
                    expected.contains(&err.code()),
                    "byte {i} bit {bit}: got {err}"
                );
            }
        }
    }

    #[test]
    fn wrong_magic_version_and_extra_bytes() {
        let bytes = tiny_contents().encode();
        assert_eq!(code(b"PK\x03\x04 not a bundle at all"), "bad_magic");
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert_eq!(code(&v2), "unsupported_version");
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(code(&extra), "malformed");
    }

    #[test]
    fn unknown_sections_are_skipped_and_missing_ones_named() {
        let c = tiny_contents();
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&c.meta));
        w.section(*b"CATL", 1, sections::encode_catalog(&c.catalog));
        w.section(*b"ZZZZ", 9, vec![1, 2, 3]);
        w.section(*b"POPL", 1, sections::encode_popularity(&c.popularity));
        w.section(
            *b"GENV",
            1,
            sections::encode_genre_vectors(&c.genre_vectors),
        );
        let err = Bundle::from_bytes(&w.finish()).unwrap_err();
        assert_eq!(
            err,
            Error::Bundle(BundleError::MissingSection { tag: "BLND".into() })
        );
        w.section(*b"BLND", 1, sections::encode_blend(&c.blend));
        assert_eq!(Bundle::from_bytes(&w.finish()).unwrap().contents(), &c);
    }

    #[test]
    fn newer_section_versions_are_refused_by_name() {
        let c = tiny_contents();
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&c.meta));
        w.section(*b"CATL", 2, sections::encode_catalog(&c.catalog));
        let err = Bundle::from_bytes(&w.finish()).unwrap_err();
        assert!(matches!(
            err,
            Error::Bundle(BundleError::UnsupportedVersion { ref what, found: 2, .. }) if what == "CATL"
        ));
    }

    #[test]
    fn inconsistent_sections_are_refused() {
        let mut c = tiny_contents();
        c.popularity.scores.pop();
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&c.meta));
        w.section(*b"CATL", 1, sections::encode_catalog(&c.catalog));
        w.section(*b"POPL", 1, sections::encode_popularity(&c.popularity));
        w.section(
            *b"GENV",
            1,
            sections::encode_genre_vectors(&c.genre_vectors),
        );
        w.section(*b"BLND", 1, sections::encode_blend(&c.blend));
        assert_eq!(code(&w.finish()), "malformed");
    }

    proptest::proptest! {
        /// Sections with valid checksums but arbitrary payloads (what a buggy or hostile
        /// publisher could sign) are refused with an error, never a panic.
        #[test]
        fn arbitrary_payloads_with_valid_checksums_never_panic(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 5),
            keep in 0usize..5,
        ) {
            let c = tiny_contents();
            let real = [
                sections::encode_meta(&c.meta),
                sections::encode_catalog(&c.catalog),
                sections::encode_popularity(&c.popularity),
                sections::encode_genre_vectors(&c.genre_vectors),
                sections::encode_blend(&c.blend),
            ];
            let mut w = ContainerWriter::default();
            for (i, tag) in [b"META", b"CATL", b"POPL", b"GENV", b"BLND"].into_iter().enumerate() {
                let payload = if i == keep { real[i].clone() } else { payloads[i].clone() };
                w.section(*tag, 1, payload);
            }
            let _ = Bundle::from_bytes(&w.finish());
        }

        /// Random edits anywhere (overwrites, truncation, extension) never panic and never load.
        #[test]
        fn random_edits_never_panic(
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..8),
            cut in proptest::option::of(proptest::num::usize::ANY),
        ) {
            let mut b = tiny_contents().encode();
            let original = b.clone();
            for (at, v) in edits {
                let i = at % b.len();
                b[i] = v;
            }
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            let loaded = Bundle::from_bytes(&b);
            proptest::prop_assert!(b == original || loaded.is_err());
        }
    }

    #[test]
    fn section_count_is_bounded_before_allocation() {
        let mut b = tiny_contents().encode();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(code(&b), "malformed");
    }
}
