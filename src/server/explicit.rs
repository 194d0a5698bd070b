//! The explicitly declared messages: sessions, HA, emergency mode, host maintenance, VM
//! lifecycle. Each answers as a pool of the shape this daemon runs would; a message whose
//! behaviour belongs to a part not built yet answers `NOT_IMPLEMENTED`, never a fake success.

use std::sync::Arc;

use super::generic::{check_memory_order, set_field};
use super::ha_plan::Protection;
use super::{
    alerts, auth, ha, ha_plan, lost_domains, maintenance, membership, now_ms, storage, vm, Server,
    Transport,
};
use crate::model::classes::{HOST, USER, VM, VM_METRICS};
use crate::model::errors::code;
use crate::model::messages::MessageDecl;
use crate::model::{Access, ApiError, Role, Value};

fn not_implemented(decl: &MessageDecl) -> ApiError {
    ApiError::new(
        code::NOT_IMPLEMENTED,
        [format!("{}.{}", decl.class, decl.name)],
    )
}

/// After an operation that moved VMs or changed hosts: bring the pool's plan fields up to
/// date (and raise their alerts), as xapi's `update_pool_status` after the same operations.
fn replanned(server: &Server, outcome: Result<Value, ApiError>) -> Result<Value, ApiError> {
    if outcome.is_ok() {
        ha::failover::update_pool_status(server);
    }
    outcome
}

fn str_arg(args: &[Value], i: usize) -> String {
    args[i].as_str().unwrap_or_default().to_string()
}

