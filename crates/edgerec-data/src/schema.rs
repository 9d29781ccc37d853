//! The canonical log schema: every table the trainer reads, its Arrow schema, its row struct,
//! a chunked Parquet writer with bounded memory and a validating reader.
//!
//! A data set is a directory with one sub-directory per table, each holding Parquet part files
//! `part-00000.parquet`, `part-00001.parquet`, … (read in name order). A synthetic world adds
//! `truth/users/`, `truth/items/` and `world.json` (see [`crate::truth`]).
//!
//! Ids are `u32`, times are `i64` unix seconds (UTC). `?` marks a nullable column; every other
//! column holds no nulls. `list<utf8>` columns hold no null elements.
//!
//! | table | column | type | meaning |
//! |---|---|---|---|
//! | `users` | `user_id` | u32 | |
//! | | `age` | u8 | years; under 18 is a kids'/teen profile with a maturity limit ([`maturity_limit`]) |
//! | | `gender` | utf8 | `"f"`, `"m"` or `"x"` |
//! | | `language` | utf8 | ISO 639-1 of the profile (`"en"`, `"de"`, …) |
//! | | `country` | utf8 | ISO 3166-1 alpha-2 (`"US"`, `"DE"`, …) |
//! | | `utc_offset_minutes` | i32 | local time = UTC + offset (fixed per user; no DST) |
//! | | `signup_time` | i64 | |
//! | | `onboarding_genres` | `list<utf8>` | genres picked at sign-up (may be empty) |
//! | `items` | `item_id` | u32 | |
//! | | `kind` | utf8 | `"movie"` or `"episode"` |
//! | | `series_id` | u32? | episodes only: the series (its own id space) |
//! | | `season` | u16? | episodes only, from 1 |
//! | | `episode` | u16? | episodes only, from 1 within the season |
//! | | `title` | utf8 | |
//! | | `duration_s` | u32 | > 0 |
//! | | `genres` | `list<utf8>` | |
//! | | `tags` | `list<utf8>` | lowercase keywords, including holiday tags such as `"christmas"` |
//! | | `actors` | `list<utf8>` | billing order |
//! | | `directors` | `list<utf8>` | |
//! | | `composer` | utf8? | |
//! | | `distributor` | utf8? | |
//! | | `original_language` | utf8 | ISO 639-1 |
//! | | `country` | utf8 | ISO 3166-1 alpha-2 of origin |
//! | | `release_time` | i64 | first release anywhere |
//! | | `release_type` | utf8 | `"theatrical"`, `"streaming"` or `"tv"` |
//! | | `added_time` | i64 | when it became available on the platform (≥ `release_time`) |
//! | | `maturity` | utf8 | one ladder: `"G"` < `"PG"` < `"PG-13"` < `"R"` < `"NC-17"` |
//! | | `public_rating` | f32? | 0–10 |
//! | | `revenue_usd` | f64? | box office before the platform; movies only |
//! | `impressions` | `user_id` | u32 | |
//! | | `item_id` | u32 | |
//! | | `time` | i64 | when the row was shown |
//! | | `device` | utf8 | `"tv"`, `"desktop"`, `"mobile"` or `"tablet"` |
//! | | `session_id` | u64 | unique per session across the data set |
//! | | `position` | u16 | 0-based position in the row shown |
//! | `plays` | `user_id` | u32 | |
//! | | `item_id` | u32 | |
//! | | `time` | i64 | start of playback |
//! | | `device` | utf8 | as in `impressions` |
//! | | `session_id` | u64 | |
//! | | `watched_s` | u32 | seconds watched in this play |
//! | | `fraction` | f32 | `watched_s / duration_s`, in `[0, 1]` |
//! | `searches` | `user_id` | u32 | |
//! | | `time` | i64 | |
//! | | `session_id` | u64 | |
//! | | `tokens` | `list<utf8>` | lowercase query tokens |
//!
//! Event tables are written grouped by user (ascending `user_id`), each user's events in time
//! order; they are not globally sorted by time. Sort by `(time, user_id)` where a global order
//! is needed.
//!
//! ```
//! use edgerec_data::schema::{self, Search, PartWriter, WriterOptions};
//! let dir = tempfile::tempdir()?;
//! let mut w = PartWriter::<Search>::create(dir.path(), WriterOptions::default())?;
//! w.push(Search { user_id: 1, time: 1_700_000_000, session_id: 9, tokens: vec!["noir".into()] })?;
//! assert_eq!(w.finish()?, 1);
//! let back: Vec<Search> = schema::read_table(dir.path())?;
//! assert_eq!(back[0].tokens, ["noir"]);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use arrow_array::builder::{Float32Builder, ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use edgerec::context::Device;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Encoding;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// The devices a log row may name, in a fixed order (the core's [`Device`] minus `Unknown`).
pub const DEVICES: [Device; 4] = [Device::Tv, Device::Desktop, Device::Mobile, Device::Tablet];

/// Parses a log row's device: `"tv"`, `"desktop"`, `"mobile"` or `"tablet"`.
pub fn parse_device(s: &str) -> Option<Device> {
    DEVICES.into_iter().find(|d| d.as_str() == s)
}

