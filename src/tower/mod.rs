//! The two-tower model's user tower on the device: an ONNX graph, shipped in the bundle's
//! `TWRT` section, that maps what the device knows of a user (watch history, search tokens,
//! dense features) to a unit vector scored against the item embeddings.
//!
//! The trainer (`edgerec-twotower`) writes the graph; this module holds the contract both sides
//! share (input, output and metadata names, the packing of users into padded batches) and
//! [`UserTower`], which loads the graph into tract and runs it. The user's history never
//! leaves the device.
//!
//! ```
//! use edgerec::tower::{UserInput, UserTower};
//!
//! // Bytes that are not a user tower are refused with an error, never a panic.
//! let err = UserTower::load(b"not an ONNX model").unwrap_err();
//! assert_eq!(edgerec::Error::from(err).code(), "malformed");
//!
//! // With the tower of a bundle's TWRT section: one user's vector.
//! fn user_vector(tower_bytes: &[u8]) -> edgerec::Result<Vec<f32>> {
//!     let tower = UserTower::load(tower_bytes)?; // checks, optimises, probes: milliseconds
//!     let user = UserInput {
//!         history: vec![12, 3, 7], // item positions, oldest first: 7 is the latest watch
//!         searches: vec![],
//!         dense: vec![0.0; tower.n_dense()],
//!     };
//!     tower.embed_one(&user) // tower.dim() floats, unit length
//! }
//! # let _ = user_vector;
//! ```
//!
//! # The graph's contract
//!
//! Inputs, all with a symbolic batch dimension (`L`, `S` ≥ 1 are symbolic too):
//!
//! | input                | type      | shape              | contents                                              |
//! |----------------------|-----------|--------------------|-------------------------------------------------------|
//! | [`HISTORY_IDS`]      | `int64`   | `[batch, L]`       | item indices `< n_items`; padding holds `0`           |
//! | [`HISTORY_WEIGHTS`]  | `float32` | `[batch, L]`       | `1/len` for each of the `len` real entries, `0` else  |
//! | [`SEARCH_IDS`]       | `int64`   | `[batch, S]`       | search-token indices `< n_search_tokens`              |
//! | [`SEARCH_WEIGHTS`]   | `float32` | `[batch, S]`       | as `history_weights`                                  |
//! | [`DENSE`]            | `float32` | `[batch, n_dense]` | the caller's scaled dense features                    |
//!
//! The first output ([`USER_EMBEDDING`]) is `[batch, dim]` `float32`, rows L2-normalised. The
//! model's `metadata_props` carry [`META_KIND`] = [`KIND_USER_TOWER`], [`META_FORMAT`] =
//! [`FORMAT_VERSION`] and the sizes ([`META_N_ITEMS`], [`META_N_SEARCH`], [`META_N_DENSE`],
//! [`META_DIM`], [`META_MAX_HISTORY`], [`META_MAX_SEARCHES`]); its initialisers
//! [`HISTORY_TABLE`] and [`SEARCH_TABLE`] are the lookup tables the ids index.
//!
//! # Packing
//!
//! Histories and searches are oldest first; only the most recent `max_history` items and
//! `max_searches` tokens count (the *end* of each list). [`InputShape::pack`] truncates them,
//! pads each list to the longest in the batch (at least 1) and gives each real entry the
//! weight `1/len`, so the graph's weighted sums are means and an empty list pools to zero. The
//! trainer packs its batches with the same function, so truncation and weights are identical in
//! training and on the device.

mod dense;
mod graph;

pub use dense::{TWO_TOWER_DENSE, TWO_TOWER_DENSE_FEATURES, two_tower_dense};
pub use graph::{NORM_FLOOR, TowerShape, TowerWeights, user_tower_onnx};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::{BundleError, Error, Result};
use crate::onnx::{self, pb};

/// `metadata_props` key naming the kind of model.
pub const META_KIND: &str = "edgerec.kind";
/// The value of [`META_KIND`] for a user tower.
pub const KIND_USER_TOWER: &str = "twotower.user_tower";
/// `metadata_props` key of the format version.
pub const META_FORMAT: &str = "edgerec.format_version";
/// The format version written by the trainer (and the only one [`UserTower::load`] reads).
pub const FORMAT_VERSION: &str = "1";
/// `metadata_props` key of the number of items (history ids are below it).
pub const META_N_ITEMS: &str = "edgerec.n_items";
/// `metadata_props` key of the search-token vocabulary size (search ids are below it).
pub const META_N_SEARCH: &str = "edgerec.n_search_tokens";
/// `metadata_props` key of the width of the dense input.
pub const META_N_DENSE: &str = "edgerec.n_dense";
/// `metadata_props` key of the width of the output embedding.
pub const META_DIM: &str = "edgerec.dim";
/// `metadata_props` key of the number of most recent history items used.
pub const META_MAX_HISTORY: &str = "edgerec.max_history";
/// `metadata_props` key of the number of most recent search tokens used.
pub const META_MAX_SEARCHES: &str = "edgerec.max_searches";

