//! The pipeline on a Ballista cluster: `edgerec cluster up` starts a scheduler and two
//! executors as separate processes on loopback, `pipeline --engine ballista` runs the same plans
//! there (the per-user merge on the executors), and the examples must be the rows the embedded
//! engine writes; `cluster down` stops every process.

use std::path::{Path, PathBuf};

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

mod common;
use common::{edgerec, fails, ok, p};

/// Stops the cluster even when the test fails midway.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = edgerec(&["cluster", "down", "--dir", p(&self.0)]);
    }
}

/// Every example row, each column rendered, sorted; and the files' bytes in name order.
fn examples(out: &Path) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut rows = Vec::new();
    let mut bytes = Vec::new();
    for f in &files {
        bytes.push(std::fs::read(f).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let options = FormatOptions::default();
            let columns: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for r in 0..batch.num_rows() {
                let row: Vec<String> = columns.iter().map(|c| c.value(r).to_string()).collect();
                rows.push(row.join("\t"));
            }
        }
    }
    rows.sort();
    (rows, bytes)
}

fn report(out: &Path) -> serde_json::Value {
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    r.as_object_mut().unwrap().remove("seconds");
    r
}

#[test]
fn the_pipeline_on_a_ballista_cluster_writes_the_embedded_engines_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    ok(&[
        "simulate",
        "--users",
        "400",
        "--items",
        "300",
        "--days",
        "21",
        "--seed",
        "5",
        "--out",
        p(&world),
    ]);
    let embedded = tmp.path().join("embedded");
    ok(&[
        "pipeline",
        "--world",
        p(&world),
        "--out",
        p(&embedded),
        "--partitions",
        "2",
    ]);

    let dir = tmp.path().join("cluster");
    let url = ok(&["cluster", "up", "--executors", "2", "--dir", p(&dir)]);
    let cluster = Cluster(dir.clone());
    let url = url.trim().to_string();
    assert!(url.starts_with("df://127.0.0.1:"), "{url}");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cluster.json")).unwrap()).unwrap();
    let pids: Vec<u32> = info["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(pids.len(), 3, "a scheduler and two executors: {info}");
    assert!(pids.iter().all(|&p| edgerec_cluster::alive(p)));
    // A second cluster in the same directory is refused while the first runs.
    let err = fails(&["cluster", "up", "--dir", p(&dir)]);
    assert!(err.contains("already up"), "{err}");

    let ballista = tmp.path().join("ballista");
    ok(&[
        "pipeline",
        "--world",
        p(&world),
        "--out",
        p(&ballista),
        "--engine",
        "ballista",
        "--scheduler",
        &url,
        "--partitions",
        "2",
    ]);

    let (rows_e, bytes_e) = examples(&embedded);
    let (rows_b, bytes_b) = examples(&ballista);
    assert!(
        rows_e.len() > 1_000,
        "a world with examples: {}",
        rows_e.len()
    );
    assert_eq!(rows_e.len(), rows_b.len(), "same number of examples");
    for (e, b) in rows_e.iter().zip(&rows_b) {
        assert_eq!(e, b, "the first differing row (sorted)");
    }
    // The plan sorts its output, so the files are the same bytes too.
    assert!(
        bytes_e == bytes_b,
        "same rows, but the example files differ in bytes"
    );
    assert_eq!(report(&embedded), report(&ballista));
    for f in ["features.json", "folds.json"] {
        assert_eq!(
            std::fs::read(embedded.join(f)).unwrap(),
            std::fs::read(ballista.join(f)).unwrap(),
            "{f}"
        );
    }

    // Both executors ran tasks: each wrote shuffle files for this job into its work directory
    // (removed when it stops).
    for k in 0..2 {
        let work = dir.join(format!("executor-{k}"));
        let used = std::fs::read_dir(&work).map(|d| d.count()).unwrap_or(0);
        assert!(
            used > 0,
            "executor {k} left no job data in {}",
            work.display()
        );
    }

    drop(cluster);
    assert!(
        pids.iter().all(|&p| !edgerec_cluster::alive(p)),
        "cluster down stops every process"
    );
    assert!(!dir.join("cluster.json").exists());
    let out = ok(&["cluster", "down", "--dir", p(&dir)]);
    assert!(out.contains("no cluster"), "{out}");
    let err = fails(&[
        "pipeline",
        "--world",
        p(&world),
        "--out",
        p(&ballista),
        "--engine",
        "ballista",
        "--scheduler",
        &url,
    ]);
    assert!(err.contains("error:"), "{err}");
}
