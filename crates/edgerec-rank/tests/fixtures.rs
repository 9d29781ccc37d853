//! Golden parity: the committed ranker fixtures (`tests/data/ranker/`, written by
//! `examples/ranker_fixtures.rs` from the trainer's own predictions) scored by the device's
//! runtime — the core's tract ranker loaded from the bundle — within 1e-5. The wasm tests
//! (`tests/js/`) check the same files in node and headless Chromium.

use std::path::PathBuf;

use edgerec::Bundle;
use edgerec::features::{FeatureVector, SparseFeatures};
use edgerec::ranker::RankerRow;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ranker")
}

fn read_json(name: &str) -> serde_json::Value {
    let path = fixtures().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn device_scores_equal_the_trainer_scores() {
    let inputs: Vec<FeatureVector> = read_json("inputs.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|i| FeatureVector {
            dense: floats(&i["dense"]),
            sparse: SparseFeatures::default(),
        })
        .collect();
    let rows: Vec<RankerRow<'_>> = inputs
        .iter()
        .map(|f| RankerRow {
            features: f,
            history: &[],
            search: &[],
        })
        .collect();
    let expected = read_json("expected.json");
    let expected = expected.as_object().unwrap();
    assert!(expected.len() >= 2, "fixtures for every ranker kind");
    for (name, want) in expected {
        let bytes = std::fs::read(fixtures().join(format!("{name}.edgerec"))).unwrap();
        let bundle = Bundle::from_bytes(&bytes).unwrap();
        let ranker = bundle
            .ranker()
            .expect("the fixture bundle carries a ranker");
        let got = ranker.score_rows(&rows).unwrap();
        let want = floats(want);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5,
                "{name} row {i}: device {g} vs trainer {w}"
            );
        }
        // The scores are not all alike: the fixture exercises the model.
        let spread = want.iter().cloned().fold(f32::MIN, f32::max)
            - want.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 0.1, "{name}: scores barely vary ({spread})");
    }
}
