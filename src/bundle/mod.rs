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
//! This module is the format only: bytes ↔ [`BundleContents`]. Loading the models a bundle
//! carries into their runtimes (the ranker, the user tower, the HNSW graphs) is
//! [`crate::model::Model`]'s job.
//!
//! Sections of format 1 (see [`sections`] for each payload's layout):
//!
//! | tag | version | required | content |
//! |---|---|---|---|
//! | `META` | 1 | yes | model version, creation time, dataset, seed, trainer, recipe |
//! | `CATL` | 1 | yes | genre names; items with id, title, year and genres |
//! | `POPL` | 1 | yes | time-decayed popularity per item, normalised to max 1 |
//! | `FACT` | 1, 2 | no | iALS item factors (v1 f32, v2 int8), their Gram matrix, alpha and lambda |
//! | `CONT` | 1 | no | content-based item profiles (inverted index), prior, recency decay |
//! | `TWRT` | 1, 2 | no | two-tower item embeddings (v1 f32, v2 int8), ONNX user tower, search vocabulary |
//! | `QUOT` | 1 | no | blend quotas of the candidate sources |
//! | `QUON` | 1 | no | blend quotas for users without a history (onboarding only); without it, `QUOT` |
//! | `NBRS` | 1 | no | item-to-item neighbour lists and that source's quotas (see [`neighbours`]) |
//! | `FEAT` | 1 | no (yes with `RANK`) | the feature contract: vocabularies, windows, dense feature names |
//! | `RANK` | 1 | no | the ranker: its input contract and ONNX model |
//! | `MDIA` | 1 | no (needs `FEAT`) | every title's ranking metadata and platform counts |
//! | `SERV` | 1 | no | serving settings: candidates to rank, rerank settings |
//! | `HNSW` | 1 | no | HNSW graphs over the iALS or two-tower item vectors |
//! | `CALD` | 1 | no | holiday calendar per country the context features use (see [`calendar`]); without it, the built-in one |
//! | `RELS` | 1 | no | the release: channel, publish sequence and time, stamped by the publisher ([`crate::release`]) |
//!
//! Bundles written before the device pipeline became the one recommendation path also carry
//! `GENV` and `BLND` (the first skeleton's genre vectors and blend weights, once required):
//! readers skip them like any unknown tag, so those bundles still load.
//!
//! Every per-item section holds one row per catalog item, in catalog order; a bundle whose
//! sections disagree on the item count is `malformed`. An optional section that is absent, or
//! present with a section version this reader does not know, leaves its capability out (the
//! `Option` field is `None`) instead of refusing the bundle — the same rule as unknown tags.
//! `FEAT` and `RANK` are the exception: a bundle that carries a ranker the reader cannot check
//! against its features is refused (`contract_mismatch`), because scoring with the wrong
//! inputs would be silently wrong rather than merely missing.
//!
//! Growing the format: a new capability adds a section with a new tag. Readers skip tags they do
//! not know, so older devices keep loading newer bundles as long as the sections they need are
//! there. Changing an existing payload bumps that section's version; changing the container bumps
//! [`FORMAT_VERSION`].
//!
//! ```
//! use edgerec::bundle::BundleContents;
//! # let contents = edgerec::test_support::tiny_contents();
//! let bytes: Vec<u8> = contents.encode();
//! let decoded = BundleContents::decode(&bytes)?;
//! assert_eq!(decoded, contents);
//!
//! let mut corrupt = bytes.clone();
//! let last = corrupt.len() - 1;
//! corrupt[last] ^= 0x01;
//! assert_eq!(BundleContents::decode(&corrupt).unwrap_err().code(), "checksum_mismatch");
//! # Ok::<(), edgerec::Error>(())
//! ```

pub mod calendar;
pub(crate) mod codec;
pub mod neighbours;
pub mod ranking;
pub mod sections;
pub mod serving;

use sha2::{Digest, Sha256};

