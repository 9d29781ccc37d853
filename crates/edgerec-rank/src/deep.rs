//! The deep ranker: embedding bags over the sparse ids, the standardised dense vector and a
//! ReLU network, trained in candle and exported as ONNX under the device's input contract
//! `edgerec-ranker/1` ([`edgerec::ranker`]).
//!
//! # Model
//!
//! ```text
//! bag_F   = Σ_k weight[F, k] · table_F[id[F, k]]            for F in movie, genres, actors,
//!                                                             directors, tags, language,
//!                                                             history, search   ([dim] each)
//! affinity = bag_movie · bag_history                          (one number)
//! z       = (dense − mean) / scale                            ([D])
//! x       = [bag_movie, …, bag_search, affinity, z]
//! p_watch = σ(W3 · relu(W2 · relu(W1 · x + b1) + b2) + b3)
//! ```
//!
//! `movie` and `history` share one table of titles: a title's vector is trained both when it
//! is the candidate and when it is in a user's history, so titles that are mostly watched
//! (rarely shown as candidates) or mostly shown still get a useful vector, and the explicit
//! dot product `affinity` — the two-tower model's "is this candidate like what the user
//! watched" — has both sides in one space. The other fields have their own tables. Row 0 of
//! every table is the unknown / padding row. Rows never seen in the training data are set to
//! row 0 after training, so an id the model never learnt scores as unknown instead of as its
//! random initial vector.
//!
//! The bags' ids and weights come from [`RankerContract::assemble`], the function the device
//! runs, so training and serving cannot build different inputs: ids at or above a table's rows
//! become 0, real entries weigh `1/n`, padding 0.
//!
//! # Training
//!
//! Weighted logistic loss (the examples' `weight`), Adam (candle's `AdamW` with no weight
//! decay), mini-batches in a seeded shuffled order, seeded initialisation: the same data,
//! config and seed give the same model (candle runs on the calling thread when
//! `CANDLE_NUM_THREADS=1`, as the CLI sets). Early stopping: the newest
//! [`DeepConfig::holdout`] share of the training examples (by time) is held out; after each
//! epoch its weighted log-loss is measured, and the weights of the best epoch are kept once
//! [`DeepConfig::patience`] epochs pass without improvement. Holding out the newest examples of
//! the *training* window (rather than stopping on the validation window) keeps each fold's
//! evaluation honest.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use edgerec::features::FeatureVector;
use edgerec::ranker::{
    Bag, BagField, CONTRACT, MAX_HISTORY, MAX_SEARCH, RankerBatch, RankerContract, RankerRow,
};
use edgerec_onnx::{self as onnx, Dim, ElemType, GraphBuilder, attr_int};
use serde::{Deserialize, Serialize};

use crate::{Dataset, Error, Examples, META_DENSE, META_RANKER, Result, log_loss};
use edgerec::rng::SplitMix64;

/// The value of [`META_RANKER`] for this model and format version.
pub const DEEP_KIND: &str = "deep/1";
/// Metadata key of the input contract's version ([`CONTRACT`]).
pub const META_CONTRACT: &str = "edgerec.contract";
/// Metadata key of the bag inputs: comma-joined `field:rows:len`, in contract order.
pub const META_BAGS: &str = "edgerec.bags";
/// Metadata key of the search vocabulary (token `i` has id `i + 1`), newline-joined; present
/// when the model reads the `search` bag.
pub const META_SEARCH_TOKENS: &str = "edgerec.search_tokens";
/// Name of the output: P(watch), float32 `[batch, 1]`.
pub const OUTPUT: &str = "p_watch";

/// Rows per scoring pass (bounds the memory of a forward pass).
const SCORE_CHUNK: usize = 8192;

/// The fixed input length `L` of each bag field: one id for `movie` and `language`, the
/// pipeline's (and the device's) maxima for `history` and `search`, and lengths covering the
/// titles' lists for the others (longer lists are cut by the assembler).
pub fn bag_len(field: BagField) -> u32 {
    match field {
        BagField::Movie | BagField::Language => 1,
        BagField::Genres => 8,
        BagField::Actors => 16,
        BagField::Directors => 4,
        BagField::Tags => 16,
        BagField::History => MAX_HISTORY as u32,
        BagField::Search => MAX_SEARCH as u32,
    }
}

/// The embedding table a bag field reads (`movie` and `history` share the titles' table).
fn table_of(field: BagField) -> usize {
    match field {
        BagField::Movie | BagField::History => 0,
        BagField::Genres => 1,
        BagField::Actors => 2,
        BagField::Directors => 3,
        BagField::Tags => 4,
        BagField::Language => 5,
        BagField::Search => 6,
    }
}

/// Number of embedding tables.
const TABLES: usize = 7;

/// Names of the tables' ONNX initialisers.
const TABLE_NAMES: [&str; TABLES] = [
    "titles_table",
    "genres_table",
    "actors_table",
    "directors_table",
    "tags_table",
    "language_table",
    "search_table",
];

/// Settings of [`DeepRanker::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeepConfig {
    /// Width of every embedding.
    pub dim: usize,
    /// Widths of the two hidden ReLU layers.
    pub hidden: [usize; 2],
    /// Adam's step size.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on every weight; 0 is Adam.
    pub weight_decay: f64,
    /// Examples per step.
    pub batch_size: usize,
    /// Most passes over the training examples.
    pub max_epochs: usize,
    /// Stop after this many epochs without a better holdout loss.
    pub patience: usize,
    /// Share of the training examples (the newest by time) held out for early stopping;
    /// 0 trains exactly `max_epochs` epochs on everything.
    pub holdout: f64,
    /// Seed of the initialisation and the shuffles.
    pub seed: u64,
}

impl Default for DeepConfig {
    fn default() -> DeepConfig {
        DeepConfig {
            dim: 16,
            hidden: [64, 32],
            learning_rate: 2e-3,
            weight_decay: 0.0,
            batch_size: 512,
            max_epochs: 8,
            patience: 2,
            holdout: 0.15,
            seed: 1,
        }
    }
}

/// One epoch of a fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Mean weighted training loss over the epoch's steps.
    pub train_loss: f64,
    /// Weighted log-loss on the holdout after the epoch (`None` without a holdout).
    pub holdout_loss: Option<f64>,
}

/// All weights. Linear layers are `[in, out]` (`x · W + b`, ONNX `Gemm` without transposes).
#[derive(Debug, Clone)]
struct Params {
    tables: Vec<Tensor>,
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
}

