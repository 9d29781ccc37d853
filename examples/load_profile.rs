//! Where a bundle's load time goes (not a test): each step `Recommender::from_bytes` takes, timed
//! on its own, natively — the file's sha256, decoding every section (with its checksum), the
//! memory estimate, validation, the ranker (tract: decode, optimise, probe), the user tower,
//! the HNSW graphs — then the whole load. Median of `--runs` runs (default 5).
//!
//!   cargo run --release -p edgerec --example load_profile -- BUNDLE... [--runs N]
//!
//! `bench/memory.mjs` times the whole load in wasm; this says which part to make faster.

use std::time::Instant;

use edgerec::Recommender;
use edgerec::bundle::BundleContents;
use edgerec::hnsw::HnswIndex;
use edgerec::model::Model;
use edgerec::ranker::Ranker;
use edgerec::tower::UserTower;
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn median_ms(runs: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn main() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 5;
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        runs = args.get(i + 1).ok_or("--runs needs a value")?.parse()?;
        args.drain(i..i + 2);
    }
    if args.is_empty() {
        return Err("usage: load_profile BUNDLE... [--runs N]".into());
    }
    for path in &args {
        let bytes = std::fs::read(path)?;
        let contents = BundleContents::decode(&bytes)?;
        println!(
            "{path}: {:.1} MiB, {} titles; median of {runs} runs, ms",
            bytes.len() as f64 / (1 << 20) as f64,
            contents.catalog.items().len()
        );
        let step = |name: &str, f: &mut dyn FnMut() -> Res<()>| -> Res<()> {
            println!("  {name:<36} {:>9.2}", median_ms(runs, f)?);
            Ok(())
        };
        step("sha256 of the file", &mut || {
            std::hint::black_box(Sha256::digest(&bytes));
            Ok(())
        })?;
        step("decode (every section, its sha256)", &mut || {
            BundleContents::decode(&bytes)?;
            Ok(())
        })?;
        step("memory estimate", &mut || {
            std::hint::black_box(Model::estimate(&contents, bytes.len()));
            Ok(())
        })?;
        step("validate", &mut || Ok(contents.validate()?))?;
        if let Some(r) = &contents.ranker {
            step("ranker (tract: load, optimise, probe)", &mut || {
                Ranker::load(&r.contract, &r.onnx)?;
                Ok(())
            })?;
        }
        if let Some(t) = &contents.two_tower {
            step("user tower (tract)", &mut || {
                UserTower::load(t.user_tower())?;
                Ok(())
            })?;
        }
        for g in &contents.graphs {
            step(&format!("HNSW graph ({})", g.space.as_str()), &mut || {
                HnswIndex::from_bytes(&g.graph)?;
                Ok(())
            })?;
        }
        step("the whole load (Recommender::from_bytes)", &mut || {
            Recommender::from_bytes(&bytes)?;
            Ok(())
        })?;
    }
    Ok(())
}
