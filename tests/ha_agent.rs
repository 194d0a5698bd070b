//! The agent driven by hand, without the simulator: the contract the daemon relies on.
//!
//! A two-host pool is wired with a minimal driver (instant network, one shared statefile),
//! enabled and armed; then a fence request is injected as raw bytes. Signed with the pool
//! secret it fences the host at once; forged with another key, or replayed, it changes nothing.

use xenha::ha::packet::{Heartbeat, PacketKey};
use xenha::ha::{
    statefile, Agent, Command, HostSet, HostUuid, Input, Output, Phase, PoolConfig, Timeouts,
};

const SECRET: &[u8] = b"two-host-pool-secret-0123456789";

fn config() -> PoolConfig {
    let hosts = vec![
        HostUuid::parse("11111111-0000-0000-0000-000000000000").unwrap(),
        HostUuid::parse("22222222-0000-0000-0000-000000000000").unwrap(),
    ];
    PoolConfig::new(
        [3; 16],
        hosts,
        SECRET.to_vec(),
        Timeouts::derive(1000).unwrap(),
    )
    .unwrap()
}

/// Runs both agents until `until` ms, returning every output with its host.
fn drive(agents: &mut [Agent; 2], file: &mut [u8], from: u64, until: u64) -> Vec<(usize, Output)> {
    let mut seen = Vec::new();
    let mut now = from;
    while now <= until {
        for a in agents.iter_mut() {
            a.handle(now, Input::Tick);
        }
        // Carry outputs out until both agents are quiet (statefile I/O completes instantly).
        loop {
            let mut any = false;
            for h in 0..2 {
                while let Some(out) = agents[h].poll_output() {
                    any = true;
                    match &out {
                        Output::Send { to, bytes } => {
                            agents[*to].handle(now, Input::Packet(bytes.clone()))
                        }
                        Output::WriteStatefile { offset, bytes, .. } => {
                            file[*offset..*offset + bytes.len()].copy_from_slice(bytes);
                            agents[h].handle(now, Input::StatefileWritten(Ok(())));
                        }
                        Output::ReadStatefile { .. } => {
                            agents[h].handle(now, Input::StatefileRead(Ok(file.to_vec())))
                        }
                        _ => {}
                    }
                    seen.push((h, out));
                }
            }
            if !any {
                break;
            }
        }
        now += 10;
    }
    seen
}

#[test]
fn enable_arms_both_hosts_and_only_an_authentic_fence_request_fences() {
    let cfg = config();
    let mut agents = [
        Agent::new(cfg.clone(), cfg.hosts[0], 1).unwrap(),
        Agent::new(cfg.clone(), cfg.hosts[1], 1).unwrap(),
    ];
    let mut file = statefile::initial(cfg.generation, 2);
    for a in agents.iter_mut() {
        a.handle(0, Input::Command(Command::Enable));
    }
    let outs = drive(&mut agents, &mut file, 0, 1000);
    assert!(agents
        .iter()
        .all(|a| a.is_armed() && a.liveset() == HostSet::first_n(2)));
    assert!(outs
        .iter()
        .any(|(h, o)| *h == 0 && matches!(o, Output::BecameMaster { epoch: 1 })));
    assert!(outs
        .iter()
        .any(|(h, o)| *h == 1 && matches!(o, Output::Watchdog(_))));
    assert!(outs.iter().all(|(_, o)| !matches!(o, Output::Fence(_))));

    // Host 0 "removes" host 1: a fence request from host 0 to host 1.
    let request = |seq: u64| Heartbeat {
        generation: cfg.generation,
        sender: 0,
        sender_uuid: cfg.hosts[0],
        dest: 1,
        sequence: (1 << 32) + seq,
        echo_seq: 0,
        epoch: 1,
        admitted: 1,
        phase: Phase::FaultHandling,
        sf_access: true,
        fence_request: true,
        joining: false,
        starting: false,
        sr2: false,
        master: true,
        current: HostSet::first_n(2),
        proposed: HostSet::single(0),
        hbdomain: HostSet::single(0),
        sfdomain: HostSet::first_n(2),
    };
    let forged = request(1_000_000).encode(1, &PacketKey::new(b"attacker-guessed-secret"));
    agents[1].handle(1001, Input::Packet(forged));
    assert!(
        agents[1].is_armed(),
        "a forged fence request must be ignored"
    );
    let stale = request(1).encode(1, &PacketKey::new(SECRET));
    agents[1].handle(1002, Input::Packet(stale));
    assert!(
        agents[1].is_armed(),
        "a replayed (old-sequence) packet must be ignored"
    );

    let genuine = request(1_000_000).encode(1, &PacketKey::new(SECRET));
    agents[1].handle(1003, Input::Packet(genuine));
    let fenced: Vec<Output> = std::iter::from_fn(|| agents[1].poll_output()).collect();
    assert!(fenced
        .iter()
        .any(|o| matches!(o, Output::Fence(r) if r.to_string().contains("fence request from h0"))));
    assert_eq!(agents[1].phase(), Phase::Fenced);
    assert_eq!(
        agents[1].poll_timeout(),
        None,
        "a fenced agent asks for nothing more"
    );
}

