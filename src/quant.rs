//! Item embeddings quantised to int8 with per-row scales, and the flat scan over them.
//!
//! A [`QuantizedIndex`] stores each row `x` of an `rows × dim` embedding matrix as `dim` int8
//! codes `c` and one f32 scale `s`, with `x ≈ x̂ = s·c`. The quantisation is symmetric and per
//! row:
//!
//! * `s = max_j |x_j| / 127` (rounded up to the next f32, so `|x_j| / s ≤ 127` always holds);
//!   a row of zeros gets `s = 0` and all-zero codes;
//! * `c_j = round(x_j / s)` (half away from zero), clamped to `[-127, 127]`; `-128` is never
//!   produced, and [`QuantizedIndex::from_parts`] refuses it.
//!
//! A query is quantised by the same rule (one scale `s_q` for the whole query), the scan
//! computes exact integer dot products `Σ c_q·c_x` in i32, and the score of a row is
//! `dot · s_q · s_x` (evaluated in f64, rounded once to f32). The score is therefore exactly
//! `q̂·x̂` up to that last rounding.
//!
//! # Error bounds
//!
//! Per element, `|x_j − x̂_j| ≤ s/2` (in exact arithmetic; the f32 round trip of `x̂` may add
//! an ulp). For a query `q` and a row `x` of dimension `d`, writing `δx = x − x̂` and
//! `δq = q − q̂`, `q·x − q̂·x̂ = q·δx + δq·x − δq·δx`, hence
//!
//! ```text
//! |score − q·x| ≤ (‖q‖₁·s_x + ‖x‖₁·s_q) / 2 + d·s_q·s_x / 4      (+ f32 rounding of score)
//! ```
//!
//! Both bounds are checked by property tests on random vectors of widely varying magnitudes.
//! Scores are f32; for magnitudes beyond the f32 range they saturate to ±infinity, never NaN.
//!
//! # Size
//!
//! An index takes `rows·(dim + 4)` bytes instead of `4·rows·dim` for f32: `4·dim/(dim + 4)`
//! times smaller, 3.76× at `dim = 64`.
//!
//! ```
//! use edgerec::quant::QuantizedIndex;
//!
//! let (rows, dim) = (1_000, 64);
//! let values: Vec<f32> = (0..rows * dim).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0).collect();
//! let index = QuantizedIndex::from_f32(rows, dim, &values)?;
//! assert_eq!(index.bytes(), rows * dim + 4 * rows);   // codes + scales
//! assert_eq!(index.f32_bytes(), 4 * rows * dim);
//! assert!(index.f32_bytes() as f64 / index.bytes() as f64 > 3.7); // ≈ 4× smaller
//!
//! // Top 3 rows for a query, best first, skipping row 0.
//! let query = &values[5 * dim..6 * dim];
//! let top = index.scan_top_k(query, 3, |row| row == 0)?;
//! assert_eq!(top.len(), 3);
//! assert_eq!(top[0].0, 5);                      // a row scores best against itself here
//! assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
//! # Ok::<(), edgerec::Error>(())
//! ```
//!
//! # Kernels
//!
//! The integer dot products come from one of two kernels chosen at compile time; both return
//! bit-identical results (integer sums do not depend on their order):
//!
//! * on `wasm32` with `target_feature = "simd128"`: 16 codes per step, widened i8→i16
//!   (`i16x8_extend_low/high_i8x16`) and multiplied with `i32x4_dot_i16x8`, four rows per
//!   iteration so each widened query chunk is reused four times;
//! * everywhere else: a plain i16-product, i32-sum reduction that LLVM vectorises on its own
//!   (no `std::arch`, no `unsafe`).
//!
//! A unit test compares the compiled kernel with a portable reference dot on random codes;
//! natively it checks the portable kernel, and it checks the SIMD128 kernel when the unit
//! tests are built for wasm32 with `-C target-feature=+simd128` (the crate's unit tests do not
//! run under wasm today; the same comparison was run in node 20 on this file built alone for
//! wasm32+simd128, with no mismatch).
//!
//! Measured (node 20, release, 100k × 64, top 10): the SIMD128 dots take about 0.22 ms
//! (2.2 ns per row) and the whole scan about 0.27 ms, against 0.6 ms for an f32 brute-force
//! scan. Natively on baseline x86-64 (SSE2) the portable kernel is not faster than a
//! vectorised f32 scan; there the gain is the 3.8× smaller index. `examples/scan_bench.rs`
//! prints the native comparison.

