//! The second stage: blend → ranker → top-10, trained and tested on one split.
//!
//! For every split the evaluation fits the rankers of `edgerec-rank` — the weighted logistic
//! regression, the gradient-boosted trees and, when [`RankConfig::deep`] is set, the deep
//! network (embedding bags of the title's ids, the watch history and the search tokens, fed
//! the same way as the pipeline feeds `rank train`) — on examples drawn from that split's past
//! only, then reorders each test user's blend candidates (the blend's top `candidates`) by the
//! ranker's P(watch) and scores the result like any other system (`two-stage-lr`,
//! `two-stage-gbdt`, `two-stage-deep`). A control row, `blend-shuffled`, is the same candidates in a seeded
//! random order: what any ordering of the candidate set scores by chance.
//!
//! **Features** are the device's: the core's
//! [`FeatureSpace`](edgerec::features::FeatureSpace) (via [`edgerec_pipeline::World`], the
//! pipeline's vocabularies) computes every vector from the user's plays strictly before the
//! request ([`History::before`]), the request's context (device, time, the user's UTC offset)
//! and [`MediaStats`] — each title's plays by anyone in the 24 hours and 7 days before the
//! request (`[t − 86400, t − 1]`, as the pipeline's SQL window), counted over the split's past
//! plays only.
//!
//! **No leakage.** User `u`'s past is every play strictly before the user's cut ([`Cuts`]: the
//! split's cut, or for leave-last-out the time of `u`'s held-out positive); training examples,
//! their negatives, the platform counts and the test requests' histories read nothing else.
//! Test requests are made at the case's time (the cut; for leave-last-out the held-out
//! positive's time). New users (`cold`, `as-new`) have no plays: their onboarding picks enter
//! the history as full plays one second before the request, as the candidate sources see them.
//! Series features then fire on them (`cross.next_episode`): since the protocol takes a new
//! user's first future titles as their picks, the next episode of a picked series is often
//! relevant, which favours the rankers on these cohorts more than a real onboarding would.
//! The request's device is the user's most frequent past device, else the most frequent device
//! of the split's past. A candidate not yet on the platform at the request (added later) is not
//! in the device's catalog: it is not scored and keeps its blend order after the scored ones.
//!
//! **Training examples** follow the pipeline's label rules (`edgerec_pipeline`): a play is a
//! positive when its fraction is above the positive threshold (0.8) and a negative below 0.1,
//! the middle dropped; an impression with no play of the same title in the same session is a
//! negative; positives weigh `clamp(watched_s / 3600, 0.1, 4)` and negatives
//! `clamp(duration_s / 3600, 0.1, 4)`; negatives are kept with probability
//! `min(1, negatives_per_positive × positives / negatives)` by the pipeline's
//! [`edgerec_pipeline::unit_hash`]. Only the end of the past is used, so fitting stays quick:
//! the last `window_days` days before the cut, or for leave-last-out each user's last
//! `last_positives` past positives (and the labelled negatives between the first of them and
//! the user's cut). Above `max_positives`, positives are subsampled by the same hash.
//!
//! **Worlds without labelled negatives** (MovieLens has no impressions and every rating is a
//! full play) train on the first stage's own candidates instead, the hard negatives a device
//! would have shown: the split's past is cut again at the start of the training window (for
//! leave-last-out, before each user's last `last_positives` positives), every candidate source
//! is refitted on that inner past, and each user with an inner past and positives in the window
//! gets the blend's top `candidates` as of the inner cut. A candidate the user watched (above
//! the positive threshold) before their cut is a positive, the others are negatives,
//! downsampled to `sampled_negatives` per positive by the same hash rule; titles not yet on the
//! platform at the inner cut are left out. The request is made at the inner cut, so training
//! mirrors the test. Limits: positives the blend did not propose are not used (the ranker
//! only learns to order candidates); the blend at the inner cut, not at each watch, decides
//! what counts as shown; a candidate the user did not watch within the window may simply not
//! have been seen (there is no exposure log), and few users (those with a past and positives in
//! the window) train each ranker.
//!
//! The features are only the core's catalog: the rankers do not see the candidate sources'
//! scores or ranks, so they can lose the first stage's order as well as improve on it.
//!
//! **Deployable rankers** (`edgerec rank train-candidates`) are trained by the same code on
//! [`final_split`]: all of the world's data is the past and the cut is one second after its
//! last play or impression, so the training window is the world's last `window_days` days and,
//! without labelled negatives, the inner past (everything before the window) trains the
//! candidate sources whose blend proposes the candidates. The limits above hold for them too.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use edgerec::context::{Context, Device};
use edgerec::features::{FeatureConfig, History, MediaStats, Play, UserProfile};
use edgerec_data::schema::{self, DEVICES, Impression};
use edgerec_rank::{
    Dataset, DeepConfig, DeepRanker, Examples, FitConfig, GradientBoostedTrees, LogisticRegression,
    SparseColumns, TreeConfig,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Event, WorldData};
use crate::sources::Answer;
use crate::split::{Case, Split};

const DAY: i64 = 86_400;

/// Where each user's past ends. A warm case's request time is the end of its user's past (the
/// cut, or for leave-last-out the held-out positive's time); every other user's past ends at
/// the split's cut. A split is *per user* when some warm request is not at the cut
/// (leave-last-out): its rankers then train on each user's last positives rather than on the
/// last days before the cut.
pub struct Cuts {
    cuts: Vec<i64>,
    per_user: bool,
}

impl Cuts {
    /// The cuts of `split` for `users` dense users.
    pub fn new(split: &Split, users: usize) -> Cuts {
        let mut cuts = vec![split.cut; users];
        let mut per_user = false;
        for c in &split.warm {
            if let Some(x) = cuts.get_mut(c.user as usize) {
                *x = (*x).min(c.time);
                per_user |= c.time != split.cut;
            }
        }
        Cuts { cuts, per_user }
    }