use crate::calendar::Calendar;
use crate::catalog::Catalog;
use crate::error::{BundleError, Result};
pub use neighbours::Neighbours;
pub use ranking::{FeatureContract, RankerModel};
pub use sections::{ContentModel, IalsFactors, Meta, Popularity, Quotas, Release, TwoTowerModel};
pub use serving::{GraphSection, MediaTable, ServingSettings, Space};

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
    /// iALS item factors (`FACT`), when trained.
    pub ials: Option<IalsFactors>,
    /// The content-based source (`CONT`), when trained.
    pub content: Option<ContentModel>,
    /// The two-tower model (`TWRT`), when trained.
    pub two_tower: Option<TwoTowerModel>,
    /// Blend quotas of the candidate sources (`QUOT`).
    pub quotas: Option<Quotas>,
    /// Blend quotas for users without a history, known only by their onboarding picks
    /// (`QUON`, same payload as `QUOT`); `None`: they blend with `quotas`. Older readers skip
    /// the tag and blend everyone with `QUOT`.
    pub new_user_quotas: Option<Quotas>,
    /// The item-to-item neighbour source (`NBRS`) with its quotas, when trained.
    pub neighbours: Option<Neighbours>,
    /// The feature space the models were trained on (`FEAT`); required with a ranker.
    pub features: Option<FeatureContract>,
    /// The ranker and its input contract (`RANK`).
    pub ranker: Option<RankerModel>,
    /// Every title's ranking metadata and platform counts (`MDIA`); requires `FEAT`.
    pub media: Option<MediaTable>,
    /// How requests are served by default (`SERV`).
    pub serving: Option<ServingSettings>,
    /// HNSW graphs over the item vectors (`HNSW`), at most one per space.
    pub graphs: Vec<GraphSection>,
    /// The holiday calendar of the context features (`CALD`); `None`: the built-in one. When
    /// present, the loaded `features` space uses it.
    pub calendar: Option<Calendar>,
    /// The release this bundle was published as (`RELS`); `None` before it is published.
    pub release: Option<Release>,
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
        if let Some(f) = &self.ials {
            w.section(*b"FACT", f.section_version(), f.to_payload());
        }
        if let Some(c) = &self.content {
            w.section(*b"CONT", 1, c.to_payload());
        }
        if let Some(t) = &self.two_tower {
            w.section(*b"TWRT", t.section_version(), t.to_payload());
        }
        if let Some(q) = &self.quotas {
            w.section(*b"QUOT", 1, q.to_payload());
        }
        if let Some(q) = &self.new_user_quotas {
            w.section(*b"QUON", 1, q.to_payload());
        }
        if let Some(n) = &self.neighbours {
            w.section(*b"NBRS", 1, n.to_payload());
        }
        if let Some(f) = &self.features {
            w.section(*b"FEAT", 1, f.to_payload());
        }
        if let Some(c) = &self.calendar {
            w.section(*b"CALD", 1, calendar::encode_calendar(c));
        }
        if let Some(r) = &self.ranker {
            w.section(*b"RANK", 1, r.to_payload());
        }
        if let Some(m) = &self.media {
            w.section(*b"MDIA", 1, m.to_payload());
        }
        if let Some(s) = &self.serving {
            w.section(*b"SERV", 1, s.to_payload());
        }
        if !self.graphs.is_empty() {
            w.section(*b"HNSW", 1, serving::encode_graphs(&self.graphs));
        }
        if let Some(r) = &self.release {
            w.section(*b"RELS", 1, r.to_payload());
        }
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
        if let Some(f) = &self.ials
            && f.factors().rows() != n
        {
            return bad(
                "FACT",
                format!("{} rows for {n} catalog items", f.factors().rows()),
            );
        }
        if let Some(c) = &self.content
            && c.index().items() != n
        {
            return bad(
                "CONT",
                format!("{} items for {n} catalog items", c.index().items()),
            );
        }
        if let Some(t) = &self.two_tower
            && t.rows() != n
        {
            return bad("TWRT", format!("{} rows for {n} catalog items", t.rows()));
        }
        if let Some(nb) = &self.neighbours
            && nb.rows() != n
        {
            return bad(
                "NBRS",
                format!("{} titles for {n} catalog items", nb.rows()),
            );
        }
        if let Some(r) = &self.ranker {
            r.contract.validate()?;
            let features = self
                .features
                .as_ref()
                .ok_or_else(|| BundleError::Contract {
                    reason: "the bundle carries a ranker but no feature contract (FEAT)".into(),
                })?;
            r.contract.check_features(features.space())?;
        }
        if let Some(m) = &self.media {
            let features = self
                .features
                .as_ref()
                .ok_or_else(|| BundleError::Contract {
                    reason: "the bundle carries a media table but no feature contract (FEAT)"
                        .into(),
                })?;
            check_media(m, &self.catalog, features.space())?;
        }
        if let Some(s) = &self.serving {
            s.validate()?;
        }
        calendar::check(self.calendar.as_ref(), self.features.as_ref())?;
        for (i, g) in self.graphs.iter().enumerate() {
            if self.graphs[..i].iter().any(|h| h.space == g.space) {
                return bad("HNSW", format!("two graphs for {}", g.space.as_str()));
            }
            let rows = match g.space {
                Space::Ials => self.ials.as_ref().map(|f| f.factors().rows()),
                Space::TwoTower => self.two_tower.as_ref().map(|t| t.rows()),
            };
            if rows.is_none() {
                return bad(
                    "HNSW",
                    format!("a graph for {} without its item vectors", g.space.as_str()),
                );
            }
        }
        Ok(())
    }

    /// Verifies and decodes a bundle: the container and every checksum ([`read_table`]'s
    /// order, see the module docs), then each section the reader knows, then
    /// [`validate`](Self::validate). Cost: one sha256 pass over the bytes plus decoding;
    /// allocation is bounded by the input length. Never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<BundleContents> {
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
        // Optional sections: absent or of an unknown version means "not available".
        let optional = |tag: &Tag| -> Option<&[u8]> {
            table
                .iter()
                .find(|e| &e.tag == tag && e.version == 1)
                .map(|e| e.payload)
        };
        // Item vectors: version 1 is f32, version 2 int8.
        let vectors = |tag: &Tag| -> Option<(u16, &[u8])> {
            table
                .iter()
                .find(|e| &e.tag == tag && (e.version == 1 || e.version == 2))
                .map(|e| (e.version, e.payload))
        };
        let bundle_calendar = optional(b"CALD")
            .map(calendar::decode_calendar)
            .transpose()?;
        let contents = BundleContents {
            meta: sections::decode_meta(section(b"META")?)?,
            catalog: sections::decode_catalog(section(b"CATL")?)?,
            popularity: sections::decode_popularity(section(b"POPL")?)?,
            ials: vectors(b"FACT")
                .map(|(v, p)| IalsFactors::from_payload(v, p))
                .transpose()?,
            content: optional(b"CONT")
                .map(ContentModel::from_payload)
                .transpose()?,
            two_tower: vectors(b"TWRT")
                .map(|(v, p)| TwoTowerModel::from_payload(v, p))
                .transpose()?,
            quotas: optional(b"QUOT").map(Quotas::from_payload).transpose()?,
            new_user_quotas: optional(b"QUON").map(Quotas::from_payload).transpose()?,
            neighbours: optional(b"NBRS")
                .map(Neighbours::from_payload)
                .transpose()?,
            // The FEAT space over the bundle's calendar, if it has one.
            features: calendar::with_bundle_calendar(
                optional(b"FEAT")
                    .map(FeatureContract::from_payload)
                    .transpose()?,
                bundle_calendar.as_ref(),
            ),
            ranker: ranker_section(&table)?,
            media: optional(b"MDIA")
                .map(MediaTable::from_payload)
                .transpose()?,
            serving: optional(b"SERV")
                .map(ServingSettings::from_payload)
                .transpose()?,
            graphs: optional(b"HNSW")
                .map(serving::decode_graphs)
                .transpose()?
                .unwrap_or_default(),
            calendar: bundle_calendar,
            release: optional(b"RELS").map(Release::from_payload).transpose()?,
        };
        contents.validate()?;
        Ok(contents)
    }
}

