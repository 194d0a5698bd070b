//! `xe`: the xe-compatible command line.
//!
//! Real xe is a thin client whose server parses, runs and formats everything; this `xe` does the
//! same work client-side over the XenAPI, so it runs against real XenServer/XCP-ng hosts and
//! against `xapid` alike, and prints what real xe prints. The pieces:
//!
//! * [`args`]: the two-stage argument grammar, `~/.xe` and `XE_EXTRA_ARGS`;
//! * [`table`]: the command table, the one source for parsing, help, man page and completions;
//! * [`help`]: `xe help` and the usage text;
//! * [`records`]: API records to xe's string fields, driven by the model;
//! * [`printer`]: xe's byte layout and `--minimal`;
//! * [`commands`]: the implementations;
//! * [`errors`]: every failure and its exact text;
//! * [`generate`]: completions and the man page, from the table.
//!
//! It must never print anything a script could see differently from real xe unless asked for by
//! an option real xe does not have (`--output`, `--xmlrpc`, `--socket`, `--cacert`, `--pin-cert`).

pub mod args;
pub mod commands;
pub mod errors;
pub mod generate;
pub mod globals;
pub mod help;
pub mod printer;
pub mod records;
pub mod table;

use std::io::Write;
use std::path::PathBuf;

use crate::client::pin::Fingerprint;
use crate::client::{Connection, Debug, Endpoint, Protocol, Session, TlsVerify, DEFAULT_SOCKET};
use args::{parse_command, parse_globals, Env, GlobalsError};
use commands::{Extras, Format};
use errors::{CliError, TransportKind};
use printer::Printer;

/// Options of ours that real xe does not have, taken out of argv before xe's grammar sees it.
#[derive(Clone, Debug, Default)]
struct Ours {
    format: Format,
    socket: Option<String>,
    protocol: Option<Protocol>,
    cacert: Option<String>,
    pin_cert: Option<String>,
}

fn take_ours(argv: &[String], env: &Env) -> Result<(Vec<String>, Ours), String> {
    let mut o = Ours {
        socket: env.socket.clone(),
        cacert: env.cacert.clone(),
        pin_cert: env.pin_cert.clone(),
        // A misspelt value silently meaning "the default" would hide which protocol was spoken;
        // set but empty counts as unset, as shells make it easy to leave so.
        protocol: match env.protocol.as_deref() {
            Some("xmlrpc") => Some(Protocol::XmlRpc),
            Some("jsonrpc") => Some(Protocol::JsonRpc),
            None | Some("") => None,
            Some(other) => {
                return Err(format!(
                    "XE_PROTOCOL must be jsonrpc or xmlrpc, not {other}"
                ))
            }
        },
        ..Ours::default()
    };
    let mut flagged = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let ours_flag = globals::find(name, globals::Stage::Ours);
        if ours_flag.is_some_and(|g| g.value.is_some()) {
            let v = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    argv.get(i)
                        .cloned()
                        .ok_or_else(|| format!("{name} needs a value"))?
                }
            };
            match name {
                "--output" => {
                    o.format = Format::parse(&v).ok_or_else(|| {
                        let [first @ .., last] = Format::NAMES.map(|(n, _)| n);
                        format!("--output must be {} or {last}, not {v}", first.join(", "))
                    })?
                }
                "--socket" => o.socket = Some(v),
                "--pin-cert" => o.pin_cert = Some(v),
                "--cacert" => o.cacert = Some(v),
                other => unreachable!("{other} is in the global table but has no handler"),
            }
        } else if a == "--xmlrpc" || a == "--jsonrpc" {
            let p = if a == "--xmlrpc" {
                Protocol::XmlRpc
            } else {
                Protocol::JsonRpc
            };
            // The flags win over XE_PROTOCOL, but naming both protocols is a contradiction.
            if flagged.is_some_and(|f| f != p) {
                return Err("--xmlrpc and --jsonrpc cannot be combined".into());
            }
            flagged = Some(p);
            o.protocol = Some(p);
        } else {
            rest.push(argv[i].clone());
        }
        i += 1;
    }
    Ok((rest, o))
}

