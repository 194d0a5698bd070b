//! `xe pool-dump-database` and `xe pool-ha-what-if` (issue 6 point 5): the planner answered
//! client-side from the live pool or a snapshot file, identically, without writing to the pool.
//! Expected values are computed independently with the planner library on snapshots built by
//! hand here, not read back from `xe`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TestDaemon, PASSWORD};
use xenha::client::{value_text, Connection, Endpoint, Protocol, Session};
use xenha::model::Value;
use xenha::planner::{self, PlanHost, PlanVm, PoolSnapshot, RestartPriority};

const GIB: i64 = 1 << 30;

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn xe(socket: &Path, home: &Path, args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_xe"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XAPI_SOCKET", socket)
        .output()
        .expect("running xe");
    Run {
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn ok(r: Run) -> String {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    r.stdout
}

/// A failure: exit 1, an `Error: …` line on stderr, nothing on stdout.
fn fails(r: Run, needle: &str) {
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with("Error: ") && r.stderr.contains(needle),
        "{:?} should mention {needle:?}",
        r.stderr
    );
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn session(d: &TestDaemon) -> Session {
    let conn = Connection::new(
        Endpoint::Local {
            socket: d.socket.clone(),
            fallback_port: 1,
        },
        Protocol::JsonRpc,
        false,
    );
    Session::login_with_password(conn, "root", PASSWORD).expect("login")
}

/// Everything a write could change: the database generation and every host, metrics and VM
/// record.
fn pool_state(s: &mut Session) -> Vec<Value> {
    let mut v = vec![s.call("host.get_local_database_generation", &[]).unwrap()];
    for c in ["host", "host_metrics", "VM", "pool"] {
        v.push(s.call(&format!("{c}.get_all_records"), &[]).unwrap());
    }
    v
}

/// The what-if answer without the snapshot time (which differs between two live fetches).
fn answer(out: &str) -> serde_json::Value {
    let mut j = json(out);
    j.as_object_mut().unwrap().remove("snapshot-taken-at");
    j
}

fn max_of(j: &serde_json::Value) -> Option<u64> {
    j["max-host-failures-to-tolerate"].as_u64()
}

#[test]
fn live_pool_and_dump_agree_and_nothing_is_written() {
    let d = TestDaemon::start_with(&["--memory-total", &(16 * GIB).to_string()]);
    let home = tempfile::tempdir().unwrap();
    let sock = d.socket.clone();
    let x = |args: &[&str]| xe(&sock, home.path(), args);
    let vm = |name: &str| {
        ok(x(&[
            "vm-create",
            &format!("name-label={name}"),
            "memory-static-max=4GiB",
        ]))
        .trim()
        .to_string()
    };
    let (a, b, c) = (vm("a"), vm("b"), vm("c"));
    ok(x(&["vm-start", &format!("uuid={a}")]));
    ok(x(&["vm-start", &format!("uuid={b}")]));
    ok(x(&[
        "vm-param-set",
        &format!("uuid={a}"),
        "ha-restart-priority=restart",
    ]));
    let host_uuid = ok(x(&["host-list", "--minimal"])).trim().to_string();

    let mut s = session(&d);
    let before = pool_state(&mut s);

    // The dump holds what the pool holds.
    let file = home.path().join("pool.json");
    let f = file.to_str().unwrap();
    assert_eq!(
        ok(x(&["pool-dump-database", &format!("file-name={f}")])),
        ""
    );
    let dumped = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(dumped["format"], "xenha-planning-snapshot");
    assert_eq!(dumped["version"], 1);
    let hosts = dumped["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["uuid"], host_uuid.as_str());
    assert_eq!(hosts[0]["memory_total"], 16 * GIB);
    assert_eq!(hosts[0]["live"], true);
    let vms = dumped["vms"].as_array().unwrap();
    let mut names: Vec<&str> = vms
        .iter()
        .map(|v| v["name_label"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "no templates, no control domain");
    let rec = |u: &str| vms.iter().find(|v| v["uuid"] == u).unwrap();
    assert_eq!(rec(&a)["ha_restart_priority"], "restart");
    assert_eq!(rec(&a)["resident_on"], host_uuid.as_str());
    assert_eq!(rec(&c)["power_state"], "Halted");
    assert_eq!(rec(&c)["memory_static_max"], 4 * GIB);

    // No overwrite without --force; the file is left alone.
    std::fs::write(&file, "keep").unwrap();
    fails(
        x(&["pool-dump-database", &format!("file-name={f}")]),
        "--force",
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    ok(x(&[
        "pool-dump-database",
        &format!("file-name={f}"),
        "--force",
    ]));
    assert_eq!(
        json(&std::fs::read_to_string(&file).unwrap())["vms"],
        dumped["vms"]
    );

    // The same questions, live and from the file, get the same answers.
    let snap = format!("snapshot={f}");
    let protect_c = format!("protect={c}");
    let unprotect_a = format!("unprotect={a}");
    let questions: Vec<Vec<&str>> = vec![
        vec![],
        vec!["add-hosts=1x16GiB"],
        vec!["add-hosts=2x8GiB", protect_c.as_str()],
        vec!["add-hosts=1x4GiB", unprotect_a.as_str()],
        vec!["add-hosts=1x16GiB", "failures=1"],
        vec!["add-hosts=1x16GiB", "failures=2"],
    ];
    let mut answers = Vec::new();
    for q in &questions {
        let mut live = vec!["pool-ha-what-if", "--output", "json"];
        live.extend(q);
        let mut from_file = live.clone();
        from_file.push(&snap);
        let l = answer(&ok(x(&live)));
        assert_eq!(l, answer(&ok(x(&from_file))), "question {q:?}");
        answers.push(l);
    }

    // The pool as it is agrees with the daemon's own answer.
    let server = ok(x(&["pool-ha-compute-max-host-failures-to-tolerate"]));
    assert_eq!(max_of(&answers[0]), Some(server.trim().parse().unwrap()));

    // Independently: the pool by hand, 16 GiB with a and b (4 GiB each) running, a protected.
    let free = 16 * GIB - 8 * GIB;
    let base = || {
        PoolSnapshot::new(
            vec![PlanHost::new(host_uuid.clone(), free)],
            vec![
                PlanVm::protected(a.clone(), 4 << 30, Some(&host_uuid)),
                PlanVm {
                    restart_priority: RestartPriority::None,
                    ..PlanVm::protected(b.clone(), 4 << 30, Some(&host_uuid))
                },
                PlanVm {
                    restart_priority: RestartPriority::None,
                    ..PlanVm::protected(c.clone(), 4 << 30, None)
                },
            ],
        )
    };
    let expect = |pool: &PoolSnapshot| {
        planner::max_host_failures_to_tolerate(pool)
            .max_failures
            .map(|m| m as u64)
    };
    assert_eq!(max_of(&answers[0]), expect(&base()));
    assert_eq!(max_of(&answers[0]), Some(0), "one host: nowhere to restart");

    let mut one_more = base();
    one_more.hosts.push(PlanHost::new("new", 16 * GIB));
    assert_eq!(max_of(&answers[1]), expect(&one_more));
    assert_eq!(max_of(&answers[1]), Some(1), "a second host raises it");
    assert_eq!(answers[1]["exact"], true);
    assert_eq!(answers[1]["upper-bound"], 1);
    assert_eq!(answers[1]["hosts"], 2);

    let mut two_small = base();
    two_small.hosts.push(PlanHost::new("n1", 8 * GIB));
    two_small.hosts.push(PlanHost::new("n2", 8 * GIB));
    two_small.vms[2].restart_priority = RestartPriority::Restart;
    assert_eq!(max_of(&answers[2]), expect(&two_small));
    assert_eq!(answers[2]["protected-vms"], 2, "halted c planned for");

    let mut unprotected = base();
    unprotected.hosts.push(PlanHost::new("n1", 4 * GIB));
    unprotected.vms[0].restart_priority = RestartPriority::None;
    assert_eq!(max_of(&answers[3]), expect(&unprotected));
    assert_eq!(answers[3]["protected-vms"], 0);
    assert_eq!(
        max_of(&answers[3]),
        Some(2),
        "nothing protected survives all"
    );

    assert_eq!(answers[4]["plan-exists"], true);
    assert_eq!(
        answers[4]["plan-exists"],
        planner::plan_exists_for(&one_more, 1).is_ok()
    );
    assert_eq!(answers[5]["plan-exists"], false);
    assert!(
        answers[5]["reason"]
            .as_str()
            .unwrap()
            .contains("2 host failure(s) cannot be tolerated with 2 available host(s)"),
        "{}",
        answers[5]
    );

    // The xe-style record and --minimal.
    let text = ok(x(&["pool-ha-what-if", "add-hosts=1x16GiB"]));
    assert!(
        text.starts_with("max-host-failures-to-tolerate    : 1\n"),
        "{text}"
    );
    assert!(text.contains("exact: true\n"), "{text}");
    assert_eq!(
        ok(x(&["pool-ha-what-if", "add-hosts=1x16GiB", "--minimal"])),
        "1\n"
    );

    // Bad input: clear errors, exit 1.
    fails(
        x(&[
            "pool-ha-what-if",
            "protect=00000000-0000-0000-0000-000000000000",
        ]),
        "no VM with uuid 00000000-0000-0000-0000-000000000000",
    );
    fails(
        x(&["pool-ha-what-if", &format!("protect={a}:always")]),
        "invalid restart priority \"always\"",
    );
    fails(
        x(&["pool-ha-what-if", "unprotect=nope"]),
        "no VM with uuid nope",
    );
    fails(
        x(&["pool-ha-what-if", "remove-hosts=nope"]),
        "no host with uuid nope",
    );
    fails(
        x(&["pool-ha-what-if", "add-hosts=lots"]),
        "add-hosts must be",
    );
    fails(x(&["pool-ha-what-if", "failures=-1"]), "failures must be");
    let missing = home.path().join("missing.json");
    fails(
        x(&[
            "pool-ha-what-if",
            &format!("snapshot={}", missing.display()),
        ]),
        "cannot read snapshot file",
    );
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "{\"hosts\": [").unwrap();
    fails(
        x(&["pool-ha-what-if", &format!("snapshot={}", bad.display())]),
        "is not a planning snapshot",
    );
    let wrong = home.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"format":"other","version":1,"taken_at":"","hosts":[],"vms":[]}"#,
    )
    .unwrap();
    fails(
        x(&["pool-ha-what-if", &format!("snapshot={}", wrong.display())]),
        "is not a planning snapshot this xe reads",
    );
    let stray = home.path().join("stray.json");
    std::fs::write(
        &stray,
        serde_json::json!({"format": "xenha-planning-snapshot", "version": 1, "taken_at": "",
            "hosts": [], "vms": [{"uuid": "v", "power_state": "Running", "resident_on": "gone",
            "memory_static_max": 1}]})
        .to_string(),
    )
    .unwrap();
    fails(
        x(&["pool-ha-what-if", &format!("snapshot={}", stray.display())]),
        "VM v is resident on gone, which is not a host of the snapshot",
    );
    let unwritable = home.path().join("no/such/dir/pool.json");
    fails(
        x(&[
            "pool-dump-database",
            &format!("file-name={}", unwritable.display()),
        ]),
        "cannot write",
    );

    // None of it wrote anything to the pool.
    assert_eq!(pool_state(&mut s), before);
    let c_ref = s.call("VM.get_by_uuid", &[c.as_str().into()]).unwrap();
    let c_priority = s.call("VM.get_ha_restart_priority", &[c_ref]).unwrap();
    assert_eq!(value_text(&c_priority), "", "protect= changed nothing");
    // ...and the check has teeth: a real write shows.
    ok(x(&[
        "vm-param-set",
        &format!("uuid={c}"),
        "name-description=touched",
    ]));
    assert_ne!(pool_state(&mut s), before);
}

fn host(uuid: &str, name: &str, total: i64) -> serde_json::Value {
    serde_json::json!({"uuid": uuid, "name_label": name, "memory_total": total,
        "memory_overhead": 0, "enabled": true, "live": true})
}

fn vm(uuid: &str, name: &str, on: &str, size: i64, priority: &str) -> serde_json::Value {
    serde_json::json!({"uuid": uuid, "name_label": name,
        "power_state": if on.is_empty() { "Halted" } else { "Running" },
        "resident_on": on, "memory_static_max": size, "memory_overhead": 0,
        "ha_restart_priority": priority, "order": 0})
}

#[test]
fn snapshot_files_answer_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    // No daemon: the socket does not exist, so any connection attempt would fail.
    let sock = dir.path().join("no-daemon.sock");
    let x = |args: &[&str]| xe(&sock, dir.path(), args);
    // Three hosts of 10 units, each running a protected 5-unit VM; a halted 10-unit VM.
    let file = dir.path().join("pool.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "format": "xenha-planning-snapshot", "version": 1,
            "taken_at": "2026-11-22T00:00:00Z",
            "hosts": [host("h1", "alpha", 10), host("h2", "beta", 10), host("h3", "gamma", 10)],
            "vms": [vm("v1", "web", "h1", 5, "restart"), vm("v2", "db", "h2", 5, "restart"),
                    vm("v3", "mail", "h3", 5, "best-effort"), vm("v4", "big", "", 10, "restart")],
        })
        .to_string(),
    )
    .unwrap();
    let snap = format!("snapshot={}", file.display());
    let ask = |extra: &[&str]| {
        let mut a = vec!["pool-ha-what-if", "--output", "json", snap.as_str()];
        a.extend(extra);
        json(&ok(x(&a)))
    };
    let pool = || {
        let mut vms = vec![
            PlanVm::protected("v1", 5, Some("h1")),
            PlanVm::protected("v2", 5, Some("h2")),
            PlanVm::protected("v3", 5, Some("h3")),
            PlanVm::protected("v4", 10, None),
        ];
        vms[2].restart_priority = RestartPriority::BestEffort;
        vms[3].restart_priority = RestartPriority::None;
        PoolSnapshot::new(
            ["h1", "h2", "h3"]
                .iter()
                .map(|h| PlanHost::new(*h, 5))
                .collect(),
            vms,
        )
    };

    // As it is: two protected VMs of 5 on hosts with 5 free; one failure is fine, after two
    // the last host's 5 free cannot take both.
    let now = ask(&[]);
    let expected = planner::max_host_failures_to_tolerate(&pool());
    assert_eq!(max_of(&now), expected.max_failures.map(|m| m as u64));
    assert_eq!(max_of(&now), Some(1));
    assert_eq!(now["snapshot-taken-at"], "2026-11-22T00:00:00Z");
    assert_eq!(now["protected-vms"], 2);
    // The breaking sequence is the planner's, in names.
    let seq: Vec<String> = expected
        .limit
        .failures
        .iter()
        .map(|h| {
            let name = match h.as_str() {
                "h1" => "alpha",
                "h2" => "beta",
                _ => "gamma",
            };
            format!("{name} ({h})")
        })
        .collect();
    assert_eq!(now["breaking-sequence"], serde_json::json!(seq));
    assert_eq!(seq.len(), 2);
    let why = now["reason"].as_str().unwrap();
    assert!(
        why.contains(&format!("after host(s) {} fail", seq.join(", "))),
        "{why}"
    );
    assert!(
        why.contains("protected VM web (v1)") || why.contains("protected VM db (v2)"),
        "{why}"
    );

    // Protecting the third running VM too: as the planner says (the same two failures
    // break it either way).
    let more = ask(&["protect=v3:restart"]);
    let mut p = pool();
    p.vms[2].restart_priority = RestartPriority::Restart;
    assert_eq!(
        max_of(&more),
        planner::max_host_failures_to_tolerate(&p)
            .max_failures
            .map(|m| m as u64)
    );

    // Protecting the halted 10-unit VM: no host has 10 free, so not even now.
    let big = ask(&["protect=v4"]);
    assert_eq!(
        big["max-host-failures-to-tolerate"],
        serde_json::Value::Null
    );
    assert!(
        big["reason"]
            .as_str()
            .unwrap()
            .starts_with("with no host failure, protected VM big (v4), which needs 10 bytes"),
        "{big}"
    );
    // ...unless a big enough host is added.
    let added = ask(&["protect=v4", "add-hosts=1x10"]);
    let mut p = pool();
    p.vms[3].restart_priority = RestartPriority::Restart;
    p.hosts.push(PlanHost::new("new-host-1", 10));
    assert_eq!(
        max_of(&added),
        planner::max_host_failures_to_tolerate(&p)
            .max_failures
            .map(|m| m as u64)
    );
    assert!(max_of(&added).is_some());

    // Unprotecting everything leaves nothing to break until every host is gone.
    let none = ask(&["unprotect=v1,v2"]);
    assert_eq!(max_of(&none), Some(3));
    assert_eq!(none["protected-vms"], 0);

    // Removing a host: its protected VM must fit elsewhere first.
    let removed = ask(&["remove-hosts=h3", "protect=v3"]);
    let mut p = pool();
    p.vms[2].restart_priority = RestartPriority::Restart;
    p.hosts[2].live = false;
    assert_eq!(
        max_of(&removed),
        planner::max_host_failures_to_tolerate(&p)
            .max_failures
            .map(|m| m as u64)
    );
    assert_eq!(removed["available-hosts"], 2);

    // failures=N.
    let one = ask(&["failures=1"]);
    assert_eq!(one["plan-exists"], true);
    assert!(one.get("reason").is_none());
    let two = ask(&["failures=2"]);
    assert_eq!(two["plan-exists"], false);
    assert_eq!(
        two["failure-sequence"].as_array().unwrap().len(),
        2,
        "{two}"
    );
    assert_eq!(
        ok(x(&["pool-ha-what-if", &snap, "failures=2", "--minimal"])),
        "false\n"
    );

    // Without snapshot= it needs the (absent) server.
    let r = x(&["pool-ha-what-if"]);
    assert_eq!(r.code, 1);
}
