//! MovieLens-100K in the canonical log schema: fetched from the PyPI wheel that carries it and
//! imported as a world ([`crate::schema`]), so every stage reads it like any other world.
//!
//! MovieLens-100K ships inside the PyPI wheel `recbole==1.2.1` (under
//! `recbole/dataset_example/ml-100k/`). [`fetch`] gets the wheel with `pip download` (so the
//! machine's pip configuration applies) or takes a wheel file, extracts the three
//! tab-separated files and verifies their sha256 before anything is written. [`import`] parses
//! them (every error names the file, line and column) and [`MovieLens::write_world`] writes the
//! world.
//!
//! The mapping, and what MovieLens lacks:
//!
//! | canonical | from MovieLens | note |
//! |---|---|---|
//! | `users.age`, `gender` | age, gender | `F`/`M` → `f`/`m`, else `x` |
//! | `users.language`, `country` | — | `en`, `US` (MovieLens users are US residents) |
//! | `users.utc_offset_minutes` | zip code | first digit: 0–3 → −300 (Eastern), 4–7 → −360 (Central), 8 → −420 (Mountain), 9 → −480 (Pacific); others −300. No daylight saving. |
//! | `users.signup_time` | first rating | |
//! | `users.onboarding_genres` | — | empty |
//! | `items.kind`, `release_type` | — | `movie`, `theatrical` |
//! | `items.title` | title | a trailing `(YYYY)` gives the year when the year column is unusable |
//! | `items.duration_s` | — | unknown: [`DEFAULT_DURATION_S`] for every film |
//! | `items.genres` | genres | `unknown` → none |
//! | `items.tags`, `actors`, `directors`, `composer`, `distributor` | — | empty / null |
//! | `items.original_language`, `country` | — | `en`, `US` |
//! | `items.release_time` | release year | 1 January of the year (the first rating when earlier or unknown) |
//! | `items.added_time` | first rating | when the title first appears in the log |
//! | `items.maturity` | — | unknown: `PG-13` for every film |
//! | `items.public_rating`, `revenue_usd` | — | null (the mean MovieLens rating would leak the future) |
//! | `plays` | ratings | one play per rating at its time, in time order (ties in file order): a rating means the film was watched, so `fraction` = 1 and `watched_s` = `duration_s`; device `desktop`; one session per user and UTC day |
//! | `impressions`, `searches` | — | none (empty tables) |
//!
//! So every MovieLens play is a positive under the label rules, and the pipeline finds no
//! negatives in it: ranking on MovieLens needs sampled negatives.
//!
//! ```no_run
//! use edgerec_data::movielens;
//! let dir = std::path::Path::new("data/ml-100k");
//! movielens::fetch(dir, None)?;                 // pip download, sha256 checked
//! let ml = movielens::import(dir)?;
//! ml.write_world(std::path::Path::new("data/world"))?;
//! println!("{}", ml.summary());
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use edgerec::calendar;
use edgerec::context::Device;
use edgerec::features::{Maturity, MediaKind, ReleaseType};
use sha2::{Digest, Sha256};

use crate::schema::{self, Impression, Item, PartWriter, Play, Search, Table, User, WriterOptions};

/// The wheel that carries MovieLens-100K.
pub const WHEEL_REQUIREMENT: &str = "recbole==1.2.1";
const WHEEL_DIR: &str = "recbole/dataset_example/ml-100k/";

