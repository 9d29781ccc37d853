//! Event ingestion through the real binary: `edgerec serve --events` killed with SIGKILL in
//! the middle of ingestion loses no acknowledged event and retries never double-count; what
//! devices sent exports (`edgerec events export`) to a data set `edgerec pipeline` trains on.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::{ok, p};

/// `edgerec serve --events db` on 127.0.0.1:0, and the address it printed.
fn serve(dir: &Path, db: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgerec"))
        .args([
            "serve",
            "--store",
            p(&dir.join("store")),
            "--port",
            "0",
            "--threads",
            "2",
        ])
        .args(["--events", p(db)])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run edgerec serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("serving http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

/// POSTs a batch; the status and JSON body, or `None` when the connection failed (the server
/// is gone).
fn post(addr: SocketAddr, body: &str) -> Option<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).ok()?))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A `full` batch of `n` impressions with ids `{prefix}-{i}`.
fn batch(device: &str, prefix: &str, n: usize, t: i64) -> String {
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("{prefix}-{i}"), "clientTime": t, "sessionId": 1,
                "modelVersion": "m1", "type": "impression", "rowId": "r", "items": [1 + i as u32],
                "device": "tv"})
        })
        .collect();
    serde_json::json!({"schema": "edgerec-events/1", "privacy": "full", "deviceId": device,
        "events": events})
    .to_string()
}

/// splitmix64: the kill points of the trials.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const CLIENTS: usize = 4;
const BATCHES: usize = 25;
const PER_BATCH: usize = 8;

#[test]
fn sigkill_during_ingestion_loses_no_acknowledged_event_and_retries_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.sqlite");
    let trials = 16;
    let (mut acked_total, mut in_flight_total, mut stored_before_ack) = (0usize, 0usize, 0usize);
    let mut expected_events = 0u64;
    for trial in 0..trials {
        let (mut child, addr) = serve(dir.path(), &db);
        let t = now();
        // Kill once this many batches were acknowledged (of CLIENTS × BATCHES): mid-stream.
        let kill_after = 1 + (mix(trial) % (CLIENTS * BATCHES / 2) as u64) as usize;
        let acks = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let acks = Arc::clone(&acks);
                std::thread::spawn(move || {
                    let device = format!("t{trial}-c{c}");
                    let mut acked = Vec::new();
                    for b in 0..BATCHES {
                        match post(addr, &batch(&device, &format!("b{b}"), PER_BATCH, t)) {
                            Some((200, body)) => {
                                assert_eq!(body["accepted"], PER_BATCH, "{body}");
                                acked.push(b);
                                acks.fetch_add(1, Ordering::SeqCst);
                            }
                            Some((status, body)) => panic!("{status} {body}"),
                            None => break, // killed
                        }
                    }
                    acked
                })
            })
            .collect();
        let start = Instant::now();
        while acks.load(Ordering::SeqCst) < kill_after && start.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked: Vec<Vec<usize>> = clients.into_iter().map(|h| h.join().unwrap()).collect();

        // Every acknowledged event is in the store (recovered from the WAL by the next open).
        {
            let store = edgerec_events::EventStore::open(&db).unwrap();
            for (c, batches) in acked.iter().enumerate() {
                for b in batches {
                    for i in 0..PER_BATCH {
                        assert!(
                            store
                                .contains(&format!("t{trial}-c{c}"), &format!("b{b}-{i}"))
                                .unwrap(),
                            "trial {trial}: acknowledged event b{b}-{i} of client {c} lost"
                        );
                    }
                }
                acked_total += batches.len() * PER_BATCH;
            }
            let stored = store.counts().unwrap().events;
            let acked_now: usize = acked.iter().map(Vec::len).sum::<usize>() * PER_BATCH;
            // Committed but not acknowledged: the answer was lost with the process.
            let extra = usize::try_from(stored - expected_events).unwrap() - acked_now;
            stored_before_ack += extra;
            if extra > 0 || acked.iter().any(|a| a.len() < BATCHES) {
                in_flight_total += 1;
            }
        }

        // The clients retry everything they sent (and send the rest): each event counts once.
        let (mut child, addr) = serve(dir.path(), &db);
        let retried: Vec<_> = (0..CLIENTS)
            .map(|c| {
                std::thread::spawn(move || {
                    let device = format!("t{trial}-c{c}");
                    let (mut accepted, mut duplicates) = (0, 0);
                    for b in 0..BATCHES {
                        let (status, body) =
                            post(addr, &batch(&device, &format!("b{b}"), PER_BATCH, t))
                                .expect("the restarted server answers");
                        assert_eq!(status, 200, "{body}");
                        accepted += body["accepted"].as_u64().unwrap();
                        duplicates += body["duplicates"].as_u64().unwrap();
                    }
                    (accepted, duplicates)
                })
            })
            .collect();
        for h in retried {
            let (accepted, duplicates) = h.join().unwrap();
            assert_eq!(accepted + duplicates, (BATCHES * PER_BATCH) as u64);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        expected_events += (CLIENTS * BATCHES * PER_BATCH) as u64;
        let stored = edgerec_events::EventStore::open(&db)
            .unwrap()
            .counts()
            .unwrap()
            .events;
        assert_eq!(
            stored, expected_events,
            "trial {trial}: an event counted twice or lost"
        );
    }
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["events", "stats", "--db", p(&db)])).unwrap();
    assert_eq!(stats["events"], expected_events);
    assert_eq!(stats["devices"], trials * CLIENTS as u64);
    eprintln!(
        "kill -9 trials: {trials}; acknowledged events before the kill: {acked_total}, all found; \
         committed but unacknowledged: {stored_before_ack}; trials killed mid-stream: \
         {in_flight_total}; after retries {expected_events} events stored, none twice"
    );
    assert!(
        in_flight_total >= trials as usize / 2,
        "the kills should land mid-ingestion"
    );
}

