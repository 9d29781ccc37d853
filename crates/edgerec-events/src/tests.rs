use edgerec::context::Device;
use edgerec::events::{Batch, Body, Envelope, Event, SessionMetrics};
use edgerec_data::schema::{self, Impression, Item, PartWriter, Play, Search, User, WriterOptions};

use super::*;

const NOW: i64 = 1_790_000_000;

fn ev(id: &str, t: i64, session: u64, body: Body) -> Event {
    Event {
        envelope: Envelope {
            id: id.into(),
            client_time: t,
            session_id: session,
            model_version: "m1".into(),
            arm: Some("treatment".into()),
        },
        body,
    }
}

fn impression(id: &str, t: i64, items: &[u32]) -> Event {
    ev(
        id,
        t,
        1,
        Body::Impression {
            row_id: "r1".into(),
            items: items.to_vec(),
            device: Device::Tv,
        },
    )
}

fn store() -> (tempfile::TempDir, EventStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = EventStore::open(&dir.path().join("events.sqlite")).unwrap();
    (dir, s)
}

fn one(s: &mut EventStore, b: &Batch) -> std::result::Result<IngestReport, EventError> {
    s.ingest(&[b], NOW).unwrap().pop().unwrap()
}

#[test]
fn a_retried_batch_is_stored_once() {
    let (_d, mut s) = store();
    let b = Batch::full(
        "dev-1",
        vec![
            impression("a", NOW - 10, &[1, 2]),
            impression("b", NOW, &[3]),
        ],
    );
    let r = one(&mut s, &b).unwrap();
    assert_eq!((r.accepted, r.duplicates), (2, 0));
    let r = one(&mut s, &b).unwrap();
    assert_eq!((r.accepted, r.duplicates), (0, 2));
    assert_eq!(s.counts().unwrap().events, 2);
    assert!(s.contains("dev-1", "a").unwrap());
    assert!(!s.contains("dev-2", "a").unwrap());
}

#[test]
fn one_client_ids_never_shadow_another_clients() {
    let (_d, mut s) = store();
    let a = Batch::full("dev-1", vec![impression("same", NOW, &[1])]);
    let b = Batch::full("dev-2", vec![impression("same", NOW, &[2])]);
    let r = s.ingest(&[&a, &b], NOW).unwrap();
    assert_eq!(r[0].as_ref().unwrap().accepted, 1);
    assert_eq!(r[1].as_ref().unwrap().accepted, 1);
    assert_eq!(
        s.counts().unwrap(),
        Counts {
            devices: 2,
            events: 2,
            sessions: 0
        }
    );
}

#[test]
fn bad_and_future_events_are_refused_by_index_and_the_rest_stored() {
    let (_d, mut s) = store();
    let bad = ev(
        "c",
        NOW,
        1,
        Body::PlayStop {
            item_id: 1,
            watched_s: 10,
            fraction: 1.5,
        },
    );
    let future = impression("d", NOW + MAX_CLOCK_SKEW_S + 1, &[4]);
    let b = Batch::full(
        "dev-1",
        vec![
            impression("a", NOW, &[1]),
            bad,
            impression("b", NOW, &[2]),
            future,
        ],
    );
    let r = one(&mut s, &b).unwrap();
    assert_eq!(r.accepted, 2);
    let fields: Vec<(usize, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.index, x.field.as_str()))
        .collect();
    assert_eq!(fields, [(1, "fraction"), (3, "clientTime")]);
    assert!(
        r.rejected[1].message.contains("clock"),
        "{:?}",
        r.rejected[1]
    );
    assert!(s.contains("dev-1", "b").unwrap());
    assert!(!s.contains("dev-1", "d").unwrap());
}

#[test]
fn a_malformed_batch_stores_nothing_and_spares_the_others() {
    let (_d, mut s) = store();
    let mut sneaky = Batch::full("dev-1", vec![impression("a", NOW, &[1])]);
    sneaky.privacy = edgerec::events::Privacy::Metrics;
    let good = Batch::full("dev-2", vec![impression("a", NOW, &[1])]);
    let r = s.ingest(&[&sneaky, &good], NOW).unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().field, "events");
    assert_eq!(r[1].as_ref().unwrap().accepted, 1);
    assert_eq!(s.counts().unwrap().events, 1);
    assert_eq!(
        s.devices().unwrap().len(),
        1,
        "the refused batch's device is not recorded"
    );
}

