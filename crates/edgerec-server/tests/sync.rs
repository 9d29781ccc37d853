//! The native sync client (`edgerec_release::sync`) against the real server on loopback, with
//! a fault proxy in front of it playing a server that is down, slow, broken or hostile. The npm
//! client has the same cases in tests/js/sync.test.mjs.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgerec::bundle::container_header;
use edgerec::release::{KeySet, Manifest, SecretKey, TrustRoot};
use edgerec_release::http::HttpTransport;
use edgerec_release::sync::{Client, DirStore, MemStore, Options, Store};
use edgerec_release::{PublishOptions, Published, Signing, Store as ReleaseStore};
use edgerec_server::ServerConfig;
use sha2::{Digest as _, Sha256};

mod common;

const NOW: i64 = 1_900_000_000;

/// The real server on loopback, serving `store`.
fn start(store: &Path) -> SocketAddr {
    common::start(ServerConfig::new(store.to_path_buf()))
}

fn key() -> SecretKey {
    SecretKey::from_seed([8; 32])
}

fn trust() -> TrustRoot {
    TrustRoot::single(key().public_key())
}

/// Publishes the tiny bundle with popularity as of `day` (a popularity-only change).
fn publish_as(store: &Path, signing: &Signing, day: i64, opts: PublishOptions) -> Published {
    let mut contents = edgerec::test_support::tiny_contents();
    contents.popularity.reference_time = day * 86_400;
    ReleaseStore::open(store)
        .unwrap()
        .publish(&contents.encode(), signing, &opts)
        .unwrap()
}

fn publish(store: &Path, day: i64) -> Published {
    publish_as(
        store,
        &Signing::single(key()),
        day,
        PublishOptions::new("stable", NOW),
    )
}

fn client<S: Store>(url: &str, store: S) -> Client<S, HttpTransport> {
    Client::open(
        Options::new(trust(), "stable").unwrap(),
        store,
        HttpTransport::new(url, Duration::from_secs(2)).unwrap(),
    )
}

/// What the fault proxy does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward to the server.
    Pass,
    /// Close the connection without answering.
    Down,
    /// Hold the connection, never answer.
    Slow,
    /// Answer 500.
    Error500,
    /// Answer manifests with random bytes.
    Garbage,
    /// Answer sections with an endless body.
    Endless,
    /// Answer sections with half their bytes.
    Truncated,
}

struct Proxy {
    url: String,
    mode: Arc<Mutex<Mode>>,
    /// Every request head seen.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// A proxy in front of `upstream`; sections for the faulty answers are read from `store`.
fn fault_proxy(upstream: SocketAddr, store: PathBuf) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mode = Arc::new(Mutex::new(Mode::Pass));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (m, r) = (mode.clone(), requests.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mode = *m.lock().unwrap();
            let requests = r.clone();
            let store = store.clone();
            std::thread::spawn(move || {
                let Some(head) = read_head(&mut conn) else {
                    return;
                };
                requests.lock().unwrap().push(head.clone());
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let section = path
                    .strip_prefix("/v1/sections/")
                    .map(|sha| store.join("sections").join(sha));
                let answer = |conn: &mut TcpStream, status: &str, body: &[u8]| {
                    let _ = conn.write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    let _ = conn.write_all(body);
                };
                match (mode, section) {
                    (Mode::Down, _) => {}
                    (Mode::Slow, _) => std::thread::sleep(Duration::from_secs(10)),
                    (Mode::Error500, _) => {
                        answer(&mut conn, "500 Internal Server Error", b"internal error")
                    }
                    (Mode::Garbage, None) => {
                        let junk: Vec<u8> = (0..300u32).map(|i| (i * 73 + 11) as u8).collect();
                        answer(&mut conn, "200 OK", &junk);
                    }
                    (Mode::Endless, Some(_)) => {
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                        let chunk = vec![7u8; 64 * 1024];
                        while conn.write_all(&chunk).is_ok() {}
                    }
                    (Mode::Truncated, Some(blob)) => {
                        let bytes = std::fs::read(blob).unwrap_or_default();
                        answer(&mut conn, "200 OK", &bytes[..bytes.len() / 2]);
                    }
                    _ => {
                        // Forward, one request per connection.
                        let Ok(mut up) = TcpStream::connect(upstream) else {
                            return;
                        };
                        let head: String = head
                            .trim_end()
                            .split("\r\n")
                            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                            .map(|l| format!("{l}\r\n"))
                            .collect();
                        let _ = up.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                        let _ = std::io::copy(&mut up, &mut conn);
                    }
                }
            });
        }
    });
    Proxy {
        url,
        mode,
        requests,
    }
}

