//! Scoring the systems' rows and writing the report (markdown, JSON, SVG).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use edgerec::content::ContentIndex;
use edgerec_eval::{self as ev, Summary};
use serde::{Deserialize, Serialize};

use crate::data::Event;
use crate::ranking::{RankerTest, RankerTraining};
use crate::sources::Answer;
use crate::split::Case;

/// The single candidate sources a two-stage system is compared with (the best of them on the
/// cohort by mean NDCG@10).
pub const SOURCES: [&str; 5] = ["popularity", "ials", "content", "two-tower", "neighbours"];

/// Systems that rerank the blend's candidates (see [`crate::ranking`]).
pub const TWO_STAGE: [&str; 3] = ["two-stage-lr", "two-stage-gbdt", "two-stage-deep"];

/// The device's rows stage by stage ([`crate::device::stages`]); the last is the row users get.
pub const DEVICE: [&str; 4] = ["device-blend", "device-ranked", "device-filtered", "device"];

/// The peer libraries' systems (`bench/peers.py`), when the evaluation reads their rows.
pub const PEERS: [&str; 4] = ["implicit-als", "implicit-bpr", "ease", "item-knn"];

/// Cut-off of the row metrics.
pub const K: usize = 10;

/// Per-user metrics, in report order.
pub const METRICS: [&str; 9] = [
    "Recall@10",
    "RecallCapped@10",
    "Precision@10",
    "mAP@10",
    "mAR@10",
    "NDCG@10",
    "HitRate@10",
    "AUC",
    "Recall@100",
];

/// One system on one cohort.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemResult {
    /// System name.
    pub name: String,
    /// Per-user metric values with mean and standard error, in [`METRICS`] order (AUC is empty
    /// for list-only systems).
    pub metrics: Vec<(String, Summary)>,
    /// F1@10 from mean precision and mean recall.
    pub f1: f64,
    /// Share of the catalog appearing in some top-10.
    pub coverage: f64,
    /// Mean pairwise content dissimilarity within each top-10.
    pub diversity: Summary,
    /// Mean self-information of the top-10's titles (bits), from the past's watchers.
    pub novelty: Summary,
    /// Recall@N for N = 1..=100 (mean, standard error).
    pub recall_curve: Vec<(f64, f64)>,
}

impl SystemResult {
    /// The summary of metric `name`.
    pub fn metric(&self, name: &str) -> Option<&Summary> {
        self.metrics.iter().find(|(m, _)| m == name).map(|(_, s)| s)
    }
}

/// A paired comparison with the reference system on the same users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paired {
    /// The system.
    pub system: String,
    /// The metric.
    pub metric: String,
    /// Mean per-user difference (system − reference).
    pub difference: f64,
    /// Its standard error.
    pub se: f64,
}

/// A system after the first stage (a two-stage ranker, a stage of the device's row) against
/// the blend, the cohort's best single source or its best peer, on the same users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagePaired {
    /// The system ([`TWO_STAGE`] or [`DEVICE`]).
    pub system: String,
    /// `blend`, `best source` or `best peer`.
    pub reference: String,
    /// The reference system's name.
    pub against: String,
    /// The metric.
    pub metric: String,
    /// The reference's mean.
    pub reference_mean: f64,
    /// The system's mean.
    pub mean: f64,
    /// Mean per-user difference (system − reference).
    pub difference: f64,
    /// Its paired standard error.
    pub se: f64,
}

/// All systems on one group of users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CohortResult {
    /// `warm` (users with a past), `cold` (new users with onboarding picks) or `as-new` (users
    /// with a past treated as new: past hidden, first future titles as onboarding picks).
    pub cohort: String,
    /// Dense user index of each evaluated user, in the order of every per-user vector.
    pub users: Vec<u32>,
    /// Systems in report order.
    pub systems: Vec<SystemResult>,
    /// Each system against popularity.
    pub paired: Vec<Paired>,
    /// Each two-stage system and device stage against the blend, the best single source and
    /// the best peer (NDCG@10, mAP@10).
    #[serde(default)]
    pub stages: Vec<StagePaired>,
    /// The per-split rankers' pooled AUC and log-loss on this cohort's candidates.
    #[serde(default)]
    pub rankers: Vec<RankerTest>,
    /// With a ground truth: per user, the share of the oracle's top-100 that the blend's
    /// top-100 also holds.
    pub blend_oracle_overlap: Option<Summary>,
}

