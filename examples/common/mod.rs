//! What the benchmark examples share: seeded data, the exact f32 reference scan and the timer.
//! (A directory module, so cargo does not take it for an example of its own.)

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// splitmix64, so every run sees the same data.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = 1.0 - (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let v = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Heap entry: "less" is better (higher score, then lower row), as in the library's scans.
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
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
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

/// The reference: exact f32 brute force (dot products of `query` with the row-major `values`)
/// with a bounded heap, best first.
pub fn f32_top_k(values: &[f32], query: &[f32], k: usize) -> Vec<(usize, f32)> {
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

/// Median per-query time of `scan` over `runs` passes over all queries.
pub fn median_time(
    runs: usize,
    queries: &[Vec<f32>],
    mut scan: impl FnMut(&[f32]) -> Vec<(usize, f32)>,
) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for q in queries {
                black_box(scan(black_box(q)));
            }
            start.elapsed() / queries.len() as u32
        })
        .collect();
    times.sort();
    times[runs / 2]
}