    /// Where user `u`'s past ends: plays strictly before it are the past.
    pub fn of(&self, u: u32) -> i64 {
        self.cuts[u as usize]
    }
}

/// Settings of the second stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankConfig {
    /// Blend candidates reranked per user (the blend's top N).
    pub candidates: usize,
    /// Training window before the cut, days (time-cut splits).
    pub window_days: u32,
    /// Leave-last-out: each user's last past positives that train.
    pub last_positives: usize,
    /// At most this many training positives (a seeded subsample above it).
    pub max_positives: usize,
    /// A play is a positive above this fraction.
    pub positive_above: f32,
    /// A play is a negative below this fraction.
    pub negative_below: f32,
    /// Labelled negatives are downsampled to about this many per positive.
    pub negatives_per_positive: f64,
    /// Negatives per positive among the candidates, when the window has no labelled negative.
    pub sampled_negatives: usize,
    /// The logistic regression's settings.
    pub logistic: FitConfig,
    /// The trees' settings.
    pub trees: TreeConfig,
    /// The deep ranker's settings; `None` leaves it out.
    pub deep: Option<DeepConfig>,
    /// Seed of the subsampling, the sampled negatives and the shuffled control.
    pub seed: u64,
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig {
            candidates: 100,
            window_days: 21,
            last_positives: 3,
            max_positives: 20_000,
            positive_above: 0.8,
            negative_below: 0.1,
            negatives_per_positive: 4.0,
            sampled_negatives: 4,
            logistic: FitConfig::default(),
            trees: TreeConfig::default(),
            deep: None,
            seed: 1,
        }
    }
}

/// Everything the feature code needs, loaded once per evaluation.
pub struct FeatureData {
    /// The pipeline's world: feature space, media (ordered by item id), item id → media index,
    /// and the searches the deep ranker's bags read.
    world: edgerec_pipeline::World,
    /// Dense item index → index in `media`.
    media_of: Vec<u32>,
    /// Dense user index → profile.
    profiles: Vec<UserProfile>,
    /// Dense user index → every play, in time order (core types).
    histories: Vec<History>,
    /// Dense user index → impressions, in time order.
    impressions: Vec<Vec<Impression>>,
    /// Dense user index → user id.
    user_ids: Vec<u32>,
}

impl FeatureData {
    /// Loads the pipeline's view of the world (vocabularies, media, profiles) and the plays
    /// and impressions by dense user.
    pub fn load(data: &WorldData) -> Result<FeatureData> {
        let world = edgerec_pipeline::World::load(&data.dir, FeatureConfig::default())
            .context("loading the feature space")?;
        let media_of = data
            .items
            .iter()
            .map(|it| {
                world
                    .index
                    .get(&it.item_id)
                    .copied()
                    .with_context(|| format!("item {} has no media row", it.item_id))
            })
            .collect::<Result<Vec<u32>>>()?;
        let profiles = data
            .users
            .iter()
            .map(|u| {
                world
                    .users
                    .get(&u.user_id)
                    .cloned()
                    .with_context(|| format!("user {} has no profile", u.user_id))
            })
            .collect::<Result<Vec<UserProfile>>>()?;
        let histories = data
            .plays
            .iter()
            .map(|plays| {
                History::new(
                    plays
                        .iter()
                        .filter_map(|p| {
                            Some(Play {
                                media: *world.index.get(&p.item_id)?,
                                time: p.time,
                                device: p.device,
                                session: p.session_id,
                                watched_s: p.watched_s,
                                fraction: p.fraction,
                            })
                        })
                        .collect(),
                )
            })
            .collect();
        let user_pos: HashMap<u32, usize> = data
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.user_id, i))
            .collect();
        let mut impressions: Vec<Vec<Impression>> = vec![Vec::new(); data.users.len()];
        schema::for_each_batch::<Impression>(&data.dir, |rows| {
            for m in rows {
                if let Some(&u) = user_pos.get(&m.user_id)
                    && world.index.contains_key(&m.item_id)
                {
                    impressions[u].push(m);
                }
            }
            Ok(())
        })
        .context("reading the impressions")?;
        for v in &mut impressions {
            v.sort_by_key(|m| m.time);
        }
        Ok(FeatureData {
            world,
            media_of,
            profiles,
            histories,
            impressions,
            user_ids: data.users.iter().map(|u| u.user_id).collect(),
        })
    }

    /// Width of the dense vectors.
    pub fn dense_names(&self) -> &[String] {
        self.world.space.dense_names()
    }

    /// The feature contract the rankers are trained with, in the pipeline's `features.json`
    /// format (what `bundle build --features` reads).
    pub fn contract_json(&self) -> Result<Vec<u8>> {
        self.world.contract_json()
    }
}

/// The split deployable rankers train on: every positive is the past, the cut is one second
/// after the world's last play or impression, and there are no test cases. [`train`] then takes
/// its window from the world's last `window_days` days and, when the window has no labelled
/// negative, refits the candidate sources on everything before it.
pub fn final_split(data: &WorldData, fd: &FeatureData) -> Split {
    let last = fd
        .histories
        .iter()
        .filter_map(|h| h.plays().last().map(|p| p.time))
        .chain(
            fd.impressions
                .iter()
                .filter_map(|v| v.last().map(|m| m.time)),
        )
        .chain(data.events.last().map(|e| e.time))
        .max();
    let cut = last.map_or(0, |t| t + 1);
    Split {
        name: "final".into(),
        description: format!(
            "all of the world's data: the cut is one second after its last event ({})",
            crate::split::date(cut)
        ),
        train: data.events.clone(),
        cut,
        warm: Vec::new(),
        cold: Vec::new(),
        as_new: Vec::new(),
    }
}

