//! `edgerec eval`: the arguments of [`edgerec_fit::evaluate`].

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use edgerec_fit::data::WorldData;
use edgerec_fit::evaluate::{EvalConfig, evaluate};
use edgerec_fit::report::Requirement;
use edgerec_fit::tune::TuneConfig;

/// Arguments of `edgerec eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A world directory in the canonical schema (`edgerec data import` or `edgerec simulate`).
    #[arg(long)]
    pub world: PathBuf,
    /// Output directory: report.md, report.json, plots/, splits/.
    #[arg(long)]
    pub out: PathBuf,
    /// Name of the data set in the report.
    #[arg(long, default_value = "movielens-100k")]
    pub dataset: String,
    /// Protocols: `temporal`, `leave-last-out`, `folds` (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "temporal,leave-last-out")]
    pub protocols: Vec<String>,
    /// Share of positives in the past of the temporal split.
    #[arg(long, default_value_t = EvalConfig::default().train_share)]
    pub train_share: f64,
    /// Time-series folds (protocol `folds`).
    #[arg(long, default_value_t = EvalConfig::default().folds)]
    pub folds: u32,
    /// Days per fold.
    #[arg(long, default_value_t = EvalConfig::default().fold_days)]
    pub fold_days: u32,
    /// A play is a positive above this fraction of the title.
    #[arg(long, default_value_t = EvalConfig::default().positive_above)]
    pub positive_above: f32,
    /// Titles a cold-start user picks at onboarding (the first ones they watch).
    #[arg(long, default_value_t = EvalConfig::default().onboarding)]
    pub onboarding: usize,
    /// Evaluate at most this many users per cohort (a seeded sample), for large worlds.
    #[arg(long)]
    pub max_users: Option<usize>,
    /// iALS factors.
    #[arg(long, default_value_t = EvalConfig::default().factors)]
    pub factors: usize,
    /// iALS iterations.
    #[arg(long, default_value_t = EvalConfig::default().iterations)]
    pub iterations: usize,
    /// iALS confidence slope.
    #[arg(long, default_value_t = EvalConfig::default().alpha)]
    pub alpha: f32,
    /// iALS L2 penalty.
    #[arg(long, default_value_t = EvalConfig::default().lambda)]
    pub lambda: f32,
    /// Conjugate-gradient steps per row (0: exact Cholesky solves).
    #[arg(long, default_value_t = EvalConfig::default().cg_steps)]
    pub cg_steps: usize,
    /// Two-tower training epochs (0 skips the model).
    #[arg(long, default_value_t = EvalConfig::default().tower_epochs)]
    pub tower_epochs: usize,
    /// Directory of peer rows from `bench/peers.py` (`<split>/<method>.tsv`).
    #[arg(long)]
    pub peers: Option<PathBuf>,
    /// Second stage: blend candidates the rankers reorder per user (0 turns the stage off).
    #[arg(long, default_value_t = EvalConfig::default().rank_candidates)]
    pub rank_candidates: usize,
    /// Second stage: days before the cut whose examples train the rankers (time-cut splits).
    #[arg(long, default_value_t = EvalConfig::default().rank_window_days)]
    pub rank_window_days: u32,
    /// Second stage, leave-last-out: each user's last past positives that train the rankers.
    #[arg(long, default_value_t = EvalConfig::default().rank_last_positives)]
    pub rank_last_positives: usize,
    /// Second stage: negatives per positive (the labelled negatives' downsampling target, or
    /// how many to sample from the blend when the world has none).
    #[arg(long, default_value_t = EvalConfig::default().rank_negatives)]
    pub rank_negatives: usize,
    /// Second stage: at most this many training positives per split (seeded subsample).
    #[arg(long, default_value_t = EvalConfig::default().rank_max_positives)]
    pub rank_max_positives: usize,
    /// Second stage: boosting rounds of the gradient-boosted trees.
    #[arg(long, default_value_t = EvalConfig::default().rank_trees)]
    pub rank_trees: usize,
    /// Second stage: also train the deep ranker (embedding bags and an MLP, `edgerec-rank`'s
    /// `DeepRanker`) with at most this many epochs (0: leave it out).
    #[arg(long, default_value_t = EvalConfig::default().rank_deep_epochs)]
    pub rank_deep_epochs: usize,
    /// Serve each split's device row with the default half-life, quotas and MMR λ instead of
    /// fitting them on validation inside the split's past (as `edgerec train` does).
    #[arg(long)]
    pub no_tune: bool,
    /// The largest share of relevance-only NDCG@10 the MMR rerank may cost on validation.
    #[arg(long, default_value_t = TuneConfig::default().mmr_budget)]
    pub mmr_budget: f64,
    /// Do not learn a ranker for each split's device row (as `train --no-ranker`).
    #[arg(long)]
    pub no_ranker: bool,
    /// Fail (after writing the report) unless `system` is at least `reference` within one
    /// paired standard error of NDCG@10 on every cohort: `[split:]system>=reference`, e.g.
    /// `leave-last-out:device>=blend` (repeatable). CI's quality gate.
    #[arg(long)]
    pub require: Vec<Requirement>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = EvalConfig::default().seed)]
    pub seed: u64,
}

impl EvalArgs {
    fn config(&self) -> EvalConfig {
        EvalConfig {
            dataset: self.dataset.clone(),
            protocols: self.protocols.clone(),
            train_share: self.train_share,
            folds: self.folds,
            fold_days: self.fold_days,
            positive_above: self.positive_above,
            onboarding: self.onboarding,
            max_users: self.max_users,
            factors: self.factors,
            iterations: self.iterations,
            alpha: self.alpha,
            lambda: self.lambda,
            cg_steps: self.cg_steps,
            tower_epochs: self.tower_epochs,
            peers: self.peers.clone(),
            rank_candidates: self.rank_candidates,
            rank_window_days: self.rank_window_days,
            rank_last_positives: self.rank_last_positives,
            rank_negatives: self.rank_negatives,
            rank_max_positives: self.rank_max_positives,
            rank_trees: self.rank_trees,
            rank_deep_epochs: self.rank_deep_epochs,
            tune: (!self.no_tune).then(|| TuneConfig {
                mmr_budget: self.mmr_budget,
                seed: self.seed,
                ranker: (!self.no_ranker).then(edgerec_fit::learned::LearnConfig::default),
                ..TuneConfig::default()
            }),
            seed: self.seed,
        }
    }
}

/// Runs the evaluation, writes its files and prints the report.
pub fn run(a: &EvalArgs) -> Result<()> {
    let data = WorldData::load(&a.world, a.positive_above)
        .with_context(|| format!("loading {}", a.world.display()))?;
    let evaluation = evaluate(&data, &a.config())?;
    evaluation.artifacts.write(&a.out)?;
    print!("{}", evaluation.artifacts.markdown);
    println!("\nreport written to {}", a.out.join("report.md").display());
    let broken: Vec<String> = a
        .require
        .iter()
        .flat_map(|r| r.violations(&evaluation.report))
        .collect();
    anyhow::ensure!(
        broken.is_empty(),
        "the evaluation breaks its requirements:\n  {}",
        broken.join("\n  ")
    );
    Ok(())
}
