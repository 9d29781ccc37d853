//! The process's allocator tuned for training with candle.

/// Makes glibc's `malloc` keep freed memory for reuse instead of handing it back to the kernel,
/// for a process that trains with candle. Call it at the start of `main`, before any other
/// thread exists. Returns whether it changed anything (only on Linux with glibc).
///
/// candle allocates every batch's tensors afresh (activations, gradients, the optimiser's
/// updates: megabytes per step) and frees them at the end of the step. With glibc's defaults
/// many of those blocks are `mmap`ed and unmapped, or trimmed off the top of the heap, so every
/// step faults its pages in again: at 10M users 40% of the two-tower epoch's CPU was system
/// time. Serving blocks of up to 32 MiB from the heap and trimming only above 1 GiB free
/// removes that (`examples/tower_scale.rs` with and without `--system-malloc true`: the
/// 100k-user world's epoch in 14.8 s instead of 30.7 s, 0.65 s of system time instead of
/// 18.6 s, the same model, peak RSS 11 MiB higher; at 1M users 149.4 s instead of 330.1 s).
/// Both settings have to change together: setting either one turns off glibc's adaptive mmap
/// threshold, and either alone is slower than the defaults.
///
/// It is process-wide, so it is the program's choice, not the library's: the `edgerec` CLI
/// makes it for its batch commands, a long-running server that should hand memory back
/// should not.
pub fn keep_freed_memory() -> bool {
    imp::keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    /// Largest block served from the heap (glibc's maximum on 64-bit targets).
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    /// Free memory at the top of the heap kept before trimming.
    const TRIM_THRESHOLD: libc::c_int = 1 << 30;

    pub(super) fn keep_freed_memory() -> bool {
        // SAFETY: mallopt only sets allocator parameters; it is documented as safe to call at
        // any time and returns 0 on an invalid value, which is reported, not acted on.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn keep_freed_memory() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::keep_freed_memory());
        // Allocations still work, large and small.
        let big = vec![1u8; 40 << 20];
        let small = vec![2u8; 4 << 20];
        assert_eq!(big[big.len() - 1] as usize + small[0] as usize, 3);
    }
}
