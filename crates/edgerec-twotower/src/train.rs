//! Validation, the training loop (in-batch softmax with log-Q correction) and the item export.

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::features::{self, pack_items, pack_users};
use crate::model::{Params, to_vec};
use crate::{Error, Shapes, TowerCatalog, TowerConfig, TowerExample, TowerExamples, TwoTower};
use edgerec::rng::SplitMix64;

/// Added to the logits of in-batch columns that repeat the row's positive item.
const MASKED: f32 = -1e9;

/// Items per item-tower pass when exporting the embeddings.
const EXPORT_CHUNK: usize = 4096;

fn validate_config(c: &TowerConfig) -> Result<(), Error> {
    let bad = |m: &str| Err(Error::InvalidConfig(m.to_string()));
    if c.dim == 0 {
        return bad("dim must be at least 1");
    }
    if c.hidden == 0 {
        return bad("hidden must be at least 1");
    }
    if c.batch_size == 0 {
        return bad("batch_size must be at least 1");
    }
    if !(c.learning_rate.is_finite() && c.learning_rate > 0.0) {
        return bad("learning_rate must be finite and positive");
    }
    if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
        return bad("weight_decay must be finite and non-negative");
    }
    if !(c.temperature.is_finite() && c.temperature > 0.0) {
        return bad("temperature must be finite and positive");
    }
    Ok(())
}

fn validate_catalog(d: &TowerCatalog) -> Result<(), Error> {
    let bad = |m: String| Err(Error::InvalidData(m));
    if d.n_items == 0 {
        return bad("n_items must be at least 1".into());
    }
    if d.n_items > u32::MAX as usize {
        return bad(format!("n_items {} does not fit item ids (u32)", d.n_items));
    }
    if d.item_tokens.len() != d.n_items {
        return bad(format!(
            "item_tokens has {} entries, n_items is {}",
            d.item_tokens.len(),
            d.n_items
        ));
    }
    for (item, tokens) in d.item_tokens.iter().enumerate() {
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= d.n_content_tokens) {
            return bad(format!(
                "item {item}: content token {t} out of range (n_content_tokens = {})",
                d.n_content_tokens
            ));
        }
    }
    Ok(())
}

fn validate_example(i: usize, e: &TowerExample, shapes: &Shapes) -> Result<(), Error> {
    let bad = |m: String| Err(Error::InvalidData(m));
    features::check_user(shapes, &e.history, &e.searches, &e.dense)
        .map_err(|m| Error::InvalidData(format!("example {i}: {m}")))?;
    if e.positive as usize >= shapes.n_items {
        return bad(format!(
            "example {i}: positive item {} out of range (n_items = {})",
            e.positive, shapes.n_items
        ));
    }
    if !(e.weight.is_finite() && e.weight >= 0.0) {
        return bad(format!(
            "example {i}: weight {} is not finite and >= 0",
            e.weight
        ));
    }
    Ok(())
}

