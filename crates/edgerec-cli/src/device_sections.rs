//! What `bundle build` adds for the device's full pipeline besides the models: the media table
//! (`MDIA`) and feature contract (`FEAT`) from a canonical world, int8 item vectors, HNSW
//! graphs and the serving settings (`SERV`).

use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::bundle::{BundleContents, FeatureContract, GraphSection, MediaTable, Space};
use edgerec::features::{FeatureConfig, MediaStats};
use edgerec::hnsw::HnswConfig;
use edgerec::retrieval::{HNSW_ABOVE, InnerProductGraph};
use edgerec_data::schema::{self, Play};
use edgerec_pipeline::World;

const DAY: i64 = 86_400;

/// When `bundle build` ships HNSW graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HnswMode {
    /// Never.
    Never,
    /// For catalogs above `edgerec::retrieval::HNSW_ABOVE` titles (where the device uses them).
    Auto,
    /// Always (the device still scans flat below the threshold unless a request asks).
    Always,
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
