//! The command implementations (`cli_operations.ml`): the generic `-list`/`-param-*` commands
//! over any class of the model, and the HA, CPU and VM commands this `xe` supports. Each
//! returns what to print through the [`Printer`] or a [`CliError`]; none formats an error itself.

use std::io::IsTerminal;

use super::args::CommandLine;
use super::errors::CliError;
use super::printer::{Out, Printer, Rec};
use super::records::{
    self, by_uuid, cli_fields, field_ref, get, get_map, get_set, is_map, is_set, key,
    mutable_collection, settable, Ctx, FieldRef, Obj,
};
use super::table::{Command, Op};
use crate::client::value_text;
use crate::model::{self, parse_bool, ClassDecl, FieldDecl, Ty, Value, NULL_REF};

/// xe's `stdparams`: never filters, never fields to set.
pub const STDPARAMS: &[&str] = &[
    "server",
    "password",
    "port",
    "username",
    "minimal",
    "force",
    "multiple",
    "all",
    "message-priority",
    "trace",
];

/// `no_force_msg`.
pub const NO_FORCE: &str =
    "This operation is dangerous and may cause data loss. This operation must be forced (use --force).";

/// Output format for list commands (an extension; xe's own is the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// xe's records.
    #[default]
    Xe,
    /// A JSON array of objects.
    Json,
    /// A table drawn by comfy-table.
    Table,
}

/// Options beyond xe that change how a command runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras {
    /// `--output`.
    pub format: Format,
    /// Both stdin and stderr are terminals: dangerous commands may ask, long ones show progress.
    pub interactive: bool,
}

/// `get_bool_param`: absent is `false`; a bad value is xe's parse failure.
pub fn bool_param(cmd: &CommandLine, name: &str) -> Result<bool, CliError> {
    match cmd.get(name) {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| {
            CliError::failure(format!(
                "Failed to parse parameter '{name}': Expected 'true','t','yes','y','1','false','f','no','n','0' got {v}"
            ))
        }),
    }
}

/// `read_map_params name`: every `name:key=value` (or `name-key=value`) as `(key, value)`.
pub fn map_params(cmd: &CommandLine, name: &str) -> Vec<(String, String)> {
    let len = name.len() + 1;
    cmd.params
        .iter()
        .filter(|(k, _)| k.starts_with(name) && k.len() > len)
        .map(|(k, v)| (k[len..].to_string(), v.clone()))
        .collect()
}

