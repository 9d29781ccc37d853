//! The ranking stage: the feature catalog over the blend's candidates, then the bundle's
//! ranker in one batch — P(watch) per candidate.
//!
//! [`features`] computes every candidate's vector with [`crate::features`] (the code the
//! trainer's pipeline runs) from the bundle's media table (`MDIA`), the local history (point in
//! time: plays before the request) and the context (device, local time, season, the user's
//! country's upcoming holiday); [`score`] runs the ranker. A model without a ranker, `FEAT` or
//! `MDIA` keeps the blend's order, as the score `1 − rank / candidates` ([`blend_order`]).
//!
//! ```
//! use edgerec::context::{Context, Device};
//! use edgerec::model::Model;
//! use edgerec::stages::{candidates, ranking};
//! use edgerec::state::UserState;
//! # let bytes = edgerec::test_support::tiny_contents_for_device().encode();
//! let model = Model::from_bytes(&bytes)?;
//! let c = candidates::candidates(&model, &candidates::CandidateRequest::new(4))?;
//! let ctx = Context::new(Device::Tv, 90_000, 0)?;
//! // This bundle has no ranker: no batch, and the blend's order stands.
//! assert!(ranking::features(&model, &UserState::new(), &ctx, &c, &[]).is_none());
//! assert_eq!(ranking::blend_order(4), vec![1.0, 0.75, 0.5, 0.25]);
//! # Ok::<(), edgerec::Error>(())
//! ```

use crate::blend::Source;
use crate::context::Context;
use crate::error::Result;
use crate::features::{FeatureVector, Provenance, SourceRank, UserProfile, Vocabulary};
use crate::model::Model;
use crate::ranker::{RankerRow, history_titles};
use crate::state::UserState;

use super::candidates::Candidates;

/// What the ranker reads for one request: a feature vector per candidate, and the user's
/// `history` and `search` bags (shared by every candidate).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureBatch {
    /// One vector per blend candidate, in blend order.
    pub vectors: Vec<FeatureVector>,
    /// Finished titles, most recent first ([`history_titles`]), as long as the ranker reads.
    pub history: Vec<u32>,
    /// The request's search tokens, most recent first, as the ranker's vocabulary ids.
    pub search: Vec<u32>,
}

/// The ranker's inputs for the blend's candidates, or `None` when the model has no ranker,
/// no feature contract (`FEAT`) or no media table (`MDIA`), or there are no candidates.
///
/// Cost: O(plays + candidates × (features + sources)).
pub fn features(
    model: &Model,
    state: &UserState,
    ctx: &Context,
    cands: &Candidates,
    searches: &[String],
) -> Option<FeatureBatch> {
    let ranker = model.ranker()?;
    let mut batch = inputs(model, state, ctx, cands, ranker.contract().longest_bag())?;
    let recent_first: Vec<&String> = searches.iter().rev().collect();
    batch.search = ranker.contract().search_ids(&recent_first);
    Some(batch)
}

/// The feature vectors of the blend's candidates as the device computes them, with or
/// without a ranker: `None` without `FEAT` or `MDIA`, or without candidates. The history bag
/// holds up to `history_len` titles; the search bag is left empty (it needs a ranker's
/// vocabulary).
pub fn inputs(
    model: &Model,
    state: &UserState,
    ctx: &Context,
    cands: &Candidates,
    history_len: usize,
) -> Option<FeatureBatch> {
    let c = model.contents();
    let (features, media) = (c.features.as_ref()?, c.media.as_ref()?);
    if cands.blend.is_empty() {
        return None;
    }
    let time = ctx.timestamp();
    let space = features.space();
    let profile = profile(model, state, ctx);
    let history = state.to_history(|id| c.catalog.position(id).map(|p| p as u32));
    let before = history.before(time);
    let user = space.user_state(&profile, before, media.media(), time);
    let context = space.context(&profile, ctx);
    let provenance = provenance(model, cands);
    let vectors = cands
        .blend
        .iter()
        .zip(&provenance)
        .map(|(b, p)| {
            let mut v = space.features(
                &user,
                &context,
                &media.media()[b.position],
                b.position as u32,
                media.stats()[b.position],
            );
            space.push_provenance(&mut v, p);
            v
        })
        .collect();
    Some(FeatureBatch {
        vectors,
        history: history_titles(before, media.media(), history_len),
        search: Vec::new(),
    })
}