use std::collections::BinaryHeap;

use crate::blend::Ranked;
use crate::limits::{check_matrix, check_query};
use crate::{Error, Result};

/// The largest supported `dim`: `dim · 127 · 127` must fit in an i32 accumulator.
pub const MAX_DIM: usize = 131_072;

/// Rows scored per kernel call during a scan (a stack buffer of i32 dots).
const BLOCK_ROWS: usize = 256;

/// An `rows × dim` matrix of int8 codes with one f32 scale per row (see the [module
/// docs](self) for the quantisation rule and its error bounds).
///
/// Invariants: `dim ≥ 1`, `dim ≤ MAX_DIM`, `codes.len() == rows · dim` (row-major),
/// `scales.len() == rows`, every code is in `[-127, 127]`, every scale is finite and `≥ 0`
/// (never `-0.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedIndex {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl QuantizedIndex {
    /// Quantises a row-major `rows × dim` f32 matrix, one scale per row. Cost: O(rows·dim).
    ///
    /// Refuses (with [`Error::InvalidArgument`]) `dim = 0`, `dim > MAX_DIM`,
    /// `values.len() != rows · dim` and any non-finite value. `rows = 0` gives an empty index.
    pub fn from_f32(rows: usize, dim: usize, values: &[f32]) -> Result<QuantizedIndex> {
        check_dim(dim)?;
        let expected = check_matrix("quantized index", rows, dim, values)?;
        let mut codes = vec![0i8; expected];
        let scales = values
            .chunks_exact(dim)
            .zip(codes.chunks_exact_mut(dim))
            .map(|(row, out)| quantize_into(row, out))
            .collect();
        Ok(QuantizedIndex { dim, codes, scales })
    }

    /// Rebuilds an index from its parts, as stored in a bundle: `codes` row-major with
    /// `codes.len() == scales.len() · dim`. Safe on untrusted input: never panics and
    /// allocates nothing (the vectors are taken over).
    ///
    /// Refuses (with [`Error::InvalidArgument`]) `dim = 0`, `dim > MAX_DIM`, inconsistent
    /// lengths, a code of `-128` (the scan's overflow bound and the error bounds assume
    /// `[-127, 127]`), and a scale that is negative, NaN or infinite. A scale of `-0.0` is
    /// stored as `+0.0`.
    pub fn from_parts(dim: usize, codes: Vec<i8>, mut scales: Vec<f32>) -> Result<QuantizedIndex> {
        check_dim(dim)?;
        if !codes.len().is_multiple_of(dim) || codes.len() / dim != scales.len() {
            return Err(Error::InvalidArgument(format!(
                "quantized index: {} codes and {} scales do not form rows of {dim}",
                codes.len(),
                scales.len()
            )));
        }
        if let Some(pos) = codes.iter().position(|&c| c == i8::MIN) {
            return Err(Error::InvalidArgument(format!(
                "quantized index: code -128 at row {}, column {} (codes are in [-127, 127])",
                pos / dim,
                pos % dim
            )));
        }
        for (row, s) in scales.iter_mut().enumerate() {
            if !(s.is_finite() && *s >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "quantized index: scale {s} of row {row} is not a finite non-negative number"
                )));
            }
            if *s == 0.0 {
                *s = 0.0; // -0.0 → +0.0, so equal scores compare equal and ties go by row
            }
        }
        Ok(QuantizedIndex { dim, codes, scales })
    }

    /// Number of rows (items).
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Dimension of each row (≥ 1).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All codes, row-major (`rows · dim` values in `[-127, 127]`).
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }

    /// One scale per row (finite, `≥ 0`; `0` for a row of zeros).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The reconstruction `x̂ = s·c` of row `row`; each element is within `s/2` of the
    /// original (plus the f32 rounding of the product). Refuses a row out of range.
    pub fn dequantize_row(&self, row: usize) -> Result<Vec<f32>> {
        let scale = *self.scales.get(row).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "quantized index: row {row} out of range ({} rows)",
                self.rows()
            ))
        })?;
        let start = row * self.dim;
        Ok(self.codes[start..start + self.dim]
            .iter()
            .map(|&c| f32::from(c) * scale)
            .collect())
    }

    /// Bytes held by the index: the codes plus four bytes of scale per row, `rows·(dim + 4)`.
    pub fn bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * std::mem::size_of::<f32>()
    }

    /// Bytes the same matrix takes as f32, `4·rows·dim`, to compare with [`bytes`](Self::bytes).
    pub fn f32_bytes(&self) -> usize {
        self.codes.len() * std::mem::size_of::<f32>()
    }

    /// Approximate inner products of `query` with every row, in row order. The query is
    /// quantised with one scale by the index's rule; see the module docs for the error bound.
    /// Cost: O(rows·dim) integer multiply-adds plus one O(rows) output vector.
    ///
    /// Refuses a query whose length is not `dim` or that holds a non-finite value.
    pub fn scores(&self, query: &[f32]) -> Result<Vec<f32>> {
        let q = self.prepare(query)?;
        let mut out = Vec::with_capacity(self.rows());
        let mut dots = [0i32; BLOCK_ROWS];
        for (block, scales) in self
            .codes
            .chunks(BLOCK_ROWS * self.dim)
            .zip(self.scales.chunks(BLOCK_ROWS))
        {
            let dots = &mut dots[..scales.len()];
            kernel::dots(block, self.dim, &q.kernel, dots);
            out.extend(dots.iter().zip(scales).map(|(&d, &s)| score(d, q.scale, s)));
        }
        Ok(out)
    }

    /// The `k` best rows for `query` by approximate inner product (as [`scores`](Self::scores)),
    /// skipping rows for which `exclude(row)` is true. Returns `(row, score)` pairs, best
    /// first; equal scores are ordered by the lower row index first. Fewer than `k` pairs come
    /// back when fewer rows are left.
    ///
    /// The scan keeps a bounded min-heap of the current top `k` (no sort of all scores): cost
    /// O(rows·dim) for the dots plus O(rows·log k) worst case for the heap, O(k) memory.
    /// `exclude` is only called for rows whose score would enter the current top `k`, so it
    /// may be called for fewer than all rows; it should be a pure function of the row.
    ///
    /// Refuses `k = 0` and a query whose length is not `dim` or that holds a non-finite value.
    pub fn scan_top_k(
        &self,
        query: &[f32],
        k: usize,
        exclude: impl Fn(usize) -> bool,
    ) -> Result<Vec<(usize, f32)>> {
        if k == 0 {
            return Err(Error::InvalidArgument(
                "quantized index: k must be at least 1".into(),
            ));
        }
        let q = self.prepare(query)?;
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k.min(self.rows()) + 1);
        let mut dots = [0i32; BLOCK_ROWS];
        // The k-th best score so far, meaningful once the heap holds k rows.
        let (mut full, mut threshold) = (false, f32::NEG_INFINITY);
        for (b, (block, scales)) in self
            .codes
            .chunks(BLOCK_ROWS * self.dim)
            .zip(self.scales.chunks(BLOCK_ROWS))
            .enumerate()
        {
            let dots = &mut dots[..scales.len()];
            kernel::dots(block, self.dim, &q.kernel, dots);
            let base = b * BLOCK_ROWS;
            for (i, (&d, &s)) in dots.iter().zip(scales).enumerate() {
                let score = score(d, q.scale, s);
                // Rows come in increasing order, so a score equal to the current k-th is a
                // tie lost to a lower row: only a strictly higher score enters a full heap.
                // (Scores are never NaN.)
                if full && score <= threshold {
                    continue;
                }
                let row = base + i;
                if exclude(row) {
                    continue;
                }
                let cand = Ranked { score, row };
                if full {
                    if let Some(mut worst) = heap.peek_mut() {
                        *worst = cand; // sifts down when `worst` drops
                    }
                } else {
                    heap.push(cand);
                }
                full = heap.len() == k;
                if let (true, Some(worst)) = (full, heap.peek()) {
                    threshold = worst.score;
                }
            }
        }
        Ok(heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.row, c.score))
            .collect())
    }

    /// Checks and quantises a query.
    fn prepare(&self, query: &[f32]) -> Result<PreparedQuery> {
        check_query("quantized index", self.dim, query)?;
        let mut codes = vec![0i8; self.dim];
        let scale = quantize_into(query, &mut codes);
        Ok(PreparedQuery {
            scale,
            kernel: kernel::Query::new(codes),
        })
    }
}