pub use edgerec::features::{Maturity, MediaKind, ReleaseType};

/// The highest rating a profile of this age may be shown: the highest rung of the core's
/// ladder whose [`Maturity::min_age`] the age reaches (0–7 `G`, 8–12 `PG`, 13–16 `PG-13`,
/// 17 `R`, adults `NC-17`, i.e. everything).
pub fn maturity_limit(age: u8) -> Maturity {
    Maturity::ALL
        .into_iter()
        .rev()
        .find(|m| m.min_age() <= age)
        .unwrap_or(Maturity::G)
}

/// A kind as written in files: `"movie"` or `"episode"`.
pub fn kind_str(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Movie => "movie",
        MediaKind::Episode => "episode",
    }
}

/// Parses a kind as written in files.
pub fn parse_kind(s: &str) -> Option<MediaKind> {
    match s {
        "movie" => Some(MediaKind::Movie),
        "episode" => Some(MediaKind::Episode),
        _ => None,
    }
}

/// A release type as written in files: `"theatrical"`, `"streaming"` or `"tv"`.
pub fn release_type_str(r: ReleaseType) -> &'static str {
    match r {
        ReleaseType::Theatrical => "theatrical",
        ReleaseType::Streaming => "streaming",
        ReleaseType::Tv => "tv",
    }
}

/// Parses a release type as written in files.
pub fn parse_release_type(s: &str) -> Option<ReleaseType> {
    match s {
        "theatrical" => Some(ReleaseType::Theatrical),
        "streaming" => Some(ReleaseType::Streaming),
        "tv" => Some(ReleaseType::Tv),
        _ => None,
    }
}

/// A row of `users`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user.
    pub user_id: u32,
    /// Age in years.
    pub age: u8,
    /// `"f"`, `"m"` or `"x"`.
    pub gender: String,
    /// ISO 639-1.
    pub language: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Local time = UTC + this many minutes.
    pub utc_offset_minutes: i32,
    /// Unix seconds.
    pub signup_time: i64,
    /// Genres picked at sign-up.
    pub onboarding_genres: Vec<String>,
}

/// A row of `items`.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The item.
    pub item_id: u32,
    /// Film or episode.
    pub kind: MediaKind,
    /// Episodes only.
    pub series_id: Option<u32>,
    /// Episodes only, from 1.
    pub season: Option<u16>,
    /// Episodes only, from 1 within the season.
    pub episode: Option<u16>,
    /// Display title.
    pub title: String,
    /// Running time in seconds (> 0).
    pub duration_s: u32,
    /// Genre names.
    pub genres: Vec<String>,
    /// Lowercase keywords.
    pub tags: Vec<String>,
    /// Cast in billing order.
    pub actors: Vec<String>,
    /// Directors.
    pub directors: Vec<String>,
    /// Composer of the score.
    pub composer: Option<String>,
    /// Studio or network.
    pub distributor: Option<String>,
    /// ISO 639-1.
    pub original_language: String,
    /// ISO 3166-1 alpha-2 of origin.
    pub country: String,
    /// First release, unix seconds.
    pub release_time: i64,
    /// How it was first released.
    pub release_type: ReleaseType,
    /// Availability on the platform, unix seconds.
    pub added_time: i64,
    /// Rating on the maturity ladder.
    pub maturity: Maturity,
    /// 0–10.
    pub public_rating: Option<f32>,
    /// Box office in US dollars (movies only).
    pub revenue_usd: Option<f64>,
}

/// A row of `impressions`: one title shown at one position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impression {
    /// The user.
    pub user_id: u32,
    /// The title shown.
    pub item_id: u32,
    /// When the row was shown.
    pub time: i64,
    /// Where.
    pub device: Device,
    /// The session.
    pub session_id: u64,
    /// 0-based position in the row.
    pub position: u16,
}

/// A row of `plays`: one playback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Play {
    /// The user.
    pub user_id: u32,
    /// The title played.
    pub item_id: u32,
    /// Start of playback.
    pub time: i64,
    /// Where.
    pub device: Device,
    /// The session.
    pub session_id: u64,
    /// Seconds watched.
    pub watched_s: u32,
    /// `watched_s / duration_s`, in `[0, 1]`.
    pub fraction: f32,
}

/// A row of `searches`: one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The user.
    pub user_id: u32,
    /// When the query was sent.
    pub time: i64,
    /// The session.
    pub session_id: u64,
    /// Lowercase query tokens.
    pub tokens: Vec<String>,
}

/// A row type stored as one table directory of Parquet part files.
pub trait Table: Sized + Send {
    /// The table's directory, relative to the data set (`"plays"`, `"truth/users"`, …).
    const DIR: &'static str;
    /// The Arrow schema (column order, names, types, nullability).
    fn schema() -> SchemaRef;
    /// Builds one record batch from rows.
    fn to_batch(rows: &[Self]) -> Result<RecordBatch>;
    /// Decodes a batch whose column names and types have been checked.
    fn from_batch(batch: &RecordBatch, file: &TableFile) -> Result<Vec<Self>>;
    /// Most rows per row group for this table, whatever [`WriterOptions::rows_per_group`]
    /// says: wide rows (profiles, catalog, truth vectors) are buffered in smaller groups so a
    /// writer's memory stays bounded.
    const MAX_ROWS_PER_GROUP: usize = usize::MAX;
    /// Column-specific writer settings (encodings) on top of the defaults.
    fn writer_properties(
        b: parquet::file::properties::WriterPropertiesBuilder,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        b
    }
}

