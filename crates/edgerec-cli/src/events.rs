//! `edgerec events`: what `serve --events` collected — counts, and the export to the canonical
//! log that `edgerec pipeline` trains on.

use std::path::PathBuf;

use anyhow::Result;
use edgerec_events::{EventStore, ExportOptions};

/// `edgerec events …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Devices, events and session aggregates in an event store, as JSON.
    Stats {
        /// The store (`serve --events`).
        #[arg(long)]
        db: PathBuf,
    },
    /// Write the stored events as a data set in the canonical schema (users and items copied
    /// from --base, events of the devices --accounts links to a user).
    Export {
        /// The store (`serve --events`).
        #[arg(long)]
        db: PathBuf,
        /// A data set holding the profiles (`users`) and the catalog (`items`).
        #[arg(long)]
        base: PathBuf,
        /// `device_id,user_id` per line: which device belongs to which user of --base.
        #[arg(long)]
        accounts: PathBuf,
        /// The data set directory to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `edgerec ab …`
#[derive(clap::Subcommand)]
pub enum AbCommand {
    /// Online metrics per arm of an experiment from an event store: report.md, report.json and
    /// plots/*.svg (intervals, sample-ratio check, CUPED with a pre-period).
    Report {
        /// The store (`serve --events`).
        #[arg(long)]
        db: PathBuf,
        /// The experiment's definition (`serve --experiments`).
        #[arg(long)]
        experiment: PathBuf,
        /// When the experiment started (unix seconds): earlier sessions are the pre-period
        /// CUPED adjusts by. Omit for no adjustment.
        #[arg(long)]
        start: Option<i64>,
        /// Seconds of a play that count it as a video watched.
        #[arg(long, default_value_t = 600)]
        watched_s: u32,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// The arm a device is in (what the device computes itself), as JSON.
    Assign {
        /// The experiment's definition.
        #[arg(long)]
        experiment: PathBuf,
        /// The device's id.
        #[arg(long)]
        device: String,
    },
}

pub fn ab(command: AbCommand) -> Result<()> {
    use edgerec_events::ab;
    match command {
        AbCommand::Report {
            db,
            experiment,
            start,
            watched_s,
            out,
        } => {
            let e = edgerec_server::experiments::load(&experiment)?;
            let store = EventStore::open(&db)?;
            let sessions = store.session_metrics(watched_s)?;
            let report = ab::ab_report(&sessions, &e, start);
            let md = ab::write(&report, &out)?;
            print!("{md}");
            Ok(())
        }
        AbCommand::Assign { experiment, device } => {
            let e = edgerec_server::experiments::load(&experiment)?;
            let a = e.assign(&device)?;
            println!("{}", serde_json::to_string(&a)?);
            Ok(())
        }
    }
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Stats { db } => {
            let store = EventStore::open(&db)?;
            println!("{}", serde_json::to_string_pretty(&store.counts()?)?);
            Ok(())
        }
        Command::Export {
            db,
            base,
            accounts,
            out,
        } => {
            let store = EventStore::open(&db)?;
            let opts = ExportOptions {
                base,
                accounts: edgerec_events::read_accounts(&accounts)?,
            };
            let report = edgerec_events::export(&store, &opts, &out)?;
            eprintln!(
                "wrote {}: {} impressions, {} plays, {} searches of {} linked devices ({} without an account left out)",
                out.display(),
                report.impressions,
                report.plays,
                report.searches,
                report.devices_linked,
                report.devices_unlinked
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
