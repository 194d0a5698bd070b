//! JSON-RPC 1.0 and 2.0 as xapi speaks them on `/jsonrpc`.
//!
//! `id` is mandatory (a notification is malformed). v1 `params` must be an array; v2 may omit
//! it (meaning `[]`) or give an object (passed as one parameter). Responses are compact JSON
//! with xapi's member order: v1 `result, error, id`; v2 `jsonrpc, result, id` or
//! `jsonrpc, error{code, message, data}, id`.

use indexmap::IndexMap;
use serde_json::{json, Map, Value as Json};

use super::WireError;
use crate::model::{ApiError, Value};

/// Which JSON-RPC dialect a request used; the response uses the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// JSON-RPC 1.0 (no `jsonrpc` member).
    V1,
    /// JSON-RPC 2.0.
    V2,
}

/// A parsed request.
#[derive(Debug, PartialEq)]
pub struct Call {
    /// Dialect.
    pub version: Version,
    /// Method name.
    pub method: String,
    /// Parameters, in order.
    pub params: Vec<Value>,
    /// The request id, echoed in the response (a string or a number).
    pub id: Json,
}

/// Parse a request body.
pub fn parse_call(body: &[u8]) -> Result<Call, WireError> {
    let doc: Json = serde_json::from_slice(body)
        .map_err(|e| WireError::parse(format!("Malformed_method_request: {e}")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| WireError::parse("Malformed_method_request: not an object"))?;
    let version = match obj.get("jsonrpc") {
        None => Version::V1,
        Some(Json::String(v)) if v == "2.0" => Version::V2,
        Some(other) => {
            return Err(WireError::parse(format!(
                "Malformed_method_request: jsonrpc {other}"
            )))
        }
    };
    let method = match obj.get("method") {
        Some(Json::String(m)) => m.clone(),
        _ => return Err(WireError::parse("Malformed_method_request: no method")),
    };
    let id = match obj.get("id") {
        Some(id @ (Json::String(_) | Json::Number(_))) => id.clone(),
        _ => {
            return Err(WireError::parse(
                "Malformed_method_request: no id (notifications are not accepted)",
            ))
        }
    };
    let params = match (version, obj.get("params")) {
        (_, Some(Json::Array(a))) => a.iter().map(from_json).collect(),
        (Version::V2, None) => Vec::new(),
        (Version::V2, Some(o @ Json::Object(_))) => vec![from_json(o)],
        _ => {
            return Err(WireError::parse(
                "Malformed_method_request: params must be an array",
            ))
        }
    };
    Ok(Call {
        version,
        method,
        params,
        id,
    })
}

/// Encode the response to a call.
pub fn encode_response(version: Version, id: &Json, outcome: &Result<Value, ApiError>) -> String {
    let mut m = Map::new();
    match (version, outcome) {
        (Version::V1, Ok(v)) => {
            m.insert("result".into(), to_json(v));
            m.insert("error".into(), Json::Null);
        }
        (Version::V1, Err(e)) => {
            m.insert("result".into(), Json::Null);
            let mut desc = vec![Json::String(e.code.clone())];
            desc.extend(e.params.iter().cloned().map(Json::String));
            m.insert("error".into(), Json::Array(desc));
        }
        (Version::V2, Ok(v)) => {
            m.insert("jsonrpc".into(), json!("2.0"));
            m.insert("result".into(), to_json(v));
        }
        (Version::V2, Err(e)) => {
            m.insert("jsonrpc".into(), json!("2.0"));
            m.insert(
                "error".into(),
                json!({"code": 1, "message": e.code, "data": e.params}),
            );
        }
    }
    m.insert("id".into(), id.clone());
    Json::Object(m).to_string()
}

/// Encode a request (used by the client).
pub fn encode_call(version: Version, method: &str, params: &[Value], id: u64) -> String {
    let mut m = Map::new();
    if version == Version::V2 {
        m.insert("jsonrpc".into(), json!("2.0"));
    }
    m.insert("method".into(), json!(method));
    m.insert(
        "params".into(),
        Json::Array(params.iter().map(to_json).collect()),
    );
    m.insert("id".into(), json!(id));
    Json::Object(m).to_string()
}

/// Parse a response (used by the client): the value, or the API error.
pub fn parse_response(body: &[u8]) -> Result<Result<Value, ApiError>, WireError> {
    let doc: Json = serde_json::from_slice(body)
        .map_err(|e| WireError::parse(format!("bad JSON-RPC response: {e}")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| WireError::parse("JSON-RPC response is not an object"))?;
    match obj.get("error") {
        None | Some(Json::Null) => Ok(Ok(obj.get("result").map(from_json).unwrap_or(Value::Nil))),
        Some(Json::Array(desc)) => Ok(Err(error_from_strings(desc)?)),
        Some(Json::Object(e)) => {
            let code = e
                .get("message")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            let params = match e.get("data") {
                Some(Json::Array(d)) => d.iter().map(json_to_param).collect(),
                _ => Vec::new(),
            };
            Ok(Err(ApiError { code, params }))
        }
        Some(other) => Err(WireError::parse(format!(
            "bad JSON-RPC error member {other}"
        ))),
    }
}

fn error_from_strings(desc: &[Json]) -> Result<ApiError, WireError> {
    let mut it = desc.iter().map(json_to_param);
    let code = it
        .next()
        .ok_or_else(|| WireError::parse("empty error description"))?;
    Ok(ApiError {
        code,
        params: it.collect(),
    })
}

fn json_to_param(j: &Json) -> String {
    match j {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSON to a XenAPI value.
pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Struct(
            o.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<IndexMap<_, _>>(),
        ),
    }
}

/// A XenAPI value to JSON.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Str(s) | Value::DateTime(s) => Json::String(s.clone()),
        Value::Int(i) => json!(i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Bool(b) => Json::Bool(*b),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Struct(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Nil => Json::Null,
    }
}
