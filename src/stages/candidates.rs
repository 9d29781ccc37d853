//! Candidate generation: every candidate source of the model for one user, and their blend.
//!
//! A bundle may carry up to five candidate sources (see [`crate::bundle`]): iALS item factors
//! (`FACT`), a content index (`CONT`), a two-tower model (`TWRT`), item-to-item neighbour
//! lists (`NBRS`) and the time-decayed popularity every bundle has (`POPL`). For one user,
//! [`candidates`] ranks the catalog under each source the model holds and blends the rows with
//! the bundle's quotas (`QUOT`/`QUON`, and `NBRS`'s own for the neighbour source):
//!
//! * **iALS** — the user's vector is the core's [`fold_in`](crate::ials::fold_in) of the
//!   history and the onboarding titles (`r = 1` per watch; a title watched twice has `r = 2`,
//!   as in training) against the item factors; an item scores `x · y_i`. A user with no known
//!   title gets an empty row: iALS knows nothing about them.
//! * **two-tower** — the user's vector comes from the bundle's user tower ([`super::user`]);
//!   an item scores `u · e_i`. Without a vector the source is left out.
//! * **content** — the profile is [`ContentIndex::profile`](crate::content::ContentIndex::profile)
//!   of the history, weighted `1 / (1 + recency_decay · titles watched since)`, plus the
//!   onboarding titles and the onboarding genres as `genre:<name>` tokens; the score is the
//!   index's cosine mixed with its popularity prior.
//! * **popularity** — the bundle's `POPL` scores.
//! * **neighbours** — item-to-item: each title scores the sum of its similarities in the
//!   neighbour lists (`NBRS`) of the titles watched, weighted
//!   `1 / (1 + recency_decay · titles watched since)`, and of the onboarding titles (weight 1);
//!   a title no list holds is not proposed. A user with no known title gets an empty row.
//!
//! Each row is the top `n` of its source, ties to the lower catalog position
//! ([`crate::blend::top_n`]); the blend is [`crate::blend::blend`] of the rows in the order
//! iALS, two-tower, content, popularity, neighbours, with per-title attribution. Watched titles are left
//! out here; every other filter is the rerank stage's ([`super::rerank`]).
//!
//! ```
//! use edgerec::blend::Source;
//! use edgerec::model::Model;
//! use edgerec::stages::candidates::{CandidateRequest, candidates};
//! # let bytes = edgerec::test_support::tiny_contents_with_sources().encode();
//! let model = Model::from_bytes(&bytes)?;
//! let req = CandidateRequest { history: vec![10], ..CandidateRequest::new(2) };
//! let c = candidates(&model, &req)?;
//! let ials = c.row(Source::Collaborative).unwrap();
//! assert_eq!(ials[0].item_id, 30);                    // closest to Alpha in factor space
//! assert!(c.blend.iter().all(|b| b.item_id != 10));   // watched titles are left out
//! assert_eq!(c.blend[0].placed_by, Source::Collaborative);
//! # Ok::<(), edgerec::Error>(())
//! ```

use crate::blend::{self, Source};
use crate::bundle::{Quotas, Space};
use crate::content::{Onboarding, recency_weights};
use crate::error::{Error, Result};
use crate::limits::MAX_CANDIDATES;
use crate::model::Model;
use crate::retrieval::{HNSW_ABOVE, IndexChoice, IndexUsed, ItemVectors};

/// What the device knows about a user when it asks for candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRequest {
    /// Item ids watched, oldest first. Ids not in the catalog are ignored; repeats count once
    /// per occurrence.
    pub history: Vec<u32>,
    /// Genre names picked at onboarding (exact catalog names; an unknown name is an error).
    pub onboarding_genres: Vec<String>,
    /// Item ids picked at onboarding (unknown ids are ignored).
    pub onboarding_titles: Vec<u32>,
    /// The user's two-tower vector (from [`super::user`], the bundle's user tower); its
    /// length must be the model's `dim`. `None` leaves the two-tower source out.
    pub two_tower_user: Option<Vec<f32>>,
    /// Titles per row, `1..=`[`MAX_CANDIDATES`].
    pub n: usize,
    /// Leave the history and the onboarding titles out of every row.
    pub exclude_watched: bool,
    /// Flat scan or HNSW graph for the embedding sources ([`IndexChoice::Auto`] by default).
    pub index: IndexChoice,
    /// Serve only this source (the blend is then its row); `None` serves every source.
    pub only: Option<Source>,
}

