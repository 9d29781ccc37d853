//! `edgerec train`: fits the skeleton's two candidate sources and their blend.
//!
//! * **Time-decayed popularity.** Each interaction at time `t` adds
//!   `0.5^((T − t) / half_life)` to its item, where `T` is the newest interaction; scores are
//!   divided by the largest so the most popular item has 1.
//! * **Genre affinity.** Genre `g` gets the smoothed inverse document frequency
//!   `idf_g = ln((1 + N) / (1 + n_g)) + 1` over the `N` interactions, `n_g` of which are with an
//!   item of genre `g`: watching a rare genre says more about a user than watching Drama. Item
//!   vectors are the IDF-weighted genre indicators, L2-normalised (built by the core).
//! * **Blend.** `popularity_weight` and `recency_decay` (see `edgerec::bundle::BlendParams`)
//!   are chosen on a temporal hold-out: the newest `validation_fraction` of interactions is held
//!   out, both sources are refitted on the rest, and every grid point is scored with the core's
//!   own `Recommender` by Recall@k (hits / min(k, |held-out|)) over users with history and
//!   held-out titles. The best point (the first in grid order on ties) is kept, and the final
//!   model is refitted on all interactions.
//!
//! Everything is deterministic; the seed only picks the validation users when there are more
//! than `max_validation_users`.
//!
//! # The candidate sources (`--world`)
//!
//! Given a canonical world of the same data set, [`train_sources`] also trains iALS, the
//! content index and the two-tower model on **all** of the world's positives with the
//! evaluation's code (`crate::eval::sources::train`, so the bundle serves exactly what
//! `edgerec eval` measured), in the catalog's item order, and writes each bundle section's
//! payload (`FACT`, `CONT`, `TWRT`, `QUOT`) to `sources/<TAG>.bin` in the model directory.
//! `model.json` lists the files with their sha256; `edgerec bundle build` checks and includes
//! them. The catalog comes from the tables, the world has its own items table: they are
//! matched by item id, and training refuses worlds whose item ids differ from the catalog's.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::Recommender;
use edgerec::bundle::{
    BlendParams, BundleContents, ContentModel, GenreVectors, IalsFactors, Meta, Popularity, Quotas,
    TwoTowerModel,
};
use edgerec::catalog::{Catalog, Item};
use edgerec::context::{Context, Device};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::eval::sources::{self, SourceConfig};
use crate::eval::split::{EvalData, Split};
use crate::tables::{Interaction, Tables};
use edgerec_eval::{Summary, ndcg, recall_capped};

/// Training parameters (recorded in the bundle's recipe).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainParams {
    /// Name of the data set, recorded in the bundle.
    pub dataset: String,
    /// Seed for every random choice.
    pub seed: u64,
    /// Popularity half-life in days.
    pub half_life_days: f32,
    /// Share of the newest interactions held out to choose the blend.
    pub validation_fraction: f64,
    /// Row length the blend is tuned for.
    pub k: usize,
    /// Candidate values of the popularity weight.
    pub popularity_weights: Vec<f32>,
    /// Candidate values of the recency decay.
    pub recency_decays: Vec<f32>,
    /// Most users the validation scores (a seeded sample above that).
    pub max_validation_users: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            dataset: "movielens-100k".into(),
            seed: 42,
            half_life_days: 30.0,
            validation_fraction: 0.1,
            k: 10,
            popularity_weights: vec![0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
            recency_decays: vec![0.0, 0.05, 0.2, 1.0],
            max_validation_users: 5_000,
        }
    }
}

/// One grid point's validation result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GridPoint {
    /// `None` for the popularity-only baseline.
    pub popularity_weight: Option<f32>,
    /// `None` for the popularity-only baseline.
    pub recency_decay: Option<f32>,
    pub recall: f64,
    pub recall_se: f64,
    pub ndcg: f64,
    pub ndcg_se: f64,
}

/// The validation outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    pub k: usize,
    pub cutoff_time: i64,
    pub users: usize,
    pub popularity_only: GridPoint,
    pub genre_only: GridPoint,
    pub grid: Vec<GridPoint>,
    pub chosen: GridPoint,
}

