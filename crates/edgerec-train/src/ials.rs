//! Training implicit ALS (Hu, Koren & Volinsky 2008) on all cores.
//!
//! The model minimises `Σ_{u,i} c_ui (p_ui − x_u·y_i)² + lambda (Σ ‖x_u‖² + Σ ‖y_i‖²)` over
//! every (user, item) pair, with `c_ui = 1 + alpha · r_ui` and `p_ui = 1` where `r_ui > 0`, by
//! alternating closed-form solves: all users with the items fixed, then all items with the users
//! fixed. Each row's normal equations reuse the Gram matrix of the other side (computed once per
//! half-step), so a row costs O(nnz_row · d) per conjugate-gradient step or
//! O(nnz_row · d² + d³) for an exact Cholesky solve (faer's LLᵀ).
//!
//! Serving never uses the alternation's user factors: a user's vector is the core's exact
//! [`edgerec::ials::fold_in`] of their history against the item factors and
//! [`IalsModel::gram`] ([`IalsModel::fold_in`]), the same function, inputs and arithmetic a
//! device runs, so the trainer, the offline evaluation and the device agree bit for bit.
//!
//! ```
//! use edgerec_train::ials::{IalsConfig, Interactions, train};
//! // Two users, three items.
//! let data = Interactions::from_triples(2, 3, &[(0, 0, 1.0), (0, 1, 1.0), (1, 2, 1.0)]).unwrap();
//! let model = train(&data, &IalsConfig { factors: 2, iterations: 5, ..IalsConfig::default() });
//! assert_eq!(model.item_factors().rows(), 3);
//! ```

use edgerec::ials::{Factors, fold_in};
use faer::linalg::solvers::Solve as _;
use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How each row's normal equations are solved during the alternation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Conjugate gradient warm-started from the previous iterate (Takács, Pilászy & Tikk 2011),
    /// this many steps per row: O(nnz · d) per step.
    ConjugateGradient {
        /// Steps per row and half-iteration (3 is usual).
        steps: usize,
    },
    /// Exact solve by Cholesky factorisation (faer): O(nnz · d² + rows · d³).
    Cholesky,
}

/// Hyper-parameters, named as in the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IalsConfig {
    /// Dimension of the factors.
    pub factors: usize,
    /// Alternations (each solves all users, then all items).
    pub iterations: usize,
    /// Confidence slope: `c = 1 + alpha · r`.
    pub alpha: f32,
    /// L2 penalty on every factor.
    pub lambda: f32,
    /// Row solver.
    pub solver: Solver,
    /// Seeds the initial factors.
    pub seed: u64,
    /// Compute the full objective after every iteration (O(nnz · d + users · d²) each; off
    /// when timing the fit).
    pub track_loss: bool,
}

impl Default for IalsConfig {
    fn default() -> Self {
        IalsConfig {
            factors: 64,
            iterations: 15,
            alpha: 2.0,
            lambda: 0.05,
            solver: Solver::ConjugateGradient { steps: 3 },
            seed: 1,
            track_loss: false,
        }
    }
}

/// A sparse user × item matrix of interaction strengths `r > 0`, stored both by user and by
/// item (compressed rows), duplicates summed.
#[derive(Debug, Clone)]
pub struct Interactions {
    users: Csr,
    items: Csr,
}

#[derive(Debug, Clone)]
struct Csr {
    offsets: Vec<usize>,
    cols: Vec<u32>,
    values: Vec<f32>,
}

impl Csr {
    fn from_sorted(rows: usize, triples: &[(u32, u32, f32)]) -> Csr {
        let mut offsets = vec![0usize; rows + 1];
        let mut cols = Vec::with_capacity(triples.len());
        let mut values: Vec<f32> = Vec::with_capacity(triples.len());
        let mut last: Option<(u32, u32)> = None;
        for &(r, c, v) in triples {
            if last == Some((r, c)) {
                *values.last_mut().expect("a previous entry") += v;
                continue;
            }
            last = Some((r, c));
            offsets[r as usize + 1] += 1;
            cols.push(c);
            values.push(v);
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        Csr {
            offsets,
            cols,
            values,
        }
    }

    fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[r], self.offsets[r + 1]);
        (&self.cols[a..b], &self.values[a..b])
    }
}

