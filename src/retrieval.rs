//! The item vectors an embedding source retrieves from, and how the device searches them.
//!
//! Two candidate sources rank the catalog by an inner product with a user vector: iALS (item
//! factors against the folded-in user) and two-tower (item embeddings against the user tower's
//! output). Their item rows ship either as f32 ([`ItemVectors::F32`], sections `FACT`/`TWRT`
//! version 1) or quantised to int8 with one scale per row ([`ItemVectors::Int8`], version 2,
//! about 3.8× smaller at 64 dimensions; see [`crate::quant`] for the error bound).
//!
//! A search is either a **flat scan** of every row (exact for f32; int8 scores are within the
//! quantisation bound, with the wasm SIMD128 kernel where the build has it) or a walk of an
//! **HNSW graph** ([`crate::hnsw`]) shipped in the bundle (section `HNSW`). HNSW ranks by cosine;
//! to rank by inner product the graph of a space whose rows are not unit vectors (iALS) is
//! built over the rows augmented with one coordinate, `[y, √(M² − ‖y‖²)]` with `M` the
//! largest row norm (Bachrach et al. 2014, "Speeding up the Xbox recommender system using a
//! Euclidean transformation for inner-product spaces"), and queried with `[x, 0]`: the cosine is
//! then `x·y / (‖x‖·M)`, in the same order as `x·y`, and `x·y` is recovered by multiplying back.
//!
//! [`IndexChoice::Auto`] scans flat up to [`HNSW_ABOVE`] items and uses the graph above, when the
//! bundle has one for the space; a request can force either.
//!
//! ```
//! use edgerec::ials::Factors;
//! use edgerec::retrieval::ItemVectors;
//!
//! let y = ItemVectors::F32(Factors::new(2, vec![1.0, 0.0, 0.0, 1.0, 0.7, 0.7]).unwrap());
//! let top = y.flat_top_k(&[1.0, 0.2], 2, |row| row == 0)?;
//! assert_eq!(top[0].0, 2);                    // 0.84 beats row 1's 0.2; row 0 excluded
//! let q = y.quantized()?;
//! assert!(q.bytes() < y.bytes());
//! assert_eq!(q.flat_top_k(&[1.0, 0.2], 2, |row| row == 0)?[0].0, 2);
//! # Ok::<(), edgerec::Error>(())
//! ```

use std::borrow::Cow;

use crate::blend;
use crate::hnsw::{HnswConfig, HnswIndex};
use crate::ials::Factors;
use crate::limits;
use crate::quant::QuantizedIndex;
use crate::{Error, Result};

/// Catalogs with more items than this use an HNSW graph under [`IndexChoice::Auto`] (when the
/// bundle carries one): below it a flat int8 scan is as fast and much smaller
/// (`examples/hnsw_bench.rs`: at 20k × 64 the graph's query is slower than a scan, at 100k
/// 3.2× faster).
pub const HNSW_ABOVE: usize = 100_000;

/// One embedding row per catalog item, f32 or int8.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemVectors {
    /// Full precision.
    F32(Factors),
    /// int8 codes with one scale per row.
    Int8(QuantizedIndex),
}

