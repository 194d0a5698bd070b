//! # xenha: XenServer-style high availability and an `xe`-compatible toolstack
//!
//! This crate is everything the two binaries do, as a library:
//!
//! * [`model`] declares the XenAPI data model once: classes, fields (type, access, CLI name,
//!   default, doc), API messages and error codes. RPC dispatch, `xe` commands and record printing
//!   are all derived from it.
//! * [`wire`] turns bytes into [`model::Value`]s and back: XML-RPC and JSON-RPC exactly as xapi
//!   speaks them. Pure, no I/O.
//! * [`client`] is a XenAPI client (HTTPS, HTTP, local Unix socket) used by `xe` and tests.
//! * [`cli`] is `xe`: xe's argument grammar, command table, printer and commands.
//! * [`server`] is the XenAPI server: routes, sessions, dispatch of API calls onto the pool.
//! * [`pool`] owns the pool database (redb) and, later, its replication.
//! * [`planner`] answers failover-planning questions. Pure functions, no I/O.
//! * [`ha`] is the HA core as a sans-IO state machine: heartbeats, statefile, liveset, fencing,
//!   election. It never reads a clock or touches a socket; it is *given* the time.
//! * [`sim`] drives many [`ha`] agents in virtual time against injected faults.
//! * [`host`] reads local host facts (CPUs, memory) and owns local devices.
//! * [`daemon`] wires everything together for `xapid`.
//!
//! Dependencies point down only: `cli -> client -> wire -> model`; `daemon -> server, pool, ha,
//! host`; `ha` and `planner` import nothing but `model` and `std`.
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod daemon;
pub mod ha;
pub mod host;
pub mod model;
pub mod planner;
pub mod pool;
pub mod server;
pub mod sim;
pub mod wire;
