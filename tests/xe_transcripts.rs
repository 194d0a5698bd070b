//! Transcript tests: the real `xe` binary against a real `xapid`, exact stdout, stderr and exit
//! code. Fixtures live in `tests/xe/*.t`; each runs twice, once over JSON-RPC and once over
//! XML-RPC, against the same expected transcript, so the two protocols must print identically
//! (each run first checks, with `--debug`, that xe really speaks the protocol it was given).
//!
//! Fixture format, one directive per line:
//! * `# …` comment;
//! * `@vm NAME [api_field=value …]` creates a VM through the XenAPI (`VM.create`) and binds
//!   `{vm:NAME}` to its uuid;
//! * `@message NAME PRIORITY CLASS OBJ-UUID BODY…` creates a message (`message.create`) and
//!   binds `{message:NAME}` to its uuid;
//! * `$ xe ARGS…` runs xe (words split on spaces);
//! * `$= NAME xe ARGS…` runs xe, which must succeed silently on stderr and print one line, and
//!   binds `{NAME}` to that line (e.g. the uuid `vm-create` prints);
//! * `<|text` a line on the command's stdin (without any, stdin is at its end);
//! * `1|text` / `2|text` an expected stdout / stderr line (`1|` alone is an empty line);
//! * `? N` the expected exit code, which ends the command's expectations.
//!
//! `{host}`, `{host-name}`, `{pool}`, `{http-port}`, `{https-port}`, `{password}` and `{state}`
//! are replaced in both commands and expectations.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TestDaemon, PASSWORD};
use xenha::client::{value_text, Connection, Endpoint, Protocol, Session};
use xenha::model::Value;

/// What one xe run produced.
#[derive(Debug, PartialEq)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Run xe with a clean environment pointed at the daemon's socket.
fn xe_env(
    d: &TestDaemon,
    home: &Path,
    protocol: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xe"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XAPI_SOCKET", &d.socket)
        .env("XE_PROTOCOL", protocol);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("running xe");
    run_of(o)
}

/// Like [`xe_env`] with `input` on stdin (xe's `Type 'yes' to continue` prompts read it).
fn xe_input(d: &TestDaemon, home: &Path, protocol: &str, args: &[String], input: &str) -> Run {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_xe"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XAPI_SOCKET", &d.socket)
        .env("XE_PROTOCOL", protocol)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("running xe");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    run_of(child.wait_with_output().expect("running xe"))
}

