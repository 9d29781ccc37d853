//! The offline evaluation (`edgerec eval`): every candidate source against popularity, the
//! peers and (in a synthetic world) the oracle, on the protocols of [`crate::split`], with
//! standard errors, paired comparisons, markdown, JSON and SVG figures.
//!
//! It also evaluates the second stage end to end ([`crate::ranking`]): per split, rankers
//! trained on that split's past reorder the blend's top [`EvalConfig::rank_candidates`] titles
//! for every test user, and the report pairs each two-stage system with the blend it reranks
//! and the cohort's best single source.
//!
//! The splits are also written as plain files (`splits/<split>/train.tsv`, `users.tsv`,
//! `params.json`) so `bench/peers.py` can train the `implicit` library's ALS and BPR and EASE on
//! exactly the same past; a second run with [`EvalConfig::peers`] scores their rows with the
//! same metric code.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec_data::schema::DEVICES;
use edgerec_data::truth::Truth;
use edgerec_train::ials::{IalsConfig, Solver};
use edgerec_twotower::TowerConfig;

use crate::Artifacts;
use crate::data::WorldData;
use crate::device;
use crate::package::{PackageOptions, package};
use crate::ranking::{self, RankConfig};
use crate::report::{self, CohortResult, EvalReport, SplitResult};
use crate::sources::{self, Answer, SourceConfig};
use crate::split::{self, Case, Split};
use crate::system::{System, SystemConfig};
use crate::tune::{self, TuneConfig, Tuned, Validation};

/// Settings of [`evaluate`]; [`EvalConfig::default`] is `edgerec eval`'s defaults.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Name of the data set in the report.
    pub dataset: String,
    /// Protocols: `temporal`, `leave-last-out`, `folds` (comma separated).
    pub protocols: Vec<String>,
    /// Share of positives in the past of the temporal split.
    pub train_share: f64,
    /// Time-series folds (protocol `folds`).
    pub folds: u32,
    /// Days per fold.
    pub fold_days: u32,
    /// A play is a positive above this fraction of the title.
    pub positive_above: f32,
    /// Titles a cold-start user picks at onboarding (the first ones they watch).
    pub onboarding: usize,
    /// Evaluate at most this many users per cohort (a seeded sample), for large worlds.
    pub max_users: Option<usize>,
    /// iALS factors.
    pub factors: usize,
    /// iALS iterations.
    pub iterations: usize,
    /// iALS confidence slope.
    pub alpha: f32,
    /// iALS L2 penalty.
    pub lambda: f32,
    /// Conjugate-gradient steps per row (0: exact Cholesky solves).
    pub cg_steps: usize,
    /// Two-tower training epochs (0 skips the model).
    pub tower_epochs: usize,
    /// Directory of peer rows from `bench/peers.py` (`<split>/<method>.tsv`).
    pub peers: Option<PathBuf>,
    /// Second stage: blend candidates the rankers reorder per user (0 turns the stage off).
    pub rank_candidates: usize,
    /// Second stage: days before the cut whose examples train the rankers (time-cut splits).
    pub rank_window_days: u32,
    /// Second stage, leave-last-out: each user's last past positives that train the rankers.
    pub rank_last_positives: usize,
    /// Second stage: negatives per positive (the labelled negatives' downsampling target, or
    /// how many to sample from the blend when the world has none).
    pub rank_negatives: usize,
    /// Second stage: at most this many training positives per split (seeded subsample).
    pub rank_max_positives: usize,
    /// Second stage: boosting rounds of the gradient-boosted trees.
    pub rank_trees: usize,
    /// Second stage: also train the deep ranker (embedding bags and an MLP, `edgerec-rank`'s
    /// `DeepRanker`) with at most this many epochs (0: leave it out).
    pub rank_deep_epochs: usize,
    /// Fit each split's device serving on validation inside its past, as `edgerec train`
    /// does for the shipped bundle ([`crate::tune`]); the validation follows the split's
    /// protocol (leave-last-out inside leave-last-out, temporal inside the others). `None`
    /// serves the default half-life, quotas and MMR λ.
    pub tune: Option<TuneConfig>,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            dataset: "movielens-100k".into(),
            protocols: vec!["temporal".into(), "leave-last-out".into()],
            train_share: 0.8,
            folds: 3,
            fold_days: 7,
            positive_above: 0.8,
            onboarding: 3,
            max_users: None,
            factors: 64,
            iterations: 15,
            alpha: 2.0,
            lambda: 0.05,
            cg_steps: 3,
            tower_epochs: 8,
            peers: None,
            rank_candidates: 100,
            rank_window_days: 21,
            rank_last_positives: 3,
            rank_negatives: 4,
            rank_max_positives: 20_000,
            rank_trees: 100,
            rank_deep_epochs: 0,
            tune: Some(TuneConfig::default()),
            seed: 1,
        }
    }
}

