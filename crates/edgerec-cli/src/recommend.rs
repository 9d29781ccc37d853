//! `edgerec recommend`: top-k rows for a list of users, computed by the same
//! `edgerec::Recommender` the device runs, so any system's recommendations can be scored alike.
//!
//! Each user's history is their interactions in the data directory (before `--before`, when
//! given), oldest first, ties in file order. Output: tab-separated `user_id, rank, item_id` rows with a header,
//! rank from 1. `--requests-out` also writes each request as one JSON line in the shape the JS
//! `Recommender.recommend` takes, so other runtimes can replay exactly the same requests.
//!
//! `--source` picks the row: `skeleton` (the default: genre affinity blended with popularity,
//! `Recommender::recommend`, the JS API's row) or one of the bundle's candidate sources —
//! `ials`, `two-tower`, `content`, `popularity` — or their quota `blend`
//! (`Recommender::candidates`). Candidate rows add three columns: `source` (the source, or for
//! the blend the source whose turn placed the title), `score` (that source's score) and
//! `sources` (every source whose row holds the title, as `name:rank`, comma-separated). Users
//! without history get the `--cold-user-genres` as onboarding genres. The two-tower user
//! vector is computed here, natively, by running the bundle's ONNX user tower with tract on
//! the user's history, age and gender from the data and the request's time and UTC offset
//! (`edgerec::candidates::two_tower_dense`); watched titles are never returned.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::Recommender;
use edgerec::blend::Source;
use edgerec::candidates::{
    CandidateRequest, Candidates, TWO_TOWER_DENSE_FEATURES, two_tower_dense,
};
use edgerec::context::{Context, Device};
use edgerec_twotower::{OnnxUserTower, UserInput};
use serde::Serialize;

use crate::tables::{Tables, User};

/// Which row `recommend` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeSource {
    /// Genre affinity blended with popularity (`Recommender::recommend`, the JS API's row).
    Skeleton,
    /// iALS fold-in against the bundle's item factors.
    Ials,
    /// The two-tower model (user tower run natively with tract).
    TwoTower,
    /// Content-based profiles.
    Content,
    /// Time-decayed popularity.
    Popularity,
    /// Every candidate source blended with the bundle's quotas.
    Blend,
    /// The device's whole pipeline (`Recommender::recommend_row`): each user's local state
    /// built from the data, candidates, features, the bundle's ranker and the rerank.
    Device,
}

impl ServeSource {
    /// The candidate source, for the single-source rows.
    fn source(self) -> Option<Source> {
        match self {
            ServeSource::Ials => Some(Source::Collaborative),
            ServeSource::TwoTower => Some(Source::TwoTower),
            ServeSource::Content => Some(Source::Content),
            ServeSource::Popularity => Some(Source::Popularity),
            ServeSource::Skeleton | ServeSource::Blend | ServeSource::Device => None,
        }
    }
}

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
    /// Print the rows of the first N users with titles and reasons (with a candidate
    /// `--source`: every source's top titles and the blend).
    #[arg(long, default_value_t = 0)]
    print: usize,
    /// The row to write: the skeleton's, one candidate source's, their blend, or the
    /// device's full pipeline.
    #[arg(long, value_enum, default_value_t = ServeSource::Skeleton)]
    source: ServeSource,
    /// `--source device`: blend candidates to rank (default: the bundle's SERV).
    #[arg(long)]
    candidates: Option<usize>,
    /// `--source device`: `auto`, `flat` or `hnsw` search of the embedding sources.
    #[arg(long, default_value = "auto")]
    index: String,
    /// `--source device`: the users' country and language (ISO codes) in their local state.
    #[arg(long)]
    country: Option<String>,
    /// See `--country`.
    #[arg(long)]
    language: Option<String>,
    /// `--source device`: every third user (id divisible by 3) has been shown the N most
    /// popular titles three times each in the last hours without playing them, so the
    /// fatigue filter has something to do.
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

