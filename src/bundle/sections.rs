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
//!
//! Bundles written before the device pipeline was the one recommendation path also carry
//! `GENV` (IDF-weighted genre vectors) and `BLND` (the weights of the first skeleton's genre
//! and popularity blend); readers skip them like any tag they do not use.
//!
//! Optional sections (the trained candidate sources; each may be absent):
//!
//! * `FACT` v1 ([`IalsFactors`]): `dim: u32, alpha: f32, lambda: f32, factors: [f32]` (items ×
//!   dim, row-major, catalog order), `gram: [f64]` (dim × dim, row-major). v2: the factors as
//!   int8, `scales: [f32]` (one per item) then `codes: [u8]` (items × dim, two's complement).
//! * `CONT` v1 ([`ContentModel`]): `recency_decay: f32, beta: f32, tokens: [str],
//!   offsets: [u32]` (items + 1), `entries: [(token: u32, weight: f32)], prior: [f32]` (one per
//!   item).
//! * `TWRT` v1 ([`TwoTowerModel`]): `dim: u32, max_history: u32, max_searches: u32,
//!   dense_features: str, search_vocab: [str], item_embeddings: [f32]` (items × dim),
//!   `user_tower: [u8]` (ONNX bytes). v2: the embeddings as int8, like `FACT` v2.
//! * `QUOT` v1 ([`Quotas`]): `ials: u32, two_tower: u32, content: u32, popularity: u32`.
//! * `RELS` v1 ([`Release`]): `version: u64, published_at: i64 (unix seconds), channel: str`
//!   (written by `edgerec publish`; a bundle that was never published has none).
//!
//! `f64` values, like `f32`, must be finite; `[u8]` is a `u32` length then raw bytes.

use std::collections::HashMap;

use super::codec::{Reader, Writer};
use crate::blend::Source;
use crate::catalog::{Catalog, Item};
use crate::content::ContentIndex;
use crate::error::BundleError;
use crate::ials::Factors;
use crate::limits::MAX_DIM;
use crate::quant::QuantizedIndex;
use crate::retrieval::ItemVectors;

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

/// Where a published bundle stands in its channel (`RELS`): the publisher stamps it, so the
/// bundle a device assembles from a release says which release it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The channel's publish sequence: every publish to a channel takes a larger version, and
    /// a device never installs a smaller one than it holds.
    pub version: u64,
    /// When it was published (unix seconds).
    pub published_at: i64,
    /// The channel it was published to (e.g. `stable`).
    pub channel: String,
}

impl Release {
    pub(crate) fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.version);
        w.i64(self.published_at);
        w.str(&self.channel);
        w.finish()
    }

    pub(crate) fn from_payload(b: &[u8]) -> Result<Release, BundleError> {
        let mut r = Reader::new(b, "RELS");
        let release = Release {
            version: r.u64()?,
            published_at: r.time("published_at")?,
            channel: r.str()?,
        };
        r.finish()?;
        Ok(release)
    }
}

/// Time-decayed popularity: each positive at time `t` adds `0.5^((reference_time − t) /
/// half-life)` to its title (the trainer's `edgerec_fit::sources::popularity`), divided by the
/// largest total.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    /// Half-life of an interaction's weight, in days.
    pub half_life_days: f32,
    /// The time the decay is measured from (unix seconds).
    pub reference_time: i64,
    /// One score per catalog item, in `[0, 1]`, the most popular item at 1.
    pub scores: Vec<f32>,
}

