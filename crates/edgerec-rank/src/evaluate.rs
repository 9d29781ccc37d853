//! The time-series protocol: for every validation window, train on the past, score the window.

use serde::{Deserialize, Serialize};

use crate::{
    Dataset, Examples, FitConfig, Fold, GradientBoostedTrees, LogisticRegression, Result,
    TreeConfig, auc, log_loss,
};

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
    /// Newton steps of the fit (logistic regression) or trees (gradient-boosted trees).
    pub iterations: usize,
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
    let folds = evaluate_folds(examples, |train, valid| {
        let model = LogisticRegression::fit(train, config)?;
        Ok((model.score(valid)?, model.iterations()))
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
    let folds = evaluate_folds(examples, |train, valid| {
        let model = GradientBoostedTrees::fit(train, config)?;
        Ok((model.score(valid)?, model.n_trees()))
    })?;
    Ok(TreeEvaluation {
        config: *config,
        folds,
    })
}

/// The protocol for any model: `fit_score(train, valid)` returns the window's probabilities and
/// the fit's iteration count.
fn evaluate_folds(
    examples: &Examples,
    mut fit_score: impl FnMut(&Dataset, &Dataset) -> Result<(Vec<f32>, usize)>,
) -> Result<Vec<FoldResult>> {
    let mut folds = Vec::new();
    for fold in &examples.folds {
        let k = fold.index as i32;
        let train = examples.data.select(|i| examples.fold_window[i] < k);
        let valid = examples.data.select(|i| examples.fold_window[i] == k);
        if valid.is_empty() {
            continue;
        }
        let (probs, iterations) = fit_score(&train, &valid)?;
        let positives = valid.labels().iter().filter(|&&l| l).count();
        let (mut total, mut pos_weight) = (0.0f64, 0.0f64);
        for (&w, &y) in train.weights().iter().zip(train.labels()) {
            total += f64::from(w);
            if y {
                pos_weight += f64::from(w);
            }
        }
        let constant = vec![(pos_weight / total) as f32; valid.len()];
        folds.push(FoldResult {
            fold: fold.clone(),
            train_examples: train.len(),
            valid_examples: valid.len(),
            base_rate: positives as f64 / valid.len() as f64,
            auc: auc(&probs, valid.labels()),
            log_loss_weighted: log_loss(&probs, valid.labels(), Some(valid.weights())),
            log_loss: log_loss(&probs, valid.labels(), None),
            constant_log_loss_weighted: log_loss(&constant, valid.labels(), Some(valid.weights())),
            iterations,
        });
    }
    Ok(folds)
}
