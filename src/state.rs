//! The on-device user state: watch history, impressions, onboarding picks and settings.
//!
//! [`UserState`] is everything the recommender remembers about one user, kept on the device and
//! saved by the host app as opaque bytes ([`UserState::export`] / [`UserState::import`]). The
//! core does no I/O: where the bytes live (IndexedDB, a file, the TV's flash) is the host's
//! business.
//!
//! ```
//! use edgerec::state::{Progress, UserState};
//! use edgerec::context::Device;
//!
//! let mut state = UserState::new();
//! let t = 1_764_446_400; // unix seconds
//! state.record_impression(&[10, 20, 30], t)?;
//! let at = |fraction, watched_s| Progress { fraction, watched_s, device: Device::Tv };
//! state.record_progress(10, t + 60, at(0.4, 2_400))?;
//! state.record_progress(10, t + 3_600, at(0.95, 5_700))?;
//! assert_eq!(state.plays().len(), 1); // same session window: one play, updated
//! assert_eq!(state.finished_titles(), vec![10]);
//! assert_eq!(state.impressions_without_play(10), 0); // played after it was shown
//! assert_eq!(state.impressions_without_play(20), 1);
//!
//! let bytes = state.export();
//! assert_eq!(UserState::import(&bytes)?, state);
//! let mut corrupt = bytes.clone();
//! corrupt[60] ^= 0x04;
//! assert_eq!(UserState::import(&corrupt).unwrap_err().code(), "corrupt_state");
//! # Ok::<(), edgerec::Error>(())
//! ```
//!
//! # Rules
//!
//! * **Plays** ([`PlayRecord`]) are kept sorted by start time (ties keep recording order).
//!   Progress on a title updates the title's latest play when the new report is no more than
//!   [`SESSION_WINDOW_S`] (6 h) after that play's last update and not before its start;
//!   otherwise it appends a new play started at the report's time. An update keeps the
//!   largest fraction and watched seconds seen (seeking back loses nothing) and the original
//!   start and device. [`UserState::record_completion`] marks the play completed with
//!   fraction 1.
//! * **Finished** means a play above [`WATCHED_ABOVE`] (0.8) of the title, the
//!   rule the ranker and the training data use.
//! * **Impressions** ([`Impression`]) are kept sorted by time. A play of a title marks every
//!   earlier-or-simultaneous impression of it as played; only unplayed impressions count
//!   towards fatigue ([`UserState::impressions_without_play`]).
//!
//! # Bounds and eviction
//!
//! | what | cap | eviction |
//! |---|---|---|
//! | plays | [`MAX_PLAYS`] (2,000) | the oldest *redundant* play first — one whose title has a later play, and, if it was finished, a later finished play; when no play is redundant, the oldest play. So a title loses its latest play or its "finished" status only once no redundant play is left |
//! | impressions | [`MAX_IMPRESSIONS`] (5,000) | every impression more than [`IMPRESSION_TTL_S`] (30 days) older than the newest one is dropped when recording; then the oldest first |
//! | onboarding genres | [`MAX_ONBOARDING_GENRES`], names of 1 ..= [`MAX_NAME_BYTES`] bytes | refused (`invalid_argument`) |
//! | onboarding items | [`MAX_ONBOARDING_ITEMS`] | refused (`invalid_argument`) |
//! | country, language | 1 ..= [`MAX_CODE_BYTES`] ASCII letters, digits or `-` | refused (`invalid_argument`) |
//!
//! So an exported blob is at most [`MAX_EXPORT_BYTES`] (about 130 KB).
//!
//! # Format, version 1
//!
//! All integers little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"ERST"` ([`MAGIC`]) |
//! | 4 | 2 | format version, `1` ([`FORMAT_VERSION`]) |
//! | 6 | 2 | flags, `0` (reserved) |
//! | 8 | 8 | payload length *n* |
//! | 16 | 32 | sha256 of the payload |
//! | 48 | *n* | payload; nothing after it |
//!
//! The payload, in order: settings (maturity `u8`: 0 none or 1 + [`Maturity::rank`]; UTC offset
//! `i32`; preferred device `u8`: 0 none or 1 + position in [`Device::ALL`]; age `u8` presence
//! then `u8`; gender `u8`; country and language each a `u8` presence then a string), onboarding
//! (`u32` count of strings, `u32` count of `u32` item ids), plays (`u32` count, then per play
//! item `u32`, start `i64`, last update `i64`, watched seconds `u32`, fraction `f32`, flags `u8`
//! (bit 0 completed), device `u8`), impressions (`u32` count, then item `u32`, time `i64`,
//! played `u8`). A string is a `u32` byte length and UTF-8 bytes; a presence byte is 0 or 1.
//!
//! [`UserState::import`] checks, in order: magic, version, header length, flags, that the
//! payload length is possible (at most [`MAX_EXPORT_BYTES`] in all) and matches the bytes
//! exactly, the sha256, then parses the payload with every
//! count checked against the bytes left and the caps before anything is allocated, and
//! finally the invariants above. Any failure refuses the whole blob. Every byte sequence has at
//! most one meaning, so `export(import(b)) == b` for every accepted `b`.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use crate::context::{Device, MAX_UTC_OFFSET_MINUTES};
pub use crate::error::StateError;
use crate::error::{Error, Result};
use crate::features::{Gender, History, Maturity, Play, WATCHED_ABOVE};

/// The first four bytes of exported user state.
pub const MAGIC: [u8; 4] = *b"ERST";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Most plays kept (see the module doc for the eviction rule).
pub const MAX_PLAYS: usize = 2_000;
/// Most impressions kept.
pub const MAX_IMPRESSIONS: usize = 5_000;

/// Most seconds one play may report watched: a day. No title plays longer, and a watch of more
/// than 86 seconds given in milliseconds is above it, so the unit mistake is refused.
pub const MAX_WATCHED_SECONDS: u32 = 86_400;
/// Impressions more than this many seconds older than the newest one are dropped (30 days).
pub const IMPRESSION_TTL_S: i64 = 30 * 86_400;
/// Progress within this many seconds of a play's last update continues that play (6 hours).
pub const SESSION_WINDOW_S: i64 = 6 * 3_600;
/// Most genre names picked at onboarding.
pub const MAX_ONBOARDING_GENRES: usize = 64;
/// Most titles picked at onboarding.
pub const MAX_ONBOARDING_ITEMS: usize = 256;
/// Longest genre name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest country or language code, in bytes.
pub const MAX_CODE_BYTES: usize = 16;
/// The size of an export with every cap reached (the longest [`UserState::export`] can be).
pub const MAX_EXPORT_BYTES: usize = HEADER
    + 11 // settings: maturity, offset (4), device, age (2), gender, two presence bytes
    + 2 * (4 + MAX_CODE_BYTES) // country and language
    + 4
    + MAX_ONBOARDING_GENRES * (4 + MAX_NAME_BYTES)
    + 4
    + MAX_ONBOARDING_ITEMS * 4
    + 4
    + MAX_PLAYS * PLAY_BYTES
    + 4
    + MAX_IMPRESSIONS * IMPRESSION_BYTES;

/// Magic, version, flags, payload length, sha256.
pub(crate) const HEADER: usize = 4 + 2 + 2 + 8 + 32;
/// Item, start, update, watched seconds, fraction, flags, device.
const PLAY_BYTES: usize = 4 + 8 + 8 + 4 + 4 + 1 + 1;
/// Item, time, played.
const IMPRESSION_BYTES: usize = 4 + 8 + 1;

