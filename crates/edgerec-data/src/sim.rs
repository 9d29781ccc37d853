//! The simulation driver behind `edgerec simulate`: builds the catalog, then generates users
//! chunk by chunk (in parallel within a chunk), streams every table to Parquet part files in
//! bounded memory, writes `world.json` and returns a [`Summary`].
//!
//! The output depends only on the [`WorldConfig`]: not on the chunk size, the number of
//! threads or the machine (all arithmetic that decides an event is IEEE-754 on values drawn
//! from per-entity streams, in a fixed order per user).
//!
//! ```
//! use edgerec_data::sim::{simulate, SimOptions};
//! use edgerec_data::world::WorldConfig;
//! let dir = tempfile::tempdir()?;
//! let cfg = WorldConfig { users: 50, items: 300, days: 7, seed: 7, start: 1_761_955_200 };
//! let summary = simulate(&cfg, dir.path(), &SimOptions::default())?;
//! assert_eq!(summary.counts.users, 50);
//! assert!(dir.path().join("world.json").exists());
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::behaviour::{self, Behaviour, Env, Events, Policy};
use crate::schema::{self, Impression, Item, PartWriter, Play, Search, User, WriterOptions};
use crate::truth::{CalendarCache, Coefficients, Counts, Preference, WorldSpec};
use crate::world::{self, Catalog, ItemTruth, UserTruth, Vocab, WorldConfig};

/// How to run a simulation (none of this changes the output).
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// Users generated (and held in memory with their events) at a time.
    pub chunk_users: u32,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
    /// Row group and part file sizes.
    pub writer: WriterOptions,
}

impl Default for SimOptions {
    /// 20,000 users per chunk, no progress bars, default part sizes.
    fn default() -> SimOptions {
        SimOptions {
            chunk_users: 20_000,
            progress: false,
            writer: WriterOptions::default(),
        }
    }
}

/// What a simulation wrote and how fast.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The world directory.
    pub out: PathBuf,
    /// Row counts (as in `world.json`).
    pub counts: Counts,
    /// Plays by watch fraction in 10% bins (`[0, 0.1)`, …, `[0.9, 1]`).
    pub fraction_histogram: [u64; 10],
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Peak resident memory of the process in KiB, where the OS reports it (Linux).
    pub peak_rss_kib: Option<u64>,
}

impl Summary {
    /// Impressions, plays and searches.
    pub fn events(&self) -> u64 {
        self.counts.impressions + self.counts.plays + self.counts.searches
    }

    /// Events per second of wall time.
    pub fn events_per_second(&self) -> f64 {
        self.events() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(f, "world written to {}", self.out.display())?;
        writeln!(
            f,
            "  users        {:>12}  (cold {}, restricted {})",
            c.users, c.cold_users, c.restricted_users
        )?;
        writeln!(
            f,
            "  items        {:>12}  (titles {}, series {}, cold {})",
            c.items, c.titles, c.series, c.cold_items
        )?;
        writeln!(f, "  sessions     {:>12}", c.sessions)?;
        writeln!(f, "  impressions  {:>12}", c.impressions)?;
        writeln!(f, "  plays        {:>12}", c.plays)?;
        writeln!(f, "  searches     {:>12}", c.searches)?;
        let plays = c.plays.max(1) as f64;
        write!(f, "  watch fraction:")?;
        for (i, n) in self.fraction_histogram.iter().enumerate() {
            write!(
                f,
                " {}-{}% {:.1}",
                i * 10,
                i * 10 + 10,
                100.0 * *n as f64 / plays
            )?;
            f.write_str(if i < 9 { " |" } else { "\n" })?;
        }
        writeln!(
            f,
            "  events       {:>12}  in {:.1} s: {:.2} M events/s",
            self.events(),
            self.elapsed.as_secs_f64(),
            self.events_per_second() / 1e6
        )?;
        match self.peak_rss_kib {
            Some(kib) => writeln!(f, "  peak RSS     {:>9} MiB", kib / 1024),
            None => writeln!(f, "  peak RSS     unknown"),
        }
    }
}

/// Peak resident set size of this process (`VmHWM` of `/proc/self/status`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Users simulated per parallel task (fixed: the output does not depend on it either).
const BLOCK: u32 = 256;

/// One block's rows; a chunk (a list of blocks in user order) is handed from the generators to
/// the writer thread without being copied into one buffer.
struct BlockRows {
    users: Vec<User>,
    truths: Vec<UserTruth>,
    events: Events,
}

/// The writers of the per-user tables.
struct UserWriters {
    users: PartWriter<User>,
    truths: PartWriter<UserTruth>,
    impressions: PartWriter<Impression>,
    plays: PartWriter<Play>,
    searches: PartWriter<Search>,
}

