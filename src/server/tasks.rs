//! Tasks: `Async.<class>.<message>` answers a `task` ref at once and runs the call in the
//! background, as xapi does. The task record tells how it went, the way xapi's `TaskHelper`
//! fills it in: `status` pending, then success or failure; `progress` 0 then 1; `created`
//! and `finished`; `result` the XML-RPC text of the value (`<value>OpaqueRef:…</value>`,
//! `""` for a void message); `error_info` the error code and its parameters.
//!
//! Who started a task is kept here, not in the record: the record is readable by everyone and
//! must not name a session (a bearer token). A task is destroyed by the user who started it,
//! or by pool-admin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{dispatch, now_datetime, str_field, Server, Transport};
use crate::model::classes::{SESSION, TASK};
use crate::model::{ApiError, Role, Value};
use crate::wire::xmlrpc;

/// The user behind each task still in the database, by task ref.
#[derive(Default)]
pub struct Owners(Mutex<HashMap<String, String>>);

impl Owners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The user ref behind a session.
fn user_of(server: &Server, session: &str) -> String {
    server
        .db
        .read()
        .get(SESSION.name, session)
        .map(|s| str_field(s, "this_user").to_string())
        .unwrap_or_default()
}

/// `Async.<inner>`: check the call as if it ran now (an error here is the call's answer, and no
/// task is made), then make a pending task, run the call in the background with the caller's
/// session, and answer the task's ref.
pub async fn start(
    server: &Arc<Server>,
    transport: Transport,
    called: &str,
    inner: &str,
    params: Vec<Value>,
) -> Result<Value, ApiError> {
    // As in `dispatch::run`: the gate first, then the checks (a handover between the two would
    // leave the task written on a host that is no longer master, and acknowledged).
    let gate = server.membership.write_gate.read().await;
    let tenure = server.membership.tenure();
    let admitted = dispatch::admit(server, called, inner, params.clone())?;
    let caller = admitted.session.expect("async calls need a session");
    let void = admitted.msg.result.is_none();
    let task = {
        let _gate = gate;
        let task = server.db.write(|t| {
            Ok(t.create(
                &TASK,
                [
                    ("name_label", Value::str(called)),
                    ("resident_on", Value::str(server.this_host.clone())),
                    ("status", Value::str("pending")),
                    ("progress", Value::Float(0.0)),
                    ("created", Value::DateTime(now_datetime())),
                ],
            ))
        })?;
        // The task ref is an acknowledgement too: not before the task is replicated.
        let generation = server.db.read().generation();
        server
            .membership
            .wait_replicated(generation, tenure)
            .await?;
        task
    };
    server
        .tasks
        .lock()
        .insert(task.clone(), user_of(server, &caller));
    let (server, inner, background_task) = (server.clone(), inner.to_string(), task.clone());
    tokio::spawn(async move {
        let outcome = dispatch::run(&server, transport, &inner, params).await;
        let _gate = server.membership.write_gate.read().await;
        let tenure = server.membership.tenure();
        finish(&server, &background_task, void, outcome);
        // Nobody waits for this answer; waiting keeps the gate until the outcome is replicated.
        let generation = server.db.read().generation();
        let _ = server.membership.wait_replicated(generation, tenure).await;
    });
    Ok(Value::Str(task))
}

/// Record a task's outcome, unless it was destroyed meanwhile.
fn finish(server: &Server, task: &str, void: bool, outcome: Result<Value, ApiError>) {
    let (status, result, error_info) = match outcome {
        Ok(v) => {
            let mut text = String::new();
            if !void {
                xmlrpc::write_value(&mut text, &v);
            }
            ("success", text, vec![])
        }
        Err(e) => {
            let mut info = vec![Value::str(e.code)];
            info.extend(e.params.into_iter().map(Value::Str));
            ("failure", String::new(), info)
        }
    };
    let written = server.db.write(|t| {
        if t.get(TASK.name, task).is_none() {
            return Ok(());
        }
        t.update(&TASK, task, |rec| {
            for (field, value) in [
                ("progress", Value::Float(1.0)),
                ("finished", Value::DateTime(now_datetime())),
                ("result", Value::Str(result)),
                ("error_info", Value::Array(error_info)),
                ("status", Value::str(status)),
            ] {
                rec.insert(field.into(), value);
            }
        })
    });
    if let Err(e) = written {
        tracing::warn!(task, error = %e, "could not record a task's outcome");
    }
}

/// `task.destroy`: forget a task (its call, if still running, runs to its end unrecorded).
pub fn destroy(server: &Server, caller: &str, task: &str) -> Result<Value, ApiError> {
    if server.db.read().get(TASK.name, task).is_none() {
        return Err(ApiError::handle_invalid(TASK.name, task));
    }
    let owner = server.tasks.lock().get(task).cloned();
    let own = owner.is_some_and(|o| o == user_of(server, caller));
    if !own && super::auth::session_role(server, caller) < Role::PoolAdmin {
        return Err(dispatch::permission_denied(
            "task.destroy/any",
            Role::PoolAdmin,
        ));
    }
    server.db.write(|t| t.delete(&TASK, task))?;
    server.tasks.lock().remove(task);
    Ok(Value::void())
}