/// One play of a title: from its first progress report to its last, within one session window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayRecord {
    /// The title's item id (as in the catalog).
    pub item: u32,
    /// When the play started (the first report), unix seconds.
    pub started: i64,
    /// The latest report, unix seconds; never before `started`.
    pub updated: i64,
    /// Seconds watched in this play (0 when the player reports only fractions).
    pub watched_s: u32,
    /// Largest share of the title reached, finite, in `[0, 1]`.
    pub fraction: f32,
    /// The title played to its end; then `fraction` is 1.
    pub completed: bool,
    /// The device the play started on.
    pub device: Device,
}

impl PlayRecord {
    /// A play above [`WATCHED_ABOVE`] of the title.
    pub fn finished(&self) -> bool {
        self.fraction > WATCHED_ABOVE
    }
}

/// One title shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Impression {
    /// The title's item id.
    pub item: u32,
    /// When it was shown, unix seconds.
    pub time: i64,
    /// A play of the title was recorded at or after `time`.
    pub played: bool,
}

/// A progress report from the player.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Share of the title watched so far in this play, finite, in `[0, 1]`.
    pub fraction: f32,
    /// Seconds watched so far in this play (0 if unknown).
    pub watched_s: u32,
    /// The device playing.
    pub device: Device,
}

/// What the user picked at onboarding. Both lists are duplicate-free, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Onboarding {
    genres: Vec<String>,
    items: Vec<u32>,
}

impl Onboarding {
    /// Genre names (as in the catalog), in the order picked.
    pub fn genres(&self) -> &[String] {
        &self.genres
    }
    /// Item ids, in the order picked.
    pub fn items(&self) -> &[u32] {
        &self.items
    }
}

/// The user's settings and the optional profile fields features may use. Setters validate, so
/// every `Settings` can be exported and imported back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    maturity_limit: Option<Maturity>,
    utc_offset_minutes: i32,
    preferred_device: Option<Device>,
    age: Option<u8>,
    gender: Gender,
    country: Option<String>,
    language: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            maturity_limit: None,
            utc_offset_minutes: 0,
            preferred_device: None,
            age: None,
            gender: Gender::Unknown,
            country: None,
            language: None,
        }
    }
}

impl Settings {
    /// The highest rating this profile may be shown; `None` for no limit.
    pub fn maturity_limit(&self) -> Option<Maturity> {
        self.maturity_limit
    }
    /// Sets the maturity limit.
    pub fn set_maturity_limit(&mut self, limit: Option<Maturity>) {
        self.maturity_limit = limit;
    }
    /// Offset of the user's local time from UTC, minutes (default 0).
    pub fn utc_offset_minutes(&self) -> i32 {
        self.utc_offset_minutes
    }
    /// Sets the UTC offset; fails (`invalid_argument`) beyond ±[`MAX_UTC_OFFSET_MINUTES`].
    pub fn set_utc_offset_minutes(&mut self, minutes: i32) -> Result<()> {
        check_utc_offset(minutes).map_err(Error::InvalidArgument)?;
        self.utc_offset_minutes = minutes;
        Ok(())
    }
    /// The device the user prefers, if they said.
    pub fn preferred_device(&self) -> Option<Device> {
        self.preferred_device
    }
    /// Sets the preferred device.
    pub fn set_preferred_device(&mut self, device: Option<Device>) {
        self.preferred_device = device;
    }
    /// Age in years, if given.
    pub fn age(&self) -> Option<u8> {
        self.age
    }
    /// Sets the age.
    pub fn set_age(&mut self, age: Option<u8>) {
        self.age = age;
    }
    /// Gender, [`Gender::Unknown`] unless given.
    pub fn gender(&self) -> Gender {
        self.gender
    }
    /// Sets the gender.
    pub fn set_gender(&mut self, gender: Gender) {
        self.gender = gender;
    }
    /// Country code (ISO 3166-1 alpha-2 expected, not checked against a list).
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
    /// Sets the country; fails (`invalid_argument`) unless 1 ..= [`MAX_CODE_BYTES`] ASCII
    /// letters, digits or `-`.
    pub fn set_country(&mut self, country: Option<&str>) -> Result<()> {
        if let Some(c) = country {
            check_code(c).map_err(Error::InvalidArgument)?;
        }
        self.country = country.map(str::to_owned);
        Ok(())
    }
    /// Language code (ISO 639-1 or a BCP 47 tag such as `pt-BR`).
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }
    /// Sets the language; same rule as [`Settings::set_country`].
    pub fn set_language(&mut self, language: Option<&str>) -> Result<()> {
        if let Some(l) = language {
            check_code(l).map_err(Error::InvalidArgument)?;
        }
        self.language = language.map(str::to_owned);
        Ok(())
    }
}

/// Everything kept about one user on the device. See the module doc for the rules and caps.
///
/// Invariants (kept by every method, checked by [`UserState::import`]): plays sorted by
/// `started`, at most [`MAX_PLAYS`], each with `started <= updated`, a finite fraction in
/// `[0, 1]` and fraction 1 when completed; impressions sorted by `time`, at most
/// [`MAX_IMPRESSIONS`], spanning at most [`IMPRESSION_TTL_S`]; onboarding and settings within
/// their documented bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    plays: Vec<PlayRecord>,
    impressions: Vec<Impression>,
    onboarding: Onboarding,
    settings: Settings,
}

impl UserState {
    /// An empty state: no plays, impressions or picks, default settings.
    pub fn new() -> UserState {
        UserState::default()
    }

    /// Records that the user has watched `fraction` of `item` as of `time` (unix seconds), on
    /// an unknown device with unknown seconds: [`UserState::record_progress`] with
    /// `watched_s = 0`, `device = Device::Unknown`.
    pub fn record_play(&mut self, item: u32, time: i64, fraction: f32) -> Result<()> {
        self.record_progress(
            item,
            time,
            Progress {
                fraction,
                watched_s: 0,
                device: Device::Unknown,
            },
        )
    }

    /// Records a progress report: updates the title's latest play if the report falls in its
    /// session window (`started <= time <= updated + SESSION_WINDOW_S`), else appends a new
    /// play started at `time` (then evicts per the module doc if over [`MAX_PLAYS`]). Marks
    /// the title's impressions at or before `time` as played. Fails (`invalid_argument`) if
    /// the fraction is not finite or outside `[0, 1]`; the state is then unchanged.
    /// O(plays + impressions).
    pub fn record_progress(&mut self, item: u32, time: i64, progress: Progress) -> Result<()> {
        check_time(time)?;
        if let Err((_, reason)) = check_progress(progress.watched_s, progress.fraction) {
            return Err(Error::InvalidArgument(reason));
        }
        self.upsert(item, time, progress, false);
        Ok(())
    }

    /// Records that `item` played to its end at `time`: the play in the session window (or a
    /// new one) becomes completed with fraction 1. Otherwise as [`UserState::record_progress`].
    pub fn record_completion(&mut self, item: u32, time: i64, device: Device) -> Result<()> {
        check_time(time)?;
        let progress = Progress {
            fraction: 1.0,
            watched_s: 0,
            device,
        };
        self.upsert(item, time, progress, true);
        Ok(())
    }

    fn upsert(&mut self, item: u32, time: i64, progress: Progress, completed: bool) {
        // `+ 0.0` folds -0.0 into 0.0 so equal states export equal bytes.
        let fraction = progress.fraction + 0.0;
        let latest = self.plays.iter_mut().rev().find(|p| p.item == item);
        match latest {
            Some(p) if p.started <= time && time.saturating_sub(p.updated) <= SESSION_WINDOW_S => {
                p.updated = p.updated.max(time);
                p.fraction = p.fraction.max(fraction);
                p.watched_s = p.watched_s.max(progress.watched_s);
                p.completed |= completed;
            }
            _ => {
                let play = PlayRecord {
                    item,
                    started: time,
                    updated: time,
                    watched_s: progress.watched_s,
                    fraction,
                    completed,
                    device: progress.device,
                };
                let at = self.plays.partition_point(|p| p.started <= time);
                self.plays.insert(at, play);
                while self.plays.len() > MAX_PLAYS {
                    let victim = self.eviction_victim();
                    self.plays.remove(victim);
                }
            }
        }
        for imp in &mut self.impressions {
            if imp.item == item && imp.time <= time {
                imp.played = true;
            }
        }
    }