/// A quantised query ready for the kernel.
struct PreparedQuery {
    scale: f32,
    kernel: kernel::Query,
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidArgument(format!(
            "quantized index: dim {dim} is outside 1..={MAX_DIM}"
        )));
    }
    Ok(())
}

/// Quantises `src` (finite values) into `dst` (same length) and returns the scale.
///
/// The scale is `max|x| / 127` rounded up to an f32, so no code needs clamping in exact
/// arithmetic; the division is done in f64 so the rounding of `x / s` is exact to far below
/// half a code step.
fn quantize_into(src: &[f32], dst: &mut [i8]) -> f32 {
    let max_abs = src.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max_abs == 0.0 {
        dst.fill(0);
        return 0.0;
    }
    let exact = f64::from(max_abs) / 127.0;
    let mut scale = exact as f32;
    if f64::from(scale) < exact {
        scale = scale.next_up();
    }
    let s = f64::from(scale);
    for (d, &x) in dst.iter_mut().zip(src) {
        // In range by construction; the clamp guards the last ulp.
        *d = (f64::from(x) / s).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// `dot · q_scale · row_scale`, in f64 then rounded once to f32 (so huge scales saturate to
/// ±infinity instead of producing NaN from `inf · 0`).
#[inline]
fn score(dot: i32, q_scale: f32, row_scale: f32) -> f32 {
    (f64::from(dot) * f64::from(q_scale) * f64::from(row_scale)) as f32
}

/// The integer dot-product kernels. `dots` fills `out[r]` with the dot of row `r` of the
/// row-major block `codes` (`out.len()` rows of `dim`) with the query.
mod kernel {
    /// Portable reference: one i32 multiply-add per element, in order.
    #[cfg(test)]
    pub(super) fn dot_reference(a: &[i8], b: &[i8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum()
    }

    /// The scalar dot: i8·i8 products in i16 (|p| ≤ 128², exact), summed in i32. LLVM
    /// vectorises this plain reduction on its own (integer adds may be reordered); with codes
    /// in `[-127, 127]` and `len ≤ MAX_DIM` no partial sum overflows, so the wrapping adds are
    /// exact and only keep overflow checks (debug builds, tests) from blocking vectorisation.
    /// (Measured natively: 16-lane i32 accumulator arrays and explicit pairwise sums were
    /// 1.5–2× slower than this form at dim 64.)
    #[cfg_attr(
        all(target_arch = "wasm32", target_feature = "simd128"),
        allow(dead_code)
    )]
    #[inline]
    pub(super) fn dot_scalar(a: &[i8], b: &[i8]) -> i32 {
        a.iter().zip(b).fold(0i32, |t, (&x, &y)| {
            t.wrapping_add(i32::from(i16::from(x) * i16::from(y)))
        })
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(super) use portable::{Query, dots};

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(super) use simd128::{Query, dots};

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    mod portable {
        /// A quantised query (the codes only; the scale is kept by the caller).
        pub(in super::super) struct Query {
            codes: Vec<i8>,
        }

        impl Query {
            pub(in super::super) fn new(codes: Vec<i8>) -> Query {
                Query { codes }
            }
        }

        pub(in super::super) fn dots(codes: &[i8], dim: usize, q: &Query, out: &mut [i32]) {
            for (row, o) in codes.chunks_exact(dim).zip(out) {
                *o = super::dot_scalar(row, &q.codes);
            }
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    mod simd128 {
        use core::arch::wasm32::{
            i8x16, i16x8_extend_high_i8x16, i16x8_extend_low_i8x16, i32x4_add, i32x4_dot_i16x8,
            i32x4_extract_lane, i32x4_splat, v128,
        };

        /// A quantised query, widened once to i16 per 16-code chunk (low, high halves).
        pub(in super::super) struct Query {
            codes: Vec<i8>,
            wide: Vec<(v128, v128)>,
            full: usize,
        }

        impl Query {
            pub(in super::super) fn new(codes: Vec<i8>) -> Query {
                let full = codes.len() / 16 * 16;
                let wide = codes[..full]
                    .chunks_exact(16)
                    .map(|c| {
                        let v = load(c);
                        (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v))
                    })
                    .collect();
                Query { codes, wide, full }
            }
        }

        /// A safe 16-byte load from a chunk of exactly 16 codes (LLVM emits one `v128.load`).
        #[inline(always)]
        fn load(c: &[i8]) -> v128 {
            let a: [i8; 16] = c.try_into().unwrap_or([0; 16]);
            i8x16(
                a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
                a[13], a[14], a[15],
            )
        }

        /// `acc + dot(widen(chunk), (lo, hi))` over 16 codes.
        #[inline(always)]
        fn step(acc: v128, c: &[i8], lo: v128, hi: v128) -> v128 {
            let v = load(c);
            let a = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_low_i8x16(v), lo));
            i32x4_add(a, i32x4_dot_i16x8(i16x8_extend_high_i8x16(v), hi))
        }

        #[inline(always)]
        fn hsum(v: v128) -> i32 {
            i32x4_extract_lane::<0>(v)
                + i32x4_extract_lane::<1>(v)
                + i32x4_extract_lane::<2>(v)
                + i32x4_extract_lane::<3>(v)
        }

        fn tail(row: &[i8], q: &Query) -> i32 {
            row[q.full..]
                .iter()
                .zip(&q.codes[q.full..])
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum()
        }

        pub(in super::super) fn dots(codes: &[i8], dim: usize, q: &Query, out: &mut [i32]) {
            let rows4 = out.len() / 4;
            let (out4, out1) = out.split_at_mut(rows4 * 4);
            let (codes4, codes1) = codes.split_at(rows4 * 4 * dim);
            for (block, o) in codes4.chunks_exact(4 * dim).zip(out4.chunks_exact_mut(4)) {
                let (r0, rest) = block.split_at(dim);
                let (r1, rest) = rest.split_at(dim);
                let (r2, r3) = rest.split_at(dim);
                let (mut a0, mut a1, mut a2, mut a3) = (
                    i32x4_splat(0),
                    i32x4_splat(0),
                    i32x4_splat(0),
                    i32x4_splat(0),
                );
                for ((((c0, c1), c2), c3), &(lo, hi)) in r0
                    .chunks_exact(16)
                    .zip(r1.chunks_exact(16))
                    .zip(r2.chunks_exact(16))
                    .zip(r3.chunks_exact(16))
                    .zip(&q.wide)
                {
                    a0 = step(a0, c0, lo, hi);
                    a1 = step(a1, c1, lo, hi);
                    a2 = step(a2, c2, lo, hi);
                    a3 = step(a3, c3, lo, hi);
                }
                o[0] = hsum(a0) + tail(r0, q);
                o[1] = hsum(a1) + tail(r1, q);
                o[2] = hsum(a2) + tail(r2, q);
                o[3] = hsum(a3) + tail(r3, q);
            }
            for (row, o) in codes1.chunks_exact(dim).zip(out1) {
                let mut acc = i32x4_splat(0);
                for (c, &(lo, hi)) in row.chunks_exact(16).zip(&q.wide) {
                    acc = step(acc, c, lo, hi);
                }
                *o = hsum(acc) + tail(row, q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::rng::SplitMix64;

    /// A code uniform in [-127, 127].
    fn code(rng: &mut SplitMix64) -> i8 {
        ((rng.next_u64() % 255) as i32 - 127) as i8
    }

    fn exact_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    }

    /// The derived bound on |score − q·x| (module docs), in f64.
    fn score_bound(q: &[f32], x: &[f32], s_q: f32, s_x: f32) -> f64 {
        let l1 = |v: &[f32]| v.iter().map(|&t| f64::from(t).abs()).sum::<f64>();
        let (s_q, s_x) = (f64::from(s_q), f64::from(s_x));
        (l1(q) * s_x + l1(x) * s_q) / 2.0 + q.len() as f64 * s_q * s_x / 4.0
    }

    fn exact_top_k(values: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<usize> {
        let mut s: Vec<(usize, f64)> = values
            .chunks_exact(dim)
            .map(|r| exact_dot(r, query))
            .enumerate()
            .collect();
        s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        s.into_iter().take(k).map(|(i, _)| i).collect()
    }

    #[test]
    fn quantises_by_the_documented_rule() {
        let idx = QuantizedIndex::from_f32(
            3,
            4,
            &[
                1.0, -0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, -127.0, 63.5, -0.5, 2.4,
            ],
        )
        .unwrap();
        assert_eq!(idx.rows(), 3);
        assert_eq!(idx.dim(), 4);
        // The scale is 1/127 rounded up, so -0.5 / s = -63.4999… → -63, 0.25 / s = 31.74… → 32.
        assert_eq!(&idx.codes()[..4], &[127, -63, 32, 0]);
        assert_eq!(&idx.codes()[4..8], &[0, 0, 0, 0]);
        // Scale exactly 1: halves round away from zero.
        assert_eq!(idx.scales()[2], 1.0);
        assert_eq!(&idx.codes()[8..], &[-127, 64, -1, 2]);
        assert_eq!(idx.scales()[1], 0.0);
        assert!(idx.scales()[0] >= 1.0 / 127.0 && idx.scales()[0] <= (1.0f32 / 127.0).next_up());
        assert_eq!(idx.dequantize_row(1).unwrap(), vec![0.0; 4]);
        assert!(idx.dequantize_row(3).is_err());
        assert_eq!(idx.bytes(), 12 + 12);
        assert_eq!(idx.f32_bytes(), 48);
    }

    #[test]
    fn refuses_bad_arguments() {
        let bad = |r: Result<QuantizedIndex>| matches!(r, Err(Error::InvalidArgument(_)));
        assert!(bad(QuantizedIndex::from_f32(1, 0, &[])));
        assert!(bad(QuantizedIndex::from_f32(2, 2, &[1.0; 3])));
        assert!(bad(QuantizedIndex::from_f32(usize::MAX, 2, &[])));
        assert!(bad(QuantizedIndex::from_f32(1, 2, &[1.0, f32::NAN])));
        assert!(bad(QuantizedIndex::from_f32(1, 2, &[f32::INFINITY, 1.0])));
        assert!(bad(QuantizedIndex::from_f32(
            1,
            MAX_DIM + 1,
            &vec![0.0; MAX_DIM + 1]
        )));
        assert!(bad(QuantizedIndex::from_parts(0, vec![], vec![])));
        assert!(bad(QuantizedIndex::from_parts(2, vec![1, 2, 3], vec![1.0])));
        assert!(bad(QuantizedIndex::from_parts(
            2,
            vec![1, 2],
            vec![1.0, 1.0]
        )));
        assert!(bad(QuantizedIndex::from_parts(2, vec![1, -128], vec![1.0])));
        assert!(bad(QuantizedIndex::from_parts(1, vec![1], vec![-1.0])));
        assert!(bad(QuantizedIndex::from_parts(1, vec![1], vec![f32::NAN])));
        assert!(bad(QuantizedIndex::from_parts(
            1,
            vec![1],
            vec![f32::INFINITY]
        )));
        let idx = QuantizedIndex::from_parts(2, vec![1, 2, 3, 4], vec![1.0, -0.0]).unwrap();
        assert!(idx.scales()[1].is_sign_positive());
        assert!(idx.scan_top_k(&[1.0, 1.0], 0, |_| false).is_err());
        assert!(idx.scan_top_k(&[1.0], 1, |_| false).is_err());
        assert!(idx.scores(&[1.0, f32::NAN]).is_err());
        let empty = QuantizedIndex::from_f32(0, 3, &[]).unwrap();
        assert_eq!(
            empty.scan_top_k(&[1.0, 2.0, 3.0], 5, |_| false).unwrap(),
            vec![]
        );
        assert_eq!(empty.scores(&[1.0, 2.0, 3.0]).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn compiled_kernel_matches_the_portable_reference() {
        // Natively this checks the scalar kernel; under wasm32+simd128 it checks the SIMD path.
        let mut rng = SplitMix64::new(0x5EED_0001);
        for dim in [
            1, 2, 7, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 128, 300,
        ] {
            for rows in [0, 1, 3, 4, 5, 8, 9, 13] {
                let codes: Vec<i8> = (0..rows * dim).map(|_| code(&mut rng)).collect();
                let qc: Vec<i8> = (0..dim).map(|_| code(&mut rng)).collect();
                let q = kernel::Query::new(qc.clone());
                let mut out = vec![0i32; rows];
                kernel::dots(&codes, dim, &q, &mut out);
                for (r, &got) in out.iter().enumerate() {
                    let row = &codes[r * dim..(r + 1) * dim];
                    assert_eq!(
                        got,
                        kernel::dot_reference(row, &qc),
                        "dim {dim}, rows {rows}, row {r}"
                    );
                    assert_eq!(kernel::dot_scalar(row, &qc), got, "dim {dim}, row {r}");
                }
            }
        }
        // Extremes: all ±127 at the largest dim cannot overflow.
        let dim = MAX_DIM;
        let codes = vec![-127i8; dim * 5];
        let q = kernel::Query::new(vec![-127i8; dim]);
        let mut out = vec![0; 5];
        kernel::dots(&codes, dim, &q, &mut out);
        assert_eq!(out, vec![127 * 127 * MAX_DIM as i32; 5]);
    }

    #[test]
    fn top_k_matches_sorted_scores_with_ties_to_the_lower_row() {
        let mut rng = SplitMix64::new(0x5EED_0002);
        let (rows, dim) = (1_000, 20);
        // Few distinct codes so that many scores tie.
        let codes: Vec<i8> = (0..rows * dim)
            .map(|_| (rng.next_u64() % 3) as i8 - 1)
            .collect();
        let scales = vec![0.5f32; rows];
        let idx = QuantizedIndex::from_parts(dim, codes, scales).unwrap();
        let query: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
        let scores = idx.scores(&query).unwrap();
        let mut all: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 5, 10, 77, 999, 1_000, 5_000] {
            let got = idx.scan_top_k(&query, k, |_| false).unwrap();
            assert_eq!(got, all[..k.min(rows)].to_vec(), "k {k}");
            let excl = |r: usize| r.is_multiple_of(3);
            let want: Vec<_> = all
                .iter()
                .copied()
                .filter(|&(r, _)| !excl(r))
                .take(k)
                .collect();
            assert_eq!(
                idx.scan_top_k(&query, k, excl).unwrap(),
                want,
                "k {k} with exclusions"
            );
        }
        // A zero query scores every row 0: the top k are rows 0..k.
        let zero = idx.scan_top_k(&vec![0.0; dim], 4, |_| false).unwrap();
        assert_eq!(zero, vec![(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0)]);
    }

    #[test]
    fn recall_against_exact_f32_top_10() {
        let seed = 0x5EED_2000_u64;
        let mut rng = SplitMix64::new(seed);
        let (rows, dim, k, queries) = (2_000, 32, 10, 100);
        let values: Vec<f32> = (0..rows * dim).map(|_| rng.normal() as f32).collect();
        let idx = QuantizedIndex::from_f32(rows, dim, &values).unwrap();
        let mut total = 0.0;
        let mut worst = 1.0f64;
        for _ in 0..queries {
            let query: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
            let exact = exact_top_k(&values, dim, &query, k);
            let got = idx.scan_top_k(&query, k, |_| false).unwrap();
            let hits = got.iter().filter(|(r, _)| exact.contains(r)).count();
            let overlap = hits as f64 / k as f64;
            total += overlap;
            worst = worst.min(overlap);
        }
        let mean = total / queries as f64;
        assert!(
            mean >= 0.9,
            "seed {seed:#x}: mean top-{k} overlap {mean:.3} (worst {worst:.2}) over {queries} queries, {rows}×{dim}"
        );
    }

    /// Random vectors whose magnitudes span many orders (2^-20 … 2^20), some zeros.
    fn vectors() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..100, -20i32..20, -20i32..20).prop_flat_map(|(d, eq, ex)| {
            let (fq, fx) = (2f32.powi(eq), 2f32.powi(ex));
            let elem = |f: f32| prop_oneof![8 => (-1.0f32..1.0).prop_map(move |v| v * f), 1 => Just(0.0f32)];
            (prop::collection::vec(elem(fq), d), prop::collection::vec(elem(fx), d))
        })
    }

    proptest! {
        #[test]
        fn element_error_is_at_most_half_a_step((x, _) in vectors()) {
            let idx = QuantizedIndex::from_f32(1, x.len(), &x).unwrap();
            let s = f64::from(idx.scales()[0]);
            let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            prop_assert!(s >= f64::from(max_abs) / 127.0);
            for (j, (&v, &c)) in x.iter().zip(idx.codes()).enumerate() {
                prop_assert!(c != i8::MIN);
                let err = (f64::from(v) - f64::from(c) * s).abs();
                prop_assert!(err <= s / 2.0 * (1.0 + 1e-12), "x[{j}] = {v}, code {c}, scale {s}, err {err}");
            }
            let deq = idx.dequantize_row(0).unwrap();
            for (&v, &h) in x.iter().zip(&deq) {
                let err = (f64::from(v) - f64::from(h)).abs();
                prop_assert!(err <= s / 2.0 + f64::from(h.abs()) * f64::from(f32::EPSILON));
            }
        }

        #[test]
        fn score_error_is_within_the_derived_bound((q, x) in vectors()) {
            let idx = QuantizedIndex::from_f32(1, x.len(), &x).unwrap();
            let got = f64::from(idx.scores(&q).unwrap()[0]);
            let mut qc = vec![0i8; q.len()];
            let s_q = quantize_into(&q, &mut qc);
            let exact = exact_dot(&q, &x);
            let bound = score_bound(&q, &x, s_q, idx.scales()[0]);
            // The only rounding after the exact q̂·x̂ is the final cast to f32 (and two f64 products).
            let slack = got.abs() * f64::from(f32::EPSILON);
            prop_assert!(
                (got - exact).abs() <= bound + slack,
                "score {got}, exact {exact}, bound {bound}, s_q {s_q}, s_x {}", idx.scales()[0]
            );
        }

        #[test]
        fn from_parts_never_panics(
            dim in 0usize..40,
            codes in prop::collection::vec(any::<i8>(), 0..200),
            scales in prop::collection::vec(any::<f32>(), 0..12),
            query in prop::collection::vec(-10.0f32..10.0, 0..40),
            k in 0usize..20,
        ) {
            if let Ok(idx) = QuantizedIndex::from_parts(dim, codes, scales) {
                prop_assert_eq!(idx.codes().len(), idx.rows() * idx.dim());
                for r in 0..=idx.rows() {
                    let _ = idx.dequantize_row(r);
                }
                let _ = idx.scores(&query);
                if let Ok(top) = idx.scan_top_k(&query, k, |r| r == 1) {
                    prop_assert!(top.len() <= k);
                    prop_assert!(top.iter().all(|&(_, s)| !s.is_nan()));
                }
            }
        }

        #[test]
        fn scan_matches_sort_and_truncate(
            seed in any::<u64>(), rows in 0usize..300, dim in 1usize..40, k in 1usize..30,
        ) {
            let mut rng = SplitMix64::new(seed);
            let values: Vec<f32> = (0..rows * dim).map(|_| rng.normal() as f32).collect();
            let query: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
            let idx = QuantizedIndex::from_f32(rows, dim, &values).unwrap();
            let mut all: Vec<(usize, f32)> = idx.scores(&query).unwrap().into_iter().enumerate().collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            prop_assert_eq!(idx.scan_top_k(&query, k, |_| false).unwrap(), all);
        }
    }
}
