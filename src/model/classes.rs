//! The class table: every class and field of the data model, declared once.
//!
//! Field order is `xe`'s record order (xapi's `records.ml`), so printing needs no second list.
//! Adding a field is one line here; the generic API calls, the store, `xe <class>-list`,
//! `-param-get`/`-param-set` and the record printer all pick it up.

use super::types::{Access, ClassDecl, EnumDecl, FieldDecl, Source, Ty};

// ---- field constructors (const, so the table stays static) ----

const fn field(
    name: &'static str,
    cli: &'static str,
    ty: Ty,
    access: Access,
    doc: &'static str,
) -> FieldDecl {
    FieldDecl {
        name,
        cli,
        ty,
        access,
        default: "",
        doc,
        source: Source::Stored,
        expensive: false,
        hidden: false,
        deprecated: false,
        cli_scalar: false,
    }
}

/// A read-only stored field.
const fn ro(name: &'static str, cli: &'static str, ty: Ty, doc: &'static str) -> FieldDecl {
    field(name, cli, ty, Access::RO, doc)
}

/// A read-write stored field (generic setters generated).
const fn rw(name: &'static str, cli: &'static str, ty: Ty, doc: &'static str) -> FieldDecl {
    field(name, cli, ty, Access::RW, doc)
}

/// A CLI-only field read through a ref.
const fn follow(
    cli: &'static str,
    via: &'static str,
    target: &'static str,
    ty: Ty,
    doc: &'static str,
) -> FieldDecl {
    let mut f = field("", cli, ty, Access::RO, doc);
    f.source = Source::Follow { via, field: target };
    f
}

/// A CLI-only field computed by a named printer rule.
const fn computed(cli: &'static str, rule: &'static str, ty: Ty, doc: &'static str) -> FieldDecl {
    let mut f = field("", cli, ty, Access::RO, doc);
    f.source = Source::Computed(rule);
    f
}

impl FieldDecl {
    const fn default(mut self, d: &'static str) -> Self {
        self.default = d;
        self
    }
    const fn expensive(mut self) -> Self {
        self.expensive = true;
        self
    }
    const fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    /// `xe` prints this map or set as one scalar value (marker `( RO)`, no map accessors).
    const fn cli_scalar(mut self) -> Self {
        self.cli_scalar = true;
        self
    }
}

const fn uuid() -> FieldDecl {
    ro(
        "uuid",
        "uuid",
        Ty::String,
        "Unique identifier/object reference",
    )
}
const fn name_label() -> FieldDecl {
    rw(
        "name_label",
        "name-label",
        Ty::String,
        "a human-readable name",
    )
}
const fn name_description() -> FieldDecl {
    rw(
        "name_description",
        "name-description",
        Ty::String,
        "a notes field containing human-readable description",
    )
}
const fn other_config() -> FieldDecl {
    rw(
        "other_config",
        "other-config",
        SS_MAP,
        "additional configuration",
    )
}
const fn tags() -> FieldDecl {
    rw(
        "tags",
        "tags",
        S_SET,
        "user-specified tags for categorization purposes",
    )
}

const SS_MAP: Ty = Ty::Map(&Ty::String, &Ty::String);
const S_SET: Ty = Ty::Set(&Ty::String);

// ---- enums ----

/// `vm_power_state`.
pub static VM_POWER_STATE: EnumDecl = EnumDecl {
    name: "vm_power_state",
    values: &["Halted", "Paused", "Running", "Suspended"],
    cli_lowercase: true,
};

/// `task_status_type`.
pub static TASK_STATUS: EnumDecl = EnumDecl {
    name: "task_status_type",
    values: &["pending", "success", "failure", "cancelling", "cancelled"],
    cli_lowercase: true,
};

/// `vdi_type`.
pub static VDI_TYPE: EnumDecl = EnumDecl {
    name: "vdi_type",
    values: &[
        "system",
        "user",
        "ephemeral",
        "suspend",
        "crashdump",
        "ha_statefile",
        "metadata",
        "redo_log",
        "rrd",
        "pvs_cache",
        "cbt_metadata",
    ],
    cli_lowercase: true,
};

