//! Writing files so that a reader, or a crash, never sees half of one: every file the native
//! crates produce (reports, bundles, model files, raw data) goes through [`write_atomic`].

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (created with a
/// unique name, so concurrent writers of different files never collide), written, flushed to
/// disk (`fsync`), then renamed over `path`, and the directory synced so the rename survives a
/// crash. Parent directories are created. On any error `path` keeps its old contents (or stays
/// absent) and the temporary file is removed.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("out/report.md");
/// edgerec_data::fs::write_atomic(&path, b"# Report\n")?;
/// assert_eq!(std::fs::read(&path)?, b"# Report\n");
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    // The rename is durable once the directory is synced (not possible on every platform).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself remains");
        // A path whose parent is a file cannot be written; nothing is left behind.
        let bad = path.join("below-a-file");
        assert!(write_atomic(&bad, b"x").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    }
}