impl Popularity {
    /// The section for decayed totals `counts` (one per catalog item, ≥ 0): each divided by
    /// the largest, so the most popular title has 1; all zeros stay zeros.
    ///
    /// ```
    /// use edgerec::bundle::Popularity;
    /// let p = Popularity::normalised(&[2.0, 0.5, 0.0], 30.0, 1_000);
    /// assert_eq!(p.scores, vec![1.0, 0.25, 0.0]);
    /// ```
    pub fn normalised(counts: &[f32], half_life_days: f32, reference_time: i64) -> Popularity {
        let max = counts.iter().copied().fold(0f32, f32::max);
        Popularity {
            half_life_days,
            reference_time,
            scores: counts
                .iter()
                .map(|&c| {
                    if max > 0.0 {
                        (c / max).clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect(),
        }
    }
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
        created_at: r.time("created_at")?,
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
        reference_time: r.time("reference_time")?,
        scores: r.f32s()?,
    };
    r.finish()?;
    if p.scores.iter().any(|s| !(0.0..=1.0).contains(s)) {
        return Err(r_err("POPL", "popularity score outside [0, 1]"));
    }
    Ok(p)
}

fn r_err(what: &str, reason: &str) -> BundleError {
    BundleError::Malformed {
        what: what.into(),
        reason: reason.into(),
    }
}

fn check_dim(what: &str, dim: usize) -> Result<(), BundleError> {
    if (1..=MAX_DIM).contains(&dim) {
        Ok(())
    } else {
        Err(r_err(
            what,
            &format!("dimension {dim} is outside 1..={MAX_DIM}"),
        ))
    }
}

/// The one check of a vector section's rows (`FACT`, `TWRT`, trained or decoded): `dim` in
/// `1..=`[`MAX_DIM`] and every row that wide, every f32 value finite (int8 rows were checked by
/// [`QuantizedIndex::from_parts`]: codes in range, finite scales).
fn check_vectors(what: &str, dim: usize, vectors: &ItemVectors) -> Result<(), BundleError> {
    check_dim(what, dim)?;
    if vectors.dim() != dim {
        return Err(r_err(
            what,
            &format!("rows of {} values for dim {dim}", vectors.dim()),
        ));
    }
    if let ItemVectors::F32(f) = vectors
        && let Some(i) = f.values().iter().position(|v| !v.is_finite())
    {
        return Err(r_err(
            what,
            &format!("value {} of row {} is not finite", i % dim, i / dim),
        ));
    }
    Ok(())
}

/// iALS item factors and what a device needs to fold a user in (section `FACT`; see
/// [`crate::ials`] for the model, Hu, Koren & Volinsky 2008).
///
/// Invariants, checked by [`IalsFactors::new`] and by the decoder: `dim` in `1..=`[`MAX_DIM`],
/// every value finite, `alpha ≥ 0`, `lambda > 0` (so fold-in's system is positive definite),
/// the Gram matrix `d × d`, symmetric, with a non-negative diagonal whose sum equals the sum of
/// the squared factors (to a relative `1e-6`: a cheap check that it belongs to these factors;
/// for int8 factors to the quantisation's bound, `√d / 127`).
/// The row count is checked against the catalog by [`super::BundleContents::validate`]: row
/// `p` is the item at catalog position `p`.
///
/// The factors are f32 (section version 1) or int8 with per-row scales (version 2,
/// [`IalsFactors::quantized`]); the Gram matrix is always the f64 `YᵀY` of the trained f32
/// factors, so fold-in stays exact in everything but the history rows it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct IalsFactors {
    alpha: f32,
    lambda: f32,
    factors: ItemVectors,
    gram: Vec<f64>,
}

impl IalsFactors {
    /// Checks and wraps trained factors with their Gram matrix ([`Factors::gram`]) and the
    /// confidence slope `alpha` and L2 penalty `lambda` they were trained with.
    pub fn new(
        factors: Factors,
        gram: Vec<f64>,
        alpha: f32,
        lambda: f32,
    ) -> Result<IalsFactors, BundleError> {
        IalsFactors::checked(ItemVectors::F32(factors), gram, alpha, lambda)
    }

    fn checked(
        factors: ItemVectors,
        gram: Vec<f64>,
        alpha: f32,
        lambda: f32,
    ) -> Result<IalsFactors, BundleError> {
        let d = factors.dim();
        check_vectors("FACT", d, &factors)?;
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(r_err(
                "FACT",
                &format!("alpha {alpha} must be finite and ≥ 0"),
            ));
        }
        if !(lambda.is_finite() && lambda > 0.0) {
            return Err(r_err(
                "FACT",
                &format!("lambda {lambda} must be finite and > 0"),
            ));
        }
        if gram.len() != d * d {
            return Err(r_err(
                "FACT",
                &format!("Gram matrix has {} values, expected {d} × {d}", gram.len()),
            ));
        }
        if gram.iter().any(|v| !v.is_finite()) {
            return Err(r_err("FACT", "non-finite Gram value"));
        }
        for a in 0..d {
            if gram[a * d + a] < 0.0 {
                return Err(r_err("FACT", "negative Gram diagonal"));
            }
            for b in 0..a {
                if gram[a * d + b] != gram[b * d + a] {
                    return Err(r_err("FACT", "Gram matrix is not symmetric"));
                }
            }
        }
        let trace: f64 = (0..d).map(|a| gram[a * d + a]).sum();
        let squares: f64 = (0..factors.rows())
            .map(|i| {
                factors
                    .row(i)
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
            })
            .sum();
        // Per row, |Σx² − Σx̂²| ≤ s·‖x‖₁ ≤ ‖x‖²·√d/127 for int8 (s = max|x|/127).
        let tolerance = if factors.is_int8() {
            (d as f64).sqrt() / 127.0 * 1.01 + 1e-6
        } else {
            1e-6
        };
        if (trace - squares).abs() > tolerance * squares.max(trace).max(1.0) {
            return Err(r_err(
                "FACT",
                &format!("Gram trace {trace} does not match the factors ({squares})"),
            ));
        }
        Ok(IalsFactors {
            alpha,
            lambda,
            factors,
            gram,
        })
    }

