//! The watchdogs that fence a host which can no longer fence itself (hung, stopped,
//! deadlocked, stuck on I/O under a lock):
//!
//! * [`DeviceWatchdog`]: a Linux watchdog device (`/dev/watchdog`, hardware or `softdog`); it
//!   resets the machine. Production.
//! * [`ProcessWatchdog`]: a helper process that SIGKILLs this daemon. Labs and tests, where
//!   "the host" is the daemon and the domains it hosts.
//!
//! Both keep the same contract: `kick(timeout)` re-arms with a timeout, `close()` disarms.
//!
//! The process watchdog:
//! The helper is this same executable started with [`HELPER_ARG`]; it reads one command per
//! line on stdin: `kick <ms>` (re-arm: fire unless kicked again within `ms`), `close` (disarm).
//! When it fires it writes a marker file saying so, then sends SIGKILL to the daemon. When the
//! daemon goes away (stdin closes) it exits quietly. It is the lab and test counterpart of
//! `/dev/watchdog`: the same contract (kick with a timeout, magic close), enforced from outside
//! the process it guards.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The watchdog HA kicks.
pub enum Watchdog {
    /// A watchdog device.
    Device(DeviceWatchdog),
    /// The helper process.
    Process(ProcessWatchdog),
}

impl Watchdog {
    /// Re-arm with `timeout` (devices round it down to whole seconds).
    pub fn kick(&mut self, timeout: Duration) -> std::io::Result<()> {
        match self {
            Watchdog::Device(d) => d.kick(timeout),
            Watchdog::Process(p) => p.kick(timeout),
        }
    }

    /// Disarm cleanly.
    pub fn close(&mut self) -> std::io::Result<()> {
        match self {
            Watchdog::Device(d) => d.close(),
            Watchdog::Process(p) => p.close(),
        }
    }
}

/// A Linux watchdog device. Opening it arms it; every kick sets the timeout (`WDIOC_SETTIMEOUT`,
/// whole seconds, rounded down) and pings; `close` writes the magic `V` first so the kernel
/// disarms it (unless the driver was built with `nowayout`, in which case the machine resets:
/// never silent).
pub struct DeviceWatchdog {
    file: std::fs::File,
    path: PathBuf,
    timeout_s: Option<u32>,
}

/// `WDIOC_SETTIMEOUT`: `_IOWR('W', 6, int)`.
const WDIOC_SETTIMEOUT: rustix::ioctl::Opcode =
    rustix::ioctl::opcode::read_write::<std::ffi::c_int>(b'W', 6);

impl DeviceWatchdog {
    /// Check `path` is a character device HA could use, without opening it (which would arm it).
    pub fn check(path: &Path) -> Result<(), String> {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            Ok(_) => Err(format!("{} is not a watchdog device", path.display())),
            Err(e) => Err(format!("watchdog device {}: {e}", path.display())),
        }
    }

    /// Open (and so arm) the device.
    pub fn open(path: &Path) -> std::io::Result<DeviceWatchdog> {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        Ok(DeviceWatchdog {
            file,
            path: path.to_path_buf(),
            timeout_s: None,
        })
    }

    /// Set the timeout (rounded down to whole seconds) and ping. A timeout under a second
    /// cannot be expressed: the kick is skipped, which only keeps the earlier, sooner deadline.
    pub fn kick(&mut self, timeout: Duration) -> std::io::Result<()> {
        let want = timeout.as_secs() as u32;
        if want == 0 {
            return Ok(());
        }
        if self.timeout_s != Some(want) {
            let mut granted: std::ffi::c_int = want as std::ffi::c_int;
            // SAFETY: WDIOC_SETTIMEOUT reads and writes one int, which `granted` is.
            unsafe {
                rustix::ioctl::ioctl(
                    &self.file,
                    rustix::ioctl::Updater::<WDIOC_SETTIMEOUT, std::ffi::c_int>::new(&mut granted),
                )?;
            }
            // A driver may round the timeout; a longer one than asked would outlive the lease.
            if granted as u32 > want {
                return Err(std::io::Error::other(format!(
                    "{} granted a {granted} s timeout for {want} s",
                    self.path.display()
                )));
            }
            self.timeout_s = Some(want);
        }
        std::io::Write::write_all(&mut self.file, b"k")
    }

    /// Magic close: the kernel disarms the device when it is closed after a `V`.
    pub fn close(&mut self) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self.file, b"V")
    }
}

/// First argument that turns `xapid` into the watchdog helper: `xapid <HELPER_ARG> <pid> <marker>`.
pub const HELPER_ARG: &str = "--internal-watchdog-helper";

/// The daemon's end of the watchdog.
pub struct ProcessWatchdog {
    child: Child,
    stdin: ChildStdin,
}

impl ProcessWatchdog {
    /// Start the helper guarding this process; it writes `marker` when it fires.
    pub fn spawn(marker: &Path) -> std::io::Result<ProcessWatchdog> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg(HELPER_ARG)
            .arg(std::process::id().to_string())
            .arg(marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        Ok(ProcessWatchdog { child, stdin })
    }

    /// Re-arm: the daemon is killed unless kicked again within `timeout`.
    pub fn kick(&mut self, timeout: Duration) -> std::io::Result<()> {
        writeln!(self.stdin, "kick {}", timeout.as_millis())
    }

    /// Disarm cleanly: the helper will not fire until kicked again.
    pub fn close(&mut self) -> std::io::Result<()> {
        writeln!(self.stdin, "close")
    }
}

impl Drop for ProcessWatchdog {
    fn drop(&mut self) {
        // Dropping the watchdog is a clean stop: disarm first, so closing stdin cannot race a
        // firing deadline, then reap the helper.
        let _ = self.close();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the helper was told.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Kick(Duration),
    Close,
}

fn parse_line(line: &str) -> Option<Line> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["kick", ms] => ms
            .parse()
            .ok()
            .map(|ms| Line::Kick(Duration::from_millis(ms))),
        ["close"] => Some(Line::Close),
        _ => None,
    }
}

/// The helper's main loop (`xapid --internal-watchdog-helper <pid> <marker>`). Returns the
/// process exit status.
pub fn run_helper(args: &[String]) -> i32 {
    let (Some(pid), Some(marker)) = (
        args.first().and_then(|p| p.parse::<i32>().ok()),
        args.get(1).map(PathBuf::from),
    ) else {
        eprintln!("usage: xapid {HELPER_ARG} <pid> <marker-file>");
        return 2;
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(l) = parse_line(&line) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        }
    });
    let mut deadline: Option<Instant> = None;
    loop {
        let received = match deadline {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
        };
        match received {
            Ok(Line::Kick(t)) => deadline = Some(Instant::now() + t),
            Ok(Line::Close) => deadline = None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return 0,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Only the daemon that started us is ever killed: if it is gone (we were
                // reparented), its pid may already belong to another process.
                let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
                if parent != Some(pid) {
                    return 0;
                }
                let _ = std::fs::write(
                    &marker,
                    format!("watchdog fired: daemon {pid} was not kicked in time\n"),
                );
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
                return 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kick_and_close() {
        assert_eq!(
            parse_line("kick 1500"),
            Some(Line::Kick(Duration::from_millis(1500)))
        );
        assert_eq!(parse_line("close"), Some(Line::Close));
        assert_eq!(parse_line("kick"), None);
        assert_eq!(parse_line("kick soon"), None);
    }
}
