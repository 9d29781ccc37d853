//! How the device serves a bundle, fitted on validation: the popularity source's half-life,
//! the blend's quotas and the MMR trade-off of the rerank, each chosen by the row the device
//! returns ([`edgerec::Recommender::recommend_row`]) on a validation split *inside* the
//! training past — never on the test future.
//!
//! [`tune`] cuts the past again ([`Validation`]: each user's last past positive, or the last
//! share of the past by time), trains every source on the inner past with the settings being
//! shipped, packages that bundle as it ships (media table, int8), and serves the validation
//! users through the one recommendation path, one setting at a time:
//!
//! 1. **half-life** — the popularity source alone (quotas `0:0:0:1`), one row per half-life;
//!    the best NDCG@10 wins;
//! 2. **quotas** — the blend's order (no ranker, relevance only, no fatigue or cap), one row
//!    per quota vector of [`TuneConfig::quotas`] (iALS, two-tower, content, popularity,
//!    neighbours). By the one-standard-error rule, every vector whose NDCG@10 is within one
//!    paired standard error of the best one's is admissible, and of those the ones blending
//!    the fewest sources; among them the best NDCG@10 wins (ties to the earlier). Users with a
//!    history choose `QUOT`; users known only by onboarding picks choose `QUON` (the
//!    validation's new and as-new users; inside leave-last-out, held-out users whose last
//!    titles before the held-out one stand for their picks, their past hidden). When those
//!    are two cohorts (temporal: users new to the validation, and users with a past treated
//!    as new), each may prefer another source and the device cannot tell them apart: among
//!    the admissible vectors, the one whose worst cohort falls least below that cohort's best
//!    single source wins. The neighbour source's share goes to `NBRS`;
//! 3. **ranker** — a ranker learned from the device's own candidates ([`crate::learned`]): the
//!    protocol cuts the inner past once more, every source is refitted on that earlier past,
//!    and its bundle (with the quotas and half-life just chosen) serves that cut's users,
//!    whose candidates and feature vectors — with the candidate family, each source's rank and
//!    score — labelled by what they watched next are the examples. Each model of
//!    [`LearnConfig::kinds`] then reorders the validation users' candidates; the one with the
//!    largest paired NDCG@10 gain over the blend's order is the candidate, and it ships only
//!    if that gain exceeds [`LearnConfig::margin`] paired standard errors. A ranker that
//!    passes is trained again on both windows (the earlier cut's examples and the validation
//!    users' own, from the validation bundle) and ships in `RANK`; one that fails ships
//!    nothing, and the evidence says why;
//! 4. **MMR λ** — the rerank as shipped (with the ranker that passed its gate) with each λ of
//!    [`TuneConfig::lambdas`]; the smallest λ whose NDCG@10 loss against relevance-only
//!    (λ = 1), paired per user, stays within `mmr_budget` of relevance-only's NDCG@10 even one
//!    paired standard error worse than measured, and whose row is not below the best single
//!    source's (each source alone in the blend's order, measured on the same users), ships:
//!    diversity may cost at most that fraction of accuracy, with some confidence, and never
//!    more than the row earned over its best source. Intra-list diversity and coverage are reported beside it, so the trade is
//!    visible.
//!
//! The filters that always hold (finished, too mature, fatigue) are not tuned. [`Tuned::apply`]
//! writes the choice into the bundle fitted on the whole past (`POPL` recomputed with the
//! half-life, `QUOT`, `QUON`, `SERV`), and [`Tuned::markdown`] is the evidence the training report and
//! the bundle's recipe carry.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use edgerec::Recommender;
use edgerec::bundle::{BundleContents, FeatureContract, Popularity, RankerModel, ServingSettings};
use edgerec::rerank::RerankOverrides;
use serde::{Deserialize, Serialize};

use crate::data::{Event, WorldData};
use crate::device::{self, BLEND_ORDER, Serving};
use crate::learned::{self, LearnConfig};
use crate::package::{PackageOptions, package};
use crate::report::{self, SystemResult};
use crate::sources::{self, Answer, SourceConfig};
use crate::split::{self, Case, Split};
use crate::system::{self, System, SystemConfig};

/// Which validation split inside the past the settings are chosen on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validation {
    /// Each user's last past positive is held out (every user with two titles validates).
    LeaveLastOut,
    /// The last `1 − share` of the past's positives by time are held out (new users in it
    /// validate with their first titles as onboarding picks).
    Temporal {
        /// Share of the past that trains.
        share: f64,
    },
}

impl std::str::FromStr for Validation {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Validation> {
        match s {
            "leave-last-out" => Ok(Validation::LeaveLastOut),
            "temporal" => Ok(Validation::Temporal { share: 0.8 }),
            other => anyhow::bail!("validation {other:?} is not leave-last-out or temporal"),
        }
    }
}

