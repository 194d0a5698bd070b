//! Domains: what "the VM is running on this host" means without a hypervisor.
//!
//! A VM whose `other-config:command` is set runs that command (`sh -c`) as its domain: real
//! downtime can be measured, and the process dies with the daemon (parent-death signal), as a
//! guest dies with its host. Any other VM's domain is a token kept in the daemon's memory,
//! which also dies with it. Either way, a daemon restart finds no domains running.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a domain could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start the domain of VM {vm}: {reason}")]
pub struct DomainError {
    /// The VM's UUID.
    pub vm: String,
    /// What went wrong.
    pub reason: String,
}

enum Domain {
    InDaemon,
    Process(Child),
}

/// The domains running on this host, by VM UUID.
#[derive(Default)]
pub struct Domains {
    running: Mutex<HashMap<String, Domain>>,
}

impl Domains {
    /// Start the domain of `vm`: run `command` if given, otherwise keep an in-daemon token.
    pub fn start(&self, vm: &str, command: Option<&str>) -> Result<(), DomainError> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains_key(vm) {
            return Err(DomainError {
                vm: vm.into(),
                reason: "it is already running".into(),
            });
        }
        let domain = match command {
            None => Domain::InDaemon,
            Some(cmd) => {
                let mut c = Command::new("sh");
                c.args(["-c", cmd])
                    .env("XENHA_VM_UUID", vm)
                    .stdin(Stdio::null());
                // SAFETY: the closure only makes one async-signal-safe system call (prctl).
                unsafe {
                    use std::os::unix::process::CommandExt;
                    c.pre_exec(|| {
                        rustix::process::set_parent_process_death_signal(Some(
                            rustix::process::Signal::KILL,
                        ))
                        .map_err(std::io::Error::from)
                    });
                }
                Domain::Process(c.spawn().map_err(|e| DomainError {
                    vm: vm.into(),
                    reason: e.to_string(),
                })?)
            }
        };
        running.insert(vm.to_string(), domain);
        Ok(())
    }

    /// Stop the domain of `vm`: SIGTERM, then SIGKILL after `grace` (zero for a hard stop).
    /// Stopping a domain that is not running is not an error: the goal is reached.
    pub fn stop(&self, vm: &str, grace: Duration) {
        let domain = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(vm);
        if let Some(Domain::Process(mut child)) = domain {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether `vm`'s domain is running. A command domain whose process has exited is not.
    pub fn is_running(&self, vm: &str) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get_mut(vm) {
            Some(Domain::InDaemon) => true,
            Some(Domain::Process(child)) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Domains {
    fn drop(&mut self) {
        for (_, d) in self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            if let Domain::Process(mut child) = d {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_daemon_domains() {
        let d = Domains::default();
        d.start("a", None).unwrap();
        assert!(d.is_running("a"));
        assert!(d.start("a", None).is_err(), "a domain runs once");
        d.stop("a", Duration::ZERO);
        assert!(!d.is_running("a"));
        d.stop("a", Duration::ZERO);
    }

    #[test]
    fn command_domains_are_real_processes() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let d = Domains::default();
        d.start(
            "b",
            Some(&format!(
                "echo $XENHA_VM_UUID > {}; exec sleep 60",
                marker.display()
            )),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "the command never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "b");
        assert!(d.is_running("b"));
        d.stop("b", Duration::from_secs(5));
        assert!(!d.is_running("b"));
        // A command that exits on its own is no longer running.
        d.start("c", Some("exit 0")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.is_running("c") {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
