//! # edgerec
//!
//! The on-device half of the edgerec recommender: everything a browser or TV client needs to
//! turn a model bundle and the user's local watch history into a row of titles, and everything
//! the trainer shares with the device (the bundle format, the catalog, the scoring code).
//!
//! The crate takes bytes and returns values: it does no file or network I/O, draws no
//! randomness from the environment, and builds for native targets and `wasm32-unknown-unknown`
//! (the JS bindings live in the `wasm` module, compiled only for wasm32).
//!
//! ```
//! use edgerec::{Recommender, context::{Context, Device}};
//! # let bundle_bytes = edgerec::bundle::tests_support::tiny_contents().encode();
//! let rec = Recommender::from_bytes(&bundle_bytes)?;          // verifies every checksum
//! let ctx = Context::new(Device::Tv, 1_764_446_400, 60)?;     // unix seconds, UTC+1
//! for r in rec.recommend(&[10, 40], &[], &ctx, 2)? {
//!     let item = &rec.bundle().contents().catalog.items()[r.position];
//!     println!("{} — {}", item.display_title(), r.reason);
//! }
//! # Ok::<(), edgerec::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod blend;
pub mod bundle;
pub mod calendar;
pub mod candidates;
pub mod catalog;
pub mod content;
pub mod context;
pub mod device;
mod error;
pub mod features;
pub mod hnsw;
pub mod ials;
pub mod onnx;
pub mod quant;
pub mod ranker;
pub mod recommend;
pub mod rerank;
pub mod retrieval;
pub mod state;
#[cfg(test)]
mod test_rng;
pub mod tower;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use bundle::Bundle;
pub use candidates::{CandidateRequest, Candidates};
pub use error::{BundleError, Error, Result, StateError};
pub use recommend::{Recommendation, Recommender, Source};