/// `RANK`, if present. Unlike the candidate sources, a ranker of an unknown section version
/// is refused rather than skipped: the bundle's row would otherwise change order silently.
fn ranker_section(table: &[Entry<'_>]) -> Result<Option<RankerModel>, BundleError> {
    match table.iter().find(|e| &e.tag == b"RANK") {
        None => Ok(None),
        Some(e) if e.version == 1 => RankerModel::from_payload(e.payload).map(Some),
        Some(e) => Err(BundleError::UnsupportedVersion {
            what: "RANK".into(),
            found: e.version,
            supported: 1,
        }),
    }
}

/// `MDIA` against the catalog (one title per item, same ids) and the feature contract (every
/// id inside its vocabulary).
fn check_media(
    m: &MediaTable,
    catalog: &Catalog,
    space: &crate::features::FeatureSpace,
) -> Result<(), BundleError> {
    let bad = |reason: String| {
        Err(BundleError::Malformed {
            what: "MDIA".into(),
            reason,
        })
    };
    if m.len() != catalog.len() {
        return bad(format!(
            "{} titles for {} catalog items",
            m.len(),
            catalog.len()
        ));
    }
    let v = space.vocabularies();
    let (genres, tags, people) = (v.genres.size(), v.tags.size(), v.people.size());
    let (distributors, languages, countries) = (
        v.distributors.size(),
        v.languages.size(),
        v.countries.size(),
    );
    for (media, item) in m.media().iter().zip(catalog.items()) {
        if media.id != item.id {
            return bad(format!(
                "title {} where the catalog has item {}",
                media.id, item.id
            ));
        }
        let inside = |ids: &[u32], size: usize| ids.iter().all(|&i| (i as usize) < size);
        if !(inside(&media.genres, genres)
            && inside(&media.tags, tags)
            && inside(&media.actors, people)
            && inside(&media.directors, people)
            && inside(&[media.composer], people)
            && inside(&[media.distributor], distributors)
            && inside(&[media.language], languages)
            && inside(&[media.country], countries))
        {
            return bad(format!(
                "title {} has an id outside the feature contract's vocabularies",
                media.id
            ));
        }
    }
    Ok(())
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
    let (count, header_end) = read_header(bytes)?;
    let mut entries = Vec::with_capacity(count);
    let mut expected_offset = header_end as u64;
    for i in 0..count {
        let entry = read_entry(bytes, i, expected_offset, &entries)?;
        // The next section starts where this one ends (within `bytes`).
        expected_offset += entry.payload.len() as u64;
        entries.push(entry);
    }
    if expected_offset != available {
        return Err(malformed_header(format!(
            "{} bytes after the last section",
            available - expected_offset
        )));
    }
    Ok(entries)
}

/// A `malformed` error in the container header or section table.
fn malformed_header(reason: String) -> BundleError {
    BundleError::Malformed {
        what: "header".into(),
        reason,
    }
}

/// Checks the fixed header (magic, format version, section count, reserved flags) and the
/// section table's checksum, in the module docs' order. Returns the section count and the
/// end of the header (table and hash), both within `bytes`.
fn read_header(bytes: &[u8]) -> Result<(usize, usize), BundleError> {
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
    if u16_at(bytes, 10) != 0 {
        return Err(malformed_header("reserved flags are not zero".into()));
    }
    Ok((count, header_end))
}

/// Checks section table entry `i` (of a header [`read_header`] verified) against the
/// entries before it: tag, uniqueness, reserved bits, that its payload starts at
/// `expected_offset` (where the previous one ended) and fits in `bytes`, and the payload's
/// checksum.
fn read_entry<'a>(
    bytes: &'a [u8],
    i: usize,
    expected_offset: u64,
    entries: &[Entry<'_>],
) -> Result<Entry<'a>, BundleError> {
    let available = bytes.len() as u64;
    let e = &bytes[FIXED_HEADER + ENTRY * i..FIXED_HEADER + ENTRY * (i + 1)];
    let tag: Tag = e[0..4].try_into().expect("4 bytes");
    let name = tag_name(&tag);
    if !tag.iter().all(u8::is_ascii_alphanumeric) {
        return Err(malformed_header(format!(
            "section {i} has an invalid tag {name:?}"
        )));
    }
    if entries.iter().any(|x| x.tag == tag) {
        return Err(malformed_header(format!("section {name} appears twice")));
    }
    if u16_at(e, 6) != 0 {
        return Err(malformed_header(format!(
            "section {name} has non-zero reserved bits"
        )));
    }
    let offset = u64_at(e, 8);
    let length = u64_at(e, 16);
    if offset != expected_offset {
        return Err(malformed_header(format!(
            "section {name} starts at {offset}, expected {expected_offset}"
        )));
    }
    let end = offset
        .checked_add(length)
        .ok_or_else(|| malformed_header(format!("section {name} length overflows")))?;
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
    Ok(Entry {
        tag,
        version: u16_at(e, 4),
        payload,
    })
}

