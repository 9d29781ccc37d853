//! A bounded loopback load benchmark of the release server (a benchmark, not a test; CI does
//! not run it, and nothing here asserts a speed): what a fleet of devices keeping their model
//! current costs `edgerec serve` (issue 14).
//!
//! ```text
//! cargo run -p edgerec-server --example load -- [--bundle artifacts/bundle.edgerec] [options]
//! bash scripts/bench-serve.sh        # builds this and runs it, with the demo's bundle if any
//! ```
//!
//! **The store** (a temporary directory): the bundle given by `--bundle`, or else a synthetic
//! one — the test-support bundle's `META` with `--items` titles (default 20,000) over 20
//! genres, `POPL` and int8 iALS factors of dimension 64 (`FACT`, the shape `bundle build
//! --int8` writes at that size, without media, features or a ranker) — published to `stable`
//! twice with [`edgerec_release::Store::publish`], the second time with its popularity a day
//! newer as a daily refresh would be. So the manifest served is version 2's, signed, naming
//! real section blobs, and version 1's blobs are still in the store.
//!
//! **The server**: [`edgerec_server::serve`] as [`edgerec_server::run`] runs it for `edgerec
//! serve`: the accept loop on its own thread (`srv-accept`, in `block_on`), the connections on
//! a tokio runtime of `--server-threads` workers (`srv-w*`, default 1); the file reads of the
//! handlers go through tokio's blocking pool (`srv-b*`). It listens on 127.0.0.1:0.
//!
//! **The clients**: `--clients` (default 64) keep-alive HTTP/1.1 connections, opened before the
//! clock starts, on a separate runtime of `--client-threads` workers (`cli-*`, default 1),
//! speaking raw HTTP over a `TcpStream` (status line, headers, `Content-Length`, chunked bodies
//! and their trailers). Together they send `--requests` requests (default 20,000), or as many
//! as fit in `--seconds` (given both, whichever ends first); request `i` is drawn from a fixed
//! mix by a hash of `i`, so every run sends the same sequence:
//!
//! * a poll (the rest of the mix): `GET /v1/channels/stable/manifest` with `If-None-Match:` the
//!   current `ETag`, which must be answered `304` with that `ETag` and no body;
//! * a manifest fetch (`--fresh-ratio`, 0.05): the same without `If-None-Match`, `200`, the
//!   whole signed manifest (length checked) and its `ETag`;
//! * a section download (`--section-ratio`, 0.05): `GET /v1/sections/<sha256>` of one of the
//!   current version's sections (uniformly), `200`, the whole blob (length checked after
//!   decoding) and its `ETag`.
//!
//! * an event batch (`--events-ratio`, default 0): `POST /v1/events` of a `full` batch of
//!   `--events-per-batch` (default 20) impressions with ids unique to the request, from one of
//!   4,096 devices, into a SQLite event store in the temporary directory (WAL,
//!   `synchronous=FULL`: answered only once durable), which must be answered `200` with every
//!   event accepted. With events in the mix the report adds events/s of wall clock and per
//!   server core (the server's threads include its event writer).
//!
//! `--accept-encoding VALUE` (e.g. `"gzip, br"`, as browsers send) adds `Accept-Encoding` to
//! every request; gzip and br answers are decoded before their length is checked. A request
//! answered otherwise — another status, a wrong `ETag` or length, an I/O error, no answer
//! within 10 s — is an error (the connection is reopened after I/O errors and timeouts), and
//! any error makes the example exit with status 1 after its report.
//!
//! **What it reports**: per kind the requests, errors, median and 99th-percentile latency
//! (request written to whole body read, on loopback, measured by the client) and body bytes
//! on the wire and decoded; the wall-clock requests/s; and the CPU time of the server's threads
//! and of the client's over the run, read from `/proc/self/task/*/schedstat` (Linux; `n/a`
//! elsewhere), so requests per second of server CPU — requests/s per server core — is
//! reported besides wall-clock requests/s: client and server share the machine's cores, and
//! the client's share is not the server's cost. A Markdown report, then one JSON line
//! (`{"bench":"serve",…}`).
//!
//! Options: `--bundle PATH`, `--items N`, `--clients N`, `--requests N`, `--seconds S`,
//! `--server-threads N`, `--client-threads N`, `--fresh-ratio R`, `--section-ratio R`,
//! `--events-ratio R`, `--events-per-batch N`, `--accept-encoding VALUE`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::bundle::{BundleContents, IalsFactors};
use edgerec::catalog::{Catalog, Item};
use edgerec::ials::Factors;
use edgerec::release::SecretKey;
use edgerec::rng::{SplitMix64, splitmix64};
use edgerec_release::{PublishOptions, Signing, Store};
use edgerec_server::ServerConfig;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// The channel the store publishes to and the clients poll.
const CHANNEL: &str = "stable";
/// A request not answered in full within this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest status or header line the client reads.
const MAX_LINE: u64 = 8 * 1024;
/// The most header lines the client reads in one answer.
const MAX_HEADERS: usize = 100;
/// The largest body the client accepts (a section is far smaller).
const MAX_BODY: usize = 1 << 30;
/// Error messages kept for the report (every error is counted).
const MAX_ERROR_SAMPLES: usize = 10;

