//! Publishing signed model releases (native only): key files, and the store a server serves
//! and devices sync from.
//!
//! The formats and their verification are the core's ([`edgerec::release`]: the same code
//! verifies on the device). This crate does the file work around them:
//!
//! * [`keyfile`] — generating an ed25519 key pair (`PREFIX.key`, mode 0600, never printed;
//!   `PREFIX.pub`), reading them, and signing a key set with root keys (rotation);
//! * [`Store`] — a directory of content-addressed section blobs and one signed manifest per
//!   channel; [`Store::publish`] stamps the release into the bundle (`RELS`), writes the
//!   sections it does not hold yet, signs the manifest, checks it verifies under the trust root
//!   clients pin, and swaps it in atomically; older blobs stay for the last `keep` versions;
//! * [`sync`] — the native client: keeps a device's model current from a release server
//!   (verify, delta download, swap), over [`http`].
//!
//! ```no_run
//! use edgerec_release::{PublishOptions, Signing, Store, keyfile};
//! # fn main() -> anyhow::Result<()> {
//! let key = keyfile::generate(std::path::Path::new("keys/release"))?;
//! let bundle = std::fs::read("artifacts/model/model.edgerec")?;
//! let store = Store::open(std::path::Path::new("store"))?;
//! let signing = Signing::single(key);
//! let published = store.publish(&bundle, &signing, &PublishOptions::new("stable", 1_800_000_000))?;
//! println!("version {} ({} new bytes)", published.version, published.new_bytes);
//! # Ok(()) }
//! ```

pub mod http;
pub mod keyfile;
mod store;
pub mod sync;

pub use edgerec::release::{MAX_MANIFEST_BYTES, hex};
pub use store::{PublishOptions, Published, Signing, Store, StoreLayout};