    /// [`IalsFactors::new`] with the Gram matrix computed here. Cost O(rows · d²).
    pub fn from_factors(
        factors: Factors,
        alpha: f32,
        lambda: f32,
    ) -> Result<IalsFactors, BundleError> {
        let gram = factors.gram();
        IalsFactors::new(factors, gram, alpha, lambda)
    }

    /// The same model with int8 factors (one scale per row); the Gram matrix is kept.
    pub fn quantized(&self) -> Result<IalsFactors, BundleError> {
        let factors = self
            .factors
            .quantized()
            .map_err(|e| r_err("FACT", &e.to_string()))?;
        Ok(IalsFactors {
            factors,
            ..self.clone()
        })
    }

    /// The item factors, one row per catalog item.
    pub fn factors(&self) -> &ItemVectors {
        &self.factors
    }

    /// `YᵀY`, d × d row-major.
    pub fn gram(&self) -> &[f64] {
        &self.gram
    }

    /// Confidence slope: `c_ui = 1 + alpha · r_ui`.
    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// L2 penalty of the user solve.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// The section version of [`to_payload`](Self::to_payload): 1 for f32 factors, 2 for int8.
    pub fn section_version(&self) -> u16 {
        if self.factors.is_int8() { 2 } else { 1 }
    }

    /// The `FACT` payload. v1: `dim: u32, alpha: f32, lambda: f32, factors: [f32]` (rows × dim,
    /// row-major), `gram: [f64]` (dim × dim, row-major). v2: the same with the factors as
    /// `scales: [f32]` (one per row), `codes: [u8]` (rows × dim int8 codes, row-major, two's
    /// complement, `-128` never used).
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.factors.dim() as u32);
        w.f32(self.alpha);
        w.f32(self.lambda);
        write_vectors(&mut w, &self.factors);
        w.f64s(&self.gram);
        w.finish()
    }

    /// Decodes and checks a `FACT` payload of section version 1 or 2. Never panics; allocation
    /// is bounded by the payload's length.
    pub fn from_payload(version: u16, b: &[u8]) -> Result<IalsFactors, BundleError> {
        let mut r = Reader::new(b, "FACT");
        let dim = r.u32()? as usize;
        check_dim("FACT", dim)?;
        let alpha = r.f32()?;
        let lambda = r.f32()?;
        let factors = read_vectors(&mut r, version, dim)?;
        let gram = r.f64s()?;
        r.finish()?;
        IalsFactors::checked(factors, gram, alpha, lambda)
    }
}

/// Writes item vectors: f32 as `[f32]`; int8 as `scales: [f32], codes: [u8]`.
fn write_vectors(w: &mut Writer, v: &ItemVectors) {
    match v {
        ItemVectors::F32(f) => w.f32s(f.values()),
        ItemVectors::Int8(q) => {
            w.f32s(q.scales());
            let codes: Vec<u8> = q.codes().iter().map(|&c| c as u8).collect();
            w.bytes(&codes);
        }
    }
}

/// Reads what [`write_vectors`] wrote: f32 rows for section version 1, int8 for 2.
fn read_vectors(r: &mut Reader, version: u16, dim: usize) -> Result<ItemVectors, BundleError> {
    match version {
        1 => {
            let values = r.f32s()?;
            let f = Factors::new(dim, values)
                .ok_or_else(|| r.malformed(format!("value count is not a multiple of {dim}")))?;
            Ok(ItemVectors::F32(f))
        }
        2 => {
            let scales = r.f32s()?;
            let codes: Vec<i8> = r.bytes()?.iter().map(|&b| b as i8).collect();
            if Some(codes.len()) != scales.len().checked_mul(dim) {
                return Err(r.malformed(format!(
                    "{} int8 codes for {} rows of {dim}",
                    codes.len(),
                    scales.len()
                )));
            }
            QuantizedIndex::from_parts(dim, codes, scales)
                .map(ItemVectors::Int8)
                .map_err(|e| r.malformed(e.to_string()))
        }
        _ => Err(r.malformed(format!("section version {version} is not 1 or 2"))),
    }
}