#[test]
fn a_partitioned_member_fences_before_its_lease_and_watchdog_run_out() {
    let cfg = config();
    let mut agents = [
        Agent::new(cfg.clone(), cfg.hosts[0], 1).unwrap(),
        Agent::new(cfg.clone(), cfg.hosts[1], 1).unwrap(),
    ];
    let mut file = statefile::initial(cfg.generation, 2);
    for a in agents.iter_mut() {
        a.handle(0, Input::Command(Command::Enable));
    }
    drive(&mut agents, &mut file, 0, 1000);
    // From now on host 1 hears nothing and reads nothing: only time passes.
    let lease = cfg.timeouts.lease;
    let mut last_kick_deadline = 0;
    let mut fenced_at = None;
    for now in (1010..1010 + 2 * lease).step_by(10) {
        agents[1].handle(now, Input::Tick);
        while let Some(out) = agents[1].poll_output() {
            match out {
                Output::Watchdog(xenha::ha::WatchdogAction::Kick { timeout_ms }) => {
                    last_kick_deadline = now + timeout_ms;
                }
                Output::Fence(_) => fenced_at = fenced_at.or(Some(now)),
                _ => {}
            }
        }
    }
    let fenced_at = fenced_at.expect("a member that hears nobody must fence");
    // It fenced no later than its watchdog would have fired, and within one lease of the
    // last heartbeat it could have been granted on (sent before 1000 ms).
    assert!(
        fenced_at <= last_kick_deadline,
        "fenced {fenced_at}, watchdog due {last_kick_deadline}"
    );
    assert!(fenced_at <= 1000 + lease, "fenced at {fenced_at}");
}

#[test]
fn the_first_master_named_at_enable_takes_the_lock_even_with_the_higher_uuid() {
    // Without a first master the lower UUID (h0) wins; naming h1 (the pool master at enable)
    // makes h1 the master, so enabling HA does not move the pool master.
    for (first, expected) in [(None, 0usize), (Some(1usize), 1)] {
        let mut cfg = config();
        cfg.first_master = first.map(|i| cfg.hosts[i]);
        let mut agents = [
            Agent::new(cfg.clone(), cfg.hosts[0], 1).unwrap(),
            Agent::new(cfg.clone(), cfg.hosts[1], 1).unwrap(),
        ];
        let mut file = statefile::initial(cfg.generation, 2);
        for a in agents.iter_mut() {
            a.handle(0, Input::Command(Command::Enable));
        }
        let outs = drive(&mut agents, &mut file, 0, 3000);
        let masters: Vec<usize> = outs
            .iter()
            .filter(|(_, o)| matches!(o, Output::BecameMaster { .. }))
            .map(|(h, _)| *h)
            .collect();
        assert_eq!(masters, vec![expected], "first master {first:?}");
        assert_eq!(agents[expected].master_epoch(), Some(1));
        assert_eq!(agents[1 - expected].master_epoch(), None);
    }
}
