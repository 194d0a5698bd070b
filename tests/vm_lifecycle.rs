//! VM lifecycle on one host: placement, static memory accounting, xapi's refusals, command
//! domains that are real processes, and what a daemon crash does to running VMs.

mod common;

use std::time::{Duration, Instant};

use common::{raw, TestDaemon, PASSWORD};
use serde_json::{json, Value as Json};

const GIB: i64 = 1 << 30;

struct Api<'a> {
    d: &'a TestDaemon,
    s: String,
}

impl Api<'_> {
    fn new(d: &TestDaemon) -> Api<'_> {
        let mut a = Api {
            d,
            s: String::new(),
        };
        a.s = a.raw("session.login_with_password", json!(["root", PASSWORD]))["result"]
            .as_str()
            .unwrap()
            .to_string();
        a
    }
    fn raw(&self, method: &str, params: Json) -> Json {
        let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
        serde_json::from_str(&raw::post(&self.d.http, "/jsonrpc", body.as_bytes()).body).unwrap()
    }
    fn call(&self, method: &str, mut params: Vec<Json>) -> Json {
        params.insert(0, json!(self.s));
        let r = self.raw(method, Json::Array(params));
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    }
    fn fail(&self, method: &str, mut params: Vec<Json>) -> (String, Json) {
        params.insert(0, json!(self.s));
        let r = self.raw(method, Json::Array(params));
        (
            r["error"]["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} succeeded: {r}"))
                .to_string(),
            r["error"]["data"].clone(),
        )
    }
    fn vm(&self, name: &str, memory: i64, command: Option<&str>) -> Json {
        let mut other = serde_json::Map::new();
        if let Some(c) = command {
            other.insert("command".into(), json!(c));
        }
        self.call("VM.create", vec![json!({"name_label": name, "memory_static_max": memory.to_string(), "other_config": other})])
    }
    fn host(&self) -> Json {
        self.call("host.get_all", vec![])[0].clone()
    }
    fn free(&self) -> i64 {
        let metrics = self.call("host.get_metrics", vec![self.host()]);
        self.call("host_metrics.get_memory_free", vec![metrics])
            .as_i64()
            .unwrap()
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn start_and_shutdown_account_memory_and_refuse_like_xapi() {
    let d = TestDaemon::start_with(&["--memory-total", &(8 * GIB).to_string()]);
    let a = Api::new(&d);
    let host = a.host();
    assert_eq!(a.free(), 8 * GIB);

    let web = a.vm("web", 3 * GIB, None);
    a.call("VM.start", vec![web.clone(), json!(false), json!(false)]);
    assert_eq!(
        a.call("VM.get_power_state", vec![web.clone()]),
        json!("Running")
    );
    assert_eq!(a.call("VM.get_resident_on", vec![web.clone()]), host);
    assert_eq!(
        a.call("host.get_resident_VMs", vec![host.clone()]),
        json!([web])
    );
    assert_eq!(a.free(), 5 * GIB);

    // Starting a running VM.
    let (code, data) = a.fail("VM.start", vec![web.clone(), json!(false), json!(false)]);
    assert_eq!(
        (code.as_str(), data),
        ("VM_BAD_POWER_STATE", json!([web, "halted", "running"]))
    );

    // Too big for what is left: VM.start finds no host, VM.start_on says why.
    let big = a.vm("big", 6 * GIB, None);
    assert_eq!(
        a.fail("VM.start", vec![big.clone(), json!(false), json!(false)])
            .0,
        "NO_HOSTS_AVAILABLE"
    );
    let (code, data) = a.fail(
        "VM.start_on",
        vec![big.clone(), host.clone(), json!(false), json!(false)],
    );
    assert_eq!(code, "HOST_NOT_ENOUGH_FREE_MEMORY");
    assert_eq!(data, json!([(6 * GIB).to_string(), (5 * GIB).to_string()]));
    assert_eq!(
        a.call("VM.get_power_state", vec![big.clone()]),
        json!("Halted"),
        "a refused start changes nothing"
    );
    assert_eq!(a.free(), 5 * GIB);

    // A disabled host takes no new VMs; a template never starts.
    a.call("host.disable", vec![host.clone()]);
    let small = a.vm("small", GIB, None);
    let (code, data) = a.fail(
        "VM.start_on",
        vec![small.clone(), host.clone(), json!(false), json!(false)],
    );
    assert_eq!((code.as_str(), data), ("HOST_DISABLED", json!([host])));
    a.call("host.enable", vec![host.clone()]);
    a.call("VM.set_is_a_template", vec![small.clone(), json!(true)]);
    assert_eq!(
        a.fail("VM.start", vec![small.clone(), json!(false), json!(false)])
            .0,
        "VM_IS_TEMPLATE"
    );

    // Shutdown gives the memory back; a halted VM cannot be shut down.
    a.call("VM.clean_shutdown", vec![web.clone()]);
    assert_eq!(
        a.call("VM.get_power_state", vec![web.clone()]),
        json!("Halted")
    );
    assert_eq!(
        a.call("VM.get_resident_on", vec![web.clone()]),
        json!("OpaqueRef:NULL")
    );
    assert_eq!(
        a.call("host.get_resident_VMs", vec![host.clone()]),
        json!([])
    );
    assert_eq!(a.free(), 8 * GIB);
    let (code, data) = a.fail("VM.hard_shutdown", vec![web.clone()]);
    assert_eq!(
        (code.as_str(), data),
        ("VM_BAD_POWER_STATE", json!([web, "running", "halted"]))
    );
    // Now the big one fits; a running VM cannot be destroyed.
    a.call("VM.start", vec![big.clone(), json!(false), json!(false)]);
    assert_eq!(
        a.fail("VM.destroy", vec![big.clone()]).0,
        "VM_BAD_POWER_STATE"
    );
}

#[test]
fn static_memory_is_set_halted_and_only_a_running_vm_is_kept_running() {
    let d = TestDaemon::start_with(&["--memory-total", &(8 * GIB).to_string()]);
    let a = Api::new(&d);
    let vm = a.vm("db", GIB, None);
    // Protecting a halted VM does not ask HA to start it.
    a.call(
        "VM.set_ha_restart_priority",
        vec![vm.clone(), json!("restart")],
    );
    assert_eq!(
        a.call("VM.get_ha_always_run", vec![vm.clone()]),
        json!(false)
    );
    a.call(
        "VM.set_memory_static_max",
        vec![vm.clone(), json!((2 * GIB).to_string())],
    );
    a.call("VM.start", vec![vm.clone(), json!(false), json!(false)]);
    assert_eq!(
        a.call("VM.get_ha_always_run", vec![vm.clone()]),
        json!(true)
    );
    // A running VM's static limits stay as they are: its footprint is what placement and the
    // failover plan count on.
    let (code, data) = a.fail(
        "VM.set_memory_static_max",
        vec![vm.clone(), json!((4 * GIB).to_string())],
    );
    assert_eq!(
        (code.as_str(), data),
        ("VM_BAD_POWER_STATE", json!([vm, "halted", "running"]))
    );
    assert_eq!(
        a.call("VM.get_memory_static_max", vec![vm.clone()]),
        json!(2 * GIB)
    );
    // Unprotecting it clears "keep it running"; a clean shutdown does too.
    a.call("VM.set_ha_restart_priority", vec![vm.clone(), json!("")]);
    assert_eq!(
        a.call("VM.get_ha_always_run", vec![vm.clone()]),
        json!(false)
    );
    a.call(
        "VM.set_ha_restart_priority",
        vec![vm.clone(), json!("restart")],
    );
    assert_eq!(
        a.call("VM.get_ha_always_run", vec![vm.clone()]),
        json!(true)
    );
    a.call("VM.clean_shutdown", vec![vm.clone()]);
    assert_eq!(
        a.call("VM.get_ha_always_run", vec![vm.clone()]),
        json!(false)
    );
}

fn pid_alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn command_domains_run_stop_and_die_with_the_daemon() {
    let mut d = TestDaemon::start_with(&["--memory-total", &(4 * GIB).to_string()]);
    let pidfile = d.state_dir().join("vm.pid");
    let cmd = format!("echo $$ > {}; exec sleep 300", pidfile.display());
    let a = Api::new(&d);
    let vm = a.vm("svc", GIB, Some(&cmd));

    a.call("VM.start", vec![vm.clone(), json!(false), json!(false)]);
    wait_for("the domain's pid file", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| !p.trim().is_empty())
    });
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(pid_alive(&pid));
    a.call("VM.hard_shutdown", vec![vm.clone()]);
    wait_for("the domain to stop", || !pid_alive(&pid));

    // A crash of the daemon takes the domain with it, like a host crash takes its guests ...
    std::fs::remove_file(&pidfile).unwrap();
    a.call("VM.start", vec![vm.clone(), json!(false), json!(false)]);
    wait_for("the domain's pid file", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| !p.trim().is_empty())
    });
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    d.kill9();
    wait_for("the orphaned domain to die", || !pid_alive(&pid));
    // ... and the restarted daemon knows it: the VM is halted and its memory free again.
    d.restart();
    let a = Api::new(&d);
    assert_eq!(
        a.call("VM.get_power_state", vec![vm.clone()]),
        json!("Halted")
    );
    assert_eq!(a.free(), 4 * GIB);
    assert!(d.log().contains("died with the previous daemon"));
}