/// Run an explicit message. `session` is the caller's session for messages that take one.
pub async fn call(
    server: &Arc<Server>,
    transport: Transport,
    session: Option<&str>,
    decl: &'static MessageDecl,
    args: Vec<Value>,
) -> Result<Value, ApiError> {
    match (decl.class, decl.name) {
        ("session", "login_with_password") => {
            auth::login(
                server,
                transport,
                &str_arg(&args, 0),
                &str_arg(&args, 1),
                &str_arg(&args, 3),
            )
            .await
        }
        ("session", "slave_local_login_with_password") => {
            auth::login(
                server,
                transport,
                &str_arg(&args, 0),
                &str_arg(&args, 1),
                "",
            )
            .await
        }
        ("session", "logout" | "local_logout") => {
            auth::logout(server, session.expect("session message"))
        }
        ("task", "destroy") => super::tasks::destroy(
            server,
            session.expect("session message"),
            &str_arg(&args, 0),
        ),

        // ---- HA: the pool-level switches ----
        ("pool", "enable_ha") => ha::enable(server, &args[0], &args[1]).await,
        ("pool", "disable_ha") => ha::disable(server).await,
        ("host", "internal_ha_start") => ha::internal_start(
            server,
            &str_arg(&args, 0),
            &str_arg(&args, 1),
            &str_arg(&args, 2),
        ),
        ("host", "internal_ha_status") => ha::internal_status(server, &str_arg(&args, 0)),
        ("host", "internal_ha_fence_report") => {
            ha::internal_fence_report(server, &str_arg(&args, 0))
        }
        ("host", "internal_ha_stop") => {
            ha::internal_stop(server, &str_arg(&args, 0), &str_arg(&args, 1))
        }
        ("pool", "ha_prevent_restarts_for") => {
            let seconds = args[0].as_int().unwrap_or(0);
            if seconds < 0 {
                return Err(ApiError::invalid_value("seconds", &seconds.to_string()));
            }
            *server
                .restarts_blocked_until_ms
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = now_ms() + seconds as u64 * 1000;
            Ok(Value::void())
        }
        ("pool", "ha_compute_max_host_failures_to_tolerate") => ha_plan::max_failures(server),
        ("pool", "ha_compute_hypothetical_max_host_failures_to_tolerate") => {
            ha_plan::hypothetical_max_failures(server, &args[0])
        }
        ("pool", "ha_failover_plan_exists") => {
            ha_plan::plan_exists(server, args[0].as_int().unwrap_or(0))
        }
        ("pool", "ha_compute_vm_failover_plan") => ha_plan::vm_failover_plan(server, &args[0]),
        ("host", "compute_free_memory") => {
            let host = str_arg(&args, 0);
            let t = server.db.read();
            if t.get(HOST.name, &host).is_none() {
                return Err(ApiError::handle_invalid(HOST.name, &host));
            }
            Ok(Value::Int(vm::host_free_memory(&*t, &host)))
        }

        // ---- emergency mode ----
        ("pool", "emergency_transition_to_master") => {
            if ha::armed_here(server) {
                return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
            }
            membership::emergency_transition_to_master(server).await
        }
        ("pool", "emergency_reset_master") => {
            if ha::armed_here(server) {
                return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
            }
            membership::emergency_reset_master(server, &str_arg(&args, 0))
        }
        ("pool", "recover_slaves") => membership::recover_slaves(server).await,
        ("host", "emergency_ha_disable") => {
            ha::emergency_disable(server, args[0].as_bool().unwrap_or(false))
        }
        ("host", "is_in_emergency_mode") => {
            Ok(Value::Bool(membership::in_emergency_mode(server).await))
        }

        // ---- host maintenance ----
        ("host", "disable") => {
            let auto_enable = args[1].as_bool().unwrap_or(true);
            let done = maintenance::disable(server, &str_arg(&args, 0), auto_enable).await;
            replanned(server, done.map(|()| Value::void()))
        }
        ("host", "enable") => {
            let done = maintenance::enable(server, &str_arg(&args, 0)).await;
            replanned(server, done.map(|()| Value::void()))
        }
        ("host", "internal_set_auto_enable") => maintenance::internal_set_auto_enable(
            server,
            &str_arg(&args, 0),
            args[1].as_bool().unwrap_or(true),
        )
        .map(|()| Value::void()),
        ("host", "internal_enable_after_restart") => {
            let enabled = maintenance::internal_enable_after_restart(
                server,
                &str_arg(&args, 0),
                &str_arg(&args, 1),
            );
            replanned(server, enabled.map(Value::Bool))
        }
        ("host", "evacuate") => replanned(server, vm::evacuate(server, &str_arg(&args, 0)).await),
        ("SR", "create") => {
            let text = |i: usize| str_arg(&args, i);
            storage::create(
                server,
                &text(0),
                &args[1],
                &text(3),
                &text(4),
                &text(5),
                &text(6),
                args[7].as_bool().unwrap_or(false),
                &args[8],
            )
            .await
        }
        ("SR", "destroy" | "forget") => {
            storage::remove(server, &str_arg(&args, 0), decl.name == "forget")
        }
        ("PBD", "plug" | "unplug") => {
            storage::plug(server, &str_arg(&args, 0), decl.name == "plug").await
        }
        ("VDI", "create") => storage::create_vdi(server, &args[0]).await,
        ("VDI", "destroy") => storage::destroy_vdi(server, &str_arg(&args, 0)).await,
        ("host", "internal_facts") => {
            server.membership.check_secret(&str_arg(&args, 0))?;
            let facts = server
                .config
                .facts
                .as_ref()
                .ok_or_else(|| ApiError::internal("this host has no facts"))?;
            Ok(Value::Str(
                serde_json::to_string(facts).expect("facts serialise"),
            ))
        }
        ("host", "internal_storage") => {
            storage::internal(server, &str_arg(&args, 0), &str_arg(&args, 1))
        }
        ("message", "create") => server.db.write(|t| {
            alerts::create(
                t,
                &str_arg(&args, 0),
                args[1].as_int().unwrap_or(5),
                &str_arg(&args, 2),
                &str_arg(&args, 3),
                &str_arg(&args, 4),
            )
        }),
        ("message", "destroy") => {
            let m = str_arg(&args, 0);
            server
                .db
                .write(|t| t.delete(&crate::model::classes::MESSAGE, &m))?;
            Ok(Value::void())
        }
        ("host", "destroy") => {
            replanned(server, membership::forget_host(server, &str_arg(&args, 0)))
        }
        ("pool", "eject") => replanned(server, membership::eject(server, &str_arg(&args, 0)).await),
        ("host", "internal_start_domain") => {
            server.membership.check_secret(&str_arg(&args, 0))?;
            let command = str_arg(&args, 2);
            let command = (!command.is_empty()).then_some(command.as_str());
            vm::start_local_domain(server, &str_arg(&args, 1), command).await?;
            Ok(Value::void())
        }
        ("host", "internal_stop_domain") => {
            server.membership.check_secret(&str_arg(&args, 0))?;
            let grace =
                std::time::Duration::from_millis(args[2].as_int().unwrap_or(0).max(0) as u64);
            server.domains.stop(&str_arg(&args, 1), grace).await;
            Ok(Value::void())
        }
        ("host", "internal_domain_running") => {
            server.membership.check_secret(&str_arg(&args, 0))?;
            Ok(Value::Bool(server.domains.is_running(&str_arg(&args, 1))))
        }
        ("host", "internal_report_lost_domains") => {
            let halted =
                lost_domains::internal_report(server, &str_arg(&args, 0), &str_arg(&args, 1));
            replanned(server, halted.map(|n| Value::Int(n as i64)))
        }
        ("pool", "internal_eject") => membership::ejected(server, &str_arg(&args, 0)),

        // ---- VMs ----
        // `force` (the last parameter of start and start_on) is read by no one, as in effect
        // in xapi here: xapi's VM.start uses it only to skip the memory-constraint check of
        // VMs with nested virtualisation or SR-IOV vGPUs and to pass `--force` to the domain
        // builder, none of which exists without a hypervisor. It never overrides a disabled
        // host, host memory, CPU compatibility or the failover plan.
        ("VM", "start") => {
            let started = vm::start(
                server,
                &str_arg(&args, 0),
                None,
                args[1].as_bool().unwrap_or(false),
                Protection::Checked,
            )
            .await;
            replanned(server, started)
        }
        ("VM", "start_on") => {
            let started = vm::start(
                server,
                &str_arg(&args, 0),
                Some(&str_arg(&args, 1)),
                args[2].as_bool().unwrap_or(false),
                Protection::Checked,
            )
            .await;
            replanned(server, started)
        }
        ("VM", "clean_shutdown" | "hard_shutdown") => {
            let stopped =
                vm::shutdown(server, &str_arg(&args, 0), decl.name == "hard_shutdown").await;
            replanned(server, stopped)
        }
        ("VM", "clean_reboot" | "hard_reboot") => {
            vm::reboot(server, &str_arg(&args, 0), decl.name == "hard_reboot").await
        }
        ("VM", "pool_migrate") => {
            let moved = vm::migrate(
                server,
                &str_arg(&args, 0),
                &str_arg(&args, 1),
                Protection::Checked,
            )
            .await;
            replanned(server, moved)
        }
        // ---- pool membership ----
        ("pool", "join" | "join_force") => {
            let force = decl.name == "join_force";
            membership::join(
                server,
                &str_arg(&args, 0),
                &str_arg(&args, 1),
                &str_arg(&args, 2),
                force,
            )
            .await
        }
        ("pool", "internal_add_host") => membership::add_host(
            server,
            &str_arg(&args, 0),
            args[1].as_bool().unwrap_or(false),
        ),
        ("pool", "internal_member_ready") => {
            let joined =
                membership::member_ready(server, &str_arg(&args, 0), &str_arg(&args, 1)).await;
            replanned(server, joined)
        }
        ("pool", "internal_replicate") => membership::apply_replica(
            server,
            &str_arg(&args, 0),
            args[1].as_int().unwrap_or(0),
            &str_arg(&args, 2),
        ),
        ("host", "shutdown" | "reboot") => {
            membership::host_power(server, &str_arg(&args, 0), decl.name == "reboot").await
        }
        ("host", "internal_power") => {
            membership::internal_power(
                server,
                &str_arg(&args, 0),
                args[1].as_bool().unwrap_or(false),
            )
            .await
        }
        ("pool", "designate_new_master") => membership::designate(server, &str_arg(&args, 0)).await,
        ("pool", "internal_become_master") => {
            membership::become_master(server, &str_arg(&args, 0), args[1].as_int().unwrap_or(0))
        }
        ("pool", "internal_set_master") => membership::set_master(
            server,
            &str_arg(&args, 0),
            args[1].as_int().unwrap_or(0),
            &str_arg(&args, 2),
        ),
        ("pool", "internal_ping") => membership::ping(server, &str_arg(&args, 0)),
        ("pool", "internal_get_master") => membership::get_master(server, &str_arg(&args, 0)),
        ("pool", "internal_dump") => membership::dump(server, &str_arg(&args, 0)),
        ("host", "get_local_database_generation") => {
            Ok(Value::Int(server.db.read().generation() as i64))
        }
        ("host", "get_local_database_state") => {
            Ok(membership::stamp_value(server.db.read().stamp()))
        }

        // ---- local users (an extension: xapi delegates users to PAM and AD) ----
        ("user", "create_local") => {
            let (name, password, role) = (str_arg(&args, 0), str_arg(&args, 1), str_arg(&args, 2));
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(ApiError::invalid_value("short_name", &name));
            }
            let role = Role::parse(&role).ok_or_else(|| ApiError::invalid_value("role", &role))?;
            if password.is_empty() {
                return Err(ApiError::invalid_value("password", ""));
            }
            if server.db.read().credential(&name).is_some() {
                return Err(ApiError::invalid_value("short_name", &name));
            }
            auth::set_password(server, &name, &password, role).map(Value::Str)
        }
        ("user", "set_role" | "change_password" | "destroy") => {
            let user = str_arg(&args, 0);
            let name = server
                .db
                .read()
                .field(USER.name, &user, "short_name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ApiError::handle_invalid(USER.name, &user))?;
            match decl.name {
                "change_password" => {
                    let password = str_arg(&args, 1);
                    if password.is_empty() {
                        return Err(ApiError::invalid_value("new_password", ""));
                    }
                    auth::set_password(server, &name, &password, Role::ReadOnly)?;
                }
                _ if name == "root" => return Err(ApiError::invalid_value("self", "root")),
                "set_role" => {
                    let role = str_arg(&args, 1);
                    let role =
                        Role::parse(&role).ok_or_else(|| ApiError::invalid_value("role", &role))?;
                    server
                        .db
                        .write(|t| t.set(&USER, &user, "role", Value::str(role.name())))?;
                }
                _ => auth::remove_user(server, &user, &name)?,
            }
            Ok(Value::void())
        }
        ("VM", "create") => {
            // Like xapi's generated constructor: read-write fields come from the record,
            // everything else starts at its default; keys that are not RW fields are ignored.
            let given = args[0].as_struct().cloned().unwrap_or_default();
            let r = server.db.write(|t| {
                let metrics = t.create(&VM_METRICS, []);
                let vm = t.create(&VM, [("metrics", Value::Str(metrics))]);
                // Memory fields are applied together and checked once, after the record is whole.
                let mut memory = Vec::new();
                for f in VM.stored_fields().filter(|f| f.access == Access::RW) {
                    if let Some(v) = given.get(f.name) {
                        let v = f.ty.coerce(v).map_err(|_| ApiError::field_type(f.name))?;
                        if f.name.starts_with("memory_") {
                            memory.push((f.name, v));
                        } else {
                            set_field(t, &VM, &vm, f, v)?;
                        }
                    }
                }
                for (name, v) in vm_memory_defaults(memory)? {
                    t.set(&VM, &vm, name, v)?;
                }
                check_memory_order(t, &vm)?;
                Ok(vm)
            })?;
            Ok(Value::Str(r))
        }
        ("VM", "destroy") => {
            let vm = str_arg(&args, 0);
            server.db.write(|t| {
                let rec = t
                    .get(VM.name, &vm)
                    .ok_or_else(|| ApiError::handle_invalid(VM.name, &vm))?;
                let state = rec
                    .get("power_state")
                    .and_then(Value::as_str)
                    .unwrap_or("Halted");
                if state != "Halted" {
                    return Err(ApiError::new(
                        "VM_BAD_POWER_STATE",
                        [vm.as_str(), "halted", &state.to_lowercase()],
                    ));
                }
                let metrics = rec
                    .get("metrics")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if t.get(VM_METRICS.name, &metrics).is_some() {
                    t.delete(&VM_METRICS, &metrics)?;
                }
                t.delete(&VM, &vm)
            })?;
            Ok(Value::void())
        }
        _ => Err(not_implemented(decl)),
    }
}