/// `clamp(seconds / 3600, 0.1, 4)`: the pipeline's example weight.
pub fn weight(seconds: u32) -> f32 {
    (f64::from(seconds) / 3600.0).clamp(0.1, 4.0) as f32
}

/// Each title's past play times, for [`MediaStats`] as of any time.
pub struct PlatformCounts {
    /// Dense item → media index → sorted play times.
    times: Vec<Vec<i64>>,
}

impl PlatformCounts {
    /// Every play of every user strictly before the user's cut, by media index.
    pub fn new(fd: &FeatureData, cuts: &Cuts) -> PlatformCounts {
        let mut times = vec![Vec::new(); fd.world.media.len()];
        for (u, h) in fd.histories.iter().enumerate() {
            for p in h.before(cuts.of(u as u32)) {
                times[p.media as usize].push(p.time);
            }
        }
        for t in &mut times {
            t.sort_unstable();
        }
        PlatformCounts { times }
    }

    /// Plays of `media` in `[t − 86400, t − 1]` and `[t − 7·86400, t − 1]`. O(log plays).
    pub fn stats(&self, media: u32, t: i64) -> MediaStats {
        let Some(v) = self.times.get(media as usize) else {
            return MediaStats::default();
        };
        let end = v.partition_point(|&x| x < t);
        let count = |from: i64| (end - v.partition_point(|&x| x < from)) as u32;
        MediaStats {
            plays_24h: count(t - DAY),
            plays_7d: count(t - 7 * DAY),
        }
    }
}

/// Where a training example comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExampleSource {
    /// A play above the positive threshold.
    Positive,
    /// A play below the negative threshold.
    PlayedNegative,
    /// An impression with no play of the title in its session.
    Impression,
    /// A blend candidate the user never played (sampled).
    Sampled,
}

/// One training example before featurisation.
#[derive(Debug, Clone, Copy)]
struct Example {
    user: u32,
    /// Media index.
    media: u32,
    time: i64,
    device: Device,
    label: bool,
    weight: f32,
    source: ExampleSource,
}

/// A uniform number in [0, 1) from the seed and the example's identity.
fn unit(seed: u64, user: u32, media: u32, time: i64, salt: u64) -> f64 {
    edgerec_pipeline::unit_hash(seed, user, media, time, salt)
}

/// The labelled examples in each user's training window, before sampling negatives.
struct Window {
    examples: Vec<Example>,
    labelled_negatives: usize,
}

fn window(fd: &FeatureData, cuts: &Cuts, cfg: &RankConfig) -> Window {
    let mut positives = Vec::new();
    let mut negatives = Vec::new();
    for u in 0..fd.histories.len() {
        user_window(fd, cuts, cfg, u as u32, &mut positives, &mut negatives);
    }
    // Subsample positives above the cap, then negatives to the target ratio (the pipeline's
    // hash rule, one draw per example).
    if positives.len() > cfg.max_positives {
        let q = cfg.max_positives as f64 / positives.len() as f64;
        positives.retain(|e| unit(cfg.seed, e.user, e.media, e.time, 1) < q);
    }
    let labelled_negatives = negatives.len();
    if !negatives.is_empty() {
        let p =
            (cfg.negatives_per_positive * positives.len() as f64 / negatives.len() as f64).min(1.0);
        negatives.retain(|e| unit(cfg.seed, e.user, e.media, e.time, 2) < p);
    }
    positives.extend(negatives);
    Window {
        examples: positives,
        labelled_negatives,
    }
}

/// Where user `u`'s training window starts: their last `last_positives` past positives on a
/// per-user split, else `window_days` before the cut.
fn window_start(past: &[Play], cut: i64, per_user: bool, cfg: &RankConfig) -> i64 {
    if !per_user {
        return cut - i64::from(cfg.window_days) * DAY;
    }
    let pos: Vec<i64> = past
        .iter()
        .filter(|p| p.fraction > cfg.positive_above)
        .map(|p| p.time)
        .collect();
    match pos.len().checked_sub(cfg.last_positives.max(1)) {
        Some(k) => pos[k],
        None => pos.first().copied().unwrap_or(cut),
    }
}

/// User `u`'s labelled examples in their window: plays above the positive threshold,
/// plays below the negative one, impressions without a play in their session.
fn user_window(
    fd: &FeatureData,
    cuts: &Cuts,
    cfg: &RankConfig,
    u: u32,
    positives: &mut Vec<Example>,
    negatives: &mut Vec<Example>,
) {
    let cut = cuts.of(u);
    let past = fd.histories[u as usize].before(cut);
    let from = window_start(past, cut, cuts.per_user, cfg);
    let start = past.partition_point(|p| p.time < from);
    let example = |media, time, device, label, weight, source| Example {
        user: u,
        media,
        time,
        device,
        label,
        weight,
        source,
    };
    for p in &past[start..] {
        let duration = fd.world.media[p.media as usize].duration_s;
        if p.fraction > cfg.positive_above {
            let w = weight(p.watched_s);
            positives.push(example(
                p.media,
                p.time,
                p.device,
                true,
                w,
                ExampleSource::Positive,
            ));
        } else if p.fraction < cfg.negative_below {
            let (w, s) = (weight(duration), ExampleSource::PlayedNegative);
            negatives.push(example(p.media, p.time, p.device, false, w, s));
        }
    }
    let played: HashSet<(u64, u32)> = past.iter().map(|p| (p.session, p.media)).collect();
    for m in &fd.impressions[u as usize] {
        if m.time < from || m.time >= cut {
            continue;
        }
        let Some(&media) = fd.world.index.get(&m.item_id) else {
            continue;
        };
        if played.contains(&(m.session_id, media)) {
            continue;
        }
        let w = weight(fd.world.media[media as usize].duration_s);
        negatives.push(example(
            media,
            m.time,
            m.device,
            false,
            w,
            ExampleSource::Impression,
        ));
    }
}