/// The content-based source (section `CONT`): the item profiles and inverted index of
/// [`ContentIndex`] plus the recency decay of history weights.
///
/// A history title watched `r` titles before the latest weighs `1 / (1 + recency_decay · r)`
/// in the user's profile. Invariants: the index passed [`ContentIndex::from_parts`];
/// `recency_decay` is finite and `≥ 0`. Its item count is checked against the catalog by
/// [`super::BundleContents::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContentModel {
    index: ContentIndex,
    recency_decay: f32,
    onboarding_beta: f32,
}

impl ContentModel {
    /// Wraps an index; refuses a negative or non-finite `recency_decay`.
    pub fn new(index: ContentIndex, recency_decay: f32) -> Result<ContentModel, BundleError> {
        if !(recency_decay.is_finite() && recency_decay >= 0.0) {
            return Err(r_err(
                "CONT",
                &format!("recency decay {recency_decay} must be finite and ≥ 0"),
            ));
        }
        Ok(ContentModel {
            onboarding_beta: index.beta(),
            index,
            recency_decay,
        })
    }

    /// The same model with another prior weight for users known only by onboarding picks
    /// (their profiles are small, so the trainer fits a weight of their own); refuses a weight
    /// outside `[0, 1]`.
    pub fn with_onboarding_beta(mut self, beta: f32) -> Result<ContentModel, BundleError> {
        if !(0.0..=1.0).contains(&beta) {
            return Err(r_err(
                "CONT",
                &format!("onboarding beta {beta} is outside [0, 1]"),
            ));
        }
        self.onboarding_beta = beta;
        Ok(self)
    }

    /// The prior's weight for users known only by onboarding picks.
    pub fn onboarding_beta(&self) -> f32 {
        self.onboarding_beta
    }

    /// The item profiles and their inverted index, items in catalog order.
    pub fn index(&self) -> &ContentIndex {
        &self.index
    }

    /// How fast older history titles lose weight.
    pub fn recency_decay(&self) -> f32 {
        self.recency_decay
    }

    /// The `CONT` v1 payload: `recency_decay: f32, beta: f32, onboarding_beta: f32, tokens: [str]` (token names by
    /// id), `offsets: [u32]` (items + 1 row offsets into the entries), `entries: [(token: u32,
    /// weight: f32)]` (each item's unit profile, token ids strictly ascending within a row),
    /// `prior: [f32]` (one per item, in `[0, 1]`).
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.f32(self.recency_decay);
        w.f32(self.index.beta());
        w.f32(self.onboarding_beta);
        w.len(self.index.tokens().len());
        for t in self.index.tokens() {
            w.str(t);
        }
        let (offsets, entries) = self.index.parts();
        w.u32s(offsets);
        w.len(entries.len());
        for &(t, v) in entries {
            w.u32(t);
            w.f32(v);
        }
        w.f32s(self.index.prior());
        w.finish()
    }

    /// Decodes a `CONT` v1 payload and rebuilds the index with [`ContentIndex::from_parts`]
    /// (which checks every invariant). Never panics; allocation is bounded by the payload's
    /// length.
    pub fn from_payload(b: &[u8]) -> Result<ContentModel, BundleError> {
        let mut r = Reader::new(b, "CONT");
        let recency_decay = r.f32()?;
        let beta = r.f32()?;
        let onboarding_beta = r.f32()?;
        let n_tokens = r.len(4)?;
        let tokens = (0..n_tokens)
            .map(|_| r.str())
            .collect::<Result<Vec<_>, _>>()?;
        let offsets = r.u32s()?;
        let n_entries = r.len(8)?;
        let entries = (0..n_entries)
            .map(|_| Ok((r.u32()?, r.f32()?)))
            .collect::<Result<Vec<_>, BundleError>>()?;
        let prior = r.f32s()?;
        r.finish()?;
        let index = ContentIndex::from_parts(tokens, offsets, entries, prior, beta)
            .map_err(|e| r_err("CONT", &e.to_string()))?;
        ContentModel::new(index, recency_decay)?.with_onboarding_beta(onboarding_beta)
    }
}

