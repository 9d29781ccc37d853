//! End to end through the CLI on a small MovieLens-format data set whose right answer is known:
//! import → train → bundle build → recommend (the device pipeline, with every source and with
//! one source at a time), plus the error paths a user meets first.
//!
//! The data: 60 titles in three genres (Action, Comedy, Drama; every fifth title also Romance),
//! 45 users who each watch mostly titles of one favourite genre. Working candidate sources must
//! fill a user's row with unwatched titles of their favourite genre.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

mod common;

const GENRES: [&str; 3] = ["Action", "Comedy", "Drama"];

/// Runs `edgerec` with a whitespace-separated command line (test paths hold no spaces).
fn ok(args: &str) -> String {
    common::ok(&args.split_whitespace().collect::<Vec<_>>())
}

fn fails(args: &str) -> String {
    common::fails(&args.split_whitespace().collect::<Vec<_>>())
}

fn genre_of(item: u32) -> usize {
    (item % 3) as usize
}

/// Writes the three files in the layout of the recbole copy of MovieLens-100K.
fn write_movielens_like(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut items =
        String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    for i in 1..=60u32 {
        let mut g = GENRES[genre_of(i)].to_string();
        if i % 5 == 0 {
            g.push_str(" Romance");
        }
        let _ = writeln!(items, "{i}\tTitle {i}\t{}\t{g}", 1980 + i);
    }
    let mut users =
        String::from("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n");
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 1..=45u32 {
        let _ = writeln!(users, "{u}\t{}\tF\tother\t0000{u}", 20 + u);
    }
    // Users watch in turns, so a temporal split leaves everyone with a past and a future: nine
    // titles of their favourite genre (a different slice per user) and one other.
    let mut t = 1_000_000_000u64;
    for j in 0..10usize {
        for u in 1..=45u32 {
            let fav = (u % 3) as usize;
            let favs: Vec<u32> = (1..=60).filter(|&i| genre_of(i) == fav).collect();
            let item = if j == 4 {
                (u % 60) + 1
            } else {
                favs[(u as usize * 3 + j) % favs.len()]
            };
            t += 3_600;
            let _ = writeln!(inter, "{u}\t{item}\t4\t{t}");
        }
    }
    std::fs::write(dir.join("ml-100k.item"), items).unwrap();
    std::fs::write(dir.join("ml-100k.user"), users).unwrap();
    std::fs::write(dir.join("ml-100k.inter"), inter).unwrap();
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Each user's watched titles, from the raw ratings file.
fn watched(raw: &Path) -> HashMap<u32, HashSet<u32>> {
    let mut out: HashMap<u32, HashSet<u32>> = HashMap::new();
    let text = std::fs::read_to_string(raw.join("ml-100k.inter")).unwrap();
    for line in text.lines().skip(1) {
        let f: Vec<u32> = line
            .split('\t')
            .take(2)
            .map(|x| x.parse().unwrap())
            .collect();
        out.entry(f[0]).or_default().insert(f[1]);
    }
    out
}

/// Rows of a `recommend` output: user → [(item, placed_by, score, reason)].
type Rows = HashMap<u32, Vec<(u32, String, f32, String)>>;

fn read_rows(path: &Path) -> Rows {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("user_id\trank\titem_id\tplaced_by\tscore\treason")
    );
    let mut rows: Rows = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "{line}");
        let user: u32 = f[0].parse().unwrap();
        let row = rows.entry(user).or_default();
        assert_eq!(
            f[1].parse::<usize>().unwrap(),
            row.len() + 1,
            "ranks count from 1: {line}"
        );
        row.push((
            f[2].parse().unwrap(),
            f[3].to_string(),
            f[4].parse().unwrap(),
            f[5].to_string(),
        ));
    }
    rows
}

/// Imports, trains (a small two-tower model) and builds a bundle with the world's media table.
fn trained_bundle(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (raw, world, model, bundle) = (
        tmp.join("raw"),
        tmp.join("world"),
        tmp.join("model"),
        tmp.join("bundle.edgerec"),
    );
    write_movielens_like(&raw);
    let out = ok(&format!(
        "data import movielens-100k --src {} --out {}",
        p(&raw),
        p(&world)
    ));
    assert!(
        out.contains("45 users") && out.contains("60 items"),
        "{out}"
    );
    let out = ok(&format!(
        "train --world {} --out {} --tower-epochs 3",
        p(&world),
        p(&model)
    ));
    assert!(
        out.contains("| iALS |") && out.contains("| two-tower |"),
        "{out}"
    );
    // The serving was fitted on validation inside the world, with its evidence.
    assert!(
        out.contains("## Serving") && out.contains("| MMR λ (the rerank as shipped) |"),
        "{out}"
    );
    std::fs::write(tmp.join("train.txt"), &out).unwrap();
    ok(&format!(
        "bundle build --model {} --world {} --out {}",
        p(&model),
        p(&world),
        p(&bundle)
    ));
    (raw, world, bundle)
}

