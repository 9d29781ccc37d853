//! The shipped system fitted on a whole world: the catalog, time-decayed popularity, iALS, the
//! content index and the two-tower model trained on **every** positive, with the blend quotas,
//! as the bundle the device loads ([`System::contents`]).
//!
//! Every source is trained by [`crate::sources::train`] — the code `edgerec eval` measures —
//! on one split whose past is all of the world's positives and whose cut is one second after
//! the last one; popularity is decayed to that cut ([`crate::sources::popularity`], the one
//! definition, normalised to 1 for `POPL`). The catalog is the world's items table: item ids
//! and titles, the release year, genres (sorted by name). Everything is deterministic for a
//! seed, and the model version is a hash of the bundle, so the same world and settings always
//! give the same bytes.
//!
//! ```no_run
//! use edgerec_fit::data::WorldData;
//! use edgerec_fit::system::{System, SystemConfig};
//! let world = WorldData::load(std::path::Path::new("data/world"), 0.8)?;
//! let system = System::fit(&world, &SystemConfig::default())?;
//! let rec = system.recommender()?;                    // the device pipeline over the bundle
//! let similar = system.similar_items(50, 5);          // titles closest to item 50 (iALS)
//! std::fs::write("model.edgerec", system.contents.encode())?;
//! # let _ = (rec, similar);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::Recommender;
use edgerec::bundle::{
    BundleContents, ContentModel, IalsFactors, Meta, Popularity, Quotas, TwoTowerModel,
};
use edgerec::catalog::{Catalog, Item};
use edgerec::tower::{TWO_TOWER_DENSE, TWO_TOWER_DENSE_FEATURES};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::WorldData;
use crate::sources::{self, SourceConfig, Tower, Trained};
use crate::split::Split;
use crate::tune::{self, TuneConfig, Tuned};

/// What [`System::fit`] trains with (recorded in the bundle's recipe).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemConfig {
    /// Name of the data set, recorded in the bundle.
    pub dataset: String,
    /// Seeds iALS and the two-tower model.
    pub seed: u64,
    /// Popularity half-life in days.
    pub half_life_days: f32,
    /// Two-tower epochs; 0 leaves the model out.
    pub tower_epochs: usize,
    /// A play above this fraction of the title is a positive.
    pub positive_above: f32,
    /// Fit the serving (popularity half-life, quotas, MMR λ) on validation inside the past
    /// ([`crate::tune`]); `None` ships `half_life_days`, the default quotas and MMR λ.
    pub tune: Option<TuneConfig>,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            dataset: "movielens-100k".into(),
            seed: 42,
            half_life_days: 30.0,
            tower_epochs: 8,
            positive_above: 0.8,
            tune: Some(TuneConfig::default()),
        }
    }
}

/// What fitting produced besides the bundle: sizes, settings, losses and timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitSummary {
    /// Positives trained on (every positive of the world).
    pub events: usize,
    /// Users in the world.
    pub users: usize,
    /// The settings of every source.
    pub sources: SourceConfig,
    /// The content prior's fitted weights (users with a past, new users).
    pub content_beta: (f32, f32),
    /// Validation NDCG@10 of the content prior by weight (users with a past).
    pub content_beta_curve: Vec<(f32, f64)>,
    /// Final iALS objective.
    pub ials_loss: Option<f64>,
    /// Two-tower training loss per epoch (empty without the model).
    pub tower_losses: Vec<f32>,
    /// Seconds spent fitting each source.
    pub fit_seconds: Vec<(String, f64)>,
    /// The serving fitted on validation, and the evidence ([`crate::tune`]).
    pub tuned: Option<Tuned>,
}

/// The fitted system: the bundle contents the device loads (without the device sections
/// `bundle build` adds: media table, int8, graphs, serving settings) and how it was fitted.
pub struct System {
    /// The bundle: `META`, `CATL`, `POPL`, `FACT`, `CONT`, `QUOT` and, with a tower, `TWRT`.
    pub contents: BundleContents,
    /// How it was fitted.
    pub summary: FitSummary,
}