fn run_of(o: std::process::Output) -> Run {
    Run {
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn session(d: &TestDaemon) -> Session {
    // TestDaemon::start returns once the socket file exists, which can be a moment before the
    // daemon accepts on it (seen under load as ECONNREFUSED), so retry within a deadline.
    let mut session = None;
    common::wait_for(
        "a login over the daemon's socket",
        Duration::from_secs(10),
        || {
            let conn = Connection::new(
                Endpoint::Local {
                    socket: d.socket.clone(),
                    fallback_port: 1,
                },
                Protocol::JsonRpc,
                false,
            );
            session = Session::login_with_password(conn, "root", PASSWORD).ok();
            session.is_some()
        },
    );
    session.expect("logged in")
}

fn first_uuid(s: &mut Session, class: &str) -> String {
    let all = s.call(&format!("{class}.get_all_records"), &[]).unwrap();
    let (_, rec) = all.as_struct().unwrap().first().unwrap();
    value_text(&rec.as_struct().unwrap()["uuid"])
}

fn field(s: &mut Session, class: &str, name: &str) -> String {
    let all = s.call(&format!("{class}.get_all_records"), &[]).unwrap();
    let (_, rec) = all.as_struct().unwrap().first().unwrap();
    value_text(&rec.as_struct().unwrap()[name])
}

/// Create a VM through the API; returns its uuid.
fn create_vm(s: &mut Session, name: &str, fields: &[(&str, &str)]) -> String {
    let mut rec = indexmap::IndexMap::new();
    rec.insert("name_label".to_string(), Value::str(name));
    for (k, v) in fields {
        rec.insert(k.to_string(), Value::str(*v));
    }
    let r = s
        .call("VM.create", &[Value::Struct(rec)])
        .expect("VM.create");
    value_text(&s.call("VM.get_uuid", &[r]).unwrap())
}

/// Create a message through the API, as the daemon's alerts do; returns its uuid.
fn create_message(
    s: &mut Session,
    name: &str,
    priority: i64,
    cls: &str,
    obj: &str,
    body: &str,
) -> String {
    let r = s
        .call(
            "message.create",
            &[
                Value::str(name),
                Value::Int(priority),
                Value::str(cls),
                Value::str(obj),
                Value::str(body),
            ],
        )
        .expect("message.create");
    value_text(&s.call("message.get_uuid", &[r]).unwrap())
}

fn subst(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Check that `XE_PROTOCOL=protocol` makes xe speak exactly that protocol: every request and
/// response a `--debug` run shows is of that encoding. Without this, two runs that print the
/// same could both have been JSON-RPC.
fn assert_speaks(d: &TestDaemon, home: &Path, protocol: &str) {
    let got = xe_env(
        d,
        home,
        protocol,
        &words("host-list --minimal --debug"),
        &[],
    );
    assert_eq!(got.code, 0, "[{protocol}] {got:?}");
    let requests: Vec<&str> = got
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("-> "))
        .collect();
    let responses: Vec<&str> = got
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("<- 200 "))
        .collect();
    // Login, host.get_all_records (or the like), logout: at least a login and one call.
    assert!(
        requests.len() >= 2 && responses.len() == requests.len(),
        "[{protocol}] {}",
        got.stderr
    );
    for (req, resp) in requests.iter().zip(&responses) {
        let ok = match protocol {
            "xmlrpc" => req.contains("<methodCall>") && resp.contains("<methodResponse>"),
            "jsonrpc" => {
                let req: serde_json::Value = serde_json::from_str(req).unwrap_or_default();
                let resp: serde_json::Value = serde_json::from_str(resp).unwrap_or_default();
                req["jsonrpc"] == "2.0" && resp["jsonrpc"] == "2.0"
            }
            other => panic!("no such protocol {other}"),
        };
        assert!(ok, "[{protocol}] not {protocol}: -> {req}\n<- {resp}");
    }
}

/// Play one fixture over one protocol; panics with a readable diff on the first mismatch.
fn play(fixture: &Path, protocol: &str) {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    // After the first login, which waits until the daemon accepts on its socket.
    let mut s = session(&d);
    assert_speaks(&d, home.path(), protocol);
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("host".into(), first_uuid(&mut s, "host"));
    vars.insert("host-name".into(), field(&mut s, "host", "name_label"));
    vars.insert("pool".into(), first_uuid(&mut s, "pool"));
    vars.insert(
        "http-port".into(),
        d.http.rsplit(':').next().unwrap().into(),
    );
    vars.insert(
        "https-port".into(),
        d.https.rsplit(':').next().unwrap().into(),
    );
    vars.insert("password".into(), PASSWORD.into());
    vars.insert("state".into(), d.state_dir().display().to_string());
    let text = std::fs::read_to_string(fixture).unwrap();
    let mut pending: Option<(String, Vec<String>)> = None;
    let (mut out, mut err) = (String::new(), String::new());
    let mut input: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = format!("{}:{}", fixture.display(), n + 1);
        if line.starts_with('#') || line.trim().is_empty() && pending.is_none() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@vm ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap();
            let fields: Vec<(&str, &str)> = words.filter_map(|w| w.split_once('=')).collect();
            let uuid = create_vm(&mut s, name, &fields);
            vars.insert(format!("vm:{name}"), uuid);
        } else if let Some(rest) = line.strip_prefix("@message ") {
            let rest = subst(rest, &vars);
            let w: Vec<&str> = rest.splitn(5, ' ').collect();
            assert_eq!(
                w.len(),
                5,
                "{at}: `@message NAME PRIORITY CLASS OBJ-UUID BODY`"
            );
            let priority = w[1].parse().unwrap_or_else(|_| panic!("{at}: priority"));
            let uuid = create_message(&mut s, w[0], priority, w[2], w[3], w[4]);
            vars.insert(format!("message:{}", w[0]), uuid);
        } else if let Some(rest) = line.strip_prefix("$= ") {
            assert!(pending.is_none(), "{at}: previous command has no `? code`");
            let (name, cmd) = rest
                .split_once(" xe")
                .unwrap_or_else(|| panic!("{at}: `$= NAME xe ARGS`"));
            let args: Vec<String> = subst(cmd, &vars)
                .split_whitespace()
                .map(String::from)
                .collect();
            let got = xe_env(&d, home.path(), protocol, &args, &[]);
            assert!(
                got.code == 0 && got.stderr.is_empty(),
                "{at} [{protocol}]: {got:?}"
            );
            let value = got.stdout.trim_end_matches('\n');
            assert!(
                !value.is_empty() && !value.contains('\n'),
                "{at} [{protocol}]: one line expected, got {:?}",
                got.stdout
            );
            vars.insert(name.to_string(), value.to_string());
        } else if let Some(cmd) = line.strip_prefix("$ xe") {
            assert!(pending.is_none(), "{at}: previous command has no `? code`");
            let cmd = subst(cmd, &vars);
            let args = cmd.split_whitespace().map(String::from).collect();
            pending = Some((format!("{at}: xe{cmd} [{protocol}]"), args));
        } else if let Some(l) = line.strip_prefix("<|") {
            input.get_or_insert_with(String::new).push_str(l);
            input.as_mut().unwrap().push('\n');
        } else if let Some(l) = line.strip_prefix("1|") {
            out.push_str(&subst(l, &vars));
            out.push('\n');
        } else if let Some(l) = line.strip_prefix("2|") {
            err.push_str(&subst(l, &vars));
            err.push('\n');
        } else if let Some(code) = line.strip_prefix("? ") {
            let (what, args) = pending
                .take()
                .unwrap_or_else(|| panic!("{at}: `?` without `$`"));
            let got = match input.take() {
                Some(i) => xe_input(&d, home.path(), protocol, &args, &i),
                None => xe_env(&d, home.path(), protocol, &args, &[]),
            };
            let want = Run {
                stdout: std::mem::take(&mut out),
                stderr: std::mem::take(&mut err),
                code: code.trim().parse().unwrap(),
            };
            assert_eq!(got, want, "{what}");
        } else {
            panic!("{at}: cannot parse {line:?}");
        }
    }
    assert!(
        pending.is_none(),
        "{}: last command has no `? code`",
        fixture.display()
    );
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xe");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    v.sort();
    v
}

