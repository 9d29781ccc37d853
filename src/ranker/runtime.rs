//! Running a ranker with tract: load an ONNX model against its [`RankerContract`], score
//! batches of candidates.
//!
//! Tree-ensemble rankers (a graph whose scored output is an ONNX-ML `TreeEnsembleClassifier`
//! reading `dense`) are scored by a native evaluator instead (`src/ranker/trees.rs`), because
//! tract 0.23.9 walks its leaf table linearly for every tree of every row, so its time per row
//! grows with trees × leaves (dev profile, 500 candidates: 96 ms for the 30-tree depth-3
//! fixture GBDT, 3.5 s for 100 trees of depth 6; natively 0.3 ms and 2 ms: `examples/
//! tree_bench.rs`). The model is still loaded, checked and probed by tract; that the two engines
//! agree is checked when a bundle is packaged ([`Ranker::check_native_agreement`]), not at every
//! load, where tract's evaluation of the probe rows was two thirds of the load time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::trees::{self, TreeEnsemble, TreeError};
use super::{RankerBatch, RankerContract, RankerInput, RankerRow, contract_err};
use crate::error::{BundleError, Error, Result};
use crate::features::{FeatureVector, SparseFeatures};
use crate::onnx::{self, ElemType, pb};

/// A ranker loaded into tract, ready to score: what the device runs.
///
/// [`Ranker::load`] checks, in order: the contract on its own
/// ([`RankerContract::validate`]); the ONNX bytes' structure ([`onnx::check_model`]: inline,
/// correctly sized initialisers, names defined before use, no external data); that the graph's
/// inputs are exactly the contract's (names, element types, rank 2, the fixed widths `D` and
/// `L`) and that the output the contract names exists; that the contract's kind matches the
/// model's `edgerec.ranker` metadata and its dense names the `edgerec.dense` metadata, when the
/// model carries them; then tract optimises the graph and scores one probe row, whose output
/// must be `[1, C]` with the contract's column inside. Every failure is a
/// [`BundleError::Contract`] naming what differs.
///
/// Every tree ensemble in the graph is also checked before tract sees the model
/// ([`check_trees`]): one whose attributes are malformed (ids out of range, cycles, class ids
/// beyond the labels, `BRANCH_GTE`, non-finite values, …) or outside what the native evaluator
/// reproduces is refused, since tract 0.23.9 would loop forever, panic, write out of bounds,
/// score it wrongly or at unbounded cost.
///
/// # Engines
///
/// When the contract's output is the probabilities output of an `ai.onnx.ml`
/// `TreeEnsembleClassifier` (possibly through `Identity` nodes) that reads `dense`, the ranker
/// scores natively ([`Ranker::engine`] = [`ENGINE_TREES`]) — provided the native evaluator
/// understands the node. Otherwise tract scores ([`ENGINE_TRACT`]). That the evaluator agrees
/// with tract is checked where models are made: [`Ranker::check_native_agreement`] on
/// [`PROBE_ROWS`] probe rows (zeros, and every split's threshold exactly and one ulp either
/// side) when a bundle is packaged ([`crate::Model::check`]), and on random ensembles, NaN
/// features included, by the tests (`tests/ranker_trees.rs`).
///
/// Cost: loading is dominated by tract's optimisation (milliseconds for the project's
/// rankers); [`Ranker::score`] is one tract run over the whole batch, or for tree ensembles
/// O(rows · trees · depth) native work.
#[derive(Debug, Clone)]
pub struct Ranker {
    plan: Arc<TypedRunnableModel>,
    contract: RankerContract,
    /// `order[k]`: index into [`RankerContract::inputs`] of tract's k-th input.
    order: Vec<usize>,
    /// The native tree evaluator, when it scores this ranker.
    trees: Option<Arc<TreeEnsemble>>,
}

/// [`Ranker::engine`] of a ranker scored by tract.
pub const ENGINE_TRACT: &str = "tract";

