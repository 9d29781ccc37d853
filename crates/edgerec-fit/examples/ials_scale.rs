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

mod scale;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use edgerec_fit::stream::PositivesByUser;
use edgerec_train::ials::{IalsConfig, Interactions, Solver};
use edgerec_train::stream::{Partitions, StreamConfig, train_streaming};
use scale::{HeldUser, peak_rss_mib};

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
    scale::parse_flags(|flag, value| {
        match flag {
            "--world" => a.world = value.into(),
            "--mode" => a.mode = value,
            "--holdout-days" => a.holdout_days = value.parse()?,
            "--factors" => a.factors = value.parse()?,
            "--iterations" => a.iterations = value.parse()?,
            "--item-steps" => a.item_steps = value.parse()?,
            "--partition-users" => a.partition_users = value.parse()?,
            "--eval-every" => a.eval_every = value.parse()?,
            "--k" => a.k = value.parse()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if a.world.as_os_str().is_empty() {
        bail!("--world DIR is required");
    }
    if !["stream", "memory", "both"].contains(&a.mode.as_str()) {
        bail!("--mode is stream, memory or both");
    }
    Ok(a)
}

/// Each sampled user's fold-in.
fn fold_ins(
    users: &[HeldUser],
    fold: impl Fn(&[(usize, f32)]) -> Option<Vec<f32>> + Sync,
) -> Vec<Option<Vec<f32>>> {
    use rayon::prelude::*;
    users.par_iter().map(|u| fold(&u.train)).collect()
}

fn main() -> Result<()> {
    let a = parse()?;
    let cut = scale::cut(&a.world, a.holdout_days)?;
    let source = PositivesByUser::open(&a.world, 0.8, Some(cut), a.partition_users)?;
    let h = scale::holdout(&a.world, cut, a.eval_every)?;
    println!(
        "world {}: {} items, cut {} ({} held-out days), {} evaluation users",
        a.world.display(),
        source.items(),
        cut,
        a.holdout_days,
        h.len()
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
        let x = fold_ins(&h, |t| model.fold_in(t));
        let items = &model.items;
        results.push((
            "stream".into(),
            scale::score(&h, &x, items.values(), items.dim(), a.k)?,
        ));
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
        let x = fold_ins(&h, |t| model.fold_in(t));
        let items = model.item_factors();
        results.push((
            "memory".into(),
            scale::score(&h, &x, items.values(), items.dim(), a.k)?,
        ));
    }
    scale::report(&results, a.k);
    Ok(())
}
