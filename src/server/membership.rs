//! Pool membership: who is master, the pool secret and epoch, joining a pool, and replication
//! of every committed write from the master to its members.
//!
//! # Replication
//!
//! The database hands every committed persistent change (a [`ChangeSet`], numbered by
//! generation) to the replicator through an ordered queue, so changes leave the master in
//! generation order. The replicator pushes each one to every reachable member and waits for its
//! answer (bounded by the peer timeout); only then does it publish the generation as
//! replicated. An API call returns to its caller only once everything up to the generation it
//! produced is replicated, so an acknowledged write is on every reachable member.
//!
//! A member that does not answer is marked unreachable at once (the replicator stops waiting
//! for it) and its `host_metrics.live` is set false. The liveness task pings all members at
//! once every [`PING_INTERVAL`], each ping bounded by its own [`PING_TIMEOUT`] so that hung
//! members do not delay each other; a member that misses [`MISSES_BEFORE_NOT_LIVE`] pings in a
//! row is marked the same way (within [`NOT_LIVE_WITHIN`]), whether it was reachable or not (one already dead when this master started or
//! took over still has `live` true in the record it inherited). An unreachable member that
//! answers again is told who the master is, brought up to date with a full copy of the
//! database unless its copy has the master's very [`Stamp`], through the same queue so it
//! cannot overtake a change, and marked live.
//!
//! Every change and every copy carries a stamp: the epoch of the master that wrote it and its
//! generation. A member takes a change only onto a copy of the same epoch and the generation
//! just before it; anything else (a gap, or a copy another master wrote, even at the same
//! generation number) is refused and the master sends a full copy instead. A member also
//! refuses anything from an older epoch than it has seen. An old master that comes back is a
//! member like any other: the current master's newer epoch makes it follow, and its copy,
//! stamped with the old epoch, is replaced whole.
//!
//! A master also learns on its own that it was replaced: every ping answers the newest epoch
//! the host has seen, and a host that reports a newer one than this master's (the recovery
//! pass at start, which runs before any later write is acknowledged, a liveness ping, a refused
//! change) *deposes* it: it follows that epoch's master at once, and no call in flight is
//! acknowledged (see [`Membership::wait_replicated`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::peer::{PeerError, Peers};
use super::{alerts, Server};
use crate::host::inventory;
use crate::model::classes::{HOST, HOST_CPU, HOST_METRICS, POOL, VM};
use crate::model::errors::code;
use crate::model::{ApiError, Record, Value};
use crate::pool::{ChangeSet, Dump, ReplicaError, Stamp};
use crate::server::str_field;

/// How often the master checks on its members.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long one liveness ping may take. Members are pinged all at once, each bounded by this
/// on its own, so a round of pings takes at most this long however many members are hung.
/// It is shorter than the peer timeout because a live host answers a ping at once.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// Missed pings after which a member is declared not live.
pub const MISSES_BEFORE_NOT_LIVE: u32 = 3;
/// The longest a member that falls silent (dead, hung or cut off) stays recorded live,
/// however many members fall silent at once. A round of pings starts every [`PING_INTERVAL`],
/// or as soon as the previous one ended if that took longer: at most [`PING_TIMEOUT`] plus the
/// records it writes. The member's third miss in a row is counted by the end of the third
/// round that starts after it fell silent, so within 3 rounds and one ping timeout; that is
/// within this bound as long as the records one round writes take under half a second (each
/// is one small commit). A change that finds the member silent records it sooner.
pub const NOT_LIVE_WITHIN: Duration = Duration::from_millis(
    MISSES_BEFORE_NOT_LIVE as u64 * (PING_INTERVAL.as_millis() + PING_TIMEOUT.as_millis()) as u64,
);
/// The epoch a member stamps any write of its own with. Only the master writes the pool's
/// state; should a member ever write, its copy is stamped with an epoch no master has, so it
/// never passes for a master's state: the next change finds a gap and a full copy replaces it,
/// and it loses to every master's copy when the freshest one is chosen.
pub const MEMBER_WRITE_EPOCH: u64 = 0;
/// The error code a member answers when a change does not follow its generation.
const REPLICA_GAP: &str = "XENHA_REPLICA_GAP";

/// This host's place in the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolRole {
    /// The master: authoritative for the database.
    Master,
    /// A member, with the master's address.
    Member {
        /// The master's address.
        master: String,
    },
}

enum Job {
    Replicate(ChangeSet),
    Recover(String, oneshot::Sender<bool>),
    /// Bring back a member this master has not reached yet (it just started or took over);
    /// one that does not answer is not live.
    Rejoin(String),
}

/// Membership state of this host.
pub struct Membership {
    role: RwLock<PoolRole>,
    secret: RwLock<String>,
    epoch: AtomicU64,
    /// How to reach other hosts.
    pub peers: Peers,
    jobs: mpsc::UnboundedSender<Job>,
    jobs_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    replicated: watch::Sender<u64>,
    unreachable: Mutex<HashSet<String>>,
    misses: Mutex<HashMap<String, u32>>,
    /// Held shared by every ordinary call until its writes are replicated, and exclusively by a
    /// master handover, so that no write can slip in between the last sync and the switch.
    pub write_gate: tokio::sync::RwLock<()>,
    /// How many times this host was deposed as master (a newer epoch's master replaced it
    /// without a handover). A call that began under another count is never acknowledged: its
    /// writes were made by a master whose copy is about to be replaced.
    tenure: AtomicU64,
}

/// Why a call's writes are not acknowledged.
#[derive(Debug)]
pub enum Unacknowledged {
    /// This host was deposed while the call ran; the address of the master it follows now.
    Deposed(String),
    /// The replicator did not publish the call's generation within the backstop.
    Late,
}

impl From<Unacknowledged> for ApiError {
    fn from(u: Unacknowledged) -> ApiError {
        match u {
            // What a member answers: the caller retries on the master that replaced this one.
            Unacknowledged::Deposed(master) => ApiError::new(code::HOST_IS_SLAVE, [master]),
            Unacknowledged::Late => {
                ApiError::internal("the writes are not yet on every reachable pool member")
            }
        }
    }
}

/// What a joining host sends the master about itself.
#[derive(Serialize, Deserialize)]
struct HostInfo {
    host_ref: String,
    host: Record,
    metrics_ref: String,
    metrics: Record,
    cpus: Vec<(String, Record)>,
}

/// What the master answers a joining host.
#[derive(Serialize, Deserialize)]
struct JoinReply {
    secret: String,
    epoch: u64,
    dump: Dump,
}

impl Membership {
    /// Membership with this role, secret and epoch; `generation` is the database's current one.
    pub fn new(
        role: PoolRole,
        secret: String,
        epoch: u64,
        peers: Peers,
        generation: u64,
    ) -> Membership {
        let (tx, rx) = mpsc::unbounded_channel();
        Membership {
            role: RwLock::new(role),
            secret: RwLock::new(secret),
            epoch: AtomicU64::new(epoch),
            peers,
            jobs: tx,
            jobs_rx: Mutex::new(Some(rx)),
            replicated: watch::Sender::new(generation),
            unreachable: Mutex::new(HashSet::new()),
            misses: Mutex::new(HashMap::new()),
            write_gate: tokio::sync::RwLock::new(()),
            tenure: AtomicU64::new(0),
        }
    }

