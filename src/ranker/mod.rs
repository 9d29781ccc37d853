//! The ranking stage on the device: the ranker's input contract, the one function that turns
//! feature vectors into the ranker's input tensors, and (in [`runtime`]) the ONNX runtime that
//! scores a batch of candidates.
//!
//! # The input contract, `edgerec-ranker/1`
//!
//! A ranker is an ONNX model whose inputs are drawn from this list; a [`RankerContract`] says
//! which ones it uses, and is carried with the model in the bundle's `RANK` section:
//!
//! | input | type | value |
//! |---|---|---|
//! | `dense` | float32 `[batch, D]` | [`FeatureVector::dense`], raw (unscaled), in [`RankerContract::dense`] order, which must equal the bundle's [`FeatureSpace::dense_names`] |
//! | `F_ids` | int64 `[batch, L]` | for a bag field `F` ([`BagField`]): up to `L` ids, padded with 0; ids ≥ the bag's `rows` become 0 |
//! | `F_weights` | float32 `[batch, L]` | `1/n` for each of the `n` real entries, 0 for padding (all zero when the bag is empty) |
//!
//! Bags: `movie` (the title's id), `genres`, `actors`, `directors`, `tags`, `language` (the
//! title's original language), `history` (titles the user finished, most recent first:
//! [`history_titles`]) and `search` (the user's search tokens, most recent first, mapped with
//! the contract's search vocabulary). Row 0 of every embedding table is "unknown / none".
//!
//! The output is the float tensor named [`RankerContract::output`] with shape `[batch, C]`;
//! column [`RankerContract::column`] holds P(watch) (`p_watch` `[batch, 1]` column 0 for the
//! project's exporters; `probabilities` `[batch, 2]` column 1 for ONNX-ML classifiers such as
//! skl2onnx's).
//!
//! A model made anywhere (PyTorch, skl2onnx, …) with these inputs drops into a bundle; the
//! bundle refuses it, when built and when loaded, if its declared inputs or its feature list
//! disagree with the contract.
//!
//! ```
//! use edgerec::features::{FeatureVector, SparseFeatures};
//! use edgerec::ranker::{Bag, BagField, RankerContract, RankerRow};
//!
//! let contract = RankerContract {
//!     kind: "example/1".into(),
//!     dense: vec!["a".into(), "b".into()],
//!     bags: vec![Bag { field: BagField::Genres, rows: 10, len: 2 }],
//!     search_vocab: vec![],
//!     output: "p_watch".into(),
//!     column: 0,
//! };
//! let fv = FeatureVector {
//!     dense: vec![0.5, 1.0],
//!     sparse: SparseFeatures { genres: vec![3, 42, 4], ..Default::default() },
//! };
//! let batch = contract.assemble(&[RankerRow { features: &fv, history: &[], search: &[] }])?;
//! assert_eq!(batch.dense, vec![0.5, 1.0]);
//! // 42 is outside the table (10 rows): unknown. The third id does not fit in L = 2.
//! assert_eq!(batch.bags[0].ids, vec![3, 0]);
//! assert_eq!(batch.bags[0].weights, vec![0.5, 0.5]);
//! # Ok::<(), edgerec::Error>(())
//! ```

pub mod runtime;
mod trees;

use crate::error::{BundleError, Error, Result};
use crate::features::{FeatureSpace, FeatureVector, Media, Play, WATCHED_ABOVE};

pub use runtime::Ranker;

/// The contract version this crate reads and writes.
pub const CONTRACT: &str = "edgerec-ranker/1";

/// Most titles in the `history` bag the device and the pipeline compute.
pub const MAX_HISTORY: usize = 50;

/// Most search tokens in the `search` bag the device and the pipeline compute.
pub const MAX_SEARCH: usize = 20;

/// Largest embedding table a contract may declare (rows).
pub const MAX_BAG_ROWS: u32 = 1 << 24;

/// Largest bag length a contract may declare.
pub const MAX_BAG_LEN: u32 = 256;

/// Largest candidate batch [`RankerContract::assemble`] accepts.
pub const MAX_BATCH: usize = 100_000;