impl CandidateRequest {
    /// An empty request for `n` titles per row that excludes watched titles.
    pub fn new(n: usize) -> CandidateRequest {
        CandidateRequest {
            history: Vec::new(),
            onboarding_genres: Vec::new(),
            onboarding_titles: Vec::new(),
            two_tower_user: None,
            n,
            exclude_watched: true,
            index: IndexChoice::Auto,
            only: None,
        }
    }
}

/// A title scored by one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The item id.
    pub item_id: u32,
    /// Position in the catalog.
    pub position: usize,
    /// The source's score; a row is sorted by it, descending, ties to the lower position.
    pub score: f32,
}

/// One source's ranked row.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// The source.
    pub source: Source,
    /// How an embedding source searched its item vectors (`None` for content and popularity,
    /// and for a source that knew nothing about the user).
    pub index: Option<IndexUsed>,
    /// Its top titles, best first (fewer than `n` when the catalog runs out; empty when the
    /// source knows nothing about the user).
    pub items: Vec<Scored>,
}

/// A title in the blended row.
#[derive(Debug, Clone, PartialEq)]
pub struct Blended {
    /// The item id.
    pub item_id: u32,
    /// Position in the catalog.
    pub position: usize,
    /// The source whose turn placed it.
    pub placed_by: Source,
    /// Every source whose row holds it, with its 1-based rank there, in blend order.
    pub sources: Vec<(Source, u32)>,
}

/// Every source's row and the blend, for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// One row per source served, in the order iALS, two-tower, content, popularity, neighbours.
    pub rows: Vec<SourceRow>,
    /// The rows blended with the bundle's quotas (at most `n` titles).
    pub blend: Vec<Blended>,
}

impl Candidates {
    /// The row of `source`, if it was served.
    pub fn row(&self, source: Source) -> Option<&[Scored]> {
        self.rows
            .iter()
            .find(|r| r.source == source)
            .map(|r| &r.items[..])
    }

    /// The score `source` gave the title at `position`, if its row holds it.
    pub fn score(&self, source: Source, position: usize) -> Option<f32> {
        self.row(source)?
            .iter()
            .find(|s| s.position == position)
            .map(|s| s.score)
    }
}

/// The candidate sources `model` can serve, in blend order. Two-tower is listed when the
/// bundle has it, but is served only for requests that carry a user vector.
pub fn candidate_sources(model: &Model) -> Vec<Source> {
    let c = model.contents();
    let mut v = Vec::new();
    if c.ials.is_some() {
        v.push(Source::Collaborative);
    }
    if c.two_tower.is_some() {
        v.push(Source::TwoTower);
    }
    if c.content.is_some() {
        v.push(Source::Content);
    }
    v.push(Source::Popularity);
    if c.neighbours.is_some() {
        v.push(Source::Neighbours);
    }
    v
}

/// The blend quotas of a user with a history, or of a `new_user` (no title in the history:
/// known only by onboarding picks): the bundle's `QUON` for new users when it has one, else
/// its `QUOT`, else [`Quotas::EQUAL`].
pub fn quotas(model: &Model, new_user: bool) -> Quotas {
    let c = model.contents();
    let new = if new_user { c.new_user_quotas } else { None };
    new.or(c.quotas).unwrap_or(Quotas::EQUAL)
}

/// The blend quota of `source` for a user with a history or a `new_user`: [`quotas`]' for the
/// four sources of `QUOT`, the `NBRS` section's own for the neighbour source (0 without it).
pub fn quota(model: &Model, source: Source, new_user: bool) -> u32 {
    match (source, &model.contents().neighbours) {
        (Source::Neighbours, Some(n)) if new_user => n.new_user_quota(),
        (Source::Neighbours, Some(n)) => n.quota(),
        (Source::Neighbours, None) => 0,
        (s, _) => quotas(model, new_user).get(s),
    }
}