/// One entry of a bundle's section table: what a signed release lists for each section
/// ([`crate::release`]), enough to rebuild the container around the payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    /// The section's tag.
    pub tag: Tag,
    /// The section's payload version.
    pub version: u16,
    /// The payload's length in bytes.
    pub length: u64,
    /// The payload's sha256.
    pub sha256: [u8; 32],
}

impl SectionEntry {
    /// The entry of `payload` as section `tag` at `version`: its length and sha256.
    pub fn of(tag: Tag, version: u16, payload: &[u8]) -> SectionEntry {
        SectionEntry {
            tag,
            version,
            length: payload.len() as u64,
            sha256: Sha256::digest(payload).into(),
        }
    }
}

/// A bundle's container, verified (every check of [`BundleContents::decode`] up to the
/// payloads' contents): its header checksum and each section's entry with its payload.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    /// The sha256 of the header and section table, as the bundle stores it.
    pub header_sha256: [u8; 32],
    /// The sections in table order, each with its payload (borrowed from the bundle).
    pub sections: Vec<(SectionEntry, &'a [u8])>,
}

impl Layout<'_> {
    /// Verifies the container of `bytes` (magic, version, table, header and payload
    /// checksums, nothing after the last payload) without decoding any payload.
    pub fn of(bytes: &[u8]) -> Result<Layout<'_>, BundleError> {
        let table = read_table(bytes)?;
        let n = table.len();
        let table_end = FIXED_HEADER + ENTRY * n;
        let header_sha256: [u8; 32] = bytes[table_end..table_end + HASH]
            .try_into()
            .expect("32 bytes");
        let sections = table
            .iter()
            .map(|e| (SectionEntry::of(e.tag, e.version, e.payload), e.payload))
            .collect();
        Ok(Layout {
            header_sha256,
            sections,
        })
    }
}

