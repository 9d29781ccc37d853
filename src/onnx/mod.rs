//! Checking ONNX models from untrusted bytes before tract sees them.
//!
//! Models reach the device inside a bundle (the ranker, the two-tower user tower). Their
//! section's length and sha256 are verified first; then [`check_model`] checks the protobuf
//! structure, because tract is known to panic or allocate without bound on malformed graphs
//! (tensors whose data does not match their shape, external data, huge declared dims). The
//! trainer's ONNX writer (`edgerec-onnx`) re-exports these items, so the writer and the device
//! agree on what a valid model is.
//!
//! ```
//! use edgerec::onnx;
//! assert!(onnx::decode(b"not protobuf \xff\xff").is_err());
//! ```

pub mod build;

use std::collections::HashSet;

use prost::Message;
pub use tract_onnx::pb;

use pb::tensor_proto::DataType;

/// The ONNX-ML operator domain (`TreeEnsembleClassifier`, `LinearClassifier`, …).
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// Largest number of elements [`check_model`] accepts in one initialiser (2^28, 1 GiB of f32):
/// a bound so that a few bytes of header cannot ask for a huge allocation.
pub const MAX_INITIALIZER_ELEMENTS: u64 = 1 << 28;

/// Most dimensions a tensor may have in a model the device runs (ranks from `Unsqueeze` axes and
/// `Reshape` shapes are checked against it).
pub const MAX_RANK: usize = 8;

/// What a model is for on the device: each role has its own operator allowlist
/// ([`check_operators`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A ranker (`RANK`): the project's rankers, or one brought from scikit-learn or PyTorch.
    Ranker,
    /// The two-tower user tower (`TWRT`).
    UserTower,
}

/// Default-domain operators every role may use: elementwise arithmetic, comparisons and
/// activations, `MatMul`/`Gemm`, gathers, reductions, normalisations and reshapes — each one's
/// output is no larger than a fixed multiple of its inputs, and none takes a shape from data.
/// Not on it: operators that make tensors from values (`ConstantOfShape`, `Expand`, `Tile`,
/// `Range`, `Resize`, `Pad`, `OneHot`), data-dependent shapes (`NonZero`, `TopK`, `Shape`,
/// `Compress`), control flow (`If`, `Loop`, `Scan`), recurrent, convolutional, random and
/// quantised operators.
pub const DEFAULT_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Flatten",
    "Floor",
    "Gather",
    "Gelu",
    "Gemm",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "Identity",
    "IsInf",
    "IsNaN",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "MatMul",
    "Max",
    "Mean",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pow",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Round",
    "Selu",
    "Sigmoid",
    "Sign",
    "Slice",
    "Softmax",
    "Softplus",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// [`ML_DOMAIN`] operators a ranker may use: what `edgerec-rank` writes and scikit-learn's
/// linear models and forests export as. Tree ensembles get their own checks
/// (`ranker::runtime`); the user tower uses none.
pub const RANKER_ML_OPS: &[&str] = &[
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "TreeEnsembleClassifier",
];