fn session(id: u64, rows: u32, plays: u32, seconds: u64) -> SessionMetrics {
    SessionMetrics {
        session_id: id,
        started: NOW - 100,
        model_version: "m1".into(),
        arm: Some("control".into()),
        rows_shown: rows,
        plays_started: plays,
        plays_from_row: plays,
        videos_watched: plays,
        watch_seconds: seconds,
    }
}

#[test]
fn a_growing_session_aggregate_counts_once() {
    let (_d, mut s) = store();
    let first = Batch::metrics("dev-9", vec![session(7, 1, 0, 0)]);
    assert_eq!(one(&mut s, &first).unwrap().accepted, 1);
    assert_eq!(one(&mut s, &first).unwrap().duplicates, 1);
    let grown = Batch::metrics("dev-9", vec![session(7, 2, 1, 1_800)]);
    assert_eq!(one(&mut s, &grown).unwrap().accepted, 1);
    // A late, smaller copy does not shrink it.
    assert_eq!(one(&mut s, &first).unwrap().duplicates, 1);
    let all = s.session_metrics(600).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "dev-9");
    assert_eq!(all[0].1, session(7, 2, 1, 1_800));
    assert_eq!(s.counts().unwrap().sessions, 1);
}

#[test]
fn full_clients_sessions_are_aggregated_from_their_events() {
    let (_d, mut s) = store();
    let events = vec![
        impression("a", NOW - 900, &[5, 6]),
        ev(
            "b",
            NOW - 800,
            1,
            Body::PlayStart {
                item_id: 6,
                row_id: Some("r1".into()),
                position: Some(1),
                device: Device::Tv,
            },
        ),
        ev(
            "c",
            NOW - 10,
            1,
            Body::PlayStop {
                item_id: 6,
                watched_s: 790,
                fraction: 0.4,
            },
        ),
    ];
    one(&mut s, &Batch::full("dev-1", events.clone())).unwrap();
    let got = s.session_metrics(600).unwrap();
    assert_eq!(
        got,
        vec![(
            "dev-1".to_string(),
            SessionMetrics::aggregate(&events, 600)[0].clone()
        )]
    );
    assert_eq!((got[0].1.plays_from_row, got[0].1.videos_watched), (1, 1));
}

#[test]
fn what_was_committed_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sqlite");
    {
        let mut s = EventStore::open(&path).unwrap();
        one(
            &mut s,
            &Batch::full("dev-1", vec![impression("a", NOW, &[1])]),
        )
        .unwrap();
    }
    let s = EventStore::open(&path).unwrap();
    assert!(s.contains("dev-1", "a").unwrap());
    s.conn.pragma_update(None, "user_version", 9).unwrap();
    drop(s);
    let err = EventStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("layout 9"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sqlite");
    std::fs::write(
        &path,
        b"not a database, just some bytes that are long enough to matter",
    )
    .unwrap();
    let err = format!("{:#}", EventStore::open(&path).unwrap_err());
    assert!(
        err.contains("e.sqlite") || err.contains("not a database"),
        "{err}"
    );
}

fn base(dir: &Path) {
    let mut users = PartWriter::<User>::create(dir, WriterOptions::default()).unwrap();
    for id in [1, 2] {
        users
            .push(User {
                user_id: id,
                age: 30,
                gender: "x".into(),
                language: "en".into(),
                country: "US".into(),
                utc_offset_minutes: 0,
                signup_time: NOW - 1_000_000,
                onboarding_genres: vec![],
            })
            .unwrap();
    }
    users.finish().unwrap();
    let mut items = PartWriter::<Item>::create(dir, WriterOptions::default()).unwrap();
    for id in [5, 6, 7] {
        items
            .push(Item {
                item_id: id,
                kind: edgerec::features::MediaKind::Movie,
                series_id: None,
                season: None,
                episode: None,
                title: format!("t{id}"),
                duration_s: 1_000,
                genres: vec!["drama".into()],
                tags: vec![],
                actors: vec![],
                directors: vec![],
                composer: None,
                distributor: None,
                original_language: "en".into(),
                country: "US".into(),
                release_time: NOW - 9_000_000,
                release_type: edgerec::features::ReleaseType::Streaming,
                added_time: NOW - 8_000_000,
                maturity: edgerec::features::Maturity::Pg13,
                public_rating: Some(7.0),
                revenue_usd: None,
            })
            .unwrap();
    }
    items.finish().unwrap();
}

