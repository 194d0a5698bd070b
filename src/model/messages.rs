//! API messages: the explicit ones declared here, the generic ones derived from the class table.
//!
//! [`api`] is the registry both the server (to dispatch and count parameters) and `xe` (to know
//! which call sets a field) consult. Every class gets `get_<field>` for each stored field,
//! `set_<field>` for RW fields, `add_to_<f>`/`remove_from_<f>` for RW maps and
//! `add_<f>`/`remove_<f>` for RW sets (xapi's names),
//! `get_record`, `get_all`, `get_all_records`, `get_by_uuid` and, where the class has a
//! name, `get_by_name_label`.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::classes::{class, CLASSES};
use super::roles::Role;
use super::types::{Access, ClassDecl, FieldDecl, Ty};

/// A parameter of an explicit message.
#[derive(Debug)]
pub struct ParamDecl {
    /// Parameter name as xapi documents it.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// Default, in `xe` text syntax; a parameter with a default may be omitted on the wire.
    pub default: Option<&'static str>,
}

/// An explicitly declared message (one that is not generated from a field).
#[derive(Debug)]
pub struct MessageDecl {
    /// Class wire name.
    pub class: &'static str,
    /// Message name, e.g. `enable_ha`.
    pub name: &'static str,
    /// Parameters after the session.
    pub params: &'static [ParamDecl],
    /// Result type; `None` is void.
    pub result: Option<Ty>,
    /// Whether the first wire parameter is a session ref.
    pub session: bool,
    /// What the message does.
    pub doc: &'static str,
    /// The least role allowed to call it.
    pub role: Role,
}

impl MessageDecl {
    /// Set the least role allowed to call this message (the default is pool-admin).
    const fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
}

const fn p(name: &'static str, ty: Ty) -> ParamDecl {
    ParamDecl {
        name,
        ty,
        default: None,
    }
}

const fn opt(name: &'static str, ty: Ty, default: &'static str) -> ParamDecl {
    ParamDecl {
        name,
        ty,
        default: Some(default),
    }
}

const fn msg(
    class: &'static str,
    name: &'static str,
    params: &'static [ParamDecl],
    result: Option<Ty>,
    doc: &'static str,
) -> MessageDecl {
    MessageDecl {
        class,
        name,
        params,
        result,
        session: true,
        doc,
        role: Role::PoolAdmin,
    }
}

/// A login: no session parameter, answers a session; anyone may call it.
const fn login(name: &'static str, params: &'static [ParamDecl], doc: &'static str) -> MessageDecl {
    let mut m = msg("session", name, params, Some(Ty::Ref("session")), doc);
    m.session = false;
    m.role = Role::ReadOnly;
    m
}

/// A pool-internal message: authenticated by the pool secret (its first parameter) instead of
/// a session, never shown by `xe`.
const fn internal(
    class: &'static str,
    name: &'static str,
    params: &'static [ParamDecl],
    result: Option<Ty>,
    doc: &'static str,
) -> MessageDecl {
    let mut m = msg(class, name, params, result, doc);
    m.session = false;
    m
}

const SS_MAP: Ty = Ty::Map(&Ty::String, &Ty::String);

