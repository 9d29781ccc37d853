//! Training every candidate source on a split's past and producing each user's rows.
//!
//! Sources see only the past: popularity is decayed to the split's cut, iALS and the two-tower
//! model train on past positives, and the content index's popularity prior and its weight
//! `beta` are fitted on the last tenth of the past. Users are served the way a device serves
//! them: the iALS vector is the core's fold-in of the user's own history, the two-tower vector
//! comes from the exported ONNX user tower run by tract, content profiles come from the core.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{Context as _, Result};
use edgerec::blend::{self, Source};
use edgerec::content::{ContentIndex, Onboarding};
use edgerec::features::Gender;
use edgerec::ials::Factors;
use edgerec::retrieval::ItemVectors;
use edgerec_data::schema::{Item, Search, User};
use edgerec_train::ials::{self, IalsConfig, IalsModel, Interactions};
use edgerec_twotower::{
    OnnxUserTower, TowerCatalog, TowerConfig, TowerExample, TwoTower, UserInput,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Event, WorldData};
use crate::split::{Case, Split};

/// Settings of every source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceConfig {
    /// Length of every candidate row.
    pub n: usize,
    /// Popularity half-life.
    pub half_life_days: f32,
    /// iALS hyper-parameters.
    pub ials: IalsConfig,
    /// Two-tower settings; `None` skips the model.
    pub tower: Option<TowerConfig>,
    /// Weight of each metadata facet in content profiles.
    pub facets: Vec<(String, f32)>,
    /// Actors per title in its profile.
    pub max_cast: usize,
    /// History weight `1 / (1 + decay · titles watched since)`.
    pub recency_decay: f32,
    /// Blend quotas for iALS, two-tower, content, popularity and neighbours (a recipe written
    /// before the neighbour source holds four: its quota is then 0).
    #[serde(deserialize_with = "five_quotas")]
    pub quotas: [u32; 5],
    /// Neighbours kept per title by the item-to-item source (0 leaves the source out).
    #[serde(default = "default_neighbours")]
    pub neighbours: usize,
    /// Shrinkage of the item-to-item cosine: `co-watches / (sqrt(n_i · n_j) + shrink)`, so
    /// that pairs seen by a handful of users do not rank first.
    #[serde(default = "default_shrink")]
    pub neighbour_shrink: f32,
    /// Titles a new user picks at onboarding (sizes the cold-start validation of `beta`).
    pub onboarding: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            n: 100,
            half_life_days: 30.0,
            ials: IalsConfig::default(),
            tower: Some(TowerConfig::default()),
            facets: [
                ("genre", 1.0),
                ("tag", 0.6),
                ("cast", 0.5),
                ("director", 0.8),
                ("lang", 0.8),
                ("era", 0.5),
            ]
            .into_iter()
            .map(|(f, w)| (f.to_string(), w))
            .collect(),
            max_cast: 5,
            recency_decay: 0.05,
            quotas: [4, 3, 2, 1, 2],
            neighbours: default_neighbours(),
            neighbour_shrink: default_shrink(),
            onboarding: 3,
        }
    }
}

fn default_neighbours() -> usize {
    50
}

fn default_shrink() -> f32 {
    10.0
}

/// Quota vectors of four (iALS, two-tower, content, popularity: recipes written before the
/// neighbour source) or five values, as five.
pub(crate) fn as_five(q: &[u32]) -> Option<[u32; 5]> {
    match *q {
        [a, b, c, d] => Some([a, b, c, d, 0]),
        [a, b, c, d, e] => Some([a, b, c, d, e]),
        _ => None,
    }
}

fn five_quotas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u32; 5], D::Error> {
    let v = Vec::<u32>::deserialize(d)?;
    as_five(&v).ok_or_else(|| serde::de::Error::custom(format!("{} quotas, 4 or 5", v.len())))
}

/// [`five_quotas`] for a list of quota vectors.
pub(crate) fn five_quota_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<[u32; 5]>, D::Error> {
    let v = Vec::<Vec<u32>>::deserialize(d)?;
    v.iter()
        .map(|q| {
            as_five(q)
                .ok_or_else(|| serde::de::Error::custom(format!("{} quotas, 4 or 5", q.len())))
        })
        .collect()
}