/// The four memory fields of a new VM. Those the caller did not give follow the ones it did:
/// a VM created with only `memory_static_max` gets that much for all four (up to the default),
/// rather than defaults that would violate the order.
fn vm_memory_defaults(
    given: Vec<(&'static str, Value)>,
) -> Result<Vec<(&'static str, Value)>, ApiError> {
    let get = |name: &str| {
        given
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_int())
    };
    for (name, v) in &given {
        if v.as_int().is_some_and(|m| m < 0) {
            return Err(ApiError::invalid_value(
                name,
                &v.as_int().unwrap_or(0).to_string(),
            ));
        }
    }
    let default = VM
        .field("memory_static_max")
        .expect("declared")
        .default_value()
        .as_int()
        .unwrap_or(0);
    let static_max = get("memory_static_max").unwrap_or(default);
    let dynamic_max = get("memory_dynamic_max").unwrap_or(static_max);
    let dynamic_min = get("memory_dynamic_min").unwrap_or(dynamic_max.min(default));
    let static_min = get("memory_static_min").unwrap_or(dynamic_min.min(default));
    Ok(vec![
        ("memory_static_max", Value::Int(static_max)),
        ("memory_dynamic_max", Value::Int(dynamic_max)),
        ("memory_dynamic_min", Value::Int(dynamic_min)),
        ("memory_static_min", Value::Int(static_min)),
    ])
}
