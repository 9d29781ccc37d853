//! Limits that more than one part of the crate enforces, so they agree by construction.
//!
//! A request for a row ([`crate::RowRequest`]) and the bundle's serving settings
//! ([`crate::bundle::ServingSettings`]) are checked against the same constants: a bundle that
//! loads can always serve its own defaults. Limits that only one decoder or stage checks stay
//! beside that code (e.g. [`crate::state::MAX_PLAYS`], [`crate::bundle::MAX_SECTIONS`]).
//!
//! ```
//! use edgerec::limits::{MAX_CANDIDATES, MAX_K};
//! assert!(MAX_K <= MAX_CANDIDATES); // a row never needs more titles than can be ranked
//! ```

/// Most titles one row may hold (the rerank's `k`, a request's `k`, `SERV`'s row length).
pub const MAX_K: usize = 1_000;

/// Most blend candidates one request may rank, and the most the bundle's serving settings
/// (`SERV`) may ask for.
pub const MAX_CANDIDATES: usize = 1_000;

/// Most search tokens one request may carry.
pub const MAX_SEARCH_TOKENS: usize = 256;

/// Widest item vector a bundle may ship (iALS factors, two-tower embeddings) and the widest
/// user vector a request may carry.
pub const MAX_DIM: usize = 1_024;