/// What [`tune`] tries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneConfig {
    /// The validation split.
    pub validation: Validation,
    /// Popularity half-lives tried, days.
    pub half_lives: Vec<f32>,
    /// Quota vectors tried (iALS, two-tower, content, popularity, neighbours); the first is
    /// the reference a tie goes to.
    #[serde(deserialize_with = "crate::sources::five_quota_list")]
    pub quotas: Vec<[u32; 5]>,
    /// MMR trade-offs tried (1 is always tried: it is the reference).
    pub lambdas: Vec<f32>,
    /// The largest share of relevance-only NDCG@10 that diversity may cost.
    pub mmr_budget: f64,
    /// Validation users served per setting (a seeded sample above it).
    pub max_users: usize,
    /// Seeds the sample.
    pub seed: u64,
    /// Package the validation bundle with int8 vectors (as `bundle build --int8` ships).
    pub int8: bool,
    /// Learn a ranker from the device's candidates and gate it on validation; `None` ships
    /// the blend's order without trying.
    #[serde(default)]
    pub ranker: Option<LearnConfig>,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            validation: Validation::LeaveLastOut,
            half_lives: vec![3.0, 7.0, 14.0, 30.0, 90.0, 365.0, 3650.0],
            quotas: vec![
                [4, 3, 2, 1, 2],
                [4, 3, 2, 1, 0],
                [1, 1, 1, 1, 1],
                [1, 1, 1, 1, 0],
                [2, 2, 1, 0, 1],
                [1, 1, 0, 0, 0],
                [2, 1, 0, 0, 0],
                [1, 2, 0, 0, 0],
                [3, 1, 1, 0, 0],
                [1, 3, 1, 0, 0],
                [1, 0, 0, 0, 0],
                [0, 1, 0, 0, 0],
                [0, 0, 1, 0, 0],
                [0, 0, 0, 1, 0],
                [0, 0, 0, 0, 1],
                [1, 0, 0, 1, 0],
                [0, 1, 0, 1, 0],
                [0, 0, 1, 1, 0],
                [0, 0, 0, 1, 1],
                [1, 0, 0, 0, 1],
                [0, 0, 1, 0, 1],
                [0, 0, 1, 1, 1],
                [1, 0, 1, 1, 1],
                [1, 0, 1, 1, 2],
            ],
            lambdas: vec![1.0, 0.99, 0.98, 0.97, 0.95, 0.9, 0.8, 0.7, 0.5],
            mmr_budget: 0.01,
            max_users: 2000,
            seed: 17,
            int8: true,
            ranker: Some(LearnConfig::default()),
        }
    }
}

/// One setting served to the validation users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    /// The setting (`30` days, `4:3:2:1`, `λ 0.9`).
    pub setting: String,
    /// Mean NDCG@10.
    pub ndcg: f64,
    /// Its standard error.
    pub se: f64,
    /// Mean intra-list diversity of the top 10.
    pub ild: f64,
    /// Share of the catalog in some user's top 10.
    pub coverage: f64,
    /// NDCG@10 minus the reference's (λ = 1) per user: mean and paired standard error.
    #[serde(default)]
    pub against_reference: Option<(f64, f64)>,
    /// With several validation cohorts (new users, users with a past treated as new): the
    /// worst cohort's NDCG@10 minus that cohort's best single source.
    #[serde(default)]
    pub worst_cohort_gap: Option<f64>,
}

/// The settings [`tune`] chose and the evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tuned {
    /// The validation split, described.
    pub validation: String,
    /// Positives of the inner past.
    pub inner_positives: usize,
    /// Validation users with a history served per setting.
    pub users: usize,
    /// Validation users known only by onboarding picks served per setting.
    #[serde(default)]
    pub new_users: usize,
    /// The popularity half-life chosen, days.
    pub half_life_days: f32,
    /// The quotas chosen (iALS, two-tower, content, popularity, neighbours).
    pub quotas: [u32; 5],
    /// The quotas chosen for users known only by onboarding picks (`QUON`; `None` without
    /// such validation users).
    #[serde(default)]
    pub new_user_quotas: Option<[u32; 5]>,
    /// The MMR trade-off chosen.
    pub lambda: f32,
    /// The MMR budget the λ was held to.
    pub mmr_budget: f64,
    /// Every half-life tried.
    pub half_life_trials: Vec<Trial>,
    /// Every quota vector tried (users with a history).
    pub quota_trials: Vec<Trial>,
    /// Every quota vector tried for users known only by onboarding picks.
    #[serde(default)]
    pub new_user_quota_trials: Vec<Trial>,
    /// Every λ tried.
    pub lambda_trials: Vec<Trial>,
    /// The ranker's gate (`None` when no ranker was tried).
    #[serde(default)]
    pub ranker: Option<RankerGate>,
    /// The ranker that passed its gate, trained on every window, and the feature contract it
    /// reads (the bundle's, with the candidate family); not serialised (the bundle carries
    /// it as `RANK` and `FEAT`).
    #[serde(skip)]
    pub ranker_model: Option<(RankerModel, FeatureContract)>,
}

/// The evidence of a learned ranker's gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankerGate {
    /// Where its examples came from.
    pub training: String,
    /// Examples of the gated ranker (rows, positives, cases, cases skipped).
    pub examples: [usize; 4],
    /// Examples of the shipped ranker (both windows), when one ships.
    pub final_examples: Option<[usize; 4]>,
    /// The margin, in paired standard errors, the gain over the blend's order must exceed.
    pub margin: f64,
    /// The blend's order and every model tried on the validation users (NDCG@10, paired
    /// against the blend's order).
    pub trials: Vec<Trial>,
    /// The model that ships (`gbdt`, `logistic`), if any passed.
    pub chosen: Option<String>,
    /// The decision in one sentence.
    pub verdict: String,
}

