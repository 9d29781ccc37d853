//! JavaScript bindings: a thin translation layer over [`crate::Recommender`].
//!
//! Every failure reaches JS as an `Error` whose `code` is [`crate::Error::code`] and whose
//! `name` is `"EdgerecError"`. Nothing here unwraps: arguments are validated and converted,
//! then handed to the core. No policy lives here: rows come only from the core's
//! `recommend_row`, rerank overrides are merged by [`crate::rerank::RerankOverrides`], gender
//! codes are parsed by [`crate::features::Gender::from_code`] and ranker inputs are built by
//! [`crate::ranker::RankerInput`].

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::context::Device;
use crate::error::Error;
use crate::wire::{unix_seconds, version_number, whole, whole_u32};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A device class: what a play or a request happened on. */
export type Device = "tv" | "desktop" | "mobile" | "tablet" | "unknown";

/** Where and when a request happens. */
export interface Context {
  device: Device;
  /** Unix seconds (UTC). */
  timestamp: number;
  /** The user's local offset from UTC in minutes (UTC+1 is 60). Default 0. */
  utcOffsetMinutes?: number;
}

/** A title of the bundle's catalog. */
export interface CatalogItem {
  itemId: number;
  title: string;
  year: number | null;
  genres: string[];
}

/** What every edgerec call throws. */
export interface EdgerecError extends Error {
  name: "EdgerecError";
  code:
    | "truncated" | "bad_magic" | "unsupported_version" | "checksum_mismatch"
    | "malformed" | "missing_section" | "contract_mismatch" | "invalid_argument"
    | "ranker_failed" | "corrupt_state" | "unsupported_state_version"
    | "bad_manifest" | "bad_signature" | "untrusted_key" | "rollback" | "expired"
    | "wrong_channel" | "section_mismatch" | "over_budget";
}

/** How `new Recommender(bytes, options)` loads a bundle. */
export interface LoadOptions {
  /** Most bytes the bundle may need (file, decoded sections, runtimes, one request of the
   *  largest size); above it the bundle is refused with `over_budget`. Default 256 MiB. */
  memoryBudgetBytes?: number;
}

/** What a loaded bundle was estimated to need, in bytes (`Recommender.memoryEstimate`). */
export interface MemoryEstimate {
  file: number;
  sections: number;
  runtimes: number;
  request: number;
  total: number;
}

/** One section of a release: what `Release.sections()` lists. */
export interface ReleaseSection {
  /** The four-letter tag, e.g. "POPL". */
  tag: string;
  version: number;
  /** Its length in bytes: read no more than this. */
  length: number;
  /** Its sha256, 64 lowercase hex digits: the blob's name on the server. */
  sha256: string;
}

/** What the device holds, for `Release.verify`'s rollback and expiry checks. */
export interface ReleaseExpect {
  channel: string;
  /** Unix seconds; omit (or null) when re-opening the installed release (expiry not checked). */
  now?: number | null;
  /** The installed release's version: a smaller one is refused (`rollback`). */
  installedVersion?: number | null;
  /** The largest key set serial seen: a smaller one is refused (`rollback`). */
  keySetSerial?: number | null;
}

/** The bundle's ranker and its input contract (`edgerec-ranker/1`). */
export interface RankerInfo {
  /** Model kind and version, e.g. "logistic-regression/1", "gbdt/1", "deep/1". */
  kind: string;
  /** Dense feature names, in input order. */
  dense: string[];
  /** Pooled id inputs: field, embedding rows, fixed length. */
  bags: { field: string; rows: number; len: number }[];
  /** The output holding P(watch), and its column. */
  output: string;
  column: number;
}

/** One candidate's ranker inputs: the feature vector the core computes, and the user's ids. */
export interface RankerInput {
  dense: number[] | Float32Array;
  movie?: number;
  genres?: number[] | Uint32Array;
  actors?: number[] | Uint32Array;
  directors?: number[] | Uint32Array;
  tags?: number[] | Uint32Array;
  language?: number;
  /** Titles the user finished, most recent first. */
  history?: number[] | Uint32Array;
  /** Search-token ids, most recent first. */
  search?: number[] | Uint32Array;
}
/** Options of `Recommender.recommendRow`. */
export interface RowOptions {
  context: Context;
  /** Row length (default: the bundle's serving settings, else 10). */
  k?: number;
  /** Blend candidates the ranker scores (default: the bundle's, else 500). */
  candidates?: number;
  /** "auto" (flat scan up to 100k titles, HNSW above when the bundle has a graph), "flat" or "hnsw". */
  index?: "auto" | "flat" | "hnsw";
  /** Recent search tokens, oldest first. */
  searches?: string[];
  /** Score with the bundle's ranker when it has one (default true). */
  useRanker?: boolean;
  /** Candidates from this source alone, through the same filters and rerank (default: every source, blended). */
  source?: "ials" | "two-tower" | "content" | "popularity" | "neighbours";
  /** Rerank settings instead of the bundle's. */
  rerank?: { lambda?: number; fatigueImpressions?: number; maxPerGenre?: number | null };
}

