//! [`Value`]: one XenAPI value, as it travels on either wire and as the pool database keeps it.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A XenAPI value. Both wire codecs translate to and from this type; the data model gives it
/// meaning (a `Str` may hold a ref, an enum constructor or a UUID).
///
/// `Struct` keeps insertion order so records print in declaration order and JSON output is stable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A string, ref, UUID or enum constructor.
    Str(String),
    /// A 64-bit integer (XML-RPC carries it as a decimal string).
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A datetime in XenAPI's `YYYYMMDDTHH:MM:SSZ` form, kept as text.
    DateTime(String),
    /// A set (XML-RPC array, JSON array).
    Array(Vec<Value>),
    /// A map or a record (XML-RPC struct, JSON object).
    Struct(IndexMap<String, Value>),
    /// JSON `null` / XML-RPC `<nil/>`: only ever seen on input, xapi never emits it.
    Nil,
}

impl Value {
    /// The empty string, which is how XenAPI encodes `void` results.
    pub fn void() -> Value {
        Value::Str(String::new())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The map or record inside, if this is a struct.
    pub fn as_struct(&self) -> Option<&IndexMap<String, Value>> {
        match self {
            Value::Struct(m) => Some(m),
            _ => None,
        }
    }

    /// The elements inside, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The boolean inside, if this is a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer inside, if this is an int.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Build a string-to-string map value.
    pub fn string_map<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Struct(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Value::Str(v.into())))
                .collect(),
        )
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// A record: field name to value, in declaration order.
pub type Record = IndexMap<String, Value>;