    /// This host's role.
    pub fn role(&self) -> PoolRole {
        self.role.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The pool secret.
    pub fn secret(&self) -> String {
        self.secret
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refuse a pool-internal call that does not carry the pool secret.
    pub fn check_secret(&self, given: &str) -> Result<(), ApiError> {
        let secret = self.secret();
        // Compare in time independent of where the first difference is.
        let same = given.len() == secret.len()
            && given
                .bytes()
                .zip(secret.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same && !secret.is_empty() {
            Ok(())
        } else {
            Err(ApiError::new("PERMISSION_DENIED", ["pool secret mismatch"]))
        }
    }

    /// A callback for [`crate::pool::Database::set_observer`] feeding the replicator.
    pub fn observer(&self) -> impl Fn(ChangeSet) + Send + Sync + 'static {
        let jobs = self.jobs.clone();
        move |c| {
            let _ = jobs.send(Job::Replicate(c));
        }
    }

    /// The tenure a call begins in: pass it to [`Membership::wait_replicated`].
    pub fn tenure(&self) -> u64 {
        self.tenure.load(Ordering::SeqCst)
    }

    /// Wait until every change up to `generation` has been replicated (masters only), for a
    /// call that began in `tenure`. An error means the caller must not acknowledge: this host
    /// was deposed meanwhile (its writes will be replaced by the new master's copy), or the
    /// replication did not happen within a generous backstop.
    pub async fn wait_replicated(
        &self,
        generation: u64,
        tenure: u64,
    ) -> Result<(), Unacknowledged> {
        // A deposition changes the role and ends the tenure together (`follow_master`), so a call
        // that sees the member role here sees the tenure it began in only if it began as a
        // member, and then it wrote nothing as master.
        let role = self.role();
        self.check_tenure(tenure)?;
        if role != PoolRole::Master {
            return Ok(());
        }
        let mut rx = self.replicated.subscribe();
        let wait = rx.wait_for(|g| *g >= generation);
        // The replicator always moves on (every push is bounded, and once deposed it publishes
        // without pushing), so this is only a backstop.
        let outcome = tokio::time::timeout(Duration::from_secs(60), wait).await;
        self.check_tenure(tenure)?;
        match outcome {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Unacknowledged::Late),
        }
    }

    fn check_tenure(&self, tenure: u64) -> Result<(), Unacknowledged> {
        if self.tenure() == tenure {
            return Ok(());
        }
        match self.role() {
            PoolRole::Member { master } => Err(Unacknowledged::Deposed(master)),
            // Deposed, then made master again (an emergency transition): still another tenure.
            PoolRole::Master => Err(Unacknowledged::Late),
        }
    }

    fn set_role(&self, role: PoolRole) {
        *self.role.write().unwrap_or_else(|e| e.into_inner()) = role;
    }

    /// Follow `master`. A master that becomes a member this way was replaced without a
    /// handover, so its tenure ends in the same step: no call that wrote as master can be
    /// acknowledged from now on.
    fn follow_master(&self, master: &str) {
        let mut role = self.role.write().unwrap_or_else(|e| e.into_inner());
        if *role == PoolRole::Master {
            self.tenure.fetch_add(1, Ordering::SeqCst);
        }
        *role = PoolRole::Member {
            master: master.to_string(),
        };
    }

    fn mark_reachable(&self, host: &str, reachable: bool) {
        let mut set = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        if reachable {
            set.remove(host);
        } else {
            set.insert(host.to_string());
        }
        self.misses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(host);
    }

    /// The master epoch this host has seen.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether the master can currently reach this member (always true on members).
    pub(crate) fn is_reachable(&self, host: &str) -> bool {
        !self
            .unreachable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(host)
    }
}

/// The other hosts of the pool, as `(ref, address)`.
fn members(server: &Server) -> Vec<(String, String)> {
    server
        .db
        .read()
        .all(HOST.name)
        .filter(|(r, _)| **r != server.this_host)
        .map(|(r, h)| (r.clone(), str_field(h, "address").to_string()))
        .collect()
}

/// Start the replicator and the liveness task. Members known at start are brought up to date
/// before they receive changes.
pub fn spawn(server: Arc<Server>) {
    let rx = server
        .membership
        .jobs_rx
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(rx) = rx else { return };
    // Writes made before replication started (bootstrap) are already everywhere they can be;
    // callers must not wait for them. Later writes are queued by the observer, in order.
    server
        .membership
        .replicated
        .send_replace(server.db.read().generation());
    if server.membership.role() == PoolRole::Master {
        rejoin_all(&server);
    }
    tokio::spawn(replicator(server.clone(), rx));
    tokio::spawn(liveness(server));
}

async fn replicator(server: Arc<Server>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Replicate(changes) => {
                for (host, address) in members(&server) {
                    // Once deposed this host pushes nothing more; the generations are still
                    // published, so waiting calls wake up and learn they were not acknowledged.
                    if server.membership.role() != PoolRole::Master {
                        break;
                    }
                    if server.membership.is_reachable(&host) {
                        if let Err(e) = push(&server, &address, &changes).await {
                            if !replaced(&server, &address, &e).await {
                                tracing::warn!(host = %address, error = %e, "member missed a change; marking it unreachable");
                                set_unreachable(&server, &host);
                            }
                        }
                    }
                }
                server
                    .membership
                    .replicated
                    .send_replace(changes.stamp.generation);
            }
            Job::Recover(host, done) => {
                // Queued while this host was master, run after it stepped down: only a master
                // brings members back.
                let master = server.membership.role() == PoolRole::Master;
                let _ = done.send(master && recover(&server, &host).await);
            }
            Job::Rejoin(host) => {
                let is_master = || server.membership.role() == PoolRole::Master;
                // A recovery that deposed this host leaves it a member: it records nothing.
                if is_master() && !recover(&server, &host).await && is_master() {
                    tracing::warn!(%host, "a member did not rejoin this master; marking it not live");
                    set_unreachable(&server, &host);
                }
            }
        }
    }
}

/// A master that just started or took over knows nothing of its members, yet its copy of the
/// database may say they are live. Each one is brought up to date (or marked not live and
/// unreachable) through the replication queue, ahead of any change made from now on, so no
/// write is acknowledged while a member marked live lacks it.
fn rejoin_all(server: &Server) {
    for (host, _) in members(server) {
        let _ = server.membership.jobs.send(Job::Rejoin(host));
    }
}

async fn push(server: &Server, address: &str, changes: &ChangeSet) -> Result<(), PeerError> {
    let m = &server.membership;
    let payload = serde_json::to_string(changes).expect("changes serialise");
    let epoch = m.epoch.load(Ordering::SeqCst) as i64;
    let params = vec![
        Value::str(m.secret()),
        Value::Int(epoch),
        Value::Str(payload),
    ];
    match m
        .peers
        .call(address, "pool.internal_replicate", params)
        .await
    {
        Err(PeerError::Api(e)) if e.code == REPLICA_GAP => send_dump(server, address).await,
        other => other.map(|_| ()),
    }
}

async fn send_dump(server: &Server, address: &str) -> Result<(), PeerError> {
    let m = &server.membership;
    let dump = serde_json::to_string(&server.db.dump()).expect("dump serialises");
    let epoch = m.epoch.load(Ordering::SeqCst) as i64;
    m.peers
        .send_database(address, &m.secret(), epoch, dump)
        .await
}