/// The item-to-item neighbour lists of `events` (positives): for every item its `k` most
/// similar by `co-watches / (sqrt(n_i · n_j) + shrink)` (cosine of the binary user vectors,
/// shrunk), best first, ties to the lower item. Cost O(Σ_users |items|² + items · k log k)
/// time, O(items · k) memory beside one dense row per thread.
pub fn neighbour_lists(
    events: &[Event],
    users: usize,
    items: usize,
    k: usize,
    shrink: f32,
) -> Vec<Vec<(u32, f32)>> {
    let mut by_user: Vec<Vec<u32>> = vec![Vec::new(); users];
    for e in events {
        by_user[e.user as usize].push(e.item);
    }
    let mut by_item: Vec<Vec<u32>> = vec![Vec::new(); items];
    let mut count = vec![0f32; items];
    for (u, list) in by_user.iter_mut().enumerate() {
        list.sort_unstable();
        list.dedup();
        for &i in list.iter() {
            by_item[i as usize].push(u as u32);
            count[i as usize] += 1.0;
        }
    }
    (0..items)
        .into_par_iter()
        .map_init(
            || vec![0f32; items],
            |co, i| {
                let mut touched: Vec<u32> = Vec::new();
                for &u in &by_item[i] {
                    for &j in &by_user[u as usize] {
                        if j as usize != i {
                            if co[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            co[j as usize] += 1.0;
                        }
                    }
                }
                let mut row: Vec<(u32, f32)> = touched
                    .iter()
                    .map(|&j| {
                        let c = std::mem::take(&mut co[j as usize]);
                        (j, c / ((count[i] * count[j as usize]).sqrt() + shrink))
                    })
                    .collect();
                row.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                row.truncate(k);
                row
            },
        )
        .collect()
}

/// Time-decayed popularity at `cut`: each past positive adds `0.5^((cut − t) / half-life)`.
/// The one popularity definition: the evaluated popularity source ranks by it, the content
/// prior is [`prior`] of it, and the shipped `POPL` section is it divided by its largest value
/// ([`edgerec::bundle::Popularity::normalised`]).
pub fn popularity(events: &[Event], items: usize, cut: i64, half_life_days: f32) -> Vec<f32> {
    let half_life = f64::from(half_life_days) * 86_400.0;
    let mut pop = vec![0f64; items];
    for e in events {
        let age = (cut - e.time).max(0) as f64;
        pop[e.item as usize] += 0.5f64.powf(age / half_life);
    }
    pop.into_iter().map(|p| p as f32).collect()
}

/// `log(1 + p) / log(1 + max p)`: a popularity prior in [0, 1].
pub fn prior(pop: &[f32]) -> Vec<f32> {
    let max = pop.iter().copied().fold(0f32, f32::max);
    if max <= 0.0 {
        return vec![0.0; pop.len()];
    }
    pop.iter()
        .map(|p| (p.ln_1p() / max.ln_1p()).clamp(0.0, 1.0))
        .collect()
}

/// Each item's content tokens (see [`edgerec::content::item_tokens`]).
pub fn item_tokens(items: &[Item], max_cast: usize) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|it| {
            let year = edgerec::calendar::civil_from_days(it.release_time.div_euclid(86_400)).year;
            edgerec::content::item_tokens(
                &it.genres,
                &it.tags,
                &it.actors,
                &it.directors,
                &it.original_language,
                Some(year),
                max_cast,
            )
        })
        .collect()
}

/// A user's request: what the device knows.
struct Request<'a> {
    user: &'a User,
    /// Items in time order (the past, or onboarding picks).
    history: Vec<u32>,
    searches: Vec<&'a Search>,
    time: i64,
}

fn history_weights(history: &[u32], decay: f32) -> Vec<(usize, f32)> {
    edgerec::content::recency_weights(history.iter().map(|&i| i as usize), decay)
}

/// The user tower's dense inputs for `user` at `time`: [`edgerec::tower::two_tower_dense`],
/// the function the device runs, with the schema's gender code parsed by the core.
pub(crate) fn tower_dense(user: &User, time: i64) -> Vec<f32> {
    let gender = Gender::from_code(&user.gender).unwrap_or(Gender::Unknown);
    edgerec::tower::two_tower_dense(user.age, gender, user.utc_offset_minutes, time)
}

/// The trained two-tower model and what its inputs need.
pub struct Tower {
    /// The trained model (item embeddings, training losses).
    pub model: TwoTower,
    /// The exported user tower, run by tract.
    pub onnx: OnnxUserTower,
    /// Size of the exported user tower.
    pub onnx_bytes: usize,
    search_vocab: HashMap<String, u32>,
    max_searches: usize,
}