/// At most `max` of `cases`, a sample seeded by `seed` (in user order).
pub(crate) fn sample(cases: Vec<Case>, max: Option<usize>, seed: u64) -> Vec<Case> {
    let Some(max) = max.filter(|&m| m < cases.len()) else {
        return cases;
    };
    let key = |u: u32| edgerec::rng::splitmix64(&mut (u64::from(u) ^ seed));
    let mut keyed: Vec<(u64, Case)> = cases.into_iter().map(|c| (key(c.user), c)).collect();
    keyed.sort_by_key(|p| p.0);
    keyed.truncate(max);
    let mut out: Vec<Case> = keyed.into_iter().map(|p| p.1).collect();
    out.sort_by_key(|c| c.user);
    out
}

/// The split as plain files for the peers (`splits/<split>/train.tsv`, `users.tsv`,
/// `params.json`): dense indices, one row per past positive.
fn export_split(
    out: &mut Artifacts,
    data: &WorldData,
    split: &Split,
    config: &SourceConfig,
) -> Result<()> {
    let dir = Path::new("splits").join(&split.name);
    let mut train = String::from("user\titem\tweight\n");
    for e in &split.train {
        let _ = writeln!(train, "{}\t{}\t1", e.user, e.item);
    }
    let mut users = String::from("user\n");
    for c in &split.warm {
        let _ = writeln!(users, "{}", c.user);
    }
    let params = serde_json::json!({
        "n_users": data.users.len(),
        "n_items": data.items.len(),
        "n": config.n,
        "factors": config.ials.factors,
        "iterations": config.ials.iterations,
        "regularization": config.ials.lambda,
        "alpha": config.ials.alpha,
        "seed": config.ials.seed,
    });
    out.add(dir.join("train.tsv"), train);
    out.add(dir.join("users.tsv"), users);
    out.add(
        dir.join("params.json"),
        serde_json::to_string_pretty(&params)?,
    );
    Ok(())
}

/// Reads `<dir>/<method>.tsv` rows (`user\trank\titem`) for the warm cases; users without a
/// row get an empty one (scored as misses).
fn read_peer(path: &Path, cases: &[Case], items: usize) -> Result<Vec<Answer>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let parse = |s: &str| s.trim().parse::<u32>();
        let (Some(u), Some(r), Some(i)) = (f.first(), f.get(1), f.get(2)) else {
            bail!("{}:{}: expected user, rank, item", path.display(), n + 1);
        };
        let (u, r, i) = (parse(u), parse(r), parse(i));
        let (Ok(u), Ok(r), Ok(i)) = (u, r, i) else {
            bail!("{}:{}: not integers", path.display(), n + 1);
        };
        ensure!(
            (i as usize) < items,
            "{}:{}: item {i} out of range",
            path.display(),
            n + 1
        );
        rows.entry(u).or_default().push((r, i));
    }
    Ok(cases
        .iter()
        .map(|c| {
            let mut r = rows.remove(&c.user).unwrap_or_default();
            r.sort_unstable();
            Answer {
                row: r.into_iter().map(|p| p.1).collect(),
                auc: None,
            }
        })
        .collect())
}

/// An evaluation's report and its files (`report.json`, `plots/`, `splits/`).
pub struct Evaluation {
    /// Every split's results.
    pub report: EvalReport,
    /// The markdown report, the JSON report, the plots and the peers' split files.
    pub artifacts: Artifacts,
}

