//! The HA core: a deterministic, sans-IO state machine (issue 5). Nothing here reads a clock,
//! opens a file or touches a socket; the daemon and the simulator drive it.