/** One title of a row from `recommendRow`. */
export interface RowItem extends CatalogItem {
  /** P(watch) from the ranker, or the blend order's score without one. */
  score: number;
  /** The candidate source whose blend turn placed the title. */
  placedBy: "ials" | "two-tower" | "content" | "popularity" | "neighbours";
  /** Every source that proposed it, with its rank there (1 = best). */
  sources: { source: string; rank: number }[];
  /** The explanation shown to the user. */
  reason: string;
  /** Which rule chose the reason. */
  reasonKind: "because_you_watched" | "because_you_like" | "popular" | "top_pick";
}

/** Milliseconds per stage of one request. */
export interface Timings {
  userMs: number;
  candidatesMs: number;
  featuresMs: number;
  rankingMs: number;
  rerankMs: number;
  totalMs: number;
}

/** A reranked row and how it was made. */
export interface Row {
  items: RowItem[];
  timings: Timings;
  modelVersion: string;
  /** Blend candidates produced, and whether the ranker scored them. */
  candidates: number;
  ranked: boolean;
  /** Sources served and, for iALS and two-tower, the index searched ("flat-f32", "flat-int8", "hnsw"). */
  sources: { source: string; index: string | null }[];
}
/** An event the device records and (at privacy `full`) sends: see `edgerec::events`. */
export type EdgerecEvent = {
  /** Unique per event on this device: 1 to 64 of A-Z a-z 0-9 - _ . */
  id: string;
  /** Unix seconds. */
  clientTime: number;
  sessionId: number;
  modelVersion: string;
  /** The A/B label (`Assignment.label`), if any. */
  arm?: string;
} & (
  | { type: "impression"; rowId: string; items: number[]; device: Device }
  | { type: "play_start"; itemId: number; rowId?: string; position?: number; device: Device }
  | { type: "play_progress" | "play_stop"; itemId: number; watchedS: number; fraction: number }
  | { type: "completion"; itemId: number; device: Device }
  | { type: "search"; tokens: string[] }
);

/** One session's online metrics: all a client at privacy `metrics` sends. */
export interface SessionMetrics {
  sessionId: number;
  started: number;
  modelVersion: string;
  arm?: string;
  rowsShown: number;
  playsStarted: number;
  playsFromRow: number;
  videosWatched: number;
  watchSeconds: number;
}

/** An A/B test: arms with traffic shares, each a release channel (`edgerec::experiments`). */
export interface Experiment {
  schema: "edgerec-experiments/1";
  name: string;
  salt: string;
  arms: { name: string; share: number; channel: string }[];
}

/** Where `assignArm` put a device. */
export interface Assignment {
  experiment: string;
  arm: string;
  channel: string;
  /** `experiment.arm`: what events carry as `arm`. */
  label: string;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// A JS value typed `string[]` for TypeScript; checked by serde when read, not at the call.
    #[wasm_bindgen(typescript_type = "string[]")]
    pub type StringArray;
}

