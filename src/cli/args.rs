//! xe's argument grammar, in two stages as real xe has them.
//!
//! [`parse_globals`] is the client stage (`newcli.ml` `parse_args`): it consumes the connection
//! flags of [`super::globals::GLOBALS`] (`-s`, `-p`, `-u`, `-pw`, `-pwf`, `--nossl`, `--debug`,
//! `--debug-on-fail`, `--traceparent`, and their `key=value` forms) from argv, `XE_EXTRA_ARGS` and `~/.xe`, with xe's precedence, and leaves
//! the other words in xe's order (argv, extras, rc). [`parse_command`] is the server stage
//! (`cli_frontend.ml` `parse_params_2`): command name plus `key=value` words, `--flag` as
//! `flag=true`, single-dash switches taking the next word.

use std::path::PathBuf;

use super::globals::{find, Stage};

/// Connection options gathered by the client stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Globals {
    /// Server (`-s`, `-h`, `server=`); default `127.0.0.1`.
    pub server: String,
    /// Port (`-p`, `port=`); `None` means 443 with TLS, 80 without.
    pub port: Option<u16>,
    /// User name; default `root`.
    pub username: String,
    /// Password; default the literal `null`, as xe.
    pub password: String,
    /// Password file (`-pwf`): line 1 user, line 2 password.
    pub password_file: Option<String>,
    /// TLS on (default) or off (`--nossl`).
    pub ssl: bool,
    /// `--debug`.
    pub debug: bool,
    /// `--debug-on-fail`.
    pub debug_on_fail: bool,
    /// `--traceparent`: accepted and ignored (we have no tracing header to send it in).
    pub traceparent: Option<String>,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            server: "127.0.0.1".into(),
            port: None,
            username: "root".into(),
            password: "null".into(),
            password_file: None,
            ssl: true,
            debug: false,
            debug_on_fail: false,
            traceparent: None,
        }
    }
}

/// Why the client stage stopped.
#[derive(Debug, PartialEq)]
pub enum GlobalsError {
    /// Print the usage and exit 0 (`--help`, no command, or a bad port after its message).
    Usage {
        /// Text printed to stderr before the usage (e.g. the port message).
        before: String,
    },
    /// Print this to stderr and exit 1.
    Fatal(String),
}

/// What the client stage produces.
#[derive(Debug, PartialEq)]
pub struct ClientArgs {
    /// Connection options.
    pub globals: Globals,
    /// Words for the command stage, in xe's order.
    pub rest: Vec<String>,
    /// Messages to print on stderr before anything else (the rc-file warning).
    pub warnings: String,
}

fn parse_port(v: &str) -> Result<u16, GlobalsError> {
    v.parse::<i64>()
        .ok()
        .filter(|p| (0..=65535).contains(p))
        .map(|p| p as u16)
        .ok_or(GlobalsError::Usage {
            before: "Port number must be an integer (0-65535)\n".into(),
        })
}