    /// The position of the play to evict: the oldest redundant one, else the oldest.
    fn eviction_victim(&self) -> usize {
        let mut later = HashSet::new();
        let mut later_finished = HashSet::new();
        let mut victim = 0;
        for (i, p) in self.plays.iter().enumerate().rev() {
            let redundant =
                later.contains(&p.item) && (!p.finished() || later_finished.contains(&p.item));
            if redundant {
                victim = i;
            }
            later.insert(p.item);
            if p.finished() {
                later_finished.insert(p.item);
            }
        }
        victim
    }

    /// Records that `items` were shown at `time`. First drops impressions more than
    /// [`IMPRESSION_TTL_S`] older than the newest impression (this one included; a showing
    /// that old is itself not recorded), then keeps the newest [`MAX_IMPRESSIONS`]. A new
    /// impression starts unplayed unless a kept play of the title reached `time` or later
    /// (reports arriving out of order). O(impressions + items × plays).
    pub fn record_impression(&mut self, items: &[u32], time: i64) -> Result<()> {
        check_time(time)?;
        let newest = self.impressions.last().map_or(time, |i| i.time.max(time));
        let cutoff = newest.saturating_sub(IMPRESSION_TTL_S);
        if time < cutoff {
            return Ok(());
        }
        self.impressions.retain(|i| i.time >= cutoff);
        let at = self.impressions.partition_point(|i| i.time <= time);
        let plays = &self.plays;
        let new = items.iter().map(|&item| Impression {
            item,
            time,
            played: plays.iter().any(|p| p.item == item && p.updated >= time),
        });
        self.impressions.splice(at..at, new);
        let excess = self.impressions.len().saturating_sub(MAX_IMPRESSIONS);
        self.impressions.drain(..excess);
        Ok(())
    }

    /// Replaces the onboarding picks. Duplicates are dropped (the first kept). Fails
    /// (`invalid_argument`, state unchanged) beyond [`MAX_ONBOARDING_GENRES`] or
    /// [`MAX_ONBOARDING_ITEMS`] distinct picks, or for a genre name that is empty or longer
    /// than [`MAX_NAME_BYTES`].
    pub fn set_onboarding<S: AsRef<str>>(&mut self, genres: &[S], items: &[u32]) -> Result<()> {
        let mut g: Vec<String> = Vec::new();
        for name in genres {
            let name = name.as_ref();
            check_name(name).map_err(Error::InvalidArgument)?;
            if !g.iter().any(|x| x == name) {
                g.push(name.to_owned());
            }
        }
        let mut it: Vec<u32> = Vec::new();
        for &i in items {
            if !it.contains(&i) {
                it.push(i);
            }
        }
        let onboarding = Onboarding {
            genres: g,
            items: it,
        };
        check_onboarding(&onboarding).map_err(Error::InvalidArgument)?;
        self.onboarding = onboarding;
        Ok(())
    }

    /// The onboarding picks.
    pub fn onboarding(&self) -> &Onboarding {
        &self.onboarding
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings, to change (setters validate).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Every play, oldest first.
    pub fn plays(&self) -> &[PlayRecord] {
        &self.plays
    }

    /// Every impression kept, oldest first.
    pub fn impressions(&self) -> &[Impression] {
        &self.impressions
    }

    /// Titles with a finished play (above [`WATCHED_ABOVE`]), each once, most recently
    /// finished first (ties: the later-recorded play first). O(plays).
    pub fn finished_titles(&self) -> Vec<u32> {
        let mut seen = HashSet::new();
        self.plays
            .iter()
            .rev()
            .filter(|p| p.finished() && seen.insert(p.item))
            .map(|p| p.item)
            .collect()
    }

    /// The item of every play, oldest first, repeats included (one entry per play, finished
    /// or not) — the `history` argument of [`crate::Recommender::recommend`]. Filter with
    /// [`UserState::plays`] for another rule.
    pub fn history_oldest_first(&self) -> Vec<u32> {
        self.plays.iter().map(|p| p.item).collect()
    }

    /// How often `item` was shown with no play of it at or after the showing. O(impressions).
    pub fn impressions_without_play(&self, item: u32) -> usize {
        self.impressions
            .iter()
            .filter(|i| i.item == item && !i.played)
            .count()
    }

    /// Titles shown at least `min_shown` times without a play since (fatigue), ascending by
    /// item id. `min_shown = 0` is treated as 1. O(impressions log impressions).
    pub fn fatigued_titles(&self, min_shown: usize) -> Vec<u32> {
        self.unplayed_impressions()
            .into_iter()
            .filter(|&(_, n)| n as usize >= min_shown.max(1))
            .map(|(item, _)| item)
            .collect()
    }

    /// `(item, impressions without a play since)` for every title shown and not played,
    /// ascending by item id — what [`crate::rerank::RerankRequest::impressions`] takes.
    /// O(impressions log impressions).
    pub fn unplayed_impressions(&self) -> Vec<(u32, u32)> {
        let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
        for i in self.impressions.iter().filter(|i| !i.played) {
            *counts.entry(i.item).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// The plays as the feature code's [`History`]. `media_index` maps an item id to its index
    /// in the media table the features use; plays of unmapped items are skipped. Each play
    /// becomes its own session (session id = its position among the plays, oldest first):
    /// the state does not group plays into sessions, so `user.avg_session` computed from this
    /// history is the average per play, not per visit.
    pub fn to_history(&self, media_index: impl Fn(u32) -> Option<u32>) -> History {
        History::new(
            self.plays
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    Some(Play {
                        media: media_index(p.item)?,
                        time: p.started,
                        device: p.device,
                        session: i as u64,
                        watched_s: p.watched_s,
                        fraction: p.fraction,
                    })
                })
                .collect(),
        )
    }

    /// The state as versioned, checksummed bytes (format in the module doc). Deterministic:
    /// equal states give equal bytes. O(size).
    pub fn export(&self) -> Vec<u8> {
        let mut w = Vec::new();
        let s = &self.settings;
        w.push(s.maturity_limit.map_or(0, |m| 1 + m.rank()));
        w.extend_from_slice(&s.utc_offset_minutes.to_le_bytes());
        w.push(s.preferred_device.map_or(0, |d| 1 + device_code(d)));
        put_opt(&mut w, s.age.map(|a| vec![a]));
        w.push(gender_code(s.gender));
        put_opt(&mut w, s.country.as_deref().map(str_bytes));
        put_opt(&mut w, s.language.as_deref().map(str_bytes));

        put_len(&mut w, self.onboarding.genres.len());
        for g in &self.onboarding.genres {
            w.extend_from_slice(&str_bytes(g));
        }
        put_len(&mut w, self.onboarding.items.len());
        for i in &self.onboarding.items {
            w.extend_from_slice(&i.to_le_bytes());
        }

        put_len(&mut w, self.plays.len());
        for p in &self.plays {
            w.extend_from_slice(&p.item.to_le_bytes());
            w.extend_from_slice(&p.started.to_le_bytes());
            w.extend_from_slice(&p.updated.to_le_bytes());
            w.extend_from_slice(&p.watched_s.to_le_bytes());
            w.extend_from_slice(&p.fraction.to_le_bytes());
            w.push(u8::from(p.completed));
            w.push(device_code(p.device));
        }
        put_len(&mut w, self.impressions.len());
        for i in &self.impressions {
            w.extend_from_slice(&i.item.to_le_bytes());
            w.extend_from_slice(&i.time.to_le_bytes());
            w.push(u8::from(i.played));
        }

        seal(&w)
    }

    /// Reads bytes written by [`UserState::export`]. Refuses the whole blob, never panicking
    /// and never allocating more than the blob's own size, with `unsupported_state_version`
    /// for a newer format and `corrupt_state` for anything else (wrong magic, truncated,
    /// trailing bytes, checksum mismatch, malformed payload, broken invariants). O(size).
    pub fn import(bytes: &[u8]) -> Result<UserState> {
        Ok(import(bytes)?)
    }

    /// Checks the invariants listed on [`UserState`].
    fn check(&self) -> std::result::Result<(), String> {
        let s = &self.settings;
        check_utc_offset(s.utc_offset_minutes)?;
        for code in [&s.country, &s.language].into_iter().flatten() {
            check_code(code)?;
        }
        check_onboarding(&self.onboarding)?;
        for g in &self.onboarding.genres {
            check_name(g)?;
        }
        if self.plays.len() > MAX_PLAYS {
            return Err(format!("{} plays, cap {MAX_PLAYS}", self.plays.len()));
        }
        for (i, p) in self.plays.iter().enumerate() {
            if i > 0 && self.plays[i - 1].started > p.started {
                return Err(format!("play {i} starts before play {}", i - 1));
            }
            if p.updated < p.started {
                return Err(format!("play {i} updated before it started"));
            }
            if !(0.0..=1.0).contains(&p.fraction) {
                return Err(format!("play {i} has fraction {}", p.fraction));
            }
            if p.fraction.to_bits() == (-0.0f32).to_bits() {
                return Err(format!("play {i} has fraction -0"));
            }
            if p.completed && p.fraction != 1.0 {
                return Err(format!("play {i} completed with fraction {}", p.fraction));
            }
        }
        if self.impressions.len() > MAX_IMPRESSIONS {
            return Err(format!(
                "{} impressions, cap {MAX_IMPRESSIONS}",
                self.impressions.len()
            ));
        }
        if self.impressions.windows(2).any(|w| w[0].time > w[1].time) {
            return Err("impressions are not sorted by time".into());
        }
        if let (Some(first), Some(last)) = (self.impressions.first(), self.impressions.last())
            && first.time < last.time.saturating_sub(IMPRESSION_TTL_S)
        {
            return Err(format!(
                "impressions span more than {IMPRESSION_TTL_S} seconds"
            ));
        }
        Ok(())
    }
}

/// `payload` in the current format's envelope: magic, version, reserved, length, sha256.
pub(crate) fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// Refuses a time outside [`crate::limits::MIN_TIME`]`..=`[`crate::limits::MAX_TIME`].
/// A progress report's bounds (watched seconds at most [`MAX_WATCHED_SECONDS`], fraction in
/// `0..=1`): the offending field's wire name and what is wrong. The state's `record_*` and the
/// event model ([`crate::events`]) hold reports to the same bounds.
pub(crate) fn check_progress(
    watched_s: u32,
    fraction: f32,
) -> std::result::Result<(), (&'static str, String)> {
    if watched_s > MAX_WATCHED_SECONDS {
        return Err((
            "watchedS",
            format!(
                "watched seconds {watched_s} above {MAX_WATCHED_SECONDS} (a day; milliseconds?)"
            ),
        ));
    }
    if !(0.0..=1.0).contains(&fraction) {
        return Err((
            "fraction",
            format!("fraction must be within 0..=1, got {fraction}"),
        ));
    }
    Ok(())
}

fn check_time(time: i64) -> Result<()> {
    if crate::limits::time_in_range(time) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(crate::limits::time_error(
            "time", time,
        )))
    }
}