/// Graph input: history item ids, `int64 [batch, L]`.
pub const HISTORY_IDS: &str = "history_ids";
/// Graph input: history weights, `float32 [batch, L]`.
pub const HISTORY_WEIGHTS: &str = "history_weights";
/// Graph input: search-token ids, `int64 [batch, S]`.
pub const SEARCH_IDS: &str = "search_ids";
/// Graph input: search weights, `float32 [batch, S]`.
pub const SEARCH_WEIGHTS: &str = "search_weights";
/// Graph input: dense features, `float32 [batch, n_dense]`.
pub const DENSE: &str = "dense";
/// Graph output: the user embedding, `float32 [batch, dim]`.
pub const USER_EMBEDDING: &str = "user_embedding";
/// Initialiser name of the history lookup table, `[n_items, dim]`.
pub const HISTORY_TABLE: &str = "history_table";
/// Initialiser name of the search-token lookup table, `[table_rows(n_search_tokens), dim]`.
pub const SEARCH_TABLE: &str = "search_table";

/// The largest dense width [`UserTower::load`] accepts: a bound so that a model's metadata
/// cannot ask for a huge allocation.
pub const MAX_DENSE: usize = 1 << 16;

/// Rows of a token table for a vocabulary of `vocabulary` tokens: one unused row for an empty
/// vocabulary, so that padding ids always index a real row.
pub fn table_rows(vocabulary: usize) -> usize {
    vocabulary.max(1)
}

/// The graph inputs, in the order [`PackedUsers`] holds them.
const INPUTS: [&str; 5] = [
    HISTORY_IDS,
    HISTORY_WEIGHTS,
    SEARCH_IDS,
    SEARCH_WEIGHTS,
    DENSE,
];

/// What the user tower sees of one user at request time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserInput {
    /// Watched items (catalog positions), oldest first: ids `< n_items`; only the most recent
    /// `max_history` (the end of the list) are used.
    pub history: Vec<u32>,
    /// Search tokens, oldest first: ids `< n_search_tokens`; the most recent `max_searches`
    /// are used.
    pub searches: Vec<u32>,
    /// Dense features, scaled as in training; length `n_dense`, finite.
    pub dense: Vec<f32>,
}

/// The sizes a user tower reads its inputs against: id ranges, dense width and truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// Number of items: history ids must be below it.
    pub n_items: usize,
    /// Size of the search-token vocabulary: search ids must be below it.
    pub n_search_tokens: usize,
    /// Width of the dense input.
    pub n_dense: usize,
    /// Most recent history items used per user.
    pub max_history: usize,
    /// Most recent search tokens used per user.
    pub max_searches: usize,
}

/// A batch of users as the graph's five inputs: padded, row-major arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedUsers {
    /// Rows (users).
    pub n: usize,
    /// Padded history length (`>= 1`).
    pub l: usize,
    /// `n × l` item ids, `0` for padding.
    pub history_ids: Vec<u32>,
    /// `n × l` weights: `1/len` for the `len` real entries of a row, `0` for padding.
    pub history_weights: Vec<f32>,
    /// Padded search length (`>= 1`).
    pub s: usize,
    /// `n × s` search-token ids, `0` for padding.
    pub search_ids: Vec<u32>,
    /// `n × s` weights, as `history_weights`.
    pub search_weights: Vec<f32>,
    /// `n × n_dense` dense features.
    pub dense: Vec<f32>,
}

/// The most recent `max` entries of an oldest-first list.
fn recent(xs: &[u32], max: usize) -> &[u32] {
    &xs[xs.len().saturating_sub(max)..]
}

/// Pads lists (already truncated) to a common width `max(longest, 1)` with mean weights:
/// returns `(width, ids, weights)`, `lists.len() × width` each, row-major; a real entry of a
/// list of `len` entries weighs `1/len`, padding is id `0` with weight `0`.
///
/// Cost: `O(lists.len() × width)`.
pub fn pad_mean(lists: &[&[u32]]) -> (usize, Vec<u32>, Vec<f32>) {
    let width = lists.iter().map(|l| l.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; lists.len() * width];
    let mut weights = vec![0f32; lists.len() * width];
    for (row, list) in lists.iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let w = 1.0f32 / list.len() as f32;
        let start = row * width;
        ids[start..start + list.len()].copy_from_slice(list);
        weights[start..start + list.len()].fill(w);
    }
    (width, ids, weights)
}

