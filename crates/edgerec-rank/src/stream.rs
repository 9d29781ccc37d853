//! Training data at scale: a pipeline output directory read batch by batch instead of loaded
//! ([`ExampleStream`]), the rows of some validation windows as [`Rows`]
//! ([`StreamedExamples`]), and a bounded uniform sample of any rows ([`sample`]).
//!
//! The logistic regression fits from [`Rows`] directly ([`crate::LogisticRegression::fit_rows`]):
//! each Newton step is a pass over the files, and memory is O(features²) plus one record batch,
//! whatever the number of examples. The boosted trees need their data in memory (the histogram
//! builder revisits every row once per tree), so at scale they train on a [`sample`] of at most
//! `cap` rows: memory O(cap × features), one pass to draw it.

use std::ops::Range;
use std::path::{Path, PathBuf};

use parquet::arrow::ProjectionMask;

use crate::data::{
    Columns, Contract, column_err, list_parts, open_part, read_batch, read_folds, read_json,
};
use crate::{Dataset, Error, Fold, Result, Rows};

/// Rows per record batch read from the files (the stream's working set).
const BATCH_ROWS: usize = 8192;

/// A pipeline output directory (`features.json`, `folds.json`, `examples/part-*.parquet`) read
/// one record batch at a time: the columns `label`, `weight`, `fold_window` and `dense`, in
/// file-name order, as [`crate::Examples::load`] reads them.
#[derive(Debug, Clone)]
pub struct ExampleStream {
    names: Vec<String>,
    folds: Vec<Fold>,
    parts: Vec<PathBuf>,
}

impl ExampleStream {
    /// Reads `features.json` and `folds.json` and lists the part files; checks that every file
    /// is Parquet with the four columns (footers only). Errors name the file and column.
    pub fn open(dir: &Path) -> Result<ExampleStream> {
        let contract: Contract = read_json(&dir.join("features.json"))?;
        if contract.dense.is_empty() {
            return Err(Error::Data("features.json names no dense features".into()));
        }
        let folds = read_folds(dir)?;
        let parts = list_parts(&dir.join("examples"))?;
        for part in &parts {
            reader(part)?;
        }
        Ok(ExampleStream {
            names: contract.dense,
            folds,
            parts,
        })
    }

    /// The dense feature names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The validation windows, oldest first.
    pub fn folds(&self) -> &[Fold] {
        &self.folds
    }

    /// The part files, in reading order.
    pub fn parts(&self) -> &[PathBuf] {
        &self.parts
    }

    /// Calls `f(batch, fold_window)` for every record batch in order (at most [`BATCH_ROWS`]
    /// rows each), `fold_window` holding each row's window (−1 before the first). Errors on a
    /// value out of range (a window `folds.json` does not list, a label not 0/1, a non-finite
    /// feature or weight), naming the file.
    pub fn for_each_batch(&self, f: &mut dyn FnMut(&Dataset, &[i32])) -> Result<()> {
        let windows = self.folds.len() as i32;
        for part in &self.parts {
            for batch in reader(part)? {
                let batch = batch.map_err(|e| Error::File {
                    path: part.clone(),
                    message: e.to_string(),
                })?;
                let mut cols = Columns::default();
                read_batch(part, &batch, self.names.len(), &mut cols)?;
                if let Some(&k) = cols.fold.iter().find(|&&k| k >= windows || k < -1) {
                    return Err(column_err(
                        part,
                        "fold_window",
                        format!("window {k} but folds.json lists {windows}"),
                    ));
                }
                let data = Dataset::new(self.names.clone(), cols.dense, cols.labels, cols.weights)
                    .map_err(|e| Error::File {
                        path: part.clone(),
                        message: e.to_string(),
                    })?;
                f(&data, &cols.fold);
            }
        }
        Ok(())
    }

    /// The rows whose window is in `windows` (−1 is the time before the first window).
    pub fn windows(&self, windows: Range<i32>) -> StreamedExamples<'_> {
        StreamedExamples {
            stream: self,
            windows,
        }
    }

    /// Everything before validation window `k`: its training rows under the time-series
    /// protocol (`k` = the number of windows gives every example).
    pub fn before(&self, k: i32) -> StreamedExamples<'_> {
        self.windows(-1..k)
    }

    /// The rows of validation window `k`.
    pub fn window(&self, k: i32) -> StreamedExamples<'_> {
        self.windows(k..k + 1)
    }

    /// `score` run on the rows of window `k` batch by batch (the rows are not held, only their
    /// scores, labels and weights); the first error stops the scoring and comes back.
    pub fn score_window(
        &self,
        k: i32,
        score: &dyn Fn(&Dataset) -> Result<Vec<f32>>,
    ) -> Result<WindowScores> {
        let mut scores = WindowScores::default();
        let mut failed = None;
        self.for_each_batch(&mut |batch, windows| {
            if failed.is_some() {
                return;
            }
            let valid = batch.select(|i| windows[i] == k);
            if valid.is_empty() {
                return;
            }
            match score(&valid) {
                Ok(p) => scores.add(p, &valid),
                Err(e) => failed = Some(e),
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(scores),
        }
    }
}

/// A model's scores on some validation rows, with the rows' labels and weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowScores {
    /// Predicted probabilities, in row order.
    pub probs: Vec<f32>,
    /// The rows' labels.
    pub labels: Vec<bool>,
    /// The rows' weights.
    pub weights: Vec<f32>,
}

