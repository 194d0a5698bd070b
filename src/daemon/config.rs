//! `xapid`'s settings: command-line flags and a TOML file with the same keys; flags win.
//!
//! ```toml
//! state_dir = "/var/lib/xenha"
//! listen = "0.0.0.0:443"        # HTTPS; "none" disables it
//! http_listen = "127.0.0.1:80"  # optional plain HTTP
//! socket = "/var/lib/xcp/xapi"  # local socket; callers are trusted as root
//! root_password_file = "/root/xapid-password"  # read on first start only
//! memory_total = 68719476736    # bytes; overrides /proc/meminfo (labs)
//! memory_overhead = 0           # bytes reserved for the host itself
//! address = "192.0.2.10"        # what other hosts and clients use to reach this one
//! name_label = "host1"
//! auth_failure_delay_ms = 5000
//! pool_scheme = "https"         # how pool hosts reach each other
//! pool_port = 443               # the API port of every pool host
//! ha_port = 694                 # UDP port for HA heartbeats (the same on every host)
//! ha_watchdog = "/dev/watchdog" # or "process" (labs: a helper process kills the daemon)
//! ha_fence = "reboot"           # or "exit" (labs: the daemon and its domains end)
//! cpuinfo_file = "/tmp/amd.txt" # pretend to have these CPUs (labs)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command, ValueHint};
use serde::Deserialize;

use super::DaemonError;

/// The daemon's resolved settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the database, certificate and generated secrets live.
    pub state_dir: PathBuf,
    /// HTTPS listener, if any.
    pub https_listen: Option<SocketAddr>,
    /// Plain HTTP listener, if any.
    pub http_listen: Option<SocketAddr>,
    /// Local Unix socket, if any.
    pub socket: Option<PathBuf>,
    /// File holding the initial root password (first start only).
    pub root_password_file: Option<PathBuf>,
    /// Initial root password from the environment (first start only).
    pub root_password_env: Option<String>,
    /// Total memory to report instead of /proc/meminfo.
    pub memory_total: Option<i64>,
    /// Host memory overhead in bytes.
    pub memory_overhead: i64,
    /// The host's address as other hosts see it.
    pub address: Option<String>,
    /// The host's name-label on first start (default: the host name).
    pub name_label: Option<String>,
    /// Delay before answering a failed login.
    pub auth_failure_delay: Duration,
    /// How other pool hosts are reached: `https` (default) or `http` (labs).
    pub pool_scheme: String,
    /// The port other pool hosts serve the API on (default 443).
    pub pool_port: u16,
    /// The UDP port of HA heartbeats, the same on every host (default 694, xhad's).
    pub ha_port: u16,
    /// The watchdog device HA kicks; `None` for the process watchdog (the default).
    pub ha_watchdog: Option<PathBuf>,
    /// HA fences by resetting the machine (`--ha-fence reboot`) rather than ending the daemon.
    pub ha_fence_reboot: bool,
    /// Read CPUs from this file instead of /proc/cpuinfo (labs that pretend to other CPUs).
    pub cpuinfo_file: Option<PathBuf>,
}

/// The TOML file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    state_dir: Option<PathBuf>,
    listen: Option<String>,
    http_listen: Option<String>,
    socket: Option<PathBuf>,
    root_password_file: Option<PathBuf>,
    memory_total: Option<i64>,
    memory_overhead: Option<i64>,
    address: Option<String>,
    name_label: Option<String>,
    auth_failure_delay_ms: Option<u64>,
    pool_scheme: Option<String>,
    pool_port: Option<u16>,
    ha_port: Option<u16>,
    ha_watchdog: Option<String>,
    ha_fence: Option<String>,
    cpuinfo_file: Option<PathBuf>,
}

/// Defaults, as on a XenServer host.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/xenha";
/// Default HTTPS listener.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:443";
/// Default local socket (xapi's path, so xe's default finds it).
pub const DEFAULT_SOCKET: &str = "/var/lib/xcp/xapi";

/// The command line `xapid` parses: [`documented`] plus the hidden flags that write the
/// completions and man page. Those are for the build, not operators, and clap_complete lists
/// hidden flags too, so the generators document [`documented`] instead.
pub fn command() -> Command {
    let generator = |name: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name("DIR")
            .value_parser(clap::value_parser!(PathBuf))
            .exclusive(true)
            .hide(true)
    };
    documented()
        .arg(generator(super::generate::COMPLETIONS_FLAG))
        .arg(generator(super::generate::MAN_FLAG))
}

