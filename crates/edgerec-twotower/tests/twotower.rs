//! End-to-end tests: ONNX parity, learning on a world with known structure, validation and
//! determinism.

use std::sync::OnceLock;
use std::time::Instant;

use edgerec::BundleError;
use edgerec::rng::SplitMix64;
use edgerec_twotower::onnx::{self, pb};
use edgerec_twotower::{
    Error, OnnxUserTower, TowerCatalog, TowerConfig, TowerData, TowerExample, TowerExamples,
    TwoTower, UserInput,
};

/// The test worlds' draws, from the project's seeded generator.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn unit(&mut self) -> f64 {
        self.0.uniform()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Index drawn with probability proportional to `weights`.
    fn pick(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

const CLUSTERS: usize = 8;
const PER_CLUSTER: usize = 25;
const N_ITEMS: usize = CLUSTERS * PER_CLUSTER;

/// Items fall in 8 clusters of 25 with Zipf popularity inside each cluster; every user watches
/// mostly (85%) from one cluster. Half of the items carry their cluster as a content token
/// (tokens 0..8), all carry a random "era" token (8..11). Users search their cluster's token
/// (search tokens 0..8) or noise (8..16). Dense features are noise. Each user's last watch is
/// held out.
struct World {
    data: TowerData,
    /// (user input before the held-out watch, held-out item)
    held_out: Vec<(UserInput, u32)>,
}

fn world(n_users: usize, n_dense: usize, with_searches: bool, seed: u64) -> World {
    let mut rng = Rng(SplitMix64::new(seed));
    let item_tokens: Vec<Vec<u32>> = (0..N_ITEMS)
        .map(|i| {
            let era = (CLUSTERS + rng.below(3)) as u32;
            if i % 2 == 0 {
                vec![(i / PER_CLUSTER) as u32, era]
            } else {
                vec![era]
            }
        })
        .collect();
    let zipf: Vec<f64> = (0..PER_CLUSTER).map(|r| 1.0 / (r + 1) as f64).collect();
    let global: Vec<f64> = (0..N_ITEMS).map(|i| zipf[i % PER_CLUSTER]).collect();
    let mut examples = Vec::new();
    let mut held_out = Vec::new();
    for u in 0..n_users {
        let cluster = u % CLUSTERS;
        let len = 10 + rng.below(10);
        let mut seq: Vec<u32> = Vec::new();
        while seq.len() < len {
            let item = if rng.unit() < 0.85 {
                cluster * PER_CLUSTER + rng.pick(&zipf)
            } else {
                rng.pick(&global)
            } as u32;
            if !seq.contains(&item) {
                seq.push(item);
            }
        }
        let searches: Vec<u32> = if with_searches {
            (0..rng.below(4))
                .map(|_| {
                    if rng.unit() < 0.6 {
                        cluster as u32
                    } else {
                        (CLUSTERS + rng.below(8)) as u32
                    }
                })
                .collect()
        } else {
            vec![]
        };
        let dense: Vec<f32> = (0..n_dense).map(|_| rng.unit() as f32 - 0.5).collect();
        for t in 1..len - 1 {
            examples.push(TowerExample {
                history: seq[..t].to_vec(),
                searches: searches[..searches.len().min(t)].to_vec(),
                dense: dense.clone(),
                positive: seq[t],
                weight: 0.5 + rng.unit() as f32,
            });
        }
        let input = UserInput {
            history: seq[..len - 1].to_vec(),
            searches,
            dense,
        };
        held_out.push((input, seq[len - 1]));
    }
    World {
        data: TowerData {
            n_items: N_ITEMS,
            item_tokens,
            n_content_tokens: CLUSTERS + 3,
            n_search_tokens: if with_searches { 2 * CLUSTERS } else { 0 },
            n_dense,
            examples,
        },
        held_out,
    }
}

fn small_config() -> TowerConfig {
    TowerConfig {
        dim: 16,
        hidden: 32,
        epochs: 8,
        batch_size: 128,
        learning_rate: 0.005,
        max_history: 12,
        max_searches: 3,
        seed: 7,
        ..TowerConfig::default()
    }
}

/// The world and model shared by the parity, learning and validation tests.
fn trained() -> &'static (World, TwoTower) {
    static CELL: OnceLock<(World, TwoTower)> = OnceLock::new();
    CELL.get_or_init(|| {
        let w = world(400, 3, true, 11);
        let start = Instant::now();
        let model = TwoTower::train(&w.data, &small_config()).expect("training");
        eprintln!(
            "trained on {} examples in {:.2?}; epoch losses {:?}",
            w.data.examples.len(),
            start.elapsed(),
            model.epoch_losses()
        );
        (w, model)
    })
}