impl Tower {
    /// The search-token vocabulary the user tower was trained with, tokens in id order.
    pub fn search_vocab(&self) -> Vec<String> {
        let mut v: Vec<(&String, u32)> = self.search_vocab.iter().map(|(t, &i)| (t, i)).collect();
        v.sort_by_key(|p| p.1);
        v.into_iter().map(|p| p.0.clone()).collect()
    }

    /// The user tower's input for `user` at `time`: `history` (item indices, oldest first),
    /// the known tokens of `searches` (oldest first) and the dense inputs at `time`.
    pub fn user_input<'a>(
        &self,
        user: &User,
        history: Vec<u32>,
        searches: impl IntoIterator<Item = &'a Search>,
        time: i64,
    ) -> UserInput {
        UserInput {
            history,
            searches: search_token_ids(&self.search_vocab, searches, self.max_searches),
            dense: tower_dense(user, time),
        }
    }

    fn input(&self, r: &Request) -> UserInput {
        self.user_input(
            r.user,
            r.history.clone(),
            r.searches.iter().copied(),
            r.time,
        )
    }
}

/// Every source trained on one split.
pub struct Trained {
    /// Decayed popularity at the cut.
    pub popularity: Vec<f32>,
    /// iALS.
    pub ials: IalsModel,
    /// The content index with its fitted `beta`.
    pub content: ContentIndex,
    /// The two-tower model, when configured.
    pub tower: Option<Tower>,
    /// Seconds spent fitting each source.
    pub fit_seconds: Vec<(String, f64)>,
    /// The content prior's fitted weights (the index carries `beta.warm`).
    pub beta: BetaFit,
    /// The item-to-item neighbour lists as the device gets them (`NBRS`, quotas from the
    /// config), when configured.
    pub neighbours: Option<edgerec::bundle::Neighbours>,
}

fn searches_before(data: &WorldData, user: u32, time: i64) -> Vec<&Search> {
    data.searches[user as usize]
        .iter()
        .take_while(|s| s.time < time)
        .collect()
}

/// Adds the tokens of `searches` missing from `vocab`, numbered in order of first appearance.
pub(crate) fn add_search_tokens<'a>(
    vocab: &mut HashMap<String, u32>,
    searches: impl IntoIterator<Item = &'a Search>,
) {
    for s in searches {
        for t in &s.tokens {
            let n = vocab.len() as u32;
            vocab.entry(t.clone()).or_insert(n);
        }
    }
}

/// The ids of the last `max` tokens of `searches` (oldest first) that `vocab` knows.
fn search_token_ids<'a>(
    vocab: &HashMap<String, u32>,
    searches: impl IntoIterator<Item = &'a Search>,
    max: usize,
) -> Vec<u32> {
    let ids: Vec<u32> = searches
        .into_iter()
        .flat_map(|s| s.tokens.iter())
        .filter_map(|t| vocab.get(t).copied())
        .collect();
    ids[ids.len().saturating_sub(max)..].to_vec()
}

/// The training example of `user` watching `positive` at `time`: the user's state just before
/// it (the last `max_history` of `history`, the search tokens before `time` of `searches`, the
/// user's searches in time order, and the dense inputs at `time`). The in-memory and the
/// streamed trainers build their examples with it.
pub(crate) fn tower_example(
    user: &User,
    history: &[u32],
    searches: &[Search],
    time: i64,
    positive: u32,
    vocab: &HashMap<String, u32>,
    config: &TowerConfig,
) -> TowerExample {
    let skip = history.len().saturating_sub(config.max_history);
    TowerExample {
        history: history[skip..].to_vec(),
        searches: search_token_ids(
            vocab,
            searches.iter().take_while(|s| s.time < time),
            config.max_searches,
        ),
        dense: tower_dense(user, time),
        positive,
        weight: 1.0,
    }
}

/// The catalog side of the two-tower model: the items' content tokens as dense ids.
pub(crate) fn tower_catalog(tokens: &[Vec<String>], search_tokens: usize) -> TowerCatalog {
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let item_tokens: Vec<Vec<u32>> = tokens
        .iter()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let n = vocab.len() as u32;
                    *vocab.entry(t.clone()).or_insert(n)
                })
                .collect()
        })
        .collect();
    TowerCatalog {
        n_items: tokens.len(),
        item_tokens,
        n_content_tokens: vocab.len().max(1),
        n_search_tokens: search_tokens.max(1),
        n_dense: edgerec::tower::TWO_TOWER_DENSE,
    }
}

