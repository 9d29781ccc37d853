//! Deployable rankers (the edgerec-rank crate), as `edgerec rank` trains them.
//!
//! [`train_on_examples`] (`rank train`) evaluates a weighted logistic regression on the pipeline's examples with the
//! time-series protocol (for every validation window, train on everything before it) and then
//! trains it on all examples: `report.md`, `report.json` and `ranker.onnx`. It does the same
//! for gradient-boosted trees (forust, exported as an ONNX-ML `TreeEnsembleClassifier`):
//! its rows in both reports and `ranker-gbdt.onnx`; and, when the examples carry the sparse
//! columns, for the deep ranker (embedding bags + MLP in candle, `ranker-deep.onnx` under the
//! device's contract `edgerec-ranker/1`) with its permutation importance on the newest window.
//!
//! The report ends with a reliability diagram per window (`plots/calibration-fold-K.svg`,
//! every ranker) and the model selection: mean weighted log-loss and AUC over the windows, the
//! ONNX size, and the selected ranker (lowest mean weighted log-loss).
//!
//! [`train_on_candidates`] (`rank train-candidates`) trains the same three rankers for worlds
//! without labelled negatives (MovieLens: no impressions, every rating a full play), the way
//! the offline evaluation's second stage does ([`crate::ranking`]): on
//! [`ranking::final_split`] (all of the world's
//! data), the candidate sources are refitted on everything before the last `window_days` days
//! and the blend's candidates at the window start are the examples — positive when the user
//! watched the title in the window, else a sampled negative. It writes the same model files as
//! `rank train`, plus the feature contract (`features.json`, the pipeline's format), so
//! `bundle build --features … --ranker …` can carry them. There is no held-out evaluation here
//! (`edgerec eval` measures the two-stage system): the report gives the examples, the in-sample
//! AUC and the limits.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use edgerec_eval::plot::{Line, line_chart};
use edgerec_rank::{
    DeepConfig, DeepEvaluation, DeepRanker, EpochLog, Evaluation, ExampleStream, Examples,
    FitConfig, FoldResult, GradientBoostedTrees, ImportanceConfig, LogisticRegression, TreeConfig,
    TreeEvaluation,
};
use edgerec_train::ials::IalsConfig;
use edgerec_twotower::TowerConfig;
use serde::Serialize;

use crate::Artifacts;
use crate::data::WorldData;
use crate::ranking::{self, RankConfig, RankerTraining};
use crate::sources::{self, SourceConfig};
use crate::split;

/// Validation rows the deep ranker's permutation importance uses (a seeded sample).
const IMPORTANCE_ROWS: usize = 10_000;

/// Coefficients (and tree feature importances) listed in the report.
const TOP_COEFFICIENTS: usize = 20;

/// Settings of [`train_on_examples`].
#[derive(Debug, Clone)]
pub struct ExamplesConfig {
    /// L2 penalty of the logistic regression on the standardised coefficients, in units of
    /// example weight.
    pub lambda: f64,
    /// The gradient-boosted trees.
    pub trees: TreeConfig,
    /// The deep ranker; `None` leaves it out.
    pub deep: Option<DeepConfig>,
    /// Stream the examples from their files instead of loading them: memory no longer grows
    /// with the number of examples. The logistic regression fits the same model by passes
    /// over the files; the trees fit on a uniform sample of at most this many rows (seeded by
    /// the trees' seed); the deep ranker is left out (it trains in memory only).
    pub stream_sample: Option<usize>,
}

impl Default for ExamplesConfig {
    fn default() -> Self {
        ExamplesConfig {
            lambda: 1.0,
            trees: TreeConfig::default(),
            deep: Some(DeepConfig::default()),
            stream_sample: None,
        }
    }
}