/// The inner split the candidate examples come from: the split's past cut again at the start
/// of the training window, as the outer protocol cuts the whole log. Its warm cases are the
/// users with a past before the window and positives in it.
fn inner_split(
    data: &WorldData,
    split: &Split,
    cuts: &Cuts,
    cfg: &RankConfig,
) -> (Split, Vec<i64>) {
    let users = data.users.len();
    // Each user's inner cut: the window start, or (per-user splits) their k-th last positive.
    let mut inner = vec![split.cut - i64::from(cfg.window_days) * DAY; users];
    if cuts.per_user {
        let mut times: Vec<Vec<i64>> = vec![Vec::new(); users];
        for e in &split.train {
            times[e.user as usize].push(e.time);
        }
        for (u, t) in times.iter().enumerate() {
            let k = cfg.last_positives.max(1);
            inner[u] = if t.len() > k {
                t[t.len() - k]
            } else {
                i64::MAX
            };
        }
    }
    let train: Vec<Event> = split
        .train
        .iter()
        .filter(|e| e.time < inner[e.user as usize])
        .copied()
        .collect();
    let mut seen: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for e in &train {
        seen[e.user as usize].insert(e.item);
    }
    let mut relevant: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for e in &split.train {
        let u = e.user as usize;
        if e.time >= inner[u] && e.time < cuts.of(e.user) && !seen[u].contains(&e.item) {
            relevant[u].insert(e.item);
        }
    }
    let warm = relevant
        .into_iter()
        .enumerate()
        .filter(|(u, r)| !seen[*u].is_empty() && !r.is_empty())
        .map(|(u, r)| Case {
            user: u as u32,
            time: inner[u],
            onboarding: Vec::new(),
            relevant: r,
        })
        .collect();
    let cut = if cuts.per_user {
        split.cut
    } else {
        split.cut - i64::from(cfg.window_days) * DAY
    };
    (
        Split {
            name: format!("{}-inner", split.name),
            description: "the past cut again at the start of the training window".into(),
            train,
            cut,
            warm,
            cold: Vec::new(),
            as_new: Vec::new(),
        },
        inner,
    )
}

/// Candidate examples: every title of each inner warm user's blend row, labelled positive when
/// the user watched it (above the positive threshold) between the inner cut and their cut;
/// negatives downsampled to `sampled_negatives` per positive by the pipeline's hash rule.
fn candidate_examples(
    fd: &FeatureData,
    cuts: &Cuts,
    cfg: &RankConfig,
    inner: &Split,
    rows: &[Answer],
) -> Vec<Example> {
    let mut positives = Vec::new();
    let mut negatives = Vec::new();
    for (case, row) in inner.warm.iter().zip(rows) {
        let u = case.user as usize;
        let t = case.time;
        let past = fd.histories[u].before(t);
        let mut c = [0usize; DEVICES.len()];
        for p in past {
            if let Some(d) = DEVICES.iter().position(|&d| d == p.device) {
                c[d] += 1;
            }
        }
        let device = most_frequent(&c);
        let window = &fd.histories[u].before(cuts.of(case.user))[past.len()..];
        for &i in row.row.iter().take(cfg.candidates) {
            let m = fd.media_of[i as usize];
            let media = &fd.world.media[m as usize];
            // Only titles on the platform at the request could have been shown then.
            if media.added_time > t {
                continue;
            }
            let watched = case.relevant.contains(&i).then(|| {
                window
                    .iter()
                    .filter(|p| p.media == m && p.fraction > cfg.positive_above)
                    .map(|p| p.watched_s)
                    .max()
                    .unwrap_or(media.duration_s)
            });
            let e = Example {
                user: case.user,
                media: m,
                time: t,
                device,
                label: watched.is_some(),
                weight: weight(watched.unwrap_or(media.duration_s)),
                source: if watched.is_some() {
                    ExampleSource::Positive
                } else {
                    ExampleSource::Sampled
                },
            };
            if e.label {
                positives.push(e);
            } else {
                negatives.push(e);
            }
        }
    }
    if !negatives.is_empty() {
        let p = (cfg.sampled_negatives as f64 * positives.len() as f64 / negatives.len() as f64)
            .min(1.0);
        negatives.retain(|e| unit(cfg.seed, e.user, e.media, e.time, 3) < p);
    }
    positives.extend(negatives);
    positives
}

/// The deep ranker's sequence inputs of a request: the titles watched before it (most recent
/// first) and the user's search tokens before it, as the pipeline writes them.
fn sequences(fd: &FeatureData, user: u32, plays: &[Play], t: i64) -> (Vec<u32>, Vec<u32>) {
    (
        edgerec::ranker::history_titles(plays, &fd.world.media, edgerec::ranker::MAX_HISTORY),
        fd.world
            .recent_search_tokens(fd.user_ids[user as usize], t, edgerec::ranker::MAX_SEARCH),
    )
}

