//! Gradient-boosted decision trees for the ranking stage, trained with
//! [forust](https://github.com/jinlow/forust) (`forust-ml`, pure Rust) and exported as an
//! ONNX-ML `TreeEnsembleClassifier` that tract runs on the device.
//!
//! The library's trees are copied into flat arrays at fit time ([`GradientBoostedTrees`] keeps
//! no library object). [`GradientBoostedTrees::predict`] walks those arrays with the arithmetic
//! of the exported graph (f32 thresholds, `x < t` to the left, f32 leaf sums in tree order,
//! then the base score, then the logistic), so Rust and tract agree to rounding; `fit` checks
//! the arrays against the library's own predictions before returning.

use edgerec_onnx::{
    self as onnx, Dim, ElemType, GraphBuilder, attr_floats, attr_ints, attr_string, attr_strings,
};
use forust_ml::GradientBooster;
use forust_ml::data::Matrix;
use forust_ml::objective::ObjectiveType;
use forust_ml::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::{Dataset, Error, META_DENSE, META_RANKER, Result};

/// The value of [`META_RANKER`] for a [`GradientBoostedTrees`] model and format version.
pub const GBDT_KIND: &str = "gbdt/1";

/// Largest allowed gap between the flat trees' probabilities and the library's own on the
/// training rows (it only differs by f32 rounding of the sum).
const LIBRARY_TOLERANCE: f64 = 1e-4;

/// Rows of the training data checked against the library's prediction after a fit.
const LIBRARY_CHECK_ROWS: usize = 4096;

/// Settings of [`GradientBoostedTrees::fit`]; names follow XGBoost (Chen & Guestrin 2016).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeConfig {
    /// Number of boosting rounds (trees), at least 1.
    pub iterations: usize,
    /// Shrinkage η applied to each tree's leaf values, in (0, 1].
    pub learning_rate: f32,
    /// Deepest level of a tree (the root is depth 0), at least 1.
    pub max_depth: usize,
    /// L2 penalty λ on leaf values, in units of hessian (example weight × p(1−p)).
    pub l2: f32,
    /// Smallest hessian sum of a child for a split to be allowed.
    pub min_leaf_weight: f32,
    /// Histogram bins per feature.
    pub nbins: u16,
    /// Seed of the library's generator (only used if sampling is ever enabled; the fit is
    /// deterministic either way: single-threaded, no subsampling).
    pub seed: u64,
}

impl Default for TreeConfig {
    fn default() -> TreeConfig {
        TreeConfig {
            iterations: 100,
            learning_rate: 0.1,
            max_depth: 4,
            l2: 1.0,
            min_leaf_weight: 1.0,
            nbins: 256,
            seed: 0,
        }
    }
}

/// One node of a flat tree. For a leaf, `feature`, `threshold`, `left` and `right` are 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct FlatNode {
    is_leaf: bool,
    feature: u32,
    /// `x < threshold` goes to `left` (the ONNX "true" branch).
    threshold: f32,
    left: u32,
    right: u32,
    /// NaN goes to `left` (else to `right`).
    missing_left: bool,
    /// The leaf's value in log-odds (learning rate applied).
    weight: f32,
}

/// A binary classifier `P(watch | x) = σ(base + Σₜ leafₜ(x))`, a sum of regression trees
/// fitted by gradient boosting on the weighted log-loss.
///
/// Splits send `x < threshold` left and NaN (a missing value) to the side the library chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientBoostedTrees {
    names: Vec<String>,
    /// Base score in log-odds.
    base: f32,
    /// Nodes of each tree; node 0 is the root.
    trees: Vec<Vec<FlatNode>>,
    /// Normalised total gain per feature.
    importance: Vec<f64>,
    config: TreeConfig,
}

