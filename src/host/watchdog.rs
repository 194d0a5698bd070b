//! The process watchdog: a small helper process that kills this daemon unless it is kicked in
//! time, so a hung or stopped daemon (SIGSTOP, a deadlock, a stalled disk under a lock) is
//! fenced even though it can no longer fence itself.
//!
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