/// The sources' settings of an evaluation.
fn source_config(a: &EvalConfig) -> SourceConfig {
    SourceConfig {
        ials: IalsConfig {
            factors: a.factors,
            iterations: a.iterations,
            alpha: a.alpha,
            lambda: a.lambda,
            solver: if a.cg_steps == 0 {
                Solver::Cholesky
            } else {
                Solver::ConjugateGradient { steps: a.cg_steps }
            },
            seed: a.seed,
            track_loss: false,
        },
        tower: (a.tower_epochs > 0).then(|| TowerConfig {
            epochs: a.tower_epochs,
            seed: a.seed,
            ..TowerConfig::default()
        }),
        onboarding: a.onboarding,
        ..SourceConfig::default()
    }
}

/// The second stage's settings of an evaluation.
fn rank_config(a: &EvalConfig, sources: &SourceConfig) -> RankConfig {
    RankConfig {
        candidates: a.rank_candidates.min(sources.n),
        window_days: a.rank_window_days,
        last_positives: a.rank_last_positives,
        max_positives: a.rank_max_positives,
        positive_above: a.positive_above,
        negatives_per_positive: a.rank_negatives as f64,
        sampled_negatives: a.rank_negatives,
        trees: edgerec_rank::TreeConfig {
            iterations: a.rank_trees,
            seed: a.seed,
            ..edgerec_rank::TreeConfig::default()
        },
        deep: (a.rank_deep_epochs > 0).then(|| edgerec_rank::DeepConfig {
            max_epochs: a.rank_deep_epochs,
            seed: a.seed,
            ..edgerec_rank::DeepConfig::default()
        }),
        seed: a.seed,
        ..RankConfig::default()
    }
}

/// The splits of every protocol asked for.
fn splits(data: &WorldData, a: &EvalConfig) -> Result<Vec<Split>> {
    let mut splits = Vec::new();
    for p in &a.protocols {
        match p.as_str() {
            "temporal" => splits.push(split::temporal(data, a.train_share, a.onboarding)),
            "leave-last-out" => splits.push(split::leave_last_out(data)),
            "folds" => splits.extend(split::folds(data, a.folds, a.fold_days, a.onboarding)),
            other => bail!("unknown protocol {other:?} (temporal, leave-last-out, folds)"),
        }
    }
    Ok(splits)
}

/// The oracle of a synthetic world: each item's true utility for the case's user at the case's
/// time, on the user's most frequent past device.
fn oracle<'a>(data: &'a WorldData, t: &'a Truth) -> impl Fn(&Case, &[u32]) -> Vec<f32> + Sync + 'a {
    move |case: &Case, _history: &[u32]| -> Vec<f32> {
        let user = &data.users[case.user as usize];
        let past: Vec<&edgerec_data::schema::Play> = data.plays[case.user as usize]
            .iter()
            .filter(|p| p.time < case.time)
            .collect();
        let mut counts = [0usize; 4];
        for p in &past {
            if let Some(d) = DEVICES.iter().position(|d| *d == p.device) {
                counts[d] += 1;
            }
        }
        let device = DEVICES[(0..4).max_by_key(|&d| (counts[d], 4 - d)).unwrap_or(0)];
        let ctx = t.context(user.user_id, case.time, device);
        let history = t.history(past.iter().copied());
        data.items
            .iter()
            .map(|it| t.utility_with(user.user_id, it.item_id, &ctx, &history))
            .collect()
    }
}

/// What every split of one evaluation shares.
struct Run<'a> {
    data: &'a WorldData,
    config: &'a EvalConfig,
    sources: SourceConfig,
    rank: RankConfig,
    features: Option<ranking::FeatureData>,
    oracle: Option<&'a sources::Oracle<'a>>,
}

