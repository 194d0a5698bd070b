//! From a method name and wire values to a result: look the message up in the model's
//! registry, check the parameter count and the session exactly as xapi's generated server
//! does (count first, then session, then the caller's role), bring each parameter to its
//! declared type, then run it. An `Async.` call passes the same checks before it gets its task.

use std::sync::Arc;

use super::membership::PoolRole;
use super::{auth, explicit, generic, Server, Transport};
use crate::model::errors::code;
use crate::model::{api, roles, ApiError, Kind, Message, Role, Value};

/// Run one API call. `Async.<class>.<message>` answers a task at once and runs the call in
/// the background ([`super::tasks`]).
pub async fn call(
    server: &Arc<Server>,
    transport: Transport,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, ApiError> {
    match method.strip_prefix("Async.") {
        Some(inner) => super::tasks::start(server, transport, method, inner, params).await,
        None => run(server, transport, method, params).await,
    }
}

/// Run a call now and answer its outcome.
pub(crate) async fn run(
    server: &Arc<Server>,
    transport: Transport,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, ApiError> {
    // Ordinary calls hold the write gate (shared) until their writes are replicated; a master
    // handover takes it exclusively. So do the pool-internal calls that write as master: one
    // that slipped in after the handover synced the new master would be acknowledged, then
    // lost. The other pool-internal calls never wait for it: the handover itself needs them on
    // other hosts (the new master's recovery of this one among them), and a master's own
    // calls to itself made while it holds the gate shared would queue behind a waiting
    // handover and never return.
    let ordinary = !(method == "pool.designate_new_master"
        || (method.contains(".internal_") && !writes_as_master(method)));
    let _gate = match ordinary {
        true => Some(server.membership.write_gate.read().await),
        false => None,
    };
    // An ordinary call on a master deposed while it runs (a newer master reached it) must not be
    // acknowledged. The handover and the pool-internal calls are the machinery that changes
    // roles (`internal_set_master` itself demotes a master): they answer for what they did.
    let began = ordinary.then(|| server.membership.tenure());
    let Admitted { msg, session, args } = admit(server, method, method, params)?;
    let outcome = match msg.kind {
        Kind::Explicit(decl) => {
            explicit::call(server, transport, session.as_deref(), decl, args).await
        }
        kind => generic::call(server, msg, kind, args),
    };
    // Acknowledge only once every write so far is on every reachable member. Should that not
    // happen in time, the caller hears of a failure: its write may be committed here, but it
    // was never acknowledged. A master deposed meanwhile answers as the member it now is.
    let generation = server.db.read().generation();
    let tenure = began.unwrap_or_else(|| server.membership.tenure());
    if let Err(why) = server.membership.wait_replicated(generation, tenure).await {
        tracing::error!(method, generation, ?why, "writes not acknowledged");
        return Err(why.into());
    }
    if let Err(e) = &outcome {
        tracing::debug!(method, error = %e, "call failed");
    }
    outcome
}

/// A call that passed every check, ready to run.
pub(crate) struct Admitted {
    /// The message called.
    pub msg: &'static Message,
    /// The caller's session, for messages that take one.
    pub session: Option<String>,
    /// The parameters after the session, each of its declared type, defaults filled in.
    pub args: Vec<Value>,
}

/// xapi's checks before a call runs, in its order: the method exists (`called` is the name
/// errors give, `Async.` included; as in xapi, only declared messages that take a session
/// have an async form, not the generated getters and setters), this
/// host serves it, the parameter count, the session, the caller's role, each parameter's type.
pub(crate) fn admit(
    server: &Server,
    called: &str,
    method: &str,
    params: Vec<Value>,
) -> Result<Admitted, ApiError> {
    let msg = api()
        .lookup(method)
        .filter(|m| called == method || (m.session && matches!(m.kind, Kind::Explicit(_))))
        .ok_or_else(|| ApiError::method_unknown(called))?;
    match server.membership.role() {
        PoolRole::Member { master } if !runs_on_members(method) || writes_as_master(method) => {
            // Over the local socket the HTTP layer forwards to the master before we get here.
            return Err(ApiError::new(code::HOST_IS_SLAVE, [master]));
        }
        // A master that restarted with HA armed may have been replaced while it was away:
        // it serves nothing until HA confirms it (it wins the lock) or a newer master claims it.
        PoolRole::Master if server.ha.unconfirmed_master() && !runs_on_members(method) => {
            return Err(ApiError::new::<String>("HOST_STILL_BOOTING", []));
        }
        _ => {}
    }
    let received = params.len() as i64 - i64::from(msg.session);
    let required = msg.required_params();
    if received < required as i64 || received > msg.params.len() as i64 {
        return Err(ApiError::parameter_count(called, required, received));
    }
    let mut params = params.into_iter();
    let session = match msg.session {
        true => Some(auth::check_session(
            server,
            &params.next().expect("count checked"),
        )?),
        false => None,
    };
    if let Some(s) = &session {
        let needed = roles::required(msg);
        if auth::session_role(server, s) < needed {
            return Err(permission_denied(&msg.wire_name().to_lowercase(), needed));
        }
    }
    let mut args = Vec::with_capacity(msg.params.len());
    for p in &msg.params {
        let v = match params.next() {
            Some(v) => p.ty.coerce(&v).map_err(|_| ApiError::field_type(p.name))?,
            None => {
                p.ty.parse_text(
                    p.default
                        .expect("count checked: missing params have defaults"),
                )
                .expect("declared defaults parse")
            }
        };
        args.push(v);
    }
    if let Some(caller) = &session {
        if !auth::may_use_session_object(server, caller, msg, &args) {
            return Err(permission_denied(
                &msg.wire_name().to_lowercase(),
                Role::PoolAdmin,
            ));
        }
    }
    Ok(Admitted { msg, session, args })
}

/// xapi's refusal of what the caller's role does not allow. For a call, the permission is its
/// lower-cased wire name, whatever spelling the caller used.
pub(crate) fn permission_denied(permission: &str, needed: Role) -> ApiError {
    ApiError::new(
        "RBAC_PERMISSION_DENIED",
        [
            permission.to_string(),
            format!(
                "No permission in user session. (Roles with this permission: {})",
                needed.holders().join(", ")
            ),
        ],
    )
}

/// The pool-internal calls that only a master can answer, because they write the pool's
/// database as master: a member's host asking to be added, brought up to date, enabled again,
/// or to have the VMs that died with it halted. They hold the write gate like ordinary calls,
/// and a member (a master that handed over, or was deposed, while the caller was not looking)
/// answers them `HOST_IS_SLAVE` with its master, so the caller asks again there. Every caller
/// is another host: a master does these itself, never by a call to its own address.
pub fn writes_as_master(method: &str) -> bool {
    matches!(
        method,
        "pool.internal_add_host"
            | "pool.internal_member_ready"
            | "host.internal_enable_after_restart"
            | "host.internal_report_lost_domains"
    )
}

/// The calls a pool member answers itself instead of sending callers to the master: xapi's
/// emergency calls, the pool-internal calls, and local queries.
pub fn runs_on_members(method: &str) -> bool {
    matches!(
        method,
        "session.slave_local_login_with_password"
            | "session.local_logout"
            | "pool.emergency_transition_to_master"
            | "pool.emergency_reset_master"
            | "host.emergency_ha_disable"
            | "host.is_in_emergency_mode"
            | "host.get_local_database_generation"
            | "host.get_local_database_state"
    ) || method.starts_with("pool.internal_")
        || method.starts_with("host.internal_")
}