/// Chooses the serving of the bundle fitted on `split`'s past (`sources` and `system` its
/// settings) on a validation split inside that past (see the module docs). The caller
/// applies the result with [`Tuned::apply`].
///
/// Errors: a past without validation users (too small to tune: fit without tuning), or a
/// source or a bundle that fails to train or load.
pub fn tune(
    data: &WorldData,
    split: &Split,
    sources: &SourceConfig,
    system: &SystemConfig,
    config: &TuneConfig,
) -> Result<Tuned> {
    let users = data.users.len();
    let inner = inner_split(config.validation, users, &split.train, sources);
    let (warm, new) = validation_cases(&inner, users, sources, config);
    anyhow::ensure!(
        !warm.is_empty() && !inner.train.is_empty(),
        "no validation users inside the past of {} ({} positives): too small to tune",
        split.name,
        split.train.len()
    );
    let all: Vec<Case> = warm.iter().chain(&new).cloned().collect();
    let (base, trained) =
        packaged(data, &inner, sources, system, config.int8).context("the validation bundle")?;
    let on = |cases| Validating {
        data,
        inner: &inner,
        cases,
        content: &trained.content,
    };
    let (half_life_days, half_life_trials) = on(&all).half_life(&base, config)?;
    let mut contents = base;
    contents.popularity = decayed(&inner, data.items.len(), half_life_days);
    let (quotas, quota_trials) = on(&warm).quotas(&contents, config, false)?;
    system::set_quotas(&mut contents, quotas);
    let (new_user_quotas, new_user_quota_trials) = if new.is_empty() {
        (None, Vec::new())
    } else {
        let (q, trials) = on(&new).quotas(&contents, config, true)?;
        (Some(q), trials)
    };
    system::set_new_user_quotas(&mut contents, new_user_quotas);
    let mut gate = None;
    let mut ranker_model = None;
    if let Some(lc) = &config.ranker {
        let learning = Learning {
            data,
            inner: &inner,
            sources,
            system,
            config,
            learn: lc,
        };
        let (g, gated, shipped) = learning
            .run(&contents, &on(&all), &all)
            .context("learning the ranker")?;
        if let Some(m) = gated {
            contents = learned::with_provenance(contents)?;
            contents.ranker = Some(m);
        }
        gate = Some(g);
        ranker_model = shipped;
    }
    let (lambda, lambda_trials) = on(&all).lambda(&contents, config)?;
    Ok(Tuned {
        validation: inner.description.clone(),
        inner_positives: inner.train.len(),
        users: warm.len(),
        new_users: new.len(),
        half_life_days,
        quotas,
        new_user_quotas,
        lambda,
        mmr_budget: config.mmr_budget,
        half_life_trials,
        quota_trials,
        new_user_quota_trials,
        lambda_trials,
        ranker: gate,
        ranker_model,
    })
}

/// The serving the ranker's examples and gate use: the ranker's order (or the blend's), no
/// MMR, fatigue or cap, as [`BLEND_ORDER`].
const RANKED: Serving = Serving {
    no_ranker: false,
    ..BLEND_ORDER
};

/// Everything the ranker's gate needs.
struct Learning<'a> {
    data: &'a WorldData,
    inner: &'a Split,
    sources: &'a SourceConfig,
    system: &'a SystemConfig,
    config: &'a TuneConfig,
    learn: &'a LearnConfig,
}

