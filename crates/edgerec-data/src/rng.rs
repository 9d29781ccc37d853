//! A small, documented pseudo-random number generator and the distributions the simulator
//! draws from, written here so a world never changes with a dependency upgrade.
//!
//! * [`splitmix64`](edgerec::rng::splitmix64) (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
//!   OOPSLA 2014) mixes a seed and an entity id into well-spread 64-bit state words.
//! * [`Rng`] is xoshiro256** 1.0 (Blackman and Vigna, "Scrambled linear pseudorandom number
//!   generators", 2018), seeded by four splitmix64 outputs.
//! * Normal variates by the Marsaglia polar method, gamma by Marsaglia and Tsang (2000), beta
//!   from two gammas, Poisson by inversion (small means) or a rounded normal (large means),
//!   categorical draws by Walker's alias method ([`AliasTable`], Vose's construction).
//!
//! Every stream is a pure function of its seed: [`Rng::stream`] derives independent streams from
//! `(seed, domain, id)` so each user and each title draws from its own stream and the world can
//! be generated in any order, chunk size or thread count.
//!
//! ```
//! use edgerec_data::rng::Rng;
//! let mut a = Rng::stream(42, 1, 7);
//! let mut b = Rng::stream(42, 1, 7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! let x = a.uniform();
//! assert!((0.0..1.0).contains(&x));
//! ```

use edgerec::rng::splitmix64;

/// A stateless 64-bit hash of a few words (splitmix64 applied in sequence), for ids and
/// one-off decisions that need no stream.
pub fn hash64(words: &[u64]) -> u64 {
    let mut s = 0x6A09_E667_F3BC_C908u64;
    let mut out = 0;
    for &w in words {
        s ^= w;
        out = splitmix64(&mut s);
    }
    out
}

/// xoshiro256**: 256 bits of state, period 2^256 − 1, fast and statistically strong.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
    /// The second value of the last polar-method pair, if unused.
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator seeded from one 64-bit seed (expanded by splitmix64).
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = splitmix64(&mut sm);
        }
        // splitmix64 never yields four zero words in a row, but keep the invariant explicit.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng {
            s,
            spare_normal: None,
        }
    }

    /// The independent stream of entity `id` in `domain` (users, titles, …) of world `seed`.
    pub fn stream(seed: u64, domain: u64, id: u64) -> Rng {
        Rng::new(hash64(&[seed, domain, id]))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `[0, n)` (Lemire's multiply-shift; bias below 2^-32 for n < 2^32).
    /// Returns 0 for `n == 0`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform index into a slice of length `n` (0 when `n == 0`).
    #[inline]
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Marsaglia polar method; the second value of each pair is kept).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = (-2.0 * s.ln() / s).sqrt();
                self.spare_normal = Some(v * m);
                return u * m;
            }
        }
    }

    /// Normal with mean `mu` and standard deviation `sigma`.
    #[inline]
    pub fn gauss(&mut self, mu: f64, sigma: f64) -> f64 {
        mu + sigma * self.normal()
    }

    /// Log-normal: `exp(N(mu, sigma))`.
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        self.gauss(mu, sigma).exp()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang, "A simple method for generating gamma
    /// variables" (ACM TOMS 2000); shapes below 1 use the `U^(1/shape)` boost.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform().max(f64::MIN_POSITIVE);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform();
            if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) as `X / (X + Y)` with `X ~ Gamma(a)`, `Y ~ Gamma(b)`.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y == 0.0 { 0.5 } else { x / (x + y) }
    }

    /// Poisson with mean `lambda`: Knuth's product method below 30, otherwise a rounded normal
    /// approximation (the simulator's means are small; the approximation only guards tails).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = (-lambda).exp();
            let mut k = 0u32;
            let mut p = self.uniform();
            while p > limit {
                k += 1;
                p *= self.uniform();
            }
            k
        } else {
            self.gauss(lambda, lambda.sqrt()).round().max(0.0) as u32
        }
    }

    /// Geometric number of failures before a success with probability `p` (`p` in `(0, 1]`).
    pub fn geometric(&mut self, p: f64) -> u32 {
        if p >= 1.0 {
            return 0;
        }
        let u = 1.0 - self.uniform();
        (u.ln() / (1.0 - p).ln()).floor().min(u32::MAX as f64) as u32
    }

    /// Index drawn with probability proportional to `weights` (linear scan: for short lists;
    /// use an [`AliasTable`] for repeated draws). Returns 0 if all weights are zero.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return 0;
        }
        let mut x = self.uniform() * total;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// A Gumbel(0, 1) variate: adding it to log-weights and taking the arg-max samples
    /// proportionally to the weights.
    pub fn gumbel(&mut self) -> f64 {
        -(-(self.uniform().max(1e-300)).ln()).ln()
    }

    /// Shuffles `v` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.index(i + 1);
            v.swap(i, j);
        }
    }
}