/// [`Ranker::engine`] of a tree-ensemble ranker scored by the native evaluator.
pub const ENGINE_TREES: &str = "native-trees";

/// Rows of the packaging-time comparison between the native tree evaluator and tract.
pub const PROBE_ROWS: usize = 16;

/// Largest difference between native and tract scores on the probe rows for a bundle to be
/// packaged.
pub const PROBE_TOLERANCE: f32 = 1e-5;

fn tract_reason(e: TractError) -> String {
    format!("{e:#}")
}

/// Element type and dims of a graph input, as declared.
fn declared(v: &pb::ValueInfoProto) -> Option<(i32, Vec<Option<i64>>)> {
    use pb::type_proto::Value;
    let Some(Value::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dims = t
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => Some(n),
            _ => None,
        })
        .collect();
    Some((t.elem_type, dims))
}

/// Checks the model's `edgerec.ranker` and `edgerec.dense` metadata, when present, against
/// the contract's kind and dense names.
fn check_metadata(model: &pb::ModelProto, contract: &RankerContract) -> Result<(), BundleError> {
    if let Some(kind) = onnx::metadata(model, "edgerec.ranker")
        && kind != contract.kind
    {
        return Err(contract_err(format!(
            "the model says it is {kind:?}, the contract {:?}",
            contract.kind
        )));
    }
    if let Some(dense) = onnx::metadata(model, "edgerec.dense")
        && !contract.dense.is_empty()
        && dense != contract.dense.join(",")
    {
        return Err(contract_err(
            "the model's edgerec.dense metadata lists other features than the contract",
        ));
    }
    Ok(())
}

/// Matches the graph's inputs (initialisers excluded) with `expected`, the contract's
/// [`RankerContract::inputs`]: returns, per graph input in order, its index in `expected`.
/// Refuses an input the contract does not provide, one declared twice, one whose type or
/// shape differs ([`check_input`]), and a contract input the model does not read.
fn input_order(
    graph: &pb::GraphProto,
    expected: &[(String, bool, usize)],
) -> Result<Vec<usize>, BundleError> {
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name == i.name))
        .collect();
    let mut order = Vec::with_capacity(inputs.len());
    for i in &inputs {
        let k = expected
            .iter()
            .position(|(name, _, _)| *name == i.name)
            .ok_or_else(|| {
                contract_err(format!(
                    "the model reads input {:?}, which the contract does not provide \
                     (it provides {:?})",
                    i.name,
                    expected.iter().map(|e| e.0.as_str()).collect::<Vec<_>>()
                ))
            })?;
        if order.contains(&k) {
            return Err(contract_err(format!(
                "input {:?} is declared twice",
                i.name
            )));
        }
        let (name, is_ids, width) = &expected[k];
        check_input(i, name, *is_ids, *width)?;
        order.push(k);
    }
    if let Some((name, _, _)) = expected
        .iter()
        .enumerate()
        .find(|(k, _)| !order.contains(k))
        .map(|(_, e)| e)
    {
        return Err(contract_err(format!(
            "the contract provides {name:?} but the model does not read it"
        )));
    }
    Ok(order)
}

/// Checks a graph input's declaration against the contract's input `name`: int64 ids or f32
/// values, shape `[batch, width]` with a symbolic batch dimension.
fn check_input(
    input: &pb::ValueInfoProto,
    name: &str,
    is_ids: bool,
    width: usize,
) -> Result<(), BundleError> {
    let want = if is_ids { ElemType::I64 } else { ElemType::F32 };
    let (elem, dims) = declared(input)
        .ok_or_else(|| contract_err(format!("input {name:?} declares no tensor type and shape")))?;
    if elem != want.data_type() {
        return Err(contract_err(format!(
            "input {name:?} has element type {elem}, the contract gives {want:?}"
        )));
    }
    if dims.len() != 2 || dims[1] != Some(width as i64) {
        return Err(contract_err(format!(
            "input {name:?} has shape {dims:?}, the contract gives [batch, {width}]"
        )));
    }
    if matches!(dims[0], Some(n) if n != -1) {
        return Err(contract_err(format!(
            "input {name:?} has a fixed batch size; the first dimension must be symbolic"
        )));
    }
    Ok(())
}