const USAGE: &str = "usage: load [--bundle PATH] [--items N] [--clients N] [--requests N] \
[--seconds S] [--server-threads N] [--client-threads N] [--fresh-ratio R] [--section-ratio R] \
[--events-ratio R] [--events-per-batch N] [--accept-encoding VALUE]";

/// The command line (see the module docs).
#[derive(Debug)]
struct Args {
    bundle: Option<PathBuf>,
    items: usize,
    clients: usize,
    /// `None`: unbounded (only with `seconds`).
    requests: Option<u64>,
    seconds: Option<f64>,
    server_threads: usize,
    client_threads: usize,
    fresh_ratio: f64,
    section_ratio: f64,
    events_ratio: f64,
    events_per_batch: usize,
    accept_encoding: Option<String>,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            bundle: None,
            items: 20_000,
            clients: 64,
            requests: None,
            seconds: None,
            server_threads: 1,
            client_threads: 1,
            fresh_ratio: 0.05,
            section_ratio: 0.05,
            events_ratio: 0.0,
            events_per_batch: 20,
            accept_encoding: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .with_context(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--bundle" => args.bundle = Some(value()?.into()),
                "--items" => args.items = number(&flag, &value()?)?,
                "--clients" => args.clients = number(&flag, &value()?)?,
                "--requests" => args.requests = Some(number(&flag, &value()?)?),
                "--seconds" => args.seconds = Some(number(&flag, &value()?)?),
                "--server-threads" => args.server_threads = number(&flag, &value()?)?,
                "--client-threads" => args.client_threads = number(&flag, &value()?)?,
                "--fresh-ratio" => args.fresh_ratio = number(&flag, &value()?)?,
                "--section-ratio" => args.section_ratio = number(&flag, &value()?)?,
                "--events-ratio" => args.events_ratio = number(&flag, &value()?)?,
                "--events-per-batch" => args.events_per_batch = number(&flag, &value()?)?,
                "--accept-encoding" => args.accept_encoding = Some(value()?),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => bail!("unknown argument {flag}\n{USAGE}"),
            }
        }
        if args.requests.is_none() && args.seconds.is_none() {
            args.requests = Some(20_000);
        }
        ensure!(args.items >= 1, "--items must be at least 1");
        ensure!(args.clients >= 1, "--clients must be at least 1");
        ensure!(
            args.server_threads >= 1 && args.client_threads >= 1,
            "--server-threads and --client-threads must be at least 1"
        );
        ensure!(
            args.seconds.is_none_or(|s| s > 0.0 && s.is_finite()),
            "--seconds must be positive"
        );
        ensure!(
            (0.0..=1.0).contains(&args.fresh_ratio)
                && (0.0..=1.0).contains(&args.section_ratio)
                && (0.0..=1.0).contains(&args.events_ratio)
                && args.fresh_ratio + args.section_ratio + args.events_ratio <= 1.0 + 1e-9,
            "--fresh-ratio, --section-ratio and --events-ratio are fractions that add up to at most 1"
        );
        ensure!(
            (1..=edgerec::events::MAX_EVENTS).contains(&args.events_per_batch),
            "--events-per-batch must be within 1..={}",
            edgerec::events::MAX_EVENTS
        );
        if let Some(v) = &args.accept_encoding {
            ensure!(
                !v.contains(['\r', '\n']),
                "--accept-encoding must be one header line"
            );
        }
        Ok(args)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{flag}: {value:?} is not a valid number"))
}

// ---------------------------------------------------------------------------------------------
// The store

/// What the store serves: the current manifest and the current version's sections.
struct Served {
    /// Where the bundle came from, for the report.
    source: String,
    bundle_bytes: u64,
    version: u64,
    /// The manifest's `ETag` (quoted sha256) and length.
    etag: String,
    manifest_bytes: u64,
    /// The current version's sections: sha256 in hex and length.
    sections: Vec<(String, u64)>,
}

