//! Deterministic simulator driving many [`crate::ha`] agents in virtual time (issue 5).
