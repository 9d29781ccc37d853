//! `edgerec cycle` end to end on a tiny simulated world: one version a day; a device syncing
//! after a popularity day downloads less than after a full retrain and less than the whole
//! bundle, exactly what the publish said it lacks; between popularity days every section but
//! popularity, the media table's platform counts and the release stamp keeps its sha256 —
//! HNSW graphs included.

mod common;

use common::{ok, p};
use serde_json::Value;

#[test]
fn a_cycle_publishes_a_version_a_day_and_popularity_days_download_little() {
    let dir = tempfile::tempdir().unwrap();
    let (world, store, out) = (
        dir.path().join("world"),
        dir.path().join("store"),
        dir.path().join("cycle"),
    );
    let key = dir.path().join("release");
    ok(&[
        "simulate",
        "--users",
        "200",
        "--items",
        "150",
        "--days",
        "14",
        "--seed",
        "3",
        "--out",
        p(&world),
    ]);
    ok(&["keys", "generate", "--out", p(&key)]);
    let md = ok(&[
        "cycle",
        "--world",
        p(&world),
        "--store",
        p(&store),
        "--key",
        p(&key.with_extension("key")),
        "--days",
        "4",
        "--full-every",
        "3",
        "--ranker-every",
        "0",
        "--no-tune",
        "--tower-epochs",
        "1",
        "--int8",
        "--hnsw",
        "always",
        "--dataset",
        "tiny",
        "--out",
        p(&out),
    ]);
    assert!(
        md.contains(
            "| change | syncs | mean bytes downloaded per sync | full bundle bytes | ratio |"
        ),
        "{md}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        md[md.find("# Retraining cycle").unwrap()..]
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 4);
    let num = |d: &Value, f: &str| d[f].as_u64().unwrap_or_else(|| panic!("{f} of {d}"));

    // One version a day; full retrains on days 0 and 3, popularity in between.
    let versions: Vec<u64> = days.iter().map(|d| num(d, "version")).collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let changes: Vec<&str> = days.iter().map(|d| d["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["full", "popularity", "popularity", "full"]);
    for w in days.windows(2) {
        assert_eq!(num(&w[1], "cut") - num(&w[0], "cut"), 86_400);
    }

    // The first sync is a full download; every later one is what the publish said a device
    // on the previous version lacks.
    assert!(days[0]["first_sync"].as_bool().unwrap());
    assert_eq!(
        num(&days[0], "downloaded_bytes"),
        num(&days[0], "full_bytes")
    );
    for d in &days[1..] {
        assert!(!d["first_sync"].as_bool().unwrap());
        assert_eq!(num(d, "downloaded_bytes"), num(d, "delta_bytes"), "{d}");
    }

    // Popularity days download strictly less than the full retrain and the whole bundle.
    let full_retrain = num(&days[3], "downloaded_bytes");
    for d in &days[1..3] {
        let got = num(d, "downloaded_bytes");
        assert!(got < full_retrain, "{got} vs full retrain {full_retrain}");
        assert!(got < num(d, "full_bytes"), "{d}");
    }

    // Between two popularity days only popularity, the platform counts and the release stamp
    // may change: every other section keeps its sha256, the HNSW graphs included.
    let sections = |d: &Value| -> Vec<(String, String, bool)> {
        d["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["tag"].as_str().unwrap().to_string(),
                    s["sha256"].as_str().unwrap().to_string(),
                    s["changed"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (sections(&days[1]), sections(&days[2]));
    let tags: Vec<&str> = b.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(tags, a.iter().map(|s| s.0.as_str()).collect::<Vec<_>>());
    for t in [
        "META", "CATL", "FACT", "CONT", "TWRT", "HNSW", "MDIA", "RELS",
    ] {
        assert!(tags.contains(&t), "{t} missing from {tags:?}");
    }
    for ((tag, sha_a, _), (_, sha_b, changed)) in a.iter().zip(&b) {
        let may_change = ["POPL", "MDIA", "RELS"].contains(&tag.as_str());
        if !may_change {
            assert_eq!(sha_a, sha_b, "{tag} changed on a popularity day");
            assert!(!changed, "{tag}");
        }
    }
    let changed = |s: &[(String, String, bool)], tag: &str| s.iter().any(|x| x.0 == tag && x.2);
    assert!(changed(&b, "POPL") && changed(&b, "RELS"));
    // A full retrain refits the sources: the iALS factors change.
    assert!(changed(&sections(&days[3]), "FACT"));

    let rows: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["change"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["first sync", "popularity", "full retrain"]);
    assert!(
        std::fs::read(store.join("channels/cycle/manifest")).is_ok(),
        "the store serves the last release"
    );
}
