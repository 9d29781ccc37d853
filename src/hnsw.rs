//! Approximate nearest neighbours over item embeddings for large catalogs: an HNSW graph
//! (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
//! Hierarchical Navigable Small World graphs", IEEE TPAMI 2018) built with the
//! `instant-distance` crate.
//!
//! [`HnswIndex`] ranks rows by **cosine similarity**: every row is L2-normalised when the index
//! is built, each query is normalised when searched, and the graph's distance is
//! `1 − q̂·x̂`, so the nearest rows are those with the highest inner product of normalised
//! embeddings. The score returned with a row is that inner product, `q̂·x̂ ∈ [−1, 1]`. A row of
//! zeros stays a row of zeros: its score is 0 against every query.
//!
//! For catalogs of a few tens of thousands of items a flat scan
//! ([`crate::quant::QuantizedIndex`]) is smaller and as fast or faster; the graph pays off for
//! large catalogs. Natively (release, two shared cores, `examples/hnsw_bench.rs`, dim 64,
//! top 10, recall@10 1.0 on clustered data): at 20k rows the graph's query took 0.17 ms
//! against 0.09 ms for an exact f32 scan; at 100k rows 0.18 ms against 0.59 ms (3.2×). The
//! graph is large and slow to build: 100k × 64 took 27 s to build and 53 MB serialised (about
//! 530 bytes per row against 256 for the f32 rows alone; 130 ms to load). Build it on the
//! server and ship the bytes ([`HnswIndex::to_bytes`], [`HnswIndex::from_bytes`]); the build
//! runs on one thread in wasm, several times slower.
//!
//! ```
//! use edgerec::hnsw::{HnswConfig, HnswIndex};
//!
//! let (rows, dim) = (500, 8);
//! let values: Vec<f32> = (0..rows * dim).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0).collect();
//! let index = HnswIndex::build(rows, dim, &values, HnswConfig { seed: 7, ..HnswConfig::default() })?;
//!
//! // Top 3 rows for a query, best first, skipping row 0.
//! let query = &values[5 * dim..6 * dim];
//! let top = index.search(query, 3, |row| row == 0)?;
//! assert_eq!(top[0].0, 5);                     // a row is its own nearest neighbour
//! assert!((top[0].1 - 1.0).abs() < 1e-5);       // cosine with itself
//! assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
//!
//! // Build on the server, ship the graph, load it on the device.
//! let bytes = index.to_bytes();
//! let loaded = HnswIndex::from_bytes(&bytes)?;
//! assert_eq!(loaded.search(query, 3, |row| row == 0)?, top);
//! # Ok::<(), edgerec::Error>(())
//! ```
//!
//! # Determinism
//!
//! The seed ([`HnswConfig::seed`]) draws each point's layer; nothing comes from the
//! environment. Natively the graph is still built in parallel (rayon), so two native builds
//! with the same seed may give slightly different graphs; on wasm32 the build runs on one
//! thread, and `instant-distance`'s RNG differs between 32- and 64-bit targets, so a native
//! and a wasm build differ too. A graph that has been built searches deterministically, and
//! [`HnswIndex::to_bytes`] preserves it exactly: ship bytes, not seeds.
//!
//! `instant-distance` has no way to make a builder without first drawing a default seed from
//! the environment (`rand::random`, through getrandom), which ours then replaces: the value is
//! discarded, but building in wasm needs a host with `crypto.getRandomValues` (getrandom's
//! `js` backend, through wasm-bindgen). Loading and searching draw nothing.
//!
//! # Parameters
//!
//! `M` (links per node) is fixed at 32 by `instant-distance` (64 on the bottom layer).
//! `ef_construction` and `ef_search` are the paper's `efConstruction` and `ef`; `ef_search` is
//! stored in the graph and cannot change per query: each search collects `ef_search`
//! candidates, so `ef_search` bounds how many rows a query can return from the graph.

use std::collections::BinaryHeap;
use std::fmt;
use std::sync::{Mutex, TryLockError};

use instant_distance::{Builder, HnswMap, Point, Search};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::blend::Ranked;
use crate::limits::{check_matrix, check_query};
use crate::{BundleError, Error, Result};

/// The largest serialised graph [`HnswIndex::from_bytes`] accepts, in bytes (1 GiB); it also
/// bounds the memory of a decoded graph (see [`HnswIndex::build`]). At `dim = 64` it allows
/// about 1.5M rows (a graph takes about 610 bytes per row at 64 dimensions plus its upper
/// layers). Bytes are checked by an allocation-free pass before anything is decoded, so the
/// bound limits what a real graph may cost, not what a few forged bytes can ask for.
pub const MAX_GRAPH_BYTES: usize = 1 << 30;

/// The largest supported embedding dimension.
pub const MAX_DIM: usize = 65_536;

/// The largest supported `ef_construction` and `ef_search`.
pub const MAX_EF: usize = 10_000;

/// The version of the serialised graph layout written by [`HnswIndex::to_bytes`]. The layout is
/// bincode 2 (standard configuration) of `(version: u16, dim: u32, graph)`, where `graph` is
/// `instant-distance` 0.6's serde form of `HnswMap<point, u32>` (hence the exact version pin).
pub const FORMAT_VERSION: u16 = 1;

/// `M` in `instant-distance` (links per node on the upper layers; twice as many on layer 0).
const M: usize = 32;

/// An absent link in a node's list (`instant-distance`'s `INVALID` point id).
const INVALID: u32 = u32::MAX;

/// Largest allowed deviation of a stored row's norm from 1 (or exactly 0).
const NORM_TOLERANCE: f64 = 1e-3;

