//! Tree-ensemble rankers scored natively (`src/ranker/trees.rs`) instead of by tract: the
//! committed GBDT fixture and scikit-learn's random forest select the native engine and score
//! as the trainer / scikit-learn did; random ensembles written with the project's ONNX writer
//! score as tract does (NaN features included); malformed ensembles on which tract 0.23.9
//! would loop forever, panic or score garbage are refused at load; graphs the fast path does not
//! fully understand stay with tract.

use std::path::{Path, PathBuf};

use edgerec::Model;
use edgerec::features::{FeatureVector, SparseFeatures};
use edgerec::onnx::build::{
    self as b, Dim, GraphBuilder, attr_floats, attr_ints, attr_string, attr_strings,
};
use edgerec::onnx::{ElemType, ML_DOMAIN};
use edgerec::ranker::runtime::{ENGINE_TRACT, ENGINE_TREES};
use edgerec::ranker::{Ranker, RankerBatch, RankerContract, RankerRow};
use edgerec::rng::SplitMix64;
use edgerec::test_support::tiny_features as tiny;
use proptest::prelude::*;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ranker")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let path = data(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Per row: the watch history and the search ids.
type Sequences = Vec<(Vec<u32>, Vec<u32>)>;

/// The rows of `inputs.json`: features, history and search ids.
fn fixture_rows() -> (Vec<FeatureVector>, Sequences) {
    let json = Json::parse(std::str::from_utf8(&read("inputs.json")).unwrap());
    let ids = |v: &Json| -> Vec<u32> { v.arr().iter().map(|x| x.num() as u32).collect() };
    let mut fvs = Vec::new();
    let mut seqs = Vec::new();
    for r in json.arr() {
        fvs.push(FeatureVector {
            // As the trainer's fixture writer and numpy read them: decimal to f64, then f32.
            dense: r
                .get("dense")
                .arr()
                .iter()
                .map(|v| v.num() as f32)
                .collect(),
            sparse: SparseFeatures {
                movie: r.get("movie").num() as u32,
                genres: ids(r.get("genres")),
                actors: ids(r.get("actors")),
                directors: ids(r.get("directors")),
                tags: ids(r.get("tags")),
                language: r.get("language").num() as u32,
                ..SparseFeatures::default()
            },
        });
        seqs.push((ids(r.get("history")), ids(r.get("search"))));
    }
    (fvs, seqs)
}

fn ranker_rows<'a>(
    fvs: &'a [FeatureVector],
    seqs: &'a [(Vec<u32>, Vec<u32>)],
) -> Vec<RankerRow<'a>> {
    fvs.iter()
        .zip(seqs)
        .map(|(f, (history, search))| RankerRow {
            features: f,
            history,
            search,
        })
        .collect()
}

/// Largest |a − b|, and how many pairs are bit-identical.
fn compare(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let same = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() == y.to_bits())
        .count();
    (worst, same)
}

#[test]
fn the_gbdt_fixture_is_scored_natively_as_the_trainer_scored_it() {
    let bundle = Model::from_bytes(&read("gbdt.edgerec")).unwrap();
    let ranker = bundle.ranker().expect("the fixture carries a ranker");
    assert_eq!(ranker.engine(), ENGINE_TREES);
    // What the publisher checks (the device takes it on trust): native agrees with tract.
    ranker.check_native_agreement().unwrap();
    let (fvs, seqs) = fixture_rows();
    let rows = ranker_rows(&fvs, &seqs);
    let batch = ranker.contract().assemble(&rows).unwrap();
    let native = ranker.score(&batch).unwrap();
    let tract = ranker.score_with_tract(&batch).unwrap();
    let expected = Json::parse(std::str::from_utf8(&read("expected.json")).unwrap());
    let want: Vec<f32> = expected
        .get("gbdt")
        .arr()
        .iter()
        .map(|v| v.num() as f32)
        .collect();
    let (vs_trainer, _) = compare(&native, &want);
    let (vs_tract, same) = compare(&native, &tract);
    assert!(vs_trainer <= 1e-5, "native vs trainer: {vs_trainer}");
    assert!(vs_tract <= 1e-6, "native vs tract: {vs_tract}");
    println!(
        "gbdt: {} rows, |native - trainer| <= {vs_trainer:e}, |native - tract| <= {vs_tract:e} \
         ({same} bit-identical)",
        want.len()
    );

    // Batches across the evaluator's 64-row blocks, and one row alone, agree with tract too.
    let many: Vec<RankerRow> = rows.iter().cycle().take(150).copied().collect();
    let batch = ranker.contract().assemble(&many).unwrap();
    let (worst, _) = compare(
        &ranker.score(&batch).unwrap(),
        &ranker.score_with_tract(&batch).unwrap(),
    );
    assert!(worst <= 1e-6, "{worst}");
    assert!((ranker.score_rows(&rows[..1]).unwrap()[0] - native[0]).abs() <= 1e-7);
}

