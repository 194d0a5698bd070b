//! Crash test: a stream of writes to a three-host pool while master and members are killed
//! with SIGKILL at random moments and restarted.
//!
//! Right after each acknowledged write, every member the master counts as live must already
//! hold it (an implementation that acknowledged before replicating fails here). At the end the
//! master hands over to a member, and every host's database file holds every acknowledged
//! write, the same VMs as every other host, and no write half there.
//!
//! The schedule is seeded; a failure prints the seed (`CRASH_SEED=<n>` replays it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{raw, TestDaemon};
use serde_json::{json, Value as Json};
use xenha::model::Value;
use xenha::pool::{Database, Dump};

const KILLS: usize = 50;

fn local(socket: &Path, method: &str, params: Json) -> Option<Json> {
    if !socket.exists() {
        return None;
    }
    let body = json!({"jsonrpc":"2.0","method":method,"params":params,"id":1}).to_string();
    let r = raw::try_post_unix(socket, "/jsonrpc", body.as_bytes()).ok()?;
    let doc: Json = serde_json::from_str(&r.body).ok()?;
    doc.get("error").is_none().then(|| doc["result"].clone())
}

/// The (epoch, generation) of a host's own copy, if it answers.
fn stamp(socket: &Path, secret: &str) -> Option<(i64, i64)> {
    let s = local(socket, "pool.internal_ping", json!([secret]))?;
    Some((s["epoch"].as_i64()?, s["generation"].as_i64()?))
}