/// The bundle's recipe: the system's settings and every source's.
#[derive(Serialize)]
struct Recipe<'a> {
    #[serde(flatten)]
    system: &'a SystemConfig,
    sources: &'a SourceConfig,
}

impl System {
    /// Fits every source on all of `world`'s positives (see the module docs).
    ///
    /// Errors: a world without positives, or one whose items table has repeated ids.
    pub fn fit(world: &WorldData, config: &SystemConfig) -> Result<System> {
        let Some(last) = world.events.last() else {
            bail!("{}: the world has no positives", world.dir.display());
        };
        let split = Split {
            name: "all".into(),
            description: "every positive of the world".into(),
            train: world.events.clone(),
            cut: last.time + 1,
            warm: Vec::new(),
            cold: Vec::new(),
            as_new: Vec::new(),
        };
        let defaults = SourceConfig::default();
        let sources = SourceConfig {
            half_life_days: config.half_life_days,
            ials: edgerec_train::ials::IalsConfig {
                seed: config.seed,
                ..defaults.ials.clone()
            },
            tower: (config.tower_epochs > 0).then(|| edgerec_twotower::TowerConfig {
                epochs: config.tower_epochs,
                seed: config.seed,
                ..edgerec_twotower::TowerConfig::default()
            }),
            ..defaults
        };
        let trained = sources::train(world, &split, &sources).context("training the sources")?;
        let mut system = System::from_trained(world, &trained, &sources, config, &split)?;
        if let Some(t) = &config.tune {
            let tuned = tune::tune(world, &split, &sources, config, t)
                .context("fitting the serving on validation (tune: None skips it)")?;
            system.apply(world, &split, tuned)?;
        }
        Ok(system)
    }

    /// Applies serving fitted on validation inside `split`'s past (the split this system was
    /// fitted on): `POPL`, `QUOT` and `SERV` ([`Tuned::apply`]), the evidence in the bundle's
    /// recipe (`"tuned"`) and in the summary, and a new model version.
    pub fn apply(&mut self, world: &WorldData, split: &Split, tuned: Tuned) -> Result<()> {
        let c = &mut self.contents;
        tuned.apply(c, split, world.items.len());
        let mut recipe: serde_json::Value = serde_json::from_str(&c.meta.recipe)?;
        recipe["tuned"] = serde_json::to_value(&tuned)?;
        c.meta.recipe = serde_json::to_string(&recipe)?;
        c.meta.model_version = String::new();
        c.meta.model_version = model_version(c, &c.meta.dataset.clone());
        c.validate()
            .context("the tuned serving does not fit the bundle")?;
        self.summary.tuned = Some(tuned);
        Ok(())
    }

    /// The system of sources already trained on `split`'s past (`sources` their settings):
    /// the catalog of `world`, popularity as of the split's cut, every source and the quotas.
    /// [`System::fit`] is this on a split of every positive; the evaluation builds one per
    /// split to score the row the device would serve.
    pub fn from_trained(
        world: &WorldData,
        trained: &Trained,
        sources: &SourceConfig,
        config: &SystemConfig,
        split: &Split,
    ) -> Result<System> {
        let catalog = catalog_of(world)?;
        let mut contents = bundle_of(catalog, trained, sources, config, split.cut)?;
        contents.meta.model_version = model_version(&contents, &config.dataset);
        contents
            .validate()
            .context("the fitted sources do not fit the catalog")?;
        let summary = FitSummary {
            events: split.train.len(),
            users: world.users.len(),
            content_beta: (trained.beta.warm, trained.beta.cold),
            content_beta_curve: trained.beta.warm_curve.clone(),
            ials_loss: trained.ials.losses().last().copied(),
            tower_losses: trained
                .tower
                .as_ref()
                .map(|t| t.model.epoch_losses().to_vec())
                .unwrap_or_default(),
            fit_seconds: trained.fit_seconds.clone(),
            sources: sources.clone(),
            tuned: None,
        };
        Ok(System { contents, summary })
    }