fn top_k_unseen(scores: &[f32], seen: &[u32], k: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32)
        .filter(|i| !seen.contains(i))
        .collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst <= tol, "max abs difference {worst} > {tol}");
}

/// A batch exercising empty lists, truncation and ragged lengths.
fn varied_inputs(n_dense: usize, with_searches: bool) -> Vec<UserInput> {
    let dense = |x: f32| {
        (0..n_dense)
            .map(|j| x * (j as f32 + 1.0) - 0.3)
            .collect::<Vec<f32>>()
    };
    let s = |v: Vec<u32>| if with_searches { v } else { vec![] };
    vec![
        UserInput {
            history: vec![],
            searches: vec![],
            dense: dense(0.1),
        },
        UserInput {
            history: vec![3, 17, 44],
            searches: vec![],
            dense: dense(-0.2),
        },
        UserInput {
            history: vec![],
            searches: s(vec![1, 9]),
            dense: dense(0.4),
        },
        // Longer than max_history (12) and max_searches (3): only the tails count.
        UserInput {
            history: (0..40).map(|i| (i * 7 % N_ITEMS) as u32).collect(),
            searches: s(vec![0, 1, 2, 3, 4, 5, 6]),
            dense: dense(0.0),
        },
        UserInput {
            history: vec![199],
            searches: s(vec![15]),
            dense: dense(1.0),
        },
        UserInput {
            history: vec![5, 5, 5, 6],
            searches: s(vec![2, 2]),
            dense: dense(-1.0),
        },
    ]
}

#[test]
fn models_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TwoTower>();
    assert_send_sync::<OnnxUserTower>();
}

#[test]
fn onnx_tower_matches_candle() {
    let (_, model) = trained();
    let tower = OnnxUserTower::load(&model.user_tower_onnx().unwrap()).unwrap();
    assert_eq!(tower.dim(), model.dim());
    let inputs = varied_inputs(3, true);
    let batch = tower.embed(&inputs).unwrap();
    assert_eq!(batch.len(), inputs.len() * model.dim());
    for (row, input) in inputs.iter().enumerate() {
        let reference = model.user_embedding(input).unwrap();
        let norm = dot(&reference, &reference).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {row}: norm {norm}");
        assert_close(
            &batch[row * model.dim()..(row + 1) * model.dim()],
            &reference,
            1e-5,
        );
        // The same row alone (different padding) gives the same result.
        assert_close(
            &tower.embed(std::slice::from_ref(input)).unwrap(),
            &reference,
            1e-5,
        );
    }
    // Truncation is real: dropping what lies beyond max_history changes nothing.
    let mut cut = inputs[3].clone();
    cut.history.drain(..cut.history.len() - 12);
    cut.searches.drain(..cut.searches.len() - 3);
    assert_close(
        &model.user_embedding(&cut).unwrap(),
        &model.user_embedding(&inputs[3]).unwrap(),
        0.0,
    );
    assert!(tower.embed(&[]).unwrap().is_empty());
}

#[test]
fn onnx_model_declares_the_contract() {
    let (_, model) = trained();
    let proto = onnx::decode(&model.user_tower_onnx().unwrap()).unwrap();
    assert_eq!(proto.opset_import[0].version, onnx::OPSET);
    let graph = proto.graph.as_ref().unwrap();
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        inputs,
        [
            "history_ids",
            "history_weights",
            "search_ids",
            "search_weights",
            "dense"
        ]
    );
    assert_eq!(graph.output[0].name, "user_embedding");
    let mut ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    ops.sort_unstable();
    ops.dedup();
    assert_eq!(
        ops,
        [
            "Concat",
            "Div",
            "Gather",
            "Gemm",
            "Max",
            "Mul",
            "ReduceSum",
            "Relu",
            "Sqrt",
            "Unsqueeze"
        ]
    );
    assert!(graph.initializer.iter().all(|t| !t.raw_data.is_empty()));
    assert_eq!(
        onnx::initializer_dims(&proto, "history_table"),
        Some(vec![N_ITEMS, model.dim()])
    );
}

