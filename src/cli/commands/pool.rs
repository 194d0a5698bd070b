//! Pool membership, host removal, single-VM record commands and local users: `pool-join`,
//! `pool-eject`, `host-forget`, `vm-destroy`, and the extensions `vm-create` and `user-*`.

use std::io::BufRead;

use indexmap::IndexMap;

use super::super::args::CommandLine;
use super::super::errors::CliError;
use super::super::printer::{Out, Printer, Rec};
use super::super::records::Ctx;
use super::{bool_param, bytes_of_string, map_params, FUSE_TIME, STDPARAMS};
use crate::client::{value_text, TransportError};
use crate::model::{self, ApiError, Value};

/// `pool_join`: `pool.join` or `pool.join_force` on the host we talk to.
pub(super) fn pool_join(cmd: &CommandLine, ctx: &mut Ctx, p: &mut Printer) -> Result<(), CliError> {
    let force = bool_param(cmd, "force")?;
    let arg = |k: &str| Value::str(cmd.get(k).unwrap_or(""));
    let method = if force {
        "pool.join_force"
    } else {
        "pool.join"
    };
    let r = ctx.try_call(
        method,
        &[
            arg("master-address"),
            arg("master-username"),
            arg("master-password"),
        ],
    )?;
    match r {
        Ok(_) => {
            p.print(Out::List(vec![format!(
                "Host agent will restart and attempt to join pool in {FUSE_TIME} seconds..."
            )]));
            Ok(())
        }
        Err(e) if e.code == "JOINING_HOST_CONNECTION_FAILED" => {
            p.print(Out::List(vec![
                "Host cannot contact destination host: connection refused.".into(),
                "Check destination host has services running and accessible from this host.".into(),
            ]));
            Ok(())
        }
        Err(e) => Err(CliError::Api(e)),
    }
}

/// `user_says_yes`: print xe's prompt, read one line from stdin. xe's client dies with
/// `Lost connection to the server.` when stdin is at its end (`input_line` raises
/// `End_of_file`); anything but `yes` prints `Aborted (you typed: '…')` and succeeds.
fn user_says_yes(p: &mut Printer) -> Result<bool, CliError> {
    p.line("Type 'yes' to continue");
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| lost(e.to_string()))?;
    if n == 0 {
        return Err(lost("end of input".into()));
    }
    let response = line.strip_suffix('\n').unwrap_or(&line);
    if response.trim().eq_ignore_ascii_case("yes") {
        return Ok(true);
    }
    p.line(&format!("Aborted (you typed: '{response}')"));
    Ok(false)
}

fn lost(why: String) -> CliError {
    CliError::Transport(
        TransportError::Lost(why),
        super::super::errors::TransportKind::Plain,
    )
}

fn host_by_uuid(ctx: &mut Ctx, uuid: &str) -> Result<Value, CliError> {
    ctx.call("host.get_by_uuid", &[uuid.into()])
}

/// The VDIs in SRs only `host` can see (`pool_eject`'s best-effort warning); any failure on the
/// way means no warning, as in xapi.
fn local_vdis(ctx: &mut Ctx, host: &Value) -> Vec<String> {
    let mut go = || -> Result<Vec<String>, CliError> {
        let mut srs = Vec::new();
        let pbds = ctx.call("host.get_PBDs", std::slice::from_ref(host))?;
        for pbd in pbds.as_array().unwrap_or(&[]) {
            let Ok(Ok(sr)) = ctx.try_call("PBD.get_SR", std::slice::from_ref(pbd)) else {
                continue;
            };
            let Ok(Ok(others)) = ctx.try_call("SR.get_PBDs", std::slice::from_ref(&sr)) else {
                continue;
            };
            let mut shared = false;
            for o in others.as_array().unwrap_or(&[]) {
                if let Ok(Ok(h)) = ctx.try_call("PBD.get_host", std::slice::from_ref(o)) {
                    shared |= value_text(&h) != value_text(host);
                }
            }
            if !shared {
                srs.push(sr);
            }
        }
        let mut warnings = Vec::new();
        for sr in srs {
            let Ok(Ok(vdis)) = ctx.try_call("SR.get_VDIs", &[sr]) else {
                continue;
            };
            for vdi in vdis.as_array().unwrap_or(&[]) {
                let uuid = ctx.try_call("VDI.get_uuid", std::slice::from_ref(vdi))?;
                let name = ctx.try_call("VDI.get_name_label", std::slice::from_ref(vdi))?;
                if let (Ok(u), Ok(n)) = (uuid, name) {
                    // xapi prepends, so the last VDI is listed first.
                    warnings.insert(0, format!("VDI: {} ({})", value_text(&u), value_text(&n)));
                }
            }
        }
        Ok(warnings)
    };
    go().unwrap_or_default()
}