fn list_field() -> Field {
    Field::new("item", DataType::Utf8, true)
}

fn f32_list_field() -> Field {
    Field::new("item", DataType::Float32, true)
}

/// `list<utf8>` type as used by every string-list column.
pub fn utf8_list() -> DataType {
    DataType::List(Arc::new(list_field()))
}

/// `list<f32>` type as used by the truth tables.
pub fn f32_list() -> DataType {
    DataType::List(Arc::new(f32_list_field()))
}

/// Builds a `list<utf8>` column.
pub fn build_str_lists<'a, I, L>(rows: I) -> ArrayRef
where
    I: IntoIterator<Item = L>,
    L: IntoIterator<Item = &'a str>,
{
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(list_field());
    for row in rows {
        for s in row {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// Builds a `list<f32>` column.
pub fn build_f32_lists<'a, I>(rows: I) -> ArrayRef
where
    I: IntoIterator<Item = &'a [f32]>,
{
    let mut b = ListBuilder::new(Float32Builder::new()).with_field(f32_list_field());
    for row in rows {
        b.values().append_slice(row);
        b.append(true);
    }
    Arc::new(b.finish())
}

/// Builds a non-null `utf8` column from string slices.
pub fn build_strs<'a>(rows: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows))
}

/// Names the file in errors about its columns, and gives typed access to them.
pub struct TableFile {
    path: PathBuf,
}

impl TableFile {
    /// A file handle for error messages.
    pub fn new(path: &Path) -> TableFile {
        TableFile {
            path: path.to_path_buf(),
        }
    }

    /// An error about `column` of this file.
    pub fn err(&self, column: &str, what: &str) -> anyhow::Error {
        anyhow!("{}: column {column:?}: {what}", self.path.display())
    }

    /// The column named `name`.
    pub fn col<'b>(&self, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "missing"))
    }

    /// A `u8` column.
    pub fn u8<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b UInt8Array> {
        Ok(self.col(b, name)?.as_primitive::<UInt8Type>())
    }
    /// A `u16` column.
    pub fn u16<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b UInt16Array> {
        Ok(self.col(b, name)?.as_primitive::<UInt16Type>())
    }
    /// A `u32` column.
    pub fn u32<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b UInt32Array> {
        Ok(self.col(b, name)?.as_primitive::<UInt32Type>())
    }
    /// A `u64` column.
    pub fn u64<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b UInt64Array> {
        Ok(self.col(b, name)?.as_primitive::<UInt64Type>())
    }
    /// An `i32` column.
    pub fn i32<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b Int32Array> {
        Ok(self.col(b, name)?.as_primitive::<Int32Type>())
    }
    /// An `i64` column.
    pub fn i64<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b Int64Array> {
        Ok(self.col(b, name)?.as_primitive::<Int64Type>())
    }
    /// An `f32` column.
    pub fn f32<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b Float32Array> {
        Ok(self.col(b, name)?.as_primitive::<Float32Type>())
    }
    /// An `f64` column.
    pub fn f64<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b Float64Array> {
        Ok(self.col(b, name)?.as_primitive::<Float64Type>())
    }
    /// A `utf8` column.
    pub fn str<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b StringArray> {
        Ok(self.col(b, name)?.as_string::<i32>())
    }
    /// A list column.
    pub fn list<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b ListArray> {
        Ok(self.col(b, name)?.as_list::<i32>())
    }

    /// Row `i` of a `list<utf8>` column; null elements are an error.
    pub fn str_list(&self, list: &ListArray, name: &str, i: usize) -> Result<Vec<String>> {
        let v = list.value(i);
        let v = v.as_string::<i32>();
        if v.null_count() > 0 {
            return Err(self.err(name, "holds a null list element"));
        }
        Ok(v.iter().flatten().map(str::to_string).collect())
    }

    /// Row `i` of a `list<f32>` column; null elements are an error.
    pub fn f32_list(&self, list: &ListArray, name: &str, i: usize) -> Result<Vec<f32>> {
        let v = list.value(i);
        let v = v.as_primitive::<Float32Type>();
        if v.null_count() > 0 {
            return Err(self.err(name, "holds a null list element"));
        }
        Ok(v.values().to_vec())
    }

    /// Parses row `i` of an enumerated `utf8` column with `parse`, naming the bad value.
    pub fn parse<T>(
        &self,
        col: &StringArray,
        name: &str,
        i: usize,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let s = col.value(i);
        parse(s).ok_or_else(|| self.err(name, &format!("unknown value {s:?} in row {i}")))
    }
}

fn opt<T, A: Array>(a: &A, i: usize, v: impl Fn(usize) -> T) -> Option<T> {
    a.is_valid(i).then(|| v(i))
}

impl Table for User {
    const DIR: &'static str = "users";
    const MAX_ROWS_PER_GROUP: usize = 1 << 17;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::UInt32, false),
            Field::new("age", DataType::UInt8, false),
            Field::new("gender", DataType::Utf8, false),
            Field::new("language", DataType::Utf8, false),
            Field::new("country", DataType::Utf8, false),
            Field::new("utc_offset_minutes", DataType::Int32, false),
            Field::new("signup_time", DataType::Int64, false),
            Field::new("onboarding_genres", utf8_list(), false),
        ]))
    }

    fn to_batch(rows: &[User]) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.user_id),
                )),
                Arc::new(UInt8Array::from_iter_values(rows.iter().map(|r| r.age))),
                build_strs(rows.iter().map(|r| r.gender.as_str())),
                build_strs(rows.iter().map(|r| r.language.as_str())),
                build_strs(rows.iter().map(|r| r.country.as_str())),
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|r| r.utc_offset_minutes),
                )),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.signup_time),
                )),
                build_str_lists(
                    rows.iter()
                        .map(|r| r.onboarding_genres.iter().map(String::as_str)),
                ),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<User>> {
        let (id, age, gender) = (t.u32(b, "user_id")?, t.u8(b, "age")?, t.str(b, "gender")?);
        let (language, country) = (t.str(b, "language")?, t.str(b, "country")?);
        let (offset, signup) = (t.i32(b, "utc_offset_minutes")?, t.i64(b, "signup_time")?);
        let genres = t.list(b, "onboarding_genres")?;
        (0..b.num_rows())
            .map(|i| {
                let g = gender.value(i);
                if !matches!(g, "f" | "m" | "x") {
                    return Err(t.err("gender", &format!("unknown value {g:?} in row {i}")));
                }
                Ok(User {
                    user_id: id.value(i),
                    age: age.value(i),
                    gender: g.to_string(),
                    language: language.value(i).to_string(),
                    country: country.value(i).to_string(),
                    utc_offset_minutes: offset.value(i),
                    signup_time: signup.value(i),
                    onboarding_genres: t.str_list(genres, "onboarding_genres", i)?,
                })
            })
            .collect()
    }
}

