//! The mutation suite, natively: 1,500 generated bundles and user states with valid checksums
//! (`edgerec::test_support::mutations`), each of which must give a typed error or a model whose
//! rows keep every rule — never a panic, a hang (time cap per case) or a memory blow-up (a
//! counting allocator caps what one case may hold at once, and what a bundle that loads
//! takes must stay within the memory the loader estimated for it). The npm package runs the same cases
//! in wasm (`tests/js/mutations.test.mjs`, from `examples/mutations.rs`).

#[path = "common/counting.rs"]
mod counting;

use counting::{Counting, OnCap};

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgerec::Recommender;
use edgerec::bundle::BundleContents;
use edgerec::model::Model;
use edgerec::test_support::mutations::{self, Case, Input, Outcome};

/// Most bytes the process may hold at once while the suite runs: the seeds' models take a few
/// MB; a decoder that trusts a count would ask for gigabytes and be refused here (the
/// allocation fails, and the process aborts with the case in the log).
const CAP: usize = 512 << 20;

#[global_allocator]
static ALLOCATOR: Counting = Counting::new(CAP, OnCap::Fail);

/// Longest one case may take (dev profile, dependencies optimised): loading the largest seed
/// and answering six rows takes milliseconds; a decoder or model with quadratic or unbounded
/// cost takes far longer.
const TIME_CAP: Duration = Duration::from_secs(10);

fn data(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The standard cases (see `mutations::standard_cases`) and the model state cases are served
/// from.
fn cases() -> (Vec<Case>, Recommender) {
    let files: Vec<(&str, Vec<u8>)> = mutations::SEED_FILES
        .iter()
        .map(|(name, rel)| (*name, data(rel)))
        .collect();
    let suite = mutations::standard_cases(&files);
    let model = Recommender::from_bytes(&suite.device).expect("the device seed loads");
    (suite.cases, model)
}

#[test]
fn every_generated_input_is_refused_with_a_code_or_serves_rows_that_keep_the_rules() {
    let (cases, model) = cases();
    assert!(cases.len() >= 1_500, "{} cases", cases.len());
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut broken = Vec::new();
    let mut worst = (Duration::ZERO, String::new());
    let mut peak_case = (0usize, String::new());
    // A case that never returns (tract loops forever on a cyclic tree, for one) cannot be
    // interrupted: a watchdog names it and aborts the test process instead of letting CI hang.
    let current: Arc<Mutex<(Instant, String)>> =
        Arc::new(Mutex::new((Instant::now(), String::new())));
    let watched = Arc::clone(&current);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let (since, name) = watched
                .lock()
                .map(|c| c.clone())
                .unwrap_or_else(|p| p.into_inner().clone());
            if since.elapsed() > 3 * TIME_CAP {
                eprintln!(
                    "mutation case {name:?} has run for {:?}: a hang",
                    since.elapsed()
                );
                std::process::abort();
            }
        }
    });
    // Panics are failures: keep the default hook from printing 1,500 of them.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in &cases {
        if let Ok(mut c) = current.lock() {
            *c = (Instant::now(), case.name.clone());
        }
        let base = counting::mark();
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| mutations::check_case(case, &model)));
        let took = start.elapsed();
        let peak = counting::peak_since(base);
        if took > worst.0 {
            worst = (took, case.name.clone());
        }
        if peak > peak_case.0 {
            peak_case = (peak, case.name.clone());
        }
        match result {
            Ok(Ok(Outcome::Refused { code, .. })) => {
                *outcomes.entry(format!("refused {code}")).or_default() += 1
            }
            Ok(Ok(Outcome::Served(rows))) => {
                *outcomes
                    .entry(format!("{} served", case.input.as_str()))
                    .or_default() += 1;
                let _ = rows;
                // What the loader budgeted must cover what loading and serving took.
                if case.input == Input::Bundle {
                    let estimate = BundleContents::decode(&case.bytes)
                        .map(|c| Model::estimate(&c, case.bytes.len()).total() as usize);
                    match estimate {
                        Ok(e) if peak > e => broken.push(format!(
                            "{}: {peak} bytes at peak, {e} estimated",
                            case.name
                        )),
                        Ok(_) => {}
                        Err(e) => broken.push(format!("{}: served, then {e}", case.name)),
                    }
                }
            }
            Ok(Err(rule)) => broken.push(format!("{}: {rule}", case.name)),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                broken.push(format!("{}: panicked: {msg}", case.name));
            }
        }
        if took > TIME_CAP {
            broken.push(format!("{}: took {took:?}", case.name));
        }
    }
    std::panic::set_hook(hook);
    println!("{} cases: {outcomes:?}", cases.len());
    println!(
        "slowest: {:?} ({}); most memory: {} KiB ({})",
        worst.0,
        worst.1,
        peak_case.0 >> 10,
        peak_case.1
    );
    assert!(
        broken.is_empty(),
        "{} of {} cases broke a rule:\n{}",
        broken.len(),
        cases.len(),
        broken
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The suite reaches past the container: some cases load and serve, others are refused by
    // the section decoders and the model checks, not only by the container.
    assert!(
        outcomes.get("bundle served").copied().unwrap_or(0) >= 50,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("state served").copied().unwrap_or(0) >= 20,
        "{outcomes:?}"
    );
    for code in [
        "refused malformed",
        "refused contract_mismatch",
        "refused corrupt_state",
    ] {
        assert!(
            outcomes.get(code).copied().unwrap_or(0) >= 10,
            "{code}: {outcomes:?}"
        );
    }
}

/// The CI smoke run of the fuzzer (`edgerec::test_support::fuzz`; the long run is
/// `examples/fuzz.rs`): every target, a fixed number of inputs from a fixed seed, under the
/// same allocation cap and time cap as the cases above.
#[test]
fn fuzz_smoke_every_target() {
    use edgerec::test_support::fuzz::{Fuzzer, Target};
    const INPUTS: u64 = 1_000;
    let files: Vec<(&str, Vec<u8>)> = mutations::SEED_FILES
        .iter()
        .map(|(name, rel)| (*name, data(rel)))
        .collect();
    let mut broken = Vec::new();
    let mut report = Vec::new();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for target in Target::ALL {
        let mut fuzzer = Fuzzer::new(target, &files, 20261203);
        while fuzzer.executions < INPUTS {
            let (what, bytes) = fuzzer.next_input();
            let start = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| fuzzer.run(&bytes)));
            let took = start.elapsed();
            let name = format!("{}: {what}", target.as_str());
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(rule)) => broken.push(format!("{name}: {rule}")),
                Err(_) => broken.push(format!("{name}: panicked")),
            }
            if took > TIME_CAP {
                broken.push(format!("{name}: took {took:?}"));
            }
        }
        report.push(format!(
            "{}: {} distinct outcomes, {:?}",
            target.as_str(),
            fuzzer.distinct_outcomes(),
            fuzzer.outcomes
        ));
        // Each target gets past the first check it meets.
        assert!(fuzzer.distinct_outcomes() >= 5, "{}", report.join("\n"));
    }
    std::panic::set_hook(hook);
    println!("{}", report.join("\n"));
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