impl InputShape {
    /// Why one user's features do not fit, if they do not.
    fn problem(&self, history: &[u32], searches: &[u32], dense: &[f32]) -> Option<String> {
        if let Some(&id) = history.iter().find(|&&id| id as usize >= self.n_items) {
            return Some(format!(
                "history item {id} out of range (n_items = {})",
                self.n_items
            ));
        }
        if let Some(&id) = searches
            .iter()
            .find(|&&id| id as usize >= self.n_search_tokens)
        {
            return Some(format!(
                "search token {id} out of range (n_search_tokens = {})",
                self.n_search_tokens
            ));
        }
        if dense.len() != self.n_dense {
            return Some(format!(
                "dense has {} values, the model expects {}",
                dense.len(),
                self.n_dense
            ));
        }
        if let Some(pos) = dense.iter().position(|v| !v.is_finite()) {
            return Some(format!("dense[{pos}] is not finite ({})", dense[pos]));
        }
        None
    }

    /// Checks one user's features: every history id `< n_items` and search id
    /// `< n_search_tokens` (the whole lists, not only the part [`pack`](Self::pack) keeps),
    /// `dense.len() == n_dense`, every dense value finite. Errors with
    /// [`Error::InvalidArgument`] saying what does not fit.
    pub fn check(&self, history: &[u32], searches: &[u32], dense: &[f32]) -> Result<()> {
        match self.problem(history, searches, dense) {
            Some(reason) => Err(Error::InvalidArgument(reason)),
            None => Ok(()),
        }
    }

    /// Packs users given as `(history, searches, dense)` into the graph's inputs: the most
    /// recent `max_history` / `max_searches` entries of each list, padded to the longest in the
    /// batch with mean weights (see [`pad_mean`]); dense rows concatenated. The rows must have
    /// been [`check`](Self::check)ed (the dense width is not checked here). This is the one
    /// packing function of the trainer and the device.
    ///
    /// Cost: `O(n × (L + S + n_dense))`.
    pub fn pack<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a [u32], &'a [u32], &'a [f32])>,
    ) -> PackedUsers {
        let mut histories = Vec::new();
        let mut searches = Vec::new();
        let mut dense = Vec::new();
        for (h, s, d) in rows {
            histories.push(recent(h, self.max_history));
            searches.push(recent(s, self.max_searches));
            dense.extend_from_slice(d);
        }
        let (l, history_ids, history_weights) = pad_mean(&histories);
        let (s, search_ids, search_weights) = pad_mean(&searches);
        PackedUsers {
            n: histories.len(),
            l,
            history_ids,
            history_weights,
            s,
            search_ids,
            search_weights,
            dense,
        }
    }
}

/// The user tower loaded into tract: what the device runs to get a user's two-tower vector.
///
/// [`UserTower::load`] checks the bytes before tract sees them ([`onnx::check_model`]: inline,
/// correctly sized `FLOAT`/`INT64` initialisers, names defined before use), reads the model's
/// sizes from its `edgerec.*` metadata and checks them against the lookup tables (each
/// `[rows, dim]` with enough rows for every id [`embed`](Self::embed) accepts), maps the five
/// graph inputs by name, lets tract optimise the graph, and runs it once on a probe batch
/// (an empty user and a user with two history items and two search tokens), whose output must
/// be `[2, dim]`. [`embed`](Self::embed) validates every input against those sizes, so an
/// out-of-range id is an error, never an out-of-bounds `Gather`.
///
/// Cost: loading is dominated by tract's optimisation (milliseconds); embedding `n` users is
/// one tract run, `O(n·L·dim + n·(2·dim + n_dense)·hidden + n·hidden·dim)` for the trainer's
/// graph.
#[derive(Debug, Clone)]
pub struct UserTower {
    plan: Arc<TypedRunnableModel>,
    shape: InputShape,
    dim: usize,
    /// `input_order[k]`: which of [`INPUTS`] tract's k-th input is.
    input_order: [usize; 5],
}

/// A refused user tower: `malformed` in the bundle's `TWRT` section.
fn bad(reason: impl std::fmt::Display) -> BundleError {
    BundleError::Malformed {
        what: "TWRT".into(),
        reason: format!("user tower: {reason}"),
    }
}

fn meta_usize(model: &pb::ModelProto, key: &str) -> Result<usize, BundleError> {
    let value =
        onnx::metadata(model, key).ok_or_else(|| bad(format!("metadata {key:?} is missing")))?;
    value
        .parse::<usize>()
        .map_err(|_| bad(format!("metadata {key:?} = {value:?} is not a size")))
}

/// Checks the model's kind and format version metadata.
fn check_kind(model: &pb::ModelProto) -> Result<(), BundleError> {
    if onnx::metadata(model, META_KIND) != Some(KIND_USER_TOWER) {
        return Err(bad(format!(
            "metadata {META_KIND:?} is not {KIND_USER_TOWER:?}"
        )));
    }
    if onnx::metadata(model, META_FORMAT) != Some(FORMAT_VERSION) {
        return Err(bad(format!(
            "unsupported format (metadata {META_FORMAT:?} must be {FORMAT_VERSION:?})"
        )));
    }
    Ok(())
}