fn dot_sparse(a: &[(u32, f32)], b: &[(u32, f32)]) -> f64 {
    let (mut i, mut j, mut s) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += f64::from(a[i].1) * f64::from(b[j].1);
                i += 1;
                j += 1;
            }
        }
    }
    s
}

/// Scores every system's answers for `cases`.
pub fn score(
    cohort: &str,
    cases: &[Case],
    systems: &[(String, Vec<Answer>)],
    train: &[Event],
    users: usize,
    content: &ContentIndex,
) -> CohortResult {
    let mut watchers: HashMap<u32, HashSet<u32>> = HashMap::new();
    for e in train {
        watchers.entry(e.item).or_default().insert(e.user);
    }
    let watchers: HashMap<u32, u64> = watchers
        .into_iter()
        .map(|(i, u)| (i, u.len() as u64))
        .collect();
    let results: Vec<SystemResult> = systems
        .iter()
        .map(|(name, answers)| score_system(name, cases, answers, &watchers, users, content))
        .collect();
    let paired = paired_with_popularity(&results);
    let stages = stage_paired(&results);
    let rows = |name: &str| systems.iter().find(|(n, _)| n == name).map(|(_, a)| a);
    let blend_oracle_overlap = rows("blend").zip(rows("oracle")).map(|(b, o)| {
        let mut s = Summary::default();
        for (b, o) in b.iter().zip(o) {
            let top: HashSet<u32> = o.row.iter().take(100).copied().collect();
            let shared = b.row.iter().take(100).filter(|i| top.contains(i)).count();
            s.push(shared as f64 / top.len().max(1) as f64);
        }
        s
    });
    CohortResult {
        cohort: cohort.into(),
        users: cases.iter().map(|c| c.user).collect(),
        systems: results,
        paired,
        stages,
        rankers: Vec::new(),
        blend_oracle_overlap,
    }
}

/// One system's metrics over the cases: every [`METRICS`] value per user, diversity (by the
/// content profiles), novelty (by the past's watchers), coverage and the recall curve.
fn score_system(
    name: &str,
    cases: &[Case],
    answers: &[Answer],
    watchers: &HashMap<u32, u64>,
    users: usize,
    content: &ContentIndex,
) -> SystemResult {
    let similarity = |a: u32, b: u32| {
        dot_sparse(
            content.item_profile(a as usize),
            content.item_profile(b as usize),
        )
    };
    let mut m: Vec<Summary> = vec![Summary::default(); METRICS.len()];
    let mut diversity = Summary::default();
    let mut novelty = Summary::default();
    let mut curve = vec![Summary::default(); 100];
    for (case, a) in cases.iter().zip(answers) {
        let (row, rel) = (&a.row, &case.relevant);
        let values = [
            ev::recall(row, rel, K),
            ev::recall_capped(row, rel, K),
            ev::precision(row, rel, K),
            ev::average_precision(row, rel, K),
            ev::mean_recall(row, rel, K),
            ev::ndcg(row, rel, K),
            ev::hit(row, rel, K),
            f64::NAN,
            ev::recall(row, rel, 100),
        ];
        for (k, v) in values.into_iter().enumerate() {
            if k == 7 {
                if let Some(auc) = a.auc {
                    m[k].push(auc);
                }
            } else {
                m[k].push(v);
            }
        }
        let top = &row[..row.len().min(K)];
        diversity.push(ev::intra_list_diversity(top, similarity));
        novelty.push(ev::novelty(top, watchers, users as u64));
        for (n, s) in curve.iter_mut().enumerate() {
            s.push(ev::recall(row, rel, n + 1));
        }
    }
    let coverage = ev::coverage(
        answers.iter().map(|a| &a.row[..a.row.len().min(K)]),
        content.items(),
    );
    let f1 = ev::f1(m[2].mean(), m[0].mean());
    SystemResult {
        name: name.to_string(),
        metrics: METRICS.iter().map(|s| s.to_string()).zip(m).collect(),
        f1,
        coverage,
        diversity,
        novelty,
        recall_curve: curve
            .iter()
            .map(|s| (s.mean(), s.standard_error()))
            .collect(),
    }
}

