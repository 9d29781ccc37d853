//! The towers' parameters and forward passes in candle.

use candle_core::{DType, Device, Tensor, Var};
use edgerec::tower::table_rows;

use crate::Shapes;
use crate::bag::embedding_bag as pooled;
use crate::features::{PackedItems, PackedUsers};
use edgerec::rng::SplitMix64;

// The floor of the squared norm in the L2 normalisation, `y / sqrt(max(Σy², NORM_FLOOR))`: the
// exported graph's constant and order of operations.
use edgerec::tower::NORM_FLOOR;

/// All weights of both towers. Linear layers are stored `[in, out]` (so `x · W + b`, the layout
/// of ONNX `Gemm` without transposition).
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Item tower: id embeddings `[n_items, dim]`.
    pub item_id: Tensor,
    /// Item tower: content-token embeddings `[rows(n_content_tokens), dim]`.
    pub content: Tensor,
    /// Item tower: projection `[2·dim, dim]`.
    pub item_w: Tensor,
    /// Item tower: bias `[dim]`.
    pub item_b: Tensor,
    /// User tower: watch-history embeddings `[n_items, dim]` (its own table).
    pub history: Tensor,
    /// User tower: search-token embeddings `[rows(n_search_tokens), dim]`.
    pub search: Tensor,
    /// User tower: hidden layer `[2·dim + n_dense, hidden]`.
    pub w1: Tensor,
    /// User tower: hidden bias `[hidden]`.
    pub b1: Tensor,
    /// User tower: output layer `[hidden, dim]`.
    pub w2: Tensor,
    /// User tower: output bias `[dim]`.
    pub b2: Tensor,
}

fn gaussian(
    rng: &mut SplitMix64,
    rows: usize,
    cols: usize,
    std: f64,
) -> Result<Tensor, candle_core::Error> {
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| (rng.normal() * std) as f32)
        .collect();
    Tensor::from_vec(data, (rows, cols), &Device::Cpu)
}

fn uniform(
    rng: &mut SplitMix64,
    rows: usize,
    cols: usize,
    bound: f64,
) -> Result<Tensor, candle_core::Error> {
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
        .collect();
    Tensor::from_vec(data, (rows, cols), &Device::Cpu)
}

fn zeros(n: usize) -> Result<Tensor, candle_core::Error> {
    Tensor::zeros(n, DType::F32, &Device::Cpu)
}

impl Params {
    /// Seeded initial weights (see the crate docs, "Determinism").
    pub fn init(rng: &mut SplitMix64, s: &Shapes) -> Result<Params, candle_core::Error> {
        let d = s.dim;
        let emb_std = 1.0 / (d as f64).sqrt();
        let glorot = |fan_in: usize, fan_out: usize| (6.0 / (fan_in + fan_out) as f64).sqrt();
        let he = |fan_in: usize| (6.0 / fan_in as f64).sqrt();
        let user_in = 2 * d + s.n_dense;
        Ok(Params {
            item_id: gaussian(rng, s.n_items, d, emb_std)?,
            content: gaussian(rng, table_rows(s.n_content_tokens), d, emb_std)?,
            item_w: uniform(rng, 2 * d, d, glorot(2 * d, d))?,
            item_b: zeros(d)?,
            history: gaussian(rng, s.n_items, d, emb_std)?,
            search: gaussian(rng, table_rows(s.n_search_tokens), d, emb_std)?,
            w1: uniform(rng, user_in, s.hidden, he(user_in))?,
            b1: zeros(s.hidden)?,
            w2: uniform(rng, s.hidden, d, glorot(s.hidden, d))?,
            b2: zeros(d)?,
        })
    }

    fn all(&self) -> [&Tensor; 10] {
        [
            &self.item_id,
            &self.content,
            &self.item_w,
            &self.item_b,
            &self.history,
            &self.search,
            &self.w1,
            &self.b1,
            &self.w2,
            &self.b2,
        ]
    }

    fn map(
        &self,
        f: impl Fn(&Tensor) -> Result<Tensor, candle_core::Error>,
    ) -> Result<Params, candle_core::Error> {
        let [
            item_id,
            content,
            item_w,
            item_b,
            history,
            search,
            w1,
            b1,
            w2,
            b2,
        ] = self.all();
        Ok(Params {
            item_id: f(item_id)?,
            content: f(content)?,
            item_w: f(item_w)?,
            item_b: f(item_b)?,
            history: f(history)?,
            search: f(search)?,
            w1: f(w1)?,
            b1: f(b1)?,
            w2: f(w2)?,
            b2: f(b2)?,
        })
    }

    /// Turns every weight into a trainable variable; returns the variables (for the optimiser)
    /// and a `Params` whose tensors are those variables (updated in place by the optimiser).
    pub fn into_vars(self) -> Result<(Vec<Var>, Params), candle_core::Error> {
        let vars = self.all().map(Var::from_tensor);
        let vars: Vec<Var> = vars.into_iter().collect::<Result<_, _>>()?;
        let t = |i: usize| vars[i].as_tensor().clone();
        let params = Params {
            item_id: t(0),
            content: t(1),
            item_w: t(2),
            item_b: t(3),
            history: t(4),
            search: t(5),
            w1: t(6),
            b1: t(7),
            w2: t(8),
            b2: t(9),
        };
        Ok((vars, params))
    }

    /// A frozen copy: no gradient tracking, storage no longer shared with the variables.
    pub fn frozen(&self) -> Result<Params, candle_core::Error> {
        self.map(|t| t.detach().copy())
    }

    /// User tower on a packed batch: `[n, dim]`, rows L2-normalised.
    pub fn user_tower(&self, b: &PackedUsers, s: &Shapes) -> Result<Tensor, candle_core::Error> {
        let history = pooled(&self.history, &b.history_ids, &b.history_weights, b.n, b.l)?;
        let search = pooled(&self.search, &b.search_ids, &b.search_weights, b.n, b.s)?;
        let x = if s.n_dense > 0 {
            let dense = Tensor::from_slice(&b.dense, (b.n, s.n_dense), &Device::Cpu)?;
            Tensor::cat(&[&history, &search, &dense], 1)?
        } else {
            Tensor::cat(&[&history, &search], 1)?
        };
        let h = x.matmul(&self.w1)?.broadcast_add(&self.b1)?.relu()?;
        let y = h.matmul(&self.w2)?.broadcast_add(&self.b2)?;
        l2_normalize(&y)
    }

    /// Item tower on a packed batch: `[n, dim]`, rows L2-normalised.
    pub fn item_tower(&self, b: &PackedItems) -> Result<Tensor, candle_core::Error> {
        let ids = Tensor::from_slice(&b.ids, b.n, &Device::Cpu)?;
        let id_emb = self.item_id.index_select(&ids, 0)?;
        let content = pooled(&self.content, &b.token_ids, &b.token_weights, b.n, b.t)?;
        let x = Tensor::cat(&[&id_emb, &content], 1)?;
        let y = x.matmul(&self.item_w)?.broadcast_add(&self.item_b)?;
        l2_normalize(&y)
    }
}

/// `y / sqrt(max(Σy², NORM_FLOOR))` row-wise.
pub(crate) fn l2_normalize(y: &Tensor) -> Result<Tensor, candle_core::Error> {
    let norm = y.sqr()?.sum_keepdim(1)?.maximum(NORM_FLOOR)?.sqrt()?;
    y.broadcast_div(&norm)
}

/// A 2-D tensor as a row-major `Vec<f32>`.
pub(crate) fn to_vec(t: &Tensor) -> Result<Vec<f32>, candle_core::Error> {
    t.flatten_all()?.to_vec1::<f32>()
}