/// A synthetic bundle of `items` titles (see the module docs); seeded, so every run publishes
/// the same bytes.
fn synthetic_bundle(items: usize) -> Result<BundleContents> {
    const GENRES: usize = 20;
    const DIM: usize = 64;
    let mut rng = SplitMix64::new(14);
    let mut contents = edgerec::test_support::tiny_contents();
    let genres = (0..GENRES).map(|g| format!("Genre {g}")).collect();
    let titles = (0..items)
        .map(|i| {
            let year = 1950 + rng.below(75) as u16;
            let genres = vec![rng.below(GENRES) as u16, rng.below(GENRES) as u16];
            Item::new(i as u32 + 1, format!("Title {}", i + 1), Some(year), genres)
        })
        .collect();
    contents.catalog = Catalog::new(genres, titles)?;
    // Zipf-like popularity by position.
    contents.popularity.scores = (0..items).map(|i| 1.0 / (1.0 + i as f32)).collect();
    let values = (0..items * DIM).map(|_| rng.signed_unit()).collect();
    let factors = Factors::new(DIM, values).context("factor rows")?;
    contents.ials = Some(IalsFactors::from_factors(factors, 20.0, 0.1)?.quantized()?);
    contents.meta.model_version = format!("load-{items}");
    Ok(contents)
}

/// Publishes the bundle twice into a store at `dir` (see the module docs).
fn build_store(dir: &Path, args: &Args) -> Result<Served> {
    let (mut contents, source) = match &args.bundle {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let contents = BundleContents::decode(&bytes)
                .with_context(|| format!("{} does not decode", path.display()))?;
            (contents, path.display().to_string())
        }
        None => (
            synthetic_bundle(args.items)?,
            format!("synthetic, {} titles", args.items),
        ),
    };
    let store = Store::open(dir)?;
    let signing = Signing::single(SecretKey::from_seed([14; 32]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs() as i64;
    store.publish(
        &contents.encode(),
        &signing,
        &PublishOptions::new(CHANNEL, now - 86_400),
    )?;
    contents.popularity.reference_time += 86_400;
    let published = store.publish(
        &contents.encode(),
        &signing,
        &PublishOptions::new(CHANNEL, now),
    )?;

    // The version's section list, as the store keeps it (`<v>.sections`, one hash a line).
    let list = dir
        .join("channels")
        .join(CHANNEL)
        .join(format!("{}.sections", published.version));
    let text =
        std::fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let mut sections = Vec::new();
    for hash in text.lines().filter(|l| !l.is_empty()) {
        let blob = store.layout().section(hash).context("a section hash")?;
        let len = std::fs::metadata(&blob)
            .with_context(|| format!("reading {}", blob.display()))?
            .len();
        sections.push((hash.to_string(), len));
    }
    ensure!(!sections.is_empty(), "the release has no sections");
    Ok(Served {
        source,
        bundle_bytes: published.bundle_bytes,
        version: published.version,
        etag: format!("\"{}\"", published.manifest_sha256),
        manifest_bytes: published.manifest_bytes,
        sections,
    })
}

// ---------------------------------------------------------------------------------------------
// The server

/// The server on 127.0.0.1:0, as `edgerec serve` runs it, on its own threads.
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Server {
    fn start(store: PathBuf, events: Option<PathBuf>, workers: usize) -> Result<Server> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("srv-accept".into())
            .spawn(move || -> Result<()> {
                // Tokio starts its workers when the runtime is built, before any blocking-pool
                // thread, so the first `workers` names are the workers'.
                let started = AtomicUsize::new(0);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name_fn(move || {
                        let i = started.fetch_add(1, Ordering::Relaxed);
                        if i < workers {
                            format!("srv-w{i}")
                        } else {
                            format!("srv-b{}", i - workers)
                        }
                    })
                    // Idle blocking-pool threads would exit after 10 s, taking their CPU time
                    // out of /proc before the report reads it.
                    .thread_keep_alive(Duration::from_secs(24 * 3600))
                    .enable_all()
                    .build()
                    .context("starting the server's runtime")?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .context("binding 127.0.0.1:0")?;
                    let _ = ready_tx.send(listener.local_addr()?);
                    let shutdown = async {
                        let _ = stop_rx.await;
                    };
                    let mut config = ServerConfig::new(store);
                    config.events = events;
                    edgerec_server::serve(listener, config, shutdown).await
                })
            })
            .context("starting the server's thread")?;
        match ready_rx.recv() {
            Ok(addr) => Ok(Server { addr, stop, thread }),
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e.context("the server did not start")),
                _ => bail!("the server did not start"),
            },
        }
    }

    /// Stops the server (graceful: the clients have closed their connections) and waits.
    fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => bail!("the server's thread panicked"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The mix of requests

/// What a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A manifest poll with `If-None-Match`: `304`.
    Poll = 0,
    /// An unconditional manifest fetch: `200`.
    Manifest = 1,
    /// A section download: `200`.
    Section = 2,
    /// An event batch: `200`, every event accepted.
    Events = 3,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Poll, Kind::Manifest, Kind::Section, Kind::Events];

    fn name(self) -> &'static str {
        match self {
            Kind::Poll => "poll",
            Kind::Manifest => "manifest",
            Kind::Section => "section",
            Kind::Events => "events",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Poll => "manifest, If-None-Match → 304",
            Kind::Manifest => "manifest → 200",
            Kind::Section => "section → 200",
            Kind::Events => "event batch, POST → 200",
        }
    }
}