/// A variable-length id input of the ranker, pooled by the model into a fixed width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BagField {
    /// The title's id ([`crate::features::SparseFeatures::movie`]), one entry.
    Movie,
    /// The title's genre ids.
    Genres,
    /// The title's actor (person) ids.
    Actors,
    /// The title's director (person) ids.
    Directors,
    /// The title's tag ids.
    Tags,
    /// The title's original language id, one entry.
    Language,
    /// Ids of titles the user watched, most recent first ([`history_titles`]).
    History,
    /// The user's search-token ids, most recent first.
    Search,
}

impl BagField {
    /// Every field, in contract order.
    pub const ALL: [BagField; 8] = [
        BagField::Movie,
        BagField::Genres,
        BagField::Actors,
        BagField::Directors,
        BagField::Tags,
        BagField::Language,
        BagField::History,
        BagField::Search,
    ];

    /// The field's name, the prefix of its ONNX inputs (`genres_ids`, `genres_weights`).
    pub fn as_str(self) -> &'static str {
        match self {
            BagField::Movie => "movie",
            BagField::Genres => "genres",
            BagField::Actors => "actors",
            BagField::Directors => "directors",
            BagField::Tags => "tags",
            BagField::Language => "language",
            BagField::History => "history",
            BagField::Search => "search",
        }
    }

    /// The field named `s`.
    pub fn parse(s: &str) -> Option<BagField> {
        BagField::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Name of the ids input.
    pub fn ids_input(self) -> String {
        format!("{}_ids", self.as_str())
    }

    /// Name of the weights input.
    pub fn weights_input(self) -> String {
        format!("{}_weights", self.as_str())
    }
}

impl std::fmt::Display for BagField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bag input of a ranker: its field, the rows of the model's embedding table (ids at or
/// above become 0) and the fixed length `L` of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bag {
    /// Which ids.
    pub field: BagField,
    /// Rows of the embedding table, including the unknown row 0.
    pub rows: u32,
    /// Fixed length of the `_ids` and `_weights` inputs; longer lists are cut.
    pub len: u32,
}

/// What a ranker reads and writes: see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankerContract {
    /// The model's kind and version, for reports (`logistic-regression/1`, `gbdt/1`, `deep/1`).
    pub kind: String,
    /// The dense features, in input order; must equal the bundle's feature space.
    pub dense: Vec<String>,
    /// The bag inputs, at most one per field, in [`BagField::ALL`] order.
    pub bags: Vec<Bag>,
    /// Search tokens; token `i` has id `i + 1` (0 = unknown). Empty unless a `search` bag is used.
    pub search_vocab: Vec<String>,
    /// Name of the output holding P(watch).
    pub output: String,
    /// Column of the output holding P(watch).
    pub column: u32,
}

/// One candidate to score: its features and the user's history and search ids.
#[derive(Debug, Clone, Copy)]
pub struct RankerRow<'a> {
    /// The (user, context, title) features.
    pub features: &'a FeatureVector,
    /// Titles the user watched, most recent first ([`history_titles`]).
    pub history: &'a [u32],
    /// Search-token ids, most recent first ([`RankerContract::search_ids`]).
    pub search: &'a [u32],
}

/// One candidate's ranker inputs as plain values, for a client that computes features
/// elsewhere (the JS `rankerScores`): the dense vector, the title's sparse ids the bags read,
/// and the user's bags. [`Ranker::score_inputs`] scores a batch of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankerInput {
    /// The dense features, in the contract's order.
    pub dense: Vec<f32>,
    /// The title's id (the `movie` bag).
    pub movie: u32,
    /// The title's genre ids.
    pub genres: Vec<u32>,
    /// The title's actor ids.
    pub actors: Vec<u32>,
    /// The title's director ids.
    pub directors: Vec<u32>,
    /// The title's tag ids.
    pub tags: Vec<u32>,
    /// The title's original language id.
    pub language: u32,
    /// Titles the user finished, most recent first.
    pub history: Vec<u32>,
    /// Search-token ids, most recent first.
    pub search: Vec<u32>,
}

