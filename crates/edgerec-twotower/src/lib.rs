//! Two-tower retrieval: a user tower and an item tower trained so that a user's next watch
//! scores highest by dot product, with the user tower exported as ONNX for the device.
//!
//! This is the candidate generator of YouTube-DNN (Covington et al. 2016) trained the way of
//! Yi et al. 2019, *Sampling-bias-corrected neural modeling for large corpus item
//! recommendations*: in-batch sampled softmax with the log-Q correction. The server trains with
//! [candle](https://github.com/huggingface/candle) on the CPU and publishes two artefacts:
//!
//! * the **item embeddings**, one L2-normalised row of `dim` floats per item
//!   ([`TwoTower::item_embeddings`]), to be scanned (or indexed) on the device;
//! * the **user tower** as ONNX bytes ([`TwoTower::user_tower_onnx`]), run on the device by
//!   [tract](https://github.com/sonos/tract) through [`OnnxUserTower`] (the core crate's
//!   [`edgerec::tower::UserTower`], re-exported), so the watch history never leaves it.
//!
//! Retrieval is then `top_k(item_embeddings · user_embedding)`: both sides are unit vectors, so
//! the score is a cosine in `[-1, 1]`.
//!
//! # Training and serving
//!
//! ```
//! use edgerec_twotower::{OnnxUserTower, TowerConfig, TowerData, TowerExample, TwoTower, UserInput};
//!
//! # fn main() -> Result<(), edgerec_twotower::Error> {
//! // Four items, two content tokens (say "drama", "comedy"), no search tokens, one dense feature.
//! let data = TowerData {
//!     n_items: 4,
//!     item_tokens: vec![vec![0], vec![0], vec![1], vec![1]],
//!     n_content_tokens: 2,
//!     n_search_tokens: 0,
//!     n_dense: 1,
//!     examples: (0..64u32)
//!         .map(|i| TowerExample {
//!             history: vec![i % 2 * 2],
//!             searches: vec![],
//!             dense: vec![0.5],
//!             positive: i % 2 * 2 + 1,
//!             weight: 1.0,
//!         })
//!         .collect(),
//! };
//! let config = TowerConfig { dim: 8, hidden: 16, epochs: 2, batch_size: 16, ..TowerConfig::default() };
//! let model = TwoTower::train(&data, &config)?;
//! assert_eq!(model.item_embeddings().len(), 4 * 8);
//!
//! // On the device: load the exported tower once, embed a batch of users.
//! let tower = OnnxUserTower::load(&model.user_tower_onnx()?)?;
//! let user = UserInput { history: vec![2], searches: vec![], dense: vec![0.5] };
//! let u = tower.embed(std::slice::from_ref(&user))?;
//! let reference = model.user_embedding(&user)?;
//! assert!(u.iter().zip(&reference).all(|(a, b)| (a - b).abs() < 1e-5));
//! # Ok(())
//! # }
//! ```
//!
//! # The model
//!
//! **Item tower.** `concat(id_embedding[item], mean(content_embedding[token] for the item's
//! tokens)) → linear(2·dim → dim) → L2 normalise`. An item without content tokens contributes a
//! zero content vector, so the id embedding carries it alone.
//!
//! **User tower.** `concat(mean(history_embedding[item] for the most recent max_history
//! watches), mean(search_embedding[token] for the most recent max_searches searches), dense) →
//! linear(2·dim + n_dense → hidden) → ReLU → linear(hidden → dim) → L2 normalise`.
//! The history table is the user tower's **own** `n_items × dim` table, not shared with the item
//! tower's id table: the exported ONNX needs only user-side weights, the item tower stays a
//! pure function of the item, and the two roles of an item ("was watched", "is the candidate")
//! are free to differ. Empty histories or searches give zero vectors, so a brand-new user is
//! embedded from the dense features alone.
//!
//! All token/id embedding tables have width `dim`. Tables for a vocabulary of size zero
//! (`n_content_tokens == 0`, `n_search_tokens == 0`) keep one unused row so that padding ids
//! always index a real row.
//!
//! **Loss.** For a batch of `B` examples with users `u_i` and positives `v_i`:
//! `logit_ij = u_i·v_j / temperature − ln q(item_j)`, where `q(item)` is the item's share of all
//! training positives (the probability that it shows up as an in-batch negative); columns that
//! hold the *same* item as row `i`'s positive (but are not the diagonal) are masked out, since
//! they are not negatives. The loss is the cross-entropy of each row against its diagonal,
//! weighted by the example's `weight` and normalised by `B ×` the dataset's mean weight.
//! Optimiser: AdamW (decoupled weight decay) over all parameters.
//!
//! **Truncation.** Only the most recent `max_history` items of a history and the most recent
//! `max_searches` search tokens are used (the *end* of each list, which is oldest first).
//! Training, [`TwoTower::user_embedding`] and [`OnnxUserTower::embed`] share one packing
//! function, so they truncate and weight identically.
//!
//! # Determinism
//!
//! Weights are initialised from a SplitMix64 stream seeded with [`TowerConfig::seed`] (Gaussian
//! embeddings with std `1/√dim`, Glorot-uniform linear layers, He-uniform for the ReLU layer,
//! zero biases), and the same stream shuffles the examples every epoch. The same data, config and
//! seed on the same machine give bit-identical item embeddings (a test checks it).
//!
//! # The exported user tower
//!
//! [`TwoTower::user_tower_onnx`] writes an ONNX model (IR 8, opset 13, default domain only)
//! with these inputs, all with a symbolic `batch` dimension:
//!
//! | input             | type      | shape                | contents                                                         |
//! |-------------------|-----------|----------------------|------------------------------------------------------------------|
//! | `history_ids`     | `int64`   | `[batch, L]`         | item indices `< n_items`; padding entries may hold `0`           |
//! | `history_weights` | `float32` | `[batch, L]`         | `1/len` for each of the `len` real entries, `0` for padding      |
//! | `search_ids`      | `int64`   | `[batch, S]`         | search-token indices `< n_search_tokens`; padding may hold `0`   |
//! | `search_weights`  | `float32` | `[batch, S]`         | same convention as `history_weights`                             |
//! | `dense`           | `float32` | `[batch, n_dense]`   | the caller's scaled demographics and context features            |
//!
//! | output            | type      | shape                | contents                                                         |
//! |-------------------|-----------|----------------------|------------------------------------------------------------------|
//! | `user_embedding`  | `float32` | `[batch, dim]`       | L2-normalised user vector                                        |
//!
//! The input, output, initialiser and metadata names are defined once, in [`edgerec::tower`],
//! which both this export and the device's loader use.
//!
//! `L` and `S` are symbolic (`history_len`, `search_len`) and must be at least 1; a row with an
//! empty list is one padding entry of weight 0. The weighted sums are the means, so the caller
//! chooses the truncation: [`OnnxUserTower::embed`] applies the model's `max_history` and
//! `max_searches`, which the model carries in its `metadata_props` (`edgerec.*` keys: kind,
//! format version, `n_items`, `n_search_tokens`, `n_dense`, `dim`, `max_history`,
//! `max_searches`). When `n_dense == 0` the `dense` input is declared (`[batch, 0]`) but unused.
//!
//! Operators used: `Gather`, `Unsqueeze`, `Mul`, `ReduceSum`, `Concat`, `Gemm`, `Relu`, `Max`,
//! `Sqrt`, `Div`. The L2 normalisation is `y / sqrt(max(Σy², 1e-24))`, computed the same way in
//! candle. Weights are `raw_data` initialisers; the history table dominates the size
//! (`n_items × dim × 4` bytes).
//!
//! # Cost
//!
//! One training step on a batch of `B` examples with history length `L` costs
//! `O(B·L·dim)` for the pooling, `O(B·(2·dim + n_dense)·hidden)` for the MLP, `O(B²·dim)` for
//! the in-batch logits, plus an AdamW update of every parameter (`O((2·n_items +
//! n_content_tokens + n_search_tokens)·dim)`), which dominates for large catalogues.
//! Exporting the item embeddings runs the item tower once per item. On the device, embedding a
//! user is a few small matrix products; the model's size is dominated by the history table.
//! The pooling is one custom candle op (an "embedding bag": gather, weight and sum in one pass,
//! scatter in the backward pass), so no `[B, L, dim]` tensor is ever materialised.
//!
//! Measured on the project's 2-core machine (dim 32, batch 256, one thread, this crate at
//! `opt-level = 2`): an epoch over ~100k examples with 1,682 items takes about 2.5 s, over ~300k
//! examples with 5,000 items about 7 s. With this crate unoptimised (the workspace's default dev
//! profile builds only dependencies optimised) the first takes about 6 s.
//!
//! # Threads
//!
//! candle 0.11 runs element-wise ops on tensors of 64k elements or more (the `256 × 256`
//! logits, AdamW updates of tables with more than 2,048 rows at dim 32) on its own pool of
//! spin-waiting threads, sized to the physical cores. When other processes keep the cores busy
//! the pool mostly spins: on the shared 2-core machine an epoch took 3–4× longer with the
//! default pool than with `CANDLE_NUM_THREADS=1`. A trainer binary running on such a machine
//! should set `CANDLE_NUM_THREADS=1` in its environment before the first candle operation. The
//! thread count did not change the results in our runs (identical losses), but only the
//! same-machine, same-settings determinism is tested.
//!
//! [`onnx`] holds the reusable ONNX writing and checking helpers (the `edgerec-onnx` crate,
//! re-exported under its old path).