impl Learning<'_> {
    /// Learns on the cut before validation, gates on validation (`validating`, whose users
    /// are `all`), and retrains the winner on both windows. Returns the evidence, the gated
    /// model (for the λ trials) and the shipped one with its feature contract.
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        contents: &BundleContents,
        validating: &Validating<'_>,
        all: &[Case],
    ) -> Result<(
        RankerGate,
        Option<RankerModel>,
        Option<(RankerModel, FeatureContract)>,
    )> {
        let (data, lc) = (self.data, self.learn);
        let users = data.users.len();
        let training = inner_split(
            self.config.validation,
            users,
            &self.inner.train,
            self.sources,
        );
        let (mut cases, new) = validation_cases(&training, users, self.sources, self.config);
        cases.extend(new);
        let description = format!(
            "the device's candidates for {} users of a cut inside the validation's past ({}), from a bundle fitted before it; {} sampled negatives per positive",
            cases.len(),
            training.description,
            lc.negatives_per_positive
        );
        let counts = |e: &learned::Examples| [e.len(), e.positives(), e.cases, e.skipped];
        let refuse = |verdict: String, examples: [usize; 4], trials: Vec<Trial>| RankerGate {
            training: description.clone(),
            examples,
            final_examples: None,
            margin: lc.margin,
            trials,
            chosen: None,
            verdict,
        };
        if cases.is_empty() || training.train.is_empty() {
            let verdict = "no users to learn from before the validation: the blend's order ships";
            return Ok((refuse(verdict.into(), [0; 4], Vec::new()), None, None));
        }
        let (earlier, _) = refitted(
            data,
            &training,
            self.sources,
            self.system,
            self.config.int8,
            contents,
        )
        .context("the bundle before the ranker's window")?;
        let earlier = learned::with_provenance(earlier)?;
        let rec = Recommender::from_bytes(&earlier.encode())?;
        let examples = learned::examples(&rec, data, &training, &cases, lc)?;
        if examples.positives() == 0 || examples.positives() == examples.len() {
            let verdict = "no candidate of the earlier cut was watched: nothing to learn, the blend's order ships";
            return Ok((
                refuse(verdict.into(), counts(&examples), Vec::new()),
                None,
                None,
            ));
        }
        let base = learned::with_provenance(contents.clone())?;
        let features = base.features.clone().context("no feature contract")?;
        let mut systems = vec![(
            "blend order".to_string(),
            validating.rows(&base, BLEND_ORDER)?,
        )];
        let mut models = Vec::new();
        for &kind in &lc.kinds {
            let model = learned::fit(&examples, kind, lc, &features)
                .with_context(|| format!("training the {} ranker", kind.name()))?;
            let mut c = base.clone();
            c.ranker = Some(model.clone());
            systems.push((kind.name().to_string(), validating.rows(&c, RANKED)?));
            models.push((kind, model));
        }
        let trials = paired_trials(validating, &systems);
        let gain = |i: usize| trials[i + 1].against_reference.unwrap_or((0.0, 0.0));
        let best = (0..models.len()).max_by(|&a, &b| gain(a).0.total_cmp(&gain(b).0));
        let Some(best) = best else {
            let verdict = "no ranker kind to try: the blend's order ships";
            return Ok((
                refuse(verdict.into(), counts(&examples), trials),
                None,
                None,
            ));
        };
        let (d, se) = gain(best);
        let (kind, gated) = models.swap_remove(best);
        if !passes((d, se), lc.margin) {
            let verdict = format!(
                "the best ranker ({}) changes the validation's NDCG@10 by {d:+.4} ± {se:.4} against the blend's order, not more than {} paired standard error(s): the blend's order ships",
                kind.name(),
                lc.margin
            );
            return Ok((refuse(verdict, counts(&examples), trials), None, None));
        }
        // Retrain on both windows: the earlier cut's examples and the validation users'.
        let rec = Recommender::from_bytes(&base.encode())?;
        let mut both = examples.clone();
        both.extend(learned::examples(&rec, data, self.inner, all, lc)?)?;
        let shipped = learned::fit(&both, kind, lc, &features)
            .with_context(|| format!("training the {} ranker on both windows", kind.name()))?;
        let verdict = format!(
            "the {} ranker lifts the validation's NDCG@10 by {d:+.4} ± {se:.4} over the blend's order (more than {} paired standard error(s)): it ships, trained again on both windows",
            kind.name(),
            lc.margin
        );
        let gate = RankerGate {
            training: description,
            examples: counts(&examples),
            final_examples: Some(counts(&both)),
            margin: lc.margin,
            trials,
            chosen: Some(kind.name().to_string()),
            verdict,
        };
        Ok((gate, Some(gated), Some((shipped, features))))
    }
}

/// Every source trained on `split`'s past and packaged as `bundle build --world` packages
/// it (media table, int8 when asked); and the trained sources.
fn packaged(
    data: &WorldData,
    split: &Split,
    sources: &SourceConfig,
    system: &SystemConfig,
    int8: bool,
) -> Result<(BundleContents, sources::Trained)> {
    let trained = sources::train(data, split, sources).context("training the sources")?;
    let fitted = System::from_trained(data, &trained, sources, system, split)?;
    let options = PackageOptions {
        world: Some(data.dir.clone()),
        int8,
        ..PackageOptions::default()
    };
    let c = package(fitted.contents, &options).context("packaging the bundle")?;
    Ok((c, trained))
}

/// Whether a ranker's paired NDCG@10 gain `(d, se)` over the blend's order passes its gate:
/// positive and more than `margin` paired standard errors.
fn passes((d, se): (f64, f64), margin: f64) -> bool {
    d > 0.0 && d > margin * se
}

/// `split`'s validation users, sampled to [`TuneConfig::max_users`] each: those with a history,
/// and those known only by onboarding picks ([`new_user_cases`]).
fn validation_cases(
    split: &Split,
    users: usize,
    sources: &SourceConfig,
    config: &TuneConfig,
) -> (Vec<Case>, Vec<Case>) {
    let sample = |c: Vec<Case>| crate::evaluate::sample(c, Some(config.max_users), config.seed);
    (
        sample(split.warm.clone()),
        sample(new_user_cases(split, users, sources.onboarding)),
    )
}

/// Every source refitted on `split`'s past and packaged as the device gets it, serving as
/// `like` does (popularity half-life, `QUOT`, `QUON`); and the trained sources.
fn refitted(
    data: &WorldData,
    split: &Split,
    sources: &SourceConfig,
    system: &SystemConfig,
    int8: bool,
    like: &BundleContents,
) -> Result<(BundleContents, sources::Trained)> {
    let (mut c, trained) = packaged(data, split, sources, system, int8)?;
    c.popularity = decayed(split, data.items.len(), like.popularity.half_life_days);
    c.quotas = like.quotas;
    c.new_user_quotas = like.new_user_quotas;
    if let (Some(nb), Some(l)) = (&mut c.neighbours, &like.neighbours) {
        nb.set_quotas(l.quota(), l.new_user_quota());
    }
    Ok((c, trained))
}