#[test]
fn scikit_learn_forests_are_scored_natively_and_linear_models_by_tract() {
    let (space, _, _) = tiny();
    let (fvs, seqs) = fixture_rows();
    let rows = ranker_rows(&fvs, &seqs);
    let expected = Json::parse(std::str::from_utf8(&read("byo/expected.json")).unwrap());
    let mut seen = Vec::new();
    for m in expected.get("models").arr() {
        let name = m.get("name").str();
        let contract = RankerContract {
            kind: m.get("kind").str().into(),
            dense: space.dense_names().to_vec(),
            bags: vec![],
            search_vocab: vec![],
            output: "probabilities".into(),
            column: 1,
        };
        let ranker = Ranker::load(&contract, &read(&format!("byo/{}", m.get("file").str())))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want_engine = if name == "random_forest" {
            ENGINE_TREES
        } else {
            ENGINE_TRACT
        };
        assert_eq!(ranker.engine(), want_engine, "{name}");
        let batch = contract.assemble(&rows).unwrap();
        let got = ranker.score(&batch).unwrap();
        let want: Vec<f32> = m
            .get("p_watch")
            .arr()
            .iter()
            .map(|v| v.num() as f32)
            .collect();
        let (vs_sklearn, _) = compare(&got, &want);
        let (vs_tract, same) = compare(&got, &ranker.score_with_tract(&batch).unwrap());
        assert!(vs_sklearn <= 1e-5, "{name}: vs scikit-learn {vs_sklearn}");
        assert!(vs_tract <= 1e-6, "{name}: vs tract {vs_tract}");
        println!(
            "{name} ({}): |score - scikit-learn| <= {vs_sklearn:e}, |score - tract| <= \
             {vs_tract:e} ({same}/{} bit-identical)",
            ranker.engine(),
            got.len()
        );
        seen.push(name);
    }
    assert!(seen.contains(&"random_forest"), "{seen:?}");
}

/// The project's seeded generator: the random ensembles are a function of the proptest seed.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Thresholds the random trees split on; rows take these values often, so equality matters.
const THRESHOLDS: [f32; 7] = [-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0];

/// A `TreeEnsembleClassifier`'s attributes, built tree by tree.
#[derive(Default, Debug)]
struct Ensemble {
    tree: Vec<i64>,
    node: Vec<i64>,
    feature: Vec<i64>,
    mode: Vec<&'static str>,
    value: Vec<f32>,
    yes: Vec<i64>,
    no: Vec<i64>,
    missing: Vec<i64>,
    c_tree: Vec<i64>,
    c_node: Vec<i64>,
    c_id: Vec<i64>,
    c_weight: Vec<f32>,
    labels: Vec<i64>,
    base: Option<Vec<f32>>,
    post: &'static str,
}

/// One node of a tree being generated, indexed by node id.
struct GenNode {
    feature: i64,
    mode: &'static str,
    value: f32,
    yes: i64,
    no: i64,
    missing: i64,
    votes: Vec<(i64, f32)>,
}

/// How the random ensembles vote.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `edgerec-rank`'s export: labels [0, 1], one vote per leaf for class 1, LOGISTIC.
    Gbdt,
    /// skl2onnx's binary forests: every vote for class 0 (tract's binary result layout).
    BinaryClass0,
    /// Three classes, 1–3 votes per leaf for any class.
    ThreeClasses,
}

