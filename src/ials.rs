//! Implicit-feedback ALS (Hu, Koren & Volinsky 2008, "Collaborative Filtering for Implicit
//! Feedback Datasets"): the per-user solve that both the trainer and the device run.
//!
//! With item factors `Y` (one row per item), a user's interactions `r_ui ≥ 0`, confidence
//! `c_ui = 1 + alpha · r_ui` and preference `p_ui = 1` for every item interacted with, the
//! user's factor vector minimises `Σ_i c_ui (p_ui − x·y_i)² + lambda ‖x‖²` over all items; it is
//! the solution of
//!
//! `(YᵀY + Σ_{i ∈ u} (c_ui − 1) y_i y_iᵀ + lambda I) x = Σ_{i ∈ u} c_ui y_i`
//!
//! where `YᵀY` (the Gram matrix) is precomputed once per model, so a solve costs
//! O(|history| · d² + d³) instead of O(items · d²). The device computes a user's vector from its
//! own history this way ("fold-in"); the trainer's user step is the same function, so both give
//! the same vector for the same history. Arithmetic is in `f64` with a fixed summation order,
//! then rounded to `f32`.
//!
//! ```
//! use edgerec::ials::{Factors, fold_in};
//! // Two items in two dimensions.
//! let y = Factors::new(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
//! let x = fold_in(&y, &y.gram(), &[(0, 1.0)], 40.0, 0.1).unwrap();
//! assert!(x[0] > 0.9 && x[1] == 0.0);
//! ```

/// A row-major matrix of factor vectors (one row per user or item).
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    dim: usize,
    values: Vec<f32>,
}

impl Factors {
    /// Rows of `dim` values; `None` if `dim` is 0 or `values.len()` is not a multiple of it
    /// (so a shape read from untrusted bytes cannot panic later).
    pub fn new(dim: usize, values: Vec<f32>) -> Option<Factors> {
        (dim > 0 && values.len().is_multiple_of(dim)).then_some(Factors { dim, values })
    }

    /// Dimension of each vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / self.dim
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// `YᵀY`, d × d row-major, in `f64`. Cost O(rows · d²).
    pub fn gram(&self) -> Vec<f64> {
        let d = self.dim;
        let mut g = vec![0f64; d * d];
        for r in self.values.chunks_exact(d) {
            for a in 0..d {
                let ra = f64::from(r[a]);
                for b in a..d {
                    g[a * d + b] += ra * f64::from(r[b]);
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                g[a * d + b] = g[b * d + a];
            }
        }
        g
    }
}

/// Solves `A x = b` for a symmetric positive-definite `A` (d × d, row-major) by Cholesky.
/// Returns `None` if `A` is not positive definite (a non-positive pivot).
pub fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let d = b.len();
    if a.len() != d * d {
        return None;
    }
    // A = L Lᵀ, L stored in the lower triangle of `a`.
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    // L z = b, then Lᵀ x = z.
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * d + k] * b[k];
        }
        b[i] = s / a[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for k in i + 1..d {
            s -= a[k * d + i] * b[k];
        }
        b[i] = s / a[i * d + i];
    }
    Some(b)
}

/// The factor vector of a user with `history` (`(item row, r_ui)` pairs; repeated items add up)
/// against item factors `y` with Gram matrix `gram` (from [`Factors::gram`]). `alpha` scales
/// confidence, `lambda` is the L2 penalty (> 0 keeps the system positive definite).
/// Items outside `y` are ignored. Returns `None` only if the system is singular (`lambda` ≤ 0
/// and a degenerate history) or `gram` is not `d × d`.
pub fn fold_in(
    y: &Factors,
    gram: &[f64],
    history: &[(usize, f32)],
    alpha: f32,
    lambda: f32,
) -> Option<Vec<f32>> {
    fold_in_rows(
        y.dim(),
        y.rows(),
        |i| y.row(i).into(),
        gram,
        history,
        alpha,
        lambda,
    )
}