/// Checks that the graph has the contract's output `output`.
fn check_output(graph: &pb::GraphProto, output: &str) -> Result<(), BundleError> {
    if !graph.output.iter().any(|o| o.name == output) {
        return Err(contract_err(format!(
            "the model has no output {:?} (outputs: {:?})",
            output,
            graph.output.iter().map(|o| &o.name).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// tract's optimised plan of `model`, its inputs typed as `[batch, width]` in graph order
/// (`order` from [`input_order`]), computing `output` only.
/// tract's optimised plan of the model, and its inference model with every input typed
/// (for the load probe's [`onnx::check_finite`]).
fn tract_plan(
    model: &pb::ModelProto,
    order: &[usize],
    expected: &[(String, bool, usize)],
    output: &str,
) -> Result<(Arc<TypedRunnableModel>, InferenceModel), BundleError> {
    // tract is known to panic on some malformed graphs: contain it where unwinding exists.
    catch_unwind(AssertUnwindSafe(|| -> TractResult<_> {
        let mut m = tract_onnx::onnx().model_for_proto_model(model)?;
        let batch = m.symbols.sym("batch").to_dim();
        for (slot, &k) in order.iter().enumerate() {
            let (_, is_ids, width) = &expected[k];
            let dt = if *is_ids {
                i64::datum_type()
            } else {
                f32::datum_type()
            };
            m.set_input_fact(
                slot,
                InferenceFact::dt_shape(dt, tvec![batch.clone(), width.to_dim()]),
            )?;
        }
        let typed_inputs = m.clone();
        m.select_outputs_by_name([output])?;
        Ok((m.into_optimized()?.into_runnable()?, typed_inputs))
    }))
    .map_err(|_| contract_err("tract panicked while loading the model"))?
    .map_err(|e| contract_err(format!("tract cannot load the model: {}", tract_reason(e))))
}

/// Most tree nodes the tree ensembles of one ranker may hold in all (a flat node is 16
/// bytes natively; tract's own tables are larger).
pub const MAX_TREE_NODES: usize = 1 << 21;

/// Checks every tree ensemble of the graph before tract sees the model, so that tract only
/// ever loads ensembles whose cost and behaviour are known: a `TreeEnsembleClassifier` must be
/// valid ([`TreeError::Invalid`]: tract 0.23.9 would loop, panic or write out of bounds) and
/// inside what the native evaluator reproduces ([`TreeError::Unsupported`]: feature ids from
/// 2²⁴, trees deeper than [`trees::MAX_DEPTH`], shared branches, `*_as_tensor` attributes,
/// other post transforms — tract would score those at a cost nothing bounds), every float
/// attribute finite, and all ensembles together at most [`MAX_TREE_NODES`] nodes (counted
/// before anything is built). Other tree operators (`TreeEnsembleRegressor`, `TreeEnsemble`)
/// are refused. The same bytes get the same decision natively and in wasm. Returns each
/// classifier node with the evaluator built from it.
fn check_trees(graph: &pb::GraphProto) -> Result<Vec<(&pb::NodeProto, TreeEnsemble)>, BundleError> {
    let mut total = 0usize;
    let mut built = Vec::new();
    for node in &graph.node {
        match node.op_type.as_str() {
            "TreeEnsembleClassifier" => {}
            "TreeEnsembleRegressor" | "TreeEnsemble" => {
                return Err(contract_err(format!(
                    "node {:?}: {} is not supported (export the ranker as a \
                     TreeEnsembleClassifier)",
                    node.name, node.op_type
                )));
            }
            _ => continue,
        }
        for a in &node.attribute {
            if let Some(v) = a
                .floats
                .iter()
                .chain(std::iter::once(&a.f))
                .find(|v| !v.is_finite())
            {
                return Err(contract_err(format!(
                    "node {:?}: attribute {} holds {v}",
                    node.name, a.name
                )));
            }
        }
        let nodes = node
            .attribute
            .iter()
            .find(|a| a.name == "nodes_treeids")
            .map_or(0, |a| a.ints.len());
        total = total.saturating_add(nodes);
        if total > MAX_TREE_NODES {
            return Err(contract_err(format!(
                "the tree ensembles hold more than {MAX_TREE_NODES} nodes"
            )));
        }
        match TreeEnsemble::from_node(node) {
            Ok(ensemble) => built.push((node, ensemble)),
            Err(TreeError::Invalid(reason)) => {
                return Err(contract_err(format!("node {:?}: {reason}", node.name)));
            }
            Err(TreeError::Unsupported(reason)) => {
                return Err(contract_err(format!(
                    "node {:?}: {reason}: outside the tree ensembles edgerec runs",
                    node.name
                )));
            }
        }
    }
    Ok(built)
}

impl Ranker {
    /// Loads and checks a ranker. Errors (never panics) on any bytes that are not a model
    /// matching `contract`.
    pub fn load(contract: &RankerContract, bytes: &[u8]) -> Result<Ranker, BundleError> {
        contract.validate()?;
        let model = onnx::decode(bytes).map_err(|e| contract_err(e.to_string()))?;
        onnx::check_model(&model).map_err(|e| contract_err(e.to_string()))?;
        onnx::check_operators(&model, onnx::Role::Ranker)
            .map_err(|e| contract_err(e.to_string()))?;
        check_metadata(&model, contract)?;
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| contract_err("the model has no graph"))?;
        let expected = contract.inputs();
        let order = input_order(graph, &expected)?;
        check_output(graph, &contract.output)?;
        // Tree ensembles tract could mis-run are refused before tract sees the model.
        let ensembles = check_trees(graph)?;
        let (plan, inference) = tract_plan(&model, &order, &expected, &contract.output)?;
        let mut ranker = Ranker {
            plan,
            contract: contract.clone(),
            order,
            trees: None,
        };
        ranker.probe(inference)?;
        ranker.trees = native_trees(contract, graph, ensembles).map(Arc::new);
        Ok(ranker)
    }

    /// For a ranker the native tree evaluator scores: checks it agrees with tract within
    /// [`PROBE_TOLERANCE`] on [`PROBE_ROWS`] probe rows (zeros, and every split's threshold
    /// exactly and one ulp either side), else `contract_mismatch`; nothing to check for a
    /// ranker tract scores. The publisher runs it ([`crate::Model::check`]); a device does not
    /// (tract's tree evaluation took two thirds of the MovieLens bundle's load), since which
    /// engine scores is decided by the graph's structure alone, alike on every build.
    pub fn check_native_agreement(&self) -> Result<(), BundleError> {
        let Some(ensemble) = &self.trees else {
            return Ok(());
        };
        let contract = &self.contract;
        let d = contract.dense.len();
        let batch = RankerBatch {
            rows: PROBE_ROWS,
            dense: ensemble.probe_rows(d, PROBE_ROWS),
            bags: contract
                .bags
                .iter()
                .map(|b| super::BagTensor {
                    field: b.field,
                    len: b.len as usize,
                    ids: vec![0; PROBE_ROWS * b.len as usize],
                    weights: vec![0.0; PROBE_ROWS * b.len as usize],
                })
                .collect(),
        };
        let tract = self
            .run_tract(&batch)
            .map_err(|e| contract_err(format!("the tree ensemble's probe rows in tract: {e}")))?;
        let native = ensemble
            .column(&batch.dense, d, contract.column as usize)
            .map_err(|e| contract_err(format!("the tree ensemble's probe rows: {e}")))?;
        let disagree = tract.len() != native.len()
            || tract
                .iter()
                .zip(&native)
                .any(|(a, b)| (a - b).abs() > PROBE_TOLERANCE && a.to_bits() != b.to_bits());
        if disagree {
            return Err(contract_err(format!(
                "the native tree evaluator and tract disagree on the probe rows \
                 (native {native:?}, tract {tract:?})"
            )));
        }
        Ok(())
    }

    /// The load-time probe: one all-zero candidate must give one finite score, and every
    /// value the graph computes on the way must be finite ([`onnx::check_finite`], so
    /// that native and wasm builds decide alike).
    fn probe(&self, inference: InferenceModel) -> Result<(), BundleError> {
        let probe = FeatureVector {
            dense: vec![0.0; self.contract.dense.len()],
            sparse: SparseFeatures::default(),
        };
        let batch = self
            .contract
            .assemble(&[RankerRow {
                features: &probe,
                history: &[],
                search: &[],
            }])
            .map_err(|e| contract_err(e.to_string()))?;
        self.score(&batch)
            .map_err(|e| contract_err(format!("probe run: {e}")))?;
        let inputs = self
            .tract_inputs(&batch)
            .map_err(|e| contract_err(format!("probe run: {e}")))?;
        onnx::check_finite(inference, inputs).map_err(|e| contract_err(format!("probe run: {e}")))
    }

    /// Which engine scores: [`ENGINE_TREES`] or [`ENGINE_TRACT`].
    pub fn engine(&self) -> &'static str {
        if self.trees.is_some() {
            ENGINE_TREES
        } else {
            ENGINE_TRACT
        }
    }

    /// The contract the ranker was loaded with.
    pub fn contract(&self) -> &RankerContract {
        &self.contract
    }

    /// Scores a batch built by [`RankerContract::assemble`] (of this ranker's contract): one
    /// P(watch) per candidate, in batch order. Errors with `ranker_failed` if tract fails or a
    /// score is not a finite number, with `invalid_argument` if the batch does not fit the
    /// contract.
    pub fn score(&self, batch: &RankerBatch) -> Result<Vec<f32>> {
        self.check_batch(batch)?;
        let scores = match &self.trees {
            Some(t) => t
                .column(
                    &batch.dense,
                    self.contract.dense.len(),
                    self.contract.column as usize,
                )
                .map_err(Error::Ranker)?,
            None => self.run_tract(batch)?,
        };
        finite(scores)
    }

    /// [`Ranker::score`] with tract, whichever engine the ranker uses (parity checks and
    /// benchmarks).
    pub fn score_with_tract(&self, batch: &RankerBatch) -> Result<Vec<f32>> {
        self.check_batch(batch)?;
        finite(self.run_tract(batch)?)
    }

    fn check_batch(&self, batch: &RankerBatch) -> Result<()> {
        let n = batch.rows;
        let d = self.contract.dense.len();
        if batch.dense.len() != n * d || batch.bags.len() != self.contract.bags.len() {
            return Err(Error::InvalidArgument(
                "the batch was not assembled for this ranker's contract".into(),
            ));
        }
        for (t, b) in batch.bags.iter().zip(&self.contract.bags) {
            let len = b.len as usize;
            if t.field != b.field || t.ids.len() != n * len || t.weights.len() != n * len {
                return Err(Error::InvalidArgument(format!(
                    "the batch's {} bag does not fit the contract",
                    b.field
                )));
            }
        }
        Ok(())
    }

    /// Column [`RankerContract::column`] of tract's output (not checked for finiteness).
    fn run_tract(&self, batch: &RankerBatch) -> Result<Vec<f32>> {
        let inputs = self.tract_inputs(batch)?;
        // A panic inside tract (a bug there) is an error for this request where unwinding
        // exists; the checks at load keep tract to graphs it runs (wasm aborts on a panic).
        let outputs = catch_unwind(AssertUnwindSafe(|| self.plan.run(inputs)))
            .map_err(|_| Error::Ranker("tract panicked while scoring".into()))?
            .map_err(|e| Error::Ranker(tract_reason(e)))?;
        self.finish_tract(batch.rows, outputs)
    }

    /// The batch as tract's input tensors, in the graph's input order.
    fn tract_inputs(&self, batch: &RankerBatch) -> Result<TVec<TValue>> {
        let n = batch.rows;
        let d = self.contract.dense.len();
        let dense_slot = usize::from(!self.contract.dense.is_empty());
        self.order
            .iter()
            .map(|&k| -> TractResult<TValue> {
                if dense_slot == 1 && k == 0 {
                    return Ok(Tensor::from_shape(&[n, d], &batch.dense)?.into());
                }
                let bag = &batch.bags[(k - dense_slot) / 2];
                let t = if (k - dense_slot).is_multiple_of(2) {
                    Tensor::from_shape(&[n, bag.len], &bag.ids)?
                } else {
                    Tensor::from_shape(&[n, bag.len], &bag.weights)?
                };
                Ok(t.into())
            })
            .collect::<TractResult<_>>()
            .map_err(|e| Error::Ranker(tract_reason(e)))
    }

    /// Column [`RankerContract::column`] of tract's output for `n` rows.
    fn finish_tract(&self, n: usize, outputs: TVec<TValue>) -> Result<Vec<f32>> {
        let fail = |e: TractError| Error::Ranker(tract_reason(e));
        let out = outputs
            .first()
            .ok_or_else(|| Error::Ranker("the model produced no output".into()))?;
        let view = out.cast_to::<f32>().map_err(fail)?;
        let view = view.try_as_plain_ram().map_err(fail)?;
        let values = view.as_slice::<f32>().map_err(fail)?;
        let shape = view.shape();
        let col = self.contract.column as usize;
        let scores: Vec<f32> = match shape {
            [rows, c] if *rows == n && col < *c => {
                values.iter().skip(col).step_by(*c).copied().collect()
            }
            [rows] if *rows == n && col == 0 => values.to_vec(),
            _ => {
                return Err(Error::Ranker(format!(
                    "output {:?} has shape {shape:?}; expected [{n}, C] with column {col} < C",
                    self.contract.output
                )));
            }
        };
        Ok(scores)
    }

    /// Assembles and scores in one call.
    pub fn score_rows(&self, rows: &[RankerRow]) -> Result<Vec<f32>> {
        self.score(&self.contract.assemble(rows)?)
    }

    /// Scores candidates given as plain values ([`RankerInput`]), in order.
    pub fn score_inputs(&self, inputs: &[RankerInput]) -> Result<Vec<f32>> {
        let vectors: Vec<FeatureVector> = inputs.iter().map(RankerInput::features).collect();
        let rows: Vec<RankerRow<'_>> = vectors
            .iter()
            .zip(inputs)
            .map(|(f, i)| RankerRow {
                features: f,
                history: &i.history,
                search: &i.search,
            })
            .collect();
        self.score_rows(&rows)
    }
}

fn finite(scores: Vec<f32>) -> Result<Vec<f32>> {
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::Ranker(format!(
            "the score of candidate {i} is not finite"
        )));
    }
    Ok(scores)
}

/// The native evaluator for a ranker's graph, when the contract's output is a
/// `TreeEnsembleClassifier`'s probabilities computed from `dense` and the evaluator understands
/// the node; `None` (tract scores) otherwise. Decided by the graph alone, so every build of
/// every platform picks the same engine. `ensembles` are the classifiers [`check_trees`] built.
fn native_trees(
    contract: &RankerContract,
    graph: &onnx::pb::GraphProto,
    ensembles: Vec<(&pb::NodeProto, TreeEnsemble)>,
) -> Option<TreeEnsemble> {
    let d = contract.dense.len();
    let node = trees::classifier_behind(graph, &contract.output)?;
    if d == 0 || node.input[0] != "dense" || !graph.input.iter().any(|i| i.name == "dense") {
        return None;
    }
    let (_, ensemble) = ensembles
        .into_iter()
        .find(|(built, _)| std::ptr::eq(*built, node))?;
    if ensemble.n_features() > d || contract.column as usize >= ensemble.columns() {
        return None;
    }
    Some(ensemble)
}