/// XE_PROTOCOL names a protocol or is refused: a typo must not quietly mean the default.
#[test]
fn an_unknown_xe_protocol_is_refused() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    assert_eq!(
        xe_env(&d, home.path(), "xml", &words("host-list"), &[]),
        Run {
            stdout: String::new(),
            stderr: "Error: XE_PROTOCOL must be jsonrpc or xmlrpc, not xml\n".into(),
            code: 1
        }
    );
}

#[test]
fn transcripts_over_jsonrpc_and_xmlrpc() {
    let all = fixtures();
    assert!(all.len() >= 4, "fixtures missing");
    for f in &all {
        play(f, "jsonrpc");
        play(f, "xmlrpc");
    }
}

/// Parsed `/proc/cpuinfo`: (vendor, model name, stepping, flags) per logical CPU, by number.
fn proc_cpus() -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    text.split("\n\n")
        .filter(|b| b.contains("processor"))
        .map(|b| {
            let get = |k: &str| {
                b.lines()
                    .find(|l| l.split(':').next().map(str::trim) == Some(k))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default()
            };
            (
                get("vendor_id"),
                get("model name"),
                get("stepping"),
                get("flags"),
            )
        })
        .collect()
}

#[test]
fn host_cpu_list_shows_this_machines_cpus() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "host-cpu-list",
        "params=uuid,number,vendor,modelname,stepping,flags",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = xe_env(&d, home.path(), "jsonrpc", &args, &[]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let cpus = proc_cpus();
    let records: Vec<&str> = r.stdout.split("\n\n\n").filter(|s| !s.is_empty()).collect();
    assert_eq!(records.len(), cpus.len(), "{}", r.stdout);
    assert!(r.stdout.ends_with("\n\n\n"));
    let mut seen = Vec::new();
    for rec in records {
        let lines: Vec<&str> = rec.lines().collect();
        let keys: Vec<&str> = lines
            .iter()
            .map(|l| l.split(':').next().unwrap().trim())
            .collect();
        assert_eq!(
            keys,
            [
                "uuid ( RO)",
                "number ( RO)",
                "vendor ( RO)",
                "modelname ( RO)",
                "stepping ( RO)",
                "flags ( RO)"
            ]
        );
        // The widest key is `modelname ( RO)` (15), so keys align to 19 columns.
        assert!(
            lines[0].starts_with("uuid ( RO)         : "),
            "{}",
            lines[0]
        );
        assert!(
            lines[5].starts_with("        flags ( RO): "),
            "{}",
            lines[5]
        );
        let val = |i: usize| lines[i].split_once(": ").unwrap().1.to_string();
        let n: usize = val(1).parse().unwrap();
        let (vendor, model, stepping, flags) = &cpus[n];
        assert_eq!(&val(2), vendor);
        assert_eq!(&val(3), model);
        assert_eq!(&val(4), stepping);
        assert_eq!(&val(5), flags);
        seen.push(n);
    }
    seen.sort();
    assert_eq!(seen, (0..cpus.len()).collect::<Vec<_>>());
}

#[test]
fn minimal_lists_every_vm_on_one_line() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let mut s = session(&d);
    let mut want: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| create_vm(&mut s, n, &[]))
        .collect();
    create_vm(&mut s, "tmpl", &[("is_a_template", "true")]);
    let r = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &["vm-list".into(), "--minimal".into()],
        &[],
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(r.stdout.ends_with('\n') && r.stdout.matches('\n').count() == 1);
    let mut got: Vec<String> = r.stdout.trim_end().split(',').map(String::from).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "templates are not VMs for vm-list");
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// `minimal=` from ~/.xe or XE_EXTRA_ARGS is parsed as xapi parses it: `true` or `false`, and
/// anything else (`yes`, `1`, `TRUE`) an internal error, never silently "not minimal".
#[test]
fn minimal_from_the_rc_file_or_extra_args_is_true_or_false() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let uuid = {
        let mut s = session(&d);
        create_vm(&mut s, "web", &[])
    };
    let refused = Run {
        stdout: String::new(),
        stderr: "The server failed to handle your request, due to an internal error. The given \
                 message may give details useful for debugging the problem.\n\
                 message: Invalid_argument(\"bool_of_string\")\n"
            .into(),
        code: 1,
    };
    let minimal = Run {
        stdout: format!("{uuid}\n"),
        stderr: String::new(),
        code: 0,
    };
    let rc = home.path().join(".xe");
    for (rc_text, extra, want) in [
        ("minimal=yes\n", "", &refused),
        ("", "minimal=1", &refused),
        ("minimal=TRUE\n", "", &refused),
        ("minimal=true\n", "", &minimal),
        ("", "minimal=true", &minimal),
    ] {
        std::fs::write(&rc, rc_text).unwrap();
        let env: Vec<(&str, &str)> = if extra.is_empty() {
            vec![]
        } else {
            vec![("XE_EXTRA_ARGS", extra)]
        };
        let got = xe_env(&d, home.path(), "jsonrpc", &words("vm-list"), &env);
        assert_eq!(&got, want, "~/.xe {rc_text:?}, XE_EXTRA_ARGS {extra:?}");
    }
}

