//! Running the exported user tower with tract.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::export::*;
use crate::features::{self, PackedUsers, pack_users};
use crate::model::table_rows;
use crate::onnx::{self, pb};
use crate::{Error, Shapes, UserInput};

/// The user tower exported by [`TwoTower::user_tower_onnx`](crate::TwoTower::user_tower_onnx),
/// loaded into tract: what the device runs.
///
/// Loading checks the bytes before tract sees them ([`onnx::check_model`]: inline, correctly
/// sized `FLOAT`/`INT64` initialisers, names defined before use), reads the model's sizes from
/// its `edgerec.*` metadata and checks them against the lookup tables, optimises the graph,
/// and runs it once on an empty user to check the output shape. [`embed`](Self::embed)
/// validates every input against those sizes, so out-of-range ids are errors, never an
/// out-of-bounds `Gather`.
///
/// Cost: loading is dominated by tract's optimisation (milliseconds); embedding `n` users is
/// `O(n·L·dim + n·(2·dim + n_dense)·hidden + n·hidden·dim)`.
#[derive(Debug, Clone)]
pub struct OnnxUserTower {
    plan: Arc<TypedRunnableModel>,
    shapes: Shapes,
    /// `input_order[k]`: which of [`INPUTS`] tract's k-th input is.
    input_order: [usize; 5],
}

/// The graph inputs, in the order `run` builds them.
const INPUTS: [&str; 5] = [
    HISTORY_IDS,
    HISTORY_WEIGHTS,
    SEARCH_IDS,
    SEARCH_WEIGHTS,
    DENSE,
];

fn meta_usize(model: &pb::ModelProto, key: &str) -> Result<usize, Error> {
    let value = onnx::metadata(model, key)
        .ok_or_else(|| Error::InvalidModel(format!("metadata {key:?} is missing")))?;
    value
        .parse::<usize>()
        .map_err(|_| Error::InvalidModel(format!("metadata {key:?} = {value:?} is not a size")))
}

fn tract_error(e: TractError) -> Error {
    Error::Tract(format!("{e:#}"))
}

impl OnnxUserTower {
    /// Loads and optimises the tower from encoded ONNX bytes. Errors (does not panic) on bytes
    /// that are not such a model.
    pub fn load(bytes: &[u8]) -> Result<OnnxUserTower, Error> {
        let model = onnx::decode(bytes)?;
        onnx::check_model(&model)?;
        if onnx::metadata(&model, META_KIND) != Some(KIND_USER_TOWER) {
            return Err(Error::InvalidModel(format!(
                "metadata {META_KIND:?} is not {KIND_USER_TOWER:?}"
            )));
        }
        if onnx::metadata(&model, META_FORMAT) != Some(FORMAT_VERSION) {
            return Err(Error::InvalidModel(format!(
                "unsupported format (metadata {META_FORMAT:?} must be {FORMAT_VERSION:?})"
            )));
        }
        let shapes = Shapes {
            n_items: meta_usize(&model, META_N_ITEMS)?,
            n_content_tokens: 0,
            n_search_tokens: meta_usize(&model, META_N_SEARCH)?,
            n_dense: meta_usize(&model, META_N_DENSE)?,
            dim: meta_usize(&model, META_DIM)?,
            hidden: 0,
            max_history: meta_usize(&model, META_MAX_HISTORY)?,
            max_searches: meta_usize(&model, META_MAX_SEARCHES)?,
        };
        if shapes.dim == 0 || shapes.n_items == 0 || shapes.n_items > u32::MAX as usize {
            return Err(Error::InvalidModel(format!(
                "dim {} / n_items {} out of range",
                shapes.dim, shapes.n_items
            )));
        }
        // The ids `embed` accepts must index real rows of the tables.
        for (table, rows) in [
            (HISTORY_TABLE, shapes.n_items),
            (SEARCH_TABLE, table_rows(shapes.n_search_tokens)),
        ] {
            match onnx::initializer_dims(&model, table) {
                Some(dims) if dims.len() == 2 && dims[0] >= rows && dims[1] > 0 => {}
                other => {
                    return Err(Error::InvalidModel(format!(
                        "initialiser {table:?} has shape {other:?}, needs at least {rows} rows"
                    )));
                }
            }
        }
        // tract's inputs are the graph inputs that are not initialisers, in order; map them to
        // ours by name.
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| Error::InvalidModel("no graph".into()))?;
        let inputs: Vec<&str> = graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .filter(|name| !graph.initializer.iter().any(|t| t.name == *name))
            .collect();
        let mut input_order = [0usize; 5];
        if inputs.len() != INPUTS.len() {
            return Err(Error::InvalidModel(format!(
                "graph inputs are {inputs:?}, expected {INPUTS:?}"
            )));
        }
        for (slot, name) in input_order.iter_mut().zip(&inputs) {
            *slot = INPUTS.iter().position(|n| n == name).ok_or_else(|| {
                Error::InvalidModel(format!(
                    "unexpected graph input {name:?}, expected {INPUTS:?}"
                ))
            })?;
        }
        let mut seen = input_order;
        seen.sort_unstable();
        if seen != [0, 1, 2, 3, 4] {
            return Err(Error::InvalidModel(format!(
                "graph inputs {inputs:?} repeat a name"
            )));
        }