/// The explicit messages.
pub static EXPLICIT: &[MessageDecl] = &[
    login(
        "login_with_password",
        &[
            p("uname", Ty::String),
            p("pwd", Ty::String),
            opt("version", Ty::String, "1.1"),
            opt("originator", Ty::String, ""),
        ],
        "Attempt to authenticate the user, returning a session reference if successful",
    ),
    login(
        "slave_local_login_with_password",
        &[p("uname", Ty::String), p("pwd", Ty::String)],
        "Authenticate locally against a slave in emergency mode. Note the resulting sessions are only good for use on this host.",
    ),
    msg("session", "logout", &[], None, "Log out of a session").role(Role::ReadOnly),
    msg("session", "local_logout", &[], None, "Log out of local session.").role(Role::ReadOnly),
    // Who may destroy which task (its starter, or pool-admin) is checked by the server.
    msg(
        "task",
        "destroy",
        &[p("self", Ty::Ref("task"))],
        None,
        "Destroy the task object",
    )
    .role(Role::ReadOnly),
    msg(
        "pool",
        "enable_ha",
        &[
            p("heartbeat_srs", Ty::Set(&Ty::Ref("SR"))),
            p("configuration", SS_MAP),
        ],
        None,
        "Turn on High Availability mode",
    ).role(Role::PoolOperator),
    msg("pool", "disable_ha", &[], None, "Turn off High Availability mode").role(Role::PoolOperator),
    msg(
        "pool",
        "ha_compute_max_host_failures_to_tolerate",
        &[],
        Some(Ty::Int),
        "Returns the maximum number of host failures we could tolerate before we would be unable to restart configured VMs",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "ha_compute_hypothetical_max_host_failures_to_tolerate",
        &[p("configuration", Ty::Map(&Ty::Ref("VM"), &Ty::String))],
        Some(Ty::Int),
        "Returns the maximum number of host failures we could tolerate before we would be unable to restart the provided VMs",
    ).role(Role::ReadOnly),
    msg(
        "pool",
        "ha_failover_plan_exists",
        &[p("n", Ty::Int)],
        Some(Ty::Bool),
        "Returns true if a VM failover plan exists for up to 'n' host failures",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "ha_compute_vm_failover_plan",
        &[
            p("failed_hosts", Ty::Set(&Ty::Ref("host"))),
            p("failed_vms", Ty::Set(&Ty::Ref("VM"))),
        ],
        Some(Ty::Map(&Ty::Ref("VM"), &SS_MAP)),
        "Return a VM failover plan assuming a given subset of hosts fail",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "ha_prevent_restarts_for",
        &[p("seconds", Ty::Int)],
        None,
        "When this call returns the VM restart logic will not run for the requested number of seconds. If the argument is zero then the restart thread is immediately unblocked",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "emergency_transition_to_master",
        &[],
        None,
        "Instruct a slave already in a pool that the master has changed",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "emergency_reset_master",
        &[p("master_address", Ty::String)],
        None,
        "Instruct a slave already in a pool that the master has changed",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "recover_slaves",
        &[],
        Some(Ty::Set(&Ty::Ref("host"))),
        "Instruct a pool master, M, to try and contact its slaves and, if slaves are in emergency mode, reset their master address to M.",
    ).role(Role::PoolOperator),
    msg(
        "host",
        "emergency_ha_disable",
        &[opt("soft", Ty::Bool, "false")],
        None,
        "This call disables HA on the local host. This should only be used with extreme care.",
    ).role(Role::PoolOperator),
    msg(
        "host",
        "is_in_emergency_mode",
        &[],
        Some(Ty::Bool),
        "Diagnostics call to discover if host is in emergency mode",
    ).role(Role::ReadOnly),
    msg(
        "host",
        "disable",
        &[p("host", Ty::Ref("host")), opt("auto_enable", Ty::Bool, "true")],
        None,
        "Puts the host into a state in which no new VMs can be started. Currently active VMs on the host continue to execute.",
    ).role(Role::PoolOperator),
    msg("host", "enable", &[p("host", Ty::Ref("host"))], None, "Puts the host into a state in which new VMs can be started.").role(Role::PoolOperator),
    msg(
        "host",
        "evacuate",
        &[
            p("host", Ty::Ref("host")),
            opt("network", Ty::Ref("network"), "OpaqueRef:NULL"),
            opt("evacuate_batch_size", Ty::Int, "0"),
        ],
        None,
        "Migrate all VMs off of this host, where possible.",
    ).role(Role::PoolOperator),
    msg(
        "pool",
        "join",
        &[p("master_address", Ty::String), p("master_username", Ty::String), p("master_password", Ty::String)],
        None,
        "Instruct host to join a new pool",
    )
    .role(Role::PoolOperator),
    msg(
        "pool",
        "join_force",
        &[p("master_address", Ty::String), p("master_username", Ty::String), p("master_password", Ty::String)],
        None,
        "Instruct host to join a new pool",
    )
    .role(Role::PoolOperator),
    msg(
        "host",
        "compute_free_memory",
        &[p("host", Ty::Ref("host"))],
        Some(Ty::Int),
        "Computes the amount of free memory on the host.",
    )
    .role(Role::ReadOnly),
    msg(
        "host",
        "get_local_database_generation",
        &[],
        Some(Ty::Int),
        "How many writes this host's copy of the pool database has applied (an extension, answered locally).",
    )
    .role(Role::ReadOnly),
    msg(
        "host",
        "get_local_database_state",
        &[],
        Some(Ty::Map(&Ty::String, &Ty::Int)),
        "Which state this host's copy of the pool database holds: the epoch of the master that wrote its last change and its generation (an extension, answered locally). Two copies with the same pair hold the same state.",
    )
    .role(Role::ReadOnly),
    msg(
        "pool",
        "internal_add_host",
        &[p("host_info", Ty::String), p("force", Ty::Bool)],
        Some(Ty::String),
        "Pool-internal: add a joining host to this master's pool and return the pool's state.",
    ),
    msg(
        "VM",
        "pool_migrate",
        &[p("vm", Ty::Ref("VM")), p("host", Ty::Ref("host")), p("options", SS_MAP)],
        None,
        "Migrate a VM to another Host.",
    )
    .role(Role::VmPowerAdmin),
    msg(
        "message",
        "create",
        &[
            p("name", Ty::String),
            p("priority", Ty::Int),
            p("cls", Ty::Enum(&super::classes::MESSAGE_CLASS)),
            p("obj_uuid", Ty::String),
            p("body", Ty::String),
        ],
        Some(Ty::Ref("message")),
        "Create a new message.",
    )
    .role(Role::PoolOperator),
    msg("message", "destroy", &[p("self", Ty::Ref("message"))], None, "Destroy the specified message.").role(Role::PoolOperator),
    msg(
        "SR",
        "create",
        &[
            p("host", Ty::Ref("host")),
            p("device_config", SS_MAP),
            opt("physical_size", Ty::Int, "0"),
            p("name_label", Ty::String),
            opt("name_description", Ty::String, ""),
            p("type", Ty::String),
            opt("content_type", Ty::String, ""),
            opt("shared", Ty::Bool, "false"),
            opt("sm_config", SS_MAP, ""),
        ],
        Some(Ty::Ref("SR")),
        "Create a new Storage Repository and introduce it into the managed system, creating both SR record and PBD record to attach it to current host (with specified device_config parameters)",
    )
    .role(Role::PoolOperator),
    msg("SR", "destroy", &[p("sr", Ty::Ref("SR"))], None, "Destroy specified SR, removing SR-record from database and remove SR from disk. (In order to affect this operation the appropriate device_config is read from the specified SR's PBD on current host)").role(Role::PoolOperator),
    msg("SR", "forget", &[p("sr", Ty::Ref("SR"))], None, "Removing specified SR-record from database, without attempting to remove SR from disk").role(Role::PoolOperator),
    msg("PBD", "plug", &[p("self", Ty::Ref("PBD"))], None, "Activate the specified PBD, causing the referenced SR to be attached and scanned").role(Role::PoolOperator),
    msg("PBD", "unplug", &[p("self", Ty::Ref("PBD"))], None, "Deactivate the specified PBD, causing the referenced SR to be detached and nolonger scanned").role(Role::PoolOperator),
    msg("VDI", "create", &[p("args", Ty::Record("VDI"))], Some(Ty::Ref("VDI")), "Create a new VDI instance, and return its handle.").role(Role::VmAdmin),
    msg("VDI", "destroy", &[p("self", Ty::Ref("VDI"))], None, "Destroy the specified VDI.").role(Role::VmAdmin),
    internal(
        "host",
        "internal_facts",
        &[p("secret", Ty::String)],
        Some(Ty::String),
        "Pool-internal: what this host knows about itself (CPUs, memory, address, host name).",
    ),
    internal(
        "host",
        "internal_storage",
        &[p("secret", Ty::String), p("op", Ty::String)],
        Some(Ty::String),
        "Pool-internal: run a storage operation on this host.",
    ),
    msg(
        "pool",
        "designate_new_master",
        &[p("host", Ty::Ref("host"))],
        None,
        "Perform an orderly handover of the role of master to the referenced host.",
    ).role(Role::PoolOperator),
    internal(
        "pool",
        "internal_become_master",
        &[p("secret", Ty::String), p("epoch", Ty::Int)],
        None,
        "Pool-internal: this member is the master from now on, with this epoch.",
    ),
    internal(
        "pool",
        "internal_set_master",
        &[p("secret", Ty::String), p("epoch", Ty::Int), p("address", Ty::String)],
        None,
        "Pool-internal: the pool's master is now at this address, with this epoch.",
    ),
    msg("host", "shutdown", &[p("host", Ty::Ref("host"))], None, "Shutdown the host. (This function can only be called if there are no currently running VMs on the host and it is disabled.)").role(Role::PoolOperator),
    msg("host", "reboot", &[p("host", Ty::Ref("host"))], None, "Reboot the host. (This function can only be called if there are no currently running VMs on the host and it is disabled.)").role(Role::PoolOperator),
    internal(
        "host",
        "internal_power",
        &[p("secret", Ty::String), p("reboot", Ty::Bool)],
        None,
        "Pool-internal: stop (or restart) this host's daemon.",
    ),
    msg("pool", "eject", &[p("host", Ty::Ref("host"))], None, "Instruct a pool master to eject a host from the pool").role(Role::PoolOperator),
    msg("host", "destroy", &[p("self", Ty::Ref("host"))], None, "Destroy specified host record in database").role(Role::PoolOperator),
    internal(
        "host",
        "internal_set_auto_enable",
        &[p("secret", Ty::String), p("on", Ty::Bool)],
        None,
        "Pool-internal: record on this host whether its next restart enables it (xapi's host_auto_enable).",
    ),
    internal(
        "host",
        "internal_enable_after_restart",
        &[p("secret", Ty::String), p("host", Ty::Ref("host"))],
        Some(Ty::Bool),
        "Pool-internal (to the master): this member restarted with auto-enable on; enable it if it is disabled.",
    ),
    internal(
        "host",
        "internal_start_domain",
        &[p("secret", Ty::String), p("vm", Ty::String), p("command", Ty::String)],
        None,
        "Pool-internal: start the domain of a VM (by UUID) on this host; an empty command means an in-daemon domain.",
    ),
    internal(
        "host",
        "internal_stop_domain",
        &[p("secret", Ty::String), p("vm", Ty::String), p("grace_ms", Ty::Int)],
        None,
        "Pool-internal: stop the domain of a VM (by UUID) on this host.",
    ),
    internal(
        "host",
        "internal_domain_running",
        &[p("secret", Ty::String), p("vm", Ty::String)],
        Some(Ty::Bool),
        "Pool-internal: whether the domain of a VM (by UUID) runs on this host.",
    ),
    internal(
        "host",
        "internal_report_lost_domains",
        &[p("secret", Ty::String), p("host", Ty::Ref("host"))],
        Some(Ty::Int),
        "Pool-internal (to the master): this member's daemon restarted and runs no domain; halt the VMs recorded on it. Answers how many.",
    ),
    internal(
        "pool",
        "internal_eject",
        &[p("secret", Ty::String)],
        None,
        "Pool-internal: this host has been ejected; forget the pool and restart as a new one-host pool.",
    ),
    internal(
        "pool",
        "internal_member_ready",
        &[p("secret", Ty::String), p("host", Ty::Ref("host"))],
        None,
        "Pool-internal: a joined member has loaded the pool's state; bring it up to date.",
    ),
    internal(
        "pool",
        "internal_replicate",
        &[p("secret", Ty::String), p("epoch", Ty::Int), p("changes", Ty::String)],
        None,
        "Pool-internal: apply one committed write of the master.",
    ),
    internal(
        "host",
        "internal_ha_start",
        &[p("secret", Ty::String), p("configuration", Ty::String), p("mode", Ty::String)],
        None,
        "Pool-internal: persist this HA configuration and start the agent (mode enable or boot).",
    ),
    internal(
        "host",
        "internal_ha_status",
        &[p("secret", Ty::String)],
        Some(Ty::String),
        "Pool-internal: what this host's HA agent last reported, as JSON.",
    ),
    internal(
        "host",
        "internal_ha_fence_report",
        &[p("secret", Ty::String)],
        Some(Ty::String),
        "Pool-internal: why this host last fenced, once (empty when it did not).",
    ),
    internal(
        "host",
        "internal_ha_stop",
        &[p("secret", Ty::String), p("how", Ty::String)],
        None,
        "Pool-internal: stop this host's HA agent (how: disable, or abort after a failed enable).",
    ),
    internal(
        "pool",
        "internal_dump",
        &[p("secret", Ty::String)],
        Some(Ty::String),
        "Pool-internal: this host's whole copy of the database, as JSON.",
    ),
    internal(
        "pool",
        "internal_ping",
        &[p("secret", Ty::String)],
        Some(Ty::Map(&Ty::String, &Ty::Int)),
        "Pool-internal: answer with the epoch and generation of this host's copy of the database, and the newest master epoch this host has seen (pool_epoch).",
    ),
    internal(
        "pool",
        "internal_get_master",
        &[p("secret", Ty::String)],
        Some(Ty::String),
        "Pool-internal: the address of the master this host follows (empty on a master).",
    ),
    msg(
        "user",
        "create_local",
        &[p("short_name", Ty::String), p("password", Ty::String), p("role", Ty::String)],
        Some(Ty::Ref("user")),
        "Create a local user with a password and one of xapi's roles (an extension of this toolstack).",
    ),
    msg("user", "set_role", &[p("self", Ty::Ref("user")), p("role", Ty::String)], None, "Give a local user another role (an extension of this toolstack)."),
    msg("user", "change_password", &[p("self", Ty::Ref("user")), p("new_password", Ty::String)], None, "Set a local user's password (an extension of this toolstack)."),
    msg("user", "destroy", &[p("self", Ty::Ref("user"))], None, "Delete a local user (an extension of this toolstack); root cannot be deleted."),
    msg(
        "VM",
        "create",
        &[p("args", Ty::Record("VM"))],
        Some(Ty::Ref("VM")),
        "Create a new VM instance, and return its handle.",
    ).role(Role::VmAdmin),
    msg("VM", "destroy", &[p("self", Ty::Ref("VM"))], None, "Destroy the specified VM.  The VM is completely removed from the system.  This function can only be called when the VM is in the Halted State.").role(Role::VmAdmin),
    msg("VM", "clean_shutdown", &[p("vm", Ty::Ref("VM"))], None, "Attempt to cleanly shutdown the specified VM. (Note: this may not be supported---e.g. if a guest agent is not installed). This can only be called when the specified VM is in the Running state.").role(Role::VmOperator),
    msg("VM", "hard_shutdown", &[p("vm", Ty::Ref("VM"))], None, "Stop executing the specified VM without attempting a clean shutdown.").role(Role::VmOperator),
    msg("VM", "clean_reboot", &[p("vm", Ty::Ref("VM"))], None, "Attempt to cleanly shutdown the specified VM (Note: this may not be supported---e.g. if a guest agent is not installed). This can only be called when the specified VM is in the Running state.").role(Role::VmOperator),
    msg("VM", "hard_reboot", &[p("vm", Ty::Ref("VM"))], None, "Stop executing the specified VM without attempting a clean shutdown and immediately restart the VM.").role(Role::VmOperator),
    msg(
        "VM",
        "start",
        &[p("vm", Ty::Ref("VM")), p("start_paused", Ty::Bool), p("force", Ty::Bool)],
        None,
        "Start the specified VM.  This function can only be called with the VM is in the Halted State.",
    ).role(Role::VmOperator),
    msg(
        "VM",
        "start_on",
        &[
            p("vm", Ty::Ref("VM")),
            p("host", Ty::Ref("host")),
            p("start_paused", Ty::Bool),
            p("force", Ty::Bool),
        ],
        None,
        "Start the specified VM on a particular host.  This function can only be called with the VM is in the Halted State.",
    ).role(Role::VmPowerAdmin),
];