/// Run `xe` with `argv` (without argv\[0\]); returns the exit code.
pub fn run(argv: &[String], env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if argv.iter().any(|a| a == "-version") {
        let _ = writeln!(out, "ThinCLI protocol: 0.2");
        return 0;
    }
    if let [flag, dir] = argv {
        let dir = PathBuf::from(dir);
        let r = match flag.as_str() {
            "--generate-completions" => Some(generate::write_completions(&dir)),
            "--generate-man" => Some(generate::write_man(&dir)),
            _ => None,
        };
        if let Some(r) = r {
            return match r {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(err, "{}: {e}", dir.display());
                    1
                }
            };
        }
    }
    let (argv, ours) = match take_ours(argv, env) {
        Ok(x) => x,
        Err(e) => {
            CliError::Failure(e).write(err);
            return 1;
        }
    };
    let ca = match parse_globals(&argv, env) {
        Ok(ca) => ca,
        Err(GlobalsError::Usage { before }) => {
            let _ = write!(err, "{before}{}", help::usage());
            return 0;
        }
        Err(GlobalsError::Fatal(m)) => {
            let _ = write!(err, "{m}");
            return 1;
        }
    };
    let _ = write!(err, "{}", ca.warnings);
    if ca.rest.is_empty() {
        let _ = write!(err, "{}", help::usage());
        return 0;
    }
    let g = ca.globals;
    let mut words = ca.rest;
    words.push(format!("username={}", g.username));
    words.push(format!("password={}", g.password));
    let Ok(cmd) = parse_command(&words) else {
        CliError::Syntax(String::new()).write(err);
        return 1;
    };
    // xapi's `exec_command` reads `minimal` with OCaml's own `bool_of_string` (only `true` and
    // `false`, unlike the other boolean parameters) before anything else, `help` included, and
    // any other value escapes as an internal error; `minimal=yes` in ~/.xe must not quietly
    // mean "not minimal".
    let minimal = match cmd.get("minimal").map(args::ocaml_bool) {
        None => false,
        Some(Some(b)) => b,
        Some(None) => {
            let bad = crate::model::ApiError::internal("Invalid_argument(\"bool_of_string\")");
            CliError::Api(bad).write(err);
            return 1;
        }
    };
    if cmd.name == "help" {
        let mut p = Printer::new(minimal, out, err);
        help::help(&cmd, &mut p);
        p.flush();
        return 0;
    }
    let Some(c) = table::find(&cmd.name) else {
        CliError::UnknownCommand(cmd.name.clone()).write(err);
        return 1;
    };
    // `--minimal` keeps only xe's first field and drops messages, which would silently print
    // an empty line for JSON or a table; refuse the mix before contacting anything.
    if minimal && ours.format != Format::Xe {
        let name = ours.format.name();
        CliError::Failure(format!("--output {name} cannot be combined with --minimal")).write(err);
        return 1;
    }
    if let Some(missing) = c.reqd.iter().find(|r| !cmd.has(r)) {
        CliError::ParamNotFound(missing.clone()).write(err);
        return 1;
    }
    if matches!(c.op, table::Op::PoolHaWhatIf) {
        // `snapshot=FILE`: answered from the file alone, without logging in.
        if let Some(code) = commands::whatif::offline(&cmd, minimal, ours.format, out, err) {
            return code;
        }
    }
    let (endpoint, kind) = if g.server == "127.0.0.1" {
        (
            Endpoint::Local {
                socket: PathBuf::from(ours.socket.as_deref().unwrap_or(DEFAULT_SOCKET)),
                fallback_port: g.port.unwrap_or(80),
            },
            TransportKind::Plain,
        )
    } else if g.ssl {
        // A pin names the one certificate to accept, so it overrides any CA file.
        let verify = match (&ours.pin_cert, &ours.cacert) {
            (Some(spec), _) => match Fingerprint::parse(spec) {
                Ok(fp) => TlsVerify::Pin(fp),
                Err(e) => {
                    CliError::Failure(e).write(err);
                    return 1;
                }
            },
            (None, Some(f)) => match crate::client::ca::load(f) {
                Ok(certs) => TlsVerify::Ca(certs),
                Err(e) => {
                    CliError::Failure(e).write(err);
                    return 1;
                }
            },
            (None, None) => TlsVerify::None,
        };
        (
            Endpoint::Https {
                host: g.server.clone(),
                port: g.port.unwrap_or(443),
                verify,
            },
            TransportKind::Tls,
        )
    } else {
        (
            Endpoint::Http {
                host: g.server.clone(),
                port: g.port.unwrap_or(80),
            },
            TransportKind::Plain,
        )
    };
    let mut conn = Connection::new(
        endpoint,
        ours.protocol.unwrap_or(Protocol::JsonRpc),
        ours.protocol.is_none(),
    );
    conn.set_debug(if g.debug {
        Debug::Stderr
    } else if g.debug_on_fail {
        Debug::Buffer
    } else {
        Debug::Off
    });
    let (method, params): (&str, Vec<crate::model::Value>) = if c.local_session {
        (
            "session.slave_local_login_with_password",
            vec![g.username.as_str().into(), g.password.as_str().into()],
        )
    } else {
        (
            "session.login_with_password",
            vec![
                g.username.as_str().into(),
                g.password.as_str().into(),
                crate::client::API_VERSION.into(),
                "cli".into(),
            ],
        )
    };
    let mut session = match conn.call(method, &params) {
        Ok(r) => Session::from_parts(conn, crate::client::value_text(&r), c.local_session),
        Err(e) => {
            CliError::from_client(e, kind).write(err);
            write_debug_log(err, conn.debug_log());
            return 1;
        }
    };
    let extras = Extras {
        format: ours.format,
        interactive: commands::interactive(),
    };
    let result = {
        let mut ctx = records::Ctx::new(&mut session, kind);
        let mut p = Printer::new(minimal, out, err);
        let r = commands::run(c, &cmd, &mut ctx, &mut p, extras);
        match r {
            Ok(()) => {
                p.flush();
                Ok(())
            }
            Err(CliError::Api(mut e)) => {
                drop(p);
                e.params = e.params.iter().map(|x| ctx.ref_convert(x)).collect();
                Err(CliError::Api(e))
            }
            Err(e) => Err(e),
        }
    };
    let log = session.connection().debug_log().to_vec();
    let _ = session.logout();
    match result {
        Ok(()) => 0,
        Err(CliError::Multiple(lines)) => {
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            write_debug_log(err, &log);
            1
        }
        Err(e) => {
            e.write(err);
            write_debug_log(err, &log);
            1
        }
    }
}