/// Each system against popularity on the same users (NDCG@10, Recall@10, mAP@10).
fn paired_with_popularity(results: &[SystemResult]) -> Vec<Paired> {
    let mut paired = Vec::new();
    let Some(reference) = results.iter().find(|r| r.name == "popularity") else {
        return paired;
    };
    for r in results.iter().filter(|r| r.name != "popularity") {
        for metric in ["NDCG@10", "Recall@10", "mAP@10"] {
            let (Some(a), Some(b)) = (r.metric(metric), reference.metric(metric)) else {
                continue;
            };
            let (difference, se) = ev::paired(a, b);
            paired.push(Paired {
                system: r.name.clone(),
                metric: metric.into(),
                difference,
                se,
            });
        }
    }
    paired
}

/// The best of `names` present in `results` by mean NDCG@10 (ties: the earlier name).
pub fn best_of<'a>(results: &'a [SystemResult], names: &[&str]) -> Option<&'a SystemResult> {
    let ndcg = |r: &SystemResult| r.metric("NDCG@10").map_or(f64::NEG_INFINITY, Summary::mean);
    names
        .iter()
        .filter_map(|n| results.iter().find(|r| r.name == *n))
        .fold(None, |best, r| match best {
            Some(b) if ndcg(b) >= ndcg(r) => Some(b),
            _ => Some(r),
        })
}

/// Each two-stage system and device stage against the blend, the best of [`SOURCES`] and the
/// best of [`PEERS`] by mean NDCG@10 (ties: the earlier one), for NDCG@10 and mAP@10.
pub fn stage_paired(results: &[SystemResult]) -> Vec<StagePaired> {
    let find = |n: &str| results.iter().find(|r| r.name == n);
    let references = [
        ("blend", find("blend")),
        ("best source", best_of(results, &SOURCES)),
        ("best peer", best_of(results, &PEERS)),
    ];
    let mut out = Vec::new();
    for system in TWO_STAGE.iter().chain(&DEVICE).filter_map(|s| find(s)) {
        for (reference, against) in references {
            let Some(against) = against else { continue };
            for metric in ["NDCG@10", "mAP@10"] {
                let (Some(a), Some(b)) = (system.metric(metric), against.metric(metric)) else {
                    continue;
                };
                let (difference, se) = ev::paired(a, b);
                out.push(StagePaired {
                    system: system.name.clone(),
                    reference: reference.into(),
                    against: against.name.clone(),
                    metric: metric.into(),
                    reference_mean: b.mean(),
                    mean: a.mean(),
                    difference,
                    se,
                });
            }
        }
    }
    out
}

/// One split's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitResult {
    /// Split name.
    pub name: String,
    /// How the split was made.
    pub description: String,
    /// Positives in the past.
    pub train_positives: usize,
    /// Warm and (when there are any) cold-start users.
    pub cohorts: Vec<CohortResult>,
    /// Seconds to fit each source (peers: as they reported).
    pub fit_seconds: Vec<(String, f64)>,
    /// iALS objective after each iteration.
    pub ials_losses: Vec<f64>,
    /// The content prior's weight tried → validation NDCG@10, for users with a past and for
    /// new users.
    pub content_beta_curve: [Vec<(f32, f64)>; 2],
    /// Content prior weights chosen (users with a past, new users).
    pub content_beta: (f32, f32),
    /// Two-tower mean training loss per epoch.
    pub tower_losses: Vec<f32>,
    /// Bytes of the exported ONNX user tower.
    pub tower_onnx_bytes: usize,
    /// Peer timings as reported by `bench/peers.py`, when present.
    pub peer_timings: Option<serde_json::Value>,
    /// How the split's rankers were trained (absent when the second stage is off or failed).
    #[serde(default)]
    pub ranker: Option<RankerTraining>,
    /// Why the second stage did not run on this split, if it failed.
    #[serde(default)]
    pub ranker_error: Option<String>,
    /// The device's serving fitted on validation inside the split's past, and the evidence.
    #[serde(default)]
    pub tuned: Option<crate::tune::Tuned>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Name of the data set.
    pub dataset: String,
    /// Users, items and positives in the world.
    pub world: (usize, usize, usize),
    /// Source settings.
    pub config: serde_json::Value,
    /// One entry per split.
    pub splits: Vec<SplitResult>,
}