#[test]
fn installs_answers_304s_downloads_deltas_and_reopens_offline() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let v1 = publish(&store, 1);
    let proxy = fault_proxy(start(&store), store.clone());
    let local = dir.path().join("client");

    let mut c = client(&proxy.url, DirStore::new(&local));
    assert!(c.recommender().is_none());
    let first = c.sync_at(NOW + 60);
    assert!(first.updated, "{first:?}");
    assert_eq!(first.version, Some(1));
    assert_eq!(first.downloaded_bytes, v1.manifest_bytes + v1.delta_bytes);
    assert_eq!(c.status().label.as_deref(), Some(v1.label.as_str()));
    let rec = c.recommender().unwrap();
    assert_eq!(rec.model().contents().release.as_ref().unwrap().version, 1);

    // Nothing new: a 304, no bytes.
    let again = c.sync_at(NOW + 120);
    assert!(!again.updated && again.error.is_none(), "{again:?}");
    assert_eq!(again.downloaded_bytes, 0);

    // A popularity-only release: the manifest and the changed sections only.
    let v2 = publish(&store, 2);
    assert!(v2.delta_bytes < v2.bundle_bytes);
    let delta = c.sync_at(NOW + 180);
    assert!(delta.updated, "{delta:?}");
    assert_eq!(delta.downloaded_bytes, v2.manifest_bytes + v2.delta_bytes);
    assert_eq!(c.status().version, Some(2));
    // The swap did not touch the recommender a caller still holds.
    assert_eq!(rec.model().contents().release.as_ref().unwrap().version, 1);
    assert_eq!(
        c.status().downloaded_bytes,
        first.downloaded_bytes + delta.downloaded_bytes
    );
    // Blobs of v1 only are collected.
    assert_eq!(c.store().list_blobs().unwrap().len(), v2.sections);

    // The requests say nothing about the user: a path, the host, an ETag, an encoding.
    for head in proxy.requests.lock().unwrap().iter() {
        for line in head.trim_end().split("\r\n").skip(1) {
            let name = line.split(':').next().unwrap().to_ascii_lowercase();
            assert!(
                ["host", "accept-encoding", "if-none-match"].contains(&name.as_str()),
                "{line}"
            );
        }
    }
    drop(c);

    // Offline: the server is gone, the store opens and serves.
    let mut offline = client("http://127.0.0.1:9", DirStore::new(&local));
    assert_eq!(offline.status().version, Some(2));
    assert!(offline.recommender().is_some());
    let down = offline.sync_at(NOW + 240);
    assert_eq!(down.error.unwrap().code, "network");
    assert_eq!(offline.status().version, Some(2));
}

#[test]
fn server_faults_keep_the_old_model_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    publish(&store, 1);
    let proxy = fault_proxy(start(&store), store.clone());
    let mut c = client(&proxy.url, MemStore::default());
    assert!(c.sync_at(NOW + 60).updated);
    let serving = c.recommender().unwrap();
    publish(&store, 2);

    for (mode, code) in [
        (Mode::Down, "network"),
        (Mode::Slow, "timeout"),
        (Mode::Error500, "http_error"),
        (Mode::Garbage, "bad_manifest"),
        (Mode::Endless, "section_mismatch"),
        (Mode::Truncated, "section_mismatch"),
    ] {
        proxy.set(mode);
        let r = c.sync_at(NOW + 120);
        assert_eq!(
            r.error.as_ref().map(|e| e.code),
            Some(code),
            "{mode:?}: {r:?}"
        );
        assert!(!r.updated);
        assert_eq!(c.status().version, Some(1), "{mode:?}");
        assert!(Arc::ptr_eq(&c.recommender().unwrap(), &serving), "{mode:?}");
        assert_eq!(c.status().last_error.as_ref().unwrap().code, code);
    }
    assert_eq!(c.failures(), 6);
    assert_eq!(
        c.status().last_refused.as_ref().unwrap().code,
        "section_mismatch"
    );

    proxy.set(Mode::Pass);
    let healed = c.sync_at(NOW + 180);
    assert!(healed.updated, "{healed:?}");
    assert_eq!(c.status().version, Some(2));
    assert_eq!(c.failures(), 0);
    assert!(c.status().last_error.is_none());
}

/// Writes `bytes` as the channel's current manifest (what a hostile server or mirror serves).
fn serve_manifest(store: &Path, bytes: &[u8]) {
    std::fs::write(store.join("channels/stable/manifest"), bytes).unwrap();
}

