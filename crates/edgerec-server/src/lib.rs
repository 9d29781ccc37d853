//! `edgerec serve`: the HTTP face of a release store ([`edgerec_release::Store`]) and of the
//! www demo.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/channels/{channel}/manifest` | the channel's signed manifest; `ETag` (its sha256), `Cache-Control: no-cache`; `304` on a matching `If-None-Match` |
//! | `GET /v1/sections/{sha256}` | a section blob; `Cache-Control: public, max-age=31536000, immutable`, `ETag`, ranges |
//! | `GET /v1/health` | `{"status":"ok"}` |
//! | `GET /v1/version` | the server's version and each channel's current release |
//! | other paths | static files of the configured mounts (the demo page, the wasm package, its sync client, bundles) |
//!
//! Every answer may be compressed (gzip, br) when the client accepts it; errors are JSON
//! (`{"error": code, "message": …}`). The manifest is read from disk on each request, so a
//! publish is served at once, without a restart; blobs never change. Requests carry no body
//! (bounded to 1 KiB) and time out after [`ServerConfig::timeout`]. Nothing a client sends is
//! stored or logged: requests carry no user data by design.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use edgerec_release::{StoreLayout, hex};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::TimeoutLayer;

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
}

impl ServerConfig {
    /// The store alone, 30 s timeout.
    pub fn new(store: PathBuf) -> ServerConfig {
        ServerConfig {
            store,
            mounts: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A JSON error answer.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": code, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// The router: API routes, static mounts, compression, CORS (the API is public, read-only),
/// body limit and timeout.
pub fn router(config: ServerConfig) -> Router {
    let layout = StoreLayout::new(&config.store);
    let mut app = Router::new()
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
        .with_state(layout);
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
    app.layer(
        CorsLayer::new()
            .allow_origin(tower_http::cors::Any)
            .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
            .allow_headers([header::IF_NONE_MATCH, header::RANGE])
            .expose_headers([header::ETAG, header::CONTENT_LENGTH]),
    )
    .layer(CompressionLayer::new().gzip(true).br(true))
    .layer(RequestBodyLimitLayer::new(1024))
    .layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        config.timeout,
    ))
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

async fn manifest(
    State(layout): State<StoreLayout>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(path) = layout.manifest(&channel) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_channel",
            format!("{channel:?} is not a channel name"),
        );
    };
    let size = match tokio::fs::metadata(&path).await {
        Ok(m) => m.len(),
        Err(_) => {
            return error(
                StatusCode::NOT_FOUND,
                "no_release",
                format!("nothing published to {channel}"),
            );
        }
    };
    if size > MAX_MANIFEST {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_store",
            "the manifest file is too large",
        );
    }
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_store",
                e.to_string(),
            );
        }
    };
    let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)));
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

/// Sets `ETag` (a quoted sha256 in hex: always a valid header value).
fn set_etag(response: &mut Response, etag: &str) {
    response.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("a quoted hex digest is a valid header value"),
    );
}

async fn section(
    State(layout): State<StoreLayout>,
    Path(sha256): Path<String>,
    request: Request,
) -> Response {
    let Some(path) = layout.section(&sha256) else {
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

async fn version(State(layout): State<StoreLayout>) -> Response {
    let channels = match layout.releases() {
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
    axum::serve(listener, router(config))
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