/// Evaluates every system on every protocol of `config` over `data` (see the module docs).
/// Progress goes to standard error.
pub fn evaluate(data: &WorldData, config: &EvalConfig) -> Result<Evaluation> {
    ensure!(
        !data.events.is_empty(),
        "{}: no positives",
        data.dir.display()
    );
    let truth = if data.dir.join("world.json").exists() {
        Some(Truth::load(&data.dir).context("loading the world's ground truth")?)
    } else {
        None
    };
    let sources = source_config(config);
    let rank = rank_config(config, &sources);
    let features = if config.rank_candidates > 0 {
        Some(ranking::FeatureData::load(data).context("loading the ranking features")?)
    } else {
        None
    };
    let oracle_fn = truth.as_ref().map(|t| oracle(data, t));
    let run = Run {
        data,
        config,
        sources,
        rank,
        features,
        oracle: oracle_fn.as_ref().map(|f| f as &sources::Oracle<'_>),
    };
    let mut artifacts = Artifacts::default();
    let mut results = Vec::new();
    for sp in &splits(data, config)? {
        results.push(run.split(sp, &mut artifacts)?);
    }
    let report = EvalReport {
        dataset: config.dataset.clone(),
        world: (data.users.len(), data.items.len(), data.events.len()),
        config: serde_json::json!({
            "sources": serde_json::to_value(&run.sources)?,
            "second_stage": (config.rank_candidates > 0).then_some(&run.rank),
        }),
        splits: results,
    };
    artifacts.add("report.json", serde_json::to_string(&report)?);
    artifacts.markdown = report::markdown(&report);
    Ok(Evaluation { report, artifacts })
}

impl Run<'_> {
    /// Trains every source and the rankers on `sp`'s past, scores every cohort.
    fn split(&self, sp: &Split, artifacts: &mut Artifacts) -> Result<SplitResult> {
        let data = self.data;
        eprintln!(
            "{}: {} past positives, {} warm and {} cold users ({} warm users also as new)",
            sp.name,
            sp.train.len(),
            sp.warm.len(),
            sp.cold.len(),
            sp.as_new.len()
        );
        export_split(artifacts, data, sp, &self.sources)?;
        let trained = sources::train(data, sp, &self.sources)
            .with_context(|| format!("training the sources on {}", sp.name))?;
        let (device, tuned) = self
            .device(sp, &trained)
            .with_context(|| format!("packaging the device bundle of {}", sp.name))?;
        let (rankers, ranker_error) = self.rankers(sp);
        let mut cohorts: Vec<CohortResult> = Vec::new();
        for (cohort, cases) in [
            ("warm", &sp.warm),
            ("cold", &sp.cold),
            ("as-new", &sp.as_new),
        ] {
            let cases = sample(cases.clone(), self.config.max_users, self.config.seed);
            if cases.is_empty() {
                continue;
            }
            let c = self.cohort(sp, &trained, rankers.as_ref(), &device, cohort, &cases)?;
            for (name, svg) in report::plots(&sp.name, &c) {
                artifacts.add(Path::new("plots").join(name), svg);
            }
            cohorts.push(c);
        }
        Ok(SplitResult {
            name: sp.name.clone(),
            description: sp.description.clone(),
            train_positives: sp.train.len(),
            cohorts,
            fit_seconds: trained.fit_seconds.clone(),
            ials_losses: trained.ials.losses().to_vec(),
            content_beta: (trained.beta.warm, trained.beta.cold),
            content_beta_curve: [
                trained.beta.warm_curve.clone(),
                trained.beta.cold_curve.clone(),
            ],
            tower_losses: trained
                .tower
                .as_ref()
                .map(|t| t.model.epoch_losses().to_vec())
                .unwrap_or_default(),
            tower_onnx_bytes: trained.tower.as_ref().map_or(0, |t| t.onnx_bytes),
            peer_timings: self.peer_timings(sp)?,
            ranker: rankers.map(|r| r.training),
            ranker_error,
            tuned,
        })
    }

    /// The bundle the device would get for this split: every source trained on its past,
    /// packaged as `bundle build --world --int8` packages the shipped one (media table and
    /// platform counts as of the cut, int8 vectors, the default serving settings).
    fn device(
        &self,
        sp: &Split,
        trained: &sources::Trained,
    ) -> Result<(edgerec::Recommender, Option<Tuned>)> {
        let config = SystemConfig {
            dataset: self.config.dataset.clone(),
            seed: self.config.seed,
            half_life_days: self.sources.half_life_days,
            tower_epochs: self.config.tower_epochs,
            positive_above: self.config.positive_above,
            tune: None,
        };
        let mut system = System::from_trained(self.data, trained, &self.sources, &config, sp)?;
        let tuned = match &self.config.tune {
            Some(t) => {
                let t = TuneConfig {
                    validation: if sp.name == "leave-last-out" {
                        Validation::LeaveLastOut
                    } else {
                        Validation::Temporal {
                            share: self.config.train_share,
                        }
                    },
                    ..t.clone()
                };
                let tuned = tune::tune(self.data, sp, &self.sources, &config, &t)
                    .with_context(|| format!("fitting the serving of {}", sp.name))?;
                eprintln!(
                    "{}: serving fitted on validation: half-life {} days, quotas {:?} (new users \
                     {:?}), MMR λ {}",
                    sp.name,
                    tuned.half_life_days,
                    tuned.quotas,
                    tuned.new_user_quotas,
                    tuned.lambda
                );
                system.apply(self.data, sp, tuned.clone())?;
                Some(tuned)
            }
            None => None,
        };
        let options = PackageOptions {
            world: Some(self.data.dir.clone()),
            int8: true,
            ..PackageOptions::default()
        };
        let contents = package(system.contents, &options)?;
        Ok((edgerec::Recommender::from_bytes(&contents.encode())?, tuned))
    }

    /// The split's rankers, or why there are none.
    fn rankers(&self, sp: &Split) -> (Option<ranking::Rankers>, Option<String>) {
        let Some(fd) = &self.features else {
            return (None, None);
        };
        let blend_rows = |inner: &Split| sources::blend_rows(self.data, inner, &self.sources);
        match ranking::train(self.data, fd, sp, &self.rank, blend_rows) {
            Ok(r) => {
                eprintln!(
                    "{}: rankers trained on {} examples ({} positives)",
                    sp.name, r.training.examples, r.training.positives
                );
                (Some(r), None)
            }
            Err(e) => {
                eprintln!("{}: no second stage: {e:#}", sp.name);
                (None, Some(format!("{e:#}")))
            }
        }
    }

    /// Every system's answers for one cohort, scored.
    fn cohort(
        &self,
        sp: &Split,
        trained: &sources::Trained,
        rankers: Option<&ranking::Rankers>,
        device: &edgerec::Recommender,
        cohort: &str,
        cases: &[Case],
    ) -> Result<CohortResult> {
        let data = self.data;
        let mut systems = sources::answer(data, sp, trained, cases, &self.sources, self.oracle)?;
        // The row users get: the device pipeline over the bundle this split would ship, stage
        // by stage (blend order → + ranker → + filters → + MMR = `device`).
        for (name, serving) in device::stages() {
            let rows = device::rows(device, data, sp, cases, report::K, serving)
                .with_context(|| format!("{name} rows of {cohort} users of {}", sp.name))?;
            systems.push((name.to_string(), rows));
        }
        let mut ranker_tests = Vec::new();
        if let (Some(fd), Some(r)) = (&self.features, rankers) {
            let at = systems
                .iter()
                .position(|(n, _)| n == "blend")
                .context("the sources answered without a blend")?;
            let (two_stage, tests) = ranking::rerank(fd, r, cases, &systems[at].1, &self.rank)
                .with_context(|| format!("reranking {cohort} users of {}", sp.name))?;
            for (k, s) in two_stage.into_iter().enumerate() {
                systems.insert(at + 1 + k, s);
            }
            ranker_tests = tests;
        }
        if cohort == "warm"
            && let Some(dir) = &self.config.peers
        {
            for method in ["implicit-als", "implicit-bpr", "ease", "item-knn"] {
                let path = dir.join(&sp.name).join(format!("{method}.tsv"));
                if path.exists() {
                    systems.push((
                        method.to_string(),
                        read_peer(&path, cases, data.items.len())?,
                    ));
                }
            }
        }
        let mut c = report::score(
            cohort,
            cases,
            &systems,
            &sp.train,
            data.users.len(),
            &trained.content,
        );
        c.rankers = ranker_tests;
        Ok(c)
    }

    /// The peers' fit timings of a split (`<peers>/<split>/timings.json`), if any.
    fn peer_timings(&self, sp: &Split) -> Result<Option<serde_json::Value>> {
        self.config
            .peers
            .as_ref()
            .map(|d| d.join(&sp.name).join("timings.json"))
            .filter(|p| p.exists())
            .map(|p| -> Result<serde_json::Value> {
                let b = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_slice(&b).with_context(|| format!("{} is not JSON", p.display()))
            })
            .transpose()
    }
}