    /// The device pipeline over this system's bundle (without device sections, so no ranker
    /// and no maturity data: every title counts as the highest rating).
    pub fn recommender(&self) -> Result<Recommender> {
        Ok(Recommender::from_bytes(&self.contents.encode())?)
    }

    /// The `n` titles closest to `item_id` by the cosine of their iALS factors, best first
    /// (ties to the lower catalog position), with the cosine; empty for an unknown id or a
    /// system without iALS. The "because you watched" neighbours of a title.
    pub fn similar_items(&self, item_id: u32, n: usize) -> Vec<(u32, f32)> {
        let c = &self.contents;
        let (Some(f), Some(pos)) = (&c.ials, c.catalog.position(item_id)) else {
            return Vec::new();
        };
        let y = f.factors();
        let unit = |p: usize| -> Vec<f32> {
            let row = y.row(p);
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter()
                .map(|x| if norm > 0.0 { x / norm } else { 0.0 })
                .collect()
        };
        let q = unit(pos);
        let scores: Vec<f32> = (0..y.rows())
            .map(|p| unit(p).iter().zip(&q).map(|(a, b)| a * b).sum())
            .collect();
        edgerec::blend::top_n(&scores, n, |p| p == pos)
            .into_iter()
            .map(|(p, s)| (c.catalog.items()[p].id, s))
            .collect()
    }

    /// A markdown report of the fit: the catalog, and one row per source.
    pub fn report(&self) -> String {
        let c = &self.contents;
        let m = &self.summary;
        let mut s = String::new();
        let _ = writeln!(s, "# Training report: {}\n", c.meta.model_version);
        let _ = writeln!(
            s,
            "{} titles in {} genres; every source trained on all {} positives of {} users; \
             popularity decayed to unix time {} with a half-life of {} days; blend quotas \
             (iALS:two-tower:content:popularity:neighbours) {}.\n",
            c.catalog.len(),
            c.catalog.genres().len(),
            m.events,
            m.users,
            c.popularity.reference_time,
            c.popularity.half_life_days,
            {
                let q = c.quotas.unwrap_or(edgerec::bundle::Quotas::EQUAL);
                let nb = c.neighbours.as_ref().map_or(0, |n| n.quota());
                format!(
                    "{}:{}:{}:{}:{nb}",
                    q.ials, q.two_tower, q.content, q.popularity
                )
            }
        );
        sources_table(&mut s, m);
        if let Some(t) = &m.tuned {
            let _ = writeln!(s, "\n## Serving\n\n{}", t.markdown());
        }
        s
    }
}

