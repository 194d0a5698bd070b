//! The XenAPI server.
