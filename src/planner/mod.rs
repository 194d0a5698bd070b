//! The failover planner: pure functions over a snapshot of hosts and VMs (issue 6).
