//! The command table: one declaration per `xe` command, read by the parser (required
//! parameters), `xe help` in all its forms, the man page and the shell completions.
//!
//! The explicit commands carry xapi's help texts verbatim (`cli_frontend.ml`); the generic
//! `<class>-list`/`-param-*` commands are generated from the model exactly as xapi's `gen_cmds`
//! generates them, so their parameter lists follow the class table.

use std::sync::OnceLock;

use super::records::{cli_fields, is_map, is_set, mutable_collection, settable};
use crate::model::{self, ClassDecl};

/// What a command does.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// `<class>-list`.
    List(&'static ClassDecl),
    /// `<class>-param-list`.
    ParamList(&'static ClassDecl),
    /// `<class>-param-get`.
    ParamGet(&'static ClassDecl),
    /// `<class>-param-set`.
    ParamSet(&'static ClassDecl),
    /// `<class>-param-add`.
    ParamAdd(&'static ClassDecl),
    /// `<class>-param-remove`.
    ParamRemove(&'static ClassDecl),
    /// `<class>-param-clear`.
    ParamClear(&'static ClassDecl),
    /// `host-cpu-info`.
    HostCpuInfo,
    /// `host-is-in-emergency-mode`.
    HostIsInEmergencyMode,
    /// `host-emergency-ha-disable`.
    HostEmergencyHaDisable,
    /// `pool-ha-enable`.
    PoolHaEnable,
    /// `pool-ha-disable`.
    PoolHaDisable,
    /// `pool-emergency-transition-to-master`.
    PoolEmergencyTransitionToMaster,
    /// `pool-emergency-reset-master`.
    PoolEmergencyResetMaster,
    /// `pool-recover-slaves`.
    PoolRecoverSlaves,
    /// `pool-ha-compute-max-host-failures-to-tolerate`.
    PoolHaComputeMax,
    /// `pool-ha-compute-hypothetical-max-host-failures-to-tolerate`.
    PoolHaComputeHypotheticalMax,
    /// `pool-ha-prevent-restarts-for`.
    PoolHaPreventRestartsFor,
    /// `vm-start`.
    VmStart,
    /// `host-evacuate`.
    HostEvacuate,
    /// `host-disable`.
    HostDisable,
    /// `host-enable`.
    HostEnable,
    /// `pool-join`.
    PoolJoin,
    /// `pool-eject`.
    PoolEject,
    /// `host-forget`.
    HostForget,
    /// `vm-shutdown`.
    VmShutdown,
    /// `vm-reboot`.
    VmReboot,
    /// `vm-destroy`.
    VmDestroy,
    /// `vm-migrate`.
    VmMigrate,
    /// `vm-create` (an extension).
    VmCreate,
    /// `user-add` (an extension).
    UserAdd,
    /// `user-list` (an extension).
    UserList,
    /// `user-remove` (an extension).
    UserRemove,
    /// `user-set-role` (an extension).
    UserSetRole,
    /// `user-set-password` (an extension).
    UserSetPassword,
    /// `pool-designate-new-master`.
    PoolDesignateNewMaster,
    /// `host-shutdown`.
    HostShutdown,
    /// `host-reboot`.
    HostReboot,
    /// `pbd-plug`.
    PbdPlug,
    /// `pbd-unplug`.
    PbdUnplug,
    /// `sr-create`.
    SrCreate,
    /// `vdi-create`.
    VdiCreate,
    /// `pool-dump-database` (writes this toolstack's JSON planning snapshot, not xapi's XML).
    PoolDumpDatabase,
    /// `pool-ha-what-if` (an extension).
    PoolHaWhatIf,
}

/// Selector kinds a command takes (appended to its help).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selectors {
    /// None.
    None,
    /// `<vm-selectors>`.
    Vm,
    /// `<host-selectors>`.
    Host,
}

/// One command.
#[derive(Clone, Debug)]
pub struct Command {
    /// Name, e.g. `pool-ha-enable`.
    pub name: String,
    /// Required parameters, checked before connecting.
    pub reqd: Vec<String>,
    /// Optional parameters (as `xe help` lists them).
    pub optn: Vec<String>,
    /// Help text, verbatim from xapi.
    pub help: String,
    /// In `xe help`'s common list.
    pub standard: bool,
    /// Left out of `xe help` listings.
    pub hidden: bool,
    /// Runs with a host-local session (`slave_local_login_with_password`), never forwarded.
    pub local_session: bool,
    /// Selector parameters.
    pub selectors: Selectors,
    /// The implementation.
    pub op: Op,
}

/// The classes this `xe` generates `-list`/`-param-*` commands for.
pub const CLI_CLASSES: &[&str] = &[
    "pool", "host", "host_cpu", "SR", "PBD", "VDI", "VM", "message",
];

/// `vmselectorsinfo`, verbatim.
pub const VM_SELECTORS_INFO: &str = " VMs can be specified by filtering the full list of VMs on the values of zero or more fields. For example, specifying 'uuid=<some_uuid>' will select only the VM with that uuid, and 'power-state=halted' will select only VMs whose 'power-state' field is equal to 'halted'. The special pseudo-field 'vm' matches either of name-label or uuid. Where multiple VMs are matching, the option '--multiple' must be specified to perform the operation. The full list of fields that can be matched can be obtained by the command 'xe vm-list params=all'. If no parameters to select VMs are given, the operation will be performed on all VMs.";

/// `hostselectorsinfo`, verbatim.
pub const HOST_SELECTORS_INFO: &str = " Hosts can be specified by filtering the full list of hosts on the values of zero or more fields. For example, specifying 'uuid=<some_uuid>' will select only the host with that uuid, and 'enabled=true' will select only hosts whose 'enabled' field is equal to 'true'. The special pseudo-field 'host' matches any of hostname, name-label or uuid. Where multiple hosts are matching, and the operation can be performed on multiple hosts, the option '--multiple' must be specified to perform the operation. The full list of fields that can be matched can be obtained by the command 'xe host-list params=all'. If no parameters to select hosts are given, the operation will be performed on all hosts.";

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn cmd(name: &str, reqd: &[&str], optn: &[&str], help: &str, op: Op) -> Command {
    Command {
        name: name.into(),
        reqd: strs(reqd),
        optn: strs(optn),
        help: help.into(),
        standard: false,
        hidden: false,
        local_session: false,
        selectors: Selectors::None,
        op,
    }
}

fn local(mut c: Command) -> Command {
    c.local_session = true;
    c
}

/// `gen_frontend` for one class.
fn generated(c: &'static ClassDecl) -> Vec<Command> {
    let shown: Vec<_> = cli_fields(c).filter(|f| !f.hidden).collect();
    let all_optn: Vec<String> = shown.iter().map(|f| f.cli.to_string()).collect();
    let mut settable_names: Vec<String> = shown
        .iter()
        .filter(|f| settable(f))
        .map(|f| f.cli.to_string())
        .collect();
    settable_names.extend(
        shown
            .iter()
            .filter(|f| is_map(f) && mutable_collection(f))
            .map(|f| format!("{}:", f.cli)),
    );
    let addable = shown.iter().any(|f| mutable_collection(f));
    let clearable: Vec<String> = shown
        .iter()
        .filter(|f| settable(f) || is_set(f) || is_map(f))
        .map(|f| f.cli.to_string())
        .collect();
    let sm: Vec<String> = shown
        .iter()
        .filter(|f| is_set(f))
        .map(|f| format!("{}:contains", f.cli))
        .collect();
    let n = |s: &str| format!("{}-{s}", c.cli);
    let plural = format!("{}s", c.cli);
    let mut list_optn = vec!["params".to_string(), "database:".to_string()];
    list_optn.extend(all_optn);
    list_optn.extend(sm);
    let mut list = cmd(
        &n("list"),
        &[],
        &[],
        &format!("Lists all the {plural}, filtering on the optional arguments. To filter on map parameters, use the syntax 'map-param:key=value'"),
        Op::List(c),
    );
    list.optn = list_optn;
    list.standard = matches!(c.cli, "vm" | "network" | "sr");
    let mut out = vec![
        list,
        cmd(
            &n("param-list"),
            &["uuid"],
            &["database:"],
            "Lists all the parameters of the object specified by the uuid.",
            Op::ParamList(c),
        ),
        cmd(
            &n("param-get"),
            &["uuid", "param-name"],
            &["param-key", "database:"],
            "Gets the parameter specified of the object. If the parameter is a map of key=value pairs, use 'param-key=<key>' to get the value associated with a particular key.",
            Op::ParamGet(c),
        ),
    ];
    if !settable_names.is_empty() {
        let mut s = cmd(
            &n("param-set"),
            &["uuid"],
            &[],
            "Sets the parameter specified. If param-value is not given, the parameter is set to a null value. To set a (key,value) pair in a map parameter, use the syntax 'map-param:key=value'.",
            Op::ParamSet(c),
        );
        s.optn = settable_names;
        out.push(s);
    }
    if addable {
        out.push(cmd(
            &n("param-add"),
            &["uuid", "param-name"],
            &["param-key"],
            "Adds to a set or map parameter. If the parameter is a set, use param-key=<key to add>. If the parameter is a map, pass the values to add as 'key=value' pairs.",
            Op::ParamAdd(c),
        ));
        out.push(cmd(
            &n("param-remove"),
            &["uuid", "param-name", "param-key"],
            &[],
            "Removes a member or a key,value pair from a set/map respectively.",
            Op::ParamRemove(c),
        ));
    }
    if !clearable.is_empty() {
        out.push(cmd(
            &n("param-clear"),
            &["uuid", "param-name"],
            &[],
            &format!(
                "Clears the specified parameter (param-name can be {}).",
                clearable.join(",")
            ),
            Op::ParamClear(c),
        ));
    }
    out
}

fn explicit() -> Vec<Command> {
    let mut vm_start = cmd(
        "vm-start",
        &[],
        &["force", "on", "paused"],
        "Start the selected VM(s). Where pooling is enabled, the host on which to start can be specified with the 'on' parameter that takes a uuid. The optional parameter '--force' will bypass any hardware-compatibility warnings.",
        Op::VmStart,
    );
    vm_start.standard = true;
    vm_start.selectors = Selectors::Vm;
    let host_op = |name: &str, optn: &[&str], help: &str, op: Op| {
        let mut c = cmd(name, &[], optn, help, op);
        c.selectors = Selectors::Host;
        c
    };
    let vm_op = |name: &str, optn: &[&str], help: &str, op: Op| {
        let mut c = cmd(name, &[], optn, help, op);
        c.selectors = Selectors::Vm;
        c.standard = true;
        c
    };
    let mut prevent = cmd(
        "pool-ha-prevent-restarts-for",
        &["seconds"],
        &[],
        "Prevent HA VM restarts for a given number of seconds",
        Op::PoolHaPreventRestartsFor,
    );
    prevent.hidden = true;
    vec![
        cmd(
            "host-cpu-info",
            &[],
            &["uuid"],
            "Lists information about the host's physical CPUs.",
            Op::HostCpuInfo,
        ),
        local(cmd(
            "host-is-in-emergency-mode",
            &[],
            &[],
            "Query the target host to discover if it is in emergency mode.",
            Op::HostIsInEmergencyMode,
        )),
        local(cmd(
            "host-emergency-ha-disable",
            &[],
            &["force", "soft"],
            "Disable HA on the local host. Only to be used to recover a pool with a broken HA setup.",
            Op::HostEmergencyHaDisable,
        )),
        cmd(
            "pool-ha-enable",
            &[],
            &["heartbeat-sr-uuids", "ha-config:"],
            "Enable HA on this Pool.",
            Op::PoolHaEnable,
        ),
        cmd(
            "pool-ha-disable",
            &[],
            &[],
            "Disable HA on this Pool.",
            Op::PoolHaDisable,
        ),
        prevent,
        local(cmd(
            "pool-emergency-transition-to-master",
            &[],
            &["force"],
            "Instruct slave to become pool master. The operation will be ignored if this host is already master; the optional parameter '--force' will force the operation.",
            Op::PoolEmergencyTransitionToMaster,
        )),
        local(cmd(
            "pool-emergency-reset-master",
            &["master-address"],
            &[],
            "Instruct slave to reset master address.",
            Op::PoolEmergencyResetMaster,
        )),
        cmd(
            "pool-recover-slaves",
            &[],
            &[],
            "Instruct master to try and reset master-address of all slaves currently running in emergency mode.",
            Op::PoolRecoverSlaves,
        ),
        cmd(
            "pool-ha-compute-max-host-failures-to-tolerate",
            &[],
            &[],
            "Compute the maximum number of host failures to tolerate under the current Pool configuration",
            Op::PoolHaComputeMax,
        ),
        cmd(
            "pool-ha-compute-hypothetical-max-host-failures-to-tolerate",
            &[],
            &["vm-uuid", "restart-priority"],
            "Compute the maximum number of host failures to tolerate with the supplied, proposed protected VMs.",
            Op::PoolHaComputeHypotheticalMax,
        ),
        vm_start,
        host_op(
            "host-evacuate",
            &["network-uuid", "batch-size"],
            "Migrate all VMs off a host.",
            Op::HostEvacuate,
        ),
        host_op(
            "host-disable",
            &["auto-enable"],
            "Disable the XE host. Setting auto-enable=false will keep the host persistently disabled until manually re-enabled with Host.enable.",
            Op::HostDisable,
        ),
        host_op("host-enable", &[], "Enable the XE host.", Op::HostEnable),
        cmd(
            "pool-join",
            &["master-address", "master-username", "master-password"],
            &["force"],
            "Instruct host to join an existing pool.",
            Op::PoolJoin,
        ),
        cmd(
            "pool-eject",
            &["host-uuid"],
            &[],
            "Instruct host to leave an existing pool.",
            Op::PoolEject,
        ),
        cmd(
            "host-forget",
            &["uuid"],
            &[],
            "Forget about the host without contacting it explicitly. WARNING: this call is useful if the host to 'forget' is dead; however, if the host is live and part of the pool, you should consider using pool-eject instead.",
            Op::HostForget,
        ),
        vm_op(
            "vm-shutdown",
            &["force"],
            "Shutdown the selected VM(s). The optional argument --force will forcibly shut down the VM.",
            Op::VmShutdown,
        ),
        vm_op(
            "vm-reboot",
            &["force"],
            "Reboot the selected VM(s).",
            Op::VmReboot,
        ),
        cmd(
            "vm-destroy",
            &["uuid"],
            &[],
            "Destroy a VM. This leaves the storage associated with the VM intact. To delete storage too, use vm-uninstall.",
            Op::VmDestroy,
        ),
        vm_op(
            "vm-migrate",
            &[
                "live",
                "host",
                "host-uuid",
                "remote-master",
                "remote-username",
                "remote-password",
                "remote-network",
                "force",
                "copy",
                "compress",
                "vif:",
                "vdi:",
                "image-format:",
            ],
            "Migrate the selected VM(s). The parameter '--live' will migrate the VM without shutting it down. The 'host' parameter matches can be either the name or the uuid of the host. If you are migrating a VM to a remote pool, you will need to specify the remote-master, remote-username, and remote-password parameters. remote-master is the network address of the master host. To migrate to a particular host within a remote pool, you may additionally specify the host or host-uuid parameters. Also for cross-pool migration, setting 'copy=true' will enable the copy mode so that a stopped vm can be copied, instead of migrating, to the destination pool. The vif and vdi mapping parameters take the form 'vif:<source vif uuid>=<dest network uuid>' and 'vdi:<source vdi uuid>=<dest sr uuid>'. You can also specify the destination image format of the VDI using 'image-format:<source vdi uuid>=<destination image format>'. Unfortunately, destination uuids cannot be tab-completed.",
            Op::VmMigrate,
        ),
        cmd(
            "vm-create",
            &["name-label"],
            &["name-description", "memory-static-max", "affinity", "other-config:"],
            "Create a new halted VM record and print its uuid (an extension of this toolstack; real xe creates VMs with vm-install from a template). memory-static-max takes a size in bytes with an optional unit (KiB, MiB, GiB, TiB); affinity is the uuid or name-label of the preferred host; other-config:command=<cmd> is the command the process domain backend runs for the VM.",
            Op::VmCreate,
        ),
        cmd(
            "user-add",
            &["user-name", "user-password", "role"],
            &[],
            "Create a local user with a password and one of the roles pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator or read-only, and print its uuid (an extension of this toolstack).",
            Op::UserAdd,
        ),
        cmd(
            "user-list",
            &[],
            &["params", "uuid", "short-name", "role"],
            "Lists the local users with their roles (an extension of this toolstack).",
            Op::UserList,
        ),
        cmd(
            "user-remove",
            &["uuid"],
            &[],
            "Delete a local user; root cannot be deleted (an extension of this toolstack).",
            Op::UserRemove,
        ),
        cmd(
            "user-set-role",
            &["uuid", "role"],
            &[],
            "Give a local user another role (an extension of this toolstack).",
            Op::UserSetRole,
        ),
        cmd(
            "user-set-password",
            &["uuid", "user-password"],
            &[],
            "Set a local user's password (an extension of this toolstack).",
            Op::UserSetPassword,
        ),
        cmd(
            "pool-designate-new-master",
            &["host-uuid"],
            &[],
            "Request an orderly handover of the role of master to another host.",
            Op::PoolDesignateNewMaster,
        ),
        host_op(
            "host-shutdown",
            &[],
            "Shutdown the XE host.",
            Op::HostShutdown,
        ),
        host_op("host-reboot", &[], "Reboot the XE host.", Op::HostReboot),
        cmd(
            "pbd-plug",
            &["uuid"],
            &[],
            "Attempt to plug in the PBD to the host. If this succeeds then the referenced SR (and the VDIs contained within) should be visible to the host.",
            Op::PbdPlug,
        ),
        cmd(
            "pbd-unplug",
            &["uuid"],
            &[],
            "Attempt to unplug the PBD from the host. If this succeeds then the referenced SR (and the VDIs contained within) should not be visible to the host.",
            Op::PbdUnplug,
        ),
        cmd(
            "sr-create",
            &["name-label", "type"],
            &[
                "name-description",
                "host-uuid",
                "device-config:",
                "shared",
                "physical-size",
                "content-type",
                "sm-config:",
            ],
            "Create an SR, also a PBD. The device-config parameters can be specified by device-config:foo=baa, for example.",
            Op::SrCreate,
        ),
        cmd(
            "vdi-create",
            &["sr-uuid", "name-label", "virtual-size"],
            &["sm-config:", "sharable", "tags:", "type"],
            "Create a VDI. Type is 'system' 'user' 'suspend' or 'crashdump'.",
            Op::VdiCreate,
        ),
        cmd(
            "pool-dump-database",
            &["file-name"],
            &["force"],
            "Dump the pool's failover-planning data to a local file, for 'xe pool-ha-what-if snapshot=<file>'. Unlike xapi's, which writes its whole XML database, this writes a JSON planning snapshot of this toolstack's own format (hosts with their memory, enabled and live flags; VMs with their power state, residence, memory and restart priority; see docs/xe.md). An existing file is only overwritten with --force.",
            Op::PoolDumpDatabase,
        ),
        cmd(
            "pool-ha-what-if",
            &[],
            &["snapshot", "protect", "unprotect", "add-hosts", "remove-hosts", "failures"],
            "Answer failover-planning questions about a hypothetical pool without changing anything (an extension of this toolstack). The pool is read from the server (only getters are called; any XenServer/XCP-ng pool works) or, with snapshot=<file>, from a file written by pool-dump-database, without connecting. protect=<vm-uuid>[:<priority>],... gives VMs a restart priority (restart by default, best-effort or empty; a named halted VM is planned for as if started); unprotect=<vm-uuid>,... removes their protection; add-hosts=<count>x<memory> adds empty hosts (e.g. 2x64GiB); remove-hosts=<host-uuid>,... takes hosts out (their protected VMs must be restarted elsewhere first). Prints the maximum number of host failures the protected VMs survive, whether it is exact or a proven lower bound (with the upper bound), and the failure sequence and VM that break one more failure; with failures=<n>, whether a plan exists for n failures and why not. --output json prints the same as JSON.",
            Op::PoolHaWhatIf,
        ),
    ]
}

/// Every command, sorted by name.
pub fn commands() -> &'static [Command] {
    static T: OnceLock<Vec<Command>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = explicit();
        for name in CLI_CLASSES {
            v.extend(generated(model::class(name).expect("declared class")));
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    })
}

/// The command with this name.
pub fn find(name: &str) -> Option<&'static Command> {
    commands().iter().find(|c| c.name == name)
}

impl Command {
    /// Optional parameters with the selector placeholder, as `xe help <cmd>` shows them.
    pub fn optional_with_selectors(&self) -> Vec<String> {
        let mut o = self.optn.clone();
        match self.selectors {
            Selectors::Vm => o.push("<vm-selectors>".into()),
            Selectors::Host => o.push("<host-selectors>".into()),
            Selectors::None => {}
        }
        o
    }

    /// The description with the selector explanation appended.
    pub fn description(&self) -> String {
        match self.selectors {
            Selectors::Vm => format!("{}{VM_SELECTORS_INFO}", self.help),
            Selectors::Host => format!("{}{HOST_SELECTORS_INFO}", self.help),
            Selectors::None => self.help.clone(),
        }
    }

    /// The class whose uuids fill this command's `uuid=` parameter, for completions.
    pub fn uuid_class(&self) -> Option<&'static ClassDecl> {
        match self.op {
            Op::List(c)
            | Op::ParamList(c)
            | Op::ParamGet(c)
            | Op::ParamSet(c)
            | Op::ParamAdd(c)
            | Op::ParamRemove(c)
            | Op::ParamClear(c) => Some(c),
            Op::HostCpuInfo | Op::HostForget => model::class("host"),
            Op::VmDestroy => model::class("VM"),
            Op::PbdPlug | Op::PbdUnplug => model::class("PBD"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_commands_follow_gen_cmds() {
        let l = find("host-cpu-list").unwrap();
        assert_eq!(&l.optn[..4], ["params", "database:", "uuid", "host-uuid"]);
        assert!(
            find("host-cpu-param-set").is_none(),
            "host_cpu has nothing settable"
        );
        assert!(find("host-cpu-param-add").is_none());
        let s = find("vm-param-set").unwrap();
        assert!(s.optn.contains(&"ha-restart-priority".to_string()));
        assert!(s.optn.contains(&"other-config:".to_string()));
        assert!(!s.optn.contains(&"power-state".to_string()));
        assert_eq!(
            find("vm-param-remove").unwrap().reqd,
            ["uuid", "param-name", "param-key"]
        );
        assert!(find("vm-list").unwrap().standard);
        assert!(!find("host-list").unwrap().standard);
        assert!(find("sr-list")
            .unwrap()
            .optn
            .contains(&"tags:contains".to_string()));
    }

    #[test]
    fn explicit_commands_carry_xapis_flags() {
        assert!(find("pool-ha-prevent-restarts-for").unwrap().hidden);
        assert!(find("host-emergency-ha-disable").unwrap().local_session);
        assert_eq!(
            find("pool-emergency-reset-master").unwrap().reqd,
            ["master-address"]
        );
        assert!(find("vm-start")
            .unwrap()
            .description()
            .ends_with("the operation will be performed on all VMs."));
    }
}
