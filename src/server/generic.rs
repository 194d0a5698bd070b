//! The calls every class has, derived from the model: getters, setters, map and set
//! accessors, records and lookups. Field-specific rules (valid values, fields that move
//! together) live in [`set_rules`], the one place a setter does more than store; settings that
//! could break the failover plan (failures to tolerate, protecting a VM, disabling a host) are
//! also judged by overcommit protection ([`ha_plan::change_of_setting`]).

use super::{ha_plan, Server};
use crate::model::{
    class, ApiError, ClassDecl, FieldDecl, Kind, Message, Record, Ty, Value, NULL_REF,
};
use crate::pool::{Tables, Txn};

/// A record as the API returns it: every stored field in declaration order (defaults filled
/// in for fields added after the object was stored).
pub fn api_record(c: &ClassDecl, rec: &Record) -> Value {
    Value::Struct(
        c.stored_fields()
            .map(|f| {
                (
                    f.name.to_string(),
                    rec.get(f.name)
                        .cloned()
                        .unwrap_or_else(|| f.default_value()),
                )
            })
            .collect(),
    )
}

fn self_ref(args: &[Value]) -> &str {
    args[0].as_str().unwrap_or_default()
}

fn lookup<'t>(t: &'t Tables, c: &ClassDecl, r: &str) -> Result<&'t Record, ApiError> {
    t.get(c.name, r)
        .ok_or_else(|| ApiError::handle_invalid(c.name, r))
}

/// Run a generic call.
pub fn call(
    server: &Server,
    msg: &Message,
    kind: Kind,
    args: Vec<Value>,
) -> Result<Value, ApiError> {
    let c = msg.class;
    match kind {
        Kind::GetRecord => {
            let t = server.db.read();
            Ok(api_record(c, lookup(&t, c, self_ref(&args))?))
        }
        Kind::GetAll => Ok(Value::Array(
            server
                .db
                .read()
                .all(c.name)
                .map(|(r, _)| Value::str(r.clone()))
                .collect(),
        )),
        Kind::GetAllRecords => Ok(Value::Struct(
            server
                .db
                .read()
                .all(c.name)
                .map(|(r, rec)| (r.clone(), api_record(c, rec)))
                .collect(),
        )),
        Kind::GetByUuid => {
            let uuid = args[0].as_str().unwrap_or_default();
            match server.db.read().by_uuid(uuid) {
                Some((found, r)) if found == c.name => Ok(Value::str(r)),
                _ => Err(ApiError::uuid_invalid(c.name, uuid)),
            }
        }
        Kind::GetByNameLabel => {
            let label = args[0].as_str().unwrap_or_default();
            Ok(Value::Array(
                server
                    .db
                    .read()
                    .all(c.name)
                    .filter(|(_, rec)| rec.get("name_label").and_then(Value::as_str) == Some(label))
                    .map(|(r, _)| Value::str(r.clone()))
                    .collect(),
            ))
        }
        Kind::Get(f) => {
            let t = server.db.read();
            let rec = lookup(&t, c, self_ref(&args))?;
            Ok(rec
                .get(f.name)
                .cloned()
                .unwrap_or_else(|| f.default_value()))
        }
        Kind::Set(f) => {
            let r = self_ref(&args).to_string();
            let value = args[1].clone();
            server.db.write(|t| set_field(t, c, &r, f, value))?;
            if ha_plan::setting_affects_plan(c.name, f.name) {
                super::ha::failover::update_pool_status(server);
            }
            Ok(Value::void())
        }
        Kind::AddTo(f) => {
            let r = self_ref(&args).to_string();
            server.db.write(|t| {
                let mut current = lookup_txn(t, c, &r)?
                    .get(f.name)
                    .cloned()
                    .unwrap_or_else(|| f.default_value());
                match (&mut current, f.ty) {
                    (Value::Struct(m), Ty::Map(..)) => {
                        let key = args[1].as_str().unwrap_or_default().to_string();
                        if m.contains_key(&key) {
                            return Err(ApiError::new(
                                "MAP_DUPLICATE_KEY",
                                [c.name, f.name, r.as_str(), key.as_str()],
                            ));
                        }
                        m.insert(key, args[2].clone());
                    }
                    (Value::Array(items), Ty::Set(_)) => {
                        if !items.contains(&args[1]) {
                            items.push(args[1].clone());
                        }
                    }
                    _ => {
                        return Err(ApiError::internal(format!(
                            "{}.{} is not a map or set",
                            c.name, f.name
                        )))
                    }
                }
                set_field(t, c, &r, f, current)
            })?;
            Ok(Value::void())
        }
        Kind::RemoveFrom(f) => {
            let r = self_ref(&args).to_string();
            server.db.write(|t| {
                let mut current = lookup_txn(t, c, &r)?
                    .get(f.name)
                    .cloned()
                    .unwrap_or_else(|| f.default_value());
                match &mut current {
                    Value::Struct(m) => {
                        m.shift_remove(args[1].as_str().unwrap_or_default());
                    }
                    Value::Array(items) => items.retain(|i| i != &args[1]),
                    _ => {
                        return Err(ApiError::internal(format!(
                            "{}.{} is not a map or set",
                            c.name, f.name
                        )))
                    }
                }
                set_field(t, c, &r, f, current)
            })?;
            Ok(Value::void())
        }
        Kind::Explicit(_) => unreachable!("explicit messages are dispatched elsewhere"),
    }
}