/// Run one command after login.
pub fn run(
    c: &Command,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
    x: Extras,
) -> Result<(), CliError> {
    match c.op {
        Op::List(class) => list(class, cmd, ctx, p, x),
        Op::ParamList(class) => param_list(class, cmd, ctx, p, x),
        Op::ParamGet(class) => param_get(class, cmd, ctx, p),
        Op::ParamSet(class) => param_set(class, cmd, ctx),
        Op::ParamAdd(class) => param_add(class, cmd, ctx),
        Op::ParamRemove(class) => param_remove(class, cmd, ctx),
        Op::ParamClear(class) => param_clear(class, cmd, ctx),
        Op::HostCpuInfo => {
            let host = match cmd.get("uuid") {
                Some(u) => value_text(&ctx.call("host.get_by_uuid", &[u.into()])?),
                None => {
                    let s = ctx.session.reference.clone();
                    value_text(&ctx.call("session.get_this_host", &[s.into()])?)
                }
            };
            let info = ctx.call("host.get_cpu_info", &[host.into()])?;
            let rec: Rec = info
                .as_struct()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), value_text(v))).collect())
                .unwrap_or_default();
            p.print(Out::Table(vec![rec]));
            Ok(())
        }
        Op::HostIsInEmergencyMode => {
            let v = ctx.call("host.is_in_emergency_mode", &[])?;
            p.print(Out::Msg(bool_text(&v)));
            Ok(())
        }
        Op::HostEmergencyHaDisable => {
            let soft = bool_param(cmd, "soft")?;
            fail_without_force(cmd, x)?;
            ctx.call("host.emergency_ha_disable", &[Value::Bool(soft)])?;
            Ok(())
        }
        Op::PoolHaEnable => {
            let config = map_params(cmd, "ha-config");
            let mut srs = Vec::new();
            if let Some(list) = cmd.get("heartbeat-sr-uuids") {
                for u in list.split(',') {
                    srs.push(ctx.call("SR.get_by_uuid", &[u.into()])?);
                }
            }
            ctx.call(
                "pool.enable_ha",
                &[Value::Array(srs), Value::string_map(config)],
            )?;
            Ok(())
        }
        Op::PoolHaDisable => {
            ctx.call("pool.disable_ha", &[])?;
            Ok(())
        }
        Op::PoolHaPreventRestartsFor => {
            let s = cmd.get("seconds").unwrap_or("");
            let n: i64 = s.parse().map_err(|_| {
                CliError::Api(model::ApiError::internal("Failure: Int64.of_string"))
            })?;
            ctx.call("pool.ha_prevent_restarts_for", &[Value::Int(n)])?;
            Ok(())
        }
        Op::PoolEmergencyTransitionToMaster => {
            let force = bool_param(cmd, "force")?;
            if !force && is_master(ctx)? {
                p.print(Out::List(vec![
                    "Host agent is already master. Use '--force' to execute the operation anyway."
                        .into(),
                ]));
                return Ok(());
            }
            ctx.call("pool.emergency_transition_to_master", &[])?;
            p.print(Out::List(vec![format!(
                "Host agent will restart and transition to master in {} seconds...",
                FUSE_TIME
            )]));
            Ok(())
        }
        Op::PoolEmergencyResetMaster => {
            let addr = cmd.get("master-address").unwrap_or("").to_string();
            ctx.call("pool.emergency_reset_master", &[addr.clone().into()])?;
            p.print(Out::List(vec![format!(
                "Host agent will restart and become slave of {addr} in {FUSE_TIME} seconds..."
            )]));
            Ok(())
        }
        Op::PoolRecoverSlaves => {
            let hosts = ctx.call("pool.recover_slaves", &[])?;
            let mut uuids = Vec::new();
            for h in hosts.as_array().unwrap_or(&[]) {
                uuids.push(value_text(
                    &ctx.call("host.get_uuid", std::slice::from_ref(h))?,
                ));
            }
            p.print(Out::List(uuids));
            Ok(())
        }
        Op::PoolHaComputeMax => {
            let n = ctx.call("pool.ha_compute_max_host_failures_to_tolerate", &[])?;
            p.print(Out::List(vec![value_text(&n)]));
            Ok(())
        }
        Op::PoolHaComputeHypotheticalMax => {
            let vms = cmd.all("vm-uuid");
            let pri = cmd.all("restart-priority");
            if vms.len() != pri.len() {
                return Err(CliError::failure(
                    "Call requires an equal number of vm-uuid and restart-priority arguments",
                ));
            }
            let mut config = indexmap::IndexMap::new();
            for (u, pr) in vms.iter().zip(pri) {
                let r = value_text(&ctx.call("VM.get_by_uuid", &[(*u).into()])?);
                config.insert(r, Value::str(pr));
            }
            let n = ctx.call(
                "pool.ha_compute_hypothetical_max_host_failures_to_tolerate",
                &[Value::Struct(config)],
            )?;
            p.print(Out::List(vec![value_text(&n)]));
            Ok(())
        }
        Op::VmStart => vm_start(cmd, ctx, x),
        Op::HostEvacuate => host_evacuate(cmd, ctx),
        Op::HostDisable => host_disable(cmd, ctx),
        Op::HostEnable => host_enable(cmd, ctx),
    }
}

/// `string_of_float !Constants.fuse_time` with `fuse_time = 10.`: OCaml prints `10.`.
const FUSE_TIME: &str = "10.";

fn bool_text(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        other => parse_bool(&value_text(other))
            .map(|b| b.to_string())
            .unwrap_or_else(|| value_text(other)),
    }
}