/// The input sizes and the embedding width from the model's metadata: `dim` and `n_items`
/// at least 1, `n_items` within `u32`, `n_dense` at most [`MAX_DENSE`].
fn read_sizes(model: &pb::ModelProto) -> Result<(InputShape, usize), BundleError> {
    let shape = InputShape {
        n_items: meta_usize(model, META_N_ITEMS)?,
        n_search_tokens: meta_usize(model, META_N_SEARCH)?,
        n_dense: meta_usize(model, META_N_DENSE)?,
        max_history: meta_usize(model, META_MAX_HISTORY)?,
        max_searches: meta_usize(model, META_MAX_SEARCHES)?,
    };
    let dim = meta_usize(model, META_DIM)?;
    if dim == 0 || shape.n_items == 0 || shape.n_items > u32::MAX as usize {
        return Err(bad(format!(
            "dim {dim} / n_items {} out of range",
            shape.n_items
        )));
    }
    if shape.n_dense > MAX_DENSE {
        return Err(bad(format!(
            "n_dense {} is more than the limit {MAX_DENSE}",
            shape.n_dense
        )));
    }
    Ok((shape, dim))
}

/// Checks the lookup tables against the sizes: the ids `embed` accepts must index real rows
/// of the tables, and the tables' width is the embedding width. (check_model bounded their
/// element counts, which bounds `dim` and both vocabularies.)
fn check_tables(model: &pb::ModelProto, shape: &InputShape, dim: usize) -> Result<(), BundleError> {
    for (table, rows) in [
        (HISTORY_TABLE, shape.n_items),
        (SEARCH_TABLE, table_rows(shape.n_search_tokens)),
    ] {
        match onnx::initializer_dims(model, table) {
            Some(dims) if dims.len() == 2 && dims[0] >= rows && dims[1] == dim => {}
            other => {
                return Err(bad(format!(
                    "initialiser {table:?} has shape {other:?}, needs at least {rows} rows \
                     of {dim}"
                )));
            }
        }
    }
    Ok(())
}

/// tract's inputs are the graph inputs that are not initialisers, in order; maps them to
/// [`INPUTS`] by name (`order[k]`: which of [`INPUTS`] tract's k-th input is), refusing
/// other names, a wrong count and repeats.
fn input_order(model: &pb::ModelProto) -> Result<[usize; 5], BundleError> {
    let graph = model.graph.as_ref().ok_or_else(|| bad("no graph"))?;
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|name| !graph.initializer.iter().any(|t| t.name == *name))
        .collect();
    if inputs.len() != INPUTS.len() {
        return Err(bad(format!(
            "graph inputs are {inputs:?}, expected {INPUTS:?}"
        )));
    }
    let mut input_order = [0usize; 5];
    for (slot, name) in input_order.iter_mut().zip(&inputs) {
        *slot = INPUTS.iter().position(|n| n == name).ok_or_else(|| {
            bad(format!(
                "unexpected graph input {name:?}, expected {INPUTS:?}"
            ))
        })?;
    }
    let mut seen = input_order;
    seen.sort_unstable();
    if seen != [0, 1, 2, 3, 4] {
        return Err(bad(format!("graph inputs {inputs:?} repeat a name")));
    }
    Ok(input_order)
}

/// tract's optimised plan of the model, and its inference model (for the load probe's
/// [`onnx::check_finite`]).
fn tract_plan(
    model: &pb::ModelProto,
) -> Result<(Arc<TypedRunnableModel>, InferenceModel), BundleError> {
    // tract is known to panic on some malformed graphs: contain it where unwinding exists.
    catch_unwind(AssertUnwindSafe(|| -> TractResult<_> {
        let m = tract_onnx::onnx().model_for_proto_model(model)?;
        Ok((m.clone().into_optimized()?.into_runnable()?, m))
    }))
    .map_err(|_| bad("tract panicked while loading the model"))?
    .map_err(|e| bad(format!("tract cannot load the model: {e:#}")))
}

impl UserTower {
    /// Loads, checks and optimises a user tower from encoded ONNX bytes (see the type's docs
    /// for what is checked). Errors with [`BundleError::Malformed`] (`what` = `"TWRT"`, code
    /// `malformed`) on bytes that are not such a model; never panics on native builds. Sizes
    /// read from the model are bounded before anything is allocated from them (initialisers by
    /// [`onnx::MAX_INITIALIZER_ELEMENTS`], the dense width by [`MAX_DENSE`]).
    ///
    /// tract is known to panic on some malformed graphs; that panic is caught where unwinding
    /// exists (native builds). The wasm build aborts on panics (`panic = "abort"`), so there
    /// the structural checks that run first are the protection.
    pub fn load(bytes: &[u8]) -> Result<UserTower, BundleError> {
        let model = onnx::decode(bytes).map_err(bad)?;
        onnx::check_model(&model).map_err(bad)?;
        onnx::check_operators(&model, onnx::Role::UserTower).map_err(bad)?;
        check_kind(&model)?;
        let (shape, dim) = read_sizes(&model)?;
        check_tables(&model, &shape, dim)?;
        let input_order = input_order(&model)?;
        let (plan, inference) = tract_plan(&model)?;
        let tower = UserTower {
            plan,
            shape,
            dim,
            input_order,
        };
        tower.probe(inference)?;
        Ok(tower)
    }

