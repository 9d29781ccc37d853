//! Offline evaluation of recommendation lists.
//!
//! Per-user metrics of a top-N row against the titles the user really watched later
//! (`relevant`), with the conventions spelled out because papers and libraries differ:
//!
//! | metric | definition for one user |
//! |---|---|
//! | [`recall`] | hits in the first N / \|relevant\| |
//! | [`recall_capped`] | hits in the first N / min(N, \|relevant\|): 1 for a perfect row even when more than N are relevant |
//! | [`precision`] | hits in the first N / N |
//! | [`average_precision`] | Σ over ranks k ≤ N holding a hit of precision@k, / min(N, \|relevant\|) (mAP@N is its mean) |
//! | [`mean_recall`] | mean over k = 1..N of recall@k (mAR@N is its mean over users) |
//! | [`ndcg`] | DCG with binary gains and 1/log2(rank + 1) discounts, over the DCG of an ideal row with min(N, \|relevant\|) hits |
//! | [`hit`] | 1 if any of the first N is relevant |
//! | [`auc`] | share of (relevant, not relevant) pairs of a full ranking in the right order |
//!
//! Users without relevant titles are skipped by the caller (every metric is 0 or undefined for
//! them). F1@N is computed from the mean precision and mean recall ([`f1`]). Across users,
//! [`Summary`] keeps the per-user values with their mean and standard error, and
//! [`paired`] compares two systems on the same users. List-level measures: [`coverage`],
//! [`intra_list_diversity`], [`novelty`].
//!
//! ```
//! use std::collections::HashSet;
//! use edgerec_eval::*;
//! let relevant: HashSet<u32> = [2, 5].into();
//! let row = [1, 2, 3, 5];
//! assert_eq!(recall(&row, &relevant, 3), 0.5);
//! assert_eq!(precision(&row, &relevant, 4), 0.5);
//! assert_eq!(average_precision(&row, &relevant, 4), (1.0 / 2.0 + 2.0 / 4.0) / 2.0);
//! ```

pub mod plot;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

fn hits_at(row: &[u32], relevant: &HashSet<u32>, n: usize) -> usize {
    row.iter().take(n).filter(|i| relevant.contains(i)).count()
}

/// Hits in the first `n` over the number of relevant titles (0 when none is relevant).
pub fn recall(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits_at(row, relevant, n) as f64 / relevant.len() as f64
}

/// Hits in the first `n` over `min(n, |relevant|)`.
pub fn recall_capped(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    let d = n.min(relevant.len());
    if d == 0 {
        return 0.0;
    }
    hits_at(row, relevant, n) as f64 / d as f64
}

/// Hits in the first `n` over `n` (a row shorter than `n` counts its missing slots as misses).
pub fn precision(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    hits_at(row, relevant, n) as f64 / n as f64
}

/// Average precision truncated at `n`, normalised by `min(n, |relevant|)`.
pub fn average_precision(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    let d = n.min(relevant.len());
    if d == 0 {
        return 0.0;
    }
    let mut hits = 0;
    let mut sum = 0.0;
    for (k, item) in row.iter().take(n).enumerate() {
        if relevant.contains(item) {
            hits += 1;
            sum += hits as f64 / (k + 1) as f64;
        }
    }
    sum / d as f64
}

/// The mean over `k = 1..=n` of [`recall`]`@k`.
pub fn mean_recall(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    if n == 0 || relevant.is_empty() {
        return 0.0;
    }
    let mut hits = 0;
    let mut sum = 0.0;
    for k in 0..n {
        if row.get(k).is_some_and(|i| relevant.contains(i)) {
            hits += 1;
        }
        sum += hits as f64 / relevant.len() as f64;
    }
    sum / n as f64
}