/// One request, written once, and what its answer must be.
#[derive(Clone)]
struct Prepared {
    kind: Kind,
    bytes: Vec<u8>,
    status: u16,
    etag: String,
    /// The body's length once decoded (for an event batch: the events it must accept).
    body_len: u64,
}

/// Every request the clients may send, and the mix.
struct Plan {
    poll: Prepared,
    manifest: Prepared,
    sections: Vec<Prepared>,
    fresh_ratio: f64,
    section_ratio: f64,
    events_ratio: f64,
    events_per_batch: usize,
    addr: SocketAddr,
}

impl Plan {
    fn new(served: &Served, addr: SocketAddr, args: &Args) -> Plan {
        let request = |path: &str, if_none_match: Option<&str>| {
            let mut r =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: edgerec-load\r\n");
            if let Some(etag) = if_none_match {
                r.push_str(&format!("If-None-Match: {etag}\r\n"));
            }
            if let Some(enc) = &args.accept_encoding {
                r.push_str(&format!("Accept-Encoding: {enc}\r\n"));
            }
            r.push_str("\r\n");
            r.into_bytes()
        };
        let manifest_path = format!("/v1/channels/{CHANNEL}/manifest");
        Plan {
            poll: Prepared {
                kind: Kind::Poll,
                bytes: request(&manifest_path, Some(&served.etag)),
                status: 304,
                etag: served.etag.clone(),
                body_len: 0,
            },
            manifest: Prepared {
                kind: Kind::Manifest,
                bytes: request(&manifest_path, None),
                status: 200,
                etag: served.etag.clone(),
                body_len: served.manifest_bytes,
            },
            sections: served
                .sections
                .iter()
                .map(|(hash, len)| Prepared {
                    kind: Kind::Section,
                    bytes: request(&format!("/v1/sections/{hash}"), None),
                    status: 200,
                    etag: format!("\"{hash}\""),
                    body_len: *len,
                })
                .collect(),
            fresh_ratio: args.fresh_ratio,
            section_ratio: args.section_ratio,
            events_ratio: args.events_ratio,
            events_per_batch: args.events_per_batch,
            addr,
        }
    }

    /// Request `i` as an event batch: impressions with ids unique to `i`, from one of 4,096
    /// devices, at the current time.
    fn events(&self, i: u64) -> Prepared {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let events: Vec<serde_json::Value> = (0..self.events_per_batch)
            .map(|k| {
                serde_json::json!({"id": format!("e{i}-{k}"), "clientTime": now, "sessionId": i,
                    "modelVersion": "load", "type": "impression", "rowId": format!("r{i}"),
                    "items": [1 + k as u32, 2 + k as u32], "device": "tv"})
            })
            .collect();
        let body = serde_json::json!({"schema": "edgerec-events/1", "privacy": "full",
            "deviceId": format!("load-{}", i % 4096), "events": events})
        .to_string();
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgerec-load\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        Prepared {
            kind: Kind::Events,
            bytes: [head.into_bytes(), body.into_bytes()].concat(),
            status: 200,
            etag: String::new(),
            body_len: self.events_per_batch as u64,
        }
    }