/// Scores `systems` on the validation users, each paired against the first.
fn paired_trials(validating: &Validating<'_>, systems: &[(String, Vec<Answer>)]) -> Vec<Trial> {
    let scored = validating.scored(systems);
    let reference = scored[0].metric("NDCG@10").cloned().unwrap_or_default();
    let mut trials: Vec<Trial> = scored.iter().map(trial).collect();
    for (t, r) in trials.iter_mut().zip(&scored).skip(1) {
        if let Some(v) = r.metric("NDCG@10") {
            t.against_reference = Some(edgerec_eval::paired(v, &reference));
        }
    }
    trials
}

/// The recipe `System::fit` writes: the system's settings and every source's.
#[derive(Deserialize)]
struct Recipe {
    #[serde(flatten)]
    system: SystemConfig,
    sources: SourceConfig,
}

/// The gate of a ranker made elsewhere (`bundle build --ranker`): `contents`, a packaged
/// bundle of the model trained on `world` carrying the ranker, is refitted on the validation
/// inside that world (loaded with the recipe's positive threshold; the recipe's sources and
/// tuning settings; the bundle's serving: half-life, quotas), the ranker attached to that
/// bundle, and its order compared with the blend's on the validation users, paired. It passes when the NDCG@10 gain exceeds `margin` paired
/// standard errors. A ranker trained on the whole world has seen the validation's futures:
/// its gain is then optimistic (learn it with `train`, which gates on a window it never saw).
///
/// Errors: a bundle without a ranker or a recipe from `edgerec train`, or a world too small
/// to validate on.
pub fn gate_ranker(world: &Path, contents: &BundleContents, margin: f64) -> Result<RankerGate> {
    let ranker = contents
        .ranker
        .clone()
        .context("the bundle carries no ranker")?;
    let recipe: Recipe = serde_json::from_str(&contents.meta.recipe)
        .context("the bundle's recipe is not one `edgerec train` wrote")?;
    let data = &WorldData::load(world, recipe.system.positive_above)
        .with_context(|| format!("loading {}", world.display()))?;
    let config = recipe.system.tune.clone().unwrap_or_default();
    let users = data.users.len();
    let inner = inner_split(config.validation, users, &data.events, &recipe.sources);
    let (mut all, new) = validation_cases(&inner, users, &recipe.sources, &config);
    all.extend(new);
    anyhow::ensure!(
        !all.is_empty() && !inner.train.is_empty(),
        "no validation users in {}: too small to gate a ranker on",
        data.dir.display()
    );
    let (mut base, trained) = refitted(
        data,
        &inner,
        &recipe.sources,
        &recipe.system,
        config.int8,
        contents,
    )
    .context("refitting the model on the validation's past")?;
    base.features = contents.features.clone();
    let validating = Validating {
        data,
        inner: &inner,
        cases: &all,
        content: &trained.content,
    };
    let mut ranked = base.clone();
    ranked.ranker = Some(ranker.clone());
    let kind = ranker.contract.kind.clone();
    let systems = vec![
        (
            "blend order".to_string(),
            validating.rows(&base, BLEND_ORDER)?,
        ),
        (kind.clone(), validating.rows(&ranked, RANKED)?),
    ];
    let trials = paired_trials(&validating, &systems);
    let (d, se) = trials[1].against_reference.unwrap_or((0.0, 0.0));
    let passed = passes((d, se), margin);
    let verdict = format!(
        "the given ranker ({kind}) changes the validation's NDCG@10 by {d:+.4} ± {se:.4} against \
         the blend's order: {}",
        if passed {
            format!("more than {margin} paired standard error(s), it ships")
        } else {
            format!("not more than {margin} paired standard error(s), the blend's order ships")
        }
    );
    Ok(RankerGate {
        training: "given to bundle build (trained elsewhere)".into(),
        examples: [0; 4],
        final_examples: None,
        margin,
        trials,
        chosen: passed.then_some(kind),
        verdict,
    })
}

/// `past` cut as `validation` cuts it.
fn inner_split(
    validation: Validation,
    users: usize,
    past: &[Event],
    sources: &SourceConfig,
) -> Split {
    match validation {
        Validation::LeaveLastOut => split::leave_last_out_of(users, past),
        Validation::Temporal { share } => {
            split::temporal_of(users, past, share, sources.onboarding)
        }
    }
}

/// The validation's users known only by onboarding picks: its new users and the users with a
/// past it treats as new (temporal); for leave-last-out, which has neither, every held-out
/// user with `onboarding` other titles, their last `onboarding` titles before the held-out
/// one taken as their picks and their past hidden (the sources still learnt from it, as for
/// the evaluation's as-new users).
fn new_user_cases(inner: &Split, users: usize, onboarding: usize) -> Vec<Case> {
    if !inner.cold.is_empty() || !inner.as_new.is_empty() {
        return inner.cold.iter().chain(&inner.as_new).cloned().collect();
    }
    if onboarding == 0 {
        return Vec::new();
    }
    let histories = inner.histories(users);
    inner
        .warm
        .iter()
        .filter_map(|c| {
            let mut picks: Vec<u32> = Vec::with_capacity(onboarding);
            for &(item, _) in histories[c.user as usize].iter().rev() {
                if picks.len() == onboarding {
                    break;
                }
                if !picks.contains(&item) && !c.relevant.contains(&item) {
                    picks.push(item);
                }
            }
            picks.reverse();
            (picks.len() == onboarding).then(|| Case {
                onboarding: picks,
                ..c.clone()
            })
        })
        .collect()
}

