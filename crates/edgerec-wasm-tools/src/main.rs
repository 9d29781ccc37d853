//! `edgerec-wasm-tools`: the wasm build's module checks (scripts/build-wasm.sh runs them).
//!
//!   edgerec-wasm-tools check-baseline FILE...   each FILE validates without SIMD

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use edgerec_wasm_tools::{baseline_features, validate};

const USAGE: &str = "usage: edgerec-wasm-tools check-baseline FILE...";

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