/// A trained model: what `edgerec bundle build` packs. Stored as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub model_version: String,
    pub created_at: i64,
    pub params: TrainParams,
    pub genres: Vec<String>,
    pub items: Vec<ModelItem>,
    pub popularity: Vec<f32>,
    pub popularity_reference_time: i64,
    pub idf: Vec<f32>,
    pub blend: Blend,
    pub validation: Validation,
    /// The candidate sources trained on a world (`train --world`), absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<SourcesManifest>,
}

/// What `train --world` trained, and the section payload files it wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourcesManifest {
    /// Positives trained on (every positive of the world).
    pub events: usize,
    /// Users in the world.
    pub users: usize,
    /// The settings of every source.
    pub config: SourceConfig,
    /// The content prior's fitted weight.
    pub content_beta: f32,
    /// Final iALS objective.
    pub ials_loss: Option<f64>,
    /// Two-tower training loss per epoch (empty without the model).
    pub tower_losses: Vec<f32>,
    /// The bundle sections, in bundle order.
    pub sections: Vec<SectionFile>,
}

/// One section payload in the model directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SectionFile {
    /// The section tag.
    pub tag: String,
    /// Path relative to the model directory.
    pub file: String,
    /// Payload length in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256 of the payload.
    pub sha256: String,
}

/// A catalog entry of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelItem {
    pub id: u32,
    pub title: String,
    pub year: Option<u16>,
    pub genres: Vec<u16>,
}

/// Serialisable blend parameters.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Blend {
    pub popularity_weight: f32,
    pub recency_decay: f32,
}

/// The identifier of the model format `train` writes.
pub const MODEL_FORMAT: &str = "edgerec-model/1";

impl Model {
    /// The bundle contents this model describes.
    pub fn to_contents(&self) -> Result<BundleContents> {
        ensure!(
            self.format == MODEL_FORMAT,
            "model format {:?}, expected {MODEL_FORMAT:?}",
            self.format
        );
        let items = self
            .items
            .iter()
            .map(|i| Item::new(i.id, i.title.clone(), i.year, i.genres.clone()))
            .collect();
        let catalog = Catalog::new(self.genres.clone(), items)?;
        ensure!(
            self.idf.len() == self.genres.len(),
            "one IDF weight per genre"
        );
        let contents = BundleContents {
            meta: Meta {
                model_version: self.model_version.clone(),
                created_at: self.created_at,
                dataset: self.params.dataset.clone(),
                seed: self.params.seed,
                trainer: format!("edgerec-cli {}", env!("CARGO_PKG_VERSION")),
                recipe: serde_json::to_string(&Recipe {
                    params: &self.params,
                    sources: self.sources.as_ref().map(|s| &s.config),
                })?,
            },
            genre_vectors: GenreVectors::from_catalog(&catalog, self.idf.clone()),
            catalog,
            popularity: Popularity {
                half_life_days: self.params.half_life_days,
                reference_time: self.popularity_reference_time,
                scores: self.popularity.clone(),
            },
            blend: BlendParams {
                popularity_weight: self.blend.popularity_weight,
                recency_decay: self.blend.recency_decay,
            },
            ials: None,
            content: None,
            two_tower: None,
            quotas: None,
            features: None,
            ranker: None,
            media: None,
            serving: None,
            graphs: Vec::new(),
            calendar: None,
        };
        contents.validate()?;
        Ok(contents)
    }

    /// [`Model::to_contents`] plus the candidate sources listed in `model.json`, read from the
    /// model directory `dir` (each file's length and sha256 checked, each payload decoded by
    /// the core's decoder).
    pub fn load_contents(&self, dir: &Path) -> Result<BundleContents> {
        let mut contents = self.to_contents()?;
        let Some(sources) = &self.sources else {
            return Ok(contents);
        };
        for s in &sources.sections {
            let path = dir.join(&s.file);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            ensure!(
                bytes.len() as u64 == s.bytes && hex(&Sha256::digest(&bytes)) == s.sha256,
                "{} does not match model.json (length or sha256): retrain",
                path.display()
            );
            let refused = || format!("{} ({}) was refused", path.display(), s.tag);
            match s.tag.as_str() {
                "FACT" => {
                    contents.ials =
                        Some(IalsFactors::from_payload(1, &bytes).with_context(refused)?)
                }
                "CONT" => {
                    contents.content =
                        Some(ContentModel::from_payload(&bytes).with_context(refused)?)
                }
                "TWRT" => {
                    contents.two_tower =
                        Some(TwoTowerModel::from_payload(1, &bytes).with_context(refused)?)
                }
                "QUOT" => {
                    contents.quotas = Some(Quotas::from_payload(&bytes).with_context(refused)?)
                }
                other => bail!("model.json lists an unknown section {other:?}"),
            }
        }
        contents
            .validate()
            .context("the candidate sources do not fit the catalog")?;
        Ok(contents)
    }