/// Checks every node's operator against `role`'s allowlist ([`DEFAULT_OPS`], and
/// [`RANKER_ML_OPS`] for a ranker) and the values the allowed operators read as shapes:
/// `Reshape`'s shape must be an initialiser of at most [`MAX_RANK`] values, each −1 or more,
/// and `Unsqueeze` may add at most [`MAX_RANK`] axes. Run after [`check_model`], before tract
/// sees the model: tract then only ever loads graphs whose cost is bounded by their inputs.
pub fn check_operators(model: &pb::ModelProto, role: Role) -> Result<(), OnnxError> {
    let Some(graph) = model.graph.as_ref() else {
        return Err(OnnxError::Invalid("no graph".into()));
    };
    let initializer = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    for n in &graph.node {
        let allowed = if n.domain.is_empty() || n.domain == "ai.onnx" {
            DEFAULT_OPS.contains(&n.op_type.as_str())
        } else {
            role == Role::Ranker
                && n.domain == ML_DOMAIN
                && RANKER_ML_OPS.contains(&n.op_type.as_str())
        };
        if !allowed {
            let domain = if n.domain.is_empty() {
                "ai.onnx"
            } else {
                &n.domain
            };
            return Err(OnnxError::Invalid(format!(
                "node {:?}: operator {domain}.{} is not allowed in a {role:?} model",
                n.name, n.op_type
            )));
        }
        match n.op_type.as_str() {
            "Reshape" => {
                let shape = n
                    .input
                    .get(1)
                    .and_then(|name| initializer(name))
                    .ok_or_else(|| {
                        OnnxError::Invalid(format!(
                            "node {:?}: Reshape's shape must be an initialiser",
                            n.name
                        ))
                    })?;
                if !shape_values(shape).is_some_and(|v| v.iter().all(|&d| d >= -1)) {
                    return Err(OnnxError::Invalid(format!(
                        "node {:?}: Reshape's shape must be at most {MAX_RANK} INT64 values, \
                         each -1 or more",
                        n.name
                    )));
                }
            }
            "Unsqueeze" => {
                let axes = match n.input.get(1).filter(|s| !s.is_empty()) {
                    Some(name) => initializer(name)
                        .and_then(shape_values)
                        .map(|v| v.len())
                        .ok_or_else(|| {
                            OnnxError::Invalid(format!(
                                "node {:?}: Unsqueeze's axes must be an initialiser of at \
                                 most {MAX_RANK} INT64 values",
                                n.name
                            ))
                        })?,
                    None => n
                        .attribute
                        .iter()
                        .find(|a| a.name == "axes")
                        .map_or(0, |a| a.ints.len()),
                };
                if axes > MAX_RANK {
                    return Err(OnnxError::Invalid(format!(
                        "node {:?}: Unsqueeze adds {axes} axes, at most {MAX_RANK}",
                        n.name
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// An `INT64` initialiser's values when it has at most [`MAX_RANK`] of them (from `raw_data`
/// or `int64_data`; [`check_model`] has checked that they match the shape); `None` otherwise.
fn shape_values(t: &pb::TensorProto) -> Option<Vec<i64>> {
    if t.data_type != DataType::Int64 as i32 {
        return None;
    }
    let values: Vec<i64> = if t.raw_data.is_empty() {
        (t.int64_data.len() <= MAX_RANK).then(|| t.int64_data.clone())?
    } else {
        (t.raw_data.len() <= 8 * MAX_RANK).then(|| {
            t.raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()
        })?
    };
    Some(values)
}

/// Errors from building, decoding or checking an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A tensor's data does not match its shape.
    #[error("tensor {name:?}: shape {dims:?} needs {expected} values, got {actual}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Declared shape.
        dims: Vec<i64>,
        /// Number of values the shape needs.
        expected: u64,
        /// Number of values present.
        actual: u64,
    },
    /// A name is defined twice in one graph.
    #[error("name {0:?} is defined twice in the graph")]
    DuplicateName(String),
    /// A node or graph output refers to a name nothing defines (before it).
    #[error("{0:?} is used before it is defined (or never defined)")]
    UndefinedName(String),
    /// Anything else that makes the model unusable, with the reason.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
}

/// Element types the helpers write. (ONNX has many more; these are what the models here use.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    /// 32-bit IEEE float (`FLOAT`).
    F32,
    /// 64-bit signed integer (`INT64`), the type of ONNX indices and axes.
    I64,
}

impl ElemType {
    /// The `TensorProto.DataType` code.
    pub fn data_type(self) -> i32 {
        match self {
            ElemType::F32 => DataType::Float as i32,
            ElemType::I64 => DataType::Int64 as i32,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 => 4,
            ElemType::I64 => 8,
        }
    }

    /// The element type of a `TensorProto.DataType` code, when it is one of these.
    pub fn from_data_type(code: i32) -> Option<ElemType> {
        if code == DataType::Float as i32 {
            Some(ElemType::F32)
        } else if code == DataType::Int64 as i32 {
            Some(ElemType::I64)
        } else {
            None
        }
    }
}

/// Decodes protobuf bytes into a `ModelProto` (no semantic check: see [`check_model`]).
pub fn decode(bytes: &[u8]) -> Result<pb::ModelProto, OnnxError> {
    Ok(pb::ModelProto::decode(bytes)?)
}

/// The value of metadata entry `key`, if present.
pub fn metadata<'a>(model: &'a pb::ModelProto, key: &str) -> Option<&'a str> {
    model
        .metadata_props
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// The shape of an initialiser, as `usize`s.
pub fn initializer_dims(model: &pb::ModelProto, name: &str) -> Option<Vec<usize>> {
    let graph = model.graph.as_ref()?;
    let t = graph.initializer.iter().find(|t| t.name == name)?;
    t.dims.iter().map(|&d| usize::try_from(d).ok()).collect()
}

/// Structural checks for a model about to be handed to tract, which is known to panic or
/// allocate without bound on malformed graphs. Accepts exactly what this crate writes:
///
/// * a graph with at least one output, opset import of the default domain present;
/// * no subgraph or sparse-tensor attributes (tensor attributes are checked as initialisers
///   are), no sparse initialisers, no functions; nodes in the default domain,
///   or in [`ML_DOMAIN`] when the model imports it;
/// * initialisers of type `FLOAT` (every value finite) or `INT64`, non-negative dims with at most
///   [`MAX_INITIALIZER_ELEMENTS`] elements, data inline (no external data) and exactly as long
///   as the shape says (in `raw_data` or the typed field);
/// * every name defined once, every node input defined before use (topological order), every
///   graph output defined.
///
/// It does not check operator semantics or types; tract's own loading does.
pub fn check_model(model: &pb::ModelProto) -> Result<(), OnnxError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Invalid("no graph".into()))?;
    if !model
        .opset_import
        .iter()
        .any(|o| o.domain.is_empty() || o.domain == "ai.onnx")
    {
        return Err(OnnxError::Invalid("no default-domain opset import".into()));
    }
    if !model.functions.is_empty() || !model.training_info.is_empty() {
        return Err(OnnxError::Invalid(
            "functions and training info are not supported".into(),
        ));
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(OnnxError::Invalid(
            "sparse initialisers are not supported".into(),
        ));
    }
    if graph.output.is_empty() {
        return Err(OnnxError::Invalid("graph has no output".into()));
    }
    let mut defined: HashSet<&str> = HashSet::new();
    for t in &graph.initializer {
        check_tensor(t)?;
        define(&t.name, &mut defined)?;
    }
    for i in &graph.input {
        // Older exporters list initialisers among the inputs too; that is allowed.
        if !defined.contains(i.name.as_str()) {
            define(&i.name, &mut defined)?;
        }
    }
    let imports_ml = model.opset_import.iter().any(|o| o.domain == ML_DOMAIN);
    for n in &graph.node {
        let ml = imports_ml && n.domain == ML_DOMAIN;
        if !(n.domain.is_empty() || n.domain == "ai.onnx" || ml) {
            return Err(OnnxError::Invalid(format!(
                "node {:?}: domain {:?} is not supported",
                n.name, n.domain
            )));
        }
        for a in &n.attribute {
            if a.g.is_some() || !a.graphs.is_empty() {
                return Err(OnnxError::Invalid(format!(
                    "node {:?}: subgraph attributes are not supported",
                    n.name
                )));
            }
            if a.sparse_tensor.is_some() || !a.sparse_tensors.is_empty() {
                return Err(OnnxError::Invalid(format!(
                    "node {:?}: sparse tensor attributes are not supported",
                    n.name
                )));
            }
            for t in a.t.iter().chain(&a.tensors) {
                check_tensor(t)?;
            }
        }
        for input in &n.input {
            // An empty name marks an omitted optional input.
            if !input.is_empty() && !defined.contains(input.as_str()) {
                return Err(OnnxError::UndefinedName(input.clone()));
            }
        }
        for output in &n.output {
            define(output, &mut defined)?;
        }
    }
    for o in &graph.output {
        if !defined.contains(o.name.as_str()) {
            return Err(OnnxError::UndefinedName(o.name.clone()));
        }
    }
    Ok(())
}

fn define<'a>(name: &'a str, defined: &mut HashSet<&'a str>) -> Result<(), OnnxError> {
    if name.is_empty() {
        return Err(OnnxError::Invalid("empty value name".into()));
    }
    if !defined.insert(name) {
        return Err(OnnxError::DuplicateName(name.to_string()));
    }
    Ok(())
}

fn check_tensor(t: &pb::TensorProto) -> Result<(), OnnxError> {
    let external = pb::tensor_proto::DataLocation::External as i32;
    if t.data_location == Some(external) || !t.external_data.is_empty() {
        return Err(OnnxError::Invalid(format!(
            "tensor {:?} points to external data",
            t.name
        )));
    }
    if t.segment.is_some() {
        return Err(OnnxError::Invalid(format!(
            "tensor {:?} is segmented",
            t.name
        )));
    }
    let elem = ElemType::from_data_type(t.data_type).ok_or_else(|| {
        OnnxError::Invalid(format!(
            "tensor {:?}: data type {} is not FLOAT or INT64",
            t.name, t.data_type
        ))
    })?;
    let mut expected = 1u64;
    for &d in &t.dims {
        let d = u64::try_from(d)
            .map_err(|_| OnnxError::Invalid(format!("tensor {:?}: negative dim {d}", t.name)))?;
        expected = expected.saturating_mul(d);
    }
    if expected > MAX_INITIALIZER_ELEMENTS {
        return Err(OnnxError::Invalid(format!(
            "tensor {:?}: {expected} elements is more than the limit {MAX_INITIALIZER_ELEMENTS}",
            t.name
        )));
    }
    let other_fields = !t.float_data.is_empty()
        || !t.int32_data.is_empty()
        || !t.string_data.is_empty()
        || !t.int64_data.is_empty()
        || !t.double_data.is_empty()
        || !t.uint64_data.is_empty();
    let actual = if !t.raw_data.is_empty() {
        if other_fields {
            return Err(OnnxError::Invalid(format!(
                "tensor {:?} has both raw_data and typed data",
                t.name
            )));
        }
        if !t.raw_data.len().is_multiple_of(elem.size()) {
            return Err(OnnxError::Invalid(format!(
                "tensor {:?}: raw_data length {} is not a multiple of {}",
                t.name,
                t.raw_data.len(),
                elem.size()
            )));
        }
        (t.raw_data.len() / elem.size()) as u64
    } else {
        let (typed, others) = match elem {
            ElemType::F32 => (t.float_data.len(), other_fields && t.float_data.is_empty()),
            ElemType::I64 => (t.int64_data.len(), other_fields && t.int64_data.is_empty()),
        };
        if others {
            return Err(OnnxError::Invalid(format!(
                "tensor {:?}: data stored in the wrong field for its type",
                t.name
            )));
        }
        typed as u64
    };
    if elem == ElemType::F32 {
        let raw = t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if let Some(v) = raw
            .chain(t.float_data.iter().copied())
            .find(|v| !v.is_finite())
        {
            // NaN and infinities behave differently in tract's native and wasm kernels (x86
            // `max` drops a NaN, wasm's propagates it): the same bytes must get the same answer.
            return Err(OnnxError::Invalid(format!(
                "tensor {:?} holds {v}: every value must be finite",
                t.name
            )));
        }
    }
    if actual != expected {
        return Err(OnnxError::ShapeMismatch {
            name: t.name.clone(),
            dims: t.dims.clone(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// Runs `model` — tract's inference model of a checked graph, inputs typed — unoptimised on
/// `inputs`, keeping every value every node computes, and refuses (naming the node) the first
/// output that holds a non-finite float. The load probes of the ranker and the user tower call it so that
/// native and wasm builds refuse the same models: IEEE arithmetic gives the same infinities on
/// both, but once a NaN exists tract's native `max` kernels (`Relu`, `Max`) drop it and its wasm
/// kernels propagate it, so a check on the final output alone would see different values.
/// Errors (never panics where unwinding exists) if tract cannot type or run the graph.
pub(crate) fn check_finite(
    model: tract_onnx::prelude::InferenceModel,
    inputs: tract_onnx::prelude::TVec<tract_onnx::prelude::TValue>,
) -> Result<(), String> {
    use tract_onnx::prelude::*;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> TractResult<Option<String>> {
            let mut typed = model.into_typed()?;
            let outlets: Vec<OutletId> = typed
                .nodes()
                .iter()
                .flat_map(|n| (0..n.outputs.len()).map(move |i| OutletId::new(n.id, i)))
                .collect();
            typed.select_output_outlets(&outlets)?;
            let names: Vec<String> = outlets
                .iter()
                .map(|o| typed.node(o.node).name.clone())
                .collect();
            let values = typed.into_runnable()?.run(inputs)?;
            for (value, name) in values.iter().zip(names) {
                if !value.datum_type().is_float() {
                    continue;
                }
                let value = value.cast_to::<f32>()?;
                let value = value.try_as_plain_ram()?;
                if value.as_slice::<f32>()?.iter().any(|v| !v.is_finite()) {
                    return Ok(Some(name));
                }
            }
            Ok(None)
        },
    ))
    .map_err(|_| "tract panicked while probing the model".to_string())?
    .map_err(|e| format!("{e:#}"))?
    .map_or(Ok(()), |node| {
        Err(format!("node {node:?} computes a value that is not finite"))
    })
}

#[cfg(test)]
mod tests {
    use super::build::{self as b, Dim, GraphBuilder};
    use super::*;

    /// `x [batch, 4] -> op -> y`, with `extra` initialisers, checked for `role`.
    fn one_node(
        domain: &str,
        op: &str,
        inputs: &[&str],
        extra: &[pb::TensorProto],
        attributes: Vec<pb::AttributeProto>,
    ) -> pb::ModelProto {
        let mut g = GraphBuilder::new("t");
        g.input("x", ElemType::F32, &[Dim::symbolic("batch"), Dim::Fixed(4)])
            .unwrap();
        for t in extra {
            g.initializer(t.clone()).unwrap();
        }
        g.node_in_domain(domain, op, inputs, &["y"], attributes)
            .unwrap();
        g.output("y", ElemType::F32, &[Dim::symbolic("batch"), Dim::Fixed(4)])
            .unwrap();
        b::model_with_opsets(g.finish().unwrap(), "t", &[], &[(ML_DOMAIN, b::ML_OPSET)])
    }

    fn refused(model: &pb::ModelProto, role: Role, want: &str) {
        let e = check_model(model)
            .and_then(|()| check_operators(model, role))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }

    #[test]
    fn operators_outside_a_roles_allowlist_are_refused() {
        let relu = one_node("", "Relu", &["x"], &[], vec![]);
        for role in [Role::Ranker, Role::UserTower] {
            check_operators(&relu, role).unwrap();
        }
        // Operators that make tensors from values, or take shapes from data.
        let shape = b::tensor_i64("s", &[2], &[1 << 40, 1 << 40]).unwrap();
        for op in [
            "ConstantOfShape",
            "Expand",
            "Tile",
            "Range",
            "NonZero",
            "Loop",
            "Shape",
            // The Fourier transforms: tract computes them with rustfft, which the workspace
            // replaces with a plain DFT (crates/rustfft-scalar) on the grounds that no model
            // reaching tract uses them.
            "DFT",
            "STFT",
        ] {
            let m = one_node("", op, &["x"], std::slice::from_ref(&shape), vec![]);
            refused(&m, Role::Ranker, "is not allowed in a Ranker model");
        }
        // ONNX-ML operators: rankers only, and only the listed ones.
        let linear = one_node(ML_DOMAIN, "LinearClassifier", &["x"], &[], vec![]);
        check_operators(&linear, Role::Ranker).unwrap();
        refused(
            &linear,
            Role::UserTower,
            "ai.onnx.ml.LinearClassifier is not allowed",
        );
        let mapper = one_node(ML_DOMAIN, "CategoryMapper", &["x"], &[], vec![]);
        refused(&mapper, Role::Ranker, "CategoryMapper");
    }

    #[test]
    fn values_used_as_shapes_are_bounded() {
        let reshape = |shape: &[i64]| {
            let t = b::tensor_i64("s", &[shape.len()], shape).unwrap();
            one_node("", "Reshape", &["x", "s"], &[t], vec![])
        };
        check_operators(&reshape(&[-1, 2, 2]), Role::Ranker).unwrap();
        refused(&reshape(&[-2, 8]), Role::Ranker, "Reshape's shape");
        refused(
            &reshape(&[1; MAX_RANK + 1]),
            Role::Ranker,
            "Reshape's shape",
        );
        // A shape computed in the graph is refused: only an initialiser's values are known.
        let mut g = GraphBuilder::new("t");
        g.input("x", ElemType::F32, &[Dim::symbolic("batch"), Dim::Fixed(4)])
            .unwrap();
        g.input("s", ElemType::I64, &[Dim::Fixed(2)]).unwrap();
        g.node("Reshape", &["x", "s"], &["y"], vec![]).unwrap();
        g.output("y", ElemType::F32, &[Dim::symbolic("batch"), Dim::Fixed(4)])
            .unwrap();
        refused(
            &b::model(g.finish().unwrap(), "t", &[]),
            Role::UserTower,
            "initialiser",
        );

        let axes = b::tensor_i64("a", &[MAX_RANK + 1], &[0; MAX_RANK + 1]).unwrap();
        let m = one_node("", "Unsqueeze", &["x", "a"], &[axes], vec![]);
        refused(&m, Role::Ranker, "Unsqueeze");
        let m = one_node(
            "",
            "Unsqueeze",
            &["x"],
            &[],
            vec![b::attr_ints("axes", &[0; 9])],
        );
        refused(&m, Role::Ranker, "Unsqueeze adds 9 axes");
    }

    #[test]
    fn non_finite_initialisers_are_refused() {
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let w = b::tensor_f32("w", &[2], &[1.0, v]).unwrap();
            let m = one_node("", "Add", &["x", "w"], &[w], vec![]);
            refused(&m, Role::UserTower, "every value must be finite");
        }
    }

    #[test]
    fn tensor_attributes_are_checked_like_initialisers() {
        let mut bad = b::tensor_f32("t", &[2], &[1.0, 2.0]).unwrap();
        bad.dims = vec![3];
        let tensors = pb::AttributeProto {
            name: "value".into(),
            r#type: pb::attribute_proto::AttributeType::Tensors as i32,
            tensors: vec![bad],
            ..Default::default()
        };
        refused(
            &one_node("", "Constant", &[], &[], vec![tensors]),
            Role::Ranker,
            "needs 3 values",
        );
        let sparse = pb::AttributeProto {
            name: "sparse_value".into(),
            r#type: pb::attribute_proto::AttributeType::SparseTensor as i32,
            sparse_tensor: Some(Default::default()),
            ..Default::default()
        };
        refused(
            &one_node("", "Constant", &[], &[], vec![sparse]),
            Role::Ranker,
            "sparse tensor",
        );
    }
}