/// Every source's top `n` and their blend for one user (see the module doc).
///
/// Errors (`InvalidArgument`): `n` outside `1..=`[`MAX_CANDIDATES`], an unknown onboarding
/// genre, a two-tower vector for a bundle without `TWRT`, of the wrong length or not finite,
/// or `only` naming a source the model does not have.
///
/// Cost: iALS O(|history| · d² + d³ + items · d); two-tower O(items · d); content
/// O(items + postings of the profile's tokens); each row O(items · log n); the blend
/// O(sources · n).
pub fn candidates(model: &Model, req: &CandidateRequest) -> Result<Candidates> {
    check(model, req)?;
    let user = User::of(model, req);
    let serve = |s: Source| req.only.is_none_or(|o| o == s);
    let mut rows = Vec::new();
    if serve(Source::Collaborative) && model.contents().ials.is_some() {
        rows.push(ials_row(model, req, &user)?);
    }
    if serve(Source::TwoTower)
        && let Some(u) = &req.two_tower_user
    {
        rows.push(two_tower_row(model, req, &user, u)?);
    }
    if serve(Source::Content) && model.contents().content.is_some() {
        rows.push(content_row(model, req, &user));
    }
    if serve(Source::Popularity) {
        rows.push(SourceRow {
            source: Source::Popularity,
            index: None,
            items: user.top_n(model, &model.contents().popularity.scores, req.n),
        });
    }
    if serve(Source::Neighbours) && model.contents().neighbours.is_some() {
        rows.push(neighbours_row(model, req, &user));
    }
    let blend = blend_rows(model, &rows, req.n, user.history.is_empty());
    Ok(Candidates { rows, blend })
}

/// The request's arguments against the model (see [`candidates`]' errors).
fn check(model: &Model, req: &CandidateRequest) -> Result<()> {
    let c = model.contents();
    let invalid = |m: String| Err(Error::InvalidArgument(m));
    if req.n == 0 || req.n > MAX_CANDIDATES {
        return invalid(format!(
            "n must be between 1 and {MAX_CANDIDATES}, got {}",
            req.n
        ));
    }
    if let Some(g) = req
        .onboarding_genres
        .iter()
        .find(|g| c.catalog.genre_index(g).is_none())
    {
        return invalid(format!("unknown onboarding genre {g:?}"));
    }
    if let Some(only) = req.only
        && !candidate_sources(model).contains(&only)
    {
        return invalid(format!("the model has no {} source", only.as_str()));
    }
    match (&req.two_tower_user, &c.two_tower) {
        (None, _) => Ok(()),
        (Some(_), None) => {
            invalid("a two-tower vector was given but the bundle has no two-tower model".into())
        }
        (Some(u), Some(t)) if u.len() != t.dim() => invalid(format!(
            "two-tower vector has {} values, the model {}",
            u.len(),
            t.dim()
        )),
        (Some(u), Some(_)) if u.iter().any(|x| !x.is_finite()) => {
            invalid("two-tower vector is not finite".into())
        }
        _ => Ok(()),
    }
}

/// The request's titles as catalog positions, and which positions no row may hold.
struct User {
    history: Vec<usize>,
    titles: Vec<usize>,
    excluded: Vec<bool>,
}

impl User {
    fn of(model: &Model, req: &CandidateRequest) -> User {
        let catalog = &model.contents().catalog;
        let positions = |ids: &[u32]| -> Vec<usize> {
            ids.iter().filter_map(|&id| catalog.position(id)).collect()
        };
        let history = positions(&req.history);
        let titles = positions(&req.onboarding_titles);
        let mut excluded = vec![false; catalog.len()];
        if req.exclude_watched {
            for &p in history.iter().chain(&titles) {
                excluded[p] = true;
            }
        }
        User {
            history,
            titles,
            excluded,
        }
    }

    /// The top `n` positions of a whole-catalog score vector, excluded titles left out.
    fn top_n(&self, model: &Model, scores: &[f32], n: usize) -> Vec<Scored> {
        scored(model, blend::top_n(scores, n, |p| self.excluded[p]))
    }
}

