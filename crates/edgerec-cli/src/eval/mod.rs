//! `edgerec eval`: every candidate source against popularity, the peers and (in a synthetic
//! world) the oracle, on the protocols of [`split`], with standard errors, paired comparisons,
//! markdown, JSON and SVG figures.
//!
//! It also evaluates the second stage end to end ([`rerank`]): per split, rankers trained on
//! that split's past reorder the blend's top `--rank-candidates` titles for every test user,
//! and the report pairs each two-stage system with the blend it reranks and the cohort's best
//! single source.
//!
//! The splits are also written as plain files (`splits/<split>/train.tsv`, `users.tsv`,
//! `params.json`) so `bench/peers.py` can train the `implicit` library's ALS and BPR and EASE on
//! exactly the same past; a second run with `--peers` scores their rows with the same metric
//! code.

pub mod report;
pub mod rerank;
pub mod sources;
pub mod split;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec_data::schema::DEVICES;
use edgerec_data::truth::Truth;
use edgerec_train::ials::{IalsConfig, Solver};
use edgerec_twotower::TowerConfig;

use report::{CohortResult, EvalReport, SplitResult};
use rerank::RankConfig;
use sources::{Answer, SourceConfig};
use split::{Case, EvalData, Split};

/// Arguments of `edgerec eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A world directory in the canonical schema (`edgerec data import … --to world` or
    /// `edgerec simulate`).
    #[arg(long)]
    pub world: PathBuf,
    /// Output directory: report.md, report.json, plots/, splits/.
    #[arg(long)]
    pub out: PathBuf,
    /// Name of the data set in the report.
    #[arg(long, default_value = "movielens-100k")]
    pub dataset: String,
    /// Protocols: `temporal`, `leave-last-out`, `folds` (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "temporal,leave-last-out")]
    pub protocols: Vec<String>,
    /// Share of positives in the past of the temporal split.
    #[arg(long, default_value_t = 0.8)]
    pub train_share: f64,
    /// Time-series folds (protocol `folds`).
    #[arg(long, default_value_t = 3)]
    pub folds: u32,
    /// Days per fold.
    #[arg(long, default_value_t = 7)]
    pub fold_days: u32,
    /// A play is a positive above this fraction of the title.
    #[arg(long, default_value_t = 0.8)]
    pub positive_above: f32,
    /// Titles a cold-start user picks at onboarding (the first ones they watch).
    #[arg(long, default_value_t = 3)]
    pub onboarding: usize,
    /// Evaluate at most this many users per cohort (a seeded sample), for large worlds.
    #[arg(long)]
    pub max_users: Option<usize>,
    /// iALS factors.
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// iALS iterations.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// iALS confidence slope.
    #[arg(long, default_value_t = 2.0)]
    pub alpha: f32,
    /// iALS L2 penalty.
    #[arg(long, default_value_t = 0.05)]
    pub lambda: f32,
    /// Conjugate-gradient steps per row (0: exact Cholesky solves).
    #[arg(long, default_value_t = 3)]
    pub cg_steps: usize,
    /// Two-tower training epochs (0 skips the model).
    #[arg(long, default_value_t = 8)]
    pub tower_epochs: usize,
    /// Directory of peer rows from `bench/peers.py` (`<split>/<method>.tsv`).
    #[arg(long)]
    pub peers: Option<PathBuf>,
    /// Second stage: blend candidates the rankers reorder per user (0 turns the stage off).
    #[arg(long, default_value_t = 100)]
    pub rank_candidates: usize,
    /// Second stage: days before the cut whose examples train the rankers (time-cut splits).
    #[arg(long, default_value_t = 21)]
    pub rank_window_days: u32,
    /// Second stage, leave-last-out: each user's last past positives that train the rankers.
    #[arg(long, default_value_t = 3)]
    pub rank_last_positives: usize,
    /// Second stage: negatives per positive (the labelled negatives' downsampling target, or
    /// how many to sample from the blend when the world has none).
    #[arg(long, default_value_t = 4)]
    pub rank_negatives: usize,
    /// Second stage: at most this many training positives per split (seeded subsample).
    #[arg(long, default_value_t = 20_000)]
    pub rank_max_positives: usize,
    /// Second stage: boosting rounds of the gradient-boosted trees.
    #[arg(long, default_value_t = 100)]
    pub rank_trees: usize,
    /// Second stage: also train the deep ranker (embedding bags and an MLP, `edgerec-rank`'s
    /// `DeepRanker`) with at most this many epochs (0: leave it out).
    #[arg(long, default_value_t = 0)]
    pub rank_deep_epochs: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn sample(cases: Vec<Case>, max: Option<usize>, seed: u64) -> Vec<Case> {
    let Some(max) = max.filter(|&m| m < cases.len()) else {
        return cases;
    };
    let key = |u: u32| {
        let mut z = (u64::from(u) ^ seed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut keyed: Vec<(u64, Case)> = cases.into_iter().map(|c| (key(c.user), c)).collect();
    keyed.sort_by_key(|p| p.0);
    keyed.truncate(max);
    let mut out: Vec<Case> = keyed.into_iter().map(|p| p.1).collect();
    out.sort_by_key(|c| c.user);
    out
}

/// Writes the split for the peers: dense indices, one row per past positive.
fn export_split(dir: &Path, data: &EvalData, split: &Split, config: &SourceConfig) -> Result<()> {
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
    crate::write(&dir.join("train.tsv"), train.as_bytes())?;
    crate::write(&dir.join("users.tsv"), users.as_bytes())?;
    crate::write(
        &dir.join("params.json"),
        serde_json::to_string_pretty(&params)?.as_bytes(),
    )?;
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

/// Runs the evaluation and writes the report.
pub fn run(a: &EvalArgs) -> Result<EvalReport> {
    let data = EvalData::load(&a.world, a.positive_above)
        .with_context(|| format!("loading {}", a.world.display()))?;
    ensure!(
        !data.events.is_empty(),
        "{}: no positives",
        a.world.display()
    );
    let truth = if a.world.join("world.json").exists() {
        Some(Truth::load(&a.world).context("loading the world's ground truth")?)
    } else {
        None
    };
    let config = SourceConfig {
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
    };
    let rank_config = RankConfig {
        candidates: a.rank_candidates.min(config.n),
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
    };
    let features = if a.rank_candidates > 0 {
        Some(rerank::FeatureData::load(&data).context("loading the ranking features")?)
    } else {
        None
    };
    let mut splits: Vec<Split> = Vec::new();
    for p in &a.protocols {
        match p.as_str() {
            "temporal" => splits.push(split::temporal(&data, a.train_share, a.onboarding)),
            "leave-last-out" => splits.push(split::leave_last_out(&data)),
            "folds" => splits.extend(split::folds(&data, a.folds, a.fold_days, a.onboarding)),
            other => bail!("unknown protocol {other:?} (temporal, leave-last-out, folds)"),
        }
    }
    let d = &data;
    let oracle_fn = truth.as_ref().map(|t| {
        move |case: &Case, _history: &[u32]| -> Vec<f32> {
            let data = d;
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
    });
    let mut results = Vec::new();
    let mut plots = Vec::new();
    for sp in &splits {
        eprintln!(
            "{}: {} past positives, {} warm and {} cold users ({} warm users also as new)",
            sp.name,
            sp.train.len(),
            sp.warm.len(),
            sp.cold.len(),
            sp.as_new.len()
        );
        export_split(&a.out.join("splits").join(&sp.name), &data, sp, &config)?;
        let trained = sources::train(&data, sp, &config)
            .with_context(|| format!("training the sources on {}", sp.name))?;
        let (rankers, ranker_error) = match &features {
            Some(fd) => {
                let blend_rows = |inner: &Split| sources::blend_rows(&data, inner, &config);
                match rerank::train(&data, fd, sp, &rank_config, blend_rows) {
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
            None => (None, None),
        };
        let mut cohorts: Vec<CohortResult> = Vec::new();
        for (cohort, cases) in [
            ("warm", &sp.warm),
            ("cold", &sp.cold),
            ("as-new", &sp.as_new),
        ] {
            let cases = sample(cases.clone(), a.max_users, a.seed);
            if cases.is_empty() {
                continue;
            }
            let oracle: Option<&sources::Oracle<'_>> = oracle_fn.as_ref().map(|f| f as _);
            let mut systems = sources::answer(&data, sp, &trained, &cases, &config, oracle)?;
            let mut ranker_tests = Vec::new();
            if let (Some(fd), Some(r)) = (&features, &rankers) {
                let at = systems
                    .iter()
                    .position(|(n, _)| n == "blend")
                    .context("the sources answered without a blend")?;
                let (two_stage, tests) =
                    rerank::rerank(fd, r, &cases, &systems[at].1, &rank_config)
                        .with_context(|| format!("reranking {cohort} users of {}", sp.name))?;
                for (k, s) in two_stage.into_iter().enumerate() {
                    systems.insert(at + 1 + k, s);
                }
                ranker_tests = tests;
            }
            if cohort == "warm"
                && let Some(dir) = &a.peers
            {
                for method in ["implicit-als", "implicit-bpr", "ease"] {
                    let path = dir.join(&sp.name).join(format!("{method}.tsv"));
                    if path.exists() {
                        systems.push((
                            method.to_string(),
                            read_peer(&path, &cases, data.items.len())?,
                        ));
                    }
                }
            }
            let mut c = report::score(
                cohort,
                &cases,
                &systems,
                &sp.train,
                data.users.len(),
                &trained.content,
            );
            c.rankers = ranker_tests;
            plots.extend(report::plots(&sp.name, &c));
            cohorts.push(c);
        }
        let peer_timings = a
            .peers
            .as_ref()
            .map(|d| d.join(&sp.name).join("timings.json"))
            .filter(|p| p.exists())
            .map(|p| -> Result<serde_json::Value> {
                let b = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_slice(&b).with_context(|| format!("{} is not JSON", p.display()))
            })
            .transpose()?;
        results.push(SplitResult {
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
            peer_timings,
            ranker: rankers.map(|r| r.training),
            ranker_error,
        });
    }
    let report = EvalReport {
        dataset: a.dataset.clone(),
        world: (data.users.len(), data.items.len(), data.events.len()),
        config: serde_json::json!({
            "sources": serde_json::to_value(&config)?,
            "second_stage": (a.rank_candidates > 0).then_some(&rank_config),
        }),
        splits: results,
    };
    for (name, svg) in &plots {
        crate::write(&a.out.join("plots").join(name), svg.as_bytes())?;
    }
    crate::write(
        &a.out.join("report.json"),
        serde_json::to_string(&report)?.as_bytes(),
    )?;
    crate::write(
        &a.out.join("report.md"),
        report::markdown(&report).as_bytes(),
    )?;
    Ok(report)
}