/// `xapid`'s flags as operators see them; the completions and man page are generated from it
/// ([`super::generate`]), so each help text says what the flag does and what holds without it.
/// Defaults live in the help text rather than in clap, because a clap default would always be
/// "given" and hide the config file's value.
pub fn documented() -> Command {
    let opt = |name: &'static str, value: &'static str, hint: ValueHint, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name(value)
            .value_hint(hint)
            .help(help)
            .action(ArgAction::Set)
    };
    Command::new("xapid")
        .about("The per-host XenAPI daemon: API server, pool database and the HA agent")
        .long_about(DESCRIPTION)
        // clap_mangen's synopsis would list the flags without their values, as if switches.
        .override_usage("xapid [OPTIONS]")
        .version(env!("CARGO_PKG_VERSION"))
        .arg(opt(
            "config",
            "FILE",
            ValueHint::FilePath,
            "Read settings from this TOML file: the same settings as these flags, named with \
             underscores (cpuinfo_file for --cpuinfo), plus memory_overhead (bytes reserved for \
             the host itself, default 0); unknown keys are refused. Flags win over the file. \
             [default: none, flags only]",
        ))
        .arg(opt(
            "state-dir",
            "DIR",
            ValueHint::DirPath,
            "Keep the pool database, this host's identity, its certificate and its secrets \
             here; created (mode 0700) if missing. [default: /var/lib/xenha]",
        ))
        .arg(opt(
            "listen",
            "ADDR:PORT",
            ValueHint::Other,
            "Serve the XenAPI over HTTPS here, with the certificate in the state directory; \
             'none' serves no HTTPS. [default: 0.0.0.0:443]",
        ))
        .arg(opt(
            "http-listen",
            "ADDR:PORT",
            ValueHint::Other,
            "Also serve the XenAPI over plain HTTP here (labs). [default: none]",
        ))
        .arg(opt(
            "socket",
            "PATH",
            ValueHint::FilePath,
            "Serve the XenAPI on this local Unix socket (mode 0600); its callers are trusted \
             as root, as xapi's are. 'none' serves no socket. [default: /var/lib/xcp/xapi]",
        ))
        .arg(opt(
            "root-password-file",
            "FILE",
            ValueHint::FilePath,
            "On first start, give root the password on this file's first line. \
             [default: XAPID_ROOT_PASSWORD, else a generated one written to \
             STATE/root-password]",
        ))
        .arg(opt(
            "memory-total",
            "BYTES",
            ValueHint::Other,
            "Report this much host memory (labs that pretend to bigger hosts). \
             [default: MemTotal of /proc/meminfo]",
        ))
        .arg(opt(
            "address",
            "ADDR",
            ValueHint::Hostname,
            "This host's address as other hosts and clients reach it. [default: the first \
             listener address that is not a wildcard, else 127.0.0.1]",
        ))
        .arg(opt(
            "name-label",
            "NAME",
            ValueHint::Other,
            "This host's name-label, set on first start only. [default: the host name]",
        ))
        .arg(opt(
            "auth-failure-delay-ms",
            "MS",
            ValueHint::Other,
            "Wait this long before answering a failed login, as xapi does. [default: 5000]",
        ))
        .arg(opt(
            "pool-scheme",
            "https|http",
            ValueHint::Other,
            "How pool hosts call each other: https, or http for labs. [default: https]",
        ))
        .arg(opt(
            "pool-port",
            "PORT",
            ValueHint::Other,
            "The API port of every pool host, used for calls between them. [default: 443]",
        ))
        .arg(opt(
            "ha-port",
            "PORT",
            ValueHint::Other,
            "UDP port for HA heartbeats, the same on every pool host. [default: 694, xhad's]",
        ))
        .arg(opt(
            "ha-watchdog",
            "DEVICE|process",
            ValueHint::FilePath,
            "The watchdog HA kicks while armed: a device such as /dev/watchdog (hardware or \
             softdog), or 'process', a helper process that SIGKILLs the daemon when the kicks \
             stop (labs). [default: process]",
        ))
        .arg(opt(
            "ha-fence",
            "reboot|exit",
            ValueHint::Other,
            "How HA fences this host: reboot resets the machine; exit ends the daemon at once \
             with status 86, and every domain it hosts with it (labs). [default: exit]",
        ))
        .arg(opt(
            "cpuinfo",
            "FILE",
            ValueHint::FilePath,
            "Read this host's CPUs from FILE (labs that pretend to other CPUs). \
             [default: /proc/cpuinfo]",
        ))
}

/// What `xapid --help` and the man page's DESCRIPTION say about the daemon as a whole.
const DESCRIPTION: &str = "\
xapid is the per-host daemon of a XenServer-style pool. It serves the XenAPI (XML-RPC on / and \
/RPC2, JSON-RPC on /jsonrpc) over HTTPS, optionally plain HTTP, and a local Unix socket; keeps \
the pool database; and runs the HA agent (heartbeats, statefile, fencing, master election, VM \
restarts).

On its first start it makes a one-host pool with this host as master and gives root a password. \
Settings come from the flags below and the TOML file named by --config; flags win.";

