//! The pool database: every object of the data model, in memory for reads, with each write
//! committed to a redb file before it is acknowledged.
//!
//! Writes go through [`Database::write`], which stages changes in a [`Txn`], commits them to
//! redb in one transaction (bumping the generation and stamping the writer's epoch), and only
//! then makes them visible in memory. A crash before the commit loses nothing that was acknowledged and shows nothing
//! half-done; a crash after it replays the committed state on the next start.
//!
//! Sessions and tasks are not persistent (a restart invalidates them, as in xapi), so writes
//! that only touch them never reach the disk.

mod db;
mod store;

pub use db::{ChangeSet, Database, Dump, ReplicaError, Stamp, Tables, Txn, View};
pub use store::StoreError;
