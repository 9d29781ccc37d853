//! The ranker on the device: a model written with the project's ONNX writer, loaded against its
//! contract, scored by tract and compared with a plain Rust computation; contracts that do not
//! match the model or the bundle's features refused with `contract_mismatch`, when the bundle
//! is checked (build) and when it is loaded.

mod common;

use common::{as_rows, encode_unchecked, sections_of, with_ranker};
use edgerec::Model;
use edgerec::bundle::{BundleContents, ContainerWriter, FeatureContract};
use edgerec::features::{FeatureSpace, FeatureVector, SparseFeatures};
use edgerec::ranker::{Bag, BagField, Ranker, RankerContract};
use edgerec::test_support::tiny_features as tiny;
use edgerec_onnx::{self as onnx, Dim, ElemType, GraphBuilder};

/// Genre bag length and rows of the test model.
const L: usize = 3;
const ROWS: usize = 4;

/// `p = σ(dense · w + b + mean(genre_table[genre ids]))`.
struct Reference {
    w: Vec<f32>,
    b: f32,
    genre_table: Vec<f32>,
}

impl Reference {
    fn new(d: usize) -> Reference {
        Reference {
            w: (0..d).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect(),
            b: -0.25,
            genre_table: vec![0.0, 1.5, -2.0, 0.5],
        }
    }

    fn predict(&self, fv: &FeatureVector) -> f32 {
        let mut z = self.b as f64;
        for (x, w) in fv.dense.iter().zip(&self.w) {
            z += (*x as f64) * (*w as f64);
        }
        let genres = &fv.sparse.genres[..fv.sparse.genres.len().min(L)];
        if !genres.is_empty() {
            let n = genres.len() as f64;
            for &g in genres {
                let row = if (g as usize) < ROWS { g as usize } else { 0 };
                z += self.genre_table[row] as f64 / n;
            }
        }
        (1.0 / (1.0 + (-z).exp())) as f32
    }

    /// The model as ONNX: `dense` and the `genres` bag in, `p_watch` out.
    fn onnx(&self, kind: &str, dense_input: &str, width: usize, batch: Dim) -> Vec<u8> {
        let mut g = GraphBuilder::new("test-ranker");
        g.input(
            dense_input,
            ElemType::F32,
            &[batch.clone(), Dim::Fixed(width)],
        )
        .unwrap();
        g.input("genres_ids", ElemType::I64, &[batch.clone(), Dim::Fixed(L)])
            .unwrap();
        g.input(
            "genres_weights",
            ElemType::F32,
            &[batch.clone(), Dim::Fixed(L)],
        )
        .unwrap();
        let mut w = self.w.clone();
        w.resize(width, 0.0);
        g.initializer_f32("w", &[width, 1], &w).unwrap();
        g.initializer_f32("b", &[1], &[self.b]).unwrap();
        g.initializer_f32("genre_table", &[ROWS], &self.genre_table)
            .unwrap();
        g.initializer_i64("axis1", &[1], &[1]).unwrap();
        g.node("Gemm", &[dense_input, "w", "b"], &["linear"], vec![])
            .unwrap();
        g.node("Gather", &["genre_table", "genres_ids"], &["g"], vec![])
            .unwrap();
        g.node("Mul", &["g", "genres_weights"], &["gw"], vec![])
            .unwrap();
        g.node(
            "ReduceSum",
            &["gw", "axis1"],
            &["bag"],
            vec![onnx::attr_int("keepdims", 1)],
        )
        .unwrap();
        g.node("Add", &["linear", "bag"], &["logit"], vec![])
            .unwrap();
        g.node("Sigmoid", &["logit"], &["p_watch"], vec![]).unwrap();
        g.output("p_watch", ElemType::F32, &[batch, Dim::Fixed(1)])
            .unwrap();
        let model = onnx::model(g.finish().unwrap(), "tests", &[("edgerec.ranker", kind)]);
        onnx::encode(&model)
    }
}

fn contract(space: &FeatureSpace) -> RankerContract {
    RankerContract {
        kind: "test/1".into(),
        dense: space.dense_names().to_vec(),
        bags: vec![Bag {
            field: BagField::Genres,
            rows: ROWS as u32,
            len: L as u32,
        }],
        search_vocab: vec![],
        output: "p_watch".into(),
        column: 0,
    }
}

