//! Training data: an in-memory design matrix ([`Dataset`]) and the loader of a pipeline output
//! directory ([`Examples`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int8Type, Int32Type, Int64Type, UInt32Type};
use arrow_array::{Array, RecordBatch};
use edgerec::features::SparseFeatures;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Rows of dense features with a binary label and a non-negative weight each.
///
/// Invariants (checked by [`Dataset::new`]): at least one feature; `dense` is row-major with
/// `names.len()` values per row, all finite; one label and one finite, non-negative weight per
/// row.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    names: Vec<String>,
    dense: Vec<f32>,
    labels: Vec<bool>,
    weights: Vec<f32>,
}

impl Dataset {
    /// Checks and wraps the columns. `dense` holds `labels.len()` rows of `names.len()` values.
    pub fn new(
        names: Vec<String>,
        dense: Vec<f32>,
        labels: Vec<bool>,
        weights: Vec<f32>,
    ) -> Result<Dataset> {
        let d = names.len();
        if d == 0 {
            return Err(Error::Data("no dense features".into()));
        }
        if dense.len() != labels.len() * d {
            return Err(Error::Data(format!(
                "{} dense values for {} rows of {d} features",
                dense.len(),
                labels.len()
            )));
        }
        if weights.len() != labels.len() {
            return Err(Error::Data(format!(
                "{} weights for {} rows",
                weights.len(),
                labels.len()
            )));
        }
        if let Some(i) = dense.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "row {}: feature {:?} is {}",
                i / d,
                names[i % d],
                dense[i]
            )));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(Error::Data(format!("row {i}: weight {}", weights[i])));
        }
        Ok(Dataset {
            names,
            dense,
            labels,
            weights,
        })
    }

    /// Feature names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row-major dense values.
    pub fn dense(&self) -> &[f32] {
        &self.dense
    }

    /// Row `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.n_features();
        &self.dense[i * d..(i + 1) * d]
    }

    /// Labels.
    pub fn labels(&self) -> &[bool] {
        &self.labels
    }

    /// Weights.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The rows whose index passes `keep`, in order.
    pub fn select(&self, mut keep: impl FnMut(usize) -> bool) -> Dataset {
        let mut out = Dataset {
            names: self.names.clone(),
            dense: Vec::new(),
            labels: Vec::new(),
            weights: Vec::new(),
        };
        for i in 0..self.len() {
            if keep(i) {
                out.dense.extend_from_slice(self.row(i));
                out.labels.push(self.labels[i]);
                out.weights.push(self.weights[i]);
            }
        }
        out
    }
}

/// Rows of dense features with a label and a weight each, visited in a fixed order: a
/// [`Dataset`] in memory, or examples streamed from a pipeline directory
/// ([`crate::StreamedExamples`]). Trainers that take `&dyn Rows` hold a row at a time, so their
/// memory is bounded by the features, not the rows.
pub trait Rows {
    /// Feature names, in column order.
    fn names(&self) -> &[String];

    /// Calls `f(features, label, weight)` for every row, in the same order on every call.
    /// Features are finite and weights finite and non-negative (an error otherwise).
    fn scan(&self, f: &mut dyn FnMut(&[f32], bool, f32)) -> Result<()>;
}

impl Rows for Dataset {
    fn names(&self) -> &[String] {
        &self.names
    }

    fn scan(&self, f: &mut dyn FnMut(&[f32], bool, f32)) -> Result<()> {
        for i in 0..self.len() {
            f(self.row(i), self.labels[i], self.weights[i]);
        }
        Ok(())
    }
}

/// One rolling-origin validation window, as in the pipeline's `folds.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// 0 for the oldest window; examples carry it in `fold_window`.
    pub index: u32,
    /// First second of the window (the training cutoff).
    pub valid_start: i64,
    /// First second after the window.
    pub valid_end: i64,
}

