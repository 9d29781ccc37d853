//! `POST /v1/events` on a real server on loopback with a real SQLite store: answers, field
//! names in errors, deduplication, body limits, and that one client's bad batch never
//! disturbs another's events.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use edgerec_events::EventStore;
use edgerec_server::ServerConfig;

mod common;

struct Answer {
    status: u16,
    body: serde_json::Value,
}

/// A POST on its own connection; the answer's body as JSON (`null` when empty).
fn post(addr: SocketAddr, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server refusing an oversized body may close before reading it all.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let rest = &raw[split + 4..];
    let body = if rest.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(rest)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(rest)))
    };
    Answer { status, body }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn impression(id: &str, t: i64) -> serde_json::Value {
    serde_json::json!({"id": id, "clientTime": t, "sessionId": 1, "modelVersion": "m1",
        "type": "impression", "rowId": "r1", "items": [1, 2, 3], "device": "tv"})
}

fn batch(device: &str, events: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": "edgerec-events/1", "privacy": "full", "deviceId": device, "events": events
    }))
    .unwrap()
}

fn server() -> (tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().join("store"));
    config.events = Some(dir.path().join("events.sqlite"));
    let addr = common::start(config);
    (dir, addr)
}

#[test]
fn batches_are_stored_once_and_bad_events_refused_by_field() {
    let (dir, addr) = server();
    let t = now();
    let good = batch("dev-1", vec![impression("a", t), impression("b", t)]);
    let a = post(addr, &good);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    let a = post(addr, &good);
    assert_eq!(
        (a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    // One bad event (a fraction above 1) and one from the future: the rest is stored.
    let mut bad = impression("c", t);
    bad["type"] = "play_stop".into();
    bad["itemId"] = 2.into();
    bad["watchedS"] = 10.into();
    bad["fraction"] = 1.5.into();
    for k in ["rowId", "items", "device"] {
        bad.as_object_mut().unwrap().remove(k);
    }
    let future = impression("e", t + 3 * 86_400);
    let a = post(addr, &batch("dev-1", vec![bad, impression("d", t), future]));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    assert_eq!(a.body["rejected"][0]["index"], 0);
    assert_eq!(a.body["rejected"][0]["field"], "fraction");
    assert_eq!(a.body["rejected"][1]["field"], "clientTime");

    // Every event refused: 422 with the same report.
    let a = post(addr, &batch("dev-1", vec![impression("f", t + 3 * 86_400)]));
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (422, Some("invalid_events"))
    );

    // Not a batch: the parser names what is wrong.
    let a = post(
        addr,
        b"{\"schema\": \"edgerec-events/1\", \"privacy\": \"full\"",
    );
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("malformed"))
    );
    let sneaky = serde_json::json!({"schema": "edgerec-events/1", "privacy": "metrics",
        "deviceId": "dev-2", "sessions": [], "userHistory": [1, 2, 3]});
    let a = post(addr, &serde_json::to_vec(&sneaky).unwrap());
    assert_eq!(a.status, 400);
    assert!(
        a.body["message"].as_str().unwrap().contains("userHistory"),
        "{}",
        a.body
    );

    // The batch as a whole refused: title ids at privacy `metrics`.
    let mut b: serde_json::Value =
        serde_json::from_slice(&batch("dev-2", vec![impression("a", t)])).unwrap();
    b["privacy"] = "metrics".into();
    let a = post(addr, &serde_json::to_vec(&b).unwrap());
    assert_eq!(
        (a.status, a.body["error"].as_str(), a.body["field"].as_str()),
        (422, Some("invalid_batch"), Some("events"))
    );

    // Too large: refused before parsing.
    let huge = vec![b' '; edgerec_server::ingest::MAX_BODY_BYTES + 1];
    let a = post(addr, &huge);
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (413, Some("too_large"))
    );

    // Nothing of the refused batches reached the store; dev-1's events are all there.
    let store = EventStore::open(&dir.path().join("events.sqlite")).unwrap();
    let c = store.counts().unwrap();
    assert_eq!((c.devices, c.events), (1, 3));
    for id in ["a", "b", "d"] {
        assert!(store.contains("dev-1", id).unwrap());
    }
}

#[test]
fn concurrent_clients_each_get_their_own_answer() {
    let (dir, addr) = server();
    let t = now();
    let threads: Vec<_> = (0..8)
        .map(|c| {
            std::thread::spawn(move || {
                for b in 0..10 {
                    let events = (0..20)
                        .map(|e| impression(&format!("e{b}-{e}"), t))
                        .collect();
                    let a = post(addr, &batch(&format!("dev-{c}"), events));
                    assert_eq!(
                        (a.status, a.body["accepted"].as_u64()),
                        (200, Some(20)),
                        "{}",
                        a.body
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = EventStore::open(&dir.path().join("events.sqlite")).unwrap();
    assert_eq!(store.counts().unwrap().events, 8 * 10 * 20);
}

#[test]
fn a_server_without_an_event_store_says_so_and_browsers_may_post() {
    let dir = tempfile::tempdir().unwrap();
    let addr = common::start(ServerConfig::new(dir.path().join("store")));
    let a = post(addr, &batch("dev-1", vec![impression("a", now())]));
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (404, Some("events_disabled"))
    );

    let (_dir, addr) = server();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "OPTIONS /v1/events HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nOrigin: http://player.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let lower = raw.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{raw}");
    assert!(
        lower.contains("access-control-allow-methods: post"),
        "{raw}"
    );
    assert!(
        lower.contains("access-control-allow-headers: content-type"),
        "{raw}"
    );
}

fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn the_running_experiment_is_served_checked_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("experiment.json");
    let mut exp = serde_json::json!({"schema": "edgerec-experiments/1", "name": "rank",
        "salt": "s1", "arms": [{"name": "control", "share": 0.5, "channel": "stable"},
                               {"name": "gbdt", "share": 0.5, "channel": "exp-gbdt"}]});
    std::fs::write(&file, exp.to_string()).unwrap();
    let mut config = ServerConfig::new(dir.path().join("store"));
    config.experiments = Some(file.clone());

    // A bad definition stops the server from starting, naming the field.
    exp["arms"][1]["share"] = 0.4.into();
    std::fs::write(&file, exp.to_string()).unwrap();
    let err = format!("{:#}", edgerec_server::router(config.clone()).unwrap_err());
    assert!(err.contains("arms.share"), "{err}");
    exp["arms"][1]["share"] = 0.5.into();
    exp["arms"][1]["channel"] = "../stable".into();
    std::fs::write(&file, exp.to_string()).unwrap();
    let err = format!("{:#}", edgerec_server::router(config.clone()).unwrap_err());
    assert!(err.contains("channel"), "{err}");

    exp["arms"][1]["channel"] = "exp-gbdt".into();
    std::fs::write(&file, exp.to_string()).unwrap();
    let addr = common::start(config);
    let (status, body) = get(addr, "/v1/experiments");
    assert_eq!((status, &body), (200, &exp));
    // An edit is served at once; a broken edit is refused, not served.
    exp["salt"] = "s2".into();
    std::fs::write(&file, exp.to_string()).unwrap();
    assert_eq!(get(addr, "/v1/experiments").1["salt"], "s2");
    std::fs::write(&file, "{\"schema\": ").unwrap();
    let (status, body) = get(addr, "/v1/experiments");
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("bad_experiment"))
    );

    let none = common::start(ServerConfig::new(dir.path().join("store")));
    assert_eq!(get(none, "/v1/experiments").1["error"], "no_experiment");
}
