//! `xe` against real pools of `xapid` processes: two hosts on 127.0.0.1 and 127.0.0.2
//! (`pool-join` run on the joining host, what each host's `xe` sees (reference §6 cases 19 and
//! 21), `vm-migrate`, `pool-eject`, `host-forget`), and three hosts on 127.0.3.x joined with
//! `xe pool-join` that start, migrate and evacuate VMs with memory and CPU refusals.

mod common;

use common::{TestDaemon, PASSWORD};

#[derive(Debug, PartialEq)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Run xe with a clean environment against `d`'s local socket (the default server uses it).
fn xe(d: &TestDaemon, args: &[&str]) -> Run {
    let (code, stdout, stderr) = common::xe(d, args);
    Run {
        stdout,
        stderr,
        code,
    }
}

fn ok(r: Run) -> String {
    assert!(r.code == 0 && r.stderr.is_empty(), "{r:?}");
    r.stdout
}

fn sorted_csv(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.trim_end().split(',').map(String::from).collect();
    v.sort();
    v
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A master on 127.0.0.1 and a standalone host on 127.0.0.2, sharing one HTTP port.
fn two_hosts() -> (TestDaemon, TestDaemon, u16) {
    let port = free_port();
    let mem = ["--memory-total", "8589934592"];
    let master = TestDaemon::start_at("127.0.0.1", port, &mem);
    let member = TestDaemon::start_at("127.0.0.2", port, &mem);
    (master, member, port)
}

fn join(member: &TestDaemon) {
    let r = xe(
        member,
        &[
            "pool-join",
            "master-address=127.0.0.1",
            "master-username=root",
            &format!("master-password={PASSWORD}"),
        ],
    );
    assert_eq!(
        r,
        Run {
            stdout: "Host agent will restart and attempt to join pool in 10. seconds...\n".into(),
            stderr: String::new(),
            code: 0
        }
    );
}

#[test]
fn pool_join_then_each_hosts_view() {
    let (master, member, port) = two_hosts();
    let port_s = port.to_string();
    let master_host = ok(xe(&master, &["host-list", "params=uuid", "--minimal"]));
    let member_host = ok(xe(&member, &["host-list", "params=uuid", "--minimal"]));

    // A wrong master password is refused and the host stays on its own.
    let r = xe(
        &member,
        &[
            "pool-join",
            "master-address=127.0.0.1",
            "master-username=root",
            "master-password=wrong",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "Authentication failed\nFor usage run: 'xe help'\n"
    );
    assert_eq!(
        ok(xe(&member, &["host-list", "params=uuid", "--minimal"])),
        member_host
    );

    // Nobody answers at the master address: xapi's two-line advice, and exit 0 as in xe.
    let r = xe(
        &member,
        &[
            "pool-join",
            "master-address=127.0.0.9",
            "master-username=root",
            &format!("master-password={PASSWORD}"),
        ],
    );
    assert_eq!(
        r,
        Run {
            stdout: "Host cannot contact destination host: connection refused.\nCheck destination host has services running and accessible from this host.\n".into(),
            stderr: String::new(),
            code: 0
        }
    );

    join(&member);

    // The master lists both hosts; the member's local socket is forwarded to the master.
    let on_master = ok(xe(&master, &["host-list", "params=uuid", "--minimal"]));
    let mut both = sorted_csv(&master_host);
    both.extend(sorted_csv(&member_host));
    both.sort();
    assert_eq!(sorted_csv(&on_master), both);
    assert_eq!(
        sorted_csv(&ok(xe(&member, &["host-list", "params=uuid", "--minimal"]))),
        both
    );
    assert_eq!(
        sorted_csv(&ok(xe(
            &master,
            &["host-list", "params=address", "--minimal"]
        ))),
        ["127.0.0.1", "127.0.0.2"]
    );

    // Case 21: TCP to the member gets HOST_IS_SLAVE with the master's address.
    let r = xe(
        &member,
        &[
            "-s",
            "127.0.0.2",
            "--nossl",
            "-p",
            &port_s,
            "-u",
            "root",
            "-pw",
            PASSWORD,
            "host-list",
        ],
    );
    assert_eq!(
        r,
        Run {
            stdout: String::new(),
            stderr: "You cannot make regular API calls directly on a supporter. Please pass API calls via the coordinator host.\nMaster IP address: 127.0.0.1\n".into(),
            code: 1
        }
    );
    // The same call to the master over TCP works.
    let r = xe(
        &member,
        &[
            "-s",
            "127.0.0.1",
            "--nossl",
            "-p",
            &port_s,
            "-u",
            "root",
            "-pw",
            PASSWORD,
            "host-list",
            "params=uuid",
            "--minimal",
        ],
    );
    assert_eq!(sorted_csv(&ok(r)), both);

    // Case 19: host-evacuate needs exactly one host.
    for d in [&master, &member] {
        assert_eq!(
            xe(d, &["host-evacuate"]),
            Run {
                stdout: String::new(),
                stderr: "Error: Multiple matching hosts found. Operation can only be performed on one host at a time\n".into(),
                code: 1
            }
        );
    }
    // host-disable takes several hosts with --multiple, through the member's socket too.
    let r = xe(&member, &["host-disable"]);
    assert_eq!(
        r.stderr,
        "Error: Multiple matching hosts found. --multiple required to complete the operation\n"
    );
    ok(xe(&member, &["host-disable", "--multiple"]));
    assert_eq!(
        ok(xe(&master, &["host-list", "params=enabled", "--minimal"])),
        "false,false\n"
    );
    ok(xe(
        &member,
        &["host-enable", &format!("uuid={}", master_host.trim_end())],
    ));
    assert_eq!(
        ok(xe(
            &master,
            &["host-list", "enabled=true", "params=uuid", "--minimal"]
        )),
        master_host
    );

    ok(xe(&master, &["host-enable", "--multiple"]));
    assert_eq!(
        ok(xe(&member, &["host-list", "params=enabled", "--minimal"])),
        "true,true\n"
    );

    // A VM created and started through the member's socket runs where it was asked to.
    let vm = ok(xe(
        &member,
        &["vm-create", "name-label=app", "memory-static-max=1GiB"],
    ));
    let vm = vm.trim_end();
    ok(xe(
        &member,
        &[
            "vm-start",
            &format!("uuid={vm}"),
            &format!("on={}", member_host.trim_end()),
        ],
    ));
    assert_eq!(
        ok(xe(&master, &["vm-list", "params=resident-on", "--minimal"])),
        member_host
    );
    ok(xe(&master, &["vm-shutdown", "vm=app"]));
    ok(xe(&master, &["vm-destroy", &format!("uuid={vm}")]));
    assert_eq!(ok(xe(&member, &["vm-list", "--minimal"])), "\n");
}

/// `vm-migrate` moves a running VM to the other host (`VM.pool_migrate`), and a move the
/// target has no memory for is refused with xapi's error text and changes nothing.
#[test]
fn vm_migrate_moves_a_running_vm() {
    let port = free_port();
    let master = TestDaemon::start_at("127.0.0.1", port, &["--memory-total", "8589934592"]);
    let member = TestDaemon::start_at("127.0.0.2", port, &["--memory-total", "4294967296"]);
    let master_host = ok(xe(&master, &["host-list", "params=uuid", "--minimal"]));
    let member_host = ok(xe(&member, &["host-list", "params=uuid", "--minimal"]));
    let (master_host, member_host) = (master_host.trim_end(), member_host.trim_end());
    join(&member);
    ok(xe(
        &master,
        &["vm-create", "name-label=app", "memory-static-max=1GiB"],
    ));
    ok(xe(
        &master,
        &["vm-start", "vm=app", &format!("on={master_host}")],
    ));
    // Through the member's socket, which forwards to the master.
    ok(xe(
        &member,
        &[
            "vm-migrate",
            "vm=app",
            &format!("host-uuid={member_host}"),
            "--live",
        ],
    ));
    assert_eq!(
        ok(xe(&master, &["vm-list", "params=resident-on", "--minimal"])),
        format!("{member_host}\n")
    );
    assert_eq!(
        ok(xe(&master, &["vm-list", "params=power-state", "--minimal"])),
        "running\n"
    );

    // 3.5 GiB cannot join a 1 GiB VM on a 4 GiB host.
    let big = ok(xe(
        &master,
        &["vm-create", "name-label=big", "memory-static-max=3584MiB"],
    ));
    let big = big.trim_end();
    ok(xe(
        &master,
        &["vm-start", "vm=big", &format!("on={master_host}")],
    ));
    let r = xe(
        &master,
        &["vm-migrate", "vm=big", &format!("host={member_host}")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    let mut lines = r.stderr.lines();
    assert_eq!(
        lines.next(),
        Some("Not enough server memory is available to perform this operation.")
    );
    assert_eq!(lines.next(), Some("needed: 3758096384"));
    assert!(
        lines.next().is_some_and(|l| l.starts_with("available: ")),
        "{r:?}"
    );
    assert_eq!(
        ok(xe(
            &master,
            &[
                "vm-list",
                &format!("uuid={big}"),
                "params=resident-on",
                "--minimal"
            ]
        )),
        format!("{master_host}\n")
    );

    // With --multiple, each failure is reported on stdout and the others still move.
    let r = xe(
        &master,
        &[
            "vm-migrate",
            "power-state=running",
            &format!("host={member_host}"),
            "--multiple",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!(
            "operation failed on {big}: Not enough server memory is available to perform this operation.\n"
        )),
        "{r:?}"
    );
}

/// `pool-eject --force` sends a member away (xapi's text; the member leaves and the master
/// forgets it); `host-forget` refuses a live member and drops a dead one.
#[test]
fn pool_eject_and_host_forget_remove_a_member() {
    let (master, mut member, port) = two_hosts();
    let master_host = ok(xe(&master, &["host-list", "params=uuid", "--minimal"]));
    let member_host = ok(xe(&member, &["host-list", "params=uuid", "--minimal"]));
    let member_uuid = member_host.trim_end().to_string();
    join(&member);

    let r = xe(
        &master,
        &[
            "pool-eject",
            &format!("host-uuid={}", master_host.trim_end()),
            "--force",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("The pool coordinator host cannot be removed.\nhost: "),
        "{r:?}"
    );
    let r = xe(
        &master,
        &["host-forget", &format!("uuid={member_uuid}"), "--force"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "This operation cannot be completed because the server is still live.\nhost: {member_uuid} ("
        )),
        "{r:?}"
    );

    assert_eq!(
        xe(&master, &["pool-eject", &format!("host-uuid={member_uuid}"), "--force"]),
        Run {
            stdout: "Specified host will attempt to restart as a master of a new pool in 10. seconds...\n".into(),
            stderr: String::new(),
            code: 0
        }
    );
    assert_eq!(
        ok(xe(&master, &["host-list", "params=uuid", "--minimal"])),
        master_host
    );
    member.wait_exit(std::time::Duration::from_secs(20));

    // A third host joins, dies and is forgotten once the master sees it is not live.
    let mut third = TestDaemon::start_at("127.0.0.3", port, &[]);
    let third_host = ok(xe(&third, &["host-list", "params=uuid", "--minimal"]));
    join(&third);
    third.kill9();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let live = ok(xe(
            &master,
            &[
                "host-list",
                &format!("uuid={}", third_host.trim_end()),
                "params=host-metrics-live",
                "--minimal",
            ],
        ));
        if live == "false\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead host stays live"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ok(xe(
        &master,
        &[
            "host-forget",
            &format!("uuid={}", third_host.trim_end()),
            "--force",
        ],
    ));
    assert_eq!(
        ok(xe(&master, &["host-list", "params=uuid", "--minimal"])),
        master_host
    );
}

/// The 2am path without HA: the master is gone for good, a member is told to take over, and
/// the other members are brought over to it.
#[test]
fn emergency_transition_and_recover_slaves() {
    let port = free_port();
    let ips = ["127.0.0.141", "127.0.0.142", "127.0.0.143"];
    let mut hosts: Vec<TestDaemon> = ips
        .iter()
        .map(|ip| TestDaemon::start_at(ip, port, &[]))
        .collect();
    for h in &hosts[1..] {
        ok(xe(
            h,
            &[
                "pool-join",
                "master-address=127.0.0.141",
                "master-username=root",
                &format!("master-password={PASSWORD}"),
            ],
        ));
    }
    let pool_uuid = ok(xe(&hosts[0], &["pool-list", "--minimal"]));
    let uuid_of = |d: &TestDaemon, ip: &str| {
        ok(xe(d, &["host-list", &format!("address={ip}"), "--minimal"]))
            .trim()
            .to_string()
    };
    let (new_uuid, other_uuid) = (uuid_of(&hosts[0], ips[1]), uuid_of(&hosts[0], ips[2]));
    // The member that will take over misses a write: it is down while the master acknowledges
    // it (replicated to the other member only), then the master dies.
    hosts[1].kill9();
    ok(xe(&hosts[0], &["vm-create", "name-label=late"]));
    hosts[0].kill9();
    hosts[1].restart();

    // Members cannot reach their master: every pool call fails until someone takes over.
    let r = xe(&hosts[1], &["host-list"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(xe(&hosts[1], &["pool-emergency-transition-to-master"])),
        "Host agent will restart and transition to master in 10. seconds...\n"
    );
    // Already master now: xe says so unless forced.
    assert_eq!(
        ok(xe(&hosts[1], &["pool-emergency-transition-to-master"])),
        "Host agent is already master. Use '--force' to execute the operation anyway.\n"
    );
    // It took over with the other member's newer copy: the acknowledged write is there.
    assert_ne!(
        ok(xe(&hosts[1], &["vm-list", "name-label=late", "--minimal"])).trim(),
        ""
    );
    let recovered = ok(xe(&hosts[1], &["pool-recover-slaves"]));
    assert_eq!(recovered, format!("{other_uuid}\n"));
    // The other member now follows the new master: its view of the pool names it master.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = xe(
            &hosts[2],
            &[
                "pool-param-get",
                &format!("uuid={}", pool_uuid.trim()),
                "param-name=master",
            ],
        );
        if r.code == 0 && r.stdout.trim() == new_uuid {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // An empty master address is refused.
    let r = xe(
        &hosts[2],
        &["pool-emergency-reset-master", "master-address="],
    );
    assert_ne!(r.code, 0, "{r:?}");
}

/// `xe pool-join` of `member` to the master at `master_ip`, with xe's answer.
fn join_at(member: &TestDaemon, master_ip: &str) {
    assert_eq!(
        ok(xe(
            member,
            &[
                "pool-join",
                &format!("master-address={master_ip}"),
                "master-username=root",
                &format!("master-password={PASSWORD}"),
            ],
        )),
        "Host agent will restart and attempt to join pool in 10. seconds...\n"
    );
}

/// The Intel fixture's CPUs without some feature flags: a host of the same vendor that lacks
/// what the full one has.
fn cpuinfo_without(dir: &std::path::Path, name: &str, missing: &[&str]) -> String {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cpuinfo/intel-xeon-2cpu.txt"
    );
    let text: String = std::fs::read_to_string(fixture)
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("flags\t\t: ") {
            Some(flags) => format!(
                "flags\t\t: {}\n",
                flags
                    .split(' ')
                    .filter(|f| !missing.contains(f))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => format!("{l}\n"),
        })
        .collect();
    assert!(
        !text.contains(" avx512f "),
        "the fixture's flags line changed"
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A host's local database generation, asked over its own socket (answered locally).
fn generation(d: &TestDaemon) -> i64 {
    let body = |method: &str, params: serde_json::Value| {
        serde_json::json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string()
    };
    let call = |method: &str, params: serde_json::Value| -> serde_json::Value {
        let r = common::raw::post_unix(&d.socket, "/jsonrpc", body(method, params).as_bytes());
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["result"].clone()
    };
    let s = call(
        "session.slave_local_login_with_password",
        serde_json::json!(["root", ""]),
    );
    call("host.get_local_database_generation", serde_json::json!([s]))
        .as_i64()
        .unwrap()
}

/// The first line of a failed xe run (xe's text for the error code).
fn failure(r: Run) -> String {
    assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{r:?}");
    r.stderr.lines().next().unwrap_or_default().to_string()
}

const GIB: i64 = 1 << 30;

/// Three hosts joined with `xe pool-join`, then VMs started, migrated and evacuated across
/// them with xe: each host's view of the pool, memory and CPU refusals, and an evacuation
/// that moves everything or nothing.
#[test]
fn three_hosts_joined_with_xe_run_and_move_vms() {
    let port = free_port();
    let cpus = tempfile::tempdir().unwrap();
    // The master lacks avx512f: a VM booted on a member may use it, and cannot come back.
    let fewer = cpuinfo_without(cpus.path(), "fewer", &["avx512f"]);
    let full = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cpuinfo/intel-xeon-2cpu.txt"
    );
    let mem = |gib: i64| (gib * GIB).to_string();
    let (m8, m4) = (mem(8), mem(4));
    let ips = ["127.0.3.1", "127.0.3.2", "127.0.3.3"];
    let a = TestDaemon::start_at(ips[0], port, &["--memory-total", &m8, "--cpuinfo", &fewer]);
    let b = TestDaemon::start_at(ips[1], port, &["--memory-total", &m4, "--cpuinfo", full]);
    let mut c = TestDaemon::start_at(ips[2], port, &["--memory-total", &m4, "--cpuinfo", full]);
    let uuid_of = |d: &TestDaemon| ok(xe(d, &["host-list", "params=uuid", "--minimal"]));
    let (ha, hb, hc) = (uuid_of(&a), uuid_of(&b), uuid_of(&c));
    let (ha, hb, hc) = (ha.trim_end(), hb.trim_end(), hc.trim_end());
    join_at(&b, ips[0]);
    join_at(&c, ips[0]);

    // A host of the same vendor that lacks a CPU feature the pool has is refused, and stays
    // on its own.
    let lacking = cpuinfo_without(cpus.path(), "lacking", &["avx512f", "sse4_2"]);
    let d = TestDaemon::start_at("127.0.3.4", port, &["--cpuinfo", &lacking]);
    let alone = ok(xe(&d, &["host-list", "params=uuid", "--minimal"]));
    let r = xe(
        &d,
        &[
            "pool-join",
            "master-address=127.0.3.1",
            "master-username=root",
            &format!("master-password={PASSWORD}"),
        ],
    );
    assert_eq!(
        r,
        Run {
            stdout: String::new(),
            stderr: "The hosts in this pool are not homogeneous.\nreason: the joining host lacks CPU features of the pool: sse4_2\n".into(),
            code: 1
        }
    );
    assert_eq!(
        ok(xe(&d, &["host-list", "params=uuid", "--minimal"])),
        alone
    );
    drop(d);

    // Every host's view (members' sockets forward to the master): one master, three hosts.
    let mut all = vec![ha.to_string(), hb.to_string(), hc.to_string()];
    all.sort();
    for d in [&a, &b, &c] {
        assert_eq!(
            sorted_csv(&ok(xe(d, &["host-list", "params=uuid", "--minimal"]))),
            all
        );
        assert_eq!(
            ok(xe(d, &["pool-list", "params=master", "--minimal"])),
            format!("{ha}\n")
        );
    }
    // A write through a member's socket reaches every copy: the same generation everywhere.
    ok(xe(
        &c,
        &["vm-create", "name-label=v1", "memory-static-max=3GiB"],
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let g: Vec<i64> = [&a, &b, &c].iter().map(|d| generation(d)).collect();
        if g.iter().all(|x| *x == g[0]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "generations {g:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Over TCP, members send callers to the master; the master answers.
    let port_s = port.to_string();
    let over_tcp = |ip: &str| {
        xe(
            &a,
            &[
                "-s",
                ip,
                "--nossl",
                "-p",
                &port_s,
                "-u",
                "root",
                "-pw",
                PASSWORD,
                "host-list",
                "params=uuid",
                "--minimal",
            ],
        )
    };
    for ip in &ips[1..] {
        assert_eq!(
            over_tcp(ip),
            Run {
                stdout: String::new(),
                stderr: "You cannot make regular API calls directly on a supporter. Please pass API calls via the coordinator host.\nMaster IP address: 127.0.3.1\n".into(),
                code: 1
            }
        );
    }
    assert_eq!(sorted_csv(&ok(over_tcp(ips[0]))), all);

    // VMs across the three hosts. v1 and v2 on the master, v3 on a member.
    let free = |h: &str| {
        ok(xe(
            &a,
            &[
                "host-param-get",
                &format!("uuid={h}"),
                "param-name=memory-free",
            ],
        ))
        .trim_end()
        .parse::<i64>()
        .unwrap()
    };
    let resident = |vm: &str| {
        ok(xe(
            &b,
            &[
                "vm-list",
                &format!("name-label={vm}"),
                "params=resident-on",
                "--minimal",
            ],
        ))
        .trim_end()
        .to_string()
    };
    ok(xe(
        &b,
        &["vm-create", "name-label=v2", "memory-static-max=1536MiB"],
    ));
    ok(xe(
        &b,
        &["vm-create", "name-label=v3", "memory-static-max=1GiB"],
    ));
    ok(xe(&a, &["vm-start", "vm=v1", &format!("on={ha}")]));
    ok(xe(&b, &["vm-start", "vm=v2", &format!("on={ha}")]));
    ok(xe(&c, &["vm-start", "vm=v3", &format!("on={hb}")]));
    assert_eq!(
        (free(ha), free(hb), free(hc)),
        (8 * GIB - (4608 << 20), 3 * GIB, 4 * GIB)
    );

    // A VM booted on a CPU with avx512f cannot move to the master, which lacks it.
    let r = xe(&a, &["vm-migrate", "vm=v3", &format!("host-uuid={ha}")]);
    assert_eq!(
        failure(r),
        "The VM is incompatible with the CPU features of this host."
    );
    assert_eq!(resident("v3"), hb);
    // A member with the same CPU takes it: the memory moves with it.
    ok(xe(
        &a,
        &["vm-migrate", "vm=v3", &format!("host-uuid={hc}"), "--live"],
    ));
    assert_eq!(resident("v3"), hc);
    assert_eq!((free(hb), free(hc)), (4 * GIB, 3 * GIB));

    // A start that does not fit is refused with xe's text, --force or not (force skips
    // pre-boot checks in xapi, never memory accounting).
    ok(xe(
        &a,
        &["vm-create", "name-label=big", "memory-static-max=4GiB"],
    ));
    let p = ok(xe(
        &a,
        &["vm-create", "name-label=p", "memory-static-max=512MiB"],
    ));
    ok(xe(
        &a,
        &["vm-start", "vm=p", &format!("on={ha}"), "paused=true"],
    ));
    for force in [false, true] {
        let on = format!("on={ha}");
        let mut args = vec!["vm-start", "vm=big", on.as_str()];
        if force {
            args.push("--force");
        }
        let r = xe(&a, &args);
        assert_eq!(
            r.stderr,
            format!(
                "Not enough server memory is available to perform this operation.\nneeded: {}\navailable: {}\n",
                4 * GIB,
                3 * GIB
            ),
            "{r:?}"
        );
    }
    assert_eq!(resident("big"), "<not in database>");

    // Evacuation refuses before moving anything when one VM cannot move: a paused VM cannot
    // be migrated (xapi checks pool_migrate on every VM first). v1 and v2 would fit elsewhere.
    let r = xe(&a, &["host-evacuate", &format!("uuid={ha}")]);
    assert!(
        r.stderr.ends_with(&format!(
            "\nvm: {} (p)\nexpected: running\nactual: paused\n",
            p.trim_end()
        )),
        "{r:?}"
    );
    assert_eq!(
        failure(r),
        "You attempted an operation on a VM that was not in an appropriate power state at the time; for example, you attempted to start a VM that was already running. The parameters returned are the VM's handle, and the expected and actual VM state at the time of the call."
    );
    assert_eq!(
        (resident("v1"), resident("v2"), resident("p")),
        (ha.into(), ha.into(), ha.into())
    );
    assert_eq!((free(ha), free(hb), free(hc)), (3 * GIB, 4 * GIB, 3 * GIB));

    // Without it, everything moves; memory follows to the hosts that took the VMs.
    ok(xe(
        &a,
        &["vm-shutdown", &format!("uuid={}", p.trim_end()), "--force"],
    ));
    ok(xe(&b, &["host-evacuate", &format!("uuid={ha}")]));
    assert_eq!((resident("v1"), resident("v2")), (hb.into(), hc.into()));
    assert_eq!(
        ok(xe(
            &a,
            &[
                "host-param-get",
                &format!("uuid={ha}"),
                "param-name=resident-vms"
            ]
        )),
        "\n"
    );
    assert_eq!((free(ha), free(hb), free(hc)), (8 * GIB, GIB, 3 * GIB / 2));

    // Back to the master; then a target dies after the plan was made: the move already done
    // is undone, so the evacuation still moves nothing. The master still counts C live when
    // it plans (it takes three missed pings, a second apart, to say otherwise); the first
    // move's replication finds C gone, and the move to C fails with HOST_OFFLINE.
    ok(xe(&a, &["vm-migrate", "vm=v1", &format!("host={ha}")]));
    ok(xe(&a, &["vm-migrate", "vm=v2", &format!("host={ha}")]));
    c.kill9();
    let r = xe(&a, &["host-evacuate", &format!("uuid={ha}")]);
    assert_eq!(
        failure(r),
        "You attempted an operation which involves a host which could not be contacted."
    );
    assert_eq!((resident("v1"), resident("v2")), (ha.into(), ha.into()));
    assert_eq!((free(ha), free(hb)), (8 * GIB - (4608 << 20), 4 * GIB));
}

/// xapi's auto-enable: a member disabled and rebooted comes back enabled, unless it was
/// disabled with `auto-enable=false`; `host-enable` turns the switch back on.
#[test]
fn a_rebooted_member_enables_itself_unless_told_not_to() {
    let port = free_port();
    let master = TestDaemon::start_at("127.0.3.5", port, &[]);
    let member = TestDaemon::start_at("127.0.3.6", port, &[]);
    let uuid = ok(xe(&member, &["host-list", "params=uuid", "--minimal"]));
    let uuid = format!("uuid={}", uuid.trim_end());
    join_at(&member, "127.0.3.5");
    let enabled = || {
        ok(xe(
            &master,
            &["host-param-get", &uuid, "param-name=enabled"],
        ))
    };
    let reboot = |times: usize| {
        ok(xe(&master, &["host-reboot", &uuid]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while member.log().matches("xapid ready").count() < times {
            assert!(std::time::Instant::now() < deadline, "{}", member.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };

    ok(xe(&master, &["host-disable", &uuid, "auto-enable=false"]));
    reboot(2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !member.log().contains("auto-enable is off") {
        assert!(std::time::Instant::now() < deadline, "{}", member.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(enabled(), "false\n");

    ok(xe(&master, &["host-enable", &uuid]));
    ok(xe(&master, &["host-disable", &uuid]));
    reboot(3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while enabled() != "true\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the member stayed disabled:\n{}",
            member.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