    /// Sets `model_version` to `<dataset>-<first 4 bytes of the sha256 of the model JSON with
    /// an empty version>`: the same model always gets the same version.
    pub fn stamp_version(&mut self) -> Result<()> {
        self.model_version = String::new();
        let digest = Sha256::digest(serde_json::to_vec(self)?);
        self.model_version = format!("{}-{}", self.params.dataset, hex(&digest[..4]));
        Ok(())
    }
}

/// The bundle's recipe: the skeleton's parameters, plus the sources' settings when trained
/// (without them the JSON is exactly the parameters', as before the sources existed).
#[derive(Serialize)]
struct Recipe<'a> {
    #[serde(flatten)]
    params: &'a TrainParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<&'a SourceConfig>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The catalog of a data set: genres sorted by name, items in table order.
fn catalog_of(tables: &Tables) -> Result<(Vec<String>, Vec<ModelItem>)> {
    let mut genres: Vec<String> = tables
        .items
        .iter()
        .flat_map(|i| i.genres.iter().cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    genres.sort();
    let index: HashMap<&str, u16> = genres
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i as u16))
        .collect();
    let items = tables
        .items
        .iter()
        .map(|i| ModelItem {
            id: i.item_id,
            title: i.title.clone(),
            year: i.year,
            genres: i.genres.iter().map(|g| index[g.as_str()]).collect(),
        })
        .collect();
    Ok((genres, items))
}

/// Fitted sources over a set of interactions.
struct Fit {
    popularity: Vec<f32>,
    reference_time: i64,
    idf: Vec<f32>,
}

fn fit(
    interactions: &[Interaction],
    positions: &HashMap<u32, usize>,
    items: &[ModelItem],
    n_genres: usize,
    half_life_days: f32,
) -> Fit {
    let reference_time = interactions.last().map_or(0, |x| x.timestamp);
    let half_life = f64::from(half_life_days) * 86_400.0;
    let mut pop = vec![0f64; items.len()];
    let mut genre_counts = vec![0u64; n_genres];
    for x in interactions {
        let p = positions[&x.item_id];
        let age = (reference_time - x.timestamp).max(0) as f64;
        pop[p] += 0.5f64.powf(age / half_life);
        for &g in &items[p].genres {
            genre_counts[g as usize] += 1;
        }
    }
    let max = pop.iter().cloned().fold(0.0, f64::max);
    let popularity = pop
        .iter()
        .map(|&s| if max > 0.0 { (s / max) as f32 } else { 0.0 })
        .collect();
    let n = interactions.len() as f64;
    let idf = genre_counts
        .iter()
        .map(|&c| (((1.0 + n) / (1.0 + c as f64)).ln() + 1.0) as f32)
        .collect();
    Fit {
        popularity,
        reference_time,
        idf,
    }
}

/// A validation user: watch history before the cutoff and the titles watched after it.
struct ValUser {
    history: Vec<u32>,
    relevant: HashSet<u32>,
}

fn seeded_rank(seed: u64, user: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(user.to_le_bytes());
    h.finalize().into()
}

