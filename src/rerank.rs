//! The top-k rerank on the device: filters, fatigue, maturity, diversity and reasons.
//!
//! The ranker scores a few hundred candidates by P(watch); this stage turns them into the row
//! the user sees. It runs in three steps, each documented on [`Reranker::rerank`]:
//!
//! 1. **filters** that always hold: no title the user finished, no title shown
//!    [`RerankSettings::fatigue_impressions`] times without a play, nothing above the profile's
//!    maturity limit, no item id twice;
//! 2. **maximal marginal relevance** (Carbonell & Goldstein, *The use of MMR, diversity-based
//!    reranking for reordering documents and producing summaries*, SIGIR 1998): the row is
//!    filled greedily with the candidate maximising
//!    `lambda · rel(i) − (1 − lambda) · max_{j in row} sim(i, j)`, optionally with at most
//!    [`RerankSettings::max_per_genre`] titles per primary genre;
//! 3. a **reason** per title ("Because you watched Heat (1995)", "Popular on TV tonight"), chosen
//!    by a fixed rule ([`Reason`]).
//!
//! With `lambda = 1` and no genre cap the row is exactly the candidates sorted by score
//! (descending, input position ascending on ties), filtered and cut to `k`.
//!
//! ```
//! use edgerec::blend::Source;
//! use edgerec::context::{Context, Device};
//! use edgerec::features::Maturity;
//! use edgerec::rerank::{RerankCandidate, RerankRequest, RerankSettings, Reranker, Watched};
//!
//! const ACTION: u16 = 1;
//! const COMEDY: u16 = 2;
//! let cand = |item_id, score, genres, source| RerankCandidate {
//!     item_id,
//!     score,
//!     genres,
//!     embedding: None,
//!     maturity: Maturity::Pg13,
//!     source,
//!     because: None,
//! };
//! let candidates = [
//!     cand(1, 0.90, &[ACTION][..], Source::Collaborative),
//!     cand(2, 0.85, &[ACTION][..], Source::Collaborative), // a near-duplicate of 1
//!     cand(3, 0.80, &[COMEDY][..], Source::Popularity),
//!     cand(4, 0.70, &[ACTION][..], Source::Content),       // already finished
//! ];
//! // Friday 2026-11-27, 21:30 in UTC+1, on a TV.
//! let ctx = Context::new(Device::Tv, 1_795_811_400, 60)?;
//! let recent = [Watched { item_id: 9, title: "Heat (1995)", genres: &[ACTION], embedding: None }];
//! let request = RerankRequest { finished: &[4], recent: &recent, ..RerankRequest::new(ctx) };
//!
//! let reranker = Reranker::new(RerankSettings { k: 2, lambda: 0.5, ..RerankSettings::default() })?;
//! let row = reranker.rerank(&candidates, &request)?;
//! let ids: Vec<u32> = row.iter().map(|r| r.item_id).collect();
//! assert_eq!(ids, [1, 3]); // diversity moved the comedy up past the second action title
//! assert_eq!(row[0].reason.text(), "Because you watched Heat (1995)");
//! assert_eq!(row[1].reason.text(), "Popular on TV tonight");
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::blend::Source;
use crate::context::{Context, Daypart, Device};
use crate::error::{Error, Result};
use crate::features::Maturity;
use crate::limits::MAX_K;

/// The knobs of the rerank stage. Fields are public; [`RerankSettings::validate`] (also run by
/// [`Reranker::new`]) checks them.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankSettings {
    /// Row length: at most this many titles are returned (fewer when the filters or the genre cap
    /// leave fewer). `1 ..= MAX_K`; default 10.
    pub k: usize,
    /// A title shown this many times without a play is dropped (impression fatigue). `0` turns the
    /// filter off; default 3.
    pub fatigue_impressions: u32,
    /// The MMR trade-off in `[0, 1]`: `1` ranks by relevance alone, `0` by novelty against the
    /// titles already in the row alone. Default 0.7.
    pub lambda: f32,
    /// At most this many titles of the row may share a primary genre (the first genre index a
    /// candidate lists); titles without genres are never capped. `None` (the default) disables
    /// the cap; `Some(0)` is refused (it would empty every row).
    pub max_per_genre: Option<usize>,
}

impl Default for RerankSettings {
    fn default() -> RerankSettings {
        RerankSettings {
            k: 10,
            fatigue_impressions: 3,
            lambda: 0.7,
            max_per_genre: None,
        }
    }
}

impl RerankSettings {
    /// Checks the settings: `k` in `1 ..= MAX_K`, `lambda` a number in `[0, 1]`, `max_per_genre`
    /// not `Some(0)`. Fails with [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "rerank k must be between 1 and {MAX_K}, got {}",
                self.k
            )));
        }
        if !(0.0..=1.0).contains(&self.lambda) {
            return Err(Error::InvalidArgument(format!(
                "rerank lambda must be in [0, 1], got {}",
                self.lambda
            )));
        }
        if self.max_per_genre == Some(0) {
            return Err(Error::InvalidArgument(
                "rerank max_per_genre must be at least 1 (use None to disable the cap)".into(),
            ));
        }
        Ok(())
    }
}