/// What both serving paths read: the tables, the users asked for, each user's history before
/// `--before` (oldest first) and the request context.
struct Requests {
    tables: Tables,
    users: Vec<u32>,
    histories: HashMap<u32, Vec<u32>>,
    /// The same interactions with their times.
    events: HashMap<u32, Vec<(u32, i64)>>,
    device: Device,
    time: i64,
    ctx: Context,
}

impl Requests {
    fn read(args: &Args, rec: &Recommender) -> Result<Requests> {
        let tables = Tables::read(&args.data)?;
        let users = read_users(&args.users)?;
        let device: Device = args.device.parse()?;
        let time = args
            .time
            .unwrap_or(rec.bundle().contents().popularity.reference_time);
        let ctx = Context::new(device, time, args.utc_offset_minutes)?;
        let mut histories: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut events: HashMap<u32, Vec<(u32, i64)>> = HashMap::new();
        for x in &tables.interactions {
            if args.before.is_none_or(|b| x.timestamp < b) {
                histories.entry(x.user_id).or_default().push(x.item_id);
                events
                    .entry(x.user_id)
                    .or_default()
                    .push((x.item_id, x.timestamp));
            }
        }
        Ok(Requests {
            tables,
            users,
            histories,
            events,
            device,
            time,
            ctx,
        })
    }

    /// A user's history (empty for unknown users).
    fn history(&self, user: u32) -> &[u32] {
        self.histories.get(&user).map_or(&[][..], Vec::as_slice)
    }

    /// Appends the request of `user` to `jsonl` as the JS parity tests replay it.
    fn push_json(
        &self,
        jsonl: &mut String,
        args: &Args,
        user: u32,
        picks: &[String],
    ) -> Result<()> {
        let req = JsonRequest {
            user_id: user,
            history: self.history(user),
            onboarding_genres: picks,
            context: JsonContext {
                device: self.device.as_str(),
                timestamp: self.time,
                utc_offset_minutes: args.utc_offset_minutes,
            },
            k: args.k,
        };
        jsonl.push_str(&serde_json::to_string(&req)?);
        jsonl.push('\n');
        Ok(())
    }
}

/// Onboarding genre picks apply to users without a history.
fn picks<'a>(args: &'a Args, history: &[u32]) -> &'a [String] {
    if history.is_empty() {
        &args.cold_user_genres[..]
    } else {
        &[]
    }
}