/// A pipeline output directory in memory: the dense features, labels and weights of every
/// example, the validation window each falls in, the windows, and (when the files carry them)
/// the sparse ids the deep ranker reads.
#[derive(Debug, Clone)]
pub struct Examples {
    /// Every example (the columns `dense`, `label`, `weight`).
    pub data: Dataset,
    /// Per example: −1 before the first validation window, else the window's index.
    pub fold_window: Vec<i32>,
    /// The validation windows, oldest first.
    pub folds: Vec<Fold>,
    /// The columns [`SPARSE_COLUMNS`], one entry per example; `None` for files written before
    /// the pipeline had them (the dense-only rankers do not need them).
    pub sparse: Option<SparseColumns>,
    /// The search vocabulary (`features.json`'s `search_tokens`; token `i` has id `i + 1`),
    /// empty when absent.
    pub search_tokens: Vec<String>,
}

/// The sparse side of every example, for the deep ranker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseColumns {
    /// When the example happened (unix seconds): orders the early-stopping holdout.
    pub time: Vec<i64>,
    /// The title's ids: `movie`, `genres`, `actors`, `directors`, `tags` and `language` are
    /// read; the other fields are 0 or empty (no model reads them yet).
    pub features: Vec<SparseFeatures>,
    /// Titles the user watched before the example, most recent first.
    pub history: Vec<Vec<u32>>,
    /// The user's search-token ids before the example, most recent first.
    pub search: Vec<Vec<u32>>,
}

impl SparseColumns {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    fn check(&self) -> Result<()> {
        let n = self.time.len();
        if self.features.len() != n || self.history.len() != n || self.search.len() != n {
            return Err(Error::Data(format!(
                "sparse columns of unequal lengths: {n} times, {} feature rows, {} histories, {} searches",
                self.features.len(),
                self.history.len(),
                self.search.len()
            )));
        }
        Ok(())
    }
}

/// One entry of `folds.json` (the pipeline's fold report; only the window is read).
#[derive(Deserialize)]
struct FoldEntry {
    fold: Fold,
}

#[derive(Deserialize)]
pub(crate) struct Contract {
    pub(crate) dense: Vec<String>,
    #[serde(default)]
    search_tokens: Vec<String>,
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Columns read from an examples file.
const COLUMNS: [&str; 4] = ["label", "weight", "fold_window", "dense"];

/// Columns read, when present, for the deep ranker: `time` (Int64), `movie` and `language`
/// (UInt32), the others lists of UInt32. A file holds all of them or none.
pub const SPARSE_COLUMNS: [&str; 9] = [
    "time",
    "movie",
    "genres",
    "actors",
    "directors",
    "tags",
    "language",
    "history",
    "search",
];

impl Examples {
    /// Reads `dir/features.json` (the dense feature names), `dir/folds.json` (entries
    /// `{"fold": {"index", "valid_start", "valid_end"}, …}`, oldest first) and every
    /// `dir/examples/part-*.parquet` (in file-name order), columns `label` (Int8, 0/1),
    /// `weight` (Float32), `fold_window` (Int32) and `dense` (fixed-size list of Float32 as
    /// wide as `features.json` says), and [`SPARSE_COLUMNS`] when the files have them (every
    /// file or none). Errors name the file and column.
    pub fn load(dir: &Path) -> Result<Examples> {
        let contract: Contract = read_json(&dir.join("features.json"))?;
        let folds = read_folds(dir)?;
        let parts = list_parts(&dir.join("examples"))?;
        let (cols, with_sparse) = read_parts(&parts, contract.dense.len())?;
        if let Some(&k) = cols
            .fold
            .iter()
            .find(|&&k| k >= folds.len() as i32 || k < -1)
        {
            return Err(Error::Data(format!(
                "fold_window {k} but folds.json lists {} windows",
                folds.len()
            )));
        }
        let data = Dataset::new(contract.dense, cols.dense, cols.labels, cols.weights)?;
        let sparse = if with_sparse {
            cols.sparse.check()?;
            if cols.sparse.len() != data.len() {
                return Err(Error::Data(format!(
                    "{} sparse rows for {} examples",
                    cols.sparse.len(),
                    data.len()
                )));
            }
            Some(cols.sparse)
        } else {
            None
        };
        Ok(Examples {
            data,
            fold_window: cols.fold,
            folds,
            sparse,
            search_tokens: contract.search_tokens,
        })
    }
}

/// The windows of `dir/folds.json`; errors unless they are listed oldest first.
pub(crate) fn read_folds(dir: &Path) -> Result<Vec<Fold>> {
    let entries: Vec<FoldEntry> = read_json(&dir.join("folds.json"))?;
    let folds: Vec<Fold> = entries.into_iter().map(|e| e.fold).collect();
    if let Some((k, f)) = folds
        .iter()
        .enumerate()
        .find(|(k, f)| f.index as usize != *k)
    {
        return Err(Error::File {
            path: dir.join("folds.json"),
            message: format!("entry {k} has index {} (expected oldest first)", f.index),
        });
    }
    Ok(folds)
}

/// The `part-*.parquet` files of `parts_dir`, in file-name order; errors if there are none.
pub(crate) fn list_parts(parts_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(parts_dir).map_err(|source| Error::Io {
        path: parts_dir.to_path_buf(),
        source,
    })?;
    let mut parts: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: parts_dir.to_path_buf(),
                source,
            })?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("part-") && name.ends_with(".parquet") {
            parts.push(path);
        }
    }
    parts.sort();
    if parts.is_empty() {
        return Err(Error::File {
            path: parts_dir.to_path_buf(),
            message: "no part-*.parquet files".into(),
        });
    }
    Ok(parts)
}

