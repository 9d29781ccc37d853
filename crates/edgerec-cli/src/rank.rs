//! `edgerec rank`: the ranking stage's learned rankers (the edgerec-rank crate).
//!
//! `rank train` evaluates a weighted logistic regression on the pipeline's examples with the
//! time-series protocol (for every validation window, train on everything before it) and then
//! trains it on all examples: `report.md`, `report.json` and `ranker.onnx`. It does the same
//! for gradient-boosted trees (forust, exported as an ONNX-ML `TreeEnsembleClassifier`):
//! its rows in both reports and `ranker-gbdt.onnx`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use edgerec_rank::{
    Evaluation, Examples, FitConfig, FoldResult, GradientBoostedTrees, LogisticRegression,
    TreeConfig, TreeEvaluation,
};
use serde::Serialize;

/// Coefficients (and tree feature importances) listed in the report.
const TOP_COEFFICIENTS: usize = 20;

/// Arguments of `edgerec rank`.
#[derive(clap::Args)]
pub struct RankArgs {
    #[command(subcommand)]
    command: RankCommand,
}

#[derive(clap::Subcommand)]
enum RankCommand {
    /// Evaluate a weighted logistic-regression ranker and gradient-boosted trees on every
    /// validation window, then train both on all examples: report.md, report.json, ranker.onnx,
    /// ranker-gbdt.onnx.
    Train {
        /// A pipeline output directory (examples/, features.json, folds.json).
        #[arg(long)]
        examples: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// L2 penalty on the standardised coefficients, in units of example weight.
        #[arg(long, default_value_t = 1.0)]
        lambda: f64,
        /// Boosting rounds (trees) of the gradient-boosted trees.
        #[arg(long, default_value_t = TreeConfig::default().iterations)]
        trees: usize,
        /// Learning rate (shrinkage) of the gradient-boosted trees.
        #[arg(long, default_value_t = TreeConfig::default().learning_rate)]
        learning_rate: f32,
        /// Deepest level of each tree (the root is depth 0).
        #[arg(long, default_value_t = TreeConfig::default().max_depth)]
        max_depth: usize,
    },
}

/// `report.json`.
#[derive(Serialize)]
struct Report {
    ranker: &'static str,
    examples: usize,
    features: usize,
    evaluation: Evaluation,
    final_iterations: usize,
    intercept: f64,
    dropped: Vec<String>,
    coefficients: Vec<(String, f64)>,
    gbdt: GbdtReport,
}

/// The gradient-boosted trees' part of `report.json`.
#[derive(Serialize)]
struct GbdtReport {
    ranker: &'static str,
    evaluation: TreeEvaluation,
    trees: usize,
    base_score: f32,
    /// Normalised total split gain per feature, largest first.
    importance: Vec<(String, f64)>,
}

/// Runs `edgerec rank …`; returns the markdown report.
pub fn run(args: &RankArgs) -> Result<String> {
    match &args.command {
        RankCommand::Train {
            examples,
            out,
            lambda,
            trees,
            learning_rate,
            max_depth,
        } => {
            let trees = TreeConfig {
                iterations: *trees,
                learning_rate: *learning_rate,
                max_depth: *max_depth,
                ..Default::default()
            };
            train(examples, out, *lambda, &trees)
        }
    }
}