/// Changes to a model's [`RerankSettings`] for one request: each field given replaces the
/// model's (the bundle's `SERV`), each `None` keeps it; the row length is the request's own
/// (`RowRequest::k`). The one place the merge rule lives, so every client (Rust, JS, the
/// CLI) overrides the same way.
///
/// ```
/// use edgerec::rerank::{RerankOverrides, RerankSettings};
/// let base = RerankSettings { k: 10, lambda: 0.7, fatigue_impressions: 3, max_per_genre: Some(2) };
/// let o = RerankOverrides { lambda: Some(1.0), max_per_genre: Some(None), ..RerankOverrides::default() };
/// let s = o.apply(base);
/// assert_eq!((s.k, s.lambda, s.fatigue_impressions, s.max_per_genre), (10, 1.0, 3, None));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RerankOverrides {
    /// MMR trade-off instead of the model's.
    pub lambda: Option<f32>,
    /// Fatigue threshold instead of the model's (`Some(0)` turns the filter off).
    pub fatigue_impressions: Option<u32>,
    /// Per-genre cap instead of the model's: `Some(None)` removes the cap, `Some(Some(n))`
    /// sets it.
    pub max_per_genre: Option<Option<usize>>,
}

impl RerankOverrides {
    /// `base` with every given field replaced. The result is not validated here
    /// ([`Reranker::new`] does).
    pub fn apply(&self, base: RerankSettings) -> RerankSettings {
        RerankSettings {
            k: base.k,
            lambda: self.lambda.unwrap_or(base.lambda),
            fatigue_impressions: self.fatigue_impressions.unwrap_or(base.fatigue_impressions),
            max_per_genre: self.max_per_genre.unwrap_or(base.max_per_genre),
        }
    }
}

/// One scored title proposed to the rerank stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankCandidate<'a> {
    /// The item id (as in the training data).
    pub item_id: u32,
    /// The ranker's score, higher is better (P(watch)). Must be finite.
    pub score: f32,
    /// Genre indices (as in [`crate::catalog::Item::genres`]); the first one is the *primary*
    /// genre for [`RerankSettings::max_per_genre`]. Order and repeats do not matter otherwise.
    pub genres: &'a [u16],
    /// An item embedding for diversity (cosine similarity); every embedding given to one call
    /// must have the same length and finite values.
    pub embedding: Option<&'a [f32]>,
    /// The title's maturity rating.
    pub maturity: Maturity,
    /// The candidate source that proposed the title.
    pub source: Source,
    /// A watched title that proposed this one through the item-to-item neighbour lists (the
    /// one contributing the most to its neighbour score), if any: the first choice for
    /// "Because you watched …" when it is among [`RerankRequest::recent`].
    pub because: Option<u32>,
}

/// A title the user watched recently, for "Because you watched …" reasons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watched<'a> {
    /// The item id.
    pub item_id: u32,
    /// The title as shown to the user (`"Heat (1995)"`).
    pub title: &'a str,
    /// Genre indices, as for [`RerankCandidate::genres`].
    pub genres: &'a [u16],
    /// An embedding in the same space as the candidates', if known.
    pub embedding: Option<&'a [f32]>,
}

/// A genre the user picked at onboarding, for "Because you like …" reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenrePick<'a> {
    /// The genre index.
    pub genre: u16,
    /// Its display name (`"Comedy"`).
    pub name: &'a str,
}

/// Everything about one request the rerank stage needs besides the candidates. Build it with
/// [`RerankRequest::new`] and struct update syntax.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankRequest<'a> {
    /// Item ids the user finished; never returned.
    pub finished: &'a [u32],
    /// `(item id, impressions without a play)`; counts of a repeated id are added.
    pub impressions: &'a [(u32, u32)],
    /// The profile's maturity limit; titles rated above it are never returned. `None`: no limit.
    pub maturity_limit: Option<Maturity>,
    /// Recently watched titles, most recent first.
    pub recent: &'a [Watched<'a>],
    /// Onboarding genre picks, in the user's order.
    pub picked_genres: &'a [GenrePick<'a>],
    /// Device and local time of the request.
    pub context: Context,
}

impl<'a> RerankRequest<'a> {
    /// A request in `context` with no history, no impressions, no picks and no maturity limit.
    pub fn new(context: Context) -> RerankRequest<'a> {
        RerankRequest {
            finished: &[],
            impressions: &[],
            maturity_limit: None,
            recent: &[],
            picked_genres: &[],
            context,
        }
    }
}

/// Why a title is in the row, chosen by [`Reranker::rerank`] with this rule, first match wins:
///
/// 1. a candidate from [`Source::Popularity`] gets [`Reason::PopularOn`] the request's device at
///    the request's [`Daypart`];
/// 2. otherwise a candidate whose [`RerankCandidate::because`] is a recent title gets
///    [`Reason::BecauseYouWatched`] that title (the neighbour source's own explanation);
/// 3. otherwise the recent title (other than the candidate itself) most similar to the candidate
///    gets [`Reason::BecauseYouWatched`], if that similarity is positive; similarity is the one
///    MMR uses (embedding cosine when both have embeddings, else genre Jaccard); ties go to the
///    most recent title;
/// 4. otherwise the first onboarding pick (in the user's order) among the candidate's genres gets
///    [`Reason::BecauseYouLike`];
/// 5. otherwise [`Reason::TopPick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// "Because you watched {title}".
    BecauseYouWatched {
        /// The watched title's item id.
        item_id: u32,
        /// The watched title as shown.
        title: String,
    },
    /// "Because you like {name}".
    BecauseYouLike {
        /// The picked genre's index.
        genre: u16,
        /// Its display name.
        name: String,
    },
    /// "Popular on TV tonight", "Popular on mobile this morning", "Popular late at night" (no
    /// device when it is [`Device::Unknown`]).
    PopularOn {
        /// The request's device.
        device: Device,
        /// The request's part of the local day.
        daypart: Daypart,
    },
    /// "Top pick for you": relevant, with nothing more specific to say.
    TopPick,
}