/// A trained model with its exported user tower, loaded the way the device loads it.
pub(crate) fn finish_tower(
    model: TwoTower,
    search_vocab: HashMap<String, u32>,
    max_searches: usize,
) -> Result<Tower> {
    let bytes = model
        .user_tower_onnx()
        .context("exporting the user tower")?;
    let onnx = OnnxUserTower::load(&bytes).context("loading the exported user tower")?;
    Ok(Tower {
        model,
        onnx,
        onnx_bytes: bytes.len(),
        search_vocab,
        max_searches,
    })
}

/// The in-memory trainer's examples: one per positive of `train` (in its order), with each
/// user's earlier positives of `train` as history.
pub(crate) fn tower_examples(
    data: &WorldData,
    train: &[Event],
    search_vocab: &HashMap<String, u32>,
    config: &TowerConfig,
) -> Vec<TowerExample> {
    let mut examples = Vec::with_capacity(train.len());
    let mut history: Vec<Vec<u32>> = vec![Vec::new(); data.users.len()];
    for e in train {
        let u = e.user as usize;
        examples.push(tower_example(
            &data.users[u],
            &history[u],
            &data.searches[u],
            e.time,
            e.item,
            search_vocab,
            config,
        ));
        history[u].push(e.item);
    }
    examples
}

fn train_tower(
    data: &WorldData,
    split: &Split,
    tokens: &[Vec<String>],
    config: &TowerConfig,
) -> Result<Tower> {
    let mut search_vocab: HashMap<String, u32> = HashMap::new();
    add_search_tokens(
        &mut search_vocab,
        data.searches
            .iter()
            .flatten()
            .filter(|s| s.time < split.cut),
    );
    let catalog = tower_catalog(tokens, search_vocab.len());
    let examples = tower_examples(data, &split.train, &search_vocab, config);
    let model = TwoTower::train_streaming(&catalog, &examples, config)
        .context("training the two-tower model")?;
    finish_tower(model, search_vocab, config.max_searches)
}

/// The best `beta` of a grid by mean validation NDCG@10, and the curve.
fn best_beta(
    index: &ContentIndex,
    cases: &[(Vec<u32>, &HashSet<u32>)],
    decay: f32,
) -> (f32, Vec<(f32, f64)>) {
    let grid = [0.0f32, 0.1, 0.25, 0.5, 0.75, 0.9, 0.97];
    let per_case: Vec<Vec<f64>> = cases
        .par_iter()
        .map(|(history, relevant)| {
            let profile = index.profile(&history_weights(history, decay), &Onboarding::default());
            let cos = index.scores_with_beta(&profile, 0.0);
            let seen: HashSet<u32> = history.iter().copied().collect();
            grid.iter()
                .map(|&b| {
                    let s: Vec<f32> = cos
                        .iter()
                        .zip(index.prior())
                        .map(|(c, p)| (1.0 - b) * c + b * p)
                        .collect();
                    let row: Vec<u32> = blend::top_n(&s, 10, |i| seen.contains(&(i as u32)))
                        .into_iter()
                        .map(|p| p.0 as u32)
                        .collect();
                    edgerec_eval::ndcg(&row, relevant, 10)
                })
                .collect()
        })
        .collect();
    let curve: Vec<(f32, f64)> = grid
        .iter()
        .enumerate()
        .map(|(k, &b)| {
            let m = per_case.iter().map(|v| v[k]).sum::<f64>() / per_case.len().max(1) as f64;
            (b, m)
        })
        .collect();
    let best = curve
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.total_cmp(&a.0)))
        .map_or(0.5, |p| p.0);
    (best, curve)
}

/// Fitted weights of the content prior: for users with a past, and for onboarding-sized
/// profiles (new users).
pub struct BetaFit {
    /// Users with a past.
    pub warm: f32,
    /// Validation NDCG@10 by beta, users with a past.
    pub warm_curve: Vec<(f32, f64)>,
    /// New users with onboarding picks.
    pub cold: f32,
    /// Validation NDCG@10 by beta, new users (or, when the validation period has fewer than
    /// 30, users with a past treated as new).
    pub cold_curve: Vec<(f32, f64)>,
}

