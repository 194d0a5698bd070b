//! The global flags, declared once: the client stage's grammar ([`super::args`]), our own
//! options ([`super::take_ours`]), the usage texts ([`super::help`]), the man page's OPTIONS and
//! the completion scripts ([`super::generate`]) all read [`GLOBALS`].

/// Who consumes a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// xe's client (`newcli.ml` `parse_args`): connection options, also as `key=value`.
    Client,
    /// Passed on to the command as `key=true` (`cli_frontend.ml` turns `--flag` into it).
    Command,
    /// Options of ours that real xe does not have, taken out before xe's grammar sees argv.
    Ours,
}

/// One global flag.
#[derive(Clone, Copy, Debug)]
pub struct Global {
    /// Its spellings on the command line (`-s`, `-h`).
    pub flags: &'static [&'static str],
    /// The `key=value` / `~/.xe` key a client flag sets (`server`).
    pub key: Option<&'static str>,
    /// The placeholder of its value, if it takes the next word (`<server>`).
    pub value: Option<&'static str>,
    /// The man page text.
    pub about: &'static str,
    /// Who consumes it.
    pub stage: Stage,
    /// Its line(s) in xe's usage text (`newcli.ml` `usage`), verbatim, if it has one.
    pub usage: Option<&'static str>,
    /// An environment variable that sets it too.
    pub env: Option<&'static str>,
}

const fn client(
    flags: &'static [&'static str],
    key: &'static str,
    value: Option<&'static str>,
    about: &'static str,
    usage: Option<&'static str>,
) -> Global {
    Global {
        flags,
        key: Some(key),
        value,
        about,
        stage: Stage::Client,
        usage,
        env: None,
    }
}

const fn command(
    flag: &'static [&'static str],
    about: &'static str,
    usage: Option<&'static str>,
) -> Global {
    Global {
        flags: flag,
        key: None,
        value: None,
        about,
        stage: Stage::Command,
        usage,
        env: None,
    }
}

const fn ours(
    flags: &'static [&'static str],
    value: Option<&'static str>,
    about: &'static str,
    env: Option<&'static str>,
) -> Global {
    Global {
        flags,
        key: None,
        value,
        about,
        stage: Stage::Ours,
        usage: None,
        env,
    }
}

/// Every global flag, in xe's usage order, then the ones xe's usage does not list, then ours.
pub const GLOBALS: &[Global] = &[
    client(&["-s", "-h"], "server", Some("<server>"), "Server (also server=). Default 127.0.0.1.",
        Some("[ -s <server> ]            XenServer host")),
    client(&["-p"], "port", Some("<port>"), "Port (also port=). Default 443 with TLS, 80 without.",
        Some("[ -p <port> ]              XenServer port number")),
    client(&["-u"], "username", Some("<username>"), "User (also username=). Default root.",
        Some("[ -u <username> -pw <password> | -pwf <password file> ]\n                               User authentication (password or file)")),
    client(&["-pw"], "password", Some("<password>"), "Password (also password=).", None),
    client(&["-pwf"], "passwordfile", Some("<file>"),
        "Password file (also passwordfile=): user name on line 1, password on line 2.", None),
    client(&["--nossl"], "nossl", None, "Plain HTTP instead of HTTPS.",
        Some("[ --nossl ]                Disable SSL/TLS")),
    client(&["--debug"], "debug", None, "Print every request and response on stderr (passwords masked).",
        Some("[ --debug ]                Enable debug output")),
    client(&["--debug-on-fail"], "debugonfail", None, "Print them only if the command fails.",
        Some("[ --debug-on-fail ]        Enable debug output only on failure")),
    command(&["--minimal"], "Only the first field of each record, comma separated, on one line.",
        Some("[ --minimal ]              Output only values in a comma-separated lists")),
    client(&["--traceparent"], "traceparent", Some("<value>"), "W3C trace context; accepted and ignored.",
        Some("[ --traceparent <value> ]  Distributed tracing context")),
    command(&["--trace"], "Accepted and ignored (xe shows the task's stack trace on failure).",
        Some("[ --trace ]                Show task stacktrace on failure")),
    command(&["--force"], "Force a dangerous or refused operation, as the command allows.", None),
    command(&["--multiple"], "Let a selector match several objects.", None),
    command(&["--all"], "List commands: every record, whatever the filters.", None),
    Global {
        flags: &["-version"],
        key: None,
        value: None,
        about: "Print the protocol version and exit.",
        stage: Stage::Client,
        usage: None,
        env: None,
    },
    Global {
        flags: &["--help", "-help"],
        key: None,
        value: None,
        about: "Print the usage on stderr and exit 0.",
        stage: Stage::Client,
        usage: None,
        env: None,
    },
    ours(&["--output"], Some("xe|json|table"), "List commands print xe's records (the default), JSON or a table (not in XenServer's xe); json and table are refused with --minimal.", None),
    ours(&["--xmlrpc"], None, "Speak only XML-RPC (not in XenServer's xe).", None),
    ours(&["--jsonrpc"], None, "Speak only JSON-RPC (not in XenServer's xe).", None),
    ours(&["--socket"], Some("<path>"), "The local daemon's socket, default /var/lib/xcp/xapi (not in XenServer's xe).", Some("XAPI_SOCKET")),
    ours(&["--cacert"], Some("<file>"),
        "Verify HTTPS servers against the CA certificates in this PEM file, with the usual hostname check (not in XenServer's xe).",
        Some("XE_CACERT")),
    ours(&["--pin-cert"], Some("<file>|sha256:<hex>"),
        "Accept only this HTTPS server certificate, given as a PEM file or its SHA-256 fingerprint, whatever names it carries; the handshake signature is still checked. Overrides --cacert (not in XenServer's xe).",
        Some("XE_PIN_CERT")),
];

/// The global flag spelled `flag` and consumed at `stage`.
pub fn find(flag: &str, stage: Stage) -> Option<&'static Global> {
    GLOBALS
        .iter()
        .find(|g| g.stage == stage && g.flags.contains(&flag))
}

/// Every spelling of every flag, for completion (the `-help` alias left out).
pub fn all_flags() -> Vec<&'static str> {
    GLOBALS
        .iter()
        .flat_map(|g| g.flags.iter().copied())
        .filter(|f| *f != "-help")
        .collect()
}

/// The flags that take the next word as their value.
pub fn valued_flags() -> Vec<&'static str> {
    GLOBALS
        .iter()
        .filter(|g| g.value.is_some())
        .flat_map(|g| g.flags.iter().copied())
        .collect()
}

/// The flags whose value is a file name (their placeholder starts `<file>`): completions offer
/// file names after them.
pub fn file_flags() -> Vec<&'static str> {
    GLOBALS
        .iter()
        .filter(|g| g.value.is_some_and(|v| v.starts_with("<file>")))
        .flat_map(|g| g.flags.iter().copied())
        .collect()
}

/// The usage lines of the flags, indented as xe prints them; with `client_only`, without the
/// flags xe's client passes on to the command (`xe help`'s header omits those).
pub fn usage_lines(client_only: bool) -> String {
    GLOBALS
        .iter()
        .filter(|g| !client_only || g.stage == Stage::Client)
        .filter_map(|g| g.usage)
        .map(|u| format!("    {u}\n"))
        .collect()
}