/// A host's own copy of the database, if it answers (pool-internal calls are not forwarded).
fn copy(socket: &Path, secret: &str) -> Option<Dump> {
    let d = local(socket, "pool.internal_dump", json!([secret]))?;
    serde_json::from_str(d.as_str()?).ok()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the writer learnt: the acknowledged names, and how many of them were checked on a
/// member right after their acknowledgement.
#[derive(Default)]
struct Record {
    acked: BTreeSet<String>,
    checked_on_members: usize,
}

/// After `name` was acknowledged by the master: every member the master says is live holds it.
/// A member the master marks live after the acknowledgement was brought up to date with a copy
/// taken after it, so it holds it too. Returns how many members were checked, or a complaint.
fn check_on_members(
    master: &Path,
    members: &[(PathBuf, String)],
    secret: &str,
    name: &str,
) -> Result<usize, String> {
    // Nothing can be said if the master died after answering.
    let Some(session) = local(master, "session.login_with_password", json!(["root", ""])) else {
        return Ok(0);
    };
    let Some(master_stamp) = stamp(master, secret) else {
        return Ok(0);
    };
    let mut checked = 0;
    for (socket, metrics) in members {
        let live = local(master, "host_metrics.get_live", json!([session, metrics]));
        if live != Some(json!(true)) {
            continue;
        }
        // A copy of the master's epoch at or past the master's generation read after the
        // acknowledgement holds the write; otherwise look for the record itself.
        if let Some((e, g)) = stamp(socket, secret) {
            if e == master_stamp.0 && g >= master_stamp.1 {
                checked += 1;
                continue;
            }
        }
        // A member killed since cannot be asked now; its file is read at the end.
        let Some(dump) = copy(socket, secret) else {
            continue;
        };
        let has = dump.objects.iter().any(|(class, _, vm)| {
            class == "VM" && vm.get("name_label").and_then(Value::as_str) == Some(name)
        });
        if !has {
            return Err(format!(
                "{} is live on the master but lacks acknowledged {name} (its copy {}/{}, master {master_stamp:?})",
                socket.display(),
                dump.stamp.epoch,
                dump.stamp.generation
            ));
        }
        checked += 1;
    }
    let _ = local(master, "session.logout", json!([session]));
    Ok(checked)
}

fn vm_names(t: &xenha::pool::Tables) -> BTreeSet<String> {
    t.all("VM")
        .filter_map(|(_, vm)| {
            vm.get("name_label")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// Wait (bounded) until every host answers with the same stamp.
fn wait_level(hosts: &[TestDaemon], ips: &[&str], secret: &str, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stamps: Vec<_> = hosts.iter().map(|h| stamp(&h.socket, secret)).collect();
        if stamps.iter().all(|s| s.is_some() && *s == stamps[0]) {
            return;
        }
        if Instant::now() >= deadline {
            for (h, ip) in hosts.iter().zip(ips) {
                let log = h.log();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!("---- the last lines of {ip}'s log ----");
                for l in &lines[lines.len().saturating_sub(20)..] {
                    eprintln!("{l}");
                }
            }
            panic!("the copies did not become level: {stamps:?} (seed {seed})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn no_acknowledged_write_is_lost_across_fifty_kills() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    eprintln!("crash test seed {seed} (CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let port = std::net::TcpListener::bind("127.0.2.21:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ips = ["127.0.2.21", "127.0.2.22", "127.0.2.23"];
    let mut hosts: Vec<TestDaemon> = ips
        .iter()
        .map(|ip| TestDaemon::start_at(ip, port, &[]))
        .collect();
    for h in &hosts[1..] {
        let s = local(
            &h.socket,
            "session.login_with_password",
            json!(["root", ""]),
        )
        .unwrap();
        local(
            &h.socket,
            "pool.join",
            json!([s, ips[0], "root", common::PASSWORD]),
        )
        .expect("join");
    }
    let secret = std::fs::read_to_string(hosts[0].state_dir().join("pool-secret"))
        .unwrap()
        .trim()
        .to_string();
    let master_socket = hosts[0].socket.clone();
    // Each member's socket and its host_metrics ref on the master.
    let (members, host_refs): (Vec<(PathBuf, String)>, Vec<Json>) = {
        let s = local(
            &master_socket,
            "session.login_with_password",
            json!(["root", ""]),
        )
        .unwrap();
        let all = local(&master_socket, "host.get_all_records", json!([s])).unwrap();
        hosts
            .iter()
            .zip(ips)
            .map(|(h, ip)| {
                let (r, rec) = all
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, rec)| rec["address"] == json!(ip))
                    .unwrap();
                let metrics = rec["metrics"].as_str().unwrap().to_string();
                ((h.socket.clone(), metrics), json!(r))
            })
            .unzip()
    };
    let members = members[1..].to_vec();

    // The writer: VM.create through the master's local socket, one acknowledged name at a time,
    // each checked on the live members as soon as it is acknowledged.
    let record = Arc::new(Mutex::new(Record::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (record, stop, next) = (record.clone(), stop.clone(), next.clone());
        let (socket, secret) = (master_socket.clone(), secret.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let mut session: Option<Json> = None;
            while !stop.load(Ordering::Relaxed) {
                if session.is_none() {
                    session = local(&socket, "session.login_with_password", json!(["root", ""]));
                    if session.is_none() {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
                // Not acknowledged names are never reused: the old one may or may not have
                // been committed.
                let n = next.fetch_add(1, Ordering::SeqCst);
                let name = format!("w-{n}");
                let created = local(
                    &socket,
                    "VM.create",
                    json!([session, {"name_label": name, "other_config": {"seq": n.to_string()}}]),
                );
                if created.is_none() {
                    // The daemon died, or the session with it.
                    session = None;
                    continue;
                }
                let checked = check_on_members(&socket, &members, &secret, &name)?;
                let mut r = record.lock().unwrap();
                r.acked.insert(name);
                r.checked_on_members += checked;
            }
            Ok(())
        })
    };

    for kill in 0..KILLS {
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        let victim = rng.below(3) as usize;
        hosts[victim].kill9();
        std::thread::sleep(Duration::from_millis(rng.below(100)));
        hosts[victim].restart();
        if kill % 10 == 9 {
            let r = record.lock().unwrap();
            eprintln!(
                "{} kills, {} acknowledged writes, {} checks on members",
                kill + 1,
                r.acked.len(),
                r.checked_on_members
            );
        }
        if writer.is_finished() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    if let Err(e) = writer.join().unwrap() {
        panic!("{e} (seed {seed})");
    }
    let Record {
        mut acked,
        checked_on_members,
    } = std::mem::take(&mut *record.lock().unwrap());
    assert!(
        acked.len() > 50,
        "the writer made progress ({} writes)",
        acked.len()
    );
    // Members spend much of the run dead or waiting to be brought back, but the check must
    // not be vacuous.
    assert!(
        checked_on_members >= 50,
        "acknowledged writes were checked on live members ({checked_on_members} checks, {} writes)",
        acked.len()
    );

    // The master brings every member up to date, then hands over to one of them; the new
    // master acknowledges a few more writes.
    wait_level(&hosts, &ips, &secret, seed);
    let s = local(
        &master_socket,
        "session.login_with_password",
        json!(["root", ""]),
    )
    .unwrap();
    local(
        &master_socket,
        "pool.designate_new_master",
        json!([s, host_refs[1]]),
    )
    .expect("designate a new master");
    let s1 = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = local(
                &hosts[1].socket,
                "session.login_with_password",
                json!(["root", ""]),
            );
            let follows = s.as_ref().is_some_and(|s| {
                local(&hosts[1].socket, "pool.get_all_records", json!([s])).and_then(|p| {
                    p.as_object()
                        .map(|p| p.values().all(|p| p["master"] == host_refs[1]))
                }) == Some(true)
            });
            if follows {
                break s.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the new master did not take over (seed {seed})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let n = next.load(Ordering::SeqCst);
    for i in 0..3 {
        let name = format!("w-{}", n + i);
        local(
            &hosts[1].socket,
            "VM.create",
            json!([s1, {"name_label": name, "other_config": {"seq": (n + i).to_string()}}]),
        )
        .expect("a write on the new master");
        acked.insert(name);
    }
    wait_level(&hosts, &ips, &secret, seed);
    for h in &mut hosts {
        h.kill9();
    }

    // Read every host's database file directly: each holds every acknowledged write, all hold
    // the same VMs, and every VM is whole.
    let mut first: Option<BTreeSet<String>> = None;
    for (h, ip) in hosts.iter().zip(ips) {
        let db = Database::open(&h.state_dir().join("pool.db")).unwrap();
        let t = db.read();
        let names = vm_names(&t);
        let lost: Vec<&String> = acked.difference(&names).collect();
        assert!(
            lost.is_empty(),
            "{ip} lost acknowledged writes {lost:?} (seed {seed})"
        );
        match &first {
            None => first = Some(names),
            Some(f) => assert_eq!(
                f.symmetric_difference(&names).collect::<Vec<_>>(),
                Vec::<&String>::new(),
                "{ip} holds other VMs than {} (seed {seed})",
                ips[0]
            ),
        }
        for (r, vm) in t.all("VM") {
            let name = vm["name_label"].as_str().unwrap();
            let seq = vm["other_config"]
                .as_struct()
                .and_then(|m| m.get("seq"))
                .and_then(Value::as_str);
            assert_eq!(
                Some(name.trim_start_matches("w-")),
                seq,
                "{ip}: VM {r} is half written (seed {seed})"
            );
            let metrics = vm["metrics"].as_str().unwrap();
            assert!(
                t.get("VM_metrics", metrics).is_some(),
                "{ip}: VM {r} lost its metrics (seed {seed})"
            );
        }
    }
}