impl RankerInput {
    /// The feature vector the bags read (sparse fields the contract has no bag for stay 0).
    pub fn features(&self) -> FeatureVector {
        FeatureVector {
            dense: self.dense.clone(),
            sparse: crate::features::SparseFeatures {
                movie: self.movie,
                genres: self.genres.clone(),
                actors: self.actors.clone(),
                directors: self.directors.clone(),
                tags: self.tags.clone(),
                language: self.language,
                ..Default::default()
            },
        }
    }
}

/// One bag's input tensors, row-major `[rows, len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BagTensor {
    /// The field.
    pub field: BagField,
    /// `len` of the contract's bag.
    pub len: usize,
    /// Ids, 0 for padding and unknown ids.
    pub ids: Vec<i64>,
    /// `1/n` per real entry, 0 for padding.
    pub weights: Vec<f32>,
}

/// The ranker's inputs for a batch of candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct RankerBatch {
    /// Number of candidates.
    pub rows: usize,
    /// Row-major `[rows, D]` dense features.
    pub dense: Vec<f32>,
    /// One tensor pair per contract bag, in contract order.
    pub bags: Vec<BagTensor>,
}

fn contract_err(reason: impl Into<String>) -> BundleError {
    BundleError::Contract {
        reason: reason.into(),
    }
}

impl RankerContract {
    /// Checks the contract on its own: known, unique, ordered bags with sane sizes, a search
    /// vocabulary exactly when a `search` bag is used, a non-empty output name, no repeated
    /// dense names.
    pub fn validate(&self) -> Result<(), BundleError> {
        if self.output.is_empty() {
            return Err(contract_err("the output name is empty"));
        }
        if self.dense.is_empty() && self.bags.is_empty() {
            return Err(contract_err("the ranker reads no inputs"));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(n) = self.dense.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(contract_err(format!("dense feature {n:?} appears twice")));
        }
        for w in self.bags.windows(2) {
            if w[0].field >= w[1].field {
                return Err(contract_err(format!(
                    "bags must be unique and in contract order ({} before {})",
                    w[0].field, w[1].field
                )));
            }
        }
        for b in &self.bags {
            if b.rows == 0 || b.rows > MAX_BAG_ROWS {
                return Err(contract_err(format!(
                    "bag {} has {} rows (1..={MAX_BAG_ROWS})",
                    b.field, b.rows
                )));
            }
            if b.len == 0 || b.len > MAX_BAG_LEN {
                return Err(contract_err(format!(
                    "bag {} has length {} (1..={MAX_BAG_LEN})",
                    b.field, b.len
                )));
            }
        }
        let search = self.bags.iter().find(|b| b.field == BagField::Search);
        match search {
            Some(b) if b.rows as usize > self.search_vocab.len() + 1 => {
                return Err(contract_err(format!(
                    "the search bag has {} rows but the vocabulary only {} tokens",
                    b.rows,
                    self.search_vocab.len()
                )));
            }
            None if !self.search_vocab.is_empty() => {
                return Err(contract_err("a search vocabulary without a search bag"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the contract against the bundle's feature space: the same dense features in the
    /// same order. The error names the first difference.
    pub fn check_features(&self, space: &FeatureSpace) -> Result<(), BundleError> {
        let want = space.dense_names();
        if self.dense.len() != want.len() {
            return Err(contract_err(format!(
                "the ranker reads {} dense features, the bundle's feature space has {}",
                self.dense.len(),
                want.len()
            )));
        }
        if let Some(i) = (0..want.len()).find(|&i| self.dense[i] != want[i]) {
            return Err(contract_err(format!(
                "dense feature {i} is {:?} in the ranker but {:?} in the bundle",
                self.dense[i], want[i]
            )));
        }
        Ok(())
    }

    /// The longest bag the model reads (0 without bags): how many history titles a request
    /// needs.
    pub fn longest_bag(&self) -> usize {
        self.bags.iter().map(|b| b.len as usize).max().unwrap_or(0)
    }

    /// The ids of search tokens (unknown tokens dropped), in the order given. Callers pass
    /// the user's tokens most recent first.
    pub fn search_ids<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        if self.search_vocab.is_empty() {
            return Vec::new();
        }
        let index: std::collections::HashMap<&str, u32> = self
            .search_vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32 + 1))
            .collect();
        tokens
            .iter()
            .filter_map(|t| index.get(t.as_ref()).copied())
            .collect()
    }

    /// Every input name the model must declare, with whether it is an id (int64) input.
    pub fn inputs(&self) -> Vec<(String, bool, usize)> {
        let mut v = Vec::with_capacity(1 + 2 * self.bags.len());
        if !self.dense.is_empty() {
            v.push(("dense".to_string(), false, self.dense.len()));
        }
        for b in &self.bags {
            v.push((b.field.ids_input(), true, b.len as usize));
            v.push((b.field.weights_input(), false, b.len as usize));
        }
        v
    }

    /// Builds the input tensors for `rows` candidates. Cost O(rows · (D + Σ L)).
    ///
    /// Errors (`invalid_argument`) when a row's dense vector has the wrong width, holds a
    /// non-finite value, or the batch is empty or larger than [`MAX_BATCH`].
    pub fn assemble(&self, rows: &[RankerRow]) -> Result<RankerBatch> {
        if rows.is_empty() || rows.len() > MAX_BATCH {
            return Err(Error::InvalidArgument(format!(
                "a ranker batch holds 1..={MAX_BATCH} candidates, not {}",
                rows.len()
            )));
        }
        let d = self.dense.len();
        let mut dense = Vec::with_capacity(rows.len() * d);
        for (i, r) in rows.iter().enumerate() {
            if r.features.dense.len() != d {
                return Err(Error::InvalidArgument(format!(
                    "candidate {i} has {} dense features, the ranker reads {d}",
                    r.features.dense.len()
                )));
            }
            if let Some(j) = r.features.dense.iter().position(|x| !x.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "candidate {i}: dense feature {:?} is not finite",
                    self.dense[j]
                )));
            }
            dense.extend_from_slice(&r.features.dense);
        }
        let bags = self
            .bags
            .iter()
            .map(|b| {
                let len = b.len as usize;
                let mut ids = vec![0i64; rows.len() * len];
                let mut weights = vec![0f32; rows.len() * len];
                for (i, r) in rows.iter().enumerate() {
                    let s = &r.features.sparse;
                    let values: &[u32] = match b.field {
                        BagField::Movie => std::slice::from_ref(&s.movie),
                        BagField::Genres => &s.genres,
                        BagField::Actors => &s.actors,
                        BagField::Directors => &s.directors,
                        BagField::Tags => &s.tags,
                        BagField::Language => std::slice::from_ref(&s.language),
                        BagField::History => r.history,
                        BagField::Search => r.search,
                    };
                    let values = &values[..values.len().min(len)];
                    let n = values.len();
                    if n == 0 {
                        continue;
                    }
                    let w = 1.0 / n as f32;
                    for (k, &id) in values.iter().enumerate() {
                        ids[i * len + k] = if id < b.rows { id as i64 } else { 0 };
                        weights[i * len + k] = w;
                    }
                }
                BagTensor {
                    field: b.field,
                    len,
                    ids,
                    weights,
                }
            })
            .collect();
        Ok(RankerBatch {
            rows: rows.len(),
            dense,
            bags,
        })
    }
}