/// [`fold_in`] over item rows given by a function (e.g. int8 rows dequantised on the fly):
/// `rows` items of `dim` values, `row(i)` the `i`-th. Only the history's rows are read.
pub fn fold_in_rows<'a>(
    dim: usize,
    rows: usize,
    row: impl Fn(usize) -> std::borrow::Cow<'a, [f32]>,
    gram: &[f64],
    history: &[(usize, f32)],
    alpha: f32,
    lambda: f32,
) -> Option<Vec<f32>> {
    let d = dim;
    if gram.len() != d * d {
        return None;
    }
    let mut a = gram.to_vec();
    for k in 0..d {
        a[k * d + k] += f64::from(lambda);
    }
    let mut b = vec![0f64; d];
    // Merge repeats so the result does not depend on how a history lists them.
    let mut items: Vec<(usize, f64)> = history
        .iter()
        .filter(|(i, _)| *i < rows)
        .map(|&(i, r)| (i, f64::from(r)))
        .collect();
    items.sort_by_key(|p| p.0);
    items.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
    for (i, r) in items {
        let c = 1.0 + f64::from(alpha) * r;
        let yi = row(i);
        for p in 0..d {
            let yp = f64::from(yi[p]);
            b[p] += c * yp;
            for q in 0..d {
                a[p * d + q] += (c - 1.0) * yp * f64::from(yi[q]);
            }
        }
    }
    solve_spd(a, b).map(|x| x.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(y: &Factors, x: &[f64], r: &[f64], alpha: f64, lambda: f64) -> f64 {
        (0..y.rows())
            .map(|i| {
                let c = 1.0 + alpha * r[i];
                let p = if r[i] > 0.0 { 1.0 } else { 0.0 };
                let pred: f64 = y.row(i).iter().zip(x).map(|(a, b)| f64::from(*a) * b).sum();
                c * (p - pred) * (p - pred)
            })
            .sum::<f64>()
            + lambda * x.iter().map(|v| v * v).sum::<f64>()
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0].
        let x = solve_spd(vec![4.0, 2.0, 2.0, 3.0], vec![2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(solve_spd(vec![1.0, 2.0, 2.0, 1.0], vec![1.0, 1.0]).is_none());
    }

    #[test]
    fn fold_in_minimises_the_full_objective() {
        // Six items in three dimensions; the user watched items 1 (twice) and 4.
        let y = Factors::new(
            3,
            vec![
                0.3, -0.1, 0.5, 0.9, 0.2, -0.4, -0.2, 0.8, 0.1, 0.05, 0.05, 0.6, 0.7, -0.3, 0.2,
                -0.5, 0.4, 0.3,
            ],
        )
        .unwrap();
        let (alpha, lambda) = (10.0, 0.5);
        let x = fold_in(
            &y,
            &y.gram(),
            &[(1, 1.0), (4, 1.0), (1, 1.0), (99, 1.0)],
            alpha,
            lambda,
        )
        .unwrap();
        let r = [0.0, 2.0, 0.0, 0.0, 1.0, 0.0];
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let best = objective(&y, &x64, &r, f64::from(alpha), f64::from(lambda));
        // Any small step in any direction makes the objective worse: x is the minimiser.
        for k in 0..3 {
            for step in [-1e-3, 1e-3] {
                let mut z = x64.clone();
                z[k] += step;
                assert!(objective(&y, &z, &r, f64::from(alpha), f64::from(lambda)) > best);
            }
        }
        // The order of the history does not matter.
        let again = fold_in(&y, &y.gram(), &[(4, 1.0), (1, 2.0)], alpha, lambda).unwrap();
        assert_eq!(x, again);
        // The items watched score above the ones not watched.
        let score = |i: usize| y.row(i).iter().zip(&x).map(|(a, b)| a * b).sum::<f32>();
        assert!(score(1) > score(0) && score(4) > score(2));
    }

    #[test]
    fn gram_matches_the_definition() {
        let y = Factors::new(2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(y.gram(), vec![10.0, 14.0, 14.0, 20.0]);
        assert!(Factors::new(0, vec![]).is_none());
        assert!(Factors::new(2, vec![1.0]).is_none());
    }
}