fn lookup_txn<'t>(t: &'t Txn<'_>, c: &ClassDecl, r: &str) -> Result<&'t Record, ApiError> {
    t.get(c.name, r)
        .ok_or_else(|| ApiError::handle_invalid(c.name, r))
}

/// Store `value` in field `f` of object `r`, after the field's rules. Refs must point at an
/// existing object of the right class (or be null).
pub fn set_field(
    t: &mut Txn<'_>,
    c: &'static ClassDecl,
    r: &str,
    f: &FieldDecl,
    value: Value,
) -> Result<(), ApiError> {
    let rec = lookup_txn(t, c, r)?;
    // Static memory limits change only while the VM is halted (xapi): a running VM's
    // footprint, which the failover plan counts on, cannot grow behind the plan's back.
    if c.name == "VM" && matches!(f.name, "memory_static_max" | "memory_static_min") {
        super::vm::check_power_state(r, rec, &["Halted"], "halted")?;
    }
    let running = c.name == "VM" && rec.get("power_state") == Some(&Value::str("Running"));
    if let (Ty::Ref(target), Some(target_ref)) = (f.ty, value.as_str()) {
        if target_ref != NULL_REF
            && class(target).is_some_and(|tc| t.get(tc.name, target_ref).is_none())
        {
            return Err(ApiError::handle_invalid(target, target_ref));
        }
    }
    // Validity first (a negative failure count is INVALID_VALUE), then overcommit protection,
    // in the write that stores the value, so a refusal leaves everything as it was.
    let stored = set_rules(c, f, value.clone())?;
    if let Some(change) = ha_plan::change_of_setting(&*t, c.name, r, f.name, &value) {
        ha_plan::assert_change_preserves_plan(&*t, &change)?;
    }
    for (name, v) in stored {
        // ha_always_run ("keep it running") follows the priority only for a running VM, as
        // in xapi: protecting a halted VM does not ask HA to start it.
        if name == "ha_always_run" && f.name == "ha_restart_priority" && !running {
            continue;
        }
        t.set(c, r, name, v)?;
    }
    if c.name == "VM" && f.name.starts_with("memory_") {
        check_memory_order(t, r)?;
    }
    Ok(())
}

/// xapi's constraint on a VM's memory: static_min <= dynamic_min <= dynamic_max <= static_max.
pub fn check_memory_order(t: &Txn<'_>, vm: &str) -> Result<(), ApiError> {
    let Some(rec) = t.get("VM", vm) else {
        return Ok(());
    };
    let get = |f: &str| rec.get(f).and_then(Value::as_int).unwrap_or(0);
    let order = [
        "memory_static_min",
        "memory_dynamic_min",
        "memory_dynamic_max",
        "memory_static_max",
    ]
    .map(get);
    if order.windows(2).all(|w| w[0] <= w[1]) {
        Ok(())
    } else {
        Err(ApiError::new::<String>(
            "MEMORY_CONSTRAINT_VIOLATION_ORDER",
            [],
        ))
    }
}

/// What setting `f` to `value` really stores: the field-specific validity rules of xapi, and
/// the fields that move together. Returns the (field, value) pairs to store.
fn set_rules(
    c: &ClassDecl,
    f: &FieldDecl,
    value: Value,
) -> Result<Vec<(&'static str, Value)>, ApiError> {
    let text = || match &value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    };
    match (c.name, f.name) {
        // Only these three priorities exist since XenServer 6.1 (numbers were dropped).
        ("VM", "ha_restart_priority") => {
            let p = value.as_str().unwrap_or_default();
            if !matches!(p, "restart" | "best-effort" | "") {
                return Err(ApiError::invalid_value("ha_restart_priority", &text()));
            }
            // The deprecated ha_always_run mirrors "is protected".
            Ok(vec![
                ("ha_always_run", Value::Bool(p == "restart")),
                ("ha_restart_priority", value),
            ])
        }
        ("VM", "ha_always_run") => {
            let on = value.as_bool().unwrap_or(false);
            let priority = if on { "restart" } else { "" };
            Ok(vec![
                ("ha_always_run", value),
                ("ha_restart_priority", Value::str(priority)),
            ])
        }
        (
            "VM",
            "memory_static_max" | "memory_dynamic_max" | "memory_dynamic_min" | "memory_static_min",
        )
        | ("VM", "VCPUs_max" | "VCPUs_at_startup")
            if value.as_int().is_some_and(|i| i < 0) =>
        {
            Err(ApiError::invalid_value(f.name, &text()))
        }
        // xapi's VM.set_order and friends: the field names the rule, the value is as given.
        ("VM", "order" | "start_delay" | "shutdown_delay")
            if value.as_int().is_some_and(|i| i < 0) =>
        {
            Err(ApiError::invalid_value(
                &format!("{} must be non-negative", f.name),
                &text(),
            ))
        }
        ("pool", "ha_host_failures_to_tolerate") if value.as_int().is_some_and(|i| i < 0) => Err(
            ApiError::invalid_value("ha_host_failures_to_tolerate", &text()),
        ),
        _ => Ok(vec![(f.name, value)]),
    }
}
