//! Merging candidate sources into one list, with a quota per source and attribution.
//!
//! Each source (collaborative filtering, two-tower, content, popularity…) proposes a ranked
//! list. [`blend`] interleaves them by smooth weighted round-robin: at every step each source
//! with candidates left earns its quota in credit, the source with the most credit (the first
//! listed on ties) places its best title not yet placed and pays the total of the quotas. Over
//! any prefix of the result every source holds its share of places, give or take one, until it
//! runs out; then the others fill in. Every placed title records each source that proposed it
//! and its rank there, so a row can say why a title is in it.
//!
//! ```
//! use edgerec::blend::{Source, blend};
//! let cf = vec![10, 11, 12, 13];
//! let pop = vec![11, 20, 21];
//! let out = blend(&[(Source::Collaborative, &cf[..]), (Source::Popularity, &pop[..])], &[3, 1], 6);
//! let items: Vec<usize> = out.iter().map(|c| c.item).collect();
//! assert_eq!(items, vec![10, 11, 20, 12, 13, 21]);
//! // Title 11 was proposed by both: rank 2 under collaborative filtering, rank 1 under popularity.
//! assert_eq!(out[1].sources, vec![(Source::Collaborative, 2), (Source::Popularity, 1)]);
//! ```

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// A candidate source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// iALS: the user's folded-in vector against the item factors.
    Collaborative,
    /// The two-tower model's user tower against its item embeddings.
    TwoTower,
    /// Metadata similarity to history or onboarding picks.
    Content,
    /// Time-decayed popularity.
    Popularity,
    /// Item-to-item neighbours of the titles watched or picked (`NBRS`).
    Neighbours,
}

impl Source {
    /// Every source, in the order used for tie-breaks.
    pub const ALL: [Source; 5] = [
        Source::Collaborative,
        Source::TwoTower,
        Source::Content,
        Source::Popularity,
        Source::Neighbours,
    ];

    /// Lowercase name used in files, reports and the JS API.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Collaborative => "ials",
            Source::TwoTower => "two-tower",
            Source::Content => "content",
            Source::Popularity => "popularity",
            Source::Neighbours => "neighbours",
        }
    }

    /// The source called `name` ([`Source::as_str`]).
    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A title in the blended list.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The item (catalog position).
    pub item: usize,
    /// The source whose turn placed it.
    pub placed_by: Source,
    /// Every source that proposed it, with its 1-based rank there, in the order sources were
    /// given.
    pub sources: Vec<(Source, u32)>,
}

/// Interleaves `lists` (ranked item lists, best first; a source's repeated items count once)
/// into at most `n` distinct items, giving each list places in proportion to `quotas` (one
/// per list; a zero quota takes places only after every list with a quota is exhausted, and
/// then the lists left share the places equally). Cost
/// O(total list length + n · sources).
pub fn blend(lists: &[(Source, &[usize])], quotas: &[u32], n: usize) -> Vec<Candidate> {
    let mut ranks: HashMap<usize, Vec<(Source, u32)>> = HashMap::new();
    // Lists are visited in order, so each item's sources come out in the order of the lists.
    for (source, items) in lists {
        for (r, &item) in items.iter().enumerate() {
            let e = ranks.entry(item).or_default();
            if !e.iter().any(|(s, _)| s == source) {
                e.push((*source, r as u32 + 1));
            }
        }
    }
    let quota = |k: usize| i64::from(quotas.get(k).copied().unwrap_or(0));
    let mut next = vec![0usize; lists.len()];
    let mut credit = vec![0i64; lists.len()];
    let mut placed: HashMap<usize, ()> = HashMap::new();
    let mut out = Vec::with_capacity(n);
    // Skips items already placed; true if the list still has something.
    let advance = |k: usize, next: &mut Vec<usize>, placed: &HashMap<usize, ()>| {
        let items = lists[k].1;
        while next[k] < items.len() && placed.contains_key(&items[next[k]]) {
            next[k] += 1;
        }
        next[k] < items.len()
    };
    while out.len() < n {
        let live: Vec<usize> = (0..lists.len())
            .filter(|&k| advance(k, &mut next, &placed))
            .collect();
        if live.is_empty() {
            break;
        }
        // Once every list with a quota ran out, the lists left share the places equally.
        let weighted: Vec<usize> = live.iter().copied().filter(|&k| quota(k) > 0).collect();
        let (pool, share): (&[usize], &dyn Fn(usize) -> i64) = if weighted.is_empty() {
            (&live, &|_| 1)
        } else {
            (&weighted, &quota)
        };
        let total: i64 = pool.iter().map(|&k| share(k)).sum();
        for &k in pool {
            credit[k] += share(k);
        }
        let turn = *pool
            .iter()
            .max_by(|&&a, &&b| credit[a].cmp(&credit[b]).then(b.cmp(&a)))
            .expect("live lists are not empty");
        credit[turn] -= total;
        let item = lists[turn].1[next[turn]];
        placed.insert(item, ());
        out.push(Candidate {
            item,
            placed_by: lists[turn].0,
            sources: ranks.remove(&item).unwrap_or_default(),
        });
    }
    out
}