impl Params {
    fn init(
        rng: &mut SplitMix64,
        rows: &[usize; TABLES],
        input: usize,
        c: &DeepConfig,
    ) -> Result<Params> {
        let cpu = &Device::Cpu;
        let mut tables = Vec::with_capacity(TABLES);
        for &r in rows {
            let data: Vec<f32> = (0..r * c.dim)
                .map(|_| (rng.normal() * 0.1) as f32)
                .collect();
            tables.push(Tensor::from_vec(data, (r, c.dim), cpu)?);
        }
        let sizes = [input, c.hidden[0], c.hidden[1], 1];
        let mut weights = Vec::with_capacity(3);
        let mut biases = Vec::with_capacity(3);
        for l in 0..3 {
            let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
            // He-uniform for the ReLU layers, Glorot-uniform for the logit.
            let bound = if l < 2 {
                (6.0 / fan_in as f64).sqrt()
            } else {
                (6.0 / (fan_in + fan_out) as f64).sqrt()
            };
            let data: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                .collect();
            weights.push(Tensor::from_vec(data, (fan_in, fan_out), cpu)?);
            biases.push(Tensor::zeros(fan_out, DType::F32, cpu)?);
        }
        Ok(Params {
            tables,
            weights,
            biases,
        })
    }

    fn all(&self) -> impl Iterator<Item = &Tensor> {
        self.tables.iter().chain(&self.weights).chain(&self.biases)
    }

    /// Trainable variables and the `Params` viewing them.
    fn into_vars(self) -> Result<(Vec<Var>, Params)> {
        let vars: Vec<Var> = self.all().map(Var::from_tensor).collect::<Result<_, _>>()?;
        let t = |i: usize| vars[i].as_tensor().clone();
        let params = Params {
            tables: (0..TABLES).map(t).collect(),
            weights: (TABLES..TABLES + 3).map(t).collect(),
            biases: (TABLES + 3..TABLES + 6).map(t).collect(),
        };
        Ok((vars, params))
    }

    /// A copy detached from the variables.
    fn frozen(&self) -> Result<Params> {
        let f = |ts: &[Tensor]| -> Result<Vec<Tensor>> {
            ts.iter()
                .map(|t| Ok(t.detach().copy()?))
                .collect::<Result<_>>()
        };
        Ok(Params {
            tables: f(&self.tables)?,
            weights: f(&self.weights)?,
            biases: f(&self.biases)?,
        })
    }
}

/// The deep ranker: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DeepRanker {
    names: Vec<String>,
    mean: Vec<f32>,
    scale: Vec<f32>,
    bags: Vec<Bag>,
    search_vocab: Vec<String>,
    params: Params,
    config: DeepConfig,
    epochs: Vec<EpochLog>,
    best_epoch: usize,
}

/// Per example: row `i` of a [`RankerBatch`]'s bags, for the forward pass.
fn forward(
    p: &Params,
    bags: &[Bag],
    batch: &RankerBatch,
    dense: &[f32],
    d: usize,
) -> Result<Tensor> {
    let n = batch.rows;
    let mut parts = Vec::with_capacity(bags.len() + 2);
    let mut movie = None;
    let mut history = None;
    for (bag, t) in bags.iter().zip(&batch.bags) {
        let ids: Vec<u32> = t.ids.iter().map(|&i| i as u32).collect();
        let table = &p.tables[table_of(bag.field)];
        let pooled = edgerec_twotower::embedding_bag(table, &ids, &t.weights, n, t.len)?;
        match bag.field {
            BagField::Movie => movie = Some(pooled.clone()),
            BagField::History => history = Some(pooled.clone()),
            _ => {}
        }
        parts.push(pooled);
    }
    let (Some(movie), Some(history)) = (movie, history) else {
        return Err(Error::Data(
            "the model needs the movie and history bags".into(),
        ));
    };
    parts.push((movie * history)?.sum_keepdim(1)?);
    if d > 0 {
        parts.push(Tensor::from_slice(dense, (n, d), &Device::Cpu)?);
    }
    let mut x = Tensor::cat(&parts, 1)?;
    for l in 0..3 {
        x = x.matmul(&p.weights[l])?.broadcast_add(&p.biases[l])?;
        if l < 2 {
            x = x.relu()?;
        }
    }
    Ok(x)
}

