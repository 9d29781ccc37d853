//! The stages of the device pipeline, each a function of the loaded [`Model`](crate::model::Model)
//! and what the request and the user's local state say. [`crate::Recommender::recommend_row`]
//! chains them; they are public so that tools (the trainer's evaluation, benchmarks) can run
//! and time one stage at a time, but a row a user sees always comes from `recommend_row`.
//!
//! 1. [`user`] — the history (finished plays before the request) and the two-tower user
//!    vector from the bundle's user tower;
//! 2. [`candidates`] — every candidate source searched (flat int8/f32 or HNSW) and blended;
//! 3. [`ranking`] — the feature catalog over the candidates and the bundle's ranker;
//! 4. [`rerank`] — the filters that always hold (finished, fatigued, too mature), MMR
//!    diversity and reasons.

pub mod candidates;
pub mod ranking;
pub mod rerank;
pub mod user;