impl ItemVectors {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            ItemVectors::F32(f) => f.rows(),
            ItemVectors::Int8(q) => q.rows(),
        }
    }

    /// Width of each row.
    pub fn dim(&self) -> usize {
        match self {
            ItemVectors::F32(f) => f.dim(),
            ItemVectors::Int8(q) => q.dim(),
        }
    }

    /// Whether the rows are int8.
    pub fn is_int8(&self) -> bool {
        matches!(self, ItemVectors::Int8(_))
    }

    /// Row `i` as f32 (dequantised for int8). Panics if `i >= rows()`.
    pub fn row(&self, i: usize) -> Cow<'_, [f32]> {
        match self {
            ItemVectors::F32(f) => Cow::Borrowed(f.row(i)),
            ItemVectors::Int8(q) => {
                let d = q.dim();
                let s = q.scales()[i];
                Cow::Owned(
                    q.codes()[i * d..(i + 1) * d]
                        .iter()
                        .map(|&c| f32::from(c) * s)
                        .collect(),
                )
            }
        }
    }

    /// Every row as f32, row-major (dequantised for int8). Cost O(rows · dim).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            ItemVectors::F32(f) => f.values().to_vec(),
            ItemVectors::Int8(_) => (0..self.rows())
                .flat_map(|i| self.row(i).into_owned())
                .collect(),
        }
    }

    /// Bytes the rows take (values and scales).
    pub fn bytes(&self) -> usize {
        match self {
            ItemVectors::F32(f) => 4 * f.values().len(),
            ItemVectors::Int8(q) => q.bytes(),
        }
    }

    /// The rows quantised to int8 (int8 rows are returned as they are).
    pub fn quantized(&self) -> Result<ItemVectors> {
        Ok(match self {
            ItemVectors::F32(f) => {
                ItemVectors::Int8(QuantizedIndex::from_f32(f.rows(), f.dim(), f.values())?)
            }
            ItemVectors::Int8(q) => ItemVectors::Int8(q.clone()),
        })
    }

    /// Inner products of `query` with every row, in row order (approximate for int8).
    /// Errors on a query of the wrong length or with a non-finite value.
    pub fn scores(&self, query: &[f32]) -> Result<Vec<f32>> {
        self.check_query(query)?;
        match self {
            ItemVectors::F32(f) => Ok((0..f.rows()).map(|i| dot(f.row(i), query)).collect()),
            ItemVectors::Int8(q) => q.scores(query),
        }
    }

    /// The `k` rows with the highest inner product with `query`, skipping rows for which
    /// `exclude` is true: `(row, score)`, best first, ties to the lower row. Exact for f32
    /// (the same order as [`blend::top_n`] over [`scores`](Self::scores)); within the
    /// quantisation bound for int8. Cost O(rows · dim + rows · log k).
    pub fn flat_top_k(
        &self,
        query: &[f32],
        k: usize,
        exclude: impl Fn(usize) -> bool,
    ) -> Result<Vec<(usize, f32)>> {
        if k == 0 {
            return Err(Error::InvalidArgument("top k needs k ≥ 1".into()));
        }
        self.check_query(query)?;
        match self {
            ItemVectors::F32(_) => Ok(blend::top_n(&self.scores(query)?, k, exclude)),
            ItemVectors::Int8(q) => q.scan_top_k(query, k, exclude),
        }
    }

    fn check_query(&self, query: &[f32]) -> Result<()> {
        limits::check_query("item vectors", self.dim(), query)
    }
}

/// Which index a request searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexChoice {
    /// Flat up to [`HNSW_ABOVE`] items, the graph above (when the bundle has one).
    #[default]
    Auto,
    /// Always the flat scan.
    Flat,
    /// The graph when the bundle has one for the space, else the flat scan.
    Hnsw,
}

impl IndexChoice {
    /// `"auto"`, `"flat"` or `"hnsw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexChoice::Auto => "auto",
            IndexChoice::Flat => "flat",
            IndexChoice::Hnsw => "hnsw",
        }
    }
}

impl std::str::FromStr for IndexChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<IndexChoice> {
        match s {
            "auto" => Ok(IndexChoice::Auto),
            "flat" => Ok(IndexChoice::Flat),
            "hnsw" => Ok(IndexChoice::Hnsw),
            _ => Err(Error::InvalidArgument(format!(
                "index must be \"auto\", \"flat\" or \"hnsw\", got {s:?}"
            ))),
        }
    }
}

/// Which index a search actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexUsed {
    /// Flat f32 scan.
    FlatF32,
    /// Flat int8 scan.
    FlatInt8,
    /// HNSW graph.
    Hnsw,
}

impl IndexUsed {
    /// `"flat-f32"`, `"flat-int8"` or `"hnsw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexUsed::FlatF32 => "flat-f32",
            IndexUsed::FlatInt8 => "flat-int8",
            IndexUsed::Hnsw => "hnsw",
        }
    }
}

