//! The XenAPI data model, declared once.
