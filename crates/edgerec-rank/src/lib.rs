//! The ranking stage: a learned ranker that scores (user, title, context) examples written by the
//! training-data pipeline (`edgerec-pipeline`) and is exported as ONNX for the device.
//!
//! This first slice is a weighted, L2-regularised logistic regression on the pipeline's dense
//! features:
//!
//! * [`Examples::load`] reads a pipeline output directory (`examples/part-*.parquet`,
//!   `features.json`, `folds.json`);
//! * [`LogisticRegression::fit`] fits it by Newton's method (IRLS) on standardised features;
//! * [`evaluate`] runs the time-series protocol: for every validation window *k*, train on all
//!   examples before it and measure AUC and log-loss on the window;
//! * [`LogisticRegression::to_onnx`] writes the model (standardisation included) as ONNX that
//!   tract runs on the device, with the feature order in its metadata.
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
mod evaluate;
mod logistic;
mod metrics;
#[cfg(test)]
mod test_rng;
mod trees;

use std::path::PathBuf;

pub use data::{Dataset, Examples, Fold};
pub use evaluate::{Evaluation, FoldResult, TreeEvaluation, evaluate, evaluate_trees};
pub use logistic::{FitConfig, LogisticRegression, META_DENSE, META_RANKER, RANKER_KIND};
pub use metrics::{auc, log_loss};
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