/// The header, section table and header checksum of a bundle whose payloads are `entries`,
/// laid out back to back in that order — the bytes [`ContainerWriter::finish`] writes before
/// the payloads. Refuses what a reader would refuse: more than [`MAX_SECTIONS`] sections, a
/// tag that is not four ASCII letters or digits, a tag twice, offsets that overflow.
pub fn container_header(entries: &[SectionEntry]) -> Result<Vec<u8>, BundleError> {
    let n = entries.len();
    if n > MAX_SECTIONS as usize {
        return Err(malformed_header(format!(
            "{n} sections, at most {MAX_SECTIONS} allowed"
        )));
    }
    let header_end = FIXED_HEADER + ENTRY * n + HASH;
    let mut out = Vec::with_capacity(header_end);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    let mut offset = header_end as u64;
    for (i, e) in entries.iter().enumerate() {
        let name = tag_name(&e.tag);
        if !e.tag.iter().all(u8::is_ascii_alphanumeric) {
            return Err(malformed_header(format!(
                "section {i} has an invalid tag {name:?}"
            )));
        }
        if entries[..i].iter().any(|x| x.tag == e.tag) {
            return Err(malformed_header(format!("section {name} appears twice")));
        }
        out.extend_from_slice(&e.tag);
        out.extend_from_slice(&e.version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.sha256);
        offset = offset
            .checked_add(e.length)
            .ok_or_else(|| malformed_header(format!("section {name} length overflows")))?;
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Builds the container around section payloads (the writer side of [`BundleContents::decode`]).
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
        let entries: Vec<SectionEntry> = self
            .sections
            .iter()
            .map(|(tag, version, payload)| SectionEntry::of(*tag, *version, payload))
            .collect();
        let mut out = container_header(&entries).expect("tags checked by section()");
        out.reserve(self.sections.iter().map(|s| s.2.len()).sum::<usize>());
        for (_, _, payload) in &self.sections {
            out.extend_from_slice(payload);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::test_support::{
        tiny_contents, tiny_contents_for_device, tiny_contents_with_sources,
    };

    fn code(bytes: &[u8]) -> &'static str {
        BundleContents::decode(bytes).unwrap_err().code()
    }

    #[test]
    fn round_trip_is_exact() {
        let c = tiny_contents();
        let bytes = c.encode();
        assert_eq!(BundleContents::decode(&bytes).unwrap(), c);
        // Encoding is deterministic.
        assert_eq!(bytes, c.encode());
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = tiny_contents().encode();
        for len in 0..bytes.len() {
            let err = BundleContents::decode(&bytes[..len]).unwrap_err();
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
                let err = BundleContents::decode(&b).unwrap_err();
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
        let err = BundleContents::decode(&w.finish()).unwrap_err();
        assert_eq!(
            err,
            Error::Bundle(BundleError::MissingSection { tag: "POPL".into() })
        );
        w.section(*b"POPL", 1, sections::encode_popularity(&c.popularity));
        // The first skeleton's sections, once required, are skipped like any unknown tag.
        w.section(*b"GENV", 1, vec![0xff; 7]);
        w.section(*b"BLND", 1, vec![0xff; 3]);
        assert_eq!(BundleContents::decode(&w.finish()).unwrap(), c);
    }

    #[test]
    fn newer_section_versions_are_refused_by_name() {
        let c = tiny_contents();
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&c.meta));
        w.section(*b"CATL", 2, sections::encode_catalog(&c.catalog));
        let err = BundleContents::decode(&w.finish()).unwrap_err();
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
        assert_eq!(code(&w.finish()), "malformed");
    }

    proptest::proptest! {
        /// Sections with valid checksums but arbitrary payloads (what a buggy or hostile
        /// publisher could sign) are refused with an error, never a panic.
        #[test]
        fn arbitrary_payloads_with_valid_checksums_never_panic(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 3),
            keep in 0usize..3,
        ) {
            let c = tiny_contents();
            let real = [
                sections::encode_meta(&c.meta),
                sections::encode_catalog(&c.catalog),
                sections::encode_popularity(&c.popularity),
            ];
            let mut w = ContainerWriter::default();
            for (i, tag) in [b"META", b"CATL", b"POPL"].into_iter().enumerate() {
                let payload = if i == keep { real[i].clone() } else { payloads[i].clone() };
                w.section(*tag, 1, payload);
            }
            let _ = BundleContents::decode(&w.finish());
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
            let loaded = BundleContents::decode(&b);
            proptest::prop_assert!(b == original || loaded.is_err());
        }
    }

    /// The required sections of `c`, then `extra` as given (payloads not checked).
    fn container(c: &BundleContents, extra: &[(Tag, u16, Vec<u8>)]) -> Vec<u8> {
        let mut w = ContainerWriter::default();
        w.section(*b"META", 1, sections::encode_meta(&c.meta));
        w.section(*b"CATL", 1, sections::encode_catalog(&c.catalog));
        w.section(*b"POPL", 1, sections::encode_popularity(&c.popularity));
        for (tag, v, p) in extra {
            w.section(*tag, *v, p.clone());
        }
        w.finish()
    }

    /// `(tag, payload range)` of every section of a well-formed bundle.
    fn section_ranges(bytes: &[u8]) -> Vec<(Tag, std::ops::Range<usize>)> {
        let n = u32_at(bytes, 12) as usize;
        (0..n)
            .map(|i| {
                let e = &bytes[FIXED_HEADER + ENTRY * i..];
                let (off, len) = (u64_at(e, 8) as usize, u64_at(e, 16) as usize);
                (e[0..4].try_into().unwrap(), off..off + len)
            })
            .collect()
    }

    fn optional_payloads(c: &BundleContents) -> Vec<(Tag, u16, Vec<u8>)> {
        vec![
            (*b"FACT", 1, c.ials.as_ref().unwrap().to_payload()),
            (*b"CONT", 1, c.content.as_ref().unwrap().to_payload()),
            (*b"TWRT", 1, c.two_tower.as_ref().unwrap().to_payload()),
            (*b"QUOT", 1, c.quotas.as_ref().unwrap().to_payload()),
        ]
    }

    #[test]
    fn optional_sections_round_trip_and_old_bundles_load_without_them() {
        let c = tiny_contents_with_sources();
        let bytes = c.encode();
        let loaded = BundleContents::decode(&bytes).unwrap();
        assert_eq!(loaded, c);
        assert_eq!(bytes, c.encode());
        let tags: Vec<Tag> = section_ranges(&bytes).into_iter().map(|s| s.0).collect();
        assert_eq!(
            tags,
            [
                b"META", b"CATL", b"POPL", b"FACT", b"CONT", b"TWRT", b"QUOT"
            ]
            .map(|t| *t)
        );
        // A bundle of the required sections alone has none of them.
        let o = BundleContents::decode(&tiny_contents().encode()).unwrap();
        assert!(o.ials.is_none() && o.content.is_none() && o.two_tower.is_none());
        assert!(o.quotas.is_none());
        // Each optional section alone.
        for (k, extra) in optional_payloads(&c).into_iter().enumerate() {
            let got = BundleContents::decode(&container(&c, &[extra])).unwrap();
            assert_eq!(
                [
                    got.ials.is_some(),
                    got.content.is_some(),
                    got.two_tower.is_some(),
                    got.quotas.is_some()
                ],
                std::array::from_fn(|i| i == k)
            );
        }
    }

    #[test]
    fn int8_item_vectors_round_trip_as_section_version_2() {
        let c = tiny_contents_with_sources();
        let q = BundleContents {
            ials: Some(c.ials.as_ref().unwrap().quantized().unwrap()),
            two_tower: Some(c.two_tower.as_ref().unwrap().quantized().unwrap()),
            ..c.clone()
        };
        let bytes = q.encode();
        let versions: Vec<(Tag, u16)> = read_table(&bytes)
            .unwrap()
            .iter()
            .map(|e| (e.tag, e.version))
            .collect();
        assert!(versions.contains(&(*b"FACT", 2)) && versions.contains(&(*b"TWRT", 2)));
        let loaded = BundleContents::decode(&bytes).unwrap();
        assert_eq!(loaded, q);
        assert!(loaded.ials.as_ref().unwrap().factors().is_int8());
        // Smaller than f32 (here only a little: 2 dimensions).
        assert!(bytes.len() < c.encode().len());
        // A v2 payload read as v1 (or v1 as v2) is malformed, not a panic.
        let fact = q.ials.as_ref().unwrap().to_payload();
        assert!(IalsFactors::from_payload(1, &fact).is_err());
        let f32_fact = c.ials.as_ref().unwrap().to_payload();
        assert!(IalsFactors::from_payload(2, &f32_fact).is_err());
        for cut in 0..fact.len() {
            assert!(IalsFactors::from_payload(2, &fact[..cut]).is_err());
        }
    }

    #[test]
    fn device_sections_round_trip_and_are_checked_against_catalog_and_features() {
        let c = tiny_contents_for_device();
        let bytes = c.encode();
        let loaded = BundleContents::decode(&bytes).unwrap();
        assert_eq!(loaded, c);
        // MDIA without FEAT: refused, as a ranker without FEAT is.
        let no_feat = BundleContents {
            features: None,
            ..c.clone()
        };
        assert_eq!(
            BundleContents::decode(&container(
                &no_feat,
                &[(*b"MDIA", 1, c.media.as_ref().unwrap().to_payload())]
            ))
            .unwrap_err()
            .code(),
            "contract_mismatch"
        );
        // Titles that do not match the catalog, or ids outside the vocabularies.
        let m = c.media.as_ref().unwrap();
        let mut media = m.media().to_vec();
        media.swap(0, 1);
        let swapped = BundleContents {
            media: Some(MediaTable::new(media, m.stats().to_vec(), 0).unwrap()),
            ..c.clone()
        };
        assert!(swapped.validate().is_err());
        let mut media = m.media().to_vec();
        media[2].genres.push(99);
        let outside = BundleContents {
            media: Some(MediaTable::new(media, m.stats().to_vec(), 0).unwrap()),
            ..c.clone()
        };
        assert!(outside.validate().is_err());
        let short = BundleContents {
            media: Some(
                MediaTable::new(m.media()[..3].to_vec(), m.stats()[..3].to_vec(), 0).unwrap(),
            ),
            ..c.clone()
        };
        assert!(short.validate().is_err());
    }

    #[test]
    fn optional_sections_of_unknown_versions_are_skipped() {
        let c = tiny_contents_with_sources();
        let mut extra = optional_payloads(&c);
        extra[0].1 = 3;
        extra[2].2 = vec![0xff; 3]; // garbage, but version 9: never parsed
        extra[2].1 = 9;
        let b = BundleContents::decode(&container(&c, &extra)).unwrap();
        assert!(b.ials.is_none() && b.two_tower.is_none());
        assert_eq!(b.content, c.content);
        assert_eq!(b.quotas, c.quotas);
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_full_bundle_is_refused() {
        let bytes = tiny_contents_with_sources().encode();
        for len in 0..bytes.len() {
            assert_eq!(code(&bytes[..len]), "truncated", "cut at {len}");
        }
        let ranges = section_ranges(&bytes);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let err = BundleContents::decode(&b).unwrap_err();
                // Inside a payload: that section's checksum, by name.
                if let Some((tag, _)) = ranges.iter().find(|(_, r)| r.contains(&i)) {
                    assert_eq!(
                        err,
                        Error::Bundle(BundleError::ChecksumMismatch {
                            what: tag_name(tag)
                        }),
                        "byte {i} bit {bit}"
                    );
                } else {
                    assert!(
                        [
                            "bad_magic",
                            "unsupported_version",
                            "checksum_mismatch",
                            "malformed",
                            "truncated"
                        ]
                        .contains(&err.code()),
                        "byte {i} bit {bit}: {err}"
                    );
                }
            }
        }
    }

    fn malformed_in(bytes: &[u8], tag: &str) {
        match BundleContents::decode(bytes) {
            Err(Error::Bundle(BundleError::Malformed { what, .. })) if what == tag => {}
            other => panic!("expected malformed {tag}, got {other:?}"),
        }
    }

    #[test]
    fn optional_sections_must_match_the_catalog() {
        use crate::ials::Factors;
        let c = tiny_contents_with_sources();
        // Three rows of factors for four catalog items.
        let f = IalsFactors::from_factors(Factors::new(1, vec![1.0, 2.0, 3.0]).unwrap(), 1.0, 0.1)
            .unwrap();
        malformed_in(&container(&c, &[(*b"FACT", 1, f.to_payload())]), "FACT");
        let t = TwoTowerModel::new(4, vec![0.5; 4], vec![1], vec![], 1, 1, "x".into()).unwrap();
        malformed_in(&container(&c, &[(*b"TWRT", 1, t.to_payload())]), "TWRT");
        let items = vec![vec!["genre:A".to_string()], vec!["genre:B".to_string()]];
        let idx = crate::content::ContentIndex::build(&items, &[], vec![0.0; 2], 0.0).unwrap();
        let m = ContentModel::new(idx, 0.0).unwrap();
        malformed_in(&container(&c, &[(*b"CONT", 1, m.to_payload())]), "CONT");
        // And encoding such contents is a trainer bug.
        let mut bad = c.clone();
        bad.ials = Some(f);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn malformed_optional_payloads_are_refused_by_name() {
        use codec::Writer;
        let c = tiny_contents_with_sources();
        let fact = |dim: u32, alpha: f32, lambda: f32, values: &[f32], gram: &[f64]| {
            let mut w = Writer::new();
            w.u32(dim);
            w.f32(alpha);
            w.f32(lambda);
            w.f32s(values);
            w.f64s(gram);
            w.finish()
        };
        let y = [1.0f32, 0.0, 0.0, 1.0, 0.9, 0.1, 0.1, 0.8];
        let g = crate::ials::Factors::new(2, y.to_vec()).unwrap().gram();
        assert!(IalsFactors::from_payload(1, &fact(2, 2.0, 0.1, &y, &g)).is_ok());
        let mut asym = g.clone();
        asym[1] += 0.5;
        let mut wrong_trace = g.clone();
        wrong_trace[0] += 1.0;
        for (name, payload) in [
            ("dim 0", fact(0, 2.0, 0.1, &y, &g)),
            ("dim too large", fact(2000, 2.0, 0.1, &y, &g)),
            ("rows not whole", fact(3, 2.0, 0.1, &y, &g)),
            ("lambda 0", fact(2, 2.0, 0.0, &y, &g)),
            ("negative alpha", fact(2, -1.0, 0.1, &y, &g)),
            ("NaN factor", fact(2, 2.0, 0.1, &[f32::NAN, 0.0], &[0.0; 4])),
            ("gram not d × d", fact(2, 2.0, 0.1, &y, &g[..3])),
            ("gram not symmetric", fact(2, 2.0, 0.1, &y, &asym)),
            ("gram of other factors", fact(2, 2.0, 0.1, &y, &wrong_trace)),
            ("huge length", {
                let mut p = fact(2, 2.0, 0.1, &y, &g);
                p[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
                p
            }),
            ("trailing byte", {
                let mut p = fact(2, 2.0, 0.1, &y, &g);
                p.push(0);
                p
            }),
        ] {
            let err = IalsFactors::from_payload(1, &payload).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { what, .. } if what == "FACT"),
                "{name}: {err}"
            );
            malformed_in(&container(&c, &[(*b"FACT", 1, payload)]), "FACT");
        }

        let cont = c.content.as_ref().unwrap().to_payload();
        let mut bad_decay = cont.clone();
        bad_decay[0..4].copy_from_slice(&(-1f32).to_le_bytes());
        let mut bad_beta = cont.clone();
        bad_beta[4..8].copy_from_slice(&2f32.to_le_bytes());
        for (name, payload) in [
            ("negative decay", bad_decay),
            ("beta above 1", bad_beta),
            ("cut short", cont[..cont.len() - 1].to_vec()),
        ] {
            let err = ContentModel::from_payload(&payload).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { what, .. } if what == "CONT"),
                "{name}: {err}"
            );
        }
        // An entry pointing at a token that does not exist.
        let idx = c.content.as_ref().unwrap().index();
        let (offsets, entries) = idx.parts();
        let mut w = Writer::new();
        w.f32(0.5);
        w.f32(0.1);
        w.len(idx.tokens().len());
        for t in idx.tokens() {
            w.str(t);
        }
        w.u32s(offsets);
        w.len(entries.len());
        for (k, &(t, v)) in entries.iter().enumerate() {
            w.u32(if k == 0 { 999 } else { t });
            w.f32(v);
        }
        w.f32s(idx.prior());
        malformed_in(&container(&c, &[(*b"CONT", 1, w.finish())]), "CONT");

        let tw_rows = |vocab: &[&str], rows: &[f32], tower: &[u8]| {
            let mut w = Writer::new();
            w.u32(2);
            w.u32(50);
            w.u32(20);
            w.str("x");
            w.len(vocab.len());
            for t in vocab {
                w.str(t);
            }
            w.f32s(rows);
            w.bytes(tower);
            w.finish()
        };
        let tw = |vocab: &[&str], tower: &[u8]| tw_rows(vocab, &[0.0; 8], tower);
        assert!(TwoTowerModel::from_payload(1, &tw(&["a", "b"], b"onnx")).is_ok());
        let mut nan = [0.0f32; 8];
        nan[5] = f32::NAN;
        for (name, payload) in [
            ("a NaN embedding", tw_rows(&["a"], &nan, b"onnx")),
            (
                "embeddings not whole rows",
                tw_rows(&["a"], &[0.0; 7], b"onnx"),
            ),
            ("duplicate search token", tw(&["a", "a"], b"onnx")),
            ("empty tower", tw(&["a"], b"")),
            ("tower cut short", {
                let p = tw(&["a"], b"onnx");
                p[..p.len() - 1].to_vec()
            }),
        ] {
            let err = TwoTowerModel::from_payload(1, &payload).unwrap_err();
            assert!(
                matches!(&err, BundleError::Malformed { what, .. } if what == "TWRT"),
                "{name}: {err}"
            );
            malformed_in(&container(&c, &[(*b"TWRT", 1, payload)]), "TWRT");
        }
        malformed_in(&container(&c, &[(*b"QUOT", 1, vec![1, 0, 0])]), "QUOT");
        malformed_in(&container(&c, &[(*b"QUOT", 1, vec![0; 17])]), "QUOT");
    }

    proptest::proptest! {
        /// Optional sections with valid checksums but arbitrary payloads (or a real payload
        /// with a few bytes overwritten) never panic: they load or give an error.
        #[test]
        fn arbitrary_optional_payloads_never_panic(
            which in 0usize..4,
            random in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..6),
            cut in proptest::option::of(proptest::num::usize::ANY),
            use_random in proptest::bool::ANY,
        ) {
            let c = tiny_contents_with_sources();
            let mut extra = optional_payloads(&c);
            let p = &mut extra[which].2;
            if use_random {
                *p = random;
            } else {
                for (at, v) in edits {
                    if !p.is_empty() {
                        let i = at % p.len();
                        p[i] = v;
                    }
                }
                if let Some(k) = cut {
                    p.truncate(k % (p.len() + 1));
                }
            }
            if let Ok(b) = BundleContents::decode(&container(&c, &extra)) {
                proptest::prop_assert!(b.validate().is_ok());
            }
        }
    }

    #[test]
    fn section_count_is_bounded_before_allocation() {
        let mut b = tiny_contents().encode();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(code(&b), "malformed");
    }
}