fn validation_users(
    train: &[Interaction],
    held_out: &[Interaction],
    params: &TrainParams,
) -> Vec<ValUser> {
    let mut history: HashMap<u32, Vec<u32>> = HashMap::new();
    for x in train {
        history.entry(x.user_id).or_default().push(x.item_id);
    }
    let mut future: HashMap<u32, HashSet<u32>> = HashMap::new();
    for x in held_out {
        future.entry(x.user_id).or_default().insert(x.item_id);
    }
    let mut users: Vec<u32> = future
        .keys()
        .copied()
        .filter(|u| history.contains_key(u))
        .collect();
    users.sort_by_key(|&u| (seeded_rank(params.seed, u), u));
    users.truncate(params.max_validation_users);
    users.sort_unstable();
    users
        .into_iter()
        .filter_map(|u| {
            let h = history.remove(&u).unwrap_or_default();
            let seen: HashSet<u32> = h.iter().copied().collect();
            let relevant: HashSet<u32> = future[&u].difference(&seen).copied().collect();
            (!relevant.is_empty()).then_some(ValUser {
                history: h,
                relevant,
            })
        })
        .collect()
}

fn score_rows(
    users: &[ValUser],
    k: usize,
    blend: Option<Blend>,
    mut row: impl FnMut(&ValUser) -> Result<Vec<u32>>,
) -> Result<GridPoint> {
    let (mut recall, mut gain) = (Summary::default(), Summary::default());
    for u in users {
        let r = row(u)?;
        recall.push(recall_capped(&r, &u.relevant, k));
        gain.push(ndcg(&r, &u.relevant, k));
    }
    Ok(GridPoint {
        popularity_weight: blend.map(|b| b.popularity_weight),
        recency_decay: blend.map(|b| b.recency_decay),
        recall: recall.mean(),
        recall_se: recall.standard_error(),
        ndcg: gain.mean(),
        ndcg_se: gain.standard_error(),
    })
}

/// Builds an in-memory bundle and loads it with the device's code.
fn recommender(
    genres: &[String],
    items: &[ModelItem],
    f: &Fit,
    blend: Blend,
    params: &TrainParams,
) -> Result<Recommender> {
    let model = Model {
        format: MODEL_FORMAT.into(),
        model_version: "validation".into(),
        created_at: f.reference_time,
        params: params.clone(),
        genres: genres.to_vec(),
        items: items.to_vec(),
        popularity: f.popularity.clone(),
        popularity_reference_time: f.reference_time,
        idf: f.idf.clone(),
        blend,
        validation: empty_validation(),
        sources: None,
    };
    Ok(Recommender::from_bytes(&model.to_contents()?.encode())?)
}

fn empty_validation() -> Validation {
    let zero = GridPoint {
        popularity_weight: None,
        recency_decay: None,
        recall: 0.0,
        recall_se: 0.0,
        ndcg: 0.0,
        ndcg_se: 0.0,
    };
    Validation {
        k: 0,
        cutoff_time: 0,
        users: 0,
        popularity_only: zero.clone(),
        genre_only: zero.clone(),
        grid: vec![],
        chosen: zero,
    }
}