/// `cls`: the class of the object a message is about.
pub static MESSAGE_CLASS: EnumDecl = EnumDecl {
    name: "cls",
    values: &[
        "VM",
        "Host",
        "SR",
        "Pool",
        "VMPP",
        "VMSS",
        "PVS_proxy",
        "VDI",
        "Certificate",
    ],
    cli_lowercase: false,
};

// ---- classes ----

/// `session`: a login. Not persistent: a restart invalidates every session, as in xapi.
pub static SESSION: ClassDecl = ClassDecl {
    name: "session",
    cli: "",
    doc: "A session",
    persistent: false,
    default_list: &[],
    fields: &[
        uuid(),
        ro("this_host", "", Ty::Ref("host"), "Currently connected host"),
        ro("this_user", "", Ty::Ref("user"), "Currently connected user"),
        ro(
            "last_active",
            "",
            Ty::DateTime,
            "Timestamp for last time session was active",
        ),
        ro(
            "pool",
            "",
            Ty::Bool,
            "True if this session relates to a intra-pool login, false otherwise",
        ),
        rw("other_config", "", SS_MAP, "additional configuration"),
        ro(
            "is_local_superuser",
            "",
            Ty::Bool,
            "true iff this session was created using local superuser credentials",
        ),
        ro(
            "auth_user_name",
            "",
            Ty::String,
            "the name of the user who created the session",
        ),
        ro(
            "originator",
            "",
            Ty::String,
            "a key string provided by an API user to distinguish itself from other users",
        ),
    ],
};

/// `user`: a local user of this toolstack.
pub static USER: ClassDecl = ClassDecl {
    name: "user",
    cli: "",
    doc: "A user of the system",
    persistent: true,
    default_list: &[],
    fields: &[
        uuid(),
        ro("short_name", "", Ty::String, "short name (e.g. userid)"),
        rw("fullname", "", Ty::String, "full name"),
        ro("role", "", Ty::String, "the user's role: pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator or read-only").default("read-only"),
        rw("other_config", "", SS_MAP, "additional configuration"),
    ],
};

/// `pool`: the pool-wide configuration, one object per pool.
pub static POOL: ClassDecl = ClassDecl {
    name: "pool",
    cli: "pool",
    doc: "Pool-wide information",
    persistent: true,
    default_list: &["uuid", "name-label", "name-description", "master", "default-SR"],
    fields: &[
        uuid(),
        name_label(),
        name_description(),
        ro("master", "master", Ty::Ref("host"), "The host that is pool master"),
        rw("default_SR", "default-SR", Ty::Ref("SR"), "Default SR for VDIs"),
        other_config(),
        ro("ha_enabled", "ha-enabled", Ty::Bool, "true if HA is enabled on the pool, false otherwise"),
        ro("ha_configuration", "ha-configuration", SS_MAP, "The current HA configuration").cli_scalar(),
        ro("ha_statefiles", "ha-statefiles", S_SET, "HA statefile VDIs in use").cli_scalar(),
        rw("ha_host_failures_to_tolerate", "ha-host-failures-to-tolerate", Ty::Int, "Number of host failures to tolerate before the Pool is declared to be overcommitted"),
        ro("ha_plan_exists_for", "ha-plan-exists-for", Ty::Int, "Number of future host failures we have managed to find a plan for. Once this reaches zero any future host failures will cause the failure of protected VMs."),
        rw("ha_allow_overcommit", "ha-allow-overcommit", Ty::Bool, "If set to false then operations which would cause the Pool to become overcommitted will be blocked."),
        ro("ha_overcommitted", "ha-overcommitted", Ty::Bool, "True if the Pool is considered to be overcommitted i.e. if there exist insufficient physical resources to tolerate the configured number of host failures"),
        rw("ha_reboot_vm_on_internal_shutdown", "ha-reboot-vm-on-internal-shutdown", Ty::Bool, "Indicates whether an HA-protected VM that is shut down from inside (not through the API) should be automatically rebooted when HA is enabled").default("true"),
        tags(),
        ro("ha_cluster_stack", "ha-cluster-stack", Ty::String, "The HA cluster stack that is currently in use. Only valid when HA is enabled.").default("xhad"),
        ro("cpu_info", "cpu_info", SS_MAP, "Details about the physical CPUs on the pool"),
    ],
};

