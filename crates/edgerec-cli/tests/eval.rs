//! `edgerec eval` end to end on a small simulated world (it has a ground truth, so the oracle
//! must win), with peer rows from files, and the error paths; the second stage (blend →
//! ranker → top-10) on that world and on a MovieLens-like world with a planted genre signal.

mod common;

use common::{PlantedGenres, edgerec, ok, p};

fn values(system: &serde_json::Value, name: &str) -> Vec<f64> {
    system["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m[0] == name)
        .unwrap_or_else(|| panic!("{name} missing"))[1]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn has(cohort: &serde_json::Value, name: &str) -> bool {
    cohort["systems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == name)
}

fn system<'a>(cohort: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    cohort["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {}", cohort["cohort"]))
}

/// The two-stage rows and tables of every cohort of a report are complete and consistent:
/// the same candidate set as the blend (equal Recall@100 per user), a paired row against the
/// blend and against the best single source (the one with the highest NDCG@10) for NDCG@10 and
/// mAP@10 — for the two-stage rankers and for each stage of the device's row — and the
/// rankers' pooled AUC on the candidates.
fn check_two_stage(report: &serde_json::Value) {
    for split in report["splits"].as_array().unwrap() {
        let training = &split["ranker"];
        assert!(
            training.is_object(),
            "{}: no ranker: {}",
            split["name"],
            split["ranker_error"]
        );
        assert!(training["positives"].as_u64().unwrap() > 0);
        assert!(training["examples"].as_u64().unwrap() > training["positives"].as_u64().unwrap());
        for cohort in split["cohorts"].as_array().unwrap() {
            let blend = system(cohort, "blend");
            let deep = has(cohort, "two-stage-deep");
            for name in [
                "two-stage-lr",
                "two-stage-gbdt",
                "two-stage-deep",
                "blend-shuffled",
            ] {
                if name == "two-stage-deep" && !deep {
                    continue;
                }
                let s = system(cohort, name);
                assert_eq!(
                    values(s, "Recall@100"),
                    values(blend, "Recall@100"),
                    "{name} reorders the blend's candidates, never changes them"
                );
                for m in ["NDCG@10", "mAP@10", "Recall@10"] {
                    let v = metric(s, m);
                    assert!((0.0..=1.0).contains(&v), "{name} {m} = {v}");
                }
            }
            // The best single source by mean NDCG@10; ties go to the earlier source.
            let mut best = system(cohort, "popularity");
            for name in ["ials", "content", "two-tower", "neighbours"] {
                let s = system(cohort, name);
                if metric(s, "NDCG@10") > metric(best, "NDCG@10") {
                    best = s;
                }
            }
            let table = cohort["stages"].as_array().unwrap();
            let rankers: &[&str] = if deep {
                &["two-stage-lr", "two-stage-gbdt", "two-stage-deep"]
            } else {
                &["two-stage-lr", "two-stage-gbdt"]
            };
            let device = ["device-blend", "device-ranked", "device-filtered", "device"];
            for &name in rankers.iter().chain(&device) {
                for (reference, against) in [("blend", blend), ("best source", best)] {
                    for m in ["NDCG@10", "mAP@10"] {
                        let row = table
                            .iter()
                            .find(|r| {
                                r["system"] == name
                                    && r["reference"] == reference
                                    && r["metric"] == m
                            })
                            .unwrap_or_else(|| panic!("no {name} vs {reference} {m} row"));
                        assert_eq!(row["against"], against["name"]);
                        let d = row["difference"].as_f64().unwrap();
                        let want = metric(system(cohort, name), m) - metric(against, m);
                        assert!(
                            (d - want).abs() < 1e-9,
                            "{name} vs {reference} {m}: {d} vs {want}"
                        );
                        assert!(row["se"].as_f64().unwrap() >= 0.0);
                    }
                }
            }
            let tests = cohort["rankers"].as_array().unwrap();
            assert_eq!(tests.len(), rankers.len());
            for r in tests {
                assert!(r["pairs"].as_u64().unwrap() > 0);
                if let Some(auc) = r["auc"].as_f64() {
                    assert!((0.0..=1.0).contains(&auc));
                }
            }
        }
    }
}

fn metric(system: &serde_json::Value, name: &str) -> f64 {
    let values = system["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m[0] == name)
        .unwrap_or_else(|| panic!("{name} missing"))[1]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect::<Vec<_>>();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[test]
fn eval_on_a_simulated_world_reports_every_source_the_oracle_and_peers() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let out = dir.path().join("eval");
    ok(&[
        "simulate",
        "--users",
        "400",
        "--items",
        "300",
        "--days",
        "21",
        "--seed",
        "3",
        "--out",
        p(&world),
    ]);
    let common = [
        "eval",
        "--world",
        p(&world),
        "--out",
        p(&out),
        "--dataset",
        "tiny",
        "--protocols",
        "temporal,leave-last-out,folds",
        "--folds",
        "1",
        "--fold-days",
        "7",
        "--factors",
        "16",
        "--iterations",
        "5",
        "--tower-epochs",
        "1",
    ];
    let md = ok(&common);
    assert!(
        md.contains("## temporal") && md.contains("## leave-last-out") && md.contains("## fold-1")
    );

    // Peers: a "perfect" peer that lists each warm user's relevant titles is scored like any
    // system. Build it from the split files and the report's users.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let loo = &report["splits"][1];
    assert_eq!(loo["name"], "leave-last-out");
    let warm = &loo["cohorts"][0];
    assert_eq!(warm["cohort"], "warm");
    let names: Vec<&str> = warm["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in [
        "popularity",
        "ials",
        "content",
        "two-tower",
        "neighbours",
        "blend",
        "oracle",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for s in warm["systems"].as_array().unwrap() {
        for m in ["Recall@10", "NDCG@10", "mAP@10", "Recall@100"] {
            let v = metric(s, m);
            assert!((0.0..=1.0).contains(&v), "{} {m} = {v}", s["name"]);
        }
    }
    let by = |name: &str| {
        warm["systems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    // The oracle knows the preference model: it must beat popularity by a clear margin.
    assert!(
        metric(&by("oracle"), "Recall@100") > metric(&by("popularity"), "Recall@100") + 0.05,
        "oracle {} vs popularity {}",
        metric(&by("oracle"), "Recall@100"),
        metric(&by("popularity"), "Recall@100")
    );
    // The second stage on every split and cohort; the world logs impressions and abandoned
    // plays, so its rankers train on labelled negatives, never sampled ones.
    check_two_stage(&report);
    assert!(md.contains("After the first stage"), "{md}");
    for split in report["splits"].as_array().unwrap() {
        let t = &split["ranker"];
        assert_eq!(t["sampled_negatives"], 0, "{}", split["name"]);
        assert!(
            t["impression_negatives"].as_u64().unwrap() + t["played_negatives"].as_u64().unwrap()
                > 0
        );
    }
    // The world's users follow a planted preference model: on every split the rankers order
    // the warm users' candidates better than chance.
    for split in report["splits"].as_array().unwrap() {
        let warm = &split["cohorts"][0];
        let shuffled = metric(system(warm, "blend-shuffled"), "NDCG@10");
        for name in ["two-stage-lr", "two-stage-gbdt"] {
            let ranked = metric(system(warm, name), "NDCG@10");
            assert!(
                ranked > shuffled,
                "{}: {name} NDCG@10 {ranked} vs shuffled {shuffled}",
                split["name"]
            );
        }
    }
    // Plots and split files exist.
    assert!(out.join("plots/leave-last-out-warm-bars.svg").exists());
    let train = std::fs::read_to_string(out.join("splits/leave-last-out/train.tsv")).unwrap();
    assert!(train.starts_with("user\titem\tweight\n"));
    let users = std::fs::read_to_string(out.join("splits/leave-last-out/users.tsv")).unwrap();

    // A peer that returns nothing for anyone scores zero; a malformed file is a clear error.
    let peers = dir.path().join("peers");
    std::fs::create_dir_all(peers.join("leave-last-out")).unwrap();
    let mut rows = String::from("user\trank\titem\n");
    for (k, u) in users.lines().skip(1).enumerate() {
        rows.push_str(&format!("{u}\t1\t{}\n", k % 300));
    }
    std::fs::write(peers.join("leave-last-out/ease.tsv"), rows).unwrap();
    // The same settings on the leave-last-out split only.
    let mut with_peers: Vec<&str> = common.to_vec();
    let at = with_peers.iter().position(|a| *a == "--protocols").unwrap();
    with_peers[at + 1] = "leave-last-out";
    with_peers.extend(["--peers", p(&peers)]);
    ok(&with_peers);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let systems = report["splits"][0]["cohorts"][0]["systems"]
        .as_array()
        .unwrap();
    assert!(systems.iter().any(|s| s["name"] == "ease"));

    std::fs::write(
        peers.join("leave-last-out/ease.tsv"),
        "user\trank\titem\n1\tx\t2\n",
    )
    .unwrap();
    let out2 = edgerec(&with_peers);
    assert!(!out2.status.success());
    let err = String::from_utf8_lossy(&out2.stderr);
    assert!(err.contains("ease.tsv:2"), "{err}");

    let bad = edgerec(&[
        "eval",
        "--world",
        p(&world),
        "--out",
        p(&out),
        "--protocols",
        "random",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown protocol"));
}

#[test]
fn two_stage_learns_a_planted_signal_from_sampled_negatives() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let world = dir.path().join("world");
    let out = dir.path().join("eval");
    PlantedGenres {
        users: 150,
        per_user: 14,
        step: 1_800,
        seed: 12_345,
    }
    .write(&raw);
    ok(&[
        "data",
        "import",
        "movielens-100k",
        "--src",
        p(&raw),
        "--out",
        p(&world),
    ]);
    let md = ok(&[
        "eval",
        "--world",
        p(&world),
        "--out",
        p(&out),
        "--protocols",
        "temporal,leave-last-out",
        "--factors",
        "8",
        "--iterations",
        "3",
        "--tower-epochs",
        "1",
        "--rank-window-days",
        "14",
        "--rank-trees",
        "30",
        "--rank-deep-epochs",
        "4",
    ]);
    assert!(md.contains("no labelled negative in the window"), "{md}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    check_two_stage(&report);
    for split in report["splits"].as_array().unwrap() {
        let t = &split["ranker"];
        assert!(t["sampled_negatives"].as_u64().unwrap() > 0, "{t}");
        assert_eq!(t["impression_negatives"], 0);
        let warm = &split["cohorts"][0];
        assert_eq!(warm["cohort"], "warm");
        // Users watch their favourite genre: a ranker that learned the genre-share features
        // orders the candidates far better than chance.
        let shuffled = metric(system(warm, "blend-shuffled"), "NDCG@10");
        assert!(has(warm, "two-stage-deep"));
        for name in ["two-stage-lr", "two-stage-gbdt", "two-stage-deep"] {
            let ranked = metric(system(warm, name), "NDCG@10");
            assert!(
                ranked > shuffled + 0.05,
                "{}: {name} NDCG@10 {ranked} vs shuffled {shuffled}",
                split["name"]
            );
            let auc = warm["rankers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["system"] == name)
                .unwrap()["auc"]
                .as_f64()
                .unwrap();
            assert!(auc > 0.6, "{}: {name} pooled AUC {auc}", split["name"]);
        }
    }
}
