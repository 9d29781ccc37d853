//! The event model: what a device may report about what it showed and what was watched, and
//! how much of it leaves the device.
//!
//! One definition serves the client (the npm package records events and queues them), the
//! server (ingestion validates every batch with [`Batch::validate`]) and the training pipeline
//! (impressions, plays and searches map onto the canonical log schema of `edgerec-data`).
//!
//! # Privacy levels
//!
//! A client is set to one [`Privacy`] level, and the level travels with every [`Batch`]:
//!
//! * [`Privacy::None`] — nothing leaves the device (sync still works); there are no batches.
//! * [`Privacy::Metrics`] — only per-session aggregates the online metrics need
//!   ([`SessionMetrics`]: rows shown, plays started from a row, videos watched, seconds
//!   watched), no title ids, no search text.
//! * [`Privacy::Full`] — the [`Event`]s themselves, with title ids, for training.
//!
//! A batch whose contents its level does not allow is refused as a whole (`privacy` error): a
//! server never stores a title id from a `metrics` client. [`SessionMetrics::aggregate`] turns
//! a device's own events into the aggregates it may send at `metrics`.
//!
//! # Wire format
//!
//! JSON (serde) with camelCase names, `"type"` naming an event's kind, e.g.
//!
//! ```json
//! {"schema": "edgerec-events/1", "privacy": "full", "deviceId": "d-1f3a", "events": [
//!   {"id": "a1b2c3", "clientTime": 1795811400, "sessionId": 7, "modelVersion": "ml-1f",
//!    "arm": "control", "type": "impression", "rowId": "r-9", "items": [50, 172, 181],
//!    "device": "tv"}]}
//! ```
//!
//! Every count and string is bounded ([`MAX_EVENTS`], [`MAX_ID_BYTES`], …) and checked by
//! [`Batch::validate`], which names the offending field; one bad event is reported by its index
//! so a server can keep the others ([`Batch::split_valid`]).
//!
//! ```
//! use edgerec::context::Device;
//! use edgerec::events::{Batch, Body, Envelope, Event, Privacy, SessionMetrics};
//! let env = |id: &str, t: i64| Envelope {
//!     id: id.into(), client_time: t, session_id: 1, model_version: "m1".into(), arm: None,
//! };
//! let events = vec![
//!     Event { envelope: env("e1", 1_000), body: Body::Impression {
//!         row_id: "r1".into(), items: vec![10, 20, 30], device: Device::Tv } },
//!     Event { envelope: env("e2", 1_010), body: Body::PlayStart {
//!         item_id: 20, row_id: Some("r1".into()), position: Some(1), device: Device::Tv } },
//!     Event { envelope: env("e3", 6_000), body: Body::PlayStop {
//!         item_id: 20, watched_s: 4_990, fraction: 0.9 } },
//! ];
//! let full = Batch::full("device-1", events.clone());
//! full.validate()?;
//! // At `metrics`, only the session's aggregates leave the device.
//! let sessions = SessionMetrics::aggregate(&events, 600);
//! assert_eq!((sessions[0].rows_shown, sessions[0].plays_from_row, sessions[0].videos_watched), (1, 1, 1));
//! let metrics = Batch::metrics("device-1", sessions);
//! metrics.validate()?;
//! // Title ids in a `metrics` batch are refused.
//! let sneaky = Batch { privacy: Privacy::Metrics, ..full };
//! assert_eq!(sneaky.validate().unwrap_err().field, "events");
//! # Ok::<(), edgerec::events::EventError>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::context::Device;
use crate::error::Result;
use crate::limits::{MAX_K, MAX_SEARCH_TOKENS};
use crate::state::{MAX_WATCHED_SECONDS, Progress, UserState};

/// The schema name every batch carries.
pub const SCHEMA: &str = "edgerec-events/1";
/// The most events (or session aggregates) in one batch.
pub const MAX_EVENTS: usize = 1_000;
/// The longest event, row, device, session or arm id, model version or search token, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// How much a client sends (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Nothing leaves the device.
    None,
    /// Per-session aggregates only: no title ids, no search text.
    Metrics,
    /// Events with title ids.
    Full,
}

