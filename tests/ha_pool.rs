//! HA across real `xapid` processes on loopback addresses, with a shared file SR as the
//! heartbeat SR and a lab timeout (T = 2 s): `xe pool-ha-enable`, failover after the master is
//! killed (a member is elected, protected VMs come back, unprotected ones stay down), the old
//! master rejoining as a member, a hung host fenced by its watchdog, a failed enable that arms
//! nobody, and `xe pool-ha-disable`.
//!
//! Every wait is bounded; no assertion is about how long anything took.

mod common;

use std::time::{Duration, Instant};

use common::{raw, wait_for, xe, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

fn local(d: &TestDaemon, method: &str, params: Json) -> Option<Json> {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    let r = raw::try_post_unix(&d.socket, "/jsonrpc", body.as_bytes()).ok()?;
    serde_json::from_str(&r.body).ok()
}

fn ok(r: Option<Json>) -> Json {
    let r = r.expect("an answer");
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

fn session(d: &TestDaemon) -> Option<Json> {
    let r = local(d, "session.login_with_password", json!(["root", ""]))?;
    r.get("error").is_none().then(|| r["result"].clone())
}

/// A call that may fail while the pool changes masters: `None` until it succeeds.
fn try_call(d: &TestDaemon, method: &str, mut params: Vec<Json>) -> Option<Json> {
    let s = session(d)?;
    params.insert(0, s);
    let r = local(d, method, Json::Array(params))?;
    r.get("error").is_none().then(|| r["result"].clone())
}

const GIB: i64 = 1 << 30;

type Pool = common::HaPool;

/// `n` hosts of 8 GiB on 127.0.0.<base+i>, joined, with a shared file SR plugged everywhere.
fn pool(base: u8, n: usize) -> Pool {
    common::ha_pool(base, &vec![8; n])
}

impl Pool {
    /// `xe pool-ha-enable` on the master with `ha-config:timeout=T`: silent success, as xe.
    fn enable_ha(&self, t: &str) {
        let (code, out, err) = xe(
            &self.hosts[0],
            &[
                "pool-ha-enable",
                &format!("heartbeat-sr-uuids={}", self.sr_uuid),
                &format!("ha-config:timeout={t}"),
            ],
        );
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    }

    /// After a failed enable: HA is off, no statefile VDI is left on the SR, no host keeps an
    /// HA configuration, and no host fenced.
    fn assert_nothing_armed(&mut self) {
        let s = session(&self.hosts[0]).unwrap();
        let pools = ok(local(&self.hosts[0], "pool.get_all", json!([s])));
        assert_eq!(
            ok(local(
                &self.hosts[0],
                "pool.get_ha_enabled",
                json!([s, pools[0]])
            )),
            json!(false)
        );
        let sr = ok(local(
            &self.hosts[0],
            "SR.get_by_uuid",
            json!([s, self.sr_uuid]),
        ));
        assert_eq!(
            ok(local(&self.hosts[0], "SR.get_VDIs", json!([s, sr]))),
            json!([])
        );
        for h in &mut self.hosts {
            assert!(
                h.exited().is_none(),
                "a host fenced after a failed enable:\n{}",
                h.log()
            );
            assert!(!h.state_dir().join("ha.json").exists());
        }
    }
}

fn host_by_ip(d: &TestDaemon, ip: &str) -> Json {
    common::host_by_address(d, &session(d).unwrap(), ip)
}

fn vm(d: &TestDaemon, name: &str, priority: &str, on: &Json) -> Json {
    let s = session(d).unwrap();
    let vm = ok(local(
        d,
        "VM.create",
        json!([s, {"name_label": name, "memory_static_max": GIB.to_string(), "ha_restart_priority": priority}]),
    ));
    ok(local(d, "VM.start_on", json!([s, vm, on, false, false])));
    vm
}

#[test]
fn the_pool_survives_its_master_and_restarts_protected_vms() {
    let mut p = pool(91, 3);
    let old_master = host_by_ip(&p.hosts[0], &p.ips[0]);
    let protected = vm(&p.hosts[0], "db", "restart", &old_master);
    let unprotected = vm(&p.hosts[0], "scratch", "", &old_master);

    p.enable_ha("2");
    let pool_uuid = xe(&p.hosts[0], &["pool-list", "--minimal"]).1;
    let (_, enabled, _) = xe(
        &p.hosts[0],
        &[
            "pool-param-get",
            &format!("uuid={}", pool_uuid.trim()),
            "param-name=ha-enabled",
        ],
    );
    assert_eq!(enabled, "true\n");
    // Enabling HA again is refused with xapi's error.
    let (code, _, err) = xe(
        &p.hosts[0],
        &[
            "pool-ha-enable",
            &format!("heartbeat-sr-uuids={}", p.sr_uuid),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("HA is enabled"), "{err}");

    // While HA is armed, the emergency commands are refused (HA elects masters itself).
    let (code, _, err) = xe(
        &p.hosts[1],
        &["pool-emergency-transition-to-master", "--force"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("HA is enabled"), "{err}");

    // The master dies. A member takes over and restarts the protected VM.
    p.hosts[0].kill9();
    let mut new_master = None;
    p.wait_for("a member to become master", Duration::from_secs(60), || {
        new_master = (1..3).find(|&i| {
            try_call(&p.hosts[i], "pool.get_all", vec![])
                .and_then(|pools| try_call(&p.hosts[i], "pool.get_master", vec![pools[0].clone()]))
                .is_some_and(|m| m == host_by_ip(&p.hosts[i], &p.ips[i]))
        });
        new_master.is_some()
    });
    let m = &p.hosts[new_master.unwrap()];
    p.wait_for(
        "the protected VM to run again",
        Duration::from_secs(60),
        || try_call(m, "VM.get_power_state", vec![protected.clone()]) == Some(json!("Running")),
    );
    let resident = try_call(m, "VM.get_resident_on", vec![protected.clone()]).unwrap();
    assert_ne!(resident, old_master, "restarted on a survivor");
    assert_eq!(
        try_call(m, "VM.get_power_state", vec![unprotected.clone()]),
        Some(json!("Halted")),
        "a VM without a restart priority stays down"
    );
    let metrics = try_call(m, "host.get_metrics", vec![old_master.clone()]).unwrap();
    assert_eq!(
        try_call(m, "host_metrics.get_live", vec![metrics]),
        Some(json!(false))
    );
    let messages = try_call(m, "message.get_all_records", vec![]).unwrap();
    assert!(
        messages
            .as_object()
            .unwrap()
            .values()
            .any(|msg| msg["name"] == json!("HA_HOST_FAILED")),
        "{messages}"
    );

    // The old master comes back: it rejoins as a member of the new master.
    let new_master_ref = host_by_ip(m, &p.ips[new_master.unwrap()]);
    p.hosts[0].restart();
    // Until HA confirms it or the new master claims it, it serves nothing as master: it must
    // not accept writes into its stale copy of the database.
    let body = json!({"jsonrpc": "2.0", "method": "session.login_with_password",
        "params": ["root", PASSWORD], "id": 1})
    .to_string();
    let r: Json =
        serde_json::from_str(&raw::post(&p.hosts[0].http, "/jsonrpc", body.as_bytes()).body)
            .unwrap();
    let refusal = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        refusal == "HOST_STILL_BOOTING" || refusal == "HOST_IS_SLAVE",
        "the restarted old master answered as master: {r}"
    );
    let m = &p.hosts[new_master.unwrap()];
    p.wait_for(
        "the old master to follow the new one",
        Duration::from_secs(60),
        || {
            try_call(&p.hosts[0], "pool.get_all", vec![])
                .and_then(|pools| try_call(&p.hosts[0], "pool.get_master", vec![pools[0].clone()]))
                == Some(new_master_ref.clone())
        },
    );
    assert_eq!(
        try_call(m, "VM.get_power_state", vec![protected.clone()]),
        Some(json!("Running")),
        "the protected VM runs exactly once"
    );

    // HA off: every host stops its agent and forgets the configuration.
    let (code, out, err) = xe(m, &["pool-ha-disable"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    for h in &p.hosts {
        p.wait_for(
            "the HA configuration to go",
            Duration::from_secs(30),
            || !h.state_dir().join("ha.json").exists(),
        );
    }
    let pools = try_call(m, "pool.get_all", vec![]).unwrap();
    assert_eq!(
        try_call(m, "pool.get_ha_enabled", vec![pools[0].clone()]),
        Some(json!(false))
    );
}

#[test]
fn a_hung_member_is_fenced_by_its_watchdog_and_nobody_else_is() {
    let mut p = pool(101, 3);
    p.enable_ha("2");
    // SIGSTOP: the daemon cannot fence itself; its watchdog must.
    p.hosts[2].signal("STOP");
    wait_for(
        "the hung member to be killed",
        Duration::from_secs(30),
        || p.hosts[2].exited().is_some(),
    );
    let marker = std::fs::read_to_string(p.hosts[2].state_dir().join("ha-fenced")).unwrap();
    assert!(marker.contains("watchdog"), "{marker}");
    let old = host_by_ip(&p.hosts[0], &p.ips[2]);
    p.wait_for(
        "the master to declare it dead",
        Duration::from_secs(30),
        || {
            let metrics = try_call(&p.hosts[0], "host.get_metrics", vec![old.clone()]).unwrap();
            try_call(&p.hosts[0], "host_metrics.get_live", vec![metrics]) == Some(json!(false))
        },
    );
    // The survivors are still running and armed.
    for h in &mut p.hosts[..2] {
        assert!(h.exited().is_none(), "a healthy host fenced:\n{}", h.log());
    }
    // It comes back, rejoins, and the operator can read why it was fenced.
    p.hosts[2].restart();
    p.wait_for(
        "HA_HOST_WAS_FENCED in xe message-list",
        Duration::from_secs(30),
        || {
            let (_, out, _) = xe(&p.hosts[0], &["message-list", "name=HA_HOST_WAS_FENCED"]);
            out.contains("watchdog fired")
        },
    );
    p.wait_for(
        "the fenced host to be live again",
        Duration::from_secs(30),
        || {
            let metrics = try_call(&p.hosts[0], "host.get_metrics", vec![old.clone()]).unwrap();
            try_call(&p.hosts[0], "host_metrics.get_live", vec![metrics]) == Some(json!(true))
        },
    );
}

#[test]
fn an_enable_that_cannot_form_a_liveset_arms_and_fences_nobody() {
    let mut p = pool(111, 2);
    // The member's heartbeats cannot arrive: it is stopped while the others wait for it.
    p.hosts[1].signal("STOP");
    let s = session(&p.hosts[0]).unwrap();
    let sr = ok(local(&p.hosts[0], "SR.get_by_uuid", json!([s, p.sr_uuid])));
    let r = local(
        &p.hosts[0],
        "pool.enable_ha",
        json!([s, [sr], {"timeout": "1"}]),
    )
    .unwrap();
    p.hosts[1].signal("CONT");
    let code = r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        code == "HOST_OFFLINE" || code == "HA_FAILED_TO_FORM_LIVESET",
        "{r}"
    );
    // Give a wrongly armed host time to fence before looking.
    std::thread::sleep(Duration::from_secs(3));
    p.assert_nothing_armed();
}

#[test]
fn a_host_whose_watchdog_is_missing_fails_the_enable_and_nothing_is_armed() {
    let mut p = pool(171, 2);
    p.hosts[1].kill9();
    p.hosts[1].restart_with("--ha-watchdog", "/nonexistent/watchdog");
    let s = session(&p.hosts[0]).unwrap();
    let sr = ok(local(&p.hosts[0], "SR.get_by_uuid", json!([s, p.sr_uuid])));
    // The master may still count the member away for a moment after its restart.
    let mut r = Json::Null;
    p.wait_for(
        "an answer other than HOST_OFFLINE",
        Duration::from_secs(20),
        || {
            r = local(
                &p.hosts[0],
                "pool.enable_ha",
                json!([s, [sr], {"timeout": "2"}]),
            )
            .unwrap();
            r["error"]["message"] != json!("HOST_OFFLINE")
        },
    );
    assert_eq!(
        r["error"]["message"],
        json!("HA_HEARTBEAT_DAEMON_STARTUP_FAILED"),
        "{r}"
    );
    p.assert_nothing_armed();
    assert!(p.hosts[1]
        .log()
        .contains("watchdog device /nonexistent/watchdog"));
}

#[test]
fn a_host_that_stops_cleanly_leaves_without_counting_as_a_failure() {
    let mut p = pool(161, 3);
    p.enable_ha("2");
    let leaving = host_by_ip(&p.hosts[0], &p.ips[2]);
    // SIGTERM is a clean shutdown: the host marks itself excluded and stays armed for later.
    assert!(p.hosts[2].stop().success());
    assert!(p.hosts[2].state_dir().join("ha.json").exists());
    assert!(p.hosts[2].log().contains("left the HA liveset cleanly"));
    p.wait_for("the master to see it gone", Duration::from_secs(30), || {
        let metrics = try_call(&p.hosts[0], "host.get_metrics", vec![leaving.clone()]).unwrap();
        try_call(&p.hosts[0], "host_metrics.get_live", vec![metrics]) == Some(json!(false))
    });
    let messages = try_call(&p.hosts[0], "message.get_all_records", vec![]).unwrap();
    assert!(
        !messages
            .as_object()
            .unwrap()
            .values()
            .any(|m| m["name"] == json!("HA_HOST_FAILED")),
        "a clean shutdown is not a failure: {messages}"
    );
    for h in &mut p.hosts[..2] {
        assert!(h.exited().is_none(), "a survivor fenced:\n{}", h.log());
    }
    // It comes back and rejoins the liveset.
    p.hosts[2].restart();
    p.wait_for(
        "the host to rejoin and arm",
        Duration::from_secs(30),
        || p.hosts[2].log().contains("HA armed"),
    );
}

#[test]
fn a_host_that_cannot_rejoin_tries_again_until_it_can() {
    let mut p = pool(181, 2);
    p.enable_ha("2");
    assert!(p.hosts[1].stop().success());
    assert!(
        p.hosts[1].log().contains("left the HA liveset cleanly"),
        "{}",
        p.hosts[1].log()
    );
    // Only once the master has seen it leave (it read the member's excluded section)...
    let member = host_by_ip(&p.hosts[0], &p.ips[1]);
    p.wait_for(
        "the master to see the member leave",
        Duration::from_secs(30),
        || {
            let metrics = try_call(&p.hosts[0], "host.get_metrics", vec![member.clone()]).unwrap();
            try_call(&p.hosts[0], "host_metrics.get_live", vec![metrics]) == Some(json!(false))
        },
    );
    // ...the heartbeat SR goes away while the member is down: the master survives alone (every
    // absent host left cleanly, rule 2), and the member cannot rejoin without the statefile.
    let sr_dir = p.shared.path().to_path_buf();
    let moved = sr_dir.with_extension("away");
    std::fs::rename(&sr_dir, &moved).unwrap();
    p.hosts[1].restart();
    p.wait_for(
        "the member's boot to give up",
        Duration::from_secs(30),
        || p.hosts[1].log().contains("HA could not start on this host"),
    );
    std::fs::rename(&moved, &sr_dir).unwrap();
    // A deadline, not a speed claim: each retry is a whole boot attempt, slow on a loaded CI.
    p.wait_for(
        "the member to rejoin on a later try",
        Duration::from_secs(90),
        || p.hosts[1].log().contains("HA armed"),
    );
    for h in &mut p.hosts {
        assert!(h.exited().is_none(), "a host fenced:\n{}", h.log());
    }
}

/// Membership is frozen while HA is on: `xe pool-eject` and `xe pool-join` are refused with
/// `HA_IS_ENABLED` and change nothing.
#[test]
fn pool_eject_and_join_are_refused_while_ha_is_enabled() {
    let p = common::ha_pool_at("127.0.3", 20, &[8, 8]);
    p.enable_ha("2");
    let master = &p.hosts[0];
    let hosts_before = xe(master, &["host-list", "params=uuid", "--minimal"]);
    let member = host_by_ip(master, &p.ips[1]);
    let member_uuid = try_call(master, "host.get_uuid", vec![member]).unwrap();
    let (code, out, err) = xe(
        master,
        &[
            "pool-eject",
            &format!("host-uuid={}", member_uuid.as_str().unwrap()),
            "--force",
        ],
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "The operation could not be performed because HA is enabled on the Pool\n"
        )
    );
    let newcomer = TestDaemon::start_at("127.0.3.30", p.port, &[]);
    let alone = xe(&newcomer, &["host-list", "params=uuid", "--minimal"]);
    let (code, out, err) = xe(
        &newcomer,
        &[
            "pool-join",
            &format!("master-address={}", p.ips[0]),
            "master-username=root",
            &format!("master-password={PASSWORD}"),
        ],
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "The operation could not be performed because HA is enabled on the Pool\n"
        )
    );
    assert_eq!(
        xe(&newcomer, &["host-list", "params=uuid", "--minimal"]),
        alone
    );
    assert_eq!(
        xe(master, &["host-list", "params=uuid", "--minimal"]),
        hosts_before
    );
}

/// Benchmark, not a check: the failover timeline of real processes after `kill -9` of the
/// master, for `HA_BENCH_T` seconds (default 2). Prints milliseconds from the kill to a member
/// answering as master and to the protected VM running again.
/// `HA_BENCH_T=10 cargo test --test ha_pool failover_timeline -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run by hand, numbers go to docs/benchmarks.md"]
fn failover_timeline() {
    let t = std::env::var("HA_BENCH_T").unwrap_or_else(|_| "2".into());
    let mut p = pool(151, 3);
    let old_master = host_by_ip(&p.hosts[0], &p.ips[0]);
    let protected = vm(&p.hosts[0], "db", "restart", &old_master);
    p.enable_ha(&t);
    // Let the first master take the lock, as in a pool that has been running a while.
    std::thread::sleep(Duration::from_secs(2));
    let killed = Instant::now();
    p.hosts[0].kill9();
    let mut master_at = None;
    let limit = Duration::from_secs(300);
    loop {
        if master_at.is_none()
            && (1..3).any(|i| {
                try_call(&p.hosts[i], "pool.get_all", vec![])
                    .and_then(|pools| {
                        try_call(&p.hosts[i], "pool.get_master", vec![pools[0].clone()])
                    })
                    .is_some_and(|m| m == host_by_ip(&p.hosts[i], &p.ips[i]))
            })
        {
            master_at = Some(killed.elapsed());
        }
        if master_at.is_some() {
            let running = (1..3).any(|i| {
                try_call(&p.hosts[i], "VM.get_power_state", vec![protected.clone()])
                    == Some(json!("Running"))
            });
            if running {
                break;
            }
        }
        assert!(killed.elapsed() < limit, "no failover");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "T = {t} s: new master after {} ms, protected VM running after {} ms",
        master_at.unwrap().as_millis(),
        killed.elapsed().as_millis()
    );
}

/// A member's daemon crashes, HA on: its protected VM comes back and runs exactly once, its
/// unprotected VM stays down, and the member's report of its lost domains (which halts what is
/// still recorded on it) never undoes the failover, whether it comes before the failover (the
/// daemon restarts at once) or after it (the VM already runs elsewhere).
#[test]
fn a_members_crash_under_ha_restarts_its_protected_vm_once() {
    let mut p = common::ha_pool_at("127.0.13", 21, &[8, 8, 8]);
    let member = host_by_ip(&p.hosts[0], &p.ips[1]);
    let s = session(&p.hosts[0]).unwrap();
    let pids = p.shared.path().join("db.pids");
    let cmd = format!("echo $$ >> {}; exec sleep 300", pids.display());
    let protected = ok(local(
        &p.hosts[0],
        "VM.create",
        json!([s, {"name_label": "db", "memory_static_max": GIB.to_string(),
            "ha_restart_priority": "restart", "other_config": {"command": cmd}}]),
    ));
    ok(local(
        &p.hosts[0],
        "VM.start_on",
        json!([s, protected, member, false, false]),
    ));
    let unprotected = vm(&p.hosts[0], "scratch", "", &member);
    p.enable_ha("2");
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    let live_pids = || -> Vec<String> {
        std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .filter(|p| alive(p))
            .map(str::to_string)
            .collect()
    };
    p.wait_for("the first domain", Duration::from_secs(20), || {
        live_pids().len() == 1
    });
    let runs_again = |p: &common::HaPool, before: &[String]| {
        let m = &p.hosts[0];
        try_call(m, "VM.get_power_state", vec![protected.clone()]) == Some(json!("Running"))
            && live_pids().len() == 1
            && live_pids() != before
    };
    let reports = |p: &common::HaPool, i: usize| {
        p.hosts[i]
            .log()
            .matches("lost domains reported to the master")
            .count()
    };

    // The failover first: the member stays down until the VM runs elsewhere.
    let before = live_pids();
    p.hosts[1].kill9();
    wait_for("HA to restart the VM", Duration::from_secs(90), || {
        runs_again(&p, &before)
    });
    let elsewhere = try_call(&p.hosts[0], "VM.get_resident_on", vec![protected.clone()]);
    assert_ne!(elsewhere, Some(member.clone()));
    p.hosts[1].restart();
    p.wait_for("the member's report", Duration::from_secs(60), || {
        reports(&p, 1) == 1
    });
    assert_eq!(
        try_call(&p.hosts[0], "VM.get_resident_on", vec![protected.clone()]),
        elsewhere,
        "the report moved a VM the failover had restarted"
    );
    assert_eq!(
        try_call(&p.hosts[0], "VM.get_power_state", vec![protected.clone()]),
        Some(json!("Running"))
    );

    // The report first: the daemon restarts at once, on the host that now runs the VM (moved
    // to a member if the failover chose the master).
    let victim = match (1..3).find(|&i| elsewhere == Some(host_by_ip(&p.hosts[0], &p.ips[i]))) {
        Some(i) => i,
        None => {
            p.wait_for(
                "the member to be live again",
                Duration::from_secs(60),
                || {
                    let s = session(&p.hosts[0]).unwrap();
                    local(
                        &p.hosts[0],
                        "VM.pool_migrate",
                        json!([s, protected, member, {}]),
                    )
                    .is_some_and(|r| r.get("error").is_none())
                },
            );
            1
        }
    };
    let before = live_pids();
    p.hosts[victim].kill9();
    p.hosts[victim].restart();
    p.wait_for(
        "the member's report, and the protected VM running again",
        Duration::from_secs(90),
        || reports(&p, victim) >= 1 && runs_again(&p, &before),
    );
    assert_eq!(
        try_call(&p.hosts[0], "VM.get_power_state", vec![unprotected.clone()]),
        Some(json!("Halted")),
        "a VM without a restart priority stays down"
    );
    // Settled: every host agrees, and the VM runs exactly once, where the pool says.
    let resident = try_call(&p.hosts[0], "VM.get_resident_on", vec![protected.clone()]).unwrap();
    for h in &p.hosts {
        p.wait_for("every copy to agree", Duration::from_secs(20), || {
            try_call(h, "VM.get_resident_on", vec![protected.clone()]) == Some(resident.clone())
                && try_call(h, "VM.get_power_state", vec![protected.clone()])
                    == Some(json!("Running"))
        });
    }
    assert_eq!(live_pids().len(), 1, "{}", p.logs());
}