/// Settings of [`train_on_candidates`].
#[derive(Debug, Clone)]
pub struct CandidatesConfig {
    /// The training window: the world's last N days (the sources are fitted on everything
    /// before them).
    pub window_days: u32,
    /// Blend candidates per user at the window start (the blend's top N).
    pub candidates: usize,
    /// Unwatched candidates kept per positive (a seeded sample).
    pub sampled_negatives: usize,
    /// A play is a positive above this fraction of the title.
    pub positive_above: f32,
    /// L2 penalty of the logistic regression.
    pub lambda: f64,
    /// The gradient-boosted trees (their seed is [`CandidatesConfig::seed`]).
    pub trees: TreeConfig,
    /// Most epochs of the deep ranker; `None` leaves it out.
    pub deep_epochs: Option<usize>,
    /// iALS factors (candidate source).
    pub factors: usize,
    /// iALS iterations (candidate source).
    pub iterations: usize,
    /// Two-tower training epochs (candidate source; 0 leaves it out of the blend).
    pub tower_epochs: usize,
    /// Seed of the sources, the sampled negatives and every ranker.
    pub seed: u64,
}

impl Default for CandidatesConfig {
    fn default() -> Self {
        let rank = RankConfig::default();
        CandidatesConfig {
            window_days: rank.window_days,
            candidates: rank.candidates,
            sampled_negatives: rank.sampled_negatives,
            positive_above: rank.positive_above,
            lambda: 1.0,
            trees: TreeConfig::default(),
            deep_epochs: Some(DeepConfig::default().max_epochs),
            factors: IalsConfig::default().factors,
            iterations: IalsConfig::default().iterations,
            tower_epochs: 8,
            seed: 1,
        }
    }
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
    /// `None` when the examples have no sparse columns or `--no-deep`.
    deep: Option<DeepReport>,
    /// Why the deep ranker was not trained.
    deep_skipped: Option<String>,
    /// One row per ranker; the selected one has the lowest mean weighted log-loss.
    selection: Vec<Selection>,
    /// The selected ranker's kind.
    selected: String,
}

/// The deep ranker's part of `report.json`.
#[derive(Serialize)]
struct DeepReport {
    ranker: &'static str,
    evaluation: DeepEvaluation,
    /// The model trained on all examples: its epochs and the one kept (0-based).
    final_epochs: Vec<EpochLog>,
    best_epoch: usize,
    params: usize,
    /// `field:rows:len`, as in the model's metadata.
    bags: Vec<String>,
    /// Wall-clock seconds for the evaluation and the final fit.
    seconds: f64,
}

/// One ranker in the model-selection table.
#[derive(Serialize)]
struct Selection {
    ranker: &'static str,
    file: &'static str,
    mean_log_loss_weighted: Option<f64>,
    mean_auc: Option<f64>,
    mean_calibration_error: Option<f64>,
    onnx_bytes: usize,
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
    /// Streaming: every fit's uniform sample of at most this many rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<usize>,
}