#[test]
fn host_reboot_and_shutdown_stop_the_daemon_only_when_safe() {
    let mut d = TestDaemon::start_with(&["--memory-total", &(4 * GIB).to_string()]);
    let a = Api::new(&d);
    let host = a.host();
    assert_eq!(
        a.fail("host.shutdown", vec![host.clone()]).0,
        "HOST_NOT_DISABLED"
    );
    let vm = a.vm("busy", GIB, None);
    a.call("VM.start", vec![vm.clone(), json!(false), json!(false)]);
    a.call("host.disable", vec![host.clone()]);
    let (code, data) = a.fail("host.reboot", vec![host.clone()]);
    assert_eq!(
        (code.as_str(), data),
        ("HOST_IN_USE", json!([host, "VM", vm]))
    );
    a.call("VM.hard_shutdown", vec![vm.clone()]);

    // Reboot: the daemon restarts in place and serves again. As in xapi, a restart enables
    // the host again: host.disable's auto_enable defaults to true.
    a.call("host.reboot", vec![host.clone()]);
    wait_for("the daemon to come back", || {
        d.log().matches("xapid ready").count() == 2
    });
    let a = Api::new(&d);
    assert_eq!(a.call("VM.get_name_label", vec![vm]), json!("busy"));
    assert_eq!(a.call("host.get_enabled", vec![host.clone()]), json!(true));
    // Disabled with auto_enable=false, it stays disabled across a restart.
    a.call("host.disable", vec![host.clone(), json!(false)]);
    a.call("host.reboot", vec![host.clone()]);
    wait_for("the daemon to come back", || {
        d.log().matches("xapid ready").count() == 3
    });
    let a = Api::new(&d);
    assert_eq!(a.call("host.get_enabled", vec![host.clone()]), json!(false));
    // Shutdown: the daemon stops, cleanly.
    a.call("host.shutdown", vec![a.host()]);
    assert!(d.wait_exit(Duration::from_secs(20)).success());
}