/// Feature vectors of examples sorted by `(user, time)`: the dense values row-major and the
/// sparse side (ids, history, searches), computed per user in parallel (one user state per
/// distinct request time).
fn featurise(
    fd: &FeatureData,
    counts: &PlatformCounts,
    examples: &[Example],
) -> Result<(Vec<f32>, SparseColumns)> {
    let mut groups: Vec<&[Example]> = Vec::new();
    let mut rest = examples;
    while let Some(first) = rest.first() {
        let n = rest.partition_point(|e| e.user == first.user);
        groups.push(&rest[..n]);
        rest = &rest[n..];
    }
    let parts: Vec<(Vec<f32>, SparseColumns)> = groups
        .par_iter()
        .map(|g| -> Result<(Vec<f32>, SparseColumns)> {
            let u = g[0].user as usize;
            let profile = &fd.profiles[u];
            let mut out = Vec::with_capacity(g.len() * fd.dense_names().len());
            let mut sparse = SparseColumns::default();
            let mut state = None;
            for e in g.iter() {
                if state.as_ref().is_none_or(|(t, _, _)| *t != e.time) {
                    let plays = fd.histories[u].before(e.time);
                    let s = fd
                        .world
                        .space
                        .user_state(profile, plays, &fd.world.media, e.time);
                    state = Some((e.time, s, sequences(fd, e.user, plays, e.time)));
                }
                let (_, s, (history, search)) = state.as_ref().expect("set above");
                let ctx = Context::new(e.device, e.time, profile.utc_offset_minutes)?;
                let c = fd.world.space.context(profile, &ctx);
                let fv = fd.world.space.features(
                    s,
                    &c,
                    &fd.world.media[e.media as usize],
                    e.media,
                    counts.stats(e.media, e.time),
                );
                out.extend_from_slice(&fv.dense);
                sparse.time.push(e.time);
                sparse.features.push(fv.sparse);
                sparse.history.push(history.clone());
                sparse.search.push(search.clone());
            }
            Ok((out, sparse))
        })
        .collect::<Result<_>>()?;
    let mut dense = Vec::new();
    let mut sparse = SparseColumns::default();
    for (d, s) in parts {
        dense.extend(d);
        sparse.time.extend(s.time);
        sparse.features.extend(s.features);
        sparse.history.extend(s.history);
        sparse.search.extend(s.search);
    }
    Ok((dense, sparse))
}

/// How one split's rankers were trained (for the report).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RankerTraining {
    /// Which past trained them.
    pub window: String,
    /// Where the negatives came from.
    pub negatives: String,
    /// Training examples.
    pub examples: usize,
    /// Of which positives.
    pub positives: usize,
    /// Negatives by source: played below the threshold, unplayed impressions, sampled.
    pub played_negatives: usize,
    /// Unplayed impressions kept.
    pub impression_negatives: usize,
    /// Sampled blend candidates.
    pub sampled_negatives: usize,
    /// Labelled negatives in the window before downsampling.
    pub labelled_negatives_in_window: usize,
    /// Users with training examples.
    pub users: usize,
    /// Dense features.
    pub features: usize,
    /// Seconds: building and featurising the examples, fitting each model.
    pub seconds: Vec<(String, f64)>,
    /// Newton steps of the logistic regression.
    pub lr_iterations: usize,
    /// In-sample AUC (logistic regression, trees).
    pub train_auc: (Option<f64>, Option<f64>),
    /// In-sample AUC of the deep ranker, when trained.
    #[serde(default)]
    pub train_auc_deep: Option<f64>,
    /// Largest standardised coefficients by magnitude.
    pub top_coefficients: Vec<(String, f64)>,
    /// Features with the most split gain.
    pub top_gain: Vec<(String, f64)>,
}

/// The rankers of one split and what scoring needs.
pub struct Rankers {
    lr: LogisticRegression,
    gbdt: GradientBoostedTrees,
    deep: Option<DeepRanker>,
    counts: PlatformCounts,
    cuts: Cuts,
    /// The split's most frequent past device (requests of users without a past).
    default_device: Device,
    /// How they were trained.
    pub training: RankerTraining,
}

impl Rankers {
    /// The weighted logistic regression.
    pub fn logistic(&self) -> &LogisticRegression {
        &self.lr
    }

    /// The gradient-boosted trees.
    pub fn trees(&self) -> &GradientBoostedTrees {
        &self.gbdt
    }

    /// The deep ranker, when [`RankConfig::deep`] was set.
    pub fn deep(&self) -> Option<&DeepRanker> {
        self.deep.as_ref()
    }
}

/// Trains both rankers on the split's past. `blend_rows` trains the candidate sources on an
/// inner split and returns the blend's rows for its warm cases, in order; it is called only
/// when the training window has no labelled negative.
pub fn train(
    data: &WorldData,
    fd: &FeatureData,
    split: &Split,
    cfg: &RankConfig,
    blend_rows: impl FnOnce(&Split) -> Result<Vec<Answer>>,
) -> Result<Rankers> {
    let started = Instant::now();
    let cuts = Cuts::new(split, fd.profiles.len());
    let counts = PlatformCounts::new(fd, &cuts);
    let TrainingSet {
        examples,
        labelled_negatives,
        negatives,
    } = training_set(data, fd, split, &cuts, cfg, blend_rows)?;
    let (dense, sparse) = featurise(fd, &counts, &examples)?;
    let built = started.elapsed().as_secs_f64();
    let names = fd.dense_names().to_vec();
    let labels: Vec<bool> = examples.iter().map(|e| e.label).collect();
    let weights: Vec<f32> = examples.iter().map(|e| e.weight).collect();
    let dataset = Dataset::new(names, dense, labels, weights)?;
    let mut fitted = fit_rankers(fd, &dataset, sparse, cfg)?;
    fitted.seconds.insert(0, ("examples".to_string(), built));
    let training = RankerTraining {
        window: window_text(&cuts, cfg),
        negatives,
        labelled_negatives_in_window: labelled_negatives,
        ..training_summary(&examples, &dataset, &fitted)?
    };
    Ok(Rankers {
        lr: fitted.lr,
        gbdt: fitted.gbdt,
        deep: fitted.deep,
        counts,
        cuts,
        default_device: split_device(fd, split),
        training,
    })
}

/// The training examples of a split and where their negatives came from.
struct TrainingSet {
    examples: Vec<Example>,
    labelled_negatives: usize,
    /// How the negatives were made, for the report.
    negatives: String,
}

