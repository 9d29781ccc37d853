//! Content-based candidates: titles whose metadata resembles what the user watched or picked at
//! onboarding.
//!
//! Every title gets a profile of typed tokens from its metadata (`genre:Drama`, `tag:heist`,
//! `cast:…`, `director:…`, `lang:fr`, `era:1990s`), weighted by TF-IDF (Salton & Buckley
//! 1988) times a per-facet weight and normalised to unit length. A user profile is the
//! recency-weighted sum of the profiles of titles watched, plus the tokens of onboarding picks
//! (genres or titles) for users with little or no history. A title's score is the cosine of its
//! profile with the user's, mixed with a popularity prior:
//!
//! `score = (1 − beta) · cos(user, title) + beta · prior(title)`
//!
//! where `prior ∈ [0, 1]` is the title's (time-decayed) popularity after a log transform and
//! `beta` is fitted by the trainer; `beta = 0` is pure content matching. Scoring walks an
//! inverted index, so a request costs O(Σ postings of the user's tokens), not O(catalog × tokens).
//!
//! ```
//! use edgerec::content::{ContentIndex, Onboarding};
//! let items = vec![
//!     vec!["genre:Comedy".to_string(), "era:1990s".to_string()],
//!     vec!["genre:Horror".to_string(), "era:1990s".to_string()],
//!     vec!["genre:Comedy".to_string(), "era:2010s".to_string()],
//! ];
//! let index = ContentIndex::build(&items, &[("genre", 1.0), ("era", 0.5)], vec![0.0; 3], 0.0).unwrap();
//! // A user who watched the 1990s comedy: the other comedy first, the horror film last.
//! let profile = index.profile(&[(0, 1.0)], &Onboarding::default());
//! let top = index.top_n(&profile, 2, |i| i == 0);
//! assert_eq!(top[0].0, 2);
//! ```

use std::collections::HashMap;

/// The recency weights of a history (catalog positions, oldest first):
/// `1 / (1 + decay · titles watched since)`, so the latest title weighs 1. The one definition
/// the content and neighbour sources use, on the device and in the trainer.
pub fn recency_weights(
    history: impl ExactSizeIterator<Item = usize>,
    decay: f32,
) -> Vec<(usize, f32)> {
    let len = history.len();
    history
        .enumerate()
        .map(|(k, p)| (p, 1.0 / (1.0 + decay * (len - 1 - k) as f32)))
        .collect()
}

/// What a new user told the onboarding screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Onboarding {
    /// Token names picked directly, e.g. `genre:Comedy`.
    pub tokens: Vec<String>,
    /// Catalog positions of titles picked.
    pub titles: Vec<usize>,
}

/// A sparse user profile: token ids with weights, unnormalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    weights: Vec<(u32, f32)>,
}

impl Profile {
    /// True when nothing is known about the user.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// `(token id, weight)` pairs by token id.
    pub fn weights(&self) -> &[(u32, f32)] {
        &self.weights
    }
}

/// Why an index could not be built or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContentError {
    /// Popularity prior of the wrong length or outside [0, 1].
    #[error("popularity prior: {0}")]
    Prior(String),
    /// `beta` outside [0, 1].
    #[error("beta {0} is outside [0, 1]")]
    Beta(f32),
    /// Inconsistent stored index.
    #[error("content index: {0}")]
    Malformed(String),
}

/// Item profiles and their inverted index.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentIndex {
    tokens: Vec<String>,
    token_ids: HashMap<String, u32>,
    /// Item profiles, compressed rows: `offsets[i]..offsets[i + 1]` into `entries`.
    offsets: Vec<u32>,
    entries: Vec<(u32, f32)>,
    /// Token → (item, weight), built from the rows.
    postings: Vec<Vec<(u32, f32)>>,
    prior: Vec<f32>,
    beta: f32,
}

fn facet(token: &str) -> &str {
    token.split_once(':').map_or(token, |(f, _)| f)
}