/// Picks the content prior's weights on the last tenth of the past (an inner temporal split),
/// by NDCG@10.
fn fit_beta(
    data: &WorldData,
    split: &Split,
    tokens: &[Vec<String>],
    config: &SourceConfig,
    onboarding: usize,
) -> Result<BetaFit> {
    let inner = WorldData {
        dir: data.dir.clone(),
        items: Vec::new(),
        users: data.users.clone(),
        events: split.train.clone(),
        plays: Vec::new(),
        searches: Vec::new(),
    };
    let val = crate::split::temporal(&inner, 0.9, onboarding);
    let pop = popularity(&val.train, data.items.len(), val.cut, config.half_life_days);
    let facets: Vec<(&str, f32)> = config
        .facets
        .iter()
        .map(|(f, w)| (f.as_str(), *w))
        .collect();
    let index = ContentIndex::build(tokens, &facets, prior(&pop), 0.0)?;
    let histories = val.histories(data.users.len());
    let warm: Vec<(Vec<u32>, &HashSet<u32>)> = val
        .warm
        .iter()
        .take(1_000)
        .map(|c| {
            (
                histories[c.user as usize].iter().map(|p| p.0).collect(),
                &c.relevant,
            )
        })
        .collect();
    // New users of the validation period, or (when there are too few) users with a past
    // treated as new.
    let new_users = if val.cold.len() >= 30 {
        &val.cold
    } else {
        &val.as_new
    };
    let cold: Vec<(Vec<u32>, &HashSet<u32>)> = new_users
        .iter()
        .take(1_000)
        .map(|c| (c.onboarding.clone(), &c.relevant))
        .collect();
    let (w, warm_curve) = best_beta(&index, &warm, config.recency_decay);
    let (c, cold_curve) = best_beta(&index, &cold, config.recency_decay);
    Ok(BetaFit {
        warm: w,
        warm_curve,
        cold: c,
        cold_curve,
    })
}

/// Trains every source on the split's past.
pub fn train(data: &WorldData, split: &Split, config: &SourceConfig) -> Result<Trained> {
    let items = data.items.len();
    let mut fit_seconds = Vec::new();

    let t = Instant::now();
    let pop = popularity(&split.train, items, split.cut, config.half_life_days);
    fit_seconds.push(("popularity".to_string(), t.elapsed().as_secs_f64()));

    let triples: Vec<(u32, u32, f32)> = split.train.iter().map(|e| (e.user, e.item, 1.0)).collect();
    let inter = Interactions::from_triples(data.users.len(), items, &triples)?;
    // Timed like the peers' fit: the sparse matrix is built beforehand.
    let t = Instant::now();
    let ials = ials::try_train(&inter, &config.ials)?;
    fit_seconds.push(("ials".to_string(), t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let tokens = item_tokens(&data.items, config.max_cast);
    let beta = fit_beta(data, split, &tokens, config, config.onboarding)?;
    let facets: Vec<(&str, f32)> = config
        .facets
        .iter()
        .map(|(f, w)| (f.as_str(), *w))
        .collect();
    let content = ContentIndex::build(&tokens, &facets, prior(&pop), beta.warm)?;
    fit_seconds.push(("content".to_string(), t.elapsed().as_secs_f64()));

    let tower = match &config.tower {
        Some(tc) => {
            let t = Instant::now();
            let tower = train_tower(data, split, &tokens, tc)?;
            fit_seconds.push(("two-tower".to_string(), t.elapsed().as_secs_f64()));
            Some(tower)
        }
        None => None,
    };
    let neighbours = if config.neighbours > 0 {
        let t = Instant::now();
        let lists = neighbour_lists(
            &split.train,
            data.users.len(),
            items,
            config
                .neighbours
                .min(edgerec::bundle::neighbours::MAX_NEIGHBOURS),
            config.neighbour_shrink,
        );
        let nb = edgerec::bundle::Neighbours::new(
            &lists,
            config.quotas[4],
            config.quotas[4],
            config.recency_decay,
        )
        .context("packing the neighbour lists")?;
        fit_seconds.push(("neighbours".to_string(), t.elapsed().as_secs_f64()));
        Some(nb)
    } else {
        None
    };
    Ok(Trained {
        popularity: pop,
        ials,
        content,
        tower,
        fit_seconds,
        beta,
        neighbours,
    })
}

/// The blend's rows for `split`'s warm cases, in order, from every source trained on the
/// split's past: the first stage's candidates the second stage learns to order when a world
/// has no labelled negative (the `blend_rows` of [`crate::ranking::train`]).
pub fn blend_rows(data: &WorldData, split: &Split, config: &SourceConfig) -> Result<Vec<Answer>> {
    let trained = train(data, split, config)
        .with_context(|| format!("training the sources on {}", split.name))?;
    let systems = answer(data, split, &trained, &split.warm, config, None)?;
    Ok(systems
        .into_iter()
        .find(|(n, _)| n == "blend")
        .map(|p| p.1)
        .unwrap_or_default())
}

/// Scores every item for a case from the world's ground truth (the oracle).
pub type Oracle<'a> = dyn Fn(&Case, &[u32]) -> Vec<f32> + Sync + 'a;

/// One system's answer for one user: the top-N row and, for scoring systems, the AUC of the
/// full ranking.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Items, best first.
    pub row: Vec<u32>,
    /// AUC over every unseen item (None for list-only systems such as the blend).
    pub auc: Option<f64>,
}

fn rank_all(scores: &[f32], seen: &HashSet<u32>, n: usize, relevant: &HashSet<u32>) -> Answer {
    let mut order: Vec<u32> = (0..scores.len() as u32)
        .filter(|i| !seen.contains(i) && !scores[*i as usize].is_nan())
        .collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    let auc = edgerec_eval::auc(&order, relevant);
    order.truncate(n);
    Answer { row: order, auc }
}

/// What every case of one [`answer`] call shares: the trained sources, their int8 copies
/// (what the device ships by default: `bundle build --int8`) and the settings.
struct Scorer<'a> {
    trained: &'a Trained,
    config: &'a SourceConfig,
    ials_int8: ItemVectors,
    tower_int8: Option<ItemVectors>,
}