/// A quality gate on an evaluation: on every cohort of the splits it names (all splits
/// without a name), `system` may fall below `reference` by at most one paired standard error
/// of NDCG@10. Written `[split:]system>=reference`, e.g. `leave-last-out:device>=blend`.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// The split it applies to (`None`: every split).
    pub split: Option<String>,
    /// The system held to it.
    pub system: String,
    /// The system it may not fall below.
    pub reference: String,
}

impl std::str::FromStr for Requirement {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Requirement> {
        let (split, rule) = match s.split_once(':') {
            Some((split, rule)) => (Some(split.to_string()), rule),
            None => (None, s),
        };
        let Some((system, reference)) = rule.split_once(">=") else {
            anyhow::bail!("requirement {s:?} is not [split:]system>=reference");
        };
        let (system, reference) = (system.trim(), reference.trim());
        anyhow::ensure!(
            !system.is_empty() && !reference.is_empty(),
            "requirement {s:?} names no system or no reference"
        );
        Ok(Requirement {
            split,
            system: system.into(),
            reference: reference.into(),
        })
    }
}

impl Requirement {
    /// Every way `report` breaks the requirement (empty: it holds), one line each. A split
    /// the requirement names that the report lacks, or a cohort without either system,
    /// breaks it too: a gate that measures nothing does not pass.
    pub fn violations(&self, report: &EvalReport) -> Vec<String> {
        let mut out = Vec::new();
        let mut checked = 0;
        for sp in &report.splits {
            if self.split.as_ref().is_some_and(|n| *n != sp.name) {
                continue;
            }
            for c in &sp.cohorts {
                let ndcg = |n: &str| {
                    c.systems
                        .iter()
                        .find(|r| r.name == n)
                        .and_then(|r| r.metric("NDCG@10"))
                };
                let (Some(a), Some(b)) = (ndcg(&self.system), ndcg(&self.reference)) else {
                    out.push(format!(
                        "{} {}: {} or {} was not evaluated",
                        sp.name, c.cohort, self.system, self.reference
                    ));
                    continue;
                };
                checked += 1;
                let (difference, se) = ev::paired(a, b);
                if difference < -se {
                    out.push(format!(
                        "{} {} users: {} NDCG@10 {:.4} is below {} {:.4} by {:.4} (paired se {:.4})",
                        sp.name,
                        c.cohort,
                        self.system,
                        a.mean(),
                        self.reference,
                        b.mean(),
                        -difference,
                        se
                    ));
                }
            }
        }
        if checked == 0 && out.is_empty() {
            out.push(format!(
                "no split {} in the report",
                self.split.as_deref().unwrap_or("at all")
            ));
        }
        out
    }
}

fn pm(s: &Summary) -> String {
    if s.values.is_empty() {
        "—".into()
    } else {
        format!("{:.4} ± {:.4}", s.mean(), s.standard_error())
    }
}

/// The report as markdown; figures are referenced as `plots/<split>-<cohort>-*.svg`.
/// The report as markdown: an introduction to the protocols and systems, then per split and
/// cohort the systems' metrics, the paired comparisons, the rankers, and the split's notes.
pub fn markdown(r: &EvalReport) -> String {
    let mut s = String::new();
    intro(&mut s, r);
    for sp in &r.splits {
        let _ = writeln!(
            s,
            "## {}\n\n{}. {} past positives.\n",
            sp.name, sp.description, sp.train_positives
        );
        if let Some(t) = &sp.tuned {
            let _ = writeln!(s, "{}", t.markdown());
        }
        for c in &sp.cohorts {
            cohort_markdown(&mut s, sp, c);
        }
        split_notes(&mut s, sp);
    }
    s
}