/// The three files and their sha256.
pub const FILES: [(&str, &str); 3] = [
    (
        "ml-100k.inter",
        "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    ),
    (
        "ml-100k.item",
        "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    ),
    (
        "ml-100k.user",
        "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    ),
];

/// Duration assumed for every MovieLens film.
pub const DEFAULT_DURATION_S: u32 = 6_000;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `dir` already holds all three files with the right hashes.
pub fn already_fetched(dir: &Path) -> bool {
    FILES
        .iter()
        .all(|(name, sha)| std::fs::read(dir.join(name)).is_ok_and(|b| sha256_hex(&b) == *sha))
}

/// Fetches MovieLens-100K into `out` from `wheel`, or from PyPI with `pip download` (the
/// interpreter in `$PYTHON`, default `python3`). Idempotent: verified files are left alone.
/// All three files are read and verified before any is written.
pub fn fetch(out: &Path, wheel: Option<&Path>) -> Result<()> {
    if already_fetched(out) {
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let wheel = match wheel {
        Some(w) => w.to_path_buf(),
        None => download_wheel(out)?,
    };
    let file = File::open(&wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a readable wheel (zip)", wheel.display()))?;
    let mut contents = Vec::new();
    for (name, sha) in FILES {
        let entry = format!("{WHEEL_DIR}{name}");
        let mut f = zip
            .by_name(&entry)
            .with_context(|| format!("{} has no {entry}", wheel.display()))?;
        ensure!(
            f.size() < 64 << 20,
            "{entry} in {} is implausibly large ({} bytes)",
            wheel.display(),
            f.size()
        );
        let mut bytes = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut bytes)
            .with_context(|| format!("extracting {entry} from {}", wheel.display()))?;
        let got = sha256_hex(&bytes);
        ensure!(
            got == sha,
            "{entry} in {}: sha256 {got}, expected {sha}",
            wheel.display()
        );
        contents.push((name, bytes));
    }
    for (name, bytes) in contents {
        crate::fs::write_atomic(&out.join(name), &bytes)?;
    }
    Ok(())
}

fn download_wheel(out: &Path) -> Result<PathBuf> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let dest = out.join(".wheel");
    std::fs::create_dir_all(&dest)?;
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
        ])
        .arg(&dest)
        .arg(WHEEL_REQUIREMENT)
        .status()
        .with_context(|| format!("running {python} -m pip (set PYTHON to another interpreter)"))?;
    ensure!(
        status.success(),
        "pip download {WHEEL_REQUIREMENT} failed ({status})"
    );
    std::fs::read_dir(&dest)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| anyhow!("pip left no wheel in {}", dest.display()))
}

/// A tab-separated file with a typed header, parsed row by row with positions in errors.
struct Tsv {
    path: PathBuf,
    text: String,
}

impl Tsv {
    fn open(path: PathBuf, header: &[&str]) -> Result<Tsv> {
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (run `edgerec data fetch` first?)",
                path.display()
            )
        })?;
        let first = text.lines().next().unwrap_or("");
        let got: Vec<&str> = first.split('\t').collect();
        ensure!(
            got == header,
            "{}: line 1: header is {got:?}, expected {header:?}",
            path.display()
        );
        Ok(Tsv { path, text })
    }

    /// Data rows with their 1-based line numbers; blank lines are skipped.
    fn rows(&self, columns: usize) -> impl Iterator<Item = Result<(usize, Vec<&str>)>> + '_ {
        self.text
            .lines()
            .enumerate()
            .skip(1)
            .filter(|(_, l)| !l.trim().is_empty())
            .map(move |(i, l)| {
                let f: Vec<&str> = l.split('\t').collect();
                if f.len() != columns {
                    bail!(
                        "{}: line {}: {} fields, expected {columns}",
                        self.path.display(),
                        i + 1,
                        f.len()
                    );
                }
                Ok((i + 1, f))
            })
    }

    fn parse<T: std::str::FromStr>(&self, line: usize, column: &str, v: &str) -> Result<T> {
        v.trim().parse().map_err(|_| {
            anyhow!(
                "{}: line {line}: column {column}: cannot parse {v:?}",
                self.path.display()
            )
        })
    }
}

/// The title and release year of an item row. A year field that is not a plausible year
/// (blank, `unknown`, a stray token) leaves the year unknown, unless the title ends in
/// `(YYYY)`, which then gives the year and is removed from the title.
fn title_and_year(title: &str, year: &str) -> (String, Option<u16>) {
    let title = title.trim();
    let plausible = |y: &str| y.parse::<u16>().ok().filter(|y| (1850..=2200).contains(y));
    if let Some(y) = plausible(year.trim()) {
        return (title.to_string(), Some(y));
    }
    if let Some(rest) = title.strip_suffix(')')
        && let Some((head, y)) = rest.rsplit_once('(')
        && let Some(y) = plausible(y)
    {
        return (head.trim_end().to_string(), Some(y));
    }
    (title.to_string(), None)
}

/// The UTC offset guessed from a US zip code.
fn utc_offset_from_zip(zip: &str) -> i32 {
    match zip.chars().next() {
        Some('4'..='7') => -360,
        Some('8') => -420,
        Some('9') => -480,
        _ => -300,
    }
}

/// A raw user row.
struct RawUser {
    user_id: u32,
    age: Option<u32>,
    gender: String,
    zip: String,
}

/// A raw item row.
struct RawItem {
    item_id: u32,
    title: String,
    year: Option<u16>,
    genres: Vec<String>,
}

/// A rating: the user watched the title at `time`.
struct Rating {
    user_id: u32,
    item_id: u32,
    time: i64,
}