#[test]
fn import_train_bundle_recommend() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, world, bundle) = trained_bundle(tmp.path());
    let inspect = ok(&format!("bundle inspect {}", p(&bundle)));
    for s in [
        "items:         60",
        "ials (FACT)",
        "content (CONT)",
        "two-tower (TWRT)",
        "media (MDIA)",
        "serving (SERV)",
    ] {
        assert!(inspect.contains(s), "{s}: {inspect}");
    }
    // `bundle build` ships the quotas and MMR λ `train` fitted on validation.
    let report = std::fs::read_to_string(tmp.path().join("train.txt")).unwrap();
    let report = &report[report.find("## Serving").unwrap()..];
    let after = |text: &'static str| -> String {
        let at = report
            .find(text)
            .unwrap_or_else(|| panic!("{text}: {report}"))
            + text.len();
        report[at..]
            .split([',', ' ', '('])
            .next()
            .unwrap()
            .to_string()
    };
    let q: Vec<String> = after("quotas ").split(':').map(String::from).collect();
    let quotas = format!(
        "quotas (QUOT): ials {}, two-tower {}, content {}, popularity {}",
        q[0], q[1], q[2], q[3]
    );
    assert!(inspect.contains(&quotas), "{quotas}: {inspect}");
    let new_q: Vec<String> = after("(new users ")
        .trim_end_matches(')')
        .split(':')
        .map(String::from)
        .collect();
    // The neighbour source's quotas (the fifth) travel in its own section.
    let neighbours = format!("quota {}, new users {},", q[4], new_q[4]);
    assert!(
        inspect.contains("neighbours (NBRS): 60 titles") && inspect.contains(&neighbours),
        "{neighbours}: {inspect}"
    );
    // Users known only by onboarding picks get their own quotas (QUON).
    let q: Vec<String> = after("(new users ")
        .trim_end_matches(')')
        .split(':')
        .map(String::from)
        .collect();
    let new_users = format!(
        "new-user quotas (QUON): ials {}, two-tower {}, content {}, popularity {}",
        q[0], q[1], q[2], q[3]
    );
    assert!(inspect.contains(&new_users), "{new_users}: {inspect}");
    let lambda = format!("MMR lambda {},", after("MMR λ "));
    assert!(inspect.contains(&lambda), "{lambda}: {inspect}");
    // A ranker learned from the device's candidates was gated on validation: the bundle
    // carries it exactly when the evidence says it ships, reading the candidate family.
    let verdict = &report[report
        .find("\nRanker: ")
        .expect("the ranker's gate is reported")..];
    let ships = verdict.lines().nth(1).unwrap().contains("it ships");
    assert_eq!(
        inspect.contains("ranker (RANK)"),
        ships,
        "{verdict}: {inspect}"
    );
    let loaded = edgerec::Model::from_bytes(&std::fs::read(&bundle).unwrap()).unwrap();
    let names = loaded
        .contents()
        .features
        .as_ref()
        .unwrap()
        .space()
        .dense_names();
    assert_eq!(names.iter().any(|n| n == "cand.blend_rr"), ships);

    // Training and bundling are deterministic.
    let (model2, bundle2) = (
        tmp.path().join("model2"),
        tmp.path().join("bundle2.edgerec"),
    );
    ok(&format!(
        "train --world {} --out {} --tower-epochs 3",
        p(&world),
        p(&model2)
    ));
    ok(&format!(
        "bundle build --model {} --world {} --out {}",
        p(&model2),
        p(&world),
        p(&bundle2)
    ));
    assert_eq!(
        std::fs::read(&bundle).unwrap(),
        std::fs::read(&bundle2).unwrap()
    );

    let users = tmp.path().join("users.txt");
    std::fs::write(&users, "user_id\n1\n2\n3\n4\n5\n6\n999\n").unwrap();
    let (recs, reqs) = (
        tmp.path().join("recs.tsv"),
        tmp.path().join("requests.jsonl"),
    );
    ok(&format!(
        "recommend --bundle {} --world {} --users {} --k 5 --out {} --requests-out {} --cold-user-genres Comedy --mmr-lambda 1",
        p(&bundle),
        p(&world),
        p(&users),
        p(&recs),
        p(&reqs)
    ));
    let rows = read_rows(&recs);
    assert_eq!(
        rows.len(),
        7,
        "every user, including the unknown 999, gets a row"
    );
    assert!(rows.values().all(|r| r.len() == 5));
    let requests = std::fs::read_to_string(&reqs).unwrap();
    assert_eq!(requests.lines().count(), 7);
    assert!(
        requests
            .lines()
            .all(|l| l.contains("\"state\":\"") && l.contains("\"options\""))
    );
    let seen = watched(&raw);
    let mut favourite = 0;
    for u in 1..=6u32 {
        let row = &rows[&u];
        assert!(
            row.iter().all(|r| !seen[&u].contains(&r.0)),
            "user {u} got a watched title: {row:?}"
        );
        favourite += row
            .iter()
            .filter(|r| genre_of(r.0) == (u % 3) as usize)
            .count();
    }
    // The rows lean to taste: a third of the catalog is each user's favourite genre, so chance
    // would put about 10 of these 30 titles there. (The blend's fixed quotas give a barely
    // trained two-tower model, 3 epochs on 450 plays, three places in ten, so the row is far
    // from the content source's, which `every_source_serves_through_the_device_filters` checks.)
    assert!(
        favourite >= 14,
        "{favourite} of 30 titles in the users' favourite genres: {rows:?}"
    );
    // The cold user's onboarding pick drives what content proposes for them.
    let content: Vec<u32> = rows[&999]
        .iter()
        .filter(|r| r.1 == "content")
        .map(|r| r.0)
        .collect();
    assert!(
        !content.is_empty() && content.iter().all(|&i| genre_of(i) == 1),
        "{:?}\n{report}",
        rows[&999]
    );

    // A corrupted bundle is refused with a typed error and writes nothing.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let bad = tmp.path().join("bad.edgerec");
    std::fs::write(&bad, &bytes).unwrap();
    let bad_recs = tmp.path().join("bad.tsv");
    let err = fails(&format!(
        "recommend --bundle {} --world {} --users {} --out {}",
        p(&bad),
        p(&world),
        p(&users),
        p(&bad_recs)
    ));
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!bad_recs.exists());
    let err = fails(&format!("bundle inspect {}", p(&bad)));
    assert!(err.contains("checksum mismatch"), "{err}");
}

