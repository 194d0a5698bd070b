//! [`Database`]: the in-memory tables, and [`Txn`], the staging area of one write.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::store::{Store, StoreError};
use crate::model::{self, ApiError, ClassDecl, Record, Value};

/// The current state of every object, indexed by class and ref, and by UUID.
#[derive(Default)]
pub struct Tables {
    classes: HashMap<&'static str, IndexMap<String, Record>>,
    uuids: HashMap<String, (&'static str, String)>,
    credentials: HashMap<String, Vec<u8>>,
    stamp: Stamp,
}

/// Which state a copy of the pool database holds: the epoch of the master that wrote its last
/// change, and how many changes it has. Within one epoch only one master writes, and a replica
/// takes a change only onto the state it was made from, so two copies with the same stamp hold
/// the same state. Stamps order by epoch first: a newer master's state supersedes an older
/// one's, however many writes the older master made.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// The epoch of the master that wrote the last change.
    pub epoch: u64,
    /// How many persistent writes have been committed.
    pub generation: u64,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.epoch, self.generation)
    }
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
        self.stamp.generation
    }

    /// The epoch and generation of this copy.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// Store or delete one object (objects of unknown classes are ignored).
    fn put(&mut self, class: &str, r: String, record: Option<Record>) {
        let Some(c) = model::class(class) else { return };
        self.remove(c.name, &r);
        if let Some(record) = record {
            self.insert(c.name, r, record);
        }
    }

    /// Apply a committed change and take its stamp.
    fn apply(&mut self, changes: &ChangeSet) {
        for (class, r, rec) in &changes.objects {
            self.put(class, r.clone(), rec.clone());
        }
        for (user, json) in &changes.credentials {
            match json {
                Some(json) => self.credentials.insert(user.clone(), json.clone()),
                None => self.credentials.remove(user),
            };
        }
        self.stamp = changes.stamp;
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

/// One committed write's persistent changes, as replication carries them to pool members.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangeSet {
    /// The state this write creates: the epoch of the master that made it, and the generation.
    #[serde(flatten)]
    pub stamp: Stamp,
    /// `(class, ref, new record or None for a deletion)`.
    pub objects: Vec<(String, String, Option<Record>)>,
    /// `(user, credential or None for a deletion)`.
    pub credentials: Vec<(String, Option<Vec<u8>>)>,
}

/// Every persistent object and credential at one stamp: what a joining or returning member
/// loads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dump {
    /// The stamp of this state.
    #[serde(flatten)]
    pub stamp: Stamp,
    /// `(class, ref, record)`.
    pub objects: Vec<(String, String, Record)>,
    /// `(user, credential)`.
    pub credentials: Vec<(String, Vec<u8>)>,
}