/// Build and search parameters (Malkov & Yashunin 2018). Defaults: `ef_construction = 100`,
/// `ef_search = 100`, `seed = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswConfig {
    /// `efConstruction`: the size of the candidate list while inserting a point. Higher builds
    /// a better graph, more slowly. `1..=MAX_EF`.
    pub ef_construction: usize,
    /// `ef`: the size of the candidate list while searching, stored in the graph. Higher gives
    /// better recall, more slowly; it should be at least the largest `k` plus the usual number
    /// of excluded rows (see [`HnswIndex::search`]). `1..=MAX_EF`.
    pub ef_search: usize,
    /// Seed for the layer assignment (see the module docs on determinism).
    pub seed: u64,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            ef_construction: 100,
            ef_search: 100,
            seed: 1,
        }
    }
}

/// A row's L2-normalised embedding (or all zeros), as a point of the graph.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct Unit(Vec<f32>);

impl Point for Unit {
    /// Cosine distance of normalised vectors, `1 − a·b`.
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

/// An HNSW graph over the L2-normalised rows of an `rows × dim` embedding matrix, searched by
/// cosine similarity (see the [module docs](self)).
///
/// Invariants: `1 ≤ dim ≤ MAX_DIM`; every stored point has `dim` finite values and norm 1 (or
/// is all zeros); the graph's values are the row indices `0..rows`, each exactly once; every
/// link points to an existing node. [`HnswIndex::from_bytes`] checks all of this.
pub struct HnswIndex {
    dim: usize,
    ef_search: usize,
    map: HnswMap<Unit, u32>,
    /// A search buffer reused across queries (it holds a `rows`-byte visited set, so a fresh
    /// one costs an O(rows) allocation and clear). Taken with `try_lock`: a concurrent search
    /// that finds it busy allocates its own instead of waiting.
    buffer: Mutex<Search>,
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndex")
            .field("rows", &self.len())
            .field("dim", &self.dim)
            .field("ef_search", &self.ef_search)
            .finish_non_exhaustive()
    }
}

impl HnswIndex {
    /// Builds the graph over a row-major `rows × dim` f32 matrix; row `i` is returned as `i`
    /// by [`HnswIndex::search`]. Rows are normalised to unit length (rows of zeros stay zero).
    ///
    /// Cost: roughly O(rows · log(rows) · ef_construction · dim); in parallel natively, on one
    /// thread in wasm. `rows = 0` gives an empty index, whose searches return nothing.
    ///
    /// Refuses (with [`Error::InvalidArgument`]) `dim = 0`, `dim > MAX_DIM`,
    /// `values.len() != rows · dim`, a non-finite value, `ef_construction` or `ef_search`
    /// outside `1..=MAX_EF`, and a `rows × dim` whose graph could exceed [`MAX_GRAPH_BYTES`]
    /// serialised or in memory (so every built index can be loaded back by
    /// [`HnswIndex::from_bytes`]).
    pub fn build(rows: usize, dim: usize, values: &[f32], config: HnswConfig) -> Result<HnswIndex> {
        check_dim(dim)?;
        for (name, ef) in [
            ("ef_construction", config.ef_construction),
            ("ef_search", config.ef_search),
        ] {
            if ef == 0 || ef > MAX_EF {
                return Err(Error::InvalidArgument(format!(
                    "hnsw: {name} {ef} is outside 1..={MAX_EF}"
                )));
            }
        }
        check_matrix("hnsw", rows, dim, values)?;
        // Upper layers hold about rows·mL/(1 − mL) ≈ 0.41·rows nodes (mL = 1/ln 32), and there
        // are O(log rows) of them: rows/2 and 64 are safe bounds.
        let bound = size_bound(rows, dim, rows / 2 + 1, 64);
        if rows >= u32::MAX as usize || bound > MAX_GRAPH_BYTES as u128 {
            return Err(Error::InvalidArgument(format!(
                "hnsw: a graph of {rows} rows × {dim} dims may take {bound} bytes, more than \
                 MAX_GRAPH_BYTES ({MAX_GRAPH_BYTES})"
            )));
        }
        let points: Vec<Unit> = values
            .chunks_exact(dim)
            .map(|row| Unit(normalised(row)))
            .collect();
        let ids: Vec<u32> = (0..rows as u32).collect();
        let map = Builder::default()
            .ef_construction(config.ef_construction)
            .ef_search(config.ef_search)
            .seed(config.seed)
            .build(points, ids);
        Ok(HnswIndex {
            dim,
            ef_search: config.ef_search,
            map,
            buffer: Mutex::new(Search::default()),
        })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.map.values.len()
    }

