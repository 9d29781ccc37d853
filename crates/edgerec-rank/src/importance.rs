//! Permutation importance of the deep ranker (Breiman 2001; Fisher, Rudin & Dominici 2019):
//! how much worse the model scores a validation set when one input is shuffled across rows,
//! breaking its link to the label while keeping its distribution.

use serde::{Deserialize, Serialize};

use crate::deep::assemble;
use crate::{DeepRanker, Examples, Result, auc, log_loss};
use edgerec::rng::SplitMix64;

/// The effect of shuffling one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// A dense feature's name, or a bag field's name (`movie`, `history`, …).
    pub name: String,
    /// Whether `name` is a bag field (all its ids and weights shuffled together, as a group).
    pub bag: bool,
    /// AUC with the model's inputs minus AUC with this input shuffled (`None` with one class).
    pub auc_drop: Option<f64>,
    /// Weighted log-loss with this input shuffled minus with the model's inputs.
    pub log_loss_rise: Option<f64>,
}

/// For every dense feature and every bag field of `model`, shuffles it across the rows `rows`
/// of `examples` (at most `max_rows` of them, a seeded sample) with a seeded permutation and
/// measures the drop in AUC and the rise in weighted log-loss. Largest log-loss rise first,
/// ties by name. Cost: one forward pass per input over the sample.
pub fn permutation_importance(
    model: &DeepRanker,
    examples: &Examples,
    rows: &[usize],
    max_rows: usize,
    seed: u64,
) -> Result<Vec<Importance>> {
    let mut rng = SplitMix64::new(seed);
    let mut sample = rows.to_vec();
    if sample.len() > max_rows {
        rng.shuffle(&mut sample);
        sample.truncate(max_rows);
        sample.sort_unstable();
    }
    if sample.is_empty() {
        return Ok(Vec::new());
    }
    let labels: Vec<bool> = sample.iter().map(|&i| examples.data.labels()[i]).collect();
    let weights: Vec<f32> = sample.iter().map(|&i| examples.data.weights()[i]).collect();
    let batch = assemble(&model.contract(), examples, &sample)?;
    let metrics = |p: &[f32]| (auc(p, &labels), log_loss(p, &labels, Some(&weights)));
    let (base_auc, base_loss) = metrics(&model.predict(&batch)?);
    let n = batch.rows;
    let d = model.names().len();
    let permutation = |rng: &mut SplitMix64| {
        let mut p: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut p);
        p
    };
    let mut out = Vec::with_capacity(d + batch.bags.len());
    let mut push = |name: &str, bag: bool, p: &[f32]| {
        let (a, l) = metrics(p);
        out.push(Importance {
            name: name.to_string(),
            bag,
            auc_drop: base_auc.zip(a).map(|(b, a)| b - a),
            log_loss_rise: base_loss.zip(l).map(|(b, l)| l - b),
        });
    };
    for (j, name) in model.names().iter().enumerate() {
        let perm = permutation(&mut rng);
        let mut shuffled = batch.clone();
        for (i, &from) in perm.iter().enumerate() {
            shuffled.dense[i * d + j] = batch.dense[from * d + j];
        }
        push(name, false, &model.predict(&shuffled)?);
    }
    for b in 0..batch.bags.len() {
        let perm = permutation(&mut rng);
        let mut shuffled = batch.clone();
        let (src, dst) = (&batch.bags[b], &mut shuffled.bags[b]);
        let len = src.len;
        for (i, &from) in perm.iter().enumerate() {
            dst.ids[i * len..(i + 1) * len].copy_from_slice(&src.ids[from * len..(from + 1) * len]);
            dst.weights[i * len..(i + 1) * len]
                .copy_from_slice(&src.weights[from * len..(from + 1) * len]);
        }
        push(src.field.as_str(), true, &model.predict(&shuffled)?);
    }
    out.sort_by(|a, b| {
        let rise = |x: &Importance| x.log_loss_rise.unwrap_or(f64::NEG_INFINITY);
        rise(b)
            .total_cmp(&rise(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}
