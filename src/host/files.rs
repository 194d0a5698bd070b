//! Files a host keeps in its state directory, written whole or not at all.
//!
//! A crash (or `kill -9`, or a power cut) in the middle of a write must never leave half a
//! file behind: a half-written inventory, password, key or domain record would block or
//! mislead every later start. So each file is written to a hidden temporary file beside it,
//! made durable, renamed over the old one, and the rename made durable too.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes` (mode 0600), atomically and durably. The temporary file is
/// `.<name>.partial` in the same directory: hidden, so nothing scanning the directory for its
/// own files mistakes it for one.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{}: not a file name", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".partial");
    let partial: PathBuf = dir.join(partial);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&partial, path)?;
    // The rename is only durable once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_the_file_whole_private_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "old and longer than the new one").unwrap();
        write_whole(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    }
}