    /// Whether the index has no rows.
    pub fn is_empty(&self) -> bool {
        self.map.values.is_empty()
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `ef` as stored in the graph: the number of candidates each search collects.
    pub fn ef_search(&self) -> usize {
        self.ef_search
    }

    /// The `k` rows most similar to `query` by cosine similarity, as `(row, score)` pairs best
    /// first, skipping rows for which `exclude(row)` is true; equal scores are ordered by the
    /// lower row index first. Fewer than `k` pairs come back only when fewer rows are left; an
    /// empty index returns no pairs.
    ///
    /// The graph search collects `ef_search` candidates (ef ≥ k over-fetches), drops the
    /// excluded ones, and keeps the best `k`; `exclude` is called once per candidate.
    /// If exclusions (or `k > ef_search`) leave fewer than `k` candidates while the index holds
    /// rows the graph did not return, the search falls back to an exact scan of all rows,
    /// O(rows · dim), calling `exclude` again for rows that would enter the top `k` (so it
    /// should be a pure function of the row): a result is never cut short by exclusions, but
    /// many excluded rows near the query cost a flat scan. Choose `ef_search` ≥ `k` + the
    /// usual number of excluded rows to avoid it. The exact scan's rows are exact; the graph's
    /// are approximate (see the recall figures in the tests).
    ///
    /// Cost otherwise: about O(ef_search · log(rows) · dim); a search reuses one buffer held by
    /// the index, or allocates an O(rows)-byte one when another search is using it.
    ///
    /// Refuses (with [`Error::InvalidArgument`]) `k = 0` and a query whose length is not
    /// `dim`, that holds a non-finite value, or that is all zeros.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        exclude: impl Fn(usize) -> bool,
    ) -> Result<Vec<(usize, f32)>> {
        if k == 0 {
            return Err(Error::InvalidArgument("hnsw: k must be at least 1".into()));
        }
        let q = self.prepare(query)?;
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let (mut found, returned) = match self.buffer.try_lock() {
            Ok(mut buf) => self.graph_candidates(&q, &mut buf, &exclude),
            Err(TryLockError::Poisoned(p)) => {
                self.graph_candidates(&q, &mut p.into_inner(), &exclude)
            }
            Err(TryLockError::WouldBlock) => {
                self.graph_candidates(&q, &mut Search::default(), &exclude)
            }
        };
        if found.len() < k && returned < self.len() {
            return Ok(self.exact(&q, k, &exclude));
        }
        found.sort_unstable();
        found.truncate(k);
        Ok(found.into_iter().map(|r| (r.row, r.score)).collect())
    }

    /// The graph's candidates that are not excluded, with their scores, and the number of
    /// candidates the graph returned before exclusion.
    fn graph_candidates(
        &self,
        q: &Unit,
        buf: &mut Search,
        exclude: &impl Fn(usize) -> bool,
    ) -> (Vec<Ranked>, usize) {
        let mut returned = 0;
        let found = self
            .map
            .search(q, buf)
            .inspect(|_| returned += 1)
            .filter(|item| !exclude(*item.value as usize))
            .map(|item| Ranked {
                score: dot(&q.0, &item.point.0),
                row: *item.value as usize,
            })
            .collect();
        (found, returned)
    }

    /// Exact top `k` by a scan of every row with a bounded heap.
    fn exact(&self, q: &Unit, k: usize, exclude: &impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
        // The heap's top is the worst of the current best k.
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k.min(self.len()) + 1);
        // `iter` yields points in graph order; `values` maps them back to rows.
        for ((_, point), &row) in self.map.iter().zip(&self.map.values) {
            let cand = Ranked {
                score: dot(&q.0, &point.0),
                row: row as usize,
            };
            if heap.len() == k && heap.peek().is_some_and(|worst| cand >= *worst) {
                continue;
            }
            if exclude(cand.row) {
                continue;
            }
            heap.push(cand);
            if heap.len() > k {
                heap.pop();
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(|r| (r.row, r.score))
            .collect()
    }

    /// Checks and normalises a query.
    fn prepare(&self, query: &[f32]) -> Result<Unit> {
        check_query("hnsw", self.dim, query)?;
        if query.iter().all(|&v| v == 0.0) {
            return Err(Error::InvalidArgument(
                "hnsw: query is all zeros (cosine similarity is undefined)".into(),
            ));
        }
        Ok(Unit(normalised(query)))
    }

    /// The graph as bytes for [`HnswIndex::from_bytes`]: bincode 2 (standard configuration)
    /// of the format version, `dim` and the graph (see [`FORMAT_VERSION`]). At most
    /// [`MAX_GRAPH_BYTES`] long (guaranteed by [`HnswIndex::build`]). Cost: O(size).
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = StoredRef {
            version: FORMAT_VERSION,
            dim: self.dim as u32,
            map: &self.map,
        };
        // Serialising these types cannot fail: every sequence has a known length, and the
        // standard configuration has no size limit when encoding.
        bincode::serde::encode_to_vec(&stored, bincode::config::standard())
            .expect("bincode encodes an HNSW graph infallibly")
    }

    /// Loads a graph written by [`HnswIndex::to_bytes`] (possibly on another platform).
    ///
    /// Safe on untrusted bytes: never panics, and allocates nothing from a length it has not
    /// checked. The bytes are read twice: a first pass allocates nothing but checks the whole
    /// structure (format version, `dim`, every point's length, finiteness and unit norm, the
    /// node count of each layer, every link's target, that the values are a permutation of
    /// the rows, and that the decoded graph fits [`MAX_GRAPH_BYTES`] in memory); only then
    /// does bincode decode the graph, with `with_limit::<MAX_GRAPH_BYTES>()` on both passes.
    /// (In its serde path bincode counts the in-memory size of each decoded number against
    /// that limit, not what a sequence allocates: a `Vec` of empty `Vec`s costs 8 bytes per
    /// element against the limit but 24 in memory. The first pass bounds that, and checks what
    /// no limit can: links, rows, norms.)
    /// Cost: O(size).
    ///
    /// Refuses with [`BundleError::Malformed`] (`what = "hnsw"`): more than
    /// [`MAX_GRAPH_BYTES`] bytes, truncated or trailing bytes, another format version, and
    /// any inconsistency above.
    pub fn from_bytes(bytes: &[u8]) -> Result<HnswIndex> {
        if bytes.len() > MAX_GRAPH_BYTES {
            return Err(malformed(format!(
                "{} bytes, more than MAX_GRAPH_BYTES ({MAX_GRAPH_BYTES})",
                bytes.len()
            )));
        }
        let config = bincode::config::standard().with_limit::<MAX_GRAPH_BYTES>();
        let (shape, read): (Shape, usize) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| malformed(e.to_string()))?;
        if read != bytes.len() {
            return Err(malformed(format!(
                "{} trailing bytes after the graph",
                bytes.len() - read
            )));
        }
        let memory = size_bound(shape.points, shape.dim, shape.upper_nodes, shape.layers);
        if memory > MAX_GRAPH_BYTES as u128 {
            return Err(malformed(format!(
                "the graph would take {memory} bytes, more than MAX_GRAPH_BYTES \
                 ({MAX_GRAPH_BYTES})"
            )));
        }
        let (stored, read): (Stored, usize) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| malformed(e.to_string()))?;
        if read != bytes.len() || stored.map.values.len() != shape.points {
            // The first pass read the same bytes: this is unreachable unless the layouts of the
            // two passes disagree.
            return Err(malformed(
                "the graph does not match its checked shape".into(),
            ));
        }
        Ok(HnswIndex {
            dim: shape.dim,
            ef_search: shape.ef_search,
            map: stored.map,
            buffer: Mutex::new(Search::default()),
        })
    }
}

