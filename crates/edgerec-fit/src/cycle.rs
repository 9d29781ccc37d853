//! The periodic retraining loop, end to end: what the server does every day, and what a device
//! downloads when it syncs afterwards.
//!
//! [`run`] replays days of a world's logs. Day `d` ends at `cut = first_cut + d · 86 400`; the
//! positives, plays and searches before it are what the server has ([`until`]: the world cut
//! in time; the items and users tables stay whole — the catalog is known ahead, so it never
//! changes between days). Each day is one of three kinds of change ([`Change`]):
//!
//! * **full** (the first day and every `full_every` days): [`System::fit`] on the logs so far —
//!   catalog, every source and its embeddings, the serving fitted on validation and the
//!   learned ranker with its gate, as `edgerec train` fits them;
//! * **ranker** (every `ranker_every` days after a full retrain, when that retrain shipped a
//!   ranker): the ranker alone, retrained — the kind the full retrain's gate chose, on the
//!   candidates the full retrain's bundle proposed (as devices had it) to the users who watched
//!   something since, labelled by what they watched ([`crate::learned`]). It is not gated
//!   again: the gate needs a validation window the short retraining window does not have;
//!   the bundle's recipe records it (`ranker_retrain`). When the full retrain shipped no ranker
//!   there is nothing to retrain and the day is a popularity day (its note says so);
//! * **popularity** (every other day): the full retrain's model kept byte for byte — every
//!   source, embedding, quota and the ranker — with time-decayed popularity (`POPL`, the
//!   model's half-life) and the platform counts of the media table (`MDIA`) recomputed as of
//!   the day's end.
//!
//! Every day's popularity is decayed to the day's end, so each release says "as of the end of
//! the day". The bundle is built as `edgerec bundle build --world` builds it
//! ([`crate::package::package`]: media table, feature contract, int8, serving, calendar,
//! checked by the device's loader), with one difference that keeps unchanged sections
//! unchanged: HNSW graphs are built on full-retrain days only and carried as bytes afterwards.
//! The graphs depend only on the item vectors, which only a full retrain changes, but a native
//! build is parallel and not byte-deterministic (see `edgerec::hnsw`): rebuilding them daily
//! would ship new graphs every day for nothing.
//!
//! `META` (the model's provenance) changes only when a model is refitted; the release's
//! label (the manifest's) names the day: `<model version>+pop.<date>`, `+rank.<date>`.
//!
//! Each bundle is published to a [`Store`] at the simulated time (the day's end) and a device
//! then syncs with the native client ([`edgerec_release::sync::Client`], in memory, reading the
//! store's files as `edgerec serve` serves them): it verifies the signed manifest against the
//! trust root (with its installed version: no rollback), downloads only the sections whose
//! sha256 it does not hold, checks each against the manifest, rebuilds the bundle, loads it
//! and checks it is the release named. [`Day`] records what it downloaded, beside what the
//! publish said a device on the previous version needs
//! (`manifest + delta`); [`Cycle::markdown`] is the byte table per kind of change.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::bundle::{BundleContents, Popularity, RankerModel};
use edgerec::release::{Expect, Manifest, TrustRoot, hex};
use edgerec::{Model, Recommender};
use edgerec_release::http::{Response, Transport, TransportError};
use edgerec_release::sync::{Client, MemStore, Options, Store as _};
use edgerec_release::{PublishOptions, Published, Signing, Store, StoreLayout};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::data::WorldData;
use crate::learned::{self, Kind, LearnConfig};
use crate::package::{HnswMode, PackageOptions, package};
use crate::sources;
use crate::split;
use crate::system::{System, SystemConfig};

const DAY: i64 = 86_400;

/// What changed in a day's release (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Popularity and platform counts as of the day's end; every model kept.
    Popularity,
    /// The ranker retrained, with the day's popularity and platform counts.
    Ranker,
    /// Everything refitted.
    Full,
}

impl Change {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Change::Popularity => "popularity",
            Change::Ranker => "ranker + popularity",
            Change::Full => "full retrain",
        }
    }
}

