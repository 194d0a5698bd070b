//! Domains: what "the VM is running on this host" means without a hypervisor.
//!
//! A VM whose `other-config:command` is set runs that command (`sh -c`) as its domain: real
//! downtime can be measured, and the shell dies with the daemon (parent-death signal), as a
//! guest dies with its host. The command runs in a process group of its own, so stopping the
//! domain ends everything it started, not only the shell. Any other VM's domain is a token
//! kept in the daemon's memory, which also dies with it.
//!
//! The parent-death signal reaches only the shell: what the shell started (a command that does
//! not `exec`) would outlive a crashed daemon. So each command domain's group is recorded in
//! the state directory (`STATE/domains/<vm-uuid>`: group id and the leader's start time) until
//! it stops, and a daemon that starts kills every recorded group still there
//! ([`kill_leftovers`]) before anything can start a domain. Either way, a daemon restart finds
//! no domains running.
//!
//! Starts can also be held ([`Domains::hold_starts`]): a restarted member holds them until its
//! master has marked the VMs that died with the previous daemon halted, so no new domain can be
//! mistaken for a lost one.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
pub struct Domains {
    running: Mutex<HashMap<String, Domain>>,
    /// Where command domains' groups are recorded (`STATE/domains`), if anywhere.
    records: Option<PathBuf>,
    /// Whether starts are allowed (see [`Domains::hold_starts`]).
    open: tokio::sync::watch::Sender<bool>,
}

impl Default for Domains {
    fn default() -> Domains {
        Domains::new(None)
    }
}

/// Where a host's state directory keeps its command domains' records: written by
/// [`Domains`], swept at the next start by [`kill_leftovers`].
pub fn records_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("domains")
}

impl Domains {
    /// No domains yet, recording command domains' groups in `records` if given. Starts are
    /// allowed.
    pub fn new(records: Option<PathBuf>) -> Domains {
        Domains {
            running: Mutex::default(),
            records,
            open: tokio::sync::watch::Sender::new(true),
        }
    }

    /// Refuse starts until [`Domains::release_starts`].
    pub fn hold_starts(&self) {
        self.open.send_replace(false);
    }

    /// Allow starts again.
    pub fn release_starts(&self) {
        self.open.send_replace(true);
    }

    /// Wait (at most `limit`) until starts are allowed; whether they are.
    pub async fn wait_until_open(&self, limit: Duration) -> bool {
        let mut rx = self.open.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|open| *open))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Start the domain of `vm`: run `command` if given, otherwise keep an in-daemon token.
    pub fn start(&self, vm: &str, command: Option<&str>) -> Result<(), DomainError> {
        if !*self.open.borrow() {
            return Err(DomainError {
                vm: vm.into(),
                reason: "the host is still starting".into(),
            });
        }
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
                let child = c.spawn().map_err(|e| DomainError {
                    vm: vm.into(),
                    reason: e.to_string(),
                })?;
                if let Some(dir) = &self.records {
                    // A domain whose group cannot be recorded could outlive a crash unseen.
                    if let Err(e) = record(dir, vm, child.id()) {
                        if let Some(g) = group_of(&child) {
                            let _ = rustix::process::kill_process_group(g, Signal::KILL);
                        }
                        let mut child = child;
                        let _ = child.wait();
                        return Err(DomainError {
                            vm: vm.into(),
                            reason: format!("could not record its process group: {e}"),
                        });
                    }
                }
                Domain::Process(child)
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
        self.forget_record(vm);
    }

    fn forget_record(&self, vm: &str) {
        if let Some(path) = self.records.as_deref().and_then(|d| record_path(d, vm)) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(vm, error = %e, "could not remove the domain's record"),
            }
        }
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
        let drained: Vec<(String, Domain)> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (vm, d) in drained {
            if let Domain::Process(mut child) = d {
                if let Some(g) = group_of(&child) {
                    let _ = rustix::process::kill_process_group(g, Signal::KILL);
                }
                let _ = child.wait();
                self.forget_record(&vm);
            }
        }
    }
}

/// The record of `vm`'s group in `dir`, or `None` for a name that is not a plain file name
/// (VM UUIDs always are).
fn record_path(dir: &Path, vm: &str) -> Option<PathBuf> {
    let plain = !vm.is_empty() && !vm.starts_with('.') && !vm.contains('/');
    plain.then(|| dir.join(vm))
}

/// Record the group led by `leader` (its pid is the group id) with the leader's start time,
/// written whole (temporary file, then rename) so a crash never leaves half a record.
fn record(dir: &Path, vm: &str, leader: u32) -> std::io::Result<()> {
    let path = record_path(dir, vm).ok_or_else(|| std::io::Error::other("not a VM UUID"))?;
    let started = proc_stat(leader)
        .map(|s| s.start_time)
        .ok_or_else(|| std::io::Error::other("the shell vanished at once"))?;
    std::fs::create_dir_all(dir)?;
    super::files::write_whole(&path, format!("{leader} {started}\n").as_bytes())
}

