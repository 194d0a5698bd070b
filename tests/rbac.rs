//! Roles: a user can do what its role allows and nothing more; a refusal changes nothing.

mod common;

use common::{raw, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

fn rpc(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    serde_json::from_str(&raw::post(&d.http, "/jsonrpc", body.as_bytes()).body).unwrap()
}

fn ok(d: &TestDaemon, method: &str, params: Json) -> Json {
    let r = rpc(d, method, params);
    assert!(r.get("error").is_none(), "{method}: {r}");
    r["result"].clone()
}

fn login(d: &TestDaemon, user: &str, password: &str) -> String {
    ok(d, "session.login_with_password", json!([user, password]))
        .as_str()
        .unwrap()
        .to_string()
}

fn everything(d: &TestDaemon, s: &str) -> Json {
    Json::Array(
        ["pool", "host", "VM", "user"]
            .iter()
            .map(|c| ok(d, &format!("{c}.get_all_records"), json!([s])))
            .collect(),
    )
}

#[test]
fn a_vm_operator_cannot_do_a_pool_admins_work() {
    let mut d = TestDaemon::start_with(&["--memory-total", "8589934592"]);
    let root = login(&d, "root", PASSWORD);
    let pool = ok(&d, "pool.get_all", json!([root]))[0].clone();
    let vm = ok(
        &d,
        "VM.create",
        json!([root, {"name_label": "app", "memory_static_max": "1073741824"}]),
    );
    ok(
        &d,
        "user.create_local",
        json!([root, "alice", "alice-pw", "vm-operator"]),
    );

    let alice = login(&d, "alice", "alice-pw");
    let before = everything(&d, &root);
    // What a vm-operator may not do, each refused with xapi's parameters.
    let denied = |method: &str, params: Json, holders: &str| {
        let r = rpc(&d, method, params);
        assert_eq!(
            r["error"],
            json!({"code":1,"message":"RBAC_PERMISSION_DENIED","data":[
                method.to_lowercase(),
                format!("No permission in user session. (Roles with this permission: {holders})")
            ]}),
            "{method}"
        );
    };
    let pool_ops = "pool-admin, pool-operator";
    denied(
        "pool.set_ha_host_failures_to_tolerate",
        json!([alice, pool, 1]),
        pool_ops,
    );
    denied(
        "VM.set_ha_restart_priority",
        json!([alice, vm, "restart"]),
        pool_ops,
    );
    denied(
        "host.disable",
        json!([alice, ok(&d, "host.get_all", json!([alice]))[0]]),
        pool_ops,
    );
    denied(
        "VM.destroy",
        json!([alice, vm]),
        "pool-admin, pool-operator, vm-power-admin, vm-admin",
    );
    denied(
        "VM.set_name_label",
        json!([alice, vm, "renamed"]),
        "pool-admin, pool-operator, vm-power-admin, vm-admin",
    );
    denied(
        "user.create_local",
        json!([alice, "mallory", "pw", "pool-admin"]),
        "pool-admin",
    );
    // Pool membership and emergency calls are pool-operator's in xapi, not pool-admin's only.
    let host = ok(&d, "host.get_all", json!([alice]))[0].clone();
    denied(
        "pool.emergency_transition_to_master",
        json!([alice]),
        pool_ops,
    );
    denied(
        "pool.emergency_reset_master",
        json!([alice, "192.0.2.1"]),
        pool_ops,
    );
    denied("pool.recover_slaves", json!([alice]), pool_ops);
    denied(
        "pool.join",
        json!([alice, "192.0.2.1", "root", "pw"]),
        pool_ops,
    );
    denied(
        "pool.join_force",
        json!([alice, "192.0.2.1", "root", "pw"]),
        pool_ops,
    );
    denied("pool.eject", json!([alice, host]), pool_ops);
    denied("pool.designate_new_master", json!([alice, host]), pool_ops);
    denied("host.destroy", json!([alice, host]), pool_ops);
    // The old underscore form of a method name is the same permission, named as xapi names it.
    let r = rpc(&d, "VM_set_name_label", json!([alice, vm, "renamed"]));
    assert_eq!(r["error"]["data"][0], json!("vm.set_name_label"), "{r}");
    assert_eq!(everything(&d, &root), before, "refusals change nothing");

    // A pool-operator gets past RBAC for them: what stops it is the pool, not its role.
    ok(
        &d,
        "user.create_local",
        json!([root, "olga", "olga-pw", "pool-operator"]),
    );
    let olga = login(&d, "olga", "olga-pw");
    let before = everything(&d, &root);
    for (method, params, code) in [
        (
            "pool.eject",
            json!([olga, host]),
            "HOST_CANNOT_DESTROY_SELF",
        ),
        (
            "host.destroy",
            json!([olga, host]),
            "HOST_CANNOT_DESTROY_SELF",
        ),
    ] {
        assert_eq!(
            rpc(&d, method, params)["error"]["message"],
            json!(code),
            "{method}"
        );
    }
    assert_eq!(everything(&d, &root), before, "refusals change nothing");
    // Computing a hypothetical failover capacity only reads: xapi lets read-only users do it.
    assert!(ok(
        &d,
        "pool.ha_compute_hypothetical_max_host_failures_to_tolerate",
        json!([alice, {vm.as_str().unwrap(): "restart"}])
    )
    .is_i64());

    // What it may do: read, and run VMs.
    assert_eq!(
        ok(&d, "VM.get_name_label", json!([alice, vm])),
        json!("app")
    );
    ok(&d, "VM.start", json!([alice, vm, false, false]));
    ok(&d, "VM.hard_shutdown", json!([alice, vm]));

    // A read-only user cannot even start a VM.
    ok(
        &d,
        "user.create_local",
        json!([root, "bob", "bob-pw", "read-only"]),
    );
    let bob = login(&d, "bob", "bob-pw");
    denied(
        "VM.start",
        json!([bob, vm, false, false]),
        "pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator",
    );

    // A new role applies at once; users and roles survive a restart.
    let alice_ref = ok(&d, "session.get_this_user", json!([alice, alice]));
    ok(&d, "user.set_role", json!([root, alice_ref, "vm-admin"]));
    ok(&d, "VM.set_name_label", json!([alice, vm, "renamed"]));
    assert!(d.stop().success());
    d.restart();
    let alice = login(&d, "alice", "alice-pw");
    let root = login(&d, "root", PASSWORD);
    assert_eq!(
        ok(&d, "user.get_role", json!([root, alice_ref])),
        json!("vm-admin")
    );
    ok(&d, "VM.destroy", json!([alice, vm]));

    // Bad requests about users.
    let invalid = |params: Json, field: &str, value: &str| {
        let r = rpc(&d, "user.create_local", params);
        assert_eq!(r["error"]["data"], json!([field, value]), "{r}");
    };
    invalid(json!([root, "carol", "pw", "wizard"]), "role", "wizard");
    invalid(
        json!([root, "alice", "pw", "read-only"]),
        "short_name",
        "alice",
    );
    invalid(json!([root, "", "pw", "read-only"]), "short_name", "");
    let root_ref = ok(&d, "session.get_this_user", json!([root, root]));
    assert_eq!(
        rpc(&d, "user.destroy", json!([root, root_ref]))["error"]["message"],
        json!("INVALID_VALUE")
    );
    assert_eq!(
        rpc(&d, "user.set_role", json!([root, root_ref, "read-only"]))["error"]["message"],
        json!("INVALID_VALUE")
    );

    // Deleting a user ends its sessions and its logins.
    ok(&d, "user.destroy", json!([root, alice_ref]));
    assert_eq!(
        rpc(&d, "VM.get_all", json!([alice]))["error"]["message"],
        json!("SESSION_INVALID")
    );
    let r = rpc(
        &d,
        "session.login_with_password",
        json!(["alice", "alice-pw"]),
    );
    assert_eq!(
        r["error"]["message"],
        json!("SESSION_AUTHENTICATION_FAILED")
    );
}