/// Dot product with eight independent accumulators (so LLVM can vectorise it). The same
/// function scores the graph's candidates and the exact scan, so both agree bit for bit.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `v / ‖v‖₂` (norm computed in f64), or zeros for a zero vector. `v` holds finite values.
fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return vec![0.0; v.len()];
    }
    v.iter().map(|&x| (f64::from(x) / norm) as f32).collect()
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidArgument(format!(
            "hnsw: dim {dim} is outside 1..={MAX_DIM}"
        )));
    }
    Ok(())
}

fn malformed(reason: String) -> Error {
    Error::Bundle(BundleError::Malformed {
        what: "hnsw".into(),
        reason,
    })
}

/// An upper bound, in bytes, on both the serialised size and the in-memory size of a graph
/// with `points` points of `dim` values, `upper_nodes` nodes over `layers` upper layers.
/// Serialised: a point is a length (≤ 5 bytes) and `4·dim` bytes, a link up to 5 bytes (64 on
/// layer 0, 32 above), a value up to 5 bytes. In memory: a point is a `Vec` (24 bytes) and
/// `4·dim` bytes, a link 4 bytes, a value 4 bytes, a layer a `Vec`.
fn size_bound(points: usize, dim: usize, upper_nodes: usize, layers: usize) -> u128 {
    let (points, dim, upper, layers) = (
        points as u128,
        dim as u128,
        upper_nodes as u128,
        layers as u128,
    );
    let per_point = 24 + 4 * dim + 5 * 2 * M as u128 + 5;
    64 + points * per_point + upper * 5 * M as u128 + layers * 24
}

/// The layout written by [`HnswIndex::to_bytes`].
#[derive(Serialize)]
struct StoredRef<'a> {
    version: u16,
    dim: u32,
    map: &'a HnswMap<Unit, u32>,
}

/// The layout read by [`HnswIndex::from_bytes`] once [`Shape`] has checked it.
#[derive(Deserialize)]
struct Stored {
    #[allow(dead_code)] // checked by `Shape`
    version: u16,
    #[allow(dead_code)] // checked by `Shape`
    dim: u32,
    map: HnswMap<Unit, u32>,
}

// ---------------------------------------------------------------------------------------------
// The checking pass: serde visitors that walk the same layout as `Stored` (bincode encodes a
// struct as its fields in order, a newtype as its content, a sequence as a length and its
// elements, a fixed array as its elements) without allocating from any length in the bytes.
//
// instant-distance 0.6's graph layout: `HnswMap { hnsw: Hnsw { ef_search: usize,
// points: Vec<P>, zero: Vec<ZeroNode>, layers: Vec<Vec<UpperNode>> }, values: Vec<V> }`,
// `ZeroNode([PointId; 64])`, `UpperNode([PointId; 32])`, `PointId(u32)`, `u32::MAX` = no link.
// `layers[i]` is upper layer `i + 1`; a search starts at point 0 of the top layer, follows
// links within a layer, and carries the best nodes down to the next layer: so each layer's
// links must point inside that layer, and each layer may be no larger than the one below.
// ---------------------------------------------------------------------------------------------

/// What the checking pass learnt.
struct Shape {
    dim: usize,
    ef_search: usize,
    points: usize,
    upper_nodes: usize,
    layers: usize,
}

fn next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    what: &str,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom(format!("missing {what}")))
}

fn next_seed<'de, A: SeqAccess<'de>, S: DeserializeSeed<'de>>(
    seq: &mut A,
    seed: S,
    what: &str,
) -> Result<S::Value, A::Error> {
    seq.next_element_seed(seed)?
        .ok_or_else(|| de::Error::custom(format!("missing {what}")))
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an edgerec HNSW graph")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let version: u16 = next(&mut seq, "format version")?;
                if version != FORMAT_VERSION {
                    return Err(de::Error::custom(format!(
                        "format version {version} (this reader supports {FORMAT_VERSION})"
                    )));
                }
                let dim = next::<_, u32>(&mut seq, "dim")? as usize;
                if dim == 0 || dim > MAX_DIM {
                    return Err(de::Error::custom(format!(
                        "dim {dim} is outside 1..={MAX_DIM}"
                    )));
                }
                // HnswMap { hnsw, values }
                let graph = next_seed(&mut seq, Tuple(2, MapSeed { dim }), "graph")?;
                Ok(Shape { dim, ..graph })
            }
        }
        d.deserialize_tuple(3, V)
    }
}

/// Deserialises a fixed-length tuple (a struct or an array in bincode) with the inner seed's
/// visitor.
struct Tuple<S>(usize, S);

impl<'de, S: Visitor<'de>> DeserializeSeed<'de> for Tuple<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        d.deserialize_tuple(self.0, self.1)
    }
}

/// Deserialises a length-prefixed sequence with the inner visitor.
struct Seq<S>(S);

