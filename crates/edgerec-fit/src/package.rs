//! What `bundle build` adds for the device's full pipeline besides the models: the media table
//! (`MDIA`) and feature contract (`FEAT`) from a canonical world, a ranker (`RANK`), int8 item
//! vectors, HNSW graphs, the serving settings (`SERV`) and the holiday calendar (`CALD`) —
//! [`package`] does all of it and checks the result with the device's own loader.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::bundle::{
    BundleContents, FeatureContract, GraphSection, MediaTable, ServingSettings, Space,
};
use edgerec::features::{FeatureConfig, MediaStats};
use edgerec::hnsw::HnswConfig;
use edgerec::retrieval::{HNSW_ABOVE, InnerProductGraph};
use edgerec_data::schema::{self, Play};
use edgerec_pipeline::World;

const DAY: i64 = 86_400;

/// When `bundle build` ships HNSW graphs (`never`, `auto`, `always`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HnswMode {
    /// Never.
    Never,
    /// For catalogs above `edgerec::retrieval::HNSW_ABOVE` titles (where the device uses them).
    Auto,
    /// Always (the device still scans flat below the threshold unless a request asks).
    Always,
}

impl std::str::FromStr for HnswMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<HnswMode> {
        match s {
            "never" => Ok(HnswMode::Never),
            "auto" => Ok(HnswMode::Auto),
            "always" => Ok(HnswMode::Always),
            other => bail!("HNSW mode {other:?} is not never, auto or always"),
        }
    }
}

/// What [`package`] adds to a fitted model.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// The world the model was trained on: the media table (`MDIA`) and, without
    /// `features`, the feature contract.
    pub world: Option<PathBuf>,
    /// The pipeline's `features.json` a ranker was trained with.
    pub features: Option<PathBuf>,
    /// A ranker (ONNX) to carry; needs the feature contract.
    pub ranker: Option<PathBuf>,
    /// The ranker's contract file, for models made elsewhere ([`crate::ranker_files`]).
    pub ranker_contract: Option<PathBuf>,
    /// Ship the item vectors as int8 with per-row scales.
    pub int8: bool,
    /// When to build HNSW graphs.
    pub hnsw: HnswMode,
    /// Seed of the HNSW layer draws.
    pub hnsw_seed: u64,
    /// How the device serves requests by default; `None` keeps the model's `SERV` (the
    /// serving `edgerec train` fitted on validation), or the defaults without one.
    pub serving: Option<ServingSettings>,
}

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions {
            world: None,
            features: None,
            ranker: None,
            ranker_contract: None,
            int8: false,
            hnsw: HnswMode::Auto,
            hnsw_seed: 1,
            serving: None,
        }
    }
}

/// The bundle a device loads: `contents` (a fitted model) with everything `options` asks for,
/// checked with the device's loader ([`edgerec::Model::check`]) before it is returned. A
/// bundle with a feature contract ships the holiday calendar its features were computed with
/// (the built-in one), so devices use it rather than the one compiled into them.
pub fn package(mut contents: BundleContents, options: &PackageOptions) -> Result<BundleContents> {
    if options.ranker.is_some() {
        // A given ranker replaces the model's own, and the feature contract that one read
        // (it may carry the candidate family): the world or `--features` gives the new one.
        contents.ranker = None;
        contents.features = None;
    }
    if let Some(path) = &options.features {
        contents.features = Some(crate::ranker_files::feature_contract(path)?);
    }
    if let Some(w) = &options.world {
        let now = contents.popularity.reference_time;
        add_media(&mut contents, w, now)?;
    }
    if let Some(path) = &options.ranker {
        let f = contents.features.as_ref().context(
            "a ranker needs its feature contract: pass --features (the pipeline's \
             features.json) or --world",
        )?;
        contents.ranker = Some(crate::ranker_files::ranker(
            path,
            options.ranker_contract.as_deref(),
            f,
        )?);
    }
    if options.int8 {
        quantize(&mut contents)?;
    }
    add_graphs(&mut contents, options.hnsw, options.hnsw_seed)?;
    contents.serving = match &options.serving {
        Some(s) => Some(s.clone()),
        None => Some(contents.serving.take().unwrap_or_default()),
    };
    if contents.features.is_some() {
        contents.calendar = Some(edgerec::calendar::Calendar::builtin());
    }
    edgerec::Model::check(&contents).context("the bundle was refused")?;
    Ok(contents)
}