/// The catalog of a world: genres sorted by name, items in table order, the year of release.
fn catalog_of(world: &WorldData) -> Result<Catalog> {
    let genres: Vec<String> = world
        .items
        .iter()
        .flat_map(|i| i.genres.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let items = world
        .items
        .iter()
        .map(|i| {
            let year = edgerec::calendar::civil_from_days(i.release_time.div_euclid(86_400)).year;
            let ids = i
                .genres
                .iter()
                .filter_map(|g| genres.binary_search(g).ok())
                .map(|g| g as u16)
                .collect();
            Item::new(i.item_id, i.title.clone(), u16::try_from(year).ok(), ids)
        })
        .collect();
    Ok(Catalog::new(genres, items)?)
}

/// The bundle of the trained sources (version stamped later).
fn bundle_of(
    catalog: Catalog,
    trained: &Trained,
    sources: &SourceConfig,
    config: &SystemConfig,
    cut: i64,
) -> Result<BundleContents> {
    let ials = trained.ials.config();
    let fact = IalsFactors::new(
        trained.ials.item_factors().clone(),
        trained.ials.gram().to_vec(),
        ials.alpha,
        ials.lambda,
    )
    .context("packing the iALS factors")?;
    let content = ContentModel::new(trained.content.clone(), sources.recency_decay)
        .and_then(|m| m.with_onboarding_beta(trained.beta.cold))
        .context("packing the content index")?;
    let two_tower = trained.tower.as_ref().map(two_tower_section).transpose()?;
    Ok(BundleContents {
        meta: Meta {
            model_version: String::new(),
            created_at: cut - 1,
            dataset: config.dataset.clone(),
            seed: config.seed,
            trainer: format!("edgerec-fit {}", env!("CARGO_PKG_VERSION")),
            recipe: serde_json::to_string(&Recipe {
                system: config,
                sources,
            })?,
        },
        popularity: Popularity::normalised(&trained.popularity, config.half_life_days, cut),
        catalog,
        ials: Some(fact),
        content: Some(content),
        two_tower,
        quotas: Some(quotas(sources.quotas)),
        new_user_quotas: None,
        neighbours: trained.neighbours.clone(),
        features: None,
        ranker: None,
        media: None,
        serving: None,
        graphs: Vec::new(),
        calendar: None,
        release: None,
    })
}

/// The `QUOT`/`QUON` section of a quota vector in the blend's source order (iALS, two-tower,
/// content, popularity, neighbours), as [`SourceConfig::quotas`] and the tuning hold them: the
/// first four (the neighbour source's quota is `NBRS`'s, [`set_quotas`]).
pub fn quotas(q: [u32; 5]) -> Quotas {
    Quotas {
        ials: q[0],
        two_tower: q[1],
        content: q[2],
        popularity: q[3],
    }
}

/// Writes the quotas of users with a history into a bundle: `QUOT` and, when it has the
/// neighbour source, `NBRS`'s quota.
pub fn set_quotas(c: &mut BundleContents, q: [u32; 5]) {
    c.quotas = Some(quotas(q));
    if let Some(nb) = &mut c.neighbours {
        nb.set_quotas(q[4], nb.new_user_quota());
    }
}

/// Writes the quotas of users known only by onboarding picks: `QUON` and `NBRS`'s new-user
/// quota; `None` blends them like everyone else (no `QUON`, `NBRS`'s quota for both).
pub fn set_new_user_quotas(c: &mut BundleContents, q: Option<[u32; 5]>) {
    c.new_user_quotas = q.map(quotas);
    if let Some(nb) = &mut c.neighbours {
        nb.set_quotas(nb.quota(), q.map_or(nb.quota(), |q| q[4]));
    }
}

/// `<dataset>-<first 4 bytes of the sha256 of the bundle without a version>`: the same model
/// always gets the same version.
fn model_version(contents: &BundleContents, dataset: &str) -> String {
    let digest = Sha256::digest(contents.encode());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{dataset}-{hex}")
}

/// The `TWRT` section of a trained tower.
fn two_tower_section(t: &Tower) -> Result<TwoTowerModel> {
    let vocab = t.search_vocab();
    ensure!(
        vocab.len().max(1) == t.onnx.n_search_tokens(),
        "search vocabulary of {} tokens, the user tower has {}",
        vocab.len(),
        t.onnx.n_search_tokens()
    );
    ensure!(
        t.model.n_dense() == TWO_TOWER_DENSE,
        "the user tower takes {} dense inputs, the core's layout has {TWO_TOWER_DENSE}",
        t.model.n_dense(),
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
        TWO_TOWER_DENSE_FEATURES.into(),
    )?)
}