/// Feature vectors of the tiny space with varied dense values and genre bags (empty, short,
/// longer than `L`, out-of-range ids).
fn rows(space: &FeatureSpace) -> Vec<FeatureVector> {
    let d = space.dense_names().len();
    let bags: [&[u32]; 5] = [&[], &[1], &[2, 3], &[1, 2, 3, 1], &[9, 2]];
    (0..10)
        .map(|r| FeatureVector {
            dense: (0..d)
                .map(|i| (((r * 31 + i * 17) % 23) as f32) / 23.0)
                .collect(),
            sparse: SparseFeatures {
                genres: bags[r % bags.len()].to_vec(),
                ..Default::default()
            },
        })
        .collect()
}

#[test]
fn tract_scores_equal_the_reference() {
    let (space, _, _) = tiny();
    let d = space.dense_names().len();
    let reference = Reference::new(d);
    let c = contract(&space);
    let ranker = Ranker::load(
        &c,
        &reference.onnx("test/1", "dense", d, Dim::symbolic("batch")),
    )
    .unwrap();
    let fvs = rows(&space);
    let scores = ranker.score_rows(&as_rows(&fvs)).unwrap();
    assert_eq!(scores.len(), fvs.len());
    for (s, f) in scores.iter().zip(&fvs) {
        let want = reference.predict(f);
        assert!((s - want).abs() <= 1e-5, "tract {s} vs reference {want}");
    }
    // One row scores the same alone as inside a batch.
    let alone = ranker.score_rows(&as_rows(&fvs[3..4])).unwrap();
    assert!((alone[0] - scores[3]).abs() <= 1e-6);
}

fn mismatch(c: &RankerContract, bytes: &[u8], want: &str) {
    let e = Ranker::load(c, bytes).unwrap_err();
    assert_eq!(edgerec::Error::from(e.clone()).code(), "contract_mismatch");
    assert!(
        e.to_string().contains(want),
        "{e:?} should mention {want:?}"
    );
}

#[test]
fn models_that_do_not_match_their_contract_are_refused() {
    let (space, _, _) = tiny();
    let d = space.dense_names().len();
    let reference = Reference::new(d);
    let batch = || Dim::symbolic("batch");
    let good = reference.onnx("test/1", "dense", d, batch());
    let c = contract(&space);
    Ranker::load(&c, &good).unwrap();

    mismatch(
        &c,
        &reference.onnx("test/1", "features", d, batch()),
        "\"features\"",
    );
    mismatch(
        &c,
        &reference.onnx("test/1", "dense", d - 1, batch()),
        "shape",
    );
    mismatch(
        &c,
        &reference.onnx("test/1", "dense", d, Dim::Fixed(1)),
        "batch",
    );
    mismatch(&c, &reference.onnx("gbdt/1", "dense", d, batch()), "gbdt/1");
    mismatch(&c, b"\x08\x01garbage", "ONNX");
    mismatch(&c, &[], "no graph");

    let mut wider = c.clone();
    wider.bags[0].len = L as u32 + 1;
    mismatch(&wider, &good, "genres_ids");
    let mut more = c.clone();
    more.bags.insert(
        0,
        Bag {
            field: BagField::Movie,
            rows: 10,
            len: 1,
        },
    );
    mismatch(&more, &good, "movie_ids");
    let mut fewer = c.clone();
    fewer.bags.clear();
    mismatch(&fewer, &good, "genres_ids");
    let mut output = c.clone();
    output.output = "probabilities".into();
    mismatch(&output, &good, "no output \"probabilities\"");
    let mut column = c.clone();
    column.column = 1;
    mismatch(&column, &good, "column 1");
}

