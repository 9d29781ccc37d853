//! The whole on-device pipeline: from the user's local state and a request context to a
//! reranked row, with the time each stage took.
//!
//! [`Recommender::recommend_row`] runs, in order:
//!
//! 1. **user** — the state's finished plays (above [`WATCHED_ABOVE`](crate::ranker::WATCHED_ABOVE)), oldest first, are the
//!    history; with a two-tower model the bundle's user tower (tract) embeds the history, the
//!    search tokens and [`two_tower_dense`] of the request;
//! 2. **candidates** — [`Recommender::candidates`]: iALS fold-in, the two-tower vector, the
//!    content index (history and onboarding picks) and popularity, each searched flat (int8 or
//!    f32) or through the bundle's HNSW graph ([`IndexChoice`]), blended by the bundle's quotas
//!    to the top `candidates` titles with their sources;
//! 3. **features** — with a ranker, the feature catalog ([`crate::features`], the same code the
//!    trainer's pipeline runs) computes every candidate's vector from the bundle's media table
//!    (`MDIA`), the local history (point in time: plays before the request) and the context
//!    (device, local time, season, the user's country's upcoming holiday);
//! 4. **ranking** — the bundle's ranker scores all candidates in one batch: P(watch). Without a
//!    ranker (or with [`RowRequest::use_ranker`] off) the blend's order is kept, as the score
//!    `1 − rank / candidates`;
//! 5. **rerank** — [`Reranker`]: finished titles, fatigued titles (shown
//!    [`RerankSettings::fatigue_impressions`] times without a play), titles above the profile's
//!    maturity limit go; MMR over the two-tower (else iALS) embeddings, or genres, keeps the row
//!    diverse; each title gets a reason.
//!
//! Everything is deterministic: the same bundle, state and request give the same row natively
//! and in wasm (the JS tests replay the native rows). A title whose maturity is unknown (a
//! bundle without `MDIA`) counts as the highest rating, so a profile with a maturity limit never
//! sees it.
//!
//! ```
//! use edgerec::{Recommender, context::{Context, Device}};
//! use edgerec::device::RowRequest;
//! use edgerec::state::UserState;
//! # let bytes = edgerec::bundle::tests_support::tiny_contents_for_device().encode();
//! let rec = Recommender::from_bytes(&bytes)?;
//! let mut state = UserState::new();
//! state.record_play(10, 1_000, 1.0)?;                      // finished Alpha
//! let ctx = Context::new(Device::Tv, 90_000, 60)?;
//! let row = rec.recommend_row(&state, &RowRequest::new(ctx))?;
//! assert!(row.items.iter().all(|r| r.item_id != 10));       // finished titles never return
//! assert!(row.items.len() <= 3);                            // the bundle's SERV asks for rows of 3
//! assert!(row.timings.total_ms >= 0.0);
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::borrow::Cow;

use crate::blend::Source;
use crate::bundle::{BundleContents, ServingSettings};
use crate::candidates::{Blended, CandidateRequest, two_tower_dense};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::features::{Gender, Maturity, UserProfile};
use crate::ranker::{RankerRow, history_titles};
use crate::recommend::{MAX_K, Recommender};
use crate::rerank::{
    GenrePick, Reason, RerankCandidate, RerankRequest, RerankSettings, Reranker, Watched,
};
use crate::retrieval::{IndexChoice, IndexUsed};
use crate::state::UserState;
use crate::tower::UserInput;

/// Recently finished titles the rerank stage may name in "Because you watched …".
const RECENT_FOR_REASONS: usize = 20;

/// Most search tokens a request may carry.
pub const MAX_SEARCH_TOKENS: usize = 256;

/// One request for a row. Build it with [`RowRequest::new`] and struct update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRequest {
    /// Device and local time.
    pub context: Context,
    /// Row length; default the bundle's serving settings (`SERV`), else 10.
    pub k: Option<usize>,
    /// Blend candidates to rank; default the bundle's serving settings, else 500.
    pub candidates: Option<usize>,
    /// Flat scan or HNSW for the embedding sources.
    pub index: IndexChoice,
    /// Rerank settings instead of the bundle's (`k` above still wins when given).
    pub rerank: Option<RerankSettings>,
    /// The user's recent search tokens, oldest first (two-tower and ranker search inputs).
    pub searches: Vec<String>,
    /// Score candidates with the bundle's ranker when it has one (default `true`).
    pub use_ranker: bool,
}

impl RowRequest {
    /// A request in `context` with the bundle's defaults.
    pub fn new(context: Context) -> RowRequest {
        RowRequest {
            context,
            k: None,
            candidates: None,
            index: IndexChoice::Auto,
            rerank: None,
            searches: Vec::new(),
            use_ranker: true,
        }
    }
}