fn js_error(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("EdgerecError");
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    err.into()
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        js_error(e.code(), &e.to_string())
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> JsValue {
    js_error(
        "invalid_argument",
        &format!("invalid argument: {what}: {e}"),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsRankerInput {
    dense: Vec<f32>,
    #[serde(default)]
    movie: u32,
    #[serde(default)]
    genres: Vec<u32>,
    #[serde(default)]
    actors: Vec<u32>,
    #[serde(default)]
    directors: Vec<u32>,
    #[serde(default)]
    tags: Vec<u32>,
    #[serde(default)]
    language: u32,
    #[serde(default)]
    history: Vec<u32>,
    #[serde(default)]
    search: Vec<u32>,
}

#[derive(Serialize)]
struct JsBag {
    field: &'static str,
    rows: u32,
    len: u32,
}

#[derive(Serialize)]
struct JsRankerInfo<'a> {
    kind: &'a str,
    dense: &'a [String],
    bags: Vec<JsBag>,
    output: &'a str,
    column: u32,
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(
        &serde_wasm_bindgen::Serializer::new()
            .serialize_missing_as_null(true)
            .serialize_maps_as_objects(true),
    )
    .map_err(|e| js_error("internal", &e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsLoadOptions {
    memory_budget_bytes: Option<f64>,
}

/// Milliseconds from the host's `performance.now()` (browsers, node), else `Date.now()`.
fn host_clock() -> impl Fn() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .filter(|p| p.is_object());
    let now = performance.as_ref().and_then(|p| {
        js_sys::Reflect::get(p, &"now".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    });
    move || match (&performance, &now) {
        (Some(p), Some(f)) => f.call0(p).ok().and_then(|v| v.as_f64()).unwrap_or(0.0),
        _ => js_sys::Date::now(),
    }
}

/// Refuses keys of a JS object outside `allowed` (serde-wasm-bindgen reads only a struct's
/// named fields, so `deny_unknown_fields` alone would let a misspelt option pass silently).
fn check_keys(v: &JsValue, what: &str, allowed: &[&str]) -> Result<(), JsValue> {
    if !v.is_object() {
        return Ok(()); // serde reports the wrong type
    }
    let object: &js_sys::Object = v.unchecked_ref();
    for key in js_sys::Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(
                what,
                format!("unknown field {key:?}, expected one of {allowed:?}"),
            ));
        }
    }
    Ok(())
}

/// An on-device recommender loaded from a model bundle.
#[wasm_bindgen]
pub struct Recommender {
    inner: crate::Recommender,
}

/// A signed release manifest that verified (see the core's `release` module): which sections
/// make the bundle, and the check and reassembly of their bytes.
#[wasm_bindgen(js_name = Release)]
pub struct JsRelease {
    inner: crate::release::Verified,
    bytes: Vec<u8>,
}

#[wasm_bindgen(js_class = Release)]
impl JsRelease {
    /// Verifies a signed manifest against a trust root (`KEY` or `T:KEY,KEY,…`) before
    /// reading anything else in it; throws an `EdgerecError` (`bad_manifest`,
    /// `bad_signature`, `untrusted_key`, `rollback`, `expired`, `wrong_channel`) otherwise.
    pub fn verify(
        bytes: &[u8],
        trust: &str,
        #[wasm_bindgen(unchecked_param_type = "ReleaseExpect")] expect: JsValue,
    ) -> Result<JsRelease, JsValue> {
        console_error_panic_hook::set_once();
        let e: crate::wire::ReleaseExpect = serde_wasm_bindgen::from_value(expect)
            .map_err(|e| js_error("invalid_argument", &format!("expect: {e}")))?;
        let root = crate::release::TrustRoot::parse(trust)?;
        let inner = crate::release::Manifest::verify(bytes, &root, &e.to_expect()?)?;
        Ok(JsRelease {
            inner,
            bytes: bytes.to_vec(),
        })
    }

    /// The channel's publish sequence.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.inner.manifest.version as f64
    }

    /// The channel.
    #[wasm_bindgen(getter)]
    pub fn channel(&self) -> String {
        self.inner.manifest.channel.clone()
    }

    /// The model's label.
    #[wasm_bindgen(getter)]
    pub fn label(&self) -> String {
        self.inner.manifest.label.clone()
    }

    /// When it was published (unix seconds).
    #[wasm_bindgen(getter)]
    pub fn created(&self) -> f64 {
        self.inner.manifest.created as f64
    }

    /// When devices stop accepting it (unix seconds).
    #[wasm_bindgen(getter)]
    pub fn expires(&self) -> f64 {
        self.inner.manifest.expires as f64
    }

    /// The serial of the key set that vouched for it (remember the largest seen).
    #[wasm_bindgen(getter, js_name = keySetSerial)]
    pub fn key_set_serial(&self) -> f64 {
        self.inner.key_set.serial as f64
    }

    /// The bundle's length in bytes.
    #[wasm_bindgen(getter, js_name = bundleLength)]
    pub fn bundle_length(&self) -> f64 {
        self.inner.manifest.bundle_length as f64
    }

    /// The signed manifest's bytes (to persist beside the installed bundle).
    #[wasm_bindgen(getter)]
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The sections making the bundle, in order.
    #[wasm_bindgen(unchecked_return_type = "ReleaseSection[]")]
    pub fn sections(&self) -> Result<JsValue, JsValue> {
        #[derive(Serialize)]
        struct S {
            tag: String,
            version: u16,
            length: f64,
            sha256: String,
        }
        let list: Vec<S> = self
            .inner
            .manifest
            .sections
            .iter()
            .map(|e| S {
                tag: String::from_utf8_lossy(&e.tag).into_owned(),
                version: e.version,
                length: e.length as f64,
                sha256: crate::release::hex(&e.sha256),
            })
            .collect();
        to_js(&list)
    }

    /// Checks section `index`'s bytes (length, then sha256); throws `section_mismatch`.
    #[wasm_bindgen(js_name = checkSection)]
    pub fn check_section(&self, index: u32, bytes: &[u8]) -> Result<(), JsValue> {
        Ok(self.inner.manifest.check_section(index as usize, bytes)?)
    }

    /// The bundle rebuilt from every section's bytes, in order (each checked).
    pub fn assemble(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array[]")] sections: Vec<js_sys::Uint8Array>,
    ) -> Result<Vec<u8>, JsValue> {
        let owned: Vec<Vec<u8>> = sections.iter().map(js_sys::Uint8Array::to_vec).collect();
        let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        Ok(self.inner.manifest.assemble(&refs)?)
    }
}

#[wasm_bindgen]
impl Recommender {
    /// Verifies and loads a bundle. Throws an `EdgerecError` if the bytes are not a valid
    /// bundle; nothing is loaded in that case.
    ///
    /// `options.memoryBudgetBytes` (default 256 MiB): the most memory the bundle may need —
    /// the file, its decoded sections, its runtimes and one request of the largest size, as
    /// estimated at load (`memoryEstimate`); a bundle above it is refused with `over_budget`
    /// before anything is built.
    #[wasm_bindgen(constructor)]
    pub fn new(
        bundle: &[u8],
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions | null")] options: Option<
            JsValue,
        >,
    ) -> Result<Recommender, JsValue> {
        // Idempotent; a panic (a bug) then shows its message in the console.
        console_error_panic_hook::set_once();
        let mut load = crate::model::LoadOptions::default();
        if let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) {
            check_keys(&options, "options", &["memoryBudgetBytes"])?;
            let o: JsLoadOptions =
                serde_wasm_bindgen::from_value(options).map_err(|e| invalid("options", e))?;
            if let Some(b) = o.memory_budget_bytes {
                load.memory_budget = version_number("options.memoryBudgetBytes", b)?;
            }
        }
        Ok(Recommender {
            inner: crate::Recommender::from_bytes_with(bundle, &load)?,
        })
    }

    /// What the bundle was estimated to need in memory when it loaded, in bytes, by part:
    /// `{ file, sections, runtimes, request, total }` (see the constructor's budget).
    #[wasm_bindgen(getter, js_name = memoryEstimate, unchecked_return_type = "MemoryEstimate")]
    pub fn memory_estimate(&self) -> Result<JsValue, JsValue> {
        let e = self.inner.model().memory_estimate();
        #[derive(Serialize)]
        struct M {
            file: f64,
            sections: f64,
            runtimes: f64,
            request: f64,
            total: f64,
        }
        to_js(&M {
            file: e.file as f64,
            sections: e.sections as f64,
            runtimes: e.runtimes as f64,
            request: e.request as f64,
            total: e.total() as f64,
        })
    }

    /// The model version recorded by the trainer.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> String {
        self.inner.model().contents().meta.model_version.clone()
    }

    /// The release the bundle was published as (`RELS`): `{ version, channel, publishedAt }`,
    /// or null for a bundle that was never published.
    #[wasm_bindgen(
        unchecked_return_type = "{ version: number, channel: string, publishedAt: number } | null"
    )]
    pub fn release(&self) -> Result<JsValue, JsValue> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct R<'a> {
            version: f64,
            channel: &'a str,
            published_at: f64,
        }
        match &self.inner.model().contents().release {
            None => Ok(JsValue::NULL),
            Some(r) => to_js(&R {
                version: r.version as f64,
                channel: &r.channel,
                published_at: r.published_at as f64,
            }),
        }
    }

    /// The sha256 of the loaded bundle file, hex.
    #[wasm_bindgen(getter, js_name = bundleSha256)]
    pub fn bundle_sha256(&self) -> String {
        self.inner.model().sha256_hex()
    }

    /// Number of titles in the catalog.
    #[wasm_bindgen(getter, js_name = itemCount)]
    pub fn item_count(&self) -> u32 {
        self.inner.model().contents().catalog.len() as u32
    }

    /// Genre names, usable as onboarding picks.
    pub fn genres(&self) -> Vec<String> {
        self.inner.model().contents().catalog.genres().to_vec()
    }

    /// Every title of the catalog, in catalog order.
    #[wasm_bindgen(unchecked_return_type = "CatalogItem[]")]
    pub fn items(&self) -> Result<JsValue, JsValue> {
        let n = self.inner.model().contents().catalog.len();
        to_js(
            &(0..n)
                .map(|p| crate::wire::item(&self.inner, p))
                .collect::<Vec<_>>(),
        )
    }

    /// The bundle's ranker contract, or `null` when the bundle carries no ranker.
    #[wasm_bindgen(unchecked_return_type = "RankerInfo | null")]
    pub fn ranker(&self) -> Result<JsValue, JsValue> {
        let Some(r) = self.inner.model().ranker() else {
            return Ok(JsValue::NULL);
        };
        let c = r.contract();
        to_js(&JsRankerInfo {
            kind: &c.kind,
            dense: &c.dense,
            bags: c
                .bags
                .iter()
                .map(|b| JsBag {
                    field: b.field.as_str(),
                    rows: b.rows,
                    len: b.len,
                })
                .collect(),
            output: &c.output,
            column: c.column,
        })
    }

    /// Scores candidates with the bundle's ranker in one batch: P(watch) per input, in order.
    /// Throws `missing_section` without a ranker, `invalid_argument` for inputs that do not fit
    /// its contract.
    #[wasm_bindgen(js_name = rankerScores)]
    pub fn ranker_scores(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RankerInput[]")] inputs: JsValue,
    ) -> Result<Vec<f32>, JsValue> {
        let ranker = self.inner.model().ranker().ok_or_else(|| {
            Error::from(crate::error::BundleError::MissingSection { tag: "RANK".into() })
        })?;
        let inputs: Vec<JsRankerInput> = serde_wasm_bindgen::from_value(inputs)
            .map_err(|e| invalid("inputs must be RankerInput objects", e))?;
        let inputs: Vec<crate::ranker::RankerInput> = inputs
            .into_iter()
            .map(|i| crate::ranker::RankerInput {
                dense: i.dense,
                movie: i.movie,
                genres: i.genres,
                actors: i.actors,
                directors: i.directors,
                tags: i.tags,
                language: i.language,
                history: i.history,
                search: i.search,
            })
            .collect();
        Ok(ranker.score_inputs(&inputs)?)
    }

    /// The full on-device pipeline for the user whose local `state` this is: candidates (iALS
    /// fold-in, the two-tower user tower, content, popularity, item-to-item neighbours; flat
    /// int8 scan or HNSW), the feature catalog, the bundle's ranker, then the top-k rerank
    /// (finished, fatigued and too-mature titles dropped, MMR diversity, reasons). Nothing leaves the device. Throws
    /// `invalid_argument` for bad options.
    #[wasm_bindgen(js_name = recommendRow, unchecked_return_type = "Row")]
    pub fn recommend_row(
        &self,
        state: &JsUserState,
        #[wasm_bindgen(unchecked_param_type = "RowOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let req = row_request(options)?;
        let clock = host_clock();
        let row = self.inner.recommend_row_timed(&state.inner, &req, &clock)?;
        to_js(&crate::wire::row(&self.inner, row, true))
    }
}