/// Which past trains the rankers, for the report.
fn window_text(cuts: &Cuts, cfg: &RankConfig) -> String {
    if cuts.per_user {
        format!(
            "each user's last {} past positives (and labelled negatives from the first of them to the user's cut)",
            cfg.last_positives
        )
    } else {
        format!("the last {} days before the cut", cfg.window_days)
    }
}

/// The window's examples with labelled negatives when the world logs them; otherwise the
/// first stage's own candidates on an inner split (see the module docs).
fn training_set(
    data: &WorldData,
    fd: &FeatureData,
    split: &Split,
    cuts: &Cuts,
    cfg: &RankConfig,
    blend_rows: impl FnOnce(&Split) -> Result<Vec<Answer>>,
) -> Result<TrainingSet> {
    let Window {
        mut examples,
        labelled_negatives,
    } = window(fd, cuts, cfg);
    let negatives = if labelled_negatives > 0 {
        format!(
            "labelled: plays below {:.0}% watched and impressions without a play in their session, downsampled to about {} per positive",
            cfg.negative_below * 100.0,
            cfg.negatives_per_positive
        )
    } else {
        // No labelled negative: learn to order the first stage's own candidates instead.
        let (inner, _) = inner_split(data, split, cuts, cfg);
        ensure!(
            !inner.warm.is_empty(),
            "{}: no user has both a past before the training window and positives in it",
            split.name
        );
        let rows = blend_rows(&inner).context("the inner split's blend rows")?;
        ensure!(
            rows.len() == inner.warm.len(),
            "one blend row per inner case"
        );
        examples = candidate_examples(fd, cuts, cfg, &inner, &rows);
        format!(
            "no labelled negative in the window, so the rankers learn to order the first stage's candidates: the sources are refitted on the past before the window ({} positives), each user with a past and positives in the window gets the blend's top {} at the window start, a candidate is positive when the user watched it in the window, the rest are negatives downsampled to about {} per positive ({} users)",
            inner.train.len(),
            cfg.candidates,
            cfg.sampled_negatives,
            inner.warm.len()
        )
    };
    examples.sort_by_key(|e| (e.user, e.time, e.media, e.label));
    ensure!(
        examples.iter().any(|e| e.label) && examples.iter().any(|e| !e.label),
        "{}: the training window has {} examples, not both labels",
        split.name,
        examples.len()
    );
    Ok(TrainingSet {
        examples,
        labelled_negatives,
        negatives,
    })
}

/// The rankers fitted on one training set, with their in-sample AUCs and fit times.
struct Fitted {
    lr: LogisticRegression,
    gbdt: GradientBoostedTrees,
    deep: Option<DeepRanker>,
    train_auc_deep: Option<f64>,
    seconds: Vec<(String, f64)>,
}

fn fit_rankers(
    fd: &FeatureData,
    data: &Dataset,
    sparse: SparseColumns,
    cfg: &RankConfig,
) -> Result<Fitted> {
    let t = Instant::now();
    let lr =
        LogisticRegression::fit(data, &cfg.logistic).context("fitting the logistic regression")?;
    let lr_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gbdt = GradientBoostedTrees::fit(data, &cfg.trees).context("fitting the trees")?;
    let gbdt_s = t.elapsed().as_secs_f64();
    let mut seconds = vec![
        ("logistic".to_string(), lr_s),
        ("trees".to_string(), gbdt_s),
    ];
    let (deep, train_auc_deep) = match &cfg.deep {
        Some(dc) => {
            let t = Instant::now();
            let n = data.len();
            let all = Examples {
                data: data.clone(),
                fold_window: vec![-1; n],
                folds: Vec::new(),
                sparse: Some(sparse),
                search_tokens: fd.world.search_vocab.names().to_vec(),
            };
            let rows: Vec<usize> = (0..n).collect();
            let model = DeepRanker::fit(&all, &rows, dc).context("fitting the deep ranker")?;
            seconds.push(("deep".to_string(), t.elapsed().as_secs_f64()));
            let auc = edgerec_rank::auc(&model.score(&all, &rows)?, data.labels());
            (Some(model), auc)
        }
        None => (None, None),
    };
    Ok(Fitted {
        lr,
        gbdt,
        deep,
        train_auc_deep,
        seconds,
    })
}

/// What the report says of the training: counts, in-sample AUCs, the largest coefficients
/// and split gains (window and negatives are the caller's).
fn training_summary(
    examples: &[Example],
    data: &Dataset,
    fitted: &Fitted,
) -> Result<RankerTraining> {
    let labels = data.labels();
    let train_auc = (
        edgerec_rank::auc(&fitted.lr.score(data)?, labels),
        edgerec_rank::auc(&fitted.gbdt.score(data)?, labels),
    );
    let mut coefficients = fitted.lr.coefficients();
    coefficients.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    coefficients.truncate(6);
    let top_gain = fitted
        .gbdt
        .ranked_importance()
        .into_iter()
        .take(6)
        .map(|(n, g)| (n.to_string(), g))
        .collect();
    let count = |s: ExampleSource| examples.iter().filter(|e| e.source == s).count();
    let mut users: Vec<u32> = examples.iter().map(|e| e.user).collect();
    users.dedup();
    Ok(RankerTraining {
        window: String::new(),
        negatives: String::new(),
        examples: examples.len(),
        positives: count(ExampleSource::Positive),
        played_negatives: count(ExampleSource::PlayedNegative),
        impression_negatives: count(ExampleSource::Impression),
        sampled_negatives: count(ExampleSource::Sampled),
        labelled_negatives_in_window: 0,
        users: users.len(),
        features: data.n_features(),
        seconds: fitted.seconds.clone(),
        lr_iterations: fitted.lr.iterations(),
        train_auc,
        train_auc_deep: fitted.train_auc_deep,
        top_coefficients: coefficients,
        top_gain,
    })
}