/// `host`: a physical host.
pub static HOST: ClassDecl = ClassDecl {
    name: "host",
    cli: "host",
    doc: "A physical host",
    persistent: true,
    default_list: &["uuid", "name-label", "name-description"],
    fields: &[
        uuid(),
        name_label(),
        name_description(),
        ro(
            "enabled",
            "enabled",
            Ty::Bool,
            "True if the host is currently enabled",
        )
        .default("true"),
        ro(
            "API_version_major",
            "API-version-major",
            Ty::Int,
            "major version number",
        )
        .default("2"),
        ro(
            "API_version_minor",
            "API-version-minor",
            Ty::Int,
            "minor version number",
        )
        .default("21"),
        ro(
            "API_version_vendor",
            "API-version-vendor",
            Ty::String,
            "identification of vendor",
        )
        .default("XenSource"),
        ro(
            "software_version",
            "software-version",
            SS_MAP,
            "version strings",
        ),
        other_config(),
        ro(
            "cpu_info",
            "cpu_info",
            SS_MAP,
            "Details about the physical CPUs on this host",
        ),
        ro(
            "hostname",
            "hostname",
            Ty::String,
            "The hostname of this host",
        ),
        ro(
            "address",
            "address",
            Ty::String,
            "The address by which this host can be contacted from any other host in the pool",
        ),
        ro(
            "memory_overhead",
            "memory-overhead",
            Ty::Int,
            "Virtualization memory overhead (bytes).",
        ),
        follow(
            "memory-total",
            "metrics",
            "memory_total",
            Ty::Int,
            "Total host memory (bytes)",
        ),
        follow(
            "memory-free",
            "metrics",
            "memory_free",
            Ty::Int,
            "Free host memory (bytes)",
        ),
        computed(
            "memory-free-computed",
            "host-memory-free-computed",
            Ty::Int,
            "Free memory computed from resident VMs (bytes)",
        )
        .expensive(),
        follow(
            "host-metrics-live",
            "metrics",
            "live",
            Ty::Bool,
            "Pool master thinks this host is live",
        ),
        ro(
            "ha_statefiles",
            "ha-statefiles",
            S_SET,
            "The set of statefiles accessible from this host",
        )
        .cli_scalar(),
        ro(
            "ha_network_peers",
            "ha-network-peers",
            S_SET,
            "The set of hosts visible via the network from this host",
        )
        .cli_scalar(),
        tags(),
        ro(
            "resident_VMs",
            "resident-vms",
            Ty::Set(&Ty::Ref("VM")),
            "list of VMs currently resident on host",
        ),
        ro(
            "host_CPUs",
            "",
            Ty::Set(&Ty::Ref("host_cpu")),
            "The physical CPUs on this host",
        ),
        ro(
            "metrics",
            "",
            Ty::Ref("host_metrics"),
            "metrics associated with this host",
        ),
        ro(
            "PBDs",
            "",
            Ty::Set(&Ty::Ref("PBD")),
            "physical blockdevices",
        ),
    ],
};

/// `host_cpu`: one logical CPU of a host.
pub static HOST_CPU: ClassDecl = ClassDecl {
    name: "host_cpu",
    cli: "host-cpu",
    doc: "A physical CPU",
    persistent: true,
    default_list: &["uuid", "number", "vendor", "speed", "utilisation"],
    fields: &[
        uuid(),
        ro(
            "host",
            "host-uuid",
            Ty::Ref("host"),
            "the host the CPU is in",
        ),
        ro(
            "number",
            "number",
            Ty::Int,
            "the number of the physical CPU within the host",
        ),
        ro(
            "vendor",
            "vendor",
            Ty::String,
            "the vendor of the physical CPU",
        ),
        ro("speed", "speed", Ty::Int, "the speed of the physical CPU"),
        ro(
            "model",
            "model",
            Ty::Int,
            "the model number of the physical CPU",
        ),
        ro(
            "family",
            "family",
            Ty::Int,
            "the family (number) of the physical CPU",
        ),
        ro(
            "modelname",
            "modelname",
            Ty::String,
            "the model name of the physical CPU",
        ),
        ro(
            "stepping",
            "stepping",
            Ty::String,
            "the stepping of the physical CPU",
        ),
        ro(
            "flags",
            "flags",
            Ty::String,
            "the flags of the physical CPU (a decoded version of the features field)",
        ),
        ro(
            "utilisation",
            "utilisation",
            Ty::Float,
            "the current CPU utilisation",
        )
        .expensive(),
        ro(
            "features",
            "",
            Ty::String,
            "the physical CPU feature bitmap",
        ),
        rw("other_config", "", SS_MAP, "additional configuration"),
    ],
};

