//! The part of rustfft's API that tract uses, as a plain discrete Fourier transform.
//!
//! Why this exists: tract-core and tract-onnx-opl depend on rustfft with its `wasm_simd`
//! feature, which compiles rustfft's WebAssembly SIMD kernels with per-function
//! `#[target_feature(enable = "simd128")]`. LLVM's WebAssembly backend then applies the union of
//! the module's features to every function of the (LTO) module, so a build meant for engines
//! without SIMD came out with SIMD instructions throughout — in ndarray's iterators, in
//! `memcpy`s — and an engine without SIMD refuses the whole module. Cargo features are
//! additive and tract has no switch, so the workspace patches rustfft with this crate
//! (`[patch.crates-io]` in the root Cargo.toml): same names, no SIMD anywhere.
//!
//! Nothing edgerec ships computes an FFT: tract's `Fft` and `Stft` operators serve ONNX's `DFT`
//! and `STFT`, which the ranker's operator allowlist refuses (`edgerec::onnx::DEFAULT_OPS`). The
//! transform here is the textbook O(n²) one, exact to rounding, so tract's operators still work
//! if a caller of tract elsewhere in the workspace used them.

use std::fmt;
use std::sync::Arc;

pub use num_complex;
pub use num_traits;

use num_complex::Complex;
use num_traits::{FromPrimitive, Signed, Zero};

/// A floating-point type the transform works in (f32 and f64), as in rustfft.
pub trait FftNum: Copy + FromPrimitive + Signed + Sync + Send + fmt::Debug + 'static {}

impl<T> FftNum for T where T: Copy + FromPrimitive + Signed + Sync + Send + fmt::Debug + 'static {}

/// The sign of the exponent: forward is e^(−2πi jk/n), inverse e^(+2πi jk/n) (unnormalised).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum FftDirection {
    Forward,
    Inverse,
}

impl FftDirection {
    /// The other direction.
    pub fn opposite_direction(&self) -> FftDirection {
        match self {
            Self::Forward => Self::Inverse,
            Self::Inverse => Self::Forward,
        }
    }
}

impl fmt::Display for FftDirection {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Forward => "Forward",
            Self::Inverse => "Inverse",
        })
    }
}

/// A transform of one length and direction, applied in place.
pub trait Fft<T: FftNum>: Sync + Send {
    /// The transform's length.
    fn len(&self) -> usize;
    /// Whether the length is zero.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its direction.
    fn fft_direction(&self) -> FftDirection;
    /// Transforms each whole chunk of [`Fft::len`] values of `buffer` in place (rustfft requires
    /// the length to be a multiple and panics otherwise; a trailing partial chunk is left as it
    /// is here).
    fn process(&self, buffer: &mut [Complex<T>]);
}

/// The O(n²) DFT with its n twiddle factors computed once.
struct Dft<T> {
    twiddles: Vec<Complex<T>>,
    direction: FftDirection,
}

impl<T: FftNum> Dft<T> {
    fn new(len: usize, direction: FftDirection) -> Self {
        let sign = match direction {
            FftDirection::Forward => -1.0,
            FftDirection::Inverse => 1.0,
        };
        let twiddles = (0..len)
            .map(|k| {
                let angle = sign * 2.0 * std::f64::consts::PI * k as f64 / len as f64;
                let (sin, cos) = angle.sin_cos();
                Complex::new(
                    T::from_f64(cos).unwrap_or_else(T::zero),
                    T::from_f64(sin).unwrap_or_else(T::zero),
                )
            })
            .collect();
        Self {
            twiddles,
            direction,
        }
    }
}

impl<T: FftNum> Fft<T> for Dft<T> {
    fn len(&self) -> usize {
        self.twiddles.len()
    }

    fn fft_direction(&self) -> FftDirection {
        self.direction
    }