impl Scorer<'_> {
    /// iALS: the fold-in of the history against the f32 factors (zeros when nothing is known).
    fn ials(&self, history: &[u32]) -> Vec<f32> {
        let y = self.trained.ials.item_factors();
        let known: Vec<(usize, f32)> = history.iter().map(|&i| (i as usize, 1.0)).collect();
        match self.trained.ials.fold_in(&known) {
            Some(x) => (0..y.rows())
                .map(|i| y.row(i).iter().zip(&x).map(|(a, b)| a * b).sum())
                .collect(),
            None => vec![0.0; y.rows()],
        }
    }

    /// iALS as shipped: fold-in over the dequantised int8 rows, scores from the int8 scan.
    fn ials_int8(&self, history: &[u32]) -> Vec<f32> {
        let q = &self.ials_int8;
        let cfg = self.trained.ials.config();
        let known: Vec<(usize, f32)> = history.iter().map(|&i| (i as usize, 1.0)).collect();
        edgerec::ials::fold_in_rows(
            q.dim(),
            q.rows(),
            |i| q.row(i),
            self.trained.ials.gram(),
            &known,
            cfg.alpha,
            cfg.lambda,
        )
        .and_then(|x| q.scores(&x).ok())
        .unwrap_or_else(|| vec![0.0; q.rows()])
    }

    /// Content: the recency-weighted profile; onboarding-sized profiles of new users lean on
    /// the prior with their own weight.
    fn content(&self, history: &[u32], new_user: bool) -> Vec<f32> {
        let c = &self.trained.content;
        let profile = c.profile(
            &history_weights(history, self.config.recency_decay),
            &Onboarding::default(),
        );
        let beta = if new_user {
            self.trained.beta.cold
        } else {
            self.trained.beta.warm
        };
        c.scores_with_beta(&profile, beta)
    }

    /// Two-tower scores of user vector `u` against the f32 embeddings and the int8 copy.
    fn two_tower(&self, u: &[f32]) -> Option<(Vec<f32>, Option<Vec<f32>>)> {
        let t = self.trained.tower.as_ref()?;
        let scores = t
            .model
            .item_embeddings()
            .chunks_exact(u.len())
            .map(|row| row.iter().zip(u).map(|(a, b)| a * b).sum())
            .collect();
        let int8 = self
            .tower_int8
            .as_ref()
            .map(|q| q.scores(u).unwrap_or_else(|_| vec![0.0; q.rows()]));
        Some((scores, int8))
    }
}