/// Trains the deep ranker: evaluation with importance, then the model on all examples.
fn train_deep(examples: &Examples, config: &DeepConfig) -> Result<(DeepReport, Vec<u8>)> {
    let started = Instant::now();
    let importance = ImportanceConfig {
        max_rows: IMPORTANCE_ROWS,
        seed: config.seed,
    };
    let evaluation = edgerec_rank::evaluate_deep(examples, config, Some(importance))
        .context("time-series evaluation of the deep ranker")?;
    let all: Vec<usize> = (0..examples.data.len()).collect();
    let model = DeepRanker::fit(examples, &all, config)
        .context("training the deep ranker on all examples")?;
    let onnx = model.to_onnx().context("exporting the deep ranker")?;
    let report = DeepReport {
        ranker: edgerec_rank::DEEP_KIND,
        evaluation,
        final_epochs: model.epochs().to_vec(),
        best_epoch: model.best_epoch(),
        params: model.n_params(),
        bags: model
            .bags()
            .iter()
            .map(|b| format!("{}:{}:{}", b.field, b.rows, b.len))
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((report, onnx))
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.collect::<Option<_>>()?;
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn selection(
    ranker: &'static str,
    file: &'static str,
    folds: &[FoldResult],
    onnx: &[u8],
) -> Selection {
    Selection {
        ranker,
        file,
        mean_log_loss_weighted: mean(folds.iter().map(|f| f.log_loss_weighted)),
        mean_auc: mean(folds.iter().map(|f| f.auc)),
        mean_calibration_error: mean(folds.iter().map(|f| f.calibration_error)),
        onnx_bytes: onnx.len(),
    }
}

/// One reliability diagram per window: every ranker's bins and the diagonal.
fn calibration_plots(report: &Report) -> Vec<(String, String)> {
    let mut rankers: Vec<(&str, &[FoldResult])> = vec![
        (report.ranker, &report.evaluation.folds),
        (report.gbdt.ranker, &report.gbdt.evaluation.folds),
    ];
    if let Some(d) = &report.deep {
        rankers.push((d.ranker, &d.evaluation.folds));
    }
    let mut out = Vec::new();
    for (k, fold) in report.evaluation.folds.iter().enumerate() {
        let mut lines = vec![Line {
            series: "perfectly calibrated".into(),
            points: vec![(0.0, 0.0, 0.0), (1.0, 1.0, 0.0)],
        }];
        for (name, folds) in &rankers {
            if let Some(f) = folds.get(k) {
                lines.push(Line {
                    series: name.to_string(),
                    points: f
                        .calibration
                        .iter()
                        .map(|b| (b.predicted, b.observed, 0.0))
                        .collect(),
                });
            }
        }
        let title = format!(
            "Calibration, window {} (weighted, 10 bins)",
            fold.fold.index
        );
        let svg = line_chart(
            &title,
            "mean predicted P(watch)",
            "observed positive rate",
            &lines,
        );
        out.push((format!("calibration-fold-{}.svg", fold.fold.index), svg));
    }
    out
}

/// The logistic regression and the trees, evaluated on every window and trained on all
/// examples: `(evaluation, model, onnx, trees evaluation, trees, trees onnx)`.
type LinearAndTrees = (
    Evaluation,
    LogisticRegression,
    Vec<u8>,
    TreeEvaluation,
    GradientBoostedTrees,
    Vec<u8>,
);

fn linear_and_trees(examples: &Examples, config: &ExamplesConfig) -> Result<LinearAndTrees> {
    let fit = FitConfig {
        lambda: config.lambda,
        ..Default::default()
    };
    let evaluation = edgerec_rank::evaluate(examples, &fit).context("time-series evaluation")?;
    let model =
        LogisticRegression::fit(&examples.data, &fit).context("training on all examples")?;
    let onnx = model.to_onnx().context("exporting the ranker")?;
    let tree_evaluation = edgerec_rank::evaluate_trees(examples, &config.trees)
        .context("time-series evaluation of the trees")?;
    let trees = GradientBoostedTrees::fit(&examples.data, &config.trees)
        .context("training the trees on all examples")?;
    let trees_onnx = trees.to_onnx().context("exporting the trees")?;
    Ok((evaluation, model, onnx, tree_evaluation, trees, trees_onnx))
}

/// [`linear_and_trees`] on examples streamed from `dir`'s files (trees on samples of at most
/// `cap` rows): the examples' count and width, the models, and the deep ranker left out.
fn streamed_linear_and_trees(
    dir: &Path,
    config: &ExamplesConfig,
    cap: usize,
) -> Result<((usize, usize), LinearAndTrees, DeepOutcome)> {
    let stream = ExampleStream::open(dir)
        .with_context(|| format!("opening the examples in {}", dir.display()))?;
    let fit = FitConfig {
        lambda: config.lambda,
        ..Default::default()
    };
    let all = stream.before(stream.folds().len() as i32);
    let evaluation =
        edgerec_rank::evaluate_stream(&stream, &fit).context("time-series evaluation")?;
    let model = LogisticRegression::fit_rows(&all, &fit).context("training on all examples")?;
    let onnx = model.to_onnx().context("exporting the ranker")?;
    let tree_evaluation =
        edgerec_rank::evaluate_trees_stream(&stream, &config.trees, cap, config.trees.seed)
            .context("time-series evaluation of the trees")?;
    let drawn = edgerec_rank::sample(&all, cap, config.trees.seed)
        .context("sampling the examples for the trees")?;
    let trees = GradientBoostedTrees::fit(&drawn, &config.trees)
        .context("training the trees on all examples")?;
    let trees_onnx = trees.to_onnx().context("exporting the trees")?;
    let mut n = 0usize;
    edgerec_rank::Rows::scan(&all, &mut |_, _, _| n += 1)?;
    let deep = DeepOutcome {
        report: None,
        onnx: None,
        skipped: Some(
            "streaming (--stream): the deep ranker trains on examples in memory only".into(),
        ),
    };
    Ok((
        (n, stream.names().len()),
        (evaluation, model, onnx, tree_evaluation, trees, trees_onnx),
        deep,
    ))
}

/// The deep ranker's report and model, or why it was not trained.
struct DeepOutcome {
    report: Option<DeepReport>,
    onnx: Option<Vec<u8>>,
    skipped: Option<String>,
}

fn deep_ranker(examples: &Examples, config: Option<&DeepConfig>) -> Result<DeepOutcome> {
    let skipped = |why: &str| DeepOutcome {
        report: None,
        onnx: None,
        skipped: Some(why.to_string()),
    };
    Ok(match (config, &examples.sparse) {
        (None, _) => skipped("--no-deep"),
        (Some(_), None) => skipped(
            "the examples have no sparse columns (written by an older pipeline): rerun \
             `edgerec pipeline`",
        ),
        (Some(c), Some(_)) => {
            let (report, onnx) = train_deep(examples, c)?;
            DeepOutcome {
                report: Some(report),
                onnx: Some(onnx),
                skipped: None,
            }
        }
    })
}

/// The selected ranker: the lowest mean weighted log-loss over the windows.
fn selected(selections: &[Selection]) -> String {
    selections
        .iter()
        .filter(|s| s.mean_log_loss_weighted.is_some())
        .min_by(|a, b| {
            a.mean_log_loss_weighted
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.mean_log_loss_weighted.unwrap_or(f64::INFINITY))
        })
        .map_or("none", |s| s.ranker)
        .to_string()
}

/// `rank train`: every ranker evaluated on the time-series windows of the pipeline's examples
/// in `dir`, then trained on all of them. Artifacts: `ranker.onnx`, `ranker-gbdt.onnx`,
/// `ranker-deep.onnx` (unless left out), `plots/`, `report.json`, and the markdown report.
pub fn train_on_examples(dir: &Path, config: &ExamplesConfig) -> Result<Artifacts> {
    let ((n, d), linear_trees, deep) = match config.stream_sample {
        Some(cap) => streamed_linear_and_trees(dir, config, cap)?,
        None => {
            let examples = Examples::load(dir)
                .with_context(|| format!("loading examples from {}", dir.display()))?;
            (
                (examples.data.len(), examples.data.n_features()),
                linear_and_trees(&examples, config)?,
                deep_ranker(&examples, config.deep.as_ref())?,
            )
        }
    };
    let (evaluation, model, onnx, tree_evaluation, trees, trees_onnx) = linear_trees;
    let DeepOutcome {
        report: deep,
        onnx: deep_onnx,
        skipped: deep_skipped,
    } = deep;
    let mut selections = vec![
        selection(
            edgerec_rank::RANKER_KIND,
            "ranker.onnx",
            &evaluation.folds,
            &onnx,
        ),
        selection(
            edgerec_rank::GBDT_KIND,
            "ranker-gbdt.onnx",
            &tree_evaluation.folds,
            &trees_onnx,
        ),
    ];
    if let (Some(d), Some(bytes)) = (&deep, &deep_onnx) {
        selections.push(selection(
            edgerec_rank::DEEP_KIND,
            "ranker-deep.onnx",
            &d.evaluation.folds,
            bytes,
        ));
    }
    let selected = selected(&selections);
    let report = Report {
        ranker: edgerec_rank::RANKER_KIND,
        examples: n,
        features: d,
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
            sample: config.stream_sample,
        },
        deep,
        deep_skipped,
        selection: selections,
        selected,
    };
    let mut out = Artifacts {
        markdown: markdown(&report),
        files: Vec::new(),
    };
    out.add("ranker.onnx", onnx);
    out.add("ranker-gbdt.onnx", trees_onnx);
    if let Some(bytes) = deep_onnx {
        out.add("ranker-deep.onnx", bytes);
    }
    for (name, svg) in calibration_plots(&report) {
        out.add(Path::new("plots").join(name), svg);
    }
    out.add("report.json", serde_json::to_vec_pretty(&report)?);
    Ok(out)
}

