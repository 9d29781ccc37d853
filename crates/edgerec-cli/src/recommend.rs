//! `edgerec recommend`: top-k rows for a list of users, computed by the same
//! `edgerec::Recommender` the device runs, so any system's recommendations can be scored alike.
//!
//! Each user's history is their interactions in the data directory (before `--before`, when
//! given), oldest first, ties in file order. Output: tab-separated `user_id, rank, item_id` rows with a header,
//! rank from 1. `--requests-out` also writes each request as one JSON line in the shape the JS
//! `Recommender.recommend` takes, so other runtimes can replay exactly the same requests.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use edgerec::context::{Context, Device};
use serde::Serialize;

use crate::tables::Tables;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle file.
    #[arg(long)]
    bundle: PathBuf,
    /// Directory with the canonical tables (users' histories come from interactions.parquet).
    #[arg(long)]
    data: PathBuf,
    /// File with one user id per line (a `user_id` header line is allowed).
    #[arg(long)]
    users: PathBuf,
    /// Titles per user.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Output TSV.
    #[arg(long)]
    out: PathBuf,
    /// Only interactions strictly before this unix time form the history.
    #[arg(long)]
    before: Option<i64>,
    /// Device of every request.
    #[arg(long, default_value = "tv")]
    device: String,
    /// Request time, unix seconds (default: the bundle's popularity reference time).
    #[arg(long)]
    time: Option<i64>,
    /// Users' offset from UTC in minutes.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    utc_offset_minutes: i32,
    /// Also write the requests as JSON lines.
    #[arg(long)]
    requests_out: Option<PathBuf>,
    /// Onboarding genre picks (comma-separated) for users with no history in the data.
    #[arg(long, value_delimiter = ',')]
    cold_user_genres: Vec<String>,
    /// Print the rows of the first N users with titles and reasons.
    #[arg(long, default_value_t = 0)]
    print: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonContext<'a> {
    device: &'a str,
    timestamp: i64,
    utc_offset_minutes: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRequest<'a> {
    user_id: u32,
    history: &'a [u32],
    onboarding_genres: &'a [String],
    context: JsonContext<'a>,
    k: usize,
}

fn read_users(path: &PathBuf) -> Result<Vec<u32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let field = line.split('\t').next().unwrap_or("").trim();
        if field.is_empty() || (i == 0 && field == "user_id") {
            continue;
        }
        match field.parse() {
            Ok(u) => users.push(u),
            Err(_) => bail!(
                "{}: line {}: {field:?} is not a user id",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(users)
}

pub fn run(args: &Args) -> Result<()> {
    let bytes = std::fs::read(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    let rec = edgerec::Recommender::from_bytes(&bytes)
        .with_context(|| format!("{} was refused", args.bundle.display()))?;
    let tables = Tables::read(&args.data)?;
    let users = read_users(&args.users)?;
    let device: Device = args.device.parse()?;
    let time = args
        .time
        .unwrap_or(rec.bundle().contents().popularity.reference_time);
    let ctx = Context::new(device, time, args.utc_offset_minutes)?;

    let mut histories: HashMap<u32, Vec<u32>> = HashMap::new();
    for x in &tables.interactions {
        if args.before.is_none_or(|b| x.timestamp < b) {
            histories.entry(x.user_id).or_default().push(x.item_id);
        }
    }
    let mut tsv = String::from("user_id\trank\titem_id\n");
    let mut jsonl = String::new();
    let catalog = &rec.bundle().contents().catalog;
    for (n, &user) in users.iter().enumerate() {
        let history = histories.get(&user).map_or(&[][..], Vec::as_slice);
        let picks = if history.is_empty() {
            &args.cold_user_genres[..]
        } else {
            &[]
        };
        let row = rec.recommend(history, picks, &ctx, args.k)?;
        if n < args.print {
            println!(
                "\nuser {user} ({} titles watched), {} at {time}:",
                history.len(),
                device
            );
            for (rank, r) in row.iter().enumerate() {
                let item = &catalog.items()[r.position];
                println!(
                    "{:>3}. {:<50} {:<10} {}",
                    rank + 1,
                    item.display_title(),
                    r.source.as_str(),
                    r.reason
                );
            }
        }
        for (rank, r) in row.iter().enumerate() {
            let _ = writeln!(tsv, "{user}\t{}\t{}", rank + 1, r.item_id);
        }
        if args.requests_out.is_some() {
            let req = JsonRequest {
                user_id: user,
                history,
                onboarding_genres: picks,
                context: JsonContext {
                    device: device.as_str(),
                    timestamp: time,
                    utc_offset_minutes: args.utc_offset_minutes,
                },
                k: args.k,
            };
            jsonl.push_str(&serde_json::to_string(&req)?);
            jsonl.push('\n');
        }
    }
    crate::write(&args.out, tsv.as_bytes())?;
    if let Some(path) = &args.requests_out {
        crate::write(path, jsonl.as_bytes())?;
    }
    println!(
        "{} users × top-{} written to {} (model {})",
        users.len(),
        args.k,
        args.out.display(),
        rec.bundle().contents().meta.model_version
    );
    Ok(())
}
