//! The host's local identity file (`STATE/inventory`, after xapi's xensource-inventory) and the
//! pool secret (`STATE/pool-secret`): what a host must know about itself before it can read
//! the pool database. Also the host's own `auto-enable` switch (`STATE/host-auto-enable`,
//! xapi keeps it in its local database): whether a restart re-enables a disabled host.
//!
//! All are written to a temporary file, synced and renamed, so a crash leaves the old file or
//! the new one, never a torn one.

use std::path::Path;

const INVENTORY: &str = "inventory";
const SECRET: &str = "pool-secret";

/// What the inventory says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// This host's UUID.
    pub installation_uuid: String,
    /// `None` for a master; the master's address for a pool member.
    pub master_address: Option<String>,
    /// The newest pool epoch this host has seen (each new master raises it); writes from an
    /// older epoch are refused, also after a restart.
    pub epoch: u64,
}

/// Read the inventory; `None` before the first start.
pub fn read(dir: &Path) -> std::io::Result<Option<Inventory>> {
    let text = match std::fs::read_to_string(dir.join(INVENTORY)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('\'').to_string())
    };
    let installation_uuid = get("INSTALLATION_UUID").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "inventory has no INSTALLATION_UUID",
        )
    })?;
    let master_address = match get("POOL_ROLE").as_deref() {
        Some("slave") => get("MASTER_ADDRESS"),
        _ => None,
    };
    Ok(Some(Inventory {
        installation_uuid,
        master_address,
        epoch: get("POOL_EPOCH").and_then(|e| e.parse().ok()).unwrap_or(1),
    }))
}

/// Write the inventory atomically.
pub fn write(dir: &Path, inv: &Inventory) -> std::io::Result<()> {
    let mut text = format!("INSTALLATION_UUID='{}'\n", inv.installation_uuid);
    match &inv.master_address {
        None => text.push_str("POOL_ROLE='master'\n"),
        Some(m) => text.push_str(&format!("POOL_ROLE='slave'\nMASTER_ADDRESS='{m}'\n")),
    }
    text.push_str(&format!("POOL_EPOCH='{}'\n", inv.epoch));
    write_atomic(dir, INVENTORY, text.as_bytes())
}

/// The pool secret, if this host has one.
pub fn read_secret(dir: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(dir.join(SECRET)) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Store the pool secret (mode 0600).
pub fn write_secret(dir: &Path, secret: &str) -> std::io::Result<()> {
    write_atomic(dir, SECRET, format!("{secret}\n").as_bytes())
}

const KEPT_ROOT: &str = "root-credential";

/// Keep root's credential across a reset of the pool database (an ejected host keeps its root
/// password, as a XenServer host does).
pub fn write_kept_root_credential(dir: &Path, credential: &[u8]) -> std::io::Result<()> {
    write_atomic(dir, KEPT_ROOT, credential)
}

/// Take the kept root credential, if any (it is removed once read).
pub fn take_kept_root_credential(dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(KEPT_ROOT)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Forget the kept root credential once it is back in the database.
pub fn remove_kept_root_credential(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(KEPT_ROOT)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

const AUTO_ENABLE: &str = "host-auto-enable";

/// Whether this host enables itself when it starts (xapi's `host_auto_enable`; true unless
/// `host.disable` was told `auto_enable=false` and no `host.enable` came since).
pub fn read_auto_enable(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_to_string(dir.join(AUTO_ENABLE)) {
        Ok(s) => Ok(s.trim() != "false"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Store the auto-enable switch.
pub fn write_auto_enable(dir: &Path, on: bool) -> std::io::Result<()> {
    write_atomic(dir, AUTO_ENABLE, format!("{on}\n").as_bytes())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    super::files::write_whole(&dir.join(name), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let master = Inventory {
            installation_uuid: "u1".into(),
            master_address: None,
            epoch: 1,
        };
        write(dir.path(), &master).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(master));
        let member = Inventory {
            installation_uuid: "u1".into(),
            master_address: Some("127.0.0.2".into()),
            epoch: 3,
        };
        write(dir.path(), &member).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(member));
        write_secret(dir.path(), "s3cret").unwrap();
        assert_eq!(read_secret(dir.path()).unwrap().as_deref(), Some("s3cret"));
        assert!(read_auto_enable(dir.path()).unwrap(), "on by default");
        write_auto_enable(dir.path(), false).unwrap();
        assert!(!read_auto_enable(dir.path()).unwrap());
        write_auto_enable(dir.path(), true).unwrap();
        assert!(read_auto_enable(dir.path()).unwrap());
    }
}