/// How [`run`] replays the days.
#[derive(Debug, Clone)]
pub struct CycleConfig {
    /// What a full retrain fits (as `edgerec train`).
    pub system: SystemConfig,
    /// How bundles are packaged (as `edgerec bundle build`); `world` is set to the world's
    /// directory (the platform counts are taken before each day's end), and `hnsw` applies
    /// on full-retrain days (the graphs are carried between them).
    pub package: PackageOptions,
    /// The end of the first day (unix seconds); `None`: the days end with the world's last day
    /// (UTC).
    pub first_cut: Option<i64>,
    /// Days to replay (≥ 1).
    pub days: u32,
    /// A full retrain every this many days (the first day is always one; ≥ 1).
    pub full_every: u32,
    /// A ranker-only retrain every this many days after a full retrain (0: never).
    pub ranker_every: u32,
    /// The release channel.
    pub channel: String,
    /// Versions whose blobs the store keeps.
    pub keep: usize,
    /// How long devices accept each manifest (seconds).
    pub expires_in: i64,
}

impl Default for CycleConfig {
    fn default() -> Self {
        CycleConfig {
            system: SystemConfig::default(),
            package: PackageOptions::default(),
            first_cut: None,
            days: 14,
            full_every: 7,
            ranker_every: 3,
            channel: "cycle".into(),
            keep: 3,
            expires_in: 7 * DAY,
        }
    }
}

/// One section of a day's release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SectionRecord {
    /// Its tag (`POPL`, …).
    pub tag: String,
    /// Its payload version.
    pub version: u16,
    /// Its payload's length.
    pub bytes: u64,
    /// Its payload's sha256 (hex).
    pub sha256: String,
    /// Whether the previous release lacked these bytes (a device on it downloads them).
    pub changed: bool,
}

/// What one day published and what a device downloaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Day {
    /// 0 for the first day.
    pub day: u32,
    /// The day (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Its end (unix seconds): the logs before it are the server's; the publish time.
    pub cut: i64,
    /// What changed.
    pub change: Change,
    /// How it was made, when not obvious (a skipped ranker retrain, the ranker's examples).
    pub note: String,
    /// Positives before the cut.
    pub positives: usize,
    /// The channel's version published.
    pub version: u64,
    /// The release's label.
    pub label: String,
    /// The bundle's size (as published, with `RELS`).
    pub bundle_bytes: u64,
    /// The signed manifest's size.
    pub manifest_bytes: u64,
    /// What a device without a model downloads: the manifest and every section.
    pub full_bytes: u64,
    /// What the publish says a device on the channel's previous version downloads: the
    /// manifest and the sections that version lacks.
    pub delta_bytes: u64,
    /// What the simulated device downloaded in its sync (the manifest and the sections it did
    /// not hold).
    pub downloaded_bytes: u64,
    /// The device held no model before this sync (its first download).
    pub first_sync: bool,
    /// Every section of the release.
    pub sections: Vec<SectionRecord>,
    /// Seconds the day took (fitting, packaging, publishing, syncing).
    pub seconds: f64,
}

impl Day {
    /// The tags of the sections the previous release lacked, in bundle order.
    pub fn changed(&self) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|s| s.changed)
            .map(|s| s.tag.as_str())
            .collect()
    }
}

/// The replayed days and what they cost devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cycle {
    /// The world's directory.
    pub world: String,
    /// The channel published to.
    pub channel: String,
    /// Full retrain every this many days.
    pub full_every: u32,
    /// Ranker retrain every this many days after a full retrain (0: never).
    pub ranker_every: u32,
    /// Every day, in order.
    pub days: Vec<Day>,
    /// One row per kind of change (the first sync of a device apart).
    pub rows: Vec<Row>,
}

