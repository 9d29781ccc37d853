//! Ranking metrics for the trainer's validation (the full evaluation suite comes later).

use std::collections::HashSet;

/// Recall@k with the usual cap: hits in the first `k` divided by `min(k, |relevant|)`, so a
/// perfect row scores 1 even when more than `k` titles are relevant. 0 when nothing is relevant.
pub fn recall_at_k(row: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    let denom = k.min(relevant.len());
    if denom == 0 {
        return 0.0;
    }
    let hits = row.iter().take(k).filter(|i| relevant.contains(i)).count();
    hits as f64 / denom as f64
}

/// NDCG@k with binary gains and a log2 discount: DCG of the row over the DCG of an ideal row
/// with `min(k, |relevant|)` hits on top.
pub fn ndcg_at_k(row: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    let gain = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = row
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| relevant.contains(i))
        .map(|(r, _)| gain(r))
        .sum();
    let ideal: f64 = (0..k.min(relevant.len())).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// Running mean and standard error of the mean.
#[derive(Debug, Default, Clone)]
pub struct Mean {
    n: u64,
    sum: f64,
    sum_sq: f64,
}

impl Mean {
    /// Adds one observation.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// Sample standard deviation over √n (0 with fewer than two observations).
    pub fn standard_error(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        let var = ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0);
        (var / n).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u32]) -> HashSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn hand_worked_recall_and_ndcg() {
        // Relevant {2, 5}; row [1, 2, 3, 5]; k = 3: one hit at rank 2.
        let rel = set(&[2, 5]);
        assert_eq!(recall_at_k(&[1, 2, 3, 5], &rel, 3), 0.5);
        // DCG = 1/log2(3); ideal = 1 + 1/log2(3).
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at_k(&[1, 2, 3, 5], &rel, 3) - expected).abs() < 1e-12);
        // Capped denominator: 3 relevant, k = 2, both slots hit.
        assert_eq!(recall_at_k(&[7, 8], &set(&[7, 8, 9]), 2), 1.0);
        assert_eq!(ndcg_at_k(&[7, 8], &set(&[7, 8, 9]), 2), 1.0);
        assert_eq!(recall_at_k(&[1], &set(&[]), 10), 0.0);
    }

    #[test]
    fn mean_and_standard_error() {
        let mut m = Mean::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            m.push(x);
        }
        assert_eq!(m.mean(), 2.5);
        // Sample variance 5/3; SE = sqrt(5/3 / 4).
        assert!((m.standard_error() - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
    }
}