#[test]
fn bundles_carry_the_ranker_and_refuse_one_that_does_not_fit_their_features() {
    let (space, _, _) = tiny();
    let d = space.dense_names().len();
    let reference = Reference::new(d);
    let good = reference.onnx("test/1", "dense", d, Dim::symbolic("batch"));
    let contents = with_ranker(contract(&space), good.clone(), space.clone());
    Model::check(&contents).unwrap();
    let bundle = Model::from_bytes(&contents.encode()).unwrap();
    assert_eq!(bundle.contents(), &contents);
    let fvs = rows(&space);
    let scores = bundle.ranker().unwrap().score_rows(&as_rows(&fvs)).unwrap();
    assert!((scores[1] - reference.predict(&fvs[1])).abs() <= 1e-5);

    // The ranker was trained on features in another order: refused when built and loaded.
    let mut swapped = contract(&space);
    swapped.dense.swap(0, 1);
    let bad = with_ranker(swapped, good.clone(), space.clone());
    let e = Model::check(&bad).unwrap_err();
    assert!(e.to_string().contains("dense feature 0"), "{e}");
    let e = Model::from_bytes(&encode_unchecked(&bad)).unwrap_err();
    assert_eq!(e.code(), "contract_mismatch", "{e}");

    // A feature space with one genre fewer: the ranker's width no longer matches.
    let mut vocab = space.vocabularies().clone();
    vocab.genres = edgerec::features::Vocabulary::new(["Drama"]);
    let smaller = FeatureSpace::new(vocab, space.config());
    let bad = with_ranker(contract(&space), good.clone(), smaller);
    assert!(
        Model::check(&bad)
            .unwrap_err()
            .to_string()
            .contains("dense features")
    );
    assert_eq!(
        Model::from_bytes(&encode_unchecked(&bad))
            .unwrap_err()
            .code(),
        "contract_mismatch"
    );

    // The contract agrees with the features but not with the model.
    let mut wrong_model = contract(&space);
    wrong_model.bags[0].len = 2;
    let bad = with_ranker(wrong_model, good.clone(), space.clone());
    bad.validate().unwrap();
    assert!(Model::check(&bad).is_err());
    assert_eq!(
        Model::from_bytes(&encode_unchecked(&bad))
            .unwrap_err()
            .code(),
        "contract_mismatch"
    );

    // A ranker without the feature contract.
    let bad = BundleContents {
        features: None,
        ..contents.clone()
    };
    assert!(Model::check(&bad).unwrap_err().to_string().contains("FEAT"));
    assert_eq!(
        Model::from_bytes(&encode_unchecked(&bad))
            .unwrap_err()
            .code(),
        "contract_mismatch"
    );
}

#[test]
fn a_ranker_section_of_a_newer_version_is_refused_not_skipped() {
    let (space, _, _) = tiny();
    let d = space.dense_names().len();
    let good = Reference::new(d).onnx("test/1", "dense", d, Dim::symbolic("batch"));
    let contents = with_ranker(contract(&space), good, space);
    let bytes = contents.encode();
    let mut w = ContainerWriter::default();
    for (tag, payload) in sections_of(&bytes) {
        w.section(tag, if &tag == b"RANK" { 2 } else { 1 }, payload);
    }
    let e = Model::from_bytes(&w.finish()).unwrap_err();
    assert_eq!(e.code(), "unsupported_version");
}

#[test]
fn the_feature_section_must_match_the_device_feature_code() {
    let (space, _, _) = tiny();
    let payload = FeatureContract::new(space.clone()).to_payload();
    FeatureContract::from_payload(&payload).unwrap();
    // Rename the last dense feature inside the payload: the device computes other features.
    let last = space.dense_names().last().unwrap().clone();
    let at = payload
        .windows(last.len())
        .rposition(|w| w == last.as_bytes())
        .unwrap();
    let mut edited = payload.clone();
    edited[at] = b'X';
    let e = FeatureContract::from_payload(&edited).unwrap_err();
    assert!(e.to_string().contains("feature code changed"), "{e}");
    // Every truncation is an error, never a panic.
    for n in 0..payload.len() {
        assert!(FeatureContract::from_payload(&payload[..n]).is_err());
    }
}

/// A ranker that divides by zero on its way to a score is refused at load, whatever its final
/// output: the NaN it makes would be dropped by tract's native `Relu` and kept by the wasm one,
/// so only a check of every value the graph computes gives both builds the same decision.
#[test]
fn a_ranker_computing_a_non_finite_value_is_refused_at_load() {
    use prost::Message;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ranker/deep.edgerec"
    );
    let bytes = std::fs::read(path).unwrap();
    assert!(Model::from_bytes(&bytes).is_ok(), "the seed loads");
    let mut contents = BundleContents::decode(&bytes).unwrap();
    let rank = contents.ranker.as_mut().unwrap();
    let mut model = edgerec::onnx::pb::ModelProto::decode(rank.onnx.as_slice()).unwrap();
    let scale = model
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name == "scale")
        .expect("the deep ranker standardises its dense input");
    // (0 − mean) / 0 = ±inf for a feature whose mean is not 0, then inf − inf in the first Gemm.
    for v in scale.raw_data.chunks_mut(4) {
        v.copy_from_slice(&0f32.to_le_bytes());
    }
    for v in &mut scale.float_data {
        *v = 0.0;
    }
    rank.onnx = model.encode_to_vec();
    let err = Model::from_bytes(&encode_unchecked(&contents)).unwrap_err();
    assert_eq!(err.code(), "contract_mismatch", "{err}");
    assert!(err.to_string().contains("not finite"), "{err}");
}
