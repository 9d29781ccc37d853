//! The native sync client: keeps a model current from a release server (`edgerec serve`),
//! with the same guarantees as the npm package's `edgerec/sync`, and the same on-disk layout
//! (a directory holding `manifest`, `state` and `sections/<sha256>`), so a node client and a
//! native one can open each other's stores.
//!
//! One [`Client::sync`]: fetch the channel's manifest conditionally (`If-None-Match`), at most
//! [`MAX_MANIFEST_BYTES`]; verify it in the core ([`Manifest::verify`]: signatures, key set,
//! channel, expiry, rollback) before reading anything in it; take each section from the store
//! if it holds it intact, else download it — cut off past the length the manifest lists — and
//! check it; rebuild the bundle, load it into a new [`Recommender`] and check it is the release
//! the manifest names; only then persist the manifest (the switch) and swap. On every failure
//! the previous recommender keeps serving and [`Status`] says why. Requests carry only the
//! channel, section hashes and an ETag: nothing about the user.
//!
//! ```no_run
//! use std::time::Duration;
//! use edgerec::release::TrustRoot;
//! use edgerec_release::sync::{Client, Polling};
//! # fn main() -> anyhow::Result<()> {
//! let trust = TrustRoot::parse("…64 hex digits: the publisher's key…")?;
//! let mut client = Client::connect("http://127.0.0.1:8080", trust, "stable",
//!                                  "/var/lib/app/edgerec".as_ref(), Duration::from_secs(30))?;
//! client.sync();
//! if let Some(recommender) = client.recommender() { /* recommend_row(…) */ }
//! let next = Polling::hourly().delay(client.failures(), 0.5);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use edgerec::Recommender;
use edgerec::bundle::SectionEntry;
use edgerec::release::{Expect, MAX_MANIFEST_BYTES, Manifest, TrustRoot, hex};
use serde::Serialize;

use crate::http::{HttpTransport, Transport, TransportError};

/// Where a client keeps the installed release. Every read is treated as untrusted: the
/// manifest is verified again and every section checked against it before use.
pub trait Store {
    /// A small named file (`manifest`, `state`), or `None`.
    fn get_meta(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Writes a named file atomically (the old or the new bytes, never a mix).
    fn put_meta(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()>;
    /// A section blob by its sha256 (hex), or `None`.
    fn get_blob(&self, sha: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Writes a section blob atomically.
    fn put_blob(&mut self, sha: &str, bytes: &[u8]) -> anyhow::Result<()>;
    /// Removes a section blob (absent is fine).
    fn delete_blob(&mut self, sha: &str) -> anyhow::Result<()>;
    /// The blobs held.
    fn list_blobs(&self) -> anyhow::Result<Vec<String>>;
}

fn is_sha(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A [`Store`] in a directory: `manifest`, `state`, `sections/<sha256>`; writes are atomic
/// (temporary file, sync, rename) — the layout of the npm package's `DirectoryStore`.
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// The store in `dir` (created on first write).
    pub fn new(dir: &Path) -> DirStore {
        DirStore {
            dir: dir.to_path_buf(),
        }
    }

    fn blob(&self, sha: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(is_sha(sha), "not a sha256: {sha:?}");
        Ok(self.dir.join("sections").join(sha))
    }

    fn meta(&self, name: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            matches!(name, "manifest" | "state"),
            "unknown store file {name:?}"
        );
        Ok(self.dir.join(name))
    }
}

fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl Store for DirStore {
    fn get_meta(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        read_optional(&self.meta(name)?)
    }
    fn put_meta(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        edgerec_data::fs::write_atomic(&self.meta(name)?, bytes)
    }
    fn get_blob(&self, sha: &str) -> anyhow::Result<Option<Vec<u8>>> {
        read_optional(&self.blob(sha)?)
    }
    fn put_blob(&mut self, sha: &str, bytes: &[u8]) -> anyhow::Result<()> {
        edgerec_data::fs::write_atomic(&self.blob(sha)?, bytes)
    }
    fn delete_blob(&mut self, sha: &str) -> anyhow::Result<()> {
        let path = self.blob(sha)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
    fn list_blobs(&self) -> anyhow::Result<Vec<String>> {
        let dir = self.dir.join("sections");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if is_sha(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }
}

/// A [`Store`] in memory (tests, or a device without storage).
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    meta: std::collections::BTreeMap<String, Vec<u8>>,
    blobs: std::collections::BTreeMap<String, Vec<u8>>,
}

impl Store for MemStore {
    fn get_meta(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.meta.get(name).cloned())
    }
    fn put_meta(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.meta.insert(name.to_string(), bytes.to_vec());
        Ok(())
    }
    fn get_blob(&self, sha: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.blobs.get(sha).cloned())
    }
    fn put_blob(&mut self, sha: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.blobs.insert(sha.to_string(), bytes.to_vec());
        Ok(())
    }
    fn delete_blob(&mut self, sha: &str) -> anyhow::Result<()> {
        self.blobs.remove(sha);
        Ok(())
    }
    fn list_blobs(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.blobs.keys().cloned().collect())
    }
}