#![warn(missing_docs)]

mod bag;
mod export;
mod features;
mod heap;
mod model;
mod train;

pub use edgerec_onnx as onnx;

pub use bag::embedding_bag;
pub use edgerec::tower::UserInput;
/// The device's user-tower runtime, [`edgerec::tower::UserTower`], under its old name here.
pub use edgerec::tower::UserTower as OnnxUserTower;
pub use heap::keep_freed_memory;

use model::Params;

/// Training data for [`TwoTower::train`]. Ids are dense indices: items `0..n_items`, content
/// tokens `0..n_content_tokens`, search tokens `0..n_search_tokens`.
#[derive(Clone, Debug, Default)]
pub struct TowerData {
    /// Number of items (rows of the id tables and of [`TwoTower::item_embeddings`]).
    pub n_items: usize,
    /// Content tokens of each item (ids < n_content_tokens); len == n_items.
    pub item_tokens: Vec<Vec<u32>>,
    /// Size of the content-token vocabulary (genre, era, language, tag tokens…).
    pub n_content_tokens: usize,
    /// Size of the search-token vocabulary.
    pub n_search_tokens: usize,
    /// Width of every example's `dense` vector.
    pub n_dense: usize,
    /// The training examples (at least one).
    pub examples: Vec<TowerExample>,
}

