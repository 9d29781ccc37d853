//! The training-data pipeline: watch logs in, labelled, weighted, featurised examples out.
//!
//! It reads a world in the canonical schema (`edgerec_data::schema`: `users/`, `items/`,
//! `plays/`, `impressions/` as Parquet part files) and runs, on Apache DataFusion (SQL plans over
//! Parquet, with a bounded memory pool that spills to disk):
//!
//! 1. **Labels.** A play is a positive when `fraction > positive_above` (default 0.8) and a
//!    negative when `fraction < negative_below` (default 0.1); plays in between are dropped.
//!    Both comparisons are made in `f32`, on the stored fraction, so a play of exactly 80% or
//!    exactly 10% is dropped. An impression with no play of the same title in the same session
//!    is a negative too (`impressions_as_negatives`).
//! 2. **Negative downsampling.** Negatives are kept with probability
//!    `p = min(1, negatives_per_positive × positives / negatives)`, decided by a hash of
//!    `(seed, user, title, time, session)` (the `edgerec_unit_hash` UDF): the same seed keeps the
//!    same rows. Every example carries its `sample_rate` (`1` for positives, `p` for negatives)
//!    so a calibrated model can weight negatives by `1 / p`.
//! 3. **Weights.** A positive weighs `clamp(watched_s / 3600, 0.1, 4)` and a negative
//!    `clamp(duration_s / 3600, 0.1, 4)`: hours watched, or hours a wrong pick would have cost.
//!    80% of a two-hour film weighs 1.6, 80% of a 40-minute episode 0.53.
//! 4. **Platform counts, point in time.** For every example, the title's plays by anyone in the
//!    24 hours and 7 days strictly before the example (SQL window `RANGE … 1 PRECEDING`).
//! 5. **Features.** The per-user merge, a window function partitioned by user (so it runs on
//!    every core, or every executor of a cluster), walks each user's plays and examples in time
//!    order and feeds the examples to the core crate's [`edgerec::features::FeatureSpace`] — the
//!    code the device runs — which sees only plays strictly before the example. Two sequences for the deep ranker come from
//!    the same point in time: `history`, the user's recently watched titles (movie ids, most
//!    recent first: [`edgerec::ranker::history_titles`], at most
//!    [`edgerec::ranker::MAX_HISTORY`]), and `search`, the token ids of the user's searches
//!    strictly before the example (most recent search first, a query's tokens in query order,
//!    at most [`edgerec::ranker::MAX_SEARCH`]; empty in worlds without a `searches` table, such
//!    as MovieLens).
//! 6. **Time-series folds.** Rolling-origin: the last `folds` windows of `fold_days` days each
//!    are validation windows; fold `k` trains on examples before its window and validates on
//!    the window. Each example records the window it falls in (`-1` before the first).
//!
//! Outputs in the output directory: `examples/part-NNNNN.parquet` (columns
//! [`EXAMPLE_COLUMNS`]), `features.json` (dense feature names and vocabularies: the input
//! contract; `search_tokens` is the search vocabulary, the sorted distinct tokens of all
//! searches, id = 1 + position, 0 unknown), `folds.json`, `report.md` and `report.json`.

mod examples;
mod merge;
mod report;
mod sql;
mod world;

use std::path::Path;

use anyhow::{Context as _, Result, ensure};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{ScalarUDF, WindowUDF};
use datafusion::prelude::{SessionConfig, SessionContext};
use edgerec::features::FeatureConfig;
use serde::{Deserialize, Serialize};

pub use examples::EXAMPLE_COLUMNS;
pub use report::{Fold, Report, fold_window, rolling_folds};
pub use sql::{LabelCounts, unit_hash};
pub use world::World;

/// Every knob of the pipeline (recorded in the report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// Plays with a watched fraction above this are positives.
    pub positive_above: f32,
    /// Plays with a watched fraction below this are negatives.
    pub negative_below: f32,
    /// Impressions without a play in their session are negatives.
    pub impressions_as_negatives: bool,
    /// Target negatives per positive after downsampling (never upsamples).
    pub negatives_per_positive: f64,
    /// Seed of the downsampling hash.
    pub seed: u64,
    /// Number of rolling-origin validation windows.
    pub folds: u32,
    /// Length of each validation window, days.
    pub fold_days: u32,
    /// Memory pool of the DataFusion runtime, bytes (sorts and windows spill beyond it).
    pub memory_limit_bytes: usize,
    /// Rows per output part file.
    pub rows_per_file: usize,
    /// Parallel partitions of the embedded engine (users are spread over them for the merge);
    /// 0 for one per core.
    #[serde(default)]
    pub partitions: usize,
    /// Windows of the time-based features.
    #[serde(skip, default)]
    pub features: FeatureConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            positive_above: 0.8,
            negative_below: 0.1,
            impressions_as_negatives: true,
            negatives_per_positive: 4.0,
            seed: 42,
            folds: 3,
            fold_days: 7,
            memory_limit_bytes: 4 << 30,
            rows_per_file: 1 << 20,
            partitions: 0,
            features: FeatureConfig::default(),
        }
    }
}

