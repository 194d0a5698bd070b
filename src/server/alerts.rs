//! Messages (alerts) about pool events, created in the same write as the event they describe,
//! so an event and its message commit together or not at all.
//!
//! Names are xapi's where xapi has one (`HA_POOL_OVERCOMMITTED`, ...). Pool membership events
//! that xapi does not announce use names of ours, documented in `docs/architecture.md`:
//! `HOST_JOINED`, `HOST_NOT_LIVE`, `HOST_LIVE`, `HOST_EJECTED`, `HOST_FORGOTTEN`.

use super::now_datetime;
use crate::model::classes::MESSAGE;
use crate::model::{ApiError, Value};
use crate::pool::Txn;

/// Priorities, xapi's scale: 1 is critical, 5 informational.
pub mod priority {
    /// Take action now or some service(s) may fail.
    pub const MAJOR: i64 = 2;
    /// Action needed soon.
    pub const WARNING: i64 = 3;
    /// Worth knowing.
    pub const MINOR: i64 = 4;
    /// Informational.
    pub const INFO: i64 = 5;
}

/// Create a message about the object `obj_uuid` of class `cls` (`Host`, `VM`, `Pool`, ...).
pub fn raise(
    t: &mut Txn<'_>,
    name: &str,
    priority: i64,
    cls: &str,
    obj_uuid: &str,
    body: &str,
) -> String {
    tracing::info!(name, cls, obj_uuid, body, "message");
    t.create(
        &MESSAGE,
        [
            ("name", Value::str(name)),
            ("priority", Value::Int(priority)),
            ("cls", Value::str(cls)),
            ("obj_uuid", Value::str(obj_uuid)),
            ("timestamp", Value::DateTime(now_datetime())),
            ("body", Value::str(body)),
        ],
    )
}

/// `message.create`: validate as xapi does (a known class, a priority) and create.
pub fn create(
    t: &mut Txn<'_>,
    name: &str,
    priority: i64,
    cls: &str,
    obj_uuid: &str,
    body: &str,
) -> Result<Value, ApiError> {
    let class_ty = MESSAGE.field("cls").expect("declared").ty;
    let cls = class_ty
        .coerce(&Value::str(cls))
        .map_err(|_| ApiError::invalid_value("cls", cls))?;
    if name.is_empty() {
        return Err(ApiError::invalid_value("name", name));
    }
    Ok(Value::Str(raise(
        t,
        name,
        priority,
        cls.as_str().unwrap_or_default(),
        obj_uuid,
        body,
    )))
}