#[test]
fn every_source_serves_through_the_device_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, world, bundle) = trained_bundle(tmp.path());
    let users = tmp.path().join("users.txt");
    std::fs::write(&users, "user_id\n1\n2\n3\n4\n5\n6\n999\n").unwrap();
    let seen = watched(&raw);
    for source in ["ials", "two-tower", "content", "popularity"] {
        let path = tmp.path().join(format!("{source}.tsv"));
        let out = ok(&format!(
            "recommend --bundle {} --world {} --users {} --k 5 --out {} --source {source} --no-ranker --print 2 --cold-user-genres Comedy",
            p(&bundle),
            p(&world),
            p(&users),
            p(&path)
        ));
        assert!(out.contains("user 1 ("), "{source}: {out}");
        let rows = read_rows(&path);
        for u in 1..=6u32 {
            let row = &rows[&u];
            assert_eq!(row.len(), 5, "{source}, user {u}");
            let items: HashSet<u32> = row.iter().map(|r| r.0).collect();
            assert_eq!(items.len(), 5, "{source}, user {u}: a title twice");
            assert!(
                items.iter().all(|i| !seen[&u].contains(i)),
                "{source}: user {u} got a watched title: {row:?}"
            );
            assert!(
                row.iter().all(|r| r.1 == source && r.2.is_finite()),
                "{row:?}"
            );
            if source == "content" {
                let fav = row
                    .iter()
                    .filter(|r| genre_of(r.0) == (u % 3) as usize)
                    .count();
                assert!(fav >= 4, "{source}, user {u}: {row:?}");
            }
        }
        // The cold user: iALS knows nothing; the others still answer.
        let cold = rows.get(&999).map_or(0, Vec::len);
        if source == "ials" {
            assert_eq!(cold, 0, "iALS has no row for a user without plays");
        } else {
            assert_eq!(cold, 5, "{source}");
        }
        // Every title shown three times without a play to users 3, 6 and 999 (ids divisible
        // by 3): fatigue empties their rows whatever the source; the others are untouched.
        let tired = tmp.path().join(format!("{source}-tired.tsv"));
        ok(&format!(
            "recommend --bundle {} --world {} --users {} --k 5 --out {} --source {source} --no-ranker --cold-user-genres Comedy --shown-popular 60",
            p(&bundle),
            p(&world),
            p(&users),
            p(&tired)
        ));
        let tired = read_rows(&tired);
        for u in [3, 6, 999] {
            assert!(
                !tired.contains_key(&u),
                "{source}: user {u} got {:?}",
                tired.get(&u)
            );
        }
        for u in [1, 2, 4, 5] {
            assert_eq!(tired[&u], rows[&u], "{source}, user {u}");
        }
    }
    let err = fails(&format!(
        "recommend --bundle {} --world {} --users {} --out {} --source nope",
        p(&bundle),
        p(&world),
        p(&users),
        p(&tmp.path().join("none.tsv"))
    ));
    assert!(err.contains("not a candidate source"), "{err}");
}