/// Titles the user watched (a play above [`WATCHED_ABOVE`] of the title), as [`Media::id`]s,
/// most recent first, each title once (its latest play), at most `max`. `plays` are the user's
/// plays before the request, oldest first (as [`crate::features::History::before`] gives
/// them); plays of titles not in `media` are skipped. O(plays + max²).
pub fn history_titles(plays: &[Play], media: &[Media], max: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(max.min(plays.len()));
    for p in plays.iter().rev() {
        if out.len() >= max {
            break;
        }
        if p.fraction <= WATCHED_ABOVE {
            continue;
        }
        let Some(m) = media.get(p.media as usize) else {
            continue;
        };
        if !out.contains(&m.id) {
            out.push(m.id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Device;
    use crate::features::SparseFeatures;

    fn contract(bags: Vec<Bag>) -> RankerContract {
        RankerContract {
            kind: "test/1".into(),
            dense: vec!["a".into(), "b".into()],
            bags,
            search_vocab: vec![],
            output: "p_watch".into(),
            column: 0,
        }
    }

    fn bag(field: BagField, rows: u32, len: u32) -> Bag {
        Bag { field, rows, len }
    }

    #[test]
    fn assemble_pads_truncates_and_maps_unknown_ids_to_zero() {
        let c = contract(vec![
            bag(BagField::Movie, 100, 1),
            bag(BagField::Genres, 5, 3),
            bag(BagField::History, 100, 2),
        ]);
        let a = FeatureVector {
            dense: vec![1.0, 2.0],
            sparse: SparseFeatures {
                movie: 7,
                genres: vec![1, 9],
                ..Default::default()
            },
        };
        let b = FeatureVector {
            dense: vec![3.0, 4.0],
            sparse: SparseFeatures {
                movie: 700,
                ..Default::default()
            },
        };
        let rows = [
            RankerRow {
                features: &a,
                history: &[5, 6, 7],
                search: &[],
            },
            RankerRow {
                features: &b,
                history: &[],
                search: &[],
            },
        ];
        let t = c.assemble(&rows).unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(t.dense, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t.bags[0].ids, vec![7, 0]);
        assert_eq!(t.bags[0].weights, vec![1.0, 1.0]);
        assert_eq!(t.bags[1].ids, vec![1, 0, 0, 0, 0, 0]);
        assert_eq!(t.bags[1].weights, vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(t.bags[2].ids, vec![5, 6, 0, 0]);
        assert_eq!(t.bags[2].weights, vec![0.5, 0.5, 0.0, 0.0]);
    }

    #[test]
    fn assemble_refuses_bad_rows() {
        let c = contract(vec![]);
        assert_eq!(c.assemble(&[]).unwrap_err().code(), "invalid_argument");
        let short = FeatureVector {
            dense: vec![1.0],
            sparse: SparseFeatures::default(),
        };
        let nan = FeatureVector {
            dense: vec![1.0, f32::NAN],
            sparse: SparseFeatures::default(),
        };
        for fv in [&short, &nan] {
            let row = RankerRow {
                features: fv,
                history: &[],
                search: &[],
            };
            assert_eq!(c.assemble(&[row]).unwrap_err().code(), "invalid_argument");
        }
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let ok = contract(vec![
            bag(BagField::Movie, 10, 1),
            bag(BagField::Genres, 5, 3),
        ]);
        ok.validate().unwrap();
        let cases = [
            (
                contract(vec![
                    bag(BagField::Genres, 5, 3),
                    bag(BagField::Movie, 10, 1),
                ]),
                "contract order",
            ),
            (contract(vec![bag(BagField::Movie, 0, 1)]), "rows"),
            (contract(vec![bag(BagField::Movie, 10, 0)]), "length"),
            (contract(vec![bag(BagField::Search, 10, 4)]), "vocabulary"),
            (
                RankerContract {
                    dense: vec!["a".into(), "a".into()],
                    ..contract(vec![])
                },
                "twice",
            ),
            (
                RankerContract {
                    search_vocab: vec!["x".into()],
                    ..contract(vec![])
                },
                "without a search bag",
            ),
        ];
        for (c, want) in cases {
            let e = c.validate().unwrap_err();
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
        }
    }

    #[test]
    fn search_ids_follow_the_vocabulary() {
        let mut c = contract(vec![bag(BagField::Search, 3, 4)]);
        c.search_vocab = vec!["space".into(), "comedy".into()];
        c.validate().unwrap();
        assert_eq!(c.search_ids(&["comedy", "zzz", "space"]), vec![2, 1]);
    }

    #[test]
    fn history_titles_are_recent_distinct_and_watched() {
        let (_, _, media) = crate::test_support::tiny_features();
        let play = |m: u32, time: i64, fraction: f32| Play {
            media: m,
            time,
            device: Device::Tv,
            session: 1,
            watched_s: 100,
            fraction,
        };
        let plays = [
            play(0, 1, 0.95),
            play(1, 2, 0.5),
            play(1, 3, 0.9),
            play(0, 4, 0.81),
            play(99, 5, 1.0),
        ];
        let ids = history_titles(&plays, &media, 10);
        assert_eq!(ids, vec![media[0].id, media[1].id]);
        assert_eq!(history_titles(&plays, &media, 1), vec![media[0].id]);
        assert!(history_titles(&plays, &media, 0).is_empty());
    }
}
