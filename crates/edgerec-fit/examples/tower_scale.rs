//! The two-tower model at scale: trained from a synthetic world's tables a chunk of users at a
//! time ([`edgerec_fit::stream::TowerExamplesByUser`], memory bounded by the catalog and one
//! chunk) against the same examples held in memory and shuffled as one. Prints wall time, peak
//! RSS and quality on a held-out window (the last `--holdout-days`): Recall@10 and NDCG@10 of
//! each sampled user's vector (the exported user tower run by tract, as on the device: the
//! positives before the cut, the searches before it, the dense inputs at the cut) against the
//! item embeddings, training titles excluded. `--mode both` pairs the two models on the same
//! users. It trains with the allocator set as the `edgerec` CLI sets it
//! ([`edgerec_twotower::keep_freed_memory`]); `--system-malloc true` keeps glibc's defaults.
//!
//! ```text
//! cargo run -p edgerec-fit --example tower_scale -- --world data/w1m --mode stream
//! ```
//! `scripts/bench-train.sh` runs it at 1M, 3M and 10M users.

mod scale;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use edgerec_data::schema::{self, Search, User};
use edgerec_fit::sources::Tower;
use edgerec_fit::stream::{TowerExamplesByUser, TowerStreamConfig};
use edgerec_twotower::{TowerConfig, UserInput};
use scale::{HeldUser, peak_rss_mib};

