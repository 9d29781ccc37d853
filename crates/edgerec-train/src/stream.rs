//! iALS in memory bounded by the catalog: the server keeps only item-side state in memory, and
//! users stream past in partitions.
//!
//! Each iteration alternates as [`crate::ials`] does, one pass at a time:
//!
//! 1. **Users.** Every user's vector is solved against the current items `Y` by conjugate
//!    gradient (`user_steps` steps), warm-started from the previous iteration's vector. The
//!    same pass adds up `XᵀX` and each item's residual data `Σ c x_u − Σ (c − 1)(x_u·y_i) x_u`.
//! 2. **Items**, with `X` fixed, solve
//!    `(XᵀX + λI + Σ_{u∈i} (c_ui − 1) x_u x_uᵀ) y_i = Σ_{u∈i} c_ui x_u`
//!    by conjugate gradient, all items advancing together. Each of the `item_steps` steps needs
//!    `Σ_{u∈i} (c_ui − 1)(x_u·p_i) x_u` for every item, which takes one pass over the users.
//!
//! The users' vectors live in a scratch file between passes (`users × d` f32 values, read and
//! written one partition at a time), never in memory. Memory is O(items × d) for `Y` and the CG
//! state, plus one partition's histories, vectors and per-chunk contributions. Devices never
//! receive user vectors: they fold users in against the shipped items
//! ([`StreamModel::fold_in`], the core's [`edgerec::ials::fold_in`]).
//!
//! With `user_steps` and `item_steps` of at least `d`, both half-steps are exact and the
//! iterates are those of the in-memory trainer's exact alternation (a test checks this).
//! Accumulation runs in fixed chunks of users, added in order, so the model does not depend on
//! the number of threads.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};

use edgerec::ials::{Factors, fold_in};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ials::{TrainError, cg_row, check_hyperparameters, regularised_gram};

/// What [`Partitions::for_each`] calls with each partition: one `(item, r)` history per user.
pub type PartitionFn<'a> = dyn FnMut(&[Vec<(u32, f32)>]) -> Result<(), String> + 'a;

/// A source of users' histories, visited in partitions; every pass must visit the same users in
/// the same order.
pub trait Partitions {
    /// Items in the catalog: history entries are item indices below this.
    fn items(&self) -> usize;

    /// Calls `f` with each partition in turn: one `(item, r)` history per user (any order,
    /// repeats add up; `r > 0`).
    fn for_each(&self, f: &mut PartitionFn<'_>) -> Result<(), String>;
}

/// Hyper-parameters of the streaming fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// Dimension of the factors.
    pub factors: usize,
    /// Alternations.
    pub iterations: usize,
    /// Confidence slope: `c = 1 + alpha · r`.
    pub alpha: f32,
    /// L2 penalty.
    pub lambda: f32,
    /// Conjugate-gradient steps of each user's solve per iteration.
    pub user_steps: usize,
    /// Conjugate-gradient steps of the item solves per iteration (one pass each).
    pub item_steps: usize,
    /// Seeds the initial item factors (as [`crate::ials`] seeds them).
    pub seed: u64,
    /// Where the users' vectors are kept between passes (the system's temporary directory when
    /// `None`); the files are removed when the fit ends.
    pub work_dir: Option<PathBuf>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            factors: 64,
            iterations: 15,
            alpha: 2.0,
            lambda: 0.05,
            user_steps: 3,
            item_steps: 3,
            seed: 1,
            work_dir: None,
        }
    }
}

/// What the streaming fit learned: item factors and their Gram matrix, the model a device
/// folds users into.
#[derive(Debug, Clone)]
pub struct StreamModel {
    /// Item factors, one row per item.
    pub items: Factors,
    /// `YᵀY` in `f64` ([`Factors::gram`]).
    pub gram: Vec<f64>,
    /// The hyper-parameters used.
    pub config: StreamConfig,
    /// Users per pass.
    pub users: u64,
    /// Passes over the users.
    pub passes: usize,
}

impl StreamModel {
    /// A user's vector: the device's fold-in.
    pub fn fold_in(&self, history: &[(usize, f32)]) -> Option<Vec<f32>> {
        fold_in(
            &self.items,
            &self.gram,
            history,
            self.config.alpha,
            self.config.lambda,
        )
    }
}

/// Users per accumulation chunk: chunks run in parallel and are added in order.
const CHUNK: usize = 256;

/// Sorted, merged `(items, strengths)`; `None` if an item is out of range or a strength is not
/// finite and positive.
fn merged(history: &[(u32, f32)], items: usize) -> Option<(Vec<u32>, Vec<f32>)> {
    let mut h: Vec<(u32, f32)> = Vec::with_capacity(history.len());
    for &(i, r) in history {
        if i as usize >= items || !(r.is_finite() && r > 0.0) {
            return None;
        }
        h.push((i, r));
    }
    h.sort_by_key(|p| p.0);
    h.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
    Some(h.into_iter().unzip())
}