#[test]
fn onnx_parity_without_dense_or_searches() {
    let w = world(60, 0, false, 3);
    let config = TowerConfig {
        epochs: 1,
        ..small_config()
    };
    let model = TwoTower::train(&w.data, &config).unwrap();
    let tower = OnnxUserTower::load(&model.user_tower_onnx().unwrap()).unwrap();
    let inputs = varied_inputs(0, false);
    let batch = tower.embed(&inputs).unwrap();
    for (row, input) in inputs.iter().enumerate() {
        let reference = model.user_embedding(input).unwrap();
        assert_close(
            &batch[row * model.dim()..(row + 1) * model.dim()],
            &reference,
            1e-5,
        );
    }
    // An empty user with no dense features still gets a unit vector (the biases).
    let norm = dot(&batch[..model.dim()], &batch[..model.dim()]).sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[test]
fn learns_the_cluster_structure() {
    let (w, model) = trained();
    let losses = model.epoch_losses();
    assert_eq!(losses.len(), small_config().epochs);
    assert!(
        losses.last().unwrap() < &(losses[0] * 0.85),
        "loss should fall clearly: {losses:?}"
    );

    let items = model.item_embeddings();
    let d = model.dim();
    assert_eq!(items.len(), N_ITEMS * d);
    for row in items.chunks(d) {
        assert!((dot(row, row).sqrt() - 1.0).abs() < 1e-4);
    }

    let mut popularity = vec![0f32; N_ITEMS];
    for e in &w.data.examples {
        popularity[e.positive as usize] += 1.0;
    }
    let tower = OnnxUserTower::load(&model.user_tower_onnx().unwrap()).unwrap();
    let inputs: Vec<UserInput> = w.held_out.iter().map(|(u, _)| u.clone()).collect();
    let users = tower.embed(&inputs).unwrap();
    let (mut hits_tt, mut hits_pop) = (0usize, 0usize);
    for (row, (input, target)) in w.held_out.iter().enumerate() {
        let u = &users[row * d..(row + 1) * d];
        let scores: Vec<f32> = items.chunks(d).map(|v| dot(u, v)).collect();
        hits_tt += top_k_unseen(&scores, &input.history, 10).contains(target) as usize;
        hits_pop += top_k_unseen(&popularity, &input.history, 10).contains(target) as usize;
    }
    let n = w.held_out.len() as f64;
    let (recall_tt, recall_pop) = (hits_tt as f64 / n, hits_pop as f64 / n);
    eprintln!("recall@10: two-tower {recall_tt:.3}, popularity {recall_pop:.3}");
    assert!(
        recall_tt > 2.0 * recall_pop && recall_tt > recall_pop + 0.2,
        "two-tower recall@10 {recall_tt:.3} vs popularity {recall_pop:.3}"
    );
}

#[test]
fn same_seed_same_model_other_seed_other_model() {
    let w = world(80, 2, true, 5);
    let config = TowerConfig {
        epochs: 2,
        ..small_config()
    };
    let a = TwoTower::train(&w.data, &config).unwrap();
    let b = TwoTower::train(&w.data, &config).unwrap();
    assert_eq!(a.item_embeddings(), b.item_embeddings());
    assert_eq!(a.epoch_losses(), b.epoch_losses());
    assert_eq!(a.user_tower_onnx().unwrap(), b.user_tower_onnx().unwrap());
    let c = TwoTower::train(&w.data, &TowerConfig { seed: 8, ..config }).unwrap();
    assert_ne!(a.item_embeddings(), c.item_embeddings());
}

/// Examples in chunks of `size`, counting the passes.
struct Chunks<'a> {
    examples: &'a [TowerExample],
    size: usize,
    passes: std::cell::Cell<usize>,
    fail_on_pass: Option<usize>,
}

impl TowerExamples for Chunks<'_> {
    fn for_each_chunk(
        &self,
        f: &mut dyn FnMut(&[TowerExample]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.passes.set(self.passes.get() + 1);
        if self.fail_on_pass == Some(self.passes.get()) {
            return Err(Error::InvalidData("the source failed".into()));
        }
        for chunk in self.examples.chunks(self.size) {
            f(chunk)?;
        }
        Ok(())
    }
}