/// NDCG@n with binary gains.
pub fn ndcg(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    let gain = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = row
        .iter()
        .take(n)
        .enumerate()
        .filter(|(_, i)| relevant.contains(i))
        .map(|(r, _)| gain(r))
        .sum();
    let ideal: f64 = (0..n.min(relevant.len())).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// 1 when one of the first `n` is relevant.
pub fn hit(row: &[u32], relevant: &HashSet<u32>, n: usize) -> f64 {
    if hits_at(row, relevant, n) > 0 {
        1.0
    } else {
        0.0
    }
}

/// AUC of a full ranking (every candidate, best first): the share of (relevant, not relevant)
/// pairs where the relevant title ranks higher. Relevant titles missing from the ranking count
/// as ranked last. `None` when there is no relevant title or no non-relevant one.
pub fn auc(ranking: &[u32], relevant: &HashSet<u32>) -> Option<f64> {
    let ranked_relevant = ranking.iter().filter(|i| relevant.contains(i)).count();
    let negatives = ranking.len() - ranked_relevant;
    if relevant.is_empty() || negatives == 0 {
        return None;
    }
    // For each relevant title, count the negatives ranked below it.
    let mut negatives_seen = 0u64;
    let mut correct = 0u64;
    for item in ranking {
        if relevant.contains(item) {
            correct += (negatives - negatives_seen as usize) as u64;
        } else {
            negatives_seen += 1;
        }
    }
    Some(correct as f64 / (relevant.len() as f64 * negatives as f64))
}

/// F1 from the mean precision and mean recall (0 when both are 0).
pub fn f1(mean_precision: f64, mean_recall: f64) -> f64 {
    if mean_precision + mean_recall == 0.0 {
        0.0
    } else {
        2.0 * mean_precision * mean_recall / (mean_precision + mean_recall)
    }
}

/// Share of the catalog that appears in at least one row.
pub fn coverage<'a>(rows: impl IntoIterator<Item = &'a [u32]>, catalog_size: usize) -> f64 {
    if catalog_size == 0 {
        return 0.0;
    }
    let distinct: HashSet<u32> = rows.into_iter().flatten().copied().collect();
    distinct.len() as f64 / catalog_size as f64
}

/// Mean pairwise dissimilarity `1 − similarity(a, b)` over the pairs of a row (0 for rows of
/// fewer than two titles).
pub fn intra_list_diversity(row: &[u32], similarity: impl Fn(u32, u32) -> f64) -> f64 {
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for (i, &a) in row.iter().enumerate() {
        for &b in &row[i + 1..] {
            sum += 1.0 - similarity(a, b);
            pairs += 1;
        }
    }
    if pairs == 0 { 0.0 } else { sum / pairs as f64 }
}

/// Mean self-information `−log2 p(item)` of a row, where `p` is the share of users who watched
/// the item in the training data; unseen items count as watched by one user in `users`.
pub fn novelty(row: &[u32], watchers: &HashMap<u32, u64>, users: u64) -> f64 {
    if row.is_empty() || users == 0 {
        return 0.0;
    }
    row.iter()
        .map(|i| {
            let p = watchers.get(i).copied().unwrap_or(0).max(1) as f64 / users as f64;
            -p.log2()
        })
        .sum::<f64>()
        / row.len() as f64
}

/// Per-user values of one metric with their mean and standard error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// One value per user, in the order they were added.
    pub values: Vec<f64>,
}

impl Summary {
    /// Adds a user's value.
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            0.0
        } else {
            self.values.iter().sum::<f64>() / self.values.len() as f64
        }
    }

    /// The standard error of the mean: sample standard deviation over √n (0 below two users).
    pub fn standard_error(&self) -> f64 {
        let n = self.values.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        let var = self.values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    }
}