fn grow(
    rng: &mut Rng,
    depth: usize,
    d: usize,
    modes: &[&'static str],
    layout: Layout,
    nodes: &mut Vec<GenNode>,
) -> i64 {
    let id = nodes.len();
    nodes.push(GenNode {
        feature: 0,
        mode: "LEAF",
        value: 0.0,
        yes: 0,
        no: 0,
        missing: 0,
        votes: vec![],
    });
    if depth == 0 || rng.below(5) == 0 {
        let weight = |rng: &mut Rng| (rng.unit() - 0.5) * 2.0;
        nodes[id].votes = match layout {
            Layout::Gbdt => vec![(1, weight(rng))],
            Layout::BinaryClass0 => (0..1 + rng.below(2)).map(|_| (0, weight(rng))).collect(),
            Layout::ThreeClasses => (0..1 + rng.below(3))
                .map(|_| (rng.below(3) as i64, weight(rng)))
                .collect(),
        };
        return id as i64;
    }
    let yes = grow(rng, depth - 1, d, modes, layout, nodes);
    let no = grow(rng, depth - 1, d, modes, layout, nodes);
    nodes[id] = GenNode {
        feature: rng.below(d) as i64,
        mode: modes[rng.below(modes.len())],
        value: THRESHOLDS[rng.below(THRESHOLDS.len())],
        yes,
        no,
        missing: rng.below(2) as i64,
        votes: vec![],
    };
    id as i64
}

impl Ensemble {
    fn random(rng: &mut Rng, d: usize) -> Ensemble {
        const ALL: [&str; 5] = [
            "BRANCH_LEQ",
            "BRANCH_LT",
            "BRANCH_GT",
            "BRANCH_EQ",
            "BRANCH_NEQ",
        ];
        let modes: Vec<&'static str> = if rng.below(2) == 0 {
            vec![ALL[rng.below(ALL.len())]]
        } else {
            ALL.to_vec()
        };
        let layout = [Layout::Gbdt, Layout::BinaryClass0, Layout::ThreeClasses][rng.below(3)];
        let mut e = Ensemble::default();
        let trees = 1 + rng.below(8);
        for t in 0..trees {
            let mut nodes = Vec::new();
            let depth = rng.below(6);
            grow(rng, depth, d, &modes, layout, &mut nodes);
            // Nodes in id order, or shuffled within the tree (the spec allows any order).
            let mut order: Vec<usize> = (0..nodes.len()).collect();
            if rng.below(2) == 0 {
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.below(i + 1));
                }
            }
            for &i in &order {
                let n = &nodes[i];
                e.tree.push(t as i64);
                e.node.push(i as i64);
                e.feature.push(n.feature);
                e.mode.push(n.mode);
                e.value.push(n.value);
                e.yes.push(n.yes);
                e.no.push(n.no);
                e.missing.push(n.missing);
            }
            for (i, n) in nodes.iter().enumerate() {
                for &(class, w) in &n.votes {
                    e.c_tree.push(t as i64);
                    e.c_node.push(i as i64);
                    e.c_id.push(class);
                    e.c_weight.push(w);
                }
            }
        }
        let n_classes = match layout {
            Layout::ThreeClasses => 3,
            _ => 2,
        };
        e.labels = (0..n_classes as i64).collect();
        let base = |rng: &mut Rng| (rng.unit() - 0.5) * 0.5;
        e.base = match (layout, rng.below(3)) {
            (Layout::Gbdt, _) => Some(vec![0.0, base(rng)]),
            (_, 0) => None,
            _ => Some((0..n_classes).map(|_| base(rng)).collect()),
        };
        e.post = match layout {
            Layout::Gbdt => "LOGISTIC",
            Layout::BinaryClass0 => ["NONE", "LOGISTIC"][rng.below(2)],
            Layout::ThreeClasses => ["NONE", "LOGISTIC", "SOFTMAX"][rng.below(3)],
        };
        e
    }

    fn attributes(&self) -> Vec<edgerec::onnx::pb::AttributeProto> {
        let mut a = vec![
            attr_ints("classlabels_int64s", &self.labels),
            attr_string("post_transform", self.post),
            attr_ints("nodes_treeids", &self.tree),
            attr_ints("nodes_nodeids", &self.node),
            attr_ints("nodes_featureids", &self.feature),
            attr_strings("nodes_modes", &self.mode),
            attr_floats("nodes_values", &self.value),
            attr_ints("nodes_truenodeids", &self.yes),
            attr_ints("nodes_falsenodeids", &self.no),
            attr_ints("nodes_missing_value_tracks_true", &self.missing),
            attr_ints("class_treeids", &self.c_tree),
            attr_ints("class_nodeids", &self.c_node),
            attr_ints("class_ids", &self.c_id),
            attr_floats("class_weights", &self.c_weight),
        ];
        if let Some(base) = &self.base {
            a.push(attr_floats("base_values", base));
        }
        a
    }

    fn columns(&self) -> usize {
        if self.labels.len() < 3 && self.c_id.iter().all(|&c| c == 0) {
            2
        } else {
            self.labels.len()
        }
    }

    /// The model: `dense` `[batch, d]` → classifier → `label`, `probabilities` (through an
    /// `Identity` when `identity`).
    fn onnx(&self, d: usize, identity: bool) -> Vec<u8> {
        let mut g = GraphBuilder::new("trees");
        g.input(
            "dense",
            ElemType::F32,
            &[Dim::symbolic("batch"), Dim::Fixed(d)],
        )
        .unwrap();
        let probs = if identity {
            "raw_probabilities"
        } else {
            "probabilities"
        };
        g.node_in_domain(
            ML_DOMAIN,
            "TreeEnsembleClassifier",
            &["dense"],
            &["label", probs],
            self.attributes(),
        )
        .unwrap();
        if identity {
            g.node("Identity", &[probs], &["probabilities"], vec![])
                .unwrap();
        }
        g.output("label", ElemType::I64, &[Dim::symbolic("batch")])
            .unwrap();
        g.output(
            "probabilities",
            ElemType::F32,
            &[Dim::symbolic("batch"), Dim::Fixed(self.columns())],
        )
        .unwrap();
        b::encode(&b::model_with_opsets(
            g.finish().unwrap(),
            "test",
            &[],
            &[(ML_DOMAIN, b::ML_OPSET)],
        ))
    }
}