#[test]
fn streamed_chunks_train_the_same_model_in_one_chunk_and_a_close_one_in_many() {
    let w = world(80, 2, true, 5);
    let config = TowerConfig {
        epochs: 2,
        ..small_config()
    };
    let catalog = TowerCatalog {
        n_items: w.data.n_items,
        item_tokens: w.data.item_tokens.clone(),
        n_content_tokens: w.data.n_content_tokens,
        n_search_tokens: w.data.n_search_tokens,
        n_dense: w.data.n_dense,
    };
    let memory = TwoTower::train(&w.data, &config).unwrap();
    let n = w.data.examples.len();
    let one = Chunks {
        examples: &w.data.examples,
        size: n,
        passes: Default::default(),
        fail_on_pass: None,
    };
    let streamed = TwoTower::train_streaming(&catalog, &one, &config).unwrap();
    assert_eq!(streamed.item_embeddings(), memory.item_embeddings());
    assert_eq!(streamed.epoch_losses(), memory.epoch_losses());
    // A counting pass, then one per epoch.
    assert_eq!(one.passes.get(), 1 + config.epochs);

    // Many chunks: shuffled within each chunk only, so a different model of similar loss.
    let many = Chunks {
        examples: &w.data.examples,
        size: n / 7 + 1,
        passes: Default::default(),
        fail_on_pass: None,
    };
    let chunked = TwoTower::train_streaming(&catalog, &many, &config).unwrap();
    assert_ne!(chunked.item_embeddings(), memory.item_embeddings());
    let (a, b) = (
        *memory.epoch_losses().last().unwrap(),
        *chunked.epoch_losses().last().unwrap(),
    );
    assert!(
        b < chunked.epoch_losses()[0] && (a - b).abs() < 0.25 * a,
        "{a} vs {b}"
    );

    // A source that fails mid-training, or changes between passes, is an error.
    let failing = Chunks {
        examples: &w.data.examples,
        size: 64,
        passes: Default::default(),
        fail_on_pass: Some(2),
    };
    let e = TwoTower::train_streaming(&catalog, &failing, &config).unwrap_err();
    assert!(e.to_string().contains("the source failed"), "{e}");
    struct Growing<'a>(&'a [TowerExample], std::cell::Cell<usize>);
    impl TowerExamples for Growing<'_> {
        fn for_each_chunk(
            &self,
            f: &mut dyn FnMut(&[TowerExample]) -> Result<(), Error>,
        ) -> Result<(), Error> {
            self.1.set(self.1.get() + 1);
            f(&self.0[..self.0.len() - 2 + self.1.get()])
        }
    }
    let e = TwoTower::train_streaming(
        &catalog,
        &Growing(&w.data.examples, Default::default()),
        &config,
    )
    .unwrap_err();
    assert!(e.to_string().contains("in the first pass"), "{e}");
}

fn tiny_data() -> TowerData {
    TowerData {
        n_items: 3,
        item_tokens: vec![vec![0], vec![], vec![1]],
        n_content_tokens: 2,
        n_search_tokens: 2,
        n_dense: 1,
        examples: vec![
            TowerExample {
                history: vec![0],
                searches: vec![1],
                dense: vec![0.0],
                positive: 1,
                weight: 1.0,
            },
            TowerExample {
                history: vec![],
                searches: vec![],
                dense: vec![1.0],
                positive: 2,
                weight: 1.0,
            },
        ],
    }
}

fn expect_invalid_data(edit: impl FnOnce(&mut TowerData), what: &str) {
    let mut data = tiny_data();
    edit(&mut data);
    let config = TowerConfig {
        dim: 4,
        hidden: 4,
        epochs: 1,
        ..TowerConfig::default()
    };
    match TwoTower::train(&data, &config) {
        Err(Error::InvalidData(msg)) => eprintln!("{what}: {msg}"),
        other => panic!("{what}: expected InvalidData, got {other:?}"),
    }
}

