//! The pool database.