/// `fail_without_force`, with the opt-in terminal confirmation.
fn fail_without_force(cmd: &CommandLine, x: Extras) -> Result<(), CliError> {
    if bool_param(cmd, "force")? {
        return Ok(());
    }
    if x.interactive {
        let yes = dialoguer::Confirm::new()
            .with_prompt("This operation is dangerous and may cause data loss. Continue?")
            .default(false)
            .interact()
            .unwrap_or(false);
        if yes {
            return Ok(());
        }
    }
    Err(CliError::failure(NO_FORCE))
}

/// Whether the host we talk to is the pool master (xapi asks `Pool_role.is_master`). A host in
/// emergency mode, or one that cannot answer, is not.
fn is_master(ctx: &mut Ctx) -> Result<bool, CliError> {
    if let Ok(Ok(v)) = ctx.try_call("host.is_in_emergency_mode", &[]) {
        if bool_text(&v) == "true" {
            return Ok(false);
        }
    }
    let s = ctx.session.reference.clone();
    let Ok(Ok(me)) = ctx.try_call("session.get_this_host", &[s.into()]) else {
        return Ok(false);
    };
    let Ok(Ok(pools)) = ctx.try_call("pool.get_all", &[]) else {
        return Ok(false);
    };
    let Some(pool) = pools.as_array().and_then(|a| a.first()).cloned() else {
        return Ok(false);
    };
    let Ok(Ok(master)) = ctx.try_call("pool.get_master", &[pool]) else {
        return Ok(false);
    };
    Ok(value_text(&master) == value_text(&me))
}

/// `choose_params`: `params=` as given, or the default list; `params=all` means every field.
fn chosen<'a>(cmd: &'a CommandLine, defaults: &'a [&'a str]) -> Option<Vec<&'a str>> {
    match cmd.get("params") {
        Some("all") => None,
        Some(ps) => Some(ps.split(',').collect()),
        None if defaults.is_empty() => None,
        None => Some(defaults.to_vec()),
    }
}

