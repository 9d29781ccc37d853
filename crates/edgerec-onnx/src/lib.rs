//! Writing (and checking) ONNX models from Rust, without Python.
//!
//! The device runs models with [tract](https://github.com/sonos/tract); the trainer writes them
//! with the protobuf types tract itself decodes ([`edgerec::onnx::pb`], re-exported here
//! as [`pb`]) and [`prost`] to encode. This crate is the small toolkit for that: typed
//! initialisers stored as `raw_data`, nodes and attributes, graph inputs and outputs with
//! symbolic dimensions, a [`GraphBuilder`] that refuses dangling names, and [`check_model`],
//! the structural check to run on untrusted bytes *before* tract sees them (defined in the core
//! crate, [`edgerec::onnx`], which runs it on the device).
//!
//! It knows nothing about any one model: the two-tower user-tower exporter (`edgerec-twotower`)
//! and the ranker exporter (`edgerec-rank`) are its clients.
//!
//! # Example: a one-layer scorer
//!
//! ```
//! use edgerec_onnx::{self as onnx, Dim, ElemType, GraphBuilder};
//!
//! # fn main() -> Result<(), onnx::OnnxError> {
//! let mut g = GraphBuilder::new("scorer");
//! g.input("x", ElemType::F32, &[Dim::symbolic("batch"), Dim::Fixed(2)])?;
//! g.initializer_f32("w", &[2, 1], &[0.5, -1.0])?;
//! g.initializer_f32("b", &[1], &[0.25])?;
//! g.node("Gemm", &["x", "w", "b"], &["score"], vec![])?;
//! g.output("score", ElemType::F32, &[Dim::symbolic("batch"), Dim::Fixed(1)])?;
//! let model = onnx::model(g.finish()?, "example", &[("purpose", "doc test")]);
//! onnx::check_model(&model)?;
//! let bytes = onnx::encode(&model);
//! assert_eq!(onnx::decode(&bytes)?, model);
//! # Ok(())
//! # }
//! ```
//!
//! # Conventions
//!
//! * Opset [`OPSET`] (13) of the default domain and IR version [`IR_VERSION`] (8). At opset 13
//!   `ReduceSum` and `Unsqueeze` take their axes as a second *input* (an `int64` initialiser),
//!   while the other reducers (`ReduceMean`, `ReduceSumSquare`, …) still take an `axes`
//!   *attribute* until opset 18. tract follows that split exactly; prefer `Mul` + `ReduceSum`
//!   over the other reducers to avoid the trap.
//! * Every initialiser stores its bytes in `raw_data` (little-endian), never in external files.
//! * Names are unique across inputs, initialisers and node outputs; [`GraphBuilder`] enforces it.

#![warn(missing_docs)]

// The writer and the checks live in the core crate (`edgerec::onnx`), so the device, the core's
// test fixtures and every exporter agree on what a valid model is; this crate re-exports them.
pub use edgerec::onnx::build::*;
pub use edgerec::onnx::{
    ElemType, MAX_INITIALIZER_ELEMENTS, ML_DOMAIN, OnnxError, check_model, decode,
    initializer_dims, metadata, pb,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_is_little_endian_and_length_checked() {
        let t = tensor_f32("w", &[2], &[1.0, -2.0]).unwrap();
        assert_eq!(
            t.raw_data,
            [1.0f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
        assert_eq!(t.dims, vec![2]);
        assert!(matches!(
            tensor_f32("w", &[3], &[1.0]),
            Err(OnnxError::ShapeMismatch {
                expected: 3,
                actual: 1,
                ..
            })
        ));
        let t = tensor_i64("axes", &[1], &[-1]).unwrap();
        assert_eq!(t.raw_data, (-1i64).to_le_bytes());
    }

    #[test]
    fn builder_rejects_dangling_and_duplicate_names() {
        let mut g = GraphBuilder::new("g");
        g.input("x", ElemType::F32, &[Dim::symbolic("n")]).unwrap();
        assert!(matches!(
            g.node("Relu", &["nope"], &["y"], vec![]),
            Err(OnnxError::UndefinedName(_))
        ));
        g.node("Relu", &["x"], &["y"], vec![]).unwrap();
        assert!(matches!(
            g.node("Relu", &["x"], &["y"], vec![]),
            Err(OnnxError::DuplicateName(_))
        ));
        assert!(matches!(
            g.output("z", ElemType::F32, &[Dim::symbolic("n")]),
            Err(OnnxError::UndefinedName(_))
        ));
        assert!(GraphBuilder::new("empty").finish().is_err());
    }

    #[test]
    fn check_model_rejects_bad_tensors_and_order() {
        let mut g = GraphBuilder::new("g");
        g.input("x", ElemType::F32, &[Dim::symbolic("n"), Dim::Fixed(2)])
            .unwrap();
        g.initializer_f32("w", &[2, 1], &[1.0, 2.0]).unwrap();
        g.node("MatMul", &["x", "w"], &["y"], vec![]).unwrap();
        g.output("y", ElemType::F32, &[Dim::symbolic("n"), Dim::Fixed(1)])
            .unwrap();
        let good = model(g.finish().unwrap(), "test", &[("k", "v")]);
        check_model(&good).unwrap();
        assert_eq!(metadata(&good, "k"), Some("v"));
        assert_eq!(initializer_dims(&good, "w"), Some(vec![2, 1]));

        let mut short = good.clone();
        short.graph.as_mut().unwrap().initializer[0]
            .raw_data
            .truncate(4);
        assert!(matches!(
            check_model(&short),
            Err(OnnxError::ShapeMismatch { .. })
        ));

        let mut external = good.clone();
        external.graph.as_mut().unwrap().initializer[0].data_location =
            Some(pb::tensor_proto::DataLocation::External as i32);
        assert!(check_model(&external).is_err());

        let mut huge = good.clone();
        huge.graph.as_mut().unwrap().initializer[0].dims = vec![1 << 40, 1 << 40];
        assert!(check_model(&huge).is_err());

        let mut reordered = good.clone();
        let graph = reordered.graph.as_mut().unwrap();
        graph.node.push(node("Relu", "r", &["z"], &["out"], vec![]));
        assert!(matches!(
            check_model(&reordered),
            Err(OnnxError::UndefinedName(_))
        ));

        assert!(decode(b"\xff\xff\xff garbage").is_err());
    }
}
