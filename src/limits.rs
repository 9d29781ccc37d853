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

/// Earliest time any input may carry, in Unix seconds: 1800-01-01T00:00:00Z (release dates
/// of the oldest films fit; a negative sentinel does not).
pub const MIN_TIME: i64 = -5_364_662_400;

/// Latest time any input may carry, in Unix seconds: 2200-01-01T00:00:00Z. A millisecond
/// timestamp of any date after 1970-03-26 is above it, so a unit mistake is refused, not used.
pub const MAX_TIME: i64 = 7_258_118_400;

/// Whether `t` (Unix seconds) is within [`MIN_TIME`]`..=`[`MAX_TIME`]. Every time read from a
/// bundle, a user state or a request is checked with it when decoded, so differences of two
/// times, and day counts derived from them, can never overflow.
///
/// ```
/// use edgerec::limits::time_in_range;
/// assert!(time_in_range(1_764_446_400));         // 2025-11-29 in seconds
/// assert!(!time_in_range(1_764_446_400_000));    // the same in milliseconds
/// assert!(!time_in_range(i64::MIN));
/// ```
pub const fn time_in_range(t: i64) -> bool {
    MIN_TIME <= t && t <= MAX_TIME
}

/// Why a time is refused, naming `what` and, for a value that looks like milliseconds, saying so.
pub fn time_error(what: &str, t: i64) -> String {
    let hint = if t > MAX_TIME && t / 1000 <= MAX_TIME {
        " (it looks like milliseconds: pass Unix seconds)"
    } else {
        ""
    };
    format!(
        "{what} {t} is outside {MIN_TIME}..={MAX_TIME} (years 1800 to 2200 in Unix seconds){hint}"
    )
}

use crate::error::{Error, Result};

/// Checks a row-major `rows × dim` matrix an index is built from: `values.len() == rows · dim`
/// (without overflow) and every value finite. Returns `rows · dim`. `what` names the index in
/// the error ("hnsw", "quantized index").
///
/// ```
/// use edgerec::limits::check_matrix;
/// assert_eq!(check_matrix("index", 2, 3, &[0.0; 6]).unwrap(), 6);
/// assert!(check_matrix("index", 2, 3, &[0.0; 5]).is_err());
/// assert!(check_matrix("index", 1, 2, &[0.0, f32::NAN]).is_err());
/// ```
pub fn check_matrix(what: &str, rows: usize, dim: usize, values: &[f32]) -> Result<usize> {
    let expected = rows
        .checked_mul(dim)
        .ok_or_else(|| Error::InvalidArgument(format!("{what}: {rows} × {dim} overflows usize")))?;
    if values.len() != expected {
        return Err(Error::InvalidArgument(format!(
            "{what}: {} values given for {rows} rows × {dim} dims ({expected} expected)",
            values.len()
        )));
    }
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "{what}: value {} (row {}, column {}) is not finite",
            values[pos],
            pos / dim,
            pos % dim
        )));
    }
    Ok(expected)
}

/// Checks a query against an index of `dim`-wide vectors: the same width, every value finite.
///
/// ```
/// use edgerec::limits::check_query;
/// assert!(check_query("index", 2, &[1.0, 0.0]).is_ok());
/// assert!(check_query("index", 3, &[1.0, 0.0]).is_err());
/// assert!(check_query("index", 2, &[1.0, f32::INFINITY]).is_err());
/// ```
pub fn check_query(what: &str, dim: usize, query: &[f32]) -> Result<()> {
    if query.len() != dim {
        return Err(Error::InvalidArgument(format!(
            "{what}: query has {} dims, index has {dim}",
            query.len()
        )));
    }
    if let Some(v) = query.iter().find(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "{what}: query value {v} is not finite"
        )));
    }
    Ok(())
}

/// The memory budget a bundle is loaded under unless the caller sets one
/// ([`crate::model::LoadOptions`]): 256 MiB, for the bundle file, its decoded sections, the
/// runtimes built at load and one request at the largest size allowed. A 20,000-title bundle
/// with every source, graphs and a deep ranker needs a few tens of MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;

/// What a bundle is expected to need in memory, by part, in bytes: computed at load from the
/// decoded sections, before any runtime is built or any request served, and compared with the
/// caller's budget. An upper estimate: `examples/memory.rs` and the mutation suite check it
/// against the peak a counting allocator measures for loading a bundle and serving requests of
/// the largest size ([`MAX_CANDIDATES`] candidates, [`MAX_K`] titles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The bundle file (the caller's copy; in wasm, its copy in linear memory).
    pub file: u64,
    /// The decoded sections.
    pub sections: u64,
    /// What loading builds: the tract plans of the ranker and the user tower, the tree
    /// ensemble, the HNSW graphs.
    pub runtimes: u64,
    /// The working set of one request: candidate scores of every source, feature vectors and
    /// the ranker's tensors for [`MAX_CANDIDATES`] candidates, the user tower's inputs.
    pub request: u64,
}

impl MemoryEstimate {
    /// Every part together.
    pub fn total(&self) -> u64 {
        self.file
            .saturating_add(self.sections)
            .saturating_add(self.runtimes)
            .saturating_add(self.request)
    }

    /// The parts for humans: `"file 0.8 MiB, sections 2.1 MiB, runtimes 1.0 MiB, request
    /// 3.2 MiB"`.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        format!(
            "file {:.1} MiB, sections {:.1} MiB, runtimes {:.1} MiB, request {:.1} MiB",
            mib(self.file),
            mib(self.sections),
            mib(self.runtimes),
            mib(self.request)
        )
    }
}
