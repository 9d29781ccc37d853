//! `edgerec data fetch` and `edgerec data import`: MovieLens-100K into the canonical tables.
//!
//! MovieLens-100K ships inside the PyPI wheel `recbole==1.2.1` (under
//! `recbole/dataset_example/ml-100k/`). `fetch` gets the wheel with `pip download` (so the
//! machine's pip configuration applies) or takes a wheel file given with `--wheel`, extracts the
//! three tab-separated files and verifies their sha256 before anything is written.
//!
//! `import` maps them into the canonical tables (see [`crate::tables`]): every rating becomes an
//! interaction (the user watched the title) with its rating kept; users keep age, gender,
//! occupation and zip; items keep title, release year (see `title_and_year` for unusable values) and
//! genres (the genre `unknown` means no genre). MovieLens has no devices, sessions, watch fractions, impressions or searches.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use sha2::{Digest, Sha256};

use crate::tables::{Interaction, ItemRow, Tables, User};

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

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `dir` already holds all three files with the right hashes.
fn already_fetched(dir: &Path) -> bool {
    FILES
        .iter()
        .all(|(name, sha)| std::fs::read(dir.join(name)).is_ok_and(|b| sha256_hex(&b) == *sha))
}

/// Fetches MovieLens-100K into `out`. Idempotent: verified files are left alone.
pub fn fetch_movielens_100k(out: &Path, wheel: Option<&Path>) -> Result<()> {
    if already_fetched(out) {
        println!(
            "MovieLens-100K already in {} (sha256 verified)",
            out.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let downloaded;
    let wheel = match wheel {
        Some(w) => w.to_path_buf(),
        None => {
            downloaded = download_wheel(out)?;
            downloaded.clone()
        }
    };
    let file = File::open(&wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a readable wheel (zip)", wheel.display()))?;
    // Read and verify all three before writing any.
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
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "MovieLens-100K fetched into {} from {} (sha256 verified)",
        out.display(),
        wheel.display()
    );
    Ok(())
}

fn download_wheel(out: &Path) -> Result<PathBuf> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let dest = out.join(".wheel");
    std::fs::create_dir_all(&dest)?;
    println!("downloading {WHEEL_REQUIREMENT} from PyPI with pip…");
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

/// Reads the three MovieLens-100K files of `src` into canonical tables.
pub fn import_movielens_100k(src: &Path) -> Result<Tables> {
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
    let mut user_ids = HashSet::new();
    for row in u.rows(5) {
        let (line, f) = row?;
        let user_id = u.parse(line, "user_id", f[0])?;
        ensure!(
            user_ids.insert(user_id),
            "{}: line {line}: user {user_id} repeats",
            u.path.display()
        );
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        users.push(User {
            user_id,
            age: if f[1].is_empty() {
                None
            } else {
                Some(u.parse(line, "age", f[1])?)
            },
            gender: nonempty(f[2]),
            occupation: nonempty(f[3]),
            zip: nonempty(f[4]),
        });
    }

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
    let mut item_ids = HashSet::new();
    let mut unknown_years = 0;
    for row in it.rows(4) {
        let (line, f) = row?;
        let item_id = it.parse(line, "item_id", f[0])?;
        ensure!(
            item_ids.insert(item_id),
            "{}: line {line}: item {item_id} repeats",
            it.path.display()
        );
        let (title, year) = title_and_year(f[1], f[2]);
        if year.is_none() {
            unknown_years += 1;
        }
        items.push(ItemRow {
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

    let x = Tsv::open(
        src.join("ml-100k.inter"),
        &[
            "user_id:token",
            "item_id:token",
            "rating:float",
            "timestamp:float",
        ],
    )?;
    let mut interactions = Vec::new();
    for (seq, row) in x.rows(4).enumerate() {
        let (line, f) = row?;
        let user_id = x.parse(line, "user_id", f[0])?;
        let item_id = x.parse(line, "item_id", f[1])?;
        ensure!(
            user_ids.contains(&user_id),
            "{}: line {line}: unknown user {user_id}",
            x.path.display()
        );
        ensure!(
            item_ids.contains(&item_id),
            "{}: line {line}: unknown item {item_id}",
            x.path.display()
        );
        let rating: f32 = x.parse(line, "rating", f[2])?;
        let ts: f64 = x.parse(line, "timestamp", f[3])?;
        ensure!(
            ts.is_finite() && ts.fract() == 0.0 && ts.abs() < 1e15,
            "{}: line {line}: column timestamp: {ts} is not whole unix seconds",
            x.path.display()
        );
        interactions.push(Interaction {
            user_id,
            item_id,
            timestamp: ts as i64,
            rating: Some(rating),
            seq: seq as u64,
        });
    }
    if unknown_years > 0 {
        println!(
            "{}: {unknown_years} items without a usable release year",
            it.path.display()
        );
    }
    // Stable: equal timestamps keep file order (seq is increasing already).
    interactions.sort_by_key(|r| (r.timestamp, r.seq));
    Ok(Tables {
        users,
        items,
        interactions,
    })
}

/// Counts for the import summary.
pub fn summary(t: &Tables) -> String {
    let mut per_user: HashMap<u32, usize> = HashMap::new();
    for x in &t.interactions {
        *per_user.entry(x.user_id).or_default() += 1;
    }
    let (first, last) = match (t.interactions.first(), t.interactions.last()) {
        (Some(a), Some(b)) => (a.timestamp, b.timestamp),
        _ => (0, 0),
    };
    format!(
        "{} users ({} with interactions), {} items, {} interactions from {} to {} (unix s)",
        t.users.len(),
        per_user.len(),
        t.items.len(),
        t.interactions.len(),
        first,
        last
    )
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
}