/// A scored row in a bounded top-k heap (here, and in the flat and graph scans of
/// [`crate::quant`] and [`crate::hnsw`]). Ordered so that "greater" means worse: the higher
/// score wins, then the lower row; an ascending sort is best first and a `BinaryHeap`'s top is
/// the worst of the current top k.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked {
    /// The row's score.
    pub(crate) score: f32,
    /// The row (item position, index row…).
    pub(crate) row: usize,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.row.cmp(&other.row))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// The `n` highest `scores` whose index is not excluded, best first; ties go to the lower
/// index, NaN scores are skipped. Cost O(len · log n) with a bounded heap.
pub fn top_n(scores: &[f32], n: usize, exclude: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
    if n == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(n + 1);
    for (row, &score) in scores.iter().enumerate() {
        if score.is_nan() || exclude(row) {
            continue;
        }
        let cand = Ranked { score, row };
        if heap.len() < n {
            heap.push(cand);
        } else if let Some(worst) = heap.peek()
            && cand < *worst
        {
            heap.pop();
            heap.push(cand);
        }
    }
    let mut v: Vec<(usize, f32)> = heap.into_iter().map(|r| (r.row, r.score)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn top_n_is_sort_and_truncate(scores in proptest::collection::vec(-5i8..5, 0..60), n in 0usize..20) {
            let scores: Vec<f32> = scores.into_iter().map(f32::from).collect();
            let mut all: Vec<(usize, f32)> = scores.iter().copied().enumerate().filter(|(i, _)| i % 7 != 3).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(n);
            prop_assert_eq!(top_n(&scores, n, |i| i % 7 == 3), all);
        }

        #[test]
        fn blend_holds_quotas_and_never_repeats(
            a in proptest::collection::vec(0usize..40, 0..30),
            b in proptest::collection::vec(0usize..40, 0..30),
            qa in 0u32..5, qb in 0u32..5, n in 0usize..50,
        ) {
            let out = blend(&[(Source::Collaborative, &a[..]), (Source::Popularity, &b[..])], &[qa, qb], n);
            let mut seen = std::collections::HashSet::new();
            for c in &out {
                prop_assert!(seen.insert(c.item));
                prop_assert!(a.contains(&c.item) || b.contains(&c.item));
                // Attribution lists exactly the lists holding the item, with the first rank.
                for (s, r) in &c.sources {
                    let list = if *s == Source::Collaborative { &a } else { &b };
                    prop_assert_eq!(list.iter().position(|&x| x == c.item).map(|p| p as u32 + 1), Some(*r));
                }
            }
            let distinct: std::collections::HashSet<usize> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(out.len(), n.min(distinct.len()));
            // While both lists have fresh items, places follow the quotas within one.
            if qa > 0 && qb > 0 {
                let mut k = 0;
                let (mut na, mut nb) = (0i64, 0i64);
                for c in &out {
                    k += 1;
                    if c.placed_by == Source::Collaborative { na += 1 } else { nb += 1 }
                    let rest_a = a.iter().any(|x| !out[..k].iter().any(|c| c.item == *x));
                    let rest_b = b.iter().any(|x| !out[..k].iter().any(|c| c.item == *x));
                    if !(rest_a && rest_b) { break; }
                    let share = k as f64 * f64::from(qa) / f64::from(qa + qb);
                    prop_assert!((na as f64 - share).abs() <= 1.0 + 1e-9, "k {} na {} share {}", k, na, share);
                    let _ = nb;
                }
            }
        }
    }

    #[test]
    fn zero_quota_fills_in_last() {
        let a = [1, 2];
        let b = [3, 4, 5];
        let out = blend(
            &[(Source::Content, &a[..]), (Source::Popularity, &b[..])],
            &[0, 1],
            4,
        );
        let items: Vec<usize> = out.iter().map(|c| c.item).collect();
        assert_eq!(items, vec![3, 4, 5, 1]);
    }

    #[test]
    fn names_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Source::parse("nope"), None);
    }
}
