//! The server's event log: what devices send (`edgerec::events`), stored durably and once.
//!
//! [`EventStore`] is an embedded SQLite database in WAL mode with `synchronous=FULL`: a batch
//! is acknowledged only after the transaction holding it has committed, so an acknowledged
//! event survives the server being killed at any point, and a client that retries after a
//! lost answer is deduplicated by its event ids (unique per device, so one client's ids never
//! shadow another's). Several batches commit in one transaction ([`EventStore::ingest`] takes a
//! slice): the server groups the batches that arrive while a commit is under way, which is
//! what makes durable ingestion fast.
//!
//! What is stored follows the batch's privacy level (`edgerec::events::Privacy`): `full`
//! batches store their events (title ids included), `metrics` batches only per-session
//! aggregates, merged so that a session's growing aggregate, sent again, counts once.
//!
//! [`ab::ab_report`] splits the sessions' online metrics by experiment arm, with intervals,
//! a sample-ratio check and CUPED. [`export`] turns the stored events into the canonical log (`edgerec_data::schema`), so the
//! pipeline trains on what devices sent.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `devices` | `device` (dense integer, order of first batch) | `device_id`, `first_seen` |
//! | `events` | `(device, id)` | `client_time`, `received`, `session_id`, `arm`, `kind`, `body` (the event's JSON) |
//! | `sessions` | `(device, session_id)` | a `metrics` client's [`SessionMetrics`] and `received` |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use edgerec::events::{Batch, Event, EventError, Privacy, SessionMetrics};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

pub mod ab;
mod export;

pub use export::{ExportOptions, ExportReport, export, read_accounts};

/// How far ahead of the server's clock an event's `clientTime` may be (device clocks drift;
/// a day covers time zones set wrong). Later events are refused (`clientTime`).
pub const MAX_CLOCK_SKEW_S: i64 = 86_400;

/// The database layout's version (`PRAGMA user_version`).
const LAYOUT_VERSION: i64 = 1;

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS devices (
  device INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL UNIQUE,
  first_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  device INTEGER NOT NULL REFERENCES devices(device),
  id TEXT NOT NULL,
  client_time INTEGER NOT NULL,
  received INTEGER NOT NULL,
  session_id INTEGER NOT NULL,
  arm TEXT,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (device, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
  device INTEGER NOT NULL REFERENCES devices(device),
  session_id INTEGER NOT NULL,
  started INTEGER NOT NULL,
  model_version TEXT NOT NULL,
  arm TEXT,
  rows_shown INTEGER NOT NULL,
  plays_started INTEGER NOT NULL,
  plays_from_row INTEGER NOT NULL,
  videos_watched INTEGER NOT NULL,
  watch_seconds INTEGER NOT NULL,
  received INTEGER NOT NULL,
  PRIMARY KEY (device, session_id)
) WITHOUT ROWID;
";

/// What became of one batch's events (or session aggregates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Stored now.
    pub accepted: usize,
    /// Already stored (a retry, or an aggregate with nothing new): not counted again.
    pub duplicates: usize,
    /// Refused, each with its index and field; the batch's other events are stored.
    pub rejected: Vec<Rejection>,
}

/// One refused event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Its index in the batch's `events` (or `sessions`).
    pub index: usize,
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Row counts of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Devices that sent anything.
    pub devices: u64,
    /// Events (`full` clients).
    pub events: u64,
    /// Session aggregates (`metrics` clients).
    pub sessions: u64,
}

/// The durable event log (see the crate docs).
pub struct EventStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("path", &self.path)
            .finish()
    }
}