impl ContentIndex {
    /// Builds profiles from each item's token names (`facet:value`). `facet_weights` scales
    /// each facet (facets not listed get weight 1); tokens found in every item get IDF 0 and
    /// drop out. `prior` has one value in [0, 1] per item. Cost O(total tokens).
    pub fn build(
        items: &[Vec<String>],
        facet_weights: &[(&str, f32)],
        prior: Vec<f32>,
        beta: f32,
    ) -> Result<ContentIndex, ContentError> {
        let mut tokens: Vec<String> = Vec::new();
        let mut token_ids: HashMap<String, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        let mut rows: Vec<Vec<u32>> = Vec::with_capacity(items.len());
        for names in items {
            let mut row: Vec<u32> = names
                .iter()
                .map(|n| {
                    *token_ids.entry(n.clone()).or_insert_with(|| {
                        tokens.push(n.clone());
                        df.push(0);
                        tokens.len() as u32 - 1
                    })
                })
                .collect();
            row.sort_unstable();
            row.dedup();
            for &t in &row {
                df[t as usize] += 1;
            }
            rows.push(row);
        }
        let n = items.len().max(1) as f32;
        let weight_of: HashMap<&str, f32> = facet_weights.iter().copied().collect();
        let token_weight: Vec<f32> = tokens
            .iter()
            .zip(&df)
            .map(|(t, &d)| (n / d as f32).ln() * weight_of.get(facet(t)).copied().unwrap_or(1.0))
            .collect();
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        let mut entries = Vec::new();
        offsets.push(0u32);
        for row in rows {
            let norm = row
                .iter()
                .map(|&t| token_weight[t as usize].powi(2))
                .sum::<f32>()
                .sqrt();
            if norm > 0.0 {
                entries.extend(
                    row.iter()
                        .filter(|&&t| token_weight[t as usize] > 0.0)
                        .map(|&t| (t, token_weight[t as usize] / norm)),
                );
            }
            offsets.push(entries.len() as u32);
        }
        ContentIndex::from_parts(tokens, offsets, entries, prior, beta)
    }