/// Why a sync did not install anything: a stable `code` (the core's codes for refusals —
/// `bad_signature`, `rollback`, `expired`, `section_mismatch`, … — and `network`, `timeout`,
/// `http_error`, `store` for faults) and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SyncError {
    /// The stable code (the npm client reports the same ones).
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

impl SyncError {
    fn new(code: &'static str, message: impl Into<String>) -> SyncError {
        SyncError {
            code,
            message: message.into(),
        }
    }

    /// True when the server answered and the answer was refused (a bad or hostile release),
    /// false for transport and storage faults.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self.code,
            "network" | "timeout" | "http_error" | "store" | "internal"
        )
    }
}

impl From<edgerec::Error> for SyncError {
    fn from(e: edgerec::Error) -> SyncError {
        SyncError::new(e.code(), e.to_string())
    }
}

fn store_error(e: anyhow::Error) -> SyncError {
    SyncError::new("store", format!("{e:#}"))
}

/// A refusal and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// The stable code.
    pub code: &'static str,
    /// What was refused.
    pub message: String,
    /// When (unix seconds).
    pub at: i64,
}

/// What the client knows (the npm client's `model.status`, same fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The channel followed.
    pub channel: String,
    /// The installed release's version.
    pub version: Option<u64>,
    /// Its label (the model version).
    pub label: Option<String>,
    /// When its manifest expires (unix seconds).
    pub expires: Option<i64>,
    /// The installed manifest has expired and nothing newer could be installed: the device is
    /// being kept on a stale model (a freeze attack, or a publisher that stopped).
    pub stale: bool,
    /// The last sync attempt (unix seconds).
    pub last_check: Option<i64>,
    /// The last sync that reached the server and accepted its answer.
    pub last_success: Option<i64>,
    /// The last sync's error (cleared by a success).
    pub last_error: Option<SyncError>,
    /// The last refused answer (kept after successes).
    pub last_refused: Option<Refusal>,
    /// Bytes downloaded since the client opened.
    pub downloaded_bytes: u64,
}

/// What one [`Client::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// A new release was installed.
    pub updated: bool,
    /// The installed version afterwards.
    pub version: Option<u64>,
    /// Bytes downloaded by this sync (manifest and sections).
    pub downloaded_bytes: u64,
    /// Why nothing was installed, when something went wrong.
    pub error: Option<SyncError>,
}

/// When to sync next: every `interval` ± `jitter` of it, backing off exponentially after
/// failures (with the same jitter) up to `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polling {
    /// The interval while syncs succeed.
    pub interval: Duration,
    /// The relative jitter (0.1: ±10%), so a fleet does not poll in lockstep.
    pub jitter: f64,
    /// The longest wait after failures.
    pub max_backoff: Duration,
}

impl Polling {
    /// Hourly, ±10%, backing off to six hours.
    pub fn hourly() -> Polling {
        Polling {
            interval: Duration::from_secs(3600),
            jitter: 0.1,
            max_backoff: Duration::from_secs(6 * 3600),
        }
    }

    /// The wait before the next sync after `failures` consecutive failures; `unit` is a
    /// uniform random number in [0, 1) (see [`random_unit`]).
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let base = if failures == 0 {
            self.interval.as_secs_f64()
        } else {
            let grown = self.interval.as_secs_f64() * 2f64.powi(failures.min(16) as i32);
            grown.min(
                self.max_backoff
                    .as_secs_f64()
                    .max(self.interval.as_secs_f64()),
            )
        };
        let jitter = self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base * (1.0 + jitter)).max(0.0))
    }
}

