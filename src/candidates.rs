//! Serving the trained candidate sources of a bundle, and their blend.
//!
//! A bundle may carry up to four candidate sources besides the skeleton's genre affinity (see
//! [`crate::bundle`]): iALS item factors (`FACT`), a content index (`CONT`), a two-tower model
//! (`TWRT`) and the time-decayed popularity every bundle has (`POPL`). For one user,
//! [`Recommender::candidates`] ranks the catalog under each source the bundle holds and blends
//! the rows with the bundle's quotas (`QUOT`):
//!
//! * **iALS** — the user's vector is the core's [`fold_in`](crate::ials::fold_in) of the
//!   history and the onboarding titles (`r = 1` per watch; a title watched twice has `r = 2`,
//!   as in training) against the item factors; an item scores `x · y_i`. A user with no known
//!   title gets an empty row: iALS knows nothing about them.
//! * **two-tower** — the caller runs the ONNX user tower (the core does not execute models)
//!   with [`two_tower_dense`] and passes the vector in; an item scores `u · e_i`. Without a
//!   vector the source is left out.
//! * **content** — the profile is [`ContentIndex::profile`](crate::content::ContentIndex::profile)
//!   of the history, weighted `1 / (1 + recency_decay · titles watched since)`, plus the
//!   onboarding titles and the onboarding genres as `genre:<name>` tokens; the score is the
//!   index's cosine mixed with its popularity prior.
//! * **popularity** — the bundle's `POPL` scores.
//!
//! Each row is the top `n` of its source, ties to the lower catalog position
//! ([`crate::blend::top_n`]); the blend is [`crate::blend::blend`] of the rows in the order
//! iALS, two-tower, content, popularity, with per-title attribution.
//!
//! ```
//! use edgerec::Recommender;
//! use edgerec::blend::Source;
//! use edgerec::candidates::CandidateRequest;
//! # let bytes = edgerec::bundle::tests_support::tiny_contents_with_sources().encode();
//! let rec = Recommender::from_bytes(&bytes)?;
//! let req = CandidateRequest { history: vec![10], ..CandidateRequest::new(2) };
//! let c = rec.candidates(&req)?;
//! let ials = c.row(Source::Collaborative).unwrap();
//! assert_eq!(ials[0].item_id, 30);                    // closest to Alpha in factor space
//! assert!(c.blend.iter().all(|b| b.item_id != 10));   // watched titles are filtered
//! assert_eq!(c.blend[0].placed_by, Source::Collaborative);
//! # Ok::<(), edgerec::Error>(())
//! ```

use crate::blend::{self, Source};
use crate::bundle::{Quotas, Space};
use crate::calendar;
use crate::content::Onboarding;
use crate::error::{Error, Result};
use crate::recommend::{MAX_K, Recommender};
use crate::retrieval::{HNSW_ABOVE, IndexChoice, IndexUsed, ItemVectors};

/// Width of the two-tower model's dense input ([`two_tower_dense`]).
pub const TWO_TOWER_DENSE: usize = 7;

/// The name of the dense input layout [`two_tower_dense`] produces, stored in the bundle's
/// `TWRT` section (`dense_features`) so a runtime can refuse a model trained on another layout.
pub const TWO_TOWER_DENSE_FEATURES: &str = "edgerec-dense/2: age/100, gender=f, gender=m, gender=other, sin(whole hour), cos(whole hour), weekend";

/// `(sin, cos)` of `2π h / 24` for each whole hour `h`, rounded to `f32` (exact at the quarters).
const HOUR_CIRCLE: [(f32, f32); 24] = [
    (0.0, 1.0),
    (0.25881904, 0.9659258),
    (0.5, 0.8660254),
    (0.70710677, 0.70710677),
    (0.8660254, 0.5),
    (0.9659258, 0.25881904),
    (1.0, 0.0),
    (0.9659258, -0.25881904),
    (0.8660254, -0.5),
    (0.70710677, -0.70710677),
    (0.5, -0.8660254),
    (0.25881904, -0.9659258),
    (0.0, -1.0),
    (-0.25881904, -0.9659258),
    (-0.5, -0.8660254),
    (-0.70710677, -0.70710677),
    (-0.8660254, -0.5),
    (-0.9659258, -0.25881904),
    (-1.0, 0.0),
    (-0.9659258, 0.25881904),
    (-0.8660254, 0.5),
    (-0.70710677, 0.70710677),
    (-0.5, 0.8660254),
    (-0.25881904, 0.9659258),
];