impl Privacy {
    /// `"none"`, `"metrics"` or `"full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::None => "none",
            Privacy::Metrics => "metrics",
            Privacy::Full => "full",
        }
    }

    /// The level called `name` ([`Privacy::as_str`]).
    pub fn parse(name: &str) -> Option<Privacy> {
        [Privacy::None, Privacy::Metrics, Privacy::Full]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// What every event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Client-generated, unique per event (the server deduplicates by it): 1 to
    /// [`MAX_ID_BYTES`] of `A-Z a-z 0-9 - _`.
    pub id: String,
    /// When it happened on the client, unix seconds.
    pub client_time: i64,
    /// The client's session (a new one after [`crate::state::SESSION_WINDOW_S`] idle).
    pub session_id: u64,
    /// The model version that made the row (`Meta::model_version`).
    pub model_version: String,
    /// The experiment arm the device is in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Body {
    /// A row was shown: its titles in the order shown (position = index).
    Impression {
        /// The row's id (client-generated), which plays started from it refer to.
        row_id: String,
        /// Item ids, at most [`MAX_K`].
        items: Vec<u32>,
        /// Where it was shown.
        device: Device,
    },
    /// A play started, from a row (`row_id`, `position`) or elsewhere (search, browse).
    PlayStart {
        /// The title.
        item_id: u32,
        /// The row it was started from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        row_id: Option<String>,
        /// Its position in that row.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<u16>,
        /// Where.
        device: Device,
    },
    /// How far a play has got.
    PlayProgress {
        /// The title.
        item_id: u32,
        /// Seconds watched so far, at most [`MAX_WATCHED_SECONDS`].
        watched_s: u32,
        /// Share of the title watched, `0..=1`.
        fraction: f32,
    },
    /// A play stopped.
    PlayStop {
        /// The title.
        item_id: u32,
        /// Seconds watched, at most [`MAX_WATCHED_SECONDS`].
        watched_s: u32,
        /// Share of the title watched, `0..=1`.
        fraction: f32,
    },
    /// A title played to its end.
    Completion {
        /// The title.
        item_id: u32,
        /// Where.
        device: Device,
    },
    /// A search, as the tokens the device tokenised it into.
    Search {
        /// At most [`MAX_SEARCH_TOKENS`], each 1 to [`MAX_ID_BYTES`] bytes.
        tokens: Vec<String>,
    },
}

impl Body {
    /// The event's `"type"` on the wire (`"impression"`, `"play_start"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Impression { .. } => "impression",
            Body::PlayStart { .. } => "play_start",
            Body::PlayProgress { .. } => "play_progress",
            Body::PlayStop { .. } => "play_stop",
            Body::Completion { .. } => "completion",
            Body::Search { .. } => "search",
        }
    }
}

/// One event: its envelope and body (flattened together on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Id, time, session, model version, arm.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// What happened.
    #[serde(flatten)]
    pub body: Body,
}

/// One session's online metrics: everything a `metrics` client sends (a field it does not
/// define is a parse error, so nothing else can ride along).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionMetrics {
    /// The session.
    pub session_id: u64,
    /// When it started, unix seconds.
    pub started: i64,
    /// The model version of its rows (the last one seen).
    pub model_version: String,
    /// Its experiment arm, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// Rows shown.
    pub rows_shown: u32,
    /// Plays started, from anywhere.
    pub plays_started: u32,
    /// Plays started from a row shown.
    pub plays_from_row: u32,
    /// Plays that passed the "watched" threshold (seconds).
    pub videos_watched: u32,
    /// Seconds watched in the session (the largest report of each play, summed).
    pub watch_seconds: u64,
}

/// A batch a client sends: its privacy level and what that level allows (a field it does not
/// define is a parse error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The client's level.
    pub privacy: Privacy,
    /// A pseudonymous device id (the A/B assignment hashes it).
    pub device_id: String,
    /// Events (`full` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Session aggregates (`metrics` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionMetrics>,
}

/// Why a batch or an event was refused: the field, and for an event its index in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The event's index in [`Batch::events`] (or [`Batch::sessions`]), `None` for the batch.
    pub index: Option<usize>,
    /// The offending field (`"items"`, `"fraction"`, `"events"` …).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "event {i}: {}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for EventError {}

fn refuse(field: &'static str, reason: impl Into<String>) -> EventError {
    EventError {
        index: None,
        field,
        reason: reason.into(),
    }
}

/// An id: 1 to [`MAX_ID_BYTES`] bytes of `A-Z a-z 0-9 - _ .`.
fn check_id(field: &'static str, id: &str) -> std::result::Result<(), EventError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(refuse(
            field,
            format!("must be 1 to {MAX_ID_BYTES} bytes of letters, digits, '-', '_' or '.'"),
        ))
    }
}

