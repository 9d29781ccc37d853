//! Tree-ensemble ranker benchmark: tract 0.23.9 against the core's native evaluator
//! (`src/ranker/trees.rs`) on the same loaded [`Ranker`], for a batch of 500 candidates.
//!
//! Models: the committed GBDT fixture (`tests/data/ranker/gbdt.edgerec`, 30 trees of depth 3)
//! and synthetic GBDT-shaped ensembles written with `edgerec::onnx::build` (full binary trees
//! of depth 6 over 75 features, `BRANCH_LEQ`, one class-1 vote per leaf, `LOGISTIC`): 100
//! trees at 500 candidates, then 25…200 trees at 100 candidates to show how each engine scales
//! with the number of trees (tract's leaf lookup walks the leaf table linearly, so its time per
//! row grows with trees × leaves). Prints the median milliseconds of each engine, the ratio,
//! and the largest score difference. Speed is reported, never asserted.
//!
//! Two dev-profile runs on this machine (two shared cores, other builds running): fixture GBDT,
//! 500 candidates: tract 96–163 ms, native 0.31–0.33 ms (~300–500×); 100 trees of depth 6,
//! 500 candidates: tract 3.6–5.1 s, native 2.1–2.2 ms. Doubling the trees quadruples tract's
//! time (25 → 200 trees, 100 rows: 56 ms → 3.1–4.1 s) and doubles the native time (0.10 →
//! 0.83 ms); largest |native − tract| 1.2e-7.
//!
//! ```text
//! cargo run -p edgerec --example tree_bench            # the dev profile tests use
//! cargo run --release -p edgerec --example tree_bench
//! ```

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use edgerec::Model;
use edgerec::onnx::build::{
    self as b, Dim, GraphBuilder, attr_floats, attr_ints, attr_string, attr_strings,
};
use edgerec::onnx::{ElemType, ML_DOMAIN};
use edgerec::ranker::{Ranker, RankerBatch, RankerContract};

// Only the seeded generator of the shared helpers is used here.
#[allow(dead_code)]
mod common;

use common::Rng;

const SEED: u64 = 0x7EE5_BE7C;
const D: usize = 75;

/// Median wall time of `runs` calls of `f` (after one warm-up call).
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

/// `trees` full binary trees of depth `depth` over `D` features, as ONNX bytes.
fn synthetic(rng: &mut Rng, trees: usize, depth: u32) -> Vec<u8> {
    let per_tree = (1usize << (depth + 1)) - 1;
    let first_leaf = (1usize << depth) - 1;
    let n = trees * per_tree;
    let (mut tid, mut nid, mut fid, mut modes, mut values) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut yes, mut no, mut miss) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ctree, mut cnode, mut cweight) = (Vec::new(), Vec::new(), Vec::new());
    for t in 0..trees {
        for k in 0..per_tree {
            tid.push(t as i64);
            nid.push(k as i64);
            let leaf = k >= first_leaf;
            fid.push(if leaf {
                0
            } else {
                (rng.next_u64() % D as u64) as i64
            });
            modes.push(if leaf { "LEAF" } else { "BRANCH_LEQ" });
            values.push(if leaf { 0.0 } else { rng.unit() });
            yes.push(if leaf { 0 } else { 2 * k as i64 + 1 });
            no.push(if leaf { 0 } else { 2 * k as i64 + 2 });
            miss.push(0);
            if leaf {
                ctree.push(t as i64);
                cnode.push(k as i64);
                cweight.push((rng.unit() - 0.5) * 0.2);
            }
        }
    }
    let mut g = GraphBuilder::new("bench_trees");
    g.input(
        "dense",
        ElemType::F32,
        &[Dim::symbolic("batch"), Dim::Fixed(D)],
    )
    .unwrap();
    g.node_in_domain(
        ML_DOMAIN,
        "TreeEnsembleClassifier",
        &["dense"],
        &["label", "probabilities"],
        vec![
            attr_ints("classlabels_int64s", &[0, 1]),
            attr_string("post_transform", "LOGISTIC"),
            attr_floats("base_values", &[0.0, -0.3]),
            attr_ints("nodes_treeids", &tid),
            attr_ints("nodes_nodeids", &nid),
            attr_ints("nodes_featureids", &fid),
            attr_strings("nodes_modes", &modes),
            attr_floats("nodes_values", &values),
            attr_ints("nodes_truenodeids", &yes),
            attr_ints("nodes_falsenodeids", &no),
            attr_ints("nodes_missing_value_tracks_true", &miss),
            attr_ints("class_treeids", &ctree),
            attr_ints("class_nodeids", &cnode),
            attr_ints("class_ids", &vec![1; ctree.len()]),
            attr_floats("class_weights", &cweight),
        ],
    )
    .unwrap();
    g.output("label", ElemType::I64, &[Dim::symbolic("batch")])
        .unwrap();
    g.output(
        "probabilities",
        ElemType::F32,
        &[Dim::symbolic("batch"), Dim::Fixed(2)],
    )
    .unwrap();
    b::encode(&b::model_with_opsets(
        g.finish().unwrap(),
        "tree_bench",
        &[],
        &[(ML_DOMAIN, b::ML_OPSET)],
    ))
}

