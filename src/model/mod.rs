//! The XenAPI data model, declared once.
//!
//! [`classes`] lists every class and field (type, access, `xe` name, default, doc) in `xe`'s
//! record order; [`messages`] derives the generic API calls from it and declares the explicit
//! ones; [`errors`] holds the error codes with the doc strings `xe` prints. The server, the
//! client and `xe` all read these tables instead of repeating them.
//!
//! Nothing here does I/O.

pub mod classes;
mod error_docs;
pub mod errors;
pub mod messages;
pub mod roles;
pub mod time;
pub mod types;
pub mod value;

pub use classes::{class, cli_class, CLASSES};
pub use errors::{ApiError, ErrorDecl};
pub use messages::{api, Kind, Message};
pub use roles::Role;
pub use types::{parse_bool, Access, ClassDecl, EnumDecl, FieldDecl, Source, Ty, NULL_REF};
pub use value::{Record, Value};

/// A fresh object reference, `OpaqueRef:<uuid>`.
pub fn new_ref() -> String {
    format!("OpaqueRef:{}", uuid::Uuid::new_v4())
}

/// Whether `s` has the 8-4-4-4-12 hexadecimal shape of a UUID.
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}