/// What the device knows of each case's user at the request: the past (or, for a new user,
/// the onboarding picks), the searches before it, and the time.
fn requests<'a>(data: &'a WorldData, split: &Split, cases: &[Case]) -> Vec<Request<'a>> {
    let histories = split.histories(data.users.len());
    cases
        .iter()
        .map(|c| Request {
            user: &data.users[c.user as usize],
            history: if c.onboarding.is_empty() {
                histories[c.user as usize].iter().map(|p| p.0).collect()
            } else {
                c.onboarding.clone()
            },
            searches: searches_before(data, c.user, c.time),
            time: c.time,
        })
        .collect()
}

/// The two-tower user vectors of `requests`, in batches through the exported ONNX user tower.
fn tower_vectors(trained: &Trained, requests: &[Request]) -> Result<Option<Vec<Vec<f32>>>> {
    let Some(t) = &trained.tower else {
        return Ok(None);
    };
    let dim = t.onnx.dim();
    let mut out = Vec::with_capacity(requests.len());
    for chunk in requests.chunks(256) {
        let inputs: Vec<UserInput> = chunk.iter().map(|r| t.input(r)).collect();
        let v = t.onnx.embed(&inputs).context("running the user tower")?;
        out.extend(v.chunks_exact(dim).map(<[f32]>::to_vec));
    }
    Ok(Some(out))
}

/// The int8 copies of the iALS factors and the two-tower embeddings.
fn int8_vectors(trained: &Trained) -> Result<(ItemVectors, Option<ItemVectors>)> {
    let ials = ItemVectors::F32(trained.ials.item_factors().clone())
        .quantized()
        .context("quantising the iALS factors")?;
    let tower = match &trained.tower {
        Some(t) => {
            let f = Factors::new(t.onnx.dim(), t.model.item_embeddings().to_vec())
                .context("two-tower embeddings")?;
            Some(
                ItemVectors::F32(f)
                    .quantized()
                    .context("quantising the embeddings")?,
            )
        }
        None => None,
    };
    Ok((ials, tower))
}

/// The sources' rows blended in the fixed source order with the configured quotas.
fn blend_lists(lists: &[(Source, Vec<usize>)], config: &SourceConfig) -> Answer {
    let order = Source::ALL;
    let mut ordered: Vec<(Source, &[usize])> = Vec::new();
    let mut quotas = Vec::new();
    for (q, s) in order.iter().enumerate() {
        if let Some((_, l)) = lists.iter().find(|(t, _)| t == s) {
            ordered.push((*s, l));
            quotas.push(config.quotas[q]);
        }
    }
    let row = blend::blend(&ordered, &quotas, config.n)
        .into_iter()
        .map(|c| c.item as u32)
        .collect();
    Answer { row, auc: None }
}

/// Every system's answer for one case, in report order.
fn case_answers(
    scorer: &Scorer<'_>,
    case: &Case,
    req: &Request,
    tower: Option<&Vec<f32>>,
    oracle: Option<&Oracle<'_>>,
) -> Vec<(String, Answer)> {
    let n = scorer.config.n;
    let seen: HashSet<u32> = req.history.iter().copied().collect();
    let mut out: Vec<(String, Answer)> = Vec::new();
    let mut lists: Vec<(Source, Vec<usize>)> = Vec::new();
    let mut push = |name: &str, source: Option<Source>, scores: &[f32]| {
        let a = rank_all(scores, &seen, n, &case.relevant);
        if let Some(s) = source {
            lists.push((s, a.row.iter().map(|&i| i as usize).collect()));
        }
        out.push((name.to_string(), a));
    };
    push(
        "popularity",
        Some(Source::Popularity),
        &scorer.trained.popularity,
    );
    push(
        "ials",
        Some(Source::Collaborative),
        &scorer.ials(&req.history),
    );
    push("ials-int8", None, &scorer.ials_int8(&req.history));
    let new_user = !case.onboarding.is_empty();
    push(
        "content",
        Some(Source::Content),
        &scorer.content(&req.history, new_user),
    );
    if let Some((scores, int8)) = tower.and_then(|u| scorer.two_tower(u)) {
        push("two-tower", Some(Source::TwoTower), &scores);
        if let Some(q) = int8 {
            push("two-tower-int8", None, &q);
        }
    }
    if let Some(nb) = &scorer.trained.neighbours {
        // As the device scores it: the history recency-weighted, onboarding picks weight 1.
        let known = if new_user {
            req.history.iter().map(|&i| (i as usize, 1.0)).collect()
        } else {
            history_weights(&req.history, nb.recency_decay())
        };
        let scores: Vec<f32> = nb
            .scores(&known)
            .into_iter()
            .map(|x| if x > 0.0 { x } else { f32::NAN })
            .collect();
        push("neighbours", Some(Source::Neighbours), &scores);
    }
    out.push(("blend".to_string(), blend_lists(&lists, scorer.config)));
    if let Some(f) = oracle {
        let scores = f(case, &req.history);
        out.push((
            "oracle".to_string(),
            rank_all(&scores, &seen, n, &case.relevant),
        ));
    }
    out
}