#[test]
fn refuses_bad_signatures_unknown_keys_rollback_expiry_and_mixed_or_missing_sections() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for day in 1..=3 {
        publish(&store, day);
    }
    let addr = start(&store);
    let url = format!("http://{addr}");
    let mut c = client(&url, MemStore::default());
    assert!(c.sync_at(NOW + 60).updated);
    let manifest_path = store.join("channels/stable/manifest");
    let good = std::fs::read(&manifest_path).unwrap();

    // Serves `bytes` for one sync, then the channel's manifest again.
    let refused = |c: &mut Client<MemStore, HttpTransport>, bytes: &[u8], code: &str, now| {
        let current = std::fs::read(&manifest_path).unwrap();
        serve_manifest(&store, bytes);
        let r = c.sync_at(now);
        serve_manifest(&store, &current);
        assert_eq!(r.error.as_ref().map(|e| e.code), Some(code), "{r:?}");
        assert_eq!(c.status().version, Some(3));
        assert_eq!(c.status().last_refused.as_ref().unwrap().code, code);
    };

    // Arbitrary install: a flipped signature bit, then a key the client does not trust.
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 1;
    refused(&mut c, &flipped, "bad_signature", NOW + 60);
    let other = dir.path().join("other");
    for day in 1..=5 {
        publish_as(
            &other,
            &Signing::single(SecretKey::from_seed([9; 32])),
            day,
            PublishOptions::new("stable", NOW),
        );
    }
    refused(
        &mut c,
        &std::fs::read(other.join("channels/stable/manifest")).unwrap(),
        "untrusted_key",
        NOW + 60,
    );
    // Rollback: an older signed manifest of the channel.
    refused(
        &mut c,
        &std::fs::read(store.join("channels/stable/1.manifest")).unwrap(),
        "rollback",
        NOW + 60,
    );
    // Another channel's manifest.
    let beta = dir.path().join("beta");
    for day in 1..=5 {
        publish_as(
            &beta,
            &Signing::single(key()),
            day,
            PublishOptions::new("beta", NOW),
        );
    }
    refused(
        &mut c,
        &std::fs::read(beta.join("channels/beta/manifest")).unwrap(),
        "wrong_channel",
        NOW + 60,
    );
    // Indefinite freeze: the server keeps answering the same manifest past its expiry (a
    // 304 to the client's ETag); the device keeps its model and reports it stale.
    assert!(!c.status().stale);
    let frozen = c.sync_at(NOW + 8 * 86_400);
    assert!(frozen.error.is_none() && !frozen.updated, "{frozen:?}");
    assert!(c.status().stale);
    assert_eq!(c.status().version, Some(3));
    // Without the ETag (a fresh device), the expired manifest itself is refused.
    let mut fresh = client(&url, MemStore::default());
    let r = fresh.sync_at(NOW + 8 * 86_400);
    assert_eq!(r.error.as_ref().map(|e| e.code), Some("expired"), "{r:?}");
    assert!(fresh.recommender().is_none());

    // Mix-and-match: the next release's new section replaced by another section's bytes.
    let v4 = publish(&store, 4);
    let hashes = |v: u64| -> Vec<String> {
        std::fs::read_to_string(store.join(format!("channels/stable/{v}.sections")))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let old = hashes(3);
    let fresh = hashes(4).into_iter().find(|h| !old.contains(h)).unwrap();
    let blob = store.join("sections").join(&fresh);
    let original = std::fs::read(&blob).unwrap();
    std::fs::write(
        &blob,
        std::fs::read(store.join("sections").join(&old[0])).unwrap(),
    )
    .unwrap();
    let mixed = c.sync_at(NOW + 60);
    assert_eq!(
        mixed.error.as_ref().map(|e| e.code),
        Some("section_mismatch"),
        "{mixed:?}"
    );
    assert_eq!(c.status().version, Some(3));
    std::fs::write(&blob, original).unwrap();

    // A signed manifest that omits a required section (CATL): the container it names is
    // consistent, the bundle is not.
    let v4_bytes = std::fs::read(&manifest_path).unwrap();
    let mut m = Manifest::verify(
        &v4_bytes,
        &trust(),
        &edgerec::release::Expect {
            channel: "stable",
            now: None,
            installed_version: None,
            key_set_serial: None,
        },
    )
    .unwrap()
    .manifest;
    m.version = v4.version + 1;
    m.sections.retain(|s| &s.tag != b"CATL");
    let header = container_header(&m.sections).unwrap();
    m.header_sha256 = Sha256::digest(&header[..header.len() - 32]).into();
    m.bundle_length = header.len() as u64 + m.sections.iter().map(|s| s.length).sum::<u64>();
    let set = KeySet {
        serial: 1,
        expires: 253_402_300_799,
        keys: vec![key().public_key()],
    }
    .sign(&[&key()])
    .unwrap();
    let omitting = m.sign(&set, &key()).unwrap();
    refused(&mut c, &omitting, "missing_section", NOW + 60);

    // Healthy again: the right model installs, stale clears.
    let healed = c.sync_at(NOW + 60);
    assert!(healed.updated, "{healed:?}");
    assert_eq!(c.status().version, Some(v4.version));
    assert!(!c.status().stale);
}