/// OCaml's `bool_of_string`: only `true` and `false`.
pub fn ocaml_bool(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl Globals {
    /// Set a known key; `Ok(false)` if the key is not a connection option.
    fn set(&mut self, k: &str, v: &str) -> Result<bool, GlobalsError> {
        match k {
            "server" => self.server = v.to_string(),
            "port" => self.port = Some(parse_port(v)?),
            "username" => self.username = v.to_string(),
            "password" => self.password = v.to_string(),
            "passwordfile" => self.password_file = Some(v.to_string()),
            "nossl" => match ocaml_bool(v) {
                Some(b) => self.ssl = !b,
                None => {
                    return Err(GlobalsError::Fatal(
                        "Unhandled exception\nInvalid_argument(\"bool_of_string\")\n".into(),
                    ))
                }
            },
            "debug" => self.debug = ocaml_bool(v).unwrap_or(false),
            "debugonfail" => self.debug_on_fail = ocaml_bool(v).unwrap_or(false),
            "traceparent" => self.traceparent = Some(v.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `newcli.ml` `process_args`: switches and `key=value` connection options are consumed;
    /// everything else is returned in order.
    fn process(&mut self, args: &[String]) -> Result<Vec<String>, GlobalsError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            let next = args.get(i + 1).map(String::as_str);
            // A client flag from the global table: with a value it takes the next word (when
            // there is one), without one it means `key=true`.
            let opt = find(a, Stage::Client).and_then(|g| {
                let key = g.key?;
                match g.value {
                    Some(_) => next.map(|v| (key, v.to_string(), 2)),
                    None => Some((key, "true".to_string(), 1)),
                }
            });
            if let Some((k, v, n)) = opt {
                if self.set(k, &v)? {
                    i += n;
                    continue;
                }
            }
            match a.split_once('=') {
                Some((k, v)) if self.set(k, v)? => {}
                _ => out.push(a.to_string()),
            }
            i += 1;
        }
        Ok(out)
    }
}

/// `options.ml` `parse_lines`: `key=value` lines, blank lines skipped; any other line voids the
/// whole file with xe's message. Returns the pairs (in file order) and the warning.
pub fn parse_rc(text: &str) -> (Vec<(String, String)>, String) {
    let mut out = Vec::new();
    // OCaml's input_line splits on '\n' only; a final line without '\n' still counts.
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    for l in lines {
        if l.is_empty() {
            continue;
        }
        match l.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => {
                return (
                    Vec::new(),
                    "Error parsing rc file. No defaults loaded\n".into(),
                )
            }
        }
    }
    (out, String::new())
}

/// `XE_EXTRA_ARGS`: comma-separated words, `\,` keeps a comma, every backslash is dropped.
pub fn split_extra_args(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut pos, mut i) = (0usize, 0usize);
    while pos < b.len() {
        if b[pos] == b',' {
            pos += 1;
            i = pos;
        } else if i >= b.len() || (b[i] == b',' && i > 0 && b[i - 1] != b'\\') {
            let seg: String = s[pos..i].chars().filter(|c| *c != '\\').collect();
            out.push(seg);
            i += 1;
            pos = i;
        } else {
            i += 1;
        }
    }
    out
}

/// Where the client stage reads its environment; a struct so tests need not touch the real one.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// Contents of `~/.xe`, if readable.
    pub rc: Option<String>,
    /// `XE_EXTRA_ARGS`.
    pub extra_args: Option<String>,
    /// `TRACEPARENT`.
    pub traceparent: Option<String>,
    /// `XAPI_SOCKET`: the local daemon's socket path (ours; xe has it fixed).
    pub socket: Option<String>,
    /// `XE_PROTOCOL`: `jsonrpc` or `xmlrpc` (ours).
    pub protocol: Option<String>,
    /// `XE_CACERT`: verify HTTPS servers against this PEM file (ours).
    pub cacert: Option<String>,
    /// `XE_PIN_CERT`: accept only this HTTPS certificate, a PEM file or `sha256:<hex>` (ours).
    pub pin_cert: Option<String>,
}

impl Env {
    /// Read the real environment: `$HOME/.xe`, `XE_EXTRA_ARGS`, `TRACEPARENT`.
    pub fn from_process() -> Env {
        let home = std::env::var("HOME").unwrap_or_default();
        Env {
            rc: std::fs::read_to_string(PathBuf::from(format!("{home}/.xe"))).ok(),
            extra_args: std::env::var("XE_EXTRA_ARGS").ok(),
            traceparent: std::env::var("TRACEPARENT").ok(),
            socket: std::env::var("XAPI_SOCKET").ok(),
            protocol: std::env::var("XE_PROTOCOL").ok(),
            cacert: std::env::var("XE_CACERT").ok(),
            pin_cert: std::env::var("XE_PIN_CERT").ok(),
        }
    }
}