/// The columns of every file of `parts` (in order; `d` dense values per row), and whether
/// they carry the sparse columns. Errors if some files have them and others not.
fn read_parts(parts: &[PathBuf], d: usize) -> Result<(Columns, bool)> {
    let mut cols = Columns::default();
    let mut with_sparse = None;
    for part in parts {
        let sparse = read_part(part, d, &mut cols)?;
        if *with_sparse.get_or_insert(sparse) != sparse {
            return Err(Error::File {
                path: part.clone(),
                message: format!(
                    "has {} the sparse columns, the first file {}",
                    if sparse { "" } else { "none of" },
                    if sparse { "none" } else { "all" }
                ),
            });
        }
    }
    Ok((cols, with_sparse == Some(true)))
}

#[derive(Default)]
pub(crate) struct Columns {
    pub(crate) dense: Vec<f32>,
    pub(crate) labels: Vec<bool>,
    pub(crate) weights: Vec<f32>,
    pub(crate) fold: Vec<i32>,
    sparse: SparseColumns,
}

/// Opens one part as Parquet: its reader builder and the root indices of [`COLUMNS`]. Errors
/// name the file, and the column when one is missing.
pub(crate) fn open_part(
    path: &Path,
) -> Result<(ParquetRecordBatchReaderBuilder<File>, Vec<usize>)> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut roots = Vec::new();
    for c in COLUMNS {
        roots.push(
            builder
                .schema()
                .index_of(c)
                .map_err(|_| column_err(path, c, "missing"))?,
        );
    }
    Ok((builder, roots))
}

/// Reads one part; returns whether it had the sparse columns.
fn read_part(path: &Path, width: usize, cols: &mut Columns) -> Result<bool> {
    let file_err = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let (builder, mut roots) = open_part(path)?;
    let present: Vec<Option<usize>> = SPARSE_COLUMNS
        .iter()
        .map(|c| builder.schema().index_of(c).ok())
        .collect();
    let sparse = present.iter().any(Option::is_some);
    if sparse {
        for (c, i) in SPARSE_COLUMNS.iter().zip(&present) {
            roots.push(i.ok_or_else(|| {
                column_err(path, c, "missing (the file has other sparse columns)")
            })?);
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| file_err(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| file_err(e.to_string()))?;
        read_batch(path, &batch, width, cols)?;
        if sparse {
            read_sparse(path, &batch, &mut cols.sparse)?;
        }
    }
    Ok(sparse)
}

/// Appends the [`SPARSE_COLUMNS`] of a batch.
fn read_sparse(path: &Path, batch: &RecordBatch, out: &mut SparseColumns) -> Result<()> {
    let column = |name: &str| {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| column_err(path, name, "missing"))?;
        if c.null_count() > 0 {
            return Err(column_err(path, name, format!("{} nulls", c.null_count())));
        }
        Ok(c)
    };
    let wrong_type =
        |name: &str, a: &dyn Array| column_err(path, name, format!("type {}", a.data_type()));
    let u32s = |name: &str| -> Result<Vec<u32>> {
        let c = column(name)?;
        let v = c
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| wrong_type(name, c.as_ref()))?;
        Ok(v.values().to_vec())
    };
    let lists = |name: &str| -> Result<Vec<Vec<u32>>> {
        let c = column(name)?;
        let list = c
            .as_list_opt::<i32>()
            .ok_or_else(|| wrong_type(name, c.as_ref()))?;
        let values = list
            .values()
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| wrong_type(name, c.as_ref()))?;
        if values.null_count() > 0 {
            return Err(column_err(path, name, "null ids in the lists"));
        }
        let offsets = list.value_offsets();
        (0..list.len())
            .map(|i| {
                let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                values
                    .values()
                    .get(a..b)
                    .map(<[u32]>::to_vec)
                    .ok_or_else(|| column_err(path, name, "offsets beyond the values"))
            })
            .collect()
    };
    let time = column("time")?;
    let time = time
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| wrong_type("time", time.as_ref()))?;
    out.time.extend_from_slice(time.values());
    let (movie, language) = (u32s("movie")?, u32s("language")?);
    let (genres, actors) = (lists("genres")?, lists("actors")?);
    let (directors, tags) = (lists("directors")?, lists("tags")?);
    for (((((movie, language), genres), actors), directors), tags) in movie
        .into_iter()
        .zip(language)
        .zip(genres)
        .zip(actors)
        .zip(directors)
        .zip(tags)
    {
        out.features.push(SparseFeatures {
            movie,
            language,
            genres,
            actors,
            directors,
            tags,
            ..Default::default()
        });
    }
    out.history.extend(lists("history")?);
    out.search.extend(lists("search")?);
    // All columns of a batch have its length (Arrow checks), so the vectors stay aligned.
    out.check()
}