impl Table for Item {
    const DIR: &'static str = "items";
    const MAX_ROWS_PER_GROUP: usize = 1 << 16;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("item_id", DataType::UInt32, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("series_id", DataType::UInt32, true),
            Field::new("season", DataType::UInt16, true),
            Field::new("episode", DataType::UInt16, true),
            Field::new("title", DataType::Utf8, false),
            Field::new("duration_s", DataType::UInt32, false),
            Field::new("genres", utf8_list(), false),
            Field::new("tags", utf8_list(), false),
            Field::new("actors", utf8_list(), false),
            Field::new("directors", utf8_list(), false),
            Field::new("composer", DataType::Utf8, true),
            Field::new("distributor", DataType::Utf8, true),
            Field::new("original_language", DataType::Utf8, false),
            Field::new("country", DataType::Utf8, false),
            Field::new("release_time", DataType::Int64, false),
            Field::new("release_type", DataType::Utf8, false),
            Field::new("added_time", DataType::Int64, false),
            Field::new("maturity", DataType::Utf8, false),
            Field::new("public_rating", DataType::Float32, true),
            Field::new("revenue_usd", DataType::Float64, true),
        ]))
    }

    fn to_batch(rows: &[Item]) -> Result<RecordBatch> {
        let strs = |f: fn(&Item) -> &Vec<String>| {
            build_str_lists(rows.iter().map(move |r| f(r).iter().map(String::as_str)))
        };
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.item_id),
                )),
                build_strs(rows.iter().map(|r| kind_str(r.kind))),
                Arc::new(UInt32Array::from_iter(rows.iter().map(|r| r.series_id))),
                Arc::new(UInt16Array::from_iter(rows.iter().map(|r| r.season))),
                Arc::new(UInt16Array::from_iter(rows.iter().map(|r| r.episode))),
                build_strs(rows.iter().map(|r| r.title.as_str())),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.duration_s),
                )),
                strs(|r| &r.genres),
                strs(|r| &r.tags),
                strs(|r| &r.actors),
                strs(|r| &r.directors),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.composer.as_deref()),
                )),
                Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| r.distributor.as_deref()),
                )),
                build_strs(rows.iter().map(|r| r.original_language.as_str())),
                build_strs(rows.iter().map(|r| r.country.as_str())),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.release_time),
                )),
                build_strs(rows.iter().map(|r| release_type_str(r.release_type))),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.added_time),
                )),
                build_strs(rows.iter().map(|r| r.maturity.as_str())),
                Arc::new(Float32Array::from_iter(
                    rows.iter().map(|r| r.public_rating),
                )),
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.revenue_usd))),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<Item>> {
        let id = t.u32(b, "item_id")?;
        let kind = t.str(b, "kind")?;
        let (series, season, episode) = (
            t.u32(b, "series_id")?,
            t.u16(b, "season")?,
            t.u16(b, "episode")?,
        );
        let (title, duration) = (t.str(b, "title")?, t.u32(b, "duration_s")?);
        let (genres, tags) = (t.list(b, "genres")?, t.list(b, "tags")?);
        let (actors, directors) = (t.list(b, "actors")?, t.list(b, "directors")?);
        let (composer, distributor) = (t.str(b, "composer")?, t.str(b, "distributor")?);
        let (lang, country) = (t.str(b, "original_language")?, t.str(b, "country")?);
        let (release, release_type) = (t.i64(b, "release_time")?, t.str(b, "release_type")?);
        let (added, maturity) = (t.i64(b, "added_time")?, t.str(b, "maturity")?);
        let (rating, revenue) = (t.f32(b, "public_rating")?, t.f64(b, "revenue_usd")?);
        (0..b.num_rows())
            .map(|i| {
                let kind = t.parse(kind, "kind", i, parse_kind)?;
                if kind == MediaKind::Episode
                    && (series.is_null(i) || season.is_null(i) || episode.is_null(i))
                {
                    return Err(t.err(
                        "series_id",
                        &format!("row {i} is an episode without series_id, season and episode"),
                    ));
                }
                if duration.value(i) == 0 {
                    return Err(t.err("duration_s", &format!("row {i} is 0")));
                }
                Ok(Item {
                    item_id: id.value(i),
                    kind,
                    series_id: opt(series, i, |i| series.value(i)),
                    season: opt(season, i, |i| season.value(i)),
                    episode: opt(episode, i, |i| episode.value(i)),
                    title: title.value(i).to_string(),
                    duration_s: duration.value(i),
                    genres: t.str_list(genres, "genres", i)?,
                    tags: t.str_list(tags, "tags", i)?,
                    actors: t.str_list(actors, "actors", i)?,
                    directors: t.str_list(directors, "directors", i)?,
                    composer: opt(composer, i, |i| composer.value(i).to_string()),
                    distributor: opt(distributor, i, |i| distributor.value(i).to_string()),
                    original_language: lang.value(i).to_string(),
                    country: country.value(i).to_string(),
                    release_time: release.value(i),
                    release_type: t.parse(release_type, "release_type", i, parse_release_type)?,
                    added_time: added.value(i),
                    maturity: t.parse(maturity, "maturity", i, Maturity::parse)?,
                    public_rating: opt(rating, i, |i| rating.value(i)),
                    revenue_usd: opt(revenue, i, |i| revenue.value(i)),
                })
            })
            .collect()
    }
}

