//! XML-RPC as xapi speaks it.
//!
//! Reading is lenient in the ways real clients need: untyped `<value>text</value>` is a string,
//! `<value/>` is `""`, ints come as `<i4>`, `<int>`, `<i8>` or decimal strings, datetimes keep
//! their `Z`. Writing is exact: one line, no whitespace, strings and ints untyped (ints as
//! decimal text), doubles as `%.16g`, and every response is a `Status`/`Value` or
//! `Status`/`ErrorDescription` struct, never a `<fault>`.
//!
//! Entities are never expanded: a document type declaration is refused and only the five
//! predefined entities and character references are understood, so an "XML bomb" is just a
//! parse error.

use std::fmt::Write as _;

use indexmap::IndexMap;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::WireError;
use crate::model::value::is_xml_char;
use crate::model::{ApiError, Value};

/// Nesting deeper than this is refused (a defence against stack exhaustion, not a protocol
/// limit: real XenAPI values nest a handful of levels).
const MAX_DEPTH: usize = 64;

/// A token of the simplified event stream the parser works on.
#[derive(Debug, PartialEq)]
enum Tok {
    Open(String),
    Close(String),
    Empty(String),
    Text(String),
}

fn tokenize(body: &[u8]) -> Result<Vec<Tok>, WireError> {
    let text = std::str::from_utf8(body).map_err(|_| WireError::parse("body is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut toks = Vec::new();
    // Text is delivered in pieces around entity references; glue them back together.
    let mut pending: Option<String> = None;
    let flush = |pending: &mut Option<String>, toks: &mut Vec<Tok>| {
        if let Some(t) = pending.take() {
            toks.push(Tok::Text(t));
        }
    };
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| WireError::parse(e.to_string()))?;
        match ev {
            Event::Start(s) => {
                flush(&mut pending, &mut toks);
                toks.push(Tok::Open(s.name().as_ref().to_string()));
            }
            Event::End(e) => {
                flush(&mut pending, &mut toks);
                toks.push(Tok::Close(e.name().as_ref().to_string()));
            }
            Event::Empty(s) => {
                flush(&mut pending, &mut toks);
                toks.push(Tok::Empty(s.name().as_ref().to_string()));
            }
            Event::Text(t) => pending
                .get_or_insert_with(String::new)
                .push_str(&t.xml10_content()),
            Event::CData(c) => {
                pending.get_or_insert_with(String::new).push_str(&c);
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| WireError::parse(e.to_string()))?
                        .ok_or_else(|| WireError::parse("bad character reference"))?
                        .to_string()
                } else {
                    match &*r {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "apos" => "'",
                        "quot" => "\"",
                        other => {
                            return Err(WireError::parse(format!(
                                "entity &{other}; is not allowed"
                            )))
                        }
                    }
                    .to_string()
                };
                pending.get_or_insert_with(String::new).push_str(&resolved);
            }
            Event::DocType(_) => {
                return Err(WireError::parse(
                    "document type declarations are not allowed",
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    flush(&mut pending, &mut toks);
    Ok(toks)
}

/// A cursor over tokens; whitespace-only text between elements is insignificant.
struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn skip_space(&mut self) {
        while let Some(Tok::Text(t)) = self.toks.get(self.pos) {
            if t.trim().is_empty() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<&Tok> {
        self.skip_space();
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        self.skip_space();
        let t = self
            .toks
            .get_mut(self.pos)
            .map(|t| std::mem::replace(t, Tok::Text(String::new())));
        self.pos += 1;
        t
    }

    fn expected(&self, what: &str) -> WireError {
        WireError::parse(format!("expected {what}"))
    }

    fn open(&mut self, tag: &str) -> Result<(), WireError> {
        match self.next() {
            Some(Tok::Open(t)) if t == tag => Ok(()),
            _ => Err(WireError::parse(format!("close_tag: expected <{tag}>"))),
        }
    }

    fn close(&mut self, tag: &str) -> Result<(), WireError> {
        match self.next() {
            Some(Tok::Close(t)) if t == tag => Ok(()),
            _ => Err(WireError::parse(format!("close_tag: expected </{tag}>"))),
        }
    }

    /// Raw text up to the closing `tag` (which is consumed). Whitespace is kept.
    fn text_until(&mut self, tag: &str) -> Result<String, WireError> {
        let text = match self.toks.get(self.pos) {
            Some(Tok::Text(t)) => {
                let t = t.clone();
                self.pos += 1;
                t
            }
            _ => String::new(),
        };
        self.close(tag)?;
        Ok(text)
    }

    /// A `<value>...</value>` (or `<value/>`).
    fn value(&mut self, depth: usize) -> Result<Value, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::parse("values nest too deeply"));
        }
        self.skip_space();
        match self.toks.get(self.pos) {
            Some(Tok::Empty(t)) if t == "value" => {
                self.pos += 1;
                return Ok(Value::str(""));
            }
            Some(Tok::Open(t)) if t == "value" => self.pos += 1,
            _ => return Err(self.expected("<value>")),
        }
        // Untyped: the text itself (possibly empty, possibly all whitespace).
        match self.toks.get(self.pos) {
            Some(Tok::Close(t)) if t == "value" => {
                self.pos += 1;
                return Ok(Value::str(""));
            }
            Some(Tok::Text(t)) => {
                let next_is_close =
                    matches!(self.toks.get(self.pos + 1), Some(Tok::Close(c)) if c == "value");
                if next_is_close {
                    let s = t.clone();
                    self.pos += 2;
                    return Ok(Value::Str(s));
                }
            }
            _ => {}
        }
        let v = match self.next() {
            Some(Tok::Empty(t)) => match t.as_str() {
                "string" => Value::str(""),
                "nil" => Value::Nil,
                "array" => Value::Array(Vec::new()),
                "struct" => Value::Struct(IndexMap::new()),
                other => return Err(WireError::parse(format!("empty <{other}/> is not a value"))),
            },
            Some(Tok::Open(t)) => match t.as_str() {
                "string" => Value::Str(self.text_until("string")?),
                "i4" | "int" | "i8" => {
                    let s = self.text_until(&t)?;
                    Value::Int(
                        s.trim()
                            .parse()
                            .map_err(|_| WireError::parse(format!("bad integer {s:?}")))?,
                    )
                }
                "boolean" => match self.text_until("boolean")?.trim() {
                    "1" | "true" => Value::Bool(true),
                    "0" | "false" => Value::Bool(false),
                    other => return Err(WireError::parse(format!("bad boolean {other:?}"))),
                },
                "double" => {
                    let s = self.text_until("double")?;
                    Value::Float(
                        s.trim()
                            .parse()
                            .map_err(|_| WireError::parse(format!("bad double {s:?}")))?,
                    )
                }
                "dateTime.iso8601" => {
                    Value::DateTime(self.text_until("dateTime.iso8601")?.trim().to_string())
                }
                "base64" => Value::Str(self.text_until("base64")?),
                "nil" => {
                    self.close("nil")?;
                    Value::Nil
                }
                "array" => {
                    let mut items = Vec::new();
                    match self.next() {
                        Some(Tok::Empty(d)) if d == "data" => {}
                        Some(Tok::Open(d)) if d == "data" => {
                            while !matches!(self.peek(), Some(Tok::Close(c)) if c == "data") {
                                items.push(self.value(depth + 1)?);
                            }
                            self.close("data")?;
                        }
                        _ => return Err(self.expected("<data>")),
                    }
                    self.close("array")?;
                    Value::Array(items)
                }
                "struct" => {
                    let mut members = IndexMap::new();
                    while matches!(self.peek(), Some(Tok::Open(m)) if m == "member") {
                        self.open("member")?;
                        self.open("name")?;
                        let name = self.text_until("name")?;
                        let v = self.value(depth + 1)?;
                        self.close("member")?;
                        members.insert(name, v);
                    }
                    self.close("struct")?;
                    Value::Struct(members)
                }
                other => return Err(WireError::parse(format!("unknown value type <{other}>"))),
            },
            _ => return Err(self.expected("a typed value")),
        };
        self.close("value")?;
        Ok(v)
    }

    fn end(&mut self) -> Result<(), WireError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(WireError::parse("trailing content after the document")),
        }
    }
}