/// The smallest f32 ≥ `t`: for every f32 `x`, `x < t` ⇔ `x < ceil_f32(t)`.
fn ceil_f32(t: f64) -> f32 {
    let r = t as f32;
    if f64::from(r) >= t {
        r
    } else if r == 0.0 {
        f32::from_bits(1)
    } else if r > 0.0 {
        f32::from_bits(r.to_bits() + 1)
    } else {
        f32::from_bits(r.to_bits() - 1)
    }
}

fn sigmoid_f32(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl TreeConfig {
    fn check(&self) -> Result<()> {
        if self.iterations == 0 {
            return Err(Error::Data("iterations must be at least 1".into()));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(Error::Data(format!(
                "learning rate {} is not in (0, 1]",
                self.learning_rate
            )));
        }
        if self.max_depth == 0 {
            return Err(Error::Data("max depth must be at least 1".into()));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::Data(format!("l2 {} is not ≥ 0", self.l2)));
        }
        if !(self.min_leaf_weight.is_finite() && self.min_leaf_weight >= 0.0) {
            return Err(Error::Data(format!(
                "min leaf weight {} is not ≥ 0",
                self.min_leaf_weight
            )));
        }
        if self.nbins < 2 {
            return Err(Error::Data("nbins must be at least 2".into()));
        }
        Ok(())
    }
}

/// Errors unless `data` has examples and positive weight on both classes.
fn check_classes(data: &Dataset) -> Result<()> {
    if data.is_empty() {
        return Err(Error::Data("no training examples".into()));
    }
    let (mut pos, mut neg) = (0.0f64, 0.0f64);
    for (&w, &y) in data.weights().iter().zip(data.labels()) {
        if y {
            pos += f64::from(w);
        } else {
            neg += f64::from(w);
        }
    }
    if pos <= 0.0 || neg <= 0.0 {
        return Err(Error::Data(
            "training data needs positive weight on both classes".into(),
        ));
    }
    Ok(())
}

/// The features of `data` as f64, column-major (the layout forust reads).
fn column_major(data: &Dataset) -> Vec<f64> {
    let (n, d) = (data.len(), data.n_features());
    let mut columns = vec![0.0f64; n * d];
    for i in 0..n {
        for (j, &x) in data.row(i).iter().enumerate() {
            columns[j * n + i] = f64::from(x);
        }
    }
    columns
}

/// The library's booster fitted on `data` (`columns` = its features, column-major) with
/// `config`, single-threaded.
fn boost(data: &Dataset, columns: &[f64], config: &TreeConfig) -> Result<GradientBooster> {
    let y: Vec<f64> = data
        .labels()
        .iter()
        .map(|&l| f64::from(u8::from(l)))
        .collect();
    let w: Vec<f64> = data.weights().iter().map(|&w| f64::from(w)).collect();
    let matrix = Matrix::new(columns, data.len(), data.n_features());
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(config.iterations)
        .set_learning_rate(config.learning_rate)
        .set_max_depth(config.max_depth)
        .set_l2(config.l2)
        .set_min_leaf_weight(config.min_leaf_weight)
        .set_nbins(config.nbins)
        .set_seed(config.seed)
        .set_parallel(false)
        .set_initialize_base_score(true)
        .set_create_missing_branch(false);
    booster
        .fit(&matrix, &y, &w, None)
        .map_err(|e| Error::Fit(format!("forust: {e}")))?;
    Ok(booster)
}