/// One file of `rank train-candidates`.
#[derive(Serialize)]
struct CandidateRanker {
    ranker: &'static str,
    file: &'static str,
    /// In-sample AUC on the training examples (not a test).
    train_auc: Option<f64>,
    onnx_bytes: usize,
}

/// `report.json` of `rank train-candidates`.
#[derive(Serialize)]
struct CandidateReport {
    world: String,
    /// The final split and its cut (unix seconds, one second after the last event).
    split: String,
    cut: i64,
    /// Start of the training window (the inner cut the sources are fitted before).
    window_start: i64,
    config: RankConfig,
    sources: SourceConfig,
    training: RankerTraining,
    rankers: Vec<CandidateRanker>,
    deep_skipped: Option<String>,
    /// Wall-clock seconds of the whole command.
    seconds: f64,
    limits: Vec<String>,
}

/// The candidate sources and the second stage's settings of [`train_on_candidates`].
fn candidate_configs(a: &CandidatesConfig) -> (SourceConfig, RankConfig) {
    let sources = SourceConfig {
        n: SourceConfig::default().n.max(a.candidates),
        ials: IalsConfig {
            factors: a.factors,
            iterations: a.iterations,
            seed: a.seed,
            ..IalsConfig::default()
        },
        tower: (a.tower_epochs > 0).then(|| TowerConfig {
            epochs: a.tower_epochs,
            seed: a.seed,
            ..TowerConfig::default()
        }),
        ..SourceConfig::default()
    };
    let config = RankConfig {
        candidates: a.candidates,
        window_days: a.window_days,
        positive_above: a.positive_above,
        sampled_negatives: a.sampled_negatives,
        logistic: FitConfig {
            lambda: a.lambda,
            ..FitConfig::default()
        },
        trees: TreeConfig {
            seed: a.seed,
            ..a.trees
        },
        deep: a.deep_epochs.map(|epochs| DeepConfig {
            max_epochs: epochs,
            seed: a.seed,
            ..DeepConfig::default()
        }),
        seed: a.seed,
        ..RankConfig::default()
    };
    (sources, config)
}