impl UserWriters {
    /// Creates the writers of every per-user table in `out`.
    fn create(out: &Path, writer: WriterOptions) -> Result<UserWriters> {
        Ok(UserWriters {
            users: PartWriter::create(out, writer)?,
            truths: PartWriter::create(out, writer)?,
            impressions: PartWriter::create(out, writer)?,
            plays: PartWriter::create(out, writer)?,
            searches: PartWriter::create(out, writer)?,
        })
    }

    fn write(&mut self, chunk: Vec<BlockRows>) -> Result<()> {
        for c in chunk {
            self.users.extend(c.users)?;
            self.truths.extend(c.truths)?;
            self.impressions.extend(c.events.impressions)?;
            self.plays.extend(c.events.plays)?;
            self.searches.extend(c.events.searches)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<[u64; 5]> {
        Ok([
            self.users.finish()?,
            self.truths.finish()?,
            self.impressions.finish()?,
            self.plays.finish()?,
            self.searches.finish()?,
        ])
    }
}

fn check(cfg: &WorldConfig) -> Result<()> {
    if cfg.items == 0 {
        bail!("--items must be at least 1");
    }
    if cfg.days == 0 || cfg.days > 3_660 {
        bail!("--days must be between 1 and 3660");
    }
    if cfg.users > u32::MAX - BLOCK {
        bail!("--users is too large");
    }
    Ok(())
}

/// Generates the world `cfg` into `out` (see the module doc) and returns its summary.
/// Existing part files of the world's tables in `out` are replaced.
pub fn simulate(cfg: &WorldConfig, out: &Path, opts: &SimOptions) -> Result<Summary> {
    check(cfg)?;
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let vocab = Vocab::new(cfg);
    let behaviour = Behaviour::default();
    let preference = Preference::new(Coefficients::default())?;
    let mut spec = WorldSpec::new(cfg, &vocab, &behaviour);
    let catalog = write_catalog(cfg, &vocab, out, opts.writer, &mut spec.counts)?;

    let policy = Policy::new(&catalog);
    let calendar = CalendarCache::new(
        cfg.start,
        cfg.end(),
        vocab.holidays.clone(),
        preference.coef.holiday_window_days,
    );
    let env = Env {
        cfg,
        catalog: &catalog,
        policy: &policy,
        preference: &preference,
        behaviour: &behaviour,
        calendar: &calendar,
    };

    let writers = UserWriters::create(out, opts.writer)?;
    let bar = progress_bar(opts.progress, cfg.users)?;
    let (written, tally) = simulate_users(&env, &vocab, writers, opts.chunk_users.max(1), &bar)?;
    bar.finish_and_clear();

    let counts = &mut spec.counts;
    counts.users = written[0];
    counts.cold_users = tally.cold_users;
    counts.restricted_users = tally.restricted;
    counts.impressions = written[2];
    counts.plays = written[3];
    counts.searches = written[4];
    counts.sessions = tally.sessions;
    write_spec(out, &spec)?;

    Ok(Summary {
        out: out.to_path_buf(),
        counts: spec.counts,
        fraction_histogram: tally.histogram,
        elapsed: started.elapsed(),
        peak_rss_kib: peak_rss_kib(),
    })
}

/// Generates the catalog, writing `items` and `truth/items` into `out` as it goes, and fills
/// the catalog's row counts in `counts`.
fn write_catalog(
    cfg: &WorldConfig,
    vocab: &Vocab,
    out: &Path,
    writer: WriterOptions,
    counts: &mut Counts,
) -> Result<Catalog> {
    let mut items = PartWriter::<Item>::create(out, writer)?;
    let mut item_truths = PartWriter::<ItemTruth>::create(out, writer)?;
    let mut cold_items = 0u64;
    let catalog = Catalog::generate(cfg, vocab, |row, truth| {
        if row.added_time >= cfg.start && row.added_time < cfg.end() {
            cold_items += 1;
        }
        items.push(row)?;
        item_truths.push(truth)
    })?;
    items.finish()?;
    item_truths.finish()?;
    counts.items = catalog.items.len() as u64;
    counts.titles = catalog.titles.len() as u64;
    counts.series = catalog.series as u64;
    counts.cold_items = cold_items;
    Ok(catalog)
}

/// The users progress bar on stderr, or a hidden one when `progress` is off.
fn progress_bar(progress: bool, users: u32) -> Result<ProgressBar> {
    if !progress {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(users as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating users {pos}/{len} [{bar:40}] {per_sec} eta {eta}",
        )
        .map_err(|e| anyhow!("progress style: {e}"))?
        .progress_chars("=> "),
    );
    Ok(bar)
}

/// Counts over the generated users and their events, for `world.json` and the summary.
#[derive(Default)]
struct UserTally {
    /// Users who signed up during the window.
    cold_users: u64,
    /// Profiles under 18.
    restricted: u64,
    /// Sessions.
    sessions: u64,
    /// Plays by watch fraction in 10% bins.
    histogram: [u64; 10],
}

impl UserTally {
    /// Counts one block's users, plays and sessions (`start`: the window's start).
    fn add(&mut self, part: &BlockRows, start: i64) {
        for u in &part.users {
            self.cold_users += (u.signup_time >= start) as u64;
            self.restricted += (u.age < 18) as u64;
        }
        for p in &part.events.plays {
            self.histogram[((p.fraction * 10.0) as usize).min(9)] += 1;
        }
        self.sessions += part.events.sessions;
    }
}

/// Generates and simulates every user, `chunk` users at a time (the blocks of a chunk in
/// parallel), while a writer thread writes the previous chunk with `writers`. Returns the
/// rows written per table (in [`UserWriters::finish`] order) and the tally.
fn simulate_users(
    env: &Env<'_>,
    vocab: &Vocab,
    writers: UserWriters,
    chunk: u32,
    bar: &ProgressBar,
) -> Result<([u64; 5], UserTally)> {
    let cfg = env.cfg;
    let mut tally = UserTally::default();
    let written = std::thread::scope(|scope| -> Result<[u64; 5]> {
        // The writer thread encodes chunk k while the generators work on chunk k + 1.
        let (tx, rx) = mpsc::sync_channel::<Vec<BlockRows>>(1);
        let writer = scope.spawn(move || -> Result<[u64; 5]> {
            let mut writers = writers;
            for rows in rx {
                writers.write(rows)?;
            }
            writers.finish()
        });
        let mut start = 0u32;
        while start < cfg.users {
            let end = start.saturating_add(chunk).min(cfg.users);
            let blocks: Vec<u32> = (start..end).step_by(BLOCK as usize).collect();
            let parts: Vec<BlockRows> = blocks
                .par_iter()
                .map(|&b| {
                    let rows = generate_block(env, vocab, b..(b + BLOCK).min(end));
                    bar.inc(rows.users.len() as u64);
                    rows
                })
                .collect();
            for part in &parts {
                tally.add(part, cfg.start);
            }
            if tx.send(parts).is_err() {
                break; // The writer failed; its error is reported below.
            }
            start = end;
        }
        drop(tx);
        writer
            .join()
            .map_err(|_| anyhow!("the writer thread panicked"))?
    })?;
    Ok((written, tally))
}

/// Writes `world.json` into `out`.
fn write_spec(out: &Path, spec: &WorldSpec) -> Result<()> {
    let path = out.join("world.json");
    let mut json = serde_json::to_vec_pretty(spec)?;
    json.push(b'\n');
    crate::fs::write_atomic(&path, &json)
}

/// Generates the users of `ids` and simulates each one's window.
fn generate_block(env: &Env<'_>, vocab: &Vocab, ids: std::ops::Range<u32>) -> BlockRows {
    let mut rows = BlockRows {
        users: Vec::with_capacity(ids.len()),
        truths: Vec::with_capacity(ids.len()),
        events: Events::default(),
    };
    for id in ids {
        let u = world::generate_user(env.cfg, vocab, id);
        behaviour::simulate_user(env, &u.model, &mut rows.events);
        rows.truths.push(u.model.truth_row());
        rows.users.push(u.row);
    }
    rows
}

/// Reads back a world's tables to check it is complete and consistent (every part file
/// validates; row counts match `world.json`). Cost: one pass over every table.
pub fn verify(dir: &Path) -> Result<Counts> {
    let path = dir.join("world.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec: WorldSpec = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a world description", path.display()))?;
    fn count<T: schema::Table>(dir: &Path) -> Result<u64> {
        let mut n = 0u64;
        schema::for_each_batch::<T>(dir, |rows| {
            n += rows.len() as u64;
            Ok(())
        })?;
        Ok(n)
    }
    let c = &spec.counts;
    for (table, expected, got) in [
        ("users", c.users, count::<User>(dir)?),
        ("items", c.items, count::<Item>(dir)?),
        ("impressions", c.impressions, count::<Impression>(dir)?),
        ("plays", c.plays, count::<Play>(dir)?),
        ("searches", c.searches, count::<Search>(dir)?),
        ("truth/users", c.users, count::<UserTruth>(dir)?),
        ("truth/items", c.items, count::<ItemTruth>(dir)?),
    ] {
        if expected != got {
            bail!("{table}: {got} rows, world.json says {expected}");
        }
    }
    Ok(spec.counts)
}