    /// Request `i` of the run: drawn by a hash of `i`, so every run sends the same sequence.
    fn pick(&self, i: u64) -> std::borrow::Cow<'_, Prepared> {
        use std::borrow::Cow;
        let mut state = i;
        let u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.events_ratio {
            Cow::Owned(self.events(i))
        } else if u < self.events_ratio + self.section_ratio {
            let which = splitmix64(&mut state) % self.sections.len() as u64;
            Cow::Borrowed(&self.sections[which as usize])
        } else if u < self.events_ratio + self.section_ratio + self.fresh_ratio {
            Cow::Borrowed(&self.manifest)
        } else {
            Cow::Borrowed(&self.poll)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client: raw HTTP/1.1 over one keep-alive connection

/// An answer, its body de-chunked but not decoded.
struct Answer {
    status: u16,
    etag: Option<String>,
    encoding: Option<String>,
    body: Vec<u8>,
    /// The server closes the connection after this answer.
    close: bool,
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// One keep-alive connection.
struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            io: BufReader::with_capacity(64 * 1024, stream),
        })
    }

    /// Writes `request` and reads its whole answer (RFC 9112 §6.3's framing: no body after a
    /// `304` or `204`, else chunked, else `Content-Length`, else up to the close).
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        self.io.get_mut().write_all(request).await?;
        let status_line = self.line().await?;
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next(), parts.next());
        if !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
            return Err(invalid(format!("bad status line {status_line:?}")));
        }
        let status: u16 = code
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        let (mut etag, mut encoding) = (None, None);
        let mut headers = 0;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            headers += 1;
            if headers > MAX_HEADERS {
                return Err(invalid("too many header lines"));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(invalid("conflicting Content-Length headers"));
                    }
                    length = Some(n);
                }
                "transfer-encoding" => {
                    chunked = value
                        .rsplit(',')
                        .next()
                        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
                }
                "connection" => {
                    close |= value
                        .split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("close"));
                }
                "etag" => etag = Some(value.to_string()),
                "content-encoding" => encoding = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        if (100..200).contains(&status) {
            // Never asked for (no `Expect`), so never skipped over.
            return Err(invalid(format!("unexpected interim answer {status}")));
        }
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            self.chunked().await?
        } else if let Some(n) = length {
            self.exact(n).await?
        } else {
            // Neither: the body runs to the close.
            close = true;
            let mut body = Vec::new();
            (&mut self.io)
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)
                .await?;
            if body.len() > MAX_BODY {
                return Err(invalid("body too large"));
            }
            body
        };
        Ok(Answer {
            status,
            etag,
            encoding,
            body,
            close,
        })
    }

    /// One CRLF-terminated line, without its CRLF.
    async fn line(&mut self) -> std::io::Result<String> {
        let mut raw = Vec::new();
        let n = (&mut self.io)
            .take(MAX_LINE)
            .read_until(b'\n', &mut raw)
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if !raw.ends_with(b"\r\n") {
            return Err(invalid("a line too long or not ended by CRLF"));
        }
        raw.truncate(raw.len() - 2);
        String::from_utf8(raw).map_err(|_| invalid("a line that is not UTF-8"))
    }

    async fn exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        if n > MAX_BODY {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0; n];
        self.io.read_exact(&mut body).await?;
        Ok(body)
    }

    /// A chunked body: `size[;ext] CRLF data CRLF` … `0 CRLF`, trailer lines, `CRLF`.
    async fn chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("body too large"));
            }
            body.extend_from_slice(&self.exact(size).await?);
            if !self.line().await?.is_empty() {
                return Err(invalid("a chunk not followed by CRLF"));
            }
        }
    }
}

/// Checks an answer against what `request` must bring; the body's decoded length.
fn check(request: &Prepared, answer: &Answer) -> Result<u64, String> {
    let kind = request.kind.name();
    if answer.status != request.status {
        return Err(format!(
            "{kind}: status {}, expected {}: {}",
            answer.status,
            request.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        ));
    }
    if request.kind == Kind::Events {
        let v: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("{kind}: the answer is not JSON: {e}"))?;
        if v["accepted"].as_u64() != Some(request.body_len) {
            return Err(format!(
                "{kind}: accepted {}, expected {}",
                v["accepted"], request.body_len
            ));
        }
        return Ok(answer.body.len() as u64);
    }
    if answer.etag.as_deref() != Some(request.etag.as_str()) {
        return Err(format!(
            "{kind}: ETag {:?}, expected {}",
            answer.etag, request.etag
        ));
    }
    let mut decoded = Vec::new();
    let len = match answer.encoding.as_deref() {
        None | Some("identity") => answer.body.len(),
        Some("gzip") => flate2::read::GzDecoder::new(&answer.body[..])
            .read_to_end(&mut decoded)
            .map_err(|e| format!("{kind}: gzip body: {e}"))?,
        Some("br") => brotli::Decompressor::new(&answer.body[..], 64 * 1024)
            .read_to_end(&mut decoded)
            .map_err(|e| format!("{kind}: br body: {e}"))?,
        Some(other) => return Err(format!("{kind}: unexpected Content-Encoding {other}")),
    } as u64;
    if len != request.body_len {
        return Err(format!(
            "{kind}: body of {len} bytes, expected {}",
            request.body_len
        ));
    }
    Ok(len)
}

/// One kind's figures from one client, or merged.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    errors: u64,
    /// Of the answered requests, µs.
    latencies_us: Vec<u32>,
    wire_bytes: u64,
    body_bytes: u64,
    /// Answers by `Content-Encoding` (`identity` without one).
    encodings: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies_us.extend(&other.latencies_us);
        self.wire_bytes += other.wire_bytes;
        self.body_bytes += other.body_bytes;
        for (encoding, n) in &other.encodings {
            *self.encodings.entry(encoding.clone()).or_default() += n;
        }
    }

    /// The encodings seen, e.g. `br 983`.
    fn encodings(&self) -> String {
        let seen: Vec<String> = self
            .encodings
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        if seen.is_empty() {
            "–".into()
        } else {
            seen.join(", ")
        }
    }

    /// The `q` quantile (nearest rank) in ms; the latencies must be sorted.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1));
        self.latencies_us.get(rank - 1).map(|&us| us as f64 / 1e3)
    }
}

/// What one client did.
#[derive(Debug, Default)]
struct ClientRun {
    tallies: [Tally; 4],
    errors: Vec<String>,
    connects: u64,
    /// The first connection failed (later failures count against a request).
    connect_failed: bool,
}