impl<'de, S: Visitor<'de>> DeserializeSeed<'de> for Seq<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        d.deserialize_seq(self.0)
    }
}

macro_rules! expecting {
    ($what:literal) => {
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str($what)
        }
    };
}

/// `HnswMap { hnsw: Hnsw { ef_search, points, zero, layers }, values }`.
struct MapSeed {
    dim: usize,
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = Shape;
    expecting!("an HnswMap");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let shape = next_seed(&mut seq, Tuple(4, HnswSeed { dim: self.dim }), "hnsw")?;
        next_seed(&mut seq, Seq(ValuesSeed { n: shape.points }), "values")?;
        Ok(shape)
    }
}

struct HnswSeed {
    dim: usize,
}

impl<'de> Visitor<'de> for HnswSeed {
    type Value = Shape;
    expecting!("an Hnsw");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let ef_search: u64 = next(&mut seq, "ef_search")?;
        if ef_search == 0 || ef_search > MAX_EF as u64 {
            return Err(de::Error::custom(format!(
                "ef_search {ef_search} is outside 1..={MAX_EF}"
            )));
        }
        let points = next_seed(&mut seq, Seq(PointsSeed { dim: self.dim }), "points")?;
        let zero = next_seed(&mut seq, Seq(ZeroSeed { n: points }), "layer 0")?;
        if zero != points {
            return Err(de::Error::custom(format!(
                "layer 0 has {zero} nodes for {points} points"
            )));
        }
        let (layers, upper_nodes) = next_seed(&mut seq, Seq(LayersSeed { n: points }), "layers")?;
        Ok(Shape {
            dim: self.dim,
            ef_search: ef_search as usize,
            points,
            upper_nodes,
            layers,
        })
    }
}

/// The points: returns their count.
struct PointsSeed {
    dim: usize,
}

impl<'de> Visitor<'de> for PointsSeed {
    type Value = usize;
    expecting!("a list of points");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        while seq
            .next_element_seed(Seq(PointSeed { dim: self.dim }))?
            .is_some()
        {
            count += 1;
            if count >= u32::MAX as usize {
                return Err(de::Error::custom("too many points"));
            }
        }
        Ok(count)
    }
}

/// One point: exactly `dim` finite values with norm 1 or 0.
struct PointSeed {
    dim: usize,
}

impl<'de> Visitor<'de> for PointSeed {
    type Value = ();
    expecting!("a point");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (mut len, mut norm2) = (0usize, 0.0f64);
        while let Some(v) = seq.next_element::<f32>()? {
            len += 1;
            if len > self.dim {
                return Err(de::Error::custom(format!(
                    "a point has more than {} values",
                    self.dim
                )));
            }
            if !v.is_finite() {
                return Err(de::Error::custom(format!("a point holds {v}")));
            }
            norm2 += f64::from(v) * f64::from(v);
        }
        if len != self.dim {
            return Err(de::Error::custom(format!(
                "a point has {len} values, dim is {}",
                self.dim
            )));
        }
        let norm = norm2.sqrt();
        if norm != 0.0 && (norm - 1.0).abs() > NORM_TOLERANCE {
            return Err(de::Error::custom(format!("a point has norm {norm}, not 1")));
        }
        Ok(())
    }
}

/// Layer 0: nodes of `2·M` links to points `< n`; returns the node count.
struct ZeroSeed {
    n: usize,
}

impl<'de> Visitor<'de> for ZeroSeed {
    type Value = usize;
    expecting!("layer 0");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        let node = || {
            Tuple(
                2 * M,
                NodeSeed {
                    width: 2 * M,
                    bound: self.n,
                },
            )
        };
        while seq.next_element_seed(node())?.is_some() {
            count += 1;
            if count > self.n {
                return Err(de::Error::custom("layer 0 has more nodes than points"));
            }
        }
        Ok(count)
    }
}

/// The upper layers, each non-empty and no larger than the one below; returns the number of
/// layers and of nodes.
struct LayersSeed {
    n: usize,
}

impl<'de> Visitor<'de> for LayersSeed {
    type Value = (usize, usize);
    expecting!("the upper layers");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(usize, usize), A::Error> {
        let (mut layers, mut nodes, mut below) = (0usize, 0usize, self.n);
        while let Some(len) = seq.next_element_seed(Seq(LayerSeed { max_len: below }))? {
            if len == 0 {
                return Err(de::Error::custom("an upper layer is empty"));
            }
            layers += 1;
            nodes += len;
            below = len;
        }
        Ok((layers, nodes))
    }
}

/// One upper layer: at most `max_len` nodes of `M` links, each to a node of this layer;
/// returns the node count.
struct LayerSeed {
    max_len: usize,
}

impl<'de> Visitor<'de> for LayerSeed {
    type Value = usize;
    expecting!("an upper layer");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let (mut count, mut top) = (0usize, None::<u32>);
        let node = || {
            Tuple(
                M,
                NodeSeed {
                    width: M,
                    bound: self.max_len,
                },
            )
        };
        while let Some(max) = seq.next_element_seed(node())? {
            count += 1;
            if count > self.max_len {
                return Err(de::Error::custom(
                    "an upper layer is larger than the one below",
                ));
            }
            top = top.max(max);
        }
        if let Some(top) = top
            && top as usize >= count
        {
            return Err(de::Error::custom(format!(
                "a link to node {top} in an upper layer of {count} nodes"
            )));
        }
        Ok(count)
    }
}

/// One node: `width` links, each `INVALID` or `< bound`; returns the highest link.
struct NodeSeed {
    width: usize,
    bound: usize,
}

