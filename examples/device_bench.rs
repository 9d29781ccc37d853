//! Device pipeline benchmark (not a test): the whole [`Recommender::recommend_row`] natively,
//! stage by stage, on a synthetic 20,000-title bundle; int8 against f32 item vectors (bytes,
//! rows, retrieval quality); flat scans against HNSW at 100k and 1M items. Speed is reported,
//! never asserted.
//!
//! ```text
//! cargo run --release -p edgerec --example device_bench -- <out dir> [--no-1m]
//! cargo run -p edgerec --example device_bench -- <out dir> --bundle-only   # the files below only
//! bash scripts/bench-device.sh        # this, then the same requests in wasm (bench/device.mjs)
//! ```
//!
//! **The bundle** (seeded, so every run builds the same bytes): 20,000 titles over 20 genres,
//! drawn from 48 planted taste clusters of unequal size, with Zipf-like popularity;
//!
//! * `FACT`: iALS factors, dim 64: a title's row is its cluster's centre plus noise, scaled
//!   to a norm that grows with its popularity (0.3–2.5), as trained iALS rows do; the Gram
//!   matrix is computed from them (alpha 20, lambda 0.1);
//! * `TWRT`: two-tower item embeddings, dim 32, unit rows (cluster centre plus noise), and a
//!   real user tower written with `edgerec::onnx::build` in the trainer's graph shape (mean of
//!   history rows ‖ mean of search rows ‖ 7 dense → Gemm 71×64 → Relu → Gemm 64×32 → L2 norm),
//!   whose history table is the item embeddings, so the tower's output points at the user's
//!   clusters (weights ≈ an identity through the Relu pair, plus seeded noise);
//! * `CONT` over genre, tag, cast, director, language and era tokens; `POPL`; `QUOT` 3:2:2:1;
//! * `FEAT` over synthetic vocabularies (300 tags, 8,000 people, 40 distributors, 8
//!   languages, 7 countries of the holiday calendar), `MDIA` for every title (kind, series,
//!   duration, genres, tags, cast, dates, maturity, rating, revenue, platform counts);
//! * `RANK`: a logistic regression over all the dense features (`Gemm` + `Sigmoid`, as the
//!   project's exporter writes it; hand-set weights on the features a trained model leans on,
//!   seeded small weights on the rest), so the ranking stage scores 500 real candidates;
//! * `SERV`: 500 candidates, rows of 10, fatigue after 3 impressions, λ 0.7.
//!
//! It is written in two variants, f32 (`FACT`/`TWRT` v1) and int8 (v2).
//!
//! **The users**: 200 seeded [`UserState`]s: 90% with 20–300 finished plays (log-uniform) over
//! the past months, mostly from 1–3 taste clusters, plus unfinished plays, impressions (some
//! titles shown often enough to be fatigued), profile settings (age, gender, country,
//! language, some maturity limits) and for some a few search tokens; 10% new users with only
//! onboarding picks (genres, sometimes titles). Each request has its own device and time.
//!
//! **What it prints**
//!
//! 1. native `recommend_row` per stage: the median over every request of 5 timed passes (after
//!    one warm-up pass) for each bundle; each stage's median is taken on its own, so the
//!    stages need not add up to the total's median;
//! 2. int8 vs f32 on the same bundle: `FACT`/`TWRT` payload bytes, how often the int8 bundle's
//!    row equals the f32 bundle's (exact match and top-10 overlap), and NDCG@10 of the iALS
//!    candidates (fold-in + flat scan, the device's code) against each user's planted
//!    held-out "future" titles (10 titles from the same taste clusters, not in the history),
//!    for 1,000 other users, with int8 and with f32 factors; plus the int8 scan's agreement
//!    with the f32 scan's top 10 (trivially near 1);
//! 3. flat f32 vs flat int8 vs HNSW over inner-product-ranked rows of dim 64 with varied
//!    norms (the iALS case, graph over the augmented rows) at 100k and 1M rows: build time,
//!    bytes, median top-10 query time and recall@10 against the exact scan. A graph beyond
//!    [`HnswIndex::build`]'s size bound ([`edgerec::hnsw::MAX_GRAPH_BYTES`], 1 GiB: about
//!    1.5M rows at dim 64) is not built; the example then prints the library's refusal
//!    instead of a number.
//!
//! **What it writes** into the out dir, for `bench/device.mjs`: `bundle-20k.edgerec` (the
//! int8 bundle) and `states.json`: every state as hex bytes (`UserState::export`), its request
//! options as `recommendRow` takes them, the native row's item ids, and the native medians
//! (`null` with `--bundle-only`, which writes these two files and stops: the worker test in
//! headless Chromium replays them, tests/js/worker-browser.test.mjs).
//!
//! Profiles: `--release` builds the core at opt-level 3 and the dependencies (tract,
//! instant-distance) at opt-level `z` with LTO, the settings of the wasm build, so native and
//! wasm run the same code at the same optimisation; the dev profile (opt-level 2, debug
//! assertions on) also works and says so in its output.

mod common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Rng, f32_top_k, median_time};
use edgerec::Recommender;
use edgerec::blend::Source;
use edgerec::bundle::{
    BundleContents, ContentModel, FeatureContract, IalsFactors, MediaTable, Meta, Popularity,
    Quotas, RankerModel, ServingSettings, TwoTowerModel,
};
use edgerec::catalog::{Catalog, Item};
use edgerec::content::{ContentIndex, item_tokens};
use edgerec::context::{Context, Device};
use edgerec::features::{
    FeatureConfig, FeatureSpace, Gender, Maturity, Media, MediaKind, MediaStats, ReleaseType,
    Vocabularies, Vocabulary,
};
use edgerec::hnsw::{HnswConfig, HnswIndex, MAX_GRAPH_BYTES};
use edgerec::ials::Factors;
use edgerec::onnx::ElemType;
use edgerec::onnx::build::{Dim, GraphBuilder, encode, model};
use edgerec::ranker::RankerContract;
use edgerec::rerank::RerankSettings;
use edgerec::retrieval::{IndexChoice, InnerProductGraph, ItemVectors};
use edgerec::stages::candidates::{CandidateRequest, candidates};
use edgerec::state::{Progress, UserState};
use edgerec::tower;
use edgerec::tower::{TWO_TOWER_DENSE, TWO_TOWER_DENSE_FEATURES};
use edgerec::{RowRequest, Timings};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SEED: u64 = 0xDE71_CE20_0000_0001;
const TITLES: usize = 20_000;
const IALS_DIM: usize = 64;
const TT_DIM: usize = 32;
const CLUSTERS: usize = 48;
const CANDIDATES: usize = 500;
const ROW_K: usize = 10;
const USERS: usize = 200;
const EVAL_USERS: usize = 1_000;
const HELD_OUT: usize = 10;
const PASSES: usize = 5;
/// 2025-11-24 16:00 UTC: the bundle's time; requests fall in the week after it.
const NOW: i64 = 1_764_000_000;
const DAY: i64 = 86_400;
const TAGS: usize = 300;
const PEOPLE: usize = 8_000;
const DISTRIBUTORS: usize = 40;
const SEARCH_TOKENS: usize = 200;
const MAX_HISTORY: usize = 50;
const MAX_SEARCHES: usize = 20;

