//! A counting global allocator for the binaries that measure or cap memory
//! (`tests/mutations.rs`, `examples/fuzz.rs`, `examples/memory.rs`, each including this file
//! with `#[path]`: the core crate forbids `unsafe`): bytes live now, the most since the last
//! [`mark`], and what happens to an allocation above a cap. A binary installs one with
//! `#[global_allocator] static A: Counting = Counting::new(cap, OnCap::…);`, so the counters
//! here are that binary's. Each binary uses a part of it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static OVER_CAP: AtomicBool = AtomicBool::new(false);

/// What an allocation that would take the live bytes above the cap does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCap {
    /// Fails (the process aborts, naming the size).
    Fail,
    /// Sets [`over_cap`] and waits forever, for a watchdog thread to save what was running and
    /// abort (an allocator must not allocate or do I/O itself).
    Wait,
}

/// The allocator: [`System`], counted, with a cap on the bytes live at once.
pub struct Counting {
    cap: usize,
    on_cap: OnCap,
}

impl Counting {
    /// Counts every allocation; `cap` bytes live at once at most (`usize::MAX`: no cap).
    pub const fn new(cap: usize, on_cap: OnCap) -> Counting {
        Counting { cap, on_cap }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if live > self.cap {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            match self.on_cap {
                OnCap::Fail => return std::ptr::null_mut(),
                OnCap::Wait => {
                    OVER_CAP.store(true, Ordering::SeqCst);
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Bytes live now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes live now; the peak starts again from here.
pub fn mark() -> usize {
    let live = live();
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The most bytes live since the [`mark`] that returned `base`, above `base`.
pub fn peak_since(base: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// Whether an allocation went above the cap of an [`OnCap::Wait`] allocator.
pub fn over_cap() -> bool {
    OVER_CAP.load(Ordering::SeqCst)
}
