//! `edgerec recommend`: rows for a list of users from the device pipeline
//! (`edgerec::Recommender::recommend_row`, the code the wasm package runs), so any bundle's
//! rows can be inspected, scored and replayed elsewhere.
//!
//! Each user's local state is built from the world ([`edgerec_fit::device::user_state`]): their
//! plays before `--before` (default: the request time), their profile, the request's UTC
//! offset, and `--cold-user-genres` as onboarding picks for users without plays. Output:
//! tab-separated `user_id, rank, item_id, placed_by, score, reason` with a header, rank from 1.
//! `--requests-out` writes each request as one JSON line (`userId`, `state` as the hex of
//! `UserState.toBytes()`, the `recommendRow` options) so the JS package can replay exactly the
//! same requests and must get the same rows.
//!
//! `--source` limits the candidates to one source (the row then shows that source through the
//! same filters and rerank), `--no-ranker` keeps the blend's order, `--mmr-lambda` overrides
//! the bundle's diversity trade-off.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use edgerec::blend::Source;
use edgerec::context::{Context, Device};
use edgerec::rerank::RerankOverrides;
use edgerec::retrieval::IndexChoice;
use edgerec::state::UserState;
use edgerec::{Recommender, Row, RowRequest, Timings};
use edgerec_data::fs::write_atomic;
use edgerec_fit::data::WorldData;
use edgerec_fit::device::{StateOptions, user_state};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle file.
    #[arg(long)]
    bundle: PathBuf,
    /// The world whose users' plays and profiles make the local states.
    #[arg(long)]
    world: PathBuf,
    /// File with one user id per line (a `user_id` header line is allowed).
    #[arg(long)]
    users: PathBuf,
    /// Titles per user (default: the bundle's serving settings).
    #[arg(long)]
    k: Option<usize>,
    /// Output TSV.
    #[arg(long)]
    out: PathBuf,
    /// Only plays strictly before this unix time are in the state (default: the request time).
    #[arg(long)]
    before: Option<i64>,
    /// Device of every request.
    #[arg(long, default_value = "tv")]
    device: String,
    /// Request time, unix seconds (default: the bundle's popularity reference time).
    #[arg(long)]
    time: Option<i64>,
    /// Offset from UTC of every request and device, minutes.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    utc_offset_minutes: i32,
    /// Also write the requests as JSON lines.
    #[arg(long)]
    requests_out: Option<PathBuf>,
    /// Onboarding genre picks (comma-separated) for users with no play.
    #[arg(long, value_delimiter = ',')]
    cold_user_genres: Vec<String>,
    /// Print the rows of the first N users with titles and reasons.
    #[arg(long, default_value_t = 0)]
    print: usize,
    /// Candidates from one source only: `ials`, `two-tower`, `content` or `popularity`
    /// (default: every source, blended).
    #[arg(long)]
    source: Option<String>,
    /// Keep the blend's order instead of scoring with the bundle's ranker.
    #[arg(long)]
    no_ranker: bool,
    /// MMR trade-off instead of the bundle's (1: relevance only).
    #[arg(long)]
    mmr_lambda: Option<f32>,
    /// Blend candidates to rank (default: the bundle's SERV).
    #[arg(long)]
    candidates: Option<usize>,
    /// `auto`, `flat` or `hnsw` search of the embedding sources.
    #[arg(long, default_value = "auto")]
    index: String,
    /// Every third user (id divisible by 3) has been shown the N most popular titles three
    /// times each in the last hours without playing them, so the fatigue filter has
    /// something to do.
    #[arg(long, default_value_t = 0)]
    shown_popular: usize,
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
struct JsonRerank {
    #[serde(skip_serializing_if = "Option::is_none")]
    lambda: Option<f32>,
}

/// The `recommendRow` options of a request, as the JS package takes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRowOptions<'a> {
    context: JsonContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates: Option<usize>,
    index: &'a str,
    use_ranker: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    rerank: JsonRerank,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRowRequest<'a> {
    user_id: u32,
    /// `UserState.toBytes()` as hex.
    state: String,
    options: &'a JsonRowOptions<'a>,
}

fn read_users(path: &Path) -> Result<Vec<u32>> {
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

/// Everything every request shares.
struct Plan<'a> {
    args: &'a Args,
    rec: Recommender,
    world: WorldData,
    /// External user id → dense index in the world.
    users: HashMap<u32, usize>,
    request: RowRequest,
    options: JsonRowOptions<'a>,
    /// The `--shown-popular` most popular titles.
    popular: Vec<u32>,
}