/// Walker's alias table for O(1) draws from a fixed categorical distribution (Vose,
/// "A linear algorithm for generating random numbers with a given distribution", 1991).
///
/// Construction is O(n); each draw costs one 64-bit random number. Zero weights are never drawn
/// (unless every weight is zero, which [`AliasTable::new`] refuses).
#[derive(Debug, Clone)]
pub struct AliasTable {
    /// Probability of keeping column `i` rather than taking its alias, scaled to `u32`.
    keep: Vec<u32>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds the table; `None` if `weights` is empty, has no positive weight, has a negative
    /// or non-finite weight, or more than `u32::MAX` entries.
    pub fn new(weights: &[f64]) -> Option<AliasTable> {
        let n = weights.len();
        if n == 0 || n > u32::MAX as usize {
            return None;
        }
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return None;
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return None;
        }
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut keep = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for (i, &p) in scaled.iter().enumerate() {
            if p < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            keep[s] = (scaled[s] * u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers (rounding) keep themselves with probability 1.
        Some(AliasTable { keep, alias })
    }

    /// Number of categories.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    /// Always false: an alias table has at least one category.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// Draws one category index.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next_u64();
        let col = ((r >> 32) * self.keep.len() as u64) >> 32;
        let col = col as usize;
        if (r as u32) < self.keep[col] || self.keep[col] == u32::MAX {
            col
        } else {
            self.alias[col] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_reference_vector() {
        // Reference output of the C implementation seeded with s = {1, 2, 3, 4}.
        let mut r = Rng {
            s: [1, 2, 3, 4],
            spare_normal: None,
        };
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn splitmix_reference_vector() {
        // splitmix64 seeded with 1234567, first output (reference implementation).
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(7);
        let n = 100_000;
        let mean = |f: &mut dyn FnMut() -> f64| (0..n).map(|_| f()).sum::<f64>() / n as f64;
        assert!((mean(&mut || r.normal())).abs() < 0.02);
        let m = mean(&mut || r.gamma(2.5));
        assert!((m - 2.5).abs() < 0.05, "{m}");
        let m = mean(&mut || r.gamma(0.4));
        assert!((m - 0.4).abs() < 0.02, "{m}");
        let m = mean(&mut || r.beta(2.0, 6.0));
        assert!((m - 0.25).abs() < 0.01, "{m}");
        let m = mean(&mut || r.poisson(3.2) as f64);
        assert!((m - 3.2).abs() < 0.05, "{m}");
    }

    #[test]
    fn alias_table_matches_weights() {
        let w = [1.0, 0.0, 3.0, 6.0];
        let t = AliasTable::new(&w).unwrap();
        let mut r = Rng::new(3);
        let mut counts = [0usize; 4];
        for _ in 0..100_000 {
            counts[t.sample(&mut r)] += 1;
        }
        assert_eq!(counts[1], 0);
        for (c, w) in counts.iter().zip(w) {
            assert!(
                (*c as f64 / 100_000.0 - w / 10.0).abs() < 0.01,
                "{counts:?}"
            );
        }
        assert!(AliasTable::new(&[]).is_none());
        assert!(AliasTable::new(&[0.0]).is_none());
        assert!(AliasTable::new(&[f64::NAN]).is_none());
    }
}
