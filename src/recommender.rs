//! The one recommendation path: from the user's local state and a request context to a
//! reranked row, with the time each stage took.
//!
//! [`Recommender::recommend_row`] runs the [stages](crate::stages) in order:
//!
//! 1. **user** — the state's finished plays, oldest first, are the history; with a two-tower
//!    model the bundle's user tower embeds the history, the search tokens and the profile at
//!    the request's local time ([`stages::user`]);
//! 2. **candidates** — iALS fold-in, the two-tower vector, the content index (history and
//!    onboarding picks) and popularity, each searched flat (int8 or f32) or through the
//!    bundle's HNSW graph ([`IndexChoice`]), blended by the bundle's quotas to the top
//!    `candidates` titles with their sources ([`stages::candidates`]);
//! 3. **features** and 4. **ranking** — with a ranker, the feature catalog computes every
//!    candidate's vector and the ranker scores them in one batch: P(watch). Without a ranker
//!    (or with [`RowRequest::use_ranker`] off) the blend's order is kept ([`stages::ranking`]);
//! 5. **rerank** — finished titles, fatigued titles (shown
//!    [`RerankSettings::fatigue_impressions`](crate::rerank::RerankSettings::fatigue_impressions)
//!    times without a play) and titles above the profile's maturity limit go; MMR keeps the
//!    row diverse; each title gets a reason ([`stages::rerank`]).
//!
//! Those filters hold on every row this crate returns: there is no other public way to get
//! titles for a user. Everything is deterministic: the same bundle, state and request give the
//! same row natively and in wasm (the JS tests replay the native rows).
//!
//! ```
//! use edgerec::{Recommender, RowRequest};
//! use edgerec::context::{Context, Device};
//! use edgerec::state::UserState;
//! # let bytes = edgerec::test_support::tiny_contents_for_device().encode();
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

use crate::blend::Source;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::limits::{MAX_CANDIDATES, MAX_SEARCH_TOKENS};
use crate::model::{LoadOptions, Model};
use crate::rerank::{RerankOverrides, Reranker};
use crate::retrieval::{IndexChoice, IndexUsed};
use crate::stages::candidates::{CandidateRequest, Candidates, candidates};
use crate::stages::ranking::FeatureBatch;
use crate::stages::rerank::{RowItem, rerank};
use crate::stages::{ranking, user};
use crate::state::UserState;

/// One request for a row. Build it with [`RowRequest::new`] and struct update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRequest {
    /// Device and local time.
    pub context: Context,
    /// Row length; default the bundle's serving settings (`SERV`), else 10.
    pub k: Option<usize>,
    /// Blend candidates to rank, `1..=`[`MAX_CANDIDATES`]; default the bundle's serving
    /// settings, else 500.
    pub candidates: Option<usize>,
    /// Flat scan or HNSW for the embedding sources.
    pub index: IndexChoice,
    /// Changes to the bundle's rerank settings.
    pub rerank: RerankOverrides,
    /// The user's recent search tokens, oldest first (two-tower and ranker search inputs);
    /// at most [`MAX_SEARCH_TOKENS`].
    pub searches: Vec<String>,
    /// Score candidates with the bundle's ranker when it has one (default `true`).
    pub use_ranker: bool,
    /// Propose candidates from this source alone (to look at one source through the same
    /// filters and rerank); `None`, the default, blends every source.
    pub only_source: Option<Source>,
}

impl RowRequest {
    /// A request in `context` with the bundle's defaults.
    pub fn new(context: Context) -> RowRequest {
        RowRequest {
            context,
            k: None,
            candidates: None,
            index: IndexChoice::Auto,
            rerank: RerankOverrides::default(),
            searches: Vec::new(),
            use_ranker: true,
            only_source: None,
        }
    }
}

/// Milliseconds per stage of one request (all 0 without a clock). Serialises as the npm
/// package's `Timings` (camelCase keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
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

/// A loaded model that answers row requests. Cheap to query repeatedly; holds no per-user
/// state (the caller keeps the [`UserState`]).
#[derive(Debug, Clone)]
pub struct Recommender {
    model: Model,
}