/// Why interactions were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InteractionsError {
    /// An index is outside the declared shape.
    #[error("interaction {index}: user {user} / item {item} outside {users} users × {items} items")]
    OutOfRange {
        /// Position in the input.
        index: usize,
        /// The user.
        user: u32,
        /// The item.
        item: u32,
        /// Declared users.
        users: usize,
        /// Declared items.
        items: usize,
    },
    /// A strength is not a finite positive number.
    #[error("interaction {index}: strength {value} is not finite and positive")]
    BadStrength {
        /// Position in the input.
        index: usize,
        /// The value.
        value: f32,
    },
}

impl Interactions {
    /// Builds the matrix from `(user, item, r)` triples; repeated pairs add up.
    pub fn from_triples(
        users: usize,
        items: usize,
        triples: &[(u32, u32, f32)],
    ) -> Result<Interactions, InteractionsError> {
        for (index, &(user, item, value)) in triples.iter().enumerate() {
            if user as usize >= users || item as usize >= items {
                return Err(InteractionsError::OutOfRange {
                    index,
                    user,
                    item,
                    users,
                    items,
                });
            }
            if !(value.is_finite() && value > 0.0) {
                return Err(InteractionsError::BadStrength { index, value });
            }
        }
        let mut by_user = triples.to_vec();
        by_user.sort_by_key(|t| (t.0, t.1));
        let mut by_item: Vec<(u32, u32, f32)> =
            triples.iter().map(|&(u, i, r)| (i, u, r)).collect();
        by_item.sort_by_key(|t| (t.0, t.1));
        Ok(Interactions {
            users: Csr::from_sorted(users, &by_user),
            items: Csr::from_sorted(items, &by_item),
        })
    }

    /// Number of users.
    pub fn users(&self) -> usize {
        self.users.rows()
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.items.rows()
    }

    /// Distinct (user, item) pairs.
    pub fn nnz(&self) -> usize {
        self.users.cols.len()
    }

    /// A user's `(item, r)` pairs in item order, the form [`fold_in`] takes.
    pub fn history(&self, user: usize) -> Vec<(usize, f32)> {
        let (c, v) = self.users.row(user);
        c.iter()
            .map(|&i| i as usize)
            .zip(v.iter().copied())
            .collect()
    }
}

/// A trained model: item factors, the users' vectors and the item Gram matrix a device needs
/// for fold-in.
#[derive(Debug, Clone)]
pub struct IalsModel {
    config: IalsConfig,
    users: Factors,
    items: Factors,
    gram: Vec<f64>,
    losses: Vec<f64>,
}

impl IalsModel {
    /// Item factors, one row per item.
    pub fn item_factors(&self) -> &Factors {
        &self.items
    }

    /// User factors as the alternation left them (training state; serve users with
    /// [`IalsModel::fold_in`]).
    pub fn user_factors(&self) -> &Factors {
        &self.users
    }

    /// `YᵀY` of the item factors in `f64`, d × d row-major ([`Factors::gram`]).
    pub fn gram(&self) -> &[f64] {
        &self.gram
    }

    /// The hyper-parameters used.
    pub fn config(&self) -> &IalsConfig {
        &self.config
    }

    /// The full objective after each iteration (empty unless `track_loss`).
    pub fn losses(&self) -> &[f64] {
        &self.losses
    }

    /// The vector of a user with `history` (`(item, r)` pairs), by the core's fold-in.
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

/// Uniform in `[-scale, scale)` from the seed's SplitMix64 stream: the initial factors depend
/// on the seed only.
fn uniform(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut rng = edgerec::rng::SplitMix64::new(seed);
    (0..n).map(|_| rng.signed_unit() * scale).collect()
}

/// The initial item factors of a fit seeded with `seed` (shared with [`crate::stream`]).
pub(crate) fn initial_items(seed: u64, items: usize, d: usize, scale: f32) -> Vec<f32> {
    uniform(seed ^ 0x5EED_1A15, items * d, scale)
}

/// `FᵀF + lambda I` of a row-major n × d matrix: the upper triangle accumulated row by row
/// with vectorised AXPYs (O(n · d²/2)), then mirrored.
pub(crate) fn regularised_gram(values: &[f32], d: usize, lambda: f32) -> Vec<f32> {
    let mut g = vec![0f32; d * d];
    for r in values.chunks_exact(d) {
        for a in 0..d {
            axpy(&mut g[a * d + a..(a + 1) * d], r[a], &r[a..]);
        }
    }
    for a in 0..d {
        for b in 0..a {
            g[a * d + b] = g[b * d + a];
        }
        g[a * d + a] += lambda;
    }
    g
}

/// Dot product with eight independent accumulators over fixed-size chunks, so the compiler
/// vectorises it (a plain `sum()` is a serial chain of dependent additions).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// `out += s · v`.
#[inline]
fn axpy(out: &mut [f32], s: f32, v: &[f32]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += s * x;
    }
}