    fn process(&self, buffer: &mut [Complex<T>]) {
        let n = self.twiddles.len();
        if n == 0 {
            return;
        }
        let mut out = vec![Complex::zero(); n];
        for chunk in buffer.chunks_exact_mut(n) {
            for (k, slot) in out.iter_mut().enumerate() {
                let mut sum = Complex::zero();
                // The twiddle of x[j] is w^(jk mod n), stepped by k instead of computing j·k,
                // which overflows a 32-bit usize (wasm32) once n passes 65,536.
                let mut jk = 0;
                for x in chunk.iter() {
                    sum = sum + *x * self.twiddles[jk];
                    jk += k;
                    if jk >= n {
                        jk -= n;
                    }
                }
                *slot = sum;
            }
            chunk.copy_from_slice(&out);
        }
    }
}

/// Makes transforms, as rustfft's planner does (without its caching).
pub struct FftPlanner<T: FftNum> {
    _marker: std::marker::PhantomData<T>,
}

impl<T: FftNum> Default for FftPlanner<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: FftNum> FftPlanner<T> {
    pub fn new() -> Self {
        Self {
            _marker: std::marker::PhantomData,
        }
    }

    /// A transform of `len` values in `direction`.
    pub fn plan_fft(&mut self, len: usize, direction: FftDirection) -> Arc<dyn Fft<T>> {
        Arc::new(Dft::new(len, direction))
    }

    pub fn plan_fft_forward(&mut self, len: usize) -> Arc<dyn Fft<T>> {
        self.plan_fft(len, FftDirection::Forward)
    }

    pub fn plan_fft_inverse(&mut self, len: usize) -> Arc<dyn Fft<T>> {
        self.plan_fft(len, FftDirection::Inverse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[Complex<f64>], b: &[Complex<f64>]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).norm() < 1e-9)
    }

    #[test]
    fn known_transforms() {
        let mut planner = FftPlanner::<f64>::new();
        // An impulse transforms to all ones; a constant to an impulse of height n.
        let mut impulse = vec![Complex::new(0.0, 0.0); 5];
        impulse[0] = Complex::new(1.0, 0.0);
        planner.plan_fft_forward(5).process(&mut impulse);
        assert!(close(&impulse, &[Complex::new(1.0, 0.0); 5]));
        let mut constant = vec![Complex::new(2.0, 0.0); 4];
        planner.plan_fft_forward(4).process(&mut constant);
        let want = [4.0 * 2.0, 0.0, 0.0, 0.0].map(|re| Complex::new(re, 0.0));
        assert!(close(&constant, &want));
        // e^(2πi·t/n) puts everything in bin 1 forward.
        let n = 8;
        let mut wave: Vec<_> = (0..n)
            .map(|t| Complex::from_polar(1.0, 2.0 * std::f64::consts::PI * t as f64 / n as f64))
            .collect();
        planner
            .plan_fft(n, FftDirection::Forward)
            .process(&mut wave);
        let mut want = vec![Complex::new(0.0, 0.0); n];
        want[1] = Complex::new(n as f64, 0.0);
        assert!(close(&wave, &want));
    }

    #[test]
    fn inverse_undoes_forward_up_to_n_chunk_by_chunk() {
        let mut planner = FftPlanner::<f32>::new();
        let original: Vec<_> = (0..14)
            .map(|i| Complex::new(i as f32 * 0.5 - 2.0, (i % 3) as f32))
            .collect();
        let mut v = original.clone();
        planner.plan_fft_forward(7).process(&mut v);
        assert_ne!(v, original);
        planner.plan_fft_inverse(7).process(&mut v);
        for (a, b) in v.iter().zip(&original) {
            assert!((a / 7.0 - b).norm() < 1e-4, "{a} vs {b}");
        }
        // A trailing partial chunk is left alone; length zero does nothing.
        let mut odd = vec![Complex::new(1.0f32, 0.0); 3];
        planner.plan_fft_forward(2).process(&mut odd);
        assert_eq!(odd[2], Complex::new(1.0, 0.0));
        assert_eq!(odd[0], Complex::new(2.0, 0.0));
        planner.plan_fft_forward(0).process(&mut odd);
        assert_eq!(
            FftDirection::Forward.opposite_direction(),
            FftDirection::Inverse
        );
    }
}