    /// The load-time probe: an empty user and one with two entries in each list (ragged,
    /// padded batch) must map to two rows of `dim` floats, every value the graph computes on
    /// the way finite ([`onnx::check_finite`]: native and wasm builds decide alike).
    fn probe(&self, inference: InferenceModel) -> Result<(), BundleError> {
        let shape = self.shape;
        let two = |n: usize| if n > 0 { vec![0, 0] } else { vec![] };
        let probe = [
            UserInput {
                history: vec![],
                searches: vec![],
                dense: vec![0.0; shape.n_dense],
            },
            UserInput {
                history: two(shape.n_items),
                searches: two(shape.n_search_tokens),
                dense: vec![0.0; shape.n_dense],
            },
        ];
        self.embed(&probe).map_err(|e| match e {
            Error::Bundle(b) => b,
            other => bad(format!("probe run: {other}")),
        })?;
        let packed = self.shape.pack(
            probe
                .iter()
                .map(|u| (&u.history[..], &u.searches[..], &u.dense[..])),
        );
        let inputs = self
            .inputs(&packed)
            .map_err(|e| bad(format!("probe run: {e:#}")))?;
        onnx::check_finite(inference, inputs).map_err(|e| bad(format!("probe run: {e}")))
    }

    /// Width of the user embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Width of the `dense` input each [`UserInput`] must have.
    pub fn n_dense(&self) -> usize {
        self.shape.n_dense
    }

    /// Number of items (history ids must be below it).
    pub fn n_items(&self) -> usize {
        self.shape.n_items
    }

    /// Number of search tokens (search ids must be below it).
    pub fn n_search_tokens(&self) -> usize {
        self.shape.n_search_tokens
    }

    /// Most recent history items used per user.
    pub fn max_history(&self) -> usize {
        self.shape.max_history
    }

    /// Most recent search tokens used per user.
    pub fn max_searches(&self) -> usize {
        self.shape.max_searches
    }

    /// All the sizes inputs are checked and packed against.
    pub fn input_shape(&self) -> &InputShape {
        &self.shape
    }

