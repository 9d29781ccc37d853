//! The one writer of the user tower's ONNX graph: the trainer's export (`edgerec-twotower`),
//! the core's tests and the benchmarks all write towers with [`user_tower_onnx`], so the graph
//! the device runs has one definition.
//!
//! The graph: `history = Σ weights · Gather(history_table, history_ids)`, the same for the
//! search tokens, `features = concat(history, search, dense)`, `hidden = relu(features · w1 +
//! b1)`, `raw = hidden · w2 + b2`, and the output `raw / sqrt(max(Σ raw², NORM_FLOOR))` — the
//! order of operations of the trainer's forward pass, so both agree to rounding.
//!
//! ```
//! use edgerec::tower::{TowerShape, TowerWeights, UserInput, UserTower, table_rows, user_tower_onnx};
//! let shape = TowerShape {
//!     n_items: 3, n_search_tokens: 0, n_dense: 1, dim: 2, hidden: 2, max_history: 5, max_searches: 5,
//! };
//! let w = |n: usize| vec![0.5f32; n];
//! let (history, search) = (w(3 * 2), w(table_rows(0) * 2));
//! let (w1, b1, w2, b2) = (w(5 * 2), w(2), w(2 * 2), w(2));
//! let weights = TowerWeights { history: &history, search: &search, w1: &w1, b1: &b1, w2: &w2, b2: &b2 };
//! let tower = UserTower::load(&user_tower_onnx(&shape, &weights, "doctest")?)?;
//! let u = tower.embed_one(&UserInput { history: vec![0, 2], searches: vec![], dense: vec![1.0] })?;
//! assert!((u.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::onnx::build::{Dim, GraphBuilder, attr_int, encode, model};
use crate::onnx::{ElemType, OnnxError};

use super::{
    DENSE, FORMAT_VERSION, HISTORY_IDS, HISTORY_TABLE, HISTORY_WEIGHTS, KIND_USER_TOWER, META_DIM,
    META_FORMAT, META_KIND, META_MAX_HISTORY, META_MAX_SEARCHES, META_N_DENSE, META_N_ITEMS,
    META_N_SEARCH, SEARCH_IDS, SEARCH_TABLE, SEARCH_WEIGHTS, USER_EMBEDDING, table_rows,
};

/// Floor of the squared norm in the output's L2 normalisation: `y / sqrt(max(Σy², NORM_FLOOR))`.
pub const NORM_FLOOR: f32 = 1e-24;

/// The sizes of a user tower (written into its metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TowerShape {
    /// Items: rows of the history table.
    pub n_items: usize,
    /// Search-token vocabulary ([`table_rows`] of it are the search table's rows).
    pub n_search_tokens: usize,
    /// Width of the dense input.
    pub n_dense: usize,
    /// Width of the embeddings and the output.
    pub dim: usize,
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Most recent history items used per user.
    pub max_history: usize,
    /// Most recent search tokens used per user.
    pub max_searches: usize,
}

/// The weights, row-major, linear layers `[in, out]` (`x · W + b`).
#[derive(Debug, Clone, Copy)]
pub struct TowerWeights<'a> {
    /// `[n_items, dim]`.
    pub history: &'a [f32],
    /// `[table_rows(n_search_tokens), dim]`.
    pub search: &'a [f32],
    /// `[2 · dim + n_dense, hidden]`.
    pub w1: &'a [f32],
    /// `[hidden]`.
    pub b1: &'a [f32],
    /// `[hidden, dim]`.
    pub w2: &'a [f32],
    /// `[dim]`.
    pub b2: &'a [f32],
}

/// `pooled = ReduceSum(Gather(table, ids) * Unsqueeze(weights, 2), axis 1)`: `[batch, dim]`.
fn pool(
    g: &mut GraphBuilder,
    prefix: &str,
    table: &str,
    ids: &str,
    weights: &str,
) -> Result<String, OnnxError> {
    let rows = format!("{prefix}_rows");
    let w3 = format!("{prefix}_weights3");
    let weighted = format!("{prefix}_weighted");
    let out = format!("{prefix}_pooled");
    g.node("Gather", &[table, ids], &[&rows], vec![attr_int("axis", 0)])?;
    g.node("Unsqueeze", &[weights, "axes_2"], &[&w3], vec![])?;
    g.node("Mul", &[&rows, &w3], &[&weighted], vec![])?;
    g.node(
        "ReduceSum",
        &[&weighted, "axes_1"],
        &[&out],
        vec![attr_int("keepdims", 0)],
    )?;
    Ok(out)
}

