//! The on-disk half of the pool database: a redb file with the persistent objects, the
//! generation counter and the local users' credentials.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::db::{ChangeSet, Dump, Stamp};
use crate::model::Record;

/// `"<class>/<ref>"` -> JSON of the record.
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// `"generation"` -> the number of committed writes; `"epoch"` -> the epoch of the master that
/// wrote the last of them. Both change in the same transaction as the data they describe.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// user name -> JSON of the credential.
const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");

/// A failure of the persistent store. The write it belongs to was not applied.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb refused.
    #[error("pool database: {0}")]
    Redb(#[from] redb::Error),
    /// The database file could not be created or its permissions set.
    #[error("pool database {path}: {source}")]
    File {
        /// The database file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored record does not decode.
    #[error("pool database: corrupt record {key}: {source}")]
    Corrupt {
        /// The key of the record.
        key: String,
        /// Why it does not decode.
        source: serde_json::Error,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Redb(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Everything loaded at start-up.
pub(crate) struct Loaded {
    pub objects: Vec<(String, String, Record)>,
    pub credentials: Vec<(String, Vec<u8>)>,
    pub stamp: Stamp,
}

/// Record `stamp` in the meta table, within the transaction that writes the state it names.
fn put_stamp(meta: &mut redb::Table<'_, &str, u64>, stamp: Stamp) -> Result<(), StoreError> {
    meta.insert("epoch", stamp.epoch)?;
    meta.insert("generation", stamp.generation)?;
    Ok(())
}

/// Create the database file mode 0600 if it does not exist (redb initialises an empty file),
/// and tighten an existing one to 0600: it holds the local users' password hashes.
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    let mode = file.metadata().map_err(failed)?.permissions().mode() & 0o777;
    if mode != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        tracing::warn!(path = %path.display(), "the pool database was mode {mode:o}; made it 0600");
    }
    Ok(())
}

pub(crate) struct Store {
    db: redb::Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<(Store, Loaded), StoreError> {
        make_private(path)?;
        let db = redb::Database::create(path)?;
        // Make sure the tables exist so the first read does not fail.
        let w = db.begin_write()?;
        {
            w.open_table(OBJECTS)?;
            w.open_table(META)?;
            w.open_table(AUTH)?;
        }
        w.commit()?;
        let r = db.begin_read()?;
        let mut objects = Vec::new();
        for item in r.open_table(OBJECTS)?.iter()? {
            let (k, v) = item?;
            let key = k.value().to_string();
            let record: Record =
                serde_json::from_slice(v.value()).map_err(|source| StoreError::Corrupt {
                    key: key.clone(),
                    source,
                })?;
            let (class, r#ref) = key.split_once('/').unwrap_or((&key, ""));
            objects.push((class.to_string(), r#ref.to_string(), record));
        }
        let mut credentials = Vec::new();
        for item in r.open_table(AUTH)?.iter()? {
            let (k, v) = item?;
            credentials.push((k.value().to_string(), v.value().to_vec()));
        }
        let meta = r.open_table(META)?;
        let stamp = Stamp {
            epoch: meta.get("epoch")?.map(|g| g.value()).unwrap_or(0),
            generation: meta.get("generation")?.map(|g| g.value()).unwrap_or(0),
        };
        Ok((
            Store { db },
            Loaded {
                objects,
                credentials,
                stamp,
            },
        ))
    }

    /// Commit one write's changes and its stamp atomically.
    pub fn commit(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        let w = self.db.begin_write()?;
        {
            let mut objects = w.open_table(OBJECTS)?;
            let mut auth = w.open_table(AUTH)?;
            for (class, r, rec) in &changes.objects {
                let key = format!("{class}/{r}");
                match rec {
                    Some(record) => {
                        let bytes = serde_json::to_vec(record).expect("records always serialise");
                        objects.insert(key.as_str(), bytes.as_slice())?;
                    }
                    None => {
                        objects.remove(key.as_str())?;
                    }
                }
            }
            for (user, json) in &changes.credentials {
                match json {
                    Some(json) => {
                        auth.insert(user.as_str(), json.as_slice())?;
                    }
                    None => {
                        auth.remove(user.as_str())?;
                    }
                }
            }
            put_stamp(&mut w.open_table(META)?, changes.stamp)?;
        }
        w.commit()?;
        Ok(())
    }

    /// Replace every object and credential with a dump, atomically.
    pub fn replace_all(&self, dump: &Dump) -> Result<(), StoreError> {
        let w = self.db.begin_write()?;
        w.delete_table(OBJECTS)?;
        w.delete_table(AUTH)?;
        {
            let mut objects = w.open_table(OBJECTS)?;
            for (class, r, record) in &dump.objects {
                let bytes = serde_json::to_vec(record).expect("records always serialise");
                objects.insert(format!("{class}/{r}").as_str(), bytes.as_slice())?;
            }
            let mut auth = w.open_table(AUTH)?;
            for (user, json) in &dump.credentials {
                auth.insert(user.as_str(), json.as_slice())?;
            }
            put_stamp(&mut w.open_table(META)?, dump.stamp)?;
        }
        w.commit()?;
        Ok(())
    }
}
