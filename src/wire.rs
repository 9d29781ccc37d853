//! A row's wire form: the request options and the row as plain data, in the shapes of the npm
//! package's `RowOptions` and `Row` (camelCase keys). Every binding that is not Rust speaks it —
//! the JS bindings through serde-wasm-bindgen, the plain-ABI module for native TV apps
//! (`crates/edgerec-tv`) through JSON — so both check options alike and return the same row.
//!
//! Numbers arrive as `f64` (what JS and JSON carry) and are checked whole and in range here, so
//! 1.5, -1, NaN or 2^32 + 60 are refused with `invalid_argument` instead of being coerced.

use serde::{Deserialize, Serialize};

use crate::context::{Context, Device};
use crate::error::{Error, Result};
use crate::recommender::{Recommender, RowRequest};
use crate::release::Expect;
use crate::rerank::Reason;

/// The largest integer a JS number (an `f64`) holds exactly.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The options of one row (the package's `RowOptions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RowOptions {
    /// Where and when the row is shown.
    pub context: ContextOptions,
    /// Titles in the row (default 10).
    pub k: Option<f64>,
    /// Candidates ranked before the rerank.
    pub candidates: Option<f64>,
    /// `auto`, `flat` or `hnsw`.
    pub index: Option<String>,
    /// Recent search terms.
    #[serde(default)]
    pub searches: Vec<String>,
    /// Rank with the bundle's ranker when it has one (default true).
    pub use_ranker: Option<bool>,
    /// One candidate source only (`ials`, `two-tower`, `content`, `popularity`, `neighbours`).
    pub source: Option<String>,
    /// Overrides of the bundle's rerank settings.
    pub rerank: Option<RerankOptions>,
}

/// The keys [`RowOptions`] accepts, and those of its `context` and `rerank` objects (for
/// bindings whose deserializer reads only named fields and cannot refuse the others).
pub const ROW_OPTION_KEYS: [(&str, &[&str]); 3] = [
    (
        "options",
        &[
            "context",
            "k",
            "candidates",
            "index",
            "searches",
            "useRanker",
            "source",
            "rerank",
        ],
    ),
    ("context", &["device", "timestamp", "utcOffsetMinutes"]),
    ("rerank", &["lambda", "fatigueImpressions", "maxPerGenre"]),
];

/// The request's context (the package's `Context`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContextOptions {
    /// `tv`, `mobile`, `web`, `tablet`, `console` or `unknown`.
    pub device: String,
    /// Unix seconds.
    pub timestamp: f64,
    /// The user's offset from UTC.
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

/// Overrides of the bundle's rerank settings (the package's `RerankOptions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RerankOptions {
    /// MMR's relevance weight.
    pub lambda: Option<f32>,
    /// Impressions after which an unplayed title is dropped.
    pub fatigue_impressions: Option<u32>,
    /// Absent: the bundle's cap; `null`: no cap.
    #[serde(default, deserialize_with = "nullable")]
    pub max_per_genre: Option<Option<u32>>,
}

/// Absent → `None` (keep the bundle's), `null` → `Some(None)` (no cap).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// An `invalid_argument` error naming `what`.
pub fn invalid(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{what}: {e}"))
}

/// A whole number in `min..=max` (not coerced: -1, 1.5, NaN and 2^32 + 60 are refused where
/// they are outside), or an `invalid_argument` error naming `what`.
pub fn whole(what: &str, x: f64, min: usize, max: usize) -> Result<usize> {
    if x.fract() == 0.0 && x >= min as f64 && x <= max as f64 {
        Ok(x as usize)
    } else {
        Err(invalid(
            what,
            format!("must be a whole number from {min} to {max}, got {x}"),
        ))
    }
}

/// A `u32` id or count in `0..=max` ([`whole`]).
pub fn whole_u32(what: &str, x: f64, max: u32) -> Result<u32> {
    // `max` is a u32, so the value fits.
    whole(what, x, 0, max as usize).map(|v| v as u32)
}

/// A version, serial or byte count: a whole number from 0 to 2^53 − 1 (what a JS number holds
/// exactly), or an `invalid_argument` error naming `what`.
pub fn version_number(what: &str, v: f64) -> Result<u64> {
    if v.fract() != 0.0 || !(0.0..=MAX_SAFE_INTEGER).contains(&v) {
        return Err(invalid(
            what,
            format!("must be a whole number from 0 to {MAX_SAFE_INTEGER}, got {v}"),
        ));
    }
    Ok(v as u64)
}

