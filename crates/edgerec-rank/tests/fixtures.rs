//! Golden parity: the committed ranker fixtures (`tests/data/ranker/`, written by
//! `examples/ranker_fixtures.rs` from the trainer's own predictions) scored by the device's
//! runtime — the core's tract ranker loaded from the bundle — within 1e-5. The wasm tests
//! (`tests/js/`) check the same files in node and headless Chromium.

use std::path::PathBuf;

use edgerec::Model;
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

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
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
    let json = read_json("inputs.json");
    let json = json.as_array().unwrap();
    let inputs: Vec<FeatureVector> = json
        .iter()
        .map(|i| FeatureVector {
            dense: floats(&i["dense"]),
            sparse: SparseFeatures {
                movie: i["movie"].as_u64().unwrap() as u32,
                genres: ids(&i["genres"]),
                actors: ids(&i["actors"]),
                directors: ids(&i["directors"]),
                tags: ids(&i["tags"]),
                language: i["language"].as_u64().unwrap() as u32,
                ..SparseFeatures::default()
            },
        })
        .collect();
    let sequences: Vec<(Vec<u32>, Vec<u32>)> = json
        .iter()
        .map(|i| (ids(&i["history"]), ids(&i["search"])))
        .collect();
    let rows: Vec<RankerRow<'_>> = inputs
        .iter()
        .zip(&sequences)
        .map(|(f, (history, search))| RankerRow {
            features: f,
            history,
            search,
        })
        .collect();
    let expected = read_json("expected.json");
    let expected = expected.as_object().unwrap();
    let mut names: Vec<&str> = expected.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["deep", "gbdt", "logistic"],
        "a fixture per ranker kind"
    );
    for (name, want) in expected {
        let bytes = std::fs::read(fixtures().join(format!("{name}.edgerec"))).unwrap();
        let bundle = Model::from_bytes(&bytes).unwrap();
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