/// What the report measures and how: metrics, cohorts, the device's rows, the two stages.
fn intro(s: &mut String, r: &EvalReport) {
    let (u, i, p) = r.world;
    let _ = writeln!(
        s,
        "# Candidate generation: offline evaluation on {}\n",
        r.dataset
    );
    let _ = writeln!(
        s,
        "{u} users, {i} items, {p} positives. Each metric is the mean over users ± its standard \
         error; rows are top-100 lists excluding titles in the user's past. Recall@10 = hits / \
         |relevant|; RecallCapped@10 = hits / min(10, |relevant|); mAP@10 divides by min(10, \
         |relevant|); mAR@10 averages recall@k for k = 1..10; NDCG uses binary gains; AUC is per \
         user over every unseen title (list-only systems have none). Paired differences compare \
         each system with popularity on the same users. Cohorts: *warm* users have a past; \
         *cold* users are new in the test period, their first titles standing for onboarding \
         picks; *as-new* are warm users with their past hidden and their first future titles as \
         onboarding picks (a larger cold-start sample). `ials-int8` and `two-tower-int8` are \
         the same models as the device ships them by default (`bundle build --int8`): item \
         vectors as int8 with one scale per row, iALS fold-in over the dequantised rows, scores \
         from the int8 scan; compare them with `ials` and `two-tower` (f32). `device` is the \
         row users get: the bundle the split would ship (every source trained on the split's \
         past, packaged as `bundle build --world --int8` packages it) serving each user through \
         the one recommendation path, `recommend_row`, from the local state the device would \
         hold at the request (the user's plays before it; for new users, their onboarding \
         picks): blend, ranker if the bundle has one, the filters (finished, fatigued, too \
         mature, per-genre cap) and MMR. The rows before it add one stage at a time: \
         `device-blend` is the blend's order with only the filters that cannot be turned off \
         (finished, too mature), `device-ranked` adds the bundle's ranker (equal to \
         `device-blend` when the bundle ships none), `device-filtered` the fatigue filter and \
         per-genre cap, and `device` MMR; each difference is what that stage adds or costs. \
         Their rows are 10 long: Recall@100 is Recall@10. The bundle's serving (popularity \
         half-life, blend quotas, MMR λ) is fitted as `edgerec train` fits the shipped one: on \
         a validation split inside the split's past, by the device's own rows (each split \
         shows the evidence); the `blend` row keeps the default quotas.\n"
    );
    let _ = writeln!(
        s,
        "Two-stage systems (`two-stage-lr`, `two-stage-gbdt` and, with `--rank-deep-epochs`, \
         `two-stage-deep`) reorder the blend's candidates by a ranker (weighted logistic \
         regression, gradient-boosted trees, the deep network over embedding bags of the title's \
         ids, the watch history and the search tokens) trained on the split's past only, with \
         the device's feature code computed point in time at the request; \
         `blend-shuffled` is the same candidates in a seeded random order (the chance level of \
         any reordering). Their Recall@100 equals the blend's: the candidate set is the same. \
         Each split says which past trained the rankers and where their negatives came from: \
         the world's labelled negatives (abandoned plays, impressions without a play) when it \
         logs them; otherwise (MovieLens) the blend's own candidates on an inner split of the \
         past (sources refitted before the training window, candidates the user then watched \
         are positives, the rest negatives: hard negatives, but ones the user may simply not \
         have come across). The rankers see only the device's feature catalog, not the \
         sources' scores or ranks. Titles not yet on the platform at the request are not \
         scored and keep their blend order at the end. New users' onboarding picks enter the \
         rankers' history as full plays; the picks being the user's first future titles, \
         series features (next episode) favour the rankers on the cold and as-new cohorts more \
         than a real onboarding would.\n"
    );
}