/// Whole unix seconds within [`crate::limits::MIN_TIME`]`..=`[`crate::limits::MAX_TIME`], or
/// an `invalid_argument` error naming `what` (and saying so when the number looks like
/// milliseconds, e.g. JS's `Date.now()`).
pub fn unix_seconds(what: &str, t: f64) -> Result<i64> {
    if !t.is_finite() || t.fract() != 0.0 || t.abs() > MAX_SAFE_INTEGER {
        return Err(invalid(
            what,
            format!("must be whole unix seconds, got {t}"),
        ));
    }
    let t = t as i64;
    if !crate::limits::time_in_range(t) {
        return Err(invalid(what, crate::limits::time_error("time", t)));
    }
    Ok(t)
}

impl ContextOptions {
    /// The checked context.
    pub fn to_context(&self) -> Result<Context> {
        let timestamp = unix_seconds("context.timestamp", self.timestamp)?;
        let device: Device = self.device.parse()?;
        Context::new(device, timestamp, self.utc_offset_minutes)
    }
}

impl RowOptions {
    /// Converts and checks each option into the core's request (`invalid_argument` on a bad
    /// one).
    pub fn to_request(&self) -> Result<RowRequest> {
        let mut req = RowRequest::new(self.context.to_context()?);
        req.k = self
            .k
            .map(|k| whole("k", k, 1, crate::limits::MAX_K))
            .transpose()?;
        req.candidates = self
            .candidates
            .map(|n| whole("candidates", n, 1, crate::limits::MAX_CANDIDATES))
            .transpose()?;
        if let Some(i) = &self.index {
            req.index = i.parse()?;
        }
        req.searches = self.searches.clone();
        req.use_ranker = self.use_ranker.unwrap_or(true);
        if let Some(name) = &self.source {
            req.only_source = Some(crate::blend::Source::parse(name).ok_or_else(|| {
                invalid(
                    "options.source",
                    format!("{name:?} is not ials, two-tower, content, popularity or neighbours"),
                )
            })?);
        }
        if let Some(r) = &self.rerank {
            req.rerank = crate::rerank::RerankOverrides {
                lambda: r.lambda,
                fatigue_impressions: r.fatigue_impressions,
                max_per_genre: r.max_per_genre.map(|m| m.map(|m| m as usize)),
            };
        }
        Ok(req)
    }
}

/// What a device expects of a signed release besides valid signatures (the package's
/// `ReleaseExpect`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseExpect {
    /// The channel the device follows.
    pub channel: String,
    /// Unix seconds now (absent: expiry is not checked).
    #[serde(default)]
    pub now: Option<f64>,
    /// The installed release's version (a smaller one is a rollback).
    #[serde(default)]
    pub installed_version: Option<f64>,
    /// The largest key set serial seen (a smaller one is a rollback).
    #[serde(default)]
    pub key_set_serial: Option<f64>,
}

impl ReleaseExpect {
    /// The checked expectations (`invalid_argument` on a bad number).
    pub fn to_expect(&self) -> Result<Expect<'_>> {
        Ok(Expect {
            channel: &self.channel,
            now: self.now.map(|v| unix_seconds("now", v)).transpose()?,
            installed_version: self
                .installed_version
                .map(|v| version_number("installedVersion", v))
                .transpose()?,
            key_set_serial: self
                .key_set_serial
                .map(|v| version_number("keySetSerial", v))
                .transpose()?,
        })
    }
}

/// A title of the catalog (the package's `Item`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item<'a> {
    /// The catalog id.
    pub item_id: u32,
    /// The display title.
    pub title: &'a str,
    /// Release year, when known.
    pub year: Option<u16>,
    /// Genre names.
    pub genres: Vec<&'a str>,
}

/// A candidate source and the title's rank in it.
#[derive(Debug, Serialize)]
pub struct SourceRank {
    /// The source's name.
    pub source: &'static str,
    /// 1-based rank.
    pub rank: u32,
}

/// One title of a row (the package's `RowItem`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowItem<'a> {
    /// The title.
    #[serde(flatten)]
    pub item: Item<'a>,
    /// P(watch) from the ranker, else the blend's score.
    pub score: f32,
    /// Which stage placed it.
    pub placed_by: &'static str,
    /// The sources that proposed it.
    pub sources: Vec<SourceRank>,
    /// Why, for the user.
    pub reason: String,
    /// The reason's kind.
    pub reason_kind: &'static str,
}

/// A source that proposed candidates, and the index it searched.
#[derive(Debug, Serialize)]
pub struct SourceIndex {
    /// The source's name.
    pub source: &'static str,
    /// `flat` or `hnsw`, for sources that search an index.
    pub index: Option<&'static str>,
}

/// A row (the package's `Row`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row<'a> {
    /// The titles, best first.
    pub items: Vec<RowItem<'a>>,
    /// Time per stage; absent where the host has no clock to give (the plain ABI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<crate::Timings>,
    /// The bundle's model version.
    pub model_version: &'a str,
    /// Candidates ranked.
    pub candidates: usize,
    /// Whether the ranker ordered them.
    pub ranked: bool,
    /// The sources that proposed candidates.
    pub sources: Vec<SourceIndex>,
}