impl WindowScores {
    /// Appends `probs`, the scores of `rows`, with the rows' labels and weights.
    pub fn add(&mut self, probs: Vec<f32>, rows: &Dataset) {
        self.probs.extend(probs);
        self.labels.extend_from_slice(rows.labels());
        self.weights.extend_from_slice(rows.weights());
    }
}

/// A Parquet reader of the four columns of `path`, [`BATCH_ROWS`] rows at a time.
fn reader(path: &Path) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file_err = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let (builder, roots) = open_part(path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| file_err(e.to_string()))
}

/// Some windows' rows of an [`ExampleStream`], read from the files on every [`Rows::scan`].
#[derive(Debug, Clone)]
pub struct StreamedExamples<'a> {
    stream: &'a ExampleStream,
    windows: Range<i32>,
}

impl Rows for StreamedExamples<'_> {
    fn names(&self) -> &[String] {
        &self.stream.names
    }

    fn scan(&self, f: &mut dyn FnMut(&[f32], bool, f32)) -> Result<()> {
        self.stream.for_each_batch(&mut |data, fold| {
            for (i, &w) in fold.iter().enumerate() {
                if self.windows.contains(&w) {
                    f(data.row(i), data.labels()[i], data.weights()[i]);
                }
            }
        })
    }
}

/// A uniform sample of at most `cap` of `rows` (reservoir sampling, seeded): every row when
/// there are at most `cap`, in order; otherwise each row is kept with probability `cap / n`,
/// weights unchanged. One pass; memory O(cap × features). Errors if `cap` is 0.
pub fn sample(rows: &dyn Rows, cap: usize, seed: u64) -> Result<Dataset> {
    if cap == 0 {
        return Err(Error::Data("a sample of 0 rows".into()));
    }
    let d = rows.names().len();
    let mut dense: Vec<f32> = Vec::new();
    let mut labels: Vec<bool> = Vec::new();
    let mut weights: Vec<f32> = Vec::new();
    let mut rng = SplitMix64(seed);
    let mut seen: u64 = 0;
    rows.scan(&mut |x, y, w| {
        seen += 1;
        if labels.len() < cap {
            dense.extend_from_slice(x);
            labels.push(y);
            weights.push(w);
        } else {
            // Algorithm R: row `seen` replaces a uniformly chosen slot with probability cap/seen.
            let j = rng.below(seen);
            if j < cap as u64 {
                let j = j as usize;
                dense[j * d..(j + 1) * d].copy_from_slice(x);
                labels[j] = y;
                weights[j] = w;
            }
        }
    })?;
    Dataset::new(rows.names().to_vec(), dense, labels, weights)
}

