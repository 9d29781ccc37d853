//! A ranker learned from the device's own first stage: examples are the candidates and feature
//! vectors [`edgerec::Recommender::ranker_inputs`] computes for a user at a request — the
//! exact code the device runs before its ranker, including the candidate family (`cand.*`:
//! every source's rank and relative score, the blend's rank, popularity) — labelled by what the
//! user watched after the request.
//!
//! [`examples`] serves a split's cases from a bundle fitted on that split's past (no ranker
//! needed): a candidate is a positive when it is one of the case's relevant titles, else a
//! negative, downsampled to [`LearnConfig::negatives_per_positive`] per positive by a seeded
//! hash of (user, title) — the seed's downsampling. Positives weigh by the time watched
//! (`clamp(watched_s / 3600, 0.1, 4)`, the pipeline's rule: 80% of a film counts more than
//! 80% of an episode); negatives by the title's duration. A case whose candidates hold no
//! relevant title teaches no order and is skipped (counted in [`Examples::skipped`]).
//!
//! [`fit`] trains gradient-boosted trees or the weighted logistic regression of `edgerec-rank`
//! on them and returns the `RANK` section (ONNX + contract over the bundle's feature space).
//! Whether the ranker ships is [`crate::tune`]'s decision: it must beat the blend's order on
//! validation by a stated margin.

use std::collections::HashSet;

use anyhow::{Context as _, Result, ensure};
use edgerec::Recommender;
use edgerec::bundle::{BundleContents, FeatureContract, RankerModel};
use edgerec::features::{FeatureConfig, FeatureSpace};
use edgerec_rank::{Dataset, FitConfig, GradientBoostedTrees, LogisticRegression, TreeConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::WorldData;
use crate::device::{BLEND_ORDER, Requests};
use crate::ranking::weight;
use crate::split::{Case, Split};

/// Which model the ranker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Gradient-boosted trees (ONNX-ML `TreeEnsembleClassifier`).
    Gbdt,
    /// Weighted logistic regression on standardised features.
    Logistic,
}

impl Kind {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gbdt => "gbdt",
            Kind::Logistic => "logistic",
        }
    }
}

/// How the ranker learns and what it must show before it ships.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearnConfig {
    /// The models tried; the one with the largest paired gain on validation is the candidate.
    pub kinds: Vec<Kind>,
    /// Sampled negatives per positive among a case's candidates.
    pub negatives_per_positive: usize,
    /// The ranker ships only when its paired NDCG@10 gain over the blend's order on validation
    /// exceeds this many paired standard errors.
    pub margin: f64,
    /// The trees.
    pub trees: TreeConfig,
    /// The logistic regression.
    pub logistic: FitConfig,
    /// Seeds the negative sampling.
    pub seed: u64,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            kinds: vec![Kind::Gbdt, Kind::Logistic],
            negatives_per_positive: 10,
            margin: 1.0,
            trees: TreeConfig::default(),
            logistic: FitConfig::default(),
            seed: 23,
        }
    }
}

/// Labelled feature vectors of the device's candidates.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    /// Dense feature names (the bundle's space, with the candidate family).
    pub names: Vec<String>,
    /// Row-major dense values.
    pub dense: Vec<f32>,
    /// One label per row.
    pub labels: Vec<bool>,
    /// One weight per row.
    pub weights: Vec<f32>,
    /// Cases that gave rows.
    pub cases: usize,
    /// Cases skipped: no relevant title among their candidates.
    pub skipped: usize,
}

impl Examples {
    /// Rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Positive rows.
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|&&l| l).count()
    }

    /// Appends `other` (same feature names).
    pub fn extend(&mut self, other: Examples) -> Result<()> {
        if self.names.is_empty() {
            self.names = other.names;
        } else {
            ensure!(
                other.names.is_empty() || other.names == self.names,
                "examples over different feature spaces"
            );
        }
        self.dense.extend(other.dense);
        self.labels.extend(other.labels);
        self.weights.extend(other.weights);
        self.cases += other.cases;
        self.skipped += other.skipped;
        Ok(())
    }

    fn dataset(&self) -> Result<Dataset> {
        Ok(Dataset::new(
            self.names.clone(),
            self.dense.clone(),
            self.labels.clone(),
            self.weights.clone(),
        )?)
    }
}

/// `contents` with its feature contract extended by the candidate family (same vocabularies,
/// windows and calendar), so the device computes what a ranker trained here reads.
///
/// Errors: a bundle without a feature contract (`FEAT`: package it with its world).
pub fn with_provenance(mut contents: BundleContents) -> Result<BundleContents> {
    let f = contents
        .features
        .as_ref()
        .context("the bundle has no feature contract (FEAT): package it with its world")?;
    let space = f.space();
    let config = FeatureConfig {
        provenance: true,
        ..space.config()
    };
    let space = FeatureSpace::with_calendar(
        space.vocabularies().clone(),
        config,
        space.calendar().clone(),
    );
    contents.features = Some(FeatureContract::new(space));
    Ok(contents)
}