    /// Embeds a batch of users: `inputs.len() × dim` floats, row-major, rows L2-normalised, in
    /// input order. Histories and searches are truncated to the most recent `max_history` /
    /// `max_searches` entries and padded to the longest in the batch (padding does not change
    /// a row's result). An empty batch gives an empty vector.
    ///
    /// Errors: [`Error::InvalidArgument`] (`"input {row}: …"`) when an input does not fit
    /// ([`InputShape::check`]); [`BundleError::Malformed`] (`TWRT`) if the model fails to run or
    /// gives an output of the wrong shape, which the load-time probe makes unlikely.
    pub fn embed(&self, inputs: &[UserInput]) -> Result<Vec<f32>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        for (row, u) in inputs.iter().enumerate() {
            if let Some(reason) = self.shape.problem(&u.history, &u.searches, &u.dense) {
                return Err(Error::InvalidArgument(format!("input {row}: {reason}")));
            }
        }
        let packed = self.shape.pack(
            inputs
                .iter()
                .map(|u| (&u.history[..], &u.searches[..], &u.dense[..])),
        );
        self.run(&packed)
    }

    /// [`embed`](Self::embed) for one user: `dim` floats.
    pub fn embed_one(&self, input: &UserInput) -> Result<Vec<f32>> {
        self.embed(std::slice::from_ref(input))
    }

    fn run(&self, p: &PackedUsers) -> Result<Vec<f32>> {
        let fail = |e: TractError| Error::from(bad(format!("running the model: {e:#}")));
        let inputs = self.inputs(p).map_err(fail)?;
        // A panic inside tract (a bug there) is an error for this request where unwinding
        // exists; the checks at load keep tract to graphs it runs (wasm aborts on a panic).
        let outputs = catch_unwind(AssertUnwindSafe(|| self.plan.run(inputs)))
            .map_err(|_| Error::from(bad("tract panicked while running the model")))?
            .map_err(fail)?;
        let out = outputs
            .first()
            .ok_or_else(|| Error::from(bad("the model has no output")))?;
        let view = out.try_as_plain_ram().map_err(fail)?;
        if view.shape() != [p.n, self.dim] {
            return Err(bad(format!(
                "output shape {:?}, expected [{}, {}]",
                view.shape(),
                p.n,
                self.dim
            ))
            .into());
        }
        Ok(view.as_slice::<f32>().map_err(fail)?.to_vec())
    }

    /// Packed users as tract's input tensors, in the graph's input order.
    fn inputs(&self, p: &PackedUsers) -> TractResult<TVec<TValue>> {
        let ids = |v: &[u32]| v.iter().map(|&i| i64::from(i)).collect::<Vec<i64>>();
        let n_dense = self.shape.n_dense;
        let make = |k: usize| -> TractResult<TValue> {
            let t = match k {
                0 => Tensor::from_shape(&[p.n, p.l], &ids(&p.history_ids))?,
                1 => Tensor::from_shape(&[p.n, p.l], &p.history_weights)?,
                2 => Tensor::from_shape(&[p.n, p.s], &ids(&p.search_ids))?,
                3 => Tensor::from_shape(&[p.n, p.s], &p.search_weights)?,
                _ => Tensor::from_shape(&[p.n, n_dense], &p.dense)?,
            };
            Ok(t.into())
        };
        self.input_order.iter().map(|&k| make(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    // The writer links its own copy of this crate: only bytes cross between the two.
    use edgerec_onnx::attr_int;

    #[test]
    fn truncation_keeps_the_most_recent_and_weights_are_means() {
        assert_eq!(recent(&[1, 2, 3, 4], 2), &[3, 4]);
        assert_eq!(recent(&[1, 2], 5), &[1, 2]);
        assert!(recent(&[1, 2], 0).is_empty());
        let (w, ids, weights) = pad_mean(&[&[5, 6], &[], &[7]]);
        assert_eq!(w, 2);
        assert_eq!(ids, vec![5, 6, 0, 0, 7, 0]);
        assert_eq!(weights, vec![0.5, 0.5, 0.0, 0.0, 1.0, 0.0]);
        let (w, ids, weights) = pad_mean(&[&[], &[]]);
        assert_eq!((w, ids, weights), (1, vec![0, 0], vec![0.0, 0.0]));
    }

    #[test]
    fn pack_truncates_to_the_model_limits() {
        let shape = InputShape {
            n_items: 10,
            n_search_tokens: 4,
            n_dense: 1,
            max_history: 2,
            max_searches: 1,
        };
        let p = shape.pack([
            (&[1u32, 2, 3][..], &[0u32, 3][..], &[0.5f32][..]),
            (&[][..], &[][..], &[-1.0][..]),
        ]);
        assert_eq!((p.n, p.l, p.s), (2, 2, 1));
        assert_eq!(p.history_ids, vec![2, 3, 0, 0]);
        assert_eq!(p.history_weights, vec![0.5, 0.5, 0.0, 0.0]);
        assert_eq!(p.search_ids, vec![3, 0]);
        assert_eq!(p.search_weights, vec![1.0, 0.0]);
        assert_eq!(p.dense, vec![0.5, -1.0]);
        assert!(shape.check(&[9], &[3], &[0.0]).is_ok());
        for (h, s, d) in [
            (&[10u32][..], &[][..], &[0.0f32][..]),
            (&[][..], &[4][..], &[0.0][..]),
            (&[][..], &[][..], &[][..]),
            (&[][..], &[][..], &[f32::INFINITY][..]),
        ] {
            assert!(matches!(
                shape.check(h, s, d),
                Err(Error::InvalidArgument(_))
            ));
        }
    }

    /// The sizes and weights of a tiny tower written here, with the same graph as the trainer's
    /// export: `concat(mean history rows, mean search rows, dense) → Gemm → Relu → Gemm → L2
    /// normalise`.
    struct Tiny {
        n_items: usize,
        n_search: usize,
        n_dense: usize,
        dim: usize,
        hidden: usize,
        max_history: usize,
        max_searches: usize,
        history: Vec<f32>,
        search: Vec<f32>,
        w1: Vec<f32>,
        b1: Vec<f32>,
        w2: Vec<f32>,
        b2: Vec<f32>,
    }

    impl Tiny {
        fn new(n_search: usize, n_dense: usize, seed: u64) -> Tiny {
            let (n_items, dim, hidden) = (7, 3, 5);
            let mut rng = SplitMix64::new(seed);
            let mut v = |n: usize| (0..n).map(|_| rng.signed_unit()).collect::<Vec<f32>>();
            let user_in = 2 * dim + n_dense;
            Tiny {
                n_items,
                n_search,
                n_dense,
                dim,
                hidden,
                max_history: 3,
                max_searches: 2,
                history: v(n_items * dim),
                search: v(table_rows(n_search) * dim),
                w1: v(user_in * hidden),
                b1: v(hidden),
                w2: v(hidden * dim),
                b2: v(dim),
            }
        }

        fn bytes(&self) -> Vec<u8> {
            let shape = TowerShape {
                n_items: self.n_items,
                n_search_tokens: self.n_search,
                n_dense: self.n_dense,
                dim: self.dim,
                hidden: self.hidden,
                max_history: self.max_history,
                max_searches: self.max_searches,
            };
            let weights = TowerWeights {
                history: &self.history,
                search: &self.search,
                w1: &self.w1,
                b1: &self.b1,
                w2: &self.w2,
                b2: &self.b2,
            };
            user_tower_onnx(&shape, &weights, "edgerec-test").unwrap()
        }

        fn proto(&self) -> edgerec_onnx::pb::ModelProto {
            crate::onnx::decode(&self.bytes()).unwrap()
        }

        /// The same forward pass in plain Rust (f64), most recent entries only.
        fn reference(&self, u: &UserInput) -> Vec<f32> {
            let d = self.dim;
            let mean = |table: &[f32], ids: &[u32]| {
                let mut m = vec![0f64; d];
                for &id in ids {
                    for (j, x) in m.iter_mut().enumerate() {
                        *x += table[id as usize * d + j] as f64 / ids.len() as f64;
                    }
                }
                m
            };
            let mut x = mean(&self.history, recent(&u.history, self.max_history));
            x.extend(mean(&self.search, recent(&u.searches, self.max_searches)));
            x.extend(u.dense.iter().map(|&v| v as f64));
            let h: Vec<f64> = (0..self.hidden)
                .map(|k| {
                    let z = self.b1[k] as f64
                        + x.iter()
                            .enumerate()
                            .map(|(i, xi)| xi * self.w1[i * self.hidden + k] as f64)
                            .sum::<f64>();
                    z.max(0.0)
                })
                .collect();
            let y: Vec<f64> = (0..d)
                .map(|j| {
                    self.b2[j] as f64
                        + h.iter()
                            .enumerate()
                            .map(|(k, hk)| hk * self.w2[k * d + j] as f64)
                            .sum::<f64>()
                })
                .collect();
            let norm = y.iter().map(|v| v * v).sum::<f64>().max(1e-24).sqrt();
            y.iter().map(|v| (v / norm) as f32).collect()
        }
    }

    fn users(n_dense: usize, with_searches: bool) -> Vec<UserInput> {
        let dense = |x: f32| (0..n_dense).map(|j| x * (j as f32 + 1.0) - 0.3).collect();
        let s = |v: Vec<u32>| if with_searches { v } else { vec![] };
        vec![
            UserInput {
                history: vec![],
                searches: vec![],
                dense: dense(0.1),
            },
            UserInput {
                history: vec![3, 6, 0],
                searches: s(vec![1]),
                dense: dense(-0.2),
            },
            // Longer than max_history (3) and max_searches (2): only the tails count.
            UserInput {
                history: vec![1, 2, 3, 4, 5, 6, 0, 1],
                searches: s(vec![0, 1, 2, 3, 0]),
                dense: dense(0.7),
            },
            UserInput {
                history: vec![5, 5],
                searches: vec![],
                dense: dense(-1.0),
            },
        ]
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_tiny_tower_matches_the_plain_rust_forward_pass() {
        for (n_search, n_dense) in [(4, 2), (0, 0)] {
            let tiny = Tiny::new(n_search, n_dense, 17);
            let tower = UserTower::load(&tiny.bytes()).unwrap();
            assert_eq!(
                (tower.dim(), tower.n_items(), tower.n_search_tokens()),
                (3, 7, n_search)
            );
            assert_eq!(
                (tower.n_dense(), tower.max_history(), tower.max_searches()),
                (n_dense, 3, 2)
            );
            let inputs = users(n_dense, n_search > 0);
            let batch = tower.embed(&inputs).unwrap();
            assert_eq!(batch.len(), inputs.len() * 3);
            for (row, u) in inputs.iter().enumerate() {
                let reference = tiny.reference(u);
                assert_close(&batch[row * 3..row * 3 + 3], &reference);
                // Alone (other padding) the row is the same.
                assert_close(&tower.embed_one(u).unwrap(), &reference);
            }
            assert!(tower.embed(&[]).unwrap().is_empty());
        }
    }

    #[test]
    fn inputs_that_do_not_fit_are_invalid_arguments() {
        let tiny = Tiny::new(4, 2, 3);
        let tower = UserTower::load(&tiny.bytes()).unwrap();
        let good = UserInput {
            history: vec![1],
            searches: vec![0],
            dense: vec![0.0; 2],
        };
        let bad = [
            UserInput {
                history: vec![7],
                ..good.clone()
            },
            UserInput {
                history: vec![u32::MAX],
                ..good.clone()
            },
            UserInput {
                searches: vec![4],
                ..good.clone()
            },
            UserInput {
                dense: vec![0.0; 3],
                ..good.clone()
            },
            UserInput {
                dense: vec![f32::NAN, 0.0],
                ..good.clone()
            },
            // Out of range beyond the truncation window is still refused.
            UserInput {
                history: vec![7, 1, 1, 1, 1],
                ..good.clone()
            },
        ];
        for input in &bad {
            match tower.embed(&[good.clone(), input.clone()]) {
                Err(e @ Error::InvalidArgument(_)) => {
                    assert!(e.to_string().contains("input 1:"), "{e}");
                    assert_eq!(e.code(), "invalid_argument");
                }
                other => panic!("{input:?}: expected InvalidArgument, got {other:?}"),
            }
        }
    }

    fn refused(bytes: &[u8]) -> String {
        match UserTower::load(bytes) {
            Err(BundleError::Malformed { what, reason }) => {
                assert_eq!(what, "TWRT");
                reason
            }
            Err(other) => panic!("expected Malformed, got {other:?}"),
            Ok(_) => panic!("the model was accepted"),
        }
    }

    #[test]
    fn garbage_and_truncated_bytes_are_errors() {
        let bytes = Tiny::new(4, 2, 5).bytes();
        refused(b"");
        refused(b"definitely not onnx \x00\xff\x13\x37");
        for cut in [1, 7, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                UserTower::load(&bytes[..cut]).is_err(),
                "a prefix of {cut} bytes loaded"
            );
        }
        let mut rng = SplitMix64::new(99);
        for _ in 0..40 {
            let mut flipped = bytes.clone();
            for _ in 0..4 {
                let i = (rng.next_u64() % flipped.len() as u64) as usize;
                flipped[i] ^= 1 << (rng.next_u64() % 8);
            }
            // Either refused or (a flipped weight) still a valid tower; never a panic.
            if let Ok(t) = UserTower::load(&flipped) {
                let user = UserInput {
                    dense: vec![0.0; t.n_dense()],
                    ..UserInput::default()
                };
                assert_eq!(t.embed_one(&user).map(|v| v.len()), Ok(t.dim()));
            }
        }
        let random: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
        refused(&random);
    }

    #[test]
    fn models_that_lie_or_break_the_contract_are_refused() {
        let tiny = Tiny::new(4, 2, 5);
        let edit = |f: &dyn Fn(&mut edgerec_onnx::pb::ModelProto)| {
            let mut p = tiny.proto();
            f(&mut p);
            edgerec_onnx::encode(&p)
        };
        let set_meta = |key: &'static str, value: &'static str| {
            edit(&move |p| {
                p.metadata_props
                    .iter_mut()
                    .find(|e| e.key == key)
                    .unwrap()
                    .value = value.into()
            })
        };
        let graph =
            |f: &dyn Fn(&mut edgerec_onnx::pb::GraphProto)| edit(&|p| f(p.graph.as_mut().unwrap()));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("no metadata", edit(&|p| p.metadata_props.clear())),
            ("other kind", set_meta(META_KIND, "ranker")),
            ("newer format", set_meta(META_FORMAT, "2")),
            ("n_items not a number", set_meta(META_N_ITEMS, "seven")),
            ("n_items beyond the table", set_meta(META_N_ITEMS, "8")),
            ("n_items zero", set_meta(META_N_ITEMS, "0")),
            (
                "search vocabulary beyond the table",
                set_meta(META_N_SEARCH, "5"),
            ),
            ("dim zero", set_meta(META_DIM, "0")),
            ("dim not the tables'", set_meta(META_DIM, "4")),
            // Would allocate 2^64 floats for the probe if believed.
            (
                "huge n_dense",
                set_meta(META_N_DENSE, "18446744073709551615"),
            ),
            ("n_dense not the graph's", set_meta(META_N_DENSE, "5")),
            (
                "raw_data shorter than the shape",
                graph(&|g| {
                    let t = g
                        .initializer
                        .iter_mut()
                        .find(|t| t.name == HISTORY_TABLE)
                        .unwrap();
                    t.raw_data.truncate(t.raw_data.len() - 4);
                }),
            ),
            (
                "huge declared table",
                graph(&|g| {
                    let t = g
                        .initializer
                        .iter_mut()
                        .find(|t| t.name == HISTORY_TABLE)
                        .unwrap();
                    t.dims = vec![1 << 40, 1 << 40];
                }),
            ),
            (
                "unknown operator",
                graph(&|g| {
                    g.node
                        .iter_mut()
                        .find(|n| n.op_type == "Relu")
                        .unwrap()
                        .op_type = "NoSuchOp".into()
                }),
            ),
            (
                "renamed input",
                graph(&|g| {
                    g.input[4].name = "extra".into();
                    for n in &mut g.node {
                        for i in &mut n.input {
                            if i == DENSE {
                                *i = "extra".into();
                            }
                        }
                    }
                }),
            ),
            (
                "missing input",
                graph(&|g| {
                    g.input.truncate(4);
                }),
            ),
            (
                "output of the wrong width",
                graph(&|g| {
                    let n = g
                        .node
                        .iter_mut()
                        .find(|n| n.output[0] == USER_EMBEDDING)
                        .unwrap();
                    n.input = vec!["raw".into(), "raw".into()];
                    n.op_type = "Concat".into();
                    n.attribute = vec![attr_int("axis", 1)];
                }),
            ),
        ];
        for (what, bytes) in &cases {
            let reason = refused(bytes);
            eprintln!("{what}: {reason}");
        }
        UserTower::load(&tiny.bytes()).expect("the unedited model loads");
    }

    #[test]
    fn a_refused_tower_maps_to_the_malformed_code() {
        let e = Error::from(UserTower::load(b"\x08").unwrap_err());
        assert_eq!(e.code(), "malformed");
    }
}