/// A uniform random number in [0, 1) from the OS (for [`Polling::delay`]).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// What the client checks besides signatures.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pinned trust root (the publisher's key, or `T:KEY,…`).
    pub trust: TrustRoot,
    /// The channel followed.
    pub channel: String,
    /// The largest bundle accepted (a manifest naming a bigger one is refused before any
    /// download).
    pub max_bundle_bytes: u64,
}

impl Options {
    /// `channel` under `trust`, bundles up to 512 MiB.
    pub fn new(trust: TrustRoot, channel: &str) -> Result<Options, SyncError> {
        edgerec::release::check_channel(channel)?;
        Ok(Options {
            trust,
            channel: channel.to_string(),
            max_bundle_bytes: 512 << 20,
        })
    }
}

/// The installed release.
#[derive(Debug, Clone)]
struct Installed {
    version: u64,
    key_set_serial: u64,
    sections: Vec<String>,
}

/// The persisted state besides the manifest (the npm client's `state` file).
#[derive(Debug, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct State {
    #[serde(default)]
    key_set_serial: Option<u64>,
}

/// Keeps one channel's model current; see the [module](self) docs.
pub struct Client<S: Store = DirStore, T: Transport = HttpTransport> {
    options: Options,
    store: S,
    transport: T,
    recommender: Option<Arc<Recommender>>,
    installed: Option<Installed>,
    etag: Option<String>,
    status: Status,
    failures: u32,
}