/// Reads JS row options into a request: refuses keys outside [`crate::wire::ROW_OPTION_KEYS`]
/// (serde-wasm-bindgen reads only a struct's named fields, so `deny_unknown_fields` alone would
/// let a misspelt option pass silently), then converts and checks each option.
fn row_request(options: JsValue) -> Result<crate::RowRequest, JsValue> {
    for (key, allowed) in crate::wire::ROW_OPTION_KEYS {
        if key == "options" {
            check_keys(&options, key, allowed)?;
        } else if let Ok(inner) = js_sys::Reflect::get(&options, &key.into()) {
            check_keys(&inner, &format!("options.{key}"), allowed)?;
        }
    }
    let o: crate::wire::RowOptions =
        serde_wasm_bindgen::from_value(options).map_err(|e| invalid("options", e))?;
    Ok(o.to_request()?)
}

fn device_or_unknown(device: Option<String>) -> Result<Device, JsValue> {
    Ok(match device {
        Some(d) => d.parse()?,
        None => Device::Unknown,
    })
}

fn parse_item_ids(what: &str, v: JsValue) -> Result<Vec<u32>, JsValue> {
    serde_wasm_bindgen::from_value(v).map_err(|e| invalid(what, e))
}

/// What stays on the user's device: watch history, impressions, onboarding picks and settings
/// ([`crate::state::UserState`]), bounded in size (see its docs for the eviction rule). Keep it
/// with `toBytes()` (e.g. in IndexedDB) and restore it with `UserState.fromBytes()`, which
/// refuses a corrupt or newer blob whole (`corrupt_state`, `unsupported_state_version`).
#[wasm_bindgen(js_name = UserState)]
pub struct JsUserState {
    inner: crate::state::UserState,
}

