//! `edgerec rank train-candidates` end to end on small MovieLens-format worlds (no impressions,
//! every rating a full play, so no labelled negative): the rankers it writes are deterministic
//! for a seed and `bundle build --model … --features … --ranker …` carries each of them; a
//! world whose ratings all fall in the training window is refused with a clear error and
//! nothing written.

mod common;

use std::path::Path;
use std::process::Output;

use common::{PlantedGenres, edgerec, ok, p};

fn import(raw: &Path, out: &Path) {
    ok(&[
        "data",
        "import",
        "movielens-100k",
        "--src",
        p(raw),
        "--out",
        p(out),
    ]);
}

/// Small sources and rankers: the test runs in seconds.
fn train_candidates(world: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "rank",
        "train-candidates",
        "--world",
        p(world),
        "--out",
        p(out),
        "--factors",
        "8",
        "--iterations",
        "3",
        "--tower-epochs",
        "1",
        "--trees",
        "20",
        "--deep-epochs",
        "2",
        "--seed",
        "5",
    ];
    args.extend_from_slice(extra);
    edgerec(&args)
}

#[test]
fn candidate_rankers_go_into_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, world) = (dir.path().join("raw"), dir.path().join("world"));
    // 150 users × 14 titles, 30 minutes apart: about 44 days, the last 14 the window.
    PlantedGenres {
        users: 150,
        per_user: 14,
        step: 1_800,
        seed: 777,
    }
    .write(&raw);
    import(&raw, &world);

    let rank = dir.path().join("rank");
    let run = train_candidates(&world, &rank, &["--window-days", "14"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let md = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(md.contains("no labelled negative in the window"), "{md}");
    assert!(md.contains("## Limits") && md.contains("in-sample"), "{md}");
    assert_eq!(md, std::fs::read_to_string(rank.join("report.md")).unwrap());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rank.join("report.json")).unwrap()).unwrap();
    let t = &report["training"];
    let positives = t["positives"].as_u64().unwrap();
    assert!(positives > 0, "{t}");
    assert!(t["sampled_negatives"].as_u64().unwrap() > positives, "{t}");
    assert_eq!(t["impression_negatives"], 0);
    assert_eq!(t["played_negatives"], 0);
    assert_eq!(
        t["examples"].as_u64().unwrap(),
        positives + t["sampled_negatives"].as_u64().unwrap()
    );
    let rankers = report["rankers"].as_array().unwrap();
    assert_eq!(rankers.len(), 3, "{report}");
    for r in rankers {
        // Users watch their favourite genre: even in-sample, far better than chance.
        let auc = r["train_auc"].as_f64().unwrap();
        assert!(auc > 0.6, "{}: in-sample AUC {auc}", r["ranker"]);
        assert!(r["onnx_bytes"].as_u64().unwrap() > 0);
    }

    // Deterministic for a seed: the same files byte for byte.
    let again = dir.path().join("rank-again");
    let run = train_candidates(&world, &again, &["--window-days", "14"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in [
        "ranker.onnx",
        "ranker-gbdt.onnx",
        "ranker-deep.onnx",
        "features.json",
    ] {
        assert_eq!(
            std::fs::read(rank.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file} differs between two runs with the same seed"
        );
    }
    // Without the deep ranker: the other two files only.
    let shallow = dir.path().join("rank-shallow");
    let run = train_candidates(&world, &shallow, &["--window-days", "14", "--no-deep"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!shallow.join("ranker-deep.onnx").exists());
    assert_eq!(
        std::fs::read(rank.join("ranker-gbdt.onnx")).unwrap(),
        std::fs::read(shallow.join("ranker-gbdt.onnx")).unwrap()
    );

    // The bundle's first stage, then one bundle per ranker with the feature contract (and the
    // world's media table, which the device computes the features from).
    let model = dir.path().join("model");
    ok(&[
        "train",
        "--world",
        p(&world),
        "--out",
        p(&model),
        "--tower-epochs",
        "1",
    ]);
    let features = rank.join("features.json");
    for (file, kind) in [
        ("ranker.onnx", "logistic-regression/1"),
        ("ranker-gbdt.onnx", "gbdt/1"),
        ("ranker-deep.onnx", "deep/1"),
    ] {
        let bundle = dir.path().join(format!("{file}.edgerec"));
        ok(&[
            "bundle",
            "build",
            "--model",
            p(&model),
            "--features",
            p(&features),
            "--world",
            p(&world),
            "--ranker",
            p(&rank.join(file)),
            "--ungated",
            "--out",
            p(&bundle),
        ]);
        let inspect = ok(&["bundle", "inspect", p(&bundle)]);
        assert!(
            inspect.contains(&format!("ranker (RANK): {kind}")),
            "{inspect}"
        );
        assert!(inspect.contains("features (FEAT)"), "{inspect}");
        assert!(inspect.contains("media (MDIA)"), "{inspect}");
    }
}

#[test]
fn a_world_without_usable_examples_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, world) = (dir.path().join("raw"), dir.path().join("world"));
    // Every rating within a few hours: nobody has a past before the training window.
    PlantedGenres {
        users: 20,
        per_user: 5,
        step: 60,
        seed: 777,
    }
    .write(&raw);
    import(&raw, &world);
    let out = dir.path().join("rank");
    let run = train_candidates(&world, &out, &[]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("no ranker can be trained"), "{err}");
    assert!(
        err.contains("no user has both a past before the training window and positives in it"),
        "{err}"
    );
    assert!(!out.join("ranker.onnx").exists() && !out.join("features.json").exists());
}