/// A daemon of its own on 127.0.3.`last` (this file's multi-process address range).
fn daemon_at(last: u8, extra: &[&str]) -> TestDaemon {
    let ip = format!("127.0.3.{last}");
    let port = std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    TestDaemon::start_at(&ip, port, extra)
}

fn xe_ok(d: &TestDaemon, args: &[&str]) -> String {
    let (code, out, err) = common::xe(d, args);
    assert!(
        code == 0 && err.is_empty(),
        "xe {args:?}: {code} {out} {err}"
    );
    out.trim_end().to_string()
}

/// A command that does not exec keeps `sh` as the parent of what it runs: `vm-shutdown` (clean
/// or forced) must end those grandchildren too, not only the shell.
#[test]
fn vm_shutdown_ends_everything_the_domain_started() {
    let d = daemon_at(10, &["--memory-total", &(4 * GIB).to_string()]);
    for (name, force) in [("clean", false), ("forced", true)] {
        let pidfile = d.state_dir().join(format!("{name}.pid"));
        let cmd = format!("sleep 300 & echo $! > {}; wait; true", pidfile.display());
        let vm = xe_ok(
            &d,
            &[
                "vm-create",
                &format!("name-label={name}"),
                "memory-static-max=1GiB",
            ],
        );
        xe_ok(
            &d,
            &[
                "vm-param-set",
                &format!("uuid={vm}"),
                &format!("other-config:command={cmd}"),
            ],
        );
        xe_ok(&d, &["vm-start", &format!("uuid={vm}")]);
        wait_for("the grandchild's pid", || {
            std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n'))
        });
        let grandchild = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string();
        assert!(pid_alive(&grandchild));
        let uuid = format!("uuid={vm}");
        let mut args = vec!["vm-shutdown", uuid.as_str()];
        if force {
            args.push("--force");
        }
        xe_ok(&d, &args);
        assert_eq!(
            xe_ok(&d, &["vm-param-get", &uuid, "param-name=power-state"]),
            "halted"
        );
        wait_for("the grandchild to end with its domain", || {
            !pid_alive(&grandchild)
        });
    }
}