fn sources_table(s: &mut String, m: &FitSummary) {
    let _ = writeln!(s, "| source | settings | fit seconds |");
    let _ = writeln!(s, "|---|---|---|");
    let secs = |name: &str| {
        m.fit_seconds
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| "—".into(), |(_, t)| format!("{t:.1}"))
    };
    let i = &m.sources.ials;
    let loss = m
        .ials_loss
        .map_or_else(|| "—".into(), |l| format!("{l:.1}"));
    let _ = writeln!(
        s,
        "| iALS | {} factors, {} iterations, alpha {}, lambda {}, final loss {loss} | {} |",
        i.factors,
        i.iterations,
        i.alpha,
        i.lambda,
        secs("ials")
    );
    let curve: Vec<String> = m
        .content_beta_curve
        .iter()
        .map(|(b, n)| format!("{b}: {n:.4}"))
        .collect();
    let _ = writeln!(
        s,
        "| content | recency decay {}, prior weight beta {} (new users {}; validation NDCG@10 by beta: {}) | {} |",
        m.sources.recency_decay,
        m.content_beta.0,
        m.content_beta.1,
        curve.join(", "),
        secs("content")
    );
    match &m.sources.tower {
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
            let _ = writeln!(s, "| two-tower | not trained (tower epochs 0) | — |");
        }
    }
    let _ = writeln!(
        s,
        "| popularity | half-life {} days (`POPL`) | {} |",
        m.sources.half_life_days,
        secs("popularity")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::{data, ev};
    use edgerec_data::schema::Item as WorldItem;

    /// Three titles, two users; user 0 watched titles 10 and 20, user 1 title 20.
    fn world() -> WorldData {
        let item = |id: u32, genres: &[&str]| WorldItem {
            item_id: id,
            kind: edgerec::features::MediaKind::Movie,
            series_id: None,
            season: None,
            episode: None,
            title: format!("T{id}"),
            duration_s: 6_000,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            tags: vec![],
            actors: vec![],
            directors: vec![],
            composer: None,
            distributor: None,
            original_language: "en".into(),
            country: "US".into(),
            release_time: 788_918_400, // 1995-01-01
            release_type: edgerec::features::ReleaseType::Theatrical,
            added_time: 0,
            maturity: edgerec::features::Maturity::Pg13,
            public_rating: None,
            revenue_usd: None,
        };
        let mut w = data(
            vec![ev(0, 0, 100, 0), ev(0, 1, 200, 1), ev(1, 1, 300, 2)],
            2,
        );
        w.dir = std::path::PathBuf::from("tiny");
        w.items = vec![
            item(10, &["Drama"]),
            item(20, &["Comedy", "Drama"]),
            item(30, &[]),
        ];
        w
    }

    #[test]
    fn the_catalog_and_popularity_come_from_the_world() {
        let config = SystemConfig {
            tower_epochs: 0,
            tune: None,
            ..SystemConfig::default()
        };
        let s = System::fit(&world(), &config).unwrap();
        let c = &s.contents;
        assert_eq!(c.catalog.genres(), ["Comedy", "Drama"]);
        let ids: Vec<u32> = c.catalog.items().iter().map(|i| i.id).collect();
        assert_eq!(ids, [10, 20, 30]);
        assert_eq!(c.catalog.items()[1].genres, vec![0, 1]);
        assert_eq!(c.catalog.items()[0].year, Some(1995));
        // Title 20 has two positives, 10 one (decayed from further back), 30 none.
        let p = &c.popularity.scores;
        assert_eq!(p[1], 1.0);
        assert!(0.0 < p[0] && p[0] < 1.0 && p[2] == 0.0, "{p:?}");
        assert_eq!(c.popularity.reference_time, 301);
        assert!(c.ials.is_some() && c.content.is_some() && c.two_tower.is_none());
        assert!(c.meta.model_version.starts_with("movielens-100k-"));
        // Fitting is deterministic, down to the bytes and the version.
        let again = System::fit(&world(), &config).unwrap();
        assert_eq!(again.contents.encode(), c.encode());
        assert!(s.report().contains("| iALS |"));
        assert_eq!(s.similar_items(10, 5).len(), 2);
        assert!(s.similar_items(99, 5).is_empty());
    }
}