impl Reason {
    /// The English text shown to the user.
    pub fn text(&self) -> String {
        match self {
            Reason::BecauseYouWatched { title, .. } => format!("Because you watched {title}"),
            Reason::BecauseYouLike { name, .. } => format!("Because you like {name}"),
            Reason::PopularOn { device, daypart } => {
                let on = match device {
                    Device::Tv => " on TV",
                    Device::Desktop => " on desktop",
                    Device::Mobile => " on mobile",
                    Device::Tablet => " on tablets",
                    Device::Unknown => "",
                };
                let when = match daypart {
                    Daypart::Morning => "this morning",
                    Daypart::Afternoon => "this afternoon",
                    Daypart::Evening => "tonight",
                    Daypart::Night => "late at night",
                };
                format!("Popular{on} {when}")
            }
            Reason::TopPick => "Top pick for you".to_string(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// One title of the reranked row.
#[derive(Debug, Clone, PartialEq)]
pub struct Reranked {
    /// The item id.
    pub item_id: u32,
    /// The ranker's score, unchanged.
    pub score: f32,
    /// Index of the candidate in the input slice.
    pub position: usize,
    /// The source that proposed it.
    pub source: Source,
    /// Why it is shown.
    pub reason: Reason,
}

/// The rerank stage with validated settings. Holds no per-request state; cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Reranker {
    settings: RerankSettings,
}

/// A filtered candidate prepared for MMR.
struct Prepared<'a> {
    /// Sorted, unique genres.
    genres: Vec<u16>,
    embedding: Option<&'a [f32]>,
    norm: f64,
}

impl Reranker {
    /// A reranker with `settings`, after [`RerankSettings::validate`].
    pub fn new(settings: RerankSettings) -> Result<Reranker> {
        settings.validate()?;
        Ok(Reranker { settings })
    }

    /// The settings.
    pub fn settings(&self) -> &RerankSettings {
        &self.settings
    }

    /// Reranks `candidates` into a row of at most `k` titles.
    ///
    /// **Refusals.** [`Error::InvalidArgument`] when a candidate's score is not finite (NaN or
    /// ±∞: a broken ranker is reported, not hidden), or an embedding (of a candidate or a
    /// recent title) has a non-finite value or a length different from the first embedding seen.
    /// Every candidate is checked, filtered or not.
    ///
    /// **Filters** (always hold): a candidate is dropped when its id is in
    /// [`RerankRequest::finished`], when its impressions reach
    /// [`RerankSettings::fatigue_impressions`] (unless that is 0), when its maturity is above
    /// [`RerankRequest::maturity_limit`], or when a candidate with the same id comes earlier in
    /// the order *score descending, input position ascending* (so the best-scored copy is kept).
    ///
    /// **MMR.** `rel(i)` is the score min-max normalised over the filtered candidates,
    /// `(s − min) / (max − min)`, and 1 for all when they share one score. `sim(i, j)` is the
    /// cosine of the embeddings when both candidates have one (0 when either is the zero
    /// vector), else the Jaccard index of the genre sets (0 when both are empty). The row starts
    /// empty (no penalty for the first pick) and grows by the candidate maximising
    /// `lambda · rel(i) − (1 − lambda) · max_{j in row} sim(i, j)`; ties go to the higher score,
    /// then the lower input position. Candidates whose primary genre already has
    /// `max_per_genre` titles in the row are skipped; the row stops at `k` or when no candidate
    /// is left. Arithmetic is in `f64` with a fixed evaluation order, so the row is the same on
    /// every platform.
    ///
    /// **Cost.** O(n log n) for the sort plus O(k · n · d) for MMR, where `n` is the number of
    /// candidates and `d` the embedding length (or genre count); `lambda = 1` skips the
    /// similarities (O(n log n) in all). Reasons cost O(k · r · d) for `r` recent titles.
    pub fn rerank(
        &self,
        candidates: &[RerankCandidate<'_>],
        request: &RerankRequest<'_>,
    ) -> Result<Vec<Reranked>> {
        check_inputs(candidates, request)?;
        let s = &self.settings;

        // Filters, walking candidates in plain-sort order.
        let finished: HashSet<u32> = request.finished.iter().copied().collect();
        let mut impressions: HashMap<u32, u32> = HashMap::new();
        for &(id, n) in request.impressions {
            let e = impressions.entry(id).or_insert(0);
            *e = e.saturating_add(n);
        }
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| by_score_then_position(candidates, a, b));
        let mut seen = HashSet::new();
        let pool: Vec<usize> = order
            .into_iter()
            .filter(|&i| {
                let c = &candidates[i];
                let fatigued = s.fatigue_impressions > 0
                    && impressions.get(&c.item_id).copied().unwrap_or(0) >= s.fatigue_impressions;
                let too_mature = request.maturity_limit.is_some_and(|m| c.maturity > m);
                !finished.contains(&c.item_id) && !fatigued && !too_mature && seen.insert(c.item_id)
            })
            .collect();

        let row = if s.lambda == 1.0 {
            self.by_relevance(candidates, &pool)
        } else {
            self.mmr(candidates, &pool)
        };

        let recent: Vec<Prepared<'_>> = request
            .recent
            .iter()
            .map(|w| prepare(w.genres, w.embedding))
            .collect();
        Ok(row
            .into_iter()
            .map(|i| {
                let c = &candidates[i];
                Reranked {
                    item_id: c.item_id,
                    score: c.score,
                    position: i,
                    source: c.source,
                    reason: reason(c, request, &recent),
                }
            })
            .collect())
    }

    /// `lambda = 1`: the pool's order, with the genre cap.
    fn by_relevance(&self, candidates: &[RerankCandidate<'_>], pool: &[usize]) -> Vec<usize> {
        let mut cap = GenreCap::new(self.settings.max_per_genre);
        let mut row = Vec::with_capacity(self.settings.k.min(pool.len()));
        for &i in pool {
            if row.len() == self.settings.k {
                break;
            }
            if cap.admits(&candidates[i]) {
                cap.add(&candidates[i]);
                row.push(i);
            }
        }
        row
    }

    /// Greedy MMR over `pool` (in plain-sort order, which gives the tie-breaks for free: the
    /// first maximum found wins).
    fn mmr(&self, candidates: &[RerankCandidate<'_>], pool: &[usize]) -> Vec<usize> {
        let lambda = f64::from(self.settings.lambda);
        let (min, max) = pool
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                let s = f64::from(candidates[i].score);
                (lo.min(s), hi.max(s))
            });
        let prepared: Vec<Prepared<'_>> = pool
            .iter()
            .map(|&i| prepare(candidates[i].genres, candidates[i].embedding))
            .collect();
        let rel: Vec<f64> = pool
            .iter()
            .map(|&i| {
                if max > min {
                    (f64::from(candidates[i].score) - min) / (max - min)
                } else {
                    1.0
                }
            })
            .collect();
        // Indices into `pool` still eligible, in pool order; their max similarity to the row.
        let mut remaining: Vec<usize> = (0..pool.len()).collect();
        let mut max_sim = vec![f64::NEG_INFINITY; pool.len()];
        let mut cap = GenreCap::new(self.settings.max_per_genre);
        let mut row = Vec::with_capacity(self.settings.k.min(pool.len()));
        while row.len() < self.settings.k && !remaining.is_empty() {
            let mut best: Option<(usize, f64)> = None;
            for (slot, &p) in remaining.iter().enumerate() {
                let penalty = if row.is_empty() { 0.0 } else { max_sim[p] };
                let value = lambda * rel[p] - (1.0 - lambda) * penalty;
                if best.is_none_or(|(_, b)| value > b) {
                    best = Some((slot, value));
                }
            }
            let Some((slot, _)) = best else { break };
            let picked = remaining.remove(slot);
            let c = &candidates[pool[picked]];
            cap.add(c);
            row.push(pool[picked]);
            remaining.retain(|&p| cap.admits(&candidates[pool[p]]));
            for &p in &remaining {
                let sim = similarity(&prepared[p], &prepared[picked]);
                if sim > max_sim[p] {
                    max_sim[p] = sim;
                }
            }
        }
        row
    }
}

/// Counts titles per primary genre in the row.
struct GenreCap {
    limit: Option<usize>,
    counts: HashMap<u16, usize>,
}

impl GenreCap {
    fn new(limit: Option<usize>) -> GenreCap {
        GenreCap {
            limit,
            counts: HashMap::new(),
        }
    }

    fn admits(&self, c: &RerankCandidate<'_>) -> bool {
        match (self.limit, c.genres.first()) {
            (Some(limit), Some(g)) => self.counts.get(g).copied().unwrap_or(0) < limit,
            _ => true,
        }
    }

    fn add(&mut self, c: &RerankCandidate<'_>) {
        if let (Some(_), Some(&g)) = (self.limit, c.genres.first()) {
            *self.counts.entry(g).or_insert(0) += 1;
        }
    }
}

/// Score descending, then input position ascending.
fn by_score_then_position(candidates: &[RerankCandidate<'_>], a: usize, b: usize) -> Ordering {
    candidates[b]
        .score
        .total_cmp(&candidates[a].score)
        .then(a.cmp(&b))
}

fn check_inputs(candidates: &[RerankCandidate<'_>], request: &RerankRequest<'_>) -> Result<()> {
    let mut dim: Option<usize> = None;
    let mut check_embedding = |what: &dyn Fn() -> String, e: Option<&[f32]>| -> Result<()> {
        let Some(e) = e else { return Ok(()) };
        if let Some(d) = dim
            && d != e.len()
        {
            return Err(Error::InvalidArgument(format!(
                "{} has an embedding of length {}, expected {d}",
                what(),
                e.len()
            )));
        }
        dim = Some(e.len());
        if e.iter().any(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "{} has a non-finite embedding value",
                what()
            )));
        }
        Ok(())
    };
    for (i, c) in candidates.iter().enumerate() {
        if !c.score.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "rerank candidate {i} (item {}) has a non-finite score {}",
                c.item_id, c.score
            )));
        }
        check_embedding(
            &|| format!("rerank candidate {i} (item {})", c.item_id),
            c.embedding,
        )?;
    }
    for (i, w) in request.recent.iter().enumerate() {
        check_embedding(
            &|| format!("recent title {i} (item {})", w.item_id),
            w.embedding,
        )?;
    }
    Ok(())
}