/// A small seeded generator (SplitMix64) for the sample.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0), by rejection.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next();
            if v < zone {
                return v % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tests::{pipeline_dir, write_part};
    use crate::{Examples, FitConfig, GradientBoostedTrees, LogisticRegression, TreeConfig};

    #[test]
    fn streamed_rows_fit_the_in_memory_model_bit_for_bit() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 2);
        let examples = Examples::load(tmp.path()).unwrap();
        let stream = ExampleStream::open(tmp.path()).unwrap();
        assert_eq!(stream.names(), ["a", "b"]);
        assert_eq!(stream.folds().len(), 2);
        assert_eq!(stream.parts().len(), 2);
        for k in 0..=2 {
            let memory = examples.data.select(|i| examples.fold_window[i] < k);
            let streamed = sample(&stream.before(k), usize::MAX, 0).unwrap();
            assert_eq!(streamed, memory, "window {k}");
            let config = FitConfig::default();
            let a = LogisticRegression::fit(&memory, &config).unwrap();
            let b = LogisticRegression::fit_rows(&stream.before(k), &config).unwrap();
            assert_eq!(a, b, "window {k}");
        }
        let valid = sample(&stream.window(1), 1000, 0).unwrap();
        assert_eq!(
            valid,
            examples.data.select(|i| examples.fold_window[i] == 1)
        );
        assert_eq!(valid.len(), 50);
    }

    #[test]
    fn the_streamed_protocol_gives_the_in_memory_results() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 2);
        let examples = Examples::load(tmp.path()).unwrap();
        let stream = ExampleStream::open(tmp.path()).unwrap();
        let config = FitConfig::default();
        let streamed = crate::evaluate_stream(&stream, &config).unwrap();
        assert_eq!(streamed, crate::evaluate(&examples, &config).unwrap());
        assert_eq!(streamed.folds.len(), 2);
        let trees = TreeConfig {
            iterations: 10,
            ..TreeConfig::default()
        };
        let all = crate::evaluate_trees_stream(&stream, &trees, 1000, 1).unwrap();
        assert_eq!(all, crate::evaluate_trees(&examples, &trees).unwrap());
        // On a sample of 100 of the 200 / 250 training rows: other trees, the same windows.
        let sampled = crate::evaluate_trees_stream(&stream, &trees, 100, 1).unwrap();
        assert_ne!(sampled, all);
        for (a, b) in sampled.folds.iter().zip(&all.folds) {
            assert_eq!(
                (a.train_examples, a.valid_examples),
                (b.train_examples, b.valid_examples)
            );
        }
    }

    #[test]
    fn the_sample_is_bounded_seeded_and_uniform() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 2);
        let stream = ExampleStream::open(tmp.path()).unwrap();
        let all = stream.before(2);
        let full = sample(&all, 300, 0).unwrap();
        assert_eq!(full.len(), 300);
        let a = sample(&all, 60, 7).unwrap();
        assert_eq!(a.len(), 60);
        assert_eq!(a, sample(&all, 60, 7).unwrap());
        assert_ne!(a, sample(&all, 60, 8).unwrap());
        // Every sampled row is a row of the data with its label and weight.
        for i in 0..a.len() {
            let found = (0..full.len()).any(|j| {
                full.row(j) == a.row(i)
                    && full.labels()[j] == a.labels()[i]
                    && full.weights()[j] == a.weights()[i]
            });
            assert!(found, "row {i}");
        }
        // Each row is kept with probability cap/n: rows numbered by their one feature.
        let n = 1000;
        let numbered = Dataset::new(
            vec!["i".into()],
            (0..n).map(|i| i as f32).collect(),
            (0..n).map(|i| i % 2 == 0).collect(),
            vec![1.0; n],
        )
        .unwrap();
        let mut deciles = [0usize; 10];
        for seed in 0..400 {
            let s = sample(&numbered, 50, seed).unwrap();
            assert_eq!(s.len(), 50);
            for i in 0..s.len() {
                let row = s.row(i)[0] as usize;
                assert_eq!(s.labels()[i], row.is_multiple_of(2));
                deciles[row * 10 / n] += 1;
            }
        }
        // 2,000 draws per decile expected; the binomial sd is about 42.
        for (d, &c) in deciles.iter().enumerate() {
            assert!((c as f64 - 2000.0).abs() < 250.0, "decile {d}: {c}");
        }
        assert!(sample(&all, 0, 1).is_err());
        // Trees fit on the sample.
        let config = TreeConfig {
            iterations: 5,
            ..TreeConfig::default()
        };
        GradientBoostedTrees::fit(&sample(&all, 200, 3).unwrap(), &config).unwrap();
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 2);
        // A window folds.json does not list.
        write_part(
            &tmp.path().join("examples/part-00002.parquet"),
            &[1, 0],
            &[0, 5],
            &[[0.0, 1.0], [1.0, 0.0]],
            2,
        );
        let stream = ExampleStream::open(tmp.path()).unwrap();
        let e = LogisticRegression::fit_rows(&stream.before(2), &FitConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("part-00002") && e.contains("fold_window"), "{e}");
        // Non-finite features.
        write_part(
            &tmp.path().join("examples/part-00002.parquet"),
            &[1, 0],
            &[0, 1],
            &[[f32::NAN, 1.0], [1.0, 0.0]],
            2,
        );
        let e = sample(&ExampleStream::open(tmp.path()).unwrap().before(2), 10, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("part-00002") && e.contains("NaN"), "{e}");
        // The wrong width fails when read; a file that is not Parquet fails at open.
        write_part(
            &tmp.path().join("examples/part-00002.parquet"),
            &[1],
            &[0],
            &[[0.0, 1.0]],
            1,
        );
        let e = sample(&ExampleStream::open(tmp.path()).unwrap().before(2), 10, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("part-00002") && e.contains("dense"), "{e}");
        std::fs::write(
            tmp.path().join("examples/part-00002.parquet"),
            b"not parquet",
        )
        .unwrap();
        let e = ExampleStream::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("part-00002"), "{e}");
    }
}
