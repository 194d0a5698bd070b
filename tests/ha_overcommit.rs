//! Overcommit protection across real `xapid` processes with HA enabled (issue 6, point 3):
//! operations that would break the failover plan are refused with
//! `HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN` and change nothing; lowering the failures to
//! tolerate makes room; with `ha_allow_overcommit` the same operation goes through, the pool is
//! marked overcommitted and the alerts appear in `xe message-list` with xapi's bodies; HA's own
//! restart after a host failure is never held back.
//!
//! The pool is tight on purpose. Host A (10 GiB) runs the protected p1 (5 GiB) and the
//! unprotected m (4 GiB); B (8 GiB) runs the protected p2 (5 GiB); C (8 GiB) is the spare.
//! One failure is covered only because C can take p1 or p2; anything that leaves C less than
//! 5 GiB, or takes C away, breaks that.
//!
//! Every wait is bounded; no assertion is about how long anything took.

mod common;

use std::time::Duration;

use common::{raw, wait_for, xe, TestDaemon};
use serde_json::{json, Value as Json};

const GIB: i64 = 1 << 30;

fn local(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    let r = raw::post_unix(&d.socket, "/jsonrpc", body.as_bytes());
    serde_json::from_str(&r.body).unwrap()
}

fn session(d: &TestDaemon) -> Json {
    ok(local(d, "session.login_with_password", json!(["root", ""])))
}