/// `rank train-candidates`: the rankers trained on the blend's candidates of the world's last
/// days (see the module docs). `data` must have been loaded with the same positive threshold
/// as `config.positive_above`. Artifacts: the ONNX models, `features.json` (for
/// `bundle build --features`), `report.json`, and the markdown report.
pub fn train_on_candidates(data: &WorldData, a: &CandidatesConfig) -> Result<Artifacts> {
    let started = Instant::now();
    let world = data.dir.display();
    ensure!(
        !data.events.is_empty(),
        "{world}: no play above {:.0}% watched: no ranker can be trained",
        a.positive_above * 100.0
    );
    ensure!(a.candidates > 0, "candidates must be at least 1");
    let fd = ranking::FeatureData::load(data).context("loading the ranking features")?;
    let (sources, config) = candidate_configs(a);
    let split = ranking::final_split(data, &fd);
    let window_start = split.cut - i64::from(a.window_days) * 86_400;
    let rankers = ranking::train(data, &fd, &split, &config, |inner| {
        sources::blend_rows(data, inner, &sources)
    })
    .with_context(|| {
        format!(
            "no ranker can be trained on {world} (window {} to {})",
            split::date(window_start),
            split::date(split.cut)
        )
    })?;
    let files = ranker_files(&rankers)?;
    let training = rankers.training;
    let sampled = training.sampled_negatives > 0;
    let report = CandidateReport {
        world: world.to_string(),
        split: split.description.clone(),
        cut: split.cut,
        window_start,
        limits: candidate_limits(sampled),
        config,
        sources,
        rankers: files
            .iter()
            .map(|(ranker, file, auc, bytes)| CandidateRanker {
                ranker,
                file,
                train_auc: *auc,
                onnx_bytes: bytes.len(),
            })
            .collect(),
        training,
        deep_skipped: a.deep_epochs.is_none().then(|| "--no-deep".to_string()),
        seconds: started.elapsed().as_secs_f64(),
    };
    let mut out = Artifacts {
        markdown: candidate_markdown(&report),
        files: Vec::new(),
    };
    for (_, file, _, bytes) in files {
        out.add(file, bytes);
    }
    out.add("features.json", fd.contract_json()?);
    out.add("report.json", serde_json::to_vec_pretty(&report)?);
    Ok(out)
}

