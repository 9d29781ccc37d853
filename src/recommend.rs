//! From a bundle, a local watch history and a context to a top-k row.
//!
//! Two candidate sources are scored over the whole catalog and blended:
//!
//! * **genre affinity** (content-based): the user profile is the recency-weighted sum of the
//!   genre vectors of the titles watched, plus one IDF-weighted unit per onboarding genre pick,
//!   normalised; an item's affinity is the cosine with its genre vector;
//! * **popularity**: the bundle's time-decayed popularity in `[0, 1]`.
//!
//! `score = affinity + popularity_weight × popularity`, with `popularity_weight` fitted by the
//! trainer. A user with neither history nor picks gets popularity alone. Titles in the history
//! are never returned. Ties are broken by catalog position, so the order is total and the same
//! on every platform (scoring uses only `+`, `×`, `/` and `sqrt`, which IEEE 754 rounds
//! identically natively and in wasm).
//!
//! ```
//! use edgerec::{Recommender, context::{Context, Device}};
//! # let bytes = edgerec::bundle::tests_support::tiny_contents().encode();
//! let rec = Recommender::from_bytes(&bytes)?;
//! let ctx = Context::new(Device::Tv, 0, 0)?;
//! let row = rec.recommend(&[10], &[], &ctx, 2)?;
//! assert_eq!(row.len(), 2);
//! assert!(row.iter().all(|r| r.item_id != 10)); // watched titles are filtered
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::cmp::Ordering;

use crate::bundle::{Bundle, BundleContents};
use crate::context::{Context, Daypart};
use crate::error::{Error, Result};

/// Most titles one request may ask for.
pub const MAX_K: usize = 1_000;

/// Which candidate source put a title in the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Content-based genre affinity.
    Genre,
    /// Time-decayed popularity.
    Popularity,
}

impl Source {
    /// Lowercase name used in the JS API and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Genre => "genre",
            Source::Popularity => "popularity",
        }
    }
}

/// One title in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The item id (as in the training data).
    pub item_id: u32,
    /// Position in the catalog.
    pub position: usize,
    /// The blended score; rows are sorted by it, descending.
    pub score: f32,
    /// The source under which the title ranks higher among the candidates (genre affinity on
    /// ties; popularity when there is no profile).
    pub source: Source,
    /// A short explanation for the user.
    pub reason: String,
}

/// A loaded model that answers recommendation requests. Cheap to query repeatedly; holds no
/// per-user state.
#[derive(Debug, Clone)]
pub struct Recommender {
    bundle: Bundle,
}