/// Bring an unreachable member back: it must answer, then it gets the whole database if its
/// generation differs, then it is reachable and live again. A member that answers from a
/// newer epoch than this master's deposes it instead (see [`depose`]).
async fn recover(server: &Arc<Server>, host: &str) -> bool {
    let Some(address) = server
        .db
        .read()
        .field(HOST.name, host, "address")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return false;
    };
    let m = &server.membership;
    let theirs = match m
        .peers
        .call(&address, "pool.internal_ping", vec![Value::str(m.secret())])
        .await
    {
        Ok(v) => {
            // The pool moved on while this master was away: it must not bring anyone back,
            // nor acknowledge anything, but follow the newer master.
            if let Some((epoch, master)) = replaced_by(server, &address, &v).await {
                depose(server, epoch, &master);
                return false;
            }
            stamp_of(&v)
        }
        Err(_) => return false,
    };
    // It may still follow an old master (after a handover it missed): this one is its master.
    let follow = vec![
        Value::str(m.secret()),
        Value::Int(m.epoch.load(Ordering::SeqCst) as i64),
        Value::str(own_address(server)),
    ];
    if let Err(e) = m
        .peers
        .call(&address, "pool.internal_set_master", follow)
        .await
    {
        if !replaced(server, &address, &e).await {
            tracing::warn!(host = %address, error = %e, "a member would not follow this master");
        }
        return false;
    }
    // Only a copy with the very same stamp holds the same state; any other (older, or written
    // by another master, even at the same generation) is replaced whole.
    if theirs != Some(server.db.read().stamp()) {
        if let Err(e) = send_dump(server, &address).await {
            if !replaced(server, &address, &e).await {
                tracing::warn!(host = %address, error = %e, "could not bring a member up to date");
            }
            return false;
        }
    }
    m.mark_reachable(host, true);
    set_live(server, host, true);
    // Record what the member says about itself: it may have restarted with other hardware.
    match m
        .peers
        .call(
            &address,
            "host.internal_facts",
            vec![Value::str(m.secret())],
        )
        .await
    {
        Ok(v) => {
            match serde_json::from_str::<crate::host::HostFacts>(v.as_str().unwrap_or_default()) {
                Ok(facts) => {
                    if let Err(e) = server
                        .db
                        .write(|t| super::hostfacts::apply(t, host, &facts))
                    {
                        tracing::warn!(host = %address, error = %e, "could not record a member's facts");
                    }
                }
                Err(e) => {
                    tracing::warn!(host = %address, error = %e, "a member sent unreadable facts")
                }
            }
        }
        Err(e) => tracing::warn!(host = %address, error = %e, "a member did not say what it is"),
    }

    // A member that fenced says why, once: the operator sees it in the message list.
    if let Ok(v) = m
        .peers
        .call(
            &address,
            "host.internal_ha_fence_report",
            vec![Value::str(m.secret())],
        )
        .await
    {
        let reason = v.as_str().unwrap_or_default();
        if !reason.is_empty() {
            let written = server.db.write(|t| {
                let h = t.get(HOST.name, host).cloned().unwrap_or_default();
                let (uuid, name) = (str_field(&h, "uuid"), str_field(&h, "name_label"));
                alerts::raise(
                    t,
                    "HA_HOST_WAS_FENCED",
                    alerts::priority::MINOR,
                    "Host",
                    uuid,
                    &format!("Server '{name}' was fenced by HA: {reason}"),
                );
                Ok(())
            });
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not record a member's fence");
            }
        }
    }
    tracing::info!(host = %address, "member is up to date and live");
    true
}

/// The master that replaced this one, if the host at `address` answered a ping (`answer`)
/// from a newer epoch than this host has seen: the master that host follows, or itself.
async fn replaced_by(server: &Server, address: &str, answer: &Value) -> Option<(u64, String)> {
    let epoch = answer.as_struct()?.get("pool_epoch")?.as_int()?;
    let epoch = u64::try_from(epoch).ok()?;
    let m = &server.membership;
    if epoch <= m.epoch() {
        return None;
    }
    let master = m
        .peers
        .call(
            address,
            "pool.internal_get_master",
            vec![Value::str(m.secret())],
        )
        .await
        .ok()?;
    let master = master.as_str().filter(|a| !a.is_empty()).unwrap_or(address);
    Some((epoch, master.to_string()))
}

/// After a member at `address` refused something (`error`): ask it whether it follows a newer
/// master, and if so step down. True if this host was deposed.
async fn replaced(server: &Arc<Server>, address: &str, error: &PeerError) -> bool {
    // Only a refusal can come from a newer epoch; a silent host says nothing either way.
    if !matches!(error, PeerError::Api(_)) {
        return false;
    }
    let m = &server.membership;
    let Ok(answer) = m
        .peers
        .call(address, "pool.internal_ping", vec![Value::str(m.secret())])
        .await
    else {
        return false;
    };
    match replaced_by(server, address, &answer).await {
        Some((epoch, master)) => {
            depose(server, epoch, &master);
            true
        }
        None => false,
    }
}

/// A host answered from a newer epoch: the pool moved on while this master was away (an
/// emergency transition, or an election it missed). Step down at once, as
/// `pool.internal_set_master` with that epoch would make it: the tenure ends with the role
/// change, before anything is recorded, so no call that wrote as master is acknowledged (those
/// in flight are answered `HOST_IS_SLAVE`, as are later ones); then ask the new master to
/// replace this host's copy with its own rather than wait for its next ping.
fn depose(server: &Arc<Server>, epoch: u64, master: &str) {
    let m = &server.membership;
    if m.role() != PoolRole::Master || epoch <= m.epoch() {
        return;
    }
    tracing::warn!(
        master,
        epoch,
        mine = m.epoch(),
        "the pool has a newer master: stepping down"
    );
    m.epoch.store(epoch, Ordering::SeqCst);
    m.follow_master(master);
    if let Err(e) = follow(server, master) {
        tracing::error!(error = %e, "could not record the new master durably");
    }
    m.unreachable
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    m.misses.lock().unwrap_or_else(|e| e.into_inner()).clear();
    server.ha.confirm_master();
    let (server, master) = (server.clone(), master.to_string());
    tokio::spawn(async move {
        let m = &server.membership;
        let ready = vec![Value::str(m.secret()), Value::str(server.this_host.clone())];
        if let Err(e) = m
            .peers
            .call(&master, "pool.internal_member_ready", ready)
            .await
        {
            // Its liveness pings bring this host back in any case.
            tracing::warn!(%master, error = %e, "the new master did not take this host back yet");
        }
    });
}

fn set_unreachable(server: &Server, host: &str) {
    // Not live first: while the record still says live, changes keep going to the member.
    set_live(server, host, false);
    server.membership.mark_reachable(host, false);
}

fn set_live(server: &Server, host: &str, live: bool) {
    let metrics = server
        .db
        .read()
        .field(HOST.name, host, "metrics")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(metrics) = metrics else { return };
    if server.db.read().field(HOST_METRICS.name, &metrics, "live") == Some(&Value::Bool(live)) {
        return;
    }
    let written = server.db.write(|t| {
        t.update(&HOST_METRICS, &metrics, |m| {
            m.insert("live".into(), Value::Bool(live));
            m.insert(
                "last_updated".into(),
                Value::DateTime(super::now_datetime()),
            );
        })?;
        let h = t.get(HOST.name, host).cloned().unwrap_or_default();
        let (uuid, name) = (str_field(&h, "uuid"), str_field(&h, "name_label"));
        if live {
            alerts::raise(
                t,
                "HOST_LIVE",
                alerts::priority::INFO,
                "Host",
                uuid,
                &format!("Server '{name}' is answering the pool master again"),
            );
        } else {
            alerts::raise(
                t,
                "HOST_NOT_LIVE",
                alerts::priority::WARNING,
                "Host",
                uuid,
                &format!("Server '{name}' is not answering the pool master"),
            );
        }
        Ok(())
    });
    match written {
        // A host that comes or goes moves the failover plan.
        Ok(()) => super::ha::failover::update_pool_status(server),
        Err(e) => tracing::error!(error = %e, "could not record a member's liveness"),
    }
}