/// `out = sign · G v` for a symmetric d × d row-major `G`: Σ_a v_a · (row a), no reductions.
fn gemv_sym(g: &[f32], v: &[f32], out: &mut [f32], sign: f32) {
    let d = v.len();
    out.fill(0.0);
    for (a, &va) in v.iter().enumerate() {
        axpy(out, sign * va, &g[a * d..(a + 1) * d]);
    }
}

/// Conjugate-gradient steps on one row's normal equations, warm-started from `x`:
/// `(G + Σ_j (c_j − 1) y_j y_jᵀ) x = Σ_j c_j y_j` over the row's entries `(cols, vals)`, with
/// `G = OᵀO + λI` of the other side (`g`, d × d) and `y_j` its rows in `other`. `work` is
/// scratch of `3 d` values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cg_row(
    x: &mut [f32],
    cols: &[u32],
    vals: &[f32],
    other: &[f32],
    g: &[f32],
    alpha: f32,
    steps: usize,
    work: &mut [f32],
) {
    let d = x.len();
    let (res, rest) = work.split_at_mut(d);
    let (p, ap) = rest.split_at_mut(d);
    // r = b − A x = Σ_i (c_i − (c_i − 1) y_i·x) y_i − G x.
    gemv_sym(g, x, res, -1.0);
    for (&j, &v) in cols.iter().zip(vals) {
        let y = &other[j as usize * d..(j as usize + 1) * d];
        let c = 1.0 + alpha * v;
        axpy(res, c - (c - 1.0) * dot(y, x), y);
    }
    p.copy_from_slice(res);
    let mut rs_old = dot(res, res);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        // A p = G p + Σ_i (c_i − 1)(y_i·p) y_i.
        gemv_sym(g, p, ap, 1.0);
        for (&j, &v) in cols.iter().zip(vals) {
            let y = &other[j as usize * d..(j as usize + 1) * d];
            axpy(ap, alpha * v * dot(y, p), y);
        }
        let step = rs_old / dot(p, ap);
        for k in 0..d {
            x[k] += step * p[k];
            res[k] -= step * ap[k];
        }
        let rs_new = dot(res, res);
        let beta = rs_new / rs_old;
        for k in 0..d {
            p[k] = res[k] + beta * p[k];
        }
        rs_old = rs_new;
    }
}

/// One half-iteration: every row of `target` solved against `other`.
fn solve_side(
    target: &mut [f32],
    other: &[f32],
    csr: &Csr,
    d: usize,
    config: &IalsConfig,
) -> Result<(), String> {
    let g = regularised_gram(other, d, config.lambda);
    let alpha = config.alpha;
    match config.solver {
        Solver::ConjugateGradient { steps } => {
            // Per-thread scratch: residual, direction, A·p.
            let scratch = || vec![0f32; 3 * d];
            target
                .par_chunks_mut(d)
                .enumerate()
                .with_min_len(32)
                .for_each_init(scratch, |work, (r, x)| {
                    let (cols, vals) = csr.row(r);
                    cg_row(x, cols, vals, other, &g, alpha, steps, work);
                });
            Ok(())
        }
        Solver::Cholesky => target.par_chunks_mut(d).enumerate().try_for_each(|(r, x)| {
            let (cols, vals) = csr.row(r);
            let mut a = Mat::<f32>::from_fn(d, d, |i, j| g[i * d + j]);
            let mut b = Mat::<f32>::zeros(d, 1);
            for (&j, &v) in cols.iter().zip(vals) {
                let c = 1.0 + alpha * v;
                let y = &other[j as usize * d..(j as usize + 1) * d];
                for p in 0..d {
                    b[(p, 0)] += c * y[p];
                    for q in 0..d {
                        a[(p, q)] += (c - 1.0) * y[p] * y[q];
                    }
                }
            }
            let llt = a
                .llt(Side::Lower)
                .map_err(|e| format!("row {r}: not positive definite ({e:?})"))?;
            let sol = llt.solve(&b);
            for (k, v) in x.iter_mut().enumerate() {
                *v = sol[(k, 0)];
            }
            Ok(())
        }),
    }
}