/// The `POPL` section of `split`'s past decayed with `half_life_days` to its cut.
fn decayed(split: &Split, items: usize, half_life_days: f32) -> Popularity {
    let counts = sources::popularity(&split.train, items, split.cut, half_life_days);
    Popularity::normalised(&counts, half_life_days, split.cut)
}

/// The validation users and what scores their rows.
struct Validating<'a> {
    data: &'a WorldData,
    inner: &'a Split,
    cases: &'a [Case],
    content: &'a edgerec::content::ContentIndex,
}

impl Validating<'_> {
    /// The device's rows of every validation user from `contents` served as `serving`.
    fn rows(&self, contents: &BundleContents, serving: Serving) -> Result<Vec<Answer>> {
        let rec = Recommender::from_bytes(&contents.encode())?;
        device::rows(&rec, self.data, self.inner, self.cases, report::K, serving)
    }

    /// Scores `systems` (setting, rows) on the validation users.
    fn trials(&self, systems: &[(String, Vec<Answer>)]) -> Vec<Trial> {
        self.scored(systems).iter().map(trial).collect()
    }

    fn scored(&self, systems: &[(String, Vec<Answer>)]) -> Vec<SystemResult> {
        report::score(
            "validation",
            self.cases,
            systems,
            &self.inner.train,
            self.data.users.len(),
            self.content,
        )
        .systems
    }

    fn half_life(&self, base: &BundleContents, config: &TuneConfig) -> Result<(f32, Vec<Trial>)> {
        let mut systems = Vec::new();
        for &h in &config.half_lives {
            let mut c = base.clone();
            c.popularity = decayed(self.inner, self.data.items.len(), h);
            system::set_quotas(&mut c, [0, 0, 0, 1, 0]);
            system::set_new_user_quotas(&mut c, None);
            let serving = device::BLEND_ORDER;
            systems.push((format!("{h}"), self.rows(&c, serving)?));
        }
        let trials = self.trials(&systems);
        let best = best(&trials).context("no half-life to try")?;
        Ok((config.half_lives[best], trials))
    }

    /// The best quota vector for these users: `QUON` when they are `new_users` (known only by
    /// onboarding picks), else `QUOT`.
    fn quotas(
        &self,
        base: &BundleContents,
        config: &TuneConfig,
        new_users: bool,
    ) -> Result<([u32; 5], Vec<Trial>)> {
        let tried: Vec<[u32; 5]> = config
            .quotas
            .iter()
            .copied()
            .filter(|q| usable(base, q))
            .collect();
        let mut systems = Vec::new();
        for &q in &tried {
            let mut c = base.clone();
            if new_users {
                system::set_new_user_quotas(&mut c, Some(q));
            } else {
                system::set_quotas(&mut c, q);
            }
            let serving = device::BLEND_ORDER;
            let name = q.map(|x| x.to_string()).join(":");
            systems.push((name, self.rows(&c, serving)?));
        }
        let scored = self.scored(&systems);
        let mut trials: Vec<Trial> = scored.iter().map(trial).collect();
        // The one-standard-error rule: every vector whose NDCG@10 is within one paired
        // standard error of the best one's is as good as the validation can tell, and of those
        // the one blending the fewest sources is kept (fewer sources, fewer settings fitted to
        // the validation's noise). Ties go to the rules below.
        let top = best(&trials).context("no quotas to try")?;
        let ndcg = |i: usize| scored[i].metric("NDCG@10").cloned().unwrap_or_default();
        let within: Vec<bool> = (0..tried.len())
            .map(|i| {
                let (d, se) = edgerec_eval::paired(&ndcg(i), &ndcg(top));
                d + se >= 0.0
            })
            .collect();
        let sources = |i: usize| tried[i].iter().filter(|&&x| x > 0).count();
        let fewest = (0..tried.len())
            .filter(|&i| within[i])
            .map(sources)
            .min()
            .unwrap_or(0);
        let admissible = |i: usize| within[i] && sources(i) == fewest;
        let cohorts = self.cohorts();
        if cohorts.len() < 2 {
            let chosen = (0..tried.len())
                .filter(|&i| admissible(i))
                .reduce(|b, i| {
                    if trials[i].ndcg > trials[b].ndcg {
                        i
                    } else {
                        b
                    }
                })
                .unwrap_or(top);
            return Ok((tried[chosen], trials));
        }
        // Several cohorts (new users and users with a past treated as new): each may prefer
        // another source, and the device cannot tell them apart. The quotas whose worst
        // cohort falls least below that cohort's best single source win (ties to the higher
        // NDCG@10 over all of them).
        let single: Vec<usize> = (0..tried.len())
            .filter(|&i| tried[i].iter().filter(|&&x| x > 0).count() == 1)
            .collect();
        let mut worst = vec![f64::INFINITY; tried.len()];
        for members in &cohorts {
            let cases: Vec<Case> = members.iter().map(|&i| self.cases[i].clone()).collect();
            let sub: Vec<(String, Vec<Answer>)> = systems
                .iter()
                .map(|(n, rows)| {
                    (
                        n.clone(),
                        members.iter().map(|&i| rows[i].clone()).collect(),
                    )
                })
                .collect();
            let on = Validating {
                cases: &cases,
                ..*self
            };
            let means: Vec<f64> = on.trials(&sub).iter().map(|t| t.ndcg).collect();
            let top = single
                .iter()
                .map(|&i| means[i])
                .fold(f64::NEG_INFINITY, f64::max);
            for (w, m) in worst.iter_mut().zip(&means) {
                *w = w.min(m - top);
            }
        }
        for (t, w) in trials.iter_mut().zip(&worst) {
            t.worst_cohort_gap = Some(*w);
        }
        let chosen = (0..tried.len())
            .filter(|&i| admissible(i))
            .reduce(|b, i| {
                let better = worst[i] > worst[b]
                    || (worst[i] == worst[b] && trials[i].ndcg > trials[b].ndcg);
                if better { i } else { b }
            })
            .unwrap_or(top);
        Ok((tried[chosen], trials))
    }

    /// The validation users split into cohorts a source may serve differently: users new to
    /// the validation and users with a past treated as new; one cohort otherwise.
    fn cohorts(&self) -> Vec<Vec<usize>> {
        let new: std::collections::HashSet<u32> = self.inner.cold.iter().map(|c| c.user).collect();
        let (cold, rest): (Vec<usize>, Vec<usize>) =
            (0..self.cases.len()).partition(|&i| new.contains(&self.cases[i].user));
        [cold, rest].into_iter().filter(|c| !c.is_empty()).collect()
    }

    fn lambda(&self, base: &BundleContents, config: &TuneConfig) -> Result<(f32, Vec<Trial>)> {
        let mut lambdas = vec![1.0f32];
        lambdas.extend(config.lambdas.iter().copied().filter(|&l| l < 1.0));
        let mut systems = Vec::new();
        for &l in &lambdas {
            let serving = Serving {
                no_ranker: false,
                rerank: RerankOverrides {
                    lambda: Some(l),
                    ..RerankOverrides::default()
                },
            };
            systems.push((format!("λ {l}"), self.rows(base, serving)?));
        }
        // Each source alone, in the blend's order: diversity may not take the row below the
        // best of them.
        for (name, q) in [
            ("iALS alone", [1, 0, 0, 0, 0]),
            ("two-tower alone", [0, 1, 0, 0, 0]),
            ("content alone", [0, 0, 1, 0, 0]),
            ("popularity alone", [0, 0, 0, 1, 0]),
            ("neighbours alone", [0, 0, 0, 0, 1]),
        ] {
            if !usable(base, &q) {
                continue;
            }
            let mut c = base.clone();
            c.ranker = None;
            system::set_quotas(&mut c, q);
            system::set_new_user_quotas(&mut c, Some(q));
            systems.push((name.to_string(), self.rows(&c, BLEND_ORDER)?));
        }
        let scored = self.scored(&systems);
        let reference = scored[0].metric("NDCG@10").cloned().unwrap_or_default();
        let floor = -config.mmr_budget * reference.mean();
        let mut trials: Vec<Trial> = scored.iter().map(trial).collect();
        for (t, r) in trials.iter_mut().zip(&scored).take(lambdas.len()) {
            if let Some(v) = r.metric("NDCG@10") {
                t.against_reference = Some(edgerec_eval::paired(v, &reference));
            }
        }
        let best_source = scored[lambdas.len()..]
            .iter()
            .filter_map(|r| r.metric("NDCG@10"))
            .max_by(|a, b| a.mean().total_cmp(&b.mean()));
        // Within budget even one paired standard error below the measured cost, and not
        // below the best single source (measured).
        let chosen = (0..lambdas.len())
            .filter(|&i| {
                let within = trials[i]
                    .against_reference
                    .is_some_and(|(d, se)| d - se >= floor);
                let above = match (best_source, scored[i].metric("NDCG@10")) {
                    (Some(b), Some(v)) => edgerec_eval::paired(v, b).0 >= 0.0,
                    _ => true,
                };
                within && above
            })
            .min_by(|&a, &b| lambdas[a].total_cmp(&lambdas[b]))
            .unwrap_or(0);
        Ok((lambdas[chosen], trials))
    }
}