/// The client stage: argv (without argv\[0\]) > `XE_EXTRA_ARGS` > `~/.xe` > defaults.
pub fn parse_globals(args: &[String], env: &Env) -> Result<ClientArgs, GlobalsError> {
    let mut g = Globals::default();
    let (rcs, warnings) = parse_rc(env.rc.as_deref().unwrap_or(""));
    let mut rc_rest = Vec::new();
    for (k, v) in &rcs {
        if !g.set(k, v)? {
            rc_rest.push(format!("{k}={v}"));
        }
    }
    let extras = split_extra_args(env.extra_args.as_deref().unwrap_or(""));
    let extras_rest = g.process(&extras)?;
    if let Some(tp) = &env.traceparent {
        g.traceparent = Some(tp.clone());
    }
    let help = args.iter().any(|a| a == "-help" || a == "--help");
    let args_rest = g.process(args)?;
    if help {
        return Err(GlobalsError::Usage {
            before: String::new(),
        });
    }
    if let Some(f) = g.password_file.clone().filter(|f| !f.is_empty()) {
        let text = std::fs::read_to_string(&f)
            .map_err(|_| GlobalsError::Fatal(format!("Error opening password file '{f}'\n")))?;
        let mut lines = text.split('\n');
        match (lines.next(), lines.next()) {
            (Some(u), Some(p)) if text.matches('\n').count() >= 2 || !p.is_empty() => {
                g.username = u.to_string();
                g.password = p.to_string();
            }
            _ => {
                return Err(GlobalsError::Fatal(
                    "Error: password file format: expecting username on the first line, password on the second line\n".into(),
                ))
            }
        }
    }
    let mut rest = args_rest;
    rest.extend(extras_rest);
    rest.extend(rc_rest);
    Ok(ClientArgs {
        globals: g,
        rest,
        warnings,
    })
}

/// The command stage's result: command name and parameters in order.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandLine {
    /// The command name.
    pub name: String,
    /// `(key, value)` pairs, repeated keys kept, in order.
    pub params: Vec<(String, String)>,
}

impl CommandLine {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `cli_frontend.ml` `switch_map`: the single-dash and known double-dash switches.
fn convert_switch(s: &str) -> Option<&'static str> {
    Some(match s {
        "--force" => "force",
        "--live" => "live",
        "--internal" => "internal",
        "-u" => "username",
        "-pw" => "password",
        "-s" | "-h" => "server",
        "-p" => "port",
        "--debug" => "debug",
        "--minimal" => "minimal",
        "--all" => "all",
        _ => return None,
    })
}

/// A command line xe's parser rejects. xapi re-raises every parse failure as `ParseError ""`,
/// so there is nothing more to say than that it failed.
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError;

