//! The time-series protocol: for every validation window, train on the past, score the window.

use serde::{Deserialize, Serialize};

use crate::deep::{DeepConfig, DeepRanker, EpochLog};
use crate::importance::{Importance, permutation_importance};
use crate::metrics::{CalibrationBin, calibration, calibration_error};
use crate::{
    Dataset, ExampleStream, Examples, FitConfig, Fold, GradientBoostedTrees, LogisticRegression,
    Result, Rows, StreamedExamples, TreeConfig, auc, log_loss, sample,
};

/// Bins of each window's reliability diagram.
pub const CALIBRATION_BINS: usize = 10;

/// The metrics of one validation window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// The window.
    pub fold: Fold,
    /// Training examples (all before the window).
    pub train_examples: usize,
    /// Examples in the window.
    pub valid_examples: usize,
    /// Share of positives in the window (unweighted).
    pub base_rate: f64,
    /// Unweighted ROC AUC (`None` if the window holds one class).
    pub auc: Option<f64>,
    /// Weighted log-loss of the model.
    pub log_loss_weighted: Option<f64>,
    /// Unweighted log-loss of the model.
    pub log_loss: Option<f64>,
    /// Weighted log-loss of predicting the training set's weighted base rate for everyone.
    pub constant_log_loss_weighted: Option<f64>,
    /// Newton steps of the fit (logistic regression), trees (gradient-boosted trees) or epochs
    /// kept (deep ranker: the best epoch, 1-based).
    pub iterations: usize,
    /// Weighted expected calibration error over [`CALIBRATION_BINS`] equal-width bins.
    pub calibration_error: Option<f64>,
    /// The window's weighted reliability diagram.
    pub calibration: Vec<CalibrationBin>,
}

/// The evaluation of every window, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The settings of every fit.
    pub config: FitConfig,
    /// One entry per window with examples.
    pub folds: Vec<FoldResult>,
}

/// For every window `k` of `examples.folds` that holds examples: fit on the examples with
/// `fold_window < k` (everything before the window), score the window's examples. A window
/// with no examples is skipped; a window whose past cannot be fitted (e.g. no positives) is an
/// error.
pub fn evaluate(examples: &Examples, config: &FitConfig) -> Result<Evaluation> {
    let folds = evaluate_folds(examples, |s| {
        let model = LogisticRegression::fit(&s.train, config)?;
        Ok((model.score(&s.valid)?, model.iterations()))
    })?;
    Ok(Evaluation {
        config: *config,
        folds,
    })
}

/// The evaluation of [`GradientBoostedTrees`] on every window, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEvaluation {
    /// The settings of every fit.
    pub config: TreeConfig,
    /// One entry per window with examples; `iterations` is the number of trees.
    pub folds: Vec<FoldResult>,
}

/// [`evaluate`] for [`GradientBoostedTrees`]: the same windows, the same metrics.
pub fn evaluate_trees(examples: &Examples, config: &TreeConfig) -> Result<TreeEvaluation> {
    let folds = evaluate_folds(examples, |s| {
        let model = GradientBoostedTrees::fit(&s.train, config)?;
        Ok((model.score(&s.valid)?, model.n_trees()))
    })?;
    Ok(TreeEvaluation {
        config: *config,
        folds,
    })
}

/// The evaluation of [`DeepRanker`] on every window, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepEvaluation {
    /// The settings of every fit.
    pub config: DeepConfig,
    /// One entry per window with examples; `iterations` is the epoch kept (1-based).
    pub folds: Vec<FoldResult>,
    /// Per window: every epoch's training and holdout loss.
    pub epochs: Vec<Vec<EpochLog>>,
    /// Permutation importance on the newest window, with that window's model (empty unless
    /// asked for).
    pub importance: Vec<Importance>,
    /// Rows the importance was measured on.
    pub importance_rows: usize,
}

/// Settings of the permutation importance in [`evaluate_deep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportanceConfig {
    /// Most validation rows (a seeded sample).
    pub max_rows: usize,
    /// Seed of the sample and the permutations.
    pub seed: u64,
}

/// [`evaluate`] for [`DeepRanker`] (the examples must carry the sparse columns): the same
/// windows, the same metrics. Each window's model stops early on the newest share of its own
/// training examples, never on the window. With `importance`, the newest window's model also
/// gets a [`permutation_importance`] on that window.
pub fn evaluate_deep(
    examples: &Examples,
    config: &DeepConfig,
    importance: Option<ImportanceConfig>,
) -> Result<DeepEvaluation> {
    let mut epochs = Vec::new();
    let mut newest = (Vec::new(), 0);
    let last = examples.folds.len() as u32;
    let folds = evaluate_folds(examples, |s| {
        let model = DeepRanker::fit(examples, &s.train_rows, config)?;
        epochs.push(model.epochs().to_vec());
        if let Some(c) = importance {
            let k = examples.fold_window[s.valid_rows[0]] as u32;
            if k + 1 == last {
                let imp =
                    permutation_importance(&model, examples, &s.valid_rows, c.max_rows, c.seed)?;
                newest = (imp, s.valid_rows.len().min(c.max_rows));
            }
        }
        Ok((
            model.score(examples, &s.valid_rows)?,
            model.best_epoch() + 1,
        ))
    })?;
    Ok(DeepEvaluation {
        config: *config,
        folds,
        epochs,
        importance: newest.0,
        importance_rows: newest.1,
    })
}

