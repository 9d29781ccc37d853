//! The release store: a directory a server serves as it is.
//!
//! ```text
//! STORE/sections/<sha256 hex>            a section's payload, named by its sha256 (immutable)
//! STORE/channels/<channel>/manifest      the channel's current signed manifest
//! STORE/channels/<channel>/<v>.manifest  the signed manifest of version v (the last `keep`)
//! STORE/channels/<channel>/<v>.sections  the section hashes version v uses, one per line
//! STORE/channels/<channel>/release.json  what the current manifest says, for people (`/v1/version`)
//! STORE/.publish.lock                    held while a publish runs
//! ```
//!
//! A publish writes blobs first, then the version's files, then replaces `manifest` by a
//! rename: a reader sees the old manifest or the new one, and every blob either names exists.
//! Blobs no kept version of any channel uses are removed last.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use edgerec::bundle::{BundleContents, Layout, Release};
use edgerec::release::{Expect, KeySet, Manifest, SecretKey, TrustRoot, check_channel, hex};
use edgerec_data::fs::write_atomic;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Where things are in a store (paths only; see the module docs).
#[derive(Debug, Clone)]
pub struct StoreLayout {
    root: PathBuf,
}

impl StoreLayout {
    /// The layout of the store at `root`.
    pub fn new(root: &Path) -> StoreLayout {
        StoreLayout {
            root: root.to_path_buf(),
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The channel's current manifest, or `None` if `channel` is not a valid channel name.
    pub fn manifest(&self, channel: &str) -> Option<PathBuf> {
        check_channel(channel).ok()?;
        Some(self.root.join("channels").join(channel).join("manifest"))
    }

    /// A section blob, or `None` unless `hex` is 64 lowercase hex digits.
    pub fn section(&self, hex: &str) -> Option<PathBuf> {
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| self.root.join("sections").join(hex))
    }

    fn channel_dir(&self, channel: &str) -> PathBuf {
        self.root.join("channels").join(channel)
    }

    /// The channels that have a manifest.
    pub fn channels(&self) -> Result<Vec<String>> {
        let dir = self.root.join("channels");
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if check_channel(&name).is_ok() && dir.join(&name).join("manifest").exists() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Each channel's `release.json` (what its current manifest says), by channel name.
    pub fn releases(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        let mut out = serde_json::Map::new();
        for channel in self.channels()? {
            let path = self.channel_dir(&channel).join("release.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            out.insert(channel, value);
        }
        Ok(out)
    }

    /// The versions a channel keeps, ascending.
    fn versions(&self, channel: &str) -> Result<Vec<u64>> {
        let dir = self.channel_dir(channel);
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(v) = name
                .strip_suffix(".manifest")
                .and_then(|v| v.parse::<u64>().ok())
            {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn hashes(&self, channel: &str, version: u64) -> Result<BTreeSet<String>> {
        let path = self
            .channel_dir(channel)
            .join(format!("{version}.sections"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text.lines().map(str::to_owned).collect())
    }
}

/// The keys a publish signs with: the signing key, the key set statement that delegates it,
/// and the trust root devices pin (the publish checks its manifest verifies under it).
#[derive(Debug, Clone)]
pub struct Signing {
    key: SecretKey,
    key_set: Vec<u8>,
    /// The serial of `key_set`, verified under `trust` when the signing was made.
    key_set_serial: u64,
    trust: TrustRoot,
}

/// Expiry of the key set a single key signs for itself (year 9999): with one key there is
/// nothing to rotate to; its manifests still expire.
const SELF_SIGNED_EXPIRY: i64 = 253_402_300_799;

impl Signing {
    /// One key as both root and signer: devices pin its public key.
    pub fn single(key: SecretKey) -> Signing {
        let set = KeySet {
            serial: 1,
            expires: SELF_SIGNED_EXPIRY,
            keys: vec![key.public_key()],
        };
        let key_set = set.sign(&[&key]).expect("one key, one signer");
        let trust = TrustRoot::single(key.public_key());
        Signing {
            key,
            key_set,
            key_set_serial: set.serial,
            trust,
        }
    }

    /// A signing key delegated by `key_set` (a statement root keys signed,
    /// `keyfile::delegate`) under `trust`. Checks the statement verifies and lists the key.
    pub fn delegated(key: SecretKey, key_set: Vec<u8>, trust: TrustRoot) -> Result<Signing> {
        let set = KeySet::verify(&key_set, &trust)
            .context("the key set does not verify under the trust root")?;
        ensure!(
            set.keys.contains(&key.public_key()),
            "key set {} does not list the signing key {}",
            set.serial,
            key.public_key().to_hex()
        );
        Ok(Signing {
            key,
            key_set,
            key_set_serial: set.serial,
            trust,
        })
    }

    /// The trust root devices must pin.
    pub fn trust(&self) -> &TrustRoot {
        &self.trust
    }
}

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The channel (see [`check_channel`]).
    pub channel: String,
    /// The publish time (unix seconds).
    pub now: i64,
    /// How long devices accept the manifest (seconds).
    pub expires_in: i64,
    /// How many versions' blobs to keep for devices mid-download (≥ 1).
    pub keep: usize,
    /// The label; `None`: the bundle's `META` model version.
    pub label: Option<String>,
}

impl PublishOptions {
    /// Defaults: 7 days of validity, 3 versions kept.
    pub fn new(channel: &str, now: i64) -> PublishOptions {
        PublishOptions {
            channel: channel.to_string(),
            now,
            expires_in: 7 * 86_400,
            keep: 3,
            label: None,
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The channel.
    pub channel: String,
    /// The new version.
    pub version: u64,
    /// The label.
    pub label: String,
    /// When it was published (unix seconds).
    pub created: i64,
    /// When devices stop accepting its manifest (unix seconds).
    pub expires: i64,
    /// The signed manifest's size.
    pub manifest_bytes: u64,
    /// The sha256 of the signed manifest (the server's `ETag`).
    pub manifest_sha256: String,
    /// The bundle's size.
    pub bundle_bytes: u64,
    /// Its sections.
    pub sections: usize,
    /// Sections the store did not hold (written now).
    pub new_sections: usize,
    /// Their bytes.
    pub new_bytes: u64,
    /// What a device holding the previous version downloads: the sections it lacks.
    pub delta_bytes: u64,
    /// Blobs removed because no kept version uses them.
    pub removed_blobs: usize,
}

/// A release store on disk.
#[derive(Debug, Clone)]
pub struct Store {
    layout: StoreLayout,
}

impl Store {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        for sub in ["sections", "channels"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        }
        Ok(Store {
            layout: StoreLayout::new(dir),
        })
    }

    /// Its layout.
    pub fn layout(&self) -> &StoreLayout {
        &self.layout
    }

    /// Publishes `bundle` to a channel as its next version (see the module docs). Holds the
    /// store's lock meanwhile; refuses a bundle that does not decode or a manifest that would
    /// not verify under `signing`'s trust root.
    pub fn publish(
        &self,
        bundle: &[u8],
        signing: &Signing,
        opts: &PublishOptions,
    ) -> Result<Published> {
        check_channel(&opts.channel)?;
        ensure!(opts.keep >= 1, "keep at least the version being published");
        ensure!(
            opts.expires_in > 0,
            "a manifest must be valid for some time"
        );
        let _lock = Lock::take(&self.layout.root.join(".publish.lock"))?;
        let channel = &opts.channel;
        let versions = self.layout.versions(channel)?;
        let previous = versions.last().copied();
        let version = previous.map_or(1, |v| v + 1);

        let mut contents = BundleContents::decode(bundle).context("the bundle does not decode")?;
        contents.release = Some(Release {
            version,
            published_at: opts.now,
            channel: channel.clone(),
        });
        let label = opts
            .label
            .clone()
            .unwrap_or_else(|| contents.meta.model_version.clone());
        let stamped = contents.encode();
        let layout = Layout::of(&stamped)?;

        let manifest = Manifest::for_bundle(
            &stamped,
            version,
            channel,
            &label,
            opts.now,
            opts.now.saturating_add(opts.expires_in),
            signing.key_set_serial,
        )?;
        let signed = manifest.sign(&signing.key_set, &signing.key)?;
        Manifest::verify(
            &signed,
            &signing.trust,
            &Expect {
                channel,
                now: Some(opts.now),
                installed_version: previous,
                key_set_serial: None,
            },
        )
        .context("the signed manifest does not verify under the trust root")?;

        // Blobs first: every blob the new manifest names exists before it is visible.
        let previous_hashes = match previous {
            Some(v) => self.layout.hashes(channel, v)?,
            None => BTreeSet::new(),
        };
        let (mut new_sections, mut new_bytes, mut delta_bytes) = (0, 0u64, 0u64);
        let mut hashes = Vec::with_capacity(layout.sections.len());
        for (entry, payload) in &layout.sections {
            let hex = hex(&entry.sha256);
            let path = self
                .layout
                .section(&hex)
                .expect("a sha256 is 64 hex digits");
            if !path.exists() {
                write_atomic(&path, payload)?;
                new_sections += 1;
                new_bytes += payload.len() as u64;
            }
            if !previous_hashes.contains(&hex) {
                delta_bytes += payload.len() as u64;
            }
            hashes.push(hex);
        }
        let dir = self.layout.channel_dir(channel);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_atomic(
            &dir.join(format!("{version}.sections")),
            (hashes.join("\n") + "\n").as_bytes(),
        )?;
        write_atomic(&dir.join(format!("{version}.manifest")), &signed)?;
        // The switch: one rename.
        write_atomic(&dir.join("manifest"), &signed)?;

        let removed_blobs = self.collect(channel, opts.keep)?;
        let published = Published {
            channel: channel.clone(),
            version,
            label,
            created: manifest.created,
            expires: manifest.expires,
            manifest_bytes: signed.len() as u64,
            manifest_sha256: hex(&Sha256::digest(&signed)),
            bundle_bytes: stamped.len() as u64,
            sections: layout.sections.len(),
            new_sections,
            new_bytes,
            delta_bytes,
            removed_blobs,
        };
        write_atomic(
            &dir.join("release.json"),
            serde_json::to_string_pretty(&published)?.as_bytes(),
        )?;
        Ok(published)
    }

    /// Drops `channel`'s versions beyond the last `keep`, then every blob no kept version of
    /// any channel names. Returns the blobs removed.
    fn collect(&self, channel: &str, keep: usize) -> Result<usize> {
        let versions = self.layout.versions(channel)?;
        let dir = self.layout.channel_dir(channel);
        for &v in &versions[..versions.len().saturating_sub(keep)] {
            for ext in ["manifest", "sections"] {
                let p = dir.join(format!("{v}.{ext}"));
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
        let mut used = BTreeSet::new();
        let channels_dir = self.layout.root.join("channels");
        for e in std::fs::read_dir(&channels_dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if check_channel(&name).is_err() {
                continue;
            }
            for v in self.layout.versions(&name)? {
                used.extend(self.layout.hashes(&name, v)?);
            }
        }
        let mut removed = 0;
        let sections = self.layout.root.join("sections");
        for e in std::fs::read_dir(&sections)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if self.layout.section(&name).is_some() && !used.contains(&name) {
                std::fs::remove_file(e.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An exclusive lock file, removed when dropped.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut f) => {
                let _ = writeln!(f, "{}", std::process::id());
                Ok(Lock(path.to_path_buf()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
                "another publish holds {} (remove it if no publish is running)",
                path.display()
            ),
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgerec::test_support::tiny_contents;

    fn signing() -> Signing {
        Signing::single(SecretKey::from_seed([4; 32]))
    }

    #[test]
    fn publishing_is_versioned_delta_and_collects_old_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut contents = tiny_contents();
        let first = store
            .publish(
                &contents.encode(),
                &signing(),
                &PublishOptions::new("stable", 1_000),
            )
            .unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(first.new_sections, first.sections);
        assert_eq!(first.delta_bytes, first.new_bytes);
        // The manifest verifies under the trust root and rebuilds a bundle stamped v1.
        let signed = std::fs::read(store.layout().manifest("stable").unwrap()).unwrap();
        let v = Manifest::verify(
            &signed,
            signing().trust(),
            &Expect {
                channel: "stable",
                now: Some(1_001),
                installed_version: None,
                key_set_serial: None,
            },
        )
        .unwrap();
        let blobs: Vec<Vec<u8>> = v
            .manifest
            .sections
            .iter()
            .map(|s| std::fs::read(store.layout().section(&hex(&s.sha256)).unwrap()).unwrap())
            .collect();
        let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        let bundle = BundleContents::decode(&v.manifest.assemble(&refs).unwrap()).unwrap();
        assert_eq!(bundle.release.unwrap().version, 1);

        // Only popularity changes: the delta is POPL and RELS.
        contents.popularity.reference_time += 86_400;
        let second = store
            .publish(
                &contents.encode(),
                &signing(),
                &PublishOptions::new("stable", 2_000),
            )
            .unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(second.new_sections, 2);
        assert_eq!(second.delta_bytes, second.new_bytes);
        assert!(second.delta_bytes < first.delta_bytes);

        // keep = 1: version 1's own blobs go.
        contents.popularity.reference_time += 86_400;
        let opts = PublishOptions {
            keep: 1,
            ..PublishOptions::new("stable", 3_000)
        };
        let third = store
            .publish(&contents.encode(), &signing(), &opts)
            .unwrap();
        assert_eq!(third.version, 3);
        assert_eq!(third.removed_blobs, 4, "POPL and RELS of versions 1 and 2");
        assert_eq!(store.layout().versions("stable").unwrap(), vec![3]);
        assert_eq!(
            store.layout().channels().unwrap(),
            vec!["stable".to_string()]
        );
        let held = std::fs::read_dir(dir.path().join("sections"))
            .unwrap()
            .count();
        assert_eq!(held, third.sections);
    }

    #[test]
    fn refuses_bad_input_and_concurrent_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bundle = tiny_contents().encode();
        assert!(
            store
                .publish(&bundle, &signing(), &PublishOptions::new("../x", 1))
                .is_err()
        );
        assert!(
            store
                .publish(
                    &bundle[..100],
                    &signing(),
                    &PublishOptions::new("stable", 1)
                )
                .is_err()
        );
        let lock = Lock::take(&dir.path().join(".publish.lock")).unwrap();
        let err = store
            .publish(&bundle, &signing(), &PublishOptions::new("stable", 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("another publish"), "{err}");
        drop(lock);
        assert!(
            store
                .publish(&bundle, &signing(), &PublishOptions::new("stable", 1))
                .is_ok()
        );
        // A signing key the key set does not list.
        let root = SecretKey::from_seed([1; 32]);
        let other = SecretKey::from_seed([2; 32]);
        let set = KeySet {
            serial: 1,
            expires: 10_000,
            keys: vec![root.public_key()],
        }
        .sign(&[&root])
        .unwrap();
        assert!(Signing::delegated(other, set, TrustRoot::single(root.public_key())).is_err());
        assert!(store.layout().section("../../etc/passwd").is_none());
        assert!(store.layout().manifest("..").is_none());
    }
}
