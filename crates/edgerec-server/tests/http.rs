//! The server on loopback, spoken to in plain HTTP/1.1 over a TCP socket: what a device sees.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use edgerec::release::SecretKey;
use edgerec_release::{PublishOptions, Signing, Store};
use edgerec_server::ServerConfig;

mod common;
use common::start;

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// One request on its own connection; the body de-chunked (not decompressed).
fn request(addr: SocketAddr, method: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[])
}

fn publish(store: &Path, reference_time: i64, now: i64) -> edgerec_release::Published {
    let mut contents = edgerec::test_support::tiny_contents();
    contents.popularity.reference_time = reference_time;
    let signing = Signing::single(SecretKey::from_seed([8; 32]));
    Store::open(store)
        .unwrap()
        .publish(
            &contents.encode(),
            &signing,
            &PublishOptions::new("stable", now),
        )
        .unwrap()
}

#[test]
fn manifests_are_conditional_and_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = publish(&store, 0, 1_000);
    let addr = start(ServerConfig::new(store.clone()));

    let a = get(addr, "/v1/channels/stable/manifest");
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len() as u64, first.manifest_bytes);
    let etag = a.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", first.manifest_sha256));
    assert_eq!(a.header("cache-control"), Some("no-cache"));
    let again = request(
        addr,
        "GET",
        "/v1/channels/stable/manifest",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // A new publish is served at once; the old ETag no longer matches.
    let second = publish(&store, 86_400, 2_000);
    let b = request(
        addr,
        "GET",
        "/v1/channels/stable/manifest",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(b.status, 200);
    assert_eq!(
        b.header("etag").unwrap(),
        format!("\"{}\"", second.manifest_sha256)
    );

    let v = get(addr, "/v1/version").json();
    assert_eq!(v["channels"]["stable"]["version"], 2);
    assert_eq!(get(addr, "/v1/health").json()["status"], "ok");
    let missing = get(addr, "/v1/channels/beta/manifest");
    assert_eq!(
        (missing.status, missing.json()["error"].as_str()),
        (404, Some("no_release"))
    );
    let bad = get(addr, "/v1/channels/..%2Fsecret/manifest");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "bad_channel");
}

#[test]
fn sections_are_immutable_compressed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    publish(&store, 0, 1_000);
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>demo</h1>").unwrap();
    let mut config = ServerConfig::new(store.clone());
    config.mounts.push(("/".into(), www));
    let addr = start(config);

    let blobs: Vec<_> = std::fs::read_dir(store.join("sections"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!blobs.is_empty());
    let (largest, bytes) = blobs
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let name = largest.file_name().unwrap().to_str().unwrap().to_string();
    let path = format!("/v1/sections/{name}");
    let a = get(addr, &path);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, bytes);
    assert_eq!(
        a.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(a.header("etag"), Some(format!("\"{name}\"").as_str()));
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    let cached = request(
        addr,
        "GET",
        &path,
        &[("If-None-Match", &format!("\"{name}\""))],
    );
    assert_eq!(cached.status, 304);
    let range = request(addr, "GET", &path, &[("Range", "bytes=0-3")]);
    assert_eq!((range.status, range.body.as_slice()), (206, &bytes[..4]));

    let gz = request(addr, "GET", &path, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, bytes);
    let br = request(addr, "GET", &path, &[("Accept-Encoding", "br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));

    let unknown = get(addr, &format!("/v1/sections/{}", "0".repeat(64)));
    assert_eq!(
        (unknown.status, unknown.json()["error"].as_str()),
        (404, Some("no_section"))
    );
    let bad = get(addr, "/v1/sections/..%2F..%2Fetc%2Fpasswd");
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (400, Some("bad_hash"))
    );
    let nowhere = get(addr, "/v1/nothing");
    assert_eq!(
        (nowhere.status, nowhere.json()["error"].as_str()),
        (404, Some("not_found"))
    );
    let post = request(addr, "POST", "/v1/health", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);

    let page = get(addr, "/");
    assert_eq!(
        (page.status, page.body.as_slice()),
        (200, b"<h1>demo</h1>".as_slice())
    );
    assert_eq!(get(addr, "/../Cargo.toml").status, 404);
}