/// Milliseconds per stage of one request (all 0 without a clock).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// History from the state; the user tower.
    pub user_ms: f64,
    /// Every candidate source and the blend.
    pub candidates_ms: f64,
    /// Feature vectors of the candidates.
    pub features_ms: f64,
    /// The ranker's batch.
    pub ranking_ms: f64,
    /// Filters, MMR and reasons.
    pub rerank_ms: f64,
    /// The whole request.
    pub total_ms: f64,
}

/// One title of the row.
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

/// What a request did besides the row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowInfo {
    /// Blend candidates produced.
    pub candidates: usize,
    /// Whether the ranker scored them.
    pub ranked: bool,
    /// The sources served and, for the embedding sources, the index searched.
    pub sources: Vec<(Source, Option<IndexUsed>)>,
}

/// A reranked row, with how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The titles, best first.
    pub items: Vec<RowItem>,
    /// Time per stage.
    pub timings: Timings,
    /// Candidates, ranking and indexes used.
    pub info: RowInfo,
}

fn gender_code(g: Gender) -> &'static str {
    match g {
        Gender::Female => "f",
        Gender::Male => "m",
        Gender::Other | Gender::Unknown => "x",
    }
}

impl Recommender {
    /// The serving settings: the bundle's `SERV`, or the defaults.
    pub fn serving(&self) -> ServingSettings {
        self.bundle().contents().serving.clone().unwrap_or_default()
    }