impl Recommender {
    /// Verifies and loads a bundle ([`Model::from_bytes`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Recommender> {
        Ok(Recommender::new(Model::from_bytes(bytes)?))
    }

    /// Verifies and loads a bundle under `options` (a memory budget:
    /// [`Model::from_bytes_with`]).
    pub fn from_bytes_with(bytes: &[u8], options: &LoadOptions) -> Result<Recommender> {
        Ok(Recommender::new(Model::from_bytes_with(bytes, options)?))
    }

    /// A recommender over an already loaded model.
    pub fn new(model: Model) -> Recommender {
        Recommender { model }
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
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
    /// Errors: [`Error::InvalidArgument`] for `k` outside `1..=`[`MAX_K`](crate::limits::MAX_K),
    /// `candidates` outside `1..=`[`MAX_CANDIDATES`], bad rerank overrides, more than
    /// [`MAX_SEARCH_TOKENS`] search tokens, an onboarding genre the catalog does not know, or
    /// an `only_source` the model lacks.
    pub fn recommend_row_timed(
        &self,
        state: &UserState,
        req: &RowRequest,
        now: &dyn Fn() -> f64,
    ) -> Result<Row> {
        let t0 = now();
        let (reranker, n) = self.settings(req)?;
        let ctx = &req.context;
        let (cands, t1) = self.first_stage(state, req, n, now)?;
        let blend = &cands.blend;
        let t2 = now();
        let batch = req
            .use_ranker
            .then(|| ranking::features(&self.model, state, ctx, &cands, &req.searches))
            .flatten();
        let t3 = now();
        let (scores, ranked) = match &batch {
            Some(b) => (ranking::score(&self.model, b)?, true),
            None => (ranking::blend_order(blend.len()), false),
        };
        let t4 = now();
        let items = rerank(&self.model, state, ctx, blend, &scores, &reranker)?;
        let t5 = now();
        Ok(Row {
            items,
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

    /// What the ranking stage would read for this request, with or without a ranker in the
    /// bundle: the first stage's candidates (every source's row and the blend) and their
    /// feature vectors as [`ranking::inputs`] computes them (`None` without `FEAT` and `MDIA`,
    /// or without candidates). This is what a ranker is trained on — the device's own
    /// candidates and features — so training and serving share one code path. The request is
    /// validated as by [`recommend_row`](Self::recommend_row).
    pub fn ranker_inputs(
        &self,
        state: &UserState,
        req: &RowRequest,
    ) -> Result<(Candidates, Option<FeatureBatch>)> {
        let (_, n) = self.settings(req)?;
        let (cands, _) = self.first_stage(state, req, n, &|| 0.0)?;
        let history_len = self
            .model
            .ranker()
            .map_or(0, |r| r.contract().longest_bag());
        let batch = ranking::inputs(&self.model, state, &req.context, &cands, history_len);
        Ok((cands, batch))
    }

    /// The user stage and the candidates (`n` of them), and the clock after the user stage.
    fn first_stage(
        &self,
        state: &UserState,
        req: &RowRequest,
        n: usize,
        now: &dyn Fn() -> f64,
    ) -> Result<(Candidates, f64)> {
        let query = user::query(&self.model, state, &req.context, &req.searches)?;
        let t1 = now();
        let creq = CandidateRequest {
            history: query.history,
            onboarding_genres: state.onboarding().genres().to_vec(),
            onboarding_titles: state.onboarding().items().to_vec(),
            two_tower_user: query.two_tower,
            n,
            exclude_watched: true,
            index: req.index,
            only: req.only_source,
        };
        Ok((candidates(&self.model, &creq)?, t1))
    }

    /// The request's reranker (the bundle's settings with the request's overrides and `k`)
    /// and candidate count, validated.
    fn settings(&self, req: &RowRequest) -> Result<(Reranker, usize)> {
        let serving = self.model.serving();
        let mut settings = req.rerank.apply(serving.rerank);
        if let Some(k) = req.k {
            settings.k = k;
        }
        let reranker = Reranker::new(settings)?;
        let n = req.candidates.unwrap_or(serving.candidates);
        if n == 0 || n > MAX_CANDIDATES {
            return Err(Error::InvalidArgument(format!(
                "candidates must be between 1 and {MAX_CANDIDATES}, got {n}"
            )));
        }
        if req.searches.len() > MAX_SEARCH_TOKENS {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_SEARCH_TOKENS} search tokens, got {}",
                req.searches.len()
            )));
        }
        Ok((reranker, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Device;
    use crate::features::Maturity;
    use crate::limits::MAX_K;
    use crate::retrieval::IndexUsed;
    use crate::test_support::tiny_contents_for_device;

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
        s.record_impression(&[20], 2_000).unwrap();
        s.record_impression(&[20], 3_000).unwrap();
        let row = r.recommend_row(&s, &RowRequest::new(ctx())).unwrap();
        assert!(!ids(&row).contains(&20), "{:?}", ids(&row));
        // Item 30 is rated R.
        s.settings_mut().set_maturity_limit(Some(Maturity::Pg13));
        let row = r.recommend_row(&s, &RowRequest::new(ctx())).unwrap();
        assert!(!ids(&row).contains(&30));
        assert_eq!(ids(&row), vec![40]);
    }

    #[test]
    fn the_neighbour_source_explains_its_titles_by_the_watched_title_behind_them() {
        use crate::blend::Source;
        use crate::bundle::{BundleContents, Neighbours};
        use crate::rerank::Reason;
        // Items 10, 20, 30, 40: 20's list holds 40, 10's holds 30.
        let lists = vec![vec![(2, 0.9)], vec![(3, 0.8)], vec![], vec![]];
        let c = BundleContents {
            neighbours: Some(Neighbours::new(&lists, 1, 1, 0.0).unwrap()),
            ..tiny_contents_for_device()
        };
        let r = Recommender::from_bytes(&c.encode()).unwrap();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        s.record_play(20, 2_000, 1.0).unwrap();
        let req = RowRequest {
            only_source: Some(Source::Neighbours),
            use_ranker: false,
            ..RowRequest::new(ctx())
        };
        let row = r.recommend_row(&s, &req).unwrap();
        let why: Vec<(u32, Reason)> = row
            .items
            .iter()
            .map(|i| (i.item_id, i.reason.clone()))
            .collect();
        let watched = |item_id: u32, title: &str| Reason::BecauseYouWatched {
            item_id,
            title: title.to_string(),
        };
        let title = |id: u32| {
            let c = &r.model().contents().catalog;
            c.items()[c.position(id).unwrap()].display_title()
        };
        assert_eq!(
            why,
            vec![(30, watched(10, &title(10))), (40, watched(20, &title(20)))]
        );
    }

    #[test]
    fn rows_follow_the_blend_without_a_ranker_and_report_their_stages() {
        let r = rec();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        let req = RowRequest {
            k: Some(3),
            rerank: RerankOverrides {
                lambda: Some(1.0),
                fatigue_impressions: Some(0),
                max_per_genre: Some(None),
            },
            ..RowRequest::new(ctx())
        };
        let row = r.recommend_row(&s, &req).unwrap();
        assert!(!row.info.ranked);
        let history = user::query(r.model(), &s, &ctx(), &[]).unwrap();
        let blend = candidates(
            r.model(),
            &CandidateRequest {
                history: history.history,
                two_tower_user: history.two_tower,
                ..CandidateRequest::new(4)
            },
        )
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
        for req in [
            RowRequest {
                k: Some(0),
                ..RowRequest::new(ctx())
            },
            RowRequest {
                k: Some(MAX_K + 1),
                ..RowRequest::new(ctx())
            },
            RowRequest {
                candidates: Some(MAX_CANDIDATES + 1),
                ..RowRequest::new(ctx())
            },
            RowRequest {
                searches: vec!["x".into(); MAX_SEARCH_TOKENS + 1],
                ..RowRequest::new(ctx())
            },
            RowRequest {
                rerank: RerankOverrides {
                    lambda: Some(1.5),
                    ..RerankOverrides::default()
                },
                ..RowRequest::new(ctx())
            },
        ] {
            assert_eq!(bad(req), "invalid_argument");
        }
    }

    #[test]
    fn a_bundle_asking_for_the_most_candidates_serves_them() {
        let mut c = tiny_contents_for_device();
        c.serving.as_mut().unwrap().candidates = MAX_CANDIDATES;
        let r = Recommender::from_bytes(&c.encode()).unwrap();
        let row = r.recommend_row(&UserState::new(), &RowRequest::new(ctx()));
        assert_eq!(row.unwrap().info.candidates, 4); // the whole catalog
    }

    #[test]
    fn one_source_goes_through_the_same_filters() {
        let r = rec();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        s.settings_mut().set_maturity_limit(Some(Maturity::Pg13));
        for source in [Source::Collaborative, Source::Content, Source::Popularity] {
            let req = RowRequest {
                only_source: Some(source),
                ..RowRequest::new(ctx())
            };
            let row = r.recommend_row(&s, &req).unwrap();
            assert!(!ids(&row).contains(&10) && !ids(&row).contains(&30));
            assert!(row.items.iter().all(|i| i.placed_by == source));
            assert_eq!(row.info.sources.len(), 1);
        }
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

    #[test]
    fn ranker_inputs_carry_the_first_stage_into_the_features_when_the_space_has_it() {
        use crate::bundle::FeatureContract;
        use crate::features::{FeatureConfig, FeatureSpace};
        let mut c = tiny_contents_for_device();
        let plain = c.features.clone().unwrap();
        let space = plain.space();
        let with = FeatureSpace::with_calendar(
            space.vocabularies().clone(),
            FeatureConfig {
                provenance: true,
                ..space.config()
            },
            space.calendar().clone(),
        );
        let extra = with.dense_names().len() - space.dense_names().len();
        assert_eq!(extra, 16);
        assert!(with.dense_names().iter().any(|n| n == "cand.ials.rr"));
        c.features = Some(FeatureContract::new(with));
        // The flag survives the bundle (FEAT written as edgerec-features/2).
        let r = Recommender::from_bytes(&c.encode()).unwrap();
        let mut s = UserState::new();
        s.record_play(10, 1_000, 1.0).unwrap();
        let (cands, batch) = r.ranker_inputs(&s, &RowRequest::new(ctx())).unwrap();
        let batch = batch.expect("FEAT and MDIA give vectors without a ranker");
        assert_eq!(batch.vectors.len(), cands.blend.len());
        let names = r
            .model()
            .contents()
            .features
            .as_ref()
            .unwrap()
            .space()
            .dense_names()
            .to_vec();
        let at = |name: &str| names.iter().position(|n| n == name).unwrap();
        for (i, (v, b)) in batch.vectors.iter().zip(&cands.blend).enumerate() {
            assert_eq!(v.dense.len(), names.len());
            assert_eq!(v.dense[at("cand.blend_rr")], 1.0 / (1.0 + i as f32));
            let in_ials = b
                .sources
                .iter()
                .find(|(src, _)| *src == Source::Collaborative);
            assert_eq!(
                v.dense[at("cand.ials.in")],
                if in_ials.is_some() { 1.0 } else { 0.0 }
            );
            if let Some(&(_, rank)) = in_ials {
                assert_eq!(v.dense[at("cand.ials.rr")], 1.0 / rank as f32);
            }
            // The share of the family's four sources (the neighbour source is not one).
            let four = b
                .sources
                .iter()
                .filter(|(src, _)| *src != Source::Neighbours);
            let sources = four.count() as f32 / 4.0;
            assert_eq!(v.dense[at("cand.sources")], sources);
        }
        // The same bundle without the flag: the vectors stop before the candidate family,
        // and the row does not change without a ranker.
        let mut plain_c = c.clone();
        plain_c.features = Some(plain);
        let p = Recommender::from_bytes(&plain_c.encode()).unwrap();
        let (_, b) = p.ranker_inputs(&s, &RowRequest::new(ctx())).unwrap();
        assert_eq!(b.unwrap().vectors[0].dense.len(), names.len() - extra);
        let row = |r: &Recommender| ids(&r.recommend_row(&s, &RowRequest::new(ctx())).unwrap());
        assert_eq!(row(&r), row(&p));
    }
}
