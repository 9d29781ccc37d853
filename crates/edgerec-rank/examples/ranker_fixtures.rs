//! Writes the ranker golden fixtures kept in `tests/data/ranker/`: small bundles carrying a
//! trained ranker, fixed inputs, and the scores the trainer itself computes for them. The native
//! test (`crates/edgerec-rank/tests/fixtures.rs`) and the wasm tests (`tests/js/`) load the same
//! bundles and must reproduce these scores within 1e-5 through the device's runtime (tract).
//!
//! ```text
//! cargo run -p edgerec-rank --example ranker_fixtures -- tests/data/ranker
//! ```
//!
//! Output: `logistic.edgerec`, `gbdt.edgerec`, `inputs.json` (an array of `RankerInput`s, as the
//! JS API takes them) and `expected.json` (`{"logistic": [...], "gbdt": [...]}`). Everything is
//! deterministic: rerunning it rewrites identical files.

use std::path::PathBuf;

use edgerec::bundle::tests_support::tiny_contents;
use edgerec::bundle::{BundleContents, FeatureContract, RankerModel};
use edgerec::features::tests_support::tiny;
use edgerec::ranker::RankerContract;
use edgerec_rank::{
    Dataset, FitConfig, GBDT_KIND, GradientBoostedTrees, LogisticRegression, RANKER_KIND,
    TreeConfig,
};

/// A deterministic value in `[0, 1)` for `(row, column)`: a multiplicative hash, no RNG state.
fn unit(row: usize, col: usize) -> f32 {
    let mut x = (row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (col as u64 + 7);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: ranker_fixtures <out dir>")?,
    );
    std::fs::create_dir_all(&out)?;
    let (space, _, _) = tiny();
    let names = space.dense_names().to_vec();
    let d = names.len();

    // Training rows: P(watch) rises with features 0 and 3, falls with feature 5.
    let n = 600;
    let mut dense = Vec::with_capacity(n * d);
    let mut labels = Vec::with_capacity(n);
    for r in 0..n {
        let row: Vec<f32> = (0..d).map(|c| unit(r, c)).collect();
        let z = 3.0 * row[0] + 2.0 * row[3 % d] - 2.5 * row[5 % d] - 1.0;
        let p = 1.0 / (1.0 + (-z).exp());
        labels.push(unit(r, d + 1) < p);
        dense.extend(row);
    }
    let data = Dataset::new(names.clone(), dense.clone(), labels.clone(), vec![1.0; n])?;
    let logistic = LogisticRegression::fit(&data, &FitConfig::default())?;
    let trees = GradientBoostedTrees::fit(
        &data,
        &TreeConfig {
            iterations: 30,
            max_depth: 3,
            ..TreeConfig::default()
        },
    )?;

    // Fixed inputs: fresh rows plus the corners 0 and 1.
    let m = 12;
    let mut inputs: Vec<Vec<f32>> = (0..m - 2)
        .map(|r| (0..d).map(|c| unit(10_000 + r, c)).collect())
        .collect();
    inputs.push(vec![0.0; d]);
    inputs.push(vec![1.0; d]);
    let flat: Vec<f32> = inputs.concat();

    let models: [(&str, &str, Vec<u8>, Vec<f32>, &str, u32); 2] = [
        (
            "logistic",
            RANKER_KIND,
            logistic.to_onnx()?,
            logistic.predict(&flat)?,
            "p_watch",
            0,
        ),
        (
            "gbdt",
            GBDT_KIND,
            trees.to_onnx()?,
            trees.predict(&flat)?,
            "probabilities",
            1,
        ),
    ];
    let mut expected = serde_json::Map::new();
    for (name, kind, onnx, scores, output, column) in models {
        let contents = BundleContents {
            features: Some(FeatureContract::new(space.clone())),
            ranker: Some(RankerModel {
                contract: RankerContract {
                    kind: kind.into(),
                    dense: names.clone(),
                    bags: vec![],
                    search_vocab: vec![],
                    output: output.into(),
                    column,
                },
                onnx,
            }),
            ..tiny_contents()
        };
        contents.check()?;
        std::fs::write(out.join(format!("{name}.edgerec")), contents.encode())?;
        expected.insert(name.into(), serde_json::json!(scores));
    }
    let inputs_json: Vec<serde_json::Value> = inputs
        .iter()
        .map(|row| serde_json::json!({ "dense": row }))
        .collect();
    std::fs::write(
        out.join("inputs.json"),
        serde_json::to_string_pretty(&inputs_json)? + "\n",
    )?;
    std::fs::write(
        out.join("expected.json"),
        serde_json::to_string_pretty(&expected)? + "\n",
    )?;
    println!(
        "wrote {} ({d} dense features, {n} training rows, {m} inputs)",
        out.display()
    );
    Ok(())
}
