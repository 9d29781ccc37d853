//! The rankers at scale: trained on a pipeline output directory in memory (every example
//! loaded, as `edgerec rank train` does) or streamed from its files ([`ExampleStream`]: the
//! logistic regression by passes in O(features²) memory, the boosted trees on a bounded
//! uniform sample). Prints, per model, the training rows, fit seconds, the AUC and weighted
//! log-loss on the newest validation window, and the process's peak RSS. Run each mode in its
//! own process (peak RSS is per process):
//!
//! ```text
//! cargo run -p edgerec-fit --example rank_scale -- --examples data/examples --mode stream
//! cargo run -p edgerec-fit --example rank_scale -- --examples data/examples --mode memory
//! ```
//! `scripts/bench-train.sh` runs it on the examples of the 100k and 1M-user worlds.

mod scale;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use edgerec_rank::{
    ExampleStream, Examples, FitConfig, GradientBoostedTrees, LogisticRegression, TreeConfig,
    WindowScores, auc, log_loss, sample,
};
use scale::peak_rss_mib;

struct Args {
    examples: PathBuf,
    mode: String,
    sample: usize,
    trees: usize,
    seed: u64,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        examples: PathBuf::new(),
        mode: "stream".into(),
        sample: 2_000_000,
        trees: TreeConfig::default().iterations,
        seed: 1,
    };
    scale::parse_flags(|flag, value| {
        match flag {
            "--examples" => a.examples = value.into(),
            "--mode" => a.mode = value,
            "--sample" => a.sample = value.parse()?,
            "--trees" => a.trees = value.parse()?,
            "--seed" => a.seed = value.parse()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if a.examples.as_os_str().is_empty() {
        bail!("--examples DIR is required");
    }
    if !["stream", "memory"].contains(&a.mode.as_str()) {
        bail!("--mode is stream or memory");
    }
    Ok(a)
}

fn report(mode: &str, model: &str, train_rows: usize, seconds: f64, s: &WindowScores) {
    println!(
        "{mode:>6} {model:<5} train rows {train_rows:>10}  fit {seconds:>8.1} s  valid rows {:>9}  AUC {:.4}  weighted log-loss {:.4}  peak RSS {:>7.0} MiB",
        s.probs.len(),
        auc(&s.probs, &s.labels).unwrap_or(f64::NAN),
        log_loss(&s.probs, &s.labels, Some(&s.weights)).unwrap_or(f64::NAN),
        peak_rss_mib()
    );
}

fn main() -> Result<()> {
    let a = parse()?;
    let trees = TreeConfig {
        iterations: a.trees,
        ..TreeConfig::default()
    };
    let lr = FitConfig::default();
    if a.mode == "memory" {
        let t = Instant::now();
        let examples = Examples::load(&a.examples)?;
        let k = examples.folds.len() as i32 - 1;
        let train = examples.data.select(|i| examples.fold_window[i] < k);
        let valid = examples.data.select(|i| examples.fold_window[i] == k);
        println!(
            "memory: loaded {} examples in {:.1} s (window {k}: {} training, {} validation), peak RSS {:.0} MiB",
            examples.data.len(),
            t.elapsed().as_secs_f64(),
            train.len(),
            valid.len(),
            peak_rss_mib()
        );
        let t = Instant::now();
        let model = LogisticRegression::fit(&train, &lr)?;
        let seconds = t.elapsed().as_secs_f64();
        let mut s = WindowScores::default();
        s.add(model.score(&valid)?, &valid);
        report("memory", "LR", train.len(), seconds, &s);
        let t = Instant::now();
        let model = GradientBoostedTrees::fit(&train, &trees)?;
        let seconds = t.elapsed().as_secs_f64();
        let mut s = WindowScores::default();
        s.add(model.score(&valid)?, &valid);
        report("memory", "GBDT", train.len(), seconds, &s);
        return Ok(());
    }

    let stream = ExampleStream::open(&a.examples)?;
    let k = stream.folds().len() as i32 - 1;
    let train = stream.before(k);
    let t = Instant::now();
    let model = LogisticRegression::fit_rows(&train, &lr)?;
    let seconds = t.elapsed().as_secs_f64();
    let mut rows = 0usize;
    edgerec_rank::Rows::scan(&train, &mut |_, _, _| rows += 1)?;
    let s = stream.score_window(k, &|v| model.score(v))?;
    report("stream", "LR", rows, seconds, &s);
    println!("        LR: {} Newton steps", model.iterations());

    let t = Instant::now();
    let drawn = sample(&train, a.sample, a.seed)?;
    let drawn_s = t.elapsed().as_secs_f64();
    let model = GradientBoostedTrees::fit(&drawn, &trees)?;
    let seconds = t.elapsed().as_secs_f64();
    let s = stream.score_window(k, &|v| model.score(v))?;
    report("stream", "GBDT", drawn.len(), seconds, &s);
    println!(
        "        GBDT: a uniform sample of {} of {rows} rows (cap {}), drawn in {drawn_s:.1} s",
        drawn.len(),
        a.sample
    );
    Ok(())
}
