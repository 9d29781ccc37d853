//! Weighted, L2-regularised logistic regression fitted by Newton's method, and its ONNX export.

use edgerec_onnx::{self as onnx, Dim, ElemType, GraphBuilder, attr_int};
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve as _;
use faer::{Accum, Col, Mat, Par, Side};
use serde::{Deserialize, Serialize};

use crate::{Dataset, Error, Result, Rows};

/// Metadata key of the ranker's kind in the ONNX model.
pub const META_RANKER: &str = "edgerec.ranker";
/// Metadata key of the input contract: the dense feature names, comma-joined, in column order.
pub const META_DENSE: &str = "edgerec.dense";
/// The value of [`META_RANKER`] for this model and format version.
pub const RANKER_KIND: &str = "logistic-regression/1";

/// Rows per block when accumulating the Hessian (bounds memory to a block, not the data).
const BLOCK: usize = 1024;

/// Settings of [`LogisticRegression::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// L2 penalty `λ/2 ‖β‖²` on the standardised coefficients (not the intercept), in units of
    /// example weight: the loss is a weighted *sum*, so λ = 1 weighs as much as one example.
    pub lambda: f64,
    /// Most Newton steps.
    pub max_iter: usize,
    /// Converged when no coefficient moves by more than this in a step.
    pub tol: f64,
}

impl Default for FitConfig {
    fn default() -> FitConfig {
        FitConfig {
            lambda: 1.0,
            max_iter: 50,
            tol: 1e-8,
        }
    }
}

/// `P(watch | x) = σ(b + Σⱼ wⱼ (xⱼ − meanⱼ) / scaleⱼ)`.
///
/// The standardisation (weighted mean and standard deviation of the training rows) is part of
/// the model; a feature constant in the training data is dropped (`wⱼ = 0`, `scaleⱼ = 1`).
/// Scoring ([`LogisticRegression::predict`]) runs in `f32` in the same order of operations
/// as the exported ONNX graph, so the two agree to rounding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    names: Vec<String>,
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// Standardised coefficients (0 for dropped features).
    coef: Vec<f64>,
    intercept: f64,
    dropped: Vec<bool>,
    iterations: usize,
    config: FitConfig,
}

/// `ln(1 + eˣ)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The standardised design of one fit: column j of `active` is `(x − mean) / std`.
struct Design<'a> {
    data: &'a dyn Rows,
    active: Vec<usize>,
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Features constant in the data (left out of `active`).
    dropped: Vec<bool>,
}

/// The weighted totals `(all, positive)` of the examples; errors unless both classes have
/// positive weight.
fn class_weights(data: &dyn Rows) -> Result<(f64, f64)> {
    let (mut total, mut positive) = (0.0f64, 0.0f64);
    data.scan(&mut |_, y, w| {
        total += f64::from(w);
        if y {
            positive += f64::from(w);
        }
    })?;
    if total <= 0.0 {
        return Err(Error::Data("no examples of positive weight".into()));
    }
    if positive <= 0.0 {
        return Err(Error::Data("no positive examples".into()));
    }
    if positive >= total {
        return Err(Error::Data("no negative examples".into()));
    }
    Ok((total, positive))
}

/// Adds `blockᵀ · block` over the block's first `rows` rows to `hessian`.
fn add_gram(block: &Mat<f64>, rows: usize, hessian: &mut Mat<f64>) {
    let b = block.subrows(0, rows);
    matmul(
        hessian.as_mut(),
        Accum::Add,
        b.transpose(),
        b,
        1.0,
        Par::Seq,
    );
}

impl<'a> Design<'a> {
    /// Standardises `data` (`total` = the sum of its weights) by the weighted mean and
    /// standard deviation (two passes for accuracy), dropping the features constant in it.
    fn new(data: &'a dyn Rows, total: f64) -> Result<Design<'a>> {
        let d = data.names().len();
        let mut mean = vec![0.0f64; d];
        data.scan(&mut |row, _, w| {
            let w = f64::from(w);
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += w * f64::from(x);
            }
        })?;
        mean.iter_mut().for_each(|m| *m /= total);
        let mut var = vec![0.0f64; d];
        data.scan(&mut |row, _, w| {
            let w = f64::from(w);
            for ((v, &x), m) in var.iter_mut().zip(row).zip(&mean) {
                *v += w * (f64::from(x) - m).powi(2);
            }
        })?;
        let std: Vec<f64> = var.iter().map(|v| (v / total).sqrt()).collect();
        let dropped: Vec<bool> = std
            .iter()
            .zip(&mean)
            .map(|(s, m)| *s <= 1e-9 * (1.0 + m.abs()))
            .collect();
        let active: Vec<usize> = (0..d).filter(|&j| !dropped[j]).collect();
        Ok(Design {
            data,
            active,
            mean,
            std,
            dropped,
        })
    }