/// xapi's `VM.set_order`, `set_start_delay` and `set_shutdown_delay` refuse negative values
/// with `INVALID_VALUE`; a refusal leaves the field as it was, through the API and through xe.
#[test]
fn negative_order_and_delays_are_refused() {
    let d = daemon_at(11, &["--memory-total", &(4 * GIB).to_string()]);
    let a = Api::new(&d);
    let vm = a.vm("seq", GIB, None);
    let uuid = a.call("VM.get_uuid", vec![vm.clone()]);
    let uuid = format!("uuid={}", uuid.as_str().unwrap());
    for (field, xe_name) in [
        ("order", "order"),
        ("start_delay", "start-delay"),
        ("shutdown_delay", "shutdown-delay"),
    ] {
        a.call(&format!("VM.set_{field}"), vec![vm.clone(), json!("2")]);
        let (code, data) = a.fail(&format!("VM.set_{field}"), vec![vm.clone(), json!("-1")]);
        assert_eq!(
            (code.as_str(), data),
            (
                "INVALID_VALUE",
                json!([format!("{field} must be non-negative"), "-1"])
            )
        );
        let (code, out, err) = common::xe(&d, &["vm-param-set", &uuid, &format!("{xe_name}=-5")]);
        assert_eq!(
            (code, out.as_str(), err),
            (
                1,
                "",
                format!(
                    "The value given is invalid\nfield: {field} must be non-negative\nvalue: -5\n"
                )
            )
        );
        assert_eq!(
            xe_ok(
                &d,
                &["vm-param-get", &uuid, &format!("param-name={xe_name}")]
            ),
            "2"
        );
        xe_ok(&d, &["vm-param-set", &uuid, &format!("{xe_name}=0")]);
        assert_eq!(
            a.call(&format!("VM.get_{field}"), vec![vm.clone()]),
            json!(0)
        );
    }
}