/// What a registry entry does; the server dispatches on this.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `get_<field>`.
    Get(&'static FieldDecl),
    /// `set_<field>`.
    Set(&'static FieldDecl),
    /// `add_to_<field>` for maps (key, value), `add_<field>` for sets (value).
    AddTo(&'static FieldDecl),
    /// `remove_from_<field>` for maps (key), `remove_<field>` for sets (value).
    RemoveFrom(&'static FieldDecl),
    /// `get_record`.
    GetRecord,
    /// `get_all`.
    GetAll,
    /// `get_all_records`.
    GetAllRecords,
    /// `get_by_uuid`.
    GetByUuid,
    /// `get_by_name_label`.
    GetByNameLabel,
    /// An explicit message, handled by name.
    Explicit(&'static MessageDecl),
}

/// One parameter of a registry entry.
#[derive(Clone, Debug)]
pub struct Param {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// Default in text form, if the parameter may be omitted.
    pub default: Option<&'static str>,
}

/// One callable message: `<class>.<name>`.
#[derive(Clone, Debug)]
pub struct Message {
    /// The class it belongs to.
    pub class: &'static ClassDecl,
    /// The message name.
    pub name: String,
    /// Parameters after the session, in order.
    pub params: Vec<Param>,
    /// Result type; `None` is void.
    pub result: Option<Ty>,
    /// Whether the first wire parameter is a session ref.
    pub session: bool,
    /// What it does.
    pub kind: Kind,
}

impl Message {
    /// `<class>.<name>`.
    pub fn wire_name(&self) -> String {
        format!("{}.{}", self.class.name, self.name)
    }

    /// How many parameters must be given (those without defaults), session excluded.
    pub fn required_params(&self) -> usize {
        self.params.iter().filter(|p| p.default.is_none()).count()
    }

    /// The wire positions (session included) of the parameters that carry a secret, which no
    /// log may show: those with a secret's name, and the value of a setter of such a field.
    pub fn secret_positions(&self) -> Vec<usize> {
        let offset = usize::from(self.session);
        self.params
            .iter()
            .enumerate()
            .filter(|(_, p)| is_secret(p.name) || (p.name == "value" && is_secret(&self.name)))
            .map(|(i, _)| i + offset)
            .collect()
    }
}

/// Whether a parameter (or field) named `name` is a secret: a password (`pwd`,
/// `master_password`, `new_password`, ...) or the pool secret.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "secret"]
        .iter()
        .any(|s| n.contains(s))
}

/// The registry of every callable message.
pub struct Api {
    by_name: HashMap<String, Message>,
}

impl Api {
    /// Find a message by wire name: `VM.get_record`, or the old `VM_get_record` form.
    pub fn lookup(&self, method: &str) -> Option<&Message> {
        if let Some(m) = self.by_name.get(method) {
            return Some(m);
        }
        CLASSES.iter().find_map(|c| {
            let rest = method.strip_prefix(c.name)?.strip_prefix('_')?;
            self.by_name.get(&format!("{}.{rest}", c.name))
        })
    }

    /// Every message, in no particular order.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.by_name.values()
    }
}

fn leak(ty: Ty) -> &'static Ty {
    Box::leak(Box::new(ty))
}

fn generic_messages(c: &'static ClassDecl) -> Vec<Message> {
    let me = Ty::Ref(c.name);
    let this = Param {
        name: "self",
        ty: me,
        default: None,
    };
    let mk = |name: String, params: Vec<Param>, result: Option<Ty>, kind: Kind| Message {
        class: c,
        name,
        params,
        result,
        session: true,
        kind,
    };
    let mut out = vec![
        mk(
            "get_record".into(),
            vec![this.clone()],
            Some(Ty::Record(c.name)),
            Kind::GetRecord,
        ),
        mk(
            "get_all".into(),
            vec![],
            Some(Ty::Set(leak(me))),
            Kind::GetAll,
        ),
        mk(
            "get_all_records".into(),
            vec![],
            Some(Ty::Map(leak(me), leak(Ty::Record(c.name)))),
            Kind::GetAllRecords,
        ),
        mk(
            "get_by_uuid".into(),
            vec![Param {
                name: "uuid",
                ty: Ty::String,
                default: None,
            }],
            Some(me),
            Kind::GetByUuid,
        ),
    ];
    // A session ref is a bearer token: listing sessions would hand every caller everyone's
    // rights. xapi generates no get_all/get_all_records for sessions, and neither do we.
    if c.name == "session" {
        out.retain(|m| !matches!(m.kind, Kind::GetAll | Kind::GetAllRecords));
    }
    if c.has_name_label() {
        out.push(mk(
            "get_by_name_label".into(),
            vec![Param {
                name: "label",
                ty: Ty::String,
                default: None,
            }],
            Some(Ty::Set(leak(me))),
            Kind::GetByNameLabel,
        ));
    }
    for f in c.stored_fields() {
        out.push(mk(
            format!("get_{}", f.name),
            vec![this.clone()],
            Some(f.ty),
            Kind::Get(f),
        ));
        if f.access != Access::RW {
            continue;
        }
        let value = |ty| Param {
            name: "value",
            ty,
            default: None,
        };
        out.push(mk(
            format!("set_{}", f.name),
            vec![this.clone(), value(f.ty)],
            None,
            Kind::Set(f),
        ));
        match f.ty {
            Ty::Map(k, v) => {
                let key = Param {
                    name: "key",
                    ty: *k,
                    default: None,
                };
                out.push(mk(
                    format!("add_to_{}", f.name),
                    vec![this.clone(), key.clone(), value(*v)],
                    None,
                    Kind::AddTo(f),
                ));
                out.push(mk(
                    format!("remove_from_{}", f.name),
                    vec![this.clone(), key],
                    None,
                    Kind::RemoveFrom(f),
                ));
            }
            Ty::Set(elem) => {
                out.push(mk(
                    format!("add_{}", f.name),
                    vec![this.clone(), value(*elem)],
                    None,
                    Kind::AddTo(f),
                ));
                out.push(mk(
                    format!("remove_{}", f.name),
                    vec![this.clone(), value(*elem)],
                    None,
                    Kind::RemoveFrom(f),
                ));
            }
            _ => {}
        }
    }
    out
}

/// The registry, built once.
pub fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let mut by_name = HashMap::new();
        for c in CLASSES {
            for m in generic_messages(c) {
                by_name.insert(m.wire_name(), m);
            }
        }
        for d in EXPLICIT {
            let c = class(d.class).expect("explicit message on a declared class");
            let m = Message {
                class: c,
                name: d.name.to_string(),
                params: d
                    .params
                    .iter()
                    .map(|p| Param {
                        name: p.name,
                        ty: p.ty,
                        default: p.default,
                    })
                    .collect(),
                result: d.result,
                session: d.session,
                kind: Kind::Explicit(d),
            };
            // An explicit declaration wins over a generated one of the same name.
            by_name.insert(m.wire_name(), m);
        }
        Api { by_name }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_calls_exist_for_every_class() {
        for c in CLASSES {
            for m in ["get_record", "get_by_uuid", "get_uuid"] {
                assert!(
                    api().lookup(&format!("{}.{m}", c.name)).is_some(),
                    "{}.{m}",
                    c.name
                );
            }
            if c.name == "session" {
                continue;
            }
            for m in ["get_all", "get_all_records"] {
                assert!(
                    api().lookup(&format!("{}.{m}", c.name)).is_some(),
                    "{}.{m}",
                    c.name
                );
            }
        }
        assert!(api().lookup("session.get_all").is_none());
        assert!(api().lookup("session.get_all_records").is_none());
        assert!(api().lookup("VM.get_by_name_label").is_some());
        assert!(api().lookup("host_cpu.get_by_name_label").is_none());
    }

    #[test]
    fn setters_only_for_rw_fields() {
        assert!(api().lookup("VM.set_ha_restart_priority").is_some());
        assert!(api().lookup("VM.set_power_state").is_none());
        assert!(api()
            .lookup("pool.set_ha_host_failures_to_tolerate")
            .is_some());
        assert!(api().lookup("pool.add_to_other_config").is_some());
        assert!(
            api().lookup("pool.add_tags").is_some(),
            "xapi names set mutators add_<field>"
        );
        assert!(api().lookup("pool.add_to_tags").is_none());
        assert!(api().lookup("host.add_to_cpu_info").is_none());
    }

    #[test]
    fn secrets_are_found_by_parameter_name() {
        let at = |m: &str| api().lookup(m).unwrap().secret_positions();
        // Wire positions: a login has no session, so its pwd is the second parameter.
        assert_eq!(at("session.login_with_password"), [1]);
        assert_eq!(at("session.slave_local_login_with_password"), [1]);
        assert_eq!(at("pool.join"), [3]);
        assert_eq!(at("pool.join_force"), [3]);
        assert_eq!(at("user.create_local"), [2]);
        assert_eq!(at("user.change_password"), [2]);
        assert!(at("VM.get_record").is_empty());
        assert!(at("pool.enable_ha").is_empty());
    }

    #[test]
    fn parameter_counts_ignore_defaults() {
        let login = api().lookup("session.login_with_password").unwrap();
        assert_eq!(login.required_params(), 2);
        assert!(!login.session);
        assert_eq!(api().lookup("pool.enable_ha").unwrap().required_params(), 2);
        assert_eq!(
            api()
                .lookup("host.emergency_ha_disable")
                .unwrap()
                .required_params(),
            0
        );
    }

    #[test]
    fn underscore_form_is_accepted() {
        assert_eq!(
            api().lookup("VM_get_record").unwrap().wire_name(),
            "VM.get_record"
        );
        assert_eq!(
            api().lookup("host_cpu_get_all").unwrap().wire_name(),
            "host_cpu.get_all"
        );
    }
}
