//! The upstream planner scenarios of the reference (§5: P1–P4, A1–A3, B1–B4 and the hand-derived
//! maximum failures), plus the xapi rules the planner must keep: who is protected, non-agile VMs,
//! halted VMs, unavailable hosts and restart order.

use xenha::planner::{self, Cause, Coverage, PlanHost, PlanVm, PoolSnapshot, RestartPriority};

const GIB: u64 = 1 << 30;

/// A host of `total` GiB, free memory being total minus the VMs listed on it.
fn host(id: &str, total_gib: u64, vms_gib: &[u64]) -> PlanHost {
    let used: u64 = vms_gib.iter().sum();
    PlanHost::new(id, ((total_gib - used) * GIB) as i64)
}

fn vm(id: &str, gib: u64, on: Option<&str>) -> PlanVm {
    PlanVm::protected(id, gib * GIB, on)
}

fn p1() -> PoolSnapshot {
    PoolSnapshot::new(
        vec![host("master", 256, &[]), host("slave", 256, &[])],
        vec![],
    )
}

fn p2() -> PoolSnapshot {
    PoolSnapshot::new(
        vec![host("master", 256, &[120]), host("slave", 256, &[])],
        vec![vm("vm1", 120, Some("master"))],
    )
}

fn p3() -> PoolSnapshot {
    PoolSnapshot::new(
        vec![host("master", 256, &[120, 120]), host("slave", 256, &[])],
        vec![
            vm("vm1", 120, Some("master")),
            vm("vm2", 120, Some("master")),
        ],
    )
}

fn p4() -> PoolSnapshot {
    PoolSnapshot::new(
        vec![
            host("master", 256, &[120, 120]),
            host("slave", 256, &[120, 120]),
        ],
        vec![
            vm("vm1", 120, Some("master")),
            vm("vm2", 120, Some("master")),
            vm("vm3", 120, Some("slave")),
            vm("vm4", 120, Some("slave")),
        ],
    )
}

/// The A-scenarios' new VM: protected, running but resident nowhere, passed as a VM to protect.
fn with_new_vm(mut pool: PoolSnapshot) -> PoolSnapshot {
    pool.vms.push(vm("vm-new", 120, None));
    pool
}

#[test]
fn p1_two_empty_hosts_have_a_plan_for_one_failure() {
    assert_eq!(planner::plan_exists_for(&p1(), 1), Ok(Coverage::AllVms));
}

#[test]
fn p2_one_vm_under_half_a_host_has_a_plan() {
    assert_eq!(planner::plan_exists_for(&p2(), 1), Ok(Coverage::AllVms));
}

#[test]
fn p3_two_vms_filling_the_master_fit_on_the_slave() {
    assert_eq!(planner::plan_exists_for(&p3(), 1), Ok(Coverage::AllVms));
    let plan = planner::restart_plan(&p3(), &["master"]);
    assert!(plan.is_complete());
    assert_eq!(plan.placements.len(), 2);
    assert!(plan.placements.iter().all(|p| p.host == "slave"));
}

#[test]
fn p4_an_overcommitted_pair_has_no_plan_and_says_which_vm_is_left_out() {
    let err = planner::plan_exists_for(&p4(), 1).unwrap_err();
    assert_eq!(err.failures.len(), 1);
    match &err.cause {
        Cause::VmDoesNotFit {
            vm,
            memory,
            largest_free,
        } => {
            // The first VM of the failed host (largest, then by id) meets 16 GiB free.
            let expected = if err.failures[0] == "master" {
                "vm1"
            } else {
                "vm3"
            };
            assert_eq!(vm, expected);
            assert_eq!(*memory, 120 * GIB);
            assert_eq!(*largest_free, Some(16 * GIB as i64));
        }
        other => panic!("unexpected cause {other:?}"),
    }
    assert!(err.to_string().contains("cannot be restarted"));
}

#[test]
fn derived_max_failures_match_the_hand_traced_values() {
    let max = |p: &PoolSnapshot| {
        let o = planner::max_host_failures_to_tolerate(p);
        assert!(o.exact);
        o.max_failures
    };
    assert_eq!(max(&p1()), Some(2)); // no protected VMs: every host may fail
    assert_eq!(max(&p2()), Some(1));
    assert_eq!(max(&p3()), Some(1));
    assert_eq!(max(&p4()), Some(0));
    // For P2 and P3, two failures leave no host at all.
    let o = planner::max_host_failures_to_tolerate(&p3());
    assert_eq!(
        o.limit.cause,
        Cause::NotEnoughHosts {
            available: 2,
            failures: 2
        }
    );
}