#[test]
fn what_devices_sent_exports_to_a_data_set_the_pipeline_trains_on() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    common::PlantedGenres {
        users: 24,
        per_user: 6,
        step: 3_600,
        seed: 5,
    }
    .write(&raw);
    let world = tmp.path().join("world");
    ok(&[
        "data",
        "import",
        "movielens-100k",
        "--src",
        p(&raw),
        "--out",
        p(&world),
    ]);
    let db = tmp.path().join("events.sqlite");
    let (mut child, addr) = serve(tmp.path(), &db);
    // 24 devices over 28 days: a row, a play of a title of the user's genre (watched to 90%),
    // a play of another abandoned at 5%, a search; one device without an account.
    let start = now() - 28 * 86_400;
    let mut accounts = String::from("device_id,user_id\n");
    for u in 1..=25u32 {
        let device = format!("device-{u}");
        if u <= 24 {
            accounts.push_str(&format!("{device},{u}\n"));
        }
        let mut events = Vec::new();
        for day in 0..14u32 {
            let t = start + i64::from(day) * 2 * 86_400 + i64::from(u) * 60;
            let session = u64::from(day);
            let liked = 3 * ((u + day * 7) % 30) + u % 3 + if u % 3 == 0 { 3 } else { 0 };
            let other = 1 + (u + day) % 90;
            let liked = if liked > 90 || liked == other {
                1 + (other % 90)
            } else {
                liked
            };
            let env = |k: &str, dt: i64| {
                serde_json::json!({"id": format!("{day}-{k}"), "clientTime": t + dt,
                    "sessionId": session, "modelVersion": "m1", "arm": "control"})
            };
            let with = |mut e: serde_json::Value, body: serde_json::Value| {
                for (k, v) in body.as_object().unwrap() {
                    e[k] = v.clone();
                }
                e
            };
            events.push(with(
                env("row", 0),
                serde_json::json!({"type": "impression",
                "rowId": format!("r{day}"), "items": [liked, other], "device": "tv"}),
            ));
            events.push(with(
                env("start", 10),
                serde_json::json!({"type": "play_start",
                "itemId": liked, "rowId": format!("r{day}"), "position": 0, "device": "tv"}),
            ));
            events.push(with(
                env("stop", 5_000),
                serde_json::json!({"type": "play_stop",
                "itemId": liked, "watchedS": 5_400, "fraction": 0.9}),
            ));
            events.push(with(
                env("start2", 5_100),
                serde_json::json!({"type": "play_start",
                "itemId": other, "rowId": format!("r{day}"), "position": 1, "device": "tv"}),
            ));
            events.push(with(
                env("stop2", 5_400),
                serde_json::json!({"type": "play_stop",
                "itemId": other, "watchedS": 300, "fraction": 0.05}),
            ));
            events.push(with(
                env("search", 6_000),
                serde_json::json!({"type": "search",
                "tokens": ["western"]}),
            ));
        }
        let body = serde_json::json!({"schema": "edgerec-events/1", "privacy": "full",
            "deviceId": device, "events": events});
        let (status, answer) = post(addr, &body.to_string()).unwrap();
        assert_eq!(
            (status, answer["accepted"].as_u64()),
            (200, Some(84)),
            "{answer}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let accounts_file = tmp.path().join("accounts.csv");
    std::fs::write(&accounts_file, accounts).unwrap();
    let collected = tmp.path().join("collected");
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "events",
        "export",
        "--db",
        p(&db),
        "--base",
        p(&world),
        "--accounts",
        p(&accounts_file),
        "--out",
        p(&collected),
    ]))
    .unwrap();
    assert_eq!(report["devices_linked"], 24);
    assert_eq!(report["devices_unlinked"], 1);
    assert_eq!(report["plays"], 24 * 14 * 2);
    assert_eq!(report["impressions"], 24 * 14 * 2);
    assert_eq!(report["searches"], 24 * 14);
    assert_eq!(report["skipped"], serde_json::json!({}));

    let examples = tmp.path().join("examples");
    ok(&[
        "pipeline",
        "--world",
        p(&collected),
        "--out",
        p(&examples),
        "--folds",
        "2",
        "--fold-days",
        "5",
    ]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(examples.join("report.json")).unwrap()).unwrap();
    // One play per day watched past 80% (a positive), one abandoned below 10% (a negative).
    assert_eq!(json["after"]["positives"], 24 * 14, "{json}");
    assert!(
        json["after"]["negative_plays"].as_u64().unwrap() > 0,
        "{json}"
    );
}