    /// Standardised features of `row` (active columns), then 1 for the intercept.
    fn fill(&self, row: &[f32], z: &mut [f64]) {
        for (k, &j) in self.active.iter().enumerate() {
            z[k] = (f64::from(row[j]) - self.mean[j]) / self.std[j];
        }
        z[self.active.len()] = 1.0;
    }

    fn eta(&self, row: &[f32], beta: &[f64], z: &mut [f64]) -> f64 {
        self.fill(row, z);
        z.iter().zip(beta).map(|(a, b)| a * b).sum()
    }

    /// Weighted loss plus penalty.
    fn objective(&self, beta: &[f64], lambda: f64) -> Result<f64> {
        let p = beta.len();
        let mut z = vec![0.0; p];
        let mut loss = 0.0;
        self.data.scan(&mut |row, y, w| {
            let w = f64::from(w);
            if w == 0.0 {
                return;
            }
            let eta = self.eta(row, beta, &mut z);
            let y = if y { 1.0 } else { 0.0 };
            loss += w * (softplus(eta) - y * eta);
        })?;
        Ok(loss + 0.5 * lambda * beta[..p - 1].iter().map(|b| b * b).sum::<f64>())
    }

    /// Newton's method from `beta` (backtracking each step) until no coefficient moves by
    /// more than `config.tol`: the coefficients and the number of steps taken. Errors if a
    /// Newton system is not positive definite, the fit diverges or does not converge.
    fn newton(&self, mut beta: Vec<f64>, config: &FitConfig) -> Result<(Vec<f64>, usize)> {
        let p = beta.len();
        let mut objective = self.objective(&beta, config.lambda)?;
        let mut z = vec![0.0f64; p];
        let mut block = Mat::<f64>::zeros(BLOCK, p);
        let mut iterations = 0;
        while iterations < config.max_iter {
            iterations += 1;
            let (hessian, gradient) =
                self.newton_system(&beta, config.lambda, &mut z, &mut block)?;
            let llt = hessian.llt(Side::Lower).map_err(|e| {
                Error::Fit(format!(
                    "Newton system not positive definite at step {iterations} ({e:?}); \
                     the data may be separable: use lambda > 0"
                ))
            })?;
            let step = llt.solve(&gradient);
            let (next, value) = self.backtrack(&beta, &step, objective, config.lambda)?;
            let moved = (0..p)
                .map(|k| (next[k] - beta[k]).abs())
                .fold(0.0, f64::max);
            if !value.is_finite() || next.iter().any(|b| !b.is_finite()) {
                return Err(Error::Fit(format!("diverged at step {iterations}")));
            }
            beta = next;
            objective = value;
            if moved <= config.tol {
                return Ok((beta, iterations));
            }
        }
        Err(Error::Fit(format!(
            "no convergence in {} Newton steps",
            config.max_iter
        )))
    }

    /// The penalised Hessian and gradient of the objective at `beta`, the Hessian accumulated
    /// block by block (`z` and `block` are scratch space of `beta.len()` columns).
    fn newton_system(
        &self,
        beta: &[f64],
        lambda: f64,
        z: &mut [f64],
        block: &mut Mat<f64>,
    ) -> Result<(Mat<f64>, Col<f64>)> {
        let p = beta.len();
        let mut hessian = Mat::<f64>::zeros(p, p);
        let mut gradient = Col::<f64>::zeros(p);
        let mut rows = 0;
        self.data.scan(&mut |row, y, w| {
            let w = f64::from(w);
            if w == 0.0 {
                return;
            }
            let eta = self.eta(row, beta, z);
            let mu = sigmoid(eta);
            let y = if y { 1.0 } else { 0.0 };
            let r = w * (mu - y);
            let s = (w * mu * (1.0 - mu)).sqrt();
            for k in 0..p {
                gradient[k] += r * z[k];
                block[(rows, k)] = s * z[k];
            }
            rows += 1;
            if rows == BLOCK {
                add_gram(block, rows, &mut hessian);
                rows = 0;
            }
        })?;
        if rows > 0 {
            add_gram(block, rows, &mut hessian);
        }
        for k in 0..p - 1 {
            gradient[k] += lambda * beta[k];
            hessian[(k, k)] += lambda;
        }
        Ok((hessian, gradient))
    }

