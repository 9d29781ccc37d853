//! `edgerec-wasm-tools`: the wasm build's module checks (scripts/build-wasm.sh runs them).
//!
//!   edgerec-wasm-tools check-baseline FILE...   each FILE validates without SIMD
//!   edgerec-wasm-tools tv-parity MODULE DIR...   the plain-ABI module, run in wasmi, gives the
//!                                                native rows of each parity fixture DIR

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use edgerec_wasm_tools::{baseline_features, validate};

const USAGE: &str =
    "usage: edgerec-wasm-tools check-baseline FILE... | tv-parity MODULE FIXTURE_DIR...";

/// The memory the TV module may grow to in `tv-parity`: what a constrained device would grant.
const TV_MEMORY_LIMIT: usize = 256 << 20;

fn run(args: &[String]) -> Result<()> {
    match args {
        [cmd, files @ ..] if cmd == "check-baseline" && !files.is_empty() => {
            for file in files {
                let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
                validate(&bytes, baseline_features())
                    .with_context(|| format!("{file} is not valid without SIMD"))?;
                println!("check-baseline: {file} validates without SIMD");
            }
            Ok(())
        }
        [cmd, module, dirs @ ..] if cmd == "tv-parity" && !dirs.is_empty() => {
            let bytes = std::fs::read(module).with_context(|| format!("reading {module}"))?;
            let bundle = std::path::Path::new(&dirs[0]).join("bundle.edgerec");
            let bundle =
                std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
            edgerec_wasm_tools::tv::refusals(&bytes, &bundle, TV_MEMORY_LIMIT)
                .with_context(|| format!("{module}: hostile input"))?;
            println!(
                "tv-parity: {module} refuses a truncated bundle, a bundle over budget, corrupt \
                 state and a buffer past its memory limit with error codes, and still serves"
            );
            for dir in dirs {
                let p = edgerec_wasm_tools::tv::parity(&bytes, dir.as_ref(), TV_MEMORY_LIMIT)
                    .with_context(|| format!("{module} on the fixture in {dir}"))?;
                let mib = |b: usize| b as f64 / (1 << 20) as f64;
                println!(
                    "tv-parity: {dir}: {} rows ({} ranked) from {module} in wasmi equal the native rows; \
                     module memory {:.1} MiB after load, {:.1} MiB high-water (limit {:.0} MiB)",
                    p.requests,
                    p.ranked,
                    mib(p.memory_after_load),
                    mib(p.memory_high_water),
                    mib(TV_MEMORY_LIMIT),
                );
            }
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgerec-wasm-tools: {e:#}");
            ExitCode::FAILURE
        }
    }
}
