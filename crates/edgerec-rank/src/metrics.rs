//! Ranking and calibration metrics of binary predictions.

/// Smallest and largest probability [`log_loss`] scores (f32 predictions can round to 0 or 1).
const CLAMP: f64 = 1e-7;

/// Area under the ROC curve, unweighted: the probability that a random positive scores above a
/// random negative, ties counting one half (Mann–Whitney U with mid-ranks). `None` when
/// `labels` holds only one class. Cost: one sort, O(n log n).
pub fn auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one score per label");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Sum of the positives' (1-based, mid) ranks.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| labels[k]).count();
        rank_sum += mid * tied_positives as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Mean log-loss `−Σ wᵢ (yᵢ ln pᵢ + (1−yᵢ) ln(1−pᵢ)) / Σ wᵢ` with `pᵢ` clamped to
/// [1e-7, 1 − 1e-7]; pass `None` for unit weights. `None` when the total weight is zero.
pub fn log_loss(probs: &[f32], labels: &[bool], weights: Option<&[f32]>) -> Option<f64> {
    assert_eq!(probs.len(), labels.len(), "one probability per label");
    let mut total = 0.0f64;
    let mut loss = 0.0f64;
    for (i, (&p, &y)) in probs.iter().zip(labels).enumerate() {
        let w = weights.map_or(1.0, |w| f64::from(w[i]));
        let p = f64::from(p).clamp(CLAMP, 1.0 - CLAMP);
        loss -= w * if y { p.ln() } else { (1.0 - p).ln() };
        total += w;
    }
    (total > 0.0).then(|| loss / total)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the bin's predicted probabilities (inclusive).
    pub lower: f64,
    /// Upper edge (exclusive, except 1 for the last bin).
    pub upper: f64,
    /// Examples in the bin.
    pub count: usize,
    /// Their total weight.
    pub weight: f64,
    /// Weighted mean predicted probability.
    pub predicted: f64,
    /// Weighted share of positives.
    pub observed: f64,
}

/// The reliability diagram of weighted predictions: `bins` equal-width bins of the predicted
/// probability over [0, 1] (a prediction of exactly 1 falls in the last bin), each with its
/// weighted mean prediction and weighted positive rate. Bins without weight are left out.
pub fn calibration(
    probs: &[f32],
    labels: &[bool],
    weights: &[f32],
    bins: usize,
) -> Vec<CalibrationBin> {
    assert!(
        probs.len() == labels.len() && labels.len() == weights.len() && bins > 0,
        "one probability, label and weight per row, at least one bin"
    );
    let mut acc = vec![(0usize, 0.0f64, 0.0f64, 0.0f64); bins];
    for ((&p, &y), &w) in probs.iter().zip(labels).zip(weights) {
        let p = f64::from(p).clamp(0.0, 1.0);
        let b = ((p * bins as f64) as usize).min(bins - 1);
        let w = f64::from(w);
        let a = &mut acc[b];
        a.0 += 1;
        a.1 += w;
        a.2 += w * p;
        a.3 += if y { w } else { 0.0 };
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| a.1 > 0.0)
        .map(|(b, a)| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: a.0,
            weight: a.1,
            predicted: a.2 / a.1,
            observed: a.3 / a.1,
        })
        .collect()
}

/// Expected calibration error of a reliability diagram: `Σ_b weight_b |predicted_b −
/// observed_b| / Σ_b weight_b` (`None` without weight).
pub fn calibration_error(bins: &[CalibrationBin]) -> Option<f64> {
    let total: f64 = bins.iter().map(|b| b.weight).sum();
    (total > 0.0).then(|| {
        bins.iter()
            .map(|b| b.weight * (b.predicted - b.observed).abs())
            .sum::<f64>()
            / total
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        // Pairs (pos, neg): (0.8,0.1) 1, (0.8,0.8) ½, (0.3,0.1) 1, (0.3,0.8) 0 → 2.5/4.
        let a = auc(&[0.8, 0.3, 0.1, 0.8], &[true, true, false, false]).unwrap();
        assert!((a - 0.625).abs() < 1e-12);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn log_loss_weights_rows() {
        let l = log_loss(&[0.5, 0.5], &[true, false], None).unwrap();
        assert!((l - std::f64::consts::LN_2).abs() < 1e-12);
        let w = log_loss(&[0.9, 0.9], &[true, false], Some(&[3.0, 1.0])).unwrap();
        let expected = -(3.0 * 0.9f64.ln() + 0.1f64.ln()) / 4.0;
        assert!((w - expected).abs() < 1e-6);
        assert!(log_loss(&[0.0], &[true], None).unwrap().is_finite());
        assert_eq!(log_loss(&[], &[], None), None);
    }

    #[test]
    fn calibration_bins_by_prediction_and_weighs_rows() {
        let probs = [0.05, 0.05, 0.95, 1.0, 0.55];
        let labels = [false, true, true, true, false];
        let weights = [3.0, 1.0, 1.0, 1.0, 0.0];
        let bins = calibration(&probs, &labels, &weights, 10);
        // The 0.55 row weighs nothing: two bins.
        assert_eq!(bins.len(), 2);
        assert_eq!((bins[0].count, bins[0].weight), (2, 4.0));
        assert!((bins[0].predicted - 0.05).abs() < 1e-7);
        assert!((bins[0].observed - 0.25).abs() < 1e-12);
        assert_eq!((bins[1].lower, bins[1].count), (0.9, 2));
        assert!((bins[1].observed - 1.0).abs() < 1e-12);
        // |0.05 − 0.25|·4 + |0.975 − 1|·2, over 6.
        let e = calibration_error(&bins).unwrap();
        assert!((e - (0.2 * 4.0 + 0.025 * 2.0) / 6.0).abs() < 1e-6, "{e}");
        assert_eq!(calibration_error(&[]), None);
    }
}
