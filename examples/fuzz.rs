//! The fuzzer's long run (`edgerec::test_support::fuzz`): every target, or one, for a number of
//! seconds or inputs each, natively, with a counting allocator (an input may hold at most
//! 512 MiB at once), a time cap per input and a watchdog that stops a hang. Inputs that break a
//! rule (a panic, a row that breaks a filter, a decode that does not round-trip, an input slower
//! than the cap) are written to `--out` with what was done to them; on a hang or an allocation
//! above the cap the watchdog writes the input to `--out/last-input` and aborts the process.
//!
//! ```text
//! cargo run -p edgerec --example fuzz -- --seconds 600 --out /tmp/fuzz          # every target
//! cargo run -p edgerec --example fuzz -- --target trees,onnx --runs 100000 --seed 7
//! ```
//!
//! The CI smoke run is `tests/mutations.rs` (`fuzz_smoke_every_target`): a fixed number of
//! inputs per target from a fixed seed.

#[path = "../tests/common/counting.rs"]
mod counting;

use counting::{Counting, OnCap};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgerec::test_support::fuzz::{Fuzzer, Target};
use edgerec::test_support::mutations::SEED_FILES;

/// Most bytes an input may hold at once; above it the watchdog saves the input and aborts.
const CAP: usize = 512 << 20;

#[global_allocator]
static ALLOCATOR: Counting = Counting::new(CAP, OnCap::Wait);

/// Longest one input may take (see tests/mutations.rs).
const TIME_CAP: Duration = Duration::from_secs(10);

/// The input being run, for the watchdog.
struct Current {
    since: Instant,
    name: String,
    bytes: Vec<u8>,
}

impl Default for Current {
    fn default() -> Current {
        Current {
            since: Instant::now(),
            name: String::new(),
            bytes: Vec::new(),
        }
    }
}

struct Args {
    targets: Vec<Target>,
    seconds: Option<u64>,
    runs: Option<u64>,
    seed: u64,
    out: Option<PathBuf>,
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        targets: Target::ALL.to_vec(),
        seconds: None,
        runs: None,
        seed: 1,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => {
                let v = value()?;
                if v != "all" {
                    args.targets = v
                        .split(',')
                        .map(|name| {
                            Target::parse(name).ok_or_else(|| {
                                let names: Vec<&str> =
                                    Target::ALL.iter().map(|t| t.as_str()).collect();
                                format!("unknown target {name:?}: one of {names:?} or all")
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
            }
            "--seconds" => args.seconds = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--runs" => args.runs = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("{e}"))?,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.seconds.is_none() && args.runs.is_none() {
        args.seconds = Some(60);
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "fuzz: {e}\nusage: fuzz [--target NAME[,NAME…]|all] [--seconds S | --runs N] [--seed X] [--out DIR]"
            );
            std::process::exit(2);
        }
    };
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let files: Vec<(&str, Vec<u8>)> = SEED_FILES
        .iter()
        .map(|(name, rel)| {
            let bytes = std::fs::read(data.join(rel)).expect("the seed bundles in tests/data");
            (*name, bytes)
        })
        .collect();
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).expect("the --out directory");
    }

    // A hang cannot be interrupted, nor can an allocation above the cap be refused without
    // aborting: the watchdog names the input, saves it and aborts.
    let current: Arc<Mutex<Current>> = Arc::new(Mutex::new(Current::default()));
    let watched = Arc::clone(&current);
    let out = args.out.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let over = counting::over_cap();
            let Ok(c) = watched.try_lock() else {
                if over {
                    eprintln!("an input allocated above {} MiB", CAP >> 20);
                    std::process::abort();
                }
                continue;
            };
            let hang = !c.name.is_empty() && c.since.elapsed() > 3 * TIME_CAP;
            if over || hang {
                let why = if over {
                    format!("allocated above {} MiB", CAP >> 20)
                } else {
                    format!("has run for {:?}: a hang", c.since.elapsed())
                };
                eprintln!("input {:?} {why}", c.name);
                if let Some(out) = &out {
                    let _ = std::fs::write(out.join("last-input"), &c.bytes);
                    eprintln!("saved in {}", out.join("last-input").display());
                }
                std::process::abort();
            }
        }
    });
    std::panic::set_hook(Box::new(|_| {}));

    let mut crashes = 0usize;
    println!(
        "| target | executions | per second | corpus | distinct outcomes | slowest | most memory | broken |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &target in &args.targets {
        let mut fuzzer = Fuzzer::new(target, &files, args.seed);
        let start = Instant::now();
        let mut slowest = Duration::ZERO;
        let mut most = 0usize;
        let mut broken = 0usize;
        loop {
            let done = match (args.runs, args.seconds) {
                (Some(n), _) => fuzzer.executions >= n,
                (None, Some(s)) => start.elapsed() >= Duration::from_secs(s),
                (None, None) => true,
            };
            if done {
                break;
            }
            // The fuzzer's own code runs outside the contract: a panic there is a bug in it.
            let (what, bytes) = match catch_unwind(AssertUnwindSafe(|| fuzzer.next_input())) {
                Ok(input) => input,
                Err(panic) => {
                    eprintln!(
                        "{}: making an input panicked: {}",
                        target.as_str(),
                        panic_message(&*panic)
                    );
                    std::process::exit(3);
                }
            };
            if let Ok(mut c) = current.lock() {
                c.since = Instant::now();
                c.name = format!("{}: {what}", target.as_str());
                c.bytes.clone_from(&bytes);
            }
            let base = counting::mark();
            let t = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| fuzzer.run(&bytes)));
            let took = t.elapsed();
            most = most.max(counting::peak_since(base));
            slowest = slowest.max(took);
            let rule = match result {
                Ok(Ok(_)) if took <= TIME_CAP => None,
                Ok(Ok(_)) => Some(format!("took {took:?}")),
                Ok(Err(rule)) => Some(rule),
                Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
            };
            if let Some(rule) = rule {
                broken += 1;
                eprintln!("{}: {what}: {rule}", target.as_str());
                if let Some(out) = &args.out {
                    let name = format!("crash-{}-{}", target.as_str(), fuzzer.executions);
                    let _ = std::fs::write(out.join(format!("{name}.bin")), &bytes);
                    let _ = std::fs::write(
                        out.join(format!("{name}.txt")),
                        format!("{what}\n{rule}\n"),
                    );
                }
            }
        }
        if let Ok(mut c) = current.lock() {
            c.name.clear();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.1} ms | {} KiB | {broken} |",
            target.as_str(),
            fuzzer.executions,
            fuzzer.executions as f64 / secs.max(1e-9),
            fuzzer.corpus_len(),
            fuzzer.distinct_outcomes(),
            slowest.as_secs_f64() * 1e3,
            most >> 10,
        );
        eprintln!("  {}: {:?}", target.as_str(), fuzzer.outcomes);
        crashes += broken;
    }
    if crashes > 0 {
        eprintln!("{crashes} inputs broke a rule");
        std::process::exit(1);
    }
}