/// What `/proc/<pid>/stat` says about a process that matters here.
struct ProcStat {
    group: u32,
    /// Field 22: clock ticks after boot. A reused pid has a later one.
    start_time: u64,
    zombie: bool,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        zombie: *fields.first()? == "Z",
        group: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// A recorded process group found still running at start-up, and killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The VM (UUID) whose domain it was.
    pub vm: String,
    /// The process group id.
    pub group: u32,
    /// How many of its processes were alive.
    pub processes: usize,
}

/// At daemon start, before any domain can start: SIGKILL every group recorded in `dir` that is
/// still the group the previous daemon started, then clear the records. A group is the same
/// when its leader is alive with the recorded start time, or (the shell gone) when its
/// remaining members all started after that time: a pid in use as a group id is never handed
/// out again, so a group of that id with no leader and such members is ours unless the pid
/// was freed, reused by a new group leader and that leader exited too. A record
/// that matches nothing is stale (the domain ended with its host, or was reused) and is dropped.
pub fn kill_leftovers(dir: &Path) -> std::io::Result<Vec<Leftover>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut killed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let vm = entry.file_name().to_string_lossy().to_string();
        if !vm.starts_with('.') {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut words = text.split_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(group)), Some(Ok(started))) = (words.next(), words.next()) {
                let group = u32::try_from(group).unwrap_or(0);
                let members = group_members(group, started);
                if group > 1 && members > 0 {
                    if let Some(g) = Pid::from_raw(group as i32) {
                        let _ = rustix::process::kill_process_group(g, Signal::KILL);
                    }
                    killed.push(Leftover {
                        vm,
                        group,
                        processes: members,
                    });
                }
            }
        }
        std::fs::remove_file(&path)?;
    }
    Ok(killed)
}

/// How many live processes are in group `group` as the previous daemon started it (leader
/// started at `started`): 0 if the group is gone or is not that one.
fn group_members(group: u32, started: u64) -> usize {
    if let Some(leader) = proc_stat(group) {
        // The pid is someone else's now (it was free, so our group had ended).
        if leader.group != group || leader.start_time != started {
            return 0;
        }
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_stat)
        .filter(|p| p.group == group && !p.zombie && p.start_time >= started)
        .count()
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

    fn wait_gone(pid: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A domain's group is recorded while it runs and forgotten when it stops; a group left
    /// behind by a daemon that never stopped it (here: leaked) is killed by the next start's
    /// sweep, grandchildren included, and the records are cleared.
    #[tokio::test]
    async fn recorded_groups_are_killed_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("domains");
        let d = Domains::new(Some(records.clone()));
        let file = dir.path().join("pid");
        d.start(
            "stopped",
            Some(&format!("sleep 300 & echo $! > {}; wait", file.display())),
        )
        .unwrap();
        assert!(records.join("stopped").exists());
        let grandchild = wait_for_pid(&file);
        d.stop("stopped", Duration::ZERO).await;
        wait_gone(&grandchild, "the stopped domain's grandchild outlived it");
        assert!(
            !records.join("stopped").exists(),
            "a stop forgets the record"
        );

        std::fs::remove_file(&file).unwrap();
        d.start(
            "left",
            Some(&format!("sleep 300 & echo $! > {}; wait", file.display())),
        )
        .unwrap();
        let grandchild = wait_for_pid(&file);
        // What a crash leaves: the daemon's memory is gone, the processes are not.
        std::mem::forget(d);
        assert!(alive(&grandchild));
        let killed = kill_leftovers(&records).unwrap();
        assert_eq!(killed.len(), 1, "{killed:?}");
        assert_eq!(killed[0].vm, "left");
        assert_eq!(killed[0].processes, 2, "the shell and its sleep");
        wait_gone(&grandchild, "the leftover grandchild survived the sweep");
        assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
    }

    /// A record whose group is gone, or whose pid now leads a group started later, kills
    /// nothing and is dropped.
    #[test]
    fn stale_records_kill_nothing() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let mut other = Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = other.id();
        let started = proc_stat(pid).unwrap().start_time;
        // The same pid and group, but "started" earlier than this process was: a reused pid.
        std::fs::write(
            dir.path().join("reused"),
            format!("{pid} {}\n", started - 1),
        )
        .unwrap();
        std::fs::write(dir.path().join("gone"), "4194304 1\n").unwrap();
        std::fs::write(dir.path().join("garbage"), "not a record").unwrap();
        assert_eq!(kill_leftovers(dir.path()).unwrap(), vec![]);
        assert!(alive(&pid.to_string()), "an unrelated group was killed");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(kill_leftovers(&dir.path().join("absent")).unwrap(), vec![]);
    }

    #[tokio::test]
    async fn held_starts_are_refused_until_released() {
        let d = Domains::default();
        d.hold_starts();
        assert!(d.start("a", None).is_err());
        assert!(!d.wait_until_open(Duration::from_millis(20)).await);
        d.release_starts();
        assert!(d.wait_until_open(Duration::from_secs(5)).await);
        d.start("a", None).unwrap();
    }
}