/// Trains a model on `tables`.
pub fn train(tables: &Tables, params: &TrainParams) -> Result<Model> {
    ensure!(
        !tables.interactions.is_empty(),
        "no interactions to train on"
    );
    ensure!(params.k > 0, "k must be positive");
    ensure!(
        params.validation_fraction > 0.0 && params.validation_fraction < 1.0,
        "validation fraction must be in (0, 1)"
    );
    ensure!(params.half_life_days > 0.0, "half-life must be positive");
    ensure!(
        !params.popularity_weights.is_empty() && !params.recency_decays.is_empty(),
        "the blend grid is empty"
    );
    let (genres, items) = catalog_of(tables)?;
    let positions: HashMap<u32, usize> = items.iter().enumerate().map(|(p, i)| (i.id, p)).collect();
    for x in &tables.interactions {
        ensure!(
            positions.contains_key(&x.item_id),
            "interaction with unknown item {}",
            x.item_id
        );
    }

    // Temporal hold-out (interactions are sorted by time, ties in file order).
    let n = tables.interactions.len();
    let cut = ((n as f64) * (1.0 - params.validation_fraction)).floor() as usize;
    let (train_part, held_out) = tables.interactions.split_at(cut.clamp(1, n));
    let users = validation_users(train_part, held_out, params);
    ensure!(
        !users.is_empty(),
        "no user has both history before and titles after the validation cutoff"
    );
    let f = fit(
        train_part,
        &positions,
        &items,
        genres.len(),
        params.half_life_days,
    );
    let ctx = Context::new(Device::Unknown, f.reference_time, 0)?;
    let k = params.k;

    let mut pop_order: Vec<usize> = (0..items.len()).collect();
    pop_order.sort_by(|&a, &b| f.popularity[b].total_cmp(&f.popularity[a]).then(a.cmp(&b)));
    let popularity_only = score_rows(&users, k, None, |u| {
        let seen: HashSet<u32> = u.history.iter().copied().collect();
        Ok(pop_order
            .iter()
            .map(|&p| items[p].id)
            .filter(|id| !seen.contains(id))
            .take(k)
            .collect())
    })?;

    let mut grid = Vec::new();
    for &recency_decay in &params.recency_decays {
        for &popularity_weight in &params.popularity_weights {
            let blend = Blend {
                popularity_weight,
                recency_decay,
            };
            let rec = recommender(&genres, &items, &f, blend, params)?;
            grid.push(score_rows(&users, k, Some(blend), |u| {
                Ok(rec
                    .recommend(&u.history, &[], &ctx, k)?
                    .iter()
                    .map(|r| r.item_id)
                    .collect())
            })?);
        }
    }
    let chosen = grid
        .iter()
        .fold(None::<&GridPoint>, |best, g| match best {
            Some(b) if b.recall >= g.recall => Some(b),
            _ => Some(g),
        })
        .cloned()
        .expect("grid is not empty");
    let genre_only = grid
        .iter()
        .filter(|g| g.popularity_weight == Some(0.0))
        .fold(None::<&GridPoint>, |best, g| match best {
            Some(b) if b.recall >= g.recall => Some(b),
            _ => Some(g),
        })
        .cloned()
        .unwrap_or_else(|| empty_validation().chosen);

    // Final fit on everything.
    let f = fit(
        &tables.interactions,
        &positions,
        &items,
        genres.len(),
        params.half_life_days,
    );
    let mut model = Model {
        format: MODEL_FORMAT.into(),
        model_version: String::new(),
        created_at: f.reference_time,
        params: params.clone(),
        genres,
        items,
        popularity: f.popularity,
        popularity_reference_time: f.reference_time,
        idf: f.idf,
        blend: Blend {
            popularity_weight: chosen.popularity_weight.unwrap_or_default(),
            recency_decay: chosen.recency_decay.unwrap_or_default(),
        },
        validation: Validation {
            k,
            cutoff_time: train_part.last().map_or(0, |x| x.timestamp),
            users: users.len(),
            popularity_only,
            genre_only,
            grid,
            chosen,
        },
        sources: None,
    };
    model.stamp_version()?;
    Ok(model)
}

/// Settings of [`train_sources`].
#[derive(Debug, Clone)]
pub struct SourcesParams {
    /// Two-tower epochs; 0 skips the model.
    pub tower_epochs: usize,
    /// Seeds iALS and the two-tower model.
    pub seed: u64,
    /// A play above this fraction of the title is a positive.
    pub positive_above: f32,
}