/// The bytes a device downloads per sync for one kind of change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The kind (`first sync`, `popularity`, `ranker + popularity`, `full retrain`).
    pub change: String,
    /// Syncs of this kind.
    pub syncs: usize,
    /// Mean bytes downloaded per sync.
    pub mean_downloaded: f64,
    /// Mean bytes of a full download (manifest and every section) of the same releases.
    pub mean_full: f64,
    /// `mean_downloaded / mean_full`.
    pub ratio: f64,
    /// The sections downloaded, with their mean bytes per sync (`POPL 6.7 KB`, …).
    pub sections: Vec<(String, f64)>,
}

/// The world's logs before `cut` (unix seconds): positives, plays and searches; items and
/// users whole. What the server has at that moment.
pub fn until(world: &WorldData, cut: i64) -> WorldData {
    WorldData {
        dir: world.dir.clone(),
        items: world.items.clone(),
        users: world.users.clone(),
        events: world
            .events
            .iter()
            .filter(|e| e.time < cut)
            .copied()
            .collect(),
        plays: world
            .plays
            .iter()
            .map(|p| p.iter().filter(|p| p.time < cut).copied().collect())
            .collect(),
        searches: world
            .searches
            .iter()
            .map(|s| s.iter().filter(|s| s.time < cut).cloned().collect())
            .collect(),
    }
}

/// The day of the latest full retrain, as later days build on it.
struct Full {
    /// The fitted model (no device sections), with a retrained ranker once there is one.
    model: BundleContents,
    /// The bundle devices got that day (graphs, and the candidates a ranker retrain learns
    /// from).
    packaged: BundleContents,
    /// Its day's end.
    cut: i64,
    /// Its day.
    day: u32,
    /// The ranker kind its gate chose, when one shipped.
    ranker: Option<Kind>,
}

