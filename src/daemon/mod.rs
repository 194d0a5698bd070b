//! `xapid` wiring: runtime, listeners, store, host facts.
