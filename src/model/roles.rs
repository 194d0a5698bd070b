//! xapi's six roles and which one each API call needs.
//!
//! Roles are ordered: each includes every role below it (a pool-admin may do anything a
//! read-only user may). Explicit messages declare their role in [`super::messages`]; the
//! generated calls follow xapi's defaults: getters need read-only, setters need the class's
//! writer role, with the per-field exceptions below.

use super::messages::{Kind, Message};

/// An RBAC role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Can log in and read.
    ReadOnly,
    /// Can use VMs (start, stop) and their consoles.
    VmOperator,
    /// Can manage VMs and templates.
    VmAdmin,
    /// Can also choose where VMs run (start_on, migrate).
    VmPowerAdmin,
    /// Manages host- and pool-wide resources, storage, HA.
    PoolOperator,
    /// Full access, including users and roles.
    PoolAdmin,
}

impl Role {
    /// All roles, most powerful first (xapi's order).
    pub const ALL: [Role; 6] = [
        Role::PoolAdmin,
        Role::PoolOperator,
        Role::VmPowerAdmin,
        Role::VmAdmin,
        Role::VmOperator,
        Role::ReadOnly,
    ];

    /// xapi's name: `pool-admin`, `vm-operator`, ...
    pub fn name(self) -> &'static str {
        match self {
            Role::PoolAdmin => "pool-admin",
            Role::PoolOperator => "pool-operator",
            Role::VmPowerAdmin => "vm-power-admin",
            Role::VmAdmin => "vm-admin",
            Role::VmOperator => "vm-operator",
            Role::ReadOnly => "read-only",
        }
    }

    /// The role with this name, in any case.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
    }

    /// The names of the roles that include `self`, as xapi lists them in a refusal.
    pub fn holders(self) -> Vec<&'static str> {
        Role::ALL
            .into_iter()
            .filter(|r| *r >= self)
            .map(Role::name)
            .collect()
    }
}

/// Fields whose setters need more than their class's writer role (xapi's `writer_roles`).
const FIELD_WRITERS: &[(&str, &str, Role)] = &[
    ("VM", "ha_restart_priority", Role::PoolOperator),
    ("VM", "ha_always_run", Role::PoolOperator),
    ("VM", "order", Role::PoolOperator),
    ("VM", "start_delay", Role::PoolOperator),
    ("VM", "shutdown_delay", Role::PoolOperator),
    ("VM", "affinity", Role::VmPowerAdmin),
];

/// The role that writes a class's fields by default.
fn class_writer(class: &str) -> Role {
    match class {
        "VM" => Role::VmAdmin,
        "user" => Role::PoolAdmin,
        _ => Role::PoolOperator,
    }
}

/// The role a call needs.
pub fn required(msg: &Message) -> Role {
    match msg.kind {
        Kind::Get(_)
        | Kind::GetRecord
        | Kind::GetAll
        | Kind::GetAllRecords
        | Kind::GetByUuid
        | Kind::GetByNameLabel => Role::ReadOnly,
        Kind::Set(f) | Kind::AddTo(f) | Kind::RemoveFrom(f) => FIELD_WRITERS
            .iter()
            .find(|(c, name, _)| *c == msg.class.name && *name == f.name)
            .map(|(_, _, r)| *r)
            .unwrap_or_else(|| class_writer(msg.class.name)),
        Kind::Explicit(d) => d.role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api;

    fn role_of(method: &str) -> Role {
        required(api().lookup(method).unwrap())
    }

    #[test]
    fn xapis_defaults() {
        assert_eq!(role_of("VM.get_record"), Role::ReadOnly);
        assert_eq!(role_of("VM.set_name_label"), Role::VmAdmin);
        assert_eq!(role_of("VM.set_ha_restart_priority"), Role::PoolOperator);
        assert_eq!(role_of("VM.start"), Role::VmOperator);
        assert_eq!(role_of("VM.start_on"), Role::VmPowerAdmin);
        assert_eq!(role_of("VM.create"), Role::VmAdmin);
        assert_eq!(role_of("pool.enable_ha"), Role::PoolOperator);
        assert_eq!(
            role_of("pool.set_ha_host_failures_to_tolerate"),
            Role::PoolOperator
        );
        assert_eq!(role_of("user.create_local"), Role::PoolAdmin);
        assert_eq!(role_of("session.logout"), Role::ReadOnly);
    }

    /// The explicit messages whose `allowed_roles` in xapi's datamodel (datamodel_pool.ml,
    /// datamodel_host.ml) is not pool-admin only.
    #[test]
    fn membership_and_emergency_calls_are_pool_operators() {
        for method in [
            "pool.join",
            "pool.join_force",
            "pool.eject",
            "pool.designate_new_master",
            "pool.emergency_transition_to_master",
            "pool.emergency_reset_master",
            "pool.recover_slaves",
            "host.destroy",
            "host.shutdown",
            "host.reboot",
            "host.evacuate",
            "pool.ha_compute_max_host_failures_to_tolerate",
        ] {
            assert_eq!(role_of(method), Role::PoolOperator, "{method}");
        }
        assert_eq!(
            role_of("pool.ha_compute_hypothetical_max_host_failures_to_tolerate"),
            Role::ReadOnly
        );
    }

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::PoolAdmin > Role::VmOperator);
        assert_eq!(
            Role::VmAdmin.holders(),
            ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin"]
        );
        assert_eq!(Role::parse("VM-Operator"), Some(Role::VmOperator));
        assert_eq!(Role::parse("root"), None);
    }
}