fn prepare<'a>(genres: &[u16], embedding: Option<&'a [f32]>) -> Prepared<'a> {
    let mut g = genres.to_vec();
    g.sort_unstable();
    g.dedup();
    let norm = embedding.map_or(0.0, |e| dot(e, e).sqrt());
    Prepared {
        genres: g,
        embedding,
        norm,
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Cosine of the embeddings when both have one, else Jaccard of the genre sets.
fn similarity(a: &Prepared<'_>, b: &Prepared<'_>) -> f64 {
    match (a.embedding, b.embedding) {
        (Some(x), Some(y)) => {
            if a.norm == 0.0 || b.norm == 0.0 {
                0.0
            } else {
                (dot(x, y) / (a.norm * b.norm)).clamp(-1.0, 1.0)
            }
        }
        _ => jaccard(&a.genres, &b.genres),
    }
}

/// Jaccard index of two sorted, unique slices; 0 when both are empty.
fn jaccard(a: &[u16], b: &[u16]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

/// The rule documented on [`Reason`].
///
/// `recent` holds [`RerankRequest::recent`] prepared, in the same order.
fn reason(c: &RerankCandidate<'_>, request: &RerankRequest<'_>, recent: &[Prepared<'_>]) -> Reason {
    if c.source == Source::Popularity {
        return Reason::PopularOn {
            device: request.context.device(),
            daypart: request.context.daypart(),
        };
    }
    if let Some(w) = c
        .because
        .and_then(|id| request.recent.iter().find(|w| w.item_id == id))
    {
        return Reason::BecauseYouWatched {
            item_id: w.item_id,
            title: w.title.to_string(),
        };
    }
    let me = prepare(c.genres, c.embedding);
    let mut best: Option<(f64, &Watched<'_>)> = None;
    for (w, p) in request.recent.iter().zip(recent) {
        if w.item_id == c.item_id {
            continue;
        }
        let sim = similarity(&me, p);
        if sim > 0.0 && best.is_none_or(|(b, _)| sim > b) {
            best = Some((sim, w));
        }
    }
    if let Some((_, w)) = best {
        return Reason::BecauseYouWatched {
            item_id: w.item_id,
            title: w.title.to_string(),
        };
    }
    if let Some(p) = request
        .picked_genres
        .iter()
        .find(|p| c.genres.contains(&p.genre))
    {
        return Reason::BecauseYouLike {
            genre: p.genre,
            name: p.name.to_string(),
        };
    }
    Reason::TopPick
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx() -> Context {
        // 1970-01-01 20:00 UTC: evening.
        Context::new(Device::Tv, 20 * 3600, 0).unwrap()
    }

    fn cand(item_id: u32, score: f32, genres: &[u16]) -> RerankCandidate<'_> {
        RerankCandidate {
            item_id,
            score,
            genres,
            embedding: None,
            maturity: Maturity::G,
            source: Source::Collaborative,
            because: None,
        }
    }

    fn ids(row: &[Reranked]) -> Vec<u32> {
        row.iter().map(|r| r.item_id).collect()
    }

    fn run(
        settings: RerankSettings,
        candidates: &[RerankCandidate<'_>],
        request: &RerankRequest<'_>,
    ) -> Vec<Reranked> {
        Reranker::new(settings)
            .unwrap()
            .rerank(candidates, request)
            .unwrap()
    }

    fn coverage(row: &[Reranked], candidates: &[RerankCandidate<'_>]) -> usize {
        row.iter()
            .flat_map(|r| candidates[r.position].genres.iter().copied())
            .collect::<HashSet<u16>>()
            .len()
    }

    #[test]
    fn empty_candidates_give_an_empty_row() {
        let row = run(RerankSettings::default(), &[], &RerankRequest::new(ctx()));
        assert!(row.is_empty());
    }

    #[test]
    fn invalid_settings_are_refused() {
        let bad = [
            RerankSettings {
                k: 0,
                ..Default::default()
            },
            RerankSettings {
                k: MAX_K + 1,
                ..Default::default()
            },
            RerankSettings {
                lambda: f32::NAN,
                ..Default::default()
            },
            RerankSettings {
                lambda: -0.1,
                ..Default::default()
            },
            RerankSettings {
                lambda: 1.5,
                ..Default::default()
            },
            RerankSettings {
                max_per_genre: Some(0),
                ..Default::default()
            },
        ];
        for s in bad {
            let err = Reranker::new(s.clone()).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{s:?}: {err}");
            assert_eq!(err.code(), "invalid_argument");
        }
        assert!(RerankSettings::default().validate().is_ok());
        let edges = RerankSettings {
            k: MAX_K,
            lambda: 0.0,
            ..Default::default()
        };
        assert!(edges.validate().is_ok());
    }

    #[test]
    fn non_finite_scores_and_bad_embeddings_are_refused() {
        let r = Reranker::new(RerankSettings::default()).unwrap();
        let req = RerankRequest::new(ctx());
        for s in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let err = r.rerank(&[cand(1, 0.5, &[]), cand(2, s, &[])], &req);
            assert!(matches!(err, Err(Error::InvalidArgument(_))));
        }
        // Refused even when the bad candidate would be filtered out.
        let finished = [2];
        let req_f = RerankRequest {
            finished: &finished,
            ..req
        };
        assert!(r.rerank(&[cand(2, f32::NAN, &[])], &req_f).is_err());
        let (e2, e3, enan) = ([1.0, 0.0], [1.0, 0.0, 0.0], [f32::NAN, 0.0]);
        let mut a = cand(1, 0.5, &[]);
        a.embedding = Some(&e2);
        let mut b = cand(2, 0.4, &[]);
        b.embedding = Some(&e3);
        assert!(r.rerank(&[a, b], &req).is_err());
        b.embedding = Some(&enan);
        assert!(r.rerank(&[a, b], &req).is_err());
        let recent = [Watched {
            item_id: 9,
            title: "X",
            genres: &[],
            embedding: Some(&e3),
        }];
        let req_r = RerankRequest {
            recent: &recent,
            ..req
        };
        assert!(r.rerank(&[a], &req_r).is_err());
    }

    #[test]
    fn filters_finished_fatigued_mature_and_duplicates() {
        let mut c = vec![
            cand(1, 0.9, &[1]),
            cand(2, 0.8, &[1]),
            cand(3, 0.7, &[1]),
            cand(4, 0.6, &[1]),
            cand(5, 0.5, &[1]),
            cand(4, 0.95, &[2]), // duplicate of 4 with a higher score: this copy is kept
        ];
        c[2].maturity = Maturity::R;
        let finished = [1];
        let impressions = [(2, 2), (2, 1), (5, 2)];
        let req = RerankRequest {
            finished: &finished,
            impressions: &impressions,
            maturity_limit: Some(Maturity::Pg13),
            ..RerankRequest::new(ctx())
        };
        let s = RerankSettings {
            lambda: 1.0,
            ..Default::default()
        };
        let row = run(s.clone(), &c, &req);
        assert_eq!(ids(&row), vec![4, 5]);
        assert_eq!(row[0].position, 5);
        // Threshold 0 turns fatigue off: title 2 (3 impressions) comes back.
        let off = RerankSettings {
            fatigue_impressions: 0,
            ..s
        };
        assert_eq!(ids(&run(off, &c, &req)), vec![4, 2, 5]);
    }

    #[test]
    fn k_truncates_and_ties_go_to_the_lower_position() {
        let c = [
            cand(1, 0.5, &[1]),
            cand(2, 0.9, &[1]),
            cand(3, 0.5, &[1]),
            cand(4, 0.5, &[1]),
        ];
        let s = RerankSettings {
            k: 3,
            lambda: 1.0,
            ..Default::default()
        };
        assert_eq!(ids(&run(s, &c, &RerankRequest::new(ctx()))), vec![2, 1, 3]);
        // Identical candidates under MMR: the tie-break is the same.
        let s = RerankSettings {
            k: 3,
            lambda: 0.3,
            ..Default::default()
        };
        assert_eq!(ids(&run(s, &c, &RerankRequest::new(ctx()))), vec![2, 1, 3]);
    }

    /// Six action titles scored just above four titles of other genres.
    fn clustered() -> Vec<RerankCandidate<'static>> {
        const G: [&[u16]; 5] = [&[0], &[0, 1], &[2], &[3], &[4]];
        vec![
            cand(1, 0.95, G[0]),
            cand(2, 0.94, G[0]),
            cand(3, 0.93, G[1]),
            cand(4, 0.92, G[0]),
            cand(5, 0.91, G[0]),
            cand(6, 0.90, G[1]),
            cand(7, 0.85, G[2]),
            cand(8, 0.80, G[3]),
            cand(9, 0.75, G[4]),
            cand(10, 0.70, G[2]),
        ]
    }

    #[test]
    fn lower_lambda_spreads_a_clustered_row() {
        let c = clustered();
        let req = RerankRequest::new(ctx());
        let at = |lambda| {
            run(
                RerankSettings {
                    k: 4,
                    lambda,
                    ..Default::default()
                },
                &c,
                &req,
            )
        };
        let relevance = at(1.0);
        assert_eq!(ids(&relevance), vec![1, 2, 3, 4]);
        assert_eq!(coverage(&relevance, &c), 2);
        let diverse = at(0.5);
        assert_eq!(coverage(&diverse, &c), 4, "{:?}", ids(&diverse));
        let action = diverse
            .iter()
            .filter(|r| c[r.position].genres[0] == 0)
            .count();
        assert_eq!(action, 2, "{:?}", ids(&diverse));
        assert_eq!(diverse[0].item_id, 1, "the first pick is the most relevant");
        // Coverage never decreases as lambda goes down on this example.
        let mut last = 0;
        for step in (0..=20).rev() {
            let cov = coverage(&at(step as f32 / 20.0), &c);
            assert!(
                cov >= last,
                "lambda {}: coverage {cov} < {last}",
                step as f32 / 20.0
            );
            last = cov;
        }
    }

    #[test]
    fn embeddings_take_precedence_over_genres() {
        // Same genres for all, but embeddings say 2 is a copy of 1 and 3 is different.
        let (e1, e2, e3) = ([1.0, 0.0], [0.99, 0.01], [0.0, 1.0]);
        let mut c = vec![cand(1, 0.9, &[1]), cand(2, 0.85, &[1]), cand(3, 0.8, &[1])];
        c[0].embedding = Some(&e1);
        c[1].embedding = Some(&e2);
        c[2].embedding = Some(&e3);
        let s = RerankSettings {
            k: 2,
            lambda: 0.5,
            ..Default::default()
        };
        assert_eq!(ids(&run(s, &c, &RerankRequest::new(ctx()))), vec![1, 3]);
    }

    #[test]
    fn genre_cap_limits_titles_per_primary_genre() {
        let c = clustered();
        let s = RerankSettings {
            k: 6,
            lambda: 1.0,
            max_per_genre: Some(2),
            ..Default::default()
        };
        // Primary genre 0 for 1..=6; two of them, then the rest in score order.
        assert_eq!(
            ids(&run(s.clone(), &c, &RerankRequest::new(ctx()))),
            vec![1, 2, 7, 8, 9, 10]
        );
        let s = RerankSettings { lambda: 0.6, ..s };
        let row = run(s, &c, &RerankRequest::new(ctx()));
        let firsts = row.iter().filter(|r| c[r.position].genres[0] == 0).count();
        assert!(firsts <= 2);
        // The cap can leave the row short.
        let few = [cand(1, 0.9, &[1]), cand(2, 0.8, &[1]), cand(3, 0.7, &[1])];
        let s = RerankSettings {
            max_per_genre: Some(1),
            ..Default::default()
        };
        assert_eq!(ids(&run(s, &few, &RerankRequest::new(ctx()))), vec![1]);
    }

    #[test]
    fn reasons_follow_the_documented_rule() {
        let mut c = vec![
            cand(1, 0.9, &[1, 2]),
            cand(2, 0.8, &[5]),
            cand(3, 0.7, &[7]),
            cand(4, 0.6, &[1]),
        ];
        c[3].source = Source::Popularity;
        let recent = [
            Watched {
                item_id: 20,
                title: "Recent (2020)",
                genres: &[1, 3],
                embedding: None,
            },
            Watched {
                item_id: 21,
                title: "Closer (2001)",
                genres: &[1, 2, 3],
                embedding: None,
            },
            Watched {
                item_id: 22,
                title: "Older twin (1999)",
                genres: &[1, 2, 3],
                embedding: None,
            },
        ];
        let picks = [
            GenrePick {
                genre: 9,
                name: "Horror",
            },
            GenrePick {
                genre: 5,
                name: "Comedy",
            },
        ];
        let req = RerankRequest {
            recent: &recent,
            picked_genres: &picks,
            ..RerankRequest::new(ctx())
        };
        let s = RerankSettings {
            lambda: 1.0,
            ..Default::default()
        };
        let row = run(s.clone(), &c, &req);
        let texts: Vec<String> = row.iter().map(|r| r.reason.text()).collect();
        assert_eq!(
            texts,
            [
                "Because you watched Closer (2001)", // most similar; ties to the more recent
                "Because you like Comedy",
                "Top pick for you",
                "Popular on TV tonight",
            ]
        );
        assert_eq!(
            row[0].reason,
            Reason::BecauseYouWatched {
                item_id: 21,
                title: "Closer (2001)".into()
            }
        );
        // Deterministic: the same request gives the same reasons.
        assert_eq!(run(s, &c, &req), row);
        // Parts of the day and devices.
        let popular = |device, hour: i64| {
            let ctx = Context::new(device, hour * 3600, 0).unwrap();
            reason(&c[3], &RerankRequest::new(ctx), &[]).text()
        };
        assert_eq!(popular(Device::Mobile, 8), "Popular on mobile this morning");
        assert_eq!(
            popular(Device::Desktop, 13),
            "Popular on desktop this afternoon"
        );
        assert_eq!(popular(Device::Unknown, 23), "Popular late at night");
        assert_eq!(format!("{}", Reason::TopPick), "Top pick for you");
    }

    #[test]
    fn a_candidate_is_not_its_own_reason() {
        let c = [cand(20, 0.9, &[1])];
        let recent = [Watched {
            item_id: 20,
            title: "Self",
            genres: &[1],
            embedding: None,
        }];
        let req = RerankRequest {
            recent: &recent,
            ..RerankRequest::new(ctx())
        };
        let row = run(RerankSettings::default(), &c, &req);
        assert_eq!(row[0].reason, Reason::TopPick);
    }

    // ---- properties ----

    #[derive(Debug, Clone)]
    struct Owned {
        item_id: u32,
        score: f32,
        genres: Vec<u16>,
        embedding: Option<Vec<f32>>,
        maturity: Maturity,
        source: Source,
    }

    fn owned() -> impl Strategy<Value = Owned> {
        (
            0u32..16,
            prop_oneof![(0u8..4).prop_map(|s| f32::from(s) / 4.0), -1.0e3f32..1.0e3],
            proptest::collection::vec(0u16..6, 0..4),
            proptest::option::of(proptest::collection::vec(-1.0f32..1.0, 3)),
            0usize..5,
            0usize..4,
        )
            .prop_map(|(item_id, score, genres, embedding, m, s)| Owned {
                item_id,
                score,
                genres,
                embedding,
                maturity: Maturity::ALL[m],
                source: Source::ALL[s],
            })
    }

    fn borrow(o: &[Owned]) -> Vec<RerankCandidate<'_>> {
        o.iter()
            .map(|o| RerankCandidate {
                item_id: o.item_id,
                score: o.score,
                genres: &o.genres,
                embedding: o.embedding.as_deref(),
                maturity: o.maturity,
                source: o.source,
                because: None,
            })
            .collect()
    }

    #[derive(Debug, Clone)]
    struct Req {
        finished: Vec<u32>,
        impressions: Vec<(u32, u32)>,
        limit: Option<Maturity>,
    }

    fn req_strategy() -> impl Strategy<Value = Req> {
        (
            proptest::collection::vec(0u32..16, 0..5),
            proptest::collection::vec((0u32..16, 0u32..4), 0..8),
            proptest::option::of((0usize..5).prop_map(|m| Maturity::ALL[m])),
        )
            .prop_map(|(finished, impressions, limit)| Req {
                finished,
                impressions,
                limit,
            })
    }

    fn request(r: &Req) -> RerankRequest<'_> {
        RerankRequest {
            finished: &r.finished,
            impressions: &r.impressions,
            maturity_limit: r.limit,
            ..RerankRequest::new(ctx())
        }
    }

    /// The filters, spelled out independently of the implementation.
    fn allowed(c: &RerankCandidate<'_>, r: &Req, fatigue: u32) -> bool {
        let shown: u32 = r
            .impressions
            .iter()
            .filter(|(id, _)| *id == c.item_id)
            .map(|(_, n)| n)
            .sum();
        !r.finished.contains(&c.item_id)
            && (fatigue == 0 || shown < fatigue)
            && r.limit.is_none_or(|m| c.maturity <= m)
    }

    /// MMR as the paper states it, recomputing every similarity at every step: an independent
    /// reference for the incremental implementation and its tie-breaks.
    fn reference_mmr(c: &[RerankCandidate<'_>], r: &Req, s: &RerankSettings) -> Vec<usize> {
        let mut seen = HashSet::new();
        let mut order: Vec<usize> = (0..c.len()).collect();
        order.sort_by(|&a, &b| c[b].score.partial_cmp(&c[a].score).unwrap().then(a.cmp(&b)));
        let eligible: Vec<usize> = order
            .into_iter()
            .filter(|&i| allowed(&c[i], r, s.fatigue_impressions) && seen.insert(c[i].item_id))
            .collect();
        let scores: Vec<f64> = eligible.iter().map(|&i| f64::from(c[i].score)).collect();
        let (lo, hi) = (
            scores.iter().copied().fold(f64::INFINITY, f64::min),
            scores.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let rel = |i: usize| {
            if hi > lo {
                (f64::from(c[i].score) - lo) / (hi - lo)
            } else {
                1.0
            }
        };
        let sim = |a: usize, b: usize| -> f64 {
            if let (Some(x), Some(y)) = (c[a].embedding, c[b].embedding) {
                let d = |u: &[f32], v: &[f32]| -> f64 {
                    u.iter()
                        .zip(v)
                        .map(|(&p, &q)| f64::from(p) * f64::from(q))
                        .sum()
                };
                let (nx, ny) = (d(x, x).sqrt(), d(y, y).sqrt());
                return if nx == 0.0 || ny == 0.0 {
                    0.0
                } else {
                    (d(x, y) / (nx * ny)).clamp(-1.0, 1.0)
                };
            }
            let ga: HashSet<u16> = c[a].genres.iter().copied().collect();
            let gb: HashSet<u16> = c[b].genres.iter().copied().collect();
            let union = ga.union(&gb).count();
            if union == 0 {
                0.0
            } else {
                ga.intersection(&gb).count() as f64 / union as f64
            }
        };
        let lambda = f64::from(s.lambda);
        let mut row: Vec<usize> = Vec::new();
        while row.len() < s.k {
            let primary_count = |g: u16| {
                row.iter()
                    .filter(|&&j| c[j].genres.first() == Some(&g))
                    .count()
            };
            let best = eligible
                .iter()
                .copied()
                .filter(|i| !row.contains(i))
                .filter(|&i| match (s.max_per_genre, c[i].genres.first()) {
                    (Some(cap), Some(&g)) => primary_count(g) < cap,
                    _ => true,
                })
                .map(|i| {
                    let penalty = row
                        .iter()
                        .map(|&j| sim(i, j))
                        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
                        .unwrap_or(0.0);
                    (lambda * rel(i) - (1.0 - lambda) * penalty, i)
                })
                // Highest value; ties: higher score, then lower position.
                .max_by(|a, b| {
                    a.0.partial_cmp(&b.0)
                        .unwrap()
                        .then(c[a.1].score.partial_cmp(&c[b.1].score).unwrap())
                        .then(b.1.cmp(&a.1))
                });
            match best {
                Some((_, i)) => row.push(i),
                None => break,
            }
        }
        row
    }

    proptest! {
        #[test]
        fn pure_relevance_is_a_plain_sort(
            o in proptest::collection::vec(owned(), 0..40),
            r in req_strategy(),
            k in 1usize..20,
            fatigue in 0u32..5,
        ) {
            let c = borrow(&o);
            let s = RerankSettings { k, fatigue_impressions: fatigue, lambda: 1.0, max_per_genre: None };
            let row = run(s, &c, &request(&r));
            let mut order: Vec<usize> = (0..c.len()).collect();
            order.sort_by(|&a, &b| c[b].score.partial_cmp(&c[a].score).unwrap().then(a.cmp(&b)));
            let mut seen = HashSet::new();
            let expected: Vec<usize> = order
                .into_iter()
                .filter(|&i| allowed(&c[i], &r, fatigue) && seen.insert(c[i].item_id))
                .take(k)
                .collect();
            let got: Vec<usize> = row.iter().map(|x| x.position).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn filters_always_hold(
            o in proptest::collection::vec(owned(), 0..40),
            r in req_strategy(),
            k in 1usize..20,
            fatigue in 0u32..5,
            lambda in prop_oneof![0.0f32..=1.0, Just(0.0), Just(1.0)],
            cap in proptest::option::of(1usize..4),
        ) {
            let c = borrow(&o);
            let s = RerankSettings { k, fatigue_impressions: fatigue, lambda, max_per_genre: cap };
            let req = request(&r);
            let row = run(s.clone(), &c, &req);
            prop_assert!(row.len() <= k);
            let mut ids = HashSet::new();
            let mut per_genre: HashMap<u16, usize> = HashMap::new();
            for x in &row {
                let src = &c[x.position];
                prop_assert_eq!(src.item_id, x.item_id);
                prop_assert_eq!(src.score.to_bits(), x.score.to_bits());
                prop_assert_eq!(src.source, x.source);
                prop_assert!(allowed(src, &r, fatigue));
                prop_assert!(ids.insert(x.item_id), "duplicate id {}", x.item_id);
                if let Some(&g) = src.genres.first() {
                    *per_genre.entry(g).or_insert(0) += 1;
                }
            }
            if let Some(cap) = cap {
                prop_assert!(per_genre.values().all(|&n| n <= cap));
            } else {
                // Without a cap the row is full whenever enough titles pass the filters.
                let eligible: HashSet<u32> = c
                    .iter()
                    .filter(|x| allowed(x, &r, fatigue))
                    .map(|x| x.item_id)
                    .collect();
                prop_assert_eq!(row.len(), k.min(eligible.len()));
            }
            // Deterministic.
            prop_assert_eq!(run(s, &c, &req), row);
        }

        #[test]
        fn mmr_matches_the_reference(
            o in proptest::collection::vec(owned(), 0..30),
            r in req_strategy(),
            k in 1usize..12,
            fatigue in 0u32..5,
            lambda in prop_oneof![0.0f32..=1.0, Just(0.0), Just(0.5), Just(1.0)],
            cap in proptest::option::of(1usize..4),
        ) {
            let c = borrow(&o);
            let s = RerankSettings { k, fatigue_impressions: fatigue, lambda, max_per_genre: cap };
            let got: Vec<usize> = run(s.clone(), &c, &request(&r)).iter().map(|x| x.position).collect();
            prop_assert_eq!(got, reference_mmr(&c, &r, &s));
        }
    }
}
