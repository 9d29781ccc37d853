//! The user tower as an ONNX graph, written by the core's one writer
//! ([`edgerec::tower::user_tower_onnx`], which also defines the graph the device runs).

use edgerec::tower::{TowerShape, TowerWeights, user_tower_onnx as write};

use crate::Error;
use crate::Shapes;
use crate::model::{Params, to_vec};

pub(crate) fn user_tower_onnx(params: &Params, s: &Shapes) -> Result<Vec<u8>, Error> {
    let (history, search) = (to_vec(&params.history)?, to_vec(&params.search)?);
    let (w1, b1) = (to_vec(&params.w1)?, params.b1.to_vec1::<f32>()?);
    let (w2, b2) = (to_vec(&params.w2)?, params.b2.to_vec1::<f32>()?);
    let shape = TowerShape {
        n_items: s.n_items,
        n_search_tokens: s.n_search_tokens,
        n_dense: s.n_dense,
        dim: s.dim,
        hidden: s.hidden,
        max_history: s.max_history,
        max_searches: s.max_searches,
    };
    let weights = TowerWeights {
        history: &history,
        search: &search,
        w1: &w1,
        b1: &b1,
        w2: &w2,
        b2: &b2,
    };
    Ok(write(&shape, &weights, "edgerec-twotower")?)
}
