//! The command implementations (`cli_operations.ml`): the generic `-list`/`-param-*` commands
//! over any class of the model, and the HA, CPU and VM commands this `xe` supports. Each
//! returns what to print through the [`Printer`] or a [`CliError`]; none formats an error itself.
//!
//! `generic` holds the per-class commands, `select` the selector commands; the HA and CPU
//! commands, each a call or two, are here.

mod generic;
mod pool;
mod select;
mod storage;
pub mod whatif;

pub use generic::bytes_of_string;

use std::io::IsTerminal;

use super::args::CommandLine;
use super::errors::CliError;
use super::printer::{Out, Printer, Rec};
use super::records::Ctx;
use super::table::{Command, Op};
use crate::client::value_text;
use crate::model::{self, parse_bool, Value};

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

impl Format {
    /// Every `--output` value and what it selects, the default first; parsing, the error text,
    /// the man page and the completions all read it.
    pub const NAMES: [(&'static str, Format); 3] = [
        ("xe", Format::Xe),
        ("json", Format::Json),
        ("table", Format::Table),
    ];

    /// The format named `name` on the command line.
    pub fn parse(name: &str) -> Option<Format> {
        Format::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// Its `--output` name.
    pub fn name(self) -> &'static str {
        Format::NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .expect("every format has a name")
    }

    /// The names, space separated (for completion word lists).
    pub fn names() -> String {
        Format::NAMES.map(|(n, _)| n).join(" ")
    }
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
        Op::List(class) => generic::list(class, cmd, ctx, p, x),
        Op::ParamList(class) => generic::param_list(class, cmd, ctx, p, x),
        Op::ParamGet(class) => generic::param_get(class, cmd, ctx, p),
        Op::ParamSet(class) => generic::param_set(class, cmd, ctx),
        Op::ParamAdd(class) => generic::param_add(class, cmd, ctx),
        Op::ParamRemove(class) => generic::param_remove(class, cmd, ctx),
        Op::ParamClear(class) => generic::param_clear(class, cmd, ctx),
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
            let args = [Value::Array(srs), Value::string_map(config)];
            with_spinner(x.interactive, "Enabling HA on the pool", || {
                ctx.call("pool.enable_ha", &args)
            })?;
            Ok(())
        }
        Op::PoolHaDisable => {
            with_spinner(x.interactive, "Disabling HA on the pool", || {
                ctx.call("pool.disable_ha", &[])
            })?;
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
        Op::VmStart => select::vm_start(cmd, ctx, x),
        Op::HostEvacuate => select::host_evacuate(cmd, ctx, x),
        Op::HostDisable => select::host_disable(cmd, ctx),
        Op::HostEnable => select::host_enable(cmd, ctx),
        Op::PoolJoin => pool::pool_join(cmd, ctx, p),
        Op::PoolEject => pool::pool_eject(cmd, ctx, p),
        Op::HostForget => pool::host_forget(cmd, ctx, p),
        Op::VmShutdown => select::vm_shutdown(cmd, ctx),
        Op::VmReboot => select::vm_reboot(cmd, ctx),
        Op::VmDestroy => pool::vm_destroy(cmd, ctx),
        Op::VmMigrate => select::vm_migrate(cmd, ctx),
        Op::VmCreate => pool::vm_create(cmd, ctx, p),
        Op::UserAdd => pool::user_add(cmd, ctx, p),
        Op::UserList => pool::user_list(cmd, ctx, p),
        Op::UserRemove => pool::user_remove(cmd, ctx),
        Op::UserSetRole => pool::user_set_role(cmd, ctx),
        Op::UserSetPassword => pool::user_set_password(cmd, ctx),
        Op::PoolDesignateNewMaster => {
            let uuid = cmd.get("host-uuid").unwrap_or("");
            let host = ctx.call("host.get_by_uuid", &[uuid.into()])?;
            ctx.call("pool.designate_new_master", &[host])?;
            Ok(())
        }
        Op::HostShutdown => select::host_power(cmd, ctx, "host.shutdown"),
        Op::HostReboot => select::host_power(cmd, ctx, "host.reboot"),
        Op::SrCreate => storage::sr_create(cmd, ctx, p),
        Op::VdiCreate => storage::vdi_create(cmd, ctx, p),
        Op::PoolDumpDatabase => whatif::dump(cmd, ctx),
        Op::PoolHaWhatIf => whatif::what_if(cmd, whatif::Source::Pool(ctx), p, x.format),
        Op::PbdPlug | Op::PbdUnplug => {
            let uuid = cmd.get("uuid").unwrap_or("");
            let pbd = ctx.call("PBD.get_by_uuid", &[uuid.into()])?;
            let method = match c.op {
                Op::PbdPlug => "PBD.plug",
                _ => "PBD.unplug",
            };
            ctx.call(method, &[pbd])?;
            Ok(())
        }
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

/// Run `f` under an indicatif spinner saying `msg` on stderr, on a terminal only: xe itself
/// prints nothing while a long call runs, so scripts must see nothing either. The first frame is
/// drawn at once, so even a quick refusal shows what was attempted.
fn with_spinner<T>(interactive: bool, msg: &str, f: impl FnOnce() -> T) -> T {
    let bar = interactive.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(msg.to_string());
        b.tick();
        b.enable_steady_tick(std::time::Duration::from_millis(100));
        b
    });
    let r = f();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    r
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
