//! `edgerec sync`: the native sync client from the command line (a device, a smoke test, a
//! server-side consumer of the same releases). The client is `edgerec_release::sync`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args as ClapArgs;
use edgerec_release::keyfile;
use edgerec_release::sync::{Client, Polling, random_unit};

/// Options of `edgerec sync`.
#[derive(ClapArgs)]
pub struct SyncArgs {
    /// The release server (`edgerec serve`), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// The trust root to pin: the publisher's public key (`KEY`, `T:KEY,KEY,…`) or a file
    /// holding it (e.g. keys/release.pub).
    #[arg(long)]
    trust: String,
    /// The channel to follow.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// The directory holding the installed release (the npm `DirectoryStore` layout).
    #[arg(long)]
    dir: PathBuf,
    /// Keep syncing every `--interval-s` (± `--jitter`), backing off after failures.
    #[arg(long)]
    watch: bool,
    /// Seconds between syncs with `--watch`.
    #[arg(long, default_value_t = 3600.0)]
    interval_s: f64,
    /// Relative jitter of the interval (0.1: ±10%).
    #[arg(long, default_value_t = 0.1)]
    jitter: f64,
    /// The longest wait after failures, in seconds.
    #[arg(long, default_value_t = 6.0 * 3600.0)]
    max_backoff_s: f64,
    /// Seconds a request (connecting, headers and body) may take.
    #[arg(long, default_value_t = 30.0)]
    timeout_s: f64,
}

fn seconds(what: &str, s: f64) -> Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && s > 0.0 && s < 1e9,
        "--{what} must be a positive number of seconds"
    );
    Ok(Duration::from_secs_f64(s))
}

/// Syncs once (or keeps syncing with `--watch`), printing each outcome and the status as one
/// JSON line. Exits non-zero when a single sync leaves nothing installed.
pub fn run(a: &SyncArgs) -> Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.jitter),
        "--jitter must be between 0 and 1"
    );
    let polling = Polling {
        interval: seconds("interval-s", a.interval_s)?,
        jitter: a.jitter,
        max_backoff: seconds("max-backoff-s", a.max_backoff_s)?,
    };
    let trust = keyfile::read_trust(&a.trust)?;
    let mut client = Client::connect(
        &a.url,
        trust,
        &a.channel,
        &a.dir,
        seconds("timeout-s", a.timeout_s)?,
    )?;
    loop {
        let outcome = client.sync();
        println!(
            "{}",
            serde_json::json!({ "outcome": outcome, "status": client.status() })
        );
        if !a.watch {
            anyhow::ensure!(
                client.recommender().is_some(),
                "no release installed: {}",
                outcome
                    .error
                    .map_or_else(|| "the server has none".to_string(), |e| e.to_string())
            );
            return Ok(());
        }
        std::thread::sleep(polling.delay(client.failures(), random_unit()));
    }
}