/// A window's metrics from its model's probabilities on its examples (`labels`, `weights`)
/// and its past's totals `(rows, weight, positive weight)`.
fn fold_result(
    fold: &Fold,
    (train_rows, total, pos_weight): (usize, f64, f64),
    probs: &[f32],
    labels: &[bool],
    weights: &[f32],
    iterations: usize,
) -> FoldResult {
    let positives = labels.iter().filter(|&&l| l).count();
    let constant = vec![(pos_weight / total) as f32; labels.len()];
    let bins = calibration(probs, labels, weights, CALIBRATION_BINS);
    FoldResult {
        fold: fold.clone(),
        train_examples: train_rows,
        valid_examples: labels.len(),
        base_rate: positives as f64 / labels.len() as f64,
        auc: auc(probs, labels),
        log_loss_weighted: log_loss(probs, labels, Some(weights)),
        log_loss: log_loss(probs, labels, None),
        constant_log_loss_weighted: log_loss(&constant, labels, Some(weights)),
        iterations,
        calibration_error: calibration_error(&bins),
        calibration: bins,
    }
}

/// A model's probabilities for a batch of rows.
pub(crate) type Scorer = Box<dyn Fn(&Dataset) -> Result<Vec<f32>>>;

/// The protocol on examples streamed from their files: for every window `k` with examples,
/// `fit(rows before k)` returns the model's scorer and iteration count, and the window is
/// scored batch by batch. Memory: the fit's, plus a probability, label and weight per
/// validation row.
fn evaluate_stream_folds(
    stream: &ExampleStream,
    mut fit: impl FnMut(&StreamedExamples<'_>) -> Result<(Scorer, usize)>,
) -> Result<Vec<FoldResult>> {
    let mut folds = Vec::new();
    for fold in stream.folds() {
        let k = fold.index as i32;
        let mut valid_rows = 0usize;
        stream.window(k).scan(&mut |_, _, _| valid_rows += 1)?;
        if valid_rows == 0 {
            continue;
        }
        let train = stream.before(k);
        let (mut rows, mut total, mut pos_weight) = (0usize, 0.0f64, 0.0f64);
        train.scan(&mut |_, y, w| {
            rows += 1;
            total += f64::from(w);
            if y {
                pos_weight += f64::from(w);
            }
        })?;
        let (score, iterations) = fit(&train)?;
        let s = stream.score_window(k, &score)?;
        folds.push(fold_result(
            fold,
            (rows, total, pos_weight),
            &s.probs,
            &s.labels,
            &s.weights,
            iterations,
        ));
    }
    Ok(folds)
}

/// [`evaluate`] on examples streamed from their files ([`ExampleStream`]): every window's
/// model is [`LogisticRegression::fit_rows`] on the rows before it, the same model
/// [`evaluate`] fits from memory, so the results are the same; memory is O(features²) plus
/// the validation window's scores.
pub fn evaluate_stream(stream: &ExampleStream, config: &FitConfig) -> Result<Evaluation> {
    let folds = evaluate_stream_folds(stream, |train| {
        let model = LogisticRegression::fit_rows(train, config)?;
        let iterations = model.iterations();
        let score: Scorer = Box::new(move |d| model.score(d));
        Ok((score, iterations))
    })?;
    Ok(Evaluation {
        config: *config,
        folds,
    })
}

/// [`evaluate_trees`] on examples streamed from their files: every window's trees are fitted
/// on a uniform [`sample`] of at most `cap` of the rows before it (seeded by `seed`), so
/// memory is O(cap × features) whatever the number of examples. With `cap` at least the
/// number of examples the results are [`evaluate_trees`]'s.
pub fn evaluate_trees_stream(
    stream: &ExampleStream,
    config: &TreeConfig,
    cap: usize,
    seed: u64,
) -> Result<TreeEvaluation> {
    let folds = evaluate_stream_folds(stream, |train| {
        let model = GradientBoostedTrees::fit(&sample(train, cap, seed)?, config)?;
        let trees = model.n_trees();
        let score: Scorer = Box::new(move |d| model.score(d));
        Ok((score, trees))
    })?;
    Ok(TreeEvaluation {
        config: *config,
        folds,
    })
}

/// One window's training and validation examples, as datasets and as row indices into the
/// examples.
pub(crate) struct Split {
    pub train: Dataset,
    pub valid: Dataset,
    pub train_rows: Vec<usize>,
    pub valid_rows: Vec<usize>,
}

/// The protocol for any model: `fit_score(split)` returns the window's probabilities and the
/// fit's iteration count.
fn evaluate_folds(
    examples: &Examples,
    mut fit_score: impl FnMut(&Split) -> Result<(Vec<f32>, usize)>,
) -> Result<Vec<FoldResult>> {
    let mut folds = Vec::new();
    for fold in &examples.folds {
        let k = fold.index as i32;
        let rows = |keep: &dyn Fn(i32) -> bool| -> Vec<usize> {
            (0..examples.data.len())
                .filter(|&i| keep(examples.fold_window[i]))
                .collect()
        };
        let (train_rows, valid_rows) = (rows(&|w| w < k), rows(&|w| w == k));
        if valid_rows.is_empty() {
            continue;
        }
        let split = Split {
            train: examples.data.select(|i| examples.fold_window[i] < k),
            valid: examples.data.select(|i| examples.fold_window[i] == k),
            train_rows,
            valid_rows,
        };
        let (probs, iterations) = fit_score(&split)?;
        let (train, valid) = (&split.train, &split.valid);
        let (mut total, mut pos_weight) = (0.0f64, 0.0f64);
        for (&w, &y) in train.weights().iter().zip(train.labels()) {
            total += f64::from(w);
            if y {
                pos_weight += f64::from(w);
            }
        }
        folds.push(fold_result(
            fold,
            (train.len(), total, pos_weight),
            &probs,
            valid.labels(),
            valid.weights(),
            iterations,
        ));
    }
    Ok(folds)
}