#[test]
fn password_file_rc_file_and_extra_args() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let port = d.http.rsplit(':').next().unwrap().to_string();
    let pwf = home.path().join("pw");
    // Over TCP the password matters (the Unix socket trusts the caller as root).
    std::fs::write(&pwf, format!("root\n{PASSWORD}\n")).unwrap();
    let args = words(&format!(
        "-s localhost --nossl -p {port} -pwf {} host-is-in-emergency-mode",
        pwf.display()
    ));
    let ok = xe_env(&d, home.path(), "jsonrpc", &args, &[]);
    assert_eq!(
        ok,
        Run {
            stdout: "false\n".into(),
            stderr: String::new(),
            code: 0
        }
    );
    std::fs::write(&pwf, "root\nwrong\n").unwrap();
    let bad = xe_env(&d, home.path(), "jsonrpc", &args, &[]);
    assert_eq!(
        bad,
        Run {
            stdout: String::new(),
            stderr: "Authentication failed\nFor usage run: 'xe help'\n".into(),
            code: 1
        }
    );
    // ~/.xe supplies the connection and, for unknown keys, arguments (minimal=true).
    std::fs::write(
        home.path().join(".xe"),
        format!("server=localhost\nport={port}\nnossl=true\npassword={PASSWORD}\nminimal=true\n"),
    )
    .unwrap();
    let host = {
        let mut s = session(&d);
        first_uuid(&mut s, "host")
    };
    let rc = xe_env(&d, home.path(), "jsonrpc", &words("host-list"), &[]);
    assert_eq!(
        rc,
        Run {
            stdout: format!("{host}\n"),
            stderr: String::new(),
            code: 0
        }
    );
    // XE_EXTRA_ARGS beats ~/.xe, the command line beats both.
    let extra = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words("host-list"),
        &[("XE_EXTRA_ARGS", "password=wrong")],
    );
    assert_eq!(
        extra.stderr,
        "Authentication failed\nFor usage run: 'xe help'\n"
    );
    let argv = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("host-list -pw {PASSWORD}")),
        &[("XE_EXTRA_ARGS", "password=wrong")],
    );
    assert_eq!(argv.stdout, format!("{host}\n"));
    // A malformed ~/.xe is ignored, with xe's warning.
    std::fs::write(
        home.path().join(".xe"),
        "server=nowhere\nthis line has no equals sign\n",
    )
    .unwrap();
    let warn = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words("host-list --minimal"),
        &[],
    );
    assert_eq!(
        warn,
        Run {
            stdout: format!("{host}\n"),
            stderr: "Error parsing rc file. No defaults loaded\n".into(),
            code: 0
        }
    );
}

