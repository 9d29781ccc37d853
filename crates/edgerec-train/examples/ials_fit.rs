//! Times iALS fits (a benchmark, not a test), on a split written by `edgerec eval`
//! (`splits/<split>/train.tsv` and `params.json`: the same past and the same factors,
//! iterations, alpha and lambda `bench/peers.py` gives the `implicit` library) or, without an
//! argument, on a random matrix of MovieLens-100K's shape. Prints the median of `REPEATS` fits
//! (default 3); `RAYON_NUM_THREADS` sets the threads.
//!
//! `cargo run -p edgerec-train --example ials_fit -- [SPLIT_DIR]`

use std::time::Instant;

use edgerec_train::ials::{IalsConfig, Interactions, train};

fn from_split(dir: &str) -> (Interactions, IalsConfig) {
    let params: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{dir}/params.json")).expect("reading params.json"),
    )
    .expect("params.json is JSON");
    let num = |k: &str| {
        params[k]
            .as_f64()
            .unwrap_or_else(|| panic!("params.json: {k}"))
    };
    let text = std::fs::read_to_string(format!("{dir}/train.tsv")).expect("reading train.tsv");
    let triples: Vec<(u32, u32, f32)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().expect("user"),
                f[1].parse().expect("item"),
                f[2].parse().expect("weight"),
            )
        })
        .collect();
    let data =
        Interactions::from_triples(num("n_users") as usize, num("n_items") as usize, &triples)
            .expect("valid triples");
    let config = IalsConfig {
        factors: num("factors") as usize,
        iterations: num("iterations") as usize,
        alpha: num("alpha") as f32,
        lambda: num("regularization") as f32,
        ..IalsConfig::default()
    };
    (data, config)
}

fn random() -> (Interactions, IalsConfig) {
    let (users, items, nnz) = (943, 1682, 100_000);
    let mut s = 12345u64;
    let mut next = |n: usize| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as usize) % n
    };
    // Skewed item popularity, like real logs.
    let triples: Vec<(u32, u32, f32)> = (0..nnz)
        .map(|_| {
            let i = next(items).min(next(items));
            (next(users) as u32, i as u32, 1.0)
        })
        .collect();
    let data = Interactions::from_triples(users, items, &triples).expect("valid triples");
    (data, IalsConfig::default())
}

fn main() {
    let (data, config) = match std::env::args().nth(1) {
        Some(dir) => from_split(&dir),
        None => random(),
    };
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            let model = train(&data, &config);
            assert_eq!(model.item_factors().rows(), data.items());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{:.3} s median of {} fits: {} users × {} items, {} pairs, {} factors, {} iterations, {} threads",
        times[times.len() / 2],
        times.len(),
        data.users(),
        data.items(),
        data.nnz(),
        config.factors,
        config.iterations,
        rayon::current_num_threads()
    );
}