impl ClientRun {
    fn error(&mut self, kind: Kind, message: String) {
        self.tallies[kind as usize].errors += 1;
        if self.errors.len() < MAX_ERROR_SAMPLES {
            self.errors.push(message);
        }
    }
}

/// How long the clients run, shared by them.
struct Budget {
    /// The next request's index.
    next: AtomicU64,
    /// Requests in all.
    requests: u64,
    /// Set when the clock starts (after every client has connected).
    deadline: std::sync::OnceLock<Option<Instant>>,
}

/// One client: connects, waits for every other one, then sends requests until the budget is
/// spent, reconnecting after an I/O error or a timeout.
async fn client(
    addr: SocketAddr,
    plan: Arc<Plan>,
    budget: Arc<Budget>,
    connected: Arc<Barrier>,
    start: Arc<Barrier>,
) -> ClientRun {
    let mut run = ClientRun::default();
    let mut conn = match Conn::open(addr).await {
        Ok(c) => Some(c),
        Err(e) => {
            run.connect_failed = true;
            run.errors.push(format!("connect: {e}"));
            None
        }
    };
    run.connects += 1;
    connected.wait().await;
    start.wait().await;
    let deadline = budget.deadline.get().copied().flatten();
    loop {
        let i = budget.next.fetch_add(1, Ordering::Relaxed);
        if i >= budget.requests || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let request = plan.pick(i);
        run.tallies[request.kind as usize].requests += 1;
        let began = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            if conn.is_none() {
                run.connects += 1;
                conn = Some(Conn::open(addr).await?);
            }
            conn.as_mut()
                .expect("connected above")
                .exchange(&request.bytes)
                .await
        })
        .await;
        let kind = request.kind;
        let request = &*request;
        match answer {
            Ok(Ok(answer)) => {
                let t = &mut run.tallies[kind as usize];
                t.latencies_us
                    .push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
                t.wire_bytes += answer.body.len() as u64;
                let encoding = answer.encoding.as_deref().unwrap_or("identity");
                *t.encodings.entry(encoding.to_string()).or_default() += 1;
                match check(request, &answer) {
                    Ok(len) => t.body_bytes += len,
                    Err(message) => run.error(kind, message),
                }
                if answer.close {
                    conn = None;
                }
            }
            Ok(Err(e)) => {
                run.error(kind, format!("{}: {e}", kind.name()));
                conn = None;
            }
            Err(_) => {
                run.error(
                    kind,
                    format!("{}: no answer within {REQUEST_TIMEOUT:?}", kind.name()),
                );
                conn = None;
            }
        }
    }
    run
}

// ---------------------------------------------------------------------------------------------
// CPU time per thread

/// Each thread's CPU time so far (s) by thread id, with its name: `/proc/self/task/*/schedstat`
/// (ns on the CPU), else `stat`'s utime + stime (clock ticks of 1/100 s). `None` without /proc.
fn thread_cpu() -> Option<HashMap<u32, (String, f64)>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        // A thread may exit between the listing and the reads: skip it.
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let from_schedstat = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .map(|ns| ns as f64 / 1e9);
        let seconds = from_schedstat.or_else(|| {
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the command's closing parenthesis start at field 3 (state);
            // utime and stime are fields 14 and 15.
            let rest = &stat[stat.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        });
        if let Some(s) = seconds {
            out.insert(tid, (name.trim().to_string(), s));
        }
    }
    Some(out)
}

/// CPU seconds spent between two [`thread_cpu`] readings by threads whose name starts with
/// `prefix`, and how many such threads there were at the end.
fn cpu_between(
    before: &HashMap<u32, (String, f64)>,
    after: &HashMap<u32, (String, f64)>,
    prefix: &str,
) -> (f64, usize) {
    let mut total = 0.0;
    let mut threads = 0;
    for (tid, (name, s)) in after {
        if name.starts_with(prefix) {
            total += s - before.get(tid).map_or(0.0, |(_, b)| *b);
            threads += 1;
        }
    }
    (total, threads)
}

/// The server's and the client's CPU over the run.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    accept: f64,
    workers: f64,
    blocking: f64,
    blocking_threads: usize,
    /// The event store's writer thread (commits).
    writer: f64,
    client: f64,
}

impl Cpu {
    fn server(&self) -> f64 {
        self.accept + self.workers + self.blocking + self.writer
    }
}