/// One cohort: the systems' table, the paired comparisons, the rankers, the oracle, the plots.
fn cohort_markdown(s: &mut String, sp: &SplitResult, c: &CohortResult) {
    let _ = writeln!(s, "### {} users ({})\n", c.cohort, c.users.len());
    let _ = write!(s, "| system |");
    for m in METRICS {
        let _ = write!(s, " {m} |");
    }
    let _ = writeln!(s, " F1@10 | Coverage@10 | ILD@10 | Novelty@10 |");
    let _ = writeln!(s, "|---{}|---|---|---|---|", "|---".repeat(METRICS.len()));
    for sys in &c.systems {
        let _ = write!(s, "| {} |", sys.name);
        for (_, v) in &sys.metrics {
            let _ = write!(s, " {} |", pm(v));
        }
        let _ = writeln!(
            s,
            " {:.4} | {:.3} | {:.3} | {:.2} |",
            sys.f1,
            sys.coverage,
            sys.diversity.mean(),
            sys.novelty.mean()
        );
    }
    paired_table(s, c);
    stage_table(s, c);
    rankers_table(s, c);
    oracle_note(s, c);
    let _ = writeln!(
        s,
        "\n![{0} {1}](plots/{0}-{1}-bars.svg) ![{0} {1} recall@N](plots/{0}-{1}-recall.svg)\n",
        sp.name, c.cohort
    );
}

/// Each system against popularity.
fn paired_table(s: &mut String, c: &CohortResult) {
    if !c.paired.is_empty() {
        let _ = writeln!(s, "\nPaired against popularity (same users):\n");
        let _ = writeln!(s, "| system | metric | difference | se | z |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for p in &c.paired {
            let z = if p.se > 0.0 {
                p.difference / p.se
            } else {
                f64::NAN
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:+.4} | {:.4} | {:+.1} |",
                p.system, p.metric, p.difference, p.se, z
            );
        }
    }
}

/// Each two-stage system and device stage against the blend, the best single source and the
/// best peer.
fn stage_table(s: &mut String, c: &CohortResult) {
    if !c.stages.is_empty() {
        let _ = writeln!(
            s,
            "\nAfter the first stage (two-stage rankers; the device's row stage by stage) against \
             the blend, the best single source and the best peer on this cohort (by NDCG@10), \
             paired on the same users:\n"
        );
        let _ = writeln!(
            s,
            "| system | against | metric | reference | system | difference | paired se | z |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for p in &c.stages {
            let z = if p.se > 0.0 {
                p.difference / p.se
            } else {
                f64::NAN
            };
            let _ = writeln!(
                s,
                "| {} | {} ({}) | {} | {:.4} | {:.4} | {:+.4} | {:.4} | {:+.1} |",
                p.system,
                p.reference,
                p.against,
                p.metric,
                p.reference_mean,
                p.mean,
                p.difference,
                p.se,
                z
            );
        }
    }
}

/// The rankers' pooled AUC and log-loss on the cohort's candidates.
fn rankers_table(s: &mut String, c: &CohortResult) {
    if !c.rankers.is_empty() {
        let _ = writeln!(
            s,
            "\nRankers on this cohort's candidates, pooled over (user, candidate) pairs \
             labelled by the test future:\n"
        );
        let _ = writeln!(
            s,
            "| ranker | pairs | relevant | AUC | log-loss | blend order AUC |\n|---|---|---|---|---|---|"
        );
        let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.4}"));
        for r in &c.rankers {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r.system,
                r.pairs,
                r.positives,
                opt(r.auc),
                opt(r.log_loss),
                opt(r.blend_order_auc)
            );
        }
    }
}