#[test]
fn a1_protecting_a_new_vm_keeps_the_plan() {
    let after = with_new_vm(p2());
    assert_eq!(planner::change_preserves_plan(&p2(), &after, 1), Ok(()));
    // The hand trace: the new VM is started on the slave, then each host covers the other.
    let plan = planner::restart_plan(&after, &[] as &[&str]);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].vm, "vm-new");
    assert_eq!(plan.placements[0].host, "slave");
}

#[test]
fn a2_protecting_a_new_vm_would_break_the_plan() {
    let after = with_new_vm(p3());
    let err = planner::change_preserves_plan(&p3(), &after, 1).unwrap_err();
    // The new VM goes on the slave (256 -> 136). Both failures now break the plan: the slave's
    // (the new VM meets the master's 16 GiB) and the master's (two 120 GiB VMs meet 136).
    assert_eq!(err.failures.len(), 1);
    let Cause::VmDoesNotFit { vm, .. } = &err.cause else {
        panic!("unexpected cause {:?}", err.cause);
    };
    let plan = planner::restart_plan(&after, &err.failures);
    assert!(plan.unplaced.contains(vm), "the evidence must reproduce");
    let by_slave = planner::restart_plan(&after, &["slave"]);
    assert_eq!(by_slave.unplaced, vec!["vm-new".to_string()]);
}

#[test]
fn a3_a_pool_without_a_plan_cannot_get_worse() {
    let before = PoolSnapshot::new(
        vec![host("master", 256, &[120, 120]), host("slave", 256, &[120])],
        vec![
            vm("vm1", 120, Some("master")),
            vm("vm2", 120, Some("master")),
            vm("vm3", 120, Some("slave")),
        ],
    );
    assert!(planner::plan_exists_for(&before, 1).is_err());
    assert_eq!(
        planner::change_preserves_plan(&before, &with_new_vm(before.clone()), 1),
        Ok(())
    );
}

#[test]
fn b1_two_vms_on_one_unit_host_break_with_one_failure() {
    let pool = PoolSnapshot::new(
        vec![PlanHost::new("0", 1), PlanHost::new("1", 1)],
        vec![
            PlanVm::protected("0", 1, Some("1")),
            PlanVm::protected("1", 1, Some("1")),
        ],
    );
    let err = planner::plan_exists_for(&pool, 1).unwrap_err();
    assert_eq!(err.failures, vec!["1".to_string()]);
    let plan = planner::restart_plan(&pool, &["1"]);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.unplaced, vec!["1".to_string()]);
    assert_eq!(planner::xapi_approximate_max_failures(&pool), 0);
}

fn b2() -> PoolSnapshot {
    PoolSnapshot::new(
        (1..=8).map(|k| PlanHost::new(k.to_string(), 500)).collect(),
        (1..=8)
            .map(|k| PlanVm::protected(k.to_string(), 400, Some(&k.to_string())))
            .collect(),
    )
}

#[test]
fn b2_eight_single_slot_hosts_cannot_take_five_failures() {
    assert!(planner::plan_exists_for(&b2(), 5).is_err());
    // Hand-derived: 4 failures move at most 4 VMs onto 4 survivors with a slot each; a fifth
    // needs a fifth slot among three survivors.
    let o = planner::max_host_failures_to_tolerate(&b2());
    assert_eq!(o.max_failures, Some(4));
    assert!(o.exact);
    assert_eq!(o.limit.failures.len(), 5);
    // xapi's approximation (the heuristic it picks here, 56·120 ≥ 3500) also says 4.
    assert_eq!(planner::xapi_approximate_max_failures(&b2()), 4);
}

