//! Memory of loading and serving a bundle, measured with a counting allocator, beside the
//! estimate the loader checks against its budget ([`Model::estimate`]). Not a benchmark of
//! speed: it prints bytes, and fails (exit 1) if a measured peak is above the estimate, since
//! the budget would then not protect a device.
//!
//! ```text
//! cargo run -p edgerec --example memory -- artifacts/bundle.edgerec artifacts/bundle-ranked.edgerec
//! ```
//!
//! For each bundle: the file; what the loaded model holds (live bytes after
//! [`Recommender::from_bytes`], the file's copy dropped); the peak while loading (file copy
//! included, as in wasm, where the bundle is copied into linear memory); the peak of requests of
//! the largest size ([`MAX_CANDIDATES`] candidates, [`MAX_K`] titles, [`MAX_SEARCH_TOKENS`]
//! search tokens, ranker on and off) for a new user and users with a past; then the estimate by
//! part and measured/estimated.
//!
//! `scripts/test.sh` runs it over the MovieLens bundles the tests build; the mutation suite
//! (`tests/mutations.rs`) checks the same bound for every generated bundle that loads.

#[path = "../tests/common/counting.rs"]
mod counting;

use counting::{Counting, OnCap, mark, peak_since};

use edgerec::limits::{MAX_CANDIDATES, MAX_K, MAX_SEARCH_TOKENS};
use edgerec::test_support::mutations::{PROBE_TIME, probe_states};
use edgerec::{Recommender, RowRequest, context::Context, context::Device};

#[global_allocator]
static ALLOCATOR: Counting = Counting::new(usize::MAX, OnCap::Fail);

fn mib(b: usize) -> String {
    format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
}

/// The largest requests a caller may make, ranker on and off, with as many search tokens as
/// allowed (drawn from the bundle's vocabularies so the user tower and ranker read them).
fn largest_requests(rec: &Recommender) -> Vec<RowRequest> {
    let contents = rec.model().contents();
    let vocab: Vec<String> = contents
        .two_tower
        .as_ref()
        .map(|t| t.search_vocab().to_vec())
        .or_else(|| {
            contents
                .ranker
                .as_ref()
                .map(|r| r.contract.search_vocab.clone())
        })
        .unwrap_or_default();
    let searches: Vec<String> = (0..MAX_SEARCH_TOKENS)
        .map(|i| {
            vocab
                .get(i % vocab.len().max(1))
                .cloned()
                .unwrap_or_else(|| format!("q{i}"))
        })
        .collect();
    let mut out = Vec::new();
    for (device, use_ranker) in [(Device::Tv, true), (Device::Mobile, false)] {
        let mut r = RowRequest::new(Context::new(device, PROBE_TIME, 60).expect("a valid context"));
        r.k = Some(MAX_K);
        r.candidates = Some(MAX_CANDIDATES);
        r.searches = searches.clone();
        r.use_ranker = use_ranker;
        out.push(r);
    }
    out
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: memory <bundle.edgerec>...");
        std::process::exit(2);
    }
    let mut failed = false;
    for path in &paths {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        };
        let base = mark();
        let copy = bytes.clone(); // the copy a wasm caller makes into linear memory
        let rec = match Recommender::from_bytes(&copy) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{path}: refused: {e}");
                failed = true;
                continue;
            }
        };
        let load_peak = peak_since(base);
        drop(copy);
        let resident = counting::live().saturating_sub(base);
        let states = probe_states(&rec.model().contents().catalog);
        let requests = largest_requests(&rec);
        let before_requests = mark();
        let mut rows = 0;
        for state in &states {
            for req in &requests {
                match rec.recommend_row(state, req) {
                    Ok(row) => rows += row.items.len(),
                    Err(e) => {
                        eprintln!("{path}: a request failed: {e}");
                        failed = true;
                    }
                }
            }
        }
        let request_peak = peak_since(before_requests);
        let estimate = rec.model().memory_estimate();
        // The whole life of the bundle: loading (file copy included) or the model plus a request.
        let measured = load_peak.max(resident + request_peak);
        let total = estimate.total() as usize;
        println!("{path}");
        println!(
            "  file {}; model holds {}; load peak {}; largest request peak {} ({rows} titles in {} rows)",
            mib(bytes.len()),
            mib(resident),
            mib(load_peak),
            mib(request_peak),
            states.len() * requests.len()
        );
        println!(
            "  estimate {} ({}); measured peak {} = {:.2} of the estimate",
            mib(total),
            estimate.describe(),
            mib(measured),
            measured as f64 / total as f64
        );
        if measured > total {
            eprintln!("{path}: measured {measured} bytes above the estimate of {total}");
            failed = true;
        }
        drop(rec);
    }
    if failed {
        std::process::exit(1);
    }
}