async fn liveness(server: Arc<Server>) {
    let mut tick = tokio::time::interval(PING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Members being brought back right now: a recovery may take a while (a full copy), and the
    // next rounds must neither wait for it nor start a second one.
    let recovering: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        tick.tick().await;
        if server.membership.role() != PoolRole::Master {
            continue;
        }
        // Every member at once, each ping bounded on its own: a hung member costs its own
        // ping, not everyone's, so a round lasts at most one PING_TIMEOUT however many
        // members are silent.
        let mut pings = tokio::task::JoinSet::new();
        for (host, address) in members(&server) {
            let server = server.clone();
            pings.spawn(async move {
                let m = &server.membership;
                let answer = m
                    .peers
                    .call_within(
                        PING_TIMEOUT,
                        &address,
                        "pool.internal_ping",
                        vec![Value::str(m.secret())],
                    )
                    .await;
                (host, address, answer)
            });
        }
        while let Some(pinged) = pings.join_next().await {
            let Ok((host, address, answer)) = pinged else {
                continue;
            };
            if server.membership.role() != PoolRole::Master {
                break;
            }
            if !pinged_member(&server, &recovering, &host, &address, answer).await {
                break;
            }
        }
    }
}

/// Act on one liveness ping of `host` (at `address`). False if it deposed this master.
async fn pinged_member(
    server: &Arc<Server>,
    recovering: &Arc<Mutex<HashSet<String>>>,
    host: &str,
    address: &str,
    answer: Result<Value, PeerError>,
) -> bool {
    let m = &server.membership;
    if !m.is_reachable(host) {
        // The ping was asked outside the replication queue: a dead host would otherwise hold
        // every write up on each round. Only a host that answers is brought back, through the
        // queue so no change can overtake it, and without holding up the next rounds.
        if answer.is_ok() {
            let fresh = recovering
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(host.to_string());
            if fresh {
                let (server, recovering, host) =
                    (server.clone(), recovering.clone(), host.to_string());
                tokio::spawn(async move {
                    let (tx, rx) = oneshot::channel();
                    let _ = server.membership.jobs.send(Job::Recover(host.clone(), tx));
                    let _ = rx.await;
                    recovering
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&host);
                });
            }
        } else if count_miss(m, host, false) >= MISSES_BEFORE_NOT_LIVE {
            // A host already dead when this master started (or took over) was never
            // reachable here, but its record may still say live: the same timeout holds for
            // it. `set_live` writes (and tells) only a change.
            set_live(server, host, false);
        }
        return true;
    }
    if let Ok(v) = &answer {
        if let Some((epoch, master)) = replaced_by(server, address, v).await {
            depose(server, epoch, &master);
            return false;
        }
    }
    let misses = count_miss(m, host, answer.is_ok());
    if misses >= MISSES_BEFORE_NOT_LIVE {
        tracing::warn!(host = %address, misses, "member stopped answering; marking it not live");
        set_unreachable(server, host);
    }
    true
}

/// Count one ping of `host`: the pings it has missed in a row so far.
fn count_miss(m: &Membership, host: &str, answered: bool) -> u32 {
    let mut misses = m.misses.lock().unwrap_or_else(|e| e.into_inner());
    let n = misses.entry(host.to_string()).or_insert(0);
    *n = if answered { 0 } else { n.saturating_add(1) };
    *n
}

// ---- the member's side ----

fn check_epoch(server: &Server, epoch: i64) -> Result<(), ApiError> {
    let mine = server.membership.epoch.load(Ordering::SeqCst) as i64;
    if epoch < mine {
        return Err(ApiError::new(
            code::OPERATION_NOT_ALLOWED,
            [format!("stale epoch {epoch} (this host has seen {mine})")],
        ));
    }
    if epoch > mine {
        server
            .membership
            .epoch
            .store(epoch as u64, Ordering::SeqCst);
        let master = match server.membership.role() {
            PoolRole::Master => None,
            PoolRole::Member { master } => Some(master),
        };
        save_role(server, master)?;
    }
    Ok(())
}

fn not_a_member(server: &Server) -> Result<(), ApiError> {
    match server.membership.role() {
        PoolRole::Member { .. } => Ok(()),
        PoolRole::Master => Err(ApiError::new(
            code::OPERATION_NOT_ALLOWED,
            ["this host is a master"],
        )),
    }
}