/// The most frequent device of the split's past plays: the request device of users without a
/// past.
fn split_device(fd: &FeatureData, split: &Split) -> Device {
    let mut device_counts = [0usize; DEVICES.len()];
    for h in &fd.histories {
        for p in h.plays().iter().filter(|p| p.time < split.cut) {
            if let Some(d) = DEVICES.iter().position(|&d| d == p.device) {
                device_counts[d] += 1;
            }
        }
    }
    most_frequent(&device_counts)
}

fn most_frequent(counts: &[usize; DEVICES.len()]) -> Device {
    let best = (0..DEVICES.len())
        .max_by_key(|&d| (counts[d], DEVICES.len() - d))
        .unwrap_or(0);
    DEVICES[best]
}

/// A ranker's pooled quality on one cohort's candidates: each (user, candidate) pair is
/// labelled by whether the user watches the title in the test future.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankerTest {
    /// The two-stage system.
    pub system: String,
    /// (user, candidate) pairs.
    pub pairs: usize,
    /// Of which relevant.
    pub positives: usize,
    /// Pooled AUC of the ranker's P(watch).
    pub auc: Option<f64>,
    /// Mean unweighted log-loss of P(watch).
    pub log_loss: Option<f64>,
    /// Pooled AUC of the blend's own order (score = −rank), for reference.
    pub blend_order_auc: Option<f64>,
}

/// Systems by name with one answer per case.
pub type Systems = Vec<(String, Vec<Answer>)>;

/// One candidate of one case: each ranker's P(watch), −(its blend rank), whether relevant.
struct Pair {
    scores: Vec<f32>,
    blend: f32,
    relevant: bool,
}

/// Per case: the reordered rows (each ranker's, then the shuffle) and its candidates.
type Scored = (Vec<Answer>, Vec<Pair>);

/// Reorders each case's blend candidates by every ranker (and a seeded shuffle); returns the
/// systems (`two-stage-lr`, `two-stage-gbdt`, `two-stage-deep` when trained,
/// `blend-shuffled`) and the rankers' pooled test quality.
pub fn rerank(
    fd: &FeatureData,
    rankers: &Rankers,
    cases: &[Case],
    blend: &[Answer],
    cfg: &RankConfig,
) -> Result<(Systems, Vec<RankerTest>)> {
    ensure!(blend.len() == cases.len(), "one blend row per case");
    let mut names = vec!["two-stage-lr", "two-stage-gbdt"];
    if rankers.deep.is_some() {
        names.push("two-stage-deep");
    }
    let per_case: Vec<Scored> = cases
        .par_iter()
        .zip(blend)
        .map(|(case, b)| {
            let candidates = &b.row[..b.row.len().min(cfg.candidates)];
            let scores = case_scores(fd, rankers, case, candidates, names.len())?;
            Ok(case_answers(case, candidates, &scores, cfg.seed))
        })
        .collect::<Result<_>>()?;
    let mut systems: Systems = names
        .iter()
        .chain(&["blend-shuffled"])
        .map(|s| (s.to_string(), Vec::with_capacity(cases.len())))
        .collect();
    let mut pairs: Vec<Pair> = Vec::new();
    for (answers, p) in per_case {
        for (k, a) in answers.into_iter().enumerate() {
            systems[k].1.push(a);
        }
        pairs.extend(p);
    }
    Ok((systems, ranker_tests(&names, &pairs)))
}

/// The plays the rankers see for a case at its request, and the request's device: the user's
/// past (before their cut) on their most frequent device, or for a new user the onboarding
/// picks as full plays one second before the request on the split's most frequent device.
fn case_plays(fd: &FeatureData, rankers: &Rankers, case: &Case) -> (Vec<Play>, Device) {
    let u = case.user as usize;
    let t = case.time;
    if case.onboarding.is_empty() {
        let past = fd.histories[u].before(t.min(rankers.cuts.of(case.user)));
        let mut c = [0usize; DEVICES.len()];
        for p in past {
            if let Some(d) = DEVICES.iter().position(|&d| d == p.device) {
                c[d] += 1;
            }
        }
        let device = if past.is_empty() {
            rankers.default_device
        } else {
            most_frequent(&c)
        };
        return (past.to_vec(), device);
    }
    let device = rankers.default_device;
    let picks = case
        .onboarding
        .iter()
        .map(|&i| {
            let media = fd.media_of[i as usize];
            Play {
                media,
                time: t - 1,
                device,
                session: 0,
                watched_s: fd.world.media[media as usize].duration_s,
                fraction: 1.0,
            }
        })
        .collect();
    (picks, device)
}

/// Every ranker's scores for a case's `candidates` (one vector per ranker, in system order);
/// a title not yet on the platform at the request is not in the device's catalog: it scores
/// −1, after every scored title, and keeps its blend order there.
fn case_scores(
    fd: &FeatureData,
    rankers: &Rankers,
    case: &Case,
    candidates: &[u32],
    systems: usize,
) -> Result<Vec<Vec<f32>>> {
    let t = case.time;
    if candidates.is_empty() {
        return Ok(vec![Vec::new(); systems]);
    }
    let profile = &fd.profiles[case.user as usize];
    let (plays, device) = case_plays(fd, rankers, case);
    let space = &fd.world.space;
    let state = space.user_state(profile, &plays, &fd.world.media, t);
    let ctx = Context::new(device, t, profile.utc_offset_minutes)?;
    let c = space.context(profile, &ctx);
    let mut dense = Vec::with_capacity(candidates.len() * fd.dense_names().len());
    let mut vectors = Vec::with_capacity(candidates.len());
    for &i in candidates {
        let m = fd.media_of[i as usize];
        let media = &fd.world.media[m as usize];
        let fv = space.features(&state, &c, media, m, rankers.counts.stats(m, t));
        dense.extend_from_slice(&fv.dense);
        if rankers.deep.is_some() {
            vectors.push(fv);
        }
    }
    let mut scores = vec![rankers.lr.predict(&dense)?, rankers.gbdt.predict(&dense)?];
    if let Some(deep) = &rankers.deep {
        let (history, search) = sequences(fd, case.user, &plays, t);
        let rows: Vec<edgerec::ranker::RankerRow> = vectors
            .iter()
            .map(|features| edgerec::ranker::RankerRow {
                features,
                history: &history,
                search: &search,
            })
            .collect();
        let batch = deep.contract().assemble(&rows)?;
        scores.push(deep.predict(&batch)?);
    }
    for (j, &i) in candidates.iter().enumerate() {
        if fd.world.media[fd.media_of[i as usize] as usize].added_time > t {
            for s in &mut scores {
                s[j] = -1.0;
            }
        }
    }
    Ok(scores)
}