fn train(
    dir: &std::path::Path,
    out: &std::path::Path,
    lambda: f64,
    tree_config: &TreeConfig,
) -> Result<String> {
    let examples =
        Examples::load(dir).with_context(|| format!("loading examples from {}", dir.display()))?;
    let config = FitConfig {
        lambda,
        ..Default::default()
    };
    let evaluation =
        edgerec_rank::evaluate(&examples, &config).context("time-series evaluation")?;
    let model =
        LogisticRegression::fit(&examples.data, &config).context("training on all examples")?;
    let onnx = model.to_onnx().context("exporting the ranker")?;
    let tree_evaluation = edgerec_rank::evaluate_trees(&examples, tree_config)
        .context("time-series evaluation of the trees")?;
    let trees = GradientBoostedTrees::fit(&examples.data, tree_config)
        .context("training the trees on all examples")?;
    let trees_onnx = trees.to_onnx().context("exporting the trees")?;
    let report = Report {
        ranker: edgerec_rank::RANKER_KIND,
        examples: examples.data.len(),
        features: examples.data.n_features(),
        evaluation,
        final_iterations: model.iterations(),
        intercept: model.intercept(),
        dropped: model.dropped().iter().map(|s| s.to_string()).collect(),
        coefficients: model.coefficients(),
        gbdt: GbdtReport {
            ranker: edgerec_rank::GBDT_KIND,
            evaluation: tree_evaluation,
            trees: trees.n_trees(),
            base_score: trees.base_score(),
            importance: trees
                .ranked_importance()
                .into_iter()
                .map(|(name, v)| (name.to_string(), v))
                .collect(),
        },
    };
    let md = markdown(&report);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::write(&out.join("ranker.onnx"), &onnx)?;
    crate::write(&out.join("ranker-gbdt.onnx"), &trees_onnx)?;
    crate::write(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    crate::write(&out.join("report.md"), md.as_bytes())?;
    Ok(md)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.4}"))
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Ranker: {}\n", r.ranker);
    let _ = writeln!(
        s,
        "{} examples, {} dense features, lambda {}.\n",
        r.examples, r.features, r.evaluation.config.lambda
    );
    let _ = writeln!(s, "## Time-series evaluation\n");
    let _ = writeln!(
        s,
        "Each window's model is trained on every example before the window. AUC is unweighted; \
         the constant predictor predicts the training set's weighted base rate.\n"
    );
    fold_table(&mut s, &r.evaluation.folds, "Newton steps");
    let _ = writeln!(
        s,
        "\n## Top {TOP_COEFFICIENTS} coefficients (model on all examples)\n"
    );
    let _ = writeln!(
        s,
        "Change in log-odds per standard deviation of the feature. Intercept {:.4}; {} Newton steps.\n",
        r.intercept, r.final_iterations
    );
    let _ = writeln!(s, "| feature | coefficient |\n|---|---:|");
    for (name, c) in r.coefficients.iter().take(TOP_COEFFICIENTS) {
        let _ = writeln!(s, "| {name} | {c:+.4} |");
    }
    if !r.dropped.is_empty() {
        let _ = writeln!(
            s,
            "\nDropped (constant in the training data): {}.",
            r.dropped.join(", ")
        );
    }
    let g = &r.gbdt;
    let _ = writeln!(s, "\n# Ranker: {}\n", g.ranker);
    let _ = writeln!(
        s,
        "Gradient-boosted trees (forust): {} trees, learning rate {}, max depth {}; base score \
         {:.4} (log-odds).\n",
        g.trees, g.evaluation.config.learning_rate, g.evaluation.config.max_depth, g.base_score
    );
    let _ = writeln!(s, "## Time-series evaluation\n");
    fold_table(&mut s, &g.evaluation.folds, "trees");
    let _ = writeln!(
        s,
        "\n## Top {TOP_COEFFICIENTS} features by gain (model on all examples)\n"
    );
    let _ = writeln!(s, "| feature | share of gain |\n|---|---:|");
    for (name, v) in g.importance.iter().take(TOP_COEFFICIENTS) {
        let _ = writeln!(s, "| {name} | {v:.4} |");
    }
    s
}

fn fold_table(s: &mut String, folds: &[FoldResult], iterations: &str) {
    let _ = writeln!(
        s,
        "| fold | train n | valid n | base rate | AUC | log-loss (weighted) | log-loss (unweighted) | constant log-loss (weighted) | {iterations} |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in folds {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {} | {} | {} | {} | {} |",
            f.fold.index,
            f.train_examples,
            f.valid_examples,
            f.base_rate,
            opt(f.auc),
            opt(f.log_loss_weighted),
            opt(f.log_loss),
            opt(f.constant_log_loss_weighted),
            f.iterations
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny synthetic world through the pipeline and `rank train`: every window's AUC beats
    /// chance and the ranker loads in tract.
    #[test]
    fn trains_on_a_simulated_world() {
        let tmp = tempfile::tempdir().unwrap();
        let (world, pipeline, out) = (
            tmp.path().join("world"),
            tmp.path().join("pipeline"),
            tmp.path().join("rank"),
        );
        let cfg = edgerec_data::world::WorldConfig {
            users: 300,
            items: 200,
            days: 21,
            seed: 1,
            start: edgerec_data::world::DEFAULT_START,
        };
        let opts = edgerec_data::sim::SimOptions {
            progress: false,
            ..Default::default()
        };
        edgerec_data::sim::simulate(&cfg, &world, &opts).unwrap();
        let config = edgerec_pipeline::PipelineConfig {
            folds: 2,
            fold_days: 5,
            ..Default::default()
        };
        edgerec_pipeline::block_on(edgerec_pipeline::run(&world, &pipeline, &config))
            .unwrap()
            .unwrap();

        let trees = TreeConfig {
            iterations: 20,
            ..Default::default()
        };
        let md = train(&pipeline, &out, 1.0, &trees).unwrap();
        assert!(md.contains("| fold |"), "{md}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        let folds = report["evaluation"]["folds"].as_array().unwrap();
        assert_eq!(folds.len(), 2, "{md}");
        for f in folds {
            assert!(f["auc"].as_f64().unwrap() > 0.5, "{md}");
        }
        let tree_folds = report["gbdt"]["evaluation"]["folds"].as_array().unwrap();
        assert_eq!(tree_folds.len(), 2, "{md}");
        for f in tree_folds {
            assert!(f["auc"].as_f64().unwrap() > 0.5, "{md}");
        }
        let onnx = std::fs::read(out.join("ranker.onnx")).unwrap();
        let model = edgerec_twotower::onnx::decode(&onnx).unwrap();
        edgerec_twotower::onnx::check_model(&model).unwrap();
        assert_eq!(
            edgerec_twotower::onnx::metadata(&model, edgerec_rank::META_RANKER),
            Some(edgerec_rank::RANKER_KIND)
        );
        let gbdt = std::fs::read(out.join("ranker-gbdt.onnx")).unwrap();
        let gbdt = edgerec_twotower::onnx::decode(&gbdt).unwrap();
        edgerec_twotower::onnx::check_model(&gbdt).unwrap();
        assert_eq!(
            edgerec_twotower::onnx::metadata(&gbdt, edgerec_rank::META_RANKER),
            Some(edgerec_rank::GBDT_KIND)
        );
    }
}