fn batch(rng: &mut Rng, rows: usize, d: usize) -> RankerBatch {
    RankerBatch {
        rows,
        dense: (0..rows * d).map(|_| rng.unit()).collect(),
        bags: vec![],
    }
}

/// Times both engines on `batch` and prints one line.
fn row(label: &str, ranker: &Ranker, batch: &RankerBatch, runs: usize) {
    assert_eq!(ranker.engine(), "native-trees", "{label}");
    let native = ranker.score(batch).unwrap();
    let tract = ranker.score_with_tract(batch).unwrap();
    let worst = native
        .iter()
        .zip(&tract)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let t_tract = median(runs, || {
        black_box(ranker.score_with_tract(black_box(batch)).unwrap());
    });
    let t_native = median(runs.max(9), || {
        black_box(ranker.score(black_box(batch)).unwrap());
    });
    let ms = |t: Duration| t.as_secs_f64() * 1e3;
    println!(
        "{label:<34} {:>5}  {:>10.3}  {:>10.4}  {:>8.0}×  {:>8.1e}",
        batch.rows,
        ms(t_tract),
        ms(t_native),
        ms(t_tract) / ms(t_native),
        worst
    );
}

fn main() {
    println!(
        "tree-ensemble ranker: tract 0.23.9 vs native, median ms per batch{}",
        if cfg!(debug_assertions) {
            "  (dev profile: the core and its dependencies at opt-level 2)"
        } else {
            "  (release)"
        }
    );
    println!(
        "{:<34} {:>5}  {:>10}  {:>10}  {:>9}  {:>8}",
        "model", "rows", "tract ms", "native ms", "ratio", "max diff"
    );
    let mut rng = Rng::new(SEED);

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ranker/gbdt.edgerec");
    let bytes = std::fs::read(&fixture).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    let bundle = Model::from_bytes(&bytes).unwrap();
    let gbdt = bundle.ranker().expect("the fixture carries a ranker");
    let d = gbdt.contract().dense.len();
    row(
        "fixture GBDT (30 trees, depth 3)",
        gbdt,
        &batch(&mut rng, 500, d),
        5,
    );

    let contract = RankerContract {
        kind: "bench/1".into(),
        dense: (0..D).map(|j| format!("f{j}")).collect(),
        bags: vec![],
        search_vocab: vec![],
        output: "probabilities".into(),
        column: 1,
    };
    let load = |trees: usize, rng: &mut Rng| {
        let start = Instant::now();
        let r = Ranker::load(&contract, &synthetic(rng, trees, 6)).unwrap();
        (r, start.elapsed())
    };
    let (r100, load100) = load(100, &mut rng);
    row(
        "synthetic 100 trees, depth 6",
        &r100,
        &batch(&mut rng, 500, D),
        3,
    );
    println!(
        "(loading the 100-tree model, with tract's optimisation and the probe: {:.1} ms)",
        load100.as_secs_f64() * 1e3
    );
    println!("scaling with the number of trees (depth 6):");
    let probe = batch(&mut rng, 100, D);
    for trees in [25, 50, 100, 200] {
        let (r, _) = load(trees, &mut rng);
        row(&format!("synthetic {trees} trees, depth 6"), &r, &probe, 3);
    }
}