/// A case's rows (each ranker's order, then a seeded shuffle) and its scored candidates.
fn case_answers(case: &Case, candidates: &[u32], scores: &[Vec<f32>], seed: u64) -> Scored {
    let t = case.time;
    let order = |scores: &[f32]| -> Answer {
        let mut k: Vec<usize> = (0..candidates.len()).collect();
        k.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        Answer {
            row: k.into_iter().map(|j| candidates[j]).collect(),
            auc: None,
        }
    };
    let shuffle: Vec<f32> = (0..candidates.len())
        .map(|j| unit(seed, case.user, candidates[j], t, 7 + j as u64) as f32)
        .collect();
    let mut answers: Vec<Answer> = scores.iter().map(|s| order(s)).collect();
    answers.push(order(&shuffle));
    let pairs = candidates
        .iter()
        .enumerate()
        .map(|(j, i)| Pair {
            scores: scores.iter().map(|s| s[j]).collect(),
            blend: -(j as f32),
            relevant: case.relevant.contains(i),
        })
        .collect();
    (answers, pairs)
}

/// Each ranker's pooled AUC and log-loss over the (case, candidate) pairs, beside the blend
/// order's AUC.
fn ranker_tests(names: &[&str], pairs: &[Pair]) -> Vec<RankerTest> {
    let labels: Vec<bool> = pairs.iter().map(|p| p.relevant).collect();
    let positives = labels.iter().filter(|&&l| l).count();
    let blend_order: Vec<f32> = pairs.iter().map(|p| p.blend).collect();
    let blend_order_auc = (!pairs.is_empty())
        .then(|| edgerec_rank::auc(&blend_order, &labels))
        .flatten();
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let scores: Vec<f32> = pairs.iter().map(|p| p.scores[k]).collect();
            RankerTest {
                system: name.to_string(),
                pairs: pairs.len(),
                positives,
                auc: (!pairs.is_empty())
                    .then(|| edgerec_rank::auc(&scores, &labels))
                    .flatten(),
                log_loss: edgerec_rank::log_loss(&scores, &labels, None),
                blend_order_auc,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::{data, ev};

    #[test]
    fn platform_counts_use_the_pipelines_window() {
        // Plays at −86400, −86399, −1, 0 relative to t: the 24 h window is [t − 86400, t − 1].
        let t = 10 * DAY;
        let counts = PlatformCounts {
            times: vec![vec![t - 8 * DAY, t - DAY, t - DAY + 1, t - 1, t, t + 5]],
        };
        let s = counts.stats(0, t);
        assert_eq!(s.plays_24h, 3);
        assert_eq!(s.plays_7d, 3);
        // One second later t − 86400 has left the window and t has entered it.
        assert_eq!(counts.stats(0, t + 1).plays_24h, 3);
        assert_eq!(counts.stats(0, t + 1).plays_7d, 4);
        assert_eq!(counts.stats(0, t - 7 * DAY + 1).plays_7d, 1);
        assert_eq!(counts.stats(5, t), MediaStats::default());
    }

    #[test]
    fn cuts_and_inner_splits_never_reach_past_a_users_cut() {
        // User 0: five titles, the last held out; user 1: two titles, the last held out.
        let d = data(
            vec![
                ev(0, 1, 10, 0),
                ev(0, 2, 20, 1),
                ev(1, 7, 25, 2),
                ev(0, 3, 30, 3),
                ev(0, 4, 40, 4),
                ev(1, 8, 45, 5),
                ev(0, 5, 50, 6),
            ],
            2,
        );
        let split = crate::split::leave_last_out(&d);
        let cuts = Cuts::new(&split, 2);
        assert!(cuts.per_user);
        assert_eq!((cuts.of(0), cuts.of(1)), (50, 45));
        let cfg = RankConfig {
            last_positives: 2,
            ..RankConfig::default()
        };
        let (inner, inner_cuts) = inner_split(&d, &split, &cuts, &cfg);
        // User 0's inner past ends before their last two past positives (times 30 and 40);
        // user 1 has one past positive: no inner test.
        assert_eq!(inner_cuts[0], 30);
        assert_eq!(inner_cuts[1], i64::MAX);
        assert!(
            inner
                .train
                .iter()
                .all(|e| e.time < inner_cuts[e.user as usize])
        );
        assert_eq!(inner.warm.len(), 1);
        assert_eq!(inner.warm[0].time, 30);
        assert_eq!(inner.warm[0].relevant, [3, 4].into());

        // A time cut: the window is the last `window_days` before it, for every user.
        let t = crate::split::temporal(&d, 0.5, 0);
        let cuts = Cuts::new(&t, 2);
        assert!(!cuts.per_user);
        assert_eq!(cuts.of(1), t.cut);
    }

    #[test]
    fn weights_follow_the_pipeline() {
        assert_eq!(weight(5_760), 1.6);
        assert_eq!(weight(0), 0.1);
        assert_eq!(weight(20 * 3_600), 4.0);
    }
}