/// A parsed `<methodCall>`.
#[derive(Debug, PartialEq)]
pub struct Call {
    /// The method name, e.g. `session.login_with_password`.
    pub method: String,
    /// The parameters, in order.
    pub params: Vec<Value>,
}

/// Parse a request body. A call without `<params>` is malformed, as it is for xapi.
pub fn parse_call(body: &[u8]) -> Result<Call, WireError> {
    let mut p = Parser {
        toks: tokenize(body)?,
        pos: 0,
    };
    p.open("methodCall")?;
    p.open("methodName")?;
    let method = p.text_until("methodName")?.trim().to_string();
    let mut params = Vec::new();
    match p.next() {
        Some(Tok::Empty(t)) if t == "params" => {}
        Some(Tok::Open(t)) if t == "params" => {
            while matches!(p.peek(), Some(Tok::Open(t)) if t == "param") {
                p.open("param")?;
                params.push(p.value(0)?);
                p.close("param")?;
            }
            p.close("params")?;
        }
        _ => {
            return Err(WireError::parse(
                "close_tag: expected <params>, got </methodCall>",
            ))
        }
    }
    p.close("methodCall")?;
    p.end()?;
    Ok(Call { method, params })
}

/// Parse a `<methodResponse>` into the call's outcome: the value, or the API error.
pub fn parse_response(body: &[u8]) -> Result<Result<Value, ApiError>, WireError> {
    let mut p = Parser {
        toks: tokenize(body)?,
        pos: 0,
    };
    p.open("methodResponse")?;
    p.open("params")?;
    p.open("param")?;
    let v = p.value(0)?;
    p.close("param")?;
    p.close("params")?;
    p.close("methodResponse")?;
    p.end()?;
    super::outcome_of_envelope(v)
}