/// `pool_eject`: with `--force` at once, otherwise xe's warnings and `Type 'yes'` prompt.
pub(super) fn pool_eject(
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
) -> Result<(), CliError> {
    let host = host_by_uuid(ctx, cmd.get("host-uuid").unwrap_or(""))?;
    let force = bool_param(cmd, "force")?;
    if !force {
        let warnings = local_vdis(ctx, &host);
        p.line("WARNING: Ejecting a host from the pool will reinitialise that host's local SRs.");
        p.line("WARNING: Any data contained with the local SRs will be lost.");
        if !warnings.is_empty() {
            p.line("The following VDI objects will be destroyed:");
            for w in &warnings {
                p.line(w);
            }
        }
        if !user_says_yes(p)? {
            return Ok(());
        }
    }
    ctx.call("pool.eject", &[host])?;
    p.print(Out::List(vec![format!(
        "Specified host will attempt to restart as a master of a new pool in {FUSE_TIME} seconds..."
    )]));
    Ok(())
}

/// `host_forget` (`host_careful_op Host.destroy`).
pub(super) fn host_forget(
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
) -> Result<(), CliError> {
    let host = host_by_uuid(ctx, cmd.get("uuid").unwrap_or(""))?;
    if !bool_param(cmd, "force")? {
        for w in [
            "WARNING: A host should only be forgotten if it is physically unrecoverable;",
            "WARNING: if possible, Hosts should be 'ejected' from the Pool instead.",
            "WARNING: Once a host has been forgotten it will have to be re-installed.",
            "WARNING: This operation is irreversible.",
        ] {
            p.line(w);
        }
        if !user_says_yes(p)? {
            return Ok(());
        }
    }
    ctx.call("host.destroy", &[host])?;
    Ok(())
}

/// `vm_destroy`: control domains are refused before the call.
pub(super) fn vm_destroy(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let vm = ctx.call("VM.get_by_uuid", &[cmd.get("uuid").unwrap_or("").into()])?;
    let control = ctx.call("VM.get_is_control_domain", std::slice::from_ref(&vm))?;
    if matches!(control, Value::Bool(true)) || value_text(&control) == "true" {
        return Err(CliError::Api(ApiError::new(
            "OPERATION_NOT_ALLOWED",
            ["You cannot destroy a control domain via the CLI"],
        )));
    }
    ctx.call("VM.destroy", &[vm])?;
    Ok(())
}

/// `vm-create` (extension): `VM.create` with the given fields; prints the new uuid as
/// `vm-install` does.
pub(super) fn vm_create(cmd: &CommandLine, ctx: &mut Ctx, p: &mut Printer) -> Result<(), CliError> {
    let mut rec: IndexMap<String, Value> = IndexMap::new();
    rec.insert(
        "name_label".into(),
        Value::str(cmd.get("name-label").unwrap_or("")),
    );
    if let Some(d) = cmd.get("name-description") {
        rec.insert("name_description".into(), Value::str(d));
    }
    if let Some(m) = cmd.get("memory-static-max") {
        let bytes = bytes_of_string(m).ok_or_else(|| {
            CliError::failure(format!(
                "Failed to parse field 'memory-static-max': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{m}'"
            ))
        })?;
        rec.insert("memory_static_max".into(), Value::Int(bytes));
    }
    if let Some(h) = cmd.get("affinity") {
        let hosts = ctx.all(model::class("host").expect("host is declared"))?;
        let found = hosts.into_iter().find(|o| {
            o.rec.get("uuid").map(value_text).as_deref() == Some(h)
                || o.rec.get("name_label").map(value_text).as_deref() == Some(h)
        });
        match found {
            Some(o) => rec.insert("affinity".into(), Value::str(o.reference)),
            None => return Err(CliError::failure(format!("Host {h} not found"))),
        };
    }
    let other = map_params(cmd, "other-config");
    if !other.is_empty() {
        rec.insert("other_config".into(), Value::string_map(other));
    }
    let vm = ctx.call("VM.create", &[Value::Struct(rec)])?;
    let uuid = ctx.call("VM.get_uuid", &[vm])?;
    p.print(Out::List(vec![value_text(&uuid)]));
    Ok(())
}

