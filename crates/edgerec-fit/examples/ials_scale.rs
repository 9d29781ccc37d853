//! iALS at scale: the catalog-bounded streaming trainer ([`edgerec_train::stream`]) against the
//! in-memory one ([`edgerec_train::ials`]) on a synthetic world. Prints wall time, peak RSS and
//! quality on a held-out window (the last `--holdout-days`). Quality is Recall@10 and NDCG@10
//! of each sampled user's fold-in against the held-out positives, with training titles
//! excluded. `--mode both` pairs the two models on the same users.
//!
//! ```text
//! cargo run -p edgerec-fit --example ials_scale -- --world data/w1m --mode stream
//! ```
//! `scripts/bench-train.sh` runs it at 1M, 3M and 10M users.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use edgerec::ials::Factors;
use edgerec_data::schema::{self, Play};
use edgerec_fit::stream::PositivesByUser;
use edgerec_train::ials::{IalsConfig, Interactions, Solver};
use edgerec_train::stream::{Partitions, StreamConfig, train_streaming};
use rayon::prelude::*;

struct Args {
    world: PathBuf,
    mode: String,
    holdout_days: i64,
    factors: usize,
    iterations: usize,
    item_steps: usize,
    partition_users: usize,
    eval_every: u32,
    k: usize,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        world: PathBuf::new(),
        mode: "stream".into(),
        holdout_days: 7,
        factors: 64,
        iterations: 10,
        item_steps: 3,
        partition_users: 50_000,
        eval_every: 50,
        k: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--world" => a.world = value.into(),
            "--mode" => a.mode = value,
            "--holdout-days" => a.holdout_days = value.parse()?,
            "--factors" => a.factors = value.parse()?,
            "--iterations" => a.iterations = value.parse()?,
            "--item-steps" => a.item_steps = value.parse()?,
            "--partition-users" => a.partition_users = value.parse()?,
            "--eval-every" => a.eval_every = value.parse()?,
            "--k" => a.k = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    if a.world.as_os_str().is_empty() {
        bail!("--world DIR is required");
    }
    if !["stream", "memory", "both"].contains(&a.mode.as_str()) {
        bail!("--mode is stream, memory or both");
    }
    Ok(a)
}