#[test]
fn https_without_verification_and_against_a_ca_file() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let port = d.https.rsplit(':').next().unwrap().to_string();
    let host = {
        let mut s = session(&d);
        first_uuid(&mut s, "host")
    };
    let base = format!("-s localhost -p {port} -pw {PASSWORD} host-list --minimal");
    let r = xe_env(&d, home.path(), "jsonrpc", &words(&base), &[]);
    assert_eq!(
        r,
        Run {
            stdout: format!("{host}\n"),
            stderr: String::new(),
            code: 0
        }
    );
    let pem = d.state_dir().join("xapi-ssl.pem");
    let pinned = xe_env(
        &d,
        home.path(),
        "xmlrpc",
        &words(&format!("{base} --cacert {}", pem.display())),
        &[],
    );
    assert_eq!(pinned.stdout, format!("{host}\n"));
    // A CA file that does not vouch for the server must fail like an unreachable server.
    let other = home.path().join("other.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&other, cert.cert.pem()).unwrap();
    let wrong = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("{base} --cacert {}", other.display())),
        &[],
    );
    assert_eq!(
        wrong,
        Run {
            stdout: String::new(),
            stderr: "Unable to contact server. Please check server and port settings.\n".into(),
            code: 1
        }
    );
    // A CA file that cannot be used is named with its fault, from the flag or XE_CACERT, as a
    // bad `--pin-cert` file is, and nothing is contacted.
    let missing = home.path().join("missing.pem");
    let garbage = home.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let bad_ca = |path: &Path, via_env: bool| {
        let (extra, env) = if via_env {
            (String::new(), vec![("XE_CACERT", path.to_str().unwrap())])
        } else {
            (format!(" --cacert {}", path.display()), vec![])
        };
        xe_env(
            &d,
            home.path(),
            "jsonrpc",
            &words(&format!("{base}{extra}")),
            &env,
        )
    };
    for via_env in [false, true] {
        assert_eq!(
            bad_ca(&missing, via_env),
            Run {
                stdout: String::new(),
                stderr: format!(
                    "Error: {}: No such file or directory (os error 2)\n",
                    missing.display()
                ),
                code: 1
            }
        );
        assert_eq!(
            bad_ca(&garbage, via_env),
            Run {
                stdout: String::new(),
                stderr: format!(
                    "Error: {}: no PEM certificate in the file\n",
                    garbage.display()
                ),
                code: 1
            }
        );
    }
    let pin_missing = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("{base} --pin-cert {}", missing.display())),
        &[],
    );
    assert_eq!(
        pin_missing.stderr,
        format!(
            "Error: {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

/// `--pin-cert`/`XE_PIN_CERT` accept exactly one certificate, whatever names it carries: the
/// daemon's certificate names its hostname, localhost and 127.0.0.1, and here it is reached by
/// another loopback address, which `--cacert` (a CA check with hostname) refuses.
#[test]
fn a_pinned_certificate_is_accepted_by_any_name_and_nothing_else_is() {
    use sha2::Digest;
    let ip = "127.0.4.10";
    let port = std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = TestDaemon::start_at(ip, port, &[]);
    let home = tempfile::tempdir().unwrap();
    let https = d.https.rsplit(':').next().unwrap().to_string();
    let host = {
        let mut s = session(&d);
        first_uuid(&mut s, "host")
    };
    let base = format!("-s {ip} -p {https} -pw {PASSWORD} host-list --minimal");
    let pem = d.state_dir().join("xapi-ssl.pem");
    let unreachable = Run {
        stdout: String::new(),
        stderr: "Unable to contact server. Please check server and port settings.\n".into(),
        code: 1,
    };
    let found = Run {
        stdout: format!("{host}\n"),
        stderr: String::new(),
        code: 0,
    };
    let run = |extra: &str, env: &[(&str, &str)]| {
        xe_env(
            &d,
            home.path(),
            "jsonrpc",
            &words(&format!("{base} {extra}")),
            env,
        )
    };
    assert_eq!(
        run(&format!("--cacert {}", pem.display()), &[]),
        unreachable
    );
    assert_eq!(run(&format!("--pin-cert {}", pem.display()), &[]), found);
    // The same pin as a fingerprint, on the command line and from the environment.
    let der = {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        CertificateDer::from_pem_file(&pem).unwrap()
    };
    let hex: String = sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(run(&format!("--pin-cert sha256:{hex}"), &[]), found);
    assert_eq!(run("", &[("XE_PIN_CERT", &format!("sha256:{hex}"))]), found);
    // A pin overrides a CA file that would refuse the name.
    assert_eq!(
        run(
            &format!("--cacert {} --pin-cert sha256:{hex}", pem.display()),
            &[]
        ),
        found
    );
    // Any other certificate, even one for the right names, is refused.
    let other = home.path().join("other.pem");
    let cert = rcgen::generate_simple_self_signed(vec![ip.into(), "localhost".into()]).unwrap();
    std::fs::write(&other, cert.cert.pem()).unwrap();
    assert_eq!(
        run(&format!("--pin-cert {}", other.display()), &[]),
        unreachable
    );
    let wrong = format!("sha256:{}", "00".repeat(32));
    assert_eq!(run("", &[("XE_PIN_CERT", &wrong)]), unreachable);
    assert_eq!(
        run("--pin-cert sha256:1234", &[]),
        Run {
            stdout: String::new(),
            stderr:
                "Error: certificate pin 'sha256:1234' is not sha256: followed by 64 hex digits\n"
                    .into(),
            code: 1
        }
    );
}

/// Reference §6 case 12: a missing required parameter is reported before any connection, so
/// it needs neither a server nor a login. Here the local socket does not exist and nothing
/// listens on the fallback port; contacting anything would print a connection error instead.
#[test]
fn missing_parameters_are_reported_without_contacting_a_server() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let no_server = [("XAPI_SOCKET", "/nonexistent/xapi")];
    let r = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!(
            "-s 127.0.0.1 -p {closed} pool-emergency-reset-master"
        )),
        &no_server,
    );
    assert_eq!(
        r,
        Run {
            stdout: String::new(),
            stderr: "Required parameter not found: master-address\nFor usage run: 'xe help'\n"
                .into(),
            code: 1
        }
    );
    // The same setup with the parameter given does try to connect, and fails doing so.
    let r = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!(
            "-s 127.0.0.1 -p {closed} pool-emergency-reset-master master-address=10.0.0.1"
        )),
        &no_server,
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error: Connection refused (calling connect )\n")
    );
}

#[test]
fn unreachable_servers() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let plain = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("-s 127.0.0.1 -p {closed} host-list")),
        &[("XAPI_SOCKET", "/nonexistent/xapi")],
    );
    assert_eq!(
        plain,
        Run {
            stdout: String::new(),
            stderr: "Error: Connection refused (calling connect )\n".into(),
            code: 1
        }
    );
    let tls = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("-s localhost -p {closed} host-list")),
        &[],
    );
    assert_eq!(
        tls,
        Run {
            stdout: String::new(),
            stderr: "Unable to contact server. Please check server and port settings.\n".into(),
            code: 1
        }
    );
}

#[test]
fn output_json_and_table_are_opt_in() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let mut s = session(&d);
    let uuid = create_vm(&mut s, "web", &[]);
    let j = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words("vm-list --output json"),
        &[],
    );
    assert_eq!(j.code, 0, "{}", j.stderr);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"uuid": uuid, "name-label": "web", "power-state": "halted"}])
    );
    let t = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words("vm-list --output table"),
        &[],
    );
    assert_eq!(t.code, 0);
    assert!(
        t.stdout.contains("name-label") && t.stdout.contains("web") && t.stdout.contains(&uuid)
    );
    // `--minimal` would drop the JSON or table and print an empty line: refused instead.
    for (format, rc) in [("json", ""), ("table", "minimal=true\n")] {
        std::fs::write(home.path().join(".xe"), rc).unwrap();
        let extra = if rc.is_empty() { " --minimal" } else { "" };
        let r = xe_env(
            &d,
            home.path(),
            "jsonrpc",
            &words(&format!("vm-list --output {format}{extra}")),
            &[],
        );
        assert_eq!(
            r,
            Run {
                stdout: String::new(),
                stderr: format!("Error: --output {format} cannot be combined with --minimal\n"),
                code: 1
            }
        );
    }
}

