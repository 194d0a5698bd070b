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

/// Every ref-shaped string anywhere in a JSON document.
fn refs_in(doc: &Json, out: &mut Vec<String>) {
    match doc {
        Json::String(s) if s.starts_with("OpaqueRef:") => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|i| refs_in(i, out)),
        Json::Object(m) => m.iter().for_each(|(k, v)| {
            refs_in(&Json::String(k.clone()), out);
            refs_in(v, out)
        }),
        _ => {}
    }
}

/// A session ref is a bearer token: a read-only user must find no way to another user's
/// session, and so cannot act as root.
#[test]
fn a_read_only_user_cannot_take_over_roots_session() {
    let d = TestDaemon::start();
    let root = login(&d, "root", PASSWORD);
    ok(
        &d,
        "user.create_local",
        json!([root, "bob", "bob-pw", "read-only"]),
    );
    let bob = login(&d, "bob", "bob-pw");
    let message = |r: &Json| r["error"]["message"].clone();

    // There is no listing of sessions, as in xapi.
    for m in ["session.get_all", "session.get_all_records"] {
        assert_eq!(
            rpc(&d, m, json!([bob]))["error"],
            json!({"code":1,"message":"MESSAGE_METHOD_UNKNOWN","data":[m]})
        );
    }
    // Another session, by uuid or by ref, is pool-admin's business.
    let root_uuid = ok(&d, "session.get_uuid", json!([root, root]));
    let denied = |method: &str| {
        json!({"code":1,"message":"RBAC_PERMISSION_DENIED","data":[
            method,
            "No permission in user session. (Roles with this permission: pool-admin)"
        ]})
    };
    assert_eq!(
        rpc(&d, "session.get_by_uuid", json!([bob, root_uuid]))["error"],
        denied("session.get_by_uuid")
    );
    for m in [
        "session.get_record",
        "session.get_uuid",
        "session.get_this_user",
    ] {
        assert_eq!(rpc(&d, m, json!([bob, root]))["error"], denied(m), "{m}");
    }
    assert_eq!(
        message(&rpc(
            &d,
            "session.add_to_other_config",
            json!([bob, root, "k", "v"])
        )),
        json!("RBAC_PERMISSION_DENIED")
    );
    // A uuid that is no session is simply unknown.
    assert_eq!(
        message(&rpc(
            &d,
            "session.get_by_uuid",
            json!([bob, "no-such-uuid"])
        )),
        json!("UUID_INVALID")
    );
    // Its own session a user may read; pool-admin may read any.
    let bob_uuid = ok(&d, "session.get_uuid", json!([bob, bob]));
    assert_eq!(
        ok(&d, "session.get_by_uuid", json!([bob, bob_uuid])),
        json!(bob)
    );
    assert_eq!(
        ok(&d, "session.get_record", json!([bob, bob]))["auth_user_name"],
        json!("bob")
    );
    assert_eq!(
        ok(&d, "session.get_by_uuid", json!([root, bob_uuid])),
        json!(bob)
    );

    // Everything bob can list, in every class: root's session is nowhere in it, not even in
    // the record of a task root started.
    let task = ok(
        &d,
        "Async.host.get_local_database_generation",
        json!([root]),
    );
    common::wait_for(
        "root's task to finish",
        std::time::Duration::from_secs(30),
        || ok(&d, "task.get_status", json!([bob, task])) != json!("pending"),
    );
    let mut seen = Vec::new();
    for class in [
        "pool",
        "host",
        "host_cpu",
        "host_metrics",
        "SR",
        "VDI",
        "PBD",
        "VM",
        "VM_metrics",
        "message",
        "task",
        "user",
    ] {
        let all = ok(&d, &format!("{class}.get_all_records"), json!([bob]));
        refs_in(&all, &mut seen);
    }
    refs_in(&ok(&d, "session.get_record", json!([bob, bob])), &mut seen);
    assert!(seen.contains(&task.as_str().unwrap().to_string()));
    assert!(!seen.contains(&root), "root's session leaked");
    // The takeover: every ref bob found, used as a session for a pool-admin call, fails.
    for candidate in seen.iter().filter(|r| **r != bob) {
        let r = rpc(
            &d,
            "user.create_local",
            json!([candidate, "mallory", "pw", "pool-admin"]),
        );
        assert_eq!(message(&r), json!("SESSION_INVALID"), "{candidate}: {r}");
    }
    let users = ok(&d, "user.get_all_records", json!([root]));
    assert!(
        !users.to_string().contains("mallory"),
        "no user was created: {users}"
    );
}