// ---------------------------------------------------------------------------------------------
// The run and the report

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn main() -> Result<()> {
    let args = Args::parse()?;
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let store = dir.path().join("store");
    let served = build_store(&store, &args)?;
    let events = (args.events_ratio > 0.0).then(|| dir.path().join("events.sqlite"));
    let server = Server::start(store, events, args.server_threads)?;
    let plan = Arc::new(Plan::new(&served, server.addr, &args));

    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("cli-worker")
        .enable_all()
        .build()
        .context("starting the clients' runtime")?;
    let load_before = load_average();
    let budget = Arc::new(Budget {
        next: AtomicU64::new(0),
        requests: args.requests.unwrap_or(u64::MAX),
        deadline: std::sync::OnceLock::new(),
    });
    let (runs, wall, cpu) = clients.block_on(async {
        let connected = Arc::new(Barrier::new(args.clients + 1));
        let start = Arc::new(Barrier::new(args.clients + 1));
        let tasks: Vec<_> = (0..args.clients)
            .map(|_| {
                tokio::spawn(client(
                    server.addr,
                    plan.clone(),
                    budget.clone(),
                    connected.clone(),
                    start.clone(),
                ))
            })
            .collect();
        connected.wait().await;
        // The clock starts with every connection open.
        let cpu_before = thread_cpu();
        let began = Instant::now();
        let _ = budget
            .deadline
            .set(args.seconds.map(|s| began + Duration::from_secs_f64(s)));
        start.wait().await;
        let mut runs = Vec::with_capacity(tasks.len());
        for task in tasks {
            runs.push(task.await.context("a client panicked")?);
        }
        let wall = began.elapsed().as_secs_f64();
        let cpu = cpu_before.zip(thread_cpu()).map(|(before, after)| {
            let (blocking, blocking_threads) = cpu_between(&before, &after, "srv-b");
            Cpu {
                accept: cpu_between(&before, &after, "srv-accept").0,
                workers: cpu_between(&before, &after, "srv-w").0,
                blocking,
                blocking_threads,
                writer: cpu_between(&before, &after, "events-writer").0,
                client: cpu_between(&before, &after, "cli-").0,
            }
        });
        anyhow::Ok((runs, wall, cpu))
    })?;
    drop(clients);
    server.stop()?;

    let outcome = Outcome::merge(runs, wall, cpu, load_before);
    report(&args, &served, &outcome);
    if outcome.errors > 0 {
        // Each client kept its first few messages: print them once each, with how often.
        let mut distinct: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &outcome.samples {
            *distinct.entry(e.as_str()).or_default() += 1;
        }
        eprintln!("\n{} errors; among the first ones:", outcome.errors);
        for (e, n) in distinct {
            eprintln!("  {n}× {e}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// The run's figures, the clients' merged.
struct Outcome {
    /// By [`Kind`], latencies sorted.
    tallies: [Tally; 4],
    /// Every kind together, latencies sorted.
    all: Tally,
    wall: f64,
    cpu: Option<Cpu>,
    /// Failed requests and failed first connections.
    errors: u64,
    connects: u64,
    /// Error messages, the first few of each client.
    samples: Vec<String>,
    load_before: String,
}

impl Outcome {
    fn merge(runs: Vec<ClientRun>, wall: f64, cpu: Option<Cpu>, load_before: String) -> Outcome {
        let mut tallies: [Tally; 4] = Default::default();
        let (mut samples, mut connects, mut connect_errors) = (Vec::new(), 0, 0);
        for run in runs {
            connects += run.connects;
            for (t, r) in tallies.iter_mut().zip(&run.tallies) {
                t.merge(r);
            }
            connect_errors += u64::from(run.connect_failed);
            samples.extend(run.errors);
        }
        let mut all = Tally::default();
        for t in &mut tallies {
            t.latencies_us.sort_unstable();
            all.merge(t);
        }
        all.latencies_us.sort_unstable();
        Outcome {
            errors: all.errors + connect_errors,
            tallies,
            all,
            wall,
            cpu,
            connects,
            samples,
            load_before,
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

/// Prints the Markdown report and the JSON line.
fn report(args: &Args, served: &Served, outcome: &Outcome) {
    let (tallies, all, load_before) = (&outcome.tallies, &outcome.all, &outcome.load_before);
    let (wall, cpu, errors, connects) =
        (outcome.wall, outcome.cpu, outcome.errors, outcome.connects);
    let (smallest, largest) = served
        .sections
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), (_, n)| (lo.min(*n), hi.max(*n)));
    let poll_share = (1.0 - args.fresh_ratio - args.section_ratio - args.events_ratio).max(0.0);
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## edgerec-server under load (loopback)\n");
    println!(
        "- store: {} ({} bytes), version {} on `{CHANNEL}`: a {}-byte manifest, {} sections of {}–{} bytes",
        served.source,
        served.bundle_bytes,
        served.version,
        served.manifest_bytes,
        served.sections.len(),
        smallest,
        largest
    );
    println!(
        "- mix: {:.0}% polls with If-None-Match, {:.0}% manifest fetches, {:.0}% section downloads, {:.0}% event batches of {}; Accept-Encoding: {}",
        poll_share * 100.0,
        args.fresh_ratio * 100.0,
        args.section_ratio * 100.0,
        args.events_ratio * 100.0,
        args.events_per_batch,
        args.accept_encoding.as_deref().unwrap_or("none")
    );
    println!(
        "- {} keep-alive connections on {} client thread(s); the server on {} worker thread(s) \
         (+ its accept thread and tokio's blocking pool); {connects} connections opened",
        args.clients, args.client_threads, args.server_threads
    );
    println!(
        "- {profile} profile, {cores} cores, load average before {load_before}, after {}\n",
        load_average()
    );

    println!(
        "| kind | requests | errors | p50 ms | p99 ms | body bytes, wire | body bytes, decoded | encoding |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for kind in Kind::ALL {
        let t = &tallies[kind as usize];
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            kind.describe(),
            t.requests,
            t.errors,
            ms(t.quantile_ms(0.5)),
            ms(t.quantile_ms(0.99)),
            t.wire_bytes,
            t.body_bytes,
            t.encodings()
        );
    }
    println!(
        "| all | {} | {} | {} | {} | {} | {} | {} |\n",
        all.requests,
        all.errors,
        ms(all.quantile_ms(0.5)),
        ms(all.quantile_ms(0.99)),
        all.wire_bytes,
        all.body_bytes,
        all.encodings()
    );

    let rps = all.requests as f64 / wall;
    let per_core = cpu.map(|c| all.requests as f64 / c.server());
    let na = || "n/a".to_string();
    println!(
        "| wall s | req/s | server CPU s | server cores busy | req/s per server core | client CPU s | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {wall:.2} | {rps:.0} | {} | {} | {} | {} | {errors} |",
        cpu.map_or_else(na, |c| format!("{:.2}", c.server())),
        cpu.map_or_else(na, |c| format!("{:.2}", c.server() / wall)),
        per_core.map_or_else(na, |r| format!("{r:.0}")),
        cpu.map_or_else(na, |c| format!("{:.2}", c.client)),
    );
    if let Some(c) = cpu {
        println!(
            "\nserver CPU: {:.2} s accept thread, {:.2} s workers, {:.2} s blocking pool ({} threads), {:.2} s event writer",
            c.accept, c.workers, c.blocking, c.blocking_threads, c.writer
        );
    }
    let events_ok = tallies[Kind::Events as usize].requests - tallies[Kind::Events as usize].errors;
    let events_stored = events_ok * args.events_per_batch as u64;
    let events_per_s = events_stored as f64 / wall;
    let events_per_core = cpu.map(|c| events_stored as f64 / c.server());
    if args.events_ratio > 0.0 {
        println!(
            "\nevent ingestion (SQLite WAL, synchronous=FULL, group commit): {events_stored} events in {events_ok} batches, {events_per_s:.0} events/s, {} events/s per server core",
            events_per_core.map_or_else(na, |r| format!("{r:.0}"))
        );
    }

    let kinds: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .map(|&k| {
            let t = &tallies[k as usize];
            (
                k.name().to_string(),
                serde_json::json!({
                    "requests": t.requests,
                    "errors": t.errors,
                    "p50_ms": t.quantile_ms(0.5),
                    "p99_ms": t.quantile_ms(0.99),
                    "wire_bytes": t.wire_bytes,
                    "body_bytes": t.body_bytes,
                    "encodings": t.encodings,
                }),
            )
        })
        .collect();
    let json = serde_json::json!({
        "bench": "serve",
        "bundle": served.source,
        "bundle_bytes": served.bundle_bytes,
        "manifest_bytes": served.manifest_bytes,
        "sections": served.sections.len(),
        "clients": args.clients,
        "client_threads": args.client_threads,
        "server_threads": args.server_threads,
        "fresh_ratio": args.fresh_ratio,
        "section_ratio": args.section_ratio,
        "events_ratio": args.events_ratio,
        "events_per_batch": args.events_per_batch,
        "events_stored": events_stored,
        "events_per_s": events_per_s,
        "events_per_server_core_s": events_per_core,
        "accept_encoding": args.accept_encoding,
        "profile": profile,
        "cores": cores,
        "requests": all.requests,
        "errors": errors,
        "connections": connects,
        "wall_s": wall,
        "req_per_s": rps,
        "server_cpu_s": cpu.map(|c| c.server()),
        "server_cpu": cpu.map(|c| serde_json::json!({
            "accept_s": c.accept,
            "workers_s": c.workers,
            "blocking_s": c.blocking,
            "blocking_threads": c.blocking_threads,
            "writer_s": c.writer,
        })),
        "req_per_server_core_s": per_core,
        "client_cpu_s": cpu.map(|c| c.client),
        "p50_ms": all.quantile_ms(0.5),
        "p99_ms": all.quantile_ms(0.99),
        "kinds": kinds,
    });
    println!("\n{json}");
}