#[test]
fn invalid_training_data_is_an_error() {
    let config = TowerConfig {
        dim: 4,
        hidden: 4,
        epochs: 1,
        ..TowerConfig::default()
    };
    TwoTower::train(&tiny_data(), &config).expect("the unedited data is valid");
    expect_invalid_data(|d| d.examples[0].history.push(3), "history id");
    expect_invalid_data(|d| d.examples[1].searches.push(2), "search token");
    expect_invalid_data(|d| d.examples[0].dense.push(0.0), "dense width");
    expect_invalid_data(|d| d.examples[0].dense[0] = f32::NAN, "dense NaN");
    expect_invalid_data(|d| d.examples[0].positive = 3, "positive");
    expect_invalid_data(|d| d.examples[0].weight = -1.0, "negative weight");
    expect_invalid_data(|d| d.examples[0].weight = f32::INFINITY, "infinite weight");
    expect_invalid_data(
        |d| d.examples.iter_mut().for_each(|e| e.weight = 0.0),
        "zero weights",
    );
    expect_invalid_data(|d| d.item_tokens[1].push(2), "content token");
    expect_invalid_data(
        |d| d.item_tokens.pop().map(drop).unwrap_or(()),
        "item_tokens length",
    );
    expect_invalid_data(|d| d.examples.clear(), "no examples");
    expect_invalid_data(
        |d| {
            d.n_items = 0;
            d.item_tokens.clear()
        },
        "no items",
    );
    for bad in [
        TowerConfig {
            dim: 0,
            ..config.clone()
        },
        TowerConfig {
            batch_size: 0,
            ..config.clone()
        },
        TowerConfig {
            temperature: 0.0,
            ..config.clone()
        },
        TowerConfig {
            learning_rate: f64::NAN,
            ..config.clone()
        },
    ] {
        assert!(matches!(
            TwoTower::train(&tiny_data(), &bad),
            Err(Error::InvalidConfig(_))
        ));
    }
}

#[test]
fn invalid_inputs_are_errors() {
    let (_, model) = trained();
    let tower = OnnxUserTower::load(&model.user_tower_onnx().unwrap()).unwrap();
    let good = UserInput {
        history: vec![1],
        searches: vec![0],
        dense: vec![0.0; 3],
    };
    let bad = [
        UserInput {
            history: vec![N_ITEMS as u32],
            ..good.clone()
        },
        UserInput {
            history: vec![u32::MAX],
            ..good.clone()
        },
        UserInput {
            searches: vec![16],
            ..good.clone()
        },
        UserInput {
            dense: vec![0.0; 2],
            ..good.clone()
        },
        UserInput {
            dense: vec![0.0, f32::NAN, 0.0],
            ..good.clone()
        },
    ];
    for input in &bad {
        assert!(
            matches!(model.user_embedding(input), Err(Error::InvalidInput(_))),
            "{input:?}"
        );
        let batch = [good.clone(), input.clone()];
        match tower.embed(&batch) {
            Err(edgerec::Error::InvalidArgument(msg)) => {
                assert!(msg.starts_with("input 1"), "{msg}")
            }
            other => panic!("{input:?}: expected InvalidArgument, got {other:?}"),
        }
    }
    // Out-of-range ids beyond the truncation window are still rejected.
    let mut old_bad = good.clone();
    old_bad.history = std::iter::once(N_ITEMS as u32).chain(0..30).collect();
    assert!(tower.embed(&[old_bad]).is_err());
}

/// The exported model, broken: refused by the device's loader (`edgerec::tower`, whose own
/// tests cover more cases on a model written without candle).
fn malformed(result: Result<OnnxUserTower, BundleError>) -> bool {
    matches!(result, Err(BundleError::Malformed { what, .. }) if what == "TWRT")
}

