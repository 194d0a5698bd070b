//! Commands that act on objects chosen by selectors (`select_vms`, `select_hosts`,
//! `do_vm_op`, `do_host_op`): `vm-start`, `host-evacuate`, `host-disable`, `host-enable`.

use super::super::args::CommandLine;
use super::super::errors::CliError;
use super::super::records::{self, Ctx, Obj};
use super::{bool_param, Extras, STDPARAMS};
use crate::client::value_text;
use crate::model::{self, Value, NULL_REF};

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
pub(super) fn vm_start(cmd: &CommandLine, ctx: &mut Ctx, x: Extras) -> Result<(), CliError> {
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

/// `host-evacuate`: exactly one host. On a terminal a spinner says how many VMs are moving; the
/// move itself is one atomic call (it moves everything or nothing), so there are no per-VM
/// steps to show.
pub(super) fn host_evacuate(cmd: &CommandLine, ctx: &mut Ctx, x: Extras) -> Result<(), CliError> {
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
        let bar = match x.interactive {
            true => {
                let vms = ctx.call("host.get_resident_VMs", &[o.reference.clone().into()])?;
                let n = vms.as_array().map_or(0, <[Value]>::len);
                let name = o.rec.get("name_label").map(value_text).unwrap_or_default();
                let b = indicatif::ProgressBar::new_spinner();
                b.set_message(format!("Evacuating {name}: moving {n} VM(s)"));
                b.enable_steady_tick(std::time::Duration::from_millis(100));
                Some(b)
            }
            false => None,
        };
        let r = ctx.try_call(
            "host.evacuate",
            &[
                o.reference.clone().into(),
                network.clone(),
                Value::Int(batch),
            ],
        );
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        r.map(|r| r.map(|_| ()))
    })
}

/// `host-disable [auto-enable=]`.
pub(super) fn host_disable(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
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
pub(super) fn host_enable(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
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

fn vm_selection(ignore: &'static [&'static str]) -> Selection {
    Selection {
        ignore,
        ..VM_SELECTION
    }
}

/// `vm-shutdown [--force]`: `VM.hard_shutdown` with `--force`, else `VM.clean_shutdown`.
pub(super) fn vm_shutdown(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let force = bool_param(cmd, "force")?;
    let method = if force {
        "VM.hard_shutdown"
    } else {
        "VM.clean_shutdown"
    };
    vm_op(cmd, ctx, &["progress"], method)
}

/// `vm-reboot [--force]`: `VM.hard_reboot` with `--force`, else `VM.clean_reboot`.
pub(super) fn vm_reboot(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let force = bool_param(cmd, "force")?;
    let method = if force {
        "VM.hard_reboot"
    } else {
        "VM.clean_reboot"
    };
    vm_op(cmd, ctx, &[], method)
}

fn vm_op(
    cmd: &CommandLine,
    ctx: &mut Ctx,
    ignore: &'static [&'static str],
    method: &str,
) -> Result<(), CliError> {
    let sel = vm_selection(ignore);
    let objs = select(&sel, cmd, ctx)?;
    on_each(&sel, objs, cmd, ctx, true, |ctx, o| {
        ctx.try_call(method, &[o.reference.clone().into()])
            .map(|r| r.map(|_| ()))
    })
}

/// `vm-migrate` within the pool: `VM.pool_migrate(vm, host, options)` with xapi's options map
/// (`force`, `live`, `copy` as `true`/`false`, plus `compress` when given). Cross-pool
/// (storage) migration is not supported by this `xe`.
pub(super) fn vm_migrate(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    // xapi's backwards-compatibility hack: host-uuid and host-name mean host.
    let mut cmd = cmd.clone();
    for (k, _) in cmd.params.iter_mut() {
        if k == "host-uuid" || k == "host-name" {
            *k = "host".into();
        }
    }
    let cmd = &cmd;
    let mut options: Vec<(String, String)> = Vec::new();
    if let Some(c) = cmd.get("compress") {
        options.push(("compress".into(), c.into()));
    }
    for k in ["force", "live", "copy"] {
        let v = match cmd.get(k) {
            None => false,
            Some(_) => bool_param(cmd, k)?,
        };
        options.push((k.into(), v.to_string()));
    }
    const SXM: &[&str] = &[
        "remote-master",
        "remote-username",
        "remote-password",
        "remote-network",
        "vif",
        "vdi",
        "image-format",
        "vgpu",
    ];
    if cmd
        .params
        .iter()
        .any(|(k, _)| SXM.iter().any(|p| k.starts_with(p)))
    {
        return Err(CliError::failure(
            "Cross-pool and storage migration are not supported by this xe",
        ));
    }
    let Some(h) = cmd.get("host") else {
        return Err(CliError::failure("No destination host specified"));
    };
    let hosts = ctx.all(model::class("host").expect("host is declared"))?;
    let found = hosts.into_iter().find(|o| {
        ["uuid", "name_label", "hostname"]
            .iter()
            .any(|f| o.rec.get(*f).map(value_text).as_deref() == Some(h))
    });
    let host: Value = match found {
        Some(o) => o.reference.into(),
        None => return Err(CliError::failure(format!("Host {h} not found"))),
    };
    let options = Value::string_map(options);
    let sel = vm_selection(&["host", "host-uuid", "host-name", "live", "compress"]);
    let objs = select(&sel, cmd, ctx)?;
    on_each(&sel, objs, cmd, ctx, true, |ctx, o| {
        ctx.try_call(
            "VM.pool_migrate",
            &[o.reference.clone().into(), host.clone(), options.clone()],
        )
        .map(|r| r.map(|_| ()))
    })
}

/// `host-shutdown`/`host-reboot` (`do_host_op`, several hosts with `--multiple`).
pub(super) fn host_power(cmd: &CommandLine, ctx: &mut Ctx, method: &str) -> Result<(), CliError> {
    let sel = host_selection(&[]);
    let objs = select(&sel, cmd, ctx)?;
    on_each(&sel, objs, cmd, ctx, true, |ctx, o| {
        ctx.try_call(method, &[o.reference.clone().into()])
            .map(|r| r.map(|_| ()))
    })
}
