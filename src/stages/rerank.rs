//! The rerank stage: the model's and the user's side of [`Reranker::rerank`].
//!
//! It hands the reranker what it needs from the model and the local state: each candidate's
//! genres, maturity (from `MDIA`; a title whose maturity is unknown counts as the highest
//! rating, so a profile with a maturity limit never sees it) and diversity embedding (the
//! two-tower embedding, else the iALS factors, else genres alone), the finished titles, the
//! unplayed impressions (fatigue), the profile's maturity limit, the recently finished titles
//! and onboarding genres that reasons may name.
//!
//! ```
//! use edgerec::context::{Context, Device};
//! use edgerec::model::Model;
//! use edgerec::rerank::{RerankSettings, Reranker};
//! use edgerec::stages::{candidates, ranking, rerank};
//! use edgerec::state::UserState;
//! # let bytes = edgerec::test_support::tiny_contents_for_device().encode();
//! let model = Model::from_bytes(&bytes)?;
//! let mut state = UserState::new();
//! state.record_play(10, 1_000, 1.0)?;
//! let c = candidates::candidates(&model, &candidates::CandidateRequest::new(4))?;
//! let scores = ranking::blend_order(c.blend.len());
//! let reranker = Reranker::new(RerankSettings::default())?;
//! let ctx = Context::new(Device::Tv, 90_000, 0)?;
//! let row = rerank::rerank(&model, &state, &ctx, &c.blend, &scores, &reranker)?;
//! assert!(row.iter().all(|r| r.item_id != 10)); // finished: filtered here, whatever the blend
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::borrow::Cow;

use crate::blend::Source;
use crate::context::Context;
use crate::error::Result;
use crate::features::Maturity;
use crate::model::Model;
use crate::rerank::{GenrePick, Reason, RerankCandidate, RerankRequest, Reranker, Watched};
use crate::state::UserState;

use super::candidates::Blended;

/// Recently finished titles the rerank stage may name in "Because you watched …".
const RECENT_FOR_REASONS: usize = 20;

/// One title of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowItem {
    /// The item id.
    pub item_id: u32,
    /// Position in the catalog.
    pub position: usize,
    /// P(watch) from the ranker, or the blend order's score without one.
    pub score: f32,
    /// The candidate source whose blend turn placed it.
    pub placed_by: Source,
    /// Every source that proposed it, with its rank there.
    pub sources: Vec<(Source, u32)>,
    /// Why it is shown.
    pub reason: Reason,
}

/// The row for `state` from the blend's candidates and their `scores` (one per candidate):
/// [`Reranker::rerank`] with the model's and the state's inputs (see the module doc).
///
/// Errors: those of [`Reranker::rerank`] (a score count that differs from the candidates').
pub fn rerank(
    model: &Model,
    state: &UserState,
    ctx: &Context,
    blend: &[Blended],
    scores: &[f32],
    reranker: &Reranker,
) -> Result<Vec<RowItem>> {
    let c = model.contents();
    let catalog = &c.catalog;
    let vectors = c
        .two_tower
        .as_ref()
        .map(|t| t.item_vectors())
        .or_else(|| c.ials.as_ref().map(|f| f.factors()));
    let embedding = |p: usize| -> Option<Cow<'_, [f32]>> { vectors.map(|v| v.row(p)) };
    let maturity = |p: usize| -> Maturity {
        c.media
            .as_ref()
            .map_or(Maturity::Nc17, |m| m.media()[p].maturity)
    };
    let cand_embeddings: Vec<Option<Cow<'_, [f32]>>> =
        blend.iter().map(|b| embedding(b.position)).collect();
    let finished = state.finished_titles();
    let recent = Recent::of(model, &finished);
    let because = neighbour_anchors(model, &recent, blend);
    let candidates: Vec<RerankCandidate<'_>> = blend
        .iter()
        .zip(scores)
        .zip(&cand_embeddings)
        .zip(&because)
        .map(|(((b, &score), e), &because)| RerankCandidate {
            item_id: b.item_id,
            score,
            genres: &catalog.items()[b.position].genres,
            embedding: e.as_deref(),
            maturity: maturity(b.position),
            source: b.placed_by,
            because,
        })
        .collect();
    let impressions = state.unplayed_impressions();
    let recent_embeddings: Vec<Option<Cow<'_, [f32]>>> =
        recent.titles.iter().map(|&(_, p)| embedding(p)).collect();
    let watched = recent.watched(model, &recent_embeddings);
    let picks: Vec<GenrePick<'_>> = state
        .onboarding()
        .genres()
        .iter()
        .filter_map(|g| {
            catalog.genre_index(g).map(|i| GenrePick {
                genre: i as u16,
                name: g,
            })
        })
        .collect();
    let request = RerankRequest {
        finished: &finished,
        impressions: &impressions,
        maturity_limit: state.settings().maturity_limit(),
        recent: &watched,
        picked_genres: &picks,
        ..RerankRequest::new(*ctx)
    };
    Ok(reranker
        .rerank(&candidates, &request)?
        .into_iter()
        .map(|r| {
            let b = &blend[r.position];
            RowItem {
                item_id: r.item_id,
                position: b.position,
                score: r.score,
                placed_by: b.placed_by,
                sources: b.sources.clone(),
                reason: r.reason,
            }
        })
        .collect())
}

/// For each candidate the neighbour source proposed, the recent title whose neighbour list
/// gives it the largest similarity (ties to the more recent): what "Because you watched …"
/// names for it. `None` for the others and without `NBRS`. Cost O(recent · list length +
/// candidates).
fn neighbour_anchors(model: &Model, recent: &Recent, blend: &[Blended]) -> Vec<Option<u32>> {
    let Some(nb) = &model.contents().neighbours else {
        return vec![None; blend.len()];
    };
    let mut best: std::collections::HashMap<usize, (f32, u32)> = Default::default();
    for &(item_id, p) in &recent.titles {
        for (j, sim) in nb.of(p) {
            let e = best.entry(j).or_insert((sim, item_id));
            if sim > e.0 {
                *e = (sim, item_id);
            }
        }
    }
    blend
        .iter()
        .map(|b| {
            let proposed = b.sources.iter().any(|(s, _)| *s == Source::Neighbours);
            proposed
                .then(|| best.get(&b.position).map(|&(_, id)| id))
                .flatten()
        })
        .collect()
}

/// The most recently finished titles a reason may name, with their display titles.
struct Recent {
    /// `(item id, catalog position)`, most recent first.
    titles: Vec<(u32, usize)>,
    names: Vec<String>,
}

impl Recent {
    fn of(model: &Model, finished: &[u32]) -> Recent {
        let catalog = &model.contents().catalog;
        let titles: Vec<(u32, usize)> = finished
            .iter()
            .filter_map(|&id| catalog.position(id).map(|p| (id, p)))
            .take(RECENT_FOR_REASONS)
            .collect();
        let names = titles
            .iter()
            .map(|&(_, p)| catalog.items()[p].display_title())
            .collect();
        Recent { titles, names }
    }

    fn watched<'a>(
        &'a self,
        model: &'a Model,
        embeddings: &'a [Option<Cow<'a, [f32]>>],
    ) -> Vec<Watched<'a>> {
        let items = model.contents().catalog.items();
        self.titles
            .iter()
            .zip(&self.names)
            .zip(embeddings)
            .map(|((&(item_id, p), title), e)| Watched {
                item_id,
                title,
                genres: &items[p].genres,
                embedding: e.as_deref(),
            })
            .collect()
    }
}
