//! What the training-at-scale benchmarks share (`ials_scale`, `tower_scale`, `rank_scale`):
//! the held-out window, the sampled evaluation users, Recall@k and NDCG@k of a model's user
//! vectors against its item vectors, means with standard errors and the paired difference of
//! two models, flag parsing and the process's peak RSS.
#![allow(dead_code)] // each benchmark uses its own subset

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::{Result, bail};
use edgerec::ials::Factors;
use edgerec::retrieval::ItemVectors;
use edgerec_data::schema::{self, Item, Play};
use rayon::prelude::*;

/// Peak resident set size of this process so far (`VmHWM`), MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The training cut: `holdout_days` before the world's last play.
pub fn cut(world: &Path, holdout_days: i64) -> Result<i64> {
    let mut last = i64::MIN;
    schema::for_each_batch::<Play>(world, |rows| {
        last = rows.iter().map(|p| p.time).fold(last, i64::max);
        Ok(())
    })?;
    Ok(last - holdout_days * 86_400)
}

/// A sampled user: positives before the cut (dense item index, strength 1, log order) and the
/// titles first watched after it.
pub struct HeldUser {
    pub user_id: u32,
    pub train: Vec<(usize, f32)>,
    pub held: HashSet<usize>,
}

/// Users whose id is a multiple of `every` with positives on both sides of the cut.
pub fn holdout(world: &Path, cut: i64, every: u32) -> Result<Vec<HeldUser>> {
    let items: HashMap<u32, usize> = schema::read_table::<Item>(world)?
        .iter()
        .enumerate()
        .map(|(i, it)| (it.item_id, i))
        .collect();
    type Sides = (Vec<(usize, f32)>, HashSet<usize>);
    let mut by_user: BTreeMap<u32, Sides> = BTreeMap::new();
    schema::for_each_batch::<Play>(world, |rows| {
        for p in rows {
            if p.user_id % every != 0 || p.fraction <= 0.8 {
                continue;
            }
            let Some(&i) = items.get(&p.item_id) else {
                bail!("unknown item {}", p.item_id);
            };
            let e = by_user.entry(p.user_id).or_default();
            if p.time < cut {
                e.0.push((i, 1.0));
            } else {
                e.1.insert(i);
            }
        }
        Ok(())
    })?;
    Ok(by_user
        .into_iter()
        .filter_map(|(user_id, (train, held))| {
            let seen: HashSet<usize> = train.iter().map(|p| p.0).collect();
            let held: HashSet<usize> = held.difference(&seen).copied().collect();
            (!train.is_empty() && !held.is_empty()).then_some(HeldUser {
                user_id,
                train,
                held,
            })
        })
        .collect())
}

/// Per-user (Recall@k, NDCG@k): each user's `vectors[u]` (none scores zero) against the rows
/// of `items` (`dim` wide) by dot product (the core's flat scan), the user's training titles
/// excluded.
pub fn score(
    users: &[HeldUser],
    vectors: &[Option<Vec<f32>>],
    items: &[f32],
    dim: usize,
    k: usize,
) -> Result<Vec<(f64, f64)>> {
    let Some(factors) = Factors::new(dim, items.to_vec()) else {
        bail!("{} item values are not rows of {dim}", items.len());
    };
    let items = ItemVectors::F32(factors);
    users
        .par_iter()
        .zip(vectors)
        .map(|(u, x)| -> Result<(f64, f64)> {
            let Some(x) = x else {
                return Ok((0.0, 0.0));
            };
            let seen: HashSet<usize> = u.train.iter().map(|p| p.0).collect();
            let mut scored: Vec<(f32, usize)> = items
                .scores(x)?
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !seen.contains(i))
                .map(|(i, s)| (s, i))
                .collect();
            let k = k.min(scored.len());
            if k == 0 {
                return Ok((0.0, 0.0));
            }
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut top = scored[..k].to_vec();
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let hits: Vec<bool> = top.iter().map(|(_, i)| u.held.contains(i)).collect();
            let recall = hits.iter().filter(|&&h| h).count() as f64 / u.held.len().min(k) as f64;
            let dcg: f64 = hits
                .iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
                .sum();
            let ideal: f64 = (0..u.held.len().min(k))
                .map(|r| 1.0 / (r as f64 + 2.0).log2())
                .sum();
            Ok((recall, dcg / ideal))
        })
        .collect()
}

/// Mean and standard error.
pub fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, (var / n).sqrt())
}

/// Prints each model's Recall@k and NDCG@k, and each model's paired difference from the last.
pub fn report(results: &[(String, Vec<(f64, f64)>)], k: usize) {
    for (name, per_user) in results {
        let (r, rse) = mean_se(&per_user.iter().map(|p| p.0).collect::<Vec<_>>());
        let (n, nse) = mean_se(&per_user.iter().map(|p| p.1).collect::<Vec<_>>());
        println!("{name}: Recall@{k} {r:.4} ± {rse:.4}, NDCG@{k} {n:.4} ± {nse:.4}");
    }
    let Some(((b, m), rest)) = results.split_last() else {
        return;
    };
    for (a, s) in rest {
        let dr: Vec<f64> = s.iter().zip(m).map(|(x, y)| x.0 - y.0).collect();
        let dn: Vec<f64> = s.iter().zip(m).map(|(x, y)| x.1 - y.1).collect();
        let (r, rse) = mean_se(&dr);
        let (n, nse) = mean_se(&dn);
        println!("{a} − {b} (paired): Recall {r:+.4} ± {rse:.4}, NDCG {n:+.4} ± {nse:.4}");
    }
}

/// Parses `--flag value` pairs with `set`, which returns false for an unknown flag.
pub fn parse_flags(mut set: impl FnMut(&str, String) -> Result<bool>) -> Result<()> {
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        if !set(&flag, value)? {
            bail!("unknown flag {flag}");
        }
    }
    Ok(())
}