/// MovieLens-100K as canonical rows, ready to be written as a world.
pub struct MovieLens {
    /// Users, in file order.
    pub users: Vec<User>,
    /// Films, in file order.
    pub items: Vec<Item>,
    /// One play per rating, ordered by (user, time, file position).
    pub plays: Vec<Play>,
    /// Films whose year was unusable.
    pub unknown_years: usize,
}

fn read_users(src: &Path) -> Result<Vec<RawUser>> {
    let u = Tsv::open(
        src.join("ml-100k.user"),
        &[
            "user_id:token",
            "age:token",
            "gender:token",
            "occupation:token",
            "zip_code:token",
        ],
    )?;
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for row in u.rows(5) {
        let (line, f) = row?;
        let user_id = u.parse(line, "user_id", f[0])?;
        ensure!(
            seen.insert(user_id),
            "{}: line {line}: user {user_id} repeats",
            u.path.display()
        );
        let age = match f[1] {
            "" => None,
            a => Some(u.parse(line, "age", a)?),
        };
        users.push(RawUser {
            user_id,
            age,
            gender: f[2].to_string(),
            zip: f[4].to_string(),
        });
    }
    Ok(users)
}

fn read_items(src: &Path) -> Result<Vec<RawItem>> {
    let it = Tsv::open(
        src.join("ml-100k.item"),
        &[
            "item_id:token",
            "movie_title:token_seq",
            "release_year:token",
            "class:token_seq",
        ],
    )?;
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    for row in it.rows(4) {
        let (line, f) = row?;
        let item_id = it.parse(line, "item_id", f[0])?;
        ensure!(
            seen.insert(item_id),
            "{}: line {line}: item {item_id} repeats",
            it.path.display()
        );
        let (title, year) = title_and_year(f[1], f[2]);
        items.push(RawItem {
            item_id,
            title,
            year,
            genres: f[3]
                .split_whitespace()
                .filter(|g| *g != "unknown")
                .map(str::to_string)
                .collect(),
        });
    }
    Ok(items)
}

/// Ratings in time order, ties in file order.
fn read_ratings(src: &Path, users: &HashSet<u32>, items: &HashSet<u32>) -> Result<Vec<Rating>> {
    let x = Tsv::open(
        src.join("ml-100k.inter"),
        &[
            "user_id:token",
            "item_id:token",
            "rating:float",
            "timestamp:float",
        ],
    )?;
    let mut ratings = Vec::new();
    for row in x.rows(4) {
        let (line, f) = row?;
        let user_id = x.parse(line, "user_id", f[0])?;
        let item_id = x.parse(line, "item_id", f[1])?;
        ensure!(
            users.contains(&user_id),
            "{}: line {line}: unknown user {user_id}",
            x.path.display()
        );
        ensure!(
            items.contains(&item_id),
            "{}: line {line}: unknown item {item_id}",
            x.path.display()
        );
        let _rating: f32 = x.parse(line, "rating", f[2])?;
        let ts: f64 = x.parse(line, "timestamp", f[3])?;
        ensure!(
            ts.is_finite() && ts.fract() == 0.0 && ts.abs() < 1e15,
            "{}: line {line}: column timestamp: {ts} is not whole unix seconds",
            x.path.display()
        );
        ratings.push(Rating {
            user_id,
            item_id,
            time: ts as i64,
        });
    }
    // Stable: equal timestamps keep file order.
    ratings.sort_by_key(|r| r.time);
    Ok(ratings)
}

/// Reads the three MovieLens-100K files of `src` as canonical rows (see the module docs for
/// the mapping).
pub fn import(src: &Path) -> Result<MovieLens> {
    let users = read_users(src)?;
    let items = read_items(src)?;
    let user_ids: HashSet<u32> = users.iter().map(|u| u.user_id).collect();
    let item_ids: HashSet<u32> = items.iter().map(|i| i.item_id).collect();
    let ratings = read_ratings(src, &user_ids, &item_ids)?;
    let mut first_by_user: HashMap<u32, i64> = HashMap::new();
    let mut first_by_item: HashMap<u32, i64> = HashMap::new();
    for r in &ratings {
        first_by_user.entry(r.user_id).or_insert(r.time);
        first_by_item.entry(r.item_id).or_insert(r.time);
    }
    let log_start = ratings.first().map_or(0, |r| r.time);
    let unknown_years = items.iter().filter(|i| i.year.is_none()).count();
    let users = users
        .into_iter()
        .map(|u| {
            let first = first_by_user.get(&u.user_id).copied().unwrap_or(log_start);
            canonical_user(u, first)
        })
        .collect();
    let items = items
        .into_iter()
        .map(|i| {
            let first = first_by_item.get(&i.item_id).copied().unwrap_or(log_start);
            canonical_item(i, first)
        })
        .collect();
    // Grouped by user, each user's plays in time order (ties keep file order).
    let mut plays: Vec<Play> = ratings.iter().map(play).collect();
    plays.sort_by_key(|p| p.user_id);
    Ok(MovieLens {
        users,
        items,
        plays,
        unknown_years,
    })
}

