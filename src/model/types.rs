//! The vocabulary of declarations: types, access, fields, classes, enums.
//!
//! These are plain `'static` data so the whole model is one table the compiler checks; see
//! [`super::classes`] for the table itself.

use super::value::Value;

/// A XenAPI type, as the data model declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// UTF-8 string.
    String,
    /// 64-bit signed integer.
    Int,
    /// Double.
    Float,
    /// Boolean.
    Bool,
    /// Datetime (`YYYYMMDDTHH:MM:SSZ`).
    DateTime,
    /// One of a fixed set of constructors.
    Enum(&'static EnumDecl),
    /// A reference to an object of the named class (e.g. `"host"`).
    Ref(&'static str),
    /// A set of values of one type.
    Set(&'static Ty),
    /// A map from one type to another.
    Map(&'static Ty, &'static Ty),
    /// A whole record of the named class.
    Record(&'static str),
}

/// An enumeration: its name and its constructors as they travel on the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct EnumDecl {
    /// The datamodel's name for the enum, e.g. `vm_power_state`.
    pub name: &'static str,
    /// Wire names of the constructors, e.g. `Halted`, `Running`.
    pub values: &'static [&'static str],
    /// Whether `xe` prints the constructor in lower case (`Running` -> `running`).
    pub cli_lowercase: bool,
}

/// Who may change a field through the generic setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only: only `get_<field>` is generated.
    RO,
    /// Read-write: `set_<field>` (and `add_to_`/`remove_from_` for maps and sets) is generated.
    RW,
}

/// Where the value of a CLI field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A stored API field (the [`FieldDecl::name`]).
    Stored,
    /// A CLI-only field: follow the ref in API field `via`, then read `field` of that object
    /// (e.g. `host-metrics-live` = `metrics` -> `live`).
    Follow {
        /// The ref-typed API field of this class to follow.
        via: &'static str,
        /// The API field to read on the target object.
        field: &'static str,
    },
    /// A CLI-only field computed by a named rule of the printer (e.g. `sr-list`'s `host`).
    Computed(&'static str),
}

/// One field of a class: everything the API, the store and `xe` need to know about it.
#[derive(Debug)]
pub struct FieldDecl {
    /// API name (`name_label`); empty for CLI-only fields.
    pub name: &'static str,
    /// `xe` name (`name-label`); empty for fields `xe` never shows.
    pub cli: &'static str,
    /// The value's type.
    pub ty: Ty,
    /// Generic setters or not.
    pub access: Access,
    /// Default as text in `xe`'s syntax for the type; `""` means the type's zero value.
    pub default: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// Where the value comes from.
    pub source: Source,
    /// `xe *-list` prints `<expensive field>` instead of computing it.
    pub expensive: bool,
    /// Never printed by `xe *-list`/`*-param-list` (only `*-param-get` reads it).
    pub hidden: bool,
    /// `xe` appends ` [DEPRECATED]` to the key.
    pub deprecated: bool,
    /// `xe` prints this map or set as a single value with a scalar marker (`ha-configuration`).
    pub cli_scalar: bool,
}

/// One class of the data model.
#[derive(Debug)]
pub struct ClassDecl {
    /// Wire name, case-sensitive: `VM`, `SR`, `host`, `host_cpu`.
    pub name: &'static str,
    /// `xe` prefix: `vm`, `sr`, `host-cpu`; empty when `xe` has no commands for it.
    pub cli: &'static str,
    /// What the class is.
    pub doc: &'static str,
    /// Fields in `xe` record order.
    pub fields: &'static [FieldDecl],
    /// `xe <class>-list` fields printed without `params=`.
    pub default_list: &'static [&'static str],
    /// Whether objects survive a daemon restart (sessions and tasks do not).
    pub persistent: bool,
}

impl ClassDecl {
    /// The stored API field with this API name.
    pub fn field(&self, name: &str) -> Option<&'static FieldDecl> {
        self.fields
            .iter()
            .find(|f| f.source == Source::Stored && f.name == name)
    }

    /// The field with this `xe` name.
    pub fn cli_field(&self, cli: &str) -> Option<&'static FieldDecl> {
        self.fields
            .iter()
            .find(|f| !f.cli.is_empty() && f.cli == cli)
    }

    /// The stored API fields, in declaration order.
    pub fn stored_fields(&self) -> impl Iterator<Item = &'static FieldDecl> {
        self.fields.iter().filter(|f| f.source == Source::Stored)
    }

    /// Whether objects of this class carry a `name_label`.
    pub fn has_name_label(&self) -> bool {
        self.field("name_label").is_some()
    }
}