/// A tiny deterministic generator for B3's random variant (xorshift64*).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn b3_ten_roomy_hosts_take_three_failures() {
    let layouts: [&[usize]; 3] = [&[0, 0, 0, 0, 0], &[0, 1, 2, 3, 4], &[0, 0, 1, 1, 2]];
    for layout in layouts {
        let pool = PoolSnapshot::new(
            (0..10)
                .map(|k| PlanHost::new(format!("h{k}"), 500))
                .collect(),
            layout
                .iter()
                .enumerate()
                .map(|(i, &h)| PlanVm::protected(format!("v{i}"), 256, Some(&format!("h{h}"))))
                .collect(),
        );
        assert_eq!(planner::plan_exists_for(&pool, 3), Ok(Coverage::AllVms));
    }
    // make_config 10 500 1000 5 256 1 3: free 500 + rand[0,1000), VMs placed at random.
    let mut seed = 0x5eed_u64;
    for _ in 0..50 {
        let pool = PoolSnapshot::new(
            (0..10)
                .map(|k| PlanHost::new(format!("h{k}"), 500 + (next(&mut seed) % 1000) as i64))
                .collect(),
            (0..5)
                .map(|i| {
                    let h = next(&mut seed) % 10;
                    PlanVm::protected(format!("v{i}"), 256, Some(&format!("h{h}")))
                })
                .collect(),
        );
        assert_eq!(planner::plan_exists_for(&pool, 3), Ok(Coverage::AllVms));
        // And no failure sequence of three hosts leaves a VM out.
        for a in 0..10 {
            for b in 0..10 {
                for c in 0..10 {
                    if a != b && b != c && a != c {
                        let seq = [format!("h{a}"), format!("h{b}"), format!("h{c}")];
                        assert!(planner::restart_plan(&pool, &seq).is_complete());
                    }
                }
            }
        }
    }
}

#[test]
fn b4_evacuation_fallback_plan_is_biggest_fit_decreasing() {
    let pool = PoolSnapshot::new(
        vec![
            PlanHost::new("master", 100 * GIB as i64),
            PlanHost::new("slave1", 0),
            PlanHost::new("slave2", 80 * GIB as i64),
            PlanHost::new("slave3", 70 * GIB as i64),
        ],
        vec![
            vm("vm1", 95, Some("slave1")),
            vm("vm2", 75, Some("slave1")),
            vm("vm3_grp1", 30, Some("slave1")),
            vm("vm2_grp1", 20, Some("slave1")),
            vm("vm1_grp1", 10, Some("slave1")),
        ],
    );
    let plan = planner::restart_plan(&pool, &["slave1"]);
    let got: Vec<(&str, &str)> = plan
        .placements
        .iter()
        .map(|p| (p.vm.as_str(), p.host.as_str()))
        .collect();
    // xapi returns the same mapping last allocation first; ours is in allocation order.
    assert_eq!(
        got,
        [
            ("vm1", "master"),
            ("vm2", "slave2"),
            ("vm3_grp1", "slave3"),
            ("vm2_grp1", "slave3"),
            ("vm1_grp1", "slave3"),
        ]
    );
}

#[test]
fn only_restart_priority_is_protected() {
    // V1: best-effort and "" VMs are ignored, whatever their size.
    let mut pool = p2();
    for (id, prio) in [
        ("be", RestartPriority::BestEffort),
        ("none", RestartPriority::None),
    ] {
        let mut v = vm(id, 1000, Some("master"));
        v.restart_priority = prio;
        pool.vms.push(v);
    }
    assert_eq!(
        planner::max_host_failures_to_tolerate(&pool).max_failures,
        Some(1)
    );
    assert_eq!(
        RestartPriority::parse("best-effort"),
        Some(RestartPriority::BestEffort)
    );
    assert_eq!(RestartPriority::parse("always"), None);
}

#[test]
fn non_agile_vms_are_pinned_and_excluded_like_xapi() {
    let mut pool = p2();
    // A halted non-agile VM that may boot on the slave only: it is pinned there and takes room.
    let mut pinned = vm("local", 100, None);
    pinned.allowed_hosts = Some(vec!["slave".into()]);
    pool.vms.push(pinned);
    let o = planner::max_host_failures_to_tolerate(&pool);
    assert_eq!(o.coverage, Coverage::ExcludingNonAgile);
    // The slave has 156 GiB left, still enough for vm1 (120): one failure is covered...
    assert_eq!(o.max_failures, Some(1));
    // ...but xapi's bisection only accepts Plan_exists_for_all_VMs, so it reports 0.
    assert_eq!(o.xapi_value(), 0);
    assert_eq!(
        planner::plan_exists_for(&pool, 1),
        Ok(Coverage::ExcludingNonAgile)
    );
    let plan = planner::restart_plan(&pool, &[] as &[&str]);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(
        (
            plan.placements[0].vm.as_str(),
            plan.placements[0].host.as_str()
        ),
        ("local", "slave")
    );
    // When its host fails it has nowhere to go, and the agile VMs are still placed.
    let plan = planner::restart_plan(&pool, &["slave"]);
    assert_eq!(plan.unplaced, vec!["local".to_string()]);

    // A bigger pinned VM eats the room vm1 needs.
    let mut pool = p2();
    let mut pinned = vm("local", 200, None);
    pinned.allowed_hosts = Some(vec!["slave".into(), "master".into()]);
    pool.vms.push(pinned);
    // Pinned to "master" (first by id): the master has 136 free, not enough for 200, so the VM
    // stays halted and the plan for vm1 is untouched.
    assert_eq!(
        planner::plan_exists_for(&pool, 1),
        Ok(Coverage::ExcludingNonAgile)
    );
}