impl Recommender {
    /// Verifies and loads a bundle (see [`Bundle::from_bytes`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Recommender> {
        Ok(Recommender {
            bundle: Bundle::from_bytes(bytes)?,
        })
    }

    /// The loaded bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    fn contents(&self) -> &BundleContents {
        self.bundle.contents()
    }

    /// The user's genre profile (unnormalised; all zeros when there is nothing to go on).
    /// `history` holds catalog positions, oldest first.
    fn profile(&self, history: &[usize], picks: &[usize]) -> Vec<f32> {
        let c = self.contents();
        let gv = &c.genre_vectors;
        let mut p = vec![0f32; gv.dim()];
        let n = history.len();
        for (i, &pos) in history.iter().enumerate() {
            let age = (n - 1 - i) as f32;
            let w = 1.0 / (1.0 + c.blend.recency_decay * age);
            for (acc, &x) in p.iter_mut().zip(gv.row(pos)) {
                *acc += w * x;
            }
        }
        for &g in picks {
            p[g] += gv.idf()[g];
        }
        p
    }

    /// The top `k` titles for a user, best first.
    ///
    /// * `history`: item ids the user watched, oldest first; ids not in the catalog are ignored
    ///   (the catalog may have dropped them), repeats count once per occurrence.
    /// * `onboarding_genres`: genre names the user picked (exact names from the catalog).
    /// * `k`: 1 ..= [`MAX_K`]; fewer titles are returned when the catalog runs out.
    ///
    /// Cost: O(items × genres) plus O(items log k).
    pub fn recommend(
        &self,
        history: &[u32],
        onboarding_genres: &[String],
        ctx: &Context,
        k: usize,
    ) -> Result<Vec<Recommendation>> {
        if k == 0 || k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k must be between 1 and {MAX_K}, got {k}"
            )));
        }
        let c = self.contents();
        let catalog = &c.catalog;
        let picks = onboarding_genres
            .iter()
            .map(|g| {
                catalog.genre_index(g).ok_or_else(|| {
                    Error::InvalidArgument(format!("unknown onboarding genre {g:?}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let history: Vec<usize> = history
            .iter()
            .filter_map(|&id| catalog.position(id))
            .collect();
        let mut watched = vec![false; catalog.len()];
        for &p in &history {
            watched[p] = true;
        }

        let profile = self.profile(&history, &picks);
        let norm = profile.iter().map(|x| x * x).sum::<f32>().sqrt();
        let gv = &c.genre_vectors;
        let beta = c.blend.popularity_weight;
        // (position, affinity, weighted popularity) of every candidate.
        let parts: Vec<(usize, f32, f32)> = (0..catalog.len())
            .filter(|&pos| !watched[pos])
            .map(|pos| {
                let affinity = if norm > 0.0 {
                    dot(&profile, gv.row(pos)) / norm
                } else {
                    0.0
                };
                (pos, affinity, beta * c.popularity.scores[pos])
            })
            .collect();
        let mut scored: Vec<(f32, usize)> = parts
            .iter()
            .map(|&(pos, affinity, popular)| {
                if norm > 0.0 {
                    (affinity + popular, pos)
                } else {
                    (c.popularity.scores[pos], pos)
                }
            })
            .collect();
        let by_rank = |a: &(f32, usize), b: &(f32, usize)| -> Ordering {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        };
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_rank);
            scored.truncate(k);
        }
        scored.sort_unstable_by(by_rank);

        // Attribution: the source under which the title ranks higher among all candidates
        // (ties go to genre affinity). O(k × candidates).
        let source_of = |pos: usize| -> Source {
            if norm == 0.0 {
                return Source::Popularity;
            }
            let (_, affinity, popular) = parts[parts.partition_point(|p| p.0 < pos)];
            let above_affinity = parts.iter().filter(|p| p.1 > affinity).count();
            let above_popular = parts.iter().filter(|p| p.2 > popular).count();
            if above_affinity <= above_popular {
                Source::Genre
            } else {
                Source::Popularity
            }
        };
        Ok(scored
            .into_iter()
            .map(|(score, pos)| {
                let source = source_of(pos);
                Recommendation {
                    item_id: catalog.items()[pos].id,
                    position: pos,
                    score,
                    source,
                    reason: self.reason(pos, source, &history, &picks, ctx),
                }
            })
            .collect())
    }

    /// "Because you watched X" names the history title whose genres are closest to the
    /// recommended one (the most recent on ties); picks-only profiles name the closest pick.
    fn reason(
        &self,
        pos: usize,
        source: Source,
        history: &[usize],
        picks: &[usize],
        ctx: &Context,
    ) -> String {
        let c = self.contents();
        let gv = &c.genre_vectors;
        if source == Source::Genre {
            let closest = history
                .iter()
                .rev()
                .map(|&h| (dot(gv.row(h), gv.row(pos)), h))
                .fold(None::<(f32, usize)>, |best, cand| match best {
                    Some(b) if b.0 >= cand.0 => Some(b),
                    _ => Some(cand),
                });
            if let Some((sim, h)) = closest
                && sim > 0.0
            {
                return format!(
                    "Because you watched {}",
                    c.catalog.items()[h].display_title()
                );
            }
            let row = gv.row(pos);
            if let Some(&g) = picks
                .iter()
                .filter(|&&g| row[g] > 0.0)
                .max_by(|&&a, &&b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            {
                return format!("Because you like {}", c.catalog.genres()[g]);
            }
        }
        match ctx.daypart() {
            Daypart::Morning => "Popular this morning",
            Daypart::Afternoon => "Popular today",
            Daypart::Evening => "Popular tonight",
            Daypart::Night => "Popular late at night",
        }
        .to_string()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests_support::tiny_contents;
    use crate::context::Device;
    use proptest::prelude::*;

    fn rec() -> Recommender {
        Recommender::from_bytes(&tiny_contents().encode()).unwrap()
    }

    fn ctx() -> Context {
        Context::new(Device::Tv, 20 * 3600, 0).unwrap()
    }

    fn ids(row: &[Recommendation]) -> Vec<u32> {
        row.iter().map(|r| r.item_id).collect()
    }

    #[test]
    fn cold_user_gets_popularity_order() {
        let row = rec().recommend(&[], &[], &ctx(), 4).unwrap();
        assert_eq!(ids(&row), vec![10, 40, 20, 30]);
        assert!(row.iter().all(|r| r.source == Source::Popularity));
        assert_eq!(row[0].reason, "Popular tonight");
    }

    #[test]
    fn history_pulls_similar_genres_up_and_is_filtered() {
        // Delta (Drama) watched: Gamma (Action+Drama) is the only other title with Drama.
        let row = rec().recommend(&[40], &[], &ctx(), 3).unwrap();
        assert_eq!(row[0].item_id, 30);
        assert_eq!(row[0].source, Source::Genre);
        assert_eq!(row[0].reason, "Because you watched Delta (1990)");
        assert!(!ids(&row).contains(&40));
    }

    #[test]
    fn onboarding_picks_drive_cold_start() {
        let row = rec()
            .recommend(&[], &["Comedy".to_string()], &ctx(), 1)
            .unwrap();
        assert_eq!(row[0].item_id, 20);
        assert_eq!(row[0].reason, "Because you like Comedy");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let r = rec();
        assert_eq!(
            r.recommend(&[], &[], &ctx(), 0).unwrap_err().code(),
            "invalid_argument"
        );
        assert!(r.recommend(&[], &["Nope".into()], &ctx(), 1).is_err());
        // Unknown history ids are ignored, not errors.
        assert_eq!(r.recommend(&[999], &[], &ctx(), 4).unwrap().len(), 4);
    }

    proptest! {
        /// The row equals a plain full sort truncated to k, and never holds a watched title.
        #[test]
        fn row_is_sorted_truncation_without_watched(
            history in proptest::collection::vec(prop_oneof![Just(10u32), Just(20), Just(30), Just(40), Just(77)], 0..6),
            k in 1usize..6,
        ) {
            let r = rec();
            let row = r.recommend(&history, &[], &ctx(), k).unwrap();
            let all = r.recommend(&history, &[], &ctx(), MAX_K).unwrap();
            let mut plain = all.clone();
            plain.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.position.cmp(&b.position)));
            plain.truncate(k);
            prop_assert_eq!(&row, &plain);
            prop_assert!(row.iter().all(|x| !history.contains(&x.item_id)));
        }
    }
}