#[test]
fn bash_completion_completes_commands_parameters_and_uuids() {
    let d = TestDaemon::start();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_xe"), bin.path().join("xe")).unwrap();
    let (host, name, vm) = {
        let mut s = session(&d);
        // A name-label with a comma and a space: xe escapes the comma in --minimal output, and
        // the completion must give it back whole, quoted for the shell.
        let vm = create_vm(&mut s, "web, db 1", &[]);
        (
            first_uuid(&mut s, "host"),
            field(&mut s, "host", "name_label"),
            vm,
        )
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/xe.bash");
    // Readline's view: COMP_LINE up to the cursor; replies replace the text after the last
    // word break (`=` is one). Each reply is printed in brackets, so its trailing space shows.
    let probe = r#"
source "$1"
t() {
    COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _xe
    for r in "${COMPREPLY[@]}"; do printf '[%s]' "$r"; done; echo
}
t "xe host-cpu-l"
t "xe pool-ha-enable "
t "xe host-param-list uuid="
t "xe vm-param-get uuid=x param-name=ha-r"
t "xe host-disable host="
t "xe --nossl host-cpu-l"
t "xe -s somewhere -p 443 host-cpu-l"
t "xe help host-cpu-"
t "xe help host-cpu-list "
t "xe vm-start vm=web"
t "xe vm-start vm="
t "xe --no"
t "xe vm-list --m"
t "xe -pw "
t "xe --output t"
t "xe vm-start vm=web\,\ d"
t "xe vm-start vm=web\,\ "
t "xe vm-start vm=web\,\ db\ 1 pa"
"#;
    let o = Command::new("bash")
        .args(["-c", probe, "probe", script.to_str().unwrap()])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("XAPI_SOCKET", &d.socket)
        .output()
        .unwrap();
    // Finished words end in a space (readline adds none under `-o nospace`); parameter names
    // ending in `=` or `:` do not. A name-label comes back quoted, also after an escaped space.
    let cpu = "[host-cpu-list ]".to_string();
    let web = "[web\\,\\ db\\ 1 ]";
    let want = [
        cpu.clone(),
        "[heartbeat-sr-uuids=][ha-config:]".into(),
        format!("[{host} ]"),
        "[ha-restart-priority ]".into(),
        format!("[{host} ][{name} ]"),
        cpu.clone(),
        cpu,
        "[host-cpu-info ][host-cpu-list ][host-cpu-param-get ][host-cpu-param-list ]".into(),
        String::new(),
        web.into(),
        format!("[{vm} ]{web}"),
        "[--nossl ]".into(),
        "[--minimal ][--multiple ]".into(),
        String::new(),
        "[table ]".into(),
        web.into(),
        web.into(),
        "[paused=]".into(),
    ];
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        want.join("\n") + "\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn host_cpu_info_prints_the_cpu_info_map_without_markers() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let (host, info) = {
        let mut s = session(&d);
        let host = first_uuid(&mut s, "host");
        let all = s.call("host.get_all_records", &[]).unwrap();
        let (_, rec) = all.as_struct().unwrap().first().unwrap();
        let info: Vec<(String, String)> = rec.as_struct().unwrap()["cpu_info"]
            .as_struct()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        (host, info)
    };
    assert!(info.iter().any(|(k, _)| k == "cpu_count"), "{info:?}");
    let w = 4 + info.iter().map(|(k, _)| k.len()).max().unwrap();
    let mut want = String::new();
    for (i, (k, v)) in info.iter().enumerate() {
        if i == 0 {
            want.push_str(&format!("{k:<w$}: {v}\n"));
        } else {
            want.push_str(&format!("{k:>w$}: {v}\n"));
        }
    }
    want.push_str("\n\n");
    for args in [
        "host-cpu-info".to_string(),
        format!("host-cpu-info uuid={host}"),
    ] {
        let r = xe_env(&d, home.path(), "xmlrpc", &words(&args), &[]);
        assert_eq!(
            r,
            Run {
                stdout: want.clone(),
                stderr: String::new(),
                code: 0
            },
            "{args}"
        );
    }
}

#[test]
fn debug_on_fail_shows_the_calls_only_on_failure_and_never_the_password() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let port = d.http.rsplit(':').next().unwrap().to_string();
    let base = format!("-s localhost --nossl -p {port} -pw {PASSWORD} --debug-on-fail");
    let ok = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("{base} host-is-in-emergency-mode")),
        &[],
    );
    assert_eq!(
        ok,
        Run {
            stdout: "false\n".into(),
            stderr: String::new(),
            code: 0
        }
    );
    let bad = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words(&format!("{base} pool-ha-disable")),
        &[],
    );
    assert_eq!(bad.code, 1);
    let (first, rest) = bad
        .stderr
        .split_once("\nDebug info:\n\n")
        .expect("debug section");
    assert_eq!(
        first,
        "The operation could not be performed because HA is not enabled on the Pool\n"
    );
    assert!(rest.contains("\"method\":\"pool.disable_ha\""), "{rest}");
    assert!(!rest.contains(PASSWORD), "{rest}");
}

