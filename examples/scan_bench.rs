//! Flat scan benchmark: exact f32 brute force against the int8 [`QuantizedIndex`] scan.
//!
//! Builds seeded random indexes of 20,000 and 100,000 rows × 64 dims, times a top-10 scan of
//! each (median of several runs over fixed queries, `std::time::Instant`) and prints both
//! timings side by side with their ratio, the bytes each representation holds and the top-10
//! overlap of the int8 scan with the exact one. Speed is reported, never asserted.
//!
//! This measures the native build (the portable kernel). On this machine (x86-64 baseline
//! SSE2, two shared cores) a release run gave, for 100k × 64: f32 0.56–0.63 ms, int8
//! 0.88–0.92 ms (0.6–0.7×), 25.6 MB against 6.8 MB (3.76×), top-10 overlap 0.96: natively the
//! int8 index buys memory, not speed. The device build is wasm32 with SIMD128, where the same
//! scan measured 0.27 ms against 0.61–0.65 ms for f32 (about 2.3×) in node 20 — see the
//! `edgerec::quant` module docs.
//!
//! ```text
//! cargo run --release -p edgerec --example scan_bench
//! ```

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use edgerec::quant::QuantizedIndex;

const SEED: u64 = 0x5CA7_BE7C;
const DIM: usize = 64;
const K: usize = 10;
const RUNS: usize = 15;
const QUERIES: usize = 8;

/// splitmix64, so every run sees the same data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = 1.0 - (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let v = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Heap entry: "less" is better (higher score, then lower row), as in the int8 scan.
#[derive(Clone, Copy, PartialEq)]
struct Cand(f32, usize);

impl Eq for Cand {}

impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// An f32 dot with eight independent accumulators, so LLVM can vectorise it.
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, p), q) in acc.iter_mut().zip(x).zip(y) {
            *l += p * q;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The reference: exact f32 brute force with the same bounded heap as the int8 scan.
fn f32_top_k(values: &[f32], query: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (row, x) in values.chunks_exact(query.len()).enumerate() {
        let c = Cand(dot_f32(x, query), row);
        if heap.len() < k {
            heap.push(c);
        } else if let Some(mut worst) = heap.peek_mut()
            && c < *worst
        {
            *worst = c;
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|c| (c.1, c.0))
        .collect()
}

/// Median per-query time of `scan` over `RUNS` passes over all queries.
fn median_time(
    queries: &[Vec<f32>],
    mut scan: impl FnMut(&[f32]) -> Vec<(usize, f32)>,
) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for q in queries {
                black_box(scan(black_box(q)));
            }
            start.elapsed() / queries.len() as u32
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() -> edgerec::Result<()> {
    println!(
        "flat top-{K} scan, dim {DIM}, seed {SEED:#x}, median of {RUNS} runs × {QUERIES} queries{}",
        if cfg!(debug_assertions) {
            "  (DEBUG BUILD: use --release for real numbers)"
        } else {
            ""
        }
    );
    println!(
        "{:>8}  {:>11}  {:>11}  {:>7}  {:>10}  {:>10}  {:>6}  {:>8}",
        "rows", "f32 ms", "int8 ms", "speedup", "f32 bytes", "int8 bytes", "ratio", "overlap"
    );
    for rows in [20_000, 100_000] {
        let mut rng = Rng(SEED ^ rows as u64);
        let values: Vec<f32> = (0..rows * DIM).map(|_| rng.normal()).collect();
        let queries: Vec<Vec<f32>> = (0..QUERIES)
            .map(|_| (0..DIM).map(|_| rng.normal()).collect())
            .collect();
        let index = QuantizedIndex::from_f32(rows, DIM, &values)?;

        let mut overlap = 0usize;
        for q in &queries {
            let exact = f32_top_k(&values, q, K);
            let approx = index.scan_top_k(q, K, |_| false)?;
            overlap += approx
                .iter()
                .filter(|(r, _)| exact.iter().any(|(e, _)| e == r))
                .count();
        }

        let t_f32 = median_time(&queries, |q| f32_top_k(&values, q, K));
        let t_i8 = median_time(&queries, |q| {
            index.scan_top_k(q, K, |_| false).unwrap_or_default()
        });
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:>8}  {:>11.3}  {:>11.3}  {:>6.2}×  {:>10}  {:>10}  {:>5.2}×  {:>8.3}",
            rows,
            ms(t_f32),
            ms(t_i8),
            t_f32.as_secs_f64() / t_i8.as_secs_f64(),
            values.len() * 4,
            index.bytes(),
            (values.len() * 4) as f64 / index.bytes() as f64,
            overlap as f64 / (K * QUERIES) as f64,
        );
    }
    Ok(())
}
