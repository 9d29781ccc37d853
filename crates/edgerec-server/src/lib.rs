//! `edgerec serve`: the HTTP face of a release store ([`edgerec_release::Store`]) and of the
//! www demo.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/channels/{channel}/manifest` | the channel's signed manifest; `ETag` (its sha256), `Cache-Control: no-cache`; `304` on a matching `If-None-Match` |
//! | `GET /v1/sections/{sha256}` | a section blob; `Cache-Control: public, max-age=31536000, immutable`, `ETag`, ranges |
//! | `GET /v1/health` | `{"status":"ok"}` |
//! | `GET /v1/version` | the server's version and each channel's current release |
//! | `GET /v1/experiments` | the running A/B test, when [`ServerConfig::experiments`] names one: see [`experiments`] |
//! | `POST /v1/events` | a device's event batch (`edgerec::events::Batch`, JSON), when [`ServerConfig::events`] names a store: see [`ingest`] |
//! | other paths | static files of the configured mounts (the demo page, the wasm package, its sync client, bundles) |
//!
//! Every answer may be compressed (gzip, br) when the client accepts it; errors are JSON
//! (`{"error": code, "message": …}`; the API at the fastest level — sections barely compress).
//! Each manifest request `stat`s the channel's manifest file and reads it again only when it
//! changed, so a publish (a rename) is served at once, without a restart; blobs never change. Requests other than
//! event batches carry no body (bounded to 1 KiB) and time out after [`ServerConfig::timeout`].
//! Nothing a client sends is stored or logged but the event batches it chose to send, at the
//! privacy level it is set to.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use edgerec_release::{StoreLayout, hex};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::TimeoutLayer;

pub mod experiments;
pub mod ingest;

/// The largest manifest file the server reads (the core's bound on a signed manifest).
const MAX_MANIFEST: u64 = edgerec_release::MAX_MANIFEST_BYTES as u64;

/// What to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The release store (`edgerec publish --store`).
    pub store: PathBuf,
    /// Static directories by URL prefix (e.g. `("/pkg/", "pkg/web")`); the longest matching
    /// prefix wins, `"/"` catches the rest.
    pub mounts: Vec<(String, PathBuf)>,
    /// A request that takes longer is answered `408`.
    pub timeout: Duration,
    /// The event store (`edgerec_events::EventStore`, created if absent) that `POST
    /// /v1/events` writes to; `None` answers that route `404`.
    pub events: Option<PathBuf>,
    /// The running experiment's definition (`edgerec::experiments::Experiment`, JSON) served at
    /// `GET /v1/experiments`; `None` answers that route `404`.
    pub experiments: Option<PathBuf>,
}

impl ServerConfig {
    /// The store alone, 30 s timeout.
    pub fn new(store: PathBuf) -> ServerConfig {
        ServerConfig {
            store,
            mounts: Vec::new(),
            timeout: Duration::from_secs(30),
            events: None,
            experiments: None,
        }
    }
}

/// A JSON error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": code, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// The router: API routes, static mounts, compression, CORS (the API is public; only event
/// batches are written), body limits and timeout. Fails when the event store cannot be
/// opened.
pub fn router(config: ServerConfig) -> Result<Router> {
    let events = match &config.events {
        Some(path) => ingest::routes(edgerec_events::EventStore::open(path)?)?,
        None => ingest::disabled(),
    };
    let state = Api {
        layout: StoreLayout::new(&config.store),
        manifests: Arc::default(),
    };
    let experiments = experiments::routes(config.experiments.as_deref(), &state.layout)?;
    let api = Router::new()
        .route("/v1/channels/{channel}/manifest", get(manifest))
        .route("/v1/sections/{sha256}", get(section))
        .route(
            "/v1/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/v1/version", get(version))
        .route(
            "/v1/{*rest}",
            get(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such API route") }),
        )
        .with_state(state)
        .merge(experiments)
        // Section blobs (int8 factors, graphs) barely compress: the fastest level keeps a
        // download's CPU near a plain copy's.
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .br(true)
                .quality(CompressionLevel::Fastest),
        );
    let mut app = Router::new();
    let mut mounts = config.mounts.clone();
    mounts.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    for (prefix, dir) in mounts {
        let serve = ServeDir::new(dir).append_index_html_on_directories(true);
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            app = app.fallback_service(serve);
        } else {
            app = app.nest_service(prefix, serve);
        }
    }
    Ok(app
        .layer(CompressionLayer::new().gzip(true).br(true))
        .merge(api)
        .layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
                .allow_headers([header::IF_NONE_MATCH, header::RANGE])
                .expose_headers([header::ETAG, header::CONTENT_LENGTH]),
        )
        .layer(RequestBodyLimitLayer::new(1024))
        .merge(events)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.timeout,
        )))
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The API's state: the store, and the manifests last read from it.
#[derive(Clone)]
struct Api {
    layout: StoreLayout,
    /// Per channel: the manifest file's identity when read, its bytes and ETag. A poll costs
    /// one `stat` while the file is unchanged; a publish renames a new file in, which changes
    /// the identity, and the next request reads it.
    manifests: Arc<Mutex<HashMap<String, CachedManifest>>>,
}

