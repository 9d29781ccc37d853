//! `POST /v1/events`: event batches from devices into the event store, acknowledged only once
//! durable.
//!
//! | answer | when | body |
//! |---|---|---|
//! | `200` | the batch was committed | `{"accepted": n, "duplicates": d, "rejected": [{"index", "field", "message"}]}`: refused events are listed, the others stored |
//! | `400 malformed` | not a batch: bad JSON, a missing or unknown field (the parser's message names it and its line and column) | error |
//! | `413 too_large` | the body is over [`MAX_BODY_BYTES`] | error |
//! | `422 invalid_batch` | the batch as a whole is refused (schema, device id, privacy level against contents, counts, an id twice); `field` names what | error + `field` |
//! | `422 invalid_events` | every event of the batch was refused | the `200` body |
//! | `503 busy` | [`QUEUE`] batches already wait for the disk; `Retry-After: 1` | error |
//! | `500 store_error` | the commit failed: nothing of the batch was stored | error |
//!
//! A client drops a batch answered `2xx` or `4xx` and retries one answered `5xx` or not at
//! all (deduplication makes the retry safe). One thread owns the SQLite connection and commits
//! the batches that queued while it was writing in one transaction (group commit): one
//! `fsync` for many requests, each answered only after its transaction committed.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use edgerec::events::{Batch, EventError};
use edgerec_events::{EventStore, IngestReport};
use tokio::sync::oneshot;
use tower_http::cors::CorsLayer;

use crate::error;

/// The largest request body: a full batch ([`edgerec::events::MAX_EVENTS`] events) of
/// ordinary events fits many times over.
pub const MAX_BODY_BYTES: usize = 2 << 20;
/// Batches waiting for the writer before new ones are answered `503`.
pub const QUEUE: usize = 1_024;
/// The most batches committed in one transaction.
const GROUP: usize = 256;

/// What the writer answers for one batch: the store's verdict, or why nothing was committed.
type Verdict = Result<Result<IngestReport, EventError>, String>;

struct Job {
    batch: Batch,
    reply: oneshot::Sender<Verdict>,
}

/// The handle the route holds; dropping the last one stops the writer once it has answered
/// every queued batch.
#[derive(Clone)]
struct Ingest {
    jobs: SyncSender<Job>,
}

/// The events route with its own body limit and CORS (browsers `POST` JSON cross-origin), on a
/// writer thread that owns `store`.
pub fn routes(store: EventStore) -> anyhow::Result<Router> {
    let (jobs, queue) = std::sync::mpsc::sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("events-writer".into())
        .spawn(move || writer(store, queue))
        .map_err(|e| anyhow::anyhow!("starting the event writer: {e}"))?;
    Ok(Router::new()
        .route("/v1/events", post(events))
        .with_state(Arc::new(Ingest { jobs }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors()))
}

/// `POST /v1/events` when the server keeps no events.
pub fn disabled() -> Router {
    Router::new()
        .route(
            "/v1/events",
            post(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "events_disabled",
                    "this server keeps no events (edgerec serve --events PATH)",
                )
            }),
        )
        .layer(cors())
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE])
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Commits what queued while the last commit ran, then answers each batch.
fn writer(mut store: EventStore, queue: Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
        match store.ingest(&batches, now()) {
            Ok(verdicts) => {
                for (job, v) in jobs.into_iter().zip(verdicts) {
                    let _ = job.reply.send(Ok(v));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                for job in jobs {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

fn invalid(status: StatusCode, code: &str, e: &EventError) -> Response {
    let body = serde_json::json!({
        "error": code,
        "field": e.field,
        "index": e.index,
        "message": e.to_string(),
    });
    (status, axum::Json(body)).into_response()
}

async fn events(
    State(ingest): State<Arc<Ingest>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("a batch is at most {MAX_BODY_BYTES} bytes: send fewer events at a time"),
            );
        }
        Err(r) => return error(r.status(), "bad_body", r.body_text()),
    };
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed", e.to_string()),
    };
    // Refused before queueing: a malformed batch never waits for the disk.
    if let Err(e) = batch.validate_envelope() {
        return invalid(StatusCode::UNPROCESSABLE_ENTITY, "invalid_batch", &e);
    }
    let (reply, answer) = oneshot::channel();
    match ingest.jobs.try_send(Job { batch, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many batches wait to be written: retry shortly",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(TrySendError::Disconnected(_)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_down",
                "the event writer has stopped",
            );
        }
    }
    match answer.await {
        Ok(Ok(Ok(report))) => {
            let status = if report.accepted + report.duplicates == 0 {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            if status != StatusCode::OK
                && let Some(o) = body.as_object_mut()
            {
                o.insert("error".into(), "invalid_events".into());
                o.insert(
                    "message".into(),
                    "every event of the batch was refused".into(),
                );
            }
            (status, axum::Json(body)).into_response()
        }
        Ok(Ok(Err(e))) => invalid(StatusCode::UNPROCESSABLE_ENTITY, "invalid_batch", &e),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            "the event writer stopped before answering",
        ),
    }
}
