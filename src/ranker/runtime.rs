//! Running a ranker with tract: load an ONNX model against its [`RankerContract`], score
//! batches of candidates.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{RankerBatch, RankerContract, RankerRow, contract_err};
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
/// Cost: loading is dominated by tract's optimisation (milliseconds for the project's
/// rankers); [`Ranker::score`] is one tract run over the whole batch.
#[derive(Debug, Clone)]
pub struct Ranker {
    plan: Arc<TypedRunnableModel>,
    contract: RankerContract,
    /// `order[k]`: index into [`RankerContract::inputs`] of tract's k-th input.
    order: Vec<usize>,
}

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

impl Ranker {
    /// Loads and checks a ranker. Errors (never panics) on any bytes that are not a model
    /// matching `contract`.
    pub fn load(contract: &RankerContract, bytes: &[u8]) -> Result<Ranker, BundleError> {
        contract.validate()?;
        let model = onnx::decode(bytes).map_err(|e| contract_err(e.to_string()))?;
        onnx::check_model(&model).map_err(|e| contract_err(e.to_string()))?;
        if let Some(kind) = onnx::metadata(&model, "edgerec.ranker")
            && kind != contract.kind
        {
            return Err(contract_err(format!(
                "the model says it is {kind:?}, the contract {:?}",
                contract.kind
            )));
        }
        if let Some(dense) = onnx::metadata(&model, "edgerec.dense")
            && !contract.dense.is_empty()
            && dense != contract.dense.join(",")
        {
            return Err(contract_err(
                "the model's edgerec.dense metadata lists other features than the contract",
            ));
        }
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| contract_err("the model has no graph"))?;
        let expected = contract.inputs();
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
            let want = if *is_ids {
                ElemType::I64
            } else {
                ElemType::F32
            };
            let (elem, dims) = declared(i).ok_or_else(|| {
                contract_err(format!("input {name:?} declares no tensor type and shape"))
            })?;
            if elem != want.data_type() {
                return Err(contract_err(format!(
                    "input {name:?} has element type {elem}, the contract gives {want:?}"
                )));
            }
            if dims.len() != 2 || dims[1] != Some(*width as i64) {
                return Err(contract_err(format!(
                    "input {name:?} has shape {dims:?}, the contract gives [batch, {width}]"
                )));
            }
            if matches!(dims[0], Some(n) if n != -1) {
                return Err(contract_err(format!(
                    "input {name:?} has a fixed batch size; the first dimension must be symbolic"
                )));
            }
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
        if !graph.output.iter().any(|o| o.name == contract.output) {
            return Err(contract_err(format!(
                "the model has no output {:?} (outputs: {:?})",
                contract.output,
                graph.output.iter().map(|o| &o.name).collect::<Vec<_>>()
            )));
        }
        // tract is known to panic on some malformed graphs: contain it where unwinding exists.
        let plan = catch_unwind(AssertUnwindSafe(|| -> TractResult<_> {
            let mut m = tract_onnx::onnx().model_for_proto_model(&model)?;
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
            m.select_outputs_by_name([contract.output.as_str()])?;
            m.into_optimized()?.into_runnable()
        }))
        .map_err(|_| contract_err("tract panicked while loading the model"))?
        .map_err(|e| contract_err(format!("tract cannot load the model: {}", tract_reason(e))))?;
        let ranker = Ranker {
            plan,
            contract: contract.clone(),
            order,
        };
        // Probe: one all-zero candidate must give one finite score.
        let probe = FeatureVector {
            dense: vec![0.0; contract.dense.len()],
            sparse: SparseFeatures::default(),
        };
        let batch = contract
            .assemble(&[RankerRow {
                features: &probe,
                history: &[],
                search: &[],
            }])
            .map_err(|e| contract_err(e.to_string()))?;
        ranker
            .score(&batch)
            .map_err(|e| contract_err(format!("probe run: {e}")))?;
        Ok(ranker)
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
        let fail = |e: TractError| Error::Ranker(tract_reason(e));
        let dense_slot = usize::from(!self.contract.dense.is_empty());
        let inputs: TVec<TValue> = self
            .order
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
            .map_err(fail)?;
        let outputs = self.plan.run(inputs).map_err(fail)?;
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
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(Error::Ranker(format!(
                "the score of candidate {i} is not finite"
            )));
        }
        Ok(scores)
    }

    /// Assembles and scores in one call.
    pub fn score_rows(&self, rows: &[RankerRow]) -> Result<Vec<f32>> {
        self.score(&self.contract.assemble(rows)?)
    }
}