fn scored(model: &Model, found: Vec<(usize, f32)>) -> Vec<Scored> {
    let items = model.contents().catalog.items();
    found
        .into_iter()
        .map(|(position, score)| Scored {
            item_id: items[position].id,
            position,
            score,
        })
        .collect()
}

/// The top `n` of `vectors` against `query`, through the space's graph or a flat scan as the
/// request's [`IndexChoice`] says.
fn search(
    model: &Model,
    req: &CandidateRequest,
    user: &User,
    space: Space,
    vectors: &ItemVectors,
    query: &[f32],
) -> Result<(Vec<Scored>, IndexUsed)> {
    let graph = model.graph(space).filter(|_| match req.index {
        IndexChoice::Flat => false,
        IndexChoice::Hnsw => true,
        IndexChoice::Auto => vectors.rows() > HNSW_ABOVE,
    });
    let excluded = |p: usize| user.excluded[p];
    let (found, used) = match graph {
        Some(g) => (g.search(query, req.n, excluded)?, IndexUsed::Hnsw),
        None if vectors.is_int8() => (
            vectors.flat_top_k(query, req.n, excluded)?,
            IndexUsed::FlatInt8,
        ),
        None => (
            vectors.flat_top_k(query, req.n, excluded)?,
            IndexUsed::FlatF32,
        ),
    };
    Ok((scored(model, found), used))
}

/// iALS: fold the history and onboarding titles in, then search the item factors. A user
/// with no known title gets an empty row (fold-in would give the zero vector).
fn ials_row(model: &Model, req: &CandidateRequest, user: &User) -> Result<SourceRow> {
    let empty = SourceRow {
        source: Source::Collaborative,
        index: None,
        items: Vec::new(),
    };
    let Some(f) = &model.contents().ials else {
        return Ok(empty);
    };
    let known: Vec<(usize, f32)> = user
        .history
        .iter()
        .chain(&user.titles)
        .map(|&p| (p, 1.0))
        .collect();
    let y = f.factors();
    let x = if known.is_empty() {
        None
    } else {
        crate::ials::fold_in_rows(
            y.dim(),
            y.rows(),
            |i| y.row(i),
            f.gram(),
            &known,
            f.alpha(),
            f.lambda(),
        )
    };
    let Some(x) = x else {
        return Ok(empty);
    };
    let (items, used) = search(model, req, user, Space::Ials, y, &x)?;
    Ok(SourceRow {
        index: Some(used),
        items,
        ..empty
    })
}

fn two_tower_row(
    model: &Model,
    req: &CandidateRequest,
    user: &User,
    u: &[f32],
) -> Result<SourceRow> {
    let t = model
        .contents()
        .two_tower
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument("the bundle has no two-tower model".into()))?;
    let (items, used) = search(model, req, user, Space::TwoTower, t.item_vectors(), u)?;
    Ok(SourceRow {
        source: Source::TwoTower,
        index: Some(used),
        items,
    })
}

/// Content: the recency-weighted profile of the history plus the onboarding picks. Users
/// known only by onboarding picks get the prior weight fitted for them.
fn content_row(model: &Model, req: &CandidateRequest, user: &User) -> SourceRow {
    let mut row = SourceRow {
        source: Source::Content,
        index: None,
        items: Vec::new(),
    };
    let Some(m) = &model.contents().content else {
        return row;
    };
    let weights = recency_weights(user.history.iter().copied(), m.recency_decay());
    let onboarding = Onboarding {
        tokens: req
            .onboarding_genres
            .iter()
            .map(|g| format!("genre:{g}"))
            .collect(),
        titles: user.titles.clone(),
    };
    let profile = m.index().profile(&weights, &onboarding);
    let beta = if user.history.is_empty() {
        m.onboarding_beta()
    } else {
        m.index().beta()
    };
    row.items = user.top_n(model, &m.index().scores_with_beta(&profile, beta), req.n);
    row
}

