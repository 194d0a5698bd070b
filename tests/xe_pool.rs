//! `xe` against a real pool of two `xapid` processes on 127.0.0.1 and 127.0.0.2: `pool-join`
//! run on the joining host, then what each host's `xe` sees (reference §6 cases 19 and 21).

mod common;

use std::process::Command;

use common::{TestDaemon, PASSWORD};

#[derive(Debug, PartialEq)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Run xe with a clean environment; `socket` is the local socket the default server uses.
fn xe(socket: &TestDaemon, args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xe"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XAPI_SOCKET", &socket.socket)
        .output()
        .expect("running xe");
    Run {
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        code: o.status.code().unwrap_or(-1),
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

    // A VM created and started through the member's socket runs where it was asked to (on
    // the master: xapid cannot start VMs on members yet).
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
            &format!("on={}", master_host.trim_end()),
        ],
    ));
    assert_eq!(
        ok(xe(&member, &["vm-list", "params=resident-on", "--minimal"])),
        master_host
    );
    ok(xe(&master, &["vm-shutdown", "vm=app"]));
    ok(xe(&master, &["vm-destroy", &format!("uuid={vm}")]));
    assert_eq!(ok(xe(&member, &["vm-list", "--minimal"])), "\n");
}

/// `vm-migrate` moves a running VM to the other host (`VM.pool_migrate`), and refuses a move
/// the target has no memory for with xapi's error text.
#[test]
#[ignore = "needs VM.pool_migrate in xapid (being added on main)"]
fn vm_migrate_moves_a_running_vm() {
    let (master, member, _) = two_hosts();
    let master_host = ok(xe(&master, &["host-list", "params=uuid", "--minimal"]));
    let member_host = ok(xe(&member, &["host-list", "params=uuid", "--minimal"]));
    join(&member);
    ok(xe(
        &master,
        &["vm-create", "name-label=app", "memory-static-max=1GiB"],
    ));
    ok(xe(
        &master,
        &[
            "vm-start",
            "vm=app",
            &format!("on={}", master_host.trim_end()),
        ],
    ));
    ok(xe(
        &master,
        &[
            "vm-migrate",
            "vm=app",
            &format!("host={}", member_host.trim_end()),
            "--live",
        ],
    ));
    assert_eq!(
        ok(xe(&master, &["vm-list", "params=resident-on", "--minimal"])),
        member_host
    );
    assert_eq!(
        ok(xe(&master, &["vm-list", "params=power-state", "--minimal"])),
        "running\n"
    );
    // Too big for any host: refused, and the VM stays where it is.
    ok(xe(
        &master,
        &["vm-create", "name-label=big", "memory-static-max=7GiB"],
    ));
    ok(xe(
        &master,
        &[
            "vm-start",
            "vm=big",
            &format!("on={}", master_host.trim_end()),
        ],
    ));
    let r = xe(
        &master,
        &[
            "vm-migrate",
            "vm=big",
            &format!("host={}", member_host.trim_end()),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("Not enough server memory is available to perform this operation.\n"),
        "{r:?}"
    );
    assert_eq!(
        ok(xe(
            &master,
            &[
                "vm-list",
                "name-label=big",
                "params=resident-on",
                "--minimal"
            ]
        )),
        master_host
    );
}

/// `pool-eject --force` sends a member away (xapi's text, and the master forgets it);
/// `host-forget --force` drops a dead member's record.
#[test]
#[ignore = "needs pool.eject and host.destroy in xapid"]
fn pool_eject_and_host_forget_remove_a_member() {
    let (master, member, port) = two_hosts();
    let master_host = ok(xe(&master, &["host-list", "params=uuid", "--minimal"]));
    let member_host = ok(xe(&member, &["host-list", "params=uuid", "--minimal"]));
    join(&member);
    assert_eq!(
        ok(xe(
            &master,
            &[
                "pool-eject",
                &format!("host-uuid={}", member_host.trim_end()),
                "--force"
            ],
        )),
        "Specified host will attempt to restart as a master of a new pool in 10. seconds...\n"
    );
    assert_eq!(
        ok(xe(&master, &["host-list", "params=uuid", "--minimal"])),
        master_host
    );

    // A third host joins, dies and is forgotten.
    let mut third = TestDaemon::start_at("127.0.0.3", port, &[]);
    let third_host = ok(xe(&third, &["host-list", "params=uuid", "--minimal"]));
    join(&third);
    third.kill9();
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
