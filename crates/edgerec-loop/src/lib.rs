//! The closed loop: the online half of the evaluation, run end to end on a synthetic world.
//!
//! [`run`] simulates a world's logged window (as `edgerec simulate`), trains the system on it
//! (as `edgerec train`), publishes one signed release channel per A/B arm into a store, starts
//! the real server (`edgerec serve`'s router, with the event store and the experiment file) on
//! loopback, and spawns the client fleet (`scripts/loop-fleet.mjs` in node): the npm package's
//! own code — `Model` syncing each arm's channel, `recommendRow` on each device's `UserState`,
//! `EventQueue` at privacy `full`, `assignArm` putting each device in an arm. Then, day by day:
//!
//! 1. **pre-period** days (`pre_days`): every device is shown the world's logging policy (the
//!    production system before the test); what users do is recorded by the clients like any
//!    other day. CUPED uses these days.
//! 2. **A/B** days (`days`): before each day the system is retrained on everything the server
//!    has — the logged window and the events devices sent, exported to the canonical log
//!    ([`edgerec_events::export`]) — and published to each arm's channel; the fleet syncs.
//!    Then each simulated user lives the day ([`edgerec_data::behaviour::Viewer`]): when a
//!    session shows a page, the user's device is asked for its row (arm `full`: the system's
//!    bundle; arm `popular`: the same fit with popularity alone, no ranker), or the oracle ranks
//!    by the world's true utility (arm `oracle`, the online ceiling); the user examines and
//!    plays from it as the world's behaviour model says, and the device records what was shown,
//!    played and searched (`EventQueue.record`, which also updates its `UserState`, so the next
//!    row reacts). At the day's end every queue flushes to `POST /v1/events`.
//!
//! Every row of every arm is 10 titles. The fleet holds one synced `Model` per channel (every
//! device of an arm would download the same bytes) and one `UserState` and event queue per
//! device.
//!
//! The report ([`LoopReport`]) puts each arm's online metrics per day (the A/B report of the
//! event store, [`edgerec_events::ab`]) beside the offline metrics of the model it served that
//! day: NDCG@10 and Recall@10 of its row — the device pipeline's, at the day's start — against
//! what users watched that day (in every arm), the oracle's row included. It gives the full
//! system's share of the oracle arm's engagement, and whether each offline win predicted the
//! online one.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::Recommender;
use edgerec::bundle::BundleContents;
use edgerec::context::Device;
use edgerec::experiments::{Arm, Experiment};
use edgerec_data::behaviour::{
    Behaviour, Env, Events, LoggingPolicy, PageRequest, Pages, Policy, Viewer,
};
use edgerec_data::schema::{self, Impression, Item, Play, Search, Table, User};
use edgerec_data::sim::{SimOptions, simulate};
use edgerec_data::truth::{CalendarCache, Coefficients, Preference};
use edgerec_data::world::{self, Catalog, DAY, UserModel, Vocab, WorldConfig};
use edgerec_eval::{Summary, ndcg, paired, recall};
use edgerec_events::ab::{self, AbReport, DayMetrics, Estimate};
use edgerec_events::{EventStore, ExportOptions, ExportReport, export};
use edgerec_fit::data::WorldData;
use edgerec_fit::device::{Serving, rows};
use edgerec_fit::package::{PackageOptions, package};
use edgerec_fit::split;
use edgerec_fit::system::{System, SystemConfig, set_new_user_quotas, set_quotas};
use edgerec_release::{PublishOptions, Signing, Store, keyfile};
use serde::Serialize;

/// Titles in every row, in every arm.
pub const ROW: usize = 10;

/// The arms, in the experiment's order (the first is the control).
pub const ARMS: [&str; 3] = ["popular", "full", "oracle"];

/// How [`run`] runs the loop.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// The logged window (users, items, days, seed, start), as `edgerec simulate`.
    pub world: WorldConfig,
    /// Pre-period days on the logging policy (CUPED's), after the window.
    pub pre_days: u32,
    /// A/B days after them, with a retrain before each.
    pub days: u32,
    /// Traffic shares of [`ARMS`].
    pub shares: [f64; 3],
    /// The experiment's salt.
    pub salt: String,
    /// What each retrain fits (as `edgerec train`).
    pub system: SystemConfig,
    /// How bundles are packaged (as `edgerec bundle build`; `world` is set).
    pub package: PackageOptions,
    /// Plays of at least this many seconds are videos watched (the A/B report's threshold).
    pub watched_threshold_s: u32,
    /// The node executable.
    pub node: PathBuf,
    /// The fleet script (`scripts/loop-fleet.mjs`).
    pub fleet: PathBuf,
}