/// The library's tree `t` as flat nodes over `d` features, adding each split's gain to
/// `gain`. Errors on a node the export cannot represent.
fn flatten_tree(t: usize, tree: &Tree, d: usize, gain: &mut [f64]) -> Result<Vec<FlatNode>> {
    let len = tree.nodes.len();
    let mut flat = Vec::with_capacity(len);
    for (k, node) in tree.nodes.iter().enumerate() {
        if node.is_leaf {
            flat.push(FlatNode {
                is_leaf: true,
                feature: 0,
                threshold: 0.0,
                left: 0,
                right: 0,
                missing_left: false,
                weight: node.weight_value,
            });
            continue;
        }
        let bad = |what: &str| Error::Fit(format!("tree {t} node {k}: {what}"));
        if node.left_child >= len || node.right_child >= len || node.split_feature >= d {
            return Err(bad("child or feature out of range"));
        }
        let missing_left = if node.missing_node == node.left_child {
            true
        } else if node.missing_node == node.right_child {
            false
        } else {
            return Err(bad("separate missing-value branch"));
        };
        if node.split_value.is_nan() {
            return Err(bad("NaN threshold"));
        }
        gain[node.split_feature] += f64::from(node.split_gain.max(0.0));
        flat.push(FlatNode {
            is_leaf: false,
            feature: node.split_feature as u32,
            threshold: ceil_f32(node.split_value),
            left: node.left_child as u32,
            right: node.right_child as u32,
            missing_left,
            weight: 0.0,
        });
    }
    if flat.is_empty() {
        return Err(Error::Fit(format!("tree {t} has no nodes")));
    }
    Ok(flat)
}

/// Every tree of `booster` as flat nodes over `d` features, and the total split gain per
/// feature, normalised to sum to 1 (all zero if no tree split).
fn flatten(booster: &GradientBooster, d: usize) -> Result<(Vec<Vec<FlatNode>>, Vec<f64>)> {
    let mut trees = Vec::with_capacity(booster.trees.len());
    let mut gain = vec![0.0f64; d];
    for (t, tree) in booster.trees.iter().enumerate() {
        trees.push(flatten_tree(t, tree, d, &mut gain)?);
    }
    let total: f64 = gain.iter().sum();
    if total > 0.0 {
        gain.iter_mut().for_each(|g| *g /= total);
    }
    Ok((trees, gain))
}

impl GradientBoostedTrees {
    /// Fits `config.iterations` trees on `data` (weighted log-loss, base score = log-odds of
    /// the weighted positive rate), single-threaded and deterministic.
    ///
    /// Errors if the config is out of range, the data is empty or has positive weight on one
    /// class only, or the library's trees cannot be exported (a separate missing-value branch,
    /// an out-of-range child) or disagree with the library's own prediction.
    ///
    /// Cost: O(iterations · rows · features) for the histograms plus a copy of the data as f64.
    pub fn fit(data: &Dataset, config: &TreeConfig) -> Result<GradientBoostedTrees> {
        config.check()?;
        check_classes(data)?;
        let columns = column_major(data);
        let booster = boost(data, &columns, config)?;
        let (trees, importance) = flatten(&booster, data.n_features())?;
        let model = GradientBoostedTrees {
            names: data.names().to_vec(),
            base: booster.base_score as f32,
            trees,
            importance,
            config: *config,
        };
        model.check_against(&booster, data, &columns)?;
        Ok(model)
    }

    /// The flat trees must reproduce the library: compares the probabilities of both on the
    /// first [`LIBRARY_CHECK_ROWS`] rows of the training data (`columns`, column-major).
    fn check_against(
        &self,
        booster: &GradientBooster,
        data: &Dataset,
        columns: &[f64],
    ) -> Result<()> {
        let (n, d) = (data.len(), data.n_features());
        let m = n.min(LIBRARY_CHECK_ROWS);
        let ours = self.predict(&data.dense()[..m * d])?;
        // `Matrix::new` with `rows = m` reads column j at `j * m`: the head, column-major.
        let mut head_columns = vec![0.0f64; m * d];
        for j in 0..d {
            head_columns[j * m..(j + 1) * m].copy_from_slice(&columns[j * n..j * n + m]);
        }
        let head = Matrix::new(&head_columns, m, d);
        let theirs = booster.predict(&head, false);
        for (i, (&p, &margin)) in ours.iter().zip(&theirs).enumerate() {
            let q = 1.0 / (1.0 + (-margin).exp());
            if (f64::from(p) - q).abs() > LIBRARY_TOLERANCE {
                return Err(Error::Fit(format!(
                    "row {i}: exported trees give {p}, forust gives {q}"
                )));
            }
        }
        Ok(())
    }