/// The two-tower retrieval model (section `TWRT`): item embeddings scored on the device, and
/// the user tower as opaque ONNX bytes for a runtime that can execute it (the core does not).
///
/// The user tower's inputs are catalog positions for the history (the most recent
/// `max_history`), ids into [`TwoTowerModel::search_vocab`] for search tokens (the most recent
/// `max_searches`), and the dense features named by [`TwoTowerModel::dense_features`] (see
/// [`crate::tower::two_tower_dense`]). Its output is scored against
/// [`TwoTowerModel::item_vectors`] by dot product.
///
/// Invariants: `dim` in `1..=`[`MAX_DIM`]; embeddings finite, a whole number of rows (checked
/// against the catalog by [`super::BundleContents::validate`]); search tokens unique; the user
/// tower non-empty.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoTowerModel {
    dim: usize,
    item_embeddings: ItemVectors,
    user_tower: Vec<u8>,
    search_vocab: Vec<String>,
    search_ids: HashMap<String, u32>,
    max_history: usize,
    max_searches: usize,
    dense_features: String,
}

impl TwoTowerModel {
    /// Checks and wraps a trained model. `item_embeddings` is row-major, one row of `dim` per
    /// catalog item; `search_vocab` lists search tokens by id.
    pub fn new(
        dim: usize,
        item_embeddings: Vec<f32>,
        user_tower: Vec<u8>,
        search_vocab: Vec<String>,
        max_history: usize,
        max_searches: usize,
        dense_features: String,
    ) -> Result<TwoTowerModel, BundleError> {
        check_dim("TWRT", dim)?;
        let item_embeddings =
            ItemVectors::F32(Factors::new(dim, item_embeddings).ok_or_else(|| {
                r_err(
                    "TWRT",
                    &format!("embedding values do not divide into rows of {dim}"),
                )
            })?);
        TwoTowerModel::checked(
            dim,
            item_embeddings,
            user_tower,
            search_vocab,
            max_history,
            max_searches,
            dense_features,
        )
    }

    fn checked(
        dim: usize,
        item_embeddings: ItemVectors,
        user_tower: Vec<u8>,
        search_vocab: Vec<String>,
        max_history: usize,
        max_searches: usize,
        dense_features: String,
    ) -> Result<TwoTowerModel, BundleError> {
        check_vectors("TWRT", dim, &item_embeddings)?;
        if user_tower.is_empty() {
            return Err(r_err("TWRT", "the user tower is empty"));
        }
        if u32::try_from(max_history).is_err() || u32::try_from(max_searches).is_err() {
            return Err(r_err("TWRT", "history or search limit does not fit in u32"));
        }
        let mut search_ids = HashMap::with_capacity(search_vocab.len());
        for (i, t) in search_vocab.iter().enumerate() {
            if search_ids.insert(t.clone(), i as u32).is_some() {
                return Err(r_err("TWRT", &format!("search token {t:?} appears twice")));
            }
        }
        Ok(TwoTowerModel {
            dim,
            item_embeddings,
            user_tower,
            search_vocab,
            search_ids,
            max_history,
            max_searches,
            dense_features,
        })
    }

    /// Width of the embeddings (and of the user vector a caller passes in).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of item rows.
    pub fn rows(&self) -> usize {
        self.item_embeddings.rows()
    }

    /// The item embeddings, one row per catalog item (f32, or int8 after
    /// [`quantized`](Self::quantized)).
    pub fn item_vectors(&self) -> &ItemVectors {
        &self.item_embeddings
    }

    /// The same model with int8 item embeddings (one scale per row).
    pub fn quantized(&self) -> Result<TwoTowerModel, BundleError> {
        let item_embeddings = self
            .item_embeddings
            .quantized()
            .map_err(|e| r_err("TWRT", &e.to_string()))?;
        Ok(TwoTowerModel {
            item_embeddings,
            ..self.clone()
        })
    }

    /// The section version of [`to_payload`](Self::to_payload): 1 for f32 embeddings, 2 for
    /// int8.
    pub fn section_version(&self) -> u16 {
        if self.item_embeddings.is_int8() { 2 } else { 1 }
    }

    /// The encoded ONNX user tower.
    pub fn user_tower(&self) -> &[u8] {
        &self.user_tower
    }

    /// Search tokens by id.
    pub fn search_vocab(&self) -> &[String] {
        &self.search_vocab
    }