/// Trains on examples streamed in chunks: a first pass validates every example and counts the
/// positives per item (the log-Q correction) and the weights; then each epoch visits the
/// chunks in order and shuffles within each (seeded), so memory is the model plus one chunk.
/// With a single chunk this is exactly the in-memory shuffle of [`TwoTower::train`].
pub(crate) fn train(
    catalog: &TowerCatalog,
    source: &dyn TowerExamples,
    config: &TowerConfig,
) -> Result<TwoTower, Error> {
    validate_config(config)?;
    let shapes = Shapes {
        n_items: catalog.n_items,
        n_content_tokens: catalog.n_content_tokens,
        n_search_tokens: catalog.n_search_tokens,
        n_dense: catalog.n_dense,
        dim: config.dim,
        hidden: config.hidden,
        max_history: config.max_history,
        max_searches: config.max_searches,
    };
    validate_catalog(catalog)?;

    // log q(item): the item's share of the training positives, i.e. how often it is drawn as
    // an in-batch negative. Only positives are ever looked up, so every count is >= 1.
    let mut counts = vec![0u32; catalog.n_items];
    let mut n_examples = 0usize;
    let mut weight_sum = 0f64;
    source.for_each_chunk(&mut |chunk| {
        for e in chunk {
            validate_example(n_examples, e, &shapes)?;
            counts[e.positive as usize] = counts[e.positive as usize].saturating_add(1);
            weight_sum += e.weight as f64;
            n_examples += 1;
        }
        Ok(())
    })?;
    if n_examples == 0 {
        return Err(Error::InvalidData("no examples".into()));
    }
    if weight_sum <= 0.0 {
        return Err(Error::InvalidData("every example weight is zero".into()));
    }
    let log_q: Vec<f32> = counts
        .iter()
        .map(|&c| ((c.max(1) as f64) / n_examples as f64).ln() as f32)
        .collect();
    let mean_weight = weight_sum / n_examples as f64;

    let mut rng = SplitMix64::new(config.seed);
    let (vars, params) = Params::init(&mut rng, &shapes)?.into_vars()?;
    let mut optimizer = AdamW::new(
        vars,
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;

    let mut epoch_losses = Vec::with_capacity(config.epochs);
    let mut order: Vec<usize> = Vec::new();
    for _ in 0..config.epochs {
        let mut loss_sum = 0f64;
        let mut seen = 0usize;
        source.for_each_chunk(&mut |chunk| {
            seen += chunk.len();
            order.clear();
            order.extend(0..chunk.len());
            rng.shuffle(&mut order);
            for batch in order.chunks(config.batch_size) {
                let (loss, weighted_ce) = batch_loss(
                    &params,
                    chunk,
                    &catalog.item_tokens,
                    &shapes,
                    config,
                    batch,
                    &log_q,
                    mean_weight,
                )?;
                optimizer.backward_step(&loss)?;
                loss_sum += weighted_ce;
            }
            Ok(())
        })?;
        if seen != n_examples {
            return Err(Error::InvalidData(format!(
                "the source gave {seen} examples in an epoch, {n_examples} in the first pass"
            )));
        }
        epoch_losses.push((loss_sum / (mean_weight * n_examples as f64)) as f32);
    }

    let params = params.frozen()?;
    let item_embeddings = item_embeddings(&params, catalog)?;
    Ok(TwoTower {
        params,
        shapes,
        config: config.clone(),
        item_embeddings,
        epoch_losses,
    })
}

/// The batch loss (for backprop) and the batch's `Σ weight · cross-entropy` (for reporting).
#[allow(clippy::too_many_arguments)]
fn batch_loss(
    params: &Params,
    examples: &[TowerExample],
    item_tokens: &[Vec<u32>],
    shapes: &Shapes,
    config: &TowerConfig,
    batch: &[usize],
    log_q: &[f32],
    mean_weight: f64,
) -> Result<(Tensor, f64), Error> {
    let b = batch.len();
    let examples = batch.iter().map(|&i| &examples[i]);
    let users = pack_users(
        examples
            .clone()
            .map(|e| (&e.history[..], &e.searches[..], &e.dense[..])),
        shapes,
    );
    let positives: Vec<u32> = examples.clone().map(|e| e.positive).collect();
    let items = pack_items(&positives, item_tokens);

    // Column correction (−log q of the column's item) plus the duplicate mask, as one [b, b]
    // additive term.
    let mut offset = vec![0f32; b * b];
    for (i, &pi) in positives.iter().enumerate() {
        for (j, &pj) in positives.iter().enumerate() {
            offset[i * b + j] = if i != j && pi == pj {
                MASKED
            } else {
                -log_q[pj as usize]
            };
        }
    }
    let weights: Vec<f32> = examples.map(|e| e.weight).collect();

    let u = params.user_tower(&users, shapes)?;
    let v = params.item_tower(&items)?;
    let offset = Tensor::from_vec(offset, (b, b), &Device::Cpu)?;
    let logits = (u.matmul(&v.t()?)? * (1.0 / config.temperature as f64))?.add(&offset)?;
    let log_p = candle_nn::ops::log_softmax(&logits, 1)?;
    let diagonal: Vec<u32> = (0..b as u32).collect();
    let diagonal = Tensor::from_vec(diagonal, (b, 1), &Device::Cpu)?;
    let ce = log_p.gather(&diagonal, 1)?.squeeze(1)?.neg()?;
    let weights = Tensor::from_vec(weights, b, &Device::Cpu)?;
    let weighted = ce.mul(&weights)?.sum_all()?;
    let weighted_ce = weighted.to_scalar::<f32>()? as f64;
    let loss = (weighted / (b as f64 * mean_weight))?;
    Ok((loss, weighted_ce))
}

/// Runs the item tower on every item.
fn item_embeddings(params: &Params, data: &TowerCatalog) -> Result<Vec<f32>, Error> {
    let mut out = Vec::with_capacity(data.n_items * params.item_b.dim(0)?);
    let ids: Vec<u32> = (0..data.n_items as u32).collect();
    for chunk in ids.chunks(EXPORT_CHUNK) {
        let items = pack_items(chunk, &data.item_tokens);
        out.extend(to_vec(&params.item_tower(&items)?)?);
    }
    Ok(out)
}