    /// Feature names, in input order (the model's input contract).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The base score (log-odds) every prediction starts from.
    pub fn base_score(&self) -> f32 {
        self.base
    }

    /// The settings the model was fitted with.
    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    /// Total split gain per feature, normalised to sum to 1 (all zero if no tree split), in
    /// input order.
    pub fn importance(&self) -> &[f64] {
        &self.importance
    }

    /// `(name, importance)` sorted by importance, largest first (ties by input order).
    pub fn ranked_importance(&self) -> Vec<(&str, f64)> {
        let mut ranked: Vec<(&str, f64)> = self
            .names
            .iter()
            .map(String::as_str)
            .zip(self.importance.iter().copied())
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }

    fn margin(&self, row: &[f32]) -> f32 {
        let mut sum = 0.0f32;
        for tree in &self.trees {
            let mut k = 0usize;
            loop {
                let node = &tree[k];
                if node.is_leaf {
                    sum += node.weight;
                    break;
                }
                let x = row[node.feature as usize];
                let left = if x.is_nan() {
                    node.missing_left
                } else {
                    x < node.threshold
                };
                k = if left { node.left } else { node.right } as usize;
            }
        }
        sum + self.base
    }

    /// `P(watch)` for each row of `dense` (row-major, `names().len()` values per row). NaN is
    /// a missing value and follows each split's missing-value side; ±∞ compare as numbers.
    /// Errors if `dense` is not a whole number of rows. Cost: O(rows · trees · depth).
    pub fn predict(&self, dense: &[f32]) -> Result<Vec<f32>> {
        let d = self.names.len();
        if !dense.len().is_multiple_of(d) {
            return Err(Error::Data(format!(
                "{} values is not a whole number of rows of {d} features",
                dense.len()
            )));
        }
        Ok(dense
            .chunks_exact(d)
            .map(|row| sigmoid_f32(self.margin(row)))
            .collect())
    }

    /// [`GradientBoostedTrees::predict`] on a dataset with the model's features.
    pub fn score(&self, data: &Dataset) -> Result<Vec<f32>> {
        if data.names() != self.names.as_slice() {
            return Err(Error::Data(
                "the dataset's features are not the model's".into(),
            ));
        }
        self.predict(data.dense())
    }

    /// The model as ONNX bytes (IR 8, opset 13 + `ai.onnx.ml` 3): input `dense` float32
    /// `[batch, d]` → one `TreeEnsembleClassifier` (classes `[0, 1]`, every leaf weighted for
    /// class 1, `post_transform = LOGISTIC`, `BRANCH_LT`) → outputs `label` int64 `[batch]`
    /// and `probabilities` float32 `[batch, 2]`. The boosting's base score is folded into the
    /// leaves of the first tree (every row reaches exactly one of them) and `base_values` is
    /// left out: with `base_values` present onnxruntime ignores the trees of such a binary
    /// classifier and returns σ(base) for every row (microsoft/onnxruntime#1007), so this form
    /// scores the same in tract, onnxruntime and the core's tree engine.
    ///
    /// **Read column 1 of `probabilities`** as `P(watch)`. In tract (0.23) column 0 is
    /// σ(0) = 0.5, not 1 − P: tract's "binary layout" (which writes `[1 − p, p]`) is only taken
    /// when every leaf is for class 0, and then its `label` is inverted. With class 1, tract's
    /// `label` is 1 exactly when P > 0.5. Metadata: [`META_RANKER`] = [`GBDT_KIND`],
    /// [`META_DENSE`] = the feature names, comma-joined, in input order.
    pub fn to_onnx(&self) -> Result<Vec<u8>> {
        let d = self.names.len();
        let mut g = GraphBuilder::new("ranker_gbdt");
        g.input(
            "dense",
            ElemType::F32,
            &[Dim::symbolic("batch"), Dim::Fixed(d)],
        )?;
        g.node_in_domain(
            onnx::ML_DOMAIN,
            "TreeEnsembleClassifier",
            &["dense"],
            &["label", "probabilities"],
            [
                attr_ints("classlabels_int64s", &[0, 1]),
                attr_string("post_transform", "LOGISTIC"),
            ]
            .into_iter()
            .chain(self.node_attributes())
            .chain(self.class_attributes())
            .collect(),
        )?;
        g.output("label", ElemType::I64, &[Dim::symbolic("batch")])?;
        g.output(
            "probabilities",
            ElemType::F32,
            &[Dim::symbolic("batch"), Dim::Fixed(2)],
        )?;
        let dense_names = self.names.join(",");
        let model = onnx::model_with_opsets(
            g.finish()?,
            "edgerec-rank",
            &[(META_RANKER, GBDT_KIND), (META_DENSE, &dense_names)],
            &[(onnx::ML_DOMAIN, onnx::ML_OPSET)],
        );
        onnx::check_model(&model)?;
        Ok(onnx::encode(&model))
    }

