//! Writes the ranker golden fixtures kept in `tests/data/ranker/`: small bundles carrying a
//! trained ranker, fixed inputs, and the scores the trainer itself computes for them. The native
//! test (`crates/edgerec-rank/tests/fixtures.rs`) and the wasm tests (`tests/js/`) load the same
//! bundles and must reproduce these scores within 1e-5 through the device's runtime (tract).
//!
//! ```text
//! cargo run -p edgerec-rank --example ranker_fixtures -- tests/data/ranker
//! ```
//!
//! Output: `logistic.edgerec`, `gbdt.edgerec`, `deep.edgerec` (the embedding-bag network, which
//! also reads the sparse ids, the watch history and the search tokens), `inputs.json` (an array
//! of `RankerInput`s, as the JS API takes them) and `expected.json` (`{"logistic": [...],
//! "gbdt": [...], "deep": [...]}`). Everything is deterministic: rerunning it rewrites identical
//! files.

use std::path::PathBuf;

use edgerec::bundle::{BundleContents, FeatureContract, RankerModel};
use edgerec::features::{FeatureVector, SparseFeatures};
use edgerec::ranker::{RankerContract, RankerRow};
use edgerec::test_support::tiny_contents;
use edgerec::test_support::tiny_features as tiny;
use edgerec_rank::{
    Dataset, DeepConfig, DeepRanker, Examples, FitConfig, GBDT_KIND, GradientBoostedTrees,
    LogisticRegression, RANKER_KIND, SparseColumns, TreeConfig,
};