/// The blend against the oracle, when the world has one.
fn oracle_note(s: &mut String, c: &CohortResult) {
    let find = |n: &str| c.systems.iter().find(|x| x.name == n);
    if let (Some(b), Some(o), Some(ov)) = (find("blend"), find("oracle"), &c.blend_oracle_overlap) {
        let (rb, ro) = (
            b.metric("Recall@100").map_or(0.0, Summary::mean),
            o.metric("Recall@100").map_or(0.0, Summary::mean),
        );
        let _ = writeln!(
            s,
            "\nAgainst the oracle (the world's true utilities, same users): blend \
             Recall@100 {rb:.4} vs oracle {ro:.4} ({:.0}% of the oracle's); the blend's \
             top-100 holds {:.1}% ± {:.1}% of the oracle's top-100. The oracle orders by \
             true utility, not by exposure: users of a logged world watch what the logging \
             policy showed them, so the logged future rewards promoted (popular) titles \
             and the oracle does not top the list-prefix metrics; its AUC over the whole \
             ranking is the fairer comparison.",
            100.0 * rb / ro.max(1e-12),
            100.0 * ov.mean(),
            100.0 * ov.standard_error()
        );
    }
}

/// The split's rankers, fit times and model diagnostics.
fn split_notes(s: &mut String, sp: &SplitResult) {
    if let Some(r) = &sp.ranker {
        ranker_note(s, r);
    }
    if let Some(e) = &sp.ranker_error {
        let _ = writeln!(s, "The second stage did not run on this split: {e}.\n");
    }
    let _ = writeln!(s, "Fit time (seconds):\n");
    let _ = writeln!(s, "| source | seconds |\n|---|---|");
    for (name, secs) in &sp.fit_seconds {
        let _ = writeln!(s, "| {name} | {secs:.2} |");
    }
    if let Some(t) = &sp.peer_timings {
        let ours = sp
            .fit_seconds
            .iter()
            .find(|(n, _)| n == "ials")
            .map(|p| p.1);
        let theirs = t
            .get("implicit-als")
            .and_then(|v| v.get("fit_s"))
            .and_then(serde_json::Value::as_f64);
        if let (Some(a), Some(b)) = (ours, theirs) {
            let _ = writeln!(
                s,
                "\niALS fit: ours {a:.2} s, implicit {b:.2} s at the same factors, iterations, \
                 alpha and lambda: ours / implicit = {:.2}.",
                a / b
            );
        }
    }
    let curve = |c: &[(f32, f64)]| {
        c.iter()
            .map(|(b, v)| format!("{b}: {v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        s,
        "\nContent prior weight beta, fitted on the last tenth of the past by NDCG@10: {} for \
         users with a past ({}), {} for new users ({}).",
        sp.content_beta.0,
        curve(&sp.content_beta_curve[0]),
        sp.content_beta.1,
        curve(&sp.content_beta_curve[1]),
    );
    if !sp.ials_losses.is_empty() {
        let _ = writeln!(
            s,
            "iALS objective by iteration: {}.",
            sp.ials_losses
                .iter()
                .map(|l| format!("{l:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        s,
        "Two-tower loss by epoch: {}; ONNX user tower {} bytes.\n",
        sp.tower_losses
            .iter()
            .map(|l| format!("{l:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        sp.tower_onnx_bytes
    );
}

/// How the split's rankers were trained.
fn ranker_note(s: &mut String, r: &RankerTraining) {
    let list = |v: &[(String, f64)]| {
        v.iter()
            .map(|(n, x)| format!("`{n}` {x:+.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
    let _ = writeln!(
        s,
        "Rankers of this split: trained on {} — {} examples ({} positives; negatives: {} \
         played below the threshold, {} unplayed impressions, {} sampled; {} labelled \
         negatives in the window before downsampling) from {} users, {} dense features. \
         Negatives: {}. In-sample AUC: logistic {}, trees {}; logistic Newton steps {}. \
         Seconds: {}. Largest standardised coefficients: {}. Most split gain: {}.\n",
        r.window,
        r.examples,
        r.positives,
        r.played_negatives,
        r.impression_negatives,
        r.sampled_negatives,
        r.labelled_negatives_in_window,
        r.users,
        r.features,
        r.negatives,
        opt(r.train_auc.0),
        opt(r.train_auc.1),
        r.lr_iterations,
        r.seconds
            .iter()
            .map(|(n, x)| format!("{n} {x:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        list(&r.top_coefficients),
        list(&r.top_gain),
    );
}

/// The figures of one cohort: grouped bars for the main metrics, recall@N lines.
pub fn plots(split: &str, c: &CohortResult) -> Vec<(String, String)> {
    use edgerec_eval::plot::{Bar, Line, bar_chart, line_chart};
    let groups: Vec<(String, Vec<Bar>)> = ["Recall@10", "NDCG@10", "mAP@10", "HitRate@10"]
        .iter()
        .map(|m| {
            let bars = c
                .systems
                .iter()
                .filter_map(|s| {
                    s.metric(m).map(|v| Bar {
                        series: s.name.clone(),
                        mean: v.mean(),
                        se: v.standard_error(),
                    })
                })
                .collect();
            (m.to_string(), bars)
        })
        .collect();
    let lines: Vec<Line> = c
        .systems
        .iter()
        .map(|s| Line {
            series: s.name.clone(),
            points: s
                .recall_curve
                .iter()
                .enumerate()
                .map(|(n, (m, se))| ((n + 1) as f64, *m, *se))
                .collect(),
        })
        .collect();
    vec![
        (
            format!("{split}-{}-bars.svg", c.cohort),
            bar_chart(
                &format!("{split}, {} users ({}): mean ± se", c.cohort, c.users.len()),
                "metric value",
                &groups,
            ),
        ),
        (
            format!("{split}-{}-recall.svg", c.cohort),
            line_chart(
                &format!("{split}, {} users: recall@N", c.cohort),
                "N",
                "recall@N",
                &lines,
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of one split with one cohort where `device` and `blend` have these per-user
    /// NDCG@10 values.
    fn report(device: &[f64], blend: &[f64]) -> EvalReport {
        let system = |name: &str, v: &[f64]| {
            serde_json::json!({
                "name": name, "metrics": [["NDCG@10", {"values": v}]], "f1": 0.0,
                "coverage": 0.0, "diversity": {"values": []}, "novelty": {"values": []},
                "recall_curve": [],
            })
        };
        serde_json::from_value(serde_json::json!({
            "dataset": "d", "world": [3, 3, 3], "config": null,
            "splits": [{
                "name": "leave-last-out", "description": "", "train_positives": 3,
                "cohorts": [{
                    "cohort": "warm", "users": [0, 1, 2, 3],
                    "systems": [system("device", device), system("blend", blend)],
                    "paired": [], "blend_oracle_overlap": null,
                }],
                "fit_seconds": [], "ials_losses": [], "content_beta_curve": [[], []],
                "content_beta": [0.0, 0.0], "tower_losses": [], "tower_onnx_bytes": 0,
                "peer_timings": null,
            }],
        }))
        .unwrap()
    }

    #[test]
    fn a_requirement_fails_only_beyond_one_paired_standard_error() {
        let r: Requirement = "leave-last-out:device>=blend".parse().unwrap();
        assert_eq!(r.system, "device");
        // Equal rows pass; slightly below (within the noise) passes.
        assert!(
            r.violations(&report(&[1.0, 0.0, 0.5, 0.2], &[1.0, 0.0, 0.5, 0.2]))
                .is_empty()
        );
        assert!(
            r.violations(&report(&[1.0, 0.0, 0.4, 0.2], &[1.0, 0.0, 0.5, 0.2]))
                .is_empty()
        );
        // Below on every user: a clear loss.
        let v = r.violations(&report(&[0.5, 0.0, 0.2, 0.1], &[1.0, 0.3, 0.5, 0.2]));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("device NDCG@10 0.2000 is below blend 0.5000"),
            "{v:?}"
        );
        // A gate that measures nothing does not pass.
        let missing: Requirement = "temporal:device>=blend".parse().unwrap();
        assert_eq!(missing.violations(&report(&[1.0], &[1.0])).len(), 1);
        let absent: Requirement = "device>=peer".parse().unwrap();
        assert_eq!(absent.violations(&report(&[1.0], &[1.0])).len(), 1);
        assert!("device<blend".parse::<Requirement>().is_err());
        assert!(":>=blend".parse::<Requirement>().is_err());
    }
}