impl Default for JsUserState {
    fn default() -> JsUserState {
        JsUserState::new()
    }
}

#[wasm_bindgen(js_class = UserState)]
impl JsUserState {
    /// An empty state.
    #[wasm_bindgen(constructor)]
    pub fn new() -> JsUserState {
        JsUserState {
            inner: crate::state::UserState::new(),
        }
    }

    /// Restores a state from `toBytes()` output. Throws and returns nothing on any corruption.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<JsUserState, JsValue> {
        Ok(JsUserState {
            inner: crate::state::UserState::import(bytes)?,
        })
    }

    /// The state as versioned, checksummed bytes.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.export()
    }

    /// Records play progress: `fraction` of the title watched (0..=1) at `timestamp` (unix
    /// seconds). Progress within the session window updates the title's latest play.
    #[wasm_bindgen(js_name = recordPlay)]
    pub fn record_play(
        &mut self,
        #[wasm_bindgen(js_name = itemId)] item_id: f64,
        timestamp: f64,
        fraction: f64,
        #[wasm_bindgen(js_name = watchedSeconds, unchecked_optional_param_type = "number | null")]
        watched_seconds: Option<f64>,
        #[wasm_bindgen(unchecked_optional_param_type = "Device | null")] device: Option<String>,
    ) -> Result<(), JsValue> {
        let item_id = whole_u32("itemId", item_id, u32::MAX)?;
        let t = unix_seconds("timestamp", timestamp)?;
        // Checked before the f64 is narrowed to the core's f32 (1 + 1e-9 would round to 1).
        if !(0.0..=1.0).contains(&fraction) {
            return Err(invalid(
                "fraction",
                format!("must be within 0..=1, got {fraction}"),
            ));
        }
        let watched_s = watched_seconds
            .map(|w| whole_u32("watchedSeconds", w, crate::state::MAX_WATCHED_SECONDS))
            .transpose()?;
        let progress = crate::state::Progress {
            fraction: fraction as f32,
            watched_s: watched_s.unwrap_or(0),
            device: device_or_unknown(device)?,
        };
        Ok(self.inner.record_progress(item_id, t, progress)?)
    }

    /// Records that the title played to its end at `timestamp`.
    #[wasm_bindgen(js_name = recordCompletion)]
    pub fn record_completion(
        &mut self,
        #[wasm_bindgen(js_name = itemId)] item_id: f64,
        timestamp: f64,
        #[wasm_bindgen(unchecked_optional_param_type = "Device | null")] device: Option<String>,
    ) -> Result<(), JsValue> {
        let item_id = whole_u32("itemId", item_id, u32::MAX)?;
        let t = unix_seconds("timestamp", timestamp)?;
        Ok(self
            .inner
            .record_completion(item_id, t, device_or_unknown(device)?)?)
    }

    /// Records that these titles were shown at `timestamp` (for fatigue).
    #[wasm_bindgen(js_name = recordImpressions)]
    pub fn record_impressions(
        &mut self,
        #[wasm_bindgen(js_name = itemIds, unchecked_param_type = "number[] | Uint32Array")]
        item_ids: JsValue,
        timestamp: f64,
    ) -> Result<(), JsValue> {
        let items = parse_item_ids("itemIds must be an array of item ids", item_ids)?;
        let t = unix_seconds("timestamp", timestamp)?;
        Ok(self.inner.record_impression(&items, t)?)
    }

    /// Sets the onboarding picks: genre names and title ids (duplicates dropped).
    #[wasm_bindgen(js_name = setOnboarding)]
    pub fn set_onboarding(
        &mut self,
        genres: StringArray,
        #[wasm_bindgen(js_name = itemIds, unchecked_param_type = "number[] | Uint32Array")]
        item_ids: JsValue,
    ) -> Result<(), JsValue> {
        let genres: Vec<String> = serde_wasm_bindgen::from_value(genres.into())
            .map_err(|e| invalid("genres must be an array of strings", e))?;
        let items = parse_item_ids("itemIds must be an array of item ids", item_ids)?;
        Ok(self.inner.set_onboarding(&genres, &items)?)
    }

    /// Onboarding genre picks.
    #[wasm_bindgen(js_name = onboardingGenres)]
    pub fn onboarding_genres(&self) -> Vec<String> {
        self.inner.onboarding().genres().to_vec()
    }

    /// The profile's maturity limit (`"G"`, `"PG"`, `"PG-13"`, `"R"`, `"NC-17"`) or `null`.
    #[wasm_bindgen(getter, js_name = maturityLimit, unchecked_return_type = "string | null")]
    pub fn maturity_limit(&self) -> JsValue {
        match self.inner.settings().maturity_limit() {
            Some(m) => m.as_str().into(),
            None => JsValue::NULL,
        }
    }

    /// Sets the optional profile fields the ranking features use: `age` (years), `gender`
    /// (`"f"`, `"m"`, `"x"`), `country` and `language` (ISO codes); `null` or absent clears a
    /// field. Throws `invalid_argument` (and changes nothing) on a bad value.
    #[wasm_bindgen(js_name = setProfile)]
    pub fn set_profile(
        &mut self,
        #[wasm_bindgen(
            unchecked_param_type = "{ age?: number | null; gender?: \"f\" | \"m\" | \"x\" | null; country?: string | null; language?: string | null }"
        )]
        profile: JsValue,
    ) -> Result<(), JsValue> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct JsProfile {
            age: Option<u8>,
            gender: Option<String>,
            country: Option<String>,
            language: Option<String>,
        }
        let p: JsProfile =
            serde_wasm_bindgen::from_value(profile).map_err(|e| invalid("profile", e))?;
        let gender = match p.gender.as_deref() {
            None => crate::features::Gender::Unknown,
            Some(g) => crate::features::Gender::from_code(g)
                .filter(|_| !g.is_empty())
                .ok_or_else(|| invalid("profile.gender", format!("{g:?} is not f, m or x")))?,
        };
        // Validate everything on a copy so a bad field changes nothing.
        let mut settings = self.inner.settings().clone();
        settings.set_country(p.country.as_deref())?;
        settings.set_language(p.language.as_deref())?;
        settings.set_age(p.age);
        settings.set_gender(gender);
        *self.inner.settings_mut() = settings;
        Ok(())
    }

    /// Sets or clears (`null`) the profile's maturity limit.
    #[wasm_bindgen(js_name = setMaturityLimit)]
    pub fn set_maturity_limit(&mut self, limit: Option<String>) -> Result<(), JsValue> {
        let limit = match limit {
            None => None,
            Some(l) => Some(crate::features::Maturity::parse(&l).ok_or_else(|| {
                invalid(
                    "maturity limit",
                    format!("{l:?} is not G, PG, PG-13, R or NC-17"),
                )
            })?),
        };
        self.inner.settings_mut().set_maturity_limit(limit);
        Ok(())
    }

    /// The user's local offset from UTC in minutes.
    #[wasm_bindgen(getter, js_name = utcOffsetMinutes)]
    pub fn utc_offset_minutes(&self) -> i32 {
        self.inner.settings().utc_offset_minutes()
    }

    /// Sets the user's local offset from UTC in whole minutes (within ±18 h).
    #[wasm_bindgen(js_name = setUtcOffsetMinutes)]
    pub fn set_utc_offset_minutes(&mut self, minutes: f64) -> Result<(), JsValue> {
        // NaN and infinities have no whole part either.
        if minutes.fract() != 0.0 {
            return Err(invalid(
                "minutes",
                format!("must be whole minutes, got {minutes}"),
            ));
        }
        // The cast saturates; the state refuses anything beyond ±18 h.
        Ok(self
            .inner
            .settings_mut()
            .set_utc_offset_minutes(minutes as i32)?)
    }

    /// Item ids of every recorded play, oldest first.
    pub fn history(&self) -> Vec<u32> {
        self.inner.history_oldest_first()
    }

    /// Titles watched past the positive threshold, most recently finished first.
    #[wasm_bindgen(js_name = finishedTitles)]
    pub fn finished_titles(&self) -> Vec<u32> {
        self.inner.finished_titles()
    }

    /// Titles shown at least `minShown` times without a play since, by item id.
    #[wasm_bindgen(js_name = fatiguedTitles)]
    pub fn fatigued_titles(
        &self,
        #[wasm_bindgen(js_name = minShown)] min_shown: f64,
    ) -> Result<Vec<u32>, JsValue> {
        let min_shown = whole("minShown", min_shown, 1, crate::state::MAX_IMPRESSIONS)?;
        Ok(self.inner.fatigued_titles(min_shown))
    }

    /// Number of plays kept.
    #[wasm_bindgen(getter, js_name = playCount)]
    pub fn play_count(&self) -> u32 {
        self.inner.plays().len() as u32
    }

    /// Number of impressions kept.
    #[wasm_bindgen(getter, js_name = impressionCount)]
    pub fn impression_count(&self) -> u32 {
        self.inner.impressions().len() as u32
    }

    /// Records an event (what the event queue keeps and, at privacy `full`, sends) in the
    /// state: an impression marks its titles shown, progress and stop reports update the play,
    /// a completion finishes it; a play start or a search leaves it as it is
    /// (`edgerec::events::Event::apply`). Checked first: `invalid_argument` naming the field.
    #[wasm_bindgen(js_name = recordEvent)]
    pub fn record_event(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "EdgerecEvent")] event: JsValue,
    ) -> Result<(), JsValue> {
        let e: crate::events::Event =
            serde_wasm_bindgen::from_value(event).map_err(|e| invalid("event", e))?;
        e.validate().map_err(|e| invalid("event", e))?;
        Ok(e.apply(&mut self.inner)?)
    }
}

