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

/// Whether XML 1.0 can carry `c` (its `Char` production). XML-RPC clients refuse a document
/// holding any other character, even as a character reference, so no string the pool keeps
/// or sends may contain one.
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// The longest prefix of `s` that XML 1.0 can carry: `s` cut at its first character XML
/// cannot hold, as xapi's database cuts every string it stores.
pub fn xml_prefix(s: &str) -> &str {
    match s.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

impl Value {
    /// Cut every string inside this value (set members, map keys and values included) at its
    /// first character XML cannot carry; returns whether anything was cut.
    pub fn truncate_to_xml(&mut self) -> bool {
        fn cut(s: &mut String) -> bool {
            let keep = xml_prefix(s).len();
            let cut = keep < s.len();
            s.truncate(keep);
            cut
        }
        match self {
            Value::Str(s) | Value::DateTime(s) => cut(s),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |any, v| v.truncate_to_xml() | any),
            Value::Struct(members) => {
                if members.keys().all(|k| xml_prefix(k).len() == k.len()) {
                    return members
                        .values_mut()
                        .fold(false, |any, v| v.truncate_to_xml() | any);
                }
                // A key changes: rebuild the map (two keys cut to the same prefix keep the
                // later value, as a second write of one key would).
                let old = std::mem::take(members);
                for (mut k, mut v) in old {
                    cut(&mut k);
                    v.truncate_to_xml();
                    members.insert(k, v);
                }
                true
            }
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Nil => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_at_their_first_character_xml_cannot_carry() {
        assert_eq!(xml_prefix("tab\tnl\ncr\r fine"), "tab\tnl\ncr\r fine");
        assert_eq!(xml_prefix("x\u{1}y"), "x");
        assert_eq!(xml_prefix("\u{0}"), "");
        assert_eq!(
            xml_prefix("ok\u{d7ff}\u{e000}\u{fffd}\u{10ffff}\u{fffe}no"),
            "ok\u{d7ff}\u{e000}\u{fffd}\u{10ffff}"
        );
        assert_eq!(xml_prefix("a\u{ffff}"), "a");

        let mut clean = Value::Array(vec![Value::str("a"), Value::Int(1)]);
        assert!(!clean.truncate_to_xml());
        let mut v = Value::Struct(IndexMap::from([
            ("k\u{1}1".to_string(), Value::str("v\u{2}")),
            (
                "ok".to_string(),
                Value::Array(vec![Value::str("s\u{1b}et")]),
            ),
        ]));
        assert!(v.truncate_to_xml());
        assert_eq!(
            v,
            Value::Struct(IndexMap::from([
                ("k".to_string(), Value::str("v")),
                ("ok".to_string(), Value::Array(vec![Value::str("s")])),
            ]))
        );
    }
}
