//! `edgerec keys …` and `edgerec publish`: argument parsing and progress; the work is
//! `edgerec_release`'s.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use edgerec_release::{PublishOptions, Signing, Store, keyfile};

/// `edgerec keys`.
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Generate an ed25519 key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public,
    /// 64 hex digits — what clients pin).
    Generate {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a key set: the root keys delegate release signing to the given keys until a date
    /// (rotate a signing key by delegating again with a larger --serial).
    Delegate {
        /// A root secret key file (repeat for a threshold root).
        #[arg(long = "root", required = true)]
        roots: Vec<PathBuf>,
        /// A signing public key (file or 64 hex digits; repeat for several).
        #[arg(long = "signer", required = true)]
        signers: Vec<String>,
        /// The key set's serial: larger than every earlier one.
        #[arg(long)]
        serial: u64,
        /// Days until the key set expires.
        #[arg(long, default_value_t = 365)]
        expires_days: i64,
        /// Where to write the signed key set.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `edgerec publish`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// The bundle to publish (`bundle build`).
    #[arg(long)]
    bundle: PathBuf,
    /// The signing key file (`keys generate`).
    #[arg(long)]
    key: PathBuf,
    /// A key set delegating the key (`keys delegate`); without it the key is its own root and
    /// clients pin its public key.
    #[arg(long, requires = "trust")]
    key_set: Option<PathBuf>,
    /// The trust root clients pin (`KEY` or `T:KEY,KEY,…`, or a file holding it); with
    /// --key-set.
    #[arg(long)]
    trust: Option<String>,
    /// The store directory (`serve --store` serves it).
    #[arg(long)]
    store: PathBuf,
    /// The channel.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Days devices accept the manifest; after that they keep the model and report it stale.
    #[arg(long, default_value_t = 7.0)]
    expires_days: f64,
    /// Versions whose blobs stay in the store for devices mid-download.
    #[arg(long, default_value_t = 3)]
    keep: usize,
    /// The label (default: the bundle's model version).
    #[arg(long)]
    label: Option<String>,
    /// The publish time, unix seconds (default: now).
    #[arg(long)]
    now: Option<i64>,
}

/// Options of `edgerec serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The release store (`publish --store`).
    #[arg(long)]
    store: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The port (0: any free port; the chosen address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The demo page, served at / (omit to serve the API only).
    #[arg(long)]
    www: Option<PathBuf>,
    /// The web build of the npm package, served at /pkg/ and at /pkg/web/ (its place in the
    /// package, where /js/sync-web.mjs imports it from).
    #[arg(long)]
    pkg: Option<PathBuf>,
    /// The package's sync client (its js/ directory), served at /js/: with --pkg, a page
    /// imports `/js/sync-web.mjs` and `/pkg/web/edgerec.js` as one module graph.
    #[arg(long)]
    js: Option<PathBuf>,
    /// A directory of bundles, served at /models/.
    #[arg(long)]
    models: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds before a request is answered 408.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Accept event batches at POST /v1/events into this SQLite store (created if absent;
    /// WAL, synchronous=FULL: a batch is acknowledged once durable).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Serve this A/B test definition at GET /v1/experiments (checked at start and on every
    /// request; each arm names the channel its devices sync).
    #[arg(long)]
    experiments: Option<PathBuf>,
}

pub fn serve(a: &ServeArgs) -> Result<()> {
    let mut config = edgerec_server::ServerConfig::new(a.store.clone());
    config.timeout = std::time::Duration::from_secs(a.timeout_s);
    config.events.clone_from(&a.events);
    config.experiments.clone_from(&a.experiments);
    let mounts = [
        ("/", &a.www),
        ("/pkg/", &a.pkg),
        ("/pkg/web/", &a.pkg),
        ("/js/", &a.js),
        ("/models/", &a.models),
    ];
    for (prefix, dir) in mounts {
        if let Some(dir) = dir {
            config.mounts.push((prefix.to_string(), dir.clone()));
        }
    }
    Store::open(&a.store)?;
    let addr = std::net::SocketAddr::new(a.host, a.port);
    edgerec_server::run(addr, config, a.threads, |bound| {
        use std::io::Write as _;
        match &a.events {
            Some(db) => println!(
                "serving http://{bound}/ (store {}, events into {})",
                a.store.display(),
                db.display()
            ),
            None => println!("serving http://{bound}/ (store {})", a.store.display()),
        }
        let _ = std::io::stdout().flush();
    })
}

pub fn keys(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            let key = keyfile::generate(&out)?;
            let (secret, public) = keyfile::paths(&out);
            eprintln!(
                "wrote {} (secret, mode 0600) and {}",
                secret.display(),
                public.display()
            );
            println!("{}", key.public_key().to_hex());
            Ok(())
        }
        KeysCommand::Delegate {
            roots,
            signers,
            serial,
            expires_days,
            out,
        } => {
            let roots = roots
                .iter()
                .map(|p| keyfile::read_secret(p))
                .collect::<Result<Vec<_>>>()?;
            let signers = signers
                .iter()
                .map(|s| keyfile::read_public(s))
                .collect::<Result<Vec<_>>>()?;
            let expires = now()? + expires_days * 86_400;
            let set = keyfile::delegate(&roots, signers, serial, expires, &out)?;
            eprintln!(
                "wrote {}: key set {} ({} signing key(s), signed by {} root key(s), expires {})",
                out.display(),
                set.serial,
                set.keys.len(),
                roots.len(),
                set.expires
            );
            Ok(())
        }
    }
}

pub fn publish(a: &PublishArgs) -> Result<()> {
    let key = keyfile::read_secret(&a.key)?;
    let signing = match (&a.key_set, &a.trust) {
        (Some(set), Some(trust)) => {
            let statement =
                std::fs::read(set).with_context(|| format!("reading {}", set.display()))?;
            Signing::delegated(key, statement, keyfile::read_trust(trust)?)?
        }
        _ => Signing::single(key),
    };
    let bundle =
        std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle.display()))?;
    let store = Store::open(&a.store)?;
    let opts = PublishOptions {
        label: a.label.clone(),
        keep: a.keep,
        expires_in: (a.expires_days * 86_400.0).round() as i64,
        ..PublishOptions::new(&a.channel, a.now.map_or_else(now, Ok)?)
    };
    let p = store.publish(&bundle, &signing, &opts)?;
    eprintln!(
        "published {} version {} ({}) to {}: {} sections, {} new ({} bytes); a device on the previous version downloads {} bytes; {} old blobs removed",
        p.channel,
        p.version,
        p.label,
        a.store.display(),
        p.sections,
        p.new_sections,
        p.new_bytes,
        p.delta_bytes,
        p.removed_blobs
    );
    eprintln!("clients pin the trust root: {}", signing.trust().to_text());
    println!("{}", serde_json::to_string(&p)?);
    Ok(())
}

fn now() -> Result<i64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs() as i64)
}
