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
/// * no subgraph attributes, no sparse initialisers, no functions; nodes in the default domain,
///   or in [`ML_DOMAIN`] when the model imports it;
/// * initialisers of type `FLOAT` or `INT64`, non-negative dims with at most
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
            if let Some(t) = &a.t {
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