/// The two-tower model's dense user and context features, in this order:
///
/// 1. `age / 100` (age in years; 0 when unknown);
/// 2. – 4. gender one-hot: `"f"`, `"m"`, anything else;
/// 5. – 6. `sin` and `cos` of the local hour of `time` on the 24-hour circle
///    (`utc_offset_minutes` east of UTC; the whole hour, from a constant table so every
///    platform gets the same bits — `f32::sin` differs between native libm and wasm);
/// 7. `1` on Saturday and Sunday (local time), else `0`.
///
/// The trainer computes the same vector for each training example at the example's time, so
/// a device must pass the request's time and its own offset from UTC. Cost O(1).
///
/// ```
/// let d = edgerec::candidates::two_tower_dense(30, "f", 0, 12 * 3600); // Thursday 1970-01-01, noon
/// assert_eq!(d.len(), edgerec::candidates::TWO_TOWER_DENSE);
/// assert_eq!(&d[..4], &[0.3, 1.0, 0.0, 0.0]);
/// assert!(d[4].abs() < 1e-6 && (d[5] + 1.0).abs() < 1e-6 && d[6] == 0.0);
/// ```
pub fn two_tower_dense(age: u8, gender: &str, utc_offset_minutes: i32, time: i64) -> Vec<f32> {
    let local = calendar::local_seconds(time, utc_offset_minutes);
    let (sin, cos) = HOUR_CIRCLE[(local.rem_euclid(86_400) / 3_600) as usize];
    let weekday = calendar::weekday(local.div_euclid(86_400));
    vec![
        f32::from(age) / 100.0,
        f32::from(gender == "f"),
        f32::from(gender == "m"),
        f32::from(gender != "f" && gender != "m"),
        sin,
        cos,
        f32::from(weekday >= 5),
    ]
}

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
    /// The user's two-tower vector, computed by the caller with the bundle's user tower; its
    /// length must be the model's `dim`. `None` leaves the two-tower source out.
    pub two_tower_user: Option<Vec<f32>>,
    /// Titles per row, `1..=`[`MAX_K`].
    pub n: usize,
    /// Leave the history and the onboarding titles out of every row.
    pub exclude_watched: bool,
    /// Flat scan or HNSW graph for the embedding sources ([`IndexChoice::Auto`] by default).
    pub index: IndexChoice,
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
    /// One row per source served, in the order iALS, two-tower, content, popularity.
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

impl Recommender {
    /// The candidate sources this bundle can serve, in blend order. Two-tower is listed when
    /// the bundle has it, but is served only for requests that carry a user vector.
    pub fn candidate_sources(&self) -> Vec<Source> {
        let c = self.bundle().contents();
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
        v
    }

    /// The blend quotas: the bundle's `QUOT`, or [`Quotas::EQUAL`] without one.
    pub fn quotas(&self) -> Quotas {
        self.bundle().contents().quotas.unwrap_or(Quotas::EQUAL)
    }