/// An HNSW graph over one space's item vectors, searched by inner product (see the [module
/// docs](self) for the augmentation).
#[derive(Debug)]
pub struct InnerProductGraph {
    index: HnswIndex,
    /// `M`, the largest row norm, when the rows were augmented; 0 for unit rows.
    max_norm: f32,
}

impl InnerProductGraph {
    /// Builds the graph over `vectors`. With `augment` the rows get the extra coordinate, so
    /// any rows rank by inner product; without it the rows must be unit vectors (or zero),
    /// where the cosine already orders by inner product. Cost: see [`HnswIndex::build`].
    pub fn build(
        vectors: &ItemVectors,
        augment: bool,
        config: HnswConfig,
    ) -> Result<InnerProductGraph> {
        let (rows, dim) = (vectors.rows(), vectors.dim());
        let values = vectors.to_f32();
        if !augment {
            let index = HnswIndex::build(rows, dim, &values, config)?;
            return Ok(InnerProductGraph {
                index,
                max_norm: 0.0,
            });
        }
        let norms: Vec<f64> = values
            .chunks_exact(dim)
            .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
            .collect();
        let max_sq = norms.iter().copied().fold(0.0f64, f64::max);
        let mut augmented = Vec::with_capacity(rows * (dim + 1));
        for (r, &sq) in values.chunks_exact(dim).zip(&norms) {
            augmented.extend_from_slice(r);
            augmented.push((max_sq - sq).max(0.0).sqrt() as f32);
        }
        let index = HnswIndex::build(rows, dim + 1, &augmented, config)?;
        Ok(InnerProductGraph {
            index,
            max_norm: max_sq.sqrt() as f32,
        })
    }