fn check_utc_offset(minutes: i32) -> std::result::Result<(), String> {
    if minutes.unsigned_abs() > MAX_UTC_OFFSET_MINUTES.unsigned_abs() {
        return Err(format!(
            "utcOffsetMinutes {minutes} is beyond ±{MAX_UTC_OFFSET_MINUTES}"
        ));
    }
    Ok(())
}

fn check_code(code: &str) -> std::result::Result<(), String> {
    let ok = (1..=MAX_CODE_BYTES).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "code {code:?} must be 1..={MAX_CODE_BYTES} ASCII letters, digits or '-'"
        ))
    }
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    if (1..=MAX_NAME_BYTES).contains(&name.len()) {
        Ok(())
    } else {
        Err(format!(
            "genre name of {} bytes (must be 1..={MAX_NAME_BYTES})",
            name.len()
        ))
    }
}

fn check_onboarding(o: &Onboarding) -> std::result::Result<(), String> {
    if o.genres.len() > MAX_ONBOARDING_GENRES {
        return Err(format!(
            "{} onboarding genres, cap {MAX_ONBOARDING_GENRES}",
            o.genres.len()
        ));
    }
    if o.items.len() > MAX_ONBOARDING_ITEMS {
        return Err(format!(
            "{} onboarding items, cap {MAX_ONBOARDING_ITEMS}",
            o.items.len()
        ));
    }
    let mut genres = HashSet::new();
    if !o.genres.iter().all(|g| genres.insert(g)) {
        return Err("duplicate onboarding genre".into());
    }
    let mut items = HashSet::new();
    if !o.items.iter().all(|i| items.insert(i)) {
        return Err("duplicate onboarding item".into());
    }
    Ok(())
}

fn device_code(d: Device) -> u8 {
    Device::ALL.iter().position(|&x| x == d).unwrap_or(0) as u8
}

const GENDERS: [Gender; 4] = Gender::ALL;

fn gender_code(g: Gender) -> u8 {
    GENDERS.iter().position(|&x| x == g).unwrap_or(3) as u8
}

fn put_len(w: &mut Vec<u8>, n: usize) {
    // Every length is bounded by a cap far below u32::MAX.
    w.extend_from_slice(&(n as u32).to_le_bytes());
}

fn str_bytes(s: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + s.len());
    put_len(&mut b, s.len());
    b.extend_from_slice(s.as_bytes());
    b
}

fn put_opt(w: &mut Vec<u8>, v: Option<Vec<u8>>) {
    match v {
        None => w.push(0),
        Some(b) => {
            w.push(1);
            w.extend_from_slice(&b);
        }
    }
}