fn ok(r: Json) -> Json {
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

/// A call as root over the local socket.
fn call(d: &TestDaemon, method: &str, mut params: Vec<Json>) -> Json {
    params.insert(0, session(d));
    local(d, method, Json::Array(params))
}

/// The error of a call that must fail.
fn error(r: Json) -> Json {
    assert!(r.get("result").is_none(), "expected a refusal: {r}");
    r["error"].clone()
}

fn would_break() -> Json {
    json!({"code":1,"message":"HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN","data":[]})
}

fn host_by_ip(d: &TestDaemon, ip: &str) -> Json {
    common::host_by_address(d, &session(d), ip)
}

/// A VM of `gib` GiB with this restart priority, started on `on` or left halted.
fn vm(d: &TestDaemon, name: &str, gib: i64, priority: &str, on: Option<&Json>) -> Json {
    let vm = ok(call(
        d,
        "VM.create",
        vec![
            json!({"name_label": name, "memory_static_max": (gib * GIB).to_string(), "ha_restart_priority": priority}),
        ],
    ));
    if let Some(host) = on {
        ok(call(
            d,
            "VM.start_on",
            vec![vm.clone(), host.clone(), json!(false), json!(false)],
        ));
    }
    vm
}

/// Every record an operation could touch, and the database generation.
fn everything(d: &TestDaemon) -> Json {
    let mut all: Vec<Json> = [
        "pool",
        "host",
        "host_metrics",
        "VM",
        "VM_metrics",
        "message",
    ]
    .iter()
    .map(|c| ok(call(d, &format!("{c}.get_all_records"), vec![])))
    .collect();
    all.push(ok(call(d, "host.get_local_database_generation", vec![])));
    Json::Array(all)
}

fn pool_field(d: &TestDaemon, field: &str) -> Json {
    let pool = ok(call(d, "pool.get_all", vec![]))[0].clone();
    ok(call(d, &format!("pool.get_{field}"), vec![pool]))
}

/// A call over TCP, where users log in with their own password (the local socket is root).
fn tcp(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    serde_json::from_str(&raw::post(&d.http, "/jsonrpc", body.as_bytes()).body).unwrap()
}

#[test]
fn operations_that_would_break_the_failover_plan_are_refused_unless_overcommit_is_allowed() {
    let common::HaPool {
        mut hosts,
        ips,
        sr_uuid,
        shared: _shared,
        ..
    } = common::ha_pool(121, &[10, 8, 8]);
    let d = &hosts[0];
    let (a, b, c) = (
        host_by_ip(d, &ips[0]),
        host_by_ip(d, &ips[1]),
        host_by_ip(d, &ips[2]),
    );
    let pool_ref = ok(call(d, "pool.get_all", vec![]))[0].clone();
    ok(call(
        d,
        "pool.set_name_label",
        vec![pool_ref.clone(), json!("lab")],
    ));
    vm(d, "p1", 5, "restart", Some(&a));
    let p2 = vm(d, "p2", 5, "restart", Some(&b));
    let m = vm(d, "m", 4, "", Some(&a));
    let u = vm(d, "u", 4, "", None);
    let small = vm(d, "small", 1, "", None);
    let u_uuid = ok(call(d, "VM.get_uuid", vec![u.clone()]));
    ok(call(
        d,
        "user.create_local",
        vec![json!("alice"), json!("alice-pw"), json!("vm-operator")],
    ));

    let (code, _, err) = xe(
        d,
        &[
            "pool-ha-enable",
            &format!("heartbeat-sr-uuids={sr_uuid}"),
            "ha-config:timeout=2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(0));
    assert_eq!(pool_field(d, "ha_overcommitted"), json!(false));

    // The failures to tolerate: never negative, never more than the pool can cover.
    let set_failures = |n: i64| {
        call(
            d,
            "pool.set_ha_host_failures_to_tolerate",
            vec![pool_ref.clone(), json!(n)],
        )
    };
    assert_eq!(
        error(set_failures(-1)),
        json!({"code":1,"message":"INVALID_VALUE","data":["ha_host_failures_to_tolerate","-1"]})
    );
    assert_eq!(error(set_failures(2)), would_break());
    assert_eq!(pool_field(d, "ha_host_failures_to_tolerate"), json!(0));
    ok(set_failures(1));
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(1));
    assert_eq!(pool_field(d, "ha_overcommitted"), json!(false));

    // Everything that would leave C too small for p1 or p2, or take C away, is refused, and
    // the refusals leave every record as it was.
    let before = everything(d);
    let start_u_on_c = || {
        call(
            d,
            "VM.start_on",
            vec![u.clone(), c.clone(), json!(false), json!(false)],
        )
    };
    assert_eq!(error(start_u_on_c()), would_break());
    // VM.start picks C, the host with most room, for the same reason.
    assert_eq!(
        error(call(
            d,
            "VM.start",
            vec![u.clone(), json!(false), json!(false)]
        )),
        would_break()
    );
    let (code, _, err) = xe(
        d,
        &["vm-start", &format!("uuid={}", u_uuid.as_str().unwrap())],
    );
    assert_eq!(code, 1);
    assert!(err.contains("failover planning"), "{err}");
    assert_eq!(
        error(call(
            d,
            "VM.pool_migrate",
            vec![m.clone(), c.clone(), json!({})]
        )),
        would_break()
    );
    assert_eq!(
        error(call(d, "host.disable", vec![c.clone()])),
        would_break()
    );
    // Evacuating B sends p2 to C and takes B out of service.
    assert_eq!(
        error(call(d, "host.evacuate", vec![b.clone()])),
        would_break()
    );
    // A vm-operator can neither start it nor allow overcommitting.
    let alice = ok(tcp(
        d,
        "session.login_with_password",
        json!(["alice", "alice-pw"]),
    ));
    assert_eq!(
        error(tcp(d, "VM.start", json!([alice, u, false, false]))),
        would_break()
    );
    assert_eq!(
        error(tcp(
            d,
            "pool.set_ha_allow_overcommit",
            json!([alice, pool_ref, true])
        ))["message"],
        json!("RBAC_PERMISSION_DENIED")
    );
    assert_eq!(everything(d), before, "a refusal changed the pool");

    // What keeps the plan goes through: 1 GiB beside p1 on A.
    ok(call(
        d,
        "VM.start_on",
        vec![small.clone(), a.clone(), json!(false), json!(false)],
    ));
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(1));
    ok(call(d, "VM.hard_shutdown", vec![small.clone()]));

    // A pool operator lowers the failures to tolerate to make room.
    ok(set_failures(0));
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(0));
    ok(start_u_on_c());
    assert_eq!(pool_field(d, "ha_overcommitted"), json!(false));
    ok(call(d, "VM.hard_shutdown", vec![u.clone()]));
    ok(set_failures(1));
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(1));
    assert!(!alerts(d)
        .iter()
        .any(|(name, _)| name == "HA_POOL_OVERCOMMITTED"));

    // With overcommit allowed, the same start goes through and the pool says what it lost.
    ok(call(
        d,
        "pool.set_ha_allow_overcommit",
        vec![pool_ref.clone(), json!(true)],
    ));
    ok(start_u_on_c());
    assert_eq!(
        ok(call(d, "VM.get_resident_on", vec![u.clone()])),
        c,
        "started where it was refused"
    );
    assert_eq!(pool_field(d, "ha_overcommitted"), json!(true));
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(0));
    assert_eq!(pool_field(d, "ha_host_failures_to_tolerate"), json!(1));
    let alerts_now = alerts(d);
    let overcommitted = (
        "HA_POOL_OVERCOMMITTED".to_string(),
        "The failover tolerance for pool 'lab' has dropped and the initially specified number \
         of host failures to tolerate can no longer be guaranteed"
            .to_string(),
    );
    // The body of the drop is the number of failures still covered.
    let dropped = (
        "HA_POOL_DROP_IN_PLAN_EXISTS_FOR".to_string(),
        "0".to_string(),
    );
    assert!(alerts_now.contains(&overcommitted), "{alerts_now:?}");
    assert!(alerts_now.contains(&dropped), "{alerts_now:?}");

    // Back within the plan, and overcommit forbidden again: HA's own restart after a host
    // failure must still happen, although it breaks the plan (p2 can only go to C).
    ok(call(d, "VM.hard_shutdown", vec![u.clone()]));
    assert_eq!(pool_field(d, "ha_overcommitted"), json!(false));
    assert_eq!(pool_field(d, "ha_plan_exists_for"), json!(1));
    ok(call(
        d,
        "pool.set_ha_allow_overcommit",
        vec![pool_ref.clone(), json!(false)],
    ));
    hosts[1].kill9();
    let d = &hosts[0];
    wait_for("HA to restart p2 off B", Duration::from_secs(60), || {
        ok(call(d, "VM.get_resident_on", vec![p2.clone()])) != b
            && ok(call(d, "VM.get_power_state", vec![p2.clone()])) == json!("Running")
    });
    assert_eq!(ok(call(d, "VM.get_resident_on", vec![p2.clone()])), c);
    assert_eq!(pool_field(d, "ha_overcommitted"), json!(true));
}

/// `xe message-list` as (name, body) pairs.
fn alerts(d: &TestDaemon) -> Vec<(String, String)> {
    let (code, out, err) = xe(d, &["message-list"]);
    assert_eq!(code, 0, "{err}");
    let field = |line: &str, name: &str| {
        line.trim_start()
            .strip_prefix(name)
            .and_then(|rest| rest.trim_start().strip_prefix("( RO)"))
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    let mut pairs = Vec::new();
    let mut name = None;
    for line in out.lines() {
        if let Some(n) = field(line, "name") {
            name = Some(n);
        } else if let Some(body) = field(line, "body") {
            pairs.push((name.take().expect("a name before the body"), body));
        }
    }
    pairs
}