/// Adds `MDIA` (and `FEAT` when the bundle has none yet) from the world the model was trained
/// on: every catalog title's metadata mapped to the feature contract's vocabularies, and its
/// plays by anyone in the 24 hours and 7 days before `stats_time` (the bundle's "now", as the
/// pipeline's SQL window: `[t − 86400, t − 1]`). A given feature contract must be the world's
/// (same vocabularies and windows): ids would otherwise mean different things.
pub fn add_media(contents: &mut BundleContents, world: &Path, stats_time: i64) -> Result<()> {
    let config = contents
        .features
        .as_ref()
        .map_or(FeatureConfig::default(), |f| f.space().config());
    let w = World::load(world, config).with_context(|| format!("loading {}", world.display()))?;
    match &contents.features {
        Some(f) => ensure!(
            f.space() == &w.space,
            "the feature contract (--features) was not made from {}: its vocabularies differ \
             from the world's",
            world.display()
        ),
        None => contents.features = Some(FeatureContract::new(w.space.clone())),
    }
    let catalog = &contents.catalog;
    let mut media = Vec::with_capacity(catalog.len());
    for item in catalog.items() {
        let Some(&i) = w.index.get(&item.id) else {
            bail!(
                "catalog item {} ({}) is not in {}",
                item.id,
                item.display_title(),
                world.display()
            );
        };
        media.push(w.media[i as usize].clone());
    }
    let mut stats = vec![MediaStats::default(); catalog.len()];
    let plays: Vec<Play> = schema::read_table(world)
        .with_context(|| format!("reading the plays of {}", world.display()))?;
    for p in plays.iter().filter(|p| p.time < stats_time) {
        if let Some(pos) = catalog.position(p.item_id) {
            if p.time >= stats_time - DAY {
                stats[pos].plays_24h += 1;
            }
            if p.time >= stats_time - 7 * DAY {
                stats[pos].plays_7d += 1;
            }
        }
    }
    contents.media = Some(MediaTable::new(media, stats, stats_time)?);
    Ok(())
}

/// Quantises the iALS factors and two-tower item embeddings to int8 (`FACT`/`TWRT` v2).
pub fn quantize(contents: &mut BundleContents) -> Result<()> {
    if let Some(f) = &contents.ials {
        contents.ials = Some(f.quantized()?);
    }
    if let Some(t) = &contents.two_tower {
        contents.two_tower = Some(t.quantized()?);
    }
    Ok(())
}

/// Builds the HNSW graphs `mode` asks for: iALS over augmented rows (inner product), two-tower
/// over its unit rows. Graphs are built from the vectors the bundle ships (after int8, the
/// dequantised rows). Deterministic for a seed only up to rayon's scheduling (see
/// `edgerec::hnsw`): the bytes are what ships.
pub fn add_graphs(contents: &mut BundleContents, mode: HnswMode, seed: u64) -> Result<()> {
    let n = contents.catalog.len();
    let build = match mode {
        HnswMode::Never => false,
        HnswMode::Auto => n > HNSW_ABOVE,
        HnswMode::Always => true,
    };
    if !build {
        return Ok(());
    }
    let config = HnswConfig {
        seed,
        ..HnswConfig::default()
    };
    let mut graphs = Vec::new();
    if let Some(f) = &contents.ials {
        let g = InnerProductGraph::build(f.factors(), true, config)?;
        graphs.push(GraphSection {
            space: Space::Ials,
            max_norm: g.max_norm(),
            graph: g.index().to_bytes(),
        });
    }
    if let Some(t) = &contents.two_tower {
        let g = InnerProductGraph::build(t.item_vectors(), false, config)?;
        graphs.push(GraphSection {
            space: Space::TwoTower,
            max_norm: 0.0,
            graph: g.index().to_bytes(),
        });
    }
    contents.graphs = graphs;
    Ok(())
}