/// `user-add` (extension): `user.create_local`, printing the new user's uuid.
pub(super) fn user_add(cmd: &CommandLine, ctx: &mut Ctx, p: &mut Printer) -> Result<(), CliError> {
    let arg = |k: &str| Value::str(cmd.get(k).unwrap_or(""));
    let u = ctx.call(
        "user.create_local",
        &[arg("user-name"), arg("user-password"), arg("role")],
    )?;
    let uuid = ctx.call("user.get_uuid", &[u])?;
    p.print(Out::List(vec![value_text(&uuid)]));
    Ok(())
}

/// The user class has no xe name, so `user-list` prints these fields itself.
const USER_FIELDS: &[(&str, &str, &str)] = &[
    ("uuid", "uuid", " RO"),
    ("short-name", "short_name", " RO"),
    ("role", "role", " RO"),
];

/// `user-list [params=…] [field=value…]` (extension): uuid, short-name and role records in
/// xe's layout, filtered on equality like `<class>-list`.
pub(super) fn user_list(cmd: &CommandLine, ctx: &mut Ctx, p: &mut Printer) -> Result<(), CliError> {
    let wanted: Option<Vec<&str>> = match cmd.get("params") {
        None | Some("all") => None,
        Some(ps) => Some(ps.split(',').collect()),
    };
    let filters: Vec<&(String, String)> = cmd
        .params
        .iter()
        .filter(|(k, _)| k != "params" && !STDPARAMS.contains(&k.as_str()))
        .collect();
    let all = ctx.call("user.get_all_records", &[])?;
    let mut table: Vec<Rec> = Vec::new();
    for rec in all.as_struct().map(|m| m.values()).into_iter().flatten() {
        let Some(r) = rec.as_struct() else { continue };
        let mut keep = true;
        for (k, v) in &filters {
            let Some((_, api, _)) = USER_FIELDS.iter().find(|(cli, _, _)| cli == k) else {
                return Err(CliError::failure(format!("Unknown field '{k}'")));
            };
            keep &= r.get(*api).map(value_text).as_deref() == Some(v.as_str());
        }
        if !keep {
            continue;
        }
        table.push(
            USER_FIELDS
                .iter()
                .filter(|(cli, _, _)| wanted.as_ref().is_none_or(|w| w.contains(cli)))
                .map(|(cli, api, m)| {
                    (
                        format!("{cli} ({m})"),
                        r.get(*api).map(value_text).unwrap_or_default(),
                    )
                })
                .collect(),
        );
    }
    p.print(Out::Table(table));
    Ok(())
}

fn user_by_uuid(ctx: &mut Ctx, cmd: &CommandLine) -> Result<Value, CliError> {
    ctx.call("user.get_by_uuid", &[cmd.get("uuid").unwrap_or("").into()])
}

/// `user-remove uuid=` (extension).
pub(super) fn user_remove(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let u = user_by_uuid(ctx, cmd)?;
    ctx.call("user.destroy", &[u])?;
    Ok(())
}

/// `user-set-role uuid= role=` (extension).
pub(super) fn user_set_role(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let u = user_by_uuid(ctx, cmd)?;
    ctx.call("user.set_role", &[u, cmd.get("role").unwrap_or("").into()])?;
    Ok(())
}

/// `user-set-password uuid= user-password=` (extension).
pub(super) fn user_set_password(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let u = user_by_uuid(ctx, cmd)?;
    ctx.call(
        "user.change_password",
        &[u, cmd.get("user-password").unwrap_or("").into()],
    )?;
    Ok(())
}