    /// [`recommend_row_timed`](Self::recommend_row_timed) with the platform's clock natively
    /// and no timings (zeros) on wasm32, where the caller passes the host's clock instead.
    pub fn recommend_row(&self, state: &UserState, req: &RowRequest) -> Result<Row> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let start = std::time::Instant::now();
            self.recommend_row_timed(state, req, &|| start.elapsed().as_secs_f64() * 1e3)
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.recommend_row_timed(state, req, &|| 0.0)
        }
    }

    /// The row for `state` (see the [module docs](self)); `now` is a clock in milliseconds
    /// used only for [`Row::timings`].
    ///
    /// Errors: [`Error::InvalidArgument`] for `k` or `candidates` outside `1..=`[`MAX_K`], bad
    /// rerank settings, more than [`MAX_SEARCH_TOKENS`] search tokens, or an onboarding genre
    /// the catalog does not know.
    pub fn recommend_row_timed(
        &self,
        state: &UserState,
        req: &RowRequest,
        now: &dyn Fn() -> f64,
    ) -> Result<Row> {
        let t0 = now();
        let c = self.bundle().contents();
        let catalog = &c.catalog;
        let serving = self.serving();
        let mut settings = req.rerank.clone().unwrap_or(serving.rerank);
        if let Some(k) = req.k {
            settings.k = k;
        }
        let reranker = Reranker::new(settings)?;
        let n = req.candidates.unwrap_or(serving.candidates);
        if n == 0 || n > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "candidates must be between 1 and {MAX_K}, got {n}"
            )));
        }
        if req.searches.len() > MAX_SEARCH_TOKENS {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_SEARCH_TOKENS} search tokens, got {}",
                req.searches.len()
            )));
        }
        let ctx = &req.context;
        let time = ctx.timestamp();

        // 1. The user: finished titles, oldest first, and the two-tower vector.
        let finished_oldest: Vec<u32> = state
            .plays()
            .iter()
            .filter(|p| p.finished() && p.started < time)
            .map(|p| p.item)
            .collect();
        let settings_ = state.settings();
        let two_tower_user = match (self.bundle().tower(), &c.two_tower) {
            (Some(tower), Some(t)) => {
                let input = UserInput {
                    history: finished_oldest
                        .iter()
                        .filter_map(|&id| catalog.position(id))
                        .map(|p| p as u32)
                        .collect(),
                    searches: t.search_ids(&req.searches),
                    dense: two_tower_dense(
                        settings_.age().unwrap_or(0),
                        gender_code(settings_.gender()),
                        ctx.utc_offset_minutes(),
                        time,
                    ),
                };
                Some(tower.embed_one(&input)?)
            }
            _ => None,
        };
        let t1 = now();

        // 2. Candidates.
        let creq = CandidateRequest {
            history: finished_oldest.clone(),
            onboarding_genres: state.onboarding().genres().to_vec(),
            onboarding_titles: state.onboarding().items().to_vec(),
            two_tower_user,
            n,
            exclude_watched: true,
            index: req.index,
        };
        let cands = self.candidates(&creq)?;
        let blend = &cands.blend;
        let t2 = now();

        // 3–4. Features and the ranker.
        let ranker = self
            .bundle()
            .ranker()
            .filter(|_| req.use_ranker && !blend.is_empty());
        let (scores, ranked, t3) = match (ranker, &c.features, &c.media) {
            (Some(ranker), Some(features), Some(media)) => {
                let space = features.space();
                let profile = self.feature_profile(state, ctx);
                let history = state.to_history(|id| catalog.position(id).map(|p| p as u32));
                let before = history.before(time);
                let user = space.user_state(&profile, before, media.media(), time);
                let context = space.context(&profile, ctx);
                let vectors: Vec<_> = blend
                    .iter()
                    .map(|b| {
                        space.features(
                            &user,
                            &context,
                            &media.media()[b.position],
                            b.position as u32,
                            media.stats()[b.position],
                        )
                    })
                    .collect();
                let contract = ranker.contract();
                let max_history = contract
                    .bags
                    .iter()
                    .map(|b| b.len as usize)
                    .max()
                    .unwrap_or(0);
                let titles = history_titles(before, media.media(), max_history);
                let recent_first: Vec<&String> = req.searches.iter().rev().collect();
                let search = contract.search_ids(&recent_first);
                let rows: Vec<RankerRow<'_>> = vectors
                    .iter()
                    .map(|f| RankerRow {
                        features: f,
                        history: &titles,
                        search: &search,
                    })
                    .collect();
                let t3 = now();
                (ranker.score_rows(&rows)?, true, t3)
            }
            _ => {
                let len = blend.len().max(1) as f32;
                let s = (0..blend.len()).map(|i| 1.0 - i as f32 / len).collect();
                let t3 = now();
                (s, false, t3)
            }
        };
        let t4 = now();

        // 5. Rerank.
        let row = self.rerank_row(state, ctx, blend, &scores, &reranker)?;
        let t5 = now();
        Ok(Row {
            items: row,
            timings: Timings {
                user_ms: t1 - t0,
                candidates_ms: t2 - t1,
                features_ms: t3 - t2,
                ranking_ms: t4 - t3,
                rerank_ms: t5 - t4,
                total_ms: t5 - t0,
            },
            info: RowInfo {
                candidates: blend.len(),
                ranked,
                sources: cands.rows.iter().map(|r| (r.source, r.index)).collect(),
            },
        })
    }

    /// The feature code's profile of the local user. The device knows no sign-up time: the
    /// first recorded play stands in for it (the request's time without plays).
    fn feature_profile(&self, state: &UserState, ctx: &Context) -> UserProfile {
        let c = self.bundle().contents();
        let s = state.settings();
        let (vocab, genres) = match &c.features {
            Some(f) => (
                Some(f.space().vocabularies()),
                &f.space().vocabularies().genres,
            ),
            None => (None, &crate::features::Vocabulary::default()),
        };
        let _ = genres;
        let id = |v: Option<&crate::features::Vocabulary>, name: Option<&str>| -> u32 {
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

    /// Step 5 of [`recommend_row_timed`](Self::recommend_row_timed).
    fn rerank_row(
        &self,
        state: &UserState,
        ctx: &Context,
        blend: &[Blended],
        scores: &[f32],
        reranker: &Reranker,
    ) -> Result<Vec<RowItem>> {
        let c: &BundleContents = self.bundle().contents();
        let catalog = &c.catalog;
        // Diversity embeddings: two-tower, else iALS, else genres only.
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
        let candidates: Vec<RerankCandidate<'_>> = blend
            .iter()
            .zip(scores)
            .zip(&cand_embeddings)
            .map(|((b, &score), e)| RerankCandidate {
                item_id: b.item_id,
                score,
                genres: &catalog.items()[b.position].genres,
                embedding: e.as_deref(),
                maturity: maturity(b.position),
                source: b.placed_by,
            })
            .collect();
        let finished = state.finished_titles();
        let impressions = state.unplayed_impressions();
        let recent_pos: Vec<(u32, usize)> = finished
            .iter()
            .filter_map(|&id| catalog.position(id).map(|p| (id, p)))
            .take(RECENT_FOR_REASONS)
            .collect();
        let titles: Vec<String> = recent_pos
            .iter()
            .map(|&(_, p)| catalog.items()[p].display_title())
            .collect();
        let recent_embeddings: Vec<Option<Cow<'_, [f32]>>> =
            recent_pos.iter().map(|&(_, p)| embedding(p)).collect();
        let recent: Vec<Watched<'_>> = recent_pos
            .iter()
            .zip(&titles)
            .zip(&recent_embeddings)
            .map(|((&(item_id, p), title), e)| Watched {
                item_id,
                title,
                genres: &catalog.items()[p].genres,
                embedding: e.as_deref(),
            })
            .collect();
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
            recent: &recent,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests_support::tiny_contents_for_device;
    use crate::context::Device;
    use crate::state::UserState;

    fn rec() -> Recommender {
        Recommender::from_bytes(&tiny_contents_for_device().encode()).unwrap()
    }

    fn ctx() -> Context {
        Context::new(Device::Tv, 100_000, 0).unwrap()
    }

    fn ids(row: &Row) -> Vec<u32> {
        row.items.iter().map(|r| r.item_id).collect()
    }

    #[test]
    fn finished_fatigued_and_too_mature_titles_never_appear() {
        let r = rec();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        let all = r
            .recommend_row(
                &s,
                &RowRequest {
                    k: Some(4),
                    ..RowRequest::new(ctx())
                },
            )
            .unwrap();
        assert!(!ids(&all).contains(&10));
        assert_eq!(all.items.len(), 3);
        // Shown twice without a play: fatigued (the bundle's SERV says 2).
        s.record_impression(&[20], 2_000);
        s.record_impression(&[20], 3_000);
        let row = r.recommend_row(&s, &RowRequest::new(ctx())).unwrap();
        assert!(!ids(&row).contains(&20), "{:?}", ids(&row));
        // Item 30 is rated R.
        s.settings_mut().set_maturity_limit(Some(Maturity::Pg13));
        let row = r.recommend_row(&s, &RowRequest::new(ctx())).unwrap();
        assert!(!ids(&row).contains(&30));
        assert_eq!(ids(&row), vec![40]);
    }

    #[test]
    fn rows_follow_the_blend_without_a_ranker_and_report_their_stages() {
        let r = rec();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        let req = RowRequest {
            rerank: Some(RerankSettings {
                k: 3,
                lambda: 1.0,
                fatigue_impressions: 0,
                max_per_genre: None,
            }),
            ..RowRequest::new(ctx())
        };
        let row = r.recommend_row(&s, &req).unwrap();
        assert!(!row.info.ranked);
        let blend = r
            .candidates(&CandidateRequest {
                history: vec![10],
                n: 4,
                ..CandidateRequest::new(4)
            })
            .unwrap()
            .blend;
        let want: Vec<u32> = blend.iter().take(3).map(|b| b.item_id).collect();
        assert_eq!(ids(&row), want);
        assert_eq!(row.info.candidates, blend.len());
        assert!(
            row.info
                .sources
                .contains(&(Source::Collaborative, Some(IndexUsed::FlatF32)))
        );
        let t = row.timings;
        assert!(t.total_ms >= t.user_ms + t.candidates_ms + t.rerank_ms - 1e-9);
        // Same request, same row (no hidden state).
        assert_eq!(r.recommend_row(&s, &req).unwrap().items, row.items);
    }

    #[test]
    fn onboarding_picks_serve_a_new_user_and_bad_requests_are_refused() {
        let r = rec();
        let mut s = UserState::new();
        s.set_onboarding(&["Comedy"], &[]).unwrap();
        let row = r.recommend_row(&s, &RowRequest::new(ctx())).unwrap();
        assert_eq!(row.items[0].item_id, 20);
        let bad = |req: RowRequest| r.recommend_row(&s, &req).unwrap_err().code();
        assert_eq!(
            bad(RowRequest {
                k: Some(0),
                ..RowRequest::new(ctx())
            }),
            "invalid_argument"
        );
        assert_eq!(
            bad(RowRequest {
                candidates: Some(MAX_K + 1),
                ..RowRequest::new(ctx())
            }),
            "invalid_argument"
        );
        assert_eq!(
            bad(RowRequest {
                searches: vec!["x".into(); MAX_SEARCH_TOKENS + 1],
                ..RowRequest::new(ctx())
            }),
            "invalid_argument"
        );
    }

    #[test]
    fn int8_vectors_serve_the_same_row_here() {
        let mut c = tiny_contents_for_device();
        c.ials = Some(c.ials.as_ref().unwrap().quantized().unwrap());
        let q = Recommender::from_bytes(&c.encode()).unwrap();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        let row = q.recommend_row(&s, &RowRequest::new(ctx())).unwrap();
        assert!(
            row.info
                .sources
                .contains(&(Source::Collaborative, Some(IndexUsed::FlatInt8)))
        );
        assert_eq!(
            ids(&row),
            ids(&rec().recommend_row(&s, &RowRequest::new(ctx())).unwrap())
        );
    }
}