#[test]
fn bad_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    write_movielens_like(&raw);
    let inter = raw.join("ml-100k.inter");
    let mut text = std::fs::read_to_string(&inter).unwrap();
    text.push_str("1\t2\tfour\t1000000\n");
    std::fs::write(&inter, text).unwrap();
    let err = fails(&format!(
        "data import movielens-100k --src {} --out {}",
        p(&raw),
        p(&tmp.path().join("t"))
    ));
    assert!(
        err.contains("ml-100k.inter: line") && err.contains("column rating"),
        "{err}"
    );

    let err = fails(&format!(
        "data import movielens-100k --src {} --out {}",
        p(&tmp.path().join("nope")),
        p(&tmp.path().join("t"))
    ));
    assert!(err.contains("ml-100k.user"), "{err}");

    let wheel = tmp.path().join("fake.whl");
    std::fs::write(&wheel, b"not a zip").unwrap();
    let err = fails(&format!(
        "data fetch movielens-100k --out {} --wheel {}",
        p(&tmp.path().join("f")),
        p(&wheel)
    ));
    assert!(
        err.contains("fake.whl") && err.contains("not a readable wheel"),
        "{err}"
    );

    let err = fails(&format!(
        "train --world {} --out {}",
        p(&tmp.path().join("missing")),
        p(&tmp.path().join("m"))
    ));
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn movielens_world_and_simulated_world_through_the_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    write_movielens_like(&raw);
    let world = tmp.path().join("ml-world");
    ok(&format!(
        "data import movielens-100k --src {} --out {}",
        p(&raw),
        p(&world)
    ));
    let out = tmp.path().join("ml-examples");
    let report = ok(&format!("pipeline --world {} --out {}", p(&world), p(&out)));
    // Every rating is a watch: 450 positives, no negatives (edgerec_data::movielens).
    assert!(report.contains("| positives | 450 |"), "{report}");
    assert!(report.contains("| negatives (all) | 0 |"), "{report}");

    let sim = tmp.path().join("sim");
    ok(&format!(
        "simulate --users 300 --items 400 --days 21 --seed 3 --out {}",
        p(&sim)
    ));
    let out = tmp.path().join("sim-examples");
    let report = ok(&format!(
        "pipeline --world {} --out {} --folds 2 --fold-days 7",
        p(&sim),
        p(&out)
    ));
    assert!(report.contains("Rolling-origin folds"), "{report}");
    for f in [
        "features.json",
        "folds.json",
        "report.md",
        "report.json",
        "examples/part-00000.parquet",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(json["after"]["positives"].as_u64().unwrap() > 0);
    assert!(json["after"]["negative_impressions"].as_u64().unwrap() > 0);
    assert_eq!(json["folds"].as_array().unwrap().len(), 2);
}

/// A weighted logistic regression over `names`, fitted on rows where the first feature decides
/// the label, written as ONNX to `path`.
fn write_logistic(names: &[String], path: &Path) {
    let d = names.len();
    let n = 64;
    let dense: Vec<f32> = (0..n * d)
        .map(|k| ((k * 37 % 101) as f32) / 101.0)
        .collect();
    let labels: Vec<bool> = (0..n).map(|r| dense[r * d] > 0.5).collect();
    let data = edgerec_rank::Dataset::new(names.to_vec(), dense, labels, vec![1.0; n]).unwrap();
    let model =
        edgerec_rank::LogisticRegression::fit(&data, &edgerec_rank::FitConfig::default()).unwrap();
    std::fs::write(path, model.to_onnx().unwrap()).unwrap();
}