    /// Backtracking: `beta − t · step` for the first `t` in 1, ½, ¼, … whose objective does
    /// not exceed `objective` (or once `t` falls below 1e-10), with that objective's value.
    fn backtrack(
        &self,
        beta: &[f64],
        step: &Col<f64>,
        objective: f64,
        lambda: f64,
    ) -> Result<(Vec<f64>, f64)> {
        let p = beta.len();
        let mut t = 1.0;
        loop {
            let next: Vec<f64> = (0..p).map(|k| beta[k] - t * step[k]).collect();
            let value = self.objective(&next, lambda)?;
            if value <= objective + 1e-12 * objective.abs() || t < 1e-10 {
                return Ok((next, value));
            }
            t *= 0.5;
        }
    }

    /// The fitted model: `beta` (active coefficients, then the intercept) mapped back to
    /// every feature of the data, dropped ones with coefficient 0 and scale 1.
    fn into_model(self, beta: &[f64], iterations: usize, config: &FitConfig) -> LogisticRegression {
        let d = self.data.names().len();
        let p = beta.len();
        let mut coef = vec![0.0f64; d];
        for (k, &j) in self.active.iter().enumerate() {
            coef[j] = beta[k];
        }
        let scale = (0..d)
            .map(|j| {
                if self.dropped[j] {
                    1.0
                } else {
                    self.std[j] as f32
                }
            })
            .collect();
        LogisticRegression {
            names: self.data.names().to_vec(),
            mean: self.mean.iter().map(|&m| m as f32).collect(),
            scale,
            coef,
            intercept: beta[p - 1],
            dropped: self.dropped,
            iterations,
            config: *config,
        }
    }
}

impl LogisticRegression {
    /// Fits the model by Newton's method (iteratively reweighted least squares) with a
    /// backtracking step, solving each Newton system with a Cholesky factorisation.
    ///
    /// Minimises `Σᵢ wᵢ [ln(1 + e^ηᵢ) − yᵢ ηᵢ] + λ/2 ‖β‖²` over standardised features, the
    /// intercept unpenalised, starting from β = 0 and the intercept at the weighted log-odds.
    /// Deterministic (no randomness; a fixed summation order). Cost per step: O(n·d²) for the
    /// Hessian plus O(d³) for the factorisation; a few steps usually suffice.
    ///
    /// Errors if the data has no positive or no negative of positive weight, or if a Newton
    /// system is not positive definite (perfectly separable data with λ = 0).
    pub fn fit(data: &Dataset, config: &FitConfig) -> Result<LogisticRegression> {
        Self::fit_rows(data, config)
    }

    /// [`LogisticRegression::fit`] on rows visited in order rather than held: the same steps
    /// in the same order (a [`Dataset`] and the same rows streamed from files give the same
    /// model, bit for bit), each a pass over the rows — two for the standardisation, then per
    /// Newton step one for the system and one or more for the line search. Memory is
    /// O(features²) plus what `data` holds (one record batch for
    /// [`crate::StreamedExamples`]), not O(rows).
    pub fn fit_rows(data: &dyn Rows, config: &FitConfig) -> Result<LogisticRegression> {
        if !(config.lambda >= 0.0 && config.lambda.is_finite()) {
            return Err(Error::Data(format!("lambda {} is not ≥ 0", config.lambda)));
        }
        let (total, positive) = class_weights(data)?;
        let design = Design::new(data, total)?;
        let p = design.active.len() + 1;
        let mut beta = vec![0.0f64; p];
        beta[p - 1] = (positive / (total - positive)).ln();
        let (beta, iterations) = design.newton(beta, config)?;
        Ok(design.into_model(&beta, iterations, config))
    }

    /// Feature names, in input order (the model's input contract).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Newton steps the fit took.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// The settings of the fit.
    pub fn config(&self) -> &FitConfig {
        &self.config
    }