/// The catalog side of training: the items and the vocabularies' sizes ([`TowerData`] without
/// its examples, for [`TwoTower::train_streaming`]).
#[derive(Clone, Debug, Default)]
pub struct TowerCatalog {
    /// Number of items (rows of the id tables and of [`TwoTower::item_embeddings`]).
    pub n_items: usize,
    /// Content tokens of each item (ids < n_content_tokens); len == n_items.
    pub item_tokens: Vec<Vec<u32>>,
    /// Size of the content-token vocabulary.
    pub n_content_tokens: usize,
    /// Size of the search-token vocabulary.
    pub n_search_tokens: usize,
    /// Width of every example's `dense` vector.
    pub n_dense: usize,
}

/// Training examples visited in chunks (at scale, the examples of one partition of users),
/// in the same order on every call; [`TwoTower::train_streaming`] holds one chunk at a time.
pub trait TowerExamples {
    /// Calls `f` on every chunk in order, stopping at (and returning) the first error.
    fn for_each_chunk(
        &self,
        f: &mut dyn FnMut(&[TowerExample]) -> Result<(), Error>,
    ) -> Result<(), Error>;
}

/// All examples as one chunk.
impl TowerExamples for Vec<TowerExample> {
    fn for_each_chunk(
        &self,
        f: &mut dyn FnMut(&[TowerExample]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        f(self)
    }
}

/// One training example: the user's state just before a positive interaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TowerExample {
    /// Items watched before the positive, oldest first (the tower uses the most recent `max_history`).
    pub history: Vec<u32>,
    /// Search tokens before the positive (most recent `max_searches` used).
    pub searches: Vec<u32>,
    /// Demographic and context features, already scaled; length `n_dense`, finite.
    pub dense: Vec<f32>,
    /// The item the user went on to watch.
    pub positive: u32,
    /// Example weight (finite, `>= 0`), e.g. a watch-duration weight.
    pub weight: f32,
}

/// Hyper-parameters of [`TwoTower::train`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TowerConfig {
    /// Width of the output embeddings and of every id/token embedding table. Default 32.
    pub dim: usize,
    /// Width of the user tower's hidden ReLU layer. Default 64.
    pub hidden: usize,
    /// Passes over the examples. Default 5. Zero returns the initial (untrained) model.
    pub epochs: usize,
    /// Examples per in-batch softmax. Default 256; larger batches give more negatives.
    pub batch_size: usize,
    /// AdamW learning rate. Default 0.003.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay. Default 1e-4.
    pub weight_decay: f64,
    /// Softmax temperature applied to the cosine scores. Default 0.07.
    pub temperature: f32,
    /// Most recent watches used by the user tower. Default 50.
    pub max_history: usize,
    /// Most recent search tokens used by the user tower. Default 20.
    pub max_searches: usize,
    /// Seed of the weight initialisation and of the shuffling. Default 42.
    pub seed: u64,
}

impl Default for TowerConfig {
    fn default() -> Self {
        TowerConfig {
            dim: 32,
            hidden: 64,
            epochs: 5,
            batch_size: 256,
            learning_rate: 0.003,
            weight_decay: 1e-4,
            temperature: 0.07,
            max_history: 50,
            max_searches: 20,
            seed: 42,
        }
    }
}