#[test]
fn bundles_carry_a_ranker_that_matches_their_features() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    let world = tmp.path().join("world");
    let examples = tmp.path().join("examples");
    let model = tmp.path().join("model");
    write_movielens_like(&raw);
    ok(&format!(
        "data import movielens-100k --src {} --out {}",
        p(&raw),
        p(&world)
    ));
    ok(&format!(
        "pipeline --world {} --out {}",
        p(&world),
        p(&examples)
    ));
    ok(&format!(
        "train --world {} --out {} --tower-epochs 0",
        p(&world),
        p(&model)
    ));
    let features = examples.join("features.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&features).unwrap()).unwrap();
    let names: Vec<String> = json["dense"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();

    // A ranker trained on exactly these features: carried, checked, and shown by inspect.
    let ranker = tmp.path().join("ranker.onnx");
    write_logistic(&names, &ranker);
    let bundle = tmp.path().join("bundle.edgerec");
    ok(&format!(
        "bundle build --ungated --model {} --features {} --ranker {} --out {}",
        p(&model),
        p(&features),
        p(&ranker),
        p(&bundle)
    ));
    let inspect = ok(&format!("bundle inspect {}", p(&bundle)));
    assert!(
        inspect.contains("ranker (RANK): logistic-regression/1")
            && inspect.contains(&format!("{} dense inputs", names.len())),
        "{inspect}"
    );

    // Trained on the features in another order, or on one fewer: refused, nothing written.
    let mut swapped = names.clone();
    swapped.swap(0, 1);
    let mut fewer = names.clone();
    fewer.pop();
    for (what, names) in [("swapped", swapped), ("fewer", fewer)] {
        let ranker = tmp.path().join(format!("{what}.onnx"));
        write_logistic(&names, &ranker);
        let out = tmp.path().join(format!("{what}.edgerec"));
        let err = fails(&format!(
            "bundle build --ungated --model {} --features {} --ranker {} --out {}",
            p(&model),
            p(&features),
            p(&ranker),
            p(&out)
        ));
        assert!(err.contains("contract"), "{what}: {err}");
        assert!(
            !out.exists(),
            "{what}: a refused bundle must not be written"
        );
    }

    // A model made elsewhere, with a contract file that does not fit these features.
    let contract = tmp.path().join("contract.json");
    std::fs::write(
        &contract,
        r#"{"contract": "edgerec-ranker/1", "kind": "sklearn-logistic/1", "dense": ["a", "b"],
            "output": "probabilities", "column": 1}"#,
    )
    .unwrap();
    let byo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/ranker/byo/logistic_regression.onnx");
    let err = fails(&format!(
        "bundle build --ungated --model {} --features {} --ranker {} --ranker-contract {} --out {}",
        p(&model),
        p(&features),
        p(&byo),
        p(&contract),
        p(&tmp.path().join("byo.edgerec"))
    ));
    assert!(err.contains("dense features"), "{err}");
    // A ranker needs the feature contract.
    let err = fails(&format!(
        "bundle build --model {} --ranker {} --out {}",
        p(&model),
        p(&ranker),
        p(&tmp.path().join("x.edgerec"))
    ));
    assert!(err.contains("--features"), "{err}");

    // Gated: a ranker that orders by the user's age cannot beat the blend on the world's
    // validation; the bundle ships the blend's order, says why, and records the evidence.
    let gated = tmp.path().join("gated.edgerec");
    let out = ok(&format!(
        "bundle build --model {} --world {} --ranker {} --out {}",
        p(&model),
        p(&world),
        p(&ranker),
        p(&gated)
    ));
    assert!(
        out.contains("ranker gate:") && out.contains("the blend's order ships"),
        "{out}"
    );
    let loaded = edgerec::Model::from_bytes(&std::fs::read(&gated).unwrap()).unwrap();
    assert!(loaded.ranker().is_none());
    let recipe: serde_json::Value = serde_json::from_str(&loaded.contents().meta.recipe).unwrap();
    let gate = &recipe["ranker_gate"];
    assert!(gate["chosen"].is_null(), "{gate}");
    let trials = gate["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{gate}");
    let d = trials[1]["against_reference"][0].as_f64().unwrap();
    let se = trials[1]["against_reference"][1].as_f64().unwrap();
    assert!(!(d > 0.0 && d > se), "refused although {d} ± {se}: {gate}");
    // Without a world there is nothing to gate on: refused unless --ungated.
    let err = fails(&format!(
        "bundle build --model {} --features {} --ranker {} --out {}",
        p(&model),
        p(&features),
        p(&ranker),
        p(&tmp.path().join("y.edgerec"))
    ));
    assert!(err.contains("--world"), "{err}");
}

