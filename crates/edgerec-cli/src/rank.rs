//! `edgerec rank`: the arguments of [`edgerec_fit::rankers`].

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use edgerec_fit::data::WorldData;
use edgerec_fit::rankers::{
    CandidatesConfig, ExamplesConfig, train_on_candidates, train_on_examples,
};
use edgerec_fit::ranking::RankConfig;
use edgerec_rank::{DeepConfig, TreeConfig};
use edgerec_train::ials::IalsConfig;

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
    Train(ExampleArgs),
    /// Train the rankers on a world without labelled negatives, as the evaluation's second
    /// stage does: the blend's candidates at the start of the world's last days, positive when
    /// watched in them, the rest sampled negatives. Writes ranker.onnx, ranker-gbdt.onnx,
    /// ranker-deep.onnx, features.json (for `bundle build --features`), report.md, report.json.
    TrainCandidates(CandidateArgs),
}

/// The gradient-boosted trees' options, shared by both commands.
#[derive(clap::Args)]
pub struct TreeArgs {
    /// Boosting rounds (trees) of the gradient-boosted trees.
    #[arg(long, default_value_t = TreeConfig::default().iterations)]
    trees: usize,
    /// Learning rate (shrinkage) of the gradient-boosted trees.
    #[arg(long, default_value_t = TreeConfig::default().learning_rate)]
    learning_rate: f32,
    /// Deepest level of each tree (the root is depth 0).
    #[arg(long, default_value_t = TreeConfig::default().max_depth)]
    max_depth: usize,
}

impl TreeArgs {
    fn config(&self) -> TreeConfig {
        TreeConfig {
            iterations: self.trees,
            learning_rate: self.learning_rate,
            max_depth: self.max_depth,
            ..TreeConfig::default()
        }
    }
}

/// Arguments of `edgerec rank train`.
#[derive(clap::Args)]
pub struct ExampleArgs {
    /// A pipeline output directory (examples/, features.json, folds.json).
    #[arg(long)]
    examples: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// L2 penalty on the standardised coefficients, in units of example weight.
    #[arg(long, default_value_t = 1.0)]
    lambda: f64,
    #[command(flatten)]
    trees: TreeArgs,
    /// Most epochs of the deep ranker (it stops early on the newest 15% of its training
    /// examples).
    #[arg(long, default_value_t = DeepConfig::default().max_epochs)]
    deep_epochs: usize,
    /// Embedding width of the deep ranker.
    #[arg(long, default_value_t = DeepConfig::default().dim)]
    deep_dim: usize,
    /// Adam's step size for the deep ranker.
    #[arg(long, default_value_t = DeepConfig::default().learning_rate)]
    deep_learning_rate: f64,
    /// Decoupled weight decay of the deep ranker (0: plain Adam).
    #[arg(long, default_value_t = DeepConfig::default().weight_decay)]
    deep_weight_decay: f64,
    /// Examples per step of the deep ranker.
    #[arg(long, default_value_t = DeepConfig::default().batch_size)]
    deep_batch_size: usize,
    /// Seed of the deep ranker (initialisation, shuffles, importance sample).
    #[arg(long, default_value_t = DeepConfig::default().seed)]
    deep_seed: u64,
    /// Skip the deep ranker.
    #[arg(long)]
    no_deep: bool,
    /// Stream the examples from their files instead of loading them, so memory does not grow
    /// with their number: the logistic regression fits the same model by passes over the
    /// files, the trees fit on a uniform sample of at most `--sample` rows, and the deep
    /// ranker is left out.
    #[arg(long)]
    stream: bool,
    /// With `--stream`: the most examples each boosted-trees fit samples.
    #[arg(long, default_value_t = 2_000_000, requires = "stream")]
    sample: usize,
}

/// Arguments of `edgerec rank train-candidates`.
#[derive(clap::Args)]
pub struct CandidateArgs {
    /// A world directory in the canonical schema (`edgerec data import` or `edgerec simulate`).
    #[arg(long)]
    world: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// The training window: the world's last N days (the sources are fitted on everything
    /// before them).
    #[arg(long, default_value_t = RankConfig::default().window_days)]
    window_days: u32,
    /// Blend candidates per user at the window start (the blend's top N).
    #[arg(long, default_value_t = RankConfig::default().candidates)]
    candidates: usize,
    /// Unwatched candidates kept per positive (a seeded sample).
    #[arg(long, default_value_t = RankConfig::default().sampled_negatives)]
    sampled_negatives: usize,
    /// A play is a positive above this fraction of the title.
    #[arg(long, default_value_t = RankConfig::default().positive_above)]
    positive_above: f32,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = 1.0)]
    lambda: f64,
    #[command(flatten)]
    trees: TreeArgs,
    /// Most epochs of the deep ranker (it stops early on the newest 15% of the examples).
    #[arg(long, default_value_t = DeepConfig::default().max_epochs)]
    deep_epochs: usize,
    /// Skip the deep ranker.
    #[arg(long)]
    no_deep: bool,
    /// iALS factors (candidate source).
    #[arg(long, default_value_t = IalsConfig::default().factors)]
    factors: usize,
    /// iALS iterations (candidate source).
    #[arg(long, default_value_t = IalsConfig::default().iterations)]
    iterations: usize,
    /// Two-tower training epochs (candidate source; 0 leaves it out of the blend).
    #[arg(long, default_value_t = 8)]
    tower_epochs: usize,
    /// Seed of the sources, the sampled negatives and every ranker.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl ExampleArgs {
    fn config(&self) -> ExamplesConfig {
        ExamplesConfig {
            lambda: self.lambda,
            trees: self.trees.config(),
            deep: (!self.no_deep).then(|| DeepConfig {
                max_epochs: self.deep_epochs,
                dim: self.deep_dim,
                learning_rate: self.deep_learning_rate,
                weight_decay: self.deep_weight_decay,
                batch_size: self.deep_batch_size,
                seed: self.deep_seed,
                ..DeepConfig::default()
            }),
            stream_sample: self.stream.then_some(self.sample),
        }
    }
}

impl CandidateArgs {
    fn config(&self) -> CandidatesConfig {
        CandidatesConfig {
            window_days: self.window_days,
            candidates: self.candidates,
            sampled_negatives: self.sampled_negatives,
            positive_above: self.positive_above,
            lambda: self.lambda,
            trees: self.trees.config(),
            deep_epochs: (!self.no_deep).then_some(self.deep_epochs),
            factors: self.factors,
            iterations: self.iterations,
            tower_epochs: self.tower_epochs,
            seed: self.seed,
        }
    }
}

/// Runs `edgerec rank …`: trains, writes the files, prints the markdown report.
pub fn run(args: &RankArgs) -> Result<()> {
    let (artifacts, out) = match &args.command {
        RankCommand::Train(a) => (train_on_examples(&a.examples, &a.config())?, &a.out),
        RankCommand::TrainCandidates(a) => {
            let data = WorldData::load(&a.world, a.positive_above)
                .with_context(|| format!("loading {}", a.world.display()))?;
            (train_on_candidates(&data, &a.config())?, &a.out)
        }
    };
    artifacts.write(out)?;
    print!("{}", artifacts.markdown);
    Ok(())
}