/// `host_metrics`: what the master last knew of a host.
pub static HOST_METRICS: ClassDecl = ClassDecl {
    name: "host_metrics",
    cli: "",
    doc: "The metrics associated with a host",
    persistent: true,
    default_list: &[],
    fields: &[
        uuid(),
        ro("memory_total", "", Ty::Int, "Total host memory (bytes)"),
        ro("memory_free", "", Ty::Int, "Free host memory (bytes)"),
        ro("live", "", Ty::Bool, "Pool master thinks this host is live"),
        ro(
            "last_updated",
            "",
            Ty::DateTime,
            "Time at which this information was last updated",
        ),
        rw("other_config", "", SS_MAP, "additional configuration"),
    ],
};

/// `SR`: a storage repository.
pub static SR: ClassDecl = ClassDecl {
    name: "SR",
    cli: "sr",
    doc: "A storage repository",
    persistent: true,
    default_list: &[
        "uuid",
        "name-label",
        "name-description",
        "host",
        "type",
        "content-type",
    ],
    fields: &[
        uuid(),
        name_label(),
        name_description(),
        computed(
            "host",
            "sr-host",
            Ty::String,
            "the host of a non-shared SR, or <shared>",
        ),
        ro(
            "VDIs",
            "VDIs",
            Ty::Set(&Ty::Ref("VDI")),
            "all virtual disks known to this storage repository",
        ),
        ro(
            "PBDs",
            "PBDs",
            Ty::Set(&Ty::Ref("PBD")),
            "describes how particular hosts can see this storage repository",
        ),
        ro(
            "virtual_allocation",
            "virtual-allocation",
            Ty::Int,
            "sum of virtual_sizes of all VDIs in this storage repository (in bytes)",
        ),
        ro(
            "physical_utilisation",
            "physical-utilisation",
            Ty::Int,
            "physical space currently utilised on this storage repository (in bytes)",
        ),
        ro(
            "physical_size",
            "physical-size",
            Ty::Int,
            "total physical size of the repository (in bytes)",
        ),
        ro("type", "type", Ty::String, "type of the storage repository"),
        ro(
            "content_type",
            "content-type",
            Ty::String,
            "the type of the SR's content, if required (e.g. ISOs)",
        ),
        rw(
            "shared",
            "shared",
            Ty::Bool,
            "true if this SR is (capable of being) shared between multiple hosts",
        ),
        other_config(),
        ro("sm_config", "sm-config", SS_MAP, "SM dependent data"),
        tags(),
    ],
};

/// `VDI`: a virtual disk image.
pub static VDI: ClassDecl = ClassDecl {
    name: "VDI",
    cli: "vdi",
    doc: "A virtual disk image",
    persistent: true,
    default_list: &["uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable", "sr-uuid"],
    fields: &[
        uuid(),
        name_label(),
        name_description(),
        ro("SR", "sr-uuid", Ty::Ref("SR"), "storage repository in which the VDI resides"),
        follow("sr-name-label", "SR", "name_label", Ty::String, "name of the SR"),
        ro("virtual_size", "virtual-size", Ty::Int, "size of disk as presented to the guest (in bytes)"),
        ro("physical_utilisation", "physical-utilisation", Ty::Int, "amount of physical space that the disk image is currently taking up on the storage repository (in bytes)"),
        ro("location", "location", Ty::String, "location information"),
        ro("type", "type", Ty::Enum(&VDI_TYPE), "type of the VDI").default("user"),
        ro("sharable", "sharable", Ty::Bool, "true if this disk may be shared"),
        ro("read_only", "read-only", Ty::Bool, "true if this disk may ONLY be mounted read-only"),
        other_config(),
        ro("sm_config", "sm-config", SS_MAP, "SM dependent data"),
        ro("tags", "tags", S_SET, "user-specified tags for categorization purposes"),
    ],
};

