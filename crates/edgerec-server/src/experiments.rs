//! `GET /v1/experiments`: the running A/B test (`edgerec::experiments::Experiment`), which
//! devices read to compute their arm and the channel to sync.
//!
//! The file is read (at most [`MAX_BYTES`]) and checked when the server starts — a bad
//! definition stops `edgerec serve` with the offending field — and again on every request, so
//! an operator's edit is served at once; an edit that does not check is answered `500
//! bad_experiment` (and logged) until fixed, never served. Every arm's channel must be a
//! channel name of the store.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use edgerec::experiments::Experiment;
use edgerec_release::StoreLayout;

use crate::error;

/// The largest experiment file read.
pub const MAX_BYTES: u64 = 64 * 1024;

/// Reads and checks an experiment file: at most [`MAX_BYTES`], JSON, [`Experiment::validate`].
pub fn load(path: &Path) -> Result<Experiment> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_BYTES {
        bail!("{}: {len} bytes, at most {MAX_BYTES}", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let e: Experiment = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an experiment definition", path.display()))?;
    e.validate()
        .with_context(|| format!("{}: invalid experiment", path.display()))?;
    Ok(e)
}

/// [`load`], and every arm's channel a channel name of `layout`.
pub fn read(path: &Path, layout: &StoreLayout) -> Result<Experiment> {
    let e = load(path)?;
    for a in &e.arms {
        if layout.manifest(&a.channel).is_none() {
            bail!(
                "{}: arm {:?}: {:?} is not a channel name",
                path.display(),
                a.name,
                a.channel
            );
        }
    }
    Ok(e)
}

#[derive(Clone)]
struct Source {
    path: PathBuf,
    layout: StoreLayout,
}

/// The route, after checking the file once; `None` answers it `404 no_experiment`.
pub fn routes(path: Option<&Path>, layout: &StoreLayout) -> Result<Router> {
    let Some(path) = path else {
        return Ok(Router::new().route(
            "/v1/experiments",
            get(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "no_experiment",
                    "no experiment is running (edgerec serve --experiments FILE)",
                )
            }),
        ));
    };
    read(path, layout)?;
    Ok(Router::new()
        .route("/v1/experiments", get(experiment))
        .with_state(Source {
            path: path.to_owned(),
            layout: layout.clone(),
        }))
}

async fn experiment(State(source): State<Source>) -> Response {
    let read = tokio::task::spawn_blocking(move || read(&source.path, &source.layout)).await;
    match read {
        Ok(Ok(e)) => {
            let mut r = axum::Json(e).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Ok(Err(e)) => {
            eprintln!("edgerec serve: {e:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_experiment",
                format!("{e:#}"),
            )
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
