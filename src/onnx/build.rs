//! Writing ONNX models from Rust with the protobuf types tract decodes ([`super::pb`]):
//! typed initialisers stored as `raw_data`, nodes and attributes, graph inputs and outputs with
//! symbolic dimensions, and a [`GraphBuilder`] that refuses dangling names. The trainer's
//! exporters use it through the `edgerec-onnx` crate (which re-exports it); it lives in the
//! core so the core's test fixtures can write small models too.
//!
//! Conventions: opset [`OPSET`] (13) of the default domain and IR version [`IR_VERSION`] (8).
//! At opset 13 `ReduceSum` and `Unsqueeze` take their axes as a second *input* (an `int64`
//! initialiser), while the other reducers still take an `axes` attribute until opset 18.
//! Every initialiser stores its bytes in `raw_data` (little-endian), never in external files.

use std::collections::HashSet;

use prost::Message;

use super::pb::tensor_shape_proto::{Dimension, dimension};
use super::{ElemType, OnnxError, pb};

/// The default-domain operator set version written by [`model`].
pub const OPSET: i64 = 13;

/// The `ai.onnx.ml` operator set version to import with [`model_with_opsets`].
pub const ML_OPSET: i64 = 3;

/// The ONNX IR version written by [`model`] (8 is accepted by onnxruntime for opset 13).
pub const IR_VERSION: i64 = 8;

/// One dimension of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbolic size (`dim_param`), e.g. `"batch"`; the same name means the same size.
    Symbolic(String),
}

impl Dim {
    /// Shorthand for `Dim::Symbolic(name.to_string())`.
    pub fn symbolic(name: &str) -> Dim {
        Dim::Symbolic(name.to_string())
    }
}

fn element_count(name: &str, dims: &[usize]) -> Result<u64, OnnxError> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| OnnxError::Invalid(format!("tensor {name:?}: shape {dims:?} overflows")))
}

fn tensor_raw(
    name: &str,
    dims: &[usize],
    elem: ElemType,
    len: usize,
    raw_data: Vec<u8>,
) -> Result<pb::TensorProto, OnnxError> {
    let expected = element_count(name, dims)?;
    if expected != len as u64 {
        return Err(OnnxError::ShapeMismatch {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            expected,
            actual: len as u64,
        });
    }
    Ok(pb::TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: elem.data_type(),
        raw_data,
        ..Default::default()
    })
}

/// A `FLOAT` tensor of shape `dims` holding `data` (row-major) as little-endian `raw_data`.
///
/// Errors if `data.len()` is not the product of `dims`.
pub fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> Result<pb::TensorProto, OnnxError> {
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_raw(name, dims, ElemType::F32, data.len(), raw)
}

/// An `INT64` tensor of shape `dims` holding `data` (row-major) as little-endian `raw_data`.
///
/// Errors if `data.len()` is not the product of `dims`.
pub fn tensor_i64(name: &str, dims: &[usize], data: &[i64]) -> Result<pb::TensorProto, OnnxError> {
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_raw(name, dims, ElemType::I64, data.len(), raw)
}

/// A graph input/output description: tensor of `elem` with the given (possibly symbolic) shape.
pub fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Symbolic(s) => dimension::Value::DimParam(s.clone()),
            }),
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem.data_type(),
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