/// Whether quota vector `q` gives places to a source `base` has (every bundle has iALS,
/// content and popularity; two-tower and neighbours only when trained).
fn usable(base: &BundleContents, q: &[u32; 5]) -> bool {
    let tower = if base.two_tower.is_some() { q[1] } else { 0 };
    let neighbours = if base.neighbours.is_some() { q[4] } else { 0 };
    q[0] + q[2] + q[3] + tower + neighbours > 0
}

fn trial(r: &SystemResult) -> Trial {
    let ndcg = r.metric("NDCG@10");
    Trial {
        setting: r.name.clone(),
        ndcg: ndcg.map_or(0.0, |s| s.mean()),
        se: ndcg.map_or(0.0, |s| s.standard_error()),
        ild: r.diversity.mean(),
        coverage: r.coverage,
        against_reference: None,
        worst_cohort_gap: None,
    }
}

/// The trial with the highest NDCG@10 (ties to the earlier).
fn best(trials: &[Trial]) -> Option<usize> {
    (0..trials.len()).reduce(|b, i| {
        if trials[i].ndcg > trials[b].ndcg {
            i
        } else {
            b
        }
    })
}

impl Tuned {
    /// Writes the choice into `contents`, the bundle fitted on `split`'s past: `POPL`
    /// decayed with the half-life to the split's cut, `QUOT`, and `SERV` with the λ (the
    /// other serving settings kept, or the defaults).
    pub fn apply(&self, contents: &mut BundleContents, split: &Split, items: usize) {
        if let Some((ranker, features)) = &self.ranker_model {
            contents.features = Some(features.clone());
            contents.ranker = Some(ranker.clone());
        }
        contents.popularity = decayed(split, items, self.half_life_days);
        system::set_quotas(contents, self.quotas);
        system::set_new_user_quotas(contents, self.new_user_quotas);
        let mut serving: ServingSettings = contents.serving.take().unwrap_or_default();
        serving.rerank.lambda = self.lambda;
        contents.serving = Some(serving);
    }