/// Mean and standard error of the per-user differences `a − b` of two systems evaluated on the
/// same users in the same order. Panics if the lengths differ.
pub fn paired(a: &Summary, b: &Summary) -> (f64, f64) {
    assert_eq!(
        a.values.len(),
        b.values.len(),
        "paired needs the same users"
    );
    let d = Summary {
        values: a.values.iter().zip(&b.values).map(|(x, y)| x - y).collect(),
    };
    (d.mean(), d.standard_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u32]) -> HashSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn hand_worked_row() {
        // Relevant {2, 5, 9}; row [1, 2, 3, 5]; N = 4: hits at ranks 2 and 4.
        let rel = set(&[2, 5, 9]);
        let row = [1, 2, 3, 5];
        assert_eq!(recall(&row, &rel, 4), 2.0 / 3.0);
        assert_eq!(recall_capped(&row, &rel, 2), 1.0 / 2.0);
        assert_eq!(precision(&row, &rel, 4), 0.5);
        // AP@4 = (1/2 + 2/4) / min(4, 3).
        assert_eq!(average_precision(&row, &rel, 4), (0.5 + 0.5) / 3.0);
        // recall@k for k = 1..4: 0, 1/3, 1/3, 2/3.
        assert!((mean_recall(&row, &rel, 4) - (4.0 / 3.0) / 4.0).abs() < 1e-12);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((ndcg(&row, &rel, 4) - dcg / ideal).abs() < 1e-12);
        assert_eq!(hit(&row, &rel, 1), 0.0);
        assert_eq!(hit(&row, &rel, 2), 1.0);
        assert_eq!(f1(0.5, 0.5), 0.5);
        assert_eq!(f1(0.0, 0.0), 0.0);
    }

    #[test]
    fn perfect_and_empty_rows() {
        let rel = set(&[7, 8, 9]);
        assert_eq!(recall_capped(&[7, 8], &rel, 2), 1.0);
        assert_eq!(average_precision(&[7, 8], &rel, 2), 1.0);
        assert_eq!(ndcg(&[7, 8], &rel, 2), 1.0);
        assert_eq!(recall(&[], &rel, 10), 0.0);
        assert_eq!(precision(&[7], &rel, 10), 0.1);
        assert_eq!(average_precision(&[1], &set(&[]), 10), 0.0);
    }

    #[test]
    fn auc_counts_ordered_pairs() {
        // Ranking 1, 2, 3, 4 with relevant {2, 4}: of the four (relevant, other) pairs only
        // 2-above-3 is in the right order.
        let rel = set(&[2, 4]);
        assert_eq!(auc(&[1, 2, 3, 4], &rel), Some(0.25));
        assert_eq!(auc(&[2, 4, 1, 3], &rel), Some(1.0));
        assert_eq!(auc(&[1, 3, 2, 4], &rel), Some(0.0));
        // A relevant title missing from the ranking counts as last.
        assert_eq!(auc(&[2, 1, 3], &rel), Some(0.5));
        assert_eq!(auc(&[2, 4], &rel), None);
    }

    #[test]
    fn list_measures() {
        let rows: [&[u32]; 2] = [&[1, 2], &[2, 3]];
        assert_eq!(coverage(rows, 6), 0.5);
        let same_parity = |a: u32, b: u32| if a % 2 == b % 2 { 1.0 } else { 0.0 };
        // Pairs (1,2) 1, (1,3) 0, (2,3) 1 → 2/3.
        assert!((intra_list_diversity(&[1, 2, 3], same_parity) - 2.0 / 3.0).abs() < 1e-12);
        let watchers: HashMap<u32, u64> = [(1, 50), (2, 25)].into();
        // −log2(0.5) = 1, −log2(0.25) = 2, unseen: −log2(1/100).
        assert_eq!(novelty(&[1, 2], &watchers, 100), 1.5);
        assert!((novelty(&[3], &watchers, 100) - 100f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn summaries_and_paired_differences() {
        let mut a = Summary::default();
        let mut b = Summary::default();
        for (x, y) in [(1.0, 0.5), (2.0, 1.0), (3.0, 2.5), (4.0, 3.0)] {
            a.push(x);
            b.push(y);
        }
        assert_eq!(a.mean(), 2.5);
        assert!((a.standard_error() - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        // Differences 0.5, 1.0, 0.5, 1.0: mean 0.75, sd 0.2887, se 0.1443.
        let (d, se) = paired(&a, &b);
        assert_eq!(d, 0.75);
        assert!((se - (1.0f64 / 12.0).sqrt() / 2.0).abs() < 1e-12);
    }
}