/// The command stage. Any failure is xe's `Syntax error: ` with an empty message.
pub fn parse_command(words: &[String]) -> Result<CommandLine, SyntaxError> {
    let (name, rest) = words.split_first().ok_or(SyntaxError)?;
    if name.contains('=') {
        return Err(SyntaxError);
    }
    let mut params = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let p = &rest[i];
        if let Some(flag) = p.strip_prefix("--") {
            params.push((flag.to_string(), "true".to_string()));
            i += 1;
        } else if p.starts_with('-') {
            let q = rest.get(i + 1).ok_or(SyntaxError)?;
            let k = convert_switch(p).ok_or(SyntaxError)?;
            params.push((k.to_string(), q.clone()));
            i += 2;
        } else {
            let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
            params.push((k.to_string(), v.to_string()));
            i += 1;
        }
    }
    Ok(CommandLine {
        name: name.clone(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn connection_flags_are_consumed_and_the_rest_kept_in_order() {
        let a = parse_globals(
            &words(&[
                "-s",
                "h1",
                "vm-list",
                "-u",
                "admin",
                "power-state=running",
                "-pw",
                "pw",
                "--nossl",
                "-p",
                "8080",
                "--minimal",
            ]),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(a.globals.server, "h1");
        assert_eq!(a.globals.username, "admin");
        assert_eq!(a.globals.password, "pw");
        assert_eq!(a.globals.port, Some(8080));
        assert!(!a.globals.ssl);
        assert_eq!(
            a.rest,
            words(&["vm-list", "power-state=running", "--minimal"])
        );
    }

    #[test]
    fn precedence_is_argv_then_extra_args_then_rc() {
        let env = Env {
            rc: Some("server=rc\nusername=rcuser\nminimal=true\n\n".into()),
            extra_args: Some("server=extra,password=a\\,b,foo=bar".into()),
            ..Env::default()
        };
        let a = parse_globals(&words(&["host-list", "-s", "argv"]), &env).unwrap();
        assert_eq!(a.globals.server, "argv");
        assert_eq!(a.globals.username, "rcuser");
        assert_eq!(a.globals.password, "a,b");
        assert_eq!(a.rest, words(&["host-list", "foo=bar", "minimal=true"]));
        assert_eq!(a.warnings, "");
    }

    #[test]
    fn a_malformed_rc_file_is_ignored_with_xes_message() {
        let (pairs, warn) = parse_rc("server=x\nnot a pair\n");
        assert!(pairs.is_empty());
        assert_eq!(warn, "Error parsing rc file. No defaults loaded\n");
    }

    #[test]
    fn bad_ports_and_help_mean_usage() {
        assert_eq!(
            parse_globals(&words(&["-p", "70000", "host-list"]), &Env::default()),
            Err(GlobalsError::Usage {
                before: "Port number must be an integer (0-65535)\n".into()
            })
        );
        assert!(matches!(
            parse_globals(&words(&["host-list", "--help"]), &Env::default()),
            Err(GlobalsError::Usage { .. })
        ));
    }

    #[test]
    fn password_files_hold_user_then_password() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "alice\nsecret\n").unwrap();
        let a = parse_globals(
            &words(&["-pwf", f.to_str().unwrap(), "host-list"]),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(
            (a.globals.username.as_str(), a.globals.password.as_str()),
            ("alice", "secret")
        );
        std::fs::write(&f, "alice\n").unwrap();
        assert!(matches!(
            parse_globals(&words(&["-pwf", f.to_str().unwrap(), "x"]), &Env::default()),
            Err(GlobalsError::Fatal(m)) if m.starts_with("Error: password file format")
        ));
        let missing = dir.path().join("nope");
        assert_eq!(
            parse_globals(
                &words(&["-pwf", missing.to_str().unwrap(), "x"]),
                &Env::default()
            ),
            Err(GlobalsError::Fatal(format!(
                "Error opening password file '{}'\n",
                missing.display()
            )))
        );
    }

    #[test]
    fn command_words_follow_parse_params_2() {
        let c = parse_command(&words(&[
            "pool-ha-enable",
            "ha-config:timeout=90",
            "--force",
            "a=b=c",
            "bare",
            "vm-uuid=1",
            "vm-uuid=2",
        ]))
        .unwrap();
        assert_eq!(c.name, "pool-ha-enable");
        assert_eq!(c.get("ha-config:timeout"), Some("90"));
        assert_eq!(c.get("force"), Some("true"));
        assert_eq!(c.get("a"), Some("b=c"));
        assert_eq!(c.get("bare"), Some(""));
        assert_eq!(c.all("vm-uuid"), ["1", "2"]);
        assert!(parse_command(&words(&["uuid=x"])).is_err());
        assert!(parse_command(&words(&["vm-list", "-x", "y"])).is_err());
        assert!(parse_command(&words(&["vm-list", "-s"])).is_err());
    }

    #[test]
    fn extra_args_split_on_unescaped_commas() {
        assert_eq!(
            split_extra_args("server=foo,port=443,,password=p\\,q"),
            words(&["server=foo", "port=443", "password=p,q"])
        );
        assert!(split_extra_args("").is_empty());
    }
}