impl Config {
    /// Resolve the settings from parsed flags, the config file they name, and the environment.
    pub fn from_matches(m: &ArgMatches) -> Result<Config, DaemonError> {
        let file = match m.get_one::<String>("config") {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(super::io(format!("reading {path}")))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| DaemonError::Config(format!("{path}: {e}")))?
            }
            None => FileConfig::default(),
        };
        let flag = |name: &str| m.get_one::<String>(name).cloned();
        let addr = |name: &str, text: Option<String>| -> Result<Option<SocketAddr>, DaemonError> {
            match text.as_deref() {
                None | Some("none") => Ok(None),
                Some(t) => t
                    .parse()
                    .map(Some)
                    .map_err(|_| DaemonError::Config(format!("{name}: '{t}' is not ADDR:PORT"))),
            }
        };
        let number = |name: &str, text: Option<String>| -> Result<Option<i64>, DaemonError> {
            text.map(|t| {
                t.parse::<i64>()
                    .map_err(|_| DaemonError::Config(format!("{name}: '{t}' is not a number")))
            })
            .transpose()
        };
        let socket = flag("socket")
            .map(PathBuf::from)
            .or(file.socket)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        let delay_ms = match flag("auth-failure-delay-ms") {
            Some(t) => t.parse::<u64>().map_err(|_| {
                DaemonError::Config(format!("auth-failure-delay-ms: '{t}' is not a number"))
            })?,
            None => file.auth_failure_delay_ms.unwrap_or(5000),
        };
        let memory_total = number("memory-total", flag("memory-total"))?.or(file.memory_total);
        if memory_total.is_some_and(|m| m <= 0) {
            return Err(DaemonError::Config("memory-total must be positive".into()));
        }
        Ok(Config {
            state_dir: flag("state-dir")
                .map(PathBuf::from)
                .or(file.state_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            https_listen: addr(
                "listen",
                flag("listen")
                    .or(file.listen)
                    .or(Some(DEFAULT_LISTEN.into())),
            )?,
            http_listen: addr("http-listen", flag("http-listen").or(file.http_listen))?,
            socket: (socket.as_os_str() != "none").then_some(socket),
            root_password_file: flag("root-password-file")
                .map(PathBuf::from)
                .or(file.root_password_file),
            root_password_env: std::env::var("XAPID_ROOT_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
            memory_total,
            memory_overhead: file.memory_overhead.unwrap_or(0),
            address: flag("address").or(file.address),
            name_label: flag("name-label").or(file.name_label),
            auth_failure_delay: Duration::from_millis(delay_ms),
            pool_scheme: match flag("pool-scheme").or(file.pool_scheme).as_deref() {
                None | Some("https") => "https".to_string(),
                Some("http") => "http".to_string(),
                Some(other) => {
                    return Err(DaemonError::Config(format!(
                        "pool-scheme: '{other}' is not http or https"
                    )))
                }
            },
            pool_port: match flag("pool-port") {
                Some(p) => p
                    .parse()
                    .map_err(|_| DaemonError::Config(format!("pool-port: '{p}' is not a port")))?,
                None => file.pool_port.unwrap_or(443),
            },
            ha_port: match flag("ha-port") {
                Some(p) => p
                    .parse()
                    .map_err(|_| DaemonError::Config(format!("ha-port: '{p}' is not a port")))?,
                None => file.ha_port.unwrap_or(crate::server::ha::DEFAULT_PORT),
            },
            ha_watchdog: match flag("ha-watchdog").or(file.ha_watchdog).as_deref() {
                None | Some("process") => None,
                Some(device) => Some(PathBuf::from(device)),
            },
            ha_fence_reboot: match flag("ha-fence").or(file.ha_fence).as_deref() {
                None | Some("exit") => false,
                Some("reboot") => true,
                Some(other) => {
                    return Err(DaemonError::Config(format!(
                        "ha-fence: '{other}' is not reboot or exit"
                    )))
                }
            },
            cpuinfo_file: flag("cpuinfo").map(PathBuf::from).or(file.cpuinfo_file),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, DaemonError> {
        let m = command()
            .try_get_matches_from(std::iter::once("xapid").chain(args.iter().copied()))
            .unwrap();
        Config::from_matches(&m)
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xapid.toml");
        std::fs::write(
            &file,
            "state_dir = \"/tmp/a\"\nlisten = \"127.0.0.1:9443\"\nsocket = \"none\"\nmemory_total = 1024\n",
        )
        .unwrap();
        let c = parse(&["--config", file.to_str().unwrap(), "--state-dir", "/tmp/b"]).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/tmp/b"));
        assert_eq!(c.https_listen, Some("127.0.0.1:9443".parse().unwrap()));
        assert_eq!(c.socket, None);
        assert_eq!(c.memory_total, Some(1024));
        assert_eq!(c.http_listen, None);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(parse(&["--listen", "nowhere"]).is_err());
        assert!(parse(&["--memory-total=-5"]).is_err());
        assert!(parse(&["--ha-fence", "shrug"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        assert!(
            parse(&["--config", file.to_str().unwrap()]).is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn defaults_are_xapis() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.https_listen, Some(DEFAULT_LISTEN.parse().unwrap()));
        assert_eq!(c.socket, Some(PathBuf::from(DEFAULT_SOCKET)));
        assert_eq!(c.auth_failure_delay, Duration::from_secs(5));
        assert_eq!(
            (c.ha_port, c.ha_watchdog, c.ha_fence_reboot),
            (694, None, false)
        );
        let c = parse(&["--ha-watchdog", "/dev/watchdog", "--ha-fence", "reboot"]).unwrap();
        assert_eq!(c.ha_watchdog, Some(PathBuf::from("/dev/watchdog")));
        assert!(c.ha_fence_reboot);
    }
}