fn check_time(field: &'static str, t: i64) -> std::result::Result<(), EventError> {
    if crate::limits::time_in_range(t) {
        Ok(())
    } else {
        Err(refuse(field, crate::limits::time_error(field, t)))
    }
}

/// The state's bounds for a progress report ([`crate::state`]), with the field named.
fn check_watch(watched_s: u32, fraction: f32) -> std::result::Result<(), EventError> {
    crate::state::check_progress(watched_s, fraction)
        .map_err(|(field, reason)| refuse(field, reason))
}

impl Event {
    /// Checks every field's bounds (see the module docs).
    pub fn validate(&self) -> std::result::Result<(), EventError> {
        let e = &self.envelope;
        check_id("id", &e.id)?;
        check_time("clientTime", e.client_time)?;
        check_id("modelVersion", &e.model_version)?;
        if let Some(arm) = &e.arm {
            check_id("arm", arm)?;
        }
        match &self.body {
            Body::Impression { row_id, items, .. } => {
                check_id("rowId", row_id)?;
                if items.is_empty() || items.len() > MAX_K {
                    return Err(refuse(
                        "items",
                        format!("1 to {MAX_K} titles, got {}", items.len()),
                    ));
                }
                let mut seen = HashSet::with_capacity(items.len());
                if let Some(d) = items.iter().find(|&&i| !seen.insert(i)) {
                    return Err(refuse("items", format!("title {d} shown twice in one row")));
                }
            }
            Body::PlayStart {
                row_id, position, ..
            } => match (row_id, position) {
                (Some(r), Some(p)) => {
                    check_id("rowId", r)?;
                    if usize::from(*p) >= MAX_K {
                        return Err(refuse("position", format!("{p} beyond a row of {MAX_K}")));
                    }
                }
                (None, None) => {}
                _ => return Err(refuse("rowId", "rowId and position go together")),
            },
            Body::PlayProgress {
                watched_s,
                fraction,
                ..
            }
            | Body::PlayStop {
                watched_s,
                fraction,
                ..
            } => check_watch(*watched_s, *fraction)?,
            Body::Completion { .. } => {}
            Body::Search { tokens } => {
                if tokens.is_empty() || tokens.len() > MAX_SEARCH_TOKENS {
                    return Err(refuse(
                        "tokens",
                        format!("1 to {MAX_SEARCH_TOKENS} tokens, got {}", tokens.len()),
                    ));
                }
                if tokens
                    .iter()
                    .any(|t| t.is_empty() || t.len() > MAX_ID_BYTES)
                {
                    return Err(refuse(
                        "tokens",
                        format!("every token 1 to {MAX_ID_BYTES} bytes"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Records the event in the device's local state, so the next row reacts whatever the
    /// privacy level: an impression marks its titles shown, a progress or stop report updates
    /// the play, a completion finishes it. A play start and a search leave the state as it
    /// is (the play counts once watched; searches are the request's). Errors as
    /// [`UserState`]'s `record_*` (the state is then unchanged).
    pub fn apply(&self, state: &mut UserState) -> Result<()> {
        let t = self.envelope.client_time;
        match &self.body {
            Body::Impression { items, .. } => state.record_impression(items, t),
            Body::PlayProgress {
                item_id,
                watched_s,
                fraction,
            }
            | Body::PlayStop {
                item_id,
                watched_s,
                fraction,
            } => state.record_progress(
                *item_id,
                t,
                Progress {
                    fraction: *fraction,
                    watched_s: *watched_s,
                    device: Device::Unknown,
                },
            ),
            Body::Completion { item_id, device } => state.record_completion(*item_id, t, *device),
            Body::PlayStart { .. } | Body::Search { .. } => Ok(()),
        }
    }
}

impl SessionMetrics {
    /// The sessions of a device's `events` (any order), each with its counts: a play is
    /// "from a row" when its start names a row the session showed, and "watched" once a
    /// report reaches `watched_threshold_s` seconds or it completes. Sorted by session.
    pub fn aggregate(events: &[Event], watched_threshold_s: u32) -> Vec<SessionMetrics> {
        struct Acc {
            m: SessionMetrics,
            rows: HashSet<String>,
            // per title: (largest seconds reported, counted as watched)
            plays: BTreeMap<u32, (u32, bool)>,
            latest: i64,
        }
        let mut sorted: Vec<&Event> = events.iter().collect();
        sorted.sort_by_key(|e| e.envelope.client_time);
        let mut sessions: BTreeMap<u64, Acc> = BTreeMap::new();
        for e in sorted {
            let env = &e.envelope;
            let acc = sessions.entry(env.session_id).or_insert_with(|| Acc {
                m: SessionMetrics {
                    session_id: env.session_id,
                    started: env.client_time,
                    model_version: env.model_version.clone(),
                    arm: env.arm.clone(),
                    rows_shown: 0,
                    plays_started: 0,
                    plays_from_row: 0,
                    videos_watched: 0,
                    watch_seconds: 0,
                },
                rows: HashSet::new(),
                plays: BTreeMap::new(),
                latest: env.client_time,
            });
            if env.client_time >= acc.latest {
                acc.latest = env.client_time;
                acc.m.model_version.clone_from(&env.model_version);
                acc.m.arm.clone_from(&env.arm);
            }
            let watched = |acc: &mut Acc, item: u32, seconds: u32, done: bool| {
                let p = acc.plays.entry(item).or_insert((0, false));
                p.0 = p.0.max(seconds);
                if !p.1 && (done || p.0 >= watched_threshold_s) {
                    p.1 = true;
                    acc.m.videos_watched += 1;
                }
            };
            match &e.body {
                Body::Impression { row_id, .. } => {
                    acc.m.rows_shown += 1;
                    acc.rows.insert(row_id.clone());
                }
                Body::PlayStart { row_id, .. } => {
                    acc.m.plays_started += 1;
                    if row_id.as_ref().is_some_and(|r| acc.rows.contains(r)) {
                        acc.m.plays_from_row += 1;
                    }
                }
                Body::PlayProgress {
                    item_id, watched_s, ..
                }
                | Body::PlayStop {
                    item_id, watched_s, ..
                } => watched(acc, *item_id, *watched_s, false),
                Body::Completion { item_id, .. } => watched(acc, *item_id, 0, true),
                Body::Search { .. } => {}
            }
        }
        sessions
            .into_values()
            .map(|mut a| {
                a.m.watch_seconds = a.plays.values().map(|p| u64::from(p.0)).sum();
                a.m
            })
            .collect()
    }

    fn validate(&self) -> std::result::Result<(), EventError> {
        check_time("started", self.started)?;
        check_id("modelVersion", &self.model_version)?;
        if let Some(arm) = &self.arm {
            check_id("arm", arm)?;
        }
        if self.plays_from_row > self.plays_started {
            return Err(refuse("playsFromRow", "more plays from a row than plays"));
        }
        // A session is at most a day or so of watching; generously bounded.
        if self.watch_seconds > 7 * u64::from(MAX_WATCHED_SECONDS) {
            return Err(refuse("watchSeconds", "more than a week in one session"));
        }
        Ok(())
    }
}

impl Batch {
    /// A `full` batch of `events`.
    pub fn full(device_id: &str, events: Vec<Event>) -> Batch {
        Batch {
            schema: SCHEMA.into(),
            privacy: Privacy::Full,
            device_id: device_id.into(),
            events,
            sessions: Vec::new(),
        }
    }

    /// A `metrics` batch of session aggregates.
    pub fn metrics(device_id: &str, sessions: Vec<SessionMetrics>) -> Batch {
        Batch {
            schema: SCHEMA.into(),
            privacy: Privacy::Metrics,
            device_id: device_id.into(),
            events: Vec::new(),
            sessions,
        }
    }

    /// The batch as a whole: schema, device id, privacy level against contents, counts, and
    /// no event id twice. Each event's own fields are [`Batch::split_valid`]'s.
    pub fn validate_envelope(&self) -> std::result::Result<(), EventError> {
        if self.schema != SCHEMA {
            return Err(refuse(
                "schema",
                format!("{:?} is not {SCHEMA:?}", self.schema),
            ));
        }
        check_id("deviceId", &self.device_id)?;
        match self.privacy {
            Privacy::None => {
                return Err(refuse("privacy", "a client at privacy none sends nothing"));
            }
            Privacy::Metrics if !self.events.is_empty() => {
                return Err(refuse(
                    "events",
                    "privacy metrics sends session aggregates only, never events",
                ));
            }
            Privacy::Full if !self.sessions.is_empty() => {
                return Err(refuse(
                    "sessions",
                    "privacy full sends events; aggregates are computed from them",
                ));
            }
            _ => {}
        }
        let n = self.events.len() + self.sessions.len();
        if n == 0 || n > MAX_EVENTS {
            return Err(refuse(
                "events",
                format!("1 to {MAX_EVENTS} per batch, got {n}"),
            ));
        }
        let mut ids = HashSet::with_capacity(self.events.len());
        if let Some(e) = self.events.iter().find(|e| !ids.insert(&e.envelope.id)) {
            return Err(refuse(
                "id",
                format!("{:?} twice in one batch", e.envelope.id),
            ));
        }
        Ok(())
    }

    /// [`validate_envelope`](Self::validate_envelope), then every event and aggregate: the
    /// first error, with its index.
    pub fn validate(&self) -> std::result::Result<(), EventError> {
        self.validate_envelope()?;
        match self.split_valid().1.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The events (or aggregates) that pass their checks, by index, and an error for each
    /// that does not: one bad event does not sink the batch's good ones. Call after
    /// [`validate_envelope`](Self::validate_envelope).
    pub fn split_valid(&self) -> (Vec<usize>, Vec<EventError>) {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let checks = self
            .events
            .iter()
            .map(Event::validate)
            .chain(self.sessions.iter().map(SessionMetrics::validate));
        for (i, r) in checks.enumerate() {
            match r {
                Ok(()) => good.push(i),
                Err(e) => bad.push(EventError {
                    index: Some(i),
                    ..e
                }),
            }
        }
        (good, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(id: &str, t: i64, session: u64) -> Envelope {
        Envelope {
            id: id.into(),
            client_time: t,
            session_id: session,
            model_version: "ml-1".into(),
            arm: Some("treatment".into()),
        }
    }

    fn ev(id: &str, t: i64, session: u64, body: Body) -> Event {
        Event {
            envelope: env(id, t, session),
            body,
        }
    }

    fn day() -> Vec<Event> {
        vec![
            ev(
                "a",
                1_000,
                1,
                Body::Impression {
                    row_id: "r1".into(),
                    items: vec![10, 20, 30],
                    device: Device::Tv,
                },
            ),
            ev(
                "b",
                1_100,
                1,
                Body::PlayStart {
                    item_id: 20,
                    row_id: Some("r1".into()),
                    position: Some(1),
                    device: Device::Tv,
                },
            ),
            ev(
                "c",
                2_000,
                1,
                Body::PlayProgress {
                    item_id: 20,
                    watched_s: 900,
                    fraction: 0.2,
                },
            ),
            ev(
                "d",
                4_000,
                1,
                Body::PlayStop {
                    item_id: 20,
                    watched_s: 2_900,
                    fraction: 0.6,
                },
            ),
            ev(
                "e",
                4_100,
                1,
                Body::PlayStart {
                    item_id: 99,
                    row_id: None,
                    position: None,
                    device: Device::Tv,
                },
            ),
            ev(
                "f",
                4_200,
                1,
                Body::PlayStop {
                    item_id: 99,
                    watched_s: 100,
                    fraction: 0.02,
                },
            ),
            ev(
                "g",
                90_000,
                2,
                Body::Search {
                    tokens: vec!["space".into()],
                },
            ),
            ev(
                "h",
                90_100,
                2,
                Body::Completion {
                    item_id: 30,
                    device: Device::Mobile,
                },
            ),
        ]
    }

    #[test]
    fn kind_is_the_wire_type() {
        let mut kinds = HashSet::new();
        for e in day() {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], e.body.kind());
            kinds.insert(e.body.kind());
        }
        assert_eq!(kinds.len(), 6, "every kind of event: {kinds:?}");
    }

    #[test]
    fn events_round_trip_through_json_with_the_documented_names() {
        let batch = Batch::full("dev-1", day());
        batch.validate().unwrap();
        let json = serde_json::to_string(&batch).unwrap();
        for name in [
            "\"schema\":\"edgerec-events/1\"",
            "\"privacy\":\"full\"",
            "\"deviceId\":\"dev-1\"",
            "\"type\":\"impression\"",
            "\"rowId\":\"r1\"",
            "\"clientTime\":1000",
            "\"type\":\"play_start\"",
            "\"watchedS\":900",
            "\"device\":\"tv\"",
        ] {
            assert!(json.contains(name), "{name} in {json}");
        }
        assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), batch);
        let metrics = Batch::metrics("dev-1", SessionMetrics::aggregate(&day(), 600));
        let json = serde_json::to_string(&metrics).unwrap();
        assert!(!json.contains("\"events\"") && json.contains("\"videosWatched\":1"));
        assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), metrics);
        // Unknown kinds and missing fields are parse errors, not panics.
        for bad in [
            r#"{"schema":"edgerec-events/1","privacy":"full","deviceId":"d","events":[{"id":"a","clientTime":1,"sessionId":1,"modelVersion":"m","type":"teleport"}]}"#,
            r#"{"schema":"edgerec-events/1","privacy":"everything","deviceId":"d"}"#,
            r#"{"privacy":"full"}"#,
            // A title id riding along in a metrics aggregate.
            r#"{"schema":"edgerec-events/1","privacy":"metrics","deviceId":"d","sessions":[{"sessionId":1,"started":1,"modelVersion":"m","rowsShown":1,"playsStarted":0,"playsFromRow":0,"videosWatched":0,"watchSeconds":0,"items":[50]}]}"#,
        ] {
            assert!(serde_json::from_str::<Batch>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sessions_count_rows_plays_from_rows_and_watched_videos() {
        let s = SessionMetrics::aggregate(&day(), 600);
        assert_eq!(s.len(), 2);
        let first = &s[0];
        assert_eq!(
            (
                first.rows_shown,
                first.plays_started,
                first.plays_from_row,
                first.videos_watched,
                first.watch_seconds
            ),
            (1, 2, 1, 1, 3_000)
        );
        assert_eq!(first.started, 1_000);
        // A completion counts as watched even without seconds.
        assert_eq!((s[1].videos_watched, s[1].rows_shown), (1, 0));
        // Order of arrival does not matter.
        let mut shuffled = day();
        shuffled.reverse();
        assert_eq!(SessionMetrics::aggregate(&shuffled, 600), s);
        Batch::metrics("dev-1", s).validate().unwrap();
    }

    #[test]
    fn each_privacy_level_allows_only_its_contents() {
        let full = Batch::full("dev-1", day());
        let metrics = Batch::metrics("dev-1", SessionMetrics::aggregate(&day(), 600));
        for (batch, field) in [
            (
                Batch {
                    privacy: Privacy::Metrics,
                    ..full.clone()
                },
                "events",
            ),
            (
                Batch {
                    privacy: Privacy::Full,
                    ..metrics.clone()
                },
                "sessions",
            ),
            (
                Batch {
                    privacy: Privacy::None,
                    ..metrics.clone()
                },
                "privacy",
            ),
            (
                Batch {
                    schema: "edgerec-events/2".into(),
                    ..full.clone()
                },
                "schema",
            ),
            (
                Batch {
                    device_id: "a b".into(),
                    ..full.clone()
                },
                "deviceId",
            ),
            (Batch::full("dev-1", Vec::new()), "events"),
        ] {
            assert_eq!(batch.validate().unwrap_err().field, field, "{batch:?}");
        }
        let mut twice = day();
        twice[1].envelope.id = "a".into();
        assert_eq!(
            Batch::full("dev-1", twice).validate().unwrap_err().field,
            "id"
        );
        assert_eq!(Privacy::parse("metrics"), Some(Privacy::Metrics));
        assert_eq!(Privacy::parse("all"), None);
    }

    #[test]
    fn one_bad_event_is_reported_by_index_and_the_rest_kept() {
        let mut events = day();
        events[2].body = Body::PlayProgress {
            item_id: 20,
            watched_s: 900_000,
            fraction: 0.2,
        };
        events[5].body = Body::PlayStop {
            item_id: 99,
            watched_s: 10,
            fraction: f32::NAN,
        };
        let batch = Batch::full("dev-1", events);
        batch.validate_envelope().unwrap();
        let (good, bad) = batch.split_valid();
        assert_eq!(good, vec![0, 1, 3, 4, 6, 7]);
        let fields: Vec<(Option<usize>, &str)> = bad.iter().map(|e| (e.index, e.field)).collect();
        assert_eq!(fields, vec![(Some(2), "watchedS"), (Some(5), "fraction")]);
        assert_eq!(
            batch.validate().unwrap_err().to_string().split(':').next(),
            Some("event 2")
        );
        for (body, field) in [
            (
                Body::Impression {
                    row_id: "r".into(),
                    items: vec![1, 1],
                    device: Device::Tv,
                },
                "items",
            ),
            (
                Body::Impression {
                    row_id: "r".into(),
                    items: vec![7; MAX_K + 1],
                    device: Device::Tv,
                },
                "items",
            ),
            (
                Body::PlayStart {
                    item_id: 1,
                    row_id: Some("r".into()),
                    position: None,
                    device: Device::Tv,
                },
                "rowId",
            ),
            (
                Body::Search {
                    tokens: vec!["x".repeat(MAX_ID_BYTES + 1)],
                },
                "tokens",
            ),
        ] {
            let e = ev("z", 1_000, 1, body);
            assert_eq!(e.validate().unwrap_err().field, field);
        }
        let mut late = ev(
            "z",
            1_795_811_400_000,
            1,
            Body::Search {
                tokens: vec!["a".into()],
            },
        );
        assert_eq!(late.validate().unwrap_err().field, "clientTime");
        late.envelope.client_time = 1_000;
        late.envelope.arm = Some(String::new());
        assert_eq!(late.validate().unwrap_err().field, "arm");
    }

    fn any_event() -> impl proptest::strategy::Strategy<Value = Event> {
        use proptest::prelude::*;
        let id = prop_oneof![Just(String::new()), "[a-z0-9_ -]{1,70}"];
        let body = prop_oneof![
            (id.clone(), proptest::collection::vec(any::<u32>(), 0..20)).prop_map(
                |(row_id, items)| Body::Impression {
                    row_id,
                    items,
                    device: Device::Tv
                }
            ),
            (
                any::<u32>(),
                proptest::option::of(id.clone()),
                proptest::option::of(any::<u16>())
            )
                .prop_map(|(item_id, row_id, position)| Body::PlayStart {
                    item_id,
                    row_id,
                    position,
                    device: Device::Mobile
                }),
            (any::<u32>(), any::<u32>(), any::<f32>()).prop_map(
                |(item_id, watched_s, fraction)| {
                    Body::PlayStop {
                        item_id,
                        watched_s,
                        fraction,
                    }
                }
            ),
            (any::<u32>(), any::<u32>(), any::<f32>()).prop_map(
                |(item_id, watched_s, fraction)| {
                    Body::PlayProgress {
                        item_id,
                        watched_s,
                        fraction,
                    }
                }
            ),
            any::<u32>().prop_map(|item_id| Body::Completion {
                item_id,
                device: Device::Tv
            }),
            proptest::collection::vec(id.clone(), 0..4).prop_map(|tokens| Body::Search { tokens }),
        ];
        (
            id.clone(),
            any::<i64>(),
            0u64..4,
            id.clone(),
            proptest::option::of(id),
            body,
        )
            .prop_map(
                |(id, client_time, session_id, model_version, arm, body)| Event {
                    envelope: Envelope {
                        id,
                        client_time,
                        session_id,
                        model_version,
                        arm,
                    },
                    body,
                },
            )
    }

    proptest::proptest! {
        /// Whatever a client sends, checking, aggregating and recording never panic, and a
        /// valid event is one the local state accepts.
        #[test]
        fn arbitrary_events_never_panic(events in proptest::collection::vec(any_event(), 0..30)) {
            let batch = Batch::full("dev", events.clone());
            let _ = batch.validate();
            let (good, bad) = batch.split_valid();
            proptest::prop_assert_eq!(good.len() + bad.len(), events.len());
            let _ = SessionMetrics::aggregate(&events, 600);
            let mut state = UserState::new();
            for i in good {
                proptest::prop_assert!(events[i].apply(&mut state).is_ok(), "{:?}", events[i]);
            }
        }
    }

    #[test]
    fn recording_an_event_updates_the_local_state() {
        let mut s = UserState::new();
        for e in day() {
            e.apply(&mut s).unwrap();
        }
        assert_eq!(s.impressions().len(), 3);
        assert!(s.impressions().iter().any(|i| i.item == 20 && i.played));
        let p20 = s.plays().iter().find(|p| p.item == 20).unwrap();
        assert_eq!((p20.watched_s, p20.fraction), (2_900, 0.6));
        assert!(s.finished_titles().contains(&30));
        // A bad report leaves the state as it was.
        let before = s.export();
        let bad = ev(
            "x",
            5_000,
            1,
            Body::PlayStop {
                item_id: 20,
                watched_s: 10,
                fraction: 2.0,
            },
        );
        assert!(bad.apply(&mut s).is_err());
        assert_eq!(s.export(), before);
    }
}
