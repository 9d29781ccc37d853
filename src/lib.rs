//! # edgerec
//!
//! The on-device half of the edgerec recommender: everything a browser or TV client needs to
//! turn a model bundle and the user's local state into a row of titles, and everything the
//! trainer shares with the device (the bundle format, the feature catalog, the scoring code).
//!
//! The crate takes bytes and returns values: it does no file or network I/O, draws no
//! randomness from the environment, and builds for native targets and `wasm32-unknown-unknown`
//! (the JS bindings live in the `wasm` module, compiled only for wasm32 with the default
//! feature `js`).
//!
//! One call makes a row: [`Recommender::recommend_row`] runs the device pipeline — the user's
//! history and user-tower vector, the candidate sources and their blend, the feature catalog
//! and the ranker, then the rerank with the filters that always hold (finished, fatigued and
//! too-mature titles never return) and a reason per title.
//!
//! ```
//! use edgerec::{Recommender, RowRequest};
//! use edgerec::context::{Context, Device};
//! use edgerec::state::UserState;
//! # let bundle_bytes = edgerec::test_support::tiny_contents_for_device().encode();
//! let rec = Recommender::from_bytes(&bundle_bytes)?;           // verifies every checksum
//! let mut state = UserState::new();                              // kept on the device
//! state.record_play(10, 1_764_400_000, 0.95)?;                   // finished item 10
//! let ctx = Context::new(Device::Tv, 1_764_446_400, 60)?;        // unix seconds, UTC+1
//! let row = rec.recommend_row(&state, &RowRequest::new(ctx))?;
//! for r in &row.items {
//!     let item = &rec.model().contents().catalog.items()[r.position];
//!     println!("{} — {}", item.display_title(), r.reason);
//! }
//! assert!(row.items.iter().all(|r| r.item_id != 10));
//! # Ok::<(), edgerec::Error>(())
//! ```
//!
//! # Layers
//!
//! Modules import only modules below them (a test, `tests/layers.rs`, checks it):
//!
//! 1. [`error`](Error), [`limits`], [`rng`] — errors, the limits several parts share, the one
//!    seeded generator;
//! 2. [`calendar`], [`context`] — dates, holidays, the request's device and local time;
//! 3. [`catalog`], [`features`], [`state`] — titles, the feature catalog, the user's local
//!    state;
//! 4. [`events`] — what a device reports about what it showed and played, at its privacy
//!    level (and records in its state), and [`experiments`] — the A/B arm it is in (reported
//!    with its events);
//! 5. [`ials`], [`blend`], [`quant`], [`hnsw`], [`retrieval`], [`content`], [`onnx`],
//!    [`tower`], [`ranker`], [`rerank`] — the models' math and contracts, with their
//!    runtimes;
//! 6. [`bundle`] — the format: bytes ↔ [`bundle::BundleContents`];
//! 7. [`model`] — the loaded model: contents plus the ranker, user tower and graphs;
//! 8. [`stages`] — user, candidates, ranking, rerank, each a function of the model;
//! 9. [`Recommender`] — the one public path that chains the stages;
//! 10. [`wire`] — a row's options and result as plain data, what every non-Rust binding speaks;
//! 11. the wasm bindings (feature `js`, on by default), which translate JS values and hold no
//!     policy. The plain-ABI module for native TV apps (`crates/edgerec-tv`) builds the core
//!     without them.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
pub mod limits;
pub mod rng;

pub mod calendar;
pub mod context;

pub mod catalog;
pub mod features;
pub mod state;

pub mod events;
pub mod experiments;

pub mod blend;
pub mod content;
pub mod hnsw;
pub mod ials;
pub mod onnx;
pub mod quant;
pub mod ranker;
pub mod rerank;
pub mod retrieval;
pub mod tower;

pub mod bundle;

pub mod release;

pub mod model;

pub mod stages;

mod recommender;

pub mod wire;

#[cfg(all(target_arch = "wasm32", feature = "js"))]
mod wasm;

#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod test_support;

pub use error::{BundleError, Error, ReleaseError, Result, StateError};
pub use model::Model;
pub use recommender::{Recommender, Row, RowInfo, RowRequest, Timings};
pub use stages::rerank::RowItem;