    /// The `nodes_*` attributes of the `TreeEnsembleClassifier`: every node of every tree, in
    /// tree order (a leaf's feature, threshold and children are 0).
    fn node_attributes(&self) -> Vec<onnx::pb::AttributeProto> {
        let mut tree_ids = Vec::new();
        let mut node_ids = Vec::new();
        let mut feature_ids = Vec::new();
        let mut modes = Vec::new();
        let mut values = Vec::new();
        let mut true_ids = Vec::new();
        let mut false_ids = Vec::new();
        let mut missing_true = Vec::new();
        for (t, tree) in self.trees.iter().enumerate() {
            for (k, node) in tree.iter().enumerate() {
                tree_ids.push(t as i64);
                node_ids.push(k as i64);
                feature_ids.push(i64::from(node.feature));
                modes.push(if node.is_leaf { "LEAF" } else { "BRANCH_LT" });
                values.push(node.threshold);
                true_ids.push(i64::from(node.left));
                false_ids.push(i64::from(node.right));
                missing_true.push(i64::from(node.missing_left));
            }
        }
        vec![
            attr_ints("nodes_treeids", &tree_ids),
            attr_ints("nodes_nodeids", &node_ids),
            attr_ints("nodes_featureids", &feature_ids),
            attr_strings("nodes_modes", &modes),
            attr_floats("nodes_values", &values),
            attr_ints("nodes_truenodeids", &true_ids),
            attr_ints("nodes_falsenodeids", &false_ids),
            attr_ints("nodes_missing_value_tracks_true", &missing_true),
        ]
    }

    /// The `class_*` attributes of the `TreeEnsembleClassifier`: every leaf weighted for
    /// class 1, with the base score folded into the leaves of the first tree; without trees,
    /// `base_values` instead (see [`GradientBoostedTrees::to_onnx`]).
    fn class_attributes(&self) -> Vec<onnx::pb::AttributeProto> {
        let (mut leaf_tree, mut leaf_node, mut leaf_weight) = (Vec::new(), Vec::new(), Vec::new());
        for (t, tree) in self.trees.iter().enumerate() {
            for (k, node) in tree.iter().enumerate() {
                if node.is_leaf {
                    leaf_tree.push(t as i64);
                    leaf_node.push(k as i64);
                    leaf_weight.push(if t == 0 {
                        node.weight + self.base
                    } else {
                        node.weight
                    });
                }
            }
        }
        let n_leaves = leaf_tree.len();
        [
            attr_ints("class_treeids", &leaf_tree),
            attr_ints("class_nodeids", &leaf_node),
            attr_ints("class_ids", &vec![1; n_leaves]),
            attr_floats("class_weights", &leaf_weight),
        ]
        .into_iter()
        // Without trees the base score has no leaf to live in: only then `base_values`
        // (whose mere presence makes onnxruntime ignore the trees of a binary classifier).
        .chain(
            self.trees
                .is_empty()
                .then(|| attr_floats("base_values", &[0.0, self.base])),
        )
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FitConfig, LogisticRegression, auc};

