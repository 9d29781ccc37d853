//! What the benchmark examples share: seeded data, the exact f32 reference scan and the timer.
//! (A directory module, so cargo does not take it for an example of its own.)

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use edgerec::rng::SplitMix64;

/// The project's seeded generator ([`edgerec::rng::SplitMix64`]) with the `f32` draws the
/// benchmarks use, so every run sees the same data.
pub struct Rng(SplitMix64);

impl Rng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f32 {
        self.0.normal() as f32
    }

    /// Uniform in `[0, 1)`, 24 random bits.
    #[allow(dead_code)] // not every benchmark draws uniforms
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
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
