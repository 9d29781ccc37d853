//! HNSW benchmark: exact f32 brute force against [`HnswIndex`] search, plus build and load
//! times.
//!
//! Builds seeded clustered data (1,000 centres, Gaussian noise) of 20,000 and 100,000 rows × 64
//! dims, times the graph build, `to_bytes` size and `from_bytes` time, then a top-10 query
//! (median of several runs over fixed in-cluster queries, `std::time::Instant`) by an exact
//! cosine scan over the normalised f32 rows and by the graph, side by side with their ratio
//! and the graph's recall@10 against the exact scan. Speed is reported, never asserted.
//!
//! This measures the native build, where the graph is built in parallel (rayon) and so is not
//! deterministic: recall may vary slightly between runs. In wasm the build is single-threaded
//! and several times slower (build on the server, ship the bytes).
//!
//! On this machine (x86-64, two cores shared with other builds) a release run gave:
//!
//! ```text
//!     rows   build s       bytes   load ms    exact ms     hnsw ms   speedup  recall@10
//!    20000       5.7     9720400      16.9       0.088       0.171      0.5×      1.000
//!   100000      27.1    53248161     129.8       0.591       0.184      3.2×      1.000
//! ```
//!
//! The release profile optimises dependencies (instant-distance among them) for size
//! (`opt-level = "z"`, for the wasm build), which slows the graph's search and build.
//!
//! ```text
//! cargo run --release -p edgerec --example hnsw_bench
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{Rng, f32_top_k, median_time};
use edgerec::hnsw::{HnswConfig, HnswIndex};

const SEED: u64 = 0x4E53_57BE;
const DIM: usize = 64;
const K: usize = 10;
const CENTRES: usize = 1_000;
const RUNS: usize = 9;
const QUERIES: usize = 50;

/// `n` rows around the given centres, noise 0.5 per coordinate.
fn around(rng: &mut Rng, centres: &[f32], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = (rng.next_u64() % CENTRES as u64) as usize;
        for j in 0..DIM {
            out.push(centres[c * DIM + j] + 0.5 * rng.normal());
        }
    }
    out
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The reference: exact cosine top-k over pre-normalised rows (the query is normalised per
/// call, as the graph does).
fn cosine_top_k(unit_rows: &[f32], query: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut q = query.to_vec();
    normalise(&mut q);
    f32_top_k(unit_rows, &q, k)
}

fn main() -> edgerec::Result<()> {
    let config = HnswConfig::default();
    println!(
        "HNSW vs exact cosine top-{K}, dim {DIM}, {CENTRES} clusters, seed {SEED:#x}, \
         ef_construction {}, ef_search {}, median of {RUNS} runs × {QUERIES} queries{}",
        config.ef_construction,
        config.ef_search,
        if cfg!(debug_assertions) {
            "  (DEBUG BUILD: use --release for real numbers)"
        } else {
            ""
        }
    );
    println!(
        "{:>8}  {:>8}  {:>10}  {:>8}  {:>10}  {:>10}  {:>8}  {:>9}",
        "rows", "build s", "bytes", "load ms", "exact ms", "hnsw ms", "speedup", "recall@10"
    );
    for rows in [20_000, 100_000] {
        let mut rng = Rng::new(SEED ^ rows as u64);
        let centres: Vec<f32> = (0..CENTRES * DIM).map(|_| rng.normal()).collect();
        let values = around(&mut rng, &centres, rows);
        let queries: Vec<Vec<f32>> = around(&mut rng, &centres, QUERIES)
            .chunks_exact(DIM)
            .map(<[f32]>::to_vec)
            .collect();
        let mut unit_rows = values.clone();
        unit_rows.chunks_exact_mut(DIM).for_each(normalise);

        let start = Instant::now();
        let index = HnswIndex::build(rows, DIM, &values, config)?;
        let build = start.elapsed();
        let bytes = index.to_bytes();
        let start = Instant::now();
        let loaded = HnswIndex::from_bytes(&bytes)?;
        let load = start.elapsed();

        let mut hits = 0usize;
        for q in &queries {
            let exact = cosine_top_k(&unit_rows, q, K);
            let approx = loaded.search(q, K, |_| false)?;
            hits += approx
                .iter()
                .filter(|(r, _)| exact.iter().any(|(e, _)| e == r))
                .count();
        }

        let t_exact = median_time(RUNS, &queries, |q| cosine_top_k(&unit_rows, q, K));
        let t_hnsw = median_time(RUNS, &queries, |q| {
            loaded.search(q, K, |_| false).unwrap_or_default()
        });
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:>8}  {:>8.1}  {:>10}  {:>8.1}  {:>10.3}  {:>10.3}  {:>7.1}×  {:>9.3}",
            rows,
            build.as_secs_f64(),
            bytes.len(),
            ms(load),
            ms(t_exact),
            ms(t_hnsw),
            t_exact.as_secs_f64() / t_hnsw.as_secs_f64(),
            hits as f64 / (K * QUERIES) as f64,
        );
    }
    Ok(())
}