/// `--debug-on-fail`: what was recorded, after xe's `Debug info:` header.
fn write_debug_log(err: &mut dyn Write, log: &[String]) {
    if !log.is_empty() {
        let _ = write!(err, "\nDebug info:\n\n");
        for l in log {
            let _ = writeln!(err, "{l}");
        }
    }
}

/// The `xe` binary's whole job: real argv and environment, real stdout/stderr.
pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = std::io::stderr();
    let code = run(&argv, &Env::from_process(), &mut out, &mut err);
    let _ = out.flush();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_of_ours_in_the_global_table_is_taken_out() {
        let ours = globals::GLOBALS
            .iter()
            .filter(|g| g.stage == globals::Stage::Ours);
        for g in ours {
            for f in g.flags {
                let mut argv = vec![f.to_string()];
                if g.value.is_some() {
                    argv.push(if *f == "--output" { "json" } else { "x" }.into());
                }
                argv.push("host-list".into());
                let (rest, _) = take_ours(&argv, &Env::default()).unwrap();
                assert_eq!(rest, ["host-list"], "{f}");
            }
        }
    }

    #[test]
    fn the_protocol_comes_from_one_flag_or_a_known_xe_protocol() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let env = |p: &str| Env {
            protocol: Some(p.into()),
            ..Env::default()
        };
        let protocol = |a: &str, e: &Env| take_ours(&argv(a), e).map(|(_, o)| o.protocol);
        assert_eq!(
            protocol("host-list", &env("xmlrpc")),
            Ok(Some(Protocol::XmlRpc))
        );
        assert_eq!(protocol("host-list", &env("")), Ok(None));
        assert_eq!(
            protocol("--jsonrpc host-list", &env("xmlrpc")),
            Ok(Some(Protocol::JsonRpc))
        );
        assert_eq!(
            protocol("--xmlrpc host-list --xmlrpc", &Env::default()),
            Ok(Some(Protocol::XmlRpc))
        );
        assert_eq!(
            protocol("host-list", &env("XMLRPC")),
            Err("XE_PROTOCOL must be jsonrpc or xmlrpc, not XMLRPC".into())
        );
        assert_eq!(
            protocol("--xmlrpc host-list --jsonrpc", &Env::default()),
            Err("--xmlrpc and --jsonrpc cannot be combined".into())
        );
    }
}