/// An `INT` attribute.
pub fn attr_int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// An `INTS` attribute.
pub fn attr_ints(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// A `FLOAT` attribute.
pub fn attr_float(name: &str, value: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

/// A `FLOATS` attribute.
pub fn attr_floats(name: &str, values: &[f32]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Floats as i32,
        floats: values.to_vec(),
        ..Default::default()
    }
}

/// A `STRINGS` attribute.
pub fn attr_strings(name: &str, values: &[&str]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Strings as i32,
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// A `STRING` attribute.
pub fn attr_string(name: &str, value: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A default-domain node. `name` is informative (tract uses it in error messages).
pub fn node(
    op_type: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attributes: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: name.to_string(),
        op_type: op_type.to_string(),
        domain: String::new(),
        attribute: attributes,
        doc_string: String::new(),
    }
}

/// Builds a `GraphProto` in topological order, checking names as it goes.
///
/// Every name used as a node input must already be a graph input, an initialiser or an earlier
/// node's output; every defined name must be new; every graph output must be defined. So a
/// finished graph is well-formed by construction (types and shapes are not checked: that is
/// what loading it in tract does).
#[derive(Debug)]
pub struct GraphBuilder {
    graph: pb::GraphProto,
    defined: HashSet<String>,
    node_count: usize,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder {
            graph: pb::GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
            defined: HashSet::new(),
            node_count: 0,
        }
    }

    fn define(&mut self, name: &str) -> Result<(), OnnxError> {
        if name.is_empty() {
            return Err(OnnxError::Invalid("empty value name".into()));
        }
        if !self.defined.insert(name.to_string()) {
            return Err(OnnxError::DuplicateName(name.to_string()));
        }
        Ok(())
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> Result<(), OnnxError> {
        self.define(name)?;
        self.graph.input.push(value_info(name, elem, dims));
        Ok(())
    }

    /// Declares a graph output; `name` must already be defined.
    pub fn output(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> Result<(), OnnxError> {
        if !self.defined.contains(name) {
            return Err(OnnxError::UndefinedName(name.to_string()));
        }
        self.graph.output.push(value_info(name, elem, dims));
        Ok(())
    }

    /// Adds an already built initialiser (e.g. from [`tensor_f32`]).
    pub fn initializer(&mut self, tensor: pb::TensorProto) -> Result<(), OnnxError> {
        self.define(&tensor.name)?;
        self.graph.initializer.push(tensor);
        Ok(())
    }

    /// Adds a `FLOAT` initialiser; see [`tensor_f32`].
    pub fn initializer_f32(
        &mut self,
        name: &str,
        dims: &[usize],
        data: &[f32],
    ) -> Result<(), OnnxError> {
        self.initializer(tensor_f32(name, dims, data)?)
    }

    /// Adds an `INT64` initialiser; see [`tensor_i64`].
    pub fn initializer_i64(
        &mut self,
        name: &str,
        dims: &[usize],
        data: &[i64],
    ) -> Result<(), OnnxError> {
        self.initializer(tensor_i64(name, dims, data)?)
    }

    /// Appends a node `op_type(inputs) -> outputs`. Its name is `"{op_type}_{index}"`.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<pb::AttributeProto>,
    ) -> Result<(), OnnxError> {
        self.node_in_domain("", op_type, inputs, outputs, attributes)
    }

    /// Like [`GraphBuilder::node`], for an operator of `domain` (e.g. [`ML_DOMAIN`](super::ML_DOMAIN); `""` is
    /// the default domain). The model must import that domain: see [`model_with_opsets`].
    pub fn node_in_domain(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<pb::AttributeProto>,
    ) -> Result<(), OnnxError> {
        for input in inputs {
            if !self.defined.contains(*input) {
                return Err(OnnxError::UndefinedName(input.to_string()));
            }
        }
        for output in outputs {
            self.define(output)?;
        }
        let name = format!("{op_type}_{}", self.node_count);
        self.node_count += 1;
        let mut node = node(op_type, &name, inputs, outputs, attributes);
        node.domain = domain.to_string();
        self.graph.node.push(node);
        Ok(())
    }

    /// The finished graph. Errors if it has no output.
    pub fn finish(self) -> Result<pb::GraphProto, OnnxError> {
        if self.graph.output.is_empty() {
            return Err(OnnxError::Invalid("graph has no output".into()));
        }
        Ok(self.graph)
    }
}

/// Wraps a graph in a `ModelProto` (IR [`IR_VERSION`], opset [`OPSET`]) with string metadata
/// (`metadata_props`), which tract exposes as `onnx.metadata_props.<key>` properties.
pub fn model(graph: pb::GraphProto, producer: &str, metadata: &[(&str, &str)]) -> pb::ModelProto {
    model_with_opsets(graph, producer, metadata, &[])
}

/// Like [`model`], importing also the operator sets `extra` (`(domain, version)`, e.g.
/// `(ML_DOMAIN, ML_OPSET)`) next to the default domain's [`OPSET`].
pub fn model_with_opsets(
    graph: pb::GraphProto,
    producer: &str,
    metadata: &[(&str, &str)],
    extra: &[(&str, i64)],
) -> pb::ModelProto {
    let mut opset_import = vec![pb::OperatorSetIdProto {
        domain: String::new(),
        version: OPSET,
    }];
    opset_import.extend(
        extra
            .iter()
            .map(|&(domain, version)| pb::OperatorSetIdProto {
                domain: domain.to_string(),
                version,
            }),
    );
    pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import,
        producer_name: producer.to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

/// The model as protobuf bytes (what an `.onnx` file holds).
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