/// A deterministic value in `[0, 1)` for `(row, column)`: a multiplicative hash, no RNG state.
fn unit(row: usize, col: usize) -> f32 {
    let mut x = (row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (col as u64 + 7);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

/// A deterministic id in `1..=n` for `(row, salt)`.
fn id(row: usize, salt: usize, n: u32) -> u32 {
    1 + (unit(row, 1000 + salt) * n as f32) as u32 % n
}

/// Titles in the fixture's catalog (ids 1..=TITLES); a title's taste cluster is `id % 3`.
const TITLES: u32 = 30;

/// The sparse side of row `r`: the candidate title with its metadata ids, the titles watched
/// (most recent first, mostly from the user's cluster) and the searched tokens.
fn sparse_row(r: usize) -> (SparseFeatures, Vec<u32>, Vec<u32>) {
    let taste = id(r, 0, 3) - 1;
    let movie = id(r, 1, TITLES);
    let features = SparseFeatures {
        movie,
        genres: vec![1 + movie % 3, 4 + movie % 2],
        actors: vec![id(r, 2, 6), id(r, 3, 6)],
        directors: vec![1 + movie % 4],
        tags: (0..id(r, 4, 3)).map(|k| id(r, 5 + k as usize, 5)).collect(),
        language: 1 + movie % 2,
        ..SparseFeatures::default()
    };
    let history = (0..id(r, 9, 5))
        .map(|k| {
            let t = id(r, 10 + k as usize, TITLES / 3);
            if unit(r, 20 + k as usize) < 0.8 {
                3 * (t - 1) + taste + 1
            } else {
                id(r, 30 + k as usize, TITLES)
            }
        })
        .collect();
    let search = if unit(r, 40) < 0.5 {
        vec![1 + taste, id(r, 41, 4)]
    } else {
        Vec::new()
    };
    (features, history, search)
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

    // The deep ranker: P(watch) also rises when the candidate is in the cluster the history
    // (and the searches) point at.
    let n_deep = 2000;
    let mut deep_dense = Vec::with_capacity(n_deep * d);
    let mut deep_labels = Vec::with_capacity(n_deep);
    let mut sparse = SparseColumns::default();
    for r in 0..n_deep {
        let row: Vec<f32> = (0..d).map(|c| unit(20_000 + r, c)).collect();
        let (features, history, search) = sparse_row(r);
        let taste = id(r, 0, 3) - 1;
        let like = f32::from(u8::from(features.movie % 3 == taste));
        let z = 3.0 * like + 1.5 * row[0] - 2.0;
        deep_labels.push(unit(r, d + 2) < 1.0 / (1.0 + (-z).exp()));
        deep_dense.extend(row);
        sparse.time.push(r as i64);
        sparse.features.push(features);
        sparse.history.push(history);
        sparse.search.push(search);
    }
    let examples = Examples {
        data: Dataset::new(names.clone(), deep_dense, deep_labels, vec![1.0; n_deep])?,
        fold_window: vec![-1; n_deep],
        folds: Vec::new(),
        sparse: Some(sparse),
        search_tokens: ["comedy", "space", "heist", "love"]
            .map(String::from)
            .to_vec(),
    };
    let deep = DeepRanker::fit(
        &examples,
        &(0..n_deep).collect::<Vec<_>>(),
        &DeepConfig {
            dim: 8,
            hidden: [16, 8],
            max_epochs: 4,
            batch_size: 128,
            learning_rate: 5e-3,
            ..DeepConfig::default()
        },
    )?;

    // Fixed inputs: fresh rows plus the corners 0 and 1, each with its sparse side; the last
    // has ids the models never saw (they fall back to the unknown row) and no history.
    let m = 12;
    let mut inputs: Vec<Vec<f32>> = (0..m - 2)
        .map(|r| (0..d).map(|c| unit(10_000 + r, c)).collect())
        .collect();
    inputs.push(vec![0.0; d]);
    inputs.push(vec![1.0; d]);
    let flat: Vec<f32> = inputs.concat();
    let mut sides: Vec<(SparseFeatures, Vec<u32>, Vec<u32>)> =
        (0..m).map(|r| sparse_row(10_000 + r)).collect();
    sides[m - 1] = (
        SparseFeatures {
            movie: 999,
            genres: vec![77],
            actors: vec![1, 500],
            language: 9,
            ..SparseFeatures::default()
        },
        Vec::new(),
        vec![60],
    );
    let vectors: Vec<FeatureVector> = inputs
        .iter()
        .zip(&sides)
        .map(|(dense, (sparse, _, _))| FeatureVector {
            dense: dense.clone(),
            sparse: sparse.clone(),
        })
        .collect();
    let rows: Vec<RankerRow<'_>> = vectors
        .iter()
        .zip(&sides)
        .map(|(features, (_, history, search))| RankerRow {
            features,
            history,
            search,
        })
        .collect();
    let deep_scores = deep.predict(&deep.contract().assemble(&rows)?)?;

    let models: [(&str, RankerContract, Vec<u8>, Vec<f32>); 3] = [
        (
            "logistic",
            dense_only(RANKER_KIND, &names, "p_watch", 0),
            logistic.to_onnx()?,
            logistic.predict(&flat)?,
        ),
        (
            "gbdt",
            dense_only(GBDT_KIND, &names, "probabilities", 1),
            trees.to_onnx()?,
            trees.predict(&flat)?,
        ),
        ("deep", deep.contract(), deep.to_onnx()?, deep_scores),
    ];
    let mut expected = serde_json::Map::new();
    for (name, contract, onnx, scores) in models {
        let contents = BundleContents {
            features: Some(FeatureContract::new(space.clone())),
            ranker: Some(RankerModel { contract, onnx }),
            ..tiny_contents()
        };
        edgerec::Model::check(&contents)?;
        std::fs::write(out.join(format!("{name}.edgerec")), contents.encode())?;
        expected.insert(name.into(), serde_json::json!(scores));
    }
    let inputs_json: Vec<serde_json::Value> = vectors
        .iter()
        .zip(&sides)
        .map(|(v, (s, history, search))| {
            serde_json::json!({
                "dense": v.dense,
                "movie": s.movie,
                "genres": s.genres,
                "actors": s.actors,
                "directors": s.directors,
                "tags": s.tags,
                "language": s.language,
                "history": history,
                "search": search,
            })
        })
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
        "wrote {} ({d} dense features, {n} training rows ({n_deep} for the deep ranker), {m} \
         inputs)",
        out.display()
    );
    Ok(())
}

/// The contract of a ranker that reads only the dense features.
fn dense_only(kind: &str, names: &[String], output: &str, column: u32) -> RankerContract {
    RankerContract {
        kind: kind.into(),
        dense: names.to_vec(),
        bags: vec![],
        search_vocab: vec![],
        output: output.into(),
        column,
    }
}
