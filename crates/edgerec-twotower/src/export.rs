//! The user tower as an ONNX graph (see the crate docs for the input contract; its names are
//! defined once, in `edgerec::tower`, which runs the graph on the device).

use edgerec::tower::{
    DENSE, FORMAT_VERSION, HISTORY_IDS, HISTORY_TABLE, HISTORY_WEIGHTS, KIND_USER_TOWER, META_DIM,
    META_FORMAT, META_KIND, META_MAX_HISTORY, META_MAX_SEARCHES, META_N_DENSE, META_N_ITEMS,
    META_N_SEARCH, SEARCH_IDS, SEARCH_TABLE, SEARCH_WEIGHTS, USER_EMBEDDING,
};

use crate::Error;
use crate::Shapes;
use crate::model::{NORM_FLOOR, Params, to_vec};
use crate::onnx::{self, Dim, ElemType, GraphBuilder, attr_int};

/// `pooled = ReduceSum(Gather(table, ids) * Unsqueeze(weights, 2), axis 1)`: `[batch, dim]`.
fn pooled(
    g: &mut GraphBuilder,
    prefix: &str,
    table: &str,
    ids: &str,
    weights: &str,
) -> Result<String, Error> {
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

pub(crate) fn user_tower_onnx(params: &Params, s: &Shapes) -> Result<Vec<u8>, Error> {
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

    let d = s.dim;
    let user_in = 2 * d + s.n_dense;
    g.initializer_f32(
        HISTORY_TABLE,
        &[params.history.dim(0)?, d],
        &to_vec(&params.history)?,
    )?;
    g.initializer_f32(
        SEARCH_TABLE,
        &[params.search.dim(0)?, d],
        &to_vec(&params.search)?,
    )?;
    g.initializer_f32("w1", &[user_in, s.hidden], &to_vec(&params.w1)?)?;
    g.initializer_f32("b1", &[s.hidden], &params.b1.to_vec1::<f32>()?)?;
    g.initializer_f32("w2", &[s.hidden, d], &to_vec(&params.w2)?)?;
    g.initializer_f32("b2", &[d], &params.b2.to_vec1::<f32>()?)?;
    g.initializer_i64("axes_1", &[1], &[1])?;
    g.initializer_i64("axes_2", &[1], &[2])?;
    g.initializer_f32("norm_floor", &[1], &[NORM_FLOOR])?;

    let history = pooled(
        &mut g,
        "history",
        HISTORY_TABLE,
        HISTORY_IDS,
        HISTORY_WEIGHTS,
    )?;
    let search = pooled(&mut g, "search", SEARCH_TABLE, SEARCH_IDS, SEARCH_WEIGHTS)?;
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
    let model = onnx::model(g.finish()?, "edgerec-twotower", &meta);
    Ok(onnx::encode(&model))
}
