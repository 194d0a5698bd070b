//! The on-disk half of the pool database: a redb file with the persistent objects, the
//! generation counter and the local users' credentials.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::Record;

/// `"<class>/<ref>"` -> JSON of the record.
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// `"generation"` -> the number of committed writes.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// user name -> JSON of the credential.
const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");

/// A failure of the persistent store. The write it belongs to was not applied.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb refused.
    #[error("pool database: {0}")]
    Redb(#[from] redb::Error),
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

/// One change to persist.
pub(crate) enum Change<'a> {
    Put {
        class: &'a str,
        r#ref: &'a str,
        record: &'a Record,
    },
    Delete {
        class: &'a str,
        r#ref: &'a str,
    },
    Credential {
        user: &'a str,
        json: Option<&'a [u8]>,
    },
}

/// Everything loaded at start-up.
pub(crate) struct Loaded {
    pub objects: Vec<(String, String, Record)>,
    pub credentials: Vec<(String, Vec<u8>)>,
    pub generation: u64,
}

pub(crate) struct Store {
    db: redb::Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<(Store, Loaded), StoreError> {
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
        let generation = r
            .open_table(META)?
            .get("generation")?
            .map(|g| g.value())
            .unwrap_or(0);
        Ok((
            Store { db },
            Loaded {
                objects,
                credentials,
                generation,
            },
        ))
    }

    /// Commit `changes` and the new generation atomically.
    pub fn commit(&self, changes: &[Change<'_>], generation: u64) -> Result<(), StoreError> {
        let w = self.db.begin_write()?;
        {
            let mut objects = w.open_table(OBJECTS)?;
            let mut auth = w.open_table(AUTH)?;
            for c in changes {
                match c {
                    Change::Put {
                        class,
                        r#ref,
                        record,
                    } => {
                        let bytes = serde_json::to_vec(record).expect("records always serialise");
                        objects.insert(format!("{class}/{ref}").as_str(), bytes.as_slice())?;
                    }
                    Change::Delete { class, r#ref } => {
                        objects.remove(format!("{class}/{ref}").as_str())?;
                    }
                    Change::Credential {
                        user,
                        json: Some(json),
                    } => {
                        auth.insert(*user, *json)?;
                    }
                    Change::Credential { user, json: None } => {
                        auth.remove(*user)?;
                    }
                }
            }
            w.open_table(META)?.insert("generation", generation)?;
        }
        w.commit()?;
        Ok(())
    }
}