/// Writer settings for the big event tables: delta encoding for times and monotone ids,
/// dictionaries only where values repeat.
fn event_properties(
    b: parquet::file::properties::WriterPropertiesBuilder,
) -> parquet::file::properties::WriterPropertiesBuilder {
    let plain = |b: parquet::file::properties::WriterPropertiesBuilder, c: &str, e: Encoding| {
        b.set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), e)
    };
    let b = plain(b, "time", Encoding::DELTA_BINARY_PACKED);
    let b = plain(b, "session_id", Encoding::DELTA_BINARY_PACKED);
    let b = plain(b, "user_id", Encoding::DELTA_BINARY_PACKED);
    let b = plain(b, "watched_s", Encoding::PLAIN);
    let b = plain(b, "fraction", Encoding::PLAIN);
    plain(b, "position", Encoding::DELTA_BINARY_PACKED)
}

fn device_column(devices: impl Iterator<Item = Device>) -> ArrayRef {
    build_strs(devices.map(Device::as_str))
}

impl Table for Impression {
    const DIR: &'static str = "impressions";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::UInt32, false),
            Field::new("item_id", DataType::UInt32, false),
            Field::new("time", DataType::Int64, false),
            Field::new("device", DataType::Utf8, false),
            Field::new("session_id", DataType::UInt64, false),
            Field::new("position", DataType::UInt16, false),
        ]))
    }

    fn to_batch(rows: &[Impression]) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.user_id),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.item_id),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time))),
                device_column(rows.iter().map(|r| r.device)),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.session_id),
                )),
                Arc::new(UInt16Array::from_iter_values(
                    rows.iter().map(|r| r.position),
                )),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<Impression>> {
        let (user, item, time) = (
            t.u32(b, "user_id")?,
            t.u32(b, "item_id")?,
            t.i64(b, "time")?,
        );
        let (device, session) = (t.str(b, "device")?, t.u64(b, "session_id")?);
        let position = t.u16(b, "position")?;
        (0..b.num_rows())
            .map(|i| {
                Ok(Impression {
                    user_id: user.value(i),
                    item_id: item.value(i),
                    time: time.value(i),
                    device: t.parse(device, "device", i, parse_device)?,
                    session_id: session.value(i),
                    position: position.value(i),
                })
            })
            .collect()
    }

    fn writer_properties(
        b: parquet::file::properties::WriterPropertiesBuilder,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        event_properties(b)
    }
}