/// `PBD`: how one host sees one SR.
pub static PBD: ClassDecl = ClassDecl {
    name: "PBD",
    cli: "pbd",
    doc: "The physical block devices through which hosts access SRs",
    persistent: true,
    default_list: &[
        "uuid",
        "host-uuid",
        "sr-uuid",
        "device-config",
        "currently-attached",
    ],
    fields: &[
        uuid(),
        ro(
            "host",
            "host-uuid",
            Ty::Ref("host"),
            "physical machine on which the pbd is available",
        ),
        follow(
            "host-name-label",
            "host",
            "name_label",
            Ty::String,
            "name of the host",
        ),
        ro(
            "SR",
            "sr-uuid",
            Ty::Ref("SR"),
            "the storage repository that the pbd realises",
        ),
        follow(
            "sr-name-label",
            "SR",
            "name_label",
            Ty::String,
            "name of the SR",
        ),
        ro(
            "device_config",
            "device-config",
            SS_MAP,
            "a config string to string map that is provided to the host's SR-backend-driver",
        ),
        ro(
            "currently_attached",
            "currently-attached",
            Ty::Bool,
            "is the SR currently attached on this host?",
        ),
        other_config(),
    ],
};

/// `VM`: a virtual machine.
pub static VM: ClassDecl = ClassDecl {
    name: "VM",
    cli: "vm",
    doc: "A virtual machine (or 'guest').",
    persistent: true,
    default_list: &["uuid", "name-label", "power-state"],
    fields: &[
        uuid(),
        name_label(),
        name_description(),
        rw("user_version", "user-version", Ty::Int, "Creators of VMs and templates may store version information here.").default("1"),
        rw("is_a_template", "is-a-template", Ty::Bool, "true if this is a template. Template VMs can never be started, they are used only for cloning other VMs"),
        ro("is_control_domain", "is-control-domain", Ty::Bool, "true if this is a control domain (domain 0 or a driver domain)"),
        ro("power_state", "power-state", Ty::Enum(&VM_POWER_STATE), "Current power state of the machine"),
        follow("memory-actual", "metrics", "memory_actual", Ty::Int, "Guest's actual memory (bytes)"),
        ro("memory_overhead", "memory-overhead", Ty::Int, "Virtualization memory overhead (bytes)."),
        rw("memory_static_max", "memory-static-max", Ty::Int, "Statically-set (i.e. absolute) maximum (bytes). The value of this field at VM start time acts as a hard limit of the amount of memory a guest can use.").default("1073741824"),
        rw("memory_dynamic_max", "memory-dynamic-max", Ty::Int, "Dynamic maximum (bytes)").default("1073741824"),
        rw("memory_dynamic_min", "memory-dynamic-min", Ty::Int, "Dynamic minimum (bytes)").default("1073741824"),
        rw("memory_static_min", "memory-static-min", Ty::Int, "Statically-set (i.e. absolute) mininum (bytes). The value of this field indicates the least amount of memory this VM can boot with without crashing.").default("1073741824"),
        rw("VCPUs_max", "VCPUs-max", Ty::Int, "Max number of VCPUs").default("1"),
        rw("VCPUs_at_startup", "VCPUs-at-startup", Ty::Int, "Boot number of VCPUs").default("1"),
        ro("last_boot_CPU_flags", "last-boot-CPU-flags", SS_MAP, "describes the CPU flags on which the VM was last booted"),
        ro("resident_on", "resident-on", Ty::Ref("host"), "the host the VM is currently resident on"),
        rw("affinity", "affinity", Ty::Ref("host"), "A host which the VM has some affinity for (or NULL). This is used as a hint to the start call when it decides where to run the VM. Resource constraints may cause the VM to be started elsewhere."),
        other_config(),
        rw("ha_always_run", "ha-always-run", Ty::Bool, "if true then the system will attempt to keep the VM running as much as possible.").deprecated(),
        rw("ha_restart_priority", "ha-restart-priority", Ty::String, "has possible values: \"restart\" (this VM should be restarted), \"best-effort\" (try to restart this VM if possible but don't consider the Pool to be overcommitted if this is not possible) and \"\" (do not try to restart this VM)"),
        follow("VCPUs-number", "metrics", "VCPUs_number", Ty::Int, "Current number of VCPUs"),
        tags(),
        rw("start_delay", "start-delay", Ty::Int, "The delay to wait before proceeding to the next order in the startup sequence (seconds)"),
        rw("shutdown_delay", "shutdown-delay", Ty::Int, "The delay to wait before proceeding to the next order in the shutdown sequence (seconds)"),
        rw("order", "order", Ty::Int, "The point in the startup or shutdown sequence at which this VM will be started"),
        ro("metrics", "", Ty::Ref("VM_metrics"), "metrics associated with this VM"),
    ],
};