const GENRES: [&str; 20] = [
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science Fiction",
    "Thriller",
    "War",
    "Western",
    "Reality",
    "Sport",
];
const LANGUAGES: [&str; 8] = ["en", "es", "fr", "de", "ja", "ko", "hi", "pt"];
/// Country, its usual language, UTC offset in minutes (countries of the holiday calendar).
const COUNTRIES: [(&str, &str, i32); 7] = [
    ("US", "en", -300),
    ("GB", "en", 0),
    ("DE", "de", 60),
    ("FR", "fr", 60),
    ("BR", "pt", -180),
    ("IN", "hi", 330),
    ("JP", "ja", 540),
];
const ADJECTIVES: [&str; 16] = [
    "Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Endless", "Quiet", "Wild",
    "Frozen", "Lost", "Burning", "Distant", "Little", "Secret", "Electric",
];
const NOUNS: [&str; 16] = [
    "Harbor", "Kingdom", "Summer", "River", "Garden", "Signal", "Frontier", "Night", "Orchard",
    "Empire", "Voyage", "Letter", "Mountain", "City", "Promise", "Machine",
];

// ---- random helpers ---------------------------------------------------------------------------

/// Uniform in [0, 1).
fn uniform(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in 0..n.
fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Running sums of `weights`, for [`pick`].
fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .into_iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

/// An index drawn in proportion to the weights behind `cum`.
fn pick(rng: &mut Rng, cum: &[f64]) -> usize {
    let x = uniform(rng) * cum[cum.len() - 1];
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

/// `n` distinct ids, 70% from the cluster's `pool`, the rest from `1..=size`.
fn from_pool(rng: &mut Rng, pool: &[u32], n: usize, size: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for _ in 0..n {
        let x = if uniform(rng) < 0.7 {
            pool[below(rng, pool.len())]
        } else {
            1 + below(rng, size) as u32
        };
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---- the synthetic catalog and bundle ---------------------------------------------------------

struct Cluster {
    ials: Vec<f32>,
    tower: Vec<f32>,
    genres: [u16; 3],
    language: usize,
    era: f64,
    tags: Vec<u32>,
    people: Vec<u32>,
}

/// The f32 bundle and what the user generator needs to know about the planted structure.
struct World {
    contents: BundleContents,
    ids: Vec<u32>,
    clusters: Vec<Cluster>,
    cluster_cum: Vec<f64>,
    cluster_of: Vec<usize>,
    /// Catalog positions per cluster and their cumulative popularity.
    members: Vec<Vec<usize>>,
    member_cum: Vec<Vec<f64>>,
    global_cum: Vec<f64>,
    durations: Vec<u32>,
    search_vocab: Vec<String>,
}

impl World {
    /// A title of cluster `c`, drawn by popularity.
    fn title_in(&self, rng: &mut Rng, c: usize) -> usize {
        self.members[c][pick(rng, &self.member_cum[c])]
    }

    /// Any title, drawn by popularity.
    fn any(&self, rng: &mut Rng) -> usize {
        pick(rng, &self.global_cum)
    }
}

fn build_world() -> Res<World> {
    let mut rng = Rng::new(SEED);
    let clusters: Vec<Cluster> = (0..CLUSTERS)
        .map(|c| Cluster {
            ials: (0..IALS_DIM).map(|_| rng.normal()).collect(),
            tower: (0..TT_DIM).map(|_| rng.normal()).collect(),
            genres: [
                (c % GENRES.len()) as u16,
                below(&mut rng, GENRES.len()) as u16,
                below(&mut rng, GENRES.len()) as u16,
            ],
            language: if uniform(&mut rng) < 0.6 {
                0
            } else {
                below(&mut rng, LANGUAGES.len())
            },
            era: 1965.0 + 58.0 * uniform(&mut rng).sqrt(),
            tags: (0..8).map(|_| 1 + below(&mut rng, TAGS) as u32).collect(),
            people: (0..60)
                .map(|_| 1 + below(&mut rng, PEOPLE) as u32)
                .collect(),
        })
        .collect();
    let cluster_cum = cumulative((0..CLUSTERS).map(|c| 1.0 / (c as f64 + 4.0)));

    // Zipf-like popularity over a random order of the titles.
    let mut order: Vec<usize> = (0..TITLES).collect();
    for i in (1..TITLES).rev() {
        order.swap(i, below(&mut rng, i + 1));
    }
    let mut pop = vec![0f32; TITLES];
    for (rank, &i) in order.iter().enumerate() {
        pop[i] = (1.0 + rank as f64 / 30.0).powf(-0.9) as f32;
    }

    let maturity_cum = cumulative([10.0, 25.0, 35.0, 25.0, 5.0]);
    let mut items = Vec::with_capacity(TITLES);
    let mut media = Vec::with_capacity(TITLES);
    let mut stats = Vec::with_capacity(TITLES);
    let mut tokens = Vec::with_capacity(TITLES);
    let mut ials = Vec::with_capacity(TITLES * IALS_DIM);
    let mut tt = Vec::with_capacity(TITLES * TT_DIM);
    let mut cluster_of = Vec::with_capacity(TITLES);
    let mut ids = Vec::with_capacity(TITLES);
    let mut durations = Vec::with_capacity(TITLES);
    for (i, &popularity) in pop.iter().enumerate() {
        let c = pick(&mut rng, &cluster_cum);
        let cl = &clusters[c];
        cluster_of.push(c);
        let id = 100 + 3 * i as u32;
        ids.push(id);

        // Item vectors: the cluster's direction plus noise; iALS norms grow with popularity.
        let norm =
            (0.3 + 1.6 * f64::from(popularity).sqrt() * (0.7 + 0.6 * uniform(&mut rng))) as f32;
        let mut row: Vec<f32> = cl.ials.iter().map(|&x| x + 0.8 * rng.normal()).collect();
        normalise(&mut row);
        ials.extend(row.iter().map(|x| x * norm));
        let mut row: Vec<f32> = cl.tower.iter().map(|&x| x + 0.6 * rng.normal()).collect();
        normalise(&mut row);
        tt.extend(row);

        // Metadata, biased by the cluster.
        let mut genres = vec![cl.genres[0]];
        if uniform(&mut rng) < 0.6 {
            genres.push(cl.genres[1]);
        }
        if uniform(&mut rng) < 0.3 {
            genres.push(cl.genres[2]);
        }
        if uniform(&mut rng) < 0.1 {
            genres.push(below(&mut rng, GENRES.len()) as u16);
        }
        let language = if uniform(&mut rng) < 0.8 {
            cl.language
        } else {
            below(&mut rng, LANGUAGES.len())
        };
        let country = COUNTRIES
            .iter()
            .position(|(_, l, _)| *l == LANGUAGES[language])
            .unwrap_or_else(|| below(&mut rng, COUNTRIES.len()));
        let n_tags = 2 + below(&mut rng, 4);
        let tags = from_pool(&mut rng, &cl.tags, n_tags, TAGS);
        let n_actors = 3 + below(&mut rng, 4);
        let actors = from_pool(&mut rng, &cl.people, n_actors, PEOPLE);
        let directors = from_pool(&mut rng, &cl.people, 1, PEOPLE);
        let year = (cl.era + 8.0 * f64::from(rng.normal())).clamp(1930.0, 2025.0) as i32;
        let release_time = ((year - 1970) as f64 * 365.2425 * DAY as f64
            + uniform(&mut rng) * 300.0 * DAY as f64)
            .min((NOW - 60 * DAY) as f64) as i64;
        let episode = uniform(&mut rng) < 0.12;
        let duration_s = if episode {
            60 * (22 + below(&mut rng, 39)) as u32
        } else {
            60 * (80 + below(&mut rng, 91)) as u32
        };
        durations.push(duration_s);
        let release_type = if episode {
            ReleaseType::Tv
        } else if uniform(&mut rng) < 0.65 {
            ReleaseType::Theatrical
        } else {
            ReleaseType::Streaming
        };
        let added_time = if uniform(&mut rng) < 0.03 {
            NOW - (uniform(&mut rng) * 30.0 * DAY as f64) as i64
        } else {
            NOW - (uniform(&mut rng).powi(2) * 4.0 * 365.0 * DAY as f64) as i64
        }
        .max(release_time);
        let plays_7d = (f64::from(popularity) * 3_000.0 * (0.5 + uniform(&mut rng))) as u32;
        stats.push(MediaStats {
            plays_24h: (f64::from(plays_7d) / 7.0 * (0.5 + uniform(&mut rng))) as u32,
            plays_7d,
        });
        let title = format!(
            "The {} {}",
            ADJECTIVES[below(&mut rng, ADJECTIVES.len())],
            NOUNS[below(&mut rng, NOUNS.len())]
        );
        let item = Item::new(id, title, Some(year as u16), genres);
        tokens.push(item_tokens(
            &item
                .genres
                .iter()
                .map(|&g| GENRES[g as usize].to_string())
                .collect::<Vec<_>>(),
            &tags.iter().map(|t| format!("t{t}")).collect::<Vec<_>>(),
            &actors.iter().map(|p| format!("p{p}")).collect::<Vec<_>>(),
            &directors
                .iter()
                .map(|p| format!("p{p}"))
                .collect::<Vec<_>>(),
            LANGUAGES[language],
            Some(year),
            3,
        ));
        media.push(Media {
            id,
            kind: if episode {
                MediaKind::Episode
            } else {
                MediaKind::Movie
            },
            series_id: episode.then(|| (c * 10 + below(&mut rng, 5)) as u32),
            season: episode.then(|| 1 + below(&mut rng, 4) as u16),
            episode: episode.then(|| 1 + below(&mut rng, 10) as u16),
            duration_s,
            genres: item.genres.iter().map(|&g| u32::from(g) + 1).collect(),
            tags,
            actors,
            directors,
            composer: 1 + below(&mut rng, PEOPLE) as u32,
            distributor: 1 + below(&mut rng, DISTRIBUTORS) as u32,
            language: language as u32 + 1,
            country: country as u32 + 1,
            release_time,
            release_type,
            added_time,
            maturity: Maturity::ALL[pick(&mut rng, &maturity_cum)],
            public_rating: (uniform(&mut rng) < 0.92)
                .then(|| (3.0 + 6.5 * uniform(&mut rng)) as f32),
            revenue_usd: (release_type == ReleaseType::Theatrical && uniform(&mut rng) < 0.6)
                .then(|| 10f64.powf(5.0 + 4.0 * uniform(&mut rng))),
        });
        items.push(item);
    }

    let catalog = Catalog::new(GENRES.iter().map(|g| g.to_string()).collect(), items)?;

    let index = ContentIndex::build(
        &tokens,
        &[
            ("genre", 1.0),
            ("tag", 0.8),
            ("cast", 0.6),
            ("director", 0.8),
            ("lang", 0.5),
            ("era", 0.3),
        ],
        pop.clone(),
        0.1,
    )?;
    let content = ContentModel::new(index, 0.05)?.with_onboarding_beta(0.3)?;

    let factors = Factors::new(IALS_DIM, ials).ok_or("iALS rows")?;
    let ials = IalsFactors::from_factors(factors, 20.0, 0.1)?;

    let search_vocab: Vec<String> = (0..SEARCH_TOKENS).map(|t| format!("kw{t}")).collect();
    let mut search_table = Vec::with_capacity(SEARCH_TOKENS * TT_DIM);
    for t in 0..SEARCH_TOKENS {
        let mut row = clusters[t % CLUSTERS].tower.clone();
        normalise(&mut row);
        search_table.extend(row.iter().map(|x| 0.5 * x));
    }
    let user_tower = user_tower(&tt, &search_table, &mut rng)?;
    let two_tower = TwoTowerModel::new(
        TT_DIM,
        tt,
        user_tower,
        search_vocab.clone(),
        MAX_HISTORY,
        MAX_SEARCHES,
        TWO_TOWER_DENSE_FEATURES.into(),
    )?;

    let vocab = Vocabularies {
        genres: Vocabulary::new(GENRES),
        tags: Vocabulary::new((1..=TAGS).map(|t| format!("t{t}"))),
        people: Vocabulary::new((1..=PEOPLE).map(|p| format!("p{p}"))),
        distributors: Vocabulary::new((1..=DISTRIBUTORS).map(|d| format!("d{d}"))),
        languages: Vocabulary::new(LANGUAGES),
        countries: Vocabulary::new(COUNTRIES.iter().map(|c| c.0)),
    };
    let space = FeatureSpace::new(vocab, FeatureConfig::default());
    let ranker = logistic_ranker(&space, &mut rng)?;

    let global_cum = cumulative(pop.iter().map(|&p| f64::from(p)));
    let mut members = vec![Vec::new(); CLUSTERS];
    for (i, &c) in cluster_of.iter().enumerate() {
        members[c].push(i);
    }
    let member_cum = members
        .iter()
        .map(|m| cumulative(m.iter().map(|&i| f64::from(pop[i]))))
        .collect();

    let contents = BundleContents {
        meta: Meta {
            model_version: "device-bench-20k".into(),
            created_at: NOW,
            dataset: "synthetic (examples/device_bench.rs)".into(),
            seed: SEED,
            trainer: "examples/device_bench".into(),
            recipe: format!(
                "{{\"titles\":{TITLES},\"ials_dim\":{IALS_DIM},\"tower_dim\":{TT_DIM},\"clusters\":{CLUSTERS}}}"
            ),
        },
        catalog,
        popularity: Popularity {
            half_life_days: 14.0,
            reference_time: NOW,
            scores: pop,
        },
        ials: Some(ials),
        content: Some(content),
        two_tower: Some(two_tower),
        quotas: Some(Quotas {
            ials: 3,
            two_tower: 2,
            content: 2,
            popularity: 1,
        }),
        new_user_quotas: None,
        neighbours: None,
        features: Some(FeatureContract::new(space)),
        ranker: Some(ranker),
        media: Some(MediaTable::new(media, stats, NOW)?),
        serving: Some(ServingSettings {
            candidates: CANDIDATES,
            rerank: RerankSettings {
                k: ROW_K,
                fatigue_impressions: 3,
                lambda: 0.7,
                max_per_genre: None,
            },
        }),
        graphs: Vec::new(),
        calendar: None,
        release: None,
    };
    edgerec::Model::check(&contents)?;
    Ok(World {
        contents,
        ids,
        clusters,
        cluster_cum,
        cluster_of,
        members,
        member_cum,
        global_cum,
        durations,
        search_vocab,
    })
}

/// The user tower in the trainer's graph shape (see the module docs): `history_table` is the
/// item embeddings, so the output is about the normalised mean of the history's embeddings
/// plus the searches', nudged by the dense features and the seeded noise in the weights.
fn user_tower(item_rows: &[f32], search_table: &[f32], rng: &mut Rng) -> Res<Vec<u8>> {
    use tower::{TowerShape, TowerWeights, user_tower_onnx};
    let d = TT_DIM;
    let hidden = 2 * d;
    let user_in = 2 * d + TWO_TOWER_DENSE;
    // hidden = Relu(±(history + search)) + noise, raw = hidden⁺ − hidden⁻ + noise.
    let mut w1: Vec<f32> = (0..user_in * hidden).map(|_| 0.02 * rng.normal()).collect();
    for j in 0..d {
        for part in [0, d] {
            w1[(part + j) * hidden + j] += 1.0;
            w1[(part + j) * hidden + d + j] -= 1.0;
        }
    }
    for v in &mut w1[2 * d * hidden..] {
        *v *= 2.5; // dense rows: 0.05 · N(0, 1)
    }
    let mut w2: Vec<f32> = (0..hidden * d).map(|_| 0.02 * rng.normal()).collect();
    for j in 0..d {
        w2[j * d + j] += 1.0;
        w2[(d + j) * d + j] -= 1.0;
    }
    let b1 = vec![0f32; hidden];
    let b2: Vec<f32> = (0..d).map(|_| 0.01 * rng.normal()).collect();
    let shape = TowerShape {
        n_items: TITLES,
        n_search_tokens: SEARCH_TOKENS,
        n_dense: TWO_TOWER_DENSE,
        dim: d,
        hidden,
        max_history: MAX_HISTORY,
        max_searches: MAX_SEARCHES,
    };
    let weights = TowerWeights {
        history: item_rows,
        search: search_table,
        w1: &w1,
        b1: &b1,
        w2: &w2,
        b2: &b2,
    };
    Ok(user_tower_onnx(&shape, &weights, "edgerec-device-bench")?)
}

/// `p_watch = σ(dense · w + b)`, written as the project's exporter writes a logistic
/// regression. Weights a trained model would lean on are set by hand; every other feature
/// gets a small seeded weight.
fn logistic_ranker(space: &FeatureSpace, rng: &mut Rng) -> Res<RankerModel> {
    const KIND: &str = "logistic-regression/1";
    let names = space.dense_names();
    let w: Vec<f32> = names
        .iter()
        .map(|n| match n.as_str() {
            "cross.genre_share" => 3.0,
            "cross.genre_share_recent" => 2.0,
            "cross.actor_match" => 1.2,
            "cross.director_match" => 0.8,
            "cross.language_match" => 0.8,
            "cross.onboarding_genre" => 1.0,
            "cross.watched_before" => -3.0,
            "cross.next_episode" => 1.5,
            "cross.maturity_fits_age" => 0.4,
            "media.plays_7d" => 1.5,
            "media.plays_24h" => 0.8,
            "media.rating" => 1.2,
            "media.new_on_platform" => 0.3,
            "media.years_since_release" => -0.6,
            _ => 0.1 * rng.normal(),
        })
        .collect();
    let d = names.len();
    let batch = || Dim::symbolic("batch");
    let mut g = GraphBuilder::new("logistic_ranker");
    g.input("dense", ElemType::F32, &[batch(), Dim::Fixed(d)])?;
    g.initializer_f32("w", &[d, 1], &w)?;
    g.initializer_f32("b", &[1], &[-2.5])?;
    g.node("Gemm", &["dense", "w", "b"], &["logit"], vec![])?;
    g.node("Sigmoid", &["logit"], &["p_watch"], vec![])?;
    g.output("p_watch", ElemType::F32, &[batch(), Dim::Fixed(1)])?;
    let dense = names.join(",");
    let onnx = encode(&model(
        g.finish()?,
        "edgerec-device-bench",
        &[("edgerec.ranker", KIND), ("edgerec.dense", &dense)],
    ));
    Ok(RankerModel {
        contract: RankerContract {
            kind: KIND.into(),
            dense: names.to_vec(),
            bags: vec![],
            search_vocab: vec![],
            output: "p_watch".into(),
            column: 0,
        },
        onnx,
    })
}

// ---- users -------------------------------------------------------------------------------------

struct User {
    kind: &'static str,
    state: UserState,
    device: Device,
    time: i64,
    utc_offset: i32,
    searches: Vec<String>,
    /// Finished titles, oldest first.
    history: Vec<u32>,
    /// Planted "future" titles: the user's clusters, not in the history.
    held_out: Vec<u32>,
    /// The taste clusters the held-out titles were drawn from, with their probabilities.
    tastes: Vec<(usize, f64)>,
    /// Every title the state knows (plays and onboarding picks).
    seen: HashSet<u32>,
}

impl User {
    fn request(&self) -> Res<RowRequest> {
        Ok(RowRequest {
            index: IndexChoice::Flat,
            searches: self.searches.clone(),
            ..RowRequest::new(Context::new(self.device, self.time, self.utc_offset)?)
        })
    }
}

fn make_user(w: &World, rng: &mut Rng, new_user: bool) -> Res<User> {
    let time = NOW + below(rng, 7 * 24) as i64 * 3_600 + below(rng, 3_600) as i64;
    let (country, language, utc_offset) = COUNTRIES[below(rng, COUNTRIES.len())];
    let device = [Device::Tv, Device::Desktop, Device::Mobile, Device::Tablet][below(rng, 4)];
    let n_tastes = 1 + below(rng, 3);
    let tastes: Vec<usize> = (0..n_tastes).map(|_| pick(rng, &w.cluster_cum)).collect();
    let taste_cum = cumulative((0..n_tastes).map(|i| 1.0 / (i as f64 + 1.0)));
    let taste_title = |rng: &mut Rng| {
        let c = tastes[pick(rng, &taste_cum)];
        w.title_in(rng, c)
    };

    let mut state = UserState::new();
    let s = state.settings_mut();
    if uniform(rng) < 0.7 {
        s.set_age(Some(18 + below(rng, 55) as u8));
    }
    s.set_gender([Gender::Female, Gender::Male, Gender::Other, Gender::Unknown][below(rng, 4)]);
    s.set_country(Some(country))?;
    s.set_language(Some(language))?;
    s.set_utc_offset_minutes(utc_offset)?;
    if uniform(rng) < 0.1 {
        s.set_maturity_limit(Some(Maturity::Pg13));
    }
    s.set_preferred_device(Some(device));

    let mut history = Vec::new();
    let mut seen = HashSet::new();
    let kind;
    if new_user {
        kind = "onboarding";
        let mut genres: Vec<&str> = tastes
            .iter()
            .map(|&c| GENRES[w.clusters[c].genres[0] as usize])
            .collect();
        genres.dedup();
        let titles: Vec<u32> = if uniform(rng) < 0.5 {
            Vec::new()
        } else {
            (0..1 + below(rng, 4))
                .map(|_| w.ids[taste_title(rng)])
                .collect()
        };
        seen.extend(titles.iter().copied());
        state.set_onboarding(&genres, &titles)?;
        // The home rows they were shown while onboarding.
        for e in 0..below(rng, 3) {
            let shown: Vec<u32> = (0..10).map(|_| w.ids[w.any(rng)]).collect();
            state.record_impression(&shown, time - (3 - e as i64) * 600)?;
        }
    } else {
        kind = "history";
        let finished = (20.0 * 15f64.powf(uniform(rng))) as usize;
        let unfinished = finished / 8;
        let start = time - ((0.15 + 0.85 * uniform(rng)) * 365.0 * DAY as f64) as i64;
        let mut times: Vec<i64> = (0..finished + unfinished)
            .map(|_| start + (uniform(rng) * (time - 3_600 - start) as f64) as i64)
            .collect();
        times.sort_unstable();
        let mut unfinished_left = unfinished;
        for (j, &t) in times.iter().enumerate() {
            let mut p = taste_title(rng);
            for _ in 0..8 {
                if !seen.contains(&w.ids[p]) {
                    break;
                }
                p = if uniform(rng) < 0.85 {
                    taste_title(rng)
                } else {
                    w.any(rng)
                };
            }
            if uniform(rng) >= 0.85 {
                p = w.any(rng);
            }
            let id = w.ids[p];
            let left = times.len() - j;
            let done = unfinished_left == 0 || uniform(rng) * left as f64 >= unfinished_left as f64;
            let fraction = if done {
                (0.85 + 0.15 * uniform(rng)) as f32
            } else {
                unfinished_left -= 1;
                (0.05 + 0.55 * uniform(rng)) as f32
            };
            state.record_progress(
                id,
                t,
                Progress {
                    fraction,
                    watched_s: (w.durations[p] as f32 * fraction) as u32,
                    device: if uniform(rng) < 0.8 {
                        device
                    } else {
                        Device::Mobile
                    },
                },
            )?;
            if done && seen.insert(id) {
                history.push(id);
            }
        }
        // Home rows over the last three weeks: a few popular titles shown again and again
        // (some become fatigued), the rest from the user's tastes.
        let regulars: Vec<u32> = (0..4).map(|_| w.ids[w.any(rng)]).collect();
        for e in 0..5 + below(rng, 15) {
            let t = time - 21 * DAY + (e as i64) * DAY + below(rng, 3_600) as i64;
            let mut shown = regulars.clone();
            shown.extend((0..6).map(|_| w.ids[taste_title(rng)]));
            state.record_impression(&shown, t.min(time - 60))?;
        }
    }
    let searches = if uniform(rng) < 0.3 {
        (0..1 + below(rng, 3))
            .map(|_| {
                let c = tastes[below(rng, tastes.len())];
                w.search_vocab[c + CLUSTERS * below(rng, SEARCH_TOKENS / CLUSTERS)].clone()
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut held_out = Vec::new();
    for _ in 0..20 * HELD_OUT {
        if held_out.len() == HELD_OUT {
            break;
        }
        let id = w.ids[taste_title(rng)];
        if !seen.contains(&id) && !held_out.contains(&id) {
            held_out.push(id);
        }
    }
    Ok(User {
        kind,
        state,
        device,
        time,
        utc_offset,
        searches,
        history,
        held_out,
        tastes: tastes
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, (1.0 / (i as f64 + 1.0)) / taste_cum[n_tastes - 1]))
            .collect(),
        seen,
    })
}

/// The best any model can do on the planted task: titles ranked by their probability of being
/// drawn as a held-out title (taste-cluster probability × popularity share in the cluster),
/// history excluded.
fn oracle_top(w: &World, u: &User) -> Vec<u32> {
    let pop = &w.contents.popularity.scores;
    let scores: Vec<f32> = (0..TITLES)
        .map(|i| {
            let c = w.cluster_of[i];
            let total = w.member_cum[c].last().copied().unwrap_or(1.0);
            u.tastes
                .iter()
                .filter(|(t, _)| *t == c)
                .map(|(_, p)| p * f64::from(pop[i]) / total)
                .sum::<f64>() as f32
        })
        .collect();
    edgerec::blend::top_n(&scores, K, |i| u.seen.contains(&w.ids[i]))
        .into_iter()
        .map(|(i, _)| w.ids[i])
        .collect()
}

// ---- measurements -------------------------------------------------------------------------------

const STAGES: [&str; 6] = [
    "user",
    "candidates",
    "features",
    "ranking",
    "rerank",
    "total",
];
const STAGE_KEYS: [&str; 6] = [
    "userMs",
    "candidatesMs",
    "featuresMs",
    "rankingMs",
    "rerankMs",
    "totalMs",
];

fn stage_values(t: &Timings) -> [f64; 6] {
    [
        t.user_ms,
        t.candidates_ms,
        t.features_ms,
        t.ranking_ms,
        t.rerank_ms,
        t.total_ms,
    ]
}

struct PipelineRun {
    load_ms: f64,
    medians: [f64; 6],
    rows: Vec<Vec<u32>>,
    requests: usize,
}

/// Loads the bundle, runs every user once (warm-up, and the rows), then [`PASSES`] timed
/// passes; each stage's median over all timed requests.
fn run_pipeline(bytes: &[u8], users: &[User]) -> Res<PipelineRun> {
    let mut loads: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            black_box(Recommender::from_bytes(bytes)).map(|_| start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    let rec = Recommender::from_bytes(bytes)?;
    let requests: Vec<RowRequest> = users.iter().map(User::request).collect::<Res<_>>()?;
    let mut rows = Vec::with_capacity(users.len());
    for (u, req) in users.iter().zip(&requests) {
        let row = rec.recommend_row(&u.state, req)?;
        rows.push(row.items.iter().map(|r| r.item_id).collect::<Vec<u32>>());
    }
    let mut samples: [Vec<f64>; 6] = Default::default();
    for _ in 0..PASSES {
        for ((u, req), want) in users.iter().zip(&requests).zip(&rows) {
            let row = rec.recommend_row(&u.state, req)?;
            if row.items.iter().map(|r| r.item_id).ne(want.iter().copied()) {
                return Err("the same request gave two different rows".into());
            }
            for (s, v) in samples.iter_mut().zip(stage_values(&row.timings)) {
                s.push(v);
            }
        }
    }
    let requests = samples[0].len();
    Ok(PipelineRun {
        load_ms: median(&mut loads),
        medians: samples.map(|mut s| median(&mut s)),
        rows,
        requests,
    })
}

/// NDCG@10 with binary relevance.
fn ndcg(ranked: &[u32], relevant: &HashSet<u32>) -> f64 {
    let gain = |i: usize| 1.0 / (i as f64 + 2.0).log2();
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, id)| relevant.contains(id))
        .map(|(i, _)| gain(i))
        .sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

fn overlap(a: &[u32], b: &[u32]) -> usize {
    a.iter().filter(|x| b.contains(x)).count()
}

fn payload_bytes(c: &BundleContents) -> (usize, usize, usize) {
    let fact = c.ials.as_ref().map_or(0, |f| f.to_payload().len());
    let twrt = c.two_tower.as_ref().map_or(0, |t| t.to_payload().len());
    let tower = c.two_tower.as_ref().map_or(0, |t| t.user_tower().len());
    (fact, twrt, tower)
}

// ---- flat vs HNSW -------------------------------------------------------------------------------

const INDEX_DIM: usize = 64;
const INDEX_CENTRES: usize = 1_000;
const INDEX_QUERIES: usize = 50;
const K: usize = 10;

/// `rows × 64` iALS-like rows: 1,000 cluster centres plus noise, each row scaled by a
/// log-normal norm factor (so inner product and cosine rank differently), and user-like
/// queries (a centre plus noise).
fn index_data(rows: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut rng = Rng::new(SEED ^ rows as u64);
    let centres: Vec<f32> = (0..INDEX_CENTRES * INDEX_DIM)
        .map(|_| rng.normal())
        .collect();
    let mut values = Vec::with_capacity(rows * INDEX_DIM);
    for _ in 0..rows {
        let c = below(&mut rng, INDEX_CENTRES);
        let s = (0.4 * rng.normal()).exp();
        for j in 0..INDEX_DIM {
            values.push(s * (centres[c * INDEX_DIM + j] + 0.5 * rng.normal()));
        }
    }
    let queries = (0..INDEX_QUERIES)
        .map(|_| {
            let c = below(&mut rng, INDEX_CENTRES);
            (0..INDEX_DIM)
                .map(|j| centres[c * INDEX_DIM + j] + 0.5 * rng.normal())
                .collect()
        })
        .collect();
    (values, queries)
}

/// Mirrors `size_bound` in src/hnsw.rs (private there): the bytes `HnswIndex::build` assumes a
/// graph of `rows × dim` may take, with its safe upper-layer bounds (rows/2 + 1 nodes, 64
/// layers). A build is refused above [`MAX_GRAPH_BYTES`].
fn graph_bound(rows: usize, dim: usize) -> u128 {
    let (rows, dim) = (rows as u128, dim as u128);
    let m = 32u128;
    64 + rows * (24 + 4 * dim + 5 * 2 * m + 5) + (rows / 2 + 1) * 5 * m + 64 * 24
}

/// The most rows `HnswIndex::build` accepts at `dim` (by [`graph_bound`]).
fn largest_graph(dim: usize) -> usize {
    let (mut lo, mut hi) = (1usize, 10_000_000usize);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if graph_bound(mid, dim) <= MAX_GRAPH_BYTES as u128 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn recall(found: &[(usize, f32)], exact: &[(usize, f32)]) -> usize {
    found
        .iter()
        .filter(|(r, _)| exact.iter().any(|(e, _)| e == r))
        .count()
}

fn index_bench(rows: usize, runs: usize) -> Res<()> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let start = Instant::now();
    let (values, queries) = index_data(rows);
    let exact: Vec<Vec<(usize, f32)>> = queries.iter().map(|q| f32_top_k(&values, q, K)).collect();
    let f32v = ItemVectors::F32(Factors::new(INDEX_DIM, values).ok_or("rows")?);
    let int8 = f32v.quantized()?;
    let data_s = start.elapsed().as_secs_f64();

    let mut hits = 0;
    for (q, e) in queries.iter().zip(&exact) {
        hits += recall(&int8.flat_top_k(q, K, |_| false)?, e);
    }
    let int8_recall = hits as f64 / (K * queries.len()) as f64;
    let t_f32 = median_time(runs, &queries, |q| {
        f32v.flat_top_k(q, K, |_| false).unwrap_or_default()
    });
    let t_i8 = median_time(runs, &queries, |q| {
        int8.flat_top_k(q, K, |_| false).unwrap_or_default()
    });
    println!(
        "{:>9}  {:<10}  {:>9}  {:>12}  {:>9.3}  {:>9.3}",
        rows,
        "flat f32",
        "-",
        f32v.bytes(),
        ms(t_f32),
        1.0
    );
    println!(
        "{:>9}  {:<10}  {:>9}  {:>12}  {:>9.3}  {:>9.3}",
        rows,
        "flat int8",
        "-",
        int8.bytes(),
        ms(t_i8),
        int8_recall
    );

    let config = HnswConfig::default();
    let bound = graph_bound(rows, INDEX_DIM + 1);
    if bound > MAX_GRAPH_BYTES as u128 {
        // Ask the library, so the reason printed is its own.
        let refused = InnerProductGraph::build(&f32v, true, config)
            .err()
            .map_or("built (unexpectedly)".to_string(), |e| e.to_string());
        println!(
            "{:>9}  {:<10}  not measured: refused by HnswIndex::build — {refused}",
            rows, "hnsw"
        );
        // Unit rows (the two-tower case) need no augmentation; dim 32 is the smallest the
        // bundle's towers use.
        let zeros = vec![0f32; rows * 32];
        let refused32 = HnswIndex::build(rows, 32, &zeros, config)
            .err()
            .map_or("built (unexpectedly)".to_string(), |e| e.to_string());
        println!(
            "{:>9}  {:<10}  not measured at dim 32 either: {refused32}",
            rows, "hnsw"
        );
        println!(
            "{:>9}  {:<10}  (the bound is ≈ {} bytes per row at dim 64+1 and {} at dim 32 \
             against MAX_GRAPH_BYTES = {} bytes: at most {} rows at dim 64+1, {} at dim 32; \
             even dim 1 allows only {})",
            "",
            "",
            graph_bound(rows, INDEX_DIM + 1) / rows as u128,
            graph_bound(rows, 32) / rows as u128,
            MAX_GRAPH_BYTES,
            largest_graph(INDEX_DIM + 1),
            largest_graph(32),
            largest_graph(1),
        );
        eprintln!("  ({rows} rows: data and references {data_s:.1} s)");
        return Ok(());
    }
    let start = Instant::now();
    let graph = InnerProductGraph::build(&f32v, true, config)?;
    let build = start.elapsed();
    let bytes = graph.index().to_bytes();
    let start = Instant::now();
    let loaded = HnswIndex::from_bytes(&bytes)?;
    let load = start.elapsed();
    let graph = InnerProductGraph::from_parts(loaded, graph.max_norm(), INDEX_DIM)?;
    let mut hits = 0;
    for (q, e) in queries.iter().zip(&exact) {
        hits += recall(&graph.search(q, K, |_| false)?, e);
    }
    let t_hnsw = median_time(runs, &queries, |q| {
        graph.search(q, K, |_| false).unwrap_or_default()
    });
    println!(
        "{:>9}  {:<10}  {:>9.1}  {:>12}  {:>9.3}  {:>9.3}   (load {:.0} ms; graph bytes are on top of the item rows)",
        rows,
        "hnsw",
        build.as_secs_f64(),
        bytes.len(),
        ms(t_hnsw),
        hits as f64 / (K * queries.len()) as f64,
        ms(load),
    );
    eprintln!("  ({rows} rows: data and references {data_s:.1} s)");
    Ok(())
}

// ---- output -------------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A JSON string literal (the strings here are ASCII names, but escape anyway).
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the files for the JS side into `out`: `bundle-20k.edgerec` and `states.json` (every
/// state, its request and its native row; the native stage medians when `runs` were timed).
fn write_js_fixture(
    out: &Path,
    int8_bytes: &[u8],
    users: &[User],
    rows: &[Vec<u32>],
    runs: Option<(&PipelineRun, &PipelineRun)>,
) -> Res<()> {
    std::fs::write(out.join("bundle-20k.edgerec"), int8_bytes)?;
    let mut json = String::new();
    let _ = writeln!(json, "{{");
    let _ = writeln!(json, "  \"bundle\": \"bundle-20k.edgerec\",");
    let _ = writeln!(json, "  \"variant\": \"int8\",");
    let _ = writeln!(json, "  \"profile\": {},", js(profile()));
    let _ = writeln!(
        json,
        "  \"titles\": {TITLES}, \"candidates\": {CANDIDATES}, \"k\": {ROW_K}, \"passes\": {PASSES},"
    );
    let native = match runs {
        Some((int8_run, f32_run)) => format!(
            "{{\"int8\": {}, \"f32\": {}}}",
            medians_json(int8_run),
            medians_json(f32_run)
        ),
        None => "null".into(),
    };
    let _ = writeln!(json, "  \"native\": {native},");
    let _ = writeln!(json, "  \"states\": [");
    for (i, (u, row)) in users.iter().zip(rows).enumerate() {
        let searches: Vec<String> = u.searches.iter().map(|s| js(s)).collect();
        let ids: Vec<String> = row.iter().map(u32::to_string).collect();
        let _ = writeln!(
            json,
            "    {{\"kind\": {}, \"finished\": {}, \"state\": \"{}\", \"options\": {{\"context\": \
             {{\"device\": {}, \"timestamp\": {}, \"utcOffsetMinutes\": {}}}, \"k\": {ROW_K}, \
             \"candidates\": {CANDIDATES}, \"index\": \"flat\", \"searches\": [{}]}}, \"native\": \
             [{}]}}{}",
            js(u.kind),
            u.history.len(),
            hex(&u.state.export()),
            js(u.device.as_str()),
            u.time,
            u.utc_offset,
            searches.join(", "),
            ids.join(", "),
            if i + 1 < users.len() { "," } else { "" }
        );
    }
    let _ = writeln!(json, "  ]");
    let _ = writeln!(json, "}}");
    std::fs::write(out.join("states.json"), json)?;
    println!(
        "\nwrote {} ({} bytes) and {}",
        out.join("bundle-20k.edgerec").display(),
        int8_bytes.len(),
        out.join("states.json").display()
    );

    Ok(())
}

fn medians_json(run: &PipelineRun) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in STAGE_KEYS.iter().zip(run.medians).enumerate() {
        let _ = write!(s, "{}\"{k}\": {v:.6}", if i > 0 { ", " } else { "" });
    }
    let _ = write!(
        s,
        ", \"loadMs\": {:.3}, \"requests\": {}}}",
        run.load_ms, run.requests
    );
    s
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev (opt-level 2, debug assertions on)"
    } else {
        "release (core opt-level 3, dependencies opt-level z, LTO: the wasm build's settings)"
    }
}

fn main() -> Res<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/device-bench".into()),
    );
    std::fs::create_dir_all(&out)?;
    let skip_1m = std::env::args().any(|a| a == "--no-1m");
    let bundle_only = std::env::args().any(|a| a == "--bundle-only");
    println!(
        "device pipeline benchmark: {TITLES} titles, {CANDIDATES} ranked candidates, rows of \
         {ROW_K}, {USERS} users, seed {SEED:#x}; native, profile: {}; {} CPUs",
        profile(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let start = Instant::now();
    let world = build_world()?;
    let f32_contents = world.contents.clone();
    let mut int8_contents = world.contents.clone();
    int8_contents.ials = Some(f32_contents.ials.as_ref().ok_or("FACT")?.quantized()?);
    int8_contents.two_tower = Some(f32_contents.two_tower.as_ref().ok_or("TWRT")?.quantized()?);
    let f32_bytes = f32_contents.encode();
    let int8_bytes = int8_contents.encode();
    let mut rng = Rng::new(SEED ^ 0x05E5);
    let users: Vec<User> = (0..USERS)
        .map(|i| make_user(&world, &mut rng, i % 10 == 9))
        .collect::<Res<_>>()?;
    println!(
        "built the bundle and {USERS} users in {:.1} s: {} dense features, users with history: \
         {}, onboarding only: {}, finished plays per user: {}–{}",
        start.elapsed().as_secs_f64(),
        world
            .contents
            .features
            .as_ref()
            .map_or(0, |f| f.space().dense_names().len()),
        users.iter().filter(|u| u.kind == "history").count(),
        users.iter().filter(|u| u.kind == "onboarding").count(),
        users
            .iter()
            .filter(|u| u.kind == "history")
            .map(|u| u.history.len())
            .min()
            .unwrap_or(0),
        users.iter().map(|u| u.history.len()).max().unwrap_or(0),
    );

    if bundle_only {
        // The fixture alone (what the tests replay in a worker): one untimed pass for the rows.
        let rec = Recommender::from_bytes(&int8_bytes)?;
        let rows = users
            .iter()
            .map(|u| {
                let row = rec.recommend_row(&u.state, &u.request()?)?;
                Ok(row.items.iter().map(|r| r.item_id).collect())
            })
            .collect::<Res<Vec<Vec<u32>>>>()?;
        return write_js_fixture(&out, &int8_bytes, &users, &rows, None);
    }

    // 1. The pipeline, natively.
    let f32_run = run_pipeline(&f32_bytes, &users)?;
    let int8_run = run_pipeline(&int8_bytes, &users)?;
    println!(
        "\n## recommend_row, native: median ms per stage over {} requests ({PASSES} passes × \
         {USERS} users, after a warm-up pass)",
        int8_run.requests
    );
    println!("{:<12}  {:>10}  {:>10}", "stage", "f32 ms", "int8 ms");
    for (i, stage) in STAGES.iter().enumerate() {
        println!(
            "{:<12}  {:>10.3}  {:>10.3}",
            stage, f32_run.medians[i], int8_run.medians[i]
        );
    }
    println!(
        "{:<12}  {:>10.1}  {:>10.1}",
        "bundle load", f32_run.load_ms, int8_run.load_ms
    );

    // 2. int8 vs f32.
    let (fact32, twrt32, tower) = payload_bytes(&f32_contents);
    let (fact8, twrt8, _) = payload_bytes(&int8_contents);
    println!("\n## int8 vs f32 item vectors, same 20k bundle");
    println!(
        "{:<44}  {:>12}  {:>12}  {:>7}",
        "bytes", "f32", "int8", "ratio"
    );
    let line = |what: &str, a: usize, b: usize| {
        println!(
            "{:<44}  {:>12}  {:>12}  {:>6.2}×",
            what,
            a,
            b,
            a as f64 / b as f64
        )
    };
    line("FACT payload (iALS 20k × 64 + Gram)", fact32, fact8);
    line("TWRT payload (two-tower 20k × 32 + tower)", twrt32, twrt8);
    line(
        "  of which item vectors",
        f32_contents
            .two_tower
            .as_ref()
            .map_or(0, |t| t.item_vectors().bytes()),
        int8_contents
            .two_tower
            .as_ref()
            .map_or(0, |t| t.item_vectors().bytes()),
    );
    println!(
        "{:<44}  {:>12}  {:>12}",
        "  of which the ONNX user tower (f32 in both)", tower, tower
    );
    line("whole bundle", f32_bytes.len(), int8_bytes.len());

    let same = f32_run
        .rows
        .iter()
        .zip(&int8_run.rows)
        .filter(|(a, b)| a == b)
        .count();
    let shared: usize = f32_run
        .rows
        .iter()
        .zip(&int8_run.rows)
        .map(|(a, b)| overlap(a, b))
        .sum();
    let slots: usize = f32_run.rows.iter().map(Vec::len).sum();
    println!(
        "rows (recommend_row, {USERS} users): int8 row identical to the f32 row for {same}/{USERS} \
         ({:.1}%); top-{ROW_K} overlap {:.3}",
        100.0 * same as f64 / USERS as f64,
        shared as f64 / slots.max(1) as f64
    );

    // Retrieval quality: iALS candidates against planted held-out titles.
    let rec32 = Recommender::from_bytes(&f32_bytes)?;
    let rec8 = Recommender::from_bytes(&int8_bytes)?;
    let mut eval_rng = Rng::new(SEED ^ 0xE7A1);
    let (mut n32, mut n8, mut agree, mut agree_ndcg, mut n) = (0.0, 0.0, 0usize, 0.0, 0usize);
    let (mut oracle, mut diff_sq) = (0.0, 0.0);
    for _ in 0..EVAL_USERS {
        let u = make_user(&world, &mut eval_rng, false)?;
        if u.held_out.is_empty() {
            continue;
        }
        let req = CandidateRequest {
            history: u.history.clone(),
            index: IndexChoice::Flat,
            ..CandidateRequest::new(K)
        };
        let ials_row = |rec: &Recommender| -> Res<Vec<u32>> {
            Ok(candidates(rec.model(), &req)?
                .row(Source::Collaborative)
                .ok_or("no iALS row")?
                .iter()
                .map(|s| s.item_id)
                .collect())
        };
        let (a, b) = (ials_row(&rec32)?, ials_row(&rec8)?);
        let relevant: HashSet<u32> = u.held_out.iter().copied().collect();
        let (x32, x8) = (ndcg(&a, &relevant), ndcg(&b, &relevant));
        n32 += x32;
        n8 += x8;
        diff_sq += (x8 - x32) * (x8 - x32);
        oracle += ndcg(&oracle_top(&world, &u), &relevant);
        agree += overlap(&a, &b);
        agree_ndcg += ndcg(&b, &a.iter().copied().collect());
        n += 1;
    }
    let n = n as f64;
    println!(
        "iALS candidates (fold-in + flat top-{K}), {n} users with 20–300 plays, NDCG@{K} against \
         each user's {HELD_OUT} planted held-out titles: f32 {:.4}, int8 {:.4} (int8 − f32 = \
         {:+.4} ± {:.4}, the paired standard error)",
        n32 / n,
        n8 / n,
        (n8 - n32) / n,
        ((diff_sq / n - ((n8 - n32) / n).powi(2)).max(0.0) / n).sqrt()
    );
    println!(
        "  what it means: the factors are planted, not trained, and a user's held-out titles \
         are popularity-weighted draws from the taste clusters the history came from, so even \
         the generating distribution itself (oracle: cluster probability × popularity share, \
         history excluded) scores only {:.4}; the absolute numbers say how hard the planted \
         task is, the int8 − f32 difference is what int8 costs iALS retrieval",
        oracle / n
    );
    println!(
        "int8 scan vs the f32 scan's top {K} as the truth (same fold-in queries): overlap@{K} \
         {:.4}, NDCG@{K} {:.4} — trivially near 1: only near-ties change order",
        agree as f64 / (n * K as f64),
        agree_ndcg / n
    );

    // Files for the JS side.
    write_js_fixture(
        &out,
        &int8_bytes,
        &users,
        &int8_run.rows,
        Some((&int8_run, &f32_run)),
    )?;

    // 3. Flat vs HNSW.
    println!(
        "\n## flat scan vs HNSW, top-{K} by inner product, dim {INDEX_DIM}, rows with varied \
         norms ({INDEX_CENTRES} clusters), median of several runs × {INDEX_QUERIES} queries; \
         HNSW: ef_construction {}, ef_search {}, graph over the augmented rows (dim {})",
        HnswConfig::default().ef_construction,
        HnswConfig::default().ef_search,
        INDEX_DIM + 1
    );
    println!(
        "{:>9}  {:<10}  {:>9}  {:>12}  {:>9}  {:>9}",
        "rows", "index", "build s", "bytes", "query ms", "recall@10"
    );
    index_bench(100_000, 9)?;
    if skip_1m {
        println!("  1M rows skipped (--no-1m)");
    } else {
        index_bench(1_000_000, 5)?;
    }
    Ok(())
}