    /// The intercept (log-odds at the mean feature vector).
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// Names of the features dropped as constant in the training data.
    pub fn dropped(&self) -> Vec<&str> {
        self.names
            .iter()
            .zip(&self.dropped)
            .filter(|(_, d)| **d)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// `(feature, standardised coefficient)`: the change in log-odds per standard deviation of
    /// the feature, largest |coefficient| first, ties by name. Dropped features are listed with 0.
    pub fn coefficients(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> =
            self.names.iter().cloned().zip(self.coef.clone()).collect();
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// The coefficients per raw (unstandardised) feature unit and the matching intercept:
    /// `P = σ(b + Σ wⱼ xⱼ)`.
    pub fn raw_coefficients(&self) -> (Vec<f64>, f64) {
        let w: Vec<f64> = (0..self.names.len())
            .map(|j| self.coef[j] / f64::from(self.scale[j]))
            .collect();
        let b = self.intercept
            - w.iter()
                .zip(&self.mean)
                .map(|(w, &m)| w * f64::from(m))
                .sum::<f64>();
        (w, b)
    }

    /// `P(watch)` of every row of `dense` (row-major, `names().len()` values per row), computed
    /// in `f32` as the ONNX graph does. Errors on a width mismatch or a non-finite value.
    pub fn predict(&self, dense: &[f32]) -> Result<Vec<f32>> {
        let d = self.names.len();
        if !dense.len().is_multiple_of(d) {
            return Err(Error::Data(format!(
                "{} values is not a whole number of rows of {d} features",
                dense.len()
            )));
        }
        if let Some(i) = dense.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "row {}: feature {:?} is {}",
                i / d,
                self.names[i % d],
                dense[i]
            )));
        }
        let w: Vec<f32> = self.coef.iter().map(|&c| c as f32).collect();
        let b = self.intercept as f32;
        Ok(dense
            .chunks_exact(d)
            .map(|row| {
                let mut s = 0.0f32;
                for j in 0..d {
                    s += (row[j] - self.mean[j]) / self.scale[j] * w[j];
                }
                let logit = s + b;
                1.0 / (1.0 + (-logit).exp())
            })
            .collect())
    }

    /// [`predict`](Self::predict) on a dataset, which must have the model's features in order.
    pub fn score(&self, data: &Dataset) -> Result<Vec<f32>> {
        if data.names() != self.names.as_slice() {
            return Err(Error::Data(
                "the dataset's features are not the model's".into(),
            ));
        }
        self.predict(data.dense())
    }

    /// The model as ONNX bytes (IR 8, opset 13): input `dense` float32 `[batch, d]`,
    /// `Sub(mean) → Div(scale) → Gemm(w, b) → Sigmoid`, output `p_watch` float32 `[batch, 1]`.
    /// Metadata: [`META_RANKER`] = [`RANKER_KIND`] and [`META_DENSE`] = the feature names,
    /// comma-joined, in input order.
    pub fn to_onnx(&self) -> Result<Vec<u8>> {
        let d = self.names.len();
        if let Some(n) = self.names.iter().find(|n| n.contains(',')) {
            return Err(Error::Data(format!(
                "feature name {n:?} contains a comma (the metadata separator)"
            )));
        }
        let batch = || Dim::symbolic("batch");
        let mut g = GraphBuilder::new("logistic_ranker");
        g.input("dense", ElemType::F32, &[batch(), Dim::Fixed(d)])?;
        g.initializer_f32("mean", &[d], &self.mean)?;
        g.initializer_f32("scale", &[d], &self.scale)?;
        let w: Vec<f32> = self.coef.iter().map(|&c| c as f32).collect();
        g.initializer_f32("w", &[d, 1], &w)?;
        g.initializer_f32("b", &[1], &[self.intercept as f32])?;
        g.node("Sub", &["dense", "mean"], &["centred"], vec![])?;
        g.node("Div", &["centred", "scale"], &["z"], vec![])?;
        g.node(
            "Gemm",
            &["z", "w", "b"],
            &["logit"],
            vec![attr_int("transA", 0), attr_int("transB", 0)],
        )?;
        g.node("Sigmoid", &["logit"], &["p_watch"], vec![])?;
        g.output("p_watch", ElemType::F32, &[batch(), Dim::Fixed(1)])?;
        let dense_names = self.names.join(",");
        let model = onnx::model(
            g.finish()?,
            "edgerec-rank",
            &[(META_RANKER, RANKER_KIND), (META_DENSE, &dense_names)],
        );
        onnx::check_model(&model)?;
        Ok(onnx::encode(&model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_loss;

    use edgerec::rng::SplitMix64;

    fn names(d: usize) -> Vec<String> {
        (0..d).map(|j| format!("f{j}")).collect()
    }

    /// Rows from `P(y) = σ(b + Σ wⱼ xⱼ)` with `xⱼ ~ N(0, 1)·scaleⱼ + shiftⱼ` and a constant
    /// last feature.
    fn synthetic(seed: u64, n: usize, w: &[f64], b: f64) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let d = w.len() + 1;
        let mut dense = Vec::with_capacity(n * d);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let mut eta = b;
            for (j, wj) in w.iter().enumerate() {
                let x = rng.normal() * (j + 1) as f64 + j as f64;
                eta += wj * x;
                dense.push(x as f32);
            }
            dense.push(3.0);
            labels.push(rng.uniform() < sigmoid(eta));
        }
        Dataset::new(names(d), dense, labels, vec![1.0; n]).unwrap()
    }

    #[test]
    fn recovers_known_coefficients() {
        let seed = 7;
        let (w, b) = ([1.0, -0.5, 0.25], -0.5);
        let data = synthetic(seed, 20_000, &w, b);
        let model = LogisticRegression::fit(&data, &FitConfig::default()).unwrap();
        assert!(model.iterations() <= 10, "{} steps", model.iterations());
        assert_eq!(model.dropped(), vec!["f3"]);
        let (raw, raw_b) = model.raw_coefficients();
        for (j, wj) in w.iter().enumerate() {
            assert!(
                (raw[j] - wj).abs() < 0.06,
                "seed {seed}: w{j} {} vs {wj}",
                raw[j]
            );
        }
        assert!((raw_b - b).abs() < 0.1, "seed {seed}: b {raw_b} vs {b}");
        assert_eq!(raw[3], 0.0);
        // The largest standardised effect is f1 (|−0.5| × std 2) , then f0 and f2 (1 × 1, 0.25 × 3).
        assert_eq!(model.coefficients()[0].0, "f1");

        let probs = model.score(&data).unwrap();
        let rate = data.labels().iter().filter(|&&l| l).count() as f32 / data.len() as f32;
        let constant = vec![rate; data.len()];
        let model_loss = log_loss(&probs, data.labels(), None).unwrap();
        let constant_loss = log_loss(&constant, data.labels(), None).unwrap();
        assert!(
            model_loss < constant_loss - 0.05,
            "{model_loss} vs {constant_loss}"
        );
    }

    #[test]
    fn fit_is_deterministic_and_weights_equal_duplicates() {
        let data = synthetic(11, 2_000, &[0.8, -0.3], 0.2);
        let config = FitConfig::default();
        let a = LogisticRegression::fit(&data, &config).unwrap();
        assert_eq!(a, LogisticRegression::fit(&data, &config).unwrap());

        // Weight 2 on every third row ≡ that row twice.
        let weights: Vec<f32> = (0..data.len())
            .map(|i| if i % 3 == 0 { 2.0 } else { 1.0 })
            .collect();
        let weighted = Dataset::new(
            data.names().to_vec(),
            data.dense().to_vec(),
            data.labels().to_vec(),
            weights,
        )
        .unwrap();
        let (mut dense, mut labels) = (Vec::new(), Vec::new());
        for i in 0..data.len() {
            for _ in 0..if i % 3 == 0 { 2 } else { 1 } {
                dense.extend_from_slice(data.row(i));
                labels.push(data.labels()[i]);
            }
        }
        let n = labels.len();
        let duplicated = Dataset::new(data.names().to_vec(), dense, labels, vec![1.0; n]).unwrap();
        let w = LogisticRegression::fit(&weighted, &config).unwrap();
        let u = LogisticRegression::fit(&duplicated, &config).unwrap();
        for ((_, cw), (_, cu)) in w.coefficients().iter().zip(u.coefficients()) {
            assert!((cw - cu).abs() < 1e-6, "{cw} vs {cu}");
        }
        assert!((w.intercept() - u.intercept()).abs() < 1e-6);
        // …and weights do change the fit.
        assert!((w.intercept() - a.intercept()).abs() > 1e-6);
    }

    #[test]
    fn onnx_matches_predict_in_tract() {
        use tract_onnx::prelude::*;

        let data = synthetic(3, 3_000, &[1.5, -2.0, 0.5], 0.3);
        let model = LogisticRegression::fit(&data, &FitConfig::default()).unwrap();
        let bytes = model.to_onnx().unwrap();

        let decoded = onnx::decode(&bytes).unwrap();
        assert_eq!(onnx::metadata(&decoded, META_RANKER), Some(RANKER_KIND));
        assert_eq!(onnx::metadata(&decoded, META_DENSE), Some("f0,f1,f2,f3"));

        let d = model.names().len();
        let mut rows: Vec<f32> = data.dense()[..40 * d].to_vec();
        for extreme in [
            [0.0, 0.0, 0.0, 0.0],
            [1e6, -1e6, 0.0, 3.0],
            [-1e6, 1e6, 0.0, 3.0],
            [1e30, 0.0, 0.0, -1e30],
            [-50.0, 50.0, 1e-30, 3.0],
            [f32::MIN_POSITIVE, -0.0, 1e3, 1e20],
        ] {
            rows.extend_from_slice(&extreme);
        }
        let n = rows.len() / d;
        let expected = model.predict(&rows).unwrap();

        let runnable = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(&bytes))
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let input = tract_ndarray::Array2::from_shape_vec((n, d), rows).unwrap();
        let out = runnable
            .run(tvec!(Tensor::from(input).into_tvalue()))
            .unwrap();
        let got = out[0].try_as_plain_ram().unwrap();
        let got = got.as_slice::<f32>().unwrap();
        assert_eq!(got.len(), n);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!((g - e).abs() <= 1e-5, "row {i}: tract {g} vs rust {e}");
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let n2 = names(2);
        assert!(Dataset::new(n2.clone(), vec![1.0, f32::NAN], vec![true], vec![1.0]).is_err());
        assert!(Dataset::new(n2.clone(), vec![1.0, 2.0, 3.0], vec![true], vec![1.0]).is_err());
        assert!(Dataset::new(n2.clone(), vec![1.0, 2.0], vec![true], vec![]).is_err());
        assert!(Dataset::new(n2.clone(), vec![1.0, 2.0], vec![true], vec![-1.0]).is_err());
        assert!(Dataset::new(vec![], vec![], vec![], vec![]).is_err());

        let config = FitConfig::default();
        let empty = Dataset::new(n2.clone(), vec![], vec![], vec![]).unwrap();
        assert!(matches!(
            LogisticRegression::fit(&empty, &config),
            Err(Error::Data(_))
        ));
        let negatives = Dataset::new(
            n2.clone(),
            vec![1.0, 2.0, 3.0, 4.0],
            vec![false, false],
            vec![1.0; 2],
        )
        .unwrap();
        assert!(matches!(
            LogisticRegression::fit(&negatives, &config),
            Err(Error::Data(_))
        ));
        let zero_weight_positive = Dataset::new(
            n2.clone(),
            vec![1.0, 2.0, 3.0, 4.0],
            vec![true, false],
            vec![0.0, 1.0],
        )
        .unwrap();
        assert!(LogisticRegression::fit(&zero_weight_positive, &config).is_err());
        let bad_lambda = FitConfig {
            lambda: f64::NAN,
            ..config
        };
        let data = synthetic(5, 200, &[1.0], 0.0);
        assert!(LogisticRegression::fit(&data, &bad_lambda).is_err());
        // Separable data without a penalty: an error, not a panic or infinite loop.
        let separable = Dataset::new(
            names(1),
            vec![-2.0, -1.0, 1.0, 2.0],
            vec![false, false, true, true],
            vec![1.0; 4],
        )
        .unwrap();
        let unpenalised = FitConfig {
            lambda: 0.0,
            ..config
        };
        assert!(LogisticRegression::fit(&separable, &unpenalised).is_err());
        assert!(LogisticRegression::fit(&separable, &config).is_ok());

        let model = LogisticRegression::fit(&data, &config).unwrap();
        assert!(model.predict(&[1.0, 2.0, 3.0]).is_err());
        assert!(model.predict(&[1.0, f32::INFINITY]).is_err());
        assert!(model.predict(&[f32::NAN, 0.0]).is_err());
        assert!(model.predict(&[]).unwrap().is_empty());
        assert!(model.score(&synthetic(5, 10, &[1.0, 2.0], 0.0)).is_err());
    }
}
