//! `edgerec bundle build` and `edgerec bundle inspect`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use edgerec::Model;
use edgerec::bundle::{BundleContents, ServingSettings};
use edgerec::rerank::{RerankOverrides, RerankSettings};
use edgerec::retrieval::ItemVectors;
use edgerec_data::fs::write_atomic;
use edgerec_fit::package::{PackageOptions, package};

/// The fitted model `edgerec train` writes into its output directory.
pub const MODEL_FILE: &str = "model.edgerec";

#[derive(clap::Subcommand)]
pub enum BundleCommand {
    /// Pack a trained model into the bundle devices load.
    Build(Box<BuildArgs>),
    /// Verify a bundle and print what it holds.
    Inspect {
        /// The bundle file.
        bundle: PathBuf,
    },
}

/// Options of `bundle build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Directory written by `edgerec train` (or its model.edgerec).
    #[arg(long)]
    model: PathBuf,
    /// The bundle file to write.
    #[arg(long)]
    out: PathBuf,
    /// A ranker (ONNX) to carry: one written by `edgerec rank train`, or any model that
    /// follows the `edgerec-ranker/1` input contract (then pass `--ranker-contract`).
    /// Needs the feature contract: `--features`, or `--world` to derive it. The ranker
    /// ships only if it passes its gate: on the validation inside `--world` (the model's
    /// recipe), its order must beat the blend's NDCG@10 by more than `--ranker-margin` paired
    /// standard errors; otherwise the bundle ships the blend's order and says why.
    #[arg(long)]
    ranker: Option<PathBuf>,
    /// The gate's margin, in paired standard errors of the NDCG@10 gain over the blend.
    #[arg(long, default_value_t = 1.0, requires = "ranker")]
    ranker_margin: f64,
    /// Carry `--ranker` without the gate (test fixtures, experiments); the recipe records it.
    #[arg(long, requires = "ranker")]
    ungated: bool,
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
    /// How item vectors are shipped.
    #[command(flatten)]
    vectors: crate::VectorArgs,
    /// Blend candidates the device's ranker scores per request (SERV; default: the model's,
    /// else 500). Each serving flag replaces one setting of the model's `SERV` (the serving
    /// `edgerec train` fitted on validation) and keeps the others.
    #[arg(long)]
    candidates: Option<usize>,
    /// Titles per row (SERV; default: the model's, else 10).
    #[arg(long)]
    row_k: Option<usize>,
    /// MMR trade-off of the rerank, 1 = relevance only (SERV; default: the model's, fitted
    /// on validation, else 0.7).
    #[arg(long)]
    mmr_lambda: Option<f32>,
    /// A title shown this many times without a play leaves the row; 0 = never (SERV;
    /// default: the model's, else 3).
    #[arg(long)]
    fatigue_impressions: Option<u32>,
    /// At most this many titles per primary genre in a row (SERV; default: the model's,
    /// else no cap; 0 removes the cap).
    #[arg(long)]
    max_per_genre: Option<usize>,
}

impl BuildArgs {
    /// The model's serving settings (or the defaults) with every flag given applied; `None`
    /// when no flag is given.
    fn serving(&self, model: Option<&ServingSettings>) -> Option<ServingSettings> {
        let flags = self.candidates.is_some()
            || self.row_k.is_some()
            || self.mmr_lambda.is_some()
            || self.fatigue_impressions.is_some()
            || self.max_per_genre.is_some();
        if !flags {
            return None;
        }
        let base = model.cloned().unwrap_or_default();
        // The core's merge rule (the one requests use), plus the two settings a request does
        // not override: the row length and the candidates to rank.
        let overrides = RerankOverrides {
            lambda: self.mmr_lambda,
            fatigue_impressions: self.fatigue_impressions,
            max_per_genre: self.max_per_genre.map(|m| (m > 0).then_some(m)),
        };
        let rerank = RerankSettings {
            k: self.row_k.unwrap_or(base.rerank.k),
            ..overrides.apply(base.rerank)
        };
        Some(ServingSettings {
            candidates: self.candidates.unwrap_or(base.candidates),
            rerank,
        })
    }
}