    use edgerec::rng::SplitMix64;

    /// XOR-like world: `P(y) = σ(2.5 · sign(x0 · x1))` with `x0, x1 ~ U(−1, 1)`, plus two
    /// noise features `x2 ~ U(0, 10)`, `x3 ~ U(−1, 1)`; weights 1 or 2.
    fn xor(seed: u64, n: usize) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let (mut dense, mut labels, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let x0 = rng.uniform() * 2.0 - 1.0;
            let x1 = rng.uniform() * 2.0 - 1.0;
            let x2 = rng.uniform() * 10.0;
            let x3 = rng.uniform() * 2.0 - 1.0;
            let eta = 2.5 * (x0 * x1).signum();
            dense.extend([x0 as f32, x1 as f32, x2 as f32, x3 as f32]);
            labels.push(rng.uniform() < 1.0 / (1.0 + (-eta).exp()));
            weights.push(if i % 4 == 0 { 2.0 } else { 1.0 });
        }
        let names = (0..4).map(|j| format!("f{j}")).collect();
        Dataset::new(names, dense, labels, weights).unwrap()
    }

    fn small_config() -> TreeConfig {
        TreeConfig {
            iterations: 40,
            learning_rate: 0.2,
            max_depth: 3,
            ..TreeConfig::default()
        }
    }

    #[test]
    fn ceil_f32_is_the_smallest_f32_not_below() {
        for t in [
            0.1f64,
            -0.1,
            1e-50,
            -1e-50,
            3.0,
            1e39,
            -1e39,
            0.0,
            16_777_217.0,
        ] {
            let c = ceil_f32(t);
            assert!(f64::from(c) >= t, "{t}: {c}");
            let below = if c > 0.0 {
                f32::from_bits(c.to_bits() - 1)
            } else if c == 0.0 {
                -f32::from_bits(1)
            } else {
                f32::from_bits(c.to_bits() + 1)
            };
            assert!(f64::from(below) < t, "{t}: {c} is not the smallest");
        }
    }

    #[test]
    fn trees_learn_an_interaction_logistic_regression_cannot() {
        let seed = 5;
        let train = xor(seed, 4_000);
        let valid = xor(seed + 1, 4_000);
        let trees = GradientBoostedTrees::fit(&train, &small_config()).unwrap();
        assert_eq!(trees.n_trees(), 40);
        let lr = LogisticRegression::fit(&train, &FitConfig::default()).unwrap();
        let auc_trees = auc(&trees.score(&valid).unwrap(), valid.labels()).unwrap();
        let auc_lr = auc(&lr.score(&valid).unwrap(), valid.labels()).unwrap();
        eprintln!("seed {seed}: AUC trees {auc_trees:.4}, logistic {auc_lr:.4}");
        assert!(
            auc_trees > auc_lr + 0.2,
            "seed {seed}: trees {auc_trees} vs logistic {auc_lr}"
        );
        assert!(auc_trees > 0.8, "seed {seed}: trees {auc_trees}");

        // Deterministic.
        assert_eq!(
            trees,
            GradientBoostedTrees::fit(&train, &small_config()).unwrap()
        );

        // Importance: sums to 1, the two informative features first.
        let total: f64 = trees.importance().iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let ranked = trees.ranked_importance();
        let mut top: Vec<&str> = ranked[..2].iter().map(|r| r.0).collect();
        top.sort_unstable();
        assert_eq!(top, ["f0", "f1"], "{ranked:?}");
        assert!(ranked[1].1 > 3.0 * ranked[2].1, "{ranked:?}");
    }

    #[test]
    fn onnx_matches_predict_in_tract() {
        use tract_onnx::prelude::*;

        let data = xor(9, 2_000);
        let model = GradientBoostedTrees::fit(&data, &small_config()).unwrap();
        let bytes = model.to_onnx().unwrap();
        let decoded = onnx::decode(&bytes).unwrap();
        assert_eq!(onnx::metadata(&decoded, META_RANKER), Some(GBDT_KIND));
        assert_eq!(onnx::metadata(&decoded, META_DENSE), Some("f0,f1,f2,f3"));

        let d = 4;
        let mut rows: Vec<f32> = data.dense()[..40 * d].to_vec();
        // Values exactly on thresholds (and one ulp either side), taken from the first trees.
        for node in model.trees.iter().take(5).flatten().filter(|n| !n.is_leaf) {
            for x in [
                node.threshold,
                f32::from_bits(node.threshold.to_bits() - 1),
                f32::from_bits(node.threshold.to_bits() + 1),
            ] {
                let mut row = data.row(3).to_vec();
                row[node.feature as usize] = x;
                rows.extend(row);
            }
        }
        for special in [
            [f32::NAN, 0.5, 1.0, 0.0],
            [0.5, f32::NAN, 1.0, 0.0],
            [f32::NAN, f32::NAN, f32::NAN, f32::NAN],
            [f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30],
            [0.0, -0.0, 0.0, 0.0],
        ] {
            rows.extend(special);
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
        let labels = out[0].try_as_plain_ram().unwrap();
        let labels = labels.as_slice::<i64>().unwrap();
        let probs = out[1].try_as_plain_ram().unwrap();
        let probs = probs.as_slice::<f32>().unwrap();
        assert_eq!(probs.len(), 2 * n);
        for (i, e) in expected.iter().enumerate() {
            let got = probs[2 * i + 1];
            assert!((got - e).abs() <= 1e-5, "row {i}: tract {got} vs rust {e}");
            // tract's convention for class-1 leaves: column 0 is σ(base_values[0]) = σ(0) = 0.5 and
            // the label is 1 exactly when P > 0.5.
            assert!(
                (probs[2 * i] - 0.5).abs() <= 1e-6,
                "row {i}: {}",
                probs[2 * i]
            );
            if (e - 0.5).abs() > 1e-5 {
                assert_eq!(labels[i], i64::from(*e > 0.5), "row {i}: p {e}");
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let data = xor(1, 200);
        let bad = [
            TreeConfig {
                iterations: 0,
                ..TreeConfig::default()
            },
            TreeConfig {
                learning_rate: 0.0,
                ..TreeConfig::default()
            },
            TreeConfig {
                learning_rate: f32::NAN,
                ..TreeConfig::default()
            },
            TreeConfig {
                max_depth: 0,
                ..TreeConfig::default()
            },
            TreeConfig {
                l2: -1.0,
                ..TreeConfig::default()
            },
            TreeConfig {
                nbins: 1,
                ..TreeConfig::default()
            },
        ];
        for config in bad {
            assert!(
                GradientBoostedTrees::fit(&data, &config).is_err(),
                "{config:?}"
            );
        }
        let names = data.names().to_vec();
        let one_class = Dataset::new(names.clone(), vec![0.0; 8], vec![true; 2], vec![1.0; 2]);
        assert!(GradientBoostedTrees::fit(&one_class.unwrap(), &small_config()).is_err());
        // Negatives present but with zero weight: still one class.
        let zero = Dataset::new(
            names.clone(),
            vec![0.0; 8],
            vec![true, false],
            vec![1.0, 0.0],
        );
        assert!(GradientBoostedTrees::fit(&zero.unwrap(), &small_config()).is_err());
        let empty = Dataset::new(names.clone(), vec![], vec![], vec![]).unwrap();
        assert!(GradientBoostedTrees::fit(&empty, &small_config()).is_err());

        let model = GradientBoostedTrees::fit(&data, &small_config()).unwrap();
        assert!(model.predict(&[1.0, 2.0, 3.0]).is_err());
        assert_eq!(model.predict(&[]).unwrap(), Vec::<f32>::new());
        let other = Dataset::new(
            vec!["a".into(), "b".into(), "c".into(), "d".into()],
            vec![0.0; 4],
            vec![true],
            vec![1.0],
        )
        .unwrap();
        assert!(model.score(&other).is_err());
    }
}
