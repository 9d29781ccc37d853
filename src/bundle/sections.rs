//! Payload layouts of the version-1 sections, and their encoders and decoders.
//!
//! Notation: `str` is a `u32` byte length then UTF-8; `[T]` is a `u32` count then the elements;
//! `f32` values must be finite.
//!
//! * `META` v1: `model_version: str, created_at: i64 (unix seconds), dataset: str, seed: u64,
//!   trainer: str, recipe: str (JSON of the training parameters)`.
//! * `CATL` v1: `genres: [str]`, then `items: [item]` where an item is `id: u32, title: str,
//!   year: u16 (0 = unknown), genres: u8 count then u16 genre indices, ascending`.
//! * `POPL` v1: `half_life_days: f32, reference_time: i64, scores: [f32]` (one per item, in
//!   catalog order, in `[0, 1]`).
//! * `GENV` v1: `idf: [f32]` (one per genre), then `vectors: [f32]` of length items × genres,
//!   row-major; each row is the item's IDF-weighted genre indicator, L2-normalised (all zeros
//!   for an item without genres).
//! * `BLND` v1: `popularity_weight: f32, recency_decay: f32` (both ≥ 0).

use super::codec::{Reader, Writer};
use crate::catalog::{Catalog, Item};
use crate::error::BundleError;

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Human-readable version, shown by clients and logged with every recommendation.
    pub model_version: String,
    /// When the bundle was built, unix seconds (taken from the data, so builds reproduce).
    pub created_at: i64,
    /// Name of the training data set.
    pub dataset: String,
    /// The seed training used.
    pub seed: u64,
    /// Name and version of the trainer.
    pub trainer: String,
    /// JSON of the training parameters.
    pub recipe: String,
}

/// Time-decayed popularity (see the trainer for the decay formula).
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    /// Half-life of an interaction's weight, in days.
    pub half_life_days: f32,
    /// The time the decay is measured from (unix seconds).
    pub reference_time: i64,
    /// One score per catalog item, in `[0, 1]`, the most popular item at 1.
    pub scores: Vec<f32>,
}

/// IDF-weighted genre vectors for content-based genre affinity.
#[derive(Debug, Clone, PartialEq)]
pub struct GenreVectors {
    idf: Vec<f32>,
    vectors: Vec<f32>,
}

impl GenreVectors {
    /// Builds each item's genre indicator weighted by `idf` (one weight per genre, ≥ 0) and
    /// L2-normalised. Panics if `idf.len()` differs from the catalog's genre count.
    pub fn from_catalog(catalog: &Catalog, idf: Vec<f32>) -> GenreVectors {
        let dim = catalog.genres().len();
        assert_eq!(idf.len(), dim, "one IDF weight per genre");
        let mut vectors = vec![0f32; catalog.len() * dim];
        for (row, item) in vectors.chunks_exact_mut(dim.max(1)).zip(catalog.items()) {
            for &g in &item.genres {
                row[g as usize] = idf[g as usize];
            }
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        GenreVectors { idf, vectors }
    }

    /// Number of dimensions (genres).
    pub fn dim(&self) -> usize {
        self.idf.len()
    }

    /// Number of rows (items).
    pub fn rows(&self) -> usize {
        self.vectors.len().checked_div(self.dim()).unwrap_or(0)
    }

    /// The IDF weight of each genre.
    pub fn idf(&self) -> &[f32] {
        &self.idf
    }

    /// The unit genre vector of the item at `position`.
    pub fn row(&self, position: usize) -> &[f32] {
        let d = self.dim();
        &self.vectors[position * d..(position + 1) * d]
    }
}

/// Parameters of the blend of genre affinity and popularity, fitted by the trainer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlendParams {
    /// Weight of popularity added to the genre-affinity cosine.
    pub popularity_weight: f32,
    /// How fast older history items lose weight in the user profile: the item watched `r`
    /// titles before the latest has weight `1 / (1 + recency_decay * r)`.
    pub recency_decay: f32,
}

pub(crate) fn encode_meta(m: &Meta) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(&m.model_version);
    w.i64(m.created_at);
    w.str(&m.dataset);
    w.u64(m.seed);
    w.str(&m.trainer);
    w.str(&m.recipe);
    w.finish()
}