/// `pool.internal_replicate` on a member.
pub fn apply_replica(
    server: &Server,
    secret: &str,
    epoch: i64,
    changes: &str,
) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    not_a_member(server)?;
    check_epoch(server, epoch)?;
    let changes: ChangeSet = serde_json::from_str(changes)
        .map_err(|e| ApiError::invalid_value("changes", &e.to_string()))?;
    match server.db.apply_replica(&changes) {
        Ok(()) => Ok(Value::void()),
        Err(ReplicaError::Gap { have, .. }) => Err(ApiError::new(REPLICA_GAP, [have.to_string()])),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// A member receiving the whole database from its master (see [`super::peer::DATABASE_PATH`]).
pub fn restore(server: &Server, secret: &str, epoch: i64, dump: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    not_a_member(server)?;
    check_epoch(server, epoch)?;
    let dump: Dump =
        serde_json::from_str(dump).map_err(|e| ApiError::invalid_value("dump", &e.to_string()))?;
    server.db.restore(&dump).map_err(ApiError::internal)?;
    Ok(Value::void())
}

/// `pool.internal_ping`: the stamp of this host's copy of the database, with the newest epoch
/// this host has seen (`pool_epoch`), so that a master learns from any host it pings that the
/// pool has moved on without it.
pub fn ping(server: &Server, secret: &str) -> Result<Value, ApiError> {
    let m = &server.membership;
    m.check_secret(secret)?;
    let mut answer = stamp_value(server.db.read().stamp());
    if let Value::Struct(fields) = &mut answer {
        fields.insert("pool_epoch".into(), Value::Int(m.epoch() as i64));
    }
    Ok(answer)
}

/// `pool.internal_get_master`: the address of the master this host follows, empty on a master.
pub fn get_master(server: &Server, secret: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    Ok(Value::Str(match server.membership.role() {
        PoolRole::Master => String::new(),
        PoolRole::Member { master } => master,
    }))
}

/// A stamp on the wire: `{"epoch": E, "generation": G}`.
pub fn stamp_value(stamp: Stamp) -> Value {
    Value::Struct(
        [
            ("epoch".to_string(), Value::Int(stamp.epoch as i64)),
            (
                "generation".to_string(),
                Value::Int(stamp.generation as i64),
            ),
        ]
        .into_iter()
        .collect(),
    )
}

/// The stamp in a [`stamp_value`] answer.
fn stamp_of(v: &Value) -> Option<Stamp> {
    let m = v.as_struct()?;
    let int = |k: &str| u64::try_from(m.get(k)?.as_int()?).ok();
    Some(Stamp {
        epoch: int("epoch")?,
        generation: int("generation")?,
    })
}

/// `pool.internal_dump`: this host's whole copy of the database (for a new master that finds
/// its own copy older than this one).
pub fn dump(server: &Server, secret: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    Ok(Value::Str(
        serde_json::to_string(&server.db.dump()).expect("dump serialises"),
    ))
}

/// Before taking over as master: if a member at one of `addresses` holds a newer copy of the
/// database than this host (it saw writes this host missed while unreachable), adopt it, so no
/// write the old master acknowledged is lost. Copies order by stamp, epoch first: the copy of
/// the latest master's history wins over a longer one of an earlier master. Unreachable members
/// are skipped: every acknowledged write reached every member the old master could reach.
///
/// Returns the addresses that answered.
pub async fn adopt_freshest_copy(server: &Server, addresses: &[String]) -> Vec<String> {
    let m = &server.membership;
    let mine = server.db.read().stamp();
    let mut best: Option<(Stamp, &String)> = None;
    let mut answered = Vec::new();
    for address in addresses {
        if let Ok(v) = m
            .peers
            .call(address, "pool.internal_ping", vec![Value::str(m.secret())])
            .await
        {
            answered.push(address.clone());
            let Some(theirs) = stamp_of(&v) else { continue };
            if theirs > best.map_or(mine, |(s, _)| s) {
                best = Some((theirs, address));
            }
        }
    }
    let Some((stamp, address)) = best else {
        return answered;
    };
    let fetched = m
        .peers
        .call_for_copy(address, "pool.internal_dump", vec![Value::str(m.secret())])
        .await;
    let dump = fetched
        .ok()
        .and_then(|v| serde_json::from_str::<Dump>(v.as_str()?).ok());
    match dump {
        Some(d) => match server.db.restore(&d) {
            Ok(()) => tracing::warn!(
                from = %address, %stamp, %mine,
                "took a member's newer copy of the database before becoming master"
            ),
            Err(e) => tracing::error!(error = %e, "could not adopt a newer database copy"),
        },
        None => tracing::error!(from = %address, "could not fetch a newer database copy"),
    }
    answered
}

// ---- joining ----

/// `pool.join` on the joining host: ask the master to add us, load the pool's database, and
/// become a member.
pub async fn join(
    server: &Arc<Server>,
    master: &str,
    user: &str,
    password: &str,
    force: bool,
) -> Result<Value, ApiError> {
    if server.membership.role() != PoolRole::Master || !members(server).is_empty() {
        return Err(ApiError::new::<String>(
            "JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS",
            [],
        ));
    }
    let info = {
        let t = server.db.read();
        if super::ha_enabled(&t) {
            return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
        }
        if t.all(VM.name)
            .any(|(_, v)| str_field(v, "power_state") != "Halted")
        {
            return Err(ApiError::new::<String>(
                "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS",
                [],
            ));
        }
        let host = t
            .get(HOST.name, &server.this_host)
            .cloned()
            .ok_or_else(|| ApiError::internal("this host is missing"))?;
        let metrics_ref = str_field(&host, "metrics").to_string();
        let metrics = t
            .get(HOST_METRICS.name, &metrics_ref)
            .cloned()
            .unwrap_or_default();
        let cpus = host["host_CPUs"]
            .as_array()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.as_str())
            .filter_map(|c| Some((c.to_string(), t.get(HOST_CPU.name, c)?.clone())))
            .collect();
        HostInfo {
            host_ref: server.this_host.clone(),
            host,
            metrics_ref,
            metrics,
            cpus,
        }
    };
    let peers = &server.membership.peers;
    let connection_failed = |master: &str, e: PeerError| match e {
        PeerError::Api(e) => e,
        PeerError::Unreachable(why) => {
            tracing::warn!(master, %why, "cannot reach the pool master");
            ApiError::new::<String>("JOINING_HOST_CONNECTION_FAILED", [])
        }
    };
    let info = serde_json::to_string(&info).expect("host info serialises");
    // The host asked may have handed the master role over (or been replaced) before it could
    // add us; it then answers as a member, naming its master, and we ask there.
    let mut master = master.to_string();
    let mut hops = 0;
    let reply = loop {
        match ask_to_join(peers, &master, user, password, &info, force).await {
            Ok(reply) => break reply,
            Err(e) => match redirected(&e) {
                Some(next) if hops < MAX_MASTER_HOPS => {
                    tracing::info!(from = %master, to = %next, "the host asked is not the master; asking its master");
                    master = next;
                    hops += 1;
                }
                _ => return Err(connection_failed(&master, e)),
            },
        }
    };

    // Become a member: the secret and the database first, the inventory last, so a crash in
    // between restarts this host as the master of its old pool rather than a half-member.
    if let Some(dir) = &server.config.state_dir {
        inventory::write_secret(dir, &reply.secret).map_err(ApiError::internal)?;
    }
    server.db.restore(&reply.dump).map_err(ApiError::internal)?;
    // Never lower the epoch: a master that took over meanwhile may already have told us its own.
    server
        .membership
        .epoch
        .fetch_max(reply.epoch, Ordering::SeqCst);
    *server
        .membership
        .secret
        .write()
        .unwrap_or_else(|e| e.into_inner()) = reply.secret.clone();
    server.db.set_write_epoch(MEMBER_WRITE_EPOCH);
    {
        // With the pool secret known, a master that took over since we were added may bring
        // us back at once (it has our records) and make us follow it: keep following it.
        let mut role = server
            .membership
            .role
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let PoolRole::Member { master: newer } = &*role {
            master = newer.clone();
        }
        save_role(server, Some(master.clone()))?;
        *role = PoolRole::Member {
            master: master.clone(),
        };
    }
    tracing::info!(%master, "joined the pool");
    // Ask the master to bring us up to date with anything written since the dump. If it has
    // handed the role over since it added us, the new master has our records (the handover
    // waited for the addition to be replicated): follow it and ask it instead.
    loop {
        let ready = vec![
            Value::Str(reply.secret.clone()),
            Value::str(server.this_host.clone()),
        ];
        match peers
            .call(&master, "pool.internal_member_ready", ready)
            .await
        {
            Ok(_) => return Ok(Value::void()),
            Err(e) => match redirected(&e) {
                Some(next) if hops < MAX_MASTER_HOPS => {
                    tracing::info!(from = %master, to = %next, "the pool has a new master; following it");
                    follow(server, &next)?;
                    master = next;
                    hops += 1;
                }
                _ => return Err(connection_failed(&master, e)),
            },
        }
    }
}

/// How many times a joining host follows a `HOST_IS_SLAVE` answer to the host it names: one
/// handover during the join needs one; more means the pool keeps changing masters, and the
/// join gives up rather than chase it.
const MAX_MASTER_HOPS: usize = 3;

/// The master a `HOST_IS_SLAVE` answer names.
fn redirected(e: &PeerError) -> Option<String> {
    match e {
        PeerError::Api(e) if e.code == code::HOST_IS_SLAVE => {
            e.params.first().filter(|m| !m.is_empty()).cloned()
        }
        _ => None,
    }
}

/// Log in to the master at `master` and ask it to add this host (`info`): its answer holds
/// the pool's secret, epoch and database.
async fn ask_to_join(
    peers: &Peers,
    master: &str,
    user: &str,
    password: &str,
    info: &str,
    force: bool,
) -> Result<JoinReply, PeerError> {
    let session = peers
        .call(
            master,
            "session.login_with_password",
            vec![Value::str(user), Value::str(password)],
        )
        .await?;
    // The reply holds the whole database.
    let reply = peers
        .call_for_copy(
            master,
            "pool.internal_add_host",
            vec![session.clone(), Value::str(info), Value::Bool(force)],
        )
        .await;
    let _ = peers.call(master, "session.logout", vec![session]).await;
    serde_json::from_str(reply?.as_str().unwrap_or_default())
        .map_err(|e| PeerError::Api(ApiError::internal(format!("bad join reply: {e}"))))
}