#[test]
fn a_rotated_out_signing_key_is_refused_once_the_new_key_set_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let root = SecretKey::from_seed([1; 32]);
    let (a, b) = (SecretKey::from_seed([2; 32]), SecretKey::from_seed([3; 32]));
    let trust = TrustRoot::single(root.public_key());
    let set = |serial, k: &SecretKey| {
        KeySet {
            serial,
            expires: NOW + 3650 * 86_400,
            keys: vec![k.public_key()],
        }
        .sign(&[&root])
        .unwrap()
    };
    let signing_a = Signing::delegated(a.clone(), set(1, &a), trust.clone()).unwrap();
    let signing_b = Signing::delegated(b.clone(), set(2, &b), trust.clone()).unwrap();
    let store = dir.path().join("store");
    publish_as(&store, &signing_a, 1, PublishOptions::new("stable", NOW));
    let url = format!("http://{}", start(&store));
    let mut c = Client::open(
        Options::new(trust, "stable").unwrap(),
        MemStore::default(),
        HttpTransport::new(&url, Duration::from_secs(2)).unwrap(),
    );
    assert!(c.sync_at(NOW + 60).updated);
    publish_as(&store, &signing_b, 2, PublishOptions::new("stable", NOW));
    assert!(c.sync_at(NOW + 60).updated);
    // The old key under its old key set, at a higher version: refused.
    let old = dir.path().join("old");
    for day in 1..=4 {
        publish_as(&old, &signing_a, day, PublishOptions::new("stable", NOW));
    }
    serve_manifest(
        &store,
        &std::fs::read(old.join("channels/stable/manifest")).unwrap(),
    );
    let r = c.sync_at(NOW + 60);
    let error = r.error.unwrap();
    assert_eq!(error.code, "rollback");
    assert!(
        error.message.contains("key set serial"),
        "{}",
        error.message
    );
    assert_eq!(c.status().version, Some(2));
}

/// A store that dies (the process is killed) at the switch: after every download, before the
/// manifest is written.
struct DiesAtSwitch(DirStore);

impl Store for DiesAtSwitch {
    fn get_meta(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.0.get_meta(name)
    }
    fn put_meta(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        if name == "manifest" {
            std::process::abort();
        }
        self.0.put_meta(name, bytes)
    }
    fn get_blob(&self, sha: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.0.get_blob(sha)
    }
    fn put_blob(&mut self, sha: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.0.put_blob(sha, bytes)
    }
    fn delete_blob(&mut self, sha: &str) -> anyhow::Result<()> {
        self.0.delete_blob(sha)
    }
    fn list_blobs(&self) -> anyhow::Result<Vec<String>> {
        self.0.list_blobs()
    }
}

const CHILD: &str = "EDGEREC_SYNC_CRASH_CHILD";

/// Run by `a_crash_between_download_and_swap_leaves_the_old_model_installed` in a child
/// process: syncs with a store that kills the process at the switch.
#[test]
#[ignore = "run as a child process by the crash test"]
fn crash_child() {
    let Ok(args) = std::env::var(CHILD) else {
        return;
    };
    let (url, dir) = args.split_once('|').unwrap();
    let mut c = client(url, DiesAtSwitch(DirStore::new(Path::new(dir))));
    c.sync_at(NOW + 60);
    unreachable!("the store kills the process at the switch");
}

#[test]
fn a_crash_between_download_and_swap_leaves_the_old_model_installed() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    publish(&store, 1);
    let url = format!("http://{}", start(&store));
    let local = dir.path().join("client");
    assert!(
        client(&url, DirStore::new(&local))
            .sync_at(NOW + 60)
            .updated
    );
    let v2 = publish(&store, 2);

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, format!("{url}|{}", local.display()))
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(6), "{status:?}");
    // The new sections were downloaded, the switch never happened: the old release opens.
    let held = DirStore::new(&local).list_blobs().unwrap().len();
    assert!(
        held > v2.sections,
        "the child downloaded before dying ({held} blobs)"
    );
    let mut reopened = client("http://127.0.0.1:9", DirStore::new(&local));
    assert_eq!(reopened.status().version, Some(1));
    assert!(reopened.recommender().is_some());
    assert_eq!(reopened.sync_at(NOW + 60).error.unwrap().code, "network");
    // Healthy: v2 installs from the blobs already held (only the manifest is downloaded).
    let mut healthy = client(&url, DirStore::new(&local));
    let r = healthy.sync_at(NOW + 60);
    assert!(r.updated, "{r:?}");
    assert_eq!(r.downloaded_bytes, v2.manifest_bytes);
    assert_eq!(healthy.status().version, Some(2));
}