        // tract is known to panic on some malformed graphs: contain it (native builds unwind).
        let plan = catch_unwind(AssertUnwindSafe(|| -> Result<_, Error> {
            tract_onnx::onnx()
                .model_for_proto_model(&model)
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(tract_error)
        }))
        .map_err(|_| Error::Tract("tract panicked while loading the model".into()))??;
        let tower = OnnxUserTower {
            plan,
            shapes,
            input_order,
        };
        // Smoke run: the graph must map an empty user to one row of `dim` floats.
        let probe = UserInput {
            history: vec![],
            searches: vec![],
            dense: vec![0.0; shapes.n_dense],
        };
        tower.embed(std::slice::from_ref(&probe))?;
        Ok(tower)
    }

    /// Width of the user embedding.
    pub fn dim(&self) -> usize {
        self.shapes.dim
    }

    /// Width of the `dense` input each [`UserInput`] must have.
    pub fn n_dense(&self) -> usize {
        self.shapes.n_dense
    }

    /// Number of items (history ids must be below it).
    pub fn n_items(&self) -> usize {
        self.shapes.n_items
    }

    /// Number of search tokens (search ids must be below it).
    pub fn n_search_tokens(&self) -> usize {
        self.shapes.n_search_tokens
    }

    /// Most recent history items used per user.
    pub fn max_history(&self) -> usize {
        self.shapes.max_history
    }

    /// Most recent search tokens used per user.
    pub fn max_searches(&self) -> usize {
        self.shapes.max_searches
    }

    /// Embeds a batch of users: `inputs.len() × dim` floats, row-major, rows L2-normalised.
    /// Histories and searches are truncated to the most recent `max_history` / `max_searches`
    /// entries and padded to the longest in the batch. An empty batch gives an empty vector.
    pub fn embed(&self, inputs: &[UserInput]) -> Result<Vec<f32>, Error> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        for (row, input) in inputs.iter().enumerate() {
            features::validate_input(&self.shapes, input, row)?;
        }
        let packed = pack_users(
            inputs
                .iter()
                .map(|u| (&u.history[..], &u.searches[..], &u.dense[..])),
            &self.shapes,
        );
        self.run(&packed)
    }

    fn run(&self, p: &PackedUsers) -> Result<Vec<f32>, Error> {
        let ids = |v: &[u32]| v.iter().map(|&i| i as i64).collect::<Vec<i64>>();
        let n_dense = self.shapes.n_dense;
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
        let inputs: TVec<TValue> = self
            .input_order
            .iter()
            .map(|&k| make(k))
            .collect::<TractResult<_>>()
            .map_err(tract_error)?;
        let outputs = self.plan.run(inputs).map_err(tract_error)?;
        let out = outputs
            .first()
            .ok_or_else(|| Error::InvalidModel("the model has no output".into()))?;
        let view = out.try_as_plain_ram().map_err(tract_error)?;
        if view.shape() != [p.n, self.shapes.dim] {
            return Err(Error::InvalidModel(format!(
                "output shape {:?}, expected [{}, {}]",
                view.shape(),
                p.n,
                self.shapes.dim
            )));
        }
        Ok(view.as_slice::<f32>().map_err(tract_error)?.to_vec())
    }
}