impl Default for LoopConfig {
    fn default() -> LoopConfig {
        LoopConfig {
            world: WorldConfig {
                users: 1_500,
                items: 600,
                days: 28,
                seed: 11,
                start: 1_761_955_200,
            },
            pre_days: 3,
            days: 4,
            shares: [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
            salt: "loop-1".into(),
            system: SystemConfig {
                dataset: "loop".into(),
                ..SystemConfig::default()
            },
            package: PackageOptions::default(),
            watched_threshold_s: 600,
            node: "node".into(),
            fleet: default_fleet(),
        }
    }
}

/// `scripts/loop-fleet.mjs` of this source tree.
pub fn default_fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/loop-fleet.mjs")
}

/// One arm's offline metrics on one day.
#[derive(Debug, Clone, Serialize)]
pub struct Offline {
    /// The arm.
    pub arm: String,
    /// Users with a past who watched something new that day.
    pub users: usize,
    /// NDCG@10 (mean, standard error).
    pub ndcg: (f64, f64),
    /// Recall@10 (mean, standard error).
    pub recall: (f64, f64),
}

impl Offline {
    /// `arm`'s metrics from each case's NDCG@10 and Recall@10.
    fn of(arm: &str, ndcg: &Summary, recall: &Summary) -> Offline {
        Offline {
            arm: arm.into(),
            users: ndcg.values.len(),
            ndcg: (ndcg.mean(), ndcg.standard_error()),
            recall: (recall.mean(), recall.standard_error()),
        }
    }
}

/// One simulated day.
#[derive(Debug, Clone, Serialize)]
pub struct LoopDay {
    /// Days since the unix epoch (UTC).
    pub day: i64,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `pre` (the logging policy everywhere) or `ab`.
    pub phase: String,
    /// The release label each arm's devices synced (on `pre` days, unused: the logging policy
    /// shows the rows).
    pub models: BTreeMap<String, String>,
    /// The full system's ranker that day (`gbdt/1`, …), when its gate shipped one.
    pub ranker: Option<String>,
    /// Positives the day's model was trained on (the logged window's and the events devices
    /// sent before the day).
    pub positives: usize,
    /// Sessions the simulated users opened.
    pub sessions: u64,
    /// Plays they started.
    pub plays: usize,
    /// Each arm's offline metrics: its row at the day's start against what users watched that
    /// day (on `pre` days, the first model's: the offline evaluation before the test).
    pub offline: Vec<Offline>,
    /// Seconds the day took (retrain, publish, sync, users, flush, export).
    pub seconds: f64,
    /// Seconds of it spent retraining.
    pub fit_seconds: f64,
}

/// Does an offline win predict the online one?
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// The arm compared.
    pub arm: String,
    /// Against this one.
    pub against: String,
    /// NDCG@10 difference on the pre-period days' logs (the offline evaluation before the test;
    /// the A/B days' without a pre-period), paired by user: mean, standard error.
    pub offline: (f64, f64),
    /// Engagement rate difference (the A/B report's, with its standard error).
    pub online: (f64, f64),
    /// Both differences have the same sign.
    pub agree: bool,
}

/// What the fleet's queues did in all.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct FleetCounts {
    /// Events the server accepted.
    pub sent: u64,
    /// Events it already had.
    pub duplicates: u64,
    /// Events it refused.
    pub rejected: u64,
    /// Failed requests.
    pub failures: u64,
    /// Events still queued.
    pub queued: u64,
    /// Events dropped (queue full).
    pub dropped: u64,
}

/// The loop's report.
#[derive(Debug, Clone, Serialize)]
pub struct LoopReport {
    /// The world.
    pub users: u32,
    /// Its items.
    pub items: u32,
    /// Days of logged window before the loop.
    pub logged_days: u32,
    /// The experiment.
    pub experiment: Experiment,
    /// When the A/B days began (unix seconds).
    pub start: i64,
    /// Every day.
    pub days: Vec<LoopDay>,
    /// The A/B report of the event store (the pre-period days as CUPED's).
    pub ab: AbReport,
    /// The full system's engagement rate over the oracle arm's (ratio, standard error).
    pub oracle_share: Option<(f64, f64)>,
    /// Each arm's offline metrics pooled over the pre-period days (the evaluation before the
    /// test; over the A/B days without a pre-period).
    pub offline: Vec<Offline>,
    /// Offline against online, for each pair of arms.
    pub agreement: Vec<Agreement>,
    /// The fleet's event counts.
    pub fleet: FleetCounts,
    /// The last export.
    pub export: ExportReport,
}