/// Weighted logistic loss of logits `z` `[n, 1]`: `Σ wᵢ (softplus(zᵢ) − yᵢ zᵢ) / norm`.
fn weighted_bce(z: &Tensor, y: &[f32], w: &[f32], norm: f64) -> Result<Tensor> {
    let n = y.len();
    let cpu = &Device::Cpu;
    let y = Tensor::from_slice(y, (n, 1), cpu)?;
    let w = Tensor::from_slice(w, (n, 1), cpu)?;
    // softplus(z) = relu(z) + ln(1 + e^−|z|), stable for any z.
    let softplus = (z.relu()? + z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    let loss = (softplus - (z * y)?)?;
    Ok(((loss * w)?.sum_all()? / norm)?)
}

/// Weighted mean and standard deviation of the dense features over `rows` (`scale` 1 for a
/// feature constant in those rows), in the logistic regression's convention.
fn standardisation(examples: &Examples, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let data = &examples.data;
    let d = data.n_features();
    let mut total = 0.0f64;
    let mut mean = vec![0.0f64; d];
    for &i in rows {
        let w = f64::from(data.weights()[i]);
        total += w;
        for (m, &x) in mean.iter_mut().zip(data.row(i)) {
            *m += w * f64::from(x);
        }
    }
    let total = total.max(f64::MIN_POSITIVE);
    mean.iter_mut().for_each(|m| *m /= total);
    let mut var = vec![0.0f64; d];
    for &i in rows {
        let w = f64::from(data.weights()[i]);
        for ((v, &x), m) in var.iter_mut().zip(data.row(i)).zip(&mean) {
            *v += w * (f64::from(x) - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .zip(&mean)
        .map(|(v, m)| {
            let s = (v / total).sqrt();
            if s <= 1e-9 * (1.0 + m.abs()) {
                1.0
            } else {
                s as f32
            }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

/// `(x − mean) / scale` in `f32`, in the ONNX graph's order of operations (`Sub`, then `Div`).
fn standardise(dense: &[f32], mean: &[f32], scale: &[f32]) -> Vec<f32> {
    let d = mean.len();
    dense
        .iter()
        .enumerate()
        .map(|(k, &x)| (x - mean[k % d]) / scale[k % d])
        .collect()
}

/// The bags the model reads, with table rows from the largest id in any example (so every
/// fold's model has the same shape) and the lengths of [`bag_len`]. The `search` bag is left
/// out when there is no search vocabulary (e.g. MovieLens).
fn bags_for(examples: &Examples) -> Result<Vec<Bag>> {
    let sparse = examples.sparse.as_ref().ok_or_else(no_sparse)?;
    let mut max = [0u32; TABLES];
    let mut see = |field: BagField, ids: &[u32]| {
        let t = &mut max[table_of(field)];
        *t = ids.iter().copied().fold(*t, u32::max);
    };
    for (i, f) in sparse.features.iter().enumerate() {
        see(BagField::Movie, &[f.movie]);
        see(BagField::Genres, &f.genres);
        see(BagField::Actors, &f.actors);
        see(BagField::Directors, &f.directors);
        see(BagField::Tags, &f.tags);
        see(BagField::Language, &[f.language]);
        see(BagField::History, &sparse.history[i]);
    }
    let vocab = examples.search_tokens.len() as u32;
    if let Some(&id) = sparse.search.iter().flatten().find(|&&id| id > vocab) {
        return Err(Error::Data(format!(
            "search token id {id} but features.json lists {vocab} search tokens"
        )));
    }
    max[table_of(BagField::Search)] = vocab;
    Ok(BagField::ALL
        .into_iter()
        .filter(|&f| f != BagField::Search || vocab > 0)
        .map(|field| Bag {
            field,
            rows: max[table_of(field)].saturating_add(1),
            len: bag_len(field),
        })
        .collect())
}

fn no_sparse() -> Error {
    Error::Data(
        "the examples have no sparse columns (movie, genres, …, history, search): rerun the \
         pipeline"
            .into(),
    )
}

fn contract_for(names: &[String], bags: &[Bag], search_vocab: &[String]) -> RankerContract {
    RankerContract {
        kind: DEEP_KIND.into(),
        dense: names.to_vec(),
        bags: bags.to_vec(),
        search_vocab: search_vocab.to_vec(),
        output: OUTPUT.into(),
        column: 0,
    }
}

/// The contract's tensors for `rows` of `examples`, built by the device's assembler.
pub(crate) fn assemble(
    contract: &RankerContract,
    examples: &Examples,
    rows: &[usize],
) -> Result<RankerBatch> {
    let sparse = examples.sparse.as_ref().ok_or_else(no_sparse)?;
    let features: Vec<FeatureVector> = rows
        .iter()
        .map(|&i| FeatureVector {
            dense: examples.data.row(i).to_vec(),
            sparse: sparse.features[i].clone(),
        })
        .collect();
    let ranker_rows: Vec<RankerRow> = rows
        .iter()
        .zip(&features)
        .map(|(&i, features)| RankerRow {
            features,
            history: &sparse.history[i],
            search: &sparse.search[i],
        })
        .collect();
    contract
        .assemble(&ranker_rows)
        .map_err(|e| Error::Data(format!("assembling the ranker's inputs: {e}")))
}

/// Splits `rows` into the rows to fit (sorted) and the held-out rows for early stopping: the
/// newest `share` of them by `time` (ties by row), rounded up, at most half.
fn split_holdout(time: &[i64], rows: &[usize], share: f64) -> (Vec<usize>, Vec<usize>) {
    let mut by_time = rows.to_vec();
    by_time.sort_by_key(|&i| (time[i], i));
    let n_holdout = if share > 0.0 {
        ((rows.len() as f64 * share).ceil() as usize).min(rows.len() / 2)
    } else {
        0
    };
    let (fit_rows, holdout) = by_time.split_at(rows.len() - n_holdout);
    let mut fit_rows = fit_rows.to_vec();
    fit_rows.sort_unstable();
    (fit_rows, holdout.to_vec())
}

/// The mean example weight of `rows`; errors if they have no positive weight.
fn mean_weight(data: &Dataset, rows: &[usize]) -> Result<f64> {
    let total: f64 = rows.iter().map(|&i| f64::from(data.weights()[i])).sum();
    if rows.is_empty() || total <= 0.0 {
        return Err(Error::Data(
            "no training examples of positive weight".into(),
        ));
    }
    Ok(total / rows.len() as f64)
}

/// Marks in `seen` (per table) the rows that the real (non-padding) entries of `batch` read.
fn mark_seen(seen: &mut [Vec<bool>], bags: &[Bag], batch: &RankerBatch) {
    for (bag, t) in bags.iter().zip(&batch.bags) {
        let s = &mut seen[table_of(bag.field)];
        for (&id, &w) in t.ids.iter().zip(&t.weights) {
            if w != 0.0 {
                s[id as usize] = true;
            }
        }
    }
}

/// The state of a fit across its steps: the trainable weights, their optimiser and the table
/// rows the training examples use.
struct Training<'a> {
    examples: &'a Examples,
    contract: RankerContract,
    /// Views of the optimiser's variables.
    params: Params,
    optimizer: AdamW,
    /// Mean weight of the fitting rows: a batch's loss is divided by it times the batch size.
    mean_weight: f64,
    /// Per table, whether some training example reads each row (filled in epoch 0).
    seen: Vec<Vec<bool>>,
}

impl Training<'_> {
    /// One pass over `order` in batches of `model`'s batch size: the mean loss of its steps.
    fn epoch(&mut self, model: &DeepRanker, order: &[usize], epoch: usize) -> Result<f64> {
        let mut loss_sum = 0.0f64;
        let mut steps = 0usize;
        for chunk in order.chunks(model.config.batch_size) {
            loss_sum += self.step(model, chunk, epoch)?;
            steps += 1;
        }
        Ok(loss_sum / steps.max(1) as f64)
    }

    /// One optimiser step on the examples `chunk` (`model` gives the bags and the
    /// standardisation): the batch's loss. Errors if the loss is not finite.
    fn step(&mut self, model: &DeepRanker, chunk: &[usize], epoch: usize) -> Result<f64> {
        let data = &self.examples.data;
        let batch = assemble(&self.contract, self.examples, chunk)?;
        if epoch == 0 {
            mark_seen(&mut self.seen, &model.bags, &batch);
        }
        let dense = standardise(&batch.dense, &model.mean, &model.scale);
        let z = forward(&self.params, &model.bags, &batch, &dense, model.names.len())?;
        let y: Vec<f32> = chunk
            .iter()
            .map(|&i| if data.labels()[i] { 1.0 } else { 0.0 })
            .collect();
        let w: Vec<f32> = chunk.iter().map(|&i| data.weights()[i]).collect();
        let loss = weighted_bce(&z, &y, &w, self.mean_weight * chunk.len() as f64)?;
        self.optimizer.backward_step(&loss)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::Fit(format!("the loss diverged in epoch {epoch}")));
        }
        Ok(value)
    }
}

impl DeepRanker {
    /// Trains on the examples `rows` of `examples` (which must carry the sparse columns): see
    /// the [module docs](self). Errors on empty rows, rows without positive weight, a bad
    /// config, or examples without sparse columns.
    ///
    /// Cost per epoch: O(n · (Σ L · dim + input · hidden₀ + hidden₀ · hidden₁)).
    pub fn fit(examples: &Examples, rows: &[usize], config: &DeepConfig) -> Result<DeepRanker> {
        validate(config)?;
        let sparse = examples.sparse.as_ref().ok_or_else(no_sparse)?;
        if let Some(&i) = rows.iter().find(|&&i| i >= examples.data.len()) {
            return Err(Error::Data(format!(
                "row {i} of {} examples",
                examples.data.len()
            )));
        }
        let (fit_rows, holdout) = split_holdout(&sparse.time, rows, config.holdout);
        let mean_weight = mean_weight(&examples.data, &fit_rows)?;

        let names = examples.data.names().to_vec();
        let (mean, scale) = standardisation(examples, &fit_rows);
        let bags = bags_for(examples)?;
        let search_vocab = if bags.iter().any(|b| b.field == BagField::Search) {
            examples.search_tokens.clone()
        } else {
            Vec::new()
        };
        let contract = contract_for(&names, &bags, &search_vocab);
        let mut rows_per_table = [1usize; TABLES];
        for b in &bags {
            rows_per_table[table_of(b.field)] = b.rows as usize;
        }
        let input = bags.len() * config.dim + 1 + names.len();

        let mut rng = SplitMix64::new(config.seed);
        let (vars, params) = Params::init(&mut rng, &rows_per_table, input, config)?.into_vars()?;
        let optimizer = AdamW::new(
            vars,
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: config.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let mut model = DeepRanker {
            names,
            mean,
            scale,
            bags,
            search_vocab,
            params: params.frozen()?,
            config: *config,
            epochs: Vec::new(),
            best_epoch: 0,
        };
        let mut training = Training {
            examples,
            contract,
            params,
            optimizer,
            mean_weight,
            seen: rows_per_table.iter().map(|&r| vec![false; r]).collect(),
        };
        let mut order = fit_rows;
        model.train(&mut training, &mut rng, &mut order, &holdout)?;
        model.unseen_rows_as_unknown(&training.seen)?;
        Ok(model)
    }

    /// The epochs of a fit: each shuffles `order` with `rng`, steps through it, then logs the
    /// holdout loss and keeps the weights if they are the best so far; stops after
    /// `config.max_epochs` epochs or `config.patience` epochs without improvement.
    fn train(
        &mut self,
        training: &mut Training<'_>,
        rng: &mut SplitMix64,
        order: &mut [usize],
        holdout: &[usize],
    ) -> Result<()> {
        let mut best = f64::INFINITY;
        for epoch in 0..self.config.max_epochs {
            rng.shuffle(order);
            let train_loss = training.epoch(self, order, epoch)?;
            let current = DeepRanker {
                params: training.params.frozen()?,
                ..self.clone()
            };
            let holdout_loss = current.holdout_loss(training.examples, holdout)?;
            self.epochs.push(EpochLog {
                train_loss,
                holdout_loss,
            });
            let value = holdout_loss.unwrap_or(f64::NEG_INFINITY);
            if value < best || holdout_loss.is_none() {
                best = value;
                self.params = current.params;
                self.best_epoch = epoch;
            } else if epoch - self.best_epoch >= self.config.patience {
                break;
            }
        }
        Ok(())
    }

    /// The weighted log-loss on the examples `holdout` (`None` when there are none).
    fn holdout_loss(&self, examples: &Examples, holdout: &[usize]) -> Result<Option<f64>> {
        if holdout.is_empty() {
            return Ok(None);
        }
        let data = &examples.data;
        let p = self.score(examples, holdout)?;
        let labels: Vec<bool> = holdout.iter().map(|&i| data.labels()[i]).collect();
        let weights: Vec<f32> = holdout.iter().map(|&i| data.weights()[i]).collect();
        Ok(log_loss(&p, &labels, Some(&weights)))
    }

    /// Rows no training example used take row 0's vector (see the module docs).
    fn unseen_rows_as_unknown(&mut self, seen: &[Vec<bool>]) -> Result<()> {
        for (table, seen) in self.params.tables.iter_mut().zip(seen) {
            let (rows, dim) = table.dims2()?;
            let mut data = table.flatten_all()?.to_vec1::<f32>()?;
            let unknown = data[..dim].to_vec();
            for r in 1..rows {
                if !seen[r] {
                    data[r * dim..(r + 1) * dim].copy_from_slice(&unknown);
                }
            }
            *table = Tensor::from_vec(data, (rows, dim), &Device::Cpu)?;
        }
        Ok(())
    }

    /// The input contract the exported model follows; the device assembles its inputs with it.
    pub fn contract(&self) -> RankerContract {
        contract_for(&self.names, &self.bags, &self.search_vocab)
    }

    /// Dense feature names, in input order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The bag inputs, in contract order.
    pub fn bags(&self) -> &[Bag] {
        &self.bags
    }

    /// The settings of the fit.
    pub fn config(&self) -> &DeepConfig {
        &self.config
    }

    /// Every epoch run, in order.
    pub fn epochs(&self) -> &[EpochLog] {
        &self.epochs
    }

    /// The epoch (0-based) whose weights the model keeps.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// Number of weights (tables and layers).
    pub fn n_params(&self) -> usize {
        self.params.all().map(|t| t.elem_count()).sum()
    }

    /// P(watch) of every row of an assembled batch (the contract's tensors), computed as the
    /// exported graph does. Errors if the batch does not match the contract's shapes.
    pub fn predict(&self, batch: &RankerBatch) -> Result<Vec<f32>> {
        let d = self.names.len();
        if batch.dense.len() != batch.rows * d || batch.bags.len() != self.bags.len() {
            return Err(Error::Data(format!(
                "a batch of {} rows with {} dense values and {} bags; the model reads {d} \
                 dense features and {} bags",
                batch.rows,
                batch.dense.len(),
                batch.bags.len(),
                self.bags.len()
            )));
        }
        for (b, t) in self.bags.iter().zip(&batch.bags) {
            let len = b.len as usize;
            if t.field != b.field
                || t.len != len
                || t.ids.len() != batch.rows * len
                || t.weights.len() != batch.rows * len
            {
                return Err(Error::Data(format!(
                    "bag {} of the batch does not match the contract",
                    b.field
                )));
            }
            if let Some(&id) = t.ids.iter().find(|&&id| id < 0 || id >= i64::from(b.rows)) {
                return Err(Error::Data(format!(
                    "bag {}: id {id} outside its {} rows",
                    b.field, b.rows
                )));
            }
        }
        if batch.rows == 0 {
            return Ok(Vec::new());
        }
        let dense = standardise(&batch.dense, &self.mean, &self.scale);
        let z = forward(&self.params, &self.bags, batch, &dense, d)?;
        let p = candle_nn::ops::sigmoid(&z)?;
        Ok(p.flatten_all()?.to_vec1::<f32>()?)
    }

    /// P(watch) of the examples `rows` (in chunks).
    pub fn score(&self, examples: &Examples, rows: &[usize]) -> Result<Vec<f32>> {
        if examples.data.names() != self.names.as_slice() {
            return Err(Error::Data(
                "the examples' features are not the model's".into(),
            ));
        }
        let contract = self.contract();
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(SCORE_CHUNK) {
            out.extend(self.predict(&assemble(&contract, examples, chunk)?)?);
        }
        Ok(out)
    }

    /// The model as ONNX bytes (IR 8, opset 13) following the contract `edgerec-ranker/1`:
    /// inputs `dense` float32 `[batch, D]` (raw; the graph standardises) and, per bag field
    /// `F`, `F_ids` int64 `[batch, L_F]` and `F_weights` float32 `[batch, L_F]`; output
    /// `p_watch` float32 `[batch, 1]`. Ids outside `0..rows` are read as 0 inside the graph too
    /// (the assembler already maps them). Metadata: [`META_CONTRACT`], [`META_RANKER`] =
    /// [`DEEP_KIND`], [`META_DENSE`] (comma-joined names), [`META_BAGS`] (`field:rows:len`)
    /// and, with a `search` bag, [`META_SEARCH_TOKENS`] (newline-joined).
    pub fn to_onnx(&self) -> Result<Vec<u8>> {
        self.check_separators()?;
        let mut g = GraphBuilder::new("deep_ranker");
        self.add_inputs(&mut g)?;
        self.add_initializers(&mut g)?;
        let mut parts: Vec<String> = Vec::new();
        for b in &self.bags {
            parts.push(add_bag(&mut g, b)?);
        }
        self.add_network(&mut g, parts)?;
        let metadata = self.metadata();
        let meta: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let model = onnx::model(g.finish()?, "edgerec-rank", &meta);
        onnx::check_model(&model)?;
        Ok(onnx::encode(&model))
    }

    /// Errors if a feature name contains a comma or a search token a newline (the metadata's
    /// separators).
    fn check_separators(&self) -> Result<()> {
        if let Some(n) = self.names.iter().find(|n| n.contains(',')) {
            return Err(Error::Data(format!(
                "feature name {n:?} contains a comma (the metadata separator)"
            )));
        }
        if let Some(t) = self.search_vocab.iter().find(|t| t.contains('\n')) {
            return Err(Error::Data(format!(
                "search token {t:?} contains a newline (the metadata separator)"
            )));
        }
        Ok(())
    }

    /// The graph's inputs: `dense`, then `F_ids` and `F_weights` of each bag.
    fn add_inputs(&self, g: &mut GraphBuilder) -> Result<()> {
        let batch = || Dim::symbolic("batch");
        g.input(
            "dense",
            ElemType::F32,
            &[batch(), Dim::Fixed(self.names.len())],
        )?;
        for b in &self.bags {
            let len = Dim::Fixed(b.len as usize);
            g.input(&b.field.ids_input(), ElemType::I64, &[batch(), len.clone()])?;
            g.input(&b.field.weights_input(), ElemType::F32, &[batch(), len])?;
        }
        Ok(())
    }

    /// The weights as initialisers (the tables some bag reads, the standardisation, the
    /// layers), then the constants the nodes use.
    fn add_initializers(&self, g: &mut GraphBuilder) -> Result<()> {
        let d = self.names.len();
        let c = &self.config;
        for (t, name) in self.params.tables.iter().zip(TABLE_NAMES) {
            let (rows, dim) = t.dims2()?;
            if self
                .bags
                .iter()
                .any(|b| TABLE_NAMES[table_of(b.field)] == name)
            {
                g.initializer_f32(name, &[rows, dim], &t.flatten_all()?.to_vec1::<f32>()?)?;
            }
        }
        g.initializer_f32("mean", &[d], &self.mean)?;
        g.initializer_f32("scale", &[d], &self.scale)?;
        let sizes = [self.bags.len() * c.dim + 1 + d, c.hidden[0], c.hidden[1], 1];
        for l in 0..3 {
            let w = self.params.weights[l].flatten_all()?.to_vec1::<f32>()?;
            g.initializer_f32(&format!("w{l}"), &[sizes[l], sizes[l + 1]], &w)?;
            let b = self.params.biases[l].to_vec1::<f32>()?;
            g.initializer_f32(&format!("b{l}"), &[sizes[l + 1]], &b)?;
        }
        g.initializer_i64("axes_1", &[1], &[1])?;
        g.initializer_i64("axes_2", &[1], &[2])?;
        g.initializer_i64("zero_id", &[], &[0])?;
        g.initializer_i64("minus_one", &[], &[-1])?;
        Ok(())
    }

    /// From the pooled bags (`parts`, in contract order) to the output: the `affinity` of the
    /// movie and history bags, the standardised dense features, then the ReLU network and the
    /// sigmoid.
    fn add_network(&self, g: &mut GraphBuilder, mut parts: Vec<String>) -> Result<()> {
        g.node(
            "Mul",
            &["movie_pooled", "history_pooled"],
            &["affinity_terms"],
            vec![],
        )?;
        g.node(
            "ReduceSum",
            &["affinity_terms", "axes_1"],
            &["affinity"],
            vec![attr_int("keepdims", 1)],
        )?;
        parts.push("affinity".into());
        if !self.names.is_empty() {
            g.node("Sub", &["dense", "mean"], &["centred"], vec![])?;
            g.node("Div", &["centred", "scale"], &["z"], vec![])?;
            parts.push("z".into());
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        g.node("Concat", &parts, &["x0"], vec![attr_int("axis", 1)])?;
        g.node("Gemm", &["x0", "w0", "b0"], &["h0_pre"], vec![])?;
        g.node("Relu", &["h0_pre"], &["x1"], vec![])?;
        g.node("Gemm", &["x1", "w1", "b1"], &["h1_pre"], vec![])?;
        g.node("Relu", &["h1_pre"], &["x2"], vec![])?;
        g.node("Gemm", &["x2", "w2", "b2"], &["logit"], vec![])?;
        g.node("Sigmoid", &["logit"], &[OUTPUT], vec![])?;
        g.output(
            OUTPUT,
            ElemType::F32,
            &[Dim::symbolic("batch"), Dim::Fixed(1)],
        )?;
        Ok(())
    }

    /// The model's metadata entries, in order (see [`DeepRanker::to_onnx`]).
    fn metadata(&self) -> Vec<(&'static str, String)> {
        let bags = self
            .bags
            .iter()
            .map(|b| format!("{}:{}:{}", b.field, b.rows, b.len))
            .collect::<Vec<_>>()
            .join(",");
        let mut meta = vec![
            (META_CONTRACT, CONTRACT.to_string()),
            (META_RANKER, DEEP_KIND.to_string()),
            (META_DENSE, self.names.join(",")),
            (META_BAGS, bags),
        ];
        if !self.search_vocab.is_empty() {
            meta.push((META_SEARCH_TOKENS, self.search_vocab.join("\n")));
        }
        meta
    }
}

/// The nodes pooling bag `b`: its ids outside `0..rows` mapped to 0, the table's rows gathered,
/// weighted and summed. Returns the name of the pooled `[batch, dim]` output, `F_pooled`.
fn add_bag(g: &mut GraphBuilder, b: &Bag) -> Result<String> {
    let f = b.field.as_str();
    let ids = b.field.ids_input();
    let rows = format!("{f}_rows");
    g.initializer_i64(&rows, &[], &[i64::from(b.rows)])?;
    // ids outside 0..rows → 0 (unknown), so Gather never reads outside the table.
    let (below, above, inside, safe) = (
        format!("{f}_below_rows"),
        format!("{f}_non_negative"),
        format!("{f}_inside"),
        format!("{f}_safe_ids"),
    );
    g.node("Less", &[&ids, &rows], &[&below], vec![])?;
    g.node("Greater", &[&ids, "minus_one"], &[&above], vec![])?;
    g.node("And", &[&below, &above], &[&inside], vec![])?;
    g.node("Where", &[&inside, &ids, "zero_id"], &[&safe], vec![])?;
    let (gathered, w3, weighted, pooled) = (
        format!("{f}_gathered"),
        format!("{f}_weights3"),
        format!("{f}_weighted"),
        format!("{f}_pooled"),
    );
    let table = TABLE_NAMES[table_of(b.field)];
    g.node(
        "Gather",
        &[table, &safe],
        &[&gathered],
        vec![attr_int("axis", 0)],
    )?;
    g.node(
        "Unsqueeze",
        &[&b.field.weights_input(), "axes_2"],
        &[&w3],
        vec![],
    )?;
    g.node("Mul", &[&gathered, &w3], &[&weighted], vec![])?;
    g.node(
        "ReduceSum",
        &[&weighted, "axes_1"],
        &[&pooled],
        vec![attr_int("keepdims", 0)],
    )?;
    Ok(pooled)
}

fn validate(c: &DeepConfig) -> Result<()> {
    let bad = |m: &str| Err(Error::Data(format!("deep ranker config: {m}")));
    if c.dim == 0 || c.hidden.contains(&0) {
        return bad("dim and hidden widths must be at least 1");
    }
    if c.batch_size == 0 || c.max_epochs == 0 {
        return bad("batch_size and max_epochs must be at least 1");
    }
    if !(c.learning_rate.is_finite() && c.learning_rate > 0.0) {
        return bad("learning_rate must be finite and positive");
    }
    if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
        return bad("weight_decay must be finite and non-negative");
    }
    if !(0.0..0.9).contains(&c.holdout) {
        return bad("holdout must be in [0, 0.9)");
    }
    Ok(())
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Error {
        Error::Fit(format!("candle: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use edgerec::features::SparseFeatures;
    use tract_onnx::prelude::Tensor;
    use tract_onnx::prelude::*;

    use super::*;
    use crate::{Dataset, Fold, SparseColumns, auc, permutation_importance};

    /// A world with a planted signal: 40 titles in 4 taste clusters (`movie % 4`); a user
    /// likes one cluster, watched 3–6 titles of it (the `history`) and sometimes searched for
    /// it. P(watch) = σ(3·[candidate in the user's cluster] − 2 + 0.5·x0); x1 is noise. The
    /// candidate's genre is its cluster, so the signal is an interaction between the history
    /// (or search) and the candidate.
    fn planted(seed: u64, n: usize) -> Examples {
        let mut rng = SplitMix64::new(seed);
        let (mut dense, mut labels, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        let mut sparse = SparseColumns::default();
        for i in 0..n {
            let taste = rng.below(4) as u32;
            let movie = 1 + rng.below(40) as u32;
            let history: Vec<u32> = (0..3 + rng.below(4))
                .map(|_| 1 + 4 * rng.below(10) as u32 + (taste + 3) % 4)
                .collect();
            let search = if rng.uniform() < 0.5 {
                vec![1 + taste]
            } else {
                vec![]
            };
            let (x0, x1) = (rng.normal() as f32, rng.normal() as f32 * 3.0 + 1.0);
            let like = (movie % 4 == (1 + (taste + 3) % 4) % 4) as u8 as f64;
            let eta = 3.0 * like - 2.0 + 0.5 * f64::from(x0);
            labels.push(rng.uniform() < 1.0 / (1.0 + (-eta).exp()));
            dense.extend([x0, x1]);
            weights.push(if i % 3 == 0 { 2.0 } else { 1.0 });
            sparse.time.push(i as i64);
            sparse.features.push(SparseFeatures {
                movie,
                genres: vec![1 + movie % 4],
                actors: vec![1 + movie % 7, 1 + (movie + 3) % 7],
                language: 1,
                ..Default::default()
            });
            sparse.history.push(history);
            sparse.search.push(search);
        }
        let fold_window = (0..n).map(|i| if i < n * 3 / 4 { -1 } else { 0 }).collect();
        Examples {
            data: Dataset::new(vec!["x0".into(), "x1".into()], dense, labels, weights).unwrap(),
            fold_window,
            folds: vec![Fold {
                index: 0,
                valid_start: (n * 3 / 4) as i64,
                valid_end: n as i64,
            }],
            sparse: Some(sparse),
            search_tokens: ["a", "b", "c", "d"].map(String::from).to_vec(),
        }
    }

    fn small() -> DeepConfig {
        DeepConfig {
            dim: 8,
            hidden: [24, 12],
            learning_rate: 5e-3,
            weight_decay: 0.0,
            batch_size: 128,
            max_epochs: 6,
            patience: 2,
            holdout: 0.15,
            seed: 3,
        }
    }

    fn weighted_loss(model: &DeepRanker, ex: &Examples, rows: &[usize]) -> f64 {
        let p = model.score(ex, rows).unwrap();
        let labels: Vec<bool> = rows.iter().map(|&i| ex.data.labels()[i]).collect();
        let weights: Vec<f32> = rows.iter().map(|&i| ex.data.weights()[i]).collect();
        log_loss(&p, &labels, Some(&weights)).unwrap()
    }

    #[test]
    fn learns_a_planted_interaction_and_ranks_its_inputs() {
        let ex = planted(11, 6000);
        let train: Vec<usize> = (0..4500).collect();
        let test: Vec<usize> = (4500..6000).collect();
        let model = DeepRanker::fit(&ex, &train, &small()).unwrap();
        let p = model.score(&ex, &test).unwrap();
        let labels: Vec<bool> = test.iter().map(|&i| ex.data.labels()[i]).collect();
        let a = auc(&p, &labels).unwrap();
        // The Bayes AUC of this world is about 0.83 (simulated); x0 alone gives about 0.6.
        assert!(a > 0.76, "seed 11: AUC {a}");
        let importance = permutation_importance(&model, &ex, &test, 1000, 5).unwrap();
        assert_eq!(importance.len(), 2 + model.bags().len());
        let rank = |n: &str| importance.iter().position(|i| i.name == n).unwrap();
        // The interaction's sides matter more than the noise feature.
        assert!(rank("history") < rank("x1"), "{importance:?}");
        assert!(
            rank("movie") < rank("x1") || rank("genres") < rank("x1"),
            "{importance:?}"
        );
        let x1 = &importance[rank("x1")];
        assert!(x1.log_loss_rise.unwrap().abs() < 0.02, "{x1:?}");
        assert!(
            importance[0].log_loss_rise.unwrap() > 0.05,
            "{importance:?}"
        );
    }

    #[test]
    fn fit_is_deterministic() {
        let ex = planted(2, 800);
        let rows: Vec<usize> = (0..800).collect();
        let c = DeepConfig {
            max_epochs: 2,
            ..small()
        };
        let a = DeepRanker::fit(&ex, &rows, &c).unwrap();
        let b = DeepRanker::fit(&ex, &rows, &c).unwrap();
        assert_eq!(a.epochs(), b.epochs());
        assert_eq!(a.score(&ex, &rows).unwrap(), b.score(&ex, &rows).unwrap());
        assert_eq!(a.to_onnx().unwrap(), b.to_onnx().unwrap());
        let other = DeepRanker::fit(&ex, &rows, &DeepConfig { seed: 4, ..c }).unwrap();
        assert_ne!(
            a.score(&ex, &rows).unwrap(),
            other.score(&ex, &rows).unwrap()
        );
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        // Few examples, a large step and many epochs: the holdout loss turns up.
        let ex = planted(5, 600);
        let rows: Vec<usize> = (0..600).collect();
        let c = DeepConfig {
            learning_rate: 0.03,
            batch_size: 32,
            max_epochs: 30,
            patience: 3,
            holdout: 0.25,
            ..small()
        };
        let model = DeepRanker::fit(&ex, &rows, &c).unwrap();
        let losses: Vec<f64> = model
            .epochs()
            .iter()
            .map(|e| e.holdout_loss.unwrap())
            .collect();
        let best = (0..losses.len())
            .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
            .unwrap();
        assert_eq!(model.best_epoch(), best, "{losses:?}");
        assert!(losses.len() < 30, "stopped early: {losses:?}");
        assert_eq!(losses.len(), best + 1 + c.patience, "{losses:?}");
        // The kept weights are the best epoch's: rescoring the holdout (the newest 150 rows)
        // gives its loss. Rows never seen in training moved to the unknown row afterwards,
        // and no holdout title is unseen here, so the loss is unchanged.
        let holdout: Vec<usize> = (450..600).collect();
        let again = weighted_loss(&model, &ex, &holdout);
        assert!((again - losses[best]).abs() < 1e-6, "{again} vs {losses:?}");
    }

    /// Runs the exported graph in tract on an assembled batch, optionally with raw ids.
    fn tract_scores(onnx_bytes: &[u8], batch: &RankerBatch, d: usize) -> Vec<f32> {
        let runnable = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx_bytes))
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let n = batch.rows;
        let mut inputs: TVec<TValue> = tvec!(
            Tensor::from(
                tract_ndarray::Array2::from_shape_vec((n, d), batch.dense.clone()).unwrap()
            )
            .into_tvalue()
        );
        for t in &batch.bags {
            let ids = tract_ndarray::Array2::from_shape_vec((n, t.len), t.ids.clone()).unwrap();
            let w = tract_ndarray::Array2::from_shape_vec((n, t.len), t.weights.clone()).unwrap();
            inputs.push(Tensor::from(ids).into_tvalue());
            inputs.push(Tensor::from(w).into_tvalue());
        }
        let out = runnable.run(inputs).unwrap();
        let got = out[0].try_as_plain_ram().unwrap();
        got.as_slice::<f32>().unwrap().to_vec()
    }

    #[test]
    fn onnx_matches_candle_in_tract() {
        let ex = planted(8, 1500);
        let rows: Vec<usize> = (0..1500).collect();
        let c = DeepConfig {
            max_epochs: 2,
            ..small()
        };
        let model = DeepRanker::fit(&ex, &rows, &c).unwrap();
        let bytes = model.to_onnx().unwrap();
        let decoded = onnx::decode(&bytes).unwrap();
        assert_eq!(onnx::metadata(&decoded, META_CONTRACT), Some(CONTRACT));
        assert_eq!(onnx::metadata(&decoded, META_RANKER), Some(DEEP_KIND));
        assert_eq!(onnx::metadata(&decoded, META_DENSE), Some("x0,x1"));
        assert_eq!(
            onnx::metadata(&decoded, META_BAGS),
            Some(
                "movie:41:1,genres:5:8,actors:8:16,directors:1:4,tags:1:16,language:2:1,history:41:50,search:5:20"
            )
        );
        assert_eq!(
            onnx::metadata(&decoded, META_SEARCH_TOKENS),
            Some("a\nb\nc\nd")
        );
        let contract = model.contract();
        contract.validate().unwrap();
        assert_eq!(contract.search_vocab, ["a", "b", "c", "d"]);

        // Real rows, then edge cases: every bag empty, ids beyond every table, a history
        // longer than its bag, extreme dense values.
        let mut fvs: Vec<(FeatureVector, Vec<u32>, Vec<u32>)> = rows[..30]
            .iter()
            .map(|&i| {
                let s = ex.sparse.as_ref().unwrap();
                (
                    FeatureVector {
                        dense: ex.data.row(i).to_vec(),
                        sparse: s.features[i].clone(),
                    },
                    s.history[i].clone(),
                    s.search[i].clone(),
                )
            })
            .collect();
        let empty = FeatureVector {
            dense: vec![0.0, 0.0],
            sparse: SparseFeatures::default(),
        };
        fvs.push((empty.clone(), vec![], vec![]));
        let beyond = FeatureVector {
            dense: vec![1e6, -1e6],
            sparse: SparseFeatures {
                movie: 999,
                genres: vec![77, 2],
                actors: vec![u32::MAX],
                directors: vec![5],
                tags: vec![1, 2, 3],
                language: 40,
                ..Default::default()
            },
        };
        fvs.push((beyond, (1..200).collect(), vec![9, 1, 1000]));
        fvs.push((
            FeatureVector {
                dense: vec![-3e30, f32::MIN_POSITIVE],
                ..empty
            },
            vec![3; 7],
            vec![],
        ));
        let ranker_rows: Vec<RankerRow> = fvs
            .iter()
            .map(|(f, h, s)| RankerRow {
                features: f,
                history: h,
                search: s,
            })
            .collect();
        let batch = contract.assemble(&ranker_rows).unwrap();
        let candle = model.predict(&batch).unwrap();
        let tract = tract_scores(&bytes, &batch, 2);
        assert_eq!(tract.len(), candle.len());
        for (i, (t, c)) in tract.iter().zip(&candle).enumerate() {
            assert!((t - c).abs() <= 1e-5, "row {i}: tract {t} vs candle {c}");
        }
        // The empty row is not the unknown row's score by accident: the bags matter.
        assert_ne!(candle[30], candle[0]);

        // The graph itself reads raw out-of-range (and negative) ids as 0, like the assembler.
        let mut raw = batch.clone();
        for t in &mut raw.bags {
            for (k, id) in t.ids.iter_mut().enumerate() {
                if *id == 0 && k % 2 == 0 {
                    *id = if k % 4 == 0 { 1 << 40 } else { -7 };
                }
            }
        }
        let tract_raw = tract_scores(&bytes, &raw, 2);
        for (i, (t, c)) in tract_raw.iter().zip(&candle).enumerate() {
            assert!((t - c).abs() <= 1e-5, "row {i}: raw ids {t} vs {c}");
        }
        assert!(
            model.predict(&raw).is_err(),
            "candle refuses unassembled ids"
        );

        // The device's runtime (the core's tract ranker, which checks the model against the
        // contract first) loads the export and scores the same rows.
        let device = edgerec::ranker::Ranker::load(&contract, &bytes).unwrap();
        let scored = device.score_rows(&ranker_rows).unwrap();
        for (i, (d, c)) in scored.iter().zip(&candle).enumerate() {
            assert!((d - c).abs() <= 1e-5, "row {i}: device {d} vs candle {c}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let ex = planted(1, 300);
        let rows: Vec<usize> = (0..300).collect();
        let dense_only = Examples {
            sparse: None,
            ..ex.clone()
        };
        let err = DeepRanker::fit(&dense_only, &rows, &small()).unwrap_err();
        assert!(err.to_string().contains("sparse columns"), "{err}");
        for bad in [
            DeepConfig { dim: 0, ..small() },
            DeepConfig {
                learning_rate: f64::NAN,
                ..small()
            },
            DeepConfig {
                batch_size: 0,
                ..small()
            },
            DeepConfig {
                holdout: 0.95,
                ..small()
            },
        ] {
            assert!(DeepRanker::fit(&ex, &rows, &bad).is_err(), "{bad:?}");
        }
        assert!(DeepRanker::fit(&ex, &[], &small()).is_err());
        assert!(DeepRanker::fit(&ex, &[300], &small()).is_err());
        let mut no_vocab = ex.clone();
        no_vocab.search_tokens.truncate(2);
        let err = DeepRanker::fit(&no_vocab, &rows, &small()).unwrap_err();
        assert!(err.to_string().contains("search token id"), "{err}");

        let c = DeepConfig {
            max_epochs: 1,
            ..small()
        };
        let model = DeepRanker::fit(&ex, &rows, &c).unwrap();
        let batch = assemble(&model.contract(), &ex, &[0, 1]).unwrap();
        let mut short = batch.clone();
        short.dense.pop();
        assert!(model.predict(&short).is_err());
        let mut fewer = batch.clone();
        fewer.bags.pop();
        assert!(model.predict(&fewer).is_err());
        let mut other_names = ex.clone();
        other_names.data = Dataset::new(
            vec!["y0".into(), "y1".into()],
            ex.data.dense().to_vec(),
            ex.data.labels().to_vec(),
            ex.data.weights().to_vec(),
        )
        .unwrap();
        assert!(model.score(&other_names, &[0]).is_err());
    }
}