    /// Reassembles an index from its stored parts, checking every invariant (the parts may come
    /// from untrusted bytes).
    pub fn from_parts(
        tokens: Vec<String>,
        offsets: Vec<u32>,
        entries: Vec<(u32, f32)>,
        prior: Vec<f32>,
        beta: f32,
    ) -> Result<ContentIndex, ContentError> {
        let bad = |s: String| Err(ContentError::Malformed(s));
        if offsets.first() != Some(&0) || offsets.last().copied() != Some(entries.len() as u32) {
            return bad("row offsets do not span the entries".into());
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return bad("row offsets decrease".into());
        }
        let items = offsets.len() - 1;
        if prior.len() != items {
            return Err(ContentError::Prior(format!(
                "{} values for {items} items",
                prior.len()
            )));
        }
        if prior.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(ContentError::Prior("a value outside [0, 1]".into()));
        }
        if !(0.0..=1.0).contains(&beta) {
            return Err(ContentError::Beta(beta));
        }
        let mut token_ids = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if token_ids.insert(t.clone(), i as u32).is_some() {
                return bad(format!("token {t:?} appears twice"));
            }
        }
        let mut postings = vec![Vec::new(); tokens.len()];
        for item in 0..items {
            let row = &entries[offsets[item] as usize..offsets[item + 1] as usize];
            for (k, &(t, w)) in row.iter().enumerate() {
                if t as usize >= tokens.len() || !w.is_finite() || w < 0.0 {
                    return bad(format!("item {item}: bad entry ({t}, {w})"));
                }
                if k > 0 && row[k - 1].0 >= t {
                    return bad(format!("item {item}: tokens not sorted and unique"));
                }
                postings[t as usize].push((item as u32, w));
            }
        }
        Ok(ContentIndex {
            tokens,
            token_ids,
            offsets,
            entries,
            postings,
            prior,
            beta,
        })
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Token names by id.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of a token name.
    pub fn token_id(&self, name: &str) -> Option<u32> {
        self.token_ids.get(name).copied()
    }

    /// An item's unit-length profile, `(token id, weight)` by token id. Panics if `item` is
    /// out of range.
    pub fn item_profile(&self, item: usize) -> &[(u32, f32)] {
        &self.entries[self.offsets[item] as usize..self.offsets[item + 1] as usize]
    }

    /// Stored parts: row offsets and entries (for serialisation).
    pub fn parts(&self) -> (&[u32], &[(u32, f32)]) {
        (&self.offsets, &self.entries)
    }

    /// The popularity prior per item.
    pub fn prior(&self) -> &[f32] {
        &self.prior
    }

    /// The weight of the prior in the score.
    pub fn beta(&self) -> f32 {
        self.beta
    }

    /// The same index with another `beta` (the trainer's fitting loop).
    pub fn with_beta(mut self, beta: f32) -> Result<ContentIndex, ContentError> {
        if !(0.0..=1.0).contains(&beta) {
            return Err(ContentError::Beta(beta));
        }
        self.beta = beta;
        Ok(self)
    }

    /// The user profile: Σ weight · item profile over `history` (`(position, weight)`; the
    /// caller puts recency and completion into the weight), plus each onboarding title's
    /// profile and each known onboarding token at weight 1. Unknown positions and tokens are
    /// ignored. The result does not depend on the order of `history`.
    pub fn profile(&self, history: &[(usize, f32)], onboarding: &Onboarding) -> Profile {
        let mut acc: HashMap<u32, f64> = HashMap::new();
        let mut add = |item: usize, w: f32| {
            if item < self.items() && w.is_finite() && w > 0.0 {
                for &(t, v) in self.item_profile(item) {
                    *acc.entry(t).or_default() += f64::from(w) * f64::from(v);
                }
            }
        };
        for &(i, w) in history {
            add(i, w);
        }
        for &i in &onboarding.titles {
            add(i, 1.0);
        }
        for name in &onboarding.tokens {
            if let Some(t) = self.token_id(name) {
                *acc.entry(t).or_default() += 1.0;
            }
        }
        let mut weights: Vec<(u32, f32)> = acc
            .into_iter()
            .filter(|(_, w)| *w > 0.0)
            .map(|(t, w)| (t, w as f32))
            .collect();
        weights.sort_by_key(|p| p.0);
        Profile { weights }
    }

    /// Scores every item (see the module doc). With an empty profile the score is the prior
    /// alone. Cost O(items + Σ postings of the profile's tokens).
    pub fn scores(&self, profile: &Profile) -> Vec<f32> {
        self.scores_with_beta(profile, self.beta)
    }

    /// [`ContentIndex::scores`] with another weight of the prior (e.g. one fitted for
    /// onboarding-sized profiles); `beta` is clamped to [0, 1].
    pub fn scores_with_beta(&self, profile: &Profile, beta: f32) -> Vec<f32> {
        let norm = profile
            .weights
            .iter()
            .map(|(_, w)| w * w)
            .sum::<f32>()
            .sqrt();
        let mut cos = vec![0f32; self.items()];
        if norm > 0.0 {
            for &(t, w) in &profile.weights {
                let w = w / norm;
                for &(item, v) in &self.postings[t as usize] {
                    cos[item as usize] += w * v;
                }
            }
        }
        let (b, prior) = (beta.clamp(0.0, 1.0), &self.prior);
        if norm == 0.0 {
            return prior.clone();
        }
        cos.iter()
            .zip(prior)
            .map(|(c, p)| (1.0 - b) * c + b * p)
            .collect()
    }

    /// The `n` best items not excluded, best first; ties go to the lower position.
    pub fn top_n(
        &self,
        profile: &Profile,
        n: usize,
        exclude: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        crate::blend::top_n(&self.scores(profile), n, exclude)
    }
}