/// What a pass does with each user.
enum Pass<'a> {
    /// Solve the user against `y` (f32 rows) with `g = YᵀY + λI`, then add `XᵀX` and per item
    /// `Σ c x_u − Σ (c − 1)(x_u·y_i) x_u`.
    Users { y: &'a [f32], g: &'a [f32] },
    /// Per item `Σ (c − 1)(x_u·p_i) x_u`.
    Product { p: &'a [f64] },
}

/// One chunk's contributions: its `XᵀX` (users pass only) and sparse per-item vectors.
struct Contribution {
    gram: Vec<f64>,
    rows: Vec<(u32, Vec<f64>)>,
}

fn chunk_pass(
    histories: &[Vec<(u32, f32)>],
    xs: &mut [f32],
    items: usize,
    config: &StreamConfig,
    pass: &Pass,
) -> Result<Contribution, String> {
    let d = config.factors;
    let alpha = config.alpha;
    let solving = matches!(pass, Pass::Users { .. });
    let mut gram = if solving {
        vec![0f64; d * d]
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    let mut work = vec![0f32; 3 * d];
    for (history, x) in histories.iter().zip(xs.chunks_exact_mut(d)) {
        let (cols, vals) = merged(history, items)
            .ok_or_else(|| "a history names an unknown item or a bad strength".to_string())?;
        if let Pass::Users { y, g } = pass {
            if cols.is_empty() {
                x.fill(0.0);
            } else {
                cg_row(x, &cols, &vals, y, g, alpha, config.user_steps, &mut work);
            }
        }
        if cols.is_empty() {
            continue;
        }
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        if solving {
            for a in 0..d {
                for b in a..d {
                    gram[a * d + b] += x[a] * x[b];
                }
            }
        }
        for (&i, &r) in cols.iter().zip(&vals) {
            let c = 1.0 + f64::from(alpha) * f64::from(r);
            let span = i as usize * d..(i as usize + 1) * d;
            let s = match pass {
                Pass::Users { y, .. } => {
                    let dot: f64 = x.iter().zip(&y[span]).map(|(a, &b)| a * f64::from(b)).sum();
                    c - (c - 1.0) * dot
                }
                Pass::Product { p } => {
                    (c - 1.0) * x.iter().zip(&p[span]).map(|(a, b)| a * b).sum::<f64>()
                }
            };
            rows.push((i, x.iter().map(|v| s * v).collect()));
        }
    }
    Ok(Contribution { gram, rows })
}

/// The users' vectors between passes: two files, read from one while writing the other.
struct UserVectors {
    files: [PathBuf; 2],
    current: usize,
}

impl UserVectors {
    fn create(dir: Option<&Path>) -> UserVectors {
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let unique = format!(
            "edgerec-ials-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos())
        );
        let files = [0, 1].map(|k| dir.join(format!("{unique}-{k}.f32")));
        UserVectors { files, current: 0 }
    }
}

impl Drop for UserVectors {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Solve(format!("{what} {}: {e}", path.display()))
}

/// One pass over every user. `read` is the file of the users' vectors to start from (`None`:
/// zeros), `write` where the (possibly updated) vectors go. Returns `(XᵀX (users pass only),
/// per-item sums, users)`.
#[allow(clippy::too_many_arguments)]
fn pass(
    source: &dyn Partitions,
    items: usize,
    config: &StreamConfig,
    what: &Pass,
    read: Option<&Path>,
    write: Option<&Path>,
) -> Result<(Vec<f64>, Vec<f64>, u64), TrainError> {
    let d = config.factors;
    let mut gram = vec![0f64; d * d];
    let mut sums = vec![0f64; items * d];
    let mut users = 0u64;
    let mut reader = match read {
        Some(p) => Some(BufReader::new(
            File::open(p).map_err(|e| io("opening", p, e))?,
        )),
        None => None,
    };
    let mut writer = match write {
        Some(p) => Some(BufWriter::new(
            File::create(p).map_err(|e| io("creating", p, e))?,
        )),
        None => None,
    };
    let mut bytes = Vec::new();
    source
        .for_each(&mut |partition| {
            users += partition.len() as u64;
            let mut xs = vec![0f32; partition.len() * d];
            if let Some(r) = reader.as_mut() {
                bytes.resize(xs.len() * 4, 0);
                r.read_exact(&mut bytes)
                    .map_err(|e| format!("the source gave more users than before ({e})"))?;
                for (x, b) in xs.iter_mut().zip(bytes.chunks_exact(4)) {
                    *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            let parts: Vec<Result<Contribution, String>> = partition
                .par_chunks(CHUNK)
                .zip(xs.par_chunks_mut(CHUNK * d))
                .map(|(h, x)| chunk_pass(h, x, items, config, what))
                .collect();
            for part in parts {
                let part = part?;
                for (g, v) in gram.iter_mut().zip(&part.gram) {
                    *g += v;
                }
                for (i, v) in part.rows {
                    let i = i as usize;
                    for (s, x) in sums[i * d..(i + 1) * d].iter_mut().zip(&v) {
                        *s += x;
                    }
                }
            }
            if let Some(w) = writer.as_mut() {
                bytes.clear();
                bytes.extend(xs.iter().flat_map(|x| x.to_le_bytes()));
                w.write_all(&bytes)
                    .map_err(|e| format!("writing the users' vectors: {e}"))?;
            }
            Ok(())
        })
        .map_err(TrainError::Solve)?;
    if let Some(mut w) = writer {
        w.flush()
            .map_err(|e| TrainError::Solve(format!("writing the users' vectors: {e}")))?;
    }
    if let Some(mut r) = reader
        && r.read(&mut [0u8; 1])
            .map_err(|e| TrainError::Solve(e.to_string()))?
            > 0
    {
        return Err(TrainError::Solve(
            "the source gave fewer users than before".into(),
        ));
    }
    for a in 0..d {
        for b in 0..a {
            gram[a * d + b] = gram[b * d + a];
        }
    }
    Ok((gram, sums, users))
}

/// `(G + λI) v` for every item row of `v`.
fn regularised_times(g: &[f64], lambda: f64, v: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0f64; v.len()];
    for (o, vi) in out.chunks_exact_mut(d).zip(v.chunks_exact(d)) {
        for a in 0..d {
            let row = &g[a * d..(a + 1) * d];
            o[a] = row.iter().zip(vi).map(|(x, y)| x * y).sum::<f64>() + lambda * vi[a];
        }
    }
    out
}

/// Trains item factors from `source` in `1 + item_steps` passes per iteration.
pub fn train_streaming(
    source: &dyn Partitions,
    config: &StreamConfig,
) -> Result<StreamModel, TrainError> {
    check_hyperparameters(config.factors, config.alpha, config.lambda)?;
    let d = config.factors;
    let items = source.items();
    let lambda = f64::from(config.lambda);
    let scale = 0.1 / (d as f32).sqrt();
    let mut y = crate::ials::initial_items(config.seed, items, d, scale);
    let mut store = UserVectors::create(config.work_dir.as_deref());
    let mut users = None;
    let mut passes = 0usize;
    for iteration in 0..config.iterations {
        let (old, new) = (
            store.files[store.current].clone(),
            store.files[1 - store.current].clone(),
        );
        let g32 = regularised_gram(&y, d, config.lambda);
        // The users' half-step, and the items' residual r = b − A y.
        let (gx, data, seen) = pass(
            source,
            items,
            config,
            &Pass::Users { y: &y, g: &g32 },
            (iteration > 0).then_some(old.as_path()),
            Some(&new),
        )?;
        passes += 1;
        if *users.get_or_insert(seen) != seen {
            return Err(TrainError::Solve(
                "the source's users changed between passes".into(),
            ));
        }
        store.current = 1 - store.current;
        let mut y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let gy = regularised_times(&gx, lambda, &y64, d);
        let mut res: Vec<f64> = data.iter().zip(&gy).map(|(a, b)| a - b).collect();
        let mut p = res.clone();
        let mut rs: Vec<f64> = res
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        for _ in 0..config.item_steps {
            if rs.iter().all(|&v| v < 1e-24) {
                break;
            }
            let (_, data_ap, seen) = pass(
                source,
                items,
                config,
                &Pass::Product { p: &p },
                Some(&new),
                None,
            )?;
            passes += 1;
            if Some(seen) != users {
                return Err(TrainError::Solve(
                    "the source's users changed between passes".into(),
                ));
            }
            let gp = regularised_times(&gx, lambda, &p, d);
            for (i, rs_i) in rs.iter_mut().enumerate() {
                if *rs_i < 1e-24 {
                    continue;
                }
                let span = i * d..(i + 1) * d;
                let ap: Vec<f64> = data_ap[span.clone()]
                    .iter()
                    .zip(&gp[span.clone()])
                    .map(|(a, b)| a + b)
                    .collect();
                let pap: f64 = p[span.clone()].iter().zip(&ap).map(|(a, b)| a * b).sum();
                if !(pap.is_finite() && pap > 0.0) {
                    continue;
                }
                let step = *rs_i / pap;
                for (k, j) in span.clone().enumerate() {
                    y64[j] += step * p[j];
                    res[j] -= step * ap[k];
                }
                let rs_new: f64 = res[span.clone()].iter().map(|v| v * v).sum();
                let beta = rs_new / *rs_i;
                for j in span {
                    p[j] = res[j] + beta * p[j];
                }
                *rs_i = rs_new;
            }
        }
        y = y64.into_iter().map(|v| v as f32).collect();
    }
    drop(store);
    let items = Factors::new(d, y).expect("rows of d values");
    let gram = items.gram();
    Ok(StreamModel {
        items,
        gram,
        config: config.clone(),
        users: users.unwrap_or(0),
        passes,
    })
}

/// An in-memory [`Partitions`] over [`crate::ials::Interactions`], `users_per_partition` users
/// at a time (for tests and for comparing with the in-memory trainer).
pub struct InMemory<'a> {
    /// The interactions.
    pub data: &'a crate::ials::Interactions,
    /// Users per partition.
    pub users_per_partition: usize,
}

impl Partitions for InMemory<'_> {
    fn items(&self) -> usize {
        self.data.items()
    }

    fn for_each(&self, f: &mut PartitionFn<'_>) -> Result<(), String> {
        let n = self.data.users();
        let step = self.users_per_partition.max(1);
        for start in (0..n).step_by(step) {
            let part: Vec<Vec<(u32, f32)>> = (start..(start + step).min(n))
                .map(|u| {
                    self.data
                        .history(u)
                        .into_iter()
                        .map(|(i, r)| (i as u32, r))
                        .collect()
                })
                .collect();
            f(&part)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ials::{IalsConfig, Interactions, Solver, train};

    fn planted(users: usize, items: usize, k: usize) -> Vec<(u32, u32, f32)> {
        let mut t = Vec::new();
        let mut s = 11u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as usize
        };
        for u in 0..users {
            let g = u % k;
            for _ in 0..8 {
                let item = if next() % 10 < 8 {
                    g * (items / k) + next() % (items / k)
                } else {
                    next() % items
                };
                t.push((u as u32, item as u32, 1.0 + (next() % 3) as f32));
            }
        }
        t
    }

    #[test]
    fn with_exact_solves_it_follows_the_exact_alternation() {
        let data = Interactions::from_triples(300, 40, &planted(300, 40, 4)).unwrap();
        let d = 4;
        let exact = train(
            &data,
            &IalsConfig {
                factors: d,
                iterations: 3,
                alpha: 3.0,
                lambda: 0.1,
                solver: Solver::Cholesky,
                seed: 9,
                track_loss: false,
            },
        );
        let source = InMemory {
            data: &data,
            users_per_partition: 70,
        };
        let streamed = train_streaming(
            &source,
            &StreamConfig {
                factors: d,
                iterations: 3,
                alpha: 3.0,
                lambda: 0.1,
                user_steps: 2 * d,
                item_steps: 2 * d,
                seed: 9,
                work_dir: None,
            },
        )
        .unwrap();
        assert_eq!(streamed.users, 300);
        // One users' pass and up to 2d item passes per iteration (CG may converge sooner).
        assert!(
            (3 * 2..=3 * (1 + 2 * d)).contains(&streamed.passes),
            "{}",
            streamed.passes
        );
        let (a, b) = (exact.item_factors().values(), streamed.items.values());
        let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-3 * scale.max(1.0),
            "max difference {worst} (scale {scale})"
        );
    }

    #[test]
    fn partitioning_and_threads_do_not_change_the_model() {
        let data = Interactions::from_triples(500, 60, &planted(500, 60, 3)).unwrap();
        let config = StreamConfig {
            factors: 6,
            iterations: 2,
            ..StreamConfig::default()
        };
        let fit = |per| {
            train_streaming(
                &InMemory {
                    data: &data,
                    users_per_partition: per,
                },
                &config,
            )
            .unwrap()
            .items
        };
        // Partitions that cut the users into the same chunks of CHUNK users.
        let one = fit(500);
        assert_eq!(one, fit(CHUNK));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one, pool.install(|| fit(500)));
    }

    #[test]
    fn bad_histories_and_configurations_are_errors() {
        struct Bad;
        impl Partitions for Bad {
            fn items(&self) -> usize {
                3
            }
            fn for_each(&self, f: &mut PartitionFn<'_>) -> Result<(), String> {
                f(&[vec![(0, 1.0)], vec![(7, 1.0)]])
            }
        }
        let config = StreamConfig {
            factors: 2,
            iterations: 1,
            ..StreamConfig::default()
        };
        assert!(matches!(
            train_streaming(&Bad, &config),
            Err(TrainError::Solve(_))
        ));
        let zero = StreamConfig {
            factors: 0,
            ..config.clone()
        };
        assert_eq!(
            train_streaming(&Bad, &zero).unwrap_err(),
            TrainError::NoFactors
        );
    }
}