impl Client<DirStore, HttpTransport> {
    /// A client of the server at `url` keeping its model in the directory `dir`: opens the
    /// installed release (offline), does not sync yet.
    pub fn connect(
        url: &str,
        trust: TrustRoot,
        channel: &str,
        dir: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Client> {
        Ok(Client::open(
            Options::new(trust, channel)?,
            DirStore::new(dir),
            HttpTransport::new(url, timeout)?,
        ))
    }
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Opens what `store` holds — the manifest verified again (no expiry check: an expired
    /// model still serves, reported stale), every section checked — without the network. A
    /// store that no longer verifies is reported in `status().last_error` and left to the next
    /// sync to replace.
    pub fn open(options: Options, store: S, transport: T) -> Client<S, T> {
        let mut client = Client {
            status: Status {
                channel: options.channel.clone(),
                version: None,
                label: None,
                expires: None,
                stale: false,
                last_check: None,
                last_success: None,
                last_error: None,
                last_refused: None,
                downloaded_bytes: 0,
            },
            options,
            store,
            transport,
            recommender: None,
            installed: None,
            etag: None,
            failures: 0,
        };
        if let Err(e) = client.load_installed() {
            client.status.last_error = Some(e);
        }
        client.update_stale(unix_now());
        client
    }

    /// The recommender serving now. Callers keep their clone as long as they like: a swap
    /// never changes a recommender in use, and the old one is freed with its last clone.
    pub fn recommender(&self) -> Option<Arc<Recommender>> {
        self.recommender.clone()
    }

    /// What the client knows.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Consecutive failed syncs (for [`Polling::delay`]).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The store (e.g. to inspect it in tests).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Checks for a new release now and installs it. Never fails: the outcome and
    /// [`Client::status`] say what happened, and the old model keeps serving on any error.
    pub fn sync(&mut self) -> Outcome {
        self.sync_at(unix_now())
    }

    /// [`Client::sync`] with the clock given (unix seconds).
    pub fn sync_at(&mut self, now: i64) -> Outcome {
        self.status.last_check = Some(now);
        let mut downloaded = 0;
        let result = self.attempt(now, &mut downloaded);
        self.status.downloaded_bytes += downloaded;
        let outcome = match result {
            Ok(updated) => {
                self.status.last_success = Some(now);
                self.status.last_error = None;
                self.failures = 0;
                Outcome {
                    updated,
                    version: self.status.version,
                    downloaded_bytes: downloaded,
                    error: None,
                }
            }
            Err(error) => {
                if error.is_refusal() {
                    self.status.last_refused = Some(Refusal {
                        code: error.code,
                        message: error.message.clone(),
                        at: now,
                    });
                }
                self.status.last_error = Some(error.clone());
                self.failures = self.failures.saturating_add(1);
                Outcome {
                    updated: false,
                    version: self.status.version,
                    downloaded_bytes: downloaded,
                    error: Some(error),
                }
            }
        };
        self.update_stale(now);
        outcome
    }

    fn update_stale(&mut self, now: i64) {
        self.status.stale = self.status.expires.is_some_and(|e| e < now);
    }

    fn read_state(&self) -> State {
        match self.store.get_meta("state") {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => State::default(),
        }
    }

    /// The largest key set serial seen (a smaller one is a rollback of the keys).
    fn key_set_serial(&self) -> Option<u64> {
        let seen = self.read_state().key_set_serial.unwrap_or(0);
        let installed = self.installed.as_ref().map_or(0, |i| i.key_set_serial);
        Some(seen.max(installed)).filter(|&s| s > 0)
    }

    fn load_installed(&mut self) -> Result<(), SyncError> {
        let Some(bytes) = self.store.get_meta("manifest").map_err(store_error)? else {
            return Ok(());
        };
        let verified = Manifest::verify(
            &bytes,
            &self.options.trust,
            &Expect {
                channel: &self.options.channel,
                now: None,
                installed_version: None,
                key_set_serial: self.key_set_serial(),
            },
        )?;
        let manifest = &verified.manifest;
        let mut parts = Vec::with_capacity(manifest.sections.len());
        for (i, entry) in manifest.sections.iter().enumerate() {
            let sha = hex(&entry.sha256);
            let Some(blob) = self.store.get_blob(&sha).map_err(store_error)? else {
                return Err(SyncError::new(
                    "section_mismatch",
                    format!("the store lost section {}", tag(entry)),
                ));
            };
            manifest.check_section(i, &blob)?;
            parts.push(blob);
        }
        let recommender = self.build(manifest, &parts)?;
        self.install(manifest, verified.key_set.serial, recommender);
        Ok(())
    }

    /// The bundle rebuilt from `parts`, loaded, and checked to be the release `manifest` names.
    fn build(&self, manifest: &Manifest, parts: &[Vec<u8>]) -> Result<Recommender, SyncError> {
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let bundle = manifest.assemble(&refs)?;
        let recommender = Recommender::from_bytes(&bundle)?;
        let named = recommender.model().contents().release.as_ref();
        if !named.is_some_and(|r| r.version == manifest.version && r.channel == manifest.channel) {
            return Err(SyncError::new(
                "section_mismatch",
                "the bundle is not the release its manifest names",
            ));
        }
        Ok(recommender)
    }

    fn install(&mut self, manifest: &Manifest, key_set_serial: u64, recommender: Recommender) {
        self.installed = Some(Installed {
            version: manifest.version,
            key_set_serial,
            sections: manifest.sections.iter().map(|e| hex(&e.sha256)).collect(),
        });
        self.status.version = Some(manifest.version);
        self.status.label = Some(manifest.label.clone());
        self.status.expires = Some(manifest.expires);
        // The old recommender is freed with its last clone.
        self.recommender = Some(Arc::new(recommender));
    }

    fn get(
        &mut self,
        path: &str,
        if_none_match: Option<&str>,
        max: u64,
        too_long: impl FnOnce(u64) -> SyncError,
    ) -> Result<crate::http::Response, SyncError> {
        self.transport
            .get(path, if_none_match, max)
            .map_err(|e| match e {
                TransportError::Network(m) => SyncError::new("network", m),
                TransportError::Timeout(m) => SyncError::new("timeout", m),
                TransportError::TooLong { max } => too_long(max),
            })
    }

    fn attempt(&mut self, now: i64, downloaded: &mut u64) -> Result<bool, SyncError> {
        let path = format!("/v1/channels/{}/manifest", self.options.channel);
        let etag = self.etag.clone().filter(|_| self.recommender.is_some());
        let answer = self.get(&path, etag.as_deref(), MAX_MANIFEST_BYTES as u64, |max| {
            SyncError::new("bad_manifest", format!("manifest longer than {max} bytes"))
        })?;
        match answer.status {
            304 => return Ok(false),
            200 => {}
            s => return Err(SyncError::new("http_error", format!("manifest: HTTP {s}"))),
        }
        *downloaded += answer.body.len() as u64;
        let verified = Manifest::verify(
            &answer.body,
            &self.options.trust,
            &Expect {
                channel: &self.options.channel,
                now: Some(now),
                installed_version: self.installed.as_ref().map(|i| i.version),
                key_set_serial: self.key_set_serial(),
            },
        )?;
        let manifest = &verified.manifest;
        if manifest.bundle_length > self.options.max_bundle_bytes {
            return Err(SyncError::new(
                "bad_manifest",
                format!(
                    "a {}-byte bundle, at most {}",
                    manifest.bundle_length, self.options.max_bundle_bytes
                ),
            ));
        }
        if self.recommender.is_some()
            && self.installed.as_ref().map(|i| i.version) == Some(manifest.version)
        {
            self.etag = answer.etag;
            return Ok(false);
        }

        let mut parts = Vec::with_capacity(manifest.sections.len());
        for (i, entry) in manifest.sections.iter().enumerate() {
            let sha = hex(&entry.sha256);
            // A held blob is used only if it is intact; a damaged one is fetched again.
            let held = self
                .store
                .get_blob(&sha)
                .map_err(store_error)?
                .filter(|b| manifest.check_section(i, b).is_ok());
            let blob = match held {
                Some(b) => b,
                None => {
                    let name = tag(entry);
                    let answer =
                        self.get(&format!("/v1/sections/{sha}"), None, entry.length, |max| {
                            SyncError::new(
                                "section_mismatch",
                                format!(
                                    "section {name}: more than the {max} bytes the manifest lists"
                                ),
                            )
                        })?;
                    if answer.status != 200 {
                        return Err(SyncError::new(
                            "http_error",
                            format!("section {name}: HTTP {}", answer.status),
                        ));
                    }
                    *downloaded += answer.body.len() as u64;
                    manifest.check_section(i, &answer.body)?;
                    self.store
                        .put_blob(&sha, &answer.body)
                        .map_err(store_error)?;
                    answer.body
                }
            };
            parts.push(blob);
        }
        let recommender = self.build(manifest, &parts)?;
        drop(parts);

        // The switch: the manifest the store opens next time, then the key set serial seen.
        let seen = self
            .key_set_serial()
            .unwrap_or(0)
            .max(verified.key_set.serial);
        self.store
            .put_meta("manifest", &answer.body)
            .map_err(store_error)?;
        let state = serde_json::to_vec(&State {
            key_set_serial: Some(seen),
        })
        .map_err(|e| SyncError::new("internal", e.to_string()))?;
        self.store.put_meta("state", &state).map_err(store_error)?;
        self.install(manifest, verified.key_set.serial, recommender);
        self.etag = answer.etag;
        self.collect();
        Ok(true)
    }

    /// Drops blobs the installed release does not use (a failure leaves them for next time).
    fn collect(&mut self) {
        let Some(installed) = &self.installed else {
            return;
        };
        let keep: std::collections::HashSet<&String> = installed.sections.iter().collect();
        if let Ok(held) = self.store.list_blobs() {
            for sha in held.iter().filter(|s| !keep.contains(s)) {
                let _ = self.store.delete_blob(sha);
            }
        }
    }
}

fn tag(entry: &SectionEntry) -> String {
    String::from_utf8_lossy(&entry.tag).into_owned()
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_with_jitter() {
        let p = Polling {
            interval: Duration::from_secs(100),
            jitter: 0.1,
            max_backoff: Duration::from_secs(1000),
        };
        assert_eq!(p.delay(0, 0.5), Duration::from_secs(100));
        assert_eq!(p.delay(0, 0.0), Duration::from_secs(90));
        assert_eq!(p.delay(1, 0.5), Duration::from_secs(200));
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(800));
        assert_eq!(p.delay(40, 0.5), Duration::from_secs(1000));
        assert!(p.delay(40, 1.0) <= Duration::from_secs(1100));
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn dir_store_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DirStore::new(dir.path());
        assert!(s.put_blob("../x", b"1").is_err());
        assert!(s.put_meta("../manifest", b"1").is_err());
        let sha = "a".repeat(64);
        assert_eq!(s.get_blob(&sha).unwrap(), None);
        s.put_blob(&sha, b"abc").unwrap();
        assert_eq!(s.list_blobs().unwrap(), vec![sha.clone()]);
        assert_eq!(s.get_blob(&sha).unwrap().as_deref(), Some(&b"abc"[..]));
        s.delete_blob(&sha).unwrap();
        s.delete_blob(&sha).unwrap();
        assert!(s.list_blobs().unwrap().is_empty());
    }
}
