//! The stored events as the canonical log (`edgerec_data::schema`): what `edgerec pipeline`
//! trains on.
//!
//! Devices send events under a pseudonymous device id; the log is keyed by user. The account
//! system (server-side: it knows which device belongs to which profile) links them through
//! [`ExportOptions::accounts`]; a device with no account is counted and left out. The
//! profiles and the catalog are the service's own (`users` and `items` of a base data set),
//! copied through the schema's reader and writer so they are checked.
//!
//! | event | canonical rows |
//! |---|---|
//! | impression | one `impressions` row per title shown, at its position |
//! | play start, progress, stop, completion | one `plays` row per play: a start opens it (a progress report without one opens it at `time − watched`), reports raise `watched_s` and `fraction`, a stop closes it, a completion sets `fraction` 1 and closes it |
//! | search | one `searches` row |
//!
//! A play without a device of its own takes the device its session showed a row on; rows with
//! no known device, or naming a title outside the catalog, are counted in
//! [`ExportReport::skipped`] and left out. Session ids are renumbered densely, unique across
//! the log. Tables are written grouped by user in ascending id, each user's rows in time order.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use edgerec::context::Device;
use edgerec::events::{Body, Event};
use edgerec_data::schema::{self, Impression, Item, PartWriter, Play, Search, User, WriterOptions};
use serde::Serialize;

use crate::EventStore;

/// What [`export`] reads besides the store.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// A data set whose `users` and `items` tables are copied: the profiles and the catalog.
    pub base: PathBuf,
    /// Device id → the base's `user_id` it belongs to.
    pub accounts: HashMap<String, u32>,
}

/// What [`export`] wrote and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Profiles copied from the base.
    pub users: u64,
    /// Titles copied from the base.
    pub items: u64,
    /// `impressions` rows written.
    pub impressions: u64,
    /// `plays` rows written.
    pub plays: u64,
    /// `searches` rows written.
    pub searches: u64,
    /// Devices linked to a user.
    pub devices_linked: u64,
    /// Devices with no account, left out with all their events.
    pub devices_unlinked: u64,
    /// Rows left out, by reason (`"unknown title"`, `"unknown device"`, `"unknown user"`).
    pub skipped: BTreeMap<String, u64>,
}

/// Writes the canonical log of `store` to the data set directory `out` (see the module docs).
pub fn export(store: &EventStore, opts: &ExportOptions, out: &Path) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let users: Vec<User> = schema::read_table(&opts.base)
        .with_context(|| format!("reading the profiles of {}", opts.base.display()))?;
    let items: Vec<Item> = schema::read_table(&opts.base)
        .with_context(|| format!("reading the catalog of {}", opts.base.display()))?;
    let known_users: std::collections::HashSet<u32> = users.iter().map(|u| u.user_id).collect();
    let durations: HashMap<u32, u32> = items.iter().map(|i| (i.item_id, i.duration_s)).collect();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let wo = WriterOptions::default();
    report.users = write_all(out, users, wo)?;
    report.items = write_all(out, items, wo)?;

    // Devices by user, users ascending.
    let mut by_user: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (device, device_id) in store.devices()? {
        match opts.accounts.get(&device_id) {
            Some(&u) if known_users.contains(&u) => {
                report.devices_linked += 1;
                by_user.entry(u).or_default().push(device);
            }
            Some(_) => {
                report.devices_linked += 1;
                *report.skipped.entry("unknown user".into()).or_default() +=
                    store.device_event_count(device)?;
            }
            None => report.devices_unlinked += 1,
        }
    }

    let mut impressions = PartWriter::<Impression>::create(out, wo)?;
    let mut plays = PartWriter::<Play>::create(out, wo)?;
    let mut searches = PartWriter::<Search>::create(out, wo)?;
    let mut sessions = Sessions::default();
    for (&user_id, devices) in &by_user {
        let mut rows = UserRows::default();
        for &device in devices {
            let events = store.device_events(device)?;
            convert(
                user_id,
                device,
                &events,
                &durations,
                &mut sessions,
                &mut rows,
                &mut report,
            );
        }
        rows.impressions
            .sort_by_key(|r| (r.time, r.session_id, r.position));
        rows.plays
            .sort_by_key(|r| (r.time, r.session_id, r.item_id));
        rows.searches.sort_by_key(|r| (r.time, r.session_id));
        for r in rows.impressions {
            impressions.push(r)?;
        }
        for r in rows.plays {
            plays.push(r)?;
        }
        for r in rows.searches {
            searches.push(r)?;
        }
    }
    report.impressions = impressions.finish()?;
    report.plays = plays.finish()?;
    report.searches = searches.finish()?;
    Ok(report)
}

fn write_all<T: schema::Table>(out: &Path, rows: Vec<T>, wo: WriterOptions) -> Result<u64> {
    let mut w = PartWriter::<T>::create(out, wo)
        .with_context(|| format!("writing {}", out.join(T::DIR).display()))?;
    for r in rows {
        w.push(r)?;
    }
    w.finish()
}

/// Dense canonical session ids, one per (device, client session).
#[derive(Default)]
struct Sessions {
    ids: HashMap<(i64, u64), u64>,
}

impl Sessions {
    fn id(&mut self, device: i64, session: u64) -> u64 {
        let next = self.ids.len() as u64 + 1;
        *self.ids.entry((device, session)).or_insert(next)
    }
}