/// `--debug` and `--debug-on-fail` show every call but no password of any kind: not the login's,
/// not `pool.join`'s master password, not a local user's, over either protocol.
#[test]
fn debug_output_masks_every_password_parameter() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let secrets = ["join-secret-1", "carol-secret-2", "carol-secret-3"];
    for protocol in ["jsonrpc", "xmlrpc"] {
        // Shows what was called (`method`), masked, and nothing secret; returns stdout.
        let run = |args: String, method: &str, code: i32| {
            let r = xe_env(
                &d,
                home.path(),
                protocol,
                &words(&format!("-pw {PASSWORD} {args}")),
                &[],
            );
            let what = format!("[{protocol}] xe {args}: {r:?}");
            assert_eq!(r.code, code, "{what}");
            assert!(r.stderr.contains(method), "{what}");
            assert!(r.stderr.contains("******"), "{what}");
            for s in secrets.iter().chain([&PASSWORD]) {
                assert!(!r.stderr.contains(s), "{s} shown: {what}");
            }
            r.stdout
        };
        // Nothing listens at the master address, so xapid's join fails and xe reports it on
        // stdout, exit 0, as xe does for a master it cannot contact.
        let joined = run(
            format!(
                "--debug pool-join master-address=127.0.11.1 master-username=root master-password={}",
                secrets[0]
            ),
            "pool.join",
            0,
        );
        assert!(
            joined.starts_with("Host cannot contact destination host"),
            "{joined}"
        );
        let user = format!("carol-{protocol}");
        run(
            format!(
                "--debug-on-fail user-add user-name={user} user-password={} role=emperor",
                secrets[1]
            ),
            "user.create_local",
            1,
        );
        let uuid = run(
            format!(
                "--debug user-add user-name={user} user-password={} role=read-only",
                secrets[1]
            ),
            "user.create_local",
            0,
        );
        run(
            format!(
                "--debug user-set-password uuid={} user-password={}",
                uuid.trim(),
                secrets[2]
            ),
            "user.change_password",
            0,
        );
    }
}

#[test]
fn multiple_failures_are_listed_on_stdout() {
    let d = TestDaemon::start();
    let home = tempfile::tempdir().unwrap();
    let mut s = session(&d);
    let mut vms: Vec<String> = ["a", "b"]
        .iter()
        .map(|n| create_vm(&mut s, n, &[]))
        .collect();
    let first = xe_env(
        &d,
        home.path(),
        "jsonrpc",
        &words("vm-start --multiple"),
        &[],
    );
    assert_eq!(
        first,
        Run {
            stdout: String::new(),
            stderr: String::new(),
            code: 0
        }
    );
    let again = xe_env(
        &d,
        home.path(),
        "xmlrpc",
        &words("vm-start --multiple"),
        &[],
    );
    assert_eq!((again.code, again.stderr.as_str()), (1, ""));
    let mut failed: Vec<String> = again
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("operation failed on "))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    failed.sort();
    vms.sort();
    assert_eq!(failed, vms, "{}", again.stdout);
    // Each message is the error's doc and parameters, refs as `uuid (name-label)`.
    for uuid in &vms {
        let head = format!("operation failed on {uuid}: You attempted an operation on a VM");
        assert!(again.stdout.contains(&head), "{}", again.stdout);
    }
    let mut refs: Vec<&str> = again
        .stdout
        .lines()
        .filter(|l| l.starts_with("vm: "))
        .collect();
    refs.sort();
    let mut want: Vec<String> = Vec::new();
    for n in ["a", "b"] {
        let r = s.call("VM.get_by_name_label", &[n.into()]).unwrap();
        let r = r.as_array().unwrap()[0].clone();
        let u = value_text(&s.call("VM.get_uuid", &[r]).unwrap());
        want.push(format!("vm: {u} ({n})"));
    }
    want.sort();
    assert_eq!(refs, want, "{}", again.stdout);
}