#[test]
fn bad_model_bytes_are_errors() {
    let (_, model) = trained();
    let bytes = model.user_tower_onnx().unwrap();
    assert!(malformed(OnnxUserTower::load(b"")));
    assert!(malformed(OnnxUserTower::load(
        b"definitely not onnx \x00\xff\x13\x37"
    )));
    assert!(malformed(OnnxUserTower::load(&bytes[..bytes.len() / 2])));
    let mut flipped = bytes.clone();
    for i in (0..flipped.len()).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    assert!(OnnxUserTower::load(&flipped).is_err());

    let proto = onnx::decode(&bytes).unwrap();
    let reencode = |edit: &dyn Fn(&mut pb::ModelProto)| {
        let mut p = proto.clone();
        edit(&mut p);
        onnx::encode(&p)
    };
    // raw_data not matching the shape (tract would panic on it).
    let short_table = reencode(&|p| {
        let g = p.graph.as_mut().unwrap();
        let t = g
            .initializer
            .iter_mut()
            .find(|t| t.name == "history_table")
            .unwrap();
        t.raw_data.truncate(t.raw_data.len() - 4);
    });
    assert!(malformed(OnnxUserTower::load(&short_table)));
    // A table smaller than the ids the metadata allows.
    let lying_meta = reencode(&|p| {
        let e = p
            .metadata_props
            .iter_mut()
            .find(|e| e.key == "edgerec.n_items")
            .unwrap();
        e.value = (N_ITEMS + 1).to_string();
    });
    assert!(malformed(OnnxUserTower::load(&lying_meta)));
    let no_meta = reencode(&|p| p.metadata_props.clear());
    assert!(malformed(OnnxUserTower::load(&no_meta)));
    // A graph tract rejects: an unknown operator.
    let unknown_op = reencode(&|p| {
        let g = p.graph.as_mut().unwrap();
        g.node
            .iter_mut()
            .find(|n| n.op_type == "Relu")
            .unwrap()
            .op_type = "NoSuchOp".into();
    });
    assert!(malformed(OnnxUserTower::load(&unknown_op)));
    // A wrong dense width in the graph vs the metadata.
    let wrong_width = reencode(&|p| {
        let e = p
            .metadata_props
            .iter_mut()
            .find(|e| e.key == "edgerec.n_dense")
            .unwrap();
        e.value = "5".into();
    });
    assert!(malformed(OnnxUserTower::load(&wrong_width)));
}

/// Random sequences for the timing tests: `n_users` users with `min_len..max_len` watches of
/// `n_items` items (each watch is one example whose history is everything before it).
fn timing_data(n_users: usize, n_items: usize, min_len: usize, max_len: usize) -> TowerData {
    let mut rng = Rng(SplitMix64::new(99));
    let item_tokens: Vec<Vec<u32>> = (0..n_items)
        .map(|_| {
            (0..1 + rng.below(3))
                .map(|_| rng.below(30) as u32)
                .collect()
        })
        .collect();
    let mut examples = Vec::new();
    for _ in 0..n_users {
        let n = min_len + rng.below(max_len - min_len);
        let seq: Vec<u32> = (0..n).map(|_| rng.below(n_items) as u32).collect();
        let searches: Vec<u32> = (0..rng.below(6)).map(|_| rng.below(50) as u32).collect();
        let dense: Vec<f32> = (0..8).map(|_| rng.unit() as f32).collect();
        for t in 0..n {
            examples.push(TowerExample {
                history: seq[t.saturating_sub(60)..t].to_vec(),
                searches: searches.clone(),
                dense: dense.clone(),
                positive: seq[t],
                weight: 1.0,
            });
        }
    }
    TowerData {
        n_items,
        item_tokens,
        n_content_tokens: 30,
        n_search_tokens: 50,
        n_dense: 8,
        examples,
    }
}

fn time_one_epoch(data: &TowerData) {
    let config = TowerConfig {
        epochs: 1,
        ..TowerConfig::default()
    };
    let start = Instant::now();
    let model = TwoTower::train(data, &config).unwrap();
    eprintln!(
        "{} examples, {} items, 1 epoch (dim {}, batch {}): {:.2?} (incl. item export), loss {:?}",
        data.examples.len(),
        data.n_items,
        config.dim,
        config.batch_size,
        start.elapsed(),
        model.epoch_losses()
    );
}

/// Epoch time at MovieLens-100K scale (943 users, 1,682 items, ~100k examples, histories
/// truncated to 50). Run with `cargo test -p edgerec-twotower -- --ignored --nocapture`.
#[test]
#[ignore]
fn epoch_time_at_movielens_scale() {
    time_one_epoch(&timing_data(943, 1682, 20, 212));
}

/// Epoch time at the synthetic world's scale (20k users, 5k items, ~300k examples).
#[test]
#[ignore]
fn epoch_time_at_synthetic_scale() {
    time_one_epoch(&timing_data(20_000, 5000, 5, 25));
}