pub fn run(command: BundleCommand) -> Result<()> {
    match command {
        BundleCommand::Build(a) => build(&a),
        BundleCommand::Inspect { bundle } => inspect(&bundle),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn build(a: &BuildArgs) -> Result<()> {
    let path = if a.model.is_dir() {
        a.model.join(MODEL_FILE)
    } else {
        a.model.clone()
    };
    let contents = BundleContents::decode(&read(&path)?).with_context(|| {
        format!(
            "{} is not a model written by `edgerec train`",
            path.display()
        )
    })?;
    let options = a.vectors.apply(PackageOptions {
        world: a.world.clone(),
        features: a.features.clone(),
        ranker: a.ranker.clone(),
        ranker_contract: a.ranker_contract.clone(),
        serving: a.serving(contents.serving.as_ref()),
        ..PackageOptions::default()
    });
    let mut contents = package(contents, &options)?;
    if a.ranker.is_some() {
        gate(a, &mut contents)?;
    }
    let bundle = contents.encode();
    // Read it back with the device's code before publishing it.
    let loaded = Model::from_bytes(&bundle)?;
    write_atomic(&a.out, &bundle)?;
    println!(
        "bundle {} ({} bytes, sha256 {}) written to {}; about {:.1} MiB to load and serve",
        loaded.version(),
        bundle.len(),
        loaded.sha256_hex(),
        a.out.display(),
        loaded.memory_estimate().total() as f64 / f64::from(1 << 20)
    );
    Ok(())
}

/// The gate of `--ranker` (see [`BuildArgs::ranker`]): drops the ranker that fails it, and
/// records the evidence (or `--ungated`) in the bundle's recipe.
fn gate(a: &BuildArgs, contents: &mut BundleContents) -> Result<()> {
    let evidence = if a.ungated {
        println!("ranker: carried without its gate (--ungated)");
        serde_json::json!({"gated": false})
    } else {
        let world = a.world.as_ref().context(
            "a ranker is gated on the validation inside its world: pass --world (or \
             --ungated to carry it untested)",
        )?;
        let g = edgerec_fit::tune::gate_ranker(world, contents, a.ranker_margin)
            .context("gating the ranker")?;
        println!("ranker gate: {}", g.verdict);
        if g.chosen.is_none() {
            contents.ranker = None;
        }
        serde_json::to_value(&g)?
    };
    let mut recipe: serde_json::Value =
        serde_json::from_str(&contents.meta.recipe).unwrap_or_else(|_| serde_json::json!({}));
    if !recipe.is_object() {
        recipe = serde_json::json!({});
    }
    recipe["ranker_gate"] = evidence;
    contents.meta.recipe = serde_json::to_string(&recipe)?;
    Ok(())
}

fn precision(v: &ItemVectors) -> String {
    let kind = if v.is_int8() { "int8" } else { "f32" };
    format!("{kind}, {} bytes", v.bytes())
}

fn inspect(path: &Path) -> Result<()> {
    let model = Model::from_bytes(&read(path)?)
        .with_context(|| format!("{} was refused", path.display()))?;
    let c = model.contents();
    println!("file:          {}", path.display());
    println!("sha256:        {}", model.sha256_hex());
    println!("model version: {}", c.meta.model_version);
    println!("dataset:       {} (seed {})", c.meta.dataset, c.meta.seed);
    println!("trainer:       {}", c.meta.trainer);
    println!("items:         {}", c.catalog.len());
    println!("genres:        {}", c.catalog.genres().join(", "));
    println!(
        "popularity:    half-life {} days, as of {}",
        c.popularity.half_life_days, c.popularity.reference_time
    );
    print_sources(c);
    print_device_sections(c);
    // What a device's loader compares with its memory budget (the same in wasm).
    let memory = model.memory_estimate();
    println!(
        "memory:        about {:.1} MiB to load and serve ({} bytes: {}); devices refuse it above their budget (default {} MiB)",
        memory.total() as f64 / f64::from(1 << 20),
        memory.total(),
        memory.describe(),
        edgerec::limits::DEFAULT_MEMORY_BUDGET >> 20
    );
    Ok(())
}

fn print_sources(c: &BundleContents) {
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
    if let Some(q) = &c.new_user_quotas {
        println!(
            "new-user quotas (QUON): ials {}, two-tower {}, content {}, popularity {}",
            q.ials, q.two_tower, q.content, q.popularity
        );
    }
    if let Some(n) = &c.neighbours {
        println!(
            "neighbours (NBRS): {} titles, {} neighbour entries, quota {}, new users {}, \
             recency decay {}",
            n.rows(),
            n.entries(),
            n.quota(),
            n.new_user_quota(),
            n.recency_decay()
        );
    }
}

fn print_device_sections(c: &BundleContents) {
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
        let augmented = if g.max_norm > 0.0 {
            ", inner-product augmented"
        } else {
            ""
        };
        println!(
            "graph (HNSW):  {} ({} bytes{augmented})",
            g.space.as_str(),
            g.graph.len(),
        );
    }
}
