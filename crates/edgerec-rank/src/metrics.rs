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
}
