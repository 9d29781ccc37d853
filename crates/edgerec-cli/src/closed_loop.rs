//! `edgerec loop`: the closed loop — simulated users drive the npm package's client against
//! the real server for simulated days, in A/B arms retrained daily (argument parsing and
//! progress; the work is `edgerec_loop`'s).

use std::path::PathBuf;

use anyhow::Result;
use edgerec_data::world::WorldConfig;
use edgerec_loop::{LoopConfig, default_fleet};

/// Options of `edgerec loop`.
#[derive(clap::Args)]
pub struct LoopArgs {
    /// The output directory: the logged window (base/), the release store, the event store
    /// (events.db), the experiment, report.md and report.json.
    #[arg(long)]
    out: PathBuf,
    /// Users of the synthetic world (one device each).
    #[arg(long, default_value_t = LoopConfig::default().world.users)]
    users: u32,
    /// Items of its catalog.
    #[arg(long, default_value_t = LoopConfig::default().world.items)]
    items: u32,
    /// Days of the logged window the first model trains on.
    #[arg(long, default_value_t = LoopConfig::default().world.days)]
    logged_days: u32,
    /// Seed of the world (`--seed` seeds the models).
    #[arg(long, default_value_t = LoopConfig::default().world.seed)]
    world_seed: u64,
    /// Start of the logged window (unix seconds).
    #[arg(long, default_value_t = LoopConfig::default().world.start)]
    start: i64,
    /// Pre-period days on the logging policy (CUPED's).
    #[arg(long, default_value_t = LoopConfig::default().pre_days)]
    pre_days: u32,
    /// A/B days, each after a retrain.
    #[arg(long, default_value_t = LoopConfig::default().days)]
    days: u32,
    /// Traffic shares of the arms popular, full and oracle.
    #[arg(long, num_args = 3, value_delimiter = ',', default_values_t = LoopConfig::default().shares)]
    shares: Vec<f64>,
    /// The experiment's salt.
    #[arg(long, default_value_t = LoopConfig::default().salt)]
    salt: String,
    /// Plays of at least this many seconds count as videos watched.
    #[arg(long, default_value_t = LoopConfig::default().watched_threshold_s)]
    watched_s: u32,
    /// The node executable.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// The fleet script (default: scripts/loop-fleet.mjs of the source tree the CLI was built
    /// from; it imports the package's node build, pkg/node).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// How each retrain fits the system (`train`'s options).
    #[command(flatten)]
    fit: crate::FitArgs,
    /// How item vectors are shipped (`bundle build`'s options).
    #[command(flatten)]
    vectors: crate::VectorArgs,
}

pub fn run(a: &LoopArgs) -> Result<()> {
    let defaults = LoopConfig::default();
    let config = LoopConfig {
        world: WorldConfig {
            users: a.users,
            items: a.items,
            days: a.logged_days,
            seed: a.world_seed,
            start: a.start,
        },
        pre_days: a.pre_days,
        days: a.days,
        shares: [a.shares[0], a.shares[1], a.shares[2]],
        salt: a.salt.clone(),
        system: a.fit.config(),
        package: a.vectors.apply(defaults.package),
        watched_threshold_s: a.watched_s,
        node: a.node.clone(),
        fleet: a.fleet.clone().unwrap_or_else(default_fleet),
    };
    let report = edgerec_loop::run(&config, &a.out, |line| eprintln!("{line}"))?;
    print!("{}", edgerec_loop::markdown(&report));
    eprintln!(
        "wrote {} (report.md, report.json; ab/: the A/B report and its plots, as `edgerec ab \
         report --db {} --experiment {} --start {}` writes them)",
        a.out.display(),
        a.out.join("events.db").display(),
        a.out.join("experiment.json").display(),
        report.start
    );
    Ok(())
}