/// SQLite stores signed 64-bit integers; a `u64` session id keeps its bits.
fn to_sql_u64(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

fn from_sql_u64(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

impl EventStore {
    /// Opens (creating if absent) the database at `path`, in WAL mode with `synchronous=FULL`;
    /// recovers what a killed server left in the write-ahead log.
    pub fn open(path: &Path) -> Result<EventStore> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .context("setting WAL mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "{}: the journal mode is {mode}, not WAL (a file system without shared memory?)",
                path.display()
            );
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A reader (export, report) and the writer may meet: wait rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                conn.execute_batch(SCHEMA_SQL)
                    .context("creating the tables")?;
                conn.pragma_update(None, "user_version", LAYOUT_VERSION)?;
            }
            LAYOUT_VERSION => {}
            v => bail!(
                "{}: event store layout {v}, this build reads {LAYOUT_VERSION}",
                path.display()
            ),
        }
        Ok(EventStore {
            conn,
            path: path.to_owned(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `batches` in one transaction and commits it (durably) before returning. Each
    /// batch gets its own answer: `Err` when the batch as a whole is refused (its envelope:
    /// schema, device id, privacy level against contents, counts — nothing of it is stored),
    /// else what became of each event. An event is refused when its fields are out of bounds
    /// or its `clientTime` is more than [`MAX_CLOCK_SKEW_S`] past `now` (unix seconds). The
    /// outer `Err` is a storage failure: nothing was committed and the caller answers so
    /// (clients retry).
    pub fn ingest(
        &mut self,
        batches: &[&Batch],
        now: i64,
    ) -> Result<Vec<std::result::Result<IngestReport, EventError>>> {
        let tx = self.conn.transaction().context("starting a transaction")?;
        let mut out = Vec::with_capacity(batches.len());
        {
            let mut find_device =
                tx.prepare_cached("SELECT device FROM devices WHERE device_id = ?1")?;
            let mut add_device =
                tx.prepare_cached("INSERT INTO devices (device_id, first_seen) VALUES (?1, ?2)")?;
            let mut add_event = tx.prepare_cached(
                "INSERT INTO events (device, id, client_time, received, session_id, arm, kind, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            )?;
            let mut merge_session = tx.prepare_cached(
                "INSERT INTO sessions (device, session_id, started, model_version, arm, rows_shown,
                   plays_started, plays_from_row, videos_watched, watch_seconds, received)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (device, session_id) DO UPDATE SET
                   started = min(started, excluded.started),
                   model_version = excluded.model_version,
                   arm = excluded.arm,
                   rows_shown = max(rows_shown, excluded.rows_shown),
                   plays_started = max(plays_started, excluded.plays_started),
                   plays_from_row = max(plays_from_row, excluded.plays_from_row),
                   videos_watched = max(videos_watched, excluded.videos_watched),
                   watch_seconds = max(watch_seconds, excluded.watch_seconds),
                   received = excluded.received
                 WHERE excluded.rows_shown > rows_shown
                    OR excluded.plays_started > plays_started
                    OR excluded.plays_from_row > plays_from_row
                    OR excluded.videos_watched > videos_watched
                    OR excluded.watch_seconds > watch_seconds",
            )?;
            for batch in batches {
                if let Err(e) = batch.validate_envelope() {
                    out.push(Err(e));
                    continue;
                }
                let (good, bad) = batch.split_valid();
                let mut report = IngestReport {
                    rejected: bad.into_iter().map(rejection).collect(),
                    ..IngestReport::default()
                };
                let device: i64 = match find_device
                    .query_row([&batch.device_id], |r| r.get(0))
                    .optional()?
                {
                    Some(d) => d,
                    None => {
                        add_device.execute(params![batch.device_id, now])?;
                        tx.last_insert_rowid()
                    }
                };
                for i in good {
                    match batch.privacy {
                        Privacy::Full => {
                            let e = &batch.events[i];
                            if e.envelope.client_time > now.saturating_add(MAX_CLOCK_SKEW_S) {
                                report.rejected.push(future(i, e.envelope.client_time, now));
                                continue;
                            }
                            let body = serde_json::to_string(e)?;
                            let n = add_event.execute(params![
                                device,
                                e.envelope.id,
                                e.envelope.client_time,
                                now,
                                to_sql_u64(e.envelope.session_id),
                                e.envelope.arm,
                                e.body.kind(),
                                body
                            ])?;
                            if n == 1 {
                                report.accepted += 1;
                            } else {
                                report.duplicates += 1;
                            }
                        }
                        Privacy::Metrics => {
                            // split_valid numbers sessions after the (empty) events.
                            let s = &batch.sessions[i - batch.events.len()];
                            if s.started > now.saturating_add(MAX_CLOCK_SKEW_S) {
                                report.rejected.push(future(i, s.started, now));
                                continue;
                            }
                            let n = merge_session.execute(params![
                                device,
                                to_sql_u64(s.session_id),
                                s.started,
                                s.model_version,
                                s.arm,
                                s.rows_shown,
                                s.plays_started,
                                s.plays_from_row,
                                s.videos_watched,
                                // Bounded by the event model (a week of seconds): fits.
                                i64::try_from(s.watch_seconds).unwrap_or(i64::MAX),
                                now
                            ])?;
                            if n == 1 {
                                report.accepted += 1;
                            } else {
                                report.duplicates += 1;
                            }
                        }
                        // validate_envelope refuses a batch at `none`.
                        Privacy::None => {}
                    }
                }
                report.rejected.sort_by_key(|r| r.index);
                out.push(Ok(report));
            }
        }
        tx.commit().context("committing")?;
        Ok(out)
    }

    /// Row counts.
    pub fn counts(&self) -> Result<Counts> {
        let count = |table: &str| -> Result<u64> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(Counts {
            devices: count("devices")?,
            events: count("events")?,
            sessions: count("sessions")?,
        })
    }

    /// Whether the event `id` of device `device_id` is stored.
    pub fn contains(&self, device_id: &str, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM events JOIN devices USING (device)
                 WHERE devices.device_id = ?1 AND events.id = ?2",
                params![device_id, id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Every device id with its dense number, in order of first batch.
    pub fn devices(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT device, device_id FROM devices ORDER BY device")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The events of device number `device` ([`EventStore::devices`]) in client-time order.
    pub fn device_events(&self, device: i64) -> Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM events WHERE device = ?1 ORDER BY client_time, id")?;
        let rows = stmt.query_map([device], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            out.push(
                serde_json::from_str(&body?)
                    .with_context(|| format!("a stored event of device {device} does not parse"))?,
            );
        }
        Ok(out)
    }

    /// How many events device number `device` sent.
    pub fn device_event_count(&self, device: i64) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM events WHERE device = ?1",
            [device],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Calls `f` with each device's id and its events in client-time order (ties by id), one
    /// device at a time (memory: one device's events).
    pub fn for_each_device_events(
        &self,
        mut f: impl FnMut(&str, Vec<Event>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT devices.device_id, events.body FROM events JOIN devices USING (device)
             ORDER BY events.device, events.client_time, events.id",
        )?;
        let mut rows = stmt.query([])?;
        let mut current: Option<(String, Vec<Event>)> = None;
        while let Some(row) = rows.next()? {
            let device_id: String = row.get(0)?;
            let body: String = row.get(1)?;
            let event: Event = serde_json::from_str(&body)
                .with_context(|| format!("a stored event of device {device_id} does not parse"))?;
            match &mut current {
                Some((d, events)) if *d == device_id => events.push(event),
                _ => {
                    if let Some((d, events)) = current.take() {
                        f(&d, events)?;
                    }
                    current = Some((device_id, vec![event]));
                }
            }
        }
        if let Some((d, events)) = current {
            f(&d, events)?;
        }
        Ok(())
    }

    /// Every session's online metrics with its device id: those `metrics` clients sent, and
    /// those of `full` clients aggregated from their events ([`SessionMetrics::aggregate`],
    /// `watched_threshold_s` deciding what counts as watched). Ordered by device, then session.
    pub fn session_metrics(
        &self,
        watched_threshold_s: u32,
    ) -> Result<Vec<(String, SessionMetrics)>> {
        let mut out = Vec::new();
        self.for_each_device_events(|device, events| {
            for s in SessionMetrics::aggregate(&events, watched_threshold_s) {
                out.push((device.to_owned(), s));
            }
            Ok(())
        })?;
        let mut stmt = self.conn.prepare(
            "SELECT devices.device_id, session_id, started, model_version, arm, rows_shown,
               plays_started, plays_from_row, videos_watched, watch_seconds
             FROM sessions JOIN devices USING (device) ORDER BY sessions.device, session_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                SessionMetrics {
                    session_id: from_sql_u64(r.get(1)?),
                    started: r.get(2)?,
                    model_version: r.get(3)?,
                    arm: r.get(4)?,
                    rows_shown: r.get(5)?,
                    plays_started: r.get(6)?,
                    plays_from_row: r.get(7)?,
                    videos_watched: r.get(8)?,
                    watch_seconds: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
                },
            ))
        })?;
        for r in rows {
            out.push(r?);
        }
        let index: HashMap<String, usize> = self
            .devices()?
            .into_iter()
            .map(|(n, d)| (d, usize::try_from(n).unwrap_or(usize::MAX)))
            .collect();
        out.sort_by_key(|(d, s)| (index.get(d).copied(), s.session_id));
        Ok(out)
    }
}

fn rejection(e: EventError) -> Rejection {
    Rejection {
        index: e.index.unwrap_or(0),
        field: e.field.to_owned(),
        message: e.reason,
    }
}

fn future(index: usize, t: i64, now: i64) -> Rejection {
    Rejection {
        index,
        field: "clientTime".into(),
        message: format!(
            "{t} is more than {MAX_CLOCK_SKEW_S} s after the server's clock ({now}): check the device's clock"
        ),
    }
}

#[cfg(test)]
mod tests;