impl PipelineConfig {
    /// The partitions a session should use: `partitions`, or one per core when it is 0.
    pub fn partitions(&self) -> usize {
        match self.partitions {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    fn validate(&self) -> Result<()> {
        ensure!(
            0.0 <= self.negative_below
                && self.negative_below <= self.positive_above
                && self.positive_above <= 1.0,
            "thresholds must satisfy 0 ≤ negative_below ≤ positive_above ≤ 1"
        );
        ensure!(
            self.negatives_per_positive > 0.0,
            "negatives_per_positive must be positive"
        );
        ensure!(self.fold_days > 0, "fold_days must be positive");
        ensure!(self.rows_per_file > 0, "rows_per_file must be positive");
        Ok(())
    }
}

/// The pipeline's scalar functions (the downsampling hash). Every engine that plans or runs
/// the pipeline's plans registers them: the embedded session, and on a Ballista cluster the
/// client, the scheduler and every executor.
pub fn scalar_udfs() -> Vec<ScalarUDF> {
    vec![sql::unit_hash_udf()]
}

/// The pipeline's window functions (the per-user feature merge); registered like
/// [`scalar_udfs`].
pub fn window_udfs() -> Vec<WindowUDF> {
    vec![merge::features_udwf()]
}

/// The session options the plans expect, with `partitions` parallel partitions.
pub fn session_config(partitions: usize) -> SessionConfig {
    let mut session = SessionConfig::new().with_target_partitions(partitions.max(1));
    // Plain Utf8 strings: the plans and readers expect them.
    session
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    session
}

/// Registers [`scalar_udfs`] and [`window_udfs`] in `ctx`.
pub fn register_functions(ctx: &SessionContext) {
    scalar_udfs().into_iter().for_each(|f| ctx.register_udf(f));
    window_udfs().into_iter().for_each(|f| ctx.register_udwf(f));
}

/// A DataFusion session with a bounded, spilling memory pool and the pipeline's functions, one
/// partition per core unless `config.partitions` says otherwise.
pub fn session(config: &PipelineConfig) -> Result<SessionContext> {
    // A fair pool: the plan's spilling sorts (by title for the platform counts, by user for
    // the merge) each get a share instead of first come, first served. Known limit: at 1M
    // users on a single partition the 4 GiB pool still runs out in a spill merge, under this
    // pool as under the greedy one (two partitions complete under both; the fair pool took
    // 275 s and 3.0 GiB peak RSS at 1M users, the greedy one 307 s and 4.9 GiB).
    let pool = datafusion::execution::memory_pool::FairSpillPool::new(config.memory_limit_bytes);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(std::sync::Arc::new(pool))
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(session_config(config.partitions()), runtime);
    register_functions(&ctx);
    Ok(ctx)
}

/// Runs the whole pipeline from a world directory into `out` on the embedded engine.
pub async fn run(world_dir: &Path, out: &Path, config: &PipelineConfig) -> Result<Report> {
    config.validate()?;
    run_in(&session(config)?, world_dir, out, config).await
}

/// What [`run_in`] plans before it writes: the table files, the loaded world,
/// the label counts, folds and the examples plan's SQL.
struct Prepared {
    tables: sql::TableFiles,
    world: std::sync::Arc<World>,
    counts: LabelCounts,
    sample_rate: f64,
    range: (i64, i64),
    folds: Vec<Fold>,
    plan: String,
}

async fn prepare(
    ctx: &SessionContext,
    world_dir: &Path,
    config: &PipelineConfig,
) -> Result<Prepared> {
    config.validate()?;
    // Executors resolve the world's path themselves: make it absolute.
    let world_dir = std::path::absolute(world_dir)
        .with_context(|| format!("resolving {}", world_dir.display()))?;
    let tables = sql::register(ctx, &world_dir).await?;
    let fingerprint = merge::fingerprint(&world_dir)
        .with_context(|| format!("reading {}", world_dir.display()))?;
    let world = std::sync::Arc::new(World::load(&world_dir, config.features)?);
    merge::share_world(&world_dir, &fingerprint, config.features, world.clone());
    let counts = sql::label_counts(ctx, config).await?;
    let sample_rate = counts.negative_sample_rate(config.negatives_per_positive);
    let range = sql::time_range(ctx).await?;
    let folds = report::rolling_folds(range.0, range.1, config.folds, config.fold_days);
    let call = merge::call_sql(&world_dir, &fingerprint, &config.features);
    let plan = sql::examples_sql(config, sample_rate, &call);
    Ok(Prepared {
        tables,
        world,
        counts,
        sample_rate,
        range,
        folds,
        plan,
    })
}

/// The physical plan of the examples query [`run_in`] would execute in `ctx`, indented (the
/// per-user merge is the `BoundedWindowAggExec` over `edgerec_features`).
pub async fn examples_plan(
    ctx: &SessionContext,
    world_dir: &Path,
    config: &PipelineConfig,
) -> Result<String> {
    let p = prepare(ctx, world_dir, config).await?;
    let plan = ctx.sql(&p.plan).await?.create_physical_plan().await?;
    Ok(datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string())
}

/// Runs the whole pipeline in `ctx`: an embedded session ([`session`]) or a client of a
/// cluster, which must have the pipeline's functions registered ([`register_functions`]) and
/// see `world_dir` at the same path as its executors. Writes the output from this process.
pub async fn run_in(
    ctx: &SessionContext,
    world_dir: &Path,
    out: &Path,
    config: &PipelineConfig,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let p = prepare(ctx, world_dir, config).await?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let dir = out.join("examples");
    let written = examples::write_examples(ctx, &p.plan, &p.world, config, &p.folds, &dir).await?;
    let report = Report::new(
        config,
        p.tables,
        p.counts,
        p.sample_rate,
        written.tally,
        written.files,
        p.range,
        &p.folds,
        started.elapsed().as_secs_f64(),
    );

    p.world.write_contract(&out.join("features.json"))?;
    let write = edgerec_data::fs::write_atomic;
    write(
        &out.join("folds.json"),
        &serde_json::to_vec_pretty(&report.folds)?,
    )?;
    write(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    write(&out.join("report.md"), report.markdown().as_bytes())?;
    Ok(report)
}

/// The runtime the CLI uses to drive [`run`].
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f))
}