    /// The evidence as markdown: the validation, then one table per step.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let quotas = |q: [u32; 5]| q.map(|x| x.to_string()).join(":");
        let new_users = self
            .new_user_quotas
            .map_or_else(String::new, |q| format!(" (new users {})", quotas(q)));
        let _ = writeln!(
            s,
            "Serving fitted on validation ({}; {} inner past positives, {} users with a history \
             and {} known only by onboarding picks, NDCG@10 of the device's row): popularity \
             half-life {} days, quotas {}{new_users} (the vectors with the fewest sources within \
             one paired standard error of the best), MMR λ {} (the smallest λ whose cost, even \
             one paired standard error above the measured one, stays within {:.0}% of \
             relevance-only's NDCG@10).\n",
            self.validation,
            self.inner_positives,
            self.users,
            self.new_users,
            self.half_life_days,
            quotas(self.quotas),
            self.lambda,
            self.mmr_budget * 100.0
        );
        for (what, trials) in [
            ("half-life, days (popularity alone)", &self.half_life_trials),
            (
                "quotas iALS:two-tower:content:popularity:neighbours (blend order, users with a history)",
                &self.quota_trials,
            ),
            (
                "new-user quotas (blend order, users known only by onboarding picks)",
                &self.new_user_quota_trials,
            ),
            (
                "ranker (its order, no MMR; paired against the blend's order)",
                &self
                    .ranker
                    .as_ref()
                    .map(|g| g.trials.clone())
                    .unwrap_or_default(),
            ),
            ("MMR λ (the rerank as shipped)", &self.lambda_trials),
        ] {
            if trials.is_empty() {
                continue;
            }
            let paired = trials.iter().any(|t| t.against_reference.is_some());
            let extra = if paired {
                " vs the first row (paired) |"
            } else {
                ""
            };
            let cohorts = trials.iter().any(|t| t.worst_cohort_gap.is_some());
            let gap = if cohorts {
                " worst cohort − its best single source |"
            } else {
                ""
            };
            let _ = writeln!(s, "| {what} | NDCG@10 |{extra}{gap} ILD@10 | Coverage@10 |");
            let _ = writeln!(
                s,
                "|---|---|{}{}---|---|",
                if paired { "---|" } else { "" },
                if cohorts { "---|" } else { "" }
            );
            for t in trials {
                let against = match t.against_reference {
                    Some((d, se)) => format!(" {d:+.4} ± {se:.4} |"),
                    None if paired => " — |".to_string(),
                    None => String::new(),
                };
                let gap = match t.worst_cohort_gap {
                    Some(g) => format!(" {g:+.4} |"),
                    None if cohorts => " — |".to_string(),
                    None => String::new(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {:.4} ± {:.4} |{against}{gap} {:.3} | {:.3} |",
                    t.setting, t.ndcg, t.se, t.ild, t.coverage
                );
            }
            s.push('\n');
        }
        if let Some(g) = &self.ranker {
            let [rows, positives, cases, skipped] = g.examples;
            let _ = writeln!(
                s,
                "Ranker: {} ({rows} examples, {positives} positive, from {cases} users; {skipped} users had no watched title among their candidates). {}.\n",
                g.training, g.verdict
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::ev;

    #[test]
    fn leave_last_out_validation_gets_new_users_from_the_last_titles_before_the_held_out_one() {
        // User 0 watched 0, 1, 1 again, 2, 3 (held out); user 1 only two titles (one held
        // out, one left: too few for three picks); user 2 nothing.
        let events = vec![
            ev(0, 0, 10, 0),
            ev(0, 1, 20, 1),
            ev(0, 1, 25, 2),
            ev(0, 2, 30, 3),
            ev(1, 5, 31, 4),
            ev(1, 6, 32, 5),
            ev(0, 3, 40, 6),
        ];
        let inner = split::leave_last_out_of(3, &events);
        assert_eq!(inner.warm.len(), 2);
        let new = new_user_cases(&inner, 3, 3);
        assert_eq!(new.len(), 1, "{new:?}");
        let c = &new[0];
        assert_eq!((c.user, c.time), (0, 40));
        // The last three distinct titles, oldest first; the held-out title stays relevant.
        assert_eq!(c.onboarding, vec![0, 1, 2]);
        assert_eq!(c.relevant, [3].into());
        // Two picks fit user 1 as well; none asked, none made.
        assert_eq!(new_user_cases(&inner, 3, 1).len(), 2);
        assert!(new_user_cases(&inner, 3, 0).is_empty());
        // A temporal validation brings its own new and as-new users.
        let temporal = split::temporal_of(3, &events, 0.5, 1);
        let cases = new_user_cases(&temporal, 3, 1);
        let expected = temporal.cold.len() + temporal.as_new.len();
        assert!(expected > 0 && cases.len() == expected);
    }
}