/// The full objective, in `f64`: Σ_u [xᵀ(YᵀY)x + Σ_{i∈u} (c (1 − s)² − s²)] + lambda (‖X‖² + ‖Y‖²)
/// with `s = x·y_i`, which counts every unobserved pair once at confidence 1.
pub fn objective(data: &Interactions, x: &Factors, y: &Factors, alpha: f32, lambda: f32) -> f64 {
    let d = y.dim();
    let g = y.gram();
    let per_user: f64 = (0..data.users())
        .into_par_iter()
        .map(|u| {
            let xu: Vec<f64> = x.row(u).iter().map(|&v| f64::from(v)).collect();
            let mut total = 0.0;
            for a in 0..d {
                for b in 0..d {
                    total += xu[a] * g[a * d + b] * xu[b];
                }
            }
            let (cols, vals) = data.users.row(u);
            for (&i, &r) in cols.iter().zip(vals) {
                let s: f64 = y
                    .row(i as usize)
                    .iter()
                    .zip(&xu)
                    .map(|(a, b)| f64::from(*a) * b)
                    .sum();
                let c = 1.0 + f64::from(alpha) * f64::from(r);
                total += c * (1.0 - s) * (1.0 - s) - s * s;
            }
            total
        })
        .sum();
    let norm = |f: &Factors| {
        f.values()
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
    };
    per_user + f64::from(lambda) * (norm(x) + norm(y))
}

/// Why training failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// `factors` is 0.
    #[error("factors must be at least 1")]
    NoFactors,
    /// `lambda` must be positive for the solves to be well posed.
    #[error("lambda must be finite and > 0 (got {0})")]
    BadLambda(f32),
    /// `alpha` must be finite and ≥ 0.
    #[error("alpha must be finite and ≥ 0 (got {0})")]
    BadAlpha(f32),
    /// A solve failed (numerical breakdown).
    #[error("solve failed: {0}")]
    Solve(String),
}

/// The hyper-parameters every iALS fit needs (shared with [`crate::stream`]): at least one
/// factor, `lambda` finite and positive, `alpha` finite and non-negative.
pub(crate) fn check_hyperparameters(
    factors: usize,
    alpha: f32,
    lambda: f32,
) -> Result<(), TrainError> {
    if factors == 0 {
        return Err(TrainError::NoFactors);
    }
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(TrainError::BadLambda(lambda));
    }
    if !(alpha.is_finite() && alpha >= 0.0) {
        return Err(TrainError::BadAlpha(alpha));
    }
    Ok(())
}

/// Trains iALS. `data` needs at least one user and one item.
pub fn try_train(data: &Interactions, config: &IalsConfig) -> Result<IalsModel, TrainError> {
    check_hyperparameters(config.factors, config.alpha, config.lambda)?;
    let d = config.factors;
    let scale = 0.1 / (d as f32).sqrt();
    let mut x = uniform(config.seed, data.users() * d, scale);
    let mut y = initial_items(config.seed, data.items(), d, scale);
    let mut losses = Vec::new();
    for _ in 0..config.iterations {
        solve_side(&mut x, &y, &data.users, d, config).map_err(TrainError::Solve)?;
        solve_side(&mut y, &x, &data.items, d, config).map_err(TrainError::Solve)?;
        if config.track_loss {
            let (xf, yf) = (
                Factors::new(d, x.clone()).expect("rows of d values"),
                Factors::new(d, y.clone()).expect("rows of d values"),
            );
            losses.push(objective(data, &xf, &yf, config.alpha, config.lambda));
        }
    }
    let items = Factors::new(d, y).expect("rows of d values");
    let gram = items.gram();
    Ok(IalsModel {
        config: config.clone(),
        users: Factors::new(d, x).expect("rows of d values"),
        items,
        gram,
        losses,
    })
}

