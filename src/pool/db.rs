//! [`Database`]: the in-memory tables, and [`Txn`], the staging area of one write.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use indexmap::IndexMap;

use super::store::{Change, Store, StoreError};
use crate::model::{self, ApiError, ClassDecl, Record, Value};

/// The current state of every object, indexed by class and ref, and by UUID.
#[derive(Default)]
pub struct Tables {
    classes: HashMap<&'static str, IndexMap<String, Record>>,
    uuids: HashMap<String, (&'static str, String)>,
    credentials: HashMap<String, Vec<u8>>,
    generation: u64,
}

impl Tables {
    /// The record of `class` object `r`.
    pub fn get(&self, class: &str, r: &str) -> Option<&Record> {
        self.classes.get(class)?.get(r)
    }

    /// One field of one object.
    pub fn field(&self, class: &str, r: &str, field: &str) -> Option<&Value> {
        self.get(class, r)?.get(field)
    }

    /// Every object of a class, in creation order.
    pub fn all(&self, class: &str) -> impl Iterator<Item = (&String, &Record)> {
        self.classes.get(class).into_iter().flat_map(|t| t.iter())
    }

    /// The class and ref of the object with this UUID.
    pub fn by_uuid(&self, uuid: &str) -> Option<(&'static str, &str)> {
        self.uuids.get(uuid).map(|(c, r)| (*c, r.as_str()))
    }

    /// The stored credential of a local user.
    pub fn credential(&self, user: &str) -> Option<&[u8]> {
        self.credentials.get(user).map(Vec::as_slice)
    }

    /// How many persistent writes have been committed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn insert(&mut self, class: &'static str, r: String, record: Record) {
        if let Some(Value::Str(uuid)) = record.get("uuid") {
            self.uuids.insert(uuid.clone(), (class, r.clone()));
        }
        self.classes.entry(class).or_default().insert(r, record);
    }

    fn remove(&mut self, class: &str, r: &str) {
        if let Some(record) = self.classes.get_mut(class).and_then(|t| t.shift_remove(r)) {
            if let Some(Value::Str(uuid)) = record.get("uuid") {
                self.uuids.remove(uuid);
            }
        }
    }
}

/// Read access shared by the committed tables and a transaction's staged view, so rules such
/// as memory accounting are written once and hold inside and outside a write.
pub trait View {
    /// The record of `class` object `r`.
    fn record(&self, class: &str, r: &str) -> Option<&Record>;
    /// The refs of every object of `class`.
    fn refs(&self, class: &str) -> Vec<String>;
}

impl View for Tables {
    fn record(&self, class: &str, r: &str) -> Option<&Record> {
        self.get(class, r)
    }
    fn refs(&self, class: &str) -> Vec<String> {
        self.all(class).map(|(r, _)| r.clone()).collect()
    }
}

impl View for Txn<'_> {
    fn record(&self, class: &str, r: &str) -> Option<&Record> {
        self.get(class, r)
    }
    fn refs(&self, class: &str) -> Vec<String> {
        let mut refs = self.base.refs(class);
        for ((c, r), rec) in &self.staged {
            if *c == class && rec.is_some() && !refs.contains(r) {
                refs.push(r.clone());
            }
        }
        refs.retain(|r| self.get(class, r).is_some());
        refs
    }
}

/// The pool database: read with [`Database::read`], change with [`Database::write`].
pub struct Database {
    tables: RwLock<Tables>,
    /// Serialises writers, so readers are only blocked while a commit is applied in memory,
    /// not while it is being made durable.
    writer: Mutex<()>,
    store: Option<Store>,
}

impl Database {
    /// Open (or create) the database file and load it.
    pub fn open(path: &Path) -> Result<Database, StoreError> {
        let (store, loaded) = Store::open(path)?;
        let mut tables = Tables {
            generation: loaded.generation,
            ..Tables::default()
        };
        for (class, r, record) in loaded.objects {
            // Objects of classes this build does not know are kept on disk but not served.
            if let Some(c) = model::class(&class) {
                tables.insert(c.name, r, record);
            }
        }
        tables.credentials = loaded.credentials.into_iter().collect();
        Ok(Database {
            tables: RwLock::new(tables),
            writer: Mutex::new(()),
            store: Some(store),
        })
    }

    /// A database that lives only in memory (tests, simulations).
    pub fn in_memory() -> Database {
        Database {
            tables: RwLock::new(Tables::default()),
            writer: Mutex::new(()),
            store: None,
        }
    }