/// The user tower of `shape` and `weights` as encoded ONNX (IR 8, opset 13), with the
/// `edgerec.*` metadata [`super::UserTower::load`] reads; `producer` names the writer.
///
/// Errors: a weight whose length does not fit `shape` ([`OnnxError`]).
pub fn user_tower_onnx(
    shape: &TowerShape,
    weights: &TowerWeights<'_>,
    producer: &str,
) -> Result<Vec<u8>, OnnxError> {
    let s = shape;
    let d = s.dim;
    let batch = Dim::symbolic("batch");
    let mut g = GraphBuilder::new("edgerec_user_tower");
    let ids_shape = |len: &str| [batch.clone(), Dim::symbolic(len)];
    g.input(HISTORY_IDS, ElemType::I64, &ids_shape("history_len"))?;
    g.input(HISTORY_WEIGHTS, ElemType::F32, &ids_shape("history_len"))?;
    g.input(SEARCH_IDS, ElemType::I64, &ids_shape("search_len"))?;
    g.input(SEARCH_WEIGHTS, ElemType::F32, &ids_shape("search_len"))?;
    g.input(
        DENSE,
        ElemType::F32,
        &[batch.clone(), Dim::Fixed(s.n_dense)],
    )?;
    let user_in = 2 * d + s.n_dense;
    g.initializer_f32(HISTORY_TABLE, &[s.n_items, d], weights.history)?;
    g.initializer_f32(
        SEARCH_TABLE,
        &[table_rows(s.n_search_tokens), d],
        weights.search,
    )?;
    g.initializer_f32("w1", &[user_in, s.hidden], weights.w1)?;
    g.initializer_f32("b1", &[s.hidden], weights.b1)?;
    g.initializer_f32("w2", &[s.hidden, d], weights.w2)?;
    g.initializer_f32("b2", &[d], weights.b2)?;
    g.initializer_i64("axes_1", &[1], &[1])?;
    g.initializer_i64("axes_2", &[1], &[2])?;
    g.initializer_f32("norm_floor", &[1], &[NORM_FLOOR])?;
    let history = pool(
        &mut g,
        "history",
        HISTORY_TABLE,
        HISTORY_IDS,
        HISTORY_WEIGHTS,
    )?;
    let search = pool(&mut g, "search", SEARCH_TABLE, SEARCH_IDS, SEARCH_WEIGHTS)?;
    let mut parts = vec![history.as_str(), search.as_str()];
    if s.n_dense > 0 {
        parts.push(DENSE);
    }
    g.node("Concat", &parts, &["features"], vec![attr_int("axis", 1)])?;
    g.node("Gemm", &["features", "w1", "b1"], &["hidden_pre"], vec![])?;
    g.node("Relu", &["hidden_pre"], &["hidden"], vec![])?;
    g.node("Gemm", &["hidden", "w2", "b2"], &["raw"], vec![])?;
    g.node("Mul", &["raw", "raw"], &["raw_sq"], vec![])?;
    g.node(
        "ReduceSum",
        &["raw_sq", "axes_1"],
        &["sum_sq"],
        vec![attr_int("keepdims", 1)],
    )?;
    g.node(
        "Max",
        &["sum_sq", "norm_floor"],
        &["sum_sq_floored"],
        vec![],
    )?;
    g.node("Sqrt", &["sum_sq_floored"], &["norm"], vec![])?;
    g.node("Div", &["raw", "norm"], &[USER_EMBEDDING], vec![])?;
    g.output(USER_EMBEDDING, ElemType::F32, &[batch, Dim::Fixed(d)])?;
    let meta = [
        (META_KIND, KIND_USER_TOWER.to_string()),
        (META_FORMAT, FORMAT_VERSION.to_string()),
        (META_N_ITEMS, s.n_items.to_string()),
        (META_N_SEARCH, s.n_search_tokens.to_string()),
        (META_N_DENSE, s.n_dense.to_string()),
        (META_DIM, d.to_string()),
        (META_MAX_HISTORY, s.max_history.to_string()),
        (META_MAX_SEARCHES, s.max_searches.to_string()),
    ];
    let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(encode(&model(g.finish()?, producer, &meta)))
}