/// The sources of the candidate family, in [`crate::features::PROVENANCE_SOURCES`] order: the
/// four of `FEAT` v2's family. The neighbour source is not in it: a ranker sees the titles it
/// proposes only through the blend's rank and position.
const PROVENANCE: [Source; 4] = [
    Source::Collaborative,
    Source::TwoTower,
    Source::Content,
    Source::Popularity,
];

/// What the first stage knew about each blend candidate, in blend order: its blend rank,
/// every source's rank and score over the row's best, and the bundle's popularity.
pub fn provenance(model: &Model, cands: &Candidates) -> Vec<Provenance> {
    // Each source's row, in the candidate family's order (`PROVENANCE_SOURCES`).
    let rows = PROVENANCE.map(|s| cands.row(s).unwrap_or(&[]));
    let tops = rows.map(|r| r.first().map_or(0.0, |x| x.score));
    let popularity = &model.contents().popularity.scores;
    let n = cands.blend.len() as u32;
    cands
        .blend
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut sources = [SourceRank::default(); 4];
            for (k, s) in PROVENANCE.into_iter().enumerate() {
                if let Some(&(_, rank)) = b.sources.iter().find(|(src, _)| *src == s) {
                    // The blend's rank is the 1-based position in that very row.
                    let score = rows[k]
                        .get((rank as usize).saturating_sub(1))
                        .map_or(0.0, |x| x.score);
                    sources[k] = SourceRank {
                        rank,
                        relative_score: if tops[k] > 0.0 {
                            (score / tops[k]).clamp(-1.0, 1.0)
                        } else {
                            0.0
                        },
                    };
                }
            }
            Provenance {
                blend_rank: i as u32,
                candidates: n,
                sources,
                popularity: popularity.get(b.position).copied().unwrap_or(0.0),
            }
        })
        .collect()
}

/// P(watch) for every vector of `batch`, in order, from the model's ranker (an empty vector
/// for a model without one).
///
/// Errors: [`Error::Ranker`](crate::Error::Ranker) when the runtime fails.
pub fn score(model: &Model, batch: &FeatureBatch) -> Result<Vec<f32>> {
    let Some(ranker) = model.ranker() else {
        return Ok(Vec::new());
    };
    let rows: Vec<RankerRow<'_>> = batch
        .vectors
        .iter()
        .map(|f| RankerRow {
            features: f,
            history: &batch.history,
            search: &batch.search,
        })
        .collect();
    ranker.score_rows(&rows)
}

/// The score that keeps the blend's order: `1 − rank / n` for ranks `0..n`.
pub fn blend_order(n: usize) -> Vec<f32> {
    let len = n.max(1) as f32;
    (0..n).map(|i| 1.0 - i as f32 / len).collect()
}

/// The feature code's profile of the local user. The device knows no sign-up time: the
/// first recorded play stands in for it (the request's time without plays).
fn profile(model: &Model, state: &UserState, ctx: &Context) -> UserProfile {
    let s = state.settings();
    let vocab = model
        .contents()
        .features
        .as_ref()
        .map(|f| f.space().vocabularies());
    let id = |v: Option<&Vocabulary>, name: Option<&str>| -> u32 {
        match (v, name) {
            (Some(v), Some(n)) => v.id(n),
            _ => 0,
        }
    };
    UserProfile {
        age: s.age(),
        gender: s.gender(),
        language: id(vocab.map(|v| &v.languages), s.language()),
        country: id(vocab.map(|v| &v.countries), s.country()),
        utc_offset_minutes: ctx.utc_offset_minutes(),
        signup_time: state
            .plays()
            .iter()
            .map(|p| p.started)
            .min()
            .unwrap_or(ctx.timestamp())
            .min(ctx.timestamp()),
        onboarding_genres: state
            .onboarding()
            .genres()
            .iter()
            .map(|g| id(vocab.map(|v| &v.genres), Some(g.as_str())))
            .filter(|&g| g != 0)
            .collect(),
    }
}
