//! `xe`: the xe-compatible command line (issue 3).