impl Table for Play {
    const DIR: &'static str = "plays";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::UInt32, false),
            Field::new("item_id", DataType::UInt32, false),
            Field::new("time", DataType::Int64, false),
            Field::new("device", DataType::Utf8, false),
            Field::new("session_id", DataType::UInt64, false),
            Field::new("watched_s", DataType::UInt32, false),
            Field::new("fraction", DataType::Float32, false),
        ]))
    }

    fn to_batch(rows: &[Play]) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.user_id),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.item_id),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time))),
                device_column(rows.iter().map(|r| r.device)),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.session_id),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.watched_s),
                )),
                Arc::new(Float32Array::from_iter_values(
                    rows.iter().map(|r| r.fraction),
                )),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<Play>> {
        let (user, item, time) = (
            t.u32(b, "user_id")?,
            t.u32(b, "item_id")?,
            t.i64(b, "time")?,
        );
        let (device, session) = (t.str(b, "device")?, t.u64(b, "session_id")?);
        let (watched, fraction) = (t.u32(b, "watched_s")?, t.f32(b, "fraction")?);
        (0..b.num_rows())
            .map(|i| {
                let f = fraction.value(i);
                if !(0.0..=1.0).contains(&f) {
                    return Err(t.err("fraction", &format!("row {i} is {f}, outside [0, 1]")));
                }
                Ok(Play {
                    user_id: user.value(i),
                    item_id: item.value(i),
                    time: time.value(i),
                    device: t.parse(device, "device", i, parse_device)?,
                    session_id: session.value(i),
                    watched_s: watched.value(i),
                    fraction: f,
                })
            })
            .collect()
    }

    fn writer_properties(
        b: parquet::file::properties::WriterPropertiesBuilder,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        event_properties(b)
    }
}

impl Table for Search {
    const DIR: &'static str = "searches";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::UInt32, false),
            Field::new("time", DataType::Int64, false),
            Field::new("session_id", DataType::UInt64, false),
            Field::new("tokens", utf8_list(), false),
        ]))
    }

    fn to_batch(rows: &[Search]) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.user_id),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time))),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.session_id),
                )),
                build_str_lists(rows.iter().map(|r| r.tokens.iter().map(String::as_str))),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch, t: &TableFile) -> Result<Vec<Search>> {
        let (user, time) = (t.u32(b, "user_id")?, t.i64(b, "time")?);
        let (session, tokens) = (t.u64(b, "session_id")?, t.list(b, "tokens")?);
        (0..b.num_rows())
            .map(|i| {
                Ok(Search {
                    user_id: user.value(i),
                    time: time.value(i),
                    session_id: session.value(i),
                    tokens: t.str_list(tokens, "tokens", i)?,
                })
            })
            .collect()
    }

    fn writer_properties(
        b: parquet::file::properties::WriterPropertiesBuilder,
    ) -> parquet::file::properties::WriterPropertiesBuilder {
        event_properties(b)
    }
}

/// Sizes of a [`PartWriter`]'s row groups and part files.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Rows buffered before a row group is encoded and written (bounds the writer's memory).
    pub rows_per_group: usize,
    /// Row groups per part file before the next part is started.
    pub groups_per_file: usize,
}

impl Default for WriterOptions {
    /// 1 Mi rows per row group, 8 row groups per part file.
    fn default() -> WriterOptions {
        WriterOptions {
            rows_per_group: 1 << 20,
            groups_per_file: 8,
        }
    }
}

/// The name of part file `n`: `part-00000.parquet`, …
pub fn part_name(n: usize) -> String {
    format!("part-{n:05}.parquet")
}

/// Writes one table as numbered Parquet part files with bounded memory.
///
/// Rows are buffered until [`WriterOptions::rows_per_group`] (at most
/// [`Table::MAX_ROWS_PER_GROUP`]), then encoded as one row group;
/// after [`WriterOptions::groups_per_file`] groups the part file is closed and the next one
/// started. Files are written as `*.tmp` and renamed when complete. The boundaries depend only
/// on the number of rows pushed, so the same rows give the same bytes however they are pushed.
/// Creating a writer removes part files left in its directory by an earlier run; a table with
/// no rows still gets one (empty) part file, so readers always find its schema.
pub struct PartWriter<T: Table> {
    dir: PathBuf,
    opts: WriterOptions,
    props: WriterProperties,
    buf: Vec<T>,
    file: Option<(ArrowWriter<File>, PathBuf)>,
    part: usize,
    groups_in_file: usize,
    rows: u64,
}

impl<T: Table> PartWriter<T> {
    /// A writer for table `T` under the data set directory `root` (writes `root/T::DIR/`).
    pub fn create(root: &Path, opts: WriterOptions) -> Result<PartWriter<T>> {
        let dir = root.join(T::DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("part-")
                && (name.ends_with(".parquet") || name.ends_with(".parquet.tmp"))
            {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing old part {}", path.display()))?;
            }
        }
        let rows_per_group = opts.rows_per_group.clamp(1, T::MAX_ROWS_PER_GROUP.max(1));
        let props = T::writer_properties(
            WriterProperties::builder()
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .set_max_row_group_row_count(Some(rows_per_group))
                .set_created_by(format!("edgerec-data {}", env!("CARGO_PKG_VERSION"))),
        )
        .build();
        Ok(PartWriter {
            dir,
            opts: WriterOptions {
                rows_per_group,
                groups_per_file: opts.groups_per_file.max(1),
            },
            props,
            buf: Vec::new(),
            file: None,
            part: 0,
            groups_in_file: 0,
            rows: 0,
        })
    }

