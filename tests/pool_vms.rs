//! VMs across a pool of real processes: domains on members, live migration with memory and CPU
//! refusals, evacuation that moves everything or nothing, eject and forget.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{raw, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

const GIB: i64 = 1 << 30;

fn local(d: &TestDaemon, method: &str, params: Json) -> Json {
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    serde_json::from_str(&raw::post_unix(&d.socket, "/jsonrpc", body.as_bytes()).body).unwrap()
}

fn ok(r: Json) -> Json {
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

fn err(r: Json) -> (String, Json) {
    (
        r["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {r}"))
            .to_string(),
        r["error"]["data"].clone(),
    )
}

fn session(d: &TestDaemon) -> Json {
    ok(local(d, "session.login_with_password", json!(["root", ""])))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pid_in(file: &Path) -> Option<String> {
    std::fs::read_to_string(file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn form_pool(ips: &[&str], port: u16, extra: &[&[&str]]) -> Vec<TestDaemon> {
    let hosts: Vec<TestDaemon> = ips
        .iter()
        .zip(extra)
        .map(|(ip, e)| TestDaemon::start_at(ip, port, e))
        .collect();
    for h in &hosts[1..] {
        let s = session(h);
        ok(local(
            h,
            "pool.join_force",
            json!([s, ips[0], "root", PASSWORD]),
        ));
    }
    hosts
}

#[test]
fn vms_run_on_members_and_move_live() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mem = (4 * GIB).to_string();
    let amd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cpuinfo/amd-epyc-4cpu.txt"
    );
    let plain: &[&str] = &["--memory-total", &mem];
    let amd_host: &[&str] = &["--memory-total", &mem, "--cpuinfo", amd];
    let ips = ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"];
    let hosts = form_pool(&ips, port, &[plain, plain, plain, amd_host]);
    let (master, m1) = (&hosts[0], &hosts[1]);
    let s = session(master);
    let [h0, h1, h2, h_amd] = ips.map(|ip| common::host_by_address(master, &s, ip));
    let dir = tempfile::tempdir().unwrap();
    let pidfile: PathBuf = dir.path().join("a.pid");
    let cmd = format!("echo $$ > {}; exec sleep 300", pidfile.display());

    // A VM started on a member runs there, as a real process started by that member's daemon.
    let a = ok(local(
        m1,
        "VM.create",
        json!([session(m1), {"name_label": "a", "memory_static_max": GIB.to_string(), "other_config": {"command": cmd}}]),
    ));
    ok(local(
        master,
        "VM.start_on",
        json!([s, a, h1, false, false]),
    ));
    assert_eq!(ok(local(master, "VM.get_resident_on", json!([s, a]))), h1);
    wait_for("a's domain", || pid_in(&pidfile).is_some());
    let first = pid_in(&pidfile).unwrap();
    assert!(alive(&first));
    let flags = ok(local(master, "VM.get_last_boot_CPU_flags", json!([s, a])));
    assert!(flags["vendor"].as_str().unwrap().len() > 1, "{flags}");

    // Live migration: the domain moves, the old process ends, memory follows.
    std::fs::remove_file(&pidfile).unwrap();
    ok(local(
        master,
        "VM.pool_migrate",
        json!([s, a, h2, {"live": "true"}]),
    ));
    assert_eq!(ok(local(master, "VM.get_resident_on", json!([s, a]))), h2);
    wait_for("the new domain", || pid_in(&pidfile).is_some());
    let second = pid_in(&pidfile).unwrap();
    assert_ne!(first, second);
    wait_for("the old domain to end", || !alive(&first));
    assert_eq!(
        ok(local(master, "host.compute_free_memory", json!([s, h2]))),
        json!(3 * GIB)
    );
    assert_eq!(
        ok(local(master, "host.compute_free_memory", json!([s, h1]))),
        json!(4 * GIB)
    );

    // Refusals change nothing: not enough memory, a CPU the VM did not boot on.
    let b = ok(local(
        master,
        "VM.create",
        json!([s, {"name_label": "b", "memory_static_max": (3 * GIB + GIB / 2).to_string()}]),
    ));
    ok(local(
        master,
        "VM.start_on",
        json!([s, b, h1, false, false]),
    ));
    let (code, data) = err(local(master, "VM.pool_migrate", json!([s, b, h2, {}])));
    assert_eq!(
        (code.as_str(), data),
        (
            "HOST_NOT_ENOUGH_FREE_MEMORY",
            json!([(3 * GIB + GIB / 2).to_string(), (3 * GIB).to_string()])
        )
    );
    let (code, data) = err(local(master, "VM.pool_migrate", json!([s, a, h_amd, {}])));
    assert_eq!(code, "VM_INCOMPATIBLE_WITH_THIS_HOST");
    assert_eq!(data[0], a);
    assert_eq!(ok(local(master, "VM.get_resident_on", json!([s, a]))), h2);
    assert_eq!(ok(local(master, "VM.get_resident_on", json!([s, b]))), h1);
    assert!(alive(&second));

    // Evacuation moves everything or nothing: h1's 3.5 GiB VM fits only on the master (4 GiB
    // free), but not once the master is nearly full.
    let filler = ok(local(
        master,
        "VM.create",
        json!([s, {"name_label": "filler", "memory_static_max": GIB.to_string()}]),
    ));
    ok(local(
        master,
        "VM.start_on",
        json!([s, filler, h0, false, false]),
    ));
    let (code, _) = err(local(master, "host.evacuate", json!([s, h1])));
    assert_eq!(code, "CANNOT_EVACUATE_HOST");
    assert_eq!(
        ok(local(master, "VM.get_resident_on", json!([s, b]))),
        h1,
        "nothing moved"
    );
    ok(local(master, "VM.hard_shutdown", json!([s, filler])));
    ok(local(master, "host.evacuate", json!([s, h1])));
    assert_eq!(ok(local(master, "VM.get_resident_on", json!([s, b]))), h0);
    assert_eq!(
        ok(local(master, "host.get_resident_VMs", json!([s, h1]))),
        json!([])
    );

    // Shutting down a VM on a member stops its process there.
    ok(local(master, "VM.hard_shutdown", json!([s, a])));
    wait_for("a's domain to end", || !alive(&second));
}

#[test]
fn eject_and_forget() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ips = ["127.0.0.41", "127.0.0.42", "127.0.0.43"];
    let mut hosts = form_pool(&ips, port, &[&[], &[], &[]]);
    let s = session(&hosts[0]);
    let ejectee = common::host_by_address(&hosts[0], &s, ips[1]);
    let uuid = ok(local(&hosts[0], "host.get_uuid", json!([s, ejectee])));

    // The master cannot be ejected or forgotten; a live member cannot be forgotten.
    let master_ref = common::host_by_address(&hosts[0], &s, ips[0]);
    assert_eq!(
        err(local(&hosts[0], "pool.eject", json!([s, master_ref]))).0,
        "HOST_CANNOT_DESTROY_SELF"
    );
    assert_eq!(
        err(local(&hosts[0], "host.destroy", json!([s, ejectee]))).0,
        "HOST_IS_LIVE"
    );

    // Eject: the member leaves, restarts alone with its identity and root password.
    ok(local(&hosts[0], "pool.eject", json!([s, ejectee])));
    assert_eq!(
        ok(local(&hosts[0], "host.get_all", json!([s])))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    hosts[1].wait_exit(Duration::from_secs(20));
    hosts[1].restart();
    let tcp = |d: &TestDaemon, method: &str, params: Json| -> Json {
        let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
        serde_json::from_str(&raw::post(&d.http, "/jsonrpc", body.as_bytes()).body).unwrap()
    };
    let alone = ok(tcp(
        &hosts[1],
        "session.login_with_password",
        json!(["root", PASSWORD]),
    ));
    let own = ok(tcp(&hosts[1], "host.get_all_records", json!([alone])));
    assert_eq!(own.as_object().unwrap().len(), 1, "a pool of its own");
    assert_eq!(
        own.as_object().unwrap().values().next().unwrap()["uuid"],
        uuid,
        "the same host"
    );

    // Forget: a member that died is dropped once it is not live.
    let dead = common::host_by_address(&hosts[0], &s, ips[2]);
    hosts[2].kill9();
    let master = &hosts[0];
    wait_for("the dead member to be not live", || {
        let m = ok(local(master, "host.get_metrics", json!([s, dead])));
        ok(local(master, "host_metrics.get_live", json!([s, m]))) == json!(false)
    });
    let dead_uuid = ok(local(master, "host.get_uuid", json!([s, dead])));
    ok(local(master, "host.destroy", json!([s, dead])));
    assert_eq!(
        ok(local(master, "host.get_all", json!([s]))),
        json!([master_ref])
    );

    // Every pool event left a message about its host.
    let messages = ok(local(master, "message.get_all_records", json!([s])));
    let about = |name: &str, host: &Json| {
        messages.as_object().unwrap().values().any(|m| {
            m["name"] == json!(name) && m["obj_uuid"] == *host && m["cls"] == json!("Host")
        })
    };
    assert!(about("HOST_JOINED", &uuid), "{messages}");
    assert!(about("HOST_EJECTED", &uuid), "{messages}");
    assert!(about("HOST_NOT_LIVE", &dead_uuid), "{messages}");
    assert!(about("HOST_FORGOTTEN", &dead_uuid), "{messages}");
    // And operators can add their own, with xapi's validation.
    let m = ok(local(
        master,
        "message.create",
        json!([s, "CUSTOM", 3, "Pool", "x", "hello"]),
    ));
    assert_eq!(
        ok(local(master, "message.get_body", json!([s, m]))),
        json!("hello")
    );
    assert_eq!(
        err(local(
            master,
            "message.create",
            json!([s, "CUSTOM", 3, "Planet", "x", "hi"])
        ))
        .0,
        "FIELD_TYPE_ERROR"
    );
}

/// A member's daemon crashes (kill -9) and comes back: the VMs it ran died with it, so once it
/// reaches its master they are Halted, resident nowhere, and its memory is free again, on every
/// host's copy; they start again. A VM whose domain is gone cannot be "migrated".
#[test]
fn a_members_crash_halts_the_vms_it_ran() {
    let ips = ["127.0.13.11", "127.0.13.12", "127.0.13.13"];
    let port = std::net::TcpListener::bind(format!("{}:0", ips[0]))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mem = (4 * GIB).to_string();
    let plain: &[&str] = &["--memory-total", &mem];
    let mut hosts = form_pool(&ips, port, &[plain, plain, plain]);
    let s = session(&hosts[0]);
    let [_, h1, h2] = ips.map(|ip| common::host_by_address(&hosts[0], &s, ip));
    let free = |d: &TestDaemon, h: &Json| {
        let s = session(d);
        let m = ok(local(d, "host.get_metrics", json!([s, h])));
        ok(local(d, "host_metrics.get_memory_free", json!([s, m])))
    };
    let free_before = free(&hosts[0], &h1);
    let a = ok(local(
        &hosts[0],
        "VM.create",
        json!([s, {"name_label": "a", "memory_static_max": GIB.to_string()}]),
    ));
    let uuid = ok(local(&hosts[0], "VM.get_uuid", json!([s, a])));
    let uuid = uuid.as_str().unwrap();
    ok(local(
        &hosts[0],
        "VM.start_on",
        json!([s, a, h1, false, false]),
    ));
    assert_ne!(free(&hosts[0], &h1), free_before);

    hosts[1].kill9();
    hosts[1].restart();
    // Every host's copy (the member's own included) comes to say so.
    for d in &hosts {
        wait_for("the lost VM to be halted everywhere", || {
            let s = session(d);
            let rec = ok(local(d, "VM.get_record", json!([s, a])));
            rec["power_state"] == json!("Halted")
                && rec["resident_on"] == json!("OpaqueRef:NULL")
                && free(d, &h1) == free_before
        });
        let (code, out, stderr) = common::xe(
            d,
            &[
                "vm-list",
                &format!("uuid={uuid}"),
                "params=power-state",
                "--minimal",
            ],
        );
        assert_eq!((code, out.trim(), stderr.as_str()), (0, "halted", ""));
    }
    assert!(
        hosts[0]
            .log()
            .contains("VMs of a restarted member died with its daemon"),
        "{}",
        hosts[0].log()
    );
    // The member takes domains again.
    let (code, out, stderr) = common::xe(
        &hosts[1],
        &[
            "vm-start",
            &format!("uuid={uuid}"),
            &format!(
                "on={}",
                ok(local(&hosts[0], "host.get_uuid", json!([s, h1])))
                    .as_str()
                    .unwrap()
            ),
        ],
    );
    assert_eq!(code, 0, "{out} {stderr}");
    assert_eq!(
        ok(local(&hosts[0], "VM.get_resident_on", json!([s, a]))),
        h1
    );

    // A domain that died on its own (its guest crashed) leaves a record a migration must not
    // trust: the move is refused and changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("b.pid");
    let cmd = format!("echo $$ > {}; exec sleep 300", pidfile.display());
    let b = ok(local(
        &hosts[0],
        "VM.create",
        json!([s, {"name_label": "b", "memory_static_max": GIB.to_string(), "other_config": {"command": cmd}}]),
    ));
    ok(local(
        &hosts[0],
        "VM.start_on",
        json!([s, b, h2, false, false]),
    ));
    wait_for("b's pid", || pid_in(&pidfile).is_some());
    let pid = pid_in(&pidfile).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    wait_for("b's domain to die", || !alive(&pid));
    let (code, data) = err(local(
        &hosts[0],
        "VM.pool_migrate",
        json!([s, b, h1, {"live": "true"}]),
    ));
    assert_eq!(code, "VM_BAD_POWER_STATE", "{data}");
    assert_eq!(data, json!([b, "running", "halted"]));
    assert_eq!(
        ok(local(&hosts[0], "VM.get_resident_on", json!([s, b]))),
        h2
    );
    assert_eq!(
        ok(local(&hosts[0], "VM.get_power_state", json!([s, b]))),
        json!("Running")
    );
}