/// `(kind, file, in-sample AUC, ONNX bytes)` of every trained ranker.
type RankerFile = (&'static str, &'static str, Option<f64>, Vec<u8>);

fn ranker_files(rankers: &ranking::Rankers) -> Result<Vec<RankerFile>> {
    let mut files: Vec<RankerFile> = vec![
        (
            edgerec_rank::RANKER_KIND,
            "ranker.onnx",
            rankers.training.train_auc.0,
            rankers
                .logistic()
                .to_onnx()
                .context("exporting the logistic regression")?,
        ),
        (
            edgerec_rank::GBDT_KIND,
            "ranker-gbdt.onnx",
            rankers.training.train_auc.1,
            rankers.trees().to_onnx().context("exporting the trees")?,
        ),
    ];
    if let Some(deep) = rankers.deep() {
        files.push((
            edgerec_rank::DEEP_KIND,
            "ranker-deep.onnx",
            rankers.training.train_auc_deep,
            deep.to_onnx().context("exporting the deep ranker")?,
        ));
    }
    Ok(files)
}

/// What rankers trained on candidates cannot know (the evaluation's limits, `eval::rerank`).
fn candidate_limits(sampled: bool) -> Vec<String> {
    let mut v = vec![
        "No held-out evaluation: the AUC above is in-sample. `edgerec eval` measures the \
         two-stage system per split; on MovieLens-100K the rankers do not lift the blend."
            .to_string(),
    ];
    if sampled {
        v.extend(
            [
                "Positives the blend did not propose are not used: the rankers only learn to \
                 order the first stage's candidates.",
                "The blend at the window start, not at each watch, decides what counts as shown, \
                 and every request is made at the window start.",
                "A candidate the user did not watch in the window may simply not have been seen \
                 (there is no exposure log): the negatives are unwatched, not rejected.",
                "Few users train the rankers: those with a past before the window and positives \
                 in it.",
                "The candidates come from the evaluation's sources refitted on the past before \
                 the window, not from the bundle's own sources (`edgerec train --world`, fitted \
                 on all data).",
            ]
            .map(String::from),
        );
    } else {
        v.push(
            "The world logs labelled negatives (abandoned plays, unplayed impressions): the \
             rankers trained on those, as the evaluation does; `edgerec pipeline` and `rank \
             train` evaluate that setting on rolling folds."
                .to_string(),
        );
    }
    v.push(
        "The features are only the core's catalog: the rankers do not see the candidate \
         sources' scores or ranks, so they can lose the first stage's order."
            .to_string(),
    );
    v
}

