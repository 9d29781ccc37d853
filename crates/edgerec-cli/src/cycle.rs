//! `edgerec cycle`: the periodic retraining loop over a world's days, published to a store and
//! synced by a simulated device; argument parsing, progress and files (the work is
//! `edgerec_fit::cycle`'s).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use edgerec_data::fs::write_atomic;
use edgerec_fit::cycle::{self, CycleConfig};
use edgerec_fit::data::WorldData;
use edgerec_fit::package::PackageOptions;
use edgerec_release::{Signing, Store, keyfile};

/// Options of `edgerec cycle`.
#[derive(clap::Args)]
pub struct CycleArgs {
    /// A world in the canonical schema (`data import`, `simulate`); each day sees its logs
    /// before the day's end.
    #[arg(long)]
    world: PathBuf,
    /// The release store to publish to (created if needed; `serve --store` serves it).
    #[arg(long)]
    store: PathBuf,
    /// The signing key file (`keys generate`); devices pin its public key.
    #[arg(long)]
    key: PathBuf,
    /// The channel (kept apart from `stable`: its manifests carry the simulated days' times).
    #[arg(long, default_value = "cycle")]
    channel: String,
    /// Days to replay.
    #[arg(long, default_value_t = CycleConfig::default().days)]
    days: u32,
    /// A full retrain (every source, embeddings, serving, ranker) every this many days; the
    /// first day is one.
    #[arg(long, default_value_t = CycleConfig::default().full_every)]
    full_every: u32,
    /// Retrain the ranker alone every this many days after a full retrain (0: never).
    #[arg(long, default_value_t = CycleConfig::default().ranker_every)]
    ranker_every: u32,
    /// The end of the first day, unix seconds (default: the days end with the world's last
    /// day, UTC); each release is published at its day's end.
    #[arg(long)]
    start: Option<i64>,
    /// A directory for report.md and report.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How full retrains fit the system (`train`'s options).
    #[command(flatten)]
    fit: crate::FitArgs,
    /// How item vectors are shipped (`bundle build`'s options; HNSW graphs are built on
    /// full retrains).
    #[command(flatten)]
    vectors: crate::VectorArgs,
    /// Versions whose blobs the store keeps.
    #[arg(long, default_value_t = 3)]
    keep: usize,
    /// Days devices accept each manifest.
    #[arg(long, default_value_t = 7.0)]
    expires_days: f64,
}

pub fn run(a: &CycleArgs) -> Result<()> {
    let system = a.fit.config();
    let config = CycleConfig {
        system,
        package: a.vectors.apply(PackageOptions::default()),
        first_cut: a.start,
        days: a.days,
        full_every: a.full_every,
        ranker_every: a.ranker_every,
        channel: a.channel.clone(),
        keep: a.keep,
        expires_in: (a.expires_days * 86_400.0).round() as i64,
    };
    let signing = Signing::single(keyfile::read_secret(&a.key)?);
    let store = Store::open(&a.store)?;
    let world = WorldData::load(&a.world, a.fit.positive_above)
        .with_context(|| format!("loading the world {}", a.world.display()))?;
    let report = cycle::run(&world, &store, &signing, &config, |d| {
        use std::io::Write as _;
        println!(
            "day {:>2} {} {:<12} v{:<3} {} of {} bytes ({:.1}%), downloaded: {} ({:.1} s)",
            d.day,
            d.date,
            if d.first_sync {
                "first sync"
            } else {
                d.change.name()
            },
            d.version,
            d.downloaded_bytes,
            d.full_bytes,
            100.0 * d.downloaded_bytes as f64 / d.full_bytes.max(1) as f64,
            d.changed().join(" "),
            d.seconds
        );
        if !d.note.is_empty() {
            println!("       {}", d.note);
        }
        let _ = std::io::stdout().flush();
    })?;
    let md = report.markdown();
    if let Some(out) = &a.out {
        write_atomic(&out.join("report.md"), md.as_bytes())?;
        write_atomic(
            &out.join("report.json"),
            &serde_json::to_vec_pretty(&report)?,
        )?;
    }
    println!();
    print!("{md}");
    eprintln!("clients pin the trust root: {}", signing.trust().to_text());
    Ok(())
}