    /// A consistent view of the current state.
    pub fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` against a staging transaction; if it succeeds, make its changes durable and then
    /// visible. If `f` fails, or the commit fails, nothing changes.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (result, staged, credentials) = {
            let base = self.read();
            let mut txn = Txn {
                base: &base,
                staged: IndexMap::new(),
                credentials: Vec::new(),
            };
            let result = f(&mut txn)?;
            (result, txn.staged, txn.credentials)
        };
        if staged.is_empty() && credentials.is_empty() {
            return Ok(result);
        }
        let persistent: Vec<Change<'_>> = staged
            .iter()
            .filter(|((class, _), _)| model::class(class).is_some_and(|c| c.persistent))
            .map(|((class, r), rec)| match rec {
                Some(record) => Change::Put {
                    class,
                    r#ref: r,
                    record,
                },
                None => Change::Delete { class, r#ref: r },
            })
            .chain(credentials.iter().map(|(user, json)| Change::Credential {
                user,
                json: json.as_deref(),
            }))
            .collect();
        let generation = self.read().generation + u64::from(!persistent.is_empty());
        if let (Some(store), false) = (&self.store, persistent.is_empty()) {
            store
                .commit(&persistent, generation)
                .map_err(ApiError::internal)?;
        }
        drop(persistent);
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        tables.generation = generation;
        for ((class, r), record) in staged {
            tables.remove(class, &r);
            if let Some(record) = record {
                tables.insert(class, r, record);
            }
        }
        for (user, json) in credentials {
            match json {
                Some(json) => tables.credentials.insert(user, json),
                None => tables.credentials.remove(&user),
            };
        }
        Ok(result)
    }
}

/// The changes of one write, staged over a consistent view. Reads see the staged changes.
pub struct Txn<'a> {
    base: &'a Tables,
    staged: IndexMap<(&'static str, String), Option<Record>>,
    credentials: Vec<(String, Option<Vec<u8>>)>,
}

impl Txn<'_> {
    /// The record as this transaction sees it.
    pub fn get(&self, class: &str, r: &str) -> Option<&Record> {
        let key = (model::class(class)?.name, r.to_string());
        match self.staged.get(&key) {
            Some(staged) => staged.as_ref(),
            None => self.base.get(class, r),
        }
    }

    /// The committed state underneath this transaction (without its staged changes).
    pub fn base(&self) -> &Tables {
        self.base
    }

    /// Create an object with every field at its default, then `fields` applied; returns its ref.
    /// A `uuid` given in `fields` is kept, otherwise a fresh one is made.
    pub fn create(
        &mut self,
        class: &'static ClassDecl,
        fields: impl IntoIterator<Item = (&'static str, Value)>,
    ) -> String {
        let mut record: Record = class
            .stored_fields()
            .map(|f| (f.name.to_string(), f.default_value()))
            .collect();
        record.insert("uuid".into(), Value::str(uuid::Uuid::new_v4().to_string()));
        for (name, value) in fields {
            debug_assert!(
                class.field(name).is_some(),
                "{}.{name} is not declared",
                class.name
            );
            record.insert(name.to_string(), value);
        }
        let r = model::new_ref();
        self.staged.insert((class.name, r.clone()), Some(record));
        r
    }

    /// Set one field of an existing object.
    pub fn set(
        &mut self,
        class: &'static ClassDecl,
        r: &str,
        field: &str,
        value: Value,
    ) -> Result<(), ApiError> {
        self.update(class, r, |rec| {
            rec.insert(field.to_string(), value);
        })
    }

    /// Change an existing object's record in place.
    pub fn update(
        &mut self,
        class: &'static ClassDecl,
        r: &str,
        f: impl FnOnce(&mut Record),
    ) -> Result<(), ApiError> {
        let mut record = self
            .get(class.name, r)
            .cloned()
            .ok_or_else(|| ApiError::handle_invalid(class.name, r))?;
        f(&mut record);
        self.staged
            .insert((class.name, r.to_string()), Some(record));
        Ok(())
    }

    /// Delete an object.
    pub fn delete(&mut self, class: &'static ClassDecl, r: &str) -> Result<(), ApiError> {
        if self.get(class.name, r).is_none() {
            return Err(ApiError::handle_invalid(class.name, r));
        }
        self.staged.insert((class.name, r.to_string()), None);
        Ok(())
    }

    /// Store a local user's credential (opaque bytes, e.g. a JSON document with a hash).
    pub fn set_credential(&mut self, user: &str, json: Vec<u8>) {
        self.credentials.push((user.to_string(), Some(json)));
    }

    /// Delete a local user's credential.
    pub fn remove_credential(&mut self, user: &str) {
        self.credentials.push((user.to_string(), None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::classes::{HOST, SESSION, VM};

    #[test]
    fn writes_survive_a_reopen_and_failed_writes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        let vm = {
            let db = Database::open(&path).unwrap();
            let vm = db
                .write(|t| Ok(t.create(&VM, [("name_label", Value::str("web"))])))
                .unwrap();
            db.write(|t| t.set(&VM, &vm, "order", Value::Int(3)))
                .unwrap();
            // A failing write changes nothing, even what it staged before failing.
            let err = db.write(|t| {
                t.set(&VM, &vm, "order", Value::Int(99))?;
                t.set(&VM, "OpaqueRef:nope", "order", Value::Int(1))
            });
            assert!(err.is_err());
            assert_eq!(db.read().field("VM", &vm, "order"), Some(&Value::Int(3)));
            // Sessions are not persistent and do not bump the generation.
            let before = db.read().generation();
            db.write(|t| Ok(t.create(&SESSION, []))).unwrap();
            assert_eq!(db.read().generation(), before);
            assert_eq!(before, 2);
            vm
        };
        let db = Database::open(&path).unwrap();
        let t = db.read();
        assert_eq!(t.generation(), 2);
        let rec = t.get("VM", &vm).unwrap();
        assert_eq!(rec["name_label"], Value::str("web"));
        assert_eq!(rec["order"], Value::Int(3));
        assert_eq!(rec["power_state"], Value::str("Halted"));
        let uuid = rec["uuid"].as_str().unwrap();
        assert_eq!(t.by_uuid(uuid), Some(("VM", vm.as_str())));
        assert_eq!(
            t.all("session").count(),
            0,
            "sessions do not survive a restart"
        );
        assert_eq!(t.all("host").count(), 0);
        drop(t);
        let h = db.write(|t| Ok(t.create(&HOST, []))).unwrap();
        db.write(|t| t.delete(&HOST, &h)).unwrap();
        assert!(db.read().get("host", &h).is_none());
    }
}