/// Neighbours: the lists of the history (recency-weighted) and of the onboarding titles,
/// summed; only titles some list holds are proposed.
fn neighbours_row(model: &Model, req: &CandidateRequest, user: &User) -> SourceRow {
    let mut row = SourceRow {
        source: Source::Neighbours,
        index: None,
        items: Vec::new(),
    };
    let Some(nb) = &model.contents().neighbours else {
        return row;
    };
    let mut known = recency_weights(user.history.iter().copied(), nb.recency_decay());
    known.extend(user.titles.iter().map(|&p| (p, 1.0)));
    if known.is_empty() {
        return row;
    }
    let scores = nb.scores(&known);
    let found = blend::top_n(&scores, req.n, |p| user.excluded[p] || scores[p] <= 0.0);
    row.items = scored(model, found);
    row
}

/// The rows blended with the model's quotas (a `new_user`'s when they have no history), at
/// most `n` titles.
fn blend_rows(model: &Model, rows: &[SourceRow], n: usize, new_user: bool) -> Vec<Blended> {
    let lists: Vec<Vec<usize>> = rows
        .iter()
        .map(|r| r.items.iter().map(|s| s.position).collect())
        .collect();
    let ordered: Vec<(Source, &[usize])> = rows
        .iter()
        .zip(&lists)
        .map(|(r, l)| (r.source, &l[..]))
        .collect();
    let q: Vec<u32> = rows
        .iter()
        .map(|r| quota(model, r.source, new_user))
        .collect();
    let items = model.contents().catalog.items();
    blend::blend(&ordered, &q, n)
        .into_iter()
        .map(|b| Blended {
            item_id: items[b.item].id,
            position: b.item,
            placed_by: b.placed_by,
            sources: b.sources,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
    use crate::test_support::{tiny_contents, tiny_contents_with_sources};
    use proptest::prelude::*;

    fn rec() -> Model {
        Model::from_bytes(&tiny_contents_with_sources().encode()).unwrap()
    }

    fn ids(row: &[Scored]) -> Vec<u32> {
        row.iter().map(|s| s.item_id).collect()
    }

    #[test]
    fn ials_row_is_fold_in_then_top_n() {
        let r = rec();
        let c = r.contents();
        let f = c.ials.as_ref().unwrap();
        let req = CandidateRequest {
            history: vec![20, 999, 40, 20],
            onboarding_titles: vec![10],
            ..CandidateRequest::new(3)
        };
        let got = candidates(&r, &req).unwrap();
        // Positions 1, 3, 1 from the history, 0 from onboarding; 999 is unknown.
        let ItemVectors::F32(y) = f.factors() else {
            panic!("the test bundle's factors are f32")
        };
        let x = crate::ials::fold_in(
            y,
            f.gram(),
            &[(1, 1.0), (3, 1.0), (1, 1.0), (0, 1.0)],
            f.alpha(),
            f.lambda(),
        )
        .unwrap();
        let scores: Vec<f32> = (0..4).map(|i| dot(y.row(i), &x)).collect();
        let expected: Vec<Scored> = blend::top_n(&scores, 3, |p| p != 2)
            .into_iter()
            .map(|(p, s)| Scored {
                item_id: c.catalog.items()[p].id,
                position: p,
                score: s,
            })
            .collect();
        assert_eq!(got.row(Source::Collaborative).unwrap(), &expected[..]);
        assert_eq!(ids(&expected), vec![30]);
        // Without exclusion the watched titles come back.
        let all = candidates(
            &r,
            &CandidateRequest {
                exclude_watched: false,
                ..req
            },
        )
        .unwrap();
        assert_eq!(all.row(Source::Collaborative).unwrap().len(), 3);
    }

    #[test]
    fn every_source_is_served_and_watched_titles_never_appear() {
        let r = rec();
        assert_eq!(
            candidate_sources(&r),
            vec![
                Source::Collaborative,
                Source::TwoTower,
                Source::Content,
                Source::Popularity
            ]
        );
        let req = CandidateRequest {
            history: vec![40],
            two_tower_user: Some(vec![1.0, 0.0]),
            ..CandidateRequest::new(4)
        };
        let c = candidates(&r, &req).unwrap();
        let sources: Vec<Source> = c.rows.iter().map(|r| r.source).collect();
        assert_eq!(sources, Source::ALL[..4].to_vec());
        for row in &c.rows {
            assert_eq!(row.items.len(), 3, "{:?}", row.source);
            assert!(row.items.iter().all(|s| s.item_id != 40));
        }
        // Two-tower: embeddings (0.6, 0.8), (1, 0), (0, 1) against u = (1, 0).
        assert_eq!(ids(c.row(Source::TwoTower).unwrap()), vec![20, 10, 30]);
        // Content: Delta is Drama; Gamma (Action + Drama) is the only other Drama title.
        assert_eq!(c.row(Source::Content).unwrap()[0].item_id, 30);
        // Popularity: the POPL order.
        assert_eq!(ids(c.row(Source::Popularity).unwrap()), vec![10, 20, 30]);
        assert_eq!(c.blend.len(), 3);
        for b in &c.blend {
            assert!(b.item_id != 40);
            assert!(b.sources.iter().any(|(s, _)| *s == b.placed_by));
            for (s, rank) in &b.sources {
                let row = c.row(*s).unwrap();
                assert_eq!(row[*rank as usize - 1].position, b.position);
            }
        }
        assert_eq!(c.score(Source::TwoTower, 1), Some(1.0));
    }

    #[test]
    fn cold_users_get_content_from_onboarding_and_no_ials_row() {
        let r = rec();
        let req = CandidateRequest {
            onboarding_genres: vec!["Comedy".into()],
            ..CandidateRequest::new(2)
        };
        let c = candidates(&r, &req).unwrap();
        assert!(c.row(Source::Collaborative).unwrap().is_empty());
        assert!(c.row(Source::TwoTower).is_none());
        assert_eq!(c.row(Source::Content).unwrap()[0].item_id, 20);
        // Onboarding titles count as history for iALS and are filtered out.
        let req = CandidateRequest {
            onboarding_titles: vec![20],
            ..CandidateRequest::new(4)
        };
        let c = candidates(&r, &req).unwrap();
        assert_eq!(c.row(Source::Collaborative).unwrap()[0].item_id, 40);
        assert!(
            c.rows
                .iter()
                .all(|r| r.items.iter().all(|s| s.item_id != 20))
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        let r = rec();
        let code = |req: CandidateRequest| candidates(&r, &req).unwrap_err().code();
        assert_eq!(code(CandidateRequest::new(0)), "invalid_argument");
        assert_eq!(
            code(CandidateRequest::new(MAX_CANDIDATES + 1)),
            "invalid_argument"
        );
        let genre = CandidateRequest {
            onboarding_genres: vec!["Nope".into()],
            ..CandidateRequest::new(1)
        };
        assert_eq!(code(genre), "invalid_argument");
        for u in [vec![1.0], vec![f32::NAN, 0.0]] {
            let req = CandidateRequest {
                two_tower_user: Some(u),
                ..CandidateRequest::new(1)
            };
            assert_eq!(code(req), "invalid_argument");
        }
        let plain = Model::from_bytes(&tiny_contents().encode()).unwrap();
        let req = CandidateRequest {
            two_tower_user: Some(vec![1.0, 0.0]),
            ..CandidateRequest::new(1)
        };
        assert_eq!(
            candidates(&plain, &req).unwrap_err().code(),
            "invalid_argument"
        );
    }

    #[test]
    fn a_bundle_without_sources_serves_popularity_with_equal_quotas() {
        let r = Model::from_bytes(&tiny_contents().encode()).unwrap();
        assert_eq!(candidate_sources(&r), vec![Source::Popularity]);
        assert_eq!(quotas(&r, false), Quotas::EQUAL);
        assert_eq!(quotas(&r, true), Quotas::EQUAL);
        let c = candidates(&r, &CandidateRequest::new(4)).unwrap();
        assert_eq!(c.rows.len(), 1);
        let blended: Vec<u32> = c.blend.iter().map(|b| b.item_id).collect();
        assert_eq!(blended, vec![10, 40, 20, 30]);
        assert!(c.blend.iter().all(|b| b.placed_by == Source::Popularity));
    }

    #[test]
    fn blend_follows_the_bundle_quotas() {
        // Fifty items whose sources disagree completely: iALS ranks by position, popularity in
        // reverse, so every place shows whose turn it was.
        use crate::bundle::{BundleContents, IalsFactors, Quotas};
        use crate::catalog::{Catalog, Item};
        use crate::ials::Factors;
        let n_items = 50usize;
        let base = tiny_contents();
        let items = (0..n_items)
            .map(|i| Item::new(i as u32 + 1, format!("T{i}"), None, vec![0]))
            .collect();
        let catalog = Catalog::new(base.catalog.genres().to_vec(), items).unwrap();
        let values: Vec<f32> = (0..n_items).map(|i| 1.0 - i as f32 / 100.0).collect();
        let contents = BundleContents {
            popularity: crate::bundle::Popularity {
                scores: (0..n_items).map(|i| i as f32 / n_items as f32).collect(),
                ..base.popularity.clone()
            },
            catalog,
            ials: Some(
                IalsFactors::from_factors(Factors::new(1, values).unwrap(), 1.0, 0.1).unwrap(),
            ),
            quotas: Some(Quotas {
                ials: 3,
                two_tower: 0,
                content: 0,
                popularity: 1,
            }),
            // Users known only by their onboarding picks blend popularity first.
            new_user_quotas: Some(Quotas {
                ials: 0,
                two_tower: 0,
                content: 0,
                popularity: 1,
            }),
            ..base
        };
        let r = Model::from_bytes(&contents.encode()).unwrap();
        let req = CandidateRequest {
            history: vec![1],
            ..CandidateRequest::new(20)
        };
        let c = candidates(&r, &req).unwrap();
        assert_eq!(c.blend.len(), 20);
        let mut ials = 0;
        for (k, b) in c.blend.iter().enumerate() {
            if b.placed_by == Source::Collaborative {
                ials += 1;
            }
            let share = (k + 1) as f64 * 0.75;
            assert!((f64::from(ials) - share).abs() <= 1.0, "place {k}: {ials}");
        }
        assert_eq!(ials, 15);
        // No history, one onboarding pick: the new-user quotas (`QUON`), which survive the
        // bytes; iALS places a title only once popularity's row of 20 runs out.
        assert_eq!(quotas(&r, true).ials, 0);
        let new_user = CandidateRequest {
            onboarding_titles: vec![1],
            ..CandidateRequest::new(20)
        };
        let c = candidates(&r, &new_user).unwrap();
        assert!(
            c.row(Source::Collaborative)
                .is_some_and(|row| !row.is_empty())
        );
        assert!(c.blend.iter().all(|b| b.placed_by == Source::Popularity));
        // A bundle without `QUON` blends new users with `QUOT`.
        let plain = Model::from_bytes(
            &BundleContents {
                new_user_quotas: None,
                ..r.contents().clone()
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(quotas(&plain, true), quotas(&plain, false));
    }

    #[test]
    fn the_neighbour_source_sums_the_lists_of_what_was_watched() {
        use crate::bundle::{BundleContents, Neighbours};
        // Items 10, 20, 30, 40 at positions 0..4.
        let lists = vec![
            vec![(2, 0.8), (1, 0.4)],
            vec![(3, 0.6)],
            vec![(0, 0.8)],
            vec![(1, 0.6), (2, 0.1)],
        ];
        let nb = Neighbours::new(&lists, 2, 5, 0.5).unwrap();
        let r = Model::from_bytes(
            &BundleContents {
                neighbours: Some(nb),
                ..tiny_contents_with_sources()
            }
            .encode(),
        )
        .unwrap();
        assert!(candidate_sources(&r).contains(&Source::Neighbours));
        assert_eq!(quota(&r, Source::Neighbours, false), 2);
        assert_eq!(quota(&r, Source::Neighbours, true), 5);
        assert_eq!(quota(&r, Source::Collaborative, false), 2);
        // History 10 then 40: 40 weighs 1, 10 weighs 1 / (1 + 0.5). 30 gets 0.8/1.5 + 0.1,
        // 20 gets 0.4/1.5 + 0.6; watched titles are left out.
        let req = CandidateRequest {
            history: vec![10, 40],
            ..CandidateRequest::new(5)
        };
        let c = candidates(&r, &req).unwrap();
        let row = c.row(Source::Neighbours).unwrap();
        assert_eq!(ids(row), vec![20, 30]);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        assert!(close(row[0].score, 0.4 / 1.5 + 0.6), "{row:?}");
        assert!(close(row[1].score, 0.8 / 1.5 + 0.1), "{row:?}");
        // Blended and attributed like any source.
        let b = c.blend.iter().find(|b| b.item_id == 20).unwrap();
        assert!(b.sources.contains(&(Source::Neighbours, 1)));
        // Onboarding picks alone serve a new user; nothing known, nothing proposed.
        let new_user = CandidateRequest {
            onboarding_titles: vec![30],
            ..CandidateRequest::new(5)
        };
        assert_eq!(
            ids(candidates(&r, &new_user)
                .unwrap()
                .row(Source::Neighbours)
                .unwrap()),
            vec![10]
        );
        let nobody = candidates(&r, &CandidateRequest::new(5)).unwrap();
        assert!(nobody.row(Source::Neighbours).unwrap().is_empty());
        // Only the neighbour source: the blend is its row.
        let only = CandidateRequest {
            only: Some(Source::Neighbours),
            ..req
        };
        let c = candidates(&r, &only).unwrap();
        let blended: Vec<u32> = c.blend.iter().map(|b| b.item_id).collect();
        assert_eq!(blended, vec![20, 30]);
        // A bundle without NBRS has no such source, and a cut list is refused at load.
        assert_eq!(quota(&rec(), Source::Neighbours, false), 0);
        let short = BundleContents {
            neighbours: Some(
                Neighbours::new(&[vec![(1, 0.5)], vec![], vec![]], 1, 1, 0.0).unwrap(),
            ),
            ..tiny_contents_with_sources()
        };
        assert!(matches!(
            short.validate(),
            Err(crate::error::BundleError::Malformed { .. })
        ));
    }

    #[test]
    fn only_serves_one_source_and_refuses_a_missing_one() {
        let r = rec();
        let req = CandidateRequest {
            history: vec![40],
            two_tower_user: Some(vec![1.0, 0.0]),
            only: Some(Source::Content),
            ..CandidateRequest::new(3)
        };
        let c = candidates(&r, &req).unwrap();
        assert_eq!(c.rows.len(), 1);
        let content: Vec<u32> = ids(c.row(Source::Content).unwrap());
        let blended: Vec<u32> = c.blend.iter().map(|b| b.item_id).collect();
        assert_eq!(blended, content);
        let plain = Model::from_bytes(&tiny_contents().encode()).unwrap();
        let only_ials = CandidateRequest {
            only: Some(Source::Collaborative),
            ..CandidateRequest::new(3)
        };
        assert_eq!(
            candidates(&plain, &only_ials).unwrap_err().code(),
            "invalid_argument"
        );
    }

    proptest! {
        /// Every row is its source's full sort truncated to n, with no watched title.
        #[test]
        fn rows_are_sorted_truncations(
            history in proptest::collection::vec(prop_oneof![Just(10u32), Just(20), Just(30), Just(40), Just(77)], 0..6),
            n in 1usize..6,
            u in (-1.0f32..1.0, -1.0f32..1.0),
        ) {
            let r = rec();
            let small = CandidateRequest { history: history.clone(), two_tower_user: Some(vec![u.0, u.1]), ..CandidateRequest::new(n) };
            let big = CandidateRequest { n: MAX_CANDIDATES, ..small.clone() };
            let (a, b) = (candidates(&r, &small).unwrap(), candidates(&r, &big).unwrap());
            for (row, full) in a.rows.iter().zip(&b.rows) {
                let mut plain = full.items.clone();
                plain.truncate(n);
                prop_assert_eq!(&row.items, &plain);
                prop_assert!(row.items.iter().all(|s| !history.contains(&s.item_id)));
                prop_assert!(row.items.windows(2).all(|w| w[0].score > w[1].score
                    || (w[0].score == w[1].score && w[0].position < w[1].position)));
            }
            prop_assert!(a.blend.len() <= n);
        }
    }
}