fn canonical_user(u: RawUser, first: i64) -> User {
    User {
        user_id: u.user_id,
        age: u.age.map_or(0, |a| a.min(255) as u8),
        gender: match u.gender.as_str() {
            "F" => "f",
            "M" => "m",
            _ => "x",
        }
        .into(),
        language: "en".into(),
        country: "US".into(),
        utc_offset_minutes: utc_offset_from_zip(&u.zip),
        signup_time: first,
        onboarding_genres: vec![],
    }
}

fn canonical_item(i: RawItem, first: i64) -> Item {
    let release = i.year.map_or(first, |y| {
        calendar::days_from_civil(i32::from(y), 1, 1) * 86_400
    });
    Item {
        item_id: i.item_id,
        kind: MediaKind::Movie,
        series_id: None,
        season: None,
        episode: None,
        title: i.title,
        duration_s: DEFAULT_DURATION_S,
        genres: i.genres,
        tags: vec![],
        actors: vec![],
        directors: vec![],
        composer: None,
        distributor: None,
        original_language: "en".into(),
        country: "US".into(),
        release_time: release.min(first),
        release_type: ReleaseType::Theatrical,
        added_time: first,
        maturity: Maturity::Pg13,
        public_rating: None,
        revenue_usd: None,
    }
}

fn play(r: &Rating) -> Play {
    Play {
        user_id: r.user_id,
        item_id: r.item_id,
        time: r.time,
        device: Device::Desktop,
        session_id: (u64::from(r.user_id) << 32) | (r.time.div_euclid(86_400) as u64 & 0xffff_ffff),
        watched_s: DEFAULT_DURATION_S,
        fraction: 1.0,
    }
}

/// Writes one table of the world in `root`.
fn write_all<T: Table>(root: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    let mut w = PartWriter::<T>::create(root, WriterOptions::default())
        .with_context(|| format!("writing a table into {}", root.display()))?;
    for r in rows {
        w.push(r)?;
    }
    w.finish()?;
    Ok(())
}

impl MovieLens {
    /// Writes the rows as a canonical world in `out` (`users/`, `items/`, `plays/`, and empty
    /// `impressions/` and `searches/`), then reads the users back through the validating
    /// reader.
    pub fn write_world(&self, out: &Path) -> Result<()> {
        write_all(out, self.users.iter().cloned())?;
        write_all(out, self.items.iter().cloned())?;
        write_all(out, self.plays.iter().copied())?;
        write_all::<Impression>(out, [])?;
        write_all::<Search>(out, [])?;
        schema::read_table::<User>(out)?;
        Ok(())
    }

    /// One line of counts: users, items, plays and their time span.
    pub fn summary(&self) -> String {
        let active: HashSet<u32> = self.plays.iter().map(|p| p.user_id).collect();
        let first = self.plays.iter().map(|p| p.time).min().unwrap_or(0);
        let last = self.plays.iter().map(|p| p.time).max().unwrap_or(0);
        format!(
            "{} users ({} with plays), {} items, {} plays from {first} to {last} (unix s)",
            self.users.len(),
            active.len(),
            self.items.len(),
            self.plays.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_years() {
        assert_eq!(
            title_and_year("Toy Story", "1995"),
            ("Toy Story".into(), Some(1995))
        );
        assert_eq!(
            title_and_year("unkonwn", "unkonwn"),
            ("unkonwn".into(), None)
        );
        assert_eq!(
            title_and_year("Land Before Time III (1995)", "V"),
            ("Land Before Time III".into(), Some(1995))
        );
        assert_eq!(title_and_year("Heat", ""), ("Heat".into(), None));
    }

    #[test]
    fn zip_codes_give_us_time_zones() {
        assert_eq!(utc_offset_from_zip("02139"), -300);
        assert_eq!(utc_offset_from_zip("60614"), -360);
        assert_eq!(utc_offset_from_zip("80302"), -420);
        assert_eq!(utc_offset_from_zip("94043"), -480);
        assert_eq!(utc_offset_from_zip("T8H1N"), -300);
        assert_eq!(utc_offset_from_zip(""), -300);
    }
}