/// `pool.internal_add_host` on the master: check the joining host and add it.
pub fn add_host(server: &Server, info: &str, force: bool) -> Result<Value, ApiError> {
    as_master(server)?;
    let info: HostInfo = serde_json::from_str(info)
        .map_err(|e| ApiError::invalid_value("host_info", &e.to_string()))?;
    {
        let t = server.db.read();
        if super::ha_enabled(&t) {
            return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
        }
        let uuid = str_field(&info.host, "uuid");
        if t.by_uuid(uuid).is_some() || t.get(HOST.name, &info.host_ref).is_some() {
            return Err(ApiError::new(
                code::OPERATION_NOT_ALLOWED,
                [format!("host {uuid} is already in the pool")],
            ));
        }
        if !force {
            let master = t
                .get(HOST.name, &server.this_host)
                .ok_or_else(|| ApiError::internal("master host missing"))?;
            cpu_compatible(master.get("cpu_info"), info.host.get("cpu_info"))?;
        }
    }
    // The replicator must not push to the new member before it has loaded the pool's state.
    server.membership.mark_reachable(&info.host_ref, false);
    server.db.write(|t| {
        t.put(&HOST_METRICS, &info.metrics_ref, info.metrics.clone());
        let mut host = info.host.clone();
        host.insert("resident_VMs".into(), Value::Array(Vec::new()));
        t.put(&HOST, &info.host_ref, host);
        for (r, cpu) in &info.cpus {
            t.put(&HOST_CPU, r, cpu.clone());
        }
        let (uuid, name) = (
            str_field(&info.host, "uuid"),
            str_field(&info.host, "name_label"),
        );
        alerts::raise(
            t,
            "HOST_JOINED",
            alerts::priority::INFO,
            "Host",
            uuid,
            &format!("Server '{name}' has joined the pool"),
        );
        Ok(())
    })?;
    let reply = JoinReply {
        secret: server.membership.secret(),
        epoch: server.membership.epoch.load(Ordering::SeqCst),
        dump: server.db.dump(),
    };
    tracing::info!(
        host = str_field(&info.host, "address"),
        "a host joins the pool"
    );
    Ok(Value::Str(
        serde_json::to_string(&reply).expect("reply serialises"),
    ))
}

/// Refuse a call only a master may answer, as a member answers: with the master to ask.
/// (Dispatch refuses them on members already; this keeps each such call safe on its own.)
fn as_master(server: &Server) -> Result<(), ApiError> {
    match server.membership.role() {
        PoolRole::Master => Ok(()),
        PoolRole::Member { master } => Err(ApiError::new(code::HOST_IS_SLAVE, [master])),
    }
}

/// `pool.internal_member_ready` on the master.
pub async fn member_ready(server: &Server, secret: &str, host: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    // A host that stepped down must not bring anyone back: it would tell the member to follow
    // it, and write what no master will keep.
    as_master(server)?;
    let (tx, rx) = oneshot::channel();
    let _ = server
        .membership
        .jobs
        .send(Job::Recover(host.to_string(), tx));
    match rx.await {
        Ok(true) => Ok(Value::void()),
        _ => Err(ApiError::new::<String>(
            "JOINING_HOST_CONNECTION_FAILED",
            [],
        )),
    }
}

/// xapi's rule of thumb for pooling: the same CPU vendor, and the joining host has every
/// feature flag the pool's master has (so a VM moved onto it finds what it was started with).
fn cpu_compatible(pool: Option<&Value>, joining: Option<&Value>) -> Result<(), ApiError> {
    let get = |v: Option<&Value>, k: &str| {
        v.and_then(Value::as_struct)
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (pool_vendor, joining_vendor) = (get(pool, "vendor"), get(joining, "vendor"));
    if pool_vendor != joining_vendor {
        return Err(ApiError::new(
            "HOSTS_NOT_HOMOGENEOUS",
            [format!("CPU vendor of the joining host ({joining_vendor}) differs from the pool's ({pool_vendor})")],
        ));
    }
    let have: HashSet<String> = get(joining, "flags")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let missing: Vec<String> = get(pool, "flags")
        .split_whitespace()
        .filter(|f| !have.contains(*f))
        .map(str::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            "HOSTS_NOT_HOMOGENEOUS",
            [format!(
                "the joining host lacks CPU features of the pool: {}",
                missing.join(" ")
            )],
        ));
    }
    Ok(())
}

// ---- leaving ----

/// Delete a host's records (host, metrics, CPUs), with a message `event` about it; VMs
/// recorded on it are halted.
fn remove_host_records(
    server: &Server,
    host: &str,
    event: &str,
    body: &str,
) -> Result<(), ApiError> {
    server.db.write(|t| {
        let rec = t
            .get(HOST.name, host)
            .cloned()
            .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))?;
        let (uuid, name) = (str_field(&rec, "uuid"), str_field(&rec, "name_label"));
        alerts::raise(
            t,
            event,
            alerts::priority::MINOR,
            "Host",
            uuid,
            &body.replace("{name}", name),
        );
        let vms: Vec<String> = t
            .base()
            .all(VM.name)
            .filter(|(_, v)| str_field(v, "resident_on") == host)
            .map(|(r, _)| r.clone())
            .collect();
        for vm in vms {
            t.update(&VM, &vm, |v| {
                v.insert("power_state".into(), Value::str("Halted"));
                v.insert("resident_on".into(), Value::str(crate::model::NULL_REF));
            })?;
        }
        for cpu in rec["host_CPUs"].as_array().unwrap_or_default() {
            if let Some(c) = cpu.as_str().filter(|c| t.get(HOST_CPU.name, c).is_some()) {
                t.delete(&HOST_CPU, c)?;
            }
        }
        let metrics = str_field(&rec, "metrics");
        if t.get(HOST_METRICS.name, metrics).is_some() {
            t.delete(&HOST_METRICS, metrics)?;
        }
        t.delete(&HOST, host)
    })?;
    server.membership.mark_reachable(host, true);
    Ok(())
}

/// `host.destroy` (xe host-forget): drop a dead member from the pool.
pub fn forget_host(server: &Server, host: &str) -> Result<Value, ApiError> {
    if host == server.this_host {
        return Err(ApiError::new("HOST_CANNOT_DESTROY_SELF", [host]));
    }
    {
        let t = server.db.read();
        let rec = t
            .get(HOST.name, host)
            .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))?;
        if t.field(HOST_METRICS.name, str_field(rec, "metrics"), "live") == Some(&Value::Bool(true))
        {
            return Err(ApiError::new("HOST_IS_LIVE", [host]));
        }
    }
    remove_host_records(
        server,
        host,
        "HOST_FORGOTTEN",
        "Server '{name}' was forgotten by the pool",
    )?;
    Ok(Value::void())
}

/// `pool.eject`: tell a member to leave (it forgets the pool and restarts alone), then forget it.
pub async fn eject(server: &Server, host: &str) -> Result<Value, ApiError> {
    let address = {
        let t = server.db.read();
        if super::ha_enabled(&t) {
            return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
        }
        if host == server.this_host {
            return Err(ApiError::new("HOST_CANNOT_DESTROY_SELF", [host]));
        }
        let rec = t
            .get(HOST.name, host)
            .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))?;
        if let Some((vm, _)) = t.all(VM.name).find(|(_, v)| {
            str_field(v, "resident_on") == host && str_field(v, "power_state") != "Halted"
        }) {
            return Err(ApiError::new("HOST_IN_USE", [host, "VM", vm.as_str()]));
        }
        str_field(rec, "address").to_string()
    };
    let m = &server.membership;
    m.peers
        .call(
            &address,
            "pool.internal_eject",
            vec![Value::str(m.secret())],
        )
        .await
        .map_err(|e| match e {
            PeerError::Api(e) => e,
            PeerError::Unreachable(_) => ApiError::new("HOST_OFFLINE", [host]),
        })?;
    remove_host_records(
        server,
        host,
        "HOST_EJECTED",
        "Server '{name}' was ejected from the pool",
    )?;
    tracing::info!(host = %address, "host ejected from the pool");
    Ok(Value::void())
}

