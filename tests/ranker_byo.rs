//! Bring your own ranker: models made elsewhere (scikit-learn, converted by skl2onnx; see
//! `tests/data/ranker/byo/README.md`) drop into a bundle through the `edgerec-ranker/1` contract
//! alone. Each one passes the build-time check, loads with the bundle, and scores the rows of
//! `tests/data/ranker/inputs.json` as scikit-learn's `predict_proba` did (within 1e-5). The
//! same kind of model trained on one feature fewer is refused with `contract_mismatch`, when
//! checked and when loaded. The fixture is committed: regenerate it with
//! `bash scripts/byo-fixture.sh`; this test needs no Python.

use std::path::{Path, PathBuf};

mod common;

use common::{as_rows, encode_unchecked, with_ranker};
use edgerec::Model;
use edgerec::features::{FeatureSpace, FeatureVector, SparseFeatures};
use edgerec::ranker::{Ranker, RankerContract, RankerRow};
use edgerec::test_support::tiny_features as tiny;

const TOLERANCE: f32 = 1e-5;
const REGENERATE: &str = "regenerate the fixture with `bash scripts/byo-fixture.sh`";

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ranker")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let path = data(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The contract a user writes for a scikit-learn classifier converted with
/// `zipmap=False`: the bundle's dense features, no bags, P(watch) in column 1 of
/// `probabilities`.
fn contract(kind: &str, space: &FeatureSpace) -> RankerContract {
    RankerContract {
        kind: kind.into(),
        dense: space.dense_names().to_vec(),
        bags: vec![],
        search_vocab: vec![],
        output: "probabilities".into(),
        column: 1,
    }
}

/// The fixture: the input rows and what scikit-learn said about them.
struct Fixture {
    space: FeatureSpace,
    rows: Vec<FeatureVector>,
    expected: Json,
}

impl Fixture {
    fn load() -> Fixture {
        let (space, _, _) = tiny();
        let d = space.dense_names().len();
        let raw = read("inputs.json");
        let inputs = Json::parse(std::str::from_utf8(&raw).unwrap());
        let list = match &inputs {
            Json::Arr(rows) => rows,
            doc => doc.get("rows").arr(),
        };
        let rows: Vec<FeatureVector> = list
            .iter()
            .map(|r| {
                let dense = match r {
                    Json::Arr(_) => r,
                    _ => r.get("dense"),
                };
                FeatureVector {
                    // As numpy reads them: decimal to f64, then to f32.
                    dense: dense.arr().iter().map(|v| v.num() as f32).collect(),
                    sparse: SparseFeatures::default(),
                }
            })
            .collect();
        assert!(!rows.is_empty());
        for r in &rows {
            assert_eq!(
                r.dense.len(),
                d,
                "inputs.json rows must have the tiny space's width"
            );
        }
        let expected = Json::parse(std::str::from_utf8(&read("byo/expected.json")).unwrap());
        assert_eq!(
            expected.get("inputs_fnv1a64").str(),
            fnv1a64(&raw),
            "tests/data/ranker/inputs.json changed since the BYO fixture was made: {REGENERATE}"
        );
        assert_eq!(expected.get("d").num() as usize, d, "{REGENERATE}");
        assert_eq!(
            expected.get("rows").num() as usize,
            rows.len(),
            "{REGENERATE}"
        );
        Fixture {
            space,
            rows,
            expected,
        }
    }

    fn ranker_rows(&self) -> Vec<RankerRow<'_>> {
        as_rows(&self.rows)
    }
}

#[test]
fn scikit_learn_models_drop_into_a_bundle_and_score_as_scikit_learn_does() {
    let fx = Fixture::load();
    let models = fx.expected.get("models").arr();
    let names: Vec<&str> = models.iter().map(|m| m.get("name").str()).collect();
    assert!(names.contains(&"logistic_regression"), "{names:?}");
    for m in models {
        let name = m.get("name").str();
        let onnx = read(&format!("byo/{}", m.get("file").str()));
        let c = contract(m.get("kind").str(), &fx.space);
        let want: Vec<f32> = m
            .get("p_watch")
            .arr()
            .iter()
            .map(|v| v.num() as f32)
            .collect();
        assert_eq!(want.len(), fx.rows.len(), "{name}: {REGENERATE}");

        // Build time: the bundle's check loads the model against the contract.
        let contents = with_ranker(c.clone(), onnx.clone(), fx.space.clone());
        Model::check(&contents).unwrap_or_else(|e| panic!("{name}: check refused the model: {e}"));
        // Load time: the device's path.
        let bundle = Model::from_bytes(&contents.encode())
            .unwrap_or_else(|e| panic!("{name}: the bundle did not load: {e}"));
        assert_eq!(bundle.contents(), &contents);
        let ranker = bundle.ranker().expect("the bundle carries the ranker");
        assert_eq!(ranker.contract(), &c);
        let got = ranker.score_rows(&fx.ranker_rows()).unwrap();
        assert_eq!(got.len(), want.len());
        let mut worst = 0f32;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= TOLERANCE,
                "{name} row {i}: tract {g}, scikit-learn {w}"
            );
            worst = worst.max((g - w).abs());
        }
        // The same model loaded on its own scores the same, alone or in a batch.
        let alone = Ranker::load(&c, &onnx).unwrap();
        let first = alone.score_rows(&fx.ranker_rows()[..1]).unwrap();
        assert!(
            (first[0] - got[0]).abs() <= 1e-6,
            "{name}: {first:?} vs {}",
            got[0]
        );
        println!(
            "{name}: {} rows, largest |tract - scikit-learn| = {worst:e}",
            want.len()
        );
    }
}