/// A host's own memory overhead (`memory_overhead` in the TOML config) counts against what VMs
/// may use: a VM that would fit in the total does not fit in the total less the overhead.
#[test]
fn the_hosts_memory_overhead_is_not_for_vms() {
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("xapid.toml");
    std::fs::write(
        &path,
        format!(
            "memory_total = {}\nmemory_overhead = {}\n",
            4 * GIB,
            GIB / 2
        ),
    )
    .unwrap();
    let d = daemon_at(12, &["--config", path.to_str().unwrap()]);
    let a = Api::new(&d);
    let host = a.host();
    assert_eq!(
        a.call("host.get_memory_overhead", vec![host.clone()]),
        json!(GIB / 2)
    );
    assert_eq!(a.free(), 4 * GIB - GIB / 2);
    assert_eq!(
        a.call("host.compute_free_memory", vec![host.clone()]),
        json!(4 * GIB - GIB / 2)
    );
    let vm = a.vm("almost-all", 4 * GIB - GIB / 4, None);
    let (code, data) = a.fail(
        "VM.start_on",
        vec![vm.clone(), host.clone(), json!(false), json!(false)],
    );
    assert_eq!(
        (code.as_str(), data),
        (
            "HOST_NOT_ENOUGH_FREE_MEMORY",
            json!([
                (4 * GIB - GIB / 4).to_string(),
                (4 * GIB - GIB / 2).to_string()
            ])
        )
    );
    assert_eq!(
        a.call("VM.get_power_state", vec![vm.clone()]),
        json!("Halted")
    );
    // What is left after the overhead is all there for VMs.
    let fits = a.vm("all-that-is-left", 4 * GIB - GIB / 2, None);
    a.call("VM.start_on", vec![fits, host, json!(false), json!(false)]);
    assert_eq!(a.free(), 0);
}

/// A command that does not exec leaves its children outside the parent-death signal's reach:
/// they survive a kill -9 of the daemon. The restarted daemon kills them (their process group
/// was recorded) before it starts anything, so the VM can never run twice.
#[test]
fn a_restart_kills_what_a_crashed_daemon_left_running() {
    let ip = "127.0.13.1";
    let port = std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut d = TestDaemon::start_at(ip, port, &["--memory-total", &(4 * GIB).to_string()]);
    let pidfile = d.state_dir().join("grandchild.pid");
    let cmd = format!("sleep 1000 & echo $! > {}; wait; true", pidfile.display());
    let vm = xe_ok(
        &d,
        &["vm-create", "name-label=orphan", "memory-static-max=1GiB"],
    );
    let uuid = format!("uuid={vm}");
    xe_ok(
        &d,
        &[
            "vm-param-set",
            &uuid,
            &format!("other-config:command={cmd}"),
        ],
    );
    xe_ok(&d, &["vm-start", &uuid]);
    wait_for("the grandchild's pid", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n'))
    });
    let grandchild = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    // Should the test fail, no sleep outlives it.
    struct Reap(String);
    impl Drop for Reap {
        fn drop(&mut self) {
            if std::thread::panicking() && pid_alive(&self.0) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &self.0])
                    .status();
            }
        }
    }
    let _reap = Reap(grandchild.clone());
    assert!(d.state_dir().join("domains").join(&vm).exists());

    d.kill9();
    // The problem: the shell died with the daemon, what it started did not.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pid_alive(&grandchild),
        "the grandchild died with the daemon"
    );
    d.restart();
    wait_for("the restart to kill the leftover", || {
        !pid_alive(&grandchild)
    });
    assert!(
        d.log()
            .contains("killed a domain the previous daemon left running"),
        "{}",
        d.log()
    );
    assert_eq!(
        std::fs::read_dir(d.state_dir().join("domains"))
            .unwrap()
            .count(),
        0,
        "the records are cleared"
    );
    // The VM is halted and starts again, once.
    assert_eq!(
        xe_ok(&d, &["vm-param-get", &uuid, "param-name=power-state"]),
        "halted"
    );
    std::fs::remove_file(&pidfile).unwrap();
    xe_ok(&d, &["vm-start", &uuid]);
    wait_for("the new grandchild's pid", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n'))
    });
    xe_ok(&d, &["vm-shutdown", &uuid, "--force"]);
    assert_eq!(
        std::fs::read_dir(d.state_dir().join("domains"))
            .unwrap()
            .count(),
        0,
        "a stop forgets the record"
    );
}