/// Trains the candidate sources on every positive of the world in `world`, with the catalog
/// order of `model`, and writes the section payloads into `out/sources/`. Returns the
/// manifest to store in `model.json` and a markdown report section.
pub fn train_sources(
    world: &Path,
    model: &Model,
    params: &SourcesParams,
    out: &Path,
) -> Result<(SourcesManifest, String)> {
    let mut data = EvalData::load(world, params.positive_above)
        .with_context(|| format!("loading the world {}", world.display()))?;
    align_items(&mut data, &model.items)
        .with_context(|| format!("matching {} to the catalog", world.display()))?;
    let Some(last) = data.events.last() else {
        bail!("{}: the world has no positives", world.display());
    };
    let split = Split {
        name: "all".into(),
        description: "every positive of the world".into(),
        train: data.events.clone(),
        cut: last.time + 1,
        warm: Vec::new(),
        cold: Vec::new(),
        as_new: Vec::new(),
    };
    let defaults = SourceConfig::default();
    let config = SourceConfig {
        ials: edgerec_train::ials::IalsConfig {
            seed: params.seed,
            ..defaults.ials.clone()
        },
        tower: (params.tower_epochs > 0).then(|| edgerec_twotower::TowerConfig {
            epochs: params.tower_epochs,
            seed: params.seed,
            ..edgerec_twotower::TowerConfig::default()
        }),
        ..defaults
    };
    let trained = sources::train(&data, &split, &config).context("training the sources")?;

    let ials = trained.ials.config();
    let fact = IalsFactors::new(
        trained.ials.item_factors().clone(),
        trained.ials.gram().to_vec(),
        ials.alpha,
        ials.lambda,
    )
    .context("packing the iALS factors")?;
    let content = ContentModel::new(trained.content.clone(), config.recency_decay)
        .and_then(|m| m.with_onboarding_beta(trained.beta.cold))
        .context("packing the content index")?;
    let quotas = Quotas {
        ials: config.quotas[0],
        two_tower: config.quotas[1],
        content: config.quotas[2],
        popularity: config.quotas[3],
    };
    let mut payloads: Vec<(&str, Vec<u8>)> =
        vec![("FACT", fact.to_payload()), ("CONT", content.to_payload())];
    if let Some(t) = &trained.tower {
        payloads.push(("TWRT", two_tower_section(t)?.to_payload()));
    }
    payloads.push(("QUOT", quotas.to_payload()));

    let mut sections = Vec::new();
    for (tag, bytes) in payloads {
        let file = format!("sources/{tag}.bin");
        crate::write(&out.join(&file), &bytes)?;
        sections.push(SectionFile {
            tag: tag.into(),
            file,
            bytes: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
        });
    }
    let manifest = SourcesManifest {
        events: split.train.len(),
        users: data.users.len(),
        config,
        content_beta: trained.content.beta(),
        ials_loss: trained.ials.losses().last().copied(),
        tower_losses: trained
            .tower
            .as_ref()
            .map(|t| t.model.epoch_losses().to_vec())
            .unwrap_or_default(),
        sections,
    };
    let report = sources_report(&manifest, &trained.fit_seconds, &trained.beta.warm_curve);
    Ok((manifest, report))
}

/// Reorders the world's items into the catalog's order (matched by item id) and renumbers the
/// positives; fails if the two hold different item ids.
fn align_items(data: &mut EvalData, catalog: &[ModelItem]) -> Result<()> {
    let position: HashMap<u32, usize> =
        catalog.iter().enumerate().map(|(p, i)| (i.id, p)).collect();
    let missing: Vec<u32> = data
        .items
        .iter()
        .map(|i| i.item_id)
        .filter(|id| !position.contains_key(id))
        .take(5)
        .collect();
    ensure!(
        missing.is_empty(),
        "the world has items the catalog lacks (e.g. {missing:?}); import both from the same data"
    );
    ensure!(
        data.items.len() == catalog.len(),
        "the world has {} items, the catalog {}; import both from the same data",
        data.items.len(),
        catalog.len()
    );
    // Every world item has a distinct catalog position and the counts agree: a permutation.
    let to_catalog: Vec<u32> = data
        .items
        .iter()
        .map(|i| position[&i.item_id] as u32)
        .collect();
    let mut items: Vec<Option<edgerec_data::schema::Item>> = vec![None; catalog.len()];
    for (w, item) in std::mem::take(&mut data.items).into_iter().enumerate() {
        let slot = &mut items[to_catalog[w] as usize];
        ensure!(
            slot.is_none(),
            "item {} appears twice in the world",
            item.item_id
        );
        *slot = Some(item);
    }
    data.items = items
        .into_iter()
        .map(|i| i.expect("a permutation"))
        .collect();
    for e in &mut data.events {
        e.item = to_catalog[e.item as usize];
    }
    Ok(())
}

/// The `TWRT` section of a trained tower.
fn two_tower_section(t: &sources::Tower) -> Result<TwoTowerModel> {
    let vocab = t.search_vocab();
    ensure!(
        vocab.len().max(1) == t.onnx.n_search_tokens(),
        "search vocabulary of {} tokens, the user tower has {}",
        vocab.len(),
        t.onnx.n_search_tokens()
    );
    ensure!(
        t.model.n_dense() == edgerec::candidates::TWO_TOWER_DENSE
            && sources::TOWER_DENSE == edgerec::candidates::TWO_TOWER_DENSE,
        "the user tower takes {} dense inputs, the core's layout has {}",
        t.model.n_dense(),
        edgerec::candidates::TWO_TOWER_DENSE
    );
    let config = t.model.config();
    Ok(TwoTowerModel::new(
        t.model.dim(),
        t.model.item_embeddings().to_vec(),
        t.model
            .user_tower_onnx()
            .context("exporting the user tower")?,
        vocab,
        config.max_history,
        config.max_searches,
        edgerec::candidates::TWO_TOWER_DENSE_FEATURES.into(),
    )?)
}