impl FieldDecl {
    /// The `xe` access marker: `( RO)`, `( RW)`, `(SRO)`, `(SRW)`, `(MRO)`, `(MRW)`.
    pub fn cli_marker(&self) -> &'static str {
        let rw = self.access == Access::RW;
        if self.cli_scalar {
            return if rw { "( RW)" } else { "( RO)" };
        }
        match (self.ty, rw) {
            (Ty::Set(_), false) => "(SRO)",
            (Ty::Set(_), true) => "(SRW)",
            (Ty::Map(..), false) => "(MRO)",
            (Ty::Map(..), true) => "(MRW)",
            (_, false) => "( RO)",
            (_, true) => "( RW)",
        }
    }

    /// The field's default value.
    pub fn default_value(&self) -> Value {
        if self.default.is_empty() {
            self.ty.zero()
        } else {
            self.ty
                .parse_text(self.default)
                .unwrap_or_else(|_| panic!("bad default for field {}", self.name))
        }
    }
}

/// The null reference.
pub const NULL_REF: &str = "OpaqueRef:NULL";

impl Ty {
    /// The zero value of the type: `""`, `0`, `false`, empty set or map, the null ref, the first
    /// enum constructor.
    pub fn zero(&self) -> Value {
        match self {
            Ty::String => Value::str(""),
            Ty::Int => Value::Int(0),
            Ty::Float => Value::Float(0.0),
            Ty::Bool => Value::Bool(false),
            Ty::DateTime => Value::DateTime("19700101T00:00:00Z".into()),
            Ty::Enum(e) => Value::str(e.values[0]),
            Ty::Ref(_) => Value::str(NULL_REF),
            Ty::Set(_) => Value::Array(Vec::new()),
            Ty::Map(..) | Ty::Record(_) => Value::Struct(Default::default()),
        }
    }

    /// Bring a value that arrived on a wire to this type, or say why it cannot be.
    ///
    /// XML-RPC carries ints as decimal strings and xapi's clients send bools and ints in both
    /// typed and untyped forms, so this is lenient in what it accepts and exact in what it
    /// returns.
    pub fn coerce(&self, v: &Value) -> Result<Value, String> {
        match (self, v) {
            (Ty::String, Value::Str(_)) => Ok(v.clone()),
            (Ty::Int, Value::Int(_)) => Ok(v.clone()),
            (Ty::Int, Value::Str(s)) => s
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| format!("expected an int, got {s:?}")),
            (Ty::Float, Value::Float(_)) => Ok(v.clone()),
            (Ty::Float, Value::Int(i)) => Ok(Value::Float(*i as f64)),
            (Ty::Float, Value::Str(s)) => s
                .trim()
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("expected a float, got {s:?}")),
            (Ty::Bool, Value::Bool(_)) => Ok(v.clone()),
            (Ty::Bool, Value::Str(s)) => parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| format!("expected a bool, got {s:?}")),
            (Ty::DateTime, Value::DateTime(_)) => Ok(v.clone()),
            (Ty::DateTime, Value::Str(s)) => Ok(Value::DateTime(s.clone())),
            (Ty::Enum(e), Value::Str(s)) => e
                .values
                .iter()
                .find(|c| c.eq_ignore_ascii_case(s))
                .map(|c| Value::str(*c))
                .ok_or_else(|| format!("{s:?} is not a {}", e.name)),
            (Ty::Ref(_), Value::Str(_)) => Ok(v.clone()),
            (Ty::Set(elem), Value::Array(items)) => items
                .iter()
                .map(|i| elem.coerce(i))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            (Ty::Map(k, val), Value::Struct(m)) => {
                let mut out = indexmap::IndexMap::new();
                for (key, value) in m {
                    k.coerce(&Value::Str(key.clone()))?;
                    out.insert(key.clone(), val.coerce(value)?);
                }
                Ok(Value::Struct(out))
            }
            (Ty::Record(_), Value::Struct(_)) => Ok(v.clone()),
            (ty, v) => Err(format!("expected {}, got {v:?}", ty.describe())),
        }
    }

    /// Parse `xe`-style text (`true`, `42`, `k1: v1; k2: v2`, `a; b`) into a value of this type.
    pub fn parse_text(&self, s: &str) -> Result<Value, String> {
        match self {
            Ty::Set(elem) => {
                if s.is_empty() {
                    return Ok(Value::Array(Vec::new()));
                }
                s.split(',')
                    .map(|p| elem.parse_text(p.trim()))
                    .collect::<Result<_, _>>()
                    .map(Value::Array)
            }
            Ty::Map(..) | Ty::Record(_) if s.is_empty() => Ok(Value::Struct(Default::default())),
            _ => self.coerce(&Value::str(s)),
        }
    }

    /// A short human description, used in error messages.
    pub fn describe(&self) -> String {
        match self {
            Ty::String => "string".into(),
            Ty::Int => "int".into(),
            Ty::Float => "float".into(),
            Ty::Bool => "bool".into(),
            Ty::DateTime => "datetime".into(),
            Ty::Enum(e) => format!("enum {}", e.name),
            Ty::Ref(c) => format!("{c} ref"),
            Ty::Set(t) => format!("{} set", t.describe()),
            Ty::Map(k, v) => format!("({} -> {}) map", k.describe(), v.describe()),
            Ty::Record(c) => format!("{c} record"),
        }
    }
}

/// xe's booleans: `true t yes y 1 false f no n 0`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}
