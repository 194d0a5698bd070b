//! `xe` against a real pool of two `xapid` processes on 127.0.0.1 and 127.0.0.2: `pool-join`
//! run on the joining host, then what each host's `xe` sees (reference §6 cases 19 and 21),
//! `vm-migrate`, `pool-eject` and `host-forget`.

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