/// One row per sampled candidate of every case (see the module docs), served by `rec` — the
/// bundle fitted on `split`'s past — through [`Recommender::ranker_inputs`].
///
/// Errors: a request the device refuses, or a bundle without `FEAT` and `MDIA`.
pub fn examples(
    rec: &Recommender,
    data: &WorldData,
    split: &Split,
    cases: &[Case],
    config: &LearnConfig,
) -> Result<Examples> {
    let names = rec
        .model()
        .contents()
        .features
        .as_ref()
        .context("the bundle has no feature contract (FEAT)")?
        .space()
        .dense_names()
        .to_vec();
    let requests = Requests::new(data, split);
    let per_case: Vec<Option<CaseRows>> = cases
        .par_iter()
        .map(|case| case_rows(rec, data, &requests, case, config))
        .collect::<Result<_>>()?;
    let mut out = Examples {
        names,
        ..Examples::default()
    };
    for rows in per_case {
        match rows {
            Some(r) => {
                out.dense.extend(r.dense);
                out.labels.extend(r.labels);
                out.weights.extend(r.weights);
                out.cases += 1;
            }
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

struct CaseRows {
    dense: Vec<f32>,
    labels: Vec<bool>,
    weights: Vec<f32>,
}

fn case_rows(
    rec: &Recommender,
    data: &WorldData,
    requests: &Requests<'_>,
    case: &Case,
    config: &LearnConfig,
) -> Result<Option<CaseRows>> {
    let (state, request) = requests.of(case, crate::report::K, BLEND_ORDER)?;
    let (cands, batch) = rec
        .ranker_inputs(&state, &request)
        .with_context(|| format!("the candidates of user {}", case.user))?;
    let batch = batch.context("the bundle has no feature contract and media table")?;
    // The bundle's catalog is the world's items in table order: position = dense index.
    let positive: Vec<bool> = cands
        .blend
        .iter()
        .map(|b| case.relevant.contains(&(b.position as u32)))
        .collect();
    let positives = positive.iter().filter(|&&p| p).count();
    if positives == 0 {
        return Ok(None);
    }
    let negatives = positive.len() - positives;
    let keep_negatives = (config.negatives_per_positive * positives).min(negatives);
    // The seeded hash of (user, title) orders the negatives; the first `keep_negatives` stay.
    let mut ranked: Vec<(u64, usize)> = (0..positive.len())
        .filter(|&i| !positive[i])
        .map(|i| {
            let key = (u64::from(case.user) << 32) | cands.blend[i].position as u64;
            let mut state = config.seed ^ key;
            (edgerec::rng::splitmix64(&mut state), i)
        })
        .collect();
    ranked.sort_unstable();
    let kept: HashSet<usize> = ranked
        .iter()
        .take(keep_negatives)
        .map(|&(_, i)| i)
        .collect();
    let u = case.user as usize;
    let mut rows = CaseRows {
        dense: Vec::new(),
        labels: Vec::new(),
        weights: Vec::new(),
    };
    for (i, b) in cands.blend.iter().enumerate() {
        if !positive[i] && !kept.contains(&i) {
            continue;
        }
        let item = &data.items[b.position];
        let w = if positive[i] {
            let watched = data.plays[u]
                .iter()
                .filter(|p| p.item_id == item.item_id && p.time >= case.time)
                .map(|p| p.watched_s)
                .max()
                .unwrap_or(item.duration_s);
            weight(watched)
        } else {
            weight(item.duration_s)
        };
        rows.dense.extend_from_slice(&batch.vectors[i].dense);
        rows.labels.push(positive[i]);
        rows.weights.push(w);
    }
    Ok(Some(rows))
}

/// The `RANK` section of a `kind` ranker trained on `examples`, over `features` (the bundle's
/// space with the candidate family, [`with_provenance`]).
///
/// Errors: no examples, or a model that fails to train or export.
pub fn fit(
    examples: &Examples,
    kind: Kind,
    config: &LearnConfig,
    features: &FeatureContract,
) -> Result<RankerModel> {
    ensure!(
        examples.positives() > 0 && examples.positives() < examples.len(),
        "the ranker needs positives and negatives ({} rows, {} positive)",
        examples.len(),
        examples.positives()
    );
    ensure!(
        examples.names == features.space().dense_names(),
        "the examples' features are not the bundle's"
    );
    let data = examples.dataset()?;
    let onnx = match kind {
        Kind::Gbdt => GradientBoostedTrees::fit(&data, &config.trees)?.to_onnx()?,
        Kind::Logistic => LogisticRegression::fit(&data, &config.logistic)?.to_onnx()?,
    };
    crate::ranker_files::ranker_from_onnx(kind.name(), onnx, features)
}