/// `VM_metrics`: what the host last measured of a VM (`xe` shows `memory-actual` and
/// `VCPUs-number` from it).
pub static VM_METRICS: ClassDecl = ClassDecl {
    name: "VM_metrics",
    cli: "",
    doc: "The metrics associated with a VM",
    persistent: true,
    default_list: &[],
    fields: &[
        uuid(),
        ro(
            "memory_actual",
            "",
            Ty::Int,
            "Guest's actual memory (bytes)",
        ),
        ro("VCPUs_number", "", Ty::Int, "Current number of VCPUs"),
        ro(
            "last_updated",
            "",
            Ty::DateTime,
            "Time at which this information was last updated",
        ),
        rw("other_config", "", SS_MAP, "additional configuration"),
    ],
};

/// `message`: an alert or notification about an object.
pub static MESSAGE: ClassDecl = ClassDecl {
    name: "message",
    cli: "message",
    doc: "An message for the attention of the administrator",
    persistent: true,
    default_list: &[
        "uuid",
        "name",
        "priority",
        "class",
        "obj-uuid",
        "timestamp",
        "body",
    ],
    fields: &[
        uuid(),
        ro("name", "name", Ty::String, "The name of the message"),
        ro(
            "priority",
            "priority",
            Ty::Int,
            "The message priority, 0 being low priority",
        ),
        ro(
            "cls",
            "class",
            Ty::Enum(&MESSAGE_CLASS),
            "The class of the object this message is associated with",
        ),
        ro(
            "obj_uuid",
            "obj-uuid",
            Ty::String,
            "The uuid of the object this message is associated with",
        ),
        ro(
            "timestamp",
            "timestamp",
            Ty::DateTime,
            "The time at which the message was created",
        ),
        ro("body", "body", Ty::String, "The body of the message"),
    ],
};

/// `task`: a long-running asynchronous operation. Not persistent.
pub static TASK: ClassDecl = ClassDecl {
    name: "task",
    cli: "task",
    doc: "A long-running asynchronous task",
    persistent: false,
    default_list: &["uuid", "name-label", "name-description", "status", "progress"],
    fields: &[
        uuid(),
        ro("name_label", "name-label", Ty::String, "a human-readable name"),
        ro("name_description", "name-description", Ty::String, "a notes field containing human-readable description"),
        ro("resident_on", "resident-on", Ty::Ref("host"), "the host on which the task is running"),
        ro("status", "status", Ty::Enum(&TASK_STATUS), "current status of the task"),
        ro("progress", "progress", Ty::Float, "This field contains the estimated fraction of the task which is complete. This field should not be used to determine whether the task is complete - for this the status field of the task should be used."),
        ro("result", "result", Ty::String, "if the task has completed successfully, this field contains the result value (either Void or an object reference); otherwise, the value of this field is undefined"),
        ro("created", "created", Ty::DateTime, "Time task was created"),
        ro("finished", "finished", Ty::DateTime, "Time task finished (i.e. succeeded or failed). If task-status is pending, then the value of this field has no meaning"),
        ro("error_info", "error_info", S_SET, "if the task has failed, this field contains the set of associated error strings. Undefined otherwise.").cli_scalar(),
        other_config(),
    ],
};