#[derive(Clone)]
struct CachedManifest {
    identity: FileIdentity,
    bytes: Bytes,
    etag: String,
}

/// What changes when a file is replaced or rewritten.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileIdentity {
    fn of(m: &std::fs::Metadata) -> FileIdentity {
        FileIdentity {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt as _;
                (m.dev(), m.ino())
            },
        }
    }
}

async fn manifest(
    State(api): State<Api>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(path) = api.layout.manifest(&channel) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_channel",
            format!("{channel:?} is not a channel name"),
        );
    };
    // A stat is a few microseconds: cheaper inline than a trip to the blocking pool.
    let identity = match std::fs::metadata(&path) {
        Ok(m) => FileIdentity::of(&m),
        Err(_) => {
            return error(
                StatusCode::NOT_FOUND,
                "no_release",
                format!("nothing published to {channel}"),
            );
        }
    };
    let cached = api
        .manifests
        .lock()
        .ok()
        .and_then(|m| m.get(&channel).filter(|c| c.identity == identity).cloned());
    let CachedManifest { bytes, etag, .. } = match cached {
        Some(c) => c,
        None => match read_manifest(&path, identity).await {
            Ok(c) => {
                if let Ok(mut m) = api.manifests.lock() {
                    m.insert(channel.clone(), c.clone());
                }
                c
            }
            Err(response) => return response,
        },
    };
    let mut response = if not_modified(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(bytes));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r
    };
    set_etag(&mut response, &etag);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Reads a manifest file (bounded) and computes its ETag.
async fn read_manifest(
    path: &std::path::Path,
    identity: FileIdentity,
) -> Result<CachedManifest, Response> {
    if identity.len > MAX_MANIFEST {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_store",
            "the manifest file is too large",
        ));
    }
    let bytes = tokio::fs::read(path).await.map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_store",
            e.to_string(),
        )
    })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_store",
            "the manifest file is too large",
        ));
    }
    let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)));
    // The identity is the one before the read: a file replaced during it is read again next
    // time (its identity differs).
    Ok(CachedManifest {
        identity,
        bytes: Bytes::from(bytes),
        etag,
    })
}

/// Sets `ETag` (a quoted sha256 in hex: always a valid header value).
fn set_etag(response: &mut Response, etag: &str) {
    response.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("a quoted hex digest is a valid header value"),
    );
}

async fn section(State(api): State<Api>, Path(sha256): Path<String>, request: Request) -> Response {
    let Some(path) = api.layout.section(&sha256) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_hash",
            "a section is named by 64 lowercase hex digits",
        );
    };
    if tokio::fs::metadata(&path).await.is_err() {
        return error(
            StatusCode::NOT_FOUND,
            "no_section",
            format!("no section {sha256}"),
        );
    }
    let etag = format!("\"{sha256}\"");
    if not_modified(request.headers(), &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        set_etag(&mut r, &etag);
        return r;
    }
    let served =
        ServeFile::new_with_mime(&path, &"application/octet-stream".parse().expect("mime"))
            .oneshot(request)
            .await;
    let mut response = match served {
        Ok(r) => r.map(Body::new),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_store",
                e.to_string(),
            );
        }
    };
    if response.status().is_success() {
        let h = response.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        set_etag(&mut response, &etag);
    }
    response
}

async fn version(State(api): State<Api>) -> Response {
    let channels = match api.layout.releases() {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_store",
                format!("{e:#}"),
            );
        }
    };
    axum::Json(serde_json::json!({
        "server": concat!("edgerec-server ", env!("CARGO_PKG_VERSION")),
        "channels": channels,
    }))
    .into_response()
}

/// Serves `config` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Without TCP_NODELAY, a body sent in pieces can wait ~40 ms on delayed ACKs.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(config)?)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving")
}

/// Binds `addr`, calls `ready` with the bound address (port 0 picks one), and serves until
/// Ctrl-C or SIGTERM. Builds its own runtime (`threads` workers).
pub fn run(
    addr: SocketAddr,
    config: ServerConfig,
    threads: usize,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        ready(listener.local_addr()?);
        serve(listener, config, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