impl<'de> Visitor<'de> for NodeSeed {
    type Value = Option<u32>;
    expecting!("a node");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<u32>, A::Error> {
        let mut top = None;
        for _ in 0..self.width {
            let pid: u32 = next(&mut seq, "link")?;
            if pid != INVALID {
                if pid as usize >= self.bound {
                    return Err(de::Error::custom(format!(
                        "a link to point {pid} of {}",
                        self.bound
                    )));
                }
                top = top.max(Some(pid));
            }
        }
        Ok(top)
    }
}

/// The values: a permutation of `0..n`.
struct ValuesSeed {
    n: usize,
}

impl<'de> Visitor<'de> for ValuesSeed {
    type Value = ();
    expecting!("the row of each point");
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // `n` points were read from the bytes, so this is smaller than the input.
        let mut seen = vec![false; self.n];
        let mut count = 0usize;
        while let Some(row) = seq.next_element::<u32>()? {
            let slot = seen.get_mut(row as usize).ok_or_else(|| {
                de::Error::custom(format!("row {row} of a graph of {} rows", self.n))
            })?;
            if std::mem::replace(slot, true) {
                return Err(de::Error::custom(format!("row {row} appears twice")));
            }
            count += 1;
        }
        if count != self.n {
            return Err(de::Error::custom(format!(
                "{count} rows for {} points",
                self.n
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::rng::SplitMix64;

    /// `rows × dim` points around `clusters` random centres (noise 0.4 per coordinate), then
    /// `extra` more points from the same centres (queries).
    fn clustered_with(
        seed: u64,
        rows: usize,
        extra: usize,
        dim: usize,
        clusters: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut rng = SplitMix64::new(seed);
        let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.signed_unit()).collect();
        let mut values = Vec::with_capacity((rows + extra) * dim);
        for _ in 0..rows + extra {
            let c = (rng.next_u64() % clusters as u64) as usize;
            for j in 0..dim {
                values.push(centres[c * dim + j] + 0.4 * rng.signed_unit());
            }
        }
        let queries = values.split_off(rows * dim);
        (values, queries)
    }

    fn clustered(seed: u64, rows: usize, dim: usize, clusters: usize) -> Vec<f32> {
        clustered_with(seed, rows, 0, dim, clusters).0
    }

    /// Mean recall@k of `index` against brute force over `queries`.
    fn recall(index: &HnswIndex, values: &[f32], queries: &[f32], k: usize) -> f64 {
        let dim = index.dim();
        let mut hits = 0usize;
        for query in queries.chunks_exact(dim) {
            let exact = brute_force(values, dim, query, k, |_| false);
            let found = index.search(query, k, |_| false).unwrap();
            assert_eq!(found.len(), k);
            hits += found.iter().filter(|(row, _)| exact.contains(row)).count();
        }
        hits as f64 / (queries.len() / dim * k) as f64
    }

    /// Exact cosine top `k` by sort-and-truncate (f64, independent of the module's code).
    fn brute_force(
        values: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        skip: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let qn = norm(query);
        let mut scored: Vec<(f64, usize)> = values
            .chunks_exact(dim)
            .enumerate()
            .filter(|(i, _)| !skip(*i))
            .map(|(i, row)| {
                let d: f64 = row
                    .iter()
                    .zip(query)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                (d / (norm(row) * qn), i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, i)| i).collect()
    }

    fn small_index(seed: u64) -> (Vec<f32>, HnswIndex) {
        let (rows, dim) = (300, 8);
        let values = clustered(seed, rows, dim, 10);
        let index = HnswIndex::build(
            rows,
            dim,
            &values,
            HnswConfig {
                seed,
                ..HnswConfig::default()
            },
        )
        .unwrap();
        (values, index)
    }

    fn is_malformed(r: &Result<HnswIndex>) -> bool {
        matches!(r, Err(Error::Bundle(BundleError::Malformed { .. })))
    }

    #[test]
    fn recall_at_10_against_brute_force() {
        let (seed, rows, dim, clusters, queries, k) = (42u64, 5_000, 32, 50, 100, 10);
        // Queries come from the same clusters as the rows, as user embeddings do.
        let (values, near) = clustered_with(seed, rows, queries, dim, clusters);
        let index = HnswIndex::build(
            rows,
            dim,
            &values,
            HnswConfig {
                seed,
                ..HnswConfig::default()
            },
        )
        .unwrap();
        let r = recall(&index, &values, &near, k);
        eprintln!(
            "hnsw recall@{k}: {r:.4} (seed {seed}, {rows} × {dim}, {queries} in-cluster queries)"
        );
        assert!(
            r >= 0.95,
            "seed {seed}: recall@{k} = {r:.4} over {queries} in-cluster queries of {rows} × {dim}"
        );
        // Queries from other centres fall between the clusters, where the graph is sparse:
        // recall is lower (0.93–0.95 over native builds at ef_search = 100; a parallel build is not
        // deterministic); this guards against a collapse.
        let far = clustered(seed ^ 0xABCD, queries, dim, clusters);
        let r = recall(&index, &values, &far, k);
        eprintln!(
            "hnsw recall@{k}: {r:.4} (seed {seed}, {rows} × {dim}, {queries} off-cluster queries)"
        );
        assert!(
            r >= 0.90,
            "seed {seed}: recall@{k} = {r:.4} over {queries} off-cluster queries of {rows} × {dim}"
        );
    }

    #[test]
    fn scores_are_cosine_best_first() {
        let (values, index) = small_index(3);
        let dim = index.dim();
        let query = &values[7 * dim..8 * dim];
        let found = index.search(query, 10, |_| false).unwrap();
        assert_eq!(found[0].0, 7);
        assert!((found[0].1 - 1.0).abs() < 1e-5);
        for w in found.windows(2) {
            assert!(w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0));
        }
        // Scores are the cosine of the raw rows, scale-free in the query.
        let scaled: Vec<f32> = query.iter().map(|x| x * 37.5).collect();
        assert_eq!(
            index
                .search(&scaled, 10, |_| false)
                .unwrap()
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            found.iter().map(|p| p.0).collect::<Vec<_>>()
        );
        for &(row, score) in &found {
            let r = &values[row * dim..(row + 1) * dim];
            let cos = r
                .iter()
                .zip(query)
                .map(|(a, b)| f64::from(a * b))
                .sum::<f64>()
                / (r.iter().map(|a| f64::from(a * a)).sum::<f64>().sqrt()
                    * query.iter().map(|a| f64::from(a * a)).sum::<f64>().sqrt());
            assert!(
                (f64::from(score) - cos).abs() < 1e-5,
                "row {row}: {score} vs {cos}"
            );
        }
    }

    #[test]
    fn exclusions_are_respected_and_never_cut_the_list() {
        let (values, index) = small_index(5);
        let dim = index.dim();
        let query = &values[11 * dim..12 * dim];
        let plain = index.search(query, 10, |_| false).unwrap();
        let banned: Vec<usize> = plain.iter().take(5).map(|p| p.0).collect();
        let found = index.search(query, 10, |r| banned.contains(&r)).unwrap();
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|(r, _)| !banned.contains(r)));
        // Excluding all but a few rows: the graph's ef candidates run out, the exact scan
        // takes over and still returns k rows, equal to brute force.
        let keep = |r: usize| r % 50 == 3;
        let found = index.search(query, 5, |r| !keep(r)).unwrap();
        let exact = brute_force(&values, dim, query, 5, |r| !keep(r));
        assert_eq!(found.iter().map(|p| p.0).collect::<Vec<_>>(), exact);
        // k above ef_search without exclusions: also the exact scan.
        let found = index.search(query, 150, |_| false).unwrap();
        assert_eq!(found.len(), 150);
        assert_eq!(
            found.iter().map(|p| p.0).collect::<Vec<_>>(),
            brute_force(&values, dim, query, 150, |_| false)
        );
        // Everything excluded: nothing left.
        assert!(index.search(query, 10, |_| true).unwrap().is_empty());
        // k above the number of rows: all rows.
        assert_eq!(index.search(query, 1_000, |_| false).unwrap().len(), 300);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let (values, index) = small_index(9);
        let bad = |r: Result<Vec<(usize, f32)>>| matches!(r, Err(Error::InvalidArgument(_)));
        assert!(bad(index.search(&values[..7], 3, |_| false)));
        assert!(bad(index.search(&values[..9], 3, |_| false)));
        assert!(bad(index.search(&values[..8], 0, |_| false)));
        assert!(bad(index.search(&[0.0; 8], 3, |_| false)));
        assert!(bad(index.search(
            &[f32::NAN, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            3,
            |_| false
        )));
        let build_bad = |r: Result<HnswIndex>| matches!(r, Err(Error::InvalidArgument(_)));
        let c = HnswConfig::default();
        assert!(build_bad(HnswIndex::build(2, 0, &[], c)));
        assert!(build_bad(HnswIndex::build(2, 3, &[1.0; 5], c)));
        assert!(build_bad(HnswIndex::build(1, 2, &[1.0, f32::INFINITY], c)));
        assert!(build_bad(HnswIndex::build(
            1,
            2,
            &[1.0, 0.0],
            HnswConfig { ef_search: 0, ..c }
        )));
        assert!(build_bad(HnswIndex::build(
            1,
            2,
            &[1.0, 0.0],
            HnswConfig {
                ef_construction: MAX_EF + 1,
                ..c
            }
        )));
        assert!(build_bad(HnswIndex::build(usize::MAX / 2, 4, &[], c)));
        // Too large to serialise within MAX_GRAPH_BYTES: refused before any work.
        assert!(build_bad(HnswIndex::build(2_000_000, 64, &[], c)));
    }

    #[test]
    fn empty_index_returns_nothing_and_roundtrips() {
        let index = HnswIndex::build(0, 4, &[], HnswConfig::default()).unwrap();
        assert!(index.is_empty());
        assert_eq!(
            index.search(&[1.0, 0.0, 0.0, 0.0], 5, |_| false).unwrap(),
            vec![]
        );
        // The query is still checked.
        assert!(matches!(
            index.search(&[1.0], 5, |_| false),
            Err(Error::InvalidArgument(_))
        ));
        let loaded = HnswIndex::from_bytes(&index.to_bytes()).unwrap();
        assert!(loaded.is_empty());
        assert_eq!(loaded.dim(), 4);
    }

    #[test]
    fn zero_rows_score_zero() {
        let values = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0];
        let index = HnswIndex::build(4, 2, &values, HnswConfig::default()).unwrap();
        let found = index.search(&[1.0, 0.0], 4, |_| false).unwrap();
        assert_eq!(found, vec![(0, 1.0), (1, 0.0), (2, 0.0), (3, 0.0)]);
    }

    #[test]
    fn roundtrip_gives_identical_results() {
        let (values, index) = small_index(11);
        let bytes = index.to_bytes();
        let loaded = HnswIndex::from_bytes(&bytes).unwrap();
        assert_eq!(
            (loaded.len(), loaded.dim(), loaded.ef_search()),
            (300, 8, 100)
        );
        assert_eq!(loaded.to_bytes(), bytes);
        for query in values.chunks_exact(8).step_by(7) {
            for k in [1, 10, 120] {
                assert_eq!(
                    loaded.search(query, k, |r| r % 3 == 0).unwrap(),
                    index.search(query, k, |r| r % 3 == 0).unwrap()
                );
            }
        }
    }

    #[test]
    fn from_bytes_refuses_bad_blobs() {
        let (_, index) = small_index(13);
        let bytes = index.to_bytes();
        // Trailing bytes.
        let mut long = bytes.clone();
        long.push(0);
        assert!(is_malformed(&HnswIndex::from_bytes(&long)));
        // Another format version (the first byte, a varint u16).
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(is_malformed(&HnswIndex::from_bytes(&other)));
        // Too long overall.
        assert!(is_malformed(&HnswIndex::from_bytes(&vec![
            0u8;
            MAX_GRAPH_BYTES
                + 1
        ])));
        assert!(is_malformed(&HnswIndex::from_bytes(&[])));
        // A graph whose dim disagrees with its points: a 1 × 2 graph relabelled as dim 3.
        let tiny = HnswIndex::build(1, 2, &[0.6, 0.8], HnswConfig::default())
            .unwrap()
            .to_bytes();
        assert_eq!(tiny[1], 2);
        let mut wrong_dim = tiny.clone();
        wrong_dim[1] = 3;
        assert!(is_malformed(&HnswIndex::from_bytes(&wrong_dim)));
        assert!(HnswIndex::from_bytes(&tiny).is_ok());
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Format version 1, kept as test data: the graph of
    /// `build(4, 2, &[1.0, 0.0, 0.6, 0.8, 0.0, 1.0, -1.0, 0.1], HnswConfig::default())` as
    /// written natively on x86-64. Version 1, dim 2, ef_search 100; four unit points in graph
    /// order; layer 0, each node its links then `u32::MAX` (varint `fc ff ff ff ff`) up to 64;
    /// no upper layer; the row of each point.
    fn golden_v1() -> Vec<u8> {
        let node = |links: &str| {
            let mut v = hex(links);
            v.extend(hex("fcffffffff").repeat(64 - links.len() / 2));
            v
        };
        let mut b = hex(concat!(
            "01", "02", "64", // version, dim, ef_search
            "04", "02", "0000803f", "00000000", // 4 points: (1, 0)
            "02", "00000000", "0000803f", // (0, 1)
            "02", "9a99193f", "cdcc4c3f", // (0.6, 0.8)
            "02", "c2ba7ebf", "9bc8cb3d", // (−0.995, 0.0995)
            "04",       // 4 nodes on layer 0
        ));
        for links in ["020103", "020300", "010003", "010200"] {
            b.extend(node(links));
        }
        b.extend(hex(concat!("00", "04", "00020103"))); // no upper layer; rows 0, 2, 1, 3
        b
    }

    #[test]
    fn format_v1_golden_blob_loads_and_reencodes() {
        let golden = golden_v1();
        assert_eq!(golden.len(), 1279);
        let index = HnswIndex::from_bytes(&golden).unwrap();
        assert_eq!((index.len(), index.dim(), index.ef_search()), (4, 2, 100));
        assert_eq!(index.to_bytes(), golden);
        let found = index.search(&[2.0, 0.0], 4, |_| false).unwrap();
        assert_eq!(found.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
        let expected = [1.0, 0.6, 0.0, -1.0 / 1.01f32.sqrt()];
        for ((_, score), e) in found.iter().zip(expected) {
            assert!((score - e).abs() < 1e-6, "{score} vs {e}");
        }
        // A link to a point that does not exist is refused.
        let mut bad = golden.clone();
        let first_link = 4 + 4 * 9 + 1;
        assert_eq!(bad[first_link], 2);
        bad[first_link] = 4;
        assert!(is_malformed(&HnswIndex::from_bytes(&bad)));
        // A row twice is refused.
        let mut bad = golden.clone();
        let n = bad.len();
        bad[n - 1] = 2;
        assert!(is_malformed(&HnswIndex::from_bytes(&bad)));
        // A point that is not of unit norm is refused.
        let mut bad = golden;
        bad[5..9].copy_from_slice(&2.0f32.to_le_bytes());
        assert!(is_malformed(&HnswIndex::from_bytes(&bad)));
    }

    #[test]
    fn every_truncation_is_refused() {
        let (_, index) = small_index(17);
        let bytes = index.to_bytes();
        for len in (0..bytes.len())
            .step_by(7)
            .chain(bytes.len() - 8..bytes.len())
        {
            assert!(
                is_malformed(&HnswIndex::from_bytes(&bytes[..len])),
                "prefix of {len} bytes accepted"
            );
        }
    }

    /// A blob that loads must also search without panicking.
    fn load_and_search(bytes: &[u8]) {
        if let Ok(index) = HnswIndex::from_bytes(bytes) {
            let mut q = vec![0.0; index.dim()];
            q[0] = 1.0;
            let found = index.search(&q, 5, |_| false).unwrap();
            assert!(found.iter().all(|&(r, _)| r < index.len()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            load_and_search(&bytes);
        }

        #[test]
        fn random_bytes_with_a_valid_header_never_panic(dim in 1u8..5, rest in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut bytes = vec![1, dim];
            bytes.extend(rest);
            load_and_search(&bytes);
        }

        #[test]
        fn corrupted_blobs_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
            // A 120-point graph has one upper layer.
            let values = clustered(19, 120, 3, 4);
            let bytes = HnswIndex::build(120, 3, &values, HnswConfig { seed: 19, ..HnswConfig::default() }).unwrap().to_bytes();
            let mut bad = bytes.clone();
            for (at, byte) in &edits {
                bad[at.index(bytes.len())] = *byte;
            }
            load_and_search(&bad);
            let cut = cut.index(bytes.len());
            prop_assert!(HnswIndex::from_bytes(&bytes[..cut]).is_err());
        }
    }
}