/// Why a replicated change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The change was not made from this replica's state (another generation, or another
    /// master's epoch): a full copy is needed.
    #[error("replica has {have}, change makes {got}")]
    Gap {
        /// What this replica has.
        have: Stamp,
        /// What the change would make.
        got: Stamp,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Observer = Box<dyn Fn(ChangeSet) + Send + Sync>;

/// The pool database: read with [`Database::read`], change with [`Database::write`].
pub struct Database {
    tables: RwLock<Tables>,
    /// Serialises writers, so readers are only blocked while a commit is applied in memory,
    /// not while it is being made durable.
    writer: Mutex<()>,
    store: Option<Store>,
    /// Told of every committed persistent change, in generation order (replication).
    observer: RwLock<Option<Observer>>,
    /// The epoch stamped on this host's own writes: the epoch it is master under.
    write_epoch: AtomicU64,
}

impl Database {
    /// Open (or create) the database file and load it.
    pub fn open(path: &Path) -> Result<Database, StoreError> {
        let (store, loaded) = Store::open(path)?;
        let mut tables = Tables {
            stamp: loaded.stamp,
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
            observer: RwLock::new(None),
            write_epoch: AtomicU64::new(loaded.stamp.epoch),
        })
    }

    /// A database that lives only in memory (tests, simulations).
    pub fn in_memory() -> Database {
        Database {
            tables: RwLock::new(Tables::default()),
            writer: Mutex::new(()),
            store: None,
            observer: RwLock::new(None),
            write_epoch: AtomicU64::new(0),
        }
    }

    /// Stamp this host's writes from now on with `epoch` (it became master under it).
    pub fn set_write_epoch(&self, epoch: u64) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.write_epoch.store(epoch, Ordering::SeqCst);
    }

    /// A consistent view of the current state.
    pub fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` against a staging transaction; if it succeeds, make its changes durable and then
    /// visible, and tell the observer. If `f` fails, or the commit fails, nothing changes.
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
        let staged = keep_xml_strings(staged);
        let (persistent, volatile): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .map(|((class, r), rec)| (class.to_string(), r, rec))
            .partition(|(class, _, _)| model::class(class).is_some_and(|c| c.persistent));
        let changes = ChangeSet {
            stamp: Stamp {
                epoch: self.write_epoch.load(Ordering::SeqCst),
                generation: self.read().generation() + 1,
            },
            objects: persistent,
            credentials,
        };
        let durable = !changes.objects.is_empty() || !changes.credentials.is_empty();
        if durable {
            if let Some(store) = &self.store {
                store.commit(&changes).map_err(ApiError::internal)?;
            }
        }
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        for (class, r, rec) in volatile {
            tables.put(&class, r, rec);
        }
        if durable {
            tables.apply(&changes);
            drop(tables);
            if let Some(observe) = &*self.observer.read().unwrap_or_else(|e| e.into_inner()) {
                observe(changes);
            }
        }
        Ok(result)
    }

    /// Be told of every committed persistent change, in order, from now on.
    pub fn set_observer(&self, observer: impl Fn(ChangeSet) + Send + Sync + 'static) {
        *self.observer.write().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(observer));
    }

    /// Apply a change replicated from the master. It must be the next generation of the same
    /// epoch as this copy: only then was it made from the state this copy holds. A change of
    /// another epoch is refused even when its generation follows, because the two masters'
    /// histories may differ below it; the master then sends a full copy. A change already
    /// applied is acknowledged again without effect (the master may resend after a timeout).
    pub fn apply_replica(&self, changes: &ChangeSet) -> Result<(), ReplicaError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let have = self.read().stamp;
        let got = changes.stamp;
        if got.epoch != have.epoch || got.generation > have.generation + 1 {
            return Err(ReplicaError::Gap { have, got });
        }
        if got.generation <= have.generation {
            return Ok(());
        }
        if let Some(store) = &self.store {
            store.commit(changes)?;
        }
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(changes);
        Ok(())
    }

    /// Every persistent object and credential, at the current generation.
    pub fn dump(&self) -> Dump {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let t = self.read();
        let objects = t
            .classes
            .iter()
            .filter(|(class, _)| model::class(class).is_some_and(|c| c.persistent))
            .flat_map(|(class, objs)| {
                objs.iter()
                    .map(move |(r, rec)| (class.to_string(), r.clone(), rec.clone()))
            })
            .collect();
        let credentials = t
            .credentials
            .iter()
            .map(|(u, c)| (u.clone(), c.clone()))
            .collect();
        Dump {
            stamp: t.stamp,
            objects,
            credentials,
        }
    }

    /// Replace every persistent object and credential with `dump` (a member catching up).
    /// Volatile objects (this host's own sessions) are kept.
    pub fn restore(&self, dump: &Dump) -> Result<(), StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = &self.store {
            store.replace_all(dump)?;
        }
        let mut t = self.tables.write().unwrap_or_else(|e| e.into_inner());
        let persistent: Vec<&'static str> = t
            .classes
            .keys()
            .copied()
            .filter(|c| model::class(c).is_some_and(|d| d.persistent))
            .collect();
        for class in persistent {
            for r in t
                .classes
                .get(class)
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                t.remove(class, &r);
            }
        }
        for (class, r, rec) in &dump.objects {
            t.put(class, r.clone(), Some(rec.clone()));
        }
        t.credentials = dump.credentials.iter().cloned().collect();
        t.stamp = dump.stamp;
        Ok(())
    }
}

type Staged = IndexMap<(&'static str, String), Option<Record>>;

/// Cut every string of a write's records at its first character XML 1.0 cannot carry, with a
/// warning, as xapi's database does: a value a JSON-RPC client could set would otherwise make
/// every later XML-RPC read of the object an unparsable document. Every write passes here, so
/// generic setters, explicit calls and creations are all covered.
fn keep_xml_strings(mut staged: Staged) -> Staged {
    for ((class, r), record) in &mut staged {
        for (field, value) in record.iter_mut().flatten() {
            if value.truncate_to_xml() {
                tracing::warn!(class, r, field, "string truncated to: {value:?}");
            }
        }
    }
    staged
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

    /// Store a whole record under a given ref, creating or replacing the object (a host joining
    /// the pool keeps the refs it had).
    pub fn put(&mut self, class: &'static ClassDecl, r: &str, record: Record) {
        self.staged
            .insert((class.name, r.to_string()), Some(record));
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

    /// Add `member` to the set field `field` of an object, once.
    pub fn add_to_set(
        &mut self,
        class: &'static ClassDecl,
        r: &str,
        field: &str,
        member: &str,
    ) -> Result<(), ApiError> {
        self.update(class, r, |rec| {
            let mut items = rec
                .get(field)
                .and_then(Value::as_array)
                .unwrap_or_default()
                .to_vec();
            if !items.iter().any(|v| v.as_str() == Some(member)) {
                items.push(Value::str(member));
            }
            rec.insert(field.to_string(), Value::Array(items));
        })
    }

    /// Remove `member` from the set field `field` of an object.
    pub fn remove_from_set(
        &mut self,
        class: &'static ClassDecl,
        r: &str,
        field: &str,
        member: &str,
    ) -> Result<(), ApiError> {
        self.update(class, r, |rec| {
            let mut items = rec
                .get(field)
                .and_then(Value::as_array)
                .unwrap_or_default()
                .to_vec();
            items.retain(|v| v.as_str() != Some(member));
            rec.insert(field.to_string(), Value::Array(items));
        })
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

    #[test]
    fn replicas_follow_the_observed_changes_and_catch_up_from_a_dump() {
        use std::sync::{Arc, Mutex as StdMutex};
        let dir = tempfile::tempdir().unwrap();
        let master = Database::open(&dir.path().join("m.db")).unwrap();
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let sink = seen.clone();
        master.set_observer(move |c| sink.lock().unwrap().push(c));
        let vm = master
            .write(|t| Ok(t.create(&VM, [("name_label", Value::str("a"))])))
            .unwrap();
        master.write(|t| Ok(t.create(&SESSION, []))).unwrap(); // volatile: not replicated
        master
            .write(|t| t.set(&VM, &vm, "order", Value::Int(5)))
            .unwrap();
        master
            .write(|t| {
                t.set_credential("u", b"{}".to_vec());
                Ok(())
            })
            .unwrap();
        let changes = seen.lock().unwrap().clone();
        assert_eq!(
            changes
                .iter()
                .map(|c| c.stamp.generation)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );

        let replica = Database::open(&dir.path().join("r.db")).unwrap();
        // Out of order is refused, in order is applied, a repeat is harmless.
        assert!(matches!(
            replica.apply_replica(&changes[1]),
            Err(ReplicaError::Gap { have, got }) if have.generation == 0 && got.generation == 2
        ));
        for c in &changes {
            replica.apply_replica(c).unwrap();
        }
        replica.apply_replica(&changes[0]).unwrap();
        assert_eq!(replica.read().generation(), 3);
        assert_eq!(
            replica.read().field("VM", &vm, "order"),
            Some(&Value::Int(5))
        );
        assert_eq!(replica.read().credential("u"), Some(&b"{}"[..]));
        assert_eq!(replica.read().all("session").count(), 0);

        // A late replica loads a dump, which survives a reopen.
        let path = dir.path().join("late.db");
        {
            let late = Database::open(&path).unwrap();
            late.write(|t| Ok(t.create(&HOST, []))).unwrap(); // its own old pool, to be replaced
            late.restore(&master.dump()).unwrap();
        }
        let late = Database::open(&path).unwrap();
        assert_eq!(late.read().generation(), 3);
        assert_eq!(late.read().all("host").count(), 0);
        assert_eq!(
            late.read().field("VM", &vm, "name_label"),
            Some(&Value::str("a"))
        );
        assert_eq!(late.read().credential("u"), Some(&b"{}"[..]));
    }

    #[test]
    fn a_change_of_another_epoch_is_never_applied_as_a_delta() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old-master.db");
        let new_master = Database::in_memory();
        new_master.set_write_epoch(2);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        new_master.set_observer(move |c| sink.lock().unwrap().push(c));
        {
            // The old master wrote one change under epoch 1 that nobody else saw.
            let old = Database::open(&path).unwrap();
            old.set_write_epoch(1);
            old.write(|t| Ok(t.create(&VM, [("name_label", Value::str("div"))])))
                .unwrap();
            assert_eq!(
                old.read().stamp(),
                Stamp {
                    epoch: 1,
                    generation: 1
                }
            );
        }
        // The stamp survives a reopen: it is committed with the data.
        let old = Database::open(&path).unwrap();
        assert_eq!(old.read().stamp().epoch, 1);
        // The new master's first two changes: the first has the same generation number as the
        // old master's divergent one, the second follows it numerically. Neither applies.
        new_master
            .write(|t| Ok(t.create(&VM, [("name_label", Value::str("new-1"))])))
            .unwrap();
        new_master
            .write(|t| Ok(t.create(&VM, [("name_label", Value::str("new-2"))])))
            .unwrap();
        let changes = seen.lock().unwrap().clone();
        for c in &changes {
            assert_eq!(c.stamp.epoch, 2);
            assert!(matches!(
                old.apply_replica(c),
                Err(ReplicaError::Gap { have, .. }) if have.epoch == 1
            ));
        }
        // A full copy brings it over, stamp and all; then deltas of that epoch apply.
        old.restore(&new_master.dump()).unwrap();
        assert_eq!(old.read().stamp(), new_master.read().stamp());
        let names = |db: &Database| {
            let mut n: Vec<String> = db
                .read()
                .all("VM")
                .map(|(_, v)| v["name_label"].as_str().unwrap().to_string())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&old), ["new-1", "new-2"]);
        new_master
            .write(|t| Ok(t.create(&VM, [("name_label", Value::str("new-3"))])))
            .unwrap();
        let last = seen.lock().unwrap().last().cloned().unwrap();
        old.apply_replica(&last).unwrap();
        assert_eq!(names(&old), names(&new_master));
    }
}
