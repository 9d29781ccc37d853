//! `edgerec rank train-candidates` end to end on small MovieLens-format worlds (no impressions,
//! every rating a full play, so no labelled negative): the rankers it writes are deterministic
//! for a seed and `bundle build --model … --features … --ranker …` carries each of them; a
//! world whose ratings all fall in the training window is refused with a clear error and
//! nothing written.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

fn edgerec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgerec"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run edgerec")
}

fn ok(args: &[&str]) -> String {
    let out = edgerec(args);
    assert!(
        out.status.success(),
        "edgerec {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

const GENRES: [&str; 3] = ["Comedy", "Horror", "Western"];

/// The recbole layout of MovieLens-100K: `users` users who each rate `per_user` titles, four
/// in five of their favourite genre (the rest among the first, popular titles), in turns
/// `step` seconds apart.
fn write_movielens_like(dir: &Path, users_n: u32, per_user: usize, step: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let items_n = 90u32;
    let genre = |i: u32| (i % 3) as usize;
    let mut items =
        String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    for i in 1..=items_n {
        let _ = writeln!(
            items,
            "{i}\tTitle {i}\t{}\t{}",
            1970 + i % 20,
            GENRES[genre(i)]
        );
    }
    let mut users =
        String::from("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n");
    for u in 1..=users_n {
        let _ = writeln!(users, "{u}\t{}\tF\tother\t2{u:04}", 18 + u % 40);
    }
    let mut state = 777u64;
    let mut next = |n: u32| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % u64::from(n)) as u32
    };
    let mut lists: Vec<Vec<u32>> = Vec::new();
    for u in 1..=users_n {
        let fav = u % 3;
        let mut list: Vec<u32> = Vec::new();
        while list.len() < per_user {
            let i = if next(5) == 0 {
                1 + next(12)
            } else {
                3 * next(items_n / 3) + fav + if fav == 0 { 3 } else { 0 }
            };
            if (1..=items_n).contains(&i) && !list.contains(&i) {
                list.push(i);
            }
        }
        lists.push(list);
    }
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    let mut t = 1_000_000_000u64;
    for j in 0..per_user {
        for (u, list) in lists.iter().enumerate() {
            t += step;
            let _ = writeln!(inter, "{}\t{}\t4\t{t}", u + 1, list[j]);
        }
    }
    std::fs::write(dir.join("ml-100k.item"), items).unwrap();
    std::fs::write(dir.join("ml-100k.user"), users).unwrap();
    std::fs::write(dir.join("ml-100k.inter"), inter).unwrap();
}

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
    write_movielens_like(&raw, 150, 14, 1_800);
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
    write_movielens_like(&raw, 20, 5, 60);
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
