//! Storage on this host: what an SR's `device_config` points at, checking it can be reached,
//! and making or removing the bytes behind a VDI.
//!
//! Two SR types:
//! * `file`: `device-config:location=DIR`, a directory every host of a shared SR can reach
//!   (an NFS mount, say). A VDI is a sparse file `DIR/<vdi-uuid>.img`.
//! * `block`: `device-config:device=PATH`, a block device (or, in labs, a regular file). A
//!   VDI is a region of it; regions are allocated by the pool master, which sees them all.
//!
//! Every operation arrives as a [`StorageOp`] so the master can run it here or send the same
//! value to the host that has the SR attached.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The SR types this toolstack implements.
pub const SR_TYPES: &[&str] = &["file", "block"];

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Not an SR type we know.
    #[error("unknown SR type {0}")]
    UnknownDriver(String),
    /// A required device-config key is missing.
    #[error("device-config:{0} is required")]
    MissingConfig(&'static str),
    /// The storage is not reachable or usable.
    #[error("{0}")]
    Io(String),
}

/// One storage operation, run on a host that can reach the SR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum StorageOp {
    /// Check the SR can be used here; answers its physical size in bytes.
    Check {
        /// SR type.
        sr_type: String,
        /// `device_config`.
        config: BTreeMap<String, String>,
    },
    /// Make the bytes of a new VDI; answers its location.
    CreateVdi {
        /// SR type.
        sr_type: String,
        /// `device_config`.
        config: BTreeMap<String, String>,
        /// The VDI's UUID.
        uuid: String,
        /// Its virtual size in bytes.
        size: u64,
        /// For block SRs: the region's offset, chosen by the master.
        offset: u64,
    },
    /// Remove the bytes of a VDI (file SRs; block regions are simply freed).
    RemoveVdi {
        /// SR type.
        sr_type: String,
        /// `device_config`.
        config: BTreeMap<String, String>,
        /// The VDI's location.
        location: String,
    },
}

fn config_path(
    config: &BTreeMap<String, String>,
    key: &'static str,
) -> Result<PathBuf, StorageError> {
    config
        .get(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or(StorageError::MissingConfig(key))
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = format!("{what} {}", path.display());
    move |e| StorageError::Io(format!("{context}: {e}"))
}

/// Size in bytes of a block device or file, by seeking to its end (works for both).
fn device_size(path: &Path) -> Result<u64, StorageError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    f.seek(SeekFrom::End(0)).map_err(io_err("sizing", path))
}

/// Run a storage operation on this host; the answer is a size or a location, as text.
pub fn execute(op: &StorageOp) -> Result<String, StorageError> {
    match op {
        StorageOp::Check { sr_type, config } => match sr_type.as_str() {
            "file" => {
                let dir = config_path(config, "location")?;
                let probe = dir.join(format!(".xenha-probe-{}", uuid::Uuid::new_v4()));
                std::fs::write(&probe, b"").map_err(io_err("writing in", &dir))?;
                let _ = std::fs::remove_file(&probe);
                let stat = rustix::fs::statvfs(&dir)
                    .map_err(|e| StorageError::Io(format!("statvfs {}: {e}", dir.display())))?;
                Ok((stat.f_blocks * stat.f_frsize).to_string())
            }
            "block" => Ok(device_size(&config_path(config, "device")?)?.to_string()),
            other => Err(StorageError::UnknownDriver(other.to_string())),
        },
        StorageOp::CreateVdi {
            sr_type,
            config,
            uuid,
            size,
            offset,
        } => match sr_type.as_str() {
            "file" => {
                let path = config_path(config, "location")?.join(format!("{uuid}.img"));
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io_err("creating", &path))?;
                f.set_len(*size).map_err(io_err("sizing", &path))?;
                f.sync_all().map_err(io_err("syncing", &path))?;
                Ok(path.display().to_string())
            }
            "block" => {
                let device = config_path(config, "device")?;
                let total = device_size(&device)?;
                if offset + size > total {
                    return Err(StorageError::Io(format!(
                        "{} is too small",
                        device.display()
                    )));
                }
                Ok(format!("{}@{offset}", device.display()))
            }
            other => Err(StorageError::UnknownDriver(other.to_string())),
        },
        StorageOp::RemoveVdi {
            sr_type, location, ..
        } => match sr_type.as_str() {
            "file" => match std::fs::remove_file(location) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StorageError::Io(format!("removing {location}: {e}")))
                }
                _ => Ok(String::new()),
            },
            "block" => Ok(String::new()),
            other => Err(StorageError::UnknownDriver(other.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(k: &str, v: &Path) -> BTreeMap<String, String> {
        [(k.to_string(), v.display().to_string())].into()
    }

    #[test]
    fn file_srs_hold_sparse_vdi_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = cfg("location", dir.path());
        let size: u64 = execute(&StorageOp::Check {
            sr_type: "file".into(),
            config: config.clone(),
        })
        .unwrap()
        .parse()
        .unwrap();
        assert!(size > 0);
        let op = StorageOp::CreateVdi {
            sr_type: "file".into(),
            config: config.clone(),
            uuid: "v1".into(),
            size: 1 << 30,
            offset: 0,
        };
        let location = execute(&op).unwrap();
        assert_eq!(std::fs::metadata(&location).unwrap().len(), 1 << 30);
        assert!(execute(&op).is_err(), "a VDI's file is never overwritten");
        execute(&StorageOp::RemoveVdi {
            sr_type: "file".into(),
            config,
            location: location.clone(),
        })
        .unwrap();
        assert!(!Path::new(&location).exists());
    }

    #[test]
    fn block_srs_check_their_device_and_regions() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("disk");
        std::fs::File::create(&dev)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let config = cfg("device", &dev);
        assert_eq!(
            execute(&StorageOp::Check {
                sr_type: "block".into(),
                config: config.clone()
            })
            .unwrap(),
            (64u64 << 20).to_string()
        );
        let fits = StorageOp::CreateVdi {
            sr_type: "block".into(),
            config: config.clone(),
            uuid: "v".into(),
            size: 16 << 20,
            offset: 32 << 20,
        };
        assert!(execute(&fits).unwrap().ends_with("@33554432"));
        let too_big = StorageOp::CreateVdi {
            sr_type: "block".into(),
            config,
            uuid: "v".into(),
            size: 48 << 20,
            offset: 32 << 20,
        };
        assert!(execute(&too_big).is_err());
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(matches!(
            execute(&StorageOp::Check {
                sr_type: "nfs9".into(),
                config: BTreeMap::new()
            }),
            Err(StorageError::UnknownDriver(_))
        ));
        assert!(matches!(
            execute(&StorageOp::Check {
                sr_type: "file".into(),
                config: BTreeMap::new()
            }),
            Err(StorageError::MissingConfig("location"))
        ));
        let missing = cfg("location", Path::new("/nonexistent/xenha"));
        assert!(matches!(
            execute(&StorageOp::Check {
                sr_type: "file".into(),
                config: missing
            }),
            Err(StorageError::Io(_))
        ));
    }
}