/// `select_fields`: the fields to print, in record order, hidden ones dropped.
fn selected(class: &'static ClassDecl, names: &Option<Vec<&str>>) -> Vec<&'static FieldDecl> {
    cli_fields(class)
        .filter(|f| !f.hidden)
        .filter(|f| names.as_ref().is_none_or(|n| n.contains(&f.cli)))
        .collect()
}

fn record(
    ctx: &mut Ctx,
    o: &Obj,
    fields: &[&'static FieldDecl],
    expensive: bool,
) -> Result<Rec, CliError> {
    fields
        .iter()
        .map(|f| Ok((key(f), get(ctx, o, f, expensive)?)))
        .collect()
}

fn list(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
    x: Extras,
) -> Result<(), CliError> {
    let all = ctx.all(class)?;
    let mut filters: Vec<(String, String)> = Vec::new();
    if class.name == "VM" {
        filters.push(("is-a-template".into(), "false".into()));
    }
    filters.extend(
        cmd.params
            .iter()
            .filter(|(k, _)| {
                k != "params" && !STDPARAMS.contains(&k.as_str()) && !k.starts_with("database:")
            })
            .cloned(),
    );
    let mut objs = all.clone();
    for (k, v) in &filters {
        objs = records::filter(ctx, objs, k, v)?;
    }
    if bool_param(cmd, "all")? {
        objs = all;
    }
    let fields = selected(class, &chosen(cmd, class.default_list));
    let mut table = Vec::new();
    for o in &objs {
        table.push(record(ctx, o, &fields, false)?);
    }
    emit(p, fields.as_slice(), table, x.format);
    Ok(())
}

/// Print records in the chosen format.
fn emit(p: &mut Printer, fields: &[&'static FieldDecl], table: Vec<Rec>, format: Format) {
    match format {
        Format::Xe => p.print(Out::Table(table)),
        Format::Json => {
            let arr: Vec<serde_json::Value> = table
                .iter()
                .map(|r| {
                    let mut m = serde_json::Map::new();
                    for (f, (_, v)) in fields.iter().zip(r) {
                        m.insert(f.cli.to_string(), serde_json::Value::String(v.clone()));
                    }
                    serde_json::Value::Object(m)
                })
                .collect();
            let text =
                serde_json::to_string_pretty(&serde_json::Value::Array(arr)).unwrap_or_default();
            p.print(Out::Msg(text));
        }
        Format::Table => {
            let mut t = comfy_table::Table::new();
            t.set_header(fields.iter().map(|f| f.cli));
            for r in &table {
                t.add_row(r.iter().map(|(_, v)| v.as_str()));
            }
            p.print(Out::Msg(t.to_string()));
        }
    }
}

fn param_list(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
    x: Extras,
) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let fields = selected(class, &None);
    let r = record(ctx, &o, &fields, true)?;
    emit(p, &fields, vec![r], x.format);
    Ok(())
}

/// `field_lookup`: a field by CLI name (hidden ones included), or xe's `Missing parameter`.
fn lookup(class: &'static ClassDecl, name: &str) -> Result<&'static FieldDecl, CliError> {
    class
        .cli_field(name)
        .ok_or_else(|| CliError::Code("Missing parameter".into(), vec![name.into()]))
}

fn param_get(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let f = lookup(class, cmd.get("param-name").unwrap_or(""))?;
    if let (Some(k), true) = (cmd.get("param-key"), is_map(f)) {
        let v = get_map(ctx, &o, f)
            .into_iter()
            .find(|(mk, _)| mk == k)
            .map(|(_, v)| v)
            .ok_or_else(|| CliError::failure(format!("Key {k} not found in map")))?;
        p.print(Out::List(vec![v]));
    } else {
        let v = get(ctx, &o, f, true)?;
        p.print(Out::List(vec![v]));
    }
    Ok(())
}

/// `Record_util.bytes_of_string`: an integer with an optional unit (`b`, `KiB`/`kb`/`k`, `MiB`,
/// `GiB`, `TiB`, any case), as xe accepts for VM memory fields.
pub fn bytes_of_string(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let digits = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .count();
    let size: i64 = t[..digits].parse().ok()?;
    let suffix = t[digits..].split_whitespace().next().unwrap_or("");
    if size < 0 {
        return None;
    }
    let k: i64 = match suffix.to_ascii_lowercase().as_str() {
        "bytes" | "b" | "" => 1,
        "kib" | "kb" | "k" => 1 << 10,
        "mib" | "mb" | "m" => 1 << 20,
        "gib" | "gb" | "g" => 1 << 30,
        "tib" | "tb" | "t" => 1 << 40,
        _ => return None,
    };
    size.checked_mul(k)
}

/// Text to the wire value of a settable field, with xe's parse failures.
fn parse_for_set(ctx: &mut Ctx, f: &FieldDecl, v: &str) -> Result<Value, CliError> {
    if f.ty == Ty::Int && f.name.starts_with("memory_") {
        return bytes_of_string(v).map(Value::Int).ok_or_else(|| {
            CliError::failure(format!(
                "Failed to parse field '{}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{v}'",
                f.cli
            ))
        });
    }
    Ok(match f.ty {
        Ty::Int => Value::Int(v.trim().parse().map_err(|_| {
            CliError::failure(format!(
                "Failed to parse parameter '{}': expecting an integer",
                f.cli
            ))
        })?),
        Ty::Bool => Value::Bool(parse_bool(v).ok_or_else(|| {
            CliError::failure(format!(
                "Failed to parse parameter '{}': expecting a boolean (true or false)",
                f.cli
            ))
        })?),
        Ty::Float => Value::Float(v.trim().parse().map_err(|_| {
            CliError::failure(format!(
                "Failed to parse parameter '{}': expecting a float",
                f.cli
            ))
        })?),
        Ty::Ref(class) => {
            if v.is_empty() {
                Value::str(NULL_REF)
            } else {
                ctx.call(&format!("{class}.get_by_uuid"), &[v.into()])?
            }
        }
        _ => Value::str(v),
    })
}

/// Call `<class>.<m1>`, or `<class>.<m2>` if the server does not know `m1` (xapi names set
/// adders `add_<f>`; this project's model `add_to_<f>`).
fn call_either(
    ctx: &mut Ctx,
    class: &str,
    m1: &str,
    m2: &str,
    params: &[Value],
) -> Result<(), CliError> {
    match ctx.try_call(&format!("{class}.{m1}"), params)? {
        Ok(_) => Ok(()),
        Err(e) if e.code == "MESSAGE_METHOD_UNKNOWN" => {
            ctx.call(&format!("{class}.{m2}"), params).map(|_| ())
        }
        Err(e) => Err(CliError::Api(e)),
    }
}

fn param_set(class: &'static ClassDecl, cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let this: Value = o.reference.clone().into();
    for (k, v) in &cmd.params {
        if k == "uuid" || STDPARAMS.contains(&k.as_str()) {
            continue;
        }
        match field_ref(class, k).map_err(CliError::Failure)? {
            FieldRef::Map(f, key) => {
                if !mutable_collection(f) {
                    return Err(CliError::failure(format!(
                        "Map field '{}' is read-only.",
                        f.cli
                    )));
                }
                if get_map(ctx, &o, f).iter().any(|(mk, _)| *mk == key) {
                    ctx.call(
                        &format!("{}.remove_from_{}", class.name, f.name),
                        &[this.clone(), key.clone().into()],
                    )?;
                }
                ctx.call(
                    &format!("{}.add_to_{}", class.name, f.name),
                    &[this.clone(), key.into(), v.clone().into()],
                )?;
            }
            FieldRef::Set(..) => return Err(CliError::failure("Cannot param-set on set fields")),
            FieldRef::Normal(f) => {
                if !settable(f) {
                    return Err(CliError::failure(if mutable_collection(f) {
                        format!("Field '{k}' is a map or set. use the 'name:key=value' syntax.")
                    } else {
                        format!("Field '{k}' is read-only.")
                    }));
                }
                let value = parse_for_set(ctx, f, v)?;
                ctx.call(
                    &format!("{}.set_{}", class.name, f.name),
                    &[this.clone(), value],
                )?;
            }
        }
    }
    Ok(())
}

fn param_add(class: &'static ClassDecl, cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let f = lookup(class, cmd.get("param-name").unwrap_or(""))?;
    let this: Value = o.reference.clone().into();
    if is_set(f) && mutable_collection(f) {
        let Some(k) = cmd.get("param-key") else {
            return Err(CliError::failure(
                "When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>",
            ));
        };
        return call_either(
            ctx,
            class.name,
            &format!("add_{}", f.name),
            &format!("add_to_{}", f.name),
            &[this, k.into()],
        );
    }
    if is_map(f) && mutable_collection(f) {
        for (k, v) in &cmd.params {
            if ["uuid", "param-name", "param-key"].contains(&k.as_str())
                || STDPARAMS.contains(&k.as_str())
            {
                continue;
            }
            ctx.call(
                &format!("{}.add_to_{}", class.name, f.name),
                &[this.clone(), k.clone().into(), v.clone().into()],
            )?;
        }
        return Ok(());
    }
    if is_set(f) || is_map(f) {
        return Err(CliError::failure("Parameter is read-only"));
    }
    Err(CliError::failure(
        "Can only add to parameters of type Set or Map",
    ))
}

fn param_remove(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let f = lookup(class, cmd.get("param-name").unwrap_or(""))?;
    let key = cmd.get("param-key").unwrap_or("").to_string();
    let this: Value = o.reference.clone().into();
    if (is_set(f) || is_map(f)) && !mutable_collection(f) {
        return Err(CliError::failure(
            "Cannot remove parameters from read-only map",
        ));
    }
    if is_set(f) {
        if !get_set(ctx, &o, f).contains(&key) {
            return Err(CliError::failure(format!("Key {key} is not in the set")));
        }
        return call_either(
            ctx,
            class.name,
            &format!("remove_{}", f.name),
            &format!("remove_from_{}", f.name),
            &[this, key.into()],
        );
    }
    if is_map(f) {
        if !get_map(ctx, &o, f).iter().any(|(k, _)| *k == key) {
            return Err(CliError::failure(format!("Key {key} is not in map")));
        }
        ctx.call(
            &format!("{}.remove_from_{}", class.name, f.name),
            &[this, key.into()],
        )?;
        return Ok(());
    }
    Err(CliError::failure(
        "Can only remove from parameters of type Set or Map",
    ))
}

fn param_clear(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let f = lookup(class, cmd.get("param-name").unwrap_or(""))?;
    let this: Value = o.reference.clone().into();
    if is_set(f) && mutable_collection(f) {
        let raw = o.rec.get(f.name).cloned().unwrap_or_else(|| f.ty.zero());
        for m in raw.as_array().unwrap_or(&[]) {
            call_either(
                ctx,
                class.name,
                &format!("remove_{}", f.name),
                &format!("remove_from_{}", f.name),
                &[this.clone(), m.clone()],
            )?;
        }
        return Ok(());
    }
    if is_map(f) && mutable_collection(f) {
        for (k, _) in get_map(ctx, &o, f) {
            ctx.call(
                &format!("{}.remove_from_{}", class.name, f.name),
                &[this.clone(), k.into()],
            )?;
        }
        return Ok(());
    }
    if settable(f) {
        let v = parse_for_set(ctx, f, "")
            .map_err(|_| CliError::failure("Cannot clear this parameter"))?;
        return match ctx.try_call(&format!("{}.set_{}", class.name, f.name), &[this, v])? {
            Ok(_) => Ok(()),
            Err(_) => Err(CliError::failure("Cannot clear this parameter")),
        };
    }
    Err(CliError::failure("Can only clear RW parameters"))
}

/// Which objects a selector command acts on (`select_vms`, `select_hosts`).
struct Selection {
    /// The class.
    class: &'static str,
    /// The pseudo-field (`vm`, `host`) and the API fields it matches.
    pseudo: (&'static str, &'static [&'static str]),
    /// Filters xapi adds before the user's.
    defaults: &'static [(&'static str, &'static str)],
    /// The command's own parameters, which are not filters.
    ignore: &'static [&'static str],
    /// Plural used in xe's messages: `VMs`, `hosts`.
    what: &'static str,
}

const VM_SELECTION: Selection = Selection {
    class: "VM",
    pseudo: ("vm", &["uuid", "name_label"]),
    defaults: &[("is-a-template", "false")],
    ignore: &["on", "paused", "progress"],
    what: "VMs",
};

fn host_selection(ignore: &'static [&'static str]) -> Selection {
    Selection {
        class: "host",
        pseudo: ("host", &["uuid", "hostname", "name_label"]),
        defaults: &[],
        ignore,
        what: "hosts",
    }
}

fn select(sel: &Selection, cmd: &CommandLine, ctx: &mut Ctx) -> Result<Vec<Obj>, CliError> {
    let class = model::class(sel.class).expect("declared class");
    let mut objs = ctx.all(class)?;
    let (pseudo, fields) = sel.pseudo;
    if let Some(v) = cmd.get(pseudo) {
        objs.retain(|o| {
            fields
                .iter()
                .any(|f| o.rec.get(*f).map(value_text).as_deref() == Some(v))
        });
    }
    let mut filters: Vec<(String, String)> = sel
        .defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    filters.extend(
        cmd.params
            .iter()
            .filter(|(k, _)| {
                let stem = k.split(':').next().unwrap_or("");
                stem != pseudo && !STDPARAMS.contains(&stem) && !sel.ignore.contains(&stem)
            })
            .cloned(),
    );
    for (k, v) in &filters {
        objs = records::filter(ctx, objs, k, v)?;
    }
    Ok(objs)
}

/// `do_vm_op`/`do_host_op`: none is an error, one runs, several need `--multiple` (or are refused
/// when the operation takes one object only); with `--multiple` every failure is reported as
/// `operation failed on <uuid>: <msg>` on stdout.
fn on_each(
    sel: &Selection,
    objs: Vec<Obj>,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    multiple_ok: bool,
    mut op: impl FnMut(&mut Ctx, &Obj) -> Result<Result<(), model::ApiError>, CliError>,
) -> Result<(), CliError> {
    let what = sel.what;
    let matching = if sel.class == "VM" {
        "matches"
    } else {
        "matching"
    };
    match objs.len() {
        0 => return Err(CliError::failure(format!("No matching {what} found"))),
        1 => {
            return match op(ctx, &objs[0])? {
                Ok(()) => Ok(()),
                Err(e) => Err(CliError::Api(e)),
            }
        }
        _ if !multiple_ok => {
            let one = if sel.class == "VM" { "VM" } else { "host" };
            return Err(CliError::failure(format!(
                "Multiple {matching} {what} found. Operation can only be performed on one {one} at a time"
            )));
        }
        _ if !bool_param(cmd, "multiple")? => {
            return Err(CliError::failure(format!(
                "Multiple {matching} {what} found. --multiple required to complete the operation"
            )))
        }
        _ => {}
    }
    let mut failures = Vec::new();
    for o in &objs {
        if let Err(e) = op(ctx, o)? {
            let text = match e.decl() {
                Some(d) => {
                    let mut lines = vec![d.doc.to_string()];
                    for (i, n) in d.params.iter().enumerate() {
                        let v = match e.params.get(i) {
                            Some(p) => ctx.ref_convert(p),
                            None => "<unknown>".to_string(),
                        };
                        lines.push(format!("{n}: {v}"));
                    }
                    for extra in e.params.iter().skip(d.params.len()) {
                        lines.push(format!("<extra>: {}", ctx.ref_convert(extra)));
                    }
                    lines.join("\n")
                }
                None => format!("{}: [ {} ]", e.code, e.params.join("; ")),
            };
            let uuid = o.rec.get("uuid").map(value_text).unwrap_or_default();
            failures.push(format!("operation failed on {uuid}: {text}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        // xapi prepends each failure to its list, so the last one comes out first.
        failures.reverse();
        Err(CliError::Multiple(failures))
    }
}

/// `vm-start`: `select_vms` (control domains included, templates excluded), then `VM.start` or
/// `VM.start_on` for each.
fn vm_start(cmd: &CommandLine, ctx: &mut Ctx, x: Extras) -> Result<(), CliError> {
    let force = bool_param(cmd, "force")?;
    let paused = bool_param(cmd, "paused")?;
    let objs = select(&VM_SELECTION, cmd, ctx)?;
    let host = match cmd.get("on") {
        None => None,
        Some(h) => {
            let hosts = ctx.all(model::class("host").expect("host is declared"))?;
            let found = hosts.into_iter().find(|o| {
                o.rec.get("name_label").map(value_text).as_deref() == Some(h)
                    || o.rec.get("uuid").map(value_text).as_deref() == Some(h)
            });
            match found {
                Some(o) => Some(o.reference),
                None => return Err(CliError::failure(format!("Host {h} not found"))),
            }
        }
    };
    on_each(&VM_SELECTION, objs, cmd, ctx, true, |ctx, o| {
        let bar = x.interactive.then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            let name = o.rec.get("name_label").map(value_text).unwrap_or_default();
            b.set_message(format!("Starting VM {name}"));
            b.enable_steady_tick(std::time::Duration::from_millis(100));
            b
        });
        let vm: Value = o.reference.clone().into();
        let r = match &host {
            Some(h) => ctx.try_call(
                "VM.start_on",
                &[
                    vm,
                    h.clone().into(),
                    Value::Bool(paused),
                    Value::Bool(force),
                ],
            ),
            None => ctx.try_call("VM.start", &[vm, Value::Bool(paused), Value::Bool(force)]),
        };
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(r?.map(|_| ()))
    })
}

/// `host-evacuate`: exactly one host.
fn host_evacuate(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let network = match cmd.get("network-uuid") {
        Some(u) => ctx.call("network.get_by_uuid", &[u.into()])?,
        None => Value::str(NULL_REF),
    };
    let batch = match cmd.get("batch-size") {
        Some(b) => b.parse::<u64>().map_err(|_| {
            CliError::Api(model::ApiError::internal(format!(
                "Scanf.Scan_failure(\"scanf: bad input at char number 0: character '{}' is not a decimal digit\")",
                b.chars().next().unwrap_or(' ')
            )))
        })? as i64,
        None => 0,
    };
    let sel = host_selection(&["network-uuid", "batch-size"]);
    let objs = select(&sel, cmd, ctx)?;
    on_each(&sel, objs, cmd, ctx, false, |ctx, o| {
        ctx.try_call(
            "host.evacuate",
            &[
                o.reference.clone().into(),
                network.clone(),
                Value::Int(batch),
            ],
        )
        .map(|r| r.map(|_| ()))
    })
}

/// `host-disable [auto-enable=]`.
fn host_disable(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let auto_enable = match cmd.get("auto-enable") {
        None => true,
        Some(_) => bool_param(cmd, "auto-enable")?,
    };
    let sel = host_selection(&["auto-enable"]);
    let objs = select(&sel, cmd, ctx)?;
    on_each(&sel, objs, cmd, ctx, true, |ctx, o| {
        ctx.try_call(
            "host.disable",
            &[o.reference.clone().into(), Value::Bool(auto_enable)],
        )
        .map(|r| r.map(|_| ()))
    })
}

/// `host-enable`: drop `other-config:MAINTENANCE_MODE`, then `host.enable`.
fn host_enable(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let sel = host_selection(&[]);
    let objs = select(&sel, cmd, ctx)?;
    on_each(&sel, objs, cmd, ctx, true, |ctx, o| {
        let h: Value = o.reference.clone().into();
        if let Err(e) = ctx.try_call(
            "host.remove_from_other_config",
            &[h.clone(), "MAINTENANCE_MODE".into()],
        )? {
            return Ok(Err(e));
        }
        ctx.try_call("host.enable", &[h]).map(|r| r.map(|_| ()))
    })
}

/// Whether stdin and stderr are both terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> CommandLine {
        let w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        super::super::args::parse_command(&w).unwrap()
    }

    #[test]
    fn map_parameters_take_both_syntaxes_in_order() {
        let c = cmd(&[
            "pool-ha-enable",
            "ha-config:timeout=90",
            "ha-config-x=1",
            "ha-config=no",
        ]);
        assert_eq!(
            map_params(&c, "ha-config"),
            [
                ("timeout".to_string(), "90".to_string()),
                ("x".to_string(), "1".to_string())
            ]
        );
    }

    #[test]
    fn memory_sizes_take_units() {
        assert_eq!(bytes_of_string("512"), Some(512));
        assert_eq!(bytes_of_string("1GiB"), Some(1 << 30));
        assert_eq!(bytes_of_string("256 mib"), Some(256 << 20));
        assert_eq!(bytes_of_string("2k"), Some(2048));
        assert_eq!(bytes_of_string("1PiB"), None);
        assert_eq!(bytes_of_string("-1"), None);
        assert_eq!(bytes_of_string("lots"), None);
    }

    #[test]
    fn booleans_are_xes() {
        let c = cmd(&["x", "a=YES", "b=0", "c=maybe"]);
        assert!(bool_param(&c, "a").unwrap());
        assert!(!bool_param(&c, "b").unwrap());
        assert!(!bool_param(&c, "missing").unwrap());
        match bool_param(&c, "c") {
            Err(CliError::Failure(m)) => assert_eq!(
                m,
                "Failed to parse parameter 'c': Expected 'true','t','yes','y','1','false','f','no','n','0' got maybe"
            ),
            other => panic!("{other:?}"),
        }
    }
}