/// Runs the loop (see the module docs) in `out` (created; a previous run's files are
/// replaced) and returns its report (also `report.md`, `report.json`, and the A/B report with
/// its plots in `ab/`, as `edgerec ab report` writes it); `progress` hears what happens.
///
/// Errors: node or the fleet script missing or failing, a fit, publish or sync that fails, an
/// event the server refuses.
pub fn run(config: &LoopConfig, out: &Path, mut progress: impl FnMut(&str)) -> Result<LoopReport> {
    ensure!(config.days >= 1, "run at least one A/B day");
    ensure!(
        config.shares.iter().all(|s| *s > 0.0),
        "every arm needs a share above 0"
    );
    if out.exists() {
        for d in [
            "base",
            "train",
            "exported",
            "store",
            "events.db",
            "events.db-wal",
            "events.db-shm",
        ] {
            let p = out.join(d);
            if p.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else if p.exists() {
                std::fs::remove_file(&p)?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let cfg = config.world;
    let base = out.join("base");
    progress(&format!(
        "simulating the logged window: {} users, {} items, {} days",
        cfg.users, cfg.items, cfg.days
    ));
    simulate(&cfg, &base, &SimOptions::default())?;

    // The world again, in memory, living on past the window.
    let horizon = cfg.end() + i64::from(config.pre_days + config.days) * DAY;
    let vocab = Vocab::new(&cfg);
    let behaviour = Behaviour::default();
    let preference = Preference::new(Coefficients::default())?;
    let catalog = Catalog::generate(&cfg, &vocab, |_, _| Ok(()))?;
    let policy = Policy::new(&catalog);
    let calendar = CalendarCache::new(
        cfg.start,
        horizon,
        vocab.holidays.clone(),
        preference.coef.holiday_window_days,
    );
    let env = Env {
        cfg: &cfg,
        catalog: &catalog,
        policy: &policy,
        preference: &preference,
        behaviour: &behaviour,
        calendar: &calendar,
    };
    let users: Vec<UserModel> = (0..cfg.users)
        .map(|id| world::generate_user(&cfg, &vocab, id).model)
        .collect();
    let mut viewers: Vec<Viewer<'_, '_>> = users
        .iter()
        .map(|u| Viewer::new(&env, u, horizon))
        .collect();
    // Replays the logged window (the same random streams: the same events as `base`).
    let mut scratch = Events::default();
    for v in &mut viewers {
        v.run_until(cfg.end(), &mut LoggingPolicy, &mut scratch);
        scratch.clear();
    }

    // The experiment, the keys, the store, the server.
    let experiment = Experiment {
        schema: edgerec::experiments::SCHEMA.into(),
        name: "loop".into(),
        salt: config.salt.clone(),
        arms: ARMS
            .iter()
            .zip(config.shares)
            .map(|(a, share)| Arm {
                name: (*a).into(),
                share,
                channel: format!("loop-{a}"),
            })
            .collect(),
    };
    experiment.validate()?;
    let experiment_path = out.join("experiment.json");
    write(&experiment_path, &serde_json::to_vec_pretty(&experiment)?)?;
    let key_prefix = out.join("release");
    let (secret, public) = keyfile::paths(&key_prefix);
    for p in [&secret, &public] {
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    let signing = Signing::single(keyfile::generate(&key_prefix)?);
    let public_key = std::fs::read_to_string(&public)?.trim().to_string();
    let store = Store::open(&out.join("store"))?;
    let accounts: HashMap<String, u32> = users
        .iter()
        .map(|u| (device_id(u.user_id), u.user_id))
        .collect();
    let mut csv = String::from("device_id,user_id\n");
    for u in &users {
        let _ = writeln!(csv, "{},{}", device_id(u.user_id), u.user_id);
    }
    write(&out.join("accounts.csv"), csv.as_bytes())?;

    let first_day = cfg.end();
    progress("training on the logged window");
    let mut data = WorldData::load(&base, config.system.positive_above)?;
    let mut served = publish_day(config, &data, &base, &store, &signing, first_day)?;
    let mut trained_on = data.events.len();

    let db = out.join("events.db");
    let mut server_config = edgerec_server::ServerConfig::new(out.join("store"));
    server_config.events = Some(db.clone());
    server_config.experiments = Some(experiment_path.clone());
    let server = Server::start(server_config)?;
    progress(&format!("serving on {}", server.url));

    let mut fleet = Fleet::spawn(config)?;
    let devices: Vec<serde_json::Value> = users
        .iter()
        .map(|u| {
            serde_json::json!({
                "deviceId": device_id(u.user_id),
                "utcOffsetMinutes": u.utc_offset_minutes,
            })
        })
        .collect();
    let init = fleet.call(serde_json::json!({
        "op": "init",
        "now": first_day,
        "url": server.url,
        "publicKey": public_key,
        "experiment": experiment,
        "devices": devices,
    }))?;
    let mut arm_of: HashMap<String, usize> = HashMap::new();
    for d in init["devices"].as_array().context("init: no devices")? {
        let (Some(id), Some(arm)) = (d["deviceId"].as_str(), d["arm"].as_str()) else {
            bail!("init: a device without an id or arm: {d}");
        };
        let i = ARMS
            .iter()
            .position(|a| *a == arm)
            .with_context(|| format!("init: unknown arm {arm}"))?;
        arm_of.insert(id.to_string(), i);
    }
    let per_arm: Vec<usize> = (0..ARMS.len())
        .map(|i| arm_of.values().filter(|a| **a == i).count())
        .collect();
    progress(&format!(
        "fleet: {} devices ({})",
        arm_of.len(),
        ARMS.iter()
            .zip(&per_arm)
            .map(|(a, n)| format!("{a} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let export_options = ExportOptions {
        base: base.clone(),
        accounts,
    };
    let ab_start = first_day + i64::from(config.pre_days) * DAY;
    let mut days = Vec::new();
    let mut export_report = ExportReport::default();
    // Each case's NDCG and Recall per arm, over the pre-period days and over the A/B days.
    let mut pre_cases: Vec<(Summary, Summary)> = vec![Default::default(); ARMS.len()];
    let mut ab_cases: Vec<(Summary, Summary)> = vec![Default::default(); ARMS.len()];
    for d in 0..(config.pre_days + config.days) {
        let day_started = Instant::now();
        let start = first_day + i64::from(d) * DAY;
        let end = start + DAY;
        let ab_day = start >= ab_start;
        let mut day_fit = 0.0;
        let mut positives = trained_on;
        if ab_day && start > first_day {
            // Retrain on everything the server has, publish, sync.
            let t = Instant::now();
            progress(&format!(
                "{}: retraining on {} positives",
                split::date(start),
                data.events.len()
            ));
            served = publish_day(config, &data, &out.join("train"), &store, &signing, start)?;
            positives = data.events.len();
            trained_on = positives;
            day_fit = t.elapsed().as_secs_f64();
        }
        let synced = fleet.call(serde_json::json!({"op": "sync", "now": start}))?;
        let models: BTreeMap<String, String> = ARMS
            .iter()
            .map(|a| {
                let label = synced["channels"][format!("loop-{a}")]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                (a.to_string(), label)
            })
            .collect();
        // The oracle's row for every user at the day's start (its offline metric).
        let oracle_rows: Vec<Vec<u32>> = viewers
            .iter()
            .map(|v| v.oracle_row(start, v.device(), ROW))
            .collect();
        let mut events = Events::default();
        let mut pages = FleetPages {
            fleet: &mut fleet,
            arm_of: &arm_of,
            pre: !ab_day,
            device: String::new(),
            row_id: None,
            error: None,
        };
        for v in &mut viewers {
            pages.device = device_id(v.user().user_id);
            pages.row_id = None;
            v.run_until(end, &mut pages, &mut events);
            if let Some(e) = pages.error.take() {
                return Err(e.context(format!("user {}", v.user().user_id)));
            }
        }
        let flushed: FleetCounts =
            serde_json::from_value(fleet.call(serde_json::json!({"op": "flush"}))?)?;
        ensure!(
            flushed.queued == 0 && flushed.rejected == 0 && flushed.dropped == 0,
            "the fleet's flush left events behind: {flushed:?}"
        );
        // What the server has, as the canonical log, beside the logged window.
        let exported = out.join("exported");
        export_report = export(&EventStore::open(&db)?, &export_options, &exported)?;
        merge(&base, &exported, &out.join("train"))?;
        data = WorldData::load(&out.join("train"), config.system.positive_above)?;
        let cases = if ab_day {
            &mut ab_cases
        } else {
            &mut pre_cases
        };
        let offline = offline_metrics(&data, start, end, &served, &oracle_rows, cases)?;
        let day = LoopDay {
            day: start.div_euclid(DAY),
            date: split::date(start),
            phase: if ab_day { "ab" } else { "pre" }.into(),
            models,
            ranker: served.ranker.clone(),
            positives,
            sessions: events.sessions,
            plays: events.plays.len(),
            offline,
            seconds: day_started.elapsed().as_secs_f64(),
            fit_seconds: day_fit,
        };
        progress(&format!(
            "{} ({}): {} sessions, {} plays, {:.1} s",
            day.date, day.phase, day.sessions, day.plays, day.seconds
        ));
        days.push(day);
    }
    let fleet_counts: FleetCounts =
        serde_json::from_value(fleet.call(serde_json::json!({"op": "close"}))?)?;
    fleet.wait()?;
    drop(server);

    let store_events = EventStore::open(&db)?;
    let sessions = store_events.session_metrics(config.watched_threshold_s)?;
    let report = ab::ab_report(&sessions, &experiment, Some(ab_start));
    ab::write(&report, &out.join("ab"))?;
    let engagement = |arm: &str| {
        report
            .arms
            .iter()
            .find(|a| a.arm == arm)
            .and_then(|a| a.metrics.get("engagement_rate").copied())
    };
    let oracle_share = match (engagement("full"), engagement("oracle")) {
        (Some(f), Some(o)) if o.value > 0.0 && f.value > 0.0 => {
            let r = f.value / o.value;
            Some((
                r,
                r * ((f.se / f.value).powi(2) + (o.se / o.value).powi(2)).sqrt(),
            ))
        }
        _ => None,
    };
    // Before the test, on the logging policy's days (what a team sees offline before
    // launching); without a pre-period, on the A/B days' logs.
    let before = if config.pre_days > 0 {
        &pre_cases
    } else {
        &ab_cases
    };
    let offline: Vec<Offline> = ARMS
        .iter()
        .zip(before)
        .map(|(arm, (n, r))| Offline::of(arm, n, r))
        .collect();
    let mut agreement = Vec::new();
    for (a, b) in [(1usize, 0usize), (2, 0), (2, 1)] {
        let (Some(ea), Some(eb)) = (engagement(ARMS[a]), engagement(ARMS[b])) else {
            continue;
        };
        let offline = paired(&before[a].0, &before[b].0);
        let online = (ea.value - eb.value, (ea.se.powi(2) + eb.se.powi(2)).sqrt());
        agreement.push(Agreement {
            arm: ARMS[a].into(),
            against: ARMS[b].into(),
            offline,
            online,
            agree: (offline.0 > 0.0) == (online.0 > 0.0),
        });
    }
    let report = LoopReport {
        users: cfg.users,
        items: cfg.items,
        logged_days: cfg.days,
        experiment,
        start: ab_start,
        days,
        ab: report,
        oracle_share,
        offline,
        agreement,
        fleet: fleet_counts,
        export: export_report,
    };
    write(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    write(&out.join("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

/// The device id of the user `id` (one device per simulated user).
pub fn device_id(user: u32) -> String {
    format!("u{user}")
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    edgerec_data::fs::write_atomic(path, bytes)
}

/// The bundles served on a day, by arm.
struct Served {
    recs: Vec<Option<Recommender>>,
    /// The full system's ranker kind, when its gate shipped one.
    ranker: Option<String>,
}

/// Fits the system on `data`, packages the full system and the popularity-only bundle, and
/// publishes them to the arms' channels at `now`.
fn publish_day(
    config: &LoopConfig,
    data: &WorldData,
    dir: &Path,
    store: &Store,
    signing: &Signing,
    now: i64,
) -> Result<Served> {
    let system = System::fit(data, &config.system).context("the day's retrain")?;
    let options = PackageOptions {
        world: Some(dir.to_path_buf()),
        ..config.package.clone()
    };
    let full = package(system.contents.clone(), &options).context("packaging the full system")?;
    let popular = package(popularity_only(system.contents), &options)
        .context("packaging the popularity bundle")?;
    let date = split::date(now);
    // Each bundle encoded once and read back with the device's code before it is published (as
    // `bundle build` does); the oracle's devices sync the full system (their rows come from
    // the oracle).
    let popular_bytes = popular.encode();
    let full_bytes = full.encode();
    let popular_rec =
        Recommender::from_bytes(&popular_bytes).context("the popularity bundle was refused")?;
    let full_rec = Recommender::from_bytes(&full_bytes).context("the day's bundle was refused")?;
    for arm in ARMS {
        let (contents, bundle) = if arm == "popular" {
            (&popular, &popular_bytes)
        } else {
            (&full, &full_bytes)
        };
        let label = format!("{}.{arm}.{}", contents.meta.model_version, date);
        store
            .publish(
                bundle,
                signing,
                &PublishOptions {
                    label: Some(label),
                    ..PublishOptions::new(&format!("loop-{arm}"), now)
                },
            )
            .with_context(|| format!("publishing {arm}"))?;
    }
    let (mut popular_rec, mut full_rec) = (Some(popular_rec), Some(full_rec));
    let recs = ARMS
        .iter()
        .map(|&arm| match arm {
            "popular" => popular_rec.take(),
            "full" => full_rec.take(),
            _ => None,
        })
        .collect();
    Ok(Served {
        recs,
        ranker: full.ranker.as_ref().map(|r| r.contract.kind.clone()),
    })
}

/// The fitted model with popularity alone: every other source's quota 0, no ranker.
fn popularity_only(mut contents: BundleContents) -> BundleContents {
    let q = [0, 0, 0, 500, 0];
    set_quotas(&mut contents, q);
    set_new_user_quotas(&mut contents, Some(q));
    contents.ranker = None;
    contents
}

/// `base`'s tables with `exported`'s events after them, as one data set in `out`.
fn merge(base: &Path, exported: &Path, out: &Path) -> Result<()> {
    fn table<T: Table>(sources: &[&Path], out: &Path) -> Result<()> {
        let dir = out.join(T::DIR);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let mut n = 0;
        for src in sources {
            for part in schema::part_files::<T>(src)? {
                std::fs::copy(&part, dir.join(schema::part_name(n)))
                    .with_context(|| format!("copying {}", part.display()))?;
                n += 1;
            }
        }
        Ok(())
    }
    table::<User>(&[base], out)?;
    table::<Item>(&[base], out)?;
    table::<Impression>(&[base, exported], out)?;
    table::<Play>(&[base, exported], out)?;
    table::<Search>(&[base, exported], out)?;
    Ok(())
}

/// Each arm's NDCG@10 and Recall@10 on the day `[start, end)`: its row at `start` (the device
/// pipeline's for the bundles, `oracle_rows` for the oracle) against what each user with a past
/// watched for the first time that day. Appends each case's NDCG to `per_case` (for the
/// paired comparison over all days).
fn offline_metrics(
    data: &WorldData,
    start: i64,
    end: i64,
    served: &Served,
    oracle_rows: &[Vec<u32>],
    per_case: &mut [(Summary, Summary)],
) -> Result<Vec<Offline>> {
    let k = data.events.partition_point(|e| e.time < start);
    let in_day = data.events.partition_point(|e| e.time < end);
    let events = &data.events[..in_day];
    ensure!(k > 0, "no positives before {}", split::date(start));
    if k == events.len() {
        return Ok(Vec::new());
    }
    let share = (k as f64 + 0.5) / events.len() as f64;
    let window = split::temporal_of(data.users.len(), events, share, 0);
    let cases = window.warm.clone();
    let index: HashMap<u32, u32> = data
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.item_id, i as u32))
        .collect();
    let user_pos: HashMap<u32, usize> = data
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.user_id, i))
        .collect();
    let mut oracle_by_dense: Vec<Vec<u32>> = vec![Vec::new(); data.users.len()];
    for (user_id, row) in oracle_rows.iter().enumerate() {
        if let Some(&u) = user_pos.get(&(user_id as u32)) {
            oracle_by_dense[u] = row.iter().filter_map(|i| index.get(i).copied()).collect();
        }
    }
    let mut out = Vec::new();
    for (a, arm) in ARMS.iter().enumerate() {
        let answers: Vec<Vec<u32>> = match &served.recs[a] {
            Some(rec) => rows(rec, data, &window, &cases, ROW, Serving::default())?
                .into_iter()
                .map(|a| a.row)
                .collect(),
            None => cases
                .iter()
                .map(|c| oracle_by_dense[c.user as usize].clone())
                .collect(),
        };
        let (mut n, mut r) = (Summary::default(), Summary::default());
        for (case, row) in cases.iter().zip(&answers) {
            n.push(ndcg(row, &case.relevant, ROW));
            r.push(recall(row, &case.relevant, ROW));
        }
        per_case[a].0.values.extend(&n.values);
        per_case[a].1.values.extend(&r.values);
        out.push(Offline::of(arm, &n, &r));
    }
    Ok(out)
}

/// The pages of one device's sessions: its arm's row (asked of the fleet), the oracle's, or
/// the logging policy's (pre-period); each shown row, play and search recorded by the device.
struct FleetPages<'f> {
    fleet: &'f mut Fleet,
    arm_of: &'f HashMap<String, usize>,
    pre: bool,
    device: String,
    row_id: Option<String>,
    error: Option<anyhow::Error>,
}

impl FleetPages<'_> {
    fn call(&mut self, request: serde_json::Value) -> Option<serde_json::Value> {
        if self.error.is_some() {
            return None;
        }
        match self.fleet.call(request) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

impl Pages for FleetPages<'_> {
    fn page(&mut self, r: &PageRequest<'_>) -> Option<Vec<u32>> {
        if self.pre {
            return None;
        }
        match self.arm_of.get(&self.device).map(|&a| ARMS[a]) {
            Some("oracle") => Some((r.oracle)(ROW)),
            _ => {
                let answer = self.call(serde_json::json!({
                    "op": "row",
                    "deviceId": self.device,
                    "now": r.time,
                    "device": r.device.as_str(),
                    "k": ROW,
                }))?;
                let items = answer["items"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_u64())
                            .map(|x| x as u32)
                            .collect()
                    })
                    .unwrap_or_default();
                Some(items)
            }
        }
    }

    fn shown(&mut self, _user: &UserModel, time: i64, device: Device, session: u32, row: &[u32]) {
        // An empty page is no row (nothing to record); a row holds at most
        // `edgerec::limits::MAX_K` titles.
        if row.is_empty() {
            self.row_id = None;
            return;
        }
        let row = &row[..row.len().min(edgerec::limits::MAX_K)];
        let answer = self.call(serde_json::json!({
            "op": "shown",
            "deviceId": self.device,
            "now": time,
            "device": device.as_str(),
            "sessionId": session,
            "items": row,
        }));
        self.row_id = answer.and_then(|a| a["rowId"].as_str().map(str::to_string));
    }

    fn played(&mut self, play: &Play, position: Option<usize>) {
        let mut request = serde_json::json!({
            "op": "play",
            "deviceId": self.device,
            "now": play.time,
            "device": play.device.as_str(),
            "sessionId": play.session_id as u32,
            "itemId": play.item_id,
            "watchedS": play.watched_s,
            "fraction": play.fraction,
            "end": play.time + i64::from(play.watched_s),
        });
        if let (Some(pos), Some(row)) = (position, &self.row_id) {
            request["rowId"] = row.clone().into();
            request["position"] = pos.into();
        }
        self.call(request);
    }

    fn searched(&mut self, search: &Search) {
        self.call(serde_json::json!({
            "op": "search",
            "deviceId": self.device,
            "now": search.time,
            "sessionId": search.session_id as u32,
            "tokens": search.tokens,
        }));
    }
}

/// The node fleet: one JSON request per line on its stdin, one answer per line on its stdout.
struct Fleet {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Fleet {
    fn spawn(config: &LoopConfig) -> Result<Fleet> {
        ensure!(
            config.fleet.exists(),
            "{} is missing (the fleet script of this source tree)",
            config.fleet.display()
        );
        let mut child = Command::new(&config.node)
            .arg(&config.fleet)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} (node)", config.node.display()))?;
        let stdin = child.stdin.take().context("the fleet's stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("the fleet's stdout")?);
        Ok(Fleet {
            child,
            stdin,
            stdout,
            line: String::new(),
        })
    }

    fn call(&mut self, request: serde_json::Value) -> Result<serde_json::Value> {
        let mut text = serde_json::to_string(&request)?;
        text.push('\n');
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
            .context("writing to the fleet (did node fail to start? see above)")?;
        self.line.clear();
        let n = self.stdout.read_line(&mut self.line)?;
        ensure!(n > 0, "the fleet exited (see its error above)");
        let answer: serde_json::Value = serde_json::from_str(&self.line)
            .with_context(|| format!("the fleet's answer {:?}", self.line.trim()))?;
        if let Some(e) = answer.get("error") {
            bail!("the fleet: {}", e.as_str().unwrap_or("error"));
        }
        Ok(answer)
    }

    fn wait(mut self) -> Result<()> {
        drop(self.stdin);
        let status = self.child.wait()?;
        ensure!(status.success(), "the fleet exited with {status}");
        Ok(())
    }
}

/// The server (`edgerec serve`'s router) on a loopback port, in its own thread and runtime;
/// shut down when dropped.
struct Server {
    url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Server {
    fn start(config: edgerec_server::ServerConfig) -> Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("loop-server".into())
            .spawn(move || -> Result<()> {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    edgerec_server::serve(listener, config, async {
                        let _ = rx.await;
                    })
                    .await
                })
            })?;
        Ok(Server {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn est(e: Option<&Estimate>) -> String {
    match e {
        Some(e) if e.se.is_finite() => format!("{:.3} [{:.3}, {:.3}]", e.value, e.lo, e.hi),
        Some(e) => format!("{:.3}", e.value),
        None => "–".into(),
    }
}

/// The report as Markdown.
pub fn markdown(r: &LoopReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Closed loop: {} simulated users on the real client and server\n",
        r.users
    );
    let _ = writeln!(
        s,
        "A synthetic world of {} users and {} items, logged for {} days under the world's logging \
         policy, then lived on: {} pre-period day(s) on the logging policy, then {} A/B day(s) \
         with a retrain from the logged window and every event devices sent before each. Arms \
         (experiment `{}`, salt `{}`): {}. Rows of {ROW} titles; the npm package's client code in \
         node (sync, `recommendRow`, the event queue at privacy `full`) against `edgerec serve` \
         on loopback.\n",
        r.users,
        r.items,
        r.logged_days,
        r.days.iter().filter(|d| d.phase == "pre").count(),
        r.days.iter().filter(|d| d.phase == "ab").count(),
        r.experiment.name,
        r.experiment.salt,
        r.experiment
            .arms
            .iter()
            .map(|a| format!(
                "`{}` {:.0}% (channel `{}`)",
                a.name,
                a.share * 100.0,
                a.channel
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "## Per day and arm\n");
    let _ = writeln!(
        s,
        "Online: the event store's sessions (95% intervals, delta method over devices); on \
         pre-period days every device shows the logging policy's rows. Offline: the row the \
         arm's model (the oracle: the world's true utility) gave each user with a past at the \
         day's start, against what they watched for the first time that day (mean ± standard \
         error). On pre-period days that is the offline evaluation a team runs before a test, on \
         the logging policy's data; on A/B days the logs are the arms' own, so each arm's \
         model is judged partly on plays its own rows caused.\n"
    );
    let _ = writeln!(
        s,
        "| day | arm | devices | sessions | engagement rate | videos / user-day | watch s / session | offline NDCG@10 | offline Recall@10 | model |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for d in &r.days {
        for arm in ARMS {
            let online: Option<&DayMetrics> =
                r.ab.days.iter().find(|m| m.day == d.day && m.arm == arm);
            let off = d.offline.iter().find(|o| o.arm == arm);
            let pre = d.phase == "pre";
            let count = |v: Option<u64>| {
                if pre {
                    "–".to_string()
                } else {
                    v.unwrap_or(0).to_string()
                }
            };
            let _ = writeln!(
                s,
                "| {}{} | {arm} | {} | {} | {} | {} | {} | {} | {} | {} |",
                d.date,
                if pre { " (pre)" } else { "" },
                count(online.map(|m| m.devices)),
                count(online.map(|m| m.sessions)),
                if pre {
                    "logging policy".to_string()
                } else {
                    est(online.and_then(|m| m.metrics.get("engagement_rate")))
                },
                est(online.and_then(|m| m.metrics.get("videos_per_user_day"))),
                est(online.and_then(|m| m.metrics.get("watch_s_per_session"))),
                off.map_or("–".into(), |o| format!(
                    "{:.4} ± {:.4}",
                    o.ndcg.0, o.ndcg.1
                )),
                off.map_or("–".into(), |o| format!(
                    "{:.4} ± {:.4}",
                    o.recall.0, o.recall.1
                )),
                match (arm, &d.ranker, d.models.get(arm)) {
                    ("full", Some(k), Some(m)) => format!("{m} (ranker {k})"),
                    (_, _, Some(m)) => m.clone(),
                    _ => "–".into(),
                },
            );
        }
    }
    let _ = writeln!(
        s,
        "\n## The oracle's share and whether offline predicted online\n"
    );
    match r.oracle_share {
        Some((v, se)) => {
            let _ = writeln!(
                s,
                "The full system's engagement rate is **{:.1}% ± {:.1}%** of the oracle arm's \
                 (the ranking by the world's true utility: the online ceiling).\n",
                100.0 * v,
                100.0 * se
            );
        }
        None => {
            let _ = writeln!(s, "No engagement in the full or oracle arm to compare.\n");
        }
    }
    let _ = writeln!(
        s,
        "Offline, {} (users × days, mean ± standard error):\n",
        if r.days.iter().any(|d| d.phase == "pre") {
            "on the pre-period's logs (the logging policy's: the evaluation before the test)"
        } else {
            "on the A/B days' logs"
        }
    );
    let _ = writeln!(
        s,
        "| arm | cases | NDCG@10 | Recall@10 |\n|---|---|---|---|"
    );
    for o in &r.offline {
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
            o.arm, o.users, o.ndcg.0, o.ndcg.1, o.recall.0, o.recall.1
        );
    }
    let _ = writeln!(
        s,
        "\n| arm | against | offline NDCG@10 difference (paired) | online engagement rate difference | same sign |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for a in &r.agreement {
        let _ = writeln!(
            s,
            "| {} | {} | {:+.4} ± {:.4} | {:+.4} ± {:.4} | {} |",
            a.arm,
            a.against,
            a.offline.0,
            a.offline.1,
            a.online.0,
            a.online.1,
            if a.agree { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(
        s,
        "\nFleet: {} events accepted, {} duplicates, {} rejected, {} failed requests, {} dropped. \
         Export: {} plays, {} impressions, {} searches from {} devices.\n",
        r.fleet.sent,
        r.fleet.duplicates,
        r.fleet.rejected,
        r.fleet.failures,
        r.fleet.dropped,
        r.export.plays,
        r.export.impressions,
        r.export.searches,
        r.export.devices_linked
    );
    s.push_str(&ab::to_markdown(&r.ab));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgerec::Model;

    #[test]
    fn the_fleet_script_is_where_the_default_says() {
        assert!(default_fleet().exists(), "{}", default_fleet().display());
    }

    #[test]
    fn the_popularity_bundle_blends_popularity_alone_without_a_ranker() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/tiny-v1.edgerec");
        let c = BundleContents::decode(&std::fs::read(path).unwrap()).unwrap();
        let p = popularity_only(c);
        for q in [p.quotas.unwrap(), p.new_user_quotas.unwrap()] {
            assert_eq!(
                (q.ials, q.two_tower, q.content, q.popularity),
                (0, 0, 0, 500)
            );
        }
        assert!(p.ranker.is_none());
        Model::from_bytes(&p.encode()).unwrap();
    }
}