/// Writes the rows and, when asked, the requests.
fn write_outputs(args: &Args, tsv: &str, jsonl: &str) -> Result<()> {
    crate::write(&args.out, tsv.as_bytes())?;
    if let Some(path) = &args.requests_out {
        crate::write(path, jsonl.as_bytes())?;
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let bytes = std::fs::read(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    let rec = edgerec::Recommender::from_bytes(&bytes)
        .with_context(|| format!("{} was refused", args.bundle.display()))?;
    if args.source == ServeSource::Device {
        return run_device(args, &rec);
    }
    if args.source != ServeSource::Skeleton {
        return run_candidates(args, &rec);
    }
    let input = Requests::read(args, &rec)?;

    let mut tsv = String::from("user_id\trank\titem_id\n");
    let mut jsonl = String::new();
    let catalog = &rec.bundle().contents().catalog;
    for (n, &user) in input.users.iter().enumerate() {
        let history = input.history(user);
        let picks = picks(args, history);
        let row = rec.recommend(history, picks, &input.ctx, args.k)?;
        if n < args.print {
            println!(
                "\nuser {user} ({} titles watched), {} at {}:",
                history.len(),
                input.device,
                input.time
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
            input.push_json(&mut jsonl, args, user, picks)?;
        }
    }
    write_outputs(args, &tsv, &jsonl)?;
    println!(
        "{} users × top-{} written to {} (model {})",
        input.users.len(),
        args.k,
        args.out.display(),
        rec.bundle().contents().meta.model_version
    );
    Ok(())
}

/// The user tower of the bundle, loaded into tract, with what its inputs need.
struct Tower {
    onnx: OnnxUserTower,
}

impl Tower {
    /// Loads the bundle's user tower; `None` when the bundle has no two-tower model.
    fn load(rec: &Recommender) -> Result<Option<Tower>> {
        let c = rec.bundle().contents();
        let Some(t) = &c.two_tower else {
            return Ok(None);
        };
        ensure!(
            t.dense_features() == TWO_TOWER_DENSE_FEATURES,
            "the bundle's user tower takes dense features {:?}, this build computes {:?}",
            t.dense_features(),
            TWO_TOWER_DENSE_FEATURES
        );
        let onnx =
            OnnxUserTower::load(t.user_tower()).context("loading the bundle's user tower")?;
        ensure!(
            onnx.dim() == t.dim()
                && onnx.n_items() == c.catalog.len()
                && onnx.n_dense() == edgerec::candidates::TWO_TOWER_DENSE,
            "the user tower (dim {}, {} items, {} dense inputs) does not fit the bundle (dim {}, {} items)",
            onnx.dim(),
            onnx.n_items(),
            onnx.n_dense(),
            t.dim(),
            c.catalog.len()
        );
        Ok(Some(Tower { onnx }))
    }

    /// The user's vector: history as catalog positions, no searches (the tables have none),
    /// dense features of the user at the request's time.
    fn embed(
        &self,
        rec: &Recommender,
        history: &[u32],
        user: Option<&User>,
        ctx: &Context,
    ) -> Result<Vec<f32>> {
        let catalog = &rec.bundle().contents().catalog;
        let age = user.and_then(|u| u.age).map_or(0, |a| a.min(255) as u8);
        let gender = match user.and_then(|u| u.gender.as_deref()) {
            Some("F" | "f") => "f",
            Some("M" | "m") => "m",
            _ => "x",
        };
        let input = UserInput {
            history: history
                .iter()
                .filter_map(|&id| catalog.position(id))
                .map(|p| p as u32)
                .collect(),
            searches: Vec::new(),
            dense: two_tower_dense(age, gender, ctx.utc_offset_minutes(), ctx.timestamp()),
        };
        self.onnx
            .embed(std::slice::from_ref(&input))
            .context("running the user tower")
    }
}

/// `name:rank,…` of a title's sources.
fn attribution(sources: &[(Source, u32)]) -> String {
    sources
        .iter()
        .map(|(s, r)| format!("{}:{r}", s.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `(item id, source, score, sources)` rows of the chosen candidate row.
fn chosen_row(c: &Candidates, which: ServeSource) -> Vec<(u32, Source, f32, String)> {
    match which.source() {
        Some(s) => c
            .row(s)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(r, x)| (x.item_id, s, x.score, format!("{}:{}", s.as_str(), r + 1)))
            .collect(),
        None => c
            .blend
            .iter()
            .map(|b| {
                let score = c.score(b.placed_by, b.position).unwrap_or(f32::NAN);
                (b.item_id, b.placed_by, score, attribution(&b.sources))
            })
            .collect(),
    }
}

fn print_candidates(rec: &Recommender, user: u32, history: usize, c: &Candidates, k: usize) {
    let catalog = &rec.bundle().contents().catalog;
    let title = |p: usize| catalog.items()[p].display_title();
    println!("\nuser {user} ({history} titles watched):");
    for row in &c.rows {
        println!("  {}:", row.source.as_str());
        if row.items.is_empty() {
            println!("       (nothing: the source knows nothing about this user)");
        }
        for (r, x) in row.items.iter().take(k).enumerate() {
            println!(
                "    {:>3}. {:<50} {:>8.4}",
                r + 1,
                title(x.position),
                x.score
            );
        }
    }
    println!("  blend:");
    for (r, b) in c.blend.iter().take(k).enumerate() {
        println!(
            "    {:>3}. {:<50} {:<10} {}",
            r + 1,
            title(b.position),
            b.placed_by.as_str(),
            attribution(&b.sources)
        );
    }
}

/// `--source` other than `skeleton`: the bundle's candidate sources and their blend.
fn run_candidates(args: &Args, rec: &Recommender) -> Result<()> {
    let served = rec.candidate_sources();
    if let Some(s) = args.source.source() {
        ensure!(
            served.contains(&s),
            "{} has no {} source (bundle sections: train with --world to add them)",
            args.bundle.display(),
            s.as_str()
        );
    }
    let input = Requests::read(args, rec)?;
    let tower = Tower::load(rec)?;
    let profiles: HashMap<u32, &User> = input.tables.users.iter().map(|u| (u.user_id, u)).collect();

    let mut tsv = String::from("user_id\trank\titem_id\tsource\tscore\tsources\n");
    let mut jsonl = String::new();
    for (n, &user) in input.users.iter().enumerate() {
        let history = input.history(user);
        let picks = picks(args, history);
        let two_tower_user = match &tower {
            Some(t) => Some(t.embed(rec, history, profiles.get(&user).copied(), &input.ctx)?),
            None => None,
        };
        let req = CandidateRequest {
            history: history.to_vec(),
            onboarding_genres: picks.to_vec(),
            two_tower_user,
            ..CandidateRequest::new(args.k)
        };
        let c = rec
            .candidates(&req)
            .with_context(|| format!("user {user}"))?;
        if n < args.print {
            print_candidates(rec, user, history.len(), &c, args.k);
        }
        for (rank, (item, source, score, sources)) in
            chosen_row(&c, args.source).into_iter().enumerate()
        {
            let _ = writeln!(
                tsv,
                "{user}\t{}\t{item}\t{}\t{score}\t{sources}",
                rank + 1,
                source.as_str()
            );
        }
        if args.requests_out.is_some() {
            input.push_json(&mut jsonl, args, user, picks)?;
        }
    }
    write_outputs(args, &tsv, &jsonl)?;
    let name = match args.source.source() {
        Some(s) => s.as_str(),
        None => "blend",
    };
    println!(
        "{} users × top-{} ({name}) written to {} (model {})",
        input.users.len(),
        args.k,
        args.out.display(),
        rec.bundle().contents().meta.model_version
    );
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRowOptions<'a> {
    context: JsonContext<'a>,
    k: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates: Option<usize>,
    index: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRowRequest<'a> {
    user_id: u32,
    /// `UserState.toBytes()` as hex.
    state: String,
    options: JsonRowOptions<'a>,
}

/// A user's local state as the device would hold it: every interaction as a finished play of
/// the whole title at its time (on a desktop), the profile's age and gender, the given country
/// and language, onboarding picks for users without history, and the `--shown-popular`
/// impressions.
fn device_state(
    args: &Args,
    rec: &Recommender,
    input: &Requests,
    user: u32,
    popular: &[u32],
) -> Result<edgerec::state::UserState> {
    use edgerec::features::Gender;
    use edgerec::state::{Progress, UserState};
    let c = rec.bundle().contents();
    let mut state = UserState::new();
    for &(item, time) in input.events.get(&user).map_or(&[][..], Vec::as_slice) {
        let duration = c
            .catalog
            .position(item)
            .and_then(|p| c.media.as_ref().map(|m| m.media()[p].duration_s))
            .unwrap_or(crate::movielens_world::DEFAULT_DURATION_S);
        state.record_progress(
            item,
            time,
            Progress {
                fraction: 1.0,
                watched_s: duration,
                device: Device::Desktop,
            },
        )?;
    }
    let profile = input.tables.users.iter().find(|u| u.user_id == user);
    let s = state.settings_mut();
    s.set_age(profile.and_then(|u| u.age).map(|a| a.min(120) as u8));
    s.set_gender(match profile.and_then(|u| u.gender.as_deref()) {
        Some("F" | "f") => Gender::Female,
        Some("M" | "m") => Gender::Male,
        Some(_) => Gender::Other,
        None => Gender::Unknown,
    });
    s.set_country(args.country.as_deref())?;
    s.set_language(args.language.as_deref())?;
    s.set_utc_offset_minutes(args.utc_offset_minutes)?;
    if input.history(user).is_empty() && !args.cold_user_genres.is_empty() {
        state.set_onboarding(&args.cold_user_genres, &[])?;
    }
    if user.is_multiple_of(3) {
        for hours in [3, 2, 1] {
            state.record_impression(popular, input.time - hours * 3_600);
        }
    }
    Ok(state)
}

/// `--source device`: the device's whole pipeline per user, with the median time per stage.
fn run_device(args: &Args, rec: &Recommender) -> Result<()> {
    use edgerec::device::RowRequest;
    let input = Requests::read(args, rec)?;
    let c = rec.bundle().contents();
    let mut by_popularity: Vec<usize> = (0..c.catalog.len()).collect();
    by_popularity.sort_by(|&a, &b| {
        c.popularity.scores[b]
            .total_cmp(&c.popularity.scores[a])
            .then(a.cmp(&b))
    });
    let popular: Vec<u32> = by_popularity
        .iter()
        .take(args.shown_popular)
        .map(|&p| c.catalog.items()[p].id)
        .collect();
    let index: edgerec::retrieval::IndexChoice = args.index.parse()?;
    let mut tsv = String::from("user_id\trank\titem_id\tplaced_by\tscore\treason\n");
    let mut jsonl = String::new();
    let mut timings = Vec::with_capacity(input.users.len());
    let mut ranked = false;
    for (n, &user) in input.users.iter().enumerate() {
        let state = device_state(args, rec, &input, user, &popular)
            .with_context(|| format!("user {user}'s state"))?;
        let req = RowRequest {
            k: Some(args.k),
            candidates: args.candidates,
            index,
            ..RowRequest::new(input.ctx)
        };
        let row = rec
            .recommend_row(&state, &req)
            .with_context(|| format!("user {user}"))?;
        ranked |= row.info.ranked;
        timings.push(row.timings);
        if n < args.print {
            println!(
                "\nuser {user} ({} plays, {} candidates, ranked: {}), {} at {}:",
                state.plays().len(),
                row.info.candidates,
                row.info.ranked,
                input.device,
                input.time
            );
            for (rank, r) in row.items.iter().enumerate() {
                println!(
                    "{:>3}. {:<50} {:<10} {:.4}  {}",
                    rank + 1,
                    c.catalog.items()[r.position].display_title(),
                    r.placed_by.as_str(),
                    r.score,
                    r.reason
                );
            }
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
        if args.requests_out.is_some() {
            let req = JsonRowRequest {
                user_id: user,
                state: state.export().iter().map(|b| format!("{b:02x}")).collect(),
                options: JsonRowOptions {
                    context: JsonContext {
                        device: input.device.as_str(),
                        timestamp: input.time,
                        utc_offset_minutes: args.utc_offset_minutes,
                    },
                    k: args.k,
                    candidates: args.candidates,
                    index: index.as_str(),
                },
            };
            jsonl.push_str(&serde_json::to_string(&req)?);
            jsonl.push('\n');
        }
    }
    write_outputs(args, &tsv, &jsonl)?;
    let median = |f: fn(&edgerec::device::Timings) -> f64| -> f64 {
        let mut v: Vec<f64> = timings.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "{} users × top-{} (device pipeline, ranker: {}) written to {} (model {})",
        input.users.len(),
        args.k,
        if ranked { "yes" } else { "no" },
        args.out.display(),
        c.meta.model_version
    );
    println!(
        "median ms per request (native): user {:.3}, candidates {:.3}, features {:.3}, ranking {:.3}, rerank {:.3}, total {:.3}",
        median(|t| t.user_ms),
        median(|t| t.candidates_ms),
        median(|t| t.features_ms),
        median(|t| t.ranking_ms),
        median(|t| t.rerank_ms),
        median(|t| t.total_ms)
    );
    Ok(())
}