/// Every system's answers for `cases`, keyed by system name; the order of systems is the
/// report's. `oracle` scores items for a case when the world has a ground truth.
pub fn answer(
    data: &WorldData,
    split: &Split,
    trained: &Trained,
    cases: &[Case],
    config: &SourceConfig,
    oracle: Option<&Oracle<'_>>,
) -> Result<Vec<(String, Vec<Answer>)>> {
    let requests = requests(data, split, cases);
    let tower_vectors = tower_vectors(trained, &requests)?;
    let (ials_int8, tower_int8) = int8_vectors(trained)?;
    let scorer = Scorer {
        trained,
        config,
        ials_int8,
        tower_int8,
    };
    let per_case: Vec<Vec<(String, Answer)>> = cases
        .par_iter()
        .zip(&requests)
        .enumerate()
        .map(|(k, (case, req))| {
            let tower = tower_vectors.as_ref().map(|v| &v[k]);
            case_answers(&scorer, case, req, tower, oracle)
        })
        .collect();
    // Transpose to system → answers.
    let mut systems: Vec<(String, Vec<Answer>)> = Vec::new();
    for row in per_case {
        for (name, a) in row {
            match systems.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(a),
                None => systems.push((name, vec![a])),
            }
        }
    }
    Ok(systems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_support::ev;

    #[test]
    fn neighbour_lists_rank_co_watches_by_shrunk_cosine() {
        // Users 0-2 watch items 0 and 1; user 3 watches 0 and 2; user 4 watches 2 twice.
        let events = vec![
            ev(0, 0, 1, 0),
            ev(0, 1, 2, 1),
            ev(1, 0, 3, 2),
            ev(1, 1, 4, 3),
            ev(2, 0, 5, 4),
            ev(2, 1, 6, 5),
            ev(3, 0, 7, 6),
            ev(3, 2, 8, 7),
            ev(4, 2, 9, 8),
            ev(4, 2, 10, 9),
        ];
        let lists = neighbour_lists(&events, 5, 4, 10, 1.0);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        // n = (4, 3, 2, 0); co(0,1) = 3, co(0,2) = 1, repeats count once.
        assert_eq!(lists[0].iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!(close(lists[0][0].1, 3.0 / (12f32.sqrt() + 1.0)));
        assert!(close(lists[0][1].1, 1.0 / (8f32.sqrt() + 1.0)));
        assert_eq!(lists[1].len(), 1);
        assert_eq!(lists[2].iter().map(|x| x.0).collect::<Vec<_>>(), vec![0]);
        assert!(lists[3].is_empty(), "an unwatched title has no neighbours");
        // k truncates, best first; the lists pack into NBRS.
        let top1 = neighbour_lists(&events, 5, 4, 1, 1.0);
        assert_eq!(top1[0], vec![lists[0][0]]);
        assert!(edgerec::bundle::Neighbours::new(&lists, 1, 1, 0.05).is_ok());
    }

    #[test]
    fn recipes_with_four_quotas_still_read() {
        // A recipe written before the neighbour source: four quotas, no neighbour settings.
        let mut old = serde_json::to_value(SourceConfig::default()).unwrap();
        let o = old.as_object_mut().unwrap();
        o.insert("quotas".into(), serde_json::json!([4, 3, 2, 1]));
        o.remove("neighbours");
        o.remove("neighbour_shrink");
        let read: SourceConfig = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(read.quotas, [4, 3, 2, 1, 0]);
        assert_eq!(read.neighbours, 50);
        old["quotas"] = serde_json::json!([1, 2, 3]);
        assert!(serde_json::from_value::<SourceConfig>(old).is_err());
    }
}