#[test]
fn ab_report_splits_what_devices_reported_by_arm() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("experiment.json");
    let def = serde_json::json!({"schema": "edgerec-experiments/1", "name": "rank", "salt": "s9",
        "arms": [{"name": "control", "share": 0.5, "channel": "stable"},
                 {"name": "gbdt", "share": 0.5, "channel": "exp-gbdt"}]});
    std::fs::write(&file, def.to_string()).unwrap();
    let experiment: edgerec::experiments::Experiment = serde_json::from_value(def).unwrap();
    let db = tmp.path().join("events.sqlite");
    let (mut child, addr) = serve(tmp.path(), &db);
    let start = now() - 10 * 86_400;
    for d in 0..200u64 {
        let device = format!("dev-{d}");
        // What the device computes is what the CLI prints.
        let printed: serde_json::Value = serde_json::from_str(&ok(&[
            "ab",
            "assign",
            "--experiment",
            p(&file),
            "--device",
            &device,
        ]))
        .unwrap();
        let a = experiment.assign(&device).unwrap();
        assert_eq!(printed["label"], a.label);
        // Ten sessions a device, one a day; the treatment engages in more of them.
        let engaged_every = if a.arm == "gbdt" { 2 } else { 4 };
        let sessions: Vec<serde_json::Value> = (0..10u64)
            .map(|k| {
                let engaged = (k + d) % engaged_every == 0;
                serde_json::json!({"sessionId": k, "started": start + (k * 86_400) as i64,
                    "modelVersion": "m1", "arm": a.label, "rowsShown": 2,
                    "playsStarted": u32::from(engaged), "playsFromRow": u32::from(engaged),
                    "videosWatched": u32::from(engaged), "watchSeconds": if engaged { 2_400 } else { 0 }})
            })
            .collect();
        let body = serde_json::json!({"schema": "edgerec-events/1", "privacy": "metrics",
            "deviceId": device, "sessions": sessions});
        let (status, answer) = post(addr, &body.to_string()).unwrap();
        assert_eq!(
            (status, answer["accepted"].as_u64()),
            (200, Some(10)),
            "{answer}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = tmp.path().join("ab");
    let md = ok(&[
        "ab",
        "report",
        "--db",
        p(&db),
        "--experiment",
        p(&file),
        "--out",
        p(&out),
    ]);
    assert!(md.contains("no mismatch"), "{md}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let devices: u64 = r["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["devices"].as_u64().unwrap())
        .sum();
    assert_eq!(devices, 200);
    let rate = |i: usize| {
        r["arms"][i]["metrics"]["engagement_rate"]["value"]
            .as_f64()
            .unwrap()
    };
    assert!(
        (rate(0) - 0.25).abs() < 0.03 && (rate(1) - 0.5).abs() < 0.03,
        "{r}"
    );
    let c = &r["comparisons"][0];
    assert_eq!(c["metric"], "engagement_rate");
    assert!(
        c["p"].as_f64().unwrap() < 1e-6 && c["difference"]["lo"].as_f64().unwrap() > 0.0,
        "{c}"
    );
    for m in [
        "engagement_rate",
        "videos_per_user_day",
        "watch_s_per_session",
    ] {
        assert!(out.join("plots").join(format!("{m}.svg")).exists());
    }
}
