//! Three real `xapid` processes on 127.0.0.1-3 form a pool: joining, one master, replication
//! of every acknowledged write, HOST_IS_SLAVE over TCP, forwarding over members' local sockets,
//! and a member that dies and comes back.

mod common;

use std::time::{Duration, Instant};

use common::{raw, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

fn tcp(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    serde_json::from_str(&raw::post(&d.http, "/jsonrpc", body.as_bytes()).body).unwrap()
}

fn local(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    let r = raw::post_unix(&d.socket, "/jsonrpc", body.as_bytes());
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

fn ok(r: Json) -> Json {
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

/// A session on `d`'s local socket (forwarded to the master on members).
fn local_session(d: &TestDaemon) -> String {
    ok(local(d, "session.login_with_password", json!(["root", ""])))
        .as_str()
        .unwrap()
        .to_string()
}

fn generation(d: &TestDaemon) -> i64 {
    let s = ok(local(
        d,
        "session.slave_local_login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(local(d, "host.get_local_database_generation", json!([s])))
        .as_i64()
        .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start one daemon per address, all on one free API port (free on the first address).
fn start_hosts(ips: &[&str]) -> Vec<TestDaemon> {
    let port = std::net::TcpListener::bind(format!("{}:0", ips[0]))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ips.iter()
        .map(|ip| TestDaemon::start_at(ip, port, &[]))
        .collect()
}

/// `pool.join` over TCP: `member` joins the pool of the master at `master_ip`.
fn join(member: &TestDaemon, master_ip: &str) {
    let s = ok(tcp(
        member,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(tcp(
        member,
        "pool.join",
        json!([s, master_ip, "root", PASSWORD]),
    ));
}

fn live_of(master: &TestDaemon, s: &str, host: &Json) -> bool {
    let metrics = ok(local(master, "host.get_metrics", json!([s, host])));
    ok(local(master, "host_metrics.get_live", json!([s, metrics]))) == json!(true)
}

#[test]
fn three_hosts_form_one_pool_with_one_database() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mem = ["--memory-total", "8589934592"];
    let master = TestDaemon::start_at("127.0.0.1", port, &mem);
    let mut members = vec![
        TestDaemon::start_at("127.0.0.2", port, &mem),
        TestDaemon::start_at("127.0.0.3", port, &mem),
    ];

    // Each joins over its own API, as `xe pool-join` on that host would.
    for m in &members {
        let s = ok(tcp(
            m,
            "session.login_with_password",
            json!(["root", PASSWORD]),
        ));
        let wrong = tcp(m, "pool.join", json!([s, "127.0.0.1", "root", "wrong"]));
        assert_eq!(
            wrong["error"]["message"],
            json!("SESSION_AUTHENTICATION_FAILED"),
            "{wrong}"
        );
        ok(tcp(
            m,
            "pool.join",
            json!([s, "127.0.0.1", "root", PASSWORD]),
        ));
    }

    // Every host sees the same pool: one master, three hosts, the same generation.
    let ms = local_session(&master);
    let master_ref = ok(local(&master, "pool.get_all_records", json!([ms])))
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["master"]
        .clone();
    for d in std::iter::once(&master).chain(&members) {
        let s = local_session(d);
        let pools = ok(local(d, "pool.get_all_records", json!([s])));
        assert_eq!(pools.as_object().unwrap().len(), 1);
        assert_eq!(
            pools.as_object().unwrap().values().next().unwrap()["master"],
            master_ref
        );
        let hosts = ok(local(d, "host.get_all_records", json!([s])));
        let mut addresses: Vec<&str> = hosts
            .as_object()
            .unwrap()
            .values()
            .map(|h| h["address"].as_str().unwrap())
            .collect();
        addresses.sort();
        assert_eq!(addresses, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    }
    let g = generation(&master);
    for m in &members {
        assert_eq!(generation(m), g, "members hold the master's generation");
    }

    // Members send TCP callers to the master, as xapi does.
    for m in &members {
        let r = tcp(m, "session.login_with_password", json!(["root", PASSWORD]));
        assert_eq!(
            r["error"],
            json!({"code":1,"message":"HOST_IS_SLAVE","data":["127.0.0.1"]})
        );
    }

    // A write through a member's local socket is forwarded, and once it is acknowledged it is
    // on every host.
    let s3 = local_session(&members[1]);
    let vm = ok(local(
        &members[1],
        "VM.create",
        json!([s3, {"name_label": "replicated"}]),
    ));
    for d in std::iter::once(&master).chain(&members) {
        assert_eq!(
            generation(d),
            g + 1,
            "acknowledged means applied everywhere"
        );
    }
    assert_eq!(
        ok(local(
            &members[0],
            "VM.get_name_label",
            json!([local_session(&members[0]), vm])
        )),
        json!("replicated")
    );

    // Failover planning over the real pool: a protected 1 GiB VM running on the master can
    // lose any two hosts (the members have 8 GiB each), not all three.
    let protected = ok(local(
        &master,
        "VM.create",
        json!([ms, {"name_label": "db", "memory_static_max": "1073741824"}]),
    ));
    ok(local(
        &master,
        "VM.set_ha_restart_priority",
        json!([ms, protected, "restart"]),
    ));
    ok(local(
        &master,
        "VM.start_on",
        json!([ms, protected, master_ref, false, false]),
    ));
    assert_eq!(
        ok(local(
            &members[0],
            "pool.ha_compute_max_host_failures_to_tolerate",
            json!([local_session(&members[0])])
        )),
        json!(2)
    );
    assert_eq!(
        ok(local(
            &master,
            "pool.ha_failover_plan_exists",
            json!([ms, 2])
        )),
        json!(true)
    );
    assert_eq!(
        ok(local(
            &master,
            "pool.ha_failover_plan_exists",
            json!([ms, 3])
        )),
        json!(false)
    );
    let plan = ok(local(
        &master,
        "pool.ha_compute_vm_failover_plan",
        json!([ms, [master_ref], []]),
    ));
    let target = plan[protected.as_str().unwrap()]["host"].clone();
    assert!(target.is_string() && target != master_ref, "{plan}");

    // A member dies: the master keeps acknowledging writes and, after its timeout, says the
    // member is not live.
    let hosts = ok(local(&master, "host.get_all_records", json!([ms])));
    let dead = hosts
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, h)| h["address"] == json!("127.0.0.3"))
        .unwrap()
        .0
        .clone();
    let dead = json!(dead);
    members[1].kill9();
    // Writes go on without it (the member is marked unreachable instead of waited for).
    ok(local(
        &master,
        "VM.create",
        json!([ms, {"name_label": "after the crash"}]),
    ));
    wait_for(
        "the dead member to be marked not live",
        Duration::from_secs(10),
        || !live_of(&master, &ms, &dead),
    );

    // It comes back: it catches up and is live again.
    members[1].restart();
    wait_for(
        "the member to be live again",
        Duration::from_secs(20),
        || live_of(&master, &ms, &dead),
    );
    let g = generation(&master);
    wait_for("the member to catch up", Duration::from_secs(10), || {
        generation(&members[1]) == generation(&master)
    });
    assert!(generation(&members[1]) >= g);
    let s3 = local_session(&members[1]);
    let names: Vec<Json> = ok(local(&members[1], "VM.get_all_records", json!([s3])))
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["name_label"].clone())
        .collect();
    assert!(names.contains(&json!("after the crash")), "{names:?}");
}

#[test]
fn joining_checks_cpus_unless_forced() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cpuinfo");
    let intel = format!("{fixtures}/intel-xeon-2cpu.txt");
    let amd = format!("{fixtures}/amd-epyc-4cpu.txt");
    let master = TestDaemon::start_at("127.0.0.4", port, &["--cpuinfo", &intel]);
    let joiner = TestDaemon::start_at("127.0.0.5", port, &["--cpuinfo", &amd]);
    let s = ok(tcp(
        &joiner,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    let r = tcp(
        &joiner,
        "pool.join",
        json!([s, "127.0.0.4", "root", PASSWORD]),
    );
    assert_eq!(r["error"]["message"], json!("HOSTS_NOT_HOMOGENEOUS"), "{r}");
    assert!(
        r["error"]["data"][0]
            .as_str()
            .unwrap()
            .contains("AuthenticAMD"),
        "{r}"
    );
    // Nothing changed on either side.
    let ms = local_session(&master);
    assert_eq!(
        ok(local(&master, "host.get_all", json!([ms])))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok(tcp(&joiner, "host.get_all", json!([s])))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // --force overrides the check.
    ok(tcp(
        &joiner,
        "pool.join_force",
        json!([s, "127.0.0.4", "root", PASSWORD]),
    ));
    assert_eq!(
        ok(local(&master, "host.get_all", json!([ms])))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // An unreachable master is a clean error.
    let lonely = TestDaemon::start_at("127.0.0.6", port, &[]);
    let s = ok(tcp(
        &lonely,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    let r = tcp(
        &lonely,
        "pool.join",
        json!([s, "127.0.0.7", "root", PASSWORD]),
    );
    assert_eq!(
        r["error"]["message"],
        json!("JOINING_HOST_CONNECTION_FAILED"),
        "{r}"
    );
}

#[test]
fn designating_a_new_master_loses_nothing() {
    let ips = ["127.0.0.61", "127.0.0.62", "127.0.0.63"];
    let mut hosts = start_hosts(&ips);
    for h in &hosts[1..] {
        join(h, ips[0]);
    }
    let s = local_session(&hosts[0]);
    for i in 0..5 {
        ok(local(
            &hosts[0],
            "VM.create",
            json!([s, {"name_label": format!("before-{i}")}]),
        ));
    }
    let all_hosts = ok(local(&hosts[0], "host.get_all_records", json!([s])));
    let new_master = json!(
        all_hosts
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, h)| h["address"] == json!(ips[1]))
            .unwrap()
            .0
    );

    ok(local(
        &hosts[0],
        "pool.designate_new_master",
        json!([s, new_master]),
    ));

    // Every host follows the new master: its record says so, the old master sends TCP
    // callers there, and writes through any local socket land on it and on every host.
    wait_for(
        "every host to follow the new master",
        Duration::from_secs(20),
        || {
            hosts.iter().all(|h| {
                let r = local(h, "session.login_with_password", json!(["root", ""]));
                let Some(s) = r["result"].as_str().map(str::to_string) else {
                    return false;
                };
                let pools = local(h, "pool.get_all_records", json!([s]));
                pools["result"]
                    .as_object()
                    .is_some_and(|p| p.values().all(|p| p["master"] == new_master))
            })
        },
    );
    let r = tcp(
        &hosts[0],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    );
    assert_eq!(r["error"]["data"], json!([ips[1]]), "{r}");
    let s2 = local_session(&hosts[2]);
    ok(local(
        &hosts[2],
        "VM.create",
        json!([s2, {"name_label": "after"}]),
    ));
    wait_for("all copies to agree", Duration::from_secs(20), || {
        let g = generation(&hosts[1]);
        hosts.iter().all(|h| generation(h) == g)
    });
    for h in &hosts {
        let names: Vec<Json> = ok(local(h, "VM.get_all_records", json!([local_session(h)])))
            .as_object()
            .unwrap()
            .values()
            .map(|v| v["name_label"].clone())
            .collect();
        for expected in ["before-0", "before-4", "after"] {
            assert!(
                names.contains(&json!(expected)),
                "{expected} missing: {names:?}"
            );
        }
    }
    let messages = ok(local(
        &hosts[1],
        "message.get_all_records",
        json!([local_session(&hosts[1])]),
    ));
    assert!(messages
        .as_object()
        .unwrap()
        .values()
        .any(|m| m["name"] == json!("POOL_MASTER_TRANSITION")));

    // The old master's epoch is over: a member refuses its writes, and anyone's without the
    // pool secret.
    let secret = std::fs::read_to_string(hosts[2].state_dir().join("pool-secret"))
        .unwrap()
        .trim()
        .to_string();
    let change = json!({"generation": 999, "objects": [], "credentials": []}).to_string();
    let stale = tcp(
        &hosts[2],
        "pool.internal_replicate",
        json!([secret, 1, change]),
    );
    assert_eq!(
        stale["error"]["message"],
        json!("OPERATION_NOT_ALLOWED"),
        "{stale}"
    );
    assert!(
        stale["error"]["data"][0]
            .as_str()
            .unwrap()
            .contains("stale epoch 1"),
        "{stale}"
    );
    let forged = tcp(
        &hosts[2],
        "pool.internal_replicate",
        json!(["not-the-secret", 2, change]),
    );
    assert_eq!(
        forged["error"]["message"],
        json!("PERMISSION_DENIED"),
        "{forged}"
    );
    // The epoch survives a restart of the member.
    hosts[2].kill9();
    hosts[2].restart();
    let stale = tcp(
        &hosts[2],
        "pool.internal_replicate",
        json!([secret, 1, change]),
    );
    assert!(
        stale["error"]["data"][0]
            .as_str()
            .unwrap()
            .contains("stale epoch 1 (this host has seen 2)"),
        "{stale}"
    );
}

#[test]
fn a_member_that_returns_with_more_memory_is_recorded_by_the_master() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = TestDaemon::start_at("127.0.0.71", port, &["--memory-total", "4294967296"]);
    let mut member = TestDaemon::start_at("127.0.0.72", port, &["--memory-total", "4294967296"]);
    let s = ok(tcp(
        &member,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(tcp(
        &member,
        "pool.join",
        json!([s, "127.0.0.71", "root", PASSWORD]),
    ));
    let ms = local_session(&master);
    let hosts = ok(local(&master, "host.get_all_records", json!([ms])));
    let host = json!(
        hosts
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, h)| h["address"] == json!("127.0.0.72"))
            .unwrap()
            .0
    );
    let memory_total = || {
        let metrics = ok(local(&master, "host.get_metrics", json!([ms, host])));
        ok(local(
            &master,
            "host_metrics.get_memory_total",
            json!([ms, metrics]),
        ))
    };
    assert_eq!(memory_total(), json!(4294967296i64));
    member.kill9();
    wait_for("the member to be not live", Duration::from_secs(20), || {
        !live_of(&master, &ms, &host)
    });
    member.restart_with("--memory-total", "8589934592");
    wait_for(
        "the master to record the new memory",
        Duration::from_secs(20),
        || memory_total() == json!(8589934592i64),
    );
    assert!(live_of(&master, &ms, &host));
    let messages = ok(local(&master, "message.get_all_records", json!([ms])));
    assert!(
        messages
            .as_object()
            .unwrap()
            .values()
            .any(|m| m["name"] == json!("HOST_LIVE")),
        "{messages}"
    );
}

#[test]
fn a_member_catches_up_on_a_database_larger_than_any_rpc_body() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = TestDaemon::start_at("127.0.0.73", port, &[]);
    let mut member = TestDaemon::start_at("127.0.0.74", port, &[]);
    let s = ok(tcp(
        &member,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(tcp(
        &member,
        "pool.join",
        json!([s, "127.0.0.73", "root", PASSWORD]),
    ));
    member.kill9();
    // While the member is away the database grows to several times the RPC body limit
    // (xenha::server::http::MAX_BODY, 4 MiB), so it can only come back through the
    // database route.
    let ms = local_session(&master);
    let filler = "x".repeat(1 << 20);
    for i in 0..6 {
        ok(local(
            &master,
            "VM.create",
            json!([ms, {"name_label": format!("big-{i}"), "other_config": {"filler": filler}}]),
        ));
    }
    member.restart();
    wait_for(
        "the member to hold the master's database",
        Duration::from_secs(30),
        || generation(&member) == generation(&master),
    );
    member.kill9();
    let db = xenha::pool::Database::open(&member.state_dir().join("pool.db")).unwrap();
    let t = db.read();
    let big = t
        .all("VM")
        .filter(|(_, vm)| {
            vm.get("other_config")
                .and_then(xenha::model::Value::as_struct)
                .and_then(|m| m.get("filler"))
                .and_then(xenha::model::Value::as_str)
                .map(str::len)
                == Some(1 << 20)
        })
        .count();
    assert_eq!(
        big, 6,
        "every large VM record reached the member's disk whole"
    );
}

/// The pool secret a host keeps in its state directory.
fn secret_of(d: &TestDaemon) -> String {
    std::fs::read_to_string(d.state_dir().join("pool-secret"))
        .unwrap()
        .trim()
        .to_string()
}

/// This host's own copy of the database. Pool-internal calls run where they land, so unlike an
/// ordinary call on a member's socket this does not reach the master.
fn copy_of(d: &TestDaemon) -> xenha::pool::Dump {
    let r = ok(tcp(d, "pool.internal_dump", json!([secret_of(d)])));
    serde_json::from_str(r.as_str().unwrap()).unwrap()
}

fn vm_names(dump: &xenha::pool::Dump) -> std::collections::BTreeSet<String> {
    dump.objects
        .iter()
        .filter(|(class, _, _)| class == "VM")
        .filter_map(|(_, _, vm)| vm.get("name_label")?.as_str().map(str::to_string))
        .collect()
}

fn pool_master(dump: &xenha::pool::Dump) -> String {
    dump.objects
        .iter()
        .find(|(class, _, _)| class == "pool")
        .and_then(|(_, _, p)| p.get("master")?.as_str().map(str::to_string))
        .unwrap()
}

fn host_by_address(d: &TestDaemon, s: &str, address: &str) -> Json {
    common::host_by_address(d, &json!(s), address)
}

/// An old master that wrote while alone, died, and came back after a member took over in an
/// emergency: with the same generation number as the new master's copy, its copy still holds
/// another history. It must follow the new master and take its state whole, so every host ends
/// with the same contents.
#[test]
fn an_old_master_that_returns_takes_the_new_masters_state_even_at_the_same_generation() {
    let ips = ["127.0.2.1", "127.0.2.2", "127.0.2.3"];
    let mut hosts = start_hosts(&ips);
    for h in &hosts[1..] {
        join(h, ips[0]);
    }
    let s = local_session(&hosts[0]);
    ok(local(
        &hosts[0],
        "VM.create",
        json!([s, {"name_label": "before"}]),
    ));

    // Both members go away; the master acknowledges writes nobody else has, and dies.
    hosts[1].kill9();
    hosts[2].kill9();
    for i in 1..=10 {
        ok(local(
            &hosts[0],
            "VM.create",
            json!([s, {"name_label": format!("div-{i}")}]),
        ));
    }
    let old = copy_of(&hosts[0]);
    hosts[0].kill9();

    // The members come back and the second takes over in an emergency.
    hosts[1].restart();
    hosts[2].restart();
    let s1 = ok(local(
        &hosts[1],
        "session.slave_local_login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(local(
        &hosts[1],
        "pool.emergency_transition_to_master",
        json!([s1]),
    ));
    let s1 = local_session(&hosts[1]);
    let new_master = host_by_address(&hosts[1], &s1, ips[1]);
    let old_master = host_by_address(&hosts[1], &s1, ips[0]);
    // The old master was already dead when the new one took over: it is marked not live, and
    // the third host follows the new master.
    wait_for("the new master to settle", Duration::from_secs(20), || {
        !live_of(&hosts[1], &s1, &old_master)
            && copy_of(&hosts[2]).stamp.generation == copy_of(&hosts[1]).stamp.generation
    });
    // New writes until the new master's generation number is the one the old master will
    // have after its start-up write: the old master's copy then differs from the new one only
    // by the epoch that wrote it.
    let mut written = 0;
    while written < 6 || copy_of(&hosts[1]).stamp.generation < old.stamp.generation + 1 {
        ok(local(
            &hosts[1],
            "VM.create",
            json!([s1, {"name_label": format!("new-{written}")}]),
        ));
        written += 1;
    }
    hosts[0].restart();

    let agreed = || {
        let copies: Vec<_> = hosts.iter().map(copy_of).collect();
        copies.iter().all(|c| {
            c.stamp == copies[1].stamp
                && vm_names(c) == vm_names(&copies[1])
                && pool_master(c) == pool_master(&copies[1])
        })
    };
    wait_for("every copy to agree", Duration::from_secs(20), agreed);
    for (h, ip) in hosts.iter().zip(ips) {
        let copy = copy_of(h);
        let names = vm_names(&copy);
        assert_eq!(json!(pool_master(&copy)), new_master, "{ip}");
        assert!(
            copy.stamp.epoch > old.stamp.epoch,
            "{ip}: {}",
            copy.stamp.epoch
        );
        assert!(names.contains("before"), "{ip}: {names:?}");
        for i in 0..written {
            assert!(names.contains(&format!("new-{i}")), "{ip}: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("div-")),
            "{ip}: {names:?}"
        );
    }
    // The old master knows it is one no more.
    let r = tcp(
        &hosts[0],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    );
    assert_eq!(r["error"]["data"], json!([ips[1]]), "{r}");
}

/// A member that is already dead when its master starts is marked not live after the timeout,
/// like one that dies later.
#[test]
fn a_member_dead_before_the_master_starts_is_marked_not_live() {
    let port = std::net::TcpListener::bind("127.0.2.4:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut master = TestDaemon::start_at("127.0.2.4", port, &[]);
    let mut member = TestDaemon::start_at("127.0.2.5", port, &[]);
    let s = ok(tcp(
        &member,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(tcp(
        &member,
        "pool.join",
        json!([s, "127.0.2.4", "root", PASSWORD]),
    ));
    let ms = local_session(&master);
    let host = host_by_address(&master, &ms, "127.0.2.5");
    assert!(live_of(&master, &ms, &host));
    // Both die before the master notices; its copy still says the member is live.
    member.kill9();
    master.kill9();
    {
        let db = xenha::pool::Database::open(&master.state_dir().join("pool.db")).unwrap();
        let t = db.read();
        let metrics = t
            .field("host", host.as_str().unwrap(), "metrics")
            .and_then(xenha::model::Value::as_str)
            .unwrap()
            .to_string();
        assert_eq!(
            t.field("host_metrics", &metrics, "live"),
            Some(&xenha::model::Value::Bool(true))
        );
    }
    master.restart();
    let ms = local_session(&master);
    wait_for(
        "the dead member to be marked not live",
        Duration::from_secs(10),
        || !live_of(&master, &ms, &host),
    );
    let messages = ok(local(&master, "message.get_all_records", json!([ms])));
    assert!(
        messages
            .as_object()
            .unwrap()
            .values()
            .any(|m| m["name"] == json!("HOST_NOT_LIVE")),
        "{messages}"
    );
}

/// Calls that take longer than the pool's housekeeping timeout: a clean shutdown of a domain
/// that ignores SIGTERM waits its whole grace period (10 s). Through a member's socket it is
/// forwarded to the master, which asks the member to stop the domain; both hops wait for the
/// answer. A client that hangs up half-way does not cut the operation short either.
#[test]
fn long_calls_are_forwarded_whole_and_finish_without_their_client() {
    let port = std::net::TcpListener::bind("127.0.2.6:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = TestDaemon::start_at("127.0.2.6", port, &[]);
    let member = TestDaemon::start_at("127.0.2.7", port, &[]);
    let s = ok(tcp(
        &member,
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(tcp(
        &member,
        "pool.join",
        json!([s, "127.0.2.6", "root", PASSWORD]),
    ));
    let s = local_session(&member);
    let member_ref = host_by_address(&member, &s, "127.0.2.7");
    let stubborn = "trap '' TERM; while :; do sleep 1; done";
    let vm = ok(local(
        &member,
        "VM.create",
        json!([s, {"name_label": "stubborn", "other_config": {"command": stubborn}}]),
    ));
    let power_state = || ok(local(&master, "VM.get_power_state", json!([s, vm])));
    ok(local(
        &member,
        "VM.start_on",
        json!([s, vm, member_ref, false, false]),
    ));
    assert_eq!(power_state(), json!("Running"));
    ok(local(&member, "VM.clean_shutdown", json!([s, vm])));
    assert_eq!(power_state(), json!("Halted"));

    // Again, but the client gives up after a moment.
    ok(local(
        &member,
        "VM.start_on",
        json!([s, vm, member_ref, false, false]),
    ));
    {
        use std::io::Write;
        let body = json!({"jsonrpc":"2.0","method":"VM.clean_shutdown","params":[s, vm],"id":1})
            .to_string();
        let mut c = std::os::unix::net::UnixStream::connect(&master.socket).unwrap();
        write!(
            c,
            "POST /jsonrpc HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    wait_for(
        "the abandoned shutdown to finish",
        Duration::from_secs(30),
        || power_state() == json!("Halted"),
    );
}

/// The old master of a pool restarts after a member took over in an emergency. Before it
/// acknowledges any write it must learn from its members that the pool moved on, step down and
/// take the new master's copy: every write it acknowledged while coming up is on every host
/// once things settle, and it ends a member like any other.
#[test]
fn a_restarted_master_that_was_replaced_acknowledges_no_write_it_would_lose() {
    restarted_master_after_an_emergency_transition(["127.0.7.1", "127.0.7.2", "127.0.7.3"], false);
}

/// The same, with members that answer the restarted master only after a moment (stopped for
/// a second): writes that reach it meanwhile are in flight when it learns it was replaced, and
/// none of them may be acknowledged.
#[test]
fn writes_in_flight_when_a_restarted_master_learns_it_was_replaced_are_not_acknowledged() {
    restarted_master_after_an_emergency_transition(["127.0.7.4", "127.0.7.5", "127.0.7.6"], true);
}

/// Three hosts; the master (`ips[0]`) dies, the operator transitions `ips[1]` to master in an
/// emergency and recovers `ips[2]`; the old master restarts while writers call it over TCP as
/// fast as they can. With `slow_members`, the other two are stopped while it starts and
/// resumed a second later.
fn restarted_master_after_an_emergency_transition(ips: [&str; 3], slow_members: bool) {
    let port = std::net::TcpListener::bind(format!("{}:0", ips[0]))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hosts: Vec<TestDaemon> = ips
        .iter()
        .map(|ip| TestDaemon::start_at(ip, port, &[]))
        .collect();
    for h in &hosts[1..] {
        join(h, ips[0]);
    }
    let s = local_session(&hosts[0]);
    ok(local(
        &hosts[0],
        "VM.create",
        json!([s, {"name_label": "before"}]),
    ));
    let old = copy_of(&hosts[0]);

    // The master dies; the operator makes the second host master and brings the third over.
    hosts[0].kill9();
    let s1 = ok(local(
        &hosts[1],
        "session.slave_local_login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(local(
        &hosts[1],
        "pool.emergency_transition_to_master",
        json!([s1]),
    ));
    let s1 = local_session(&hosts[1]);
    ok(local(&hosts[1], "pool.recover_slaves", json!([s1])));
    let slave_of_new_master = |h: &TestDaemon| {
        let r = tcp(h, "session.login_with_password", json!(["root", PASSWORD]));
        r["error"]["message"] == json!("HOST_IS_SLAVE") && r["error"]["data"] == json!([ips[1]])
    };
    wait_for(
        "the third host to follow the new master",
        Duration::from_secs(20),
        || slave_of_new_master(&hosts[2]),
    );
    ok(local(
        &hosts[1],
        "VM.create",
        json!([s1, {"name_label": "after-transition"}]),
    ));

    // The old master comes back, and callers write to it as fast as they can while it does.
    if slow_members {
        hosts[1].signal("STOP");
        hosts[2].signal("STOP");
    }
    hosts[0].restart();
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    std::thread::scope(|scope| {
        for writer in 0..3 {
            let (old_master, acknowledged) = (&hosts[0], &acknowledged);
            scope.spawn(move || {
                let mut session = None;
                for attempt in 0.. {
                    assert!(
                        Instant::now() < deadline,
                        "the old master never answered as a member:\n{}",
                        old_master.log()
                    );
                    let r = match &session {
                        None => tcp(
                            old_master,
                            "session.login_with_password",
                            json!(["root", PASSWORD]),
                        ),
                        Some(s) => {
                            let name = format!("late-{writer}-{attempt}");
                            let r = tcp(old_master, "VM.create", json!([s, {"name_label": name}]));
                            if r.get("error").is_none() {
                                acknowledged.lock().unwrap().push(name);
                            }
                            r
                        }
                    };
                    if r["error"]["message"] == json!("HOST_IS_SLAVE") {
                        assert_eq!(r["error"]["data"], json!([ips[1]]), "{r}");
                        return;
                    }
                    if session.is_none() && r.get("error").is_none() {
                        session = Some(r["result"].clone());
                    }
                }
            });
        }
        if slow_members {
            // Not a measurement: the members answer the start-up pings late, well within the
            // peer timeout, while the writers' calls are in flight.
            std::thread::sleep(Duration::from_secs(1));
            hosts[1].signal("CONT");
            hosts[2].signal("CONT");
        }
    });
    let acknowledged = acknowledged.into_inner().unwrap();

    // Once things settle every host holds the same copy, and it has every acknowledged write.
    let agreed = || {
        let copies: Vec<_> = hosts.iter().map(copy_of).collect();
        copies
            .iter()
            .all(|c| c.stamp == copies[1].stamp && vm_names(c) == vm_names(&copies[1]))
    };
    wait_for("every copy to agree", Duration::from_secs(30), agreed);
    let new_master = host_by_address(&hosts[1], &s1, ips[1]);
    for (h, ip) in hosts.iter().zip(ips) {
        let copy = copy_of(h);
        let names = vm_names(&copy);
        assert!(
            copy.stamp.epoch > old.stamp.epoch,
            "{ip}: {}",
            copy.stamp.epoch
        );
        assert_eq!(json!(pool_master(&copy)), new_master, "{ip}");
        for name in ["before", "after-transition"]
            .into_iter()
            .chain(acknowledged.iter().map(String::as_str))
        {
            assert!(
                names.contains(name),
                "{ip} lacks the acknowledged {name}: {names:?}\n{}",
                hosts[0].log()
            );
        }
    }
    assert!(slave_of_new_master(&hosts[0]), "{}", hosts[0].log());
}

/// Hung members (SIGSTOP: their sockets still accept, nothing answers) are pinged at once, each
/// ping bounded on its own, so two of them are both recorded not live within the documented
/// bound, not one after the other; once resumed, both are brought back.
#[test]
fn hung_members_are_recorded_not_live_within_the_documented_bound() {
    use xenha::server::membership::NOT_LIVE_WITHIN;
    let ips = ["127.0.14.1", "127.0.14.2", "127.0.14.3", "127.0.14.4"];
    let hosts = start_hosts(&ips);
    for h in &hosts[1..] {
        join(h, ips[0]);
    }
    let master = &hosts[0];
    let s = local_session(master);
    let hung = [
        host_by_address(master, &s, ips[1]),
        host_by_address(master, &s, ips[2]),
    ];
    let answering = host_by_address(master, &s, ips[3]);
    assert!(hung.iter().all(|h| live_of(master, &s, h)));
    let logs = || {
        hosts
            .iter()
            .zip(ips)
            .map(|(h, ip)| format!("==== {ip}\n{}", h.log()))
            .collect::<String>()
    };

    let paused = [hosts[1].pause(), hosts[2].pause()];
    let frozen = Instant::now();
    // The bound, plus slack for a loaded machine; a deadline, not a measure of speed.
    let deadline = frozen + NOT_LIVE_WITHIN + Duration::from_secs(5);
    while hung.iter().any(|h| live_of(master, &s, h)) {
        assert!(
            Instant::now() < deadline,
            "hung members still recorded live {:?} after they froze\n{}",
            frozen.elapsed(),
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(live_of(master, &s, &answering), "{}", logs());
    let messages = ok(local(master, "message.get_all_records", json!([s])));
    let not_live = messages
        .as_object()
        .unwrap()
        .values()
        .filter(|m| m["name"] == json!("HOST_NOT_LIVE"))
        .count();
    assert_eq!(not_live, 2, "{messages}");

    drop(paused);
    wait_for(
        "the resumed members to be live again",
        Duration::from_secs(30),
        || hung.iter().all(|h| live_of(master, &s, h)),
    );
    assert!(live_of(master, &s, &answering));
}

/// After a handover the old master is a member: the pool-internal calls that write as master
/// (adding a joining host, bringing a member back) are refused there with `HOST_IS_SLAVE` and
/// the new master's address, as every other call a member cannot answer, instead of writing
/// what no master keeps. A host that asks the old master to let it join follows that answer
/// and ends a member of the new master.
#[test]
fn a_master_that_handed_over_refuses_master_writes_and_sends_joiners_on() {
    let ips = ["127.0.14.11", "127.0.14.12", "127.0.14.13"];
    let hosts = start_hosts(&ips);
    join(&hosts[1], ips[0]);
    let s = local_session(&hosts[0]);
    let new_master = host_by_address(&hosts[0], &s, ips[1]);
    ok(local(
        &hosts[0],
        "pool.designate_new_master",
        json!([s, new_master]),
    ));

    let slave = json!({"code": 1, "message": "HOST_IS_SLAVE", "data": [ips[1]]});
    let r = tcp(
        &hosts[0],
        "pool.internal_add_host",
        json!(["OpaqueRef:any-session", "{}", true]),
    );
    assert_eq!(r["error"], slave, "{r}");
    let r = tcp(
        &hosts[0],
        "pool.internal_member_ready",
        json!([secret_of(&hosts[0]), new_master]),
    );
    assert_eq!(r["error"], slave, "{r}\n{}", hosts[0].log());

    // A third host asks the old master; it joins the new one.
    let s3 = ok(tcp(
        &hosts[2],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    ok(tcp(
        &hosts[2],
        "pool.join",
        json!([s3, ips[0], "root", PASSWORD]),
    ));
    let r = tcp(
        &hosts[2],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    );
    assert_eq!(r["error"], slave, "{r}");
    let s1 = local_session(&hosts[1]);
    let joined = host_by_address(&hosts[1], &s1, ips[2]);
    wait_for("every copy to agree", Duration::from_secs(20), || {
        let copies: Vec<_> = hosts.iter().map(copy_of).collect();
        copies.iter().all(|c| c.stamp == copies[1].stamp)
    });
    assert!(live_of(&hosts[1], &s1, &joined));
    for h in &hosts {
        assert_eq!(json!(pool_master(&copy_of(h))), new_master);
    }
}

/// A join that arrives while a handover runs (the target is frozen for a moment, so the
/// handover holds the write gate a while) waits for it, then is sent to the new master and
/// ends a member there: never acknowledged by a master whose write the new one lacks.
#[test]
fn a_join_racing_a_handover_ends_in_the_new_masters_pool() {
    let ips = ["127.0.14.21", "127.0.14.22", "127.0.14.23"];
    let hosts = start_hosts(&ips);
    join(&hosts[1], ips[0]);
    let s = local_session(&hosts[0]);
    let target = host_by_address(&hosts[0], &s, ips[1]);
    let s3 = ok(tcp(
        &hosts[2],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));

    let (designated, joined) = std::thread::scope(|scope| {
        let frozen = hosts[1].pause();
        let designate =
            scope.spawn(|| local(&hosts[0], "pool.designate_new_master", json!([s, target])));
        // The handover now holds the gate, waiting for the frozen target's answer.
        std::thread::sleep(Duration::from_millis(500));
        let join = scope.spawn(|| {
            tcp(
                &hosts[2],
                "pool.join",
                json!([s3, ips[0], "root", PASSWORD]),
            )
        });
        std::thread::sleep(Duration::from_millis(700));
        drop(frozen);
        (designate.join().unwrap(), join.join().unwrap())
    });
    let logs = || {
        hosts
            .iter()
            .zip(ips)
            .map(|(h, ip)| format!("==== {ip}\n{}", h.log()))
            .collect::<String>()
    };
    assert!(
        designated.get("error").is_none(),
        "{designated}\n{}",
        logs()
    );
    assert!(joined.get("error").is_none(), "{joined}\n{}", logs());

    let s1 = local_session(&hosts[1]);
    let new_member = host_by_address(&hosts[1], &s1, ips[2]);
    wait_for("every copy to agree", Duration::from_secs(20), || {
        let copies: Vec<_> = hosts.iter().map(copy_of).collect();
        copies.iter().all(|c| c.stamp == copies[1].stamp)
    });
    assert!(live_of(&hosts[1], &s1, &new_member), "{}", logs());
    for h in &hosts {
        assert_eq!(json!(pool_master(&copy_of(h))), target);
    }
    let r = tcp(
        &hosts[2],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    );
    assert_eq!(r["error"]["data"], json!([ips[1]]), "{r}");
}

/// Names of the messages `d` (a master) holds.
fn message_names(d: &TestDaemon) -> Vec<String> {
    let s = local_session(d);
    let messages = ok(local(d, "message.get_all_records", json!([s])));
    messages
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// An emergency transition keeps every acknowledged write only if it reaches a host the old
/// master recorded live. One that reaches such a host is silent about it; one that reaches
/// nobody says, in its log and in a pool message, that writes may be missing.
#[test]
fn an_emergency_transition_that_reaches_no_live_member_warns() {
    let ips = ["127.0.14.31", "127.0.14.32", "127.0.14.33"];
    let mut hosts = start_hosts(&ips);
    for h in &hosts[1..] {
        join(h, ips[0]);
    }
    let transition = |d: &TestDaemon| {
        let s = ok(local(
            d,
            "session.slave_local_login_with_password",
            json!(["root", PASSWORD]),
        ));
        ok(local(d, "pool.emergency_transition_to_master", json!([s])));
    };
    const UNVERIFIED: &str = "POOL_EMERGENCY_TRANSITION_UNVERIFIED";

    // The master dies; a member takes over and reaches the other, recorded live.
    hosts[0].kill9();
    transition(&hosts[1]);
    assert!(
        !message_names(&hosts[1]).contains(&UNVERIFIED.to_string()),
        "{}",
        hosts[1].log()
    );
    wait_for("the last member to follow", Duration::from_secs(20), || {
        let (a, b) = (copy_of(&hosts[1]), copy_of(&hosts[2]));
        a.stamp == b.stamp
    });

    // That master dies too; the last host reaches nobody.
    hosts[1].kill9();
    transition(&hosts[2]);
    assert!(
        message_names(&hosts[2]).contains(&UNVERIFIED.to_string()),
        "{}",
        hosts[2].log()
    );
    assert!(
        hosts[2]
            .log()
            .contains("reached no member the old master recorded live"),
        "{}",
        hosts[2].log()
    );
}