/// `pool.internal_eject` on the member: keep this host's identity and root password, forget
/// the pool, and exit so the service manager restarts the daemon as a new one-host pool (xapi
/// reboots an ejected host).
pub fn ejected(server: &Server, secret: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    not_a_member(server)?;
    let Some(dir) = server.config.state_dir.clone() else {
        return Err(ApiError::internal("no state directory to reset"));
    };
    let uuid = server
        .db
        .read()
        .field(HOST.name, &server.this_host, "uuid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(root) = server.db.read().credential("root") {
        inventory::write_kept_root_credential(&dir, root).map_err(ApiError::internal)?;
    }
    inventory::write(
        &dir,
        &inventory::Inventory {
            installation_uuid: uuid,
            master_address: None,
            epoch: 1,
        },
    )
    .map_err(ApiError::internal)?;
    for stale in ["pool.db", "pool-secret"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    tracing::warn!("ejected from the pool: restarting as a new one-host pool");
    std::thread::spawn(|| {
        // Let the answer reach the master first.
        std::thread::sleep(Duration::from_millis(300));
        std::process::exit(0);
    });
    Ok(Value::void())
}

// ---- master handover ----

/// This host's own address, as the pool knows it.
fn own_address(server: &Server) -> String {
    server
        .db
        .read()
        .field(HOST.name, &server.this_host, "address")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn save_role(server: &Server, master_address: Option<String>) -> Result<(), ApiError> {
    let Some(dir) = &server.config.state_dir else {
        return Ok(());
    };
    let uuid = server
        .db
        .read()
        .field(HOST.name, &server.this_host, "uuid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    inventory::write(
        dir,
        &inventory::Inventory {
            installation_uuid: uuid,
            master_address,
            epoch: server.membership.epoch.load(Ordering::SeqCst),
        },
    )
    .map_err(ApiError::internal)
}

/// `pool.designate_new_master` on the master: an orderly handover to a live member.
pub async fn designate(server: &Server, target: &str) -> Result<Value, ApiError> {
    if server.membership.role() != PoolRole::Master {
        return Err(ApiError::new(
            code::OPERATION_NOT_ALLOWED,
            ["this host is not the pool master"],
        ));
    }
    if target == server.this_host {
        return Ok(Value::void());
    }
    let address = {
        let t = server.db.read();
        if super::ha_enabled(&t) {
            return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
        }
        let h = t
            .get(HOST.name, target)
            .ok_or_else(|| ApiError::handle_invalid(HOST.name, target))?;
        str_field(h, "address").to_string()
    };
    if !server.membership.is_reachable(target) {
        return Err(ApiError::new("HOST_OFFLINE", [target]));
    }
    let m = &server.membership;
    // No ordinary call runs while we hold this: every earlier one has been replicated.
    let _gate = m.write_gate.write().await;
    let stamp = server.db.read().stamp();
    m.wait_replicated(stamp.generation, m.tenure()).await?;
    let offline = |_| ApiError::new("HOST_OFFLINE", [target]);
    let theirs = m
        .peers
        .call(&address, "pool.internal_ping", vec![Value::str(m.secret())])
        .await
        .map_err(offline)?;
    if stamp_of(&theirs) != Some(stamp) {
        send_dump(server, &address).await.map_err(offline)?;
    }
    let epoch = m.epoch.load(Ordering::SeqCst) + 1;
    m.peers
        .call(
            &address,
            "pool.internal_become_master",
            vec![Value::str(m.secret()), Value::Int(epoch as i64)],
        )
        .await
        .map_err(|e| match e {
            PeerError::Api(e) => e,
            PeerError::Unreachable(_) => ApiError::new("HOST_OFFLINE", [target]),
        })?;
    // From here the target is master. Tell the other members (those we cannot reach learn it
    // when the new master brings them back), then step down.
    for (host, other) in members(server) {
        if host != target && m.is_reachable(&host) {
            let params = vec![
                Value::str(m.secret()),
                Value::Int(epoch as i64),
                Value::str(address.clone()),
            ];
            if let Err(e) = m
                .peers
                .call(&other, "pool.internal_set_master", params)
                .await
            {
                tracing::warn!(host = %other, error = %e, "could not tell a member about the new master");
            }
        }
    }
    step_down(server, &address, epoch)?;
    tracing::info!(new_master = %address, epoch, "handed the master role over");
    Ok(Value::void())
}

fn step_down(server: &Server, master: &str, epoch: u64) -> Result<(), ApiError> {
    let m = &server.membership;
    m.epoch.store(epoch, Ordering::SeqCst);
    save_role(server, Some(master.to_string()))?;
    server.db.set_write_epoch(MEMBER_WRITE_EPOCH);
    // No tenure ends: the handover holds the write gate, so no call is in flight.
    m.set_role(PoolRole::Member {
        master: master.to_string(),
    });
    m.unreachable
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    Ok(())
}

/// `pool.internal_become_master` on the designated member.
pub fn become_master(server: &Server, secret: &str, epoch: i64) -> Result<Value, ApiError> {
    let m = &server.membership;
    m.check_secret(secret)?;
    not_a_member(server)?;
    check_epoch(server, epoch)?;
    save_role(server, None)?;
    m.replicated.send_replace(server.db.read().generation());
    // Every write from here on carries the new epoch, starting with the one below, so no copy
    // written by an earlier master can be taken for this one's state.
    server.db.set_write_epoch(epoch as u64);
    m.set_role(PoolRole::Master);
    // Every other host is brought up to date (and told who the master is) before it gets changes.
    rejoin_all(server);
    let this = server.this_host.clone();
    server.db.write(|t| {
        let pool = t
            .base()
            .all(POOL.name)
            .next()
            .map(|(r, _)| r.clone())
            .ok_or_else(|| ApiError::internal("no pool"))?;
        t.set(&POOL, &pool, "master", Value::str(this.clone()))?;
        let h = t.get(HOST.name, &this).cloned().unwrap_or_default();
        let (uuid, name) = (str_field(&h, "uuid"), str_field(&h, "name_label"));
        alerts::raise(
            t,
            "POOL_MASTER_TRANSITION",
            alerts::priority::MINOR,
            "Host",
            uuid,
            &format!("Server '{name}' is now the pool master"),
        );
        Ok(())
    })?;
    tracing::info!(epoch, "this host is now the pool master");
    Ok(Value::void())
}

/// `pool.internal_set_master` on a member: follow the new master.
pub fn set_master(
    server: &Server,
    secret: &str,
    epoch: i64,
    address: &str,
) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    // A master steps down only for a newer epoch: a master elected while this one was away
    // (HA failover) holds a larger fencing token than anything this host has seen.
    if server.membership.role() == PoolRole::Master
        && epoch <= server.membership.epoch.load(Ordering::SeqCst) as i64
    {
        not_a_member(server)?;
    }
    // One epoch, one master: a second master claiming an epoch we already follow someone
    // under (two members both transitioned in an emergency) is refused, not followed.
    if let PoolRole::Member { master } = server.membership.role() {
        if master != address && epoch == server.membership.epoch.load(Ordering::SeqCst) as i64 {
            return Err(ApiError::new(
                code::OPERATION_NOT_ALLOWED,
                [format!("epoch {epoch} already has a master ({master})")],
            ));
        }
    }
    check_epoch(server, epoch)?;
    if server.membership.role()
        != (PoolRole::Member {
            master: address.to_string(),
        })
    {
        follow(server, address)?;
        tracing::info!(master = address, epoch, "following a new pool master");
    }
    server.ha.confirm_master();
    Ok(Value::void())
}

/// Become (or stay) a member of the master at `address`, durably.
fn follow(server: &Server, address: &str) -> Result<(), ApiError> {
    save_role(server, Some(address.to_string()))?;
    server.db.set_write_epoch(MEMBER_WRITE_EPOCH);
    server.membership.follow_master(address);
    Ok(())
}

// ---- emergency mode ----

/// `pool.emergency_transition_to_master`, run locally on a member whose master is gone: it
/// becomes master under a new epoch, starting from the newest copy of the database any member
/// it can reach holds. Members that answer are brought over by the usual recovery (or at once
/// by `pool.recover_slaves`).
pub async fn emergency_transition_to_master(server: &Server) -> Result<Value, ApiError> {
    if server.membership.role() == PoolRole::Master {
        return Ok(Value::void());
    }
    let others = members(server);
    let addresses: Vec<String> = others.iter().map(|(_, a)| a.clone()).collect();
    let answered = adopt_freshest_copy(server, &addresses).await;
    // Every write the old master acknowledged is on every host it recorded live, so taking
    // the freshest copy among those that answered loses none of them only if one of those
    // was recorded live. This host's own record proves nothing: a host recorded not live
    // never received that record, its copy still says live. (The freshest copy found stands
    // in for the old master's last record, which no host may hold: a warning is possible
    // even when nothing is missing, but without one a copy reached a live-recorded host.)
    let vouched = {
        let t = server.db.read();
        others.iter().any(|(host, address)| {
            answered.contains(address)
                && t.field(HOST.name, host, "metrics")
                    .and_then(Value::as_str)
                    .and_then(|metrics| t.field(HOST_METRICS.name, metrics, "live"))
                    == Some(&Value::Bool(true))
        })
    };
    let stamp = server.db.read().stamp();
    let epoch = server.membership.epoch.load(Ordering::SeqCst) + 1;
    tracing::warn!(epoch, "emergency transition to master");
    become_master(server, &server.membership.secret(), epoch as i64)?;
    if !vouched {
        warn_unvouched_transition(server, stamp);
    }
    Ok(Value::void())
}

/// An emergency transition that reached no host the old master recorded live: say loudly,
/// in the log and as a pool message, that writes acknowledged after `stamp` (the copy this
/// host became master with) may be missing.
fn warn_unvouched_transition(server: &Server, stamp: Stamp) {
    tracing::warn!(
        %stamp,
        "emergency transition reached no member the old master recorded live: writes it \
         acknowledged after this copy's stamp may be missing from the pool"
    );
    let written = server.db.write(|t| {
        let pool = t
            .base()
            .all(POOL.name)
            .next()
            .map(|(_, p)| str_field(p, "uuid").to_string())
            .unwrap_or_default();
        let h = t
            .get(HOST.name, &server.this_host)
            .cloned()
            .unwrap_or_default();
        let name = str_field(&h, "name_label");
        alerts::raise(
            t,
            "POOL_EMERGENCY_TRANSITION_UNVERIFIED",
            alerts::priority::WARNING,
            "Pool",
            &pool,
            &format!(
                "Server '{name}' became the pool master in an emergency without reaching any \
                 member the old master recorded live: writes the old master acknowledged after \
                 this copy of the database (epoch {}, generation {}) may be missing",
                stamp.epoch, stamp.generation
            ),
        );
        Ok(())
    });
    if let Err(e) = written {
        tracing::error!(error = %e, "could not record the unverified transition");
    }
}

/// `pool.emergency_reset_master`, run locally: follow the master at `address` from now on.
pub fn emergency_reset_master(server: &Server, address: &str) -> Result<Value, ApiError> {
    if address.trim().is_empty() || address == own_address(server) {
        return Err(ApiError::invalid_value("master_address", address));
    }
    follow(server, address)?;
    tracing::warn!(
        master = address,
        "emergency reset: following another master"
    );
    Ok(Value::void())
}

/// `pool.recover_slaves` on the master: tell every other host who the master is now, whether
/// or not it answered lately. Returns the hosts that accepted.
pub async fn recover_slaves(server: &Server) -> Result<Value, ApiError> {
    if server.membership.role() != PoolRole::Master {
        return Err(ApiError::new(
            code::OPERATION_NOT_ALLOWED,
            ["this host is not the pool master"],
        ));
    }
    let m = &server.membership;
    let mut recovered = Vec::new();
    for (host, address) in members(server) {
        let params = vec![
            Value::str(m.secret()),
            Value::Int(m.epoch.load(Ordering::SeqCst) as i64),
            Value::str(own_address(server)),
        ];
        match m
            .peers
            .call(&address, "pool.internal_set_master", params)
            .await
        {
            Ok(_) => {
                // It gets the database (and is marked live) through the recovery path.
                let _ = m.jobs.send(Job::Rejoin(host.clone()));
                recovered.push(Value::str(host));
            }
            Err(e) => tracing::warn!(host = %address, error = %e, "could not recover a member"),
        }
    }
    Ok(Value::Array(recovered))
}

/// xapi's emergency mode, as a question: a member whose master does not answer.
pub async fn in_emergency_mode(server: &Server) -> bool {
    let PoolRole::Member { master } = server.membership.role() else {
        return false;
    };
    let m = &server.membership;
    m.peers
        .call(&master, "pool.internal_ping", vec![Value::str(m.secret())])
        .await
        .is_err()
}

// ---- host power ----

/// `host.shutdown` / `host.reboot` of a disabled host with no running VMs: its daemon stops,
/// or restarts in place (there is no hardware to power off here).
pub async fn host_power(server: &Server, host: &str, reboot: bool) -> Result<Value, ApiError> {
    let address = {
        let t = server.db.read();
        let h = t
            .get(HOST.name, host)
            .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))?;
        if h.get("enabled") != Some(&Value::Bool(false)) {
            return Err(ApiError::new::<String>("HOST_NOT_DISABLED", []));
        }
        if let Some((vm, _)) = t.all(VM.name).find(|(_, v)| {
            str_field(v, "resident_on") == host && str_field(v, "power_state") != "Halted"
        }) {
            return Err(ApiError::new("HOST_IN_USE", [host, "VM", vm.as_str()]));
        }
        str_field(h, "address").to_string()
    };
    if host == server.this_host {
        super::ha::leave(server).await?;
        power_off_self(reboot);
        return Ok(Value::void());
    }
    let m = &server.membership;
    m.peers
        .call(
            &address,
            "host.internal_power",
            vec![Value::str(m.secret()), Value::Bool(reboot)],
        )
        .await
        .map_err(|e| match e {
            PeerError::Api(e) => e,
            PeerError::Unreachable(_) => ApiError::new("HOST_OFFLINE", [host]),
        })?;
    Ok(Value::void())
}

/// `host.internal_power` on the host itself.
pub async fn internal_power(
    server: &Server,
    secret: &str,
    reboot: bool,
) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    // With HA armed, leave the liveset first, or the others would count this as a failure.
    super::ha::leave(server).await?;
    power_off_self(reboot);
    Ok(Value::void())
}

/// Stop this daemon shortly (so the answer goes out first); to reboot, run it again in place
/// with the same arguments. Everything durable is already on disk, and every descriptor is
/// close-on-exec, so the new process finds the database unlocked.
fn power_off_self(reboot: bool) {
    tracing::warn!(reboot, "the host is going down on request");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        if reboot {
            use std::os::unix::process::CommandExt;
            let args: Vec<String> = std::env::args().skip(1).collect();
            match std::env::current_exe() {
                Ok(exe) => {
                    let e = std::process::Command::new(exe).args(args).exec();
                    tracing::error!(error = %e, "could not restart; stopping instead");
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not find this program; stopping instead")
                }
            }
        }
        std::process::exit(0);
    });
}
