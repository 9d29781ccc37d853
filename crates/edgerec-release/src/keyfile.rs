//! Key files: `PREFIX.key` holds the secret key's text form (mode 0600, created only if
//! absent), `PREFIX.pub` the public key's 64 hex digits.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use edgerec::release::{KeySet, PublicKey, SecretKey, TrustRoot};

/// `PREFIX.key` and `PREFIX.pub`.
pub fn paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut s = prefix.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".key"), with(".pub"))
}

/// Generates a key pair from the operating system's random source and writes `PREFIX.key`
/// (mode 0600) and `PREFIX.pub`. Refuses to overwrite either.
pub fn generate(prefix: &Path) -> Result<SecretKey> {
    let (secret_path, public_path) = paths(prefix);
    for p in [&secret_path, &public_path] {
        if p.exists() {
            bail!("{} exists: refusing to overwrite a key", p.display());
        }
    }
    if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).context("reading the OS random source")?;
    let key = SecretKey::from_seed(seed);
    seed.fill(0);
    write_private(&secret_path, format!("{}\n", key.to_text()).as_bytes())?;
    std::fs::write(&public_path, format!("{}\n", key.public_key().to_hex()))
        .with_context(|| format!("writing {}", public_path.display()))?;
    Ok(key)
}

/// Creates `path` with mode 0600 (owner only) and writes `bytes`; fails if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a secret key file. On unix, refuses one that group or others can read.
pub fn read_secret(path: &Path) -> Result<SecretKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // The error names the file, never its contents.
    SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.code()))
}

/// Reads a public key file (or takes the 64 hex digits themselves).
pub fn read_public(path_or_hex: &str) -> Result<PublicKey> {
    text_or_file("public key", path_or_hex, PublicKey::parse)
}

/// Reads a trust root: its text form, or a file holding it (`KEY` or `T:KEY,KEY,…`).
pub fn read_trust(text_or_path: &str) -> Result<TrustRoot> {
    text_or_file("trust root", text_or_path, TrustRoot::parse)
}

/// `arg` parsed as the value itself, else as the path of a file holding it.
fn text_or_file<T>(what: &str, arg: &str, parse: impl Fn(&str) -> edgerec::Result<T>) -> Result<T> {
    if let Ok(v) = parse(arg) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(arg).with_context(|| format!("reading {what} {arg}"))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{arg}: {e}"))
}

/// Signs a key set delegating release signing to `signers`, by every key of `roots`, and
/// writes the statement to `out`.
pub fn delegate(
    roots: &[SecretKey],
    signers: Vec<PublicKey>,
    serial: u64,
    expires: i64,
    out: &Path,
) -> Result<KeySet> {
    let set = KeySet {
        serial,
        expires,
        keys: signers,
    };
    let refs: Vec<&SecretKey> = roots.iter().collect();
    let statement = set.sign(&refs)?;
    std::fs::write(out, statement).with_context(|| format!("writing {}", out.display()))?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("k/release");
        let key = generate(&prefix).unwrap();
        let (secret, public) = paths(&prefix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(read_secret(&secret).unwrap().public_key(), key.public_key());
        assert_eq!(
            read_public(public.to_str().unwrap()).unwrap(),
            key.public_key()
        );
        assert!(generate(&prefix).is_err(), "overwrote a key");
        // Two generations differ (the OS random source, not a fixed seed).
        let other = generate(&dir.path().join("other")).unwrap();
        assert_ne!(other.public_key(), key.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = read_secret(&secret).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
