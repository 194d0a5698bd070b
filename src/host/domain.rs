//! Domains: what "the VM is running on this host" means without a hypervisor.
//!
//! A VM whose `other-config:command` is set runs that command (`sh -c`) as its domain: real
//! downtime can be measured, and the shell dies with the daemon (parent-death signal), as a
//! guest dies with its host. The command runs in a process group of its own, so stopping the
//! domain ends everything it started, not only the shell. Any other VM's domain is a token
//! kept in the daemon's memory, which also dies with it. Either way, a daemon restart finds no
//! domains running.
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitIdOptions};

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
                use std::os::unix::process::CommandExt;
                let mut c = Command::new("sh");
                c.args(["-c", cmd])
                    .env("XENHA_VM_UUID", vm)
                    .stdin(Stdio::null())
                    // Its own group (id = the shell's pid): a stop reaches grandchildren too.
                    .process_group(0);
                // SAFETY: the closure only makes one async-signal-safe system call (prctl).
                unsafe {
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

    /// Stop the domain of `vm`: SIGTERM to its process group, then SIGKILL to the group after
    /// `grace` (zero for a hard stop) or as soon as the shell has gone, so nothing the command
    /// started outlives the domain. The wait sleeps on the async runtime, never blocking one of
    /// its threads. Stopping a domain that is not running is not an error: the goal is reached.
    pub async fn stop(&self, vm: &str, grace: Duration) {
        let domain = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(vm);
        let Some(Domain::Process(child)) = domain else {
            return;
        };
        let group = group_of(&child);
        if let Some(g) = group {
            let _ = rustix::process::kill_process_group(g, Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !has_exited(&child) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Reaping the shell only after this keeps its pid, the group's id, from being reused.
        end_group(child, group).await;
    }

    /// Whether `vm`'s domain is running. A command domain whose shell has exited is not.
    pub fn is_running(&self, vm: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(vm) {
            Some(Domain::InDaemon) => true,
            Some(Domain::Process(child)) => !has_exited(child),
            None => false,
        }
    }
}

/// The process group of a command domain: the shell leads it.
fn group_of(child: &Child) -> Option<Pid> {
    Pid::from_raw(child.id() as i32)
}

/// Whether the shell has exited, without reaping it (so its pid stays reserved).
fn has_exited(child: &Child) -> bool {
    let Some(pid) = group_of(child) else {
        return true;
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    match rustix::process::waitid(rustix::process::WaitId::Pid(pid), options) {
        Ok(status) => status.is_some(),
        // Already reaped (or not our child): certainly not running.
        Err(_) => true,
    }
}

/// SIGKILL whatever is left of the group, then reap the shell off the async threads.
async fn end_group(mut child: Child, group: Option<Pid>) {
    if let Some(g) = group {
        let _ = rustix::process::kill_process_group(g, Signal::KILL);
    }
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
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
                if let Some(g) = group_of(&child) {
                    let _ = rustix::process::kill_process_group(g, Signal::KILL);
                }
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_daemon_domains() {
        let d = Domains::default();
        d.start("a", None).unwrap();
        assert!(d.is_running("a"));
        assert!(d.start("a", None).is_err(), "a domain runs once");
        d.stop("a", Duration::ZERO).await;
        assert!(!d.is_running("a"));
        d.stop("a", Duration::ZERO).await;
    }

    #[tokio::test]
    async fn command_domains_are_real_processes() {
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
        while std::fs::read_to_string(&marker).map_or(true, |s| s.trim().is_empty()) {
            assert!(Instant::now() < deadline, "the command never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "b");
        assert!(d.is_running("b"));
        d.stop("b", Duration::from_secs(5)).await;
        assert!(!d.is_running("b"));
        // A command that exits on its own is no longer running.
        d.start("c", Some("exit 0")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.is_running("c") {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_for_pid(file: &std::path::Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(file)
                .ok()
                .filter(|s| s.ends_with('\n'))
            {
                return pid.trim().to_string();
            }
            assert!(Instant::now() < deadline, "the command never wrote its pid");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn alive(pid: &str) -> bool {
        // A zombie is dead for our purpose: it only waits for its parent to reap it.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    }

    /// The shell stays the parent (no exec), so its children are grandchildren of the daemon:
    /// a stop must end them too, whether they obey SIGTERM or ignore it.
    #[tokio::test]
    async fn a_stop_ends_what_the_command_started() {
        let dir = tempfile::tempdir().unwrap();
        let d = Domains::default();
        for (vm, trap, grace) in [
            ("polite", "", Duration::from_secs(5)),
            ("stubborn", "trap '' TERM; ", Duration::from_millis(200)),
            ("hard", "", Duration::ZERO),
        ] {
            let file = dir.path().join(vm);
            d.start(
                vm,
                Some(&format!(
                    "{trap}sleep 300 & echo $! > {}; wait; true",
                    file.display()
                )),
            )
            .unwrap();
            let grandchild = wait_for_pid(&file);
            assert!(alive(&grandchild), "{vm}");
            d.stop(vm, grace).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(&grandchild) {
                assert!(
                    Instant::now() < deadline,
                    "{vm}: the grandchild outlived its domain"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