fn import(bytes: &[u8]) -> std::result::Result<UserState, StateError> {
    let truncated = |needed: usize| StateError::Truncated {
        needed: needed as u64,
        available: bytes.len() as u64,
    };
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(StateError::BadMagic);
    }
    if bytes.len() < 6 {
        return Err(truncated(6));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(StateError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if bytes.len() < HEADER {
        return Err(truncated(HEADER));
    }
    let mut header = Reader::new(&bytes[6..HEADER]);
    if header.u16()? != 0 {
        return Err(StateError::Malformed("reserved flags are not zero".into()));
    }
    let len = header.u64()?;
    if len > (MAX_EXPORT_BYTES - HEADER) as u64 {
        return Err(malformed(format!(
            "payload of {len} bytes is over the {} a state can need",
            MAX_EXPORT_BYTES - HEADER
        )));
    }
    let payload = &bytes[HEADER..];
    if len > payload.len() as u64 {
        return Err(StateError::Truncated {
            needed: (HEADER as u64).saturating_add(len),
            available: bytes.len() as u64,
        });
    }
    if len < payload.len() as u64 {
        return Err(StateError::Malformed(format!(
            "{} unexpected trailing bytes",
            payload.len() as u64 - len
        )));
    }
    if Sha256::digest(payload)[..] != bytes[16..HEADER] {
        return Err(StateError::ChecksumMismatch);
    }
    let state = parse(payload)?;
    state.check().map_err(StateError::Malformed)?;
    Ok(state)
}

fn parse(payload: &[u8]) -> std::result::Result<UserState, StateError> {
    let mut r = Reader::new(payload);
    let maturity_limit = match r.u8()? {
        0 => None,
        m => Some(
            *Maturity::ALL
                .get(usize::from(m) - 1)
                .ok_or_else(|| malformed(format!("maturity code {m}")))?,
        ),
    };
    let utc_offset_minutes = r.i32()?;
    let preferred_device = match r.u8()? {
        0 => None,
        d => Some(r.device(d - 1)?),
    };
    let age = r.opt(|r| r.u8())?;
    let g = r.u8()?;
    let gender = *GENDERS
        .get(usize::from(g))
        .ok_or_else(|| malformed(format!("gender code {g}")))?;
    let settings = Settings {
        maturity_limit,
        utc_offset_minutes,
        preferred_device,
        age,
        gender,
        country: r.opt(|r| r.str(MAX_CODE_BYTES))?,
        language: r.opt(|r| r.str(MAX_CODE_BYTES))?,
    };

    let n = r.len(4, MAX_ONBOARDING_GENRES)?;
    let genres = (0..n)
        .map(|_| r.str(MAX_NAME_BYTES))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n = r.len(4, MAX_ONBOARDING_ITEMS)?;
    let items = (0..n)
        .map(|_| r.u32())
        .collect::<std::result::Result<Vec<_>, _>>()?;

    let n = r.len(PLAY_BYTES, MAX_PLAYS)?;
    let mut plays = Vec::with_capacity(n);
    for _ in 0..n {
        let item = r.u32()?;
        let started = r.time("play start")?;
        let updated = r.time("play update")?;
        let watched_s = r.u32()?;
        if watched_s > MAX_WATCHED_SECONDS {
            return Err(malformed(format!(
                "play watched {watched_s} s, above {MAX_WATCHED_SECONDS}"
            )));
        }
        let fraction = r.f32()?;
        let completed = r.bool()?;
        let d = r.u8()?;
        plays.push(PlayRecord {
            item,
            started,
            updated,
            watched_s,
            fraction,
            completed,
            device: r.device(d)?,
        });
    }
    let n = r.len(IMPRESSION_BYTES, MAX_IMPRESSIONS)?;
    let mut impressions = Vec::with_capacity(n);
    for _ in 0..n {
        impressions.push(Impression {
            item: r.u32()?,
            time: r.time("impression time")?,
            played: r.bool()?,
        });
    }
    r.finish()?;
    Ok(UserState {
        plays,
        impressions,
        onboarding: Onboarding { genres, items },
        settings,
    })
}

fn malformed(reason: impl Into<String>) -> StateError {
    StateError::Malformed(reason.into())
}

/// Bounded little-endian reads over the payload.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], StateError> {
        let rest = &self.bytes[self.pos..];
        if n > rest.len() {
            return Err(malformed(format!(
                "needs {n} bytes at offset {} but only {} remain",
                self.pos,
                rest.len()
            )));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], StateError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> std::result::Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, StateError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> std::result::Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> std::result::Result<i32, StateError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> std::result::Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A time within [`crate::limits::MIN_TIME`]`..=`[`crate::limits::MAX_TIME`].
    fn time(&mut self, field: &str) -> std::result::Result<i64, StateError> {
        let t = i64::from_le_bytes(self.array()?);
        if crate::limits::time_in_range(t) {
            Ok(t)
        } else {
            Err(malformed(crate::limits::time_error(field, t)))
        }
    }
    fn f32(&mut self) -> std::result::Result<f32, StateError> {
        let v = f32::from_le_bytes(self.array()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(malformed("non-finite fraction"))
        }
    }
    fn bool(&mut self) -> std::result::Result<bool, StateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(malformed(format!("flag byte {b}"))),
        }
    }
    fn device(&self, code: u8) -> std::result::Result<Device, StateError> {
        Device::ALL
            .get(usize::from(code))
            .copied()
            .ok_or_else(|| malformed(format!("device code {code}")))
    }
    /// A presence byte (0 or 1), then the value when present.
    fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> std::result::Result<T, StateError>,
    ) -> std::result::Result<Option<T>, StateError> {
        if self.bool()? {
            Ok(Some(read(self)?))
        } else {
            Ok(None)
        }
    }
    /// A `u32` count, refused above `cap` or when `count * min_bytes` exceeds what is left,
    /// so the caller may allocate `count` elements.
    fn len(&mut self, min_bytes: usize, cap: usize) -> std::result::Result<usize, StateError> {
        let n = self.u32()? as usize;
        let left = self.bytes.len() - self.pos;
        if n > cap {
            return Err(malformed(format!("count {n} exceeds the cap {cap}")));
        }
        if n.saturating_mul(min_bytes) > left {
            return Err(malformed(format!(
                "count {n} exceeds the {left} bytes left"
            )));
        }
        Ok(n)
    }
    /// A string of at most `max` bytes.
    fn str(&mut self, max: usize) -> std::result::Result<String, StateError> {
        let n = self.len(1, max)?;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| malformed("string is not valid UTF-8"))
    }
    fn finish(self) -> std::result::Result<(), StateError> {
        let left = self.bytes.len() - self.pos;
        if left == 0 {
            Ok(())
        } else {
            Err(malformed(format!("{left} unexpected trailing bytes")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec as pvec;
    use proptest::prelude::*;

    const T: i64 = 1_764_446_400;
    const HOUR: i64 = 3_600;

    fn progress(fraction: f32) -> Progress {
        Progress {
            fraction,
            watched_s: (fraction * 6_000.0) as u32,
            device: Device::Tv,
        }
    }

    /// Wraps a payload in a header with a correct length and checksum.
    fn sample() -> UserState {
        let mut s = UserState::new();
        s.record_impression(&[1, 2, 3], T).unwrap();
        s.record_progress(1, T + 10, progress(0.5)).unwrap();
        s.record_completion(2, T + 20, Device::Mobile).unwrap();
        s.set_onboarding(&["Comedy", "Drama"], &[7]).unwrap();
        let st = s.settings_mut();
        st.set_maturity_limit(Some(Maturity::Pg13));
        st.set_utc_offset_minutes(-300).unwrap();
        st.set_preferred_device(Some(Device::Tv));
        st.set_age(Some(34));
        st.set_gender(Gender::Other);
        st.set_country(Some("US")).unwrap();
        st.set_language(Some("en")).unwrap();
        s
    }

    /// The version-1 export of [`sample`], pinned: changing the payload layout must bump
    /// [`FORMAT_VERSION`] and keep a test that reads these bytes (or refuses them as
    /// `unsupported_state_version`).
    const GOLDEN_V1: &str = concat!(
        "4552535401000000a1000000000000000bc0c3f878cb9fe89bd335f906bacaad9ca3a9f21c4ddff7",
        "0135f32944f35ffd03d4feffff01012202010200000055530102000000656e020000000600000043",
        "6f6d656479050000004472616d6101000000070000000200000001000000ca502b6900000000ca50",
        "2b6900000000b80b00000000003f000002000000d4502b6900000000d4502b690000000000000000",
        "0000803f01020300000001000000c0502b69000000000102000000c0502b69000000000103000000",
        "c0502b690000000000",
    );

    fn code(bytes: &[u8]) -> &'static str {
        UserState::import(bytes).unwrap_err().code()
    }

    #[test]
    fn format_v1_bytes_are_pinned() {
        let golden: Vec<u8> = (0..GOLDEN_V1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&GOLDEN_V1[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(FORMAT_VERSION, 1);
        assert_eq!(UserState::import(&golden).unwrap(), sample());
        assert_eq!(sample().export(), golden);
    }

    #[test]
    fn progress_in_the_session_window_updates_the_latest_play() {
        let mut s = UserState::new();
        s.record_progress(5, T, progress(0.3)).unwrap();
        s.record_progress(5, T + SESSION_WINDOW_S, progress(0.6))
            .unwrap();
        // A seek back keeps the furthest point reached.
        s.record_progress(5, T + SESSION_WINDOW_S + 60, progress(0.2))
            .unwrap();
        assert_eq!(s.plays().len(), 1);
        let p = s.plays()[0];
        assert_eq!((p.started, p.updated), (T, T + SESSION_WINDOW_S + 60));
        assert_eq!(p.fraction, 0.6);
        assert_eq!(p.watched_s, 3_600);
        assert!(!p.completed);
    }

    #[test]
    fn progress_after_the_window_or_before_the_start_appends() {
        let mut s = UserState::new();
        s.record_progress(5, T, progress(0.3)).unwrap();
        s.record_progress(5, T + SESSION_WINDOW_S + 1, progress(0.1))
            .unwrap();
        assert_eq!(s.plays().len(), 2);
        // A report older than the latest play's start is another, earlier play.
        s.record_progress(5, T - HOUR, progress(0.9)).unwrap();
        let starts: Vec<i64> = s.plays().iter().map(|p| p.started).collect();
        assert_eq!(starts, vec![T - HOUR, T, T + SESSION_WINDOW_S + 1]);
        // Only the latest play of a title is ever continued.
        s.record_progress(5, T + 60, progress(0.5)).unwrap();
        assert_eq!(s.plays().len(), 4);
    }

    #[test]
    fn completion_marks_the_play_and_sets_fraction_one() {
        let mut s = UserState::new();
        s.record_progress(5, T, progress(0.7)).unwrap();
        s.record_completion(5, T + 2 * HOUR, Device::Tv).unwrap();
        assert_eq!(s.plays().len(), 1);
        assert!(s.plays()[0].completed);
        assert_eq!(s.plays()[0].fraction, 1.0);
        assert_eq!(s.plays()[0].watched_s, 4_200);
        // A completion with no play in the window is a play of its own.
        s.record_completion(6, T, Device::Desktop).unwrap();
        assert_eq!(s.plays().len(), 2);
        assert_eq!(s.finished_titles(), vec![6, 5]);
    }

    #[test]
    fn bad_fractions_are_refused_and_change_nothing() {
        let mut s = sample();
        let before = s.clone();
        for f in [f32::NAN, f32::INFINITY, -0.1, 1.0001] {
            let e = s.record_play(1, T + 30, f).unwrap_err();
            assert_eq!(e.code(), "invalid_argument");
        }
        assert_eq!(s, before);
        s.record_play(9, T, -0.0).unwrap();
        let p = s.plays().iter().find(|p| p.item == 9).unwrap();
        assert_eq!(p.fraction.to_bits(), 0);
    }

    #[test]
    fn finished_means_above_the_ranker_threshold() {
        let mut s = UserState::new();
        s.record_play(1, T, WATCHED_ABOVE).unwrap();
        s.record_play(2, T + 1, 0.81).unwrap();
        s.record_play(3, T + 2, 0.95).unwrap();
        s.record_play(2, T + 3 * SESSION_WINDOW_S, 0.1).unwrap(); // a partial rewatch
        assert_eq!(s.finished_titles(), vec![3, 2]);
        assert_eq!(s.history_oldest_first(), vec![1, 2, 3, 2]);
    }

    #[test]
    fn eviction_drops_the_oldest_play_when_none_is_redundant() {
        let mut s = UserState::new();
        for i in 0..=MAX_PLAYS as u32 {
            s.record_play(i, T + i64::from(i), 0.5).unwrap();
        }
        assert_eq!(s.plays().len(), MAX_PLAYS);
        assert_eq!(s.plays()[0].item, 1);
        assert_eq!(s.plays().last().unwrap().item, MAX_PLAYS as u32);
    }

    #[test]
    fn eviction_prefers_redundant_plays_and_keeps_finished_status() {
        let mut s = UserState::new();
        // Title 0: finished, then a partial rewatch — the finished play is not redundant.
        s.record_play(0, T, 0.9).unwrap();
        s.record_play(0, T + 1 + SESSION_WINDOW_S, 0.1).unwrap();
        // Title 1: partial, then finished — the partial play is redundant.
        s.record_play(1, T + 2 * SESSION_WINDOW_S, 0.3).unwrap();
        s.record_play(1, T + 4 * SESSION_WINDOW_S, 0.9).unwrap();
        let base = T + 10 * SESSION_WINDOW_S;
        for i in 0..(MAX_PLAYS - 4) as u32 {
            s.record_play(100 + i, base + i64::from(i), 0.5).unwrap();
        }
        assert_eq!(s.plays().len(), MAX_PLAYS);
        s.record_play(99_999, base + 10 * MAX_PLAYS as i64, 0.5)
            .unwrap();
        let firsts: Vec<(u32, f32)> = s.plays()[..3]
            .iter()
            .map(|p| (p.item, p.fraction))
            .collect();
        assert_eq!(firsts, vec![(0, 0.9), (0, 0.1), (1, 0.9)]);
        // Nothing redundant is left: the oldest play goes next, then the next oldest.
        s.record_play(99_998, base + 11 * MAX_PLAYS as i64, 0.5)
            .unwrap();
        assert_eq!((s.plays()[0].item, s.plays()[0].fraction), (0, 0.1));
        assert_eq!(s.finished_titles().last(), Some(&1));
        assert_eq!(s.plays().len(), MAX_PLAYS);
    }

    #[test]
    fn fatigue_counts_only_impressions_not_followed_by_a_play() {
        let mut s = UserState::new();
        for k in 0..3 {
            s.record_impression(&[1, 2], T + k * HOUR).unwrap();
        }
        assert_eq!(s.impressions_without_play(1), 3);
        s.record_play(1, T + 3 * HOUR, 0.2).unwrap();
        assert_eq!(s.impressions_without_play(1), 0);
        s.record_impression(&[1], T + 4 * HOUR).unwrap();
        s.record_impression(&[1], T + 5 * HOUR).unwrap();
        assert_eq!(s.impressions_without_play(1), 2);
        assert_eq!(s.impressions_without_play(2), 3);
        assert_eq!(s.impressions_without_play(3), 0);
        assert_eq!(s.fatigued_titles(3), vec![2]);
        assert_eq!(s.fatigued_titles(2), vec![1, 2]);
        assert_eq!(s.fatigued_titles(0), vec![1, 2]);
        // Progress on the same play (within the window) also counts as a play after them.
        s.record_play(1, T + 6 * HOUR, 0.5).unwrap();
        assert_eq!(s.impressions_without_play(1), 0);
        // A showing reported late, before a play we already have, counts as played.
        s.record_impression(&[2], T + 3 * HOUR).unwrap();
        s.record_play(2, T + 7 * HOUR, 0.5).unwrap();
        s.record_impression(&[2], T + 6 * HOUR).unwrap();
        assert_eq!(s.impressions_without_play(2), 0);
    }

    #[test]
    fn impressions_expire_after_the_ttl_and_respect_the_cap() {
        let mut s = UserState::new();
        s.record_impression(&[1], T).unwrap();
        s.record_impression(&[2], T + IMPRESSION_TTL_S).unwrap();
        assert_eq!(s.impressions().len(), 2);
        s.record_impression(&[3], T + IMPRESSION_TTL_S + 1).unwrap();
        let items: Vec<u32> = s.impressions().iter().map(|i| i.item).collect();
        assert_eq!(items, vec![2, 3]);
        // Too old to matter: not recorded.
        s.record_impression(&[4], T).unwrap();
        assert_eq!(s.impressions().len(), 2);
        // A late report inside the window is kept in time order.
        s.record_impression(&[5], T + IMPRESSION_TTL_S / 2).unwrap();
        let items: Vec<u32> = s.impressions().iter().map(|i| i.item).collect();
        assert_eq!(items, vec![5, 2, 3]);

        let many: Vec<u32> = (0..MAX_IMPRESSIONS as u32 + 10).collect();
        s.record_impression(&many, T + IMPRESSION_TTL_S + 2)
            .unwrap();
        assert_eq!(s.impressions().len(), MAX_IMPRESSIONS);
        assert_eq!(s.impressions()[0].item, 10);
        assert!(s.check().is_ok());
    }

    #[test]
    fn onboarding_is_deduplicated_and_bounded() {
        let mut s = UserState::new();
        s.set_onboarding(&["Drama", "Comedy", "Drama"], &[3, 1, 3])
            .unwrap();
        assert_eq!(s.onboarding().genres(), ["Drama", "Comedy"]);
        assert_eq!(s.onboarding().items(), [3, 1]);
        let before = s.clone();
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(s.set_onboarding(&[long.as_str()], &[]).is_err());
        assert!(s.set_onboarding(&[""], &[]).is_err());
        let too_many: Vec<String> = (0..=MAX_ONBOARDING_GENRES)
            .map(|i| format!("g{i}"))
            .collect();
        assert!(s.set_onboarding(&too_many, &[]).is_err());
        let items: Vec<u32> = (0..=MAX_ONBOARDING_ITEMS as u32).collect();
        assert!(s.set_onboarding::<&str>(&[], &items).is_err());
        assert_eq!(s, before);
    }

    #[test]
    fn settings_setters_validate() {
        let mut s = UserState::new();
        let st = s.settings_mut();
        assert!(
            st.set_utc_offset_minutes(MAX_UTC_OFFSET_MINUTES + 1)
                .is_err()
        );
        assert!(st.set_utc_offset_minutes(i32::MIN).is_err());
        st.set_utc_offset_minutes(-MAX_UTC_OFFSET_MINUTES).unwrap();
        assert!(st.set_country(Some("")).is_err());
        assert!(st.set_country(Some("U S")).is_err());
        assert!(
            st.set_language(Some(&"a".repeat(MAX_CODE_BYTES + 1)))
                .is_err()
        );
        st.set_language(Some("pt-BR")).unwrap();
        assert_eq!(s.settings().language(), Some("pt-BR"));
        assert_eq!(s.settings().utc_offset_minutes(), -MAX_UTC_OFFSET_MINUTES);
        assert_eq!(s.settings().country(), None);
        assert_eq!(s.settings().gender(), Gender::Unknown);
    }

    #[test]
    fn to_history_maps_items_and_skips_unknown_ones() {
        let s = sample();
        let h = s.to_history(|item| (item == 2).then_some(0));
        assert_eq!(h.plays().len(), 1);
        let p = h.plays()[0];
        assert_eq!(
            (p.media, p.time, p.device, p.fraction),
            (0, T + 20, Device::Mobile, 1.0)
        );
    }

    #[test]
    fn export_round_trips_and_is_deterministic() {
        let s = sample();
        let b = s.export();
        let back = UserState::import(&b).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.export(), b);
        assert_eq!(
            UserState::import(&UserState::new().export()).unwrap(),
            UserState::new()
        );
    }

    #[test]
    fn a_full_state_round_trips() {
        let mut s = sample();
        for i in 0..MAX_PLAYS as u32 + 5 {
            s.record_play(i, T + i64::from(i) * 60, 0.9).unwrap();
        }
        let items: Vec<u32> = (0..MAX_IMPRESSIONS as u32).collect();
        s.record_impression(&items, T + 1_000_000).unwrap();
        let genres: Vec<String> = (0..MAX_ONBOARDING_GENRES)
            .map(|i| format!("{i:0>64}"))
            .collect();
        let picks: Vec<u32> = (0..MAX_ONBOARDING_ITEMS as u32).collect();
        s.set_onboarding(&genres, &picks).unwrap();
        let code = "x".repeat(MAX_CODE_BYTES);
        s.settings_mut().set_country(Some(&code)).unwrap();
        s.settings_mut().set_language(Some(&code)).unwrap();
        let b = s.export();
        assert_eq!(b.len(), MAX_EXPORT_BYTES);
        assert_eq!(MAX_EXPORT_BYTES, 130_491);
        assert_eq!(UserState::import(&b).unwrap(), s);
    }

    #[test]
    fn header_errors_are_typed() {
        let b = sample().export();
        let mut bad = b.clone();
        bad[0] = b'X';
        assert_eq!(
            UserState::import(&bad).unwrap_err(),
            Error::State(StateError::BadMagic)
        );
        assert_eq!(code(b"EDGEREC\0"), "corrupt_state");
        let mut newer = b.clone();
        newer[4] = 2;
        assert_eq!(
            UserState::import(&newer).unwrap_err(),
            Error::State(StateError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert_eq!(code(&newer), "unsupported_state_version");
        let mut flags = b.clone();
        flags[6] = 1;
        assert!(matches!(
            UserState::import(&flags),
            Err(Error::State(StateError::Malformed(_)))
        ));
        let mut trailing = b.clone();
        trailing.push(0);
        assert!(matches!(
            UserState::import(&trailing),
            Err(Error::State(StateError::Malformed(_)))
        ));
        let mut inflated = b.clone();
        let len = (b.len() - HEADER + 1) as u64;
        inflated[8..16].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(
            UserState::import(&inflated),
            Err(Error::State(StateError::Truncated { .. }))
        ));
        inflated[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            UserState::import(&inflated),
            Err(Error::State(StateError::Malformed(_)))
        ));
        let mut flipped = b.clone();
        *flipped.last_mut().unwrap() ^= 0x80;
        assert_eq!(
            UserState::import(&flipped).unwrap_err(),
            Error::State(StateError::ChecksumMismatch)
        );
        assert_eq!(code(&[]), "corrupt_state");
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_refused() {
        let b = sample().export();
        for n in 0..b.len() {
            assert!(UserState::import(&b[..n]).is_err(), "prefix of {n} bytes");
        }
        for bit in 0..b.len() * 8 {
            let mut f = b.clone();
            f[bit / 8] ^= 1 << (bit % 8);
            assert!(UserState::import(&f).is_err(), "bit {bit}");
        }
    }

    /// A payload with a correct checksum can still be refused: counts, caps and invariants are
    /// checked before and after parsing.
    #[test]
    fn checksummed_but_invalid_payloads_are_refused() {
        let empty = UserState::new().export()[HEADER..].to_vec();
        // settings(1+4+1+1+1+1+1) = 10 bytes, then onboarding genres count at 10.
        let at_genres = 10;
        let at_plays = at_genres + 8;
        let refused = |payload: Vec<u8>| {
            let e = UserState::import(&seal(&payload)).unwrap_err();
            assert_eq!(e.code(), "corrupt_state", "{e}");
        };
        // A huge count is refused before anything is allocated.
        for at in [at_genres, at_genres + 4, at_plays, at_plays + 4] {
            let mut p = empty.clone();
            p[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            refused(p);
        }
        let play = |started: i64, updated: i64, fraction: f32, flags: u8, device: u8| {
            let mut b = 1u32.to_le_bytes().to_vec();
            b.extend_from_slice(&started.to_le_bytes());
            b.extend_from_slice(&updated.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&fraction.to_le_bytes());
            b.push(flags);
            b.push(device);
            b
        };
        let with_plays = |plays: &[Vec<u8>]| {
            let mut p = empty[..at_plays].to_vec();
            p.extend_from_slice(&(plays.len() as u32).to_le_bytes());
            for pl in plays {
                p.extend_from_slice(pl);
            }
            p.extend_from_slice(&0u32.to_le_bytes());
            p
        };
        // The helper itself builds an accepted payload.
        assert!(UserState::import(&seal(&with_plays(&[play(T, T, 0.5, 0, 0)]))).is_ok());
        refused(with_plays(&[
            play(T, T, 0.5, 0, 0),
            play(T - 1, T, 0.5, 0, 0),
        ]));
        refused(with_plays(&[play(T, T - 1, 0.5, 0, 0)]));
        refused(with_plays(&[play(T, T, 1.5, 0, 0)]));
        refused(with_plays(&[play(T, T, f32::NAN, 0, 0)]));
        refused(with_plays(&[play(T, T, -0.0, 0, 0)]));
        refused(with_plays(&[play(T, T, 0.5, 1, 0)])); // completed below 1
        refused(with_plays(&[play(T, T, 0.5, 2, 0)])); // unknown flag
        refused(with_plays(&[play(T, T, 0.5, 0, 5)])); // unknown device
        // Times outside the range every input is held to (so `t - started` cannot overflow).
        refused(with_plays(&[play(i64::MIN, T, 0.5, 0, 0)]));
        refused(with_plays(&[play(T, i64::MAX, 0.5, 0, 0)]));
        refused(with_plays(&[play(T * 1000, T * 1000, 0.5, 0, 0)])); // milliseconds
        let mut long = play(T, T, 0.5, 0, 0);
        long[20..24].copy_from_slice(&(MAX_WATCHED_SECONDS + 1).to_le_bytes());
        refused(with_plays(&[long]));
        // Bad settings bytes: maturity code, presence byte, gender, UTC offset.
        for (at, v) in [(0, 6u8), (6, 2), (7, 4), (8, 2)] {
            let mut p = empty.clone();
            p[at] = v;
            refused(p);
        }
        let mut p = empty.clone();
        p[1..5].copy_from_slice(&(MAX_UTC_OFFSET_MINUTES + 1).to_le_bytes());
        refused(p);
        // A genre that is not UTF-8, and a duplicate genre.
        let genre = |names: &[&[u8]]| {
            let mut p = empty[..at_genres].to_vec();
            p.extend_from_slice(&(names.len() as u32).to_le_bytes());
            for n in names {
                p.extend_from_slice(&(n.len() as u32).to_le_bytes());
                p.extend_from_slice(n);
            }
            p.extend_from_slice(&empty[at_genres + 4..]);
            p
        };
        assert!(UserState::import(&seal(&genre(&[b"Drama"]))).is_ok());
        refused(genre(&[b"\xff\xfe"]));
        refused(genre(&[b"Drama", b"Drama"]));
        refused(genre(&[b""]));
    }

    #[test]
    fn recording_refuses_times_outside_the_range_and_changes_nothing() {
        let mut s = UserState::new();
        s.record_play(1, T, 0.5).unwrap();
        let before = s.clone();
        let ms = T * 1000;
        for t in [ms, i64::MIN, i64::MAX, crate::limits::MAX_TIME + 1] {
            let e = s.record_play(2, t, 0.5).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{e}");
            assert!(s.record_completion(2, t, Device::Tv).is_err());
            assert!(s.record_impression(&[2], t).is_err());
        }
        let at = |watched_s| Progress {
            fraction: 0.5,
            watched_s,
            device: Device::Tv,
        };
        assert!(
            s.record_progress(2, T, at(MAX_WATCHED_SECONDS + 1))
                .is_err()
        );
        let e = s.record_play(2, ms, 0.5).unwrap_err().to_string();
        assert!(e.contains("milliseconds"), "{e}");
        assert_eq!(s, before);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Progress(u32, i64, f32, u32, u8),
        Complete(u32, i64, u8),
        Impression(Vec<u32>, i64),
        Onboarding(Vec<String>, Vec<u32>),
        Settings(Option<u8>, i32, Option<u8>, Option<u8>, u8, Option<String>),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few titles and a few days, so updates, repeats, fatigue and expiry all happen.
        let item = 0u32..12;
        let time = (T - 40 * 86_400)..(T + 40 * 86_400);
        prop_oneof![
            4 => (item.clone(), time.clone(), 0.0f32..=1.0, 0..=MAX_WATCHED_SECONDS, 0u8..5)
                .prop_map(|(i, t, f, w, d)| Op::Progress(i, t, f, w, d)),
            1 => (item.clone(), time.clone(), 0u8..5).prop_map(|(i, t, d)| Op::Complete(i, t, d)),
            3 => (pvec(item.clone(), 0..6), time)
                .prop_map(|(v, t)| Op::Impression(v, t)),
            1 => (pvec("[a-zé]{1,8}", 0..4), pvec(item, 0..4))
                .prop_map(|(g, i)| Op::Onboarding(g, i)),
            1 => (
                proptest::option::of(0u8..5),
                -MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES,
                proptest::option::of(0u8..5),
                proptest::option::of(any::<u8>()),
                0u8..4,
                proptest::option::of("[A-Za-z-]{1,16}"),
            )
                .prop_map(|(m, o, d, a, g, c)| Op::Settings(m, o, d, a, g, c)),
        ]
    }

    fn apply(ops: &[Op]) -> UserState {
        let mut s = UserState::new();
        for op in ops {
            match op.clone() {
                Op::Progress(i, t, f, w, d) => {
                    let p = Progress {
                        fraction: f,
                        watched_s: w,
                        device: Device::ALL[d as usize],
                    };
                    s.record_progress(i, t, p).unwrap();
                }
                Op::Complete(i, t, d) => {
                    s.record_completion(i, t, Device::ALL[d as usize]).unwrap()
                }
                Op::Impression(v, t) => s.record_impression(&v, t).unwrap(),
                Op::Onboarding(g, i) => s.set_onboarding(&g, &i).unwrap(),
                Op::Settings(m, o, d, a, g, c) => {
                    let st = s.settings_mut();
                    st.set_maturity_limit(m.map(|m| Maturity::ALL[m as usize]));
                    st.set_utc_offset_minutes(o).unwrap();
                    st.set_preferred_device(d.map(|d| Device::ALL[d as usize]));
                    st.set_age(a);
                    st.set_gender(GENDERS[g as usize]);
                    st.set_country(c.as_deref()).unwrap();
                    st.set_language(c.as_deref()).unwrap();
                }
            }
            assert_eq!(s.check(), Ok(()), "after {op:?}");
        }
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_states_round_trip(ops in pvec(op(), 0..40)) {
            let s = apply(&ops);
            let b = s.export();
            let back = UserState::import(&b).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.export(), b);
        }

        #[test]
        fn every_truncation_of_a_valid_blob_is_refused(ops in pvec(op(), 0..12)) {
            let b = apply(&ops).export();
            for n in 0..b.len() {
                prop_assert!(UserState::import(&b[..n]).is_err());
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in pvec(any::<u8>(), 0..256)) {
            let _ = UserState::import(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = UserState::import(&with_magic);
        }

        /// Garbage behind a correct header and checksum reaches the parser; it must refuse it
        /// or accept something that exports back to the very same bytes.
        #[test]
        fn sealed_random_payloads_never_panic(bytes in pvec(any::<u8>(), 0..256)) {
            let b = seal(&bytes);
            if let Ok(s) = UserState::import(&b) {
                prop_assert_eq!(s.export(), b);
            }
        }

        /// Mutating bytes of a real payload and resealing it: refused, or a canonical state.
        #[test]
        fn sealed_mutations_of_real_payloads_are_refused_or_canonical(
            ops in pvec(op(), 0..12),
            edits in pvec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut payload = apply(&ops).export()[HEADER..].to_vec();
            for (at, v) in edits {
                let i = at.index(payload.len());
                payload[i] = v;
            }
            let b = seal(&payload);
            if let Ok(s) = UserState::import(&b) {
                prop_assert_eq!(s.export(), b);
                prop_assert_eq!(s.check(), Ok(()));
            }
        }
    }
}