    /// Every source's top `n` and their blend for one user (see the module doc).
    ///
    /// Errors (`InvalidArgument`): `n` outside `1..=`[`MAX_K`], an unknown onboarding genre, a
    /// two-tower vector for a bundle without `TWRT`, of the wrong length or not finite.
    ///
    /// Cost: iALS O(|history| · d² + d³ + items · d); two-tower O(items · d); content
    /// O(items + postings of the profile's tokens); each row O(items · log n); the blend
    /// O(sources · n).
    pub fn candidates(&self, req: &CandidateRequest) -> Result<Candidates> {
        let c = self.bundle().contents();
        let catalog = &c.catalog;
        let n = req.n;
        if n == 0 || n > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "n must be between 1 and {MAX_K}, got {n}"
            )));
        }
        for g in &req.onboarding_genres {
            if catalog.genre_index(g).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "unknown onboarding genre {g:?}"
                )));
            }
        }
        let tower = match (&req.two_tower_user, &c.two_tower) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::InvalidArgument(
                    "a two-tower vector was given but the bundle has no two-tower model".into(),
                ));
            }
            (Some(u), Some(t)) => {
                if u.len() != t.dim() {
                    return Err(Error::InvalidArgument(format!(
                        "two-tower vector has {} values, the model {}",
                        u.len(),
                        t.dim()
                    )));
                }
                if u.iter().any(|x| !x.is_finite()) {
                    return Err(Error::InvalidArgument(
                        "two-tower vector is not finite".into(),
                    ));
                }
                Some((u, t))
            }
        };
        let history: Vec<usize> = req
            .history
            .iter()
            .filter_map(|&id| catalog.position(id))
            .collect();
        let titles: Vec<usize> = req
            .onboarding_titles
            .iter()
            .filter_map(|&id| catalog.position(id))
            .collect();
        let mut watched = vec![false; catalog.len()];
        if req.exclude_watched {
            for &p in history.iter().chain(&titles) {
                watched[p] = true;
            }
        }
        let row = |scores: &[f32]| -> Vec<Scored> {
            blend::top_n(scores, n, |p| watched[p])
                .into_iter()
                .map(|(position, score)| Scored {
                    item_id: catalog.items()[position].id,
                    position,
                    score,
                })
                .collect()
        };

        let mut rows = Vec::new();
        let search = |space: Space,
                      vectors: &ItemVectors,
                      query: &[f32]|
         -> Result<(Vec<Scored>, IndexUsed)> {
            let graph = self.bundle().graph(space).filter(|_| match req.index {
                IndexChoice::Flat => false,
                IndexChoice::Hnsw => true,
                IndexChoice::Auto => vectors.rows() > HNSW_ABOVE,
            });
            let (found, used) = match graph {
                Some(g) => (g.search(query, n, |p| watched[p])?, IndexUsed::Hnsw),
                None => (
                    vectors.flat_top_k(query, n, |p| watched[p])?,
                    if vectors.is_int8() {
                        IndexUsed::FlatInt8
                    } else {
                        IndexUsed::FlatF32
                    },
                ),
            };
            let items = found
                .into_iter()
                .map(|(position, score)| Scored {
                    item_id: catalog.items()[position].id,
                    position,
                    score,
                })
                .collect();
            Ok((items, used))
        };
        if let Some(f) = &c.ials {
            let known: Vec<(usize, f32)> =
                history.iter().chain(&titles).map(|&p| (p, 1.0)).collect();
            let y = f.factors();
            // No known title: iALS has nothing to say (fold-in would give the zero vector).
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
            let (items, index) = match x {
                Some(x) => {
                    let (items, used) = search(Space::Ials, y, &x)?;
                    (items, Some(used))
                }
                None => (Vec::new(), None),
            };
            rows.push(SourceRow {
                source: Source::Collaborative,
                index,
                items,
            });
        }
        if let Some((u, t)) = tower {
            let (items, used) = search(Space::TwoTower, t.item_vectors(), u)?;
            rows.push(SourceRow {
                source: Source::TwoTower,
                index: Some(used),
                items,
            });
        }
        if let Some(m) = &c.content {
            let len = history.len();
            let weights: Vec<(usize, f32)> = history
                .iter()
                .enumerate()
                .map(|(j, &p)| (p, 1.0 / (1.0 + m.recency_decay() * (len - 1 - j) as f32)))
                .collect();
            let onboarding = Onboarding {
                tokens: req
                    .onboarding_genres
                    .iter()
                    .map(|g| format!("genre:{g}"))
                    .collect(),
                titles: titles.clone(),
            };
            let profile = m.index().profile(&weights, &onboarding);
            // Users known only by onboarding picks get the prior weight fitted for them.
            let beta = if history.is_empty() {
                m.onboarding_beta()
            } else {
                m.index().beta()
            };
            rows.push(SourceRow {
                source: Source::Content,
                index: None,
                items: row(&m.index().scores_with_beta(&profile, beta)),
            });
        }
        rows.push(SourceRow {
            source: Source::Popularity,
            index: None,
            items: row(&c.popularity.scores),
        });

        let quotas = self.quotas();
        let lists: Vec<Vec<usize>> = rows
            .iter()
            .map(|r| r.items.iter().map(|s| s.position).collect())
            .collect();
        let ordered: Vec<(Source, &[usize])> = rows
            .iter()
            .zip(&lists)
            .map(|(r, l)| (r.source, &l[..]))
            .collect();
        let q: Vec<u32> = rows.iter().map(|r| quotas.get(r.source)).collect();
        let blend = blend::blend(&ordered, &q, n)
            .into_iter()
            .map(|b| Blended {
                item_id: catalog.items()[b.item].id,
                position: b.item,
                placed_by: b.placed_by,
                sources: b.sources,
            })
            .collect();
        Ok(Candidates { rows, blend })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
    use crate::bundle::tests_support::{tiny_contents, tiny_contents_with_sources};
    use proptest::prelude::*;

    fn rec() -> Recommender {
        Recommender::from_bytes(&tiny_contents_with_sources().encode()).unwrap()
    }

    fn ids(row: &[Scored]) -> Vec<u32> {
        row.iter().map(|s| s.item_id).collect()
    }

    #[test]
    fn dense_features_match_the_documented_layout() {
        // 1970-01-03 was a Saturday; 18:00 local at UTC-5 is 23:00 UTC.
        let t = 2 * 86_400 + 23 * 3600;
        let d = two_tower_dense(255, "x", -300, t);
        assert_eq!(d.len(), TWO_TOWER_DENSE);
        assert_eq!(&d[..4], &[2.55, 0.0, 0.0, 1.0]);
        assert_eq!((d[4], d[5]), (-1.0, 0.0));
        // Every hour of the table is the circle's point, to f32 precision.
        for h in 0..24 {
            let d = two_tower_dense(30, "f", 0, h * 3600 + 1799);
            let a = (h as f64) / 24.0 * std::f64::consts::TAU;
            assert!((f64::from(d[4]) - a.sin()).abs() < 1e-7, "hour {h}");
            assert!((f64::from(d[5]) - a.cos()).abs() < 1e-7, "hour {h}");
        }
        assert_eq!(d[6], 1.0);
        assert_eq!(two_tower_dense(0, "m", 0, 0)[2], 1.0);
    }

    #[test]
    fn ials_row_is_fold_in_then_top_n() {
        let r = rec();
        let c = r.bundle().contents();
        let f = c.ials.as_ref().unwrap();
        let req = CandidateRequest {
            history: vec![20, 999, 40, 20],
            onboarding_titles: vec![10],
            ..CandidateRequest::new(3)
        };
        let got = r.candidates(&req).unwrap();
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
        let all = r
            .candidates(&CandidateRequest {
                exclude_watched: false,
                ..req
            })
            .unwrap();
        assert_eq!(all.row(Source::Collaborative).unwrap().len(), 3);
    }

    #[test]
    fn every_source_is_served_and_watched_titles_never_appear() {
        let r = rec();
        assert_eq!(
            r.candidate_sources(),
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
        let c = r.candidates(&req).unwrap();
        let sources: Vec<Source> = c.rows.iter().map(|r| r.source).collect();
        assert_eq!(sources, Source::ALL.to_vec());
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
        let c = r.candidates(&req).unwrap();
        assert!(c.row(Source::Collaborative).unwrap().is_empty());
        assert!(c.row(Source::TwoTower).is_none());
        assert_eq!(c.row(Source::Content).unwrap()[0].item_id, 20);
        // Onboarding titles count as history for iALS and are filtered out.
        let req = CandidateRequest {
            onboarding_titles: vec![20],
            ..CandidateRequest::new(4)
        };
        let c = r.candidates(&req).unwrap();
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
        let code = |req: CandidateRequest| r.candidates(&req).unwrap_err().code();
        assert_eq!(code(CandidateRequest::new(0)), "invalid_argument");
        assert_eq!(code(CandidateRequest::new(MAX_K + 1)), "invalid_argument");
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
        let plain = Recommender::from_bytes(&tiny_contents().encode()).unwrap();
        let req = CandidateRequest {
            two_tower_user: Some(vec![1.0, 0.0]),
            ..CandidateRequest::new(1)
        };
        assert_eq!(
            plain.candidates(&req).unwrap_err().code(),
            "invalid_argument"
        );
    }

    #[test]
    fn a_skeleton_bundle_serves_popularity_with_equal_quotas() {
        let r = Recommender::from_bytes(&tiny_contents().encode()).unwrap();
        assert_eq!(r.candidate_sources(), vec![Source::Popularity]);
        assert_eq!(r.quotas(), Quotas::EQUAL);
        let c = r.candidates(&CandidateRequest::new(4)).unwrap();
        assert_eq!(c.rows.len(), 1);
        let blended: Vec<u32> = c.blend.iter().map(|b| b.item_id).collect();
        assert_eq!(blended, vec![10, 40, 20, 30]);
        assert!(c.blend.iter().all(|b| b.placed_by == Source::Popularity));
    }

    #[test]
    fn blend_follows_the_bundle_quotas() {
        // Fifty items whose sources disagree completely: iALS ranks by position, popularity in
        // reverse, so every place shows whose turn it was.
        use crate::bundle::{BundleContents, GenreVectors, IalsFactors, Quotas};
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
            genre_vectors: GenreVectors::from_catalog(&catalog, vec![1.0; 3]),
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
            ..base
        };
        let r = Recommender::from_bytes(&contents.encode()).unwrap();
        let req = CandidateRequest {
            history: vec![1],
            ..CandidateRequest::new(20)
        };
        let c = r.candidates(&req).unwrap();
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
            let big = CandidateRequest { n: MAX_K, ..small.clone() };
            let (a, b) = (r.candidates(&small).unwrap(), r.candidates(&big).unwrap());
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