/// Append one value in xapi's exact form.
pub fn write_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Str(s) => escape_into(out, s),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Float(f) => {
            out.push_str("<double>");
            out.push_str(&format_g16(*f));
            out.push_str("</double>");
        }
        Value::DateTime(d) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(out, d);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for i in items {
                write_value(out, i);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(m) => {
            out.push_str("<struct>");
            for (k, v) in m {
                out.push_str("<member><name>");
                escape_into(out, k);
                out.push_str("</name>");
                write_value(out, v);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

/// The response document for a call's outcome.
pub fn encode_response(outcome: &Result<Value, ApiError>) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?><methodResponse><params><param>");
    write_value(&mut out, &super::envelope_of_outcome(outcome));
    out.push_str("</param></params></methodResponse>");
    out
}

/// The request document for a call.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?><methodCall><methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName><params>");
    for p in params {
        out.push_str("<param>");
        write_value(&mut out, p);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>");
    out
}

/// Escape markup characters. A character XML 1.0 cannot carry at all (a control character,
/// U+FFFE) is written as U+FFFD: stored strings never hold one (the database cuts them), but
/// values that echo a caller's input, such as an error's parameters, may, and a single one
/// would make the whole response unreadable to every XML-RPC client.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if !is_xml_char(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

/// C's `%.16g`: 16 significant digits, trailing zeros dropped, exponent form outside
/// `1e-4 <= |f| < 1e16`. ocaml-rpc prints doubles this way.
pub fn format_g16(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:.15e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mantissa), exp.abs())
    } else {
        let decimals = (15 - exp).max(0) as usize;
        strip(&format!("{f:.decimals$}"))
    }
}
