//! The ranking stage: a learned ranker that scores (user, title, context) examples written by the
//! training-data pipeline (`edgerec-pipeline`) and is exported as ONNX for the device.
//!
//! Three rankers share one loader and one evaluation protocol:
//!
//! * [`Examples::load`] reads a pipeline output directory (`examples/part-*.parquet`,
//!   `features.json`, `folds.json`; the sparse columns when the files have them);
//! * [`LogisticRegression::fit`] fits it by Newton's method (IRLS) on standardised features;
//! * [`evaluate`] runs the time-series protocol: for every validation window *k*, train on all
//!   examples before it and measure AUC and log-loss on the window;
//! * [`LogisticRegression::to_onnx`] writes the model (standardisation included) as ONNX that
//!   tract runs on the device, with the feature order in its metadata;
//! * [`GradientBoostedTrees`] (forust) and [`evaluate_trees`]: the same for boosted trees;
//! * [`DeepRanker`] ([`deep`]): embedding bags over the sparse ids (title, genres, people,
//!   tags, language, the user's recent titles and searches) and the dense vector into a ReLU
//!   network, trained in candle with early stopping, built from the device's own assembler
//!   ([`edgerec::ranker::RankerContract::assemble`]) and exported under the device's input
//!   contract `edgerec-ranker/1`; [`evaluate_deep`] and [`permutation_importance`];
//! * [`calibration`] and [`calibration_error`]: each window's reliability diagram;
//! * at scale, [`ExampleStream`] reads the same directory a record batch at a time:
//!   [`LogisticRegression::fit_rows`] fits from it in O(features²) memory (the same model as
//!   from memory), and the trees fit on a bounded uniform [`sample`] of it.
//!
//! ```
//! use edgerec_rank::{Dataset, FitConfig, LogisticRegression};
//!
//! # fn main() -> Result<(), edgerec_rank::Error> {
//! // One feature; the label follows it.
//! let dense = vec![-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 0.2];
//! let labels = vec![false, false, true, false, true, true, true, false];
//! let data = Dataset::new(vec!["x".into()], dense, labels, vec![1.0; 8])?;
//! let model = LogisticRegression::fit(&data, &FitConfig::default())?;
//! let p = model.predict(&[-3.0, 3.0])?;
//! assert!(p[0] < 0.5 && p[1] > 0.5);
//! let onnx = model.to_onnx()?; // input `dense` [batch, 1], output `p_watch` [batch, 1]
//! assert!(!onnx.is_empty());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod data;
pub mod deep;
mod evaluate;
mod importance;
mod logistic;
mod metrics;
mod stream;
mod trees;

use std::path::PathBuf;

pub use data::{Dataset, Examples, Fold, Rows, SPARSE_COLUMNS, SparseColumns};
pub use deep::{
    DEEP_KIND, DeepConfig, DeepRanker, EpochLog, META_BAGS, META_CONTRACT, META_SEARCH_TOKENS,
    OUTPUT, bag_len,
};
pub use evaluate::{
    CALIBRATION_BINS, DeepEvaluation, Evaluation, FoldResult, ImportanceConfig, TreeEvaluation,
    evaluate, evaluate_deep, evaluate_stream, evaluate_trees, evaluate_trees_stream,
};
pub use importance::{Importance, permutation_importance};
pub use logistic::{FitConfig, LogisticRegression, META_DENSE, META_RANKER, RANKER_KIND};
pub use metrics::{CalibrationBin, auc, calibration, calibration_error, log_loss};
pub use stream::{ExampleStream, StreamedExamples, WindowScores, sample};
pub use trees::{GBDT_KIND, GradientBoostedTrees, TreeConfig};

/// Errors of the ranking stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not what it should be (not Parquet, not the expected JSON, …).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A column of an examples file is missing or has the wrong type or values.
    #[error("{path}: column {column:?}: {message}")]
    Column {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// The training or scoring data cannot be used (empty, not finite, one class, …).
    #[error("invalid data: {0}")]
    Data(String),
    /// The model could not be fitted (the Newton system is singular or the fit diverged).
    #[error("fit failed: {0}")]
    Fit(String),
    /// Writing the ONNX model failed.
    #[error(transparent)]
    Onnx(#[from] edgerec_onnx::OnnxError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
