//! `edgerec eval` end to end on a small simulated world (it has a ground truth, so the oracle
//! must win), with peer rows from files, and the error paths.

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