#[test]
fn a_model_trained_on_one_feature_fewer_is_refused() {
    let fx = Fixture::load();
    let d = fx.space.dense_names().len();
    let narrow = fx.expected.get("narrow");
    assert_eq!(narrow.get("d").num() as usize, d - 1);
    let onnx = read(&format!("byo/{}", narrow.get("file").str()));
    let c = contract("sklearn-logistic-regression/1", &fx.space);
    let shape = |msg: &str| {
        assert!(
            msg.contains("\"dense\"")
                && msg.contains("shape")
                && msg.contains(&(d - 1).to_string())
                && msg.contains(&d.to_string()),
            "the refusal should name the input, the model's width and the contract's: {msg}"
        );
    };

    let e = Ranker::load(&c, &onnx).unwrap_err();
    assert_eq!(edgerec::Error::from(e.clone()).code(), "contract_mismatch");
    shape(&e.to_string());

    // Build time.
    let contents = with_ranker(c, onnx, fx.space.clone());
    let e = Model::check(&contents).unwrap_err();
    assert_eq!(edgerec::Error::from(e.clone()).code(), "contract_mismatch");
    shape(&e.to_string());

    // Load time, from a bundle written without the check.
    let e = Model::from_bytes(&encode_unchecked(&contents)).unwrap_err();
    assert_eq!(e.code(), "contract_mismatch", "{e}");
    shape(&e.to_string());
    println!("narrow: refused: {e}");
}

#[test]
fn models_tract_cannot_run_are_refused_when_built_and_loaded() {
    let fx = Fixture::load();
    for m in fx.expected.get("unsupported").arr() {
        let name = m.get("name").str();
        let why = m.get("refusal").str();
        let onnx = read(&format!("byo/{}", m.get("file").str()));
        let c = contract(m.get("kind").str(), &fx.space);
        let contents = with_ranker(c, onnx, fx.space.clone());
        let e = Model::check(&contents).expect_err(&format!(
            "{name} is listed as unsupported but now passes the check: move it to \"models\" \
             in make_byo.py (UNSUPPORTED) and {REGENERATE}"
        ));
        assert_eq!(edgerec::Error::from(e.clone()).code(), "contract_mismatch");
        assert!(e.to_string().contains(why), "{name}: {e}");
        let e = Model::from_bytes(&encode_unchecked(&contents)).unwrap_err();
        assert_eq!(e.code(), "contract_mismatch", "{name}: {e}");
        assert!(e.to_string().contains(why), "{name}: {e}");
        println!("{name}: refused: {e}");
    }
}

/// FNV-1a, 64 bits, as `make_byo.py` records it for inputs.json.
fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Just enough JSON for the fixture files (the root crate has no JSON dependency).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    /// `null`, `true` or `false` (the fixture reads none of them).
    Literal,
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing characters in JSON");
        v
    }

    fn get(&self, key: &str) -> &Json {
        let Json::Obj(kv) = self else {
            panic!("{key:?}: not an object")
        };
        kv.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no key {key:?} in the fixture: {REGENERATE}"))
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

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "JSON: expected {:?} at {}",
            c as char,
            self.i
        );
        self.i += 1;
    }

    fn peek(&mut self) -> u8 {
        self.ws();
        *self.s.get(self.i).expect("JSON: unexpected end")
    }

    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.eat(b'{');
                let mut kv = Vec::new();
                if self.peek() == b'}' {
                    self.eat(b'}');
                    return Json::Obj(kv);
                }
                loop {
                    let k = self.string();
                    self.eat(b':');
                    kv.push((k, self.value()));
                    if self.peek() == b',' {
                        self.eat(b',');
                    } else {
                        self.eat(b'}');
                        return Json::Obj(kv);
                    }
                }
            }
            b'[' => {
                self.eat(b'[');
                let mut v = Vec::new();
                if self.peek() == b']' {
                    self.eat(b']');
                    return Json::Arr(v);
                }
                loop {
                    v.push(self.value());
                    if self.peek() == b',' {
                        self.eat(b',');
                    } else {
                        self.eat(b']');
                        return Json::Arr(v);
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && !b",]} \t\r\n".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                match std::str::from_utf8(&self.s[start..self.i]).unwrap() {
                    "null" | "true" | "false" => Json::Literal,
                    t => Json::Num(
                        t.parse()
                            .unwrap_or_else(|_| panic!("JSON: bad token {t:?}")),
                    ),
                }
            }
        }
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.i).expect("JSON: unterminated string");
            self.i += 1;
            match c {
                b'"' => return out,
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    out.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                            self.i += 4;
                            char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap_or('?')
                        }
                        other => other as char,
                    });
                }
                _ => {
                    // Copy a whole UTF-8 sequence.
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xc0) == 0x80 {
                        end += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..end]).unwrap());
                    self.i = end;
                }
            }
        }
    }
}
