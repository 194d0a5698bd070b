//! Wire codecs: bytes to [`Value`]s and back, for XML-RPC ([`xmlrpc`]) and JSON-RPC
//! ([`jsonrpc`]). Pure: no I/O, no knowledge of sessions or the store.

pub mod jsonrpc;
pub mod xmlrpc;

use crate::model::{ApiError, Value};

/// A request or response that is not well-formed. The server answers these with HTTP 500,
/// as xapi does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

impl WireError {
    /// A parse error with this description.
    pub fn parse(msg: impl Into<String>) -> WireError {
        WireError(msg.into())
    }
}

/// XenAPI's result envelope: `{Status: Success, Value: v}` or
/// `{Status: Failure, ErrorDescription: [code, params...]}`.
pub fn envelope_of_outcome(outcome: &Result<Value, ApiError>) -> Value {
    let mut m = indexmap::IndexMap::new();
    match outcome {
        Ok(v) => {
            m.insert("Status".to_string(), Value::str("Success"));
            m.insert("Value".to_string(), v.clone());
        }
        Err(e) => {
            m.insert("Status".to_string(), Value::str("Failure"));
            let mut desc = vec![Value::str(e.code.clone())];
            desc.extend(e.params.iter().cloned().map(Value::Str));
            m.insert("ErrorDescription".to_string(), Value::Array(desc));
        }
    }
    Value::Struct(m)
}

/// Undo [`envelope_of_outcome`].
pub fn outcome_of_envelope(v: Value) -> Result<Result<Value, ApiError>, WireError> {
    let Value::Struct(mut m) = v else {
        return Err(WireError::parse("response is not a Status struct"));
    };
    match m.get("Status").and_then(Value::as_str) {
        Some("Success") => Ok(Ok(m.shift_remove("Value").unwrap_or_else(Value::void))),
        Some("Failure") => {
            let desc = m
                .shift_remove("ErrorDescription")
                .ok_or_else(|| WireError::parse("Failure without ErrorDescription"))?;
            let strings: Vec<String> = desc
                .as_array()
                .ok_or_else(|| WireError::parse("ErrorDescription is not an array"))?
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            let (code, params) = strings
                .split_first()
                .ok_or_else(|| WireError::parse("empty ErrorDescription"))?;
            Ok(Err(ApiError {
                code: code.clone(),
                params: params.to_vec(),
            }))
        }
        _ => Err(WireError::parse("response has no Status")),
    }
}

#[cfg(test)]
mod tests;