struct Args {
    world: PathBuf,
    mode: String,
    holdout_days: i64,
    users_per_chunk: usize,
    examples_per_user: usize,
    epochs: usize,
    eval_every: u32,
    max_cast: usize,
    k: usize,
    seed: u64,
    control_seed: Option<u64>,
    system_malloc: bool,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        world: PathBuf::new(),
        mode: "stream".into(),
        holdout_days: 7,
        users_per_chunk: 50_000,
        examples_per_user: 4,
        epochs: 1,
        eval_every: 50,
        max_cast: 5,
        k: 10,
        seed: TowerConfig::default().seed,
        control_seed: None,
        system_malloc: false,
    };
    scale::parse_flags(|flag, value| {
        match flag {
            "--world" => a.world = value.into(),
            "--mode" => a.mode = value,
            "--holdout-days" => a.holdout_days = value.parse()?,
            "--users-per-chunk" => a.users_per_chunk = value.parse()?,
            "--examples-per-user" => a.examples_per_user = value.parse()?,
            "--epochs" => a.epochs = value.parse()?,
            "--eval-every" => a.eval_every = value.parse()?,
            "--max-cast" => a.max_cast = value.parse()?,
            "--k" => a.k = value.parse()?,
            "--seed" => a.seed = value.parse()?,
            "--control-seed" => a.control_seed = Some(value.parse()?),
            "--system-malloc" => a.system_malloc = value.parse()?,
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

/// The sampled users' rows, and their searches before the cut in time order.
type Profiles = (HashMap<u32, User>, HashMap<u32, Vec<Search>>);

fn profiles(a: &Args, cut: i64) -> Result<Profiles> {
    let mut users = HashMap::new();
    schema::for_each_batch::<User>(&a.world, |rows| {
        users.extend(
            rows.into_iter()
                .filter(|u| u.user_id % a.eval_every == 0)
                .map(|u| (u.user_id, u)),
        );
        Ok(())
    })?;
    let mut searches: HashMap<u32, Vec<Search>> = HashMap::new();
    schema::for_each_batch::<Search>(&a.world, |rows| {
        for s in rows {
            if s.user_id % a.eval_every == 0 && s.time < cut {
                searches.entry(s.user_id).or_default().push(s);
            }
        }
        Ok(())
    })?;
    for s in searches.values_mut() {
        s.sort_by_key(|s| s.time);
    }
    Ok((users, searches))
}

/// Each sampled user's vector from the exported user tower, in batches.
fn vectors(
    tower: &Tower,
    held: &[HeldUser],
    users: &HashMap<u32, User>,
    searches: &HashMap<u32, Vec<Search>>,
    cut: i64,
) -> Result<Vec<Option<Vec<f32>>>> {
    let dim = tower.onnx.dim();
    let mut out = Vec::with_capacity(held.len());
    for chunk in held.chunks(256) {
        let mut inputs: Vec<UserInput> = Vec::new();
        let mut known = Vec::new();
        for h in chunk {
            let Some(user) = users.get(&h.user_id) else {
                known.push(false);
                continue;
            };
            let history = h.train.iter().map(|p| p.0 as u32).collect();
            let s = searches.get(&h.user_id).map_or(&[][..], |s| &s[..]);
            inputs.push(tower.user_input(user, history, s, cut));
            known.push(true);
        }
        let v = if inputs.is_empty() {
            Vec::new()
        } else {
            tower
                .onnx
                .embed(&inputs)
                .context("running the user tower")?
        };
        let mut rows = v.chunks_exact(dim);
        for k in known {
            out.push(if k {
                rows.next().map(<[f32]>::to_vec)
            } else {
                None
            });
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let a = parse()?;
    // As the `edgerec` CLI trains; `--system-malloc true` keeps glibc's defaults (the
    // reference run for the allocator's effect).
    let kept = !a.system_malloc && edgerec_twotower::keep_freed_memory();
    let cut = scale::cut(&a.world, a.holdout_days)?;
    let held = scale::holdout(&a.world, cut, a.eval_every)?;
    let (users, searches) = profiles(&a, cut)?;
    let tower = TowerConfig {
        epochs: a.epochs,
        seed: a.seed,
        ..TowerConfig::default()
    };
    let stream = TowerStreamConfig {
        before: Some(cut),
        users_per_chunk: a.users_per_chunk,
        examples_per_user: Some(a.examples_per_user),
        ..TowerStreamConfig::default()
    };
    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let source = TowerExamplesByUser::open(&a.world, &stream, &tower)?;
    println!(
        "world {}: cut {} ({} held-out days), {} search tokens ({:.1} s), {} evaluation users, \
         at most {} examples per user, {} epoch(s), {}",
        a.world.display(),
        cut,
        a.holdout_days,
        source.search_tokens(),
        t.elapsed().as_secs_f64(),
        held.len(),
        a.examples_per_user,
        a.epochs,
        if kept {
            "malloc keeps freed memory"
        } else {
            "glibc's malloc defaults"
        }
    );

    // The models in order: streamed, the in-memory one with the control seed (how far two
    // shuffles of the same examples land apart), the in-memory one; each paired with the last.
    let mut fits: Vec<(String, Option<u64>)> = Vec::new();
    if a.mode != "memory" {
        fits.push(("stream".into(), None));
    }
    if a.mode != "stream" {
        if let Some(seed) = a.control_seed {
            fits.push((format!("memory, seed {seed}"), Some(seed)));
        }
        fits.push(("memory".into(), Some(a.seed)));
    }
    let mut results: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (mode, seed) in fits {
        let t = Instant::now();
        let trained = match seed {
            None => source.train(a.max_cast)?,
            Some(seed) if seed == a.seed => source.train_in_memory(a.max_cast)?,
            Some(seed) => TowerExamplesByUser::open(
                &a.world,
                &stream,
                &TowerConfig {
                    seed,
                    ..tower.clone()
                },
            )?
            .train_in_memory(a.max_cast)?,
        };
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{mode}: {} examples, {:.1} s, peak RSS {:.0} MiB (before training {:.0} MiB), \
             epoch losses {:?}",
            source.examples(),
            secs,
            peak_rss_mib(),
            rss_before,
            trained.model.epoch_losses()
        );
        let x = vectors(&trained, &held, &users, &searches, cut)?;
        let items = trained.model.item_embeddings();
        results.push((
            mode,
            scale::score(&held, &x, items, trained.model.dim(), a.k)?,
        ));
    }
    scale::report(&results, a.k);
    Ok(())
}