#[test]
fn export_writes_the_canonical_log_of_linked_devices() {
    let (dir, mut s) = store();
    let base_dir = dir.path().join("base");
    base(&base_dir);
    let tv = vec![
        impression("a", NOW - 900, &[5, 6, 99]),
        ev(
            "b",
            NOW - 800,
            1,
            Body::PlayStart {
                item_id: 6,
                row_id: Some("r1".into()),
                position: Some(1),
                device: Device::Tv,
            },
        ),
        ev(
            "c",
            NOW - 500,
            1,
            Body::PlayProgress {
                item_id: 6,
                watched_s: 300,
                fraction: 0.3,
            },
        ),
        ev(
            "d",
            NOW - 100,
            1,
            Body::Completion {
                item_id: 6,
                device: Device::Tv,
            },
        ),
        // A report with no start: the play opens at time - watched, on the session's device.
        ev(
            "e",
            NOW - 50,
            1,
            Body::PlayStop {
                item_id: 7,
                watched_s: 40,
                fraction: 0.04,
            },
        ),
        ev(
            "f",
            NOW - 40,
            2,
            Body::Search {
                tokens: vec!["Noir".into()],
            },
        ),
    ];
    one(&mut s, &Batch::full("tv-1", tv)).unwrap();
    one(
        &mut s,
        &Batch::full("phone-1", vec![impression("a", NOW, &[7])]),
    )
    .unwrap();
    one(
        &mut s,
        &Batch::full("stranger", vec![impression("a", NOW, &[7])]),
    )
    .unwrap();
    let accounts: HashMap<String, u32> =
        [("tv-1".to_string(), 2), ("phone-1".to_string(), 1)].into();
    let out = dir.path().join("log");
    let r = export(
        &s,
        &ExportOptions {
            base: base_dir,
            accounts,
        },
        &out,
    )
    .unwrap();
    assert_eq!(
        (r.users, r.items, r.devices_linked, r.devices_unlinked),
        (2, 3, 2, 1)
    );
    assert_eq!(r.skipped.get("unknown title"), Some(&1));
    let imps: Vec<Impression> = schema::read_table(&out).unwrap();
    // Grouped by user ascending: user 1 (the phone) first.
    assert_eq!(
        imps.iter()
            .map(|i| (i.user_id, i.item_id, i.position))
            .collect::<Vec<_>>(),
        [(1, 7, 0), (2, 5, 0), (2, 6, 1)]
    );
    let plays: Vec<Play> = schema::read_table(&out).unwrap();
    assert_eq!(plays.len(), 2);
    assert_eq!(
        (
            plays[0].item_id,
            plays[0].time,
            plays[0].watched_s,
            plays[0].fraction
        ),
        (6, NOW - 800, 1_000, 1.0)
    );
    assert_eq!(
        (
            plays[1].item_id,
            plays[1].time,
            plays[1].watched_s,
            plays[1].device
        ),
        (7, NOW - 90, 40, Device::Tv)
    );
    assert_eq!(plays[0].session_id, imps[1].session_id);
    let searches: Vec<Search> = schema::read_table(&out).unwrap();
    assert_eq!(searches[0].tokens, ["noir"]);
    assert_ne!(searches[0].session_id, plays[0].session_id);
    assert_ne!(
        imps[0].session_id, imps[1].session_id,
        "sessions are unique across devices"
    );
}

#[test]
fn accounts_files_are_read_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("accounts.csv");
    std::fs::write(&p, "device_id,user_id\n# comment\ntv-1, 2\n\nphone-1,1\n").unwrap();
    let a = read_accounts(&p).unwrap();
    assert_eq!((a["tv-1"], a["phone-1"]), (2, 1));
    std::fs::write(&p, "tv-1,two\n").unwrap();
    let err = format!("{:#}", read_accounts(&p).unwrap_err());
    assert!(err.contains(":1:") && err.contains("two"), "{err}");
}