    /// Most recent watches the user tower uses.
    pub fn max_history(&self) -> usize {
        self.max_history
    }

    /// Most recent search tokens the user tower uses.
    pub fn max_searches(&self) -> usize {
        self.max_searches
    }

    /// The name of the dense input layout (see
    /// [`crate::tower::TWO_TOWER_DENSE_FEATURES`]); a runtime must refuse a layout it
    /// does not know.
    pub fn dense_features(&self) -> &str {
        &self.dense_features
    }

    /// The user tower's search input: ids of the known `tokens` (oldest first; unknown ones
    /// dropped), the most recent `max_searches` of them. Cost O(tokens).
    pub fn search_ids<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        let ids: Vec<u32> = tokens
            .iter()
            .filter_map(|t| self.search_ids.get(t.as_ref()).copied())
            .collect();
        let skip = ids.len().saturating_sub(self.max_searches);
        ids[skip..].to_vec()
    }

    /// The `TWRT` payload. v1: `dim: u32, max_history: u32, max_searches: u32,
    /// dense_features: str, search_vocab: [str], item_embeddings: [f32]` (rows × dim,
    /// row-major), `user_tower: [u8]` (ONNX bytes). v2: the same with the embeddings as
    /// `scales: [f32], codes: [u8]` (as `FACT` v2).
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.dim as u32);
        w.u32(self.max_history as u32);
        w.u32(self.max_searches as u32);
        w.str(&self.dense_features);
        w.len(self.search_vocab.len());
        for t in &self.search_vocab {
            w.str(t);
        }
        write_vectors(&mut w, &self.item_embeddings);
        w.bytes(&self.user_tower);
        w.finish()
    }

    /// Decodes and checks a `TWRT` payload of section version 1 or 2. Never panics;
    /// allocation is bounded by the payload's length.
    pub fn from_payload(version: u16, b: &[u8]) -> Result<TwoTowerModel, BundleError> {
        let mut r = Reader::new(b, "TWRT");
        let dim = r.u32()? as usize;
        check_dim("TWRT", dim)?;
        let max_history = r.u32()? as usize;
        let max_searches = r.u32()? as usize;
        let dense_features = r.str()?;
        let n_vocab = r.len(4)?;
        let search_vocab = (0..n_vocab)
            .map(|_| r.str())
            .collect::<Result<Vec<_>, _>>()?;
        let item_embeddings = read_vectors(&mut r, version, dim)?;
        let user_tower = r.bytes()?.to_vec();
        r.finish()?;
        TwoTowerModel::checked(
            dim,
            item_embeddings,
            user_tower,
            search_vocab,
            max_history,
            max_searches,
            dense_features,
        )
    }
}

/// How many places each candidate source earns in the blend ([`crate::blend::blend`]; section
/// `QUOT`). A zero quota lets a source place titles only after every source with a quota ran
/// out; the sources left then share the places equally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// iALS ([`Source::Collaborative`]).
    pub ials: u32,
    /// The two-tower model.
    pub two_tower: u32,
    /// Content-based.
    pub content: u32,
    /// Popularity.
    pub popularity: u32,
}

impl Quotas {
    /// One place each: what a bundle without `QUOT` blends with.
    pub const EQUAL: Quotas = Quotas {
        ials: 1,
        two_tower: 1,
        content: 1,
        popularity: 1,
    };

    /// The quota of `source`; 0 for [`Source::Neighbours`], whose quotas are its own section's
    /// (`NBRS`, [`super::Neighbours::quota`]) so that readers predating it keep `QUOT` v1.
    pub fn get(&self, source: Source) -> u32 {
        match source {
            Source::Collaborative => self.ials,
            Source::TwoTower => self.two_tower,
            Source::Content => self.content,
            Source::Popularity => self.popularity,
            Source::Neighbours => 0,
        }
    }

    /// The `QUOT` v1 payload: `ials: u32, two_tower: u32, content: u32, popularity: u32`.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        for q in [self.ials, self.two_tower, self.content, self.popularity] {
            w.u32(q);
        }
        w.finish()
    }

    /// Decodes a `QUOT` v1 payload.
    pub fn from_payload(b: &[u8]) -> Result<Quotas, BundleError> {
        let mut r = Reader::new(b, "QUOT");
        let q = Quotas {
            ials: r.u32()?,
            two_tower: r.u32()?,
            content: r.u32()?,
            popularity: r.u32()?,
        };
        r.finish()?;
        Ok(q)
    }
}