    /// Buffers one row, writing a row group when the buffer is full.
    pub fn push(&mut self, row: T) -> Result<()> {
        self.buf.push(row);
        if self.buf.len() >= self.opts.rows_per_group {
            self.write_group()?;
        }
        Ok(())
    }

    /// Buffers every row of `rows` in order.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = T>) -> Result<()> {
        for r in rows {
            self.push(r)?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows + self.buf.len() as u64
    }

    fn write_group(&mut self) -> Result<()> {
        let (w, path) = match &mut self.file {
            Some(open) => open,
            None => {
                let path = self.dir.join(part_name(self.part));
                let tmp = path.with_extension("parquet.tmp");
                let f =
                    File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                let w = ArrowWriter::try_new(f, T::schema(), Some(self.props.clone()))
                    .with_context(|| format!("starting {}", path.display()))?;
                self.file.insert((w, path))
            }
        };
        if !self.buf.is_empty() {
            let batch =
                T::to_batch(&self.buf).with_context(|| format!("encoding {}", path.display()))?;
            w.write(&batch)
                .and_then(|()| w.flush())
                .with_context(|| format!("writing {}", path.display()))?;
            self.rows += self.buf.len() as u64;
            self.buf.clear();
            self.groups_in_file += 1;
        }
        if self.groups_in_file >= self.opts.groups_per_file {
            self.close_file()?;
        }
        Ok(())
    }

    fn close_file(&mut self) -> Result<()> {
        if let Some((w, path)) = self.file.take() {
            w.close()
                .with_context(|| format!("finishing {}", path.display()))?;
            let tmp = path.with_extension("parquet.tmp");
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            self.part += 1;
            self.groups_in_file = 0;
        }
        Ok(())
    }

    /// Writes the buffered rows and closes the last part file. Returns the number of rows.
    pub fn finish(mut self) -> Result<u64> {
        if !self.buf.is_empty() || (self.part == 0 && self.file.is_none()) {
            self.write_group()?;
        }
        self.close_file()?;
        Ok(self.rows)
    }
}

/// The part files of table `T` under `root`, in name order.
pub fn part_files<T: Table>(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(T::DIR);
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("part-") && name.ends_with(".parquet") {
            parts.push(path);
        }
    }
    parts.sort();
    if parts.is_empty() {
        anyhow::bail!("{}: no part-*.parquet files", dir.display());
    }
    Ok(parts)
}

