//! API errors: a code plus string parameters, exactly as XenAPI carries them.
//!
//! Errors are values, never strings glued together: the wire codecs put `code` and `params` in
//! the `ErrorDescription` array, and `xe` looks the code up in [`lookup`] to print the doc string
//! followed by one `name: value` line per parameter.

use std::fmt;

use super::error_docs::ERRORS;

/// The declaration of one error code.
#[derive(Debug)]
pub struct ErrorDecl {
    /// The code, e.g. `UUID_INVALID`.
    pub code: &'static str,
    /// Parameter names, in order, e.g. `["type", "uuid"]`.
    pub params: &'static [&'static str],
    /// What `xe` prints on the first line.
    pub doc: &'static str,
}

/// Find the declaration of an error code.
pub fn lookup(code: &str) -> Option<&'static ErrorDecl> {
    ERRORS.iter().find(|e| e.code == code)
}

/// An error raised by an API call: `code` with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The code, e.g. `HANDLE_INVALID`.
    pub code: String,
    /// The parameters, in declaration order.
    pub params: Vec<String>,
}

/// The codes this crate raises itself, as constants so a typo is a compile error.
#[allow(missing_docs)]
pub mod code {
    pub const SESSION_AUTHENTICATION_FAILED: &str = "SESSION_AUTHENTICATION_FAILED";
    pub const SESSION_INVALID: &str = "SESSION_INVALID";
    pub const MESSAGE_METHOD_UNKNOWN: &str = "MESSAGE_METHOD_UNKNOWN";
    pub const MESSAGE_PARAMETER_COUNT_MISMATCH: &str = "MESSAGE_PARAMETER_COUNT_MISMATCH";
    pub const UUID_INVALID: &str = "UUID_INVALID";
    pub const HANDLE_INVALID: &str = "HANDLE_INVALID";
    pub const INVALID_VALUE: &str = "INVALID_VALUE";
    pub const FIELD_TYPE_ERROR: &str = "FIELD_TYPE_ERROR";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const MAP_DUPLICATE_KEY: &str = "MAP_DUPLICATE_KEY";
    pub const NOT_IMPLEMENTED: &str = "NOT_IMPLEMENTED";
    pub const HA_IS_ENABLED: &str = "HA_IS_ENABLED";
    pub const HA_NOT_ENABLED: &str = "HA_NOT_ENABLED";
    pub const HOST_IS_SLAVE: &str = "HOST_IS_SLAVE";
    pub const HOST_IN_EMERGENCY_MODE: &str = "HOST_IN_EMERGENCY_MODE";
    pub const OPERATION_NOT_ALLOWED: &str = "OPERATION_NOT_ALLOWED";
    pub const HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN: &str =
        "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN";
}

impl ApiError {
    /// An error with the given code and parameters.
    pub fn new<S: Into<String>>(code: &str, params: impl IntoIterator<Item = S>) -> ApiError {
        ApiError {
            code: code.to_string(),
            params: params.into_iter().map(Into::into).collect(),
        }
    }

    /// `SESSION_INVALID [handle]`.
    pub fn session_invalid(handle: &str) -> ApiError {
        ApiError::new(code::SESSION_INVALID, [handle])
    }

    /// `MESSAGE_METHOD_UNKNOWN [method]`.
    pub fn method_unknown(method: &str) -> ApiError {
        ApiError::new(code::MESSAGE_METHOD_UNKNOWN, [method])
    }

    /// `MESSAGE_PARAMETER_COUNT_MISMATCH [method; expected; received]`. `received` excludes the
    /// session, so a call with no parameters at all receives -1, as in xapi.
    pub fn parameter_count(method: &str, expected: usize, received: i64) -> ApiError {
        ApiError::new(
            code::MESSAGE_PARAMETER_COUNT_MISMATCH,
            [
                method.to_string(),
                expected.to_string(),
                received.to_string(),
            ],
        )
    }

    /// `UUID_INVALID [class; uuid]`.
    pub fn uuid_invalid(class: &str, uuid: &str) -> ApiError {
        ApiError::new(code::UUID_INVALID, [class, uuid])
    }

    /// `HANDLE_INVALID [class; ref]`.
    pub fn handle_invalid(class: &str, handle: &str) -> ApiError {
        ApiError::new(code::HANDLE_INVALID, [class, handle])
    }

    /// `INVALID_VALUE [field; value]`.
    pub fn invalid_value(field: &str, value: &str) -> ApiError {
        ApiError::new(code::INVALID_VALUE, [field, value])
    }

    /// `FIELD_TYPE_ERROR [field]`: a parameter of the wrong type.
    pub fn field_type(field: &str) -> ApiError {
        ApiError::new(code::FIELD_TYPE_ERROR, [field])
    }

    /// `INTERNAL_ERROR [message]`.
    pub fn internal(message: impl fmt::Display) -> ApiError {
        ApiError::new(code::INTERNAL_ERROR, [message.to_string()])
    }

    /// The declaration of this error's code, if the datamodel knows it.
    pub fn decl(&self) -> Option<&'static ErrorDecl> {
        lookup(&self.code)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.params.is_empty() {
            write!(f, ": [{}]", self.params.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xe_doc_strings_are_xapis() {
        let e = lookup("HA_NOT_ENABLED").unwrap();
        assert_eq!(
            e.doc,
            "The operation could not be performed because HA is not enabled on the Pool"
        );
        let e = lookup("UUID_INVALID").unwrap();
        assert_eq!(e.params, ["type", "uuid"]);
        assert_eq!(e.doc, "The uuid you supplied was invalid.");
        assert_eq!(
            lookup("HOST_IS_SLAVE").unwrap().doc,
            "You cannot make regular API calls directly on a supporter. Please pass API calls via the coordinator host."
        );
        assert_eq!(
            lookup("INVALID_VALUE").unwrap().doc,
            "The value given is invalid"
        );
    }

    #[test]
    fn every_code_this_crate_raises_is_declared() {
        for c in [
            code::SESSION_AUTHENTICATION_FAILED,
            code::SESSION_INVALID,
            code::MESSAGE_METHOD_UNKNOWN,
            code::MESSAGE_PARAMETER_COUNT_MISMATCH,
            code::UUID_INVALID,
            code::HANDLE_INVALID,
            code::INVALID_VALUE,
            code::FIELD_TYPE_ERROR,
            code::INTERNAL_ERROR,
            code::MAP_DUPLICATE_KEY,
            code::NOT_IMPLEMENTED,
            code::HA_IS_ENABLED,
            code::HA_NOT_ENABLED,
            code::HOST_IS_SLAVE,
            code::HOST_IN_EMERGENCY_MODE,
            code::OPERATION_NOT_ALLOWED,
            code::HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN,
        ] {
            assert!(lookup(c).is_some(), "{c} missing from the error table");
        }
    }
}