/// Run `shell -c script` with xe on PATH and the daemon's socket.
fn shell(d: &TestDaemon, sh: &str, script: &str) -> String {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_xe"), bin.path().join("xe")).unwrap();
    let o = Command::new(sh)
        .args(["-c", script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("XAPI_SOCKET", &d.socket)
        .output()
        .unwrap_or_else(|e| panic!("{sh}: {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into()
}

#[test]
fn fish_completion_completes_commands_parameters_and_uuids() {
    if !common::have_shell(
        "fish",
        "fish_completion_completes_commands_parameters_and_uuids",
    ) {
        return;
    }
    let d = TestDaemon::start();
    let (host, vm) = {
        let mut s = session(&d);
        let vm = create_vm(&mut s, "web, db 1", &[]);
        (first_uuid(&mut s, "host"), vm)
    };
    let out = shell(
        &d,
        "fish",
        "source completions/xe.fish; for l in 'xe pool-ha-ena' 'xe pool-ha-enable ' 'xe host-param-list uuid=' \
         'xe --nossl pool-ha-ena' 'xe -s somewhere pool-ha-ena' 'xe help pool-ha-ena' 'xe help pool-ha-enable ' \
         'xe vm-start vm=' 'xe --no' 'xe -s '; complete -C $l; end",
    );
    let cmd = "pool-ha-enable\tEnable HA on this Pool\n";
    assert_eq!(
        out,
        format!(
            "{cmd}ha-config:\nheartbeat-sr-uuids=\nuuid={host}\n{cmd}{cmd}{cmd}vm={vm}\nvm=web, db 1\n--nossl\n"
        )
    );
}

#[test]
fn zsh_completion_completes_commands_parameters_and_uuids() {
    if !common::have_shell(
        "zsh",
        "zsh_completion_completes_commands_parameters_and_uuids",
    ) {
        return;
    }
    let d = TestDaemon::start();
    let (host, vm) = {
        let mut s = session(&d);
        let vm = create_vm(&mut s, "web, db 1", &[]);
        (first_uuid(&mut s, "host"), vm)
    };
    // zsh's completion builtins only exist inside the line editor, so stand-ins print what
    // the function would offer for the current PREFIX.
    let out = shell(
        &d,
        "zsh",
        r#"
offer() { local -a m=(${(M)${(P)1}:#${PREFIX}*}); (( ${#m} )) && print -l -- $m; return 0 }
compadd() { while [[ $1 == -* && $1 != -a ]]; do shift 2; done; [[ $1 == -a ]] && offer $2 }
_describe() { offer $2 }
compset() { PREFIX=${PREFIX#*=} }
PREFIX=none
source completions/_xe
t() { words=("${(@)argv[1,-2]}"); CURRENT=${#words}; PREFIX=$argv[-1]; _xe }
t xe pool-ha-ena pool-ha-ena
t xe pool-ha-enable "" ""
t xe host-param-list uuid= uuid=
t xe --nossl pool-ha-ena pool-ha-ena
t xe -s somewhere pool-ha-ena pool-ha-ena
t xe help pool-ha-ena pool-ha-ena
t xe help pool-ha-enable "" ""
t xe vm-start vm= vm=
t xe --no --no
t xe -s "" ""
"#,
    );
    let cmd = "pool-ha-enable:Enable HA on this Pool\n";
    assert_eq!(
        out,
        format!(
            "{cmd}heartbeat-sr-uuids=\nha-config:\n{host}\n{cmd}{cmd}{cmd}{vm}\nweb, db 1\n--nossl\n"
        )
    );
}

#[test]
fn dangerous_commands_ask_only_on_a_terminal() {
    let d = TestDaemon::start();
    let run_on_pty = |answer: &str| {
        // `script` gives xe a pseudo-terminal as stdin and stderr; the answer is typed into it.
        let mut c = Command::new("script")
            .args([
                "-qec",
                &format!("{} host-emergency-ha-disable", env!("CARGO_BIN_EXE_xe")),
                "/dev/null",
            ])
            .env("XAPI_SOCKET", &d.socket)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let o = c.wait_with_output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, yes) = run_on_pty("y");
    assert_eq!(code, Some(1));
    assert!(yes.contains("Continue?"), "{yes}");
    // Confirmed, so the call was made and the server's answer printed.
    assert!(
        yes.contains("The operation could not be performed because HA is not enabled on the Pool"),
        "{yes}"
    );
    let (code, no) = run_on_pty("n");
    assert_eq!(code, Some(1));
    assert!(
        no.contains("Error: This operation is dangerous and may cause data loss."),
        "{no}"
    );
    assert!(!no.contains("HA is not enabled"), "{no}");
}

#[test]
fn ha_enable_and_disable_show_a_spinner_only_on_a_terminal() {
    let d = TestDaemon::start();
    let xe = env!("CARGO_BIN_EXE_xe");
    // `script` runs the command on a pseudo-terminal and copies what it shows to our stdout.
    let on_pty = |cmd: &str| -> String {
        let o = Command::new("script")
            .args(["-qec", cmd, "/dev/null"])
            .env("XAPI_SOCKET", &d.socket)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script(1) from util-linux");
        String::from_utf8_lossy(&o.stdout).into()
    };
    let refused = "The operation could not be performed because HA is not enabled on the Pool";
    let tty = on_pty(&format!("{xe} pool-ha-disable"));
    assert!(tty.contains("Disabling HA on the pool"), "{tty:?}");
    assert!(tty.ends_with(&format!("{refused}\r\n")), "{tty:?}");
    let tty = on_pty(&format!("{xe} pool-ha-enable ha-config:timeout=90"));
    assert!(tty.contains("Enabling HA on the pool"), "{tty:?}");
    // With stdin or stderr not a terminal, only xe's own text.
    for redirect in ["< /dev/null", "2>&1 | cat"] {
        let plain = on_pty(&format!("{xe} pool-ha-disable {redirect}"));
        assert_eq!(plain, format!("{refused}\r\n"), "{redirect}");
    }
    let plain = on_pty(&format!(
        "{xe} pool-ha-enable ha-config:timeout=90 < /dev/null"
    ));
    assert!(!plain.contains("Enabling HA"), "{plain:?}");
}