/// The most events `aggregateSessions` reads in one call.
const MAX_AGGREGATE_EVENTS: u32 = 100_000;

/// Each session's online metrics from a device's own events: what a client at privacy
/// `metrics` sends instead of the events (`edgerec::events::SessionMetrics::aggregate`). A play
/// counts as watched once a report reaches `watchedThresholdSeconds` or it completes.
#[wasm_bindgen(js_name = aggregateSessions, unchecked_return_type = "SessionMetrics[]")]
pub fn aggregate_sessions(
    #[wasm_bindgen(unchecked_param_type = "EdgerecEvent[]")] events: JsValue,
    #[wasm_bindgen(js_name = watchedThresholdSeconds)] watched_threshold_seconds: f64,
) -> Result<JsValue, JsValue> {
    let threshold = whole_u32(
        "watchedThresholdSeconds",
        watched_threshold_seconds,
        crate::state::MAX_WATCHED_SECONDS,
    )?;
    if !js_sys::Array::is_array(&events) {
        return Err(invalid("events", "must be an array of events"));
    }
    let n = js_sys::Array::from(&events).length();
    if n > MAX_AGGREGATE_EVENTS {
        return Err(invalid(
            "events",
            format!("at most {MAX_AGGREGATE_EVENTS} per call, got {n}"),
        ));
    }
    let events: Vec<crate::events::Event> =
        serde_wasm_bindgen::from_value(events).map_err(|e| invalid("events", e))?;
    for (i, e) in events.iter().enumerate() {
        e.validate()
            .map_err(|e| invalid("events", format!("event {i}: {e}")))?;
    }
    to_js(&crate::events::SessionMetrics::aggregate(
        &events, threshold,
    ))
}

/// The A/B arm `deviceId` is in (`edgerec::experiments::Experiment::assign`): deterministic,
/// the same on every platform; sync the arm's `channel` and send its `label` with events.
#[wasm_bindgen(js_name = assignArm, unchecked_return_type = "Assignment")]
pub fn assign_arm(
    #[wasm_bindgen(unchecked_param_type = "Experiment")] experiment: JsValue,
    #[wasm_bindgen(js_name = deviceId)] device_id: &str,
) -> Result<JsValue, JsValue> {
    let e: crate::experiments::Experiment =
        serde_wasm_bindgen::from_value(experiment).map_err(|e| invalid("experiment", e))?;
    let a = e.assign(device_id).map_err(|e| invalid("experiment", e))?;
    to_js(&a)
}