fn peak_rss_mib() -> f64 {
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

/// A user's training positives (dense item index, strength) and held-out titles.
type Split = (Vec<(usize, f32)>, HashSet<usize>);

/// A model's fold-in.
type Fold<'a> = dyn Fn(&[(usize, f32)]) -> Option<Vec<f32>> + Sync + 'a;

/// Sampled users' training and held-out positives.
struct Holdout {
    users: Vec<Split>,
}

fn holdout(a: &Args, cut: i64) -> Result<Holdout> {
    let items: std::collections::HashMap<u32, usize> =
        schema::read_table::<edgerec_data::schema::Item>(&a.world)?
            .iter()
            .enumerate()
            .map(|(i, it)| (it.item_id, i))
            .collect();
    let mut by_user: std::collections::BTreeMap<u32, Split> = Default::default();
    schema::for_each_batch::<Play>(&a.world, |rows| {
        for p in rows {
            if p.user_id % a.eval_every != 0 || p.fraction <= 0.8 {
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
    let users = by_user
        .into_values()
        .filter_map(|(train, held)| {
            let seen: HashSet<usize> = train.iter().map(|p| p.0).collect();
            let held: HashSet<usize> = held.difference(&seen).copied().collect();
            (!train.is_empty() && !held.is_empty()).then_some((train, held))
        })
        .collect();
    Ok(Holdout { users })
}

/// Per-user (Recall@k, NDCG@k) of a model's fold-ins.
fn score(h: &Holdout, items: &Factors, fold: &Fold<'_>, k: usize) -> Vec<(f64, f64)> {
    h.users
        .par_iter()
        .map(|(train, held)| {
            let Some(x) = fold(train) else {
                return (0.0, 0.0);
            };
            let seen: HashSet<usize> = train.iter().map(|p| p.0).collect();
            let mut scored: Vec<(f32, usize)> = (0..items.rows())
                .filter(|i| !seen.contains(i))
                .map(|i| (items.row(i).iter().zip(&x).map(|(a, b)| a * b).sum(), i))
                .collect();
            let k = k.min(scored.len());
            if k == 0 {
                return (0.0, 0.0);
            }
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut top = scored[..k].to_vec();
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let hits: Vec<bool> = top.iter().map(|(_, i)| held.contains(i)).collect();
            let recall = hits.iter().filter(|&&h| h).count() as f64 / held.len().min(k) as f64;
            let dcg: f64 = hits
                .iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
                .sum();
            let ideal: f64 = (0..held.len().min(k))
                .map(|r| 1.0 / (r as f64 + 2.0).log2())
                .sum();
            (recall, dcg / ideal)
        })
        .collect()
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, (var / n).sqrt())
}

fn main() -> Result<()> {
    let a = parse()?;
    // The window: first pass for the last event time.
    let mut last = i64::MIN;
    schema::for_each_batch::<Play>(&a.world, |rows| {
        last = rows.iter().map(|p| p.time).fold(last, i64::max);
        Ok(())
    })?;
    let cut = last - a.holdout_days * 86_400;
    let source = PositivesByUser::open(&a.world, 0.8, Some(cut), a.partition_users)?;
    let h = holdout(&a, cut)?;
    println!(
        "world {}: {} items, cut {} ({} held-out days), {} evaluation users",
        a.world.display(),
        source.items(),
        cut,
        a.holdout_days,
        h.users.len()
    );
    let rss_before = peak_rss_mib();

    let mut results: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    if a.mode != "memory" {
        let t = Instant::now();
        let config = StreamConfig {
            factors: a.factors,
            iterations: a.iterations,
            item_steps: a.item_steps,
            ..StreamConfig::default()
        };
        let model = train_streaming(&source, &config)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "stream: {} users, {} passes, {:.1} s, peak RSS {:.0} MiB (before training {:.0} MiB)",
            model.users,
            model.passes,
            secs,
            peak_rss_mib(),
            rss_before
        );
        let fold = |h: &[(usize, f32)]| model.fold_in(h);
        results.push(("stream".into(), score(&h, &model.items, &fold, a.k)));
    }
    if a.mode != "stream" {
        let t = Instant::now();
        let mut triples = Vec::new();
        let mut user = 0u32;
        source
            .for_each(&mut |part| {
                for history in part {
                    triples.extend(history.iter().map(|&(i, r)| (user, i, r)));
                    user += 1;
                }
                Ok(())
            })
            .map_err(anyhow::Error::msg)?;
        let data = Interactions::from_triples(user as usize, source.items(), &triples)?;
        drop(triples);
        let config = IalsConfig {
            factors: a.factors,
            iterations: a.iterations,
            solver: Solver::ConjugateGradient { steps: 3 },
            ..IalsConfig::default()
        };
        let model = edgerec_train::ials::try_train(&data, &config)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "memory: {} users, {} positives, {:.1} s, peak RSS {:.0} MiB",
            data.users(),
            data.nnz(),
            secs,
            peak_rss_mib()
        );
        let fold = |h: &[(usize, f32)]| model.fold_in(h);
        results.push(("memory".into(), score(&h, model.item_factors(), &fold, a.k)));
    }
    for (name, per_user) in &results {
        let (r, rse) = mean_se(&per_user.iter().map(|p| p.0).collect::<Vec<_>>());
        let (n, nse) = mean_se(&per_user.iter().map(|p| p.1).collect::<Vec<_>>());
        println!(
            "{name}: Recall@{k} {r:.4} ± {rse:.4}, NDCG@{k} {n:.4} ± {nse:.4}",
            k = a.k
        );
    }
    if let [(_, s), (_, m)] = &results[..] {
        let dr: Vec<f64> = s.iter().zip(m).map(|(a, b)| a.0 - b.0).collect();
        let dn: Vec<f64> = s.iter().zip(m).map(|(a, b)| a.1 - b.1).collect();
        let (r, rse) = mean_se(&dr);
        let (n, nse) = mean_se(&dn);
        println!("stream − memory (paired): Recall {r:+.4} ± {rse:.4}, NDCG {n:+.4} ± {nse:.4}");
    }
    Ok(())
}