/// Replays `config.days` days of `world` (see the module docs): fits, packages and publishes
/// each day's bundle to `store` signed by `signing`, syncs a device after each publish, and
/// calls `progress` with each day as it is done.
///
/// Errors: a day without positives before it, a fit, package or publish that fails, or a
/// device sync that is refused.
pub fn run(
    world: &WorldData,
    store: &Store,
    signing: &Signing,
    config: &CycleConfig,
    mut progress: impl FnMut(&Day),
) -> Result<Cycle> {
    ensure!(config.days >= 1, "replay at least one day");
    ensure!(config.full_every >= 1, "a full retrain every 1 day or more");
    let Some(last) = world.events.last() else {
        bail!("{}: the world has no positives", world.dir.display());
    };
    let first_cut = config.first_cut.unwrap_or_else(|| {
        let end = (last.time.div_euclid(DAY) + 1) * DAY;
        end - i64::from(config.days - 1) * DAY
    });
    let mut device = Device::new(store, signing.trust().clone(), &config.channel)?;
    let mut full: Option<Full> = None;
    let mut days = Vec::new();
    for d in 0..config.days {
        let started = Instant::now();
        let cut = first_cut + i64::from(d) * DAY;
        let data = until(world, cut);
        ensure!(
            !data.events.is_empty(),
            "no positives before {} (day {d}): start later",
            split::date(cut)
        );
        let date = split::date(cut - 1);
        let mut note = String::new();
        let change = match &full {
            None => Change::Full,
            Some(f) if (d - f.day) % config.full_every == 0 => Change::Full,
            Some(f) if config.ranker_every > 0 && (d - f.day) % config.ranker_every == 0 => {
                Change::Ranker
            }
            Some(_) => Change::Popularity,
        };
        let change = match change {
            Change::Full => {
                let system = System::fit(&data, &config.system)
                    .with_context(|| format!("the full retrain of {date}"))?;
                let ranker = chosen_kind(&system);
                let model = with_popularity(system.contents, &data, cut);
                let packaged = build(&model, world, &config.package, None)?;
                full = Some(Full {
                    model,
                    packaged,
                    cut,
                    day: d,
                    ranker,
                });
                Change::Full
            }
            Change::Ranker => {
                let f = full.as_mut().expect("a full retrain came first");
                match f.ranker {
                    None => {
                        note = "no ranker to retrain (the full retrain's gate shipped none): \
                                popularity only"
                            .into();
                        Change::Popularity
                    }
                    Some(kind) => {
                        let learn = config
                            .system
                            .tune
                            .as_ref()
                            .and_then(|t| t.ranker.clone())
                            .unwrap_or_default();
                        match retrain_ranker(&data, f, kind, &learn, config) {
                            Ok((ranker, evidence)) => {
                                note = evidence.clone();
                                f.model.ranker = Some(ranker);
                                record(&mut f.model, &date, kind, &evidence)?;
                                Change::Ranker
                            }
                            Err(e) => {
                                note = format!("ranker retrain skipped ({e:#}): popularity only");
                                Change::Popularity
                            }
                        }
                    }
                }
            }
            Change::Popularity => Change::Popularity,
        };
        let f = full.as_ref().expect("a full retrain came first");
        let contents = if change == Change::Full {
            f.packaged.clone()
        } else {
            // The full retrain's model, decayed to the day's end, with its graphs as bytes.
            let model = with_popularity(f.model.clone(), &data, cut);
            build(&model, world, &config.package, Some(&f.packaged))?
        };
        let bundle = contents.encode();
        // Read it back with the device's code before publishing it, as `bundle build` does.
        Model::from_bytes(&bundle).context("the day's bundle was refused")?;
        let base = f.model.meta.model_version.clone();
        let label = match change {
            Change::Full => base,
            Change::Ranker => format!("{base}+rank.{date}"),
            Change::Popularity => format!("{base}+pop.{date}"),
        };
        let opts = PublishOptions {
            label: Some(label.clone()),
            keep: config.keep,
            expires_in: config.expires_in,
            ..PublishOptions::new(&config.channel, cut)
        };
        let published = store
            .publish(&bundle, signing, &opts)
            .with_context(|| format!("publishing {date}"))?;
        let synced = device
            .sync(cut)
            .with_context(|| format!("the device's sync after {date}"))?;
        ensure!(
            synced.version == published.version,
            "the device installed version {}, the publish made {}",
            synced.version,
            published.version
        );
        let day = Day {
            day: d,
            date,
            cut,
            change,
            note,
            positives: data.events.len(),
            version: published.version,
            label,
            bundle_bytes: published.bundle_bytes,
            manifest_bytes: published.manifest_bytes,
            full_bytes: published.manifest_bytes
                + synced.sections.iter().map(|s| s.bytes).sum::<u64>(),
            delta_bytes: delta(&published),
            downloaded_bytes: synced.downloaded,
            first_sync: synced.first,
            sections: synced.sections,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress(&day);
        days.push(day);
    }
    let rows = rows(&days);
    Ok(Cycle {
        world: world.dir.display().to_string(),
        channel: config.channel.clone(),
        full_every: config.full_every,
        ranker_every: config.ranker_every,
        days,
        rows,
    })
}

/// What a device on the channel's previous version downloads, as the publish counts it.
fn delta(p: &Published) -> u64 {
    p.manifest_bytes + p.delta_bytes
}

/// `contents` with popularity decayed to `cut` over `data`'s positives (the one definition,
/// [`sources::popularity`]), with the model's half-life.
fn with_popularity(mut contents: BundleContents, data: &WorldData, cut: i64) -> BundleContents {
    let half_life = contents.popularity.half_life_days;
    let counts = sources::popularity(&data.events, data.items.len(), cut, half_life);
    contents.popularity = Popularity::normalised(&counts, half_life, cut);
    contents
}

/// `model` packaged as `bundle build --world` packages it (the platform counts as of its
/// popularity's reference time); with `graphs_of`, that bundle's HNSW graphs instead of new
/// ones (the package checks they fit the vectors).
fn build(
    model: &BundleContents,
    world: &WorldData,
    options: &PackageOptions,
    graphs_of: Option<&BundleContents>,
) -> Result<BundleContents> {
    let mut model = model.clone();
    let mut options = PackageOptions {
        world: Some(world.dir.clone()),
        ..options.clone()
    };
    if let Some(b) = graphs_of {
        model.graphs = b.graphs.clone();
        options.hnsw = HnswMode::Never;
    }
    package(model, &options).context("packaging the bundle")
}

/// The ranker kind the fit's gate shipped, if one did.
fn chosen_kind(system: &System) -> Option<Kind> {
    system.contents.ranker.as_ref()?;
    let chosen = system
        .summary
        .tuned
        .as_ref()?
        .ranker
        .as_ref()?
        .chosen
        .clone()?;
    [Kind::Gbdt, Kind::Logistic]
        .into_iter()
        .find(|k| k.name() == chosen)
}

/// The ranker alone, retrained (see the module docs): the users with a positive since the full
/// retrain's cut are served by its bundle at that cut, their candidates labelled by what they
/// watched since. Returns the ranker and how it was made.
fn retrain_ranker(
    data: &WorldData,
    full: &Full,
    kind: Kind,
    learn: &LearnConfig,
    config: &CycleConfig,
) -> Result<(RankerModel, String)> {
    let n = data.events.len();
    let k = data.events.partition_point(|e| e.time < full.cut);
    ensure!(
        k > 0 && k < n,
        "no positives since the full retrain of {}",
        split::date(full.cut - 1)
    );
    // The temporal split whose past is exactly the positives before the full retrain's cut.
    let share = (k as f64 + 0.5) / n as f64;
    let onboarding = sources::SourceConfig::default().onboarding;
    let window = split::temporal_of(data.users.len(), &data.events, share, onboarding);
    ensure!(
        window.train.len() == k,
        "the window does not start at the cut"
    );
    let mut cases = window.warm.clone();
    cases.extend(window.cold.iter().cloned());
    let (max, seed) = config
        .system
        .tune
        .as_ref()
        .map_or((2_000, 17), |t| (t.max_users, t.seed));
    let cases = crate::evaluate::sample(cases, Some(max), seed);
    let served = learned::with_provenance(full.packaged.clone())?;
    let features = served
        .features
        .clone()
        .context("the full retrain's bundle has no feature contract")?;
    let rec = Recommender::from_bytes(&served.encode())?;
    let examples = learned::examples(&rec, data, &window, &cases, learn)?;
    let ranker = learned::fit(&examples, kind, learn, &features)?;
    let how = format!(
        "{} ranker retrained on the candidates the {} bundle proposed to {} users active since \
         ({} rows, {} positive), labelled by what they watched; not gated again",
        kind.name(),
        split::date(full.cut - 1),
        examples.cases,
        examples.len(),
        examples.positives()
    );
    Ok((ranker, how))
}

/// Records a ranker retrain in the model's recipe (`ranker_retrain`).
fn record(model: &mut BundleContents, date: &str, kind: Kind, how: &str) -> Result<()> {
    let mut recipe: serde_json::Value =
        serde_json::from_str(&model.meta.recipe).unwrap_or_else(|_| serde_json::json!({}));
    if !recipe.is_object() {
        recipe = serde_json::json!({});
    }
    recipe["ranker_retrain"] = serde_json::json!({
        "date": date,
        "kind": kind.name(),
        "gated": false,
        "how": how,
    });
    model.meta.recipe = serde_json::to_string(&recipe)?;
    Ok(())
}

/// A device following one channel of `store`: the native sync client
/// ([`edgerec_release::sync::Client`]) keeping its model in memory, fetching from the store's
/// files as `edgerec serve` serves them.
struct Device {
    client: Client<MemStore, StoreTransport>,
    trust: TrustRoot,
    channel: String,
    /// The sections (sha256) of the installed release.
    held: Option<HashSet<String>>,
}

/// What one sync did.
struct Synced {
    version: u64,
    downloaded: u64,
    first: bool,
    sections: Vec<SectionRecord>,
}

impl Device {
    fn new(store: &Store, trust: TrustRoot, channel: &str) -> Result<Device> {
        let options = Options::new(trust.clone(), channel)?;
        let transport = StoreTransport {
            layout: store.layout().clone(),
        };
        Ok(Device {
            client: Client::open(options, MemStore::default(), transport),
            trust,
            channel: channel.to_string(),
            held: None,
        })
    }

    /// Syncs at `now` (the client verifies the manifest, downloads the sections it lacks,
    /// loads the bundle and checks it is the release named) and says what it downloaded.
    fn sync(&mut self, now: i64) -> Result<Synced> {
        let outcome = self.client.sync_at(now);
        if let Some(e) = outcome.error {
            bail!("the device's sync failed: {e}");
        }
        let version = outcome.version.context("the device installed nothing")?;
        ensure!(outcome.updated, "the device saw no new release");
        // What it installed, as it holds it.
        let signed = self
            .client
            .store()
            .get_meta("manifest")?
            .context("the device holds no manifest")?;
        let verified = Manifest::verify(
            &signed,
            &self.trust,
            &Expect {
                channel: &self.channel,
                now: None,
                installed_version: None,
                key_set_serial: None,
            },
        )?;
        ensure!(
            verified.manifest.version == version,
            "the device holds another manifest"
        );
        let held = self.held.take();
        let sections: Vec<SectionRecord> = verified
            .manifest
            .sections
            .iter()
            .map(|e| {
                let sha256 = hex(&e.sha256);
                SectionRecord {
                    tag: String::from_utf8_lossy(&e.tag).into_owned(),
                    version: e.version,
                    bytes: e.length,
                    changed: !held.as_ref().is_some_and(|h| h.contains(&sha256)),
                    sha256,
                }
            })
            .collect();
        self.held = Some(sections.iter().map(|s| s.sha256.clone()).collect());
        Ok(Synced {
            version,
            downloaded: outcome.downloaded_bytes,
            first: held.is_none(),
            sections,
        })
    }
}

/// The release server's routes answered from a store's files, as `edgerec serve` answers them
/// (`GET /v1/channels/{channel}/manifest` with an `ETag`, `GET /v1/sections/{sha256}`), without
/// a network.
struct StoreTransport {
    layout: StoreLayout,
}

impl Transport for StoreTransport {
    fn get(
        &mut self,
        path: &str,
        if_none_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Response, TransportError> {
        let file = if let Some(rest) = path.strip_prefix("/v1/channels/") {
            rest.strip_suffix("/manifest")
                .and_then(|c| self.layout.manifest(c))
        } else {
            path.strip_prefix("/v1/sections/")
                .and_then(|sha| self.layout.section(sha))
        };
        let not_found = Response {
            status: 404,
            etag: None,
            body: Vec::new(),
        };
        let Some(body) = file.and_then(|f| std::fs::read(f).ok()) else {
            return Ok(not_found);
        };
        let etag = format!("\"{}\"", hex(&Sha256::digest(&body)));
        if if_none_match == Some(etag.as_str()) {
            return Ok(Response {
                status: 304,
                etag: Some(etag),
                body: Vec::new(),
            });
        }
        if body.len() as u64 > max_bytes {
            return Err(TransportError::TooLong { max: max_bytes });
        }
        Ok(Response {
            status: 200,
            etag: Some(etag),
            body,
        })
    }
}

/// The row name of a day: its change, or the device's first sync.
fn row_name(d: &Day) -> &'static str {
    if d.first_sync {
        "first sync"
    } else {
        d.change.name()
    }
}

/// One row per kind of change, in the order first sync, popularity, ranker, full retrain.
fn rows(days: &[Day]) -> Vec<Row> {
    let order = [
        "first sync",
        Change::Popularity.name(),
        Change::Ranker.name(),
        Change::Full.name(),
    ];
    let mut out = Vec::new();
    for name in order {
        let of: Vec<&Day> = days.iter().filter(|d| row_name(d) == name).collect();
        if of.is_empty() {
            continue;
        }
        let n = of.len() as f64;
        let mean = |f: &dyn Fn(&Day) -> u64| of.iter().map(|d| f(d) as f64).sum::<f64>() / n;
        let mean_downloaded = mean(&|d| d.downloaded_bytes);
        let mean_full = mean(&|d| d.full_bytes);
        // Bytes per tag, in bundle order of first appearance.
        let mut tags: Vec<String> = vec!["manifest".into()];
        let mut bytes: BTreeMap<String, f64> = BTreeMap::new();
        for d in &of {
            *bytes.entry("manifest".into()).or_default() += d.manifest_bytes as f64;
            for s in d.sections.iter().filter(|s| s.changed) {
                if !tags.contains(&s.tag) {
                    tags.push(s.tag.clone());
                }
                *bytes.entry(s.tag.clone()).or_default() += s.bytes as f64;
            }
        }
        let sections = tags
            .into_iter()
            .map(|t| {
                let b = bytes[&t] / n;
                (t, b)
            })
            .collect();
        out.push(Row {
            change: name.to_string(),
            syncs: of.len(),
            mean_downloaded,
            mean_full,
            ratio: if mean_full > 0.0 {
                mean_downloaded / mean_full
            } else {
                0.0
            },
            sections,
        });
    }
    out
}

/// `1234567` as `1,234,567`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Cycle {
    /// The byte table per kind of change (see the module docs), what each downloads, and
    /// every day.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let (Some(first), Some(last)) = (self.days.first(), self.days.last()) else {
            return "# Retraining cycle\n\nNo days replayed.\n".into();
        };
        let _ = writeln!(s, "# Retraining cycle: {}\n", self.world);
        let ranker = if self.ranker_every == 0 {
            "no ranker-only retrain".to_string()
        } else {
            format!(
                "the ranker alone every {} days after a full retrain",
                self.ranker_every
            )
        };
        let _ = writeln!(
            s,
            "{} days, {} to {}, published to channel `{}`: a full retrain every {} days, {ranker}, \
             popularity and platform counts every day. A device (the native sync client) syncs \
             after every publish: it downloads the signed manifest and the sections whose sha256 \
             it does not hold. *Full bundle bytes* is a first download (the manifest and every \
             section).\n",
            self.days.len(),
            first.date,
            last.date,
            self.channel,
            self.full_every,
        );
        let _ = writeln!(
            s,
            "| change | syncs | mean bytes downloaded per sync | full bundle bytes | ratio |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1}% |",
                r.change,
                r.syncs,
                thousands(r.mean_downloaded),
                thousands(r.mean_full),
                100.0 * r.ratio
            );
        }
        if let Some(r) = self.rows.iter().find(|r| r.change == Change::Ranker.name()) {
            let own: f64 = r
                .sections
                .iter()
                .filter(|(t, _)| t != "POPL" && t != "MDIA")
                .map(|(_, b)| b)
                .sum();
            let _ = writeln!(
                s,
                "\nA ranker day also refreshes popularity: of its download, {} bytes per sync are the \
                 ranker change itself (manifest, `META`, `RANK`, `RELS`; {:.1}% of the full bundle), \
                 the rest the day's `POPL` and `MDIA`.",
                thousands(own),
                100.0 * own / r.mean_full.max(1.0)
            );
        }
        let _ = writeln!(s, "\n## What each change downloads\n");
        let _ = writeln!(s, "| change | mean bytes per sync, by section |");
        let _ = writeln!(s, "|---|---|");
        for r in &self.rows {
            let parts: Vec<String> = r
                .sections
                .iter()
                .map(|(t, b)| format!("{t} {}", thousands(*b)))
                .collect();
            let _ = writeln!(s, "| {} | {} |", r.change, parts.join(", "));
        }
        let _ = writeln!(s, "\n## Days\n");
        let _ = writeln!(
            s,
            "| day | date | change | version | positives | downloaded | full | sections downloaded | seconds |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for d in &self.days {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
                d.day,
                d.date,
                row_name(d),
                d.version,
                d.positives,
                thousands(d.downloaded_bytes as f64),
                thousands(d.full_bytes as f64),
                d.changed().join(" "),
                d.seconds
            );
        }
        let notes: Vec<&Day> = self.days.iter().filter(|d| !d.note.is_empty()).collect();
        if !notes.is_empty() {
            let _ = writeln!(s);
            for d in notes {
                let _ = writeln!(s, "* day {} ({}): {}", d.day, d.date, d.note);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