/// The rankers `rank train` writes (logistic regression, trees, deep network) drop into a
/// bundle with the pipeline's feature contract, their input contracts read from the models'
/// metadata, and the device's runtime scores candidates with them.
#[test]
fn rank_train_models_go_into_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let examples = tmp.path().join("examples");
    let rank = tmp.path().join("rank");
    let (raw, world, model) = (
        tmp.path().join("raw"),
        tmp.path().join("world"),
        tmp.path().join("model"),
    );
    ok(&format!(
        "simulate --users 300 --items 300 --days 21 --seed 5 --out {}",
        p(&sim)
    ));
    ok(&format!(
        "pipeline --world {} --out {} --folds 2 --fold-days 5",
        p(&sim),
        p(&examples)
    ));
    let md = ok(&format!(
        "rank train --examples {} --out {} --trees 10 --deep-epochs 2",
        p(&examples),
        p(&rank)
    ));
    assert!(md.contains("# Model selection"), "{md}");
    write_movielens_like(&raw);
    ok(&format!(
        "data import movielens-100k --src {} --out {}",
        p(&raw),
        p(&world)
    ));
    ok(&format!(
        "train --world {} --out {} --tower-epochs 0",
        p(&world),
        p(&model)
    ));

    let features = examples.join("features.json");
    for (file, kind) in [
        ("ranker.onnx", "logistic-regression/1"),
        ("ranker-gbdt.onnx", "gbdt/1"),
        ("ranker-deep.onnx", "deep/1"),
    ] {
        let bundle = tmp.path().join(format!("{file}.edgerec"));
        ok(&format!(
            "bundle build --ungated --model {} --features {} --ranker {} --out {}",
            p(&model),
            p(&features),
            p(&rank.join(file)),
            p(&bundle)
        ));
        let inspect = ok(&format!("bundle inspect {}", p(&bundle)));
        assert!(inspect.contains("ranker (RANK)"), "{file}: {inspect}");

        let bytes = std::fs::read(&bundle).unwrap();
        let loaded = edgerec::Model::from_bytes(&bytes).unwrap();
        let ranker = loaded.ranker().expect("the bundle carries the ranker");
        let contract = ranker.contract();
        assert_eq!(contract.kind, kind, "{file}");
        if file == "ranker-deep.onnx" {
            // The simulated world logs searches: the deep ranker reads history and search bags.
            use edgerec::ranker::BagField;
            let fields: Vec<BagField> = contract.bags.iter().map(|b| b.field).collect();
            assert!(fields.contains(&BagField::History), "{fields:?}");
            assert!(fields.contains(&BagField::Search), "{fields:?}");
            assert!(!contract.search_vocab.is_empty());
        } else {
            assert!(contract.bags.is_empty(), "{file}");
        }
        // Candidates that differ in their dense features and ids get different P(watch).
        let d = contract.dense.len();
        let vectors: Vec<edgerec::features::FeatureVector> = (0..8u32)
            .map(|r| edgerec::features::FeatureVector {
                dense: (0..d)
                    .map(|c| ((r as usize * 31 + c * 7) % 13) as f32 / 4.0)
                    .collect(),
                sparse: edgerec::features::SparseFeatures {
                    movie: 1 + r,
                    genres: vec![1 + r % 3],
                    ..Default::default()
                },
            })
            .collect();
        let history = [3u32, 2, 1];
        let search = [1u32];
        let rows: Vec<edgerec::ranker::RankerRow<'_>> = vectors
            .iter()
            .map(|features| edgerec::ranker::RankerRow {
                features,
                history: &history,
                search: &search,
            })
            .collect();
        let scores = ranker.score_rows(&rows).unwrap();
        assert_eq!(scores.len(), 8);
        assert!(
            scores.iter().all(|s| (0.0..=1.0).contains(s)),
            "{file}: {scores:?}"
        );
        assert!(
            scores.iter().any(|s| (s - scores[0]).abs() > 1e-6),
            "{file}: {scores:?}"
        );
    }
}