fn sources_report(
    m: &SourcesManifest,
    fit_seconds: &[(String, f64)],
    beta: &[(f32, f64)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## Candidate sources\n\nTrained on all {} positives of {} users; blend quotas \
         (iALS, two-tower, content, popularity) {:?}.\n",
        m.events, m.users, m.config.quotas
    );
    let _ = writeln!(s, "| source | settings | fit seconds |");
    let _ = writeln!(s, "|---|---|---|");
    let secs = |name: &str| {
        fit_seconds
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| "—".into(), |(_, t)| format!("{t:.1}"))
    };
    let i = &m.config.ials;
    let _ = writeln!(
        s,
        "| iALS | {} factors, {} iterations, alpha {}, lambda {}, final loss {} | {} |",
        i.factors,
        i.iterations,
        i.alpha,
        i.lambda,
        m.ials_loss
            .map_or_else(|| "—".into(), |l| format!("{l:.1}")),
        secs("ials")
    );
    let curve: Vec<String> = beta.iter().map(|(b, n)| format!("{b}: {n:.4}")).collect();
    let _ = writeln!(
        s,
        "| content | recency decay {}, prior weight beta {} (validation NDCG@10 by beta: {}) | {} |",
        m.config.recency_decay,
        m.content_beta,
        curve.join(", "),
        secs("content")
    );
    match &m.config.tower {
        Some(t) => {
            let losses: Vec<String> = m.tower_losses.iter().map(|l| format!("{l:.3}")).collect();
            let _ = writeln!(
                s,
                "| two-tower | dim {}, {} epochs, loss by epoch {} | {} |",
                t.dim,
                t.epochs,
                losses.join(", "),
                secs("two-tower")
            );
        }
        None => {
            let _ = writeln!(s, "| two-tower | not trained (`--tower-epochs 0`) | — |");
        }
    }
    let _ = writeln!(
        s,
        "| popularity | the skeleton's `POPL` | {} |",
        secs("popularity")
    );
    s
}

/// A markdown report of the validation.
pub fn report(model: &Model) -> String {
    let v = &model.validation;
    let mut s = String::new();
    let _ = writeln!(s, "# Training report: {}\n", model.model_version);
    let _ = writeln!(
        s,
        "{} items, {} genres. Blend chosen on a temporal hold-out: interactions after unix time {} \
         ({} users with history before it and new titles after it). Recall@{k} = hits / min({k}, |held-out|); \
         ± is one standard error over users.\n",
        model.items.len(),
        model.genres.len(),
        v.cutoff_time,
        v.users,
        k = v.k
    );
    let _ = writeln!(
        s,
        "| system | popularity weight | recency decay | Recall@{k} | NDCG@{k} |",
        k = v.k
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    let row = |s: &mut String, name: &str, g: &GridPoint| {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
            opt(g.popularity_weight),
            opt(g.recency_decay),
            g.recall,
            g.recall_se,
            g.ndcg,
            g.ndcg_se
        );
    };
    row(&mut s, "popularity only", &v.popularity_only);
    row(&mut s, "genre affinity only (best decay)", &v.genre_only);
    row(&mut s, "**blend (chosen)**", &v.chosen);
    let _ = writeln!(s, "\n## Grid\n");
    let _ = writeln!(
        s,
        "| popularity weight | recency decay | Recall@{k} | NDCG@{k} |",
        k = v.k
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for g in &v.grid {
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
            opt(g.popularity_weight),
            opt(g.recency_decay),
            g.recall,
            g.recall_se,
            g.ndcg,
            g.ndcg_se
        );
    }
    s
}

fn opt(v: Option<f32>) -> String {
    v.map_or_else(|| "—".into(), |v| v.to_string())
}