fn contract(d: usize, output: &str, column: u32) -> RankerContract {
    RankerContract {
        kind: "trees-test/1".into(),
        dense: (0..d).map(|j| format!("f{j}")).collect(),
        bags: vec![],
        search_vocab: vec![],
        output: output.into(),
        column,
    }
}

/// `rows` random rows of width `d`: thresholds exactly and one ulp off, other values, NaN.
fn random_rows(rng: &mut Rng, rows: usize, d: usize) -> Vec<f32> {
    (0..rows * d)
        .map(|_| {
            let t = THRESHOLDS[rng.below(THRESHOLDS.len())];
            match rng.below(10) {
                0..=3 => t,
                4 => t.next_up(),
                5 => t.next_down(),
                6 => f32::NAN,
                _ => rng.unit() * 5.0 - 2.0,
            }
        })
        .collect()
}

fn dense_batch(rows: usize, dense: Vec<f32>) -> RankerBatch {
    RankerBatch {
        rows,
        dense,
        bags: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_ensembles_score_as_tract_does(seed in any::<u64>()) {
        let mut rng = Rng(SplitMix64::new(seed));
        let d = 1 + rng.below(6);
        let e = Ensemble::random(&mut rng, d);
        let column = rng.below(e.columns()) as u32;
        let c = contract(d, "probabilities", column);
        let ranker = Ranker::load(&c, &e.onnx(d, rng.below(2) == 0))
            .unwrap_or_else(|err| panic!("{err}\n{e:?}"));
        prop_assert_eq!(ranker.engine(), ENGINE_TREES, "{:?}", e);
        prop_assert!(ranker.check_native_agreement().is_ok(), "{:?}", e);
        let rows = 1 + rng.below(150);
        let batch = dense_batch(rows, random_rows(&mut rng, rows, d));
        let native = ranker.score(&batch).unwrap();
        let tract = ranker.score_with_tract(&batch).unwrap();
        let (worst, _) = compare(&native, &tract);
        prop_assert!(worst <= 1e-5, "|native - tract| = {} ({} {:?})", worst, e.post, e.labels);
    }
}

/// A small valid ensemble over two features: tree 0 is `f1 < 0.5`, tree 1 `f0 <= 0`.
fn small_ensemble() -> Ensemble {
    Ensemble {
        tree: vec![0, 0, 0, 1, 1, 1],
        node: vec![0, 1, 2, 0, 1, 2],
        feature: vec![1, 0, 0, 0, 0, 0],
        mode: vec!["BRANCH_LT", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
        value: vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
        yes: vec![1, 0, 0, 1, 0, 0],
        no: vec![2, 0, 0, 2, 0, 0],
        missing: vec![0; 6],
        c_tree: vec![0, 0, 1, 1],
        c_node: vec![1, 2, 1, 2],
        c_id: vec![1; 4],
        c_weight: vec![1.0, 2.0, 0.5, -0.5],
        labels: vec![0, 1],
        base: Some(vec![0.0, 0.1]),
        post: "LOGISTIC",
    }
}

/// [`small_ensemble`] edited by `edit`, as a model.
fn small(edit: impl FnOnce(&mut Ensemble)) -> Vec<u8> {
    let mut e = small_ensemble();
    edit(&mut e);
    e.onnx(2, false)
}

#[test]
fn malformed_ensembles_are_refused_before_tract_runs_them() {
    let c = contract(2, "probabilities", 1);
    assert_eq!(
        Ranker::load(&c, &small(|_| {})).unwrap().engine(),
        ENGINE_TREES
    );
    type Edit = Box<dyn Fn(&mut Ensemble)>;
    let cases: [(&str, Edit, &str); 11] = [
        // Loaded natively (the probe rows never reach that leaf), then tract scored every
        // request at ~1 s: refused, natively and in wasm alike.
        (
            "NaN class weight",
            Box::new(|e| e.c_weight[3] = f32::NAN),
            "holds NaN",
        ),
        (
            "infinite threshold",
            Box::new(|e| e.value[0] = f32::INFINITY),
            "holds inf",
        ),
        (
            "NaN base value",
            Box::new(|e| e.base = Some(vec![0.0, f32::NAN])),
            "holds NaN",
        ),
        // Left to tract before (~850 ms per request in wasm): outside what edgerec runs.
        (
            "feature id 2^40",
            Box::new(|e| e.feature[0] = 1 << 40),
            "outside the tree ensembles edgerec runs",
        ),
        (
            "PROBIT",
            Box::new(|e| e.post = "PROBIT"),
            "outside the tree ensembles edgerec runs",
        ),
        // tract 0.23.9 loops forever on this one (measured: its probe run never returns).
        ("cycle", Box::new(|e| e.no[0] = 0), "cycle"),
        // tract panics indexing its node table.
        (
            "child out of range",
            Box::new(|e| e.no[0] = 9),
            "does not have",
        ),
        // tract writes past its score row.
        (
            "class id out of range",
            Box::new(|e| e.c_id[0] = 5),
            "2 labels",
        ),
        // tract decodes BRANCH_GTE as a leaf: every row scores σ(base).
        (
            "BRANCH_GTE",
            Box::new(|e| e.mode[0] = "BRANCH_GTE"),
            "BRANCH_GTE",
        ),
        (
            "vote on a branch",
            Box::new(|e| e.c_node[0] = 0),
            "not a leaf",
        ),
        (
            "sparse node ids",
            Box::new(|e| e.node[2] = 7),
            "node ids must be",
        ),
    ];
    for (name, edit, want) in cases {
        let e = Ranker::load(&c, &small(edit)).expect_err(name);
        assert_eq!(edgerec::Error::from(e.clone()).code(), "contract_mismatch");
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
    // Mismatched attribute lengths: tract refuses them itself.
    let e = Ranker::load(
        &c,
        &small(|e| {
            e.value.pop();
        }),
    )
    .unwrap_err();
    assert_eq!(edgerec::Error::from(e).code(), "contract_mismatch");
}

#[test]
fn graphs_the_fast_path_does_not_cover_stay_with_tract() {
    // Through an Identity: native.
    let mut rng = Rng(SplitMix64::new(7));
    let e = Ensemble::random(&mut rng, 3);
    let r = Ranker::load(&contract(3, "probabilities", 1), &e.onnx(3, true)).unwrap();
    assert_eq!(r.engine(), ENGINE_TREES);

    // The label output (int64, cast): tract.
    let bytes = small(|_| {});
    let mut c = contract(2, "label", 0);
    let r = Ranker::load(&c, &bytes).unwrap();
    assert_eq!(r.engine(), ENGINE_TRACT);
    let batch = dense_batch(2, vec![0.0, 0.0, 1.0, 1.0]);
    assert_eq!(r.score(&batch).unwrap().len(), 2);

    // The classifier reads something computed from `dense`: tract.
    let mut g = GraphBuilder::new("t");
    g.input(
        "dense",
        ElemType::F32,
        &[Dim::symbolic("batch"), Dim::Fixed(2)],
    )
    .unwrap();
    g.node("Neg", &["dense"], &["x"], vec![]).unwrap();
    g.node_in_domain(
        ML_DOMAIN,
        "TreeEnsembleClassifier",
        &["x"],
        &["label", "probabilities"],
        small_ensemble().attributes(),
    )
    .unwrap();
    g.output(
        "probabilities",
        ElemType::F32,
        &[Dim::symbolic("batch"), Dim::Fixed(2)],
    )
    .unwrap();
    let bytes = b::encode(&b::model_with_opsets(
        g.finish().unwrap(),
        "test",
        &[],
        &[(ML_DOMAIN, b::ML_OPSET)],
    ));
    c.output = "probabilities".into();
    c.column = 1;
    let r = Ranker::load(&c, &bytes).unwrap();
    assert_eq!(r.engine(), ENGINE_TRACT);
    let s = r.score(&batch).unwrap();
    // -0 < 0.5 → leaf 1 (1.0); -0 <= 0 → leaf 1 (0.5): σ(1.6). -1: same.
    assert!((s[0] - 1.0 / (1.0 + (-1.6f32).exp())).abs() < 1e-6, "{s:?}");
}

/// Just enough JSON for the fixture files (the root crate has no JSON dependency).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Literal,
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut i = 0;
        let v = Json::value(text.as_bytes(), &mut i);
        Json::ws(text.as_bytes(), &mut i);
        assert_eq!(i, text.len(), "trailing characters in JSON");
        v
    }

    fn ws(s: &[u8], i: &mut usize) {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }

    fn value(s: &[u8], i: &mut usize) -> Json {
        Json::ws(s, i);
        match s[*i] {
            open @ (b'[' | b'{') => {
                *i += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                let (mut arr, mut obj) = (Vec::new(), Vec::new());
                loop {
                    Json::ws(s, i);
                    if s[*i] == close {
                        *i += 1;
                        break;
                    }
                    if s[*i] == b',' {
                        *i += 1;
                        continue;
                    }
                    if open == b'[' {
                        arr.push(Json::value(s, i));
                    } else {
                        let Json::Str(k) = Json::value(s, i) else {
                            panic!("JSON: object key is not a string")
                        };
                        Json::ws(s, i);
                        assert_eq!(s[*i], b':', "JSON: expected ':'");
                        *i += 1;
                        obj.push((k, Json::value(s, i)));
                    }
                }
                if open == b'[' {
                    Json::Arr(arr)
                } else {
                    Json::Obj(obj)
                }
            }
            b'"' => {
                // The fixtures' strings have no escapes worth decoding.
                let start = *i + 1;
                *i = start;
                while s[*i] != b'"' {
                    *i += if s[*i] == b'\\' { 2 } else { 1 };
                }
                *i += 1;
                Json::Str(String::from_utf8(s[start..*i - 1].to_vec()).unwrap())
            }
            _ => {
                let start = *i;
                while *i < s.len() && !b",]} \t\r\n".contains(&s[*i]) {
                    *i += 1;
                }
                match std::str::from_utf8(&s[start..*i]).unwrap() {
                    "null" | "true" | "false" => Json::Literal,
                    t => Json::Num(
                        t.parse()
                            .unwrap_or_else(|_| panic!("JSON: bad token {t:?}")),
                    ),
                }
            }
        }
    }

    fn get(&self, key: &str) -> &Json {
        let Json::Obj(kv) = self else {
            panic!("{key:?}: not an object")
        };
        kv.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no key {key:?}"))
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            other => panic!("not an array: {other:?}"),
        }
    }

    fn num(&self) -> f64 {
        match self {
            Json::Num(x) => *x,
            other => panic!("not a number: {other:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}