impl<'a> Plan<'a> {
    fn new(args: &'a Args) -> Result<Plan<'a>> {
        let bytes = std::fs::read(&args.bundle)
            .with_context(|| format!("reading {}", args.bundle.display()))?;
        let rec = Recommender::from_bytes(&bytes)
            .with_context(|| format!("{} was refused", args.bundle.display()))?;
        let world = WorldData::load(&args.world, edgerec::features::WATCHED_ABOVE)
            .with_context(|| format!("loading {}", args.world.display()))?;
        let users = (0..world.users.len())
            .map(|u| (world.users[u].user_id, u))
            .collect();
        let c = rec.model().contents();
        let device: Device = args.device.parse()?;
        let time = args.time.unwrap_or(c.popularity.reference_time);
        let only_source = match &args.source {
            Some(name) => Some(
                Source::parse(name)
                    .with_context(|| format!("--source {name:?}: not a candidate source"))?,
            ),
            None => None,
        };
        let index: IndexChoice = args.index.parse()?;
        let request = RowRequest {
            k: args.k,
            candidates: args.candidates,
            index,
            use_ranker: !args.no_ranker,
            only_source,
            rerank: RerankOverrides {
                lambda: args.mmr_lambda,
                ..RerankOverrides::default()
            },
            ..RowRequest::new(Context::new(device, time, args.utc_offset_minutes)?)
        };
        let options = JsonRowOptions {
            context: JsonContext {
                device: device.as_str(),
                timestamp: time,
                utc_offset_minutes: args.utc_offset_minutes,
            },
            k: args.k,
            candidates: args.candidates,
            index: index.as_str(),
            use_ranker: !args.no_ranker,
            source: only_source.map(Source::as_str),
            rerank: JsonRerank {
                lambda: args.mmr_lambda,
            },
        };
        let mut by_popularity: Vec<usize> = (0..c.catalog.len()).collect();
        let pop = &c.popularity.scores;
        by_popularity.sort_by(|&a, &b| pop[b].total_cmp(&pop[a]).then(a.cmp(&b)));
        let popular = by_popularity
            .iter()
            .take(args.shown_popular)
            .map(|&p| c.catalog.items()[p].id)
            .collect();
        Ok(Plan {
            args,
            rec,
            world,
            users,
            request,
            options,
            popular,
        })
    }

    /// `user`'s local state at the request time, with the `--shown-popular` impressions.
    fn state(&self, user: u32) -> Result<UserState> {
        let time = self.request.context.timestamp();
        let options = StateOptions {
            before: self.args.before.unwrap_or(time),
            onboarding_genres: self.args.cold_user_genres.clone(),
            utc_offset_minutes: self.args.utc_offset_minutes,
        };
        let mut state = user_state(&self.world, self.users.get(&user).copied(), &options)?;
        if user.is_multiple_of(3) && !self.popular.is_empty() {
            for hours in [3, 2, 1] {
                state.record_impression(&self.popular, time - hours * 3_600)?;
            }
        }
        Ok(state)
    }

    fn print(&self, user: u32, state: &UserState, row: &Row) {
        let catalog = &self.rec.model().contents().catalog;
        println!(
            "\nuser {user} ({} plays, {} candidates, ranked: {}):",
            state.plays().len(),
            row.info.candidates,
            row.info.ranked,
        );
        for (rank, r) in row.items.iter().enumerate() {
            println!(
                "{:>3}. {:<50} {:<10} {:.4}  {}",
                rank + 1,
                catalog.items()[r.position].display_title(),
                r.placed_by.as_str(),
                r.score,
                r.reason
            );
        }
    }
}

fn median(timings: &[Timings], f: fn(&Timings) -> f64) -> f64 {
    let mut v: Vec<f64> = timings.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs `edgerec recommend`.
pub fn run(args: &Args) -> Result<()> {
    let plan = Plan::new(args)?;
    let users = read_users(&args.users)?;
    let mut tsv = String::from("user_id\trank\titem_id\tplaced_by\tscore\treason\n");
    let mut jsonl = String::new();
    let mut timings = Vec::with_capacity(users.len());
    for (n, &user) in users.iter().enumerate() {
        let state = plan
            .state(user)
            .with_context(|| format!("user {user}'s state"))?;
        let row = plan
            .rec
            .recommend_row(&state, &plan.request)
            .with_context(|| format!("user {user}"))?;
        timings.push(row.timings);
        if n < args.print {
            plan.print(user, &state, &row);
        }
        for (rank, r) in row.items.iter().enumerate() {
            let _ = writeln!(
                tsv,
                "{user}\t{}\t{}\t{}\t{}\t{}",
                rank + 1,
                r.item_id,
                r.placed_by.as_str(),
                r.score,
                r.reason
            );
        }
        let state = state.export().iter().map(|b| format!("{b:02x}")).collect();
        let req = JsonRowRequest {
            user_id: user,
            state,
            options: &plan.options,
        };
        jsonl.push_str(&serde_json::to_string(&req)?);
        jsonl.push('\n');
    }
    write_atomic(&args.out, tsv.as_bytes())?;
    if let Some(path) = &args.requests_out {
        write_atomic(path, jsonl.as_bytes())?;
    }
    println!(
        "{} users written to {} (model {})",
        users.len(),
        args.out.display(),
        plan.rec.model().version()
    );
    println!(
        "median ms per request (native): user {:.3}, candidates {:.3}, features {:.3}, ranking {:.3}, rerank {:.3}, total {:.3}",
        median(&timings, |t| t.user_ms),
        median(&timings, |t| t.candidates_ms),
        median(&timings, |t| t.features_ms),
        median(&timings, |t| t.ranking_ms),
        median(&timings, |t| t.rerank_ms),
        median(&timings, |t| t.total_ms)
    );
    Ok(())
}