    /// Wraps a loaded graph; `max_norm` is 0 for a graph over unit rows, else `M`. Refuses a
    /// graph whose width does not fit `dim` (`dim + 1` when augmented) or a bad `max_norm`.
    pub fn from_parts(index: HnswIndex, max_norm: f32, dim: usize) -> Result<InnerProductGraph> {
        if !(max_norm.is_finite() && max_norm >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "graph max norm {max_norm} must be finite and ≥ 0"
            )));
        }
        let want = if max_norm > 0.0 { dim + 1 } else { dim };
        if index.dim() != want {
            return Err(Error::InvalidArgument(format!(
                "graph has {} dimensions, the item vectors need {want}",
                index.dim()
            )));
        }
        Ok(InnerProductGraph { index, max_norm })
    }

    /// The graph.
    pub fn index(&self) -> &HnswIndex {
        &self.index
    }

    /// `M` of the augmentation, 0 for unit rows.
    pub fn max_norm(&self) -> f32 {
        self.max_norm
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the graph has no rows.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The (approximately) `k` best rows by inner product with `query`: `(row, score)`, best
    /// first, with `score ≈ query · row`. A zero query matches nothing (an empty result).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        exclude: impl Fn(usize) -> bool,
    ) -> Result<Vec<(usize, f32)>> {
        let norm = query
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            if query.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument("query is not finite".into()));
            }
            return Ok(Vec::new());
        }
        let (found, scale) = if self.max_norm > 0.0 {
            let mut q = Vec::with_capacity(query.len() + 1);
            q.extend_from_slice(query);
            q.push(0.0);
            (
                self.index.search(&q, k, exclude)?,
                norm * f64::from(self.max_norm),
            )
        } else {
            (self.index.search(query, k, exclude)?, norm)
        };
        Ok(found
            .into_iter()
            .map(|(row, cos)| (row, (f64::from(cos) * scale) as f32))
            .collect())
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random(rows: usize, dim: usize, seed: u64) -> Factors {
        let mut rng = SplitMix64::new(seed);
        // Rows of varied norms, as iALS factors have (popular items are longer).
        let values = (0..rows)
            .flat_map(|r| {
                let len = 0.2 + (r % 7) as f32 * 0.3;
                (0..dim)
                    .map(|_| rng.signed_unit() * len)
                    .collect::<Vec<_>>()
            })
            .collect();
        Factors::new(dim, values).unwrap()
    }

    #[test]
    fn int8_rows_dequantise_within_half_a_step() {
        let f = random(50, 16, 3);
        let y = ItemVectors::F32(f.clone());
        let q = y.quantized().unwrap();
        assert!(q.is_int8());
        assert_eq!((q.rows(), q.dim()), (50, 16));
        let ItemVectors::Int8(index) = &q else {
            unreachable!()
        };
        for i in 0..50 {
            let half = index.scales()[i] / 2.0 * 1.0001;
            for (a, b) in q.row(i).iter().zip(f.row(i)) {
                assert!((a - b).abs() <= half, "row {i}: {a} vs {b}");
            }
        }
        assert_eq!(q.to_f32().len(), 50 * 16);
    }

    #[test]
    fn flat_f32_is_the_exact_top_k() {
        let f = random(300, 8, 5);
        let y = ItemVectors::F32(f.clone());
        let query: Vec<f32> = f.row(17).to_vec();
        let top = y.flat_top_k(&query, 10, |r| r == 17).unwrap();
        let mut all: Vec<(usize, f32)> = (0..300)
            .filter(|&r| r != 17)
            .map(|r| (r, dot(f.row(r), &query)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(10);
        assert_eq!(top, all);
    }

    #[test]
    fn augmented_graph_ranks_by_inner_product_not_cosine() {
        // Rows of very different norms: cosine and inner product disagree.
        let f = random(2_000, 16, 11);
        let y = ItemVectors::F32(f.clone());
        let g = InnerProductGraph::build(&y, true, HnswConfig::default()).unwrap();
        assert!(g.max_norm() > 0.0);
        let mut hits = 0;
        let queries = 40;
        for qi in 0..queries {
            let query: Vec<f32> = f.row(qi * 37).iter().map(|v| v * 1.5).collect();
            let exact = y.flat_top_k(&query, 10, |_| false).unwrap();
            let found = g.search(&query, 10, |_| false).unwrap();
            for (row, score) in &found {
                let want = dot(f.row(*row), &query);
                assert!(
                    (score - want).abs() <= 1e-3 * want.abs().max(1.0),
                    "{score} vs {want}"
                );
            }
            hits += found
                .iter()
                .filter(|(r, _)| exact.iter().any(|(e, _)| e == r))
                .count();
        }
        let recall = hits as f64 / (10 * queries) as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn graphs_refuse_mismatched_widths_and_zero_queries_match_nothing() {
        let f = random(100, 4, 1);
        let y = ItemVectors::F32(f);
        let g = InnerProductGraph::build(&y, true, HnswConfig::default()).unwrap();
        let bytes = g.index().to_bytes();
        let loaded = HnswIndex::from_bytes(&bytes).unwrap();
        assert!(InnerProductGraph::from_parts(loaded, g.max_norm(), 5).is_err());
        let loaded = HnswIndex::from_bytes(&bytes).unwrap();
        let again = InnerProductGraph::from_parts(loaded, g.max_norm(), 4).unwrap();
        assert!(again.search(&[0.0; 4], 3, |_| false).unwrap().is_empty());
        assert_eq!(
            again.search(&[1.0, 0.0, 0.0, 0.0], 3, |_| false).unwrap(),
            g.search(&[1.0, 0.0, 0.0, 0.0], 3, |_| false).unwrap()
        );
        assert!(g.search(&[f32::NAN, 0.0, 0.0, 0.0], 3, |_| false).is_err());
    }

    #[test]
    fn index_choice_parses() {
        for c in [IndexChoice::Auto, IndexChoice::Flat, IndexChoice::Hnsw] {
            assert_eq!(c.as_str().parse::<IndexChoice>().unwrap(), c);
        }
        assert_eq!(
            "x".parse::<IndexChoice>().unwrap_err().code(),
            "invalid_argument"
        );
    }
}