pub(crate) fn decode_meta(b: &[u8]) -> Result<Meta, BundleError> {
    let mut r = Reader::new(b, "META");
    let m = Meta {
        model_version: r.str()?,
        created_at: r.i64()?,
        dataset: r.str()?,
        seed: r.u64()?,
        trainer: r.str()?,
        recipe: r.str()?,
    };
    r.finish()?;
    Ok(m)
}

pub(crate) fn encode_catalog(c: &Catalog) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(c.genres().len());
    for g in c.genres() {
        w.str(g);
    }
    w.len(c.len());
    for item in c.items() {
        w.u32(item.id);
        w.str(&item.title);
        w.u16(item.year.unwrap_or(0));
        w.u8(u8::try_from(item.genres.len()).expect("at most 255 genres per item"));
        for &g in &item.genres {
            w.u16(g);
        }
    }
    w.finish()
}

pub(crate) fn decode_catalog(b: &[u8]) -> Result<Catalog, BundleError> {
    let mut r = Reader::new(b, "CATL");
    let n_genres = r.len(4)?;
    let genres = (0..n_genres)
        .map(|_| r.str())
        .collect::<Result<Vec<_>, _>>()?;
    // An item takes at least 11 bytes: id, empty title, year, genre count.
    let n_items = r.len(11)?;
    let mut items = Vec::with_capacity(n_items);
    for _ in 0..n_items {
        let id = r.u32()?;
        let title = r.str()?;
        let year = match r.u16()? {
            0 => None,
            y => Some(y),
        };
        let n = r.u8()? as usize;
        let genres = (0..n).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
        items.push(Item {
            id,
            title,
            year,
            genres,
        });
    }
    r.finish()?;
    Catalog::new(genres, items)
}

pub(crate) fn encode_popularity(p: &Popularity) -> Vec<u8> {
    let mut w = Writer::new();
    w.f32(p.half_life_days);
    w.i64(p.reference_time);
    w.f32s(&p.scores);
    w.finish()
}

pub(crate) fn decode_popularity(b: &[u8]) -> Result<Popularity, BundleError> {
    let mut r = Reader::new(b, "POPL");
    let p = Popularity {
        half_life_days: r.f32()?,
        reference_time: r.i64()?,
        scores: r.f32s()?,
    };
    r.finish()?;
    if p.scores.iter().any(|s| !(0.0..=1.0).contains(s)) {
        return Err(r_err("POPL", "popularity score outside [0, 1]"));
    }
    Ok(p)
}

pub(crate) fn encode_genre_vectors(g: &GenreVectors) -> Vec<u8> {
    let mut w = Writer::new();
    w.f32s(&g.idf);
    w.f32s(&g.vectors);
    w.finish()
}

pub(crate) fn decode_genre_vectors(b: &[u8]) -> Result<GenreVectors, BundleError> {
    let mut r = Reader::new(b, "GENV");
    let idf = r.f32s()?;
    let vectors = r.f32s()?;
    r.finish()?;
    if idf.is_empty() && !vectors.is_empty() || !idf.is_empty() && vectors.len() % idf.len() != 0 {
        return Err(BundleError::Malformed {
            what: "GENV".into(),
            reason: format!(
                "{} values do not divide into {} genres",
                vectors.len(),
                idf.len()
            ),
        });
    }
    if idf.iter().any(|&w| w < 0.0) {
        return Err(r_err("GENV", "negative IDF weight"));
    }
    let g = GenreVectors { idf, vectors };
    for row in 0..g.rows() {
        let norm = g.row(row).iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm != 0.0 && (norm - 1.0).abs() > 1e-3 {
            return Err(r_err(
                "GENV",
                &format!("row {row} has norm {norm}, expected 0 or 1"),
            ));
        }
    }
    Ok(g)
}

pub(crate) fn encode_blend(b: &BlendParams) -> Vec<u8> {
    let mut w = Writer::new();
    w.f32(b.popularity_weight);
    w.f32(b.recency_decay);
    w.finish()
}

pub(crate) fn decode_blend(b: &[u8]) -> Result<BlendParams, BundleError> {
    let mut r = Reader::new(b, "BLND");
    let p = BlendParams {
        popularity_weight: r.f32()?,
        recency_decay: r.f32()?,
    };
    r.finish()?;
    if p.popularity_weight < 0.0 || p.recency_decay < 0.0 {
        return Err(r_err("BLND", "blend parameters must be non-negative"));
    }
    Ok(p)
}

fn r_err(what: &str, reason: &str) -> BundleError {
    BundleError::Malformed {
        what: what.into(),
        reason: reason.into(),
    }
}