/// Checks a Parquet file's columns against `T`'s schema (names and types; list columns by
/// element type) and returns a reader for it.
fn open_checked<T: Table>(
    path: &Path,
) -> Result<(
    parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    TableFile,
)> {
    let t = TableFile::new(path);
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    let schema = builder.schema().clone();
    for f in T::schema().fields() {
        let found = schema
            .field_with_name(f.name())
            .map_err(|_| t.err(f.name(), "missing"))?;
        let same_type = match (found.data_type(), f.data_type()) {
            (DataType::List(a), DataType::List(b)) => a.data_type() == b.data_type(),
            (a, b) => a == b,
        };
        if !same_type {
            return Err(t.err(
                f.name(),
                &format!("has type {}, expected {}", found.data_type(), f.data_type()),
            ));
        }
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((reader, t))
}

/// Table `T` under `root` read batch by batch on demand (bounded memory): the pull-based form
/// of [`for_each_batch`], for walking several tables side by side. Each part file's schema is
/// checked when it is opened; errors name the file and, for column problems, the column.
pub struct TableReader<T: Table> {
    parts: std::vec::IntoIter<PathBuf>,
    current: Option<(
        PathBuf,
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        TableFile,
    )>,
    _rows: std::marker::PhantomData<T>,
}

impl<T: Table> TableReader<T> {
    /// Lists `T`'s part files under `root` (an error when there are none).
    pub fn open(root: &Path) -> Result<TableReader<T>> {
        Ok(TableReader {
            parts: part_files::<T>(root)?.into_iter(),
            current: None,
            _rows: std::marker::PhantomData,
        })
    }

    /// The next batch of rows (never empty), or `None` after the last part file.
    pub fn next_batch(&mut self) -> Result<Option<Vec<T>>> {
        let expected = T::schema();
        loop {
            let Some((path, reader, t)) = &mut self.current else {
                let Some(path) = self.parts.next() else {
                    return Ok(None);
                };
                let (reader, t) = open_checked::<T>(&path)?;
                self.current = Some((path, reader, t));
                continue;
            };
            let Some(batch) = reader.next() else {
                self.current = None;
                continue;
            };
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            for field in expected.fields().iter().filter(|f| !f.is_nullable()) {
                if t.col(&batch, field.name())?.null_count() > 0 {
                    return Err(t.err(field.name(), "holds nulls"));
                }
            }
            let rows = T::from_batch(&batch, t)?;
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
    }
}

/// Streams table `T` under `root` batch by batch (bounded memory), after validating each part
/// file's schema. Errors name the file and, for column problems, the column.
pub fn for_each_batch<T: Table>(
    root: &Path,
    mut f: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let mut reader = TableReader::<T>::open(root)?;
    while let Some(rows) = reader.next_batch()? {
        f(rows)?;
    }
    Ok(())
}

/// Reads all of table `T` under `root` into memory (see [`for_each_batch`] to stream).
pub fn read_table<T: Table>(root: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for_each_batch::<T>(root, |rows| {
        out.extend(rows);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u32) -> Item {
        Item {
            item_id: id,
            kind: MediaKind::Episode,
            series_id: Some(3),
            season: Some(1),
            episode: Some(2),
            title: "The Quiet Harbour S1E2".into(),
            duration_s: 2_700,
            genres: vec!["Drama".into(), "Crime".into()],
            tags: vec![],
            actors: vec!["Ada Moreau".into()],
            directors: vec!["Ian Cole".into()],
            composer: None,
            distributor: Some("Channel Nine".into()),
            original_language: "en".into(),
            country: "GB".into(),
            release_time: 1_600_000_000,
            release_type: ReleaseType::Tv,
            added_time: 1_650_000_000,
            maturity: Maturity::Pg13,
            public_rating: Some(7.5),
            revenue_usd: None,
        }
    }

    #[test]
    fn round_trip_every_table_across_parts() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            rows_per_group: 2,
            groups_per_file: 2,
        };
        let users = vec![User {
            user_id: 1,
            age: 9,
            gender: "x".into(),
            language: "de".into(),
            country: "DE".into(),
            utc_offset_minutes: 60,
            signup_time: 5,
            onboarding_genres: vec!["Animation".into()],
        }];
        let items: Vec<Item> = (0..5).map(item).collect();
        let plays: Vec<Play> = (0..9)
            .map(|i| Play {
                user_id: i / 3,
                item_id: i,
                time: 100 + i as i64,
                device: DEVICES[i as usize % 4],
                session_id: 7 + i as u64,
                watched_s: 60 * i,
                fraction: i as f32 / 9.0,
            })
            .collect();
        let impressions: Vec<Impression> = (0..3)
            .map(|i| Impression {
                user_id: 2,
                item_id: i,
                time: -5,
                device: Device::Mobile,
                session_id: u64::MAX,
                position: i as u16,
            })
            .collect();
        let searches = vec![Search {
            user_id: 0,
            time: 1,
            session_id: 2,
            tokens: vec!["harbour".into(), "ada".into()],
        }];
        macro_rules! round_trip {
            ($rows:expr, $t:ty) => {{
                let mut w = PartWriter::<$t>::create(dir.path(), opts).unwrap();
                w.extend($rows.iter().cloned()).unwrap();
                assert_eq!(w.finish().unwrap(), $rows.len() as u64);
                assert_eq!(read_table::<$t>(dir.path()).unwrap(), $rows);
            }};
        }
        round_trip!(users, User);
        round_trip!(items, Item);
        round_trip!(plays, Play);
        round_trip!(impressions, Impression);
        round_trip!(searches, Search);
        // 9 plays, 2 rows per group, 2 groups per part: 3 parts.
        assert_eq!(part_files::<Play>(dir.path()).unwrap().len(), 3);
        // A second, shorter run replaces the parts of the first.
        let mut w = PartWriter::<Play>::create(dir.path(), opts).unwrap();
        w.push(plays[0]).unwrap();
        w.finish().unwrap();
        assert_eq!(read_table::<Play>(dir.path()).unwrap(), [plays[0]]);
        // An empty table still has a readable part.
        PartWriter::<Search>::create(dir.path(), opts)
            .unwrap()
            .finish()
            .unwrap();
        assert!(read_table::<Search>(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn wrong_column_type_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("plays")).unwrap();
        // plays with `item_id` stored as utf8.
        let mut fields: Vec<Field> = Play::schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[1] = Field::new("item_id", DataType::Utf8, false);
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt32Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["7"])),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["tv"])),
                Arc::new(UInt64Array::from(vec![1])),
                Arc::new(UInt32Array::from(vec![1])),
                Arc::new(Float32Array::from(vec![0.5])),
            ],
        )
        .unwrap();
        let path = dir.path().join("plays").join(part_name(0));
        let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let err = format!("{:#}", read_table::<Play>(dir.path()).unwrap_err());
        assert!(
            err.contains("part-00000.parquet")
                && err.contains("\"item_id\"")
                && err.contains("Utf8"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_and_garbage_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::<Item>::create(dir.path(), WriterOptions::default()).unwrap();
        let mut bad = item(1);
        bad.duration_s = 0;
        w.push(bad).unwrap();
        w.finish().unwrap();
        let err = format!("{:#}", read_table::<Item>(dir.path()).unwrap_err());
        assert!(
            err.contains("items/part-00000.parquet") && err.contains("duration_s"),
            "{err}"
        );

        std::fs::write(dir.path().join("items").join(part_name(0)), b"not parquet").unwrap();
        let err = format!("{:#}", read_table::<Item>(dir.path()).unwrap_err());
        assert!(err.contains("part-00000.parquet"), "{err}");
        let err = format!("{:#}", read_table::<User>(dir.path()).unwrap_err());
        assert!(err.contains("users"), "{err}");
    }
}