#[test]
fn halted_vms_that_cannot_start_mean_no_plan_even_without_failures() {
    let mut pool = p4();
    pool.vms.push(vm("late", 64, None));
    let o = planner::max_host_failures_to_tolerate(&pool);
    assert_eq!(o.max_failures, None);
    assert!(o.limit.failures.is_empty());
    assert_eq!(o.xapi_value(), 0);
    assert!(planner::plan_exists_for(&pool, 0).is_err());
}

#[test]
fn unavailable_hosts_receive_nothing_and_their_vms_are_restarted() {
    let mut pool = PoolSnapshot::new(
        vec![host("a", 16, &[8]), host("b", 16, &[]), host("c", 64, &[])],
        vec![vm("v1", 8, Some("a"))],
    );
    pool.hosts[2].enabled = false; // c is disabled: never a target
    let plan = planner::restart_plan(&pool, &["a"]);
    assert_eq!(plan.placements[0].host, "b");
    pool.hosts[0].live = false; // a is dead: v1 is restarted straight away
    let plan = planner::restart_plan(&pool, &[] as &[&str]);
    assert_eq!(plan.placements[0].vm, "v1");
    assert_eq!(plan.placements[0].host, "b");
    // Only b is left, so no failure can be tolerated.
    assert_eq!(
        planner::max_host_failures_to_tolerate(&pool).max_failures,
        Some(0)
    );
}

#[test]
fn restart_plan_runs_by_order_with_negative_orders_last() {
    let mut vms = vec![
        vm("z", 1, Some("a")),
        vm("y", 2, Some("a")),
        vm("x", 3, Some("a")),
    ];
    vms[0].order = 1;
    vms[1].order = -1;
    vms[2].order = 2;
    let pool = PoolSnapshot::new(vec![host("a", 64, &[6]), host("b", 64, &[])], vms);
    let plan = planner::restart_plan(&pool, &["a"]);
    let order: Vec<&str> = plan.placements.iter().map(|p| p.vm.as_str()).collect();
    assert_eq!(order, ["z", "x", "y"]);
}

#[test]
fn a_sequence_of_failures_moves_vms_twice_when_their_new_host_fails() {
    let pool = PoolSnapshot::new(
        vec![
            PlanHost::new("a", 0),
            PlanHost::new("b", 10),
            PlanHost::new("c", 5),
        ],
        vec![PlanVm::protected("v", 4, Some("a"))],
    );
    let plan = planner::restart_plan(&pool, &["a", "b"]);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].host, "c");
}

#[test]
fn hypothetical_protection_plans_for_exactly_the_vms_given() {
    // Unprotected VMs still hold their memory; only the set to restart changes.
    let pool = PoolSnapshot::new(
        vec![host("master", 256, &[120, 100]), host("slave", 180, &[30])],
        vec![
            vm("vm1", 120, Some("master")),
            vm("vm2", 100, Some("master")),
            vm("vm3", 30, Some("slave")),
        ],
    );
    // Everything protected: the slave's 150 GiB cannot take both of the master's VMs.
    assert_eq!(
        planner::max_host_failures_to_tolerate(&pool).max_failures,
        Some(0)
    );
    let what_if = pool.with_priorities([
        ("vm1", RestartPriority::Restart),
        ("vm3", RestartPriority::Restart),
        ("vm2", RestartPriority::BestEffort),
    ]);
    assert_eq!(
        planner::max_host_failures_to_tolerate(&what_if).max_failures,
        Some(1)
    );
}