pub(crate) fn column_err(path: &Path, column: &str, message: impl Into<String>) -> Error {
    Error::Column {
        path: path.to_path_buf(),
        column: column.to_string(),
        message: message.into(),
    }
}

pub(crate) fn read_batch(
    path: &Path,
    batch: &RecordBatch,
    width: usize,
    cols: &mut Columns,
) -> Result<()> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| column_err(path, name, "missing"))
    };
    let wrong_type =
        |name: &str, a: &dyn Array| column_err(path, name, format!("type {}", a.data_type()));
    let no_nulls = |name: &str, a: &dyn Array| {
        if a.null_count() > 0 {
            Err(column_err(path, name, format!("{} nulls", a.null_count())))
        } else {
            Ok(())
        }
    };

    let label = column("label")?;
    let label_values = label
        .as_primitive_opt::<Int8Type>()
        .ok_or_else(|| wrong_type("label", label.as_ref()))?;
    no_nulls("label", label.as_ref())?;
    for &v in label_values.values().iter() {
        match v {
            0 => cols.labels.push(false),
            1 => cols.labels.push(true),
            v => {
                return Err(column_err(
                    path,
                    "label",
                    format!("value {v} is not 0 or 1"),
                ));
            }
        }
    }

    let weight = column("weight")?;
    let weight_values = weight
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| wrong_type("weight", weight.as_ref()))?;
    no_nulls("weight", weight.as_ref())?;
    cols.weights.extend_from_slice(weight_values.values());

    let fold = column("fold_window")?;
    let fold_values = fold
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| wrong_type("fold_window", fold.as_ref()))?;
    no_nulls("fold_window", fold.as_ref())?;
    cols.fold.extend_from_slice(fold_values.values());

    let dense = column("dense")?;
    let list = dense
        .as_fixed_size_list_opt()
        .ok_or_else(|| wrong_type("dense", dense.as_ref()))?;
    no_nulls("dense", dense.as_ref())?;
    if list.value_length() as usize != width {
        return Err(column_err(
            path,
            "dense",
            format!(
                "{} values per row but features.json names {width}",
                list.value_length()
            ),
        ));
    }
    let values = list
        .values()
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| wrong_type("dense", dense.as_ref()))?;
    if values.null_count() > 0 {
        return Err(column_err(path, "dense", "null values in the vectors"));
    }
    let start = list.offset() * width;
    let slice = values
        .values()
        .get(start..start + list.len() * width)
        .ok_or_else(|| column_err(path, "dense", "vectors shorter than the rows"))?;
    cols.dense.extend_from_slice(slice);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int8Array, Int32Array};
    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::{FitConfig, evaluate};

    pub(crate) fn write_part(
        path: &Path,
        labels: &[i8],
        fold: &[i32],
        dense: &[[f32; 2]],
        width: i32,
    ) {
        let list = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
            dense.iter().map(|r| {
                Some(
                    r[..width as usize]
                        .iter()
                        .map(|&v| Some(v))
                        .collect::<Vec<_>>(),
                )
            }),
            width,
        );
        let n = labels.len();
        let batch = RecordBatch::try_from_iter([
            (
                "label",
                Arc::new(Int8Array::from(labels.to_vec())) as ArrayRef,
            ),
            (
                "weight",
                Arc::new(Float32Array::from(vec![1.5; n])) as ArrayRef,
            ),
            (
                "fold_window",
                Arc::new(Int32Array::from(fold.to_vec())) as ArrayRef,
            ),
            ("dense", Arc::new(list) as ArrayRef),
        ])
        .unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// A pipeline directory of 300 examples over two files: 200 before window 0, 50 in
    /// window 0, 50 in window 1; features `a`, `b` (`width` of them written).
    pub(crate) fn pipeline_dir(dir: &Path, width: i32) {
        std::fs::create_dir_all(dir.join("examples")).unwrap();
        std::fs::write(
            dir.join("features.json"),
            r#"{"format": "x", "dense": ["a", "b"]}"#,
        )
        .unwrap();
        let fold = |k: i64| {
            format!(
                r#"{{"fold": {{"index": {k}, "valid_start": {}, "valid_end": {}}}, "train_examples": 0}}"#,
                k * 10,
                k * 10 + 10
            )
        };
        std::fs::write(
            dir.join("folds.json"),
            format!("[{}, {}]", fold(0), fold(1)),
        )
        .unwrap();
        // Label follows a + b, with noise so the classes overlap.
        let mut labels = Vec::new();
        let mut folds = Vec::new();
        let mut dense = Vec::new();
        for i in 0..300 {
            let a = (i % 17) as f32 / 8.0 - 1.0;
            let b = (i % 5) as f32 - 2.0;
            labels.push(i8::from(
                a + 0.3 * b + ((i * 7919) % 13) as f32 / 6.0 - 1.0 > 0.0,
            ));
            folds.push(match i {
                0..200 => -1,
                200..250 => 0,
                _ => 1,
            });
            dense.push([a, b]);
        }
        write_part(
            &dir.join("examples/part-00000.parquet"),
            &labels[..150],
            &folds[..150],
            &dense[..150],
            width,
        );
        write_part(
            &dir.join("examples/part-00001.parquet"),
            &labels[150..],
            &folds[150..],
            &dense[150..],
            width,
        );
    }

    #[test]
    fn loads_a_pipeline_directory_and_evaluates_it() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 2);
        let examples = Examples::load(tmp.path()).unwrap();
        assert_eq!(examples.data.len(), 300);
        assert_eq!(examples.data.names(), ["a", "b"]);
        assert_eq!(examples.folds.len(), 2);
        assert_eq!(
            examples.data.row(201),
            [201.0 % 17.0 / 8.0 - 1.0, 1.0 - 2.0]
        );
        assert_eq!(examples.data.weights()[0], 1.5);
        let eval = evaluate(&examples, &FitConfig::default()).unwrap();
        assert_eq!(eval.folds.len(), 2);
        assert_eq!(eval.folds[0].train_examples, 200);
        assert_eq!(eval.folds[1].train_examples, 250);
        assert_eq!(eval.folds[1].valid_examples, 50);
        for f in &eval.folds {
            assert!(f.auc.unwrap() > 0.5, "{f:?}");
        }
    }

    /// Adds the sparse columns (all of them, or all but `skip`) to a part written by
    /// [`write_part`].
    fn add_sparse(path: &Path, skip: Option<&str>) {
        use arrow_array::builder::{ListBuilder, UInt32Builder};
        use arrow_array::{Int64Array, UInt32Array};
        let file = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1, "one batch per test part");
        let batch = &batches[0];
        let n = batch.num_rows();
        let list = |f: &dyn Fn(usize) -> Vec<u32>| {
            let mut b = ListBuilder::new(UInt32Builder::new());
            for i in 0..n {
                b.values().append_slice(&f(i));
                b.append(true);
            }
            Arc::new(b.finish()) as ArrayRef
        };
        let mut columns: Vec<(String, ArrayRef)> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .filter(|(name, _)| !SPARSE_COLUMNS.contains(&name.as_str()))
            .collect();
        let sparse: Vec<(&str, ArrayRef)> = vec![
            (
                "time",
                Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| 100 + i))),
            ),
            (
                "movie",
                Arc::new(UInt32Array::from_iter_values((0..n as u32).map(|i| i % 9))),
            ),
            ("genres", list(&|i| vec![1 + (i % 3) as u32])),
            ("actors", list(&|i| (0..(i % 4) as u32).collect())),
            ("directors", list(&|_| vec![])),
            ("tags", list(&|_| vec![2, 3])),
            ("language", Arc::new(UInt32Array::from(vec![1; n]))),
            ("history", list(&|i| vec![(i % 9) as u32, 4])),
            (
                "search",
                list(&|i| if i % 2 == 0 { vec![1] } else { vec![] }),
            ),
        ];
        columns.extend(
            sparse
                .into_iter()
                .filter(|(name, _)| Some(*name) != skip)
                .map(|(name, c)| (name.to_string(), c)),
        );
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// The error of loading `dir` (without printing the examples when there is none).
    fn load_error(dir: &Path) -> String {
        match Examples::load(dir) {
            Ok(_) => panic!("{} loaded", dir.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn loads_the_sparse_columns_when_present() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 2);
        // Dense-only files: no sparse side, the dense models work as before.
        assert!(Examples::load(tmp.path()).unwrap().sparse.is_none());
        let parts = ["part-00000.parquet", "part-00001.parquet"];
        for p in parts {
            add_sparse(&tmp.path().join("examples").join(p), None);
        }
        std::fs::write(
            tmp.path().join("features.json"),
            r#"{"dense": ["a", "b"], "search_tokens": ["x"]}"#,
        )
        .unwrap();
        let examples = Examples::load(tmp.path()).unwrap();
        assert_eq!(examples.search_tokens, ["x"]);
        let sparse = examples.sparse.as_ref().unwrap();
        assert_eq!(sparse.len(), 300);
        // Row 151 is row 1 of the second part.
        assert_eq!(sparse.time[151], 101);
        assert_eq!(sparse.features[151].movie, 1);
        assert_eq!(sparse.features[151].genres, [2]);
        assert_eq!(sparse.features[151].actors, [0]);
        assert!(sparse.features[151].directors.is_empty());
        assert_eq!(sparse.history[151], [1, 4]);
        assert!(sparse.search[151].is_empty());
        assert_eq!(sparse.search[150], [1]);
        assert_eq!(examples.data.len(), 300);
        // The deep ranker runs the same protocol on them.
        let config = crate::DeepConfig {
            max_epochs: 2,
            ..Default::default()
        };
        let importance = crate::ImportanceConfig {
            max_rows: 40,
            seed: 1,
        };
        let eval = crate::evaluate_deep(&examples, &config, Some(importance)).unwrap();
        assert_eq!(eval.folds.len(), 2);
        assert_eq!(eval.folds[1].train_examples, 250);
        assert_eq!(eval.epochs.len(), 2);
        assert_eq!((eval.importance.len(), eval.importance_rows), (2 + 8, 40));

        // A file missing one of them: an error naming the file and the column.
        add_sparse(&tmp.path().join("examples").join(parts[1]), Some("history"));
        let err = load_error(tmp.path());
        assert!(
            err.contains("part-00001.parquet") && err.contains("\"history\""),
            "{err}"
        );
        // One file with, one without: an error too.
        write_part(
            &tmp.path().join("examples").join(parts[1]),
            &[1],
            &[0],
            &[[0.0, 0.0]],
            2,
        );
        let err = load_error(tmp.path());
        assert!(err.contains("part-00001.parquet"), "{err}");
    }

    #[test]
    fn load_errors_name_the_file_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        pipeline_dir(tmp.path(), 1);
        let err = Examples::load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("part-00000.parquet") && err.contains("\"dense\""),
            "{err}"
        );

        let empty = tempfile::tempdir().unwrap();
        assert!(
            Examples::load(empty.path())
                .unwrap_err()
                .to_string()
                .contains("features.json")
        );
    }
}