fn candidate_markdown(r: &CandidateReport) -> String {
    let t = &r.training;
    let mut s = String::new();
    let _ = writeln!(s, "# Rankers trained on the first stage's candidates\n");
    let _ = writeln!(
        s,
        "World `{}`; {}. Training window: {} to {} ({} days).\n",
        r.world,
        r.split,
        split::date(r.window_start),
        split::date(r.cut),
        r.config.window_days
    );
    let _ = writeln!(s, "Window: {}.\n\nNegatives: {}.\n", t.window, t.negatives);
    let _ = writeln!(s, "| | count |\n|---|---:|");
    for (name, n) in [
        ("examples", t.examples),
        ("positives", t.positives),
        ("negatives: sampled candidates", t.sampled_negatives),
        ("negatives: played below threshold", t.played_negatives),
        ("negatives: unplayed impressions", t.impression_negatives),
        ("users", t.users),
        ("dense features", t.features),
    ] {
        let _ = writeln!(s, "| {name} | {n} |");
    }
    let _ = writeln!(
        s,
        "\n| ranker | file | in-sample AUC | ONNX bytes |\n|---|---|---:|---:|"
    );
    for x in &r.rankers {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            x.ranker,
            x.file,
            opt(x.train_auc),
            x.onnx_bytes
        );
    }
    if let Some(why) = &r.deep_skipped {
        let _ = writeln!(s, "\n{} not trained: {why}.", edgerec_rank::DEEP_KIND);
    }
    let _ = writeln!(
        s,
        "\nSeconds: {} (whole command {:.1}). Logistic regression: {} Newton steps.",
        t.seconds
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.seconds,
        t.lr_iterations
    );
    let _ = writeln!(
        s,
        "\nLargest standardised coefficients: {}.\n\nMost split gain: {}.",
        t.top_coefficients
            .iter()
            .map(|(n, c)| format!("{n} {c:+.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        t.top_gain
            .iter()
            .map(|(n, g)| format!("{n} {g:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "\n## Limits\n");
    for l in &r.limits {
        let _ = writeln!(s, "- {l}");
    }
    let _ = writeln!(
        s,
        "\nThe feature contract is `features.json`: `edgerec bundle build --model … --features \
         features.json --ranker ranker-gbdt.onnx` carries a ranker."
    );
    s
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
    if let Some(cap) = g.sample {
        let _ = writeln!(
            s,
            "Streamed: every fit (each window's and the final one) is on a uniform sample of at \
             most {cap} of its training examples.\n"
        );
    }
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
    deep_markdown(&mut s, r);
    selection_markdown(&mut s, r);
    s
}

fn deep_markdown(s: &mut String, r: &Report) {
    let Some(d) = &r.deep else {
        if let Some(why) = &r.deep_skipped {
            let _ = writeln!(
                s,
                "\n# Ranker: {}\n\nNot trained: {why}.",
                edgerec_rank::DEEP_KIND
            );
        }
        return;
    };
    let c = &d.evaluation.config;
    let _ = writeln!(s, "\n# Ranker: {}\n", d.ranker);
    let _ = writeln!(
        s,
        "Embedding bags ({}; `movie` and `history` share the titles' table) and the title–history \
         affinity, with the standardised dense features, into ReLU layers of {} and {}; weighted \
         logistic loss, Adam (learning rate {}, weight decay {}), batches of {}, at most {} \
         epochs, early stopping (patience {}) on the newest {:.0}% of each training set, seed {}. \
         {} weights. Evaluation and final fit took {:.1} s.\n",
        d.bags.join(", "),
        c.hidden[0],
        c.hidden[1],
        c.learning_rate,
        c.weight_decay,
        c.batch_size,
        c.max_epochs,
        c.patience,
        c.holdout * 100.0,
        c.seed,
        d.params,
        d.seconds
    );
    let _ = writeln!(s, "## Time-series evaluation\n");
    fold_table(s, &d.evaluation.folds, "epoch kept");
    let _ = writeln!(
        s,
        "\nFinal model (all examples): epoch {} of {} kept; holdout log-loss by epoch: {}.",
        d.best_epoch + 1,
        d.final_epochs.len(),
        d.final_epochs
            .iter()
            .map(|e| e.holdout_loss.map_or("–".into(), |l| format!("{l:.4}")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let imp = &d.evaluation.importance;
    if !imp.is_empty() {
        let _ = writeln!(
            s,
            "\n## Top {TOP_COEFFICIENTS} inputs by permutation importance (newest window)\n"
        );
        let _ = writeln!(
            s,
            "Each input shuffled across {} validation rows of the newest window (a bag as a \
             whole), scored by that window's model.\n",
            d.evaluation.importance_rows
        );
        let _ = writeln!(
            s,
            "| input | kind | rise in weighted log-loss | drop in AUC |\n|---|---|---:|---:|"
        );
        for i in imp.iter().take(TOP_COEFFICIENTS) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                i.name,
                if i.bag { "bag" } else { "dense" },
                signed(i.log_loss_rise),
                signed(i.auc_drop)
            );
        }
    }
}

fn signed(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:+.4}"))
}

fn selection_markdown(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n# Model selection\n");
    let _ = writeln!(
        s,
        "Means over the validation windows; the selected ranker has the lowest mean weighted \
         log-loss. Calibration error: weighted mean |predicted − observed| over 10 bins \
         (reliability diagrams in `plots/`).\n"
    );
    let _ = writeln!(
        s,
        "| ranker | file | mean log-loss (weighted) | mean AUC | mean calibration error | ONNX bytes | |\n|---|---|---:|---:|---:|---:|---|"
    );
    for x in &r.selection {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            x.ranker,
            x.file,
            opt(x.mean_log_loss_weighted),
            opt(x.mean_auc),
            opt(x.mean_calibration_error),
            x.onnx_bytes,
            if x.ranker == r.selected {
                "selected"
            } else {
                ""
            }
        );
    }
}

fn fold_table(s: &mut String, folds: &[FoldResult], iterations: &str) {
    let _ = writeln!(
        s,
        "| fold | train n | valid n | base rate | AUC | log-loss (weighted) | log-loss (unweighted) | constant log-loss (weighted) | calibration error | {iterations} |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in folds {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {} | {} | {} | {} | {} | {} |",
            f.fold.index,
            f.train_examples,
            f.valid_examples,
            f.base_rate,
            opt(f.auc),
            opt(f.log_loss_weighted),
            opt(f.log_loss),
            opt(f.constant_log_loss_weighted),
            opt(f.calibration_error),
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
        let deep = DeepConfig {
            max_epochs: 3,
            ..Default::default()
        };
        let config = ExamplesConfig {
            lambda: 1.0,
            trees,
            deep: Some(deep),
            stream_sample: None,
        };
        let artifacts = train_on_examples(&pipeline, &config).unwrap();
        artifacts.write(&out).unwrap();
        let md = artifacts.markdown;
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
        // The deep ranker: every window beats chance, its model follows the device contract.
        let deep_folds = report["deep"]["evaluation"]["folds"].as_array().unwrap();
        assert_eq!(deep_folds.len(), 2, "{md}");
        for f in deep_folds {
            assert!(f["auc"].as_f64().unwrap() > 0.5, "{md}");
        }
        assert!(
            !report["deep"]["evaluation"]["importance"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        let deep = std::fs::read(out.join("ranker-deep.onnx")).unwrap();
        let deep = edgerec_twotower::onnx::decode(&deep).unwrap();
        edgerec_twotower::onnx::check_model(&deep).unwrap();
        assert_eq!(
            edgerec_twotower::onnx::metadata(&deep, edgerec_rank::META_CONTRACT),
            Some("edgerec-ranker/1")
        );
        assert!(
            md.contains("# Model selection") && md.contains("selected"),
            "{md}"
        );
        assert_eq!(report["selection"].as_array().unwrap().len(), 3);
        for k in 0..2 {
            let svg = std::fs::read_to_string(
                out.join("plots").join(format!("calibration-fold-{k}.svg")),
            )
            .unwrap();
            assert!(svg.contains("<svg"), "{svg}");
        }

        // Streamed from the files: the same logistic regression and (with a sample as large
        // as the examples) the same trees, without the deep ranker.
        let streamed = train_on_examples(
            &pipeline,
            &ExamplesConfig {
                stream_sample: Some(usize::MAX),
                ..config.clone()
            },
        )
        .unwrap();
        let file = |a: &Artifacts, name: &str| {
            a.files
                .iter()
                .find(|(p, _)| p == Path::new(name))
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        assert_eq!(file(&streamed, "ranker.onnx"), onnx);
        assert_eq!(
            file(&streamed, "ranker-gbdt.onnx"),
            std::fs::read(out.join("ranker-gbdt.onnx")).unwrap()
        );
        let streamed_report: serde_json::Value =
            serde_json::from_slice(&file(&streamed, "report.json")).unwrap();
        assert_eq!(streamed_report["evaluation"], report["evaluation"]);
        assert_eq!(
            streamed_report["gbdt"]["evaluation"],
            report["gbdt"]["evaluation"]
        );
        assert_eq!(streamed_report["examples"], report["examples"]);
        assert!(streamed_report["deep"].is_null());
        assert!(
            streamed.markdown.contains("streaming"),
            "{}",
            streamed.markdown
        );
        assert!(
            !streamed
                .files
                .iter()
                .any(|(p, _)| p == Path::new("ranker-deep.onnx"))
        );
        // A small sample: other trees, reported as sampled.
        let sampled = train_on_examples(
            &pipeline,
            &ExamplesConfig {
                stream_sample: Some(500),
                ..config
            },
        )
        .unwrap();
        assert_ne!(
            file(&sampled, "ranker-gbdt.onnx"),
            file(&streamed, "ranker-gbdt.onnx")
        );
        assert!(
            sampled.markdown.contains("uniform sample of at most 500"),
            "{}",
            sampled.markdown
        );
    }
}