/// Errors of training, exporting and running the towers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`TowerConfig`] value is out of its domain.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The [`TowerData`] is inconsistent (ids out of range, wrong widths, bad weights…).
    #[error("invalid training data: {0}")]
    InvalidData(String),
    /// A [`UserInput`] does not fit the model (ids out of range, wrong dense width…).
    #[error("invalid user input: {0}")]
    InvalidInput(String),
    /// Building or checking an ONNX model failed.
    #[error(transparent)]
    Onnx(#[from] onnx::OnnxError),
    /// The device runtime ([`OnnxUserTower`], i.e. [`edgerec::tower::UserTower`]) refused the
    /// model (a `malformed` bundle error) or an input (`invalid_argument`).
    #[error(transparent)]
    Device(#[from] edgerec::Error),
    /// A tensor operation failed in candle (a bug rather than a data problem).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

impl From<edgerec::BundleError> for Error {
    fn from(e: edgerec::BundleError) -> Self {
        Error::Device(e.into())
    }
}

/// Sizes fixed at training time and carried by the exported model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shapes {
    pub n_items: usize,
    pub n_content_tokens: usize,
    pub n_search_tokens: usize,
    pub n_dense: usize,
    pub dim: usize,
    pub hidden: usize,
    pub max_history: usize,
    pub max_searches: usize,
}

impl Shapes {
    /// The sizes the device checks and packs user inputs against.
    pub(crate) fn input_shape(&self) -> edgerec::tower::InputShape {
        edgerec::tower::InputShape {
            n_items: self.n_items,
            n_search_tokens: self.n_search_tokens,
            n_dense: self.n_dense,
            max_history: self.max_history,
            max_searches: self.max_searches,
        }
    }
}

/// A trained two-tower model: the weights (for the reference forward pass and the export), the
/// precomputed item embeddings and the training curve.
#[derive(Debug)]
pub struct TwoTower {
    params: Params,
    shapes: Shapes,
    config: TowerConfig,
    item_embeddings: Vec<f32>,
    epoch_losses: Vec<f32>,
}

impl TwoTower {
    /// Validates `data` and `config`, then trains for `config.epochs` epochs and computes the
    /// item embeddings. Errors (never panics) on out-of-range ids or tokens, a `dense` vector of
    /// the wrong width, non-finite values, negative weights, an empty example list or an invalid
    /// config.
    pub fn train(data: &TowerData, config: &TowerConfig) -> Result<TwoTower, Error> {
        let catalog = TowerCatalog {
            n_items: data.n_items,
            item_tokens: data.item_tokens.clone(),
            n_content_tokens: data.n_content_tokens,
            n_search_tokens: data.n_search_tokens,
            n_dense: data.n_dense,
        };
        train::train(&catalog, &data.examples, config)
    }

    /// [`TwoTower::train`] on examples streamed in chunks: one pass to validate them and count
    /// the positives per item, then per epoch the chunks in order, shuffled within each chunk.
    /// Memory is the model, the catalog and one chunk, whatever the number of examples; a
    /// source of one chunk gives exactly [`TwoTower::train`]'s model. Errors as
    /// [`TwoTower::train`] does, and with the source's own errors.
    pub fn train_streaming(
        catalog: &TowerCatalog,
        examples: &dyn TowerExamples,
        config: &TowerConfig,
    ) -> Result<TwoTower, Error> {
        train::train(catalog, examples, config)
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.shapes.dim
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.shapes.n_items
    }

    /// Width of the dense input.
    pub fn n_dense(&self) -> usize {
        self.shapes.n_dense
    }

    /// The config the model was trained with.
    pub fn config(&self) -> &TowerConfig {
        &self.config
    }

    /// Item tower output for every item: `n_items × dim` row-major, each row L2-normalised.
    pub fn item_embeddings(&self) -> &[f32] {
        &self.item_embeddings
    }

    /// The user embedding (`dim` floats, L2-normalised) computed by the candle model: the
    /// reference the exported ONNX tower must match. Validates `input` like
    /// [`OnnxUserTower::embed`].
    pub fn user_embedding(&self, input: &UserInput) -> Result<Vec<f32>, Error> {
        features::validate_input(&self.shapes, input, 0)?;
        let packed = features::pack_users(
            std::slice::from_ref(input)
                .iter()
                .map(|u| (&u.history[..], &u.searches[..], &u.dense[..])),
            &self.shapes,
        );
        Ok(self
            .params
            .user_tower(&packed, &self.shapes)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    /// The user tower as an encoded ONNX `ModelProto`; see the crate docs for the contract.
    pub fn user_tower_onnx(&self) -> Result<Vec<u8>, Error> {
        export::user_tower_onnx(&self.params, &self.shapes)
    }

    /// Weighted mean training loss of each epoch, in order (empty if `epochs == 0`).
    pub fn epoch_losses(&self) -> &[f32] {
        &self.epoch_losses
    }
}