/// The title at `position` of the recommender's catalog.
pub fn item(rec: &Recommender, position: usize) -> Item<'_> {
    let catalog = &rec.model().contents().catalog;
    let item = &catalog.items()[position];
    Item {
        item_id: item.id,
        title: &item.title,
        year: item.year,
        genres: catalog.genre_names(item),
    }
}

/// The wire form of a row `rec` made; with its timings when `timed`.
pub fn row(rec: &Recommender, row: crate::Row, timed: bool) -> Row<'_> {
    Row {
        items: row.items.into_iter().map(|r| row_item(rec, r)).collect(),
        timings: timed.then_some(row.timings),
        model_version: rec.model().version(),
        candidates: row.info.candidates,
        ranked: row.info.ranked,
        sources: row
            .info
            .sources
            .iter()
            .map(|&(source, index)| SourceIndex {
                source: source.as_str(),
                index: index.map(|i| i.as_str()),
            })
            .collect(),
    }
}

fn row_item(rec: &Recommender, r: crate::RowItem) -> RowItem<'_> {
    RowItem {
        item: item(rec, r.position),
        score: r.score,
        placed_by: r.placed_by.as_str(),
        sources: r
            .sources
            .iter()
            .map(|&(source, rank)| SourceRank {
                source: source.as_str(),
                rank,
            })
            .collect(),
        reason_kind: reason_kind(&r.reason),
        reason: r.reason.text(),
    }
}

/// The name of a reason's kind (`reasonKind`).
pub fn reason_kind(reason: &Reason) -> &'static str {
    match reason {
        Reason::BecauseYouWatched { .. } => "because_you_watched",
        Reason::BecauseYouLike { .. } => "because_you_like",
        Reason::PopularOn { .. } => "popular",
        Reason::TopPick => "top_pick",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(context: ContextOptions) -> RowOptions {
        RowOptions {
            context,
            k: None,
            candidates: None,
            index: None,
            searches: vec![],
            use_ranker: None,
            source: None,
            rerank: None,
        }
    }

    fn tv_at(timestamp: f64) -> ContextOptions {
        ContextOptions {
            device: "tv".into(),
            timestamp,
            utc_offset_minutes: 60,
        }
    }

    #[test]
    fn numbers_are_whole_and_in_range_or_refused() {
        assert_eq!(whole("k", 10.0, 1, 1000).unwrap(), 10);
        for bad in [0.0, 1.5, -1.0, f64::NAN, 1001.0, 4_294_967_356.0] {
            let e = whole("k", bad, 1, 1000).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{bad}");
            assert!(
                e.to_string()
                    .contains("k: must be a whole number from 1 to 1000"),
                "{e}"
            );
        }
        assert!(unix_seconds("t", 1_764_446_400.0).is_ok());
        let ms = unix_seconds("t", 1_764_446_400_000.0).unwrap_err();
        assert_eq!(ms.code(), "invalid_argument");
        assert!(unix_seconds("t", f64::INFINITY).is_err());
    }

    #[test]
    fn versions_are_whole_js_safe_integers() {
        assert_eq!(
            version_number("v", 9_007_199_254_740_991.0).unwrap(),
            (1 << 53) - 1
        );
        assert_eq!(version_number("v", 4_294_967_296.0).unwrap(), 1 << 32);
        for bad in [-1.0, 1.5, 9_007_199_254_740_992.0, f64::NAN] {
            assert_eq!(
                version_number("v", bad).unwrap_err().code(),
                "invalid_argument"
            );
        }
    }

    #[test]
    fn options_become_the_request_they_say() {
        let mut o = options(tv_at(1_764_446_400.0));
        o.k = Some(5.0);
        o.index = Some("flat".into());
        o.source = Some("content".into());
        o.rerank = Some(RerankOptions {
            lambda: Some(0.5),
            fatigue_impressions: None,
            max_per_genre: Some(None),
        });
        let req = o.to_request().unwrap();
        assert_eq!(req.k, Some(5));
        assert_eq!(req.only_source, Some(crate::blend::Source::Content));
        assert_eq!(req.rerank.max_per_genre, Some(None));
        assert!(req.use_ranker);

        o.source = Some("nope".into());
        assert_eq!(o.to_request().unwrap_err().code(), "invalid_argument");
        let mut bad_device = tv_at(1_764_446_400.0);
        bad_device.device = "toaster".into();
        assert_eq!(
            options(bad_device).to_request().unwrap_err().code(),
            "invalid_argument"
        );
        assert!(options(tv_at(1.5)).to_request().is_err());
    }
}