/// The tokens of a title's metadata, in the facets [`ContentIndex::build`] expects:
/// genres, tags, the first `max_cast` actors, directors, original language and release decade.
pub fn item_tokens(
    genres: &[String],
    tags: &[String],
    actors: &[String],
    directors: &[String],
    language: &str,
    release_year: Option<i32>,
    max_cast: usize,
) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    t.extend(genres.iter().map(|g| format!("genre:{g}")));
    t.extend(tags.iter().map(|g| format!("tag:{g}")));
    t.extend(actors.iter().take(max_cast).map(|g| format!("cast:{g}")));
    t.extend(directors.iter().map(|g| format!("director:{g}")));
    if !language.is_empty() {
        t.push(format!("lang:{language}"));
    }
    if let Some(y) = release_year {
        t.push(format!("era:{}s", y.div_euclid(10) * 10));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn index(beta: f32) -> ContentIndex {
        let items = vec![
            toks(&["genre:Comedy", "lang:en", "era:1990s"]),
            toks(&["genre:Horror", "lang:en", "era:1990s"]),
            toks(&["genre:Comedy", "lang:en", "era:2010s", "director:A"]),
            toks(&["genre:Drama", "lang:fr", "era:2010s", "director:A"]),
        ];
        ContentIndex::build(&items, &[], vec![0.1, 1.0, 0.2, 0.0], beta).unwrap()
    }

    #[test]
    fn profiles_are_unit_length_and_common_tokens_drop_out() {
        let idx = index(0.0);
        for i in 0..idx.items() {
            let p = idx.item_profile(i);
            let n: f32 = p.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-6);
        }
        // `lang:en` is in 3 of 4 items (IDF > 0); a token in every item would be dropped.
        let all = vec![toks(&["genre:A", "x:y"]), toks(&["genre:B", "x:y"])];
        let idx2 = ContentIndex::build(&all, &[], vec![0.0; 2], 0.0).unwrap();
        let xy = idx2.token_id("x:y").unwrap();
        assert!(idx2.item_profile(0).iter().all(|(t, _)| *t != xy));
    }

    #[test]
    fn scores_are_cosines_mixed_with_the_prior() {
        let idx = index(0.0);
        let p = idx.profile(&[(0, 1.0)], &Onboarding::default());
        let s = idx.scores(&p);
        assert!((s[0] - 1.0).abs() < 1e-5, "an item matches itself: {s:?}");
        assert!(s[2] > s[1] && s[1] > s[3]);
        let mixed = index(0.5).scores(&p);
        for i in 0..4 {
            assert!((mixed[i] - (0.5 * s[i] + 0.5 * idx.prior()[i])).abs() < 1e-6);
        }
        // No profile: the prior orders the catalog.
        assert_eq!(idx.scores(&Profile::default()), vec![0.1, 1.0, 0.2, 0.0]);
    }

    #[test]
    fn onboarding_picks_build_a_profile() {
        let idx = index(0.0);
        let p = idx.profile(
            &[],
            &Onboarding {
                tokens: toks(&["genre:Drama", "genre:Unknown"]),
                titles: vec![99],
            },
        );
        assert!(!p.is_empty());
        assert_eq!(idx.top_n(&p, 1, |_| false)[0].0, 3);
        let by_title = idx.profile(
            &[],
            &Onboarding {
                tokens: vec![],
                titles: vec![2],
            },
        );
        // The director links title 2 to title 3.
        let top = idx.top_n(&by_title, 2, |i| i == 2);
        assert_eq!(top[0].0, 0);
        assert!(top.iter().all(|&(i, _)| i != 2));
    }

    #[test]
    fn history_order_does_not_matter() {
        let idx = index(0.2);
        let a = idx.profile(&[(0, 1.0), (3, 0.5)], &Onboarding::default());
        let b = idx.profile(&[(3, 0.5), (0, 1.0)], &Onboarding::default());
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_parts_are_refused() {
        let idx = index(0.0);
        let (off, ent) = idx.parts();
        let ok = |o: Vec<u32>, e: Vec<(u32, f32)>, p: Vec<f32>, b: f32| {
            ContentIndex::from_parts(idx.tokens().to_vec(), o, e, p, b)
        };
        assert!(ok(off.to_vec(), ent.to_vec(), idx.prior().to_vec(), 0.0).is_ok());
        let mut bad_tok = ent.to_vec();
        bad_tok[0].0 = 999;
        assert!(ok(off.to_vec(), bad_tok, idx.prior().to_vec(), 0.0).is_err());
        let mut bad_off = off.to_vec();
        bad_off[1] = 1000;
        assert!(ok(bad_off, ent.to_vec(), idx.prior().to_vec(), 0.0).is_err());
        assert!(ok(off.to_vec(), ent.to_vec(), vec![0.0; 3], 0.0).is_err());
        assert!(ok(off.to_vec(), ent.to_vec(), idx.prior().to_vec(), 1.5).is_err());
    }

    #[test]
    fn tokens_cover_every_facet() {
        let t = item_tokens(
            &toks(&["Drama"]),
            &toks(&["heist"]),
            &toks(&["P1", "P2", "P3"]),
            &toks(&["D"]),
            "fr",
            Some(1994),
            2,
        );
        assert_eq!(
            t,
            toks(&[
                "genre:Drama",
                "tag:heist",
                "cast:P1",
                "cast:P2",
                "director:D",
                "lang:fr",
                "era:1990s"
            ])
        );
    }
}
