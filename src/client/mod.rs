//! XenAPI client: transports and sessions (issue 3).