/// [`try_train`] for configurations known to be valid (panics on a bad configuration).
pub fn train(data: &Interactions, config: &IalsConfig) -> IalsModel {
    try_train(data, config).expect("a valid iALS configuration")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users in `k` groups each watching mostly their group's items.
    fn planted(users: usize, items: usize, k: usize) -> Vec<(u32, u32, f32)> {
        let mut t = Vec::new();
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as usize
        };
        for u in 0..users {
            let g = u % k;
            for _ in 0..12 {
                let item = if next() % 10 < 9 {
                    (next() % (items / k)) * k + g
                } else {
                    next() % items
                };
                t.push((u as u32, item as u32, 1.0));
            }
        }
        t
    }

    #[test]
    fn exact_alternation_never_increases_the_objective() {
        let data = Interactions::from_triples(60, 40, &planted(60, 40, 4)).unwrap();
        let config = IalsConfig {
            factors: 6,
            iterations: 6,
            alpha: 5.0,
            lambda: 0.1,
            solver: Solver::Cholesky,
            seed: 3,
            track_loss: true,
        };
        let model = train(&data, &config);
        assert_eq!(model.losses().len(), 6);
        for w in model.losses().windows(2) {
            assert!(w[1] <= w[0] * (1.0 + 1e-6), "{:?}", model.losses());
        }
        // Re-solving the users exactly against the final items (fold-in) can only lower it.
        let folded: Vec<f32> = (0..60)
            .flat_map(|u| model.fold_in(&data.history(u)).unwrap())
            .collect();
        let folded = Factors::new(6, folded).unwrap();
        let last = objective(&data, &folded, model.item_factors(), 5.0, 0.1);
        assert!(last <= model.losses().last().unwrap() * (1.0 + 1e-6));
    }

    #[test]
    fn conjugate_gradient_reaches_the_exact_solution_quality() {
        let data = Interactions::from_triples(80, 48, &planted(80, 48, 4)).unwrap();
        let base = IalsConfig {
            factors: 8,
            iterations: 8,
            alpha: 5.0,
            lambda: 0.1,
            solver: Solver::Cholesky,
            seed: 3,
            track_loss: true,
        };
        let exact = train(&data, &base);
        let cg = train(
            &data,
            &IalsConfig {
                solver: Solver::ConjugateGradient { steps: 3 },
                ..base
            },
        );
        let (e, c) = (
            *exact.losses().last().unwrap(),
            *cg.losses().last().unwrap(),
        );
        assert!(c <= e * 1.02, "cg {c} vs exact {e}");
    }

    #[test]
    fn users_are_the_device_fold_in_and_recover_their_group() {
        let (users, items, k) = (80, 48, 4);
        let data = Interactions::from_triples(users, items, &planted(users, items, k)).unwrap();
        let model = train(
            &data,
            &IalsConfig {
                factors: 8,
                iterations: 10,
                ..IalsConfig::default()
            },
        );
        for u in 0..users {
            // What a device computes from the shipped item factors and Gram matrix.
            let device = fold_in(
                model.item_factors(),
                model.gram(),
                &data.history(u),
                model.config().alpha,
                model.config().lambda,
            )
            .unwrap();
            assert_eq!(device, model.fold_in(&data.history(u)).unwrap());
            // The alternation's own vector is close to the exact fold-in.
            let x = model.user_factors().row(u);
            let diff: f32 = x.iter().zip(&device).map(|(a, b)| (a - b).abs()).sum();
            let norm: f32 = device.iter().map(|v| v.abs()).sum();
            assert!(diff <= 0.25 * norm, "user {u}: {diff} vs {norm}");
            // The best unseen item belongs to the user's group.
            let seen: Vec<usize> = data.history(u).iter().map(|p| p.0).collect();
            let best = (0..items)
                .filter(|i| !seen.contains(i))
                .max_by(|&a, &b| {
                    let s = |i: usize| dot(model.item_factors().row(i), &device);
                    s(a).total_cmp(&s(b))
                })
                .unwrap();
            assert_eq!(best % k, u % k, "user {u}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            Interactions::from_triples(2, 2, &[(0, 2, 1.0)]),
            Err(InteractionsError::OutOfRange { index: 0, .. })
        ));
        assert!(matches!(
            Interactions::from_triples(2, 2, &[(0, 1, 1.0), (1, 1, f32::NAN)]),
            Err(InteractionsError::BadStrength { index: 1, .. })
        ));
        let data = Interactions::from_triples(1, 1, &[(0, 0, 1.0)]).unwrap();
        for bad in [
            IalsConfig {
                factors: 0,
                ..IalsConfig::default()
            },
            IalsConfig {
                lambda: 0.0,
                ..IalsConfig::default()
            },
            IalsConfig {
                alpha: f32::INFINITY,
                ..IalsConfig::default()
            },
        ] {
            assert!(try_train(&data, &bad).is_err());
        }
    }

    #[test]
    fn duplicates_add_up_and_the_seed_fixes_the_result() {
        let a = Interactions::from_triples(2, 3, &[(0, 1, 1.0), (0, 1, 2.0), (1, 2, 1.0)]).unwrap();
        assert_eq!(a.history(0), vec![(1, 3.0)]);
        assert_eq!(a.nnz(), 2);
        let config = IalsConfig {
            factors: 2,
            iterations: 3,
            ..IalsConfig::default()
        };
        assert_eq!(
            train(&a, &config).item_factors(),
            train(&a, &config).item_factors()
        );
    }
}