/// Every class, in a stable order.
pub static CLASSES: &[&ClassDecl] = &[
    &SESSION,
    &USER,
    &POOL,
    &HOST,
    &HOST_CPU,
    &HOST_METRICS,
    &SR,
    &VDI,
    &PBD,
    &VM,
    &VM_METRICS,
    &MESSAGE,
    &TASK,
];

/// The class with this wire name (`VM`, `host_cpu`).
pub fn class(name: &str) -> Option<&'static ClassDecl> {
    CLASSES.iter().copied().find(|c| c.name == name)
}

/// The class with this `xe` prefix (`vm`, `host-cpu`).
pub fn cli_class(cli: &str) -> Option<&'static ClassDecl> {
    CLASSES
        .iter()
        .copied()
        .find(|c| !c.cli.is_empty() && c.cli == cli)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::types::Source;
    use std::collections::HashSet;

    #[test]
    fn declarations_are_consistent() {
        for c in CLASSES {
            let mut api = HashSet::new();
            let mut cli = HashSet::new();
            for f in c.fields {
                if f.source == Source::Stored {
                    assert!(api.insert(f.name), "{}.{} declared twice", c.name, f.name);
                    // Every default parses as its type.
                    let _ = f.default_value();
                } else {
                    assert!(
                        f.name.is_empty() && !f.cli.is_empty(),
                        "{}: CLI-only field needs a CLI name",
                        c.name
                    );
                }
                if !f.cli.is_empty() {
                    assert!(
                        cli.insert(f.cli),
                        "{}: xe field {} declared twice",
                        c.name,
                        f.cli
                    );
                }
                if let Source::Follow { via, field } = f.source {
                    let Some(Ty::Ref(target)) = c.field(via).map(|v| v.ty) else {
                        panic!("{}.{}: follows a non-ref field {via}", c.name, f.cli)
                    };
                    assert!(
                        class(target).and_then(|t| t.field(field)).is_some(),
                        "{}.{}",
                        c.name,
                        f.cli
                    );
                }
                let mut refs = vec![f.ty];
                while let Some(t) = refs.pop() {
                    match t {
                        Ty::Ref(target) | Ty::Record(target) => {
                            assert!(
                                class(target).is_some() || target == "network",
                                "{}.{}: unknown class {target}",
                                c.name,
                                f.name
                            )
                        }
                        Ty::Set(e) => refs.push(*e),
                        Ty::Map(k, v) => refs.extend([*k, *v]),
                        _ => {}
                    }
                }
            }
            assert_eq!(c.fields[0].name, "uuid", "{}: uuid comes first", c.name);
            for d in c.default_list {
                assert!(
                    c.cli_field(d).is_some(),
                    "{}: default list names unknown field {d}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn xe_markers_follow_records_ml() {
        let marker = |c: &ClassDecl, f: &str| c.cli_field(f).unwrap().cli_marker();
        assert_eq!(marker(&POOL, "ha-configuration"), "( RO)");
        assert_eq!(marker(&POOL, "ha-statefiles"), "( RO)");
        assert_eq!(marker(&POOL, "ha-host-failures-to-tolerate"), "( RW)");
        assert_eq!(marker(&POOL, "other-config"), "(MRW)");
        assert_eq!(marker(&POOL, "tags"), "(SRW)");
        assert_eq!(marker(&HOST, "cpu_info"), "(MRO)");
        assert_eq!(marker(&HOST, "resident-vms"), "(SRO)");
        assert_eq!(marker(&VM, "ha-restart-priority"), "( RW)");
        assert!(VM.cli_field("ha-always-run").unwrap().deprecated);
        assert!(HOST_CPU.cli_field("utilisation").unwrap().expensive);
    }
}