#[derive(Default)]
struct UserRows {
    impressions: Vec<Impression>,
    plays: Vec<Play>,
    searches: Vec<Search>,
}

/// A play being assembled from its events.
struct OpenPlay {
    time: i64,
    device: Option<Device>,
    session: u64,
    item: u32,
    watched_s: u32,
    fraction: f32,
}

fn known(d: Device) -> Option<Device> {
    (d != Device::Unknown).then_some(d)
}

fn skip(report: &mut ExportReport, why: &str) {
    *report.skipped.entry(why.into()).or_default() += 1;
}

/// One device's events (client-time order) as canonical rows.
fn convert(
    user_id: u32,
    device: i64,
    events: &[Event],
    durations: &HashMap<u32, u32>,
    sessions: &mut Sessions,
    rows: &mut UserRows,
    report: &mut ExportReport,
) {
    // The device each client session showed rows on (its first impression's).
    let mut session_device: HashMap<u64, Device> = HashMap::new();
    for e in events {
        if let Body::Impression { device: d, .. } = e.body
            && let Some(d) = known(d)
        {
            session_device.entry(e.envelope.session_id).or_insert(d);
        }
    }
    let mut open: HashMap<(u64, u32), OpenPlay> = HashMap::new();
    let mut done: Vec<OpenPlay> = Vec::new();
    for e in events {
        let env = &e.envelope;
        let t = env.client_time;
        let s = env.session_id;
        match &e.body {
            Body::Impression {
                items, device: d, ..
            } => {
                let Some(d) = known(*d) else {
                    skip(report, "unknown device");
                    continue;
                };
                let session_id = sessions.id(device, s);
                for (position, &item) in items.iter().enumerate() {
                    if !durations.contains_key(&item) {
                        skip(report, "unknown title");
                        continue;
                    }
                    rows.impressions.push(Impression {
                        user_id,
                        item_id: item,
                        time: t,
                        device: d,
                        session_id,
                        // Rows hold at most edgerec::limits::MAX_K titles (validated).
                        position: u16::try_from(position).unwrap_or(u16::MAX),
                    });
                }
            }
            Body::PlayStart {
                item_id, device: d, ..
            } => {
                let play = OpenPlay {
                    time: t,
                    device: known(*d),
                    session: s,
                    item: *item_id,
                    watched_s: 0,
                    fraction: 0.0,
                };
                if let Some(previous) = open.insert((s, *item_id), play) {
                    done.push(previous);
                }
            }
            Body::PlayProgress {
                item_id,
                watched_s,
                fraction,
            }
            | Body::PlayStop {
                item_id,
                watched_s,
                fraction,
            } => {
                let p = open.entry((s, *item_id)).or_insert_with(|| OpenPlay {
                    time: t.saturating_sub(i64::from(*watched_s)),
                    device: None,
                    session: s,
                    item: *item_id,
                    watched_s: 0,
                    fraction: 0.0,
                });
                p.watched_s = p.watched_s.max(*watched_s);
                p.fraction = p.fraction.max(*fraction);
                if matches!(e.body, Body::PlayStop { .. })
                    && let Some(p) = open.remove(&(s, *item_id))
                {
                    done.push(p);
                }
            }
            Body::Completion { item_id, device: d } => {
                let duration = durations.get(item_id).copied().unwrap_or(0);
                let mut p = open.remove(&(s, *item_id)).unwrap_or(OpenPlay {
                    time: t.saturating_sub(i64::from(duration)),
                    device: None,
                    session: s,
                    item: *item_id,
                    watched_s: 0,
                    fraction: 0.0,
                });
                p.device = p.device.or(known(*d));
                p.watched_s = p.watched_s.max(duration);
                p.fraction = 1.0;
                done.push(p);
            }
            Body::Search { tokens } => rows.searches.push(Search {
                user_id,
                time: t,
                session_id: sessions.id(device, s),
                tokens: tokens.iter().map(|t| t.to_lowercase()).collect(),
            }),
        }
    }
    done.extend(open.into_values());
    for p in done {
        let Some(d) = p.device.or_else(|| session_device.get(&p.session).copied()) else {
            skip(report, "unknown device");
            continue;
        };
        if !durations.contains_key(&p.item) {
            skip(report, "unknown title");
            continue;
        }
        rows.plays.push(Play {
            user_id,
            item_id: p.item,
            time: p.time,
            device: d,
            session_id: sessions.id(device, p.session),
            watched_s: p.watched_s,
            fraction: p.fraction.clamp(0.0, 1.0),
        });
    }
}

/// Reads an accounts file: one `device_id,user_id` per line, an optional header line
/// `device_id,user_id`, `#` comments and blank lines ignored.
pub fn read_accounts(path: &Path) -> Result<HashMap<String, u32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (n == 0 && line == "device_id,user_id") {
            continue;
        }
        let (device, user) = line
            .split_once(',')
            .with_context(|| format!("{}:{}: expected device_id,user_id", path.display(), n + 1))?;
        let user: u32 = user
            .trim()
            .parse()
            .with_context(|| format!("{}:{}: {user:?} is not a user id", path.display(), n + 1))?;
        out.insert(device.trim().to_owned(), user);
    }
    Ok(out)
}
