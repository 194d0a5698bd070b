//! From API records to xe's string fields (`records.ml`), driven by the model's class table.
//!
//! Owns: the per-command call context ([`Ctx`]) with its lazy caches of other classes' records
//! (to print refs as UUIDs and follow `host-metrics-live`), how each model type is printed, the
//! few per-field rules xapi's `records.ml` has (tags joined with `, `, statefile refs, the
//! computed `sr-list` host, `host-cpu` utilisation through a data source), and the set/map views
//! `-param-add`/`-param-remove`/filters use. Field order, names and markers all come from the
//! model.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::errors::{CliError, TransportKind};
use crate::client::{value_text, ClientError, Session};
use crate::model::{self, ClassDecl, FieldDecl, Record, Source, Ty, Value, NULL_REF};

/// `<not in database>`: what xe prints for a null or dangling ref.
pub const NID: &str = "<not in database>";

/// A session plus what one command has learnt so far.
pub struct Ctx<'s> {
    /// The session.
    pub session: &'s mut Session,
    /// Transport kind, for error texts.
    pub kind: TransportKind,
    cache: HashMap<&'static str, Option<IndexMap<String, Record>>>,
}

/// One object: its class, ref and record.
#[derive(Clone, Debug)]
pub struct Obj {
    /// Class.
    pub class: &'static ClassDecl,
    /// Reference.
    pub reference: String,
    /// The record as the server sent it.
    pub rec: Record,
}

impl<'s> Ctx<'s> {
    /// A fresh context over a session.
    pub fn new(session: &'s mut Session, kind: TransportKind) -> Ctx<'s> {
        Ctx {
            session,
            kind,
            cache: HashMap::new(),
        }
    }

    /// Call a method with the session prepended.
    pub fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, CliError> {
        self.session
            .call(method, params)
            .map_err(|e| CliError::from_client(e, self.kind))
    }

    /// Call, keeping API errors as values (for fallbacks).
    pub fn try_call(
        &mut self,
        method: &str,
        params: &[Value],
    ) -> Result<Result<Value, model::ApiError>, CliError> {
        match self.session.call(method, params) {
            Ok(v) => Ok(Ok(v)),
            Err(ClientError::Api(e)) => Ok(Err(e)),
            Err(e) => Err(CliError::from_client(e, self.kind)),
        }
    }

    /// Every object of a class (`<class>.get_all_records`), cached.
    pub fn all(&mut self, class: &'static ClassDecl) -> Result<Vec<Obj>, CliError> {
        self.load(class)?;
        Ok(self.cache[class.name]
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|(r, rec)| Obj {
                        class,
                        reference: r.clone(),
                        rec: rec.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn load(&mut self, class: &'static ClassDecl) -> Result<(), CliError> {
        if self.cache.contains_key(class.name) {
            return Ok(());
        }
        let v = self.call(&format!("{}.get_all_records", class.name), &[])?;
        let m = match v {
            Value::Struct(m) => m
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::Struct(r) => Some((k, r)),
                    _ => None,
                })
                .collect(),
            _ => IndexMap::new(),
        };
        self.cache.insert(class.name, Some(m));
        Ok(())
    }

    /// A record of another class by ref, loading that class once; `None` if it cannot be had
    /// (null ref, unknown class, or the server has no such class).
    pub fn lookup(&mut self, class: &str, r: &str) -> Option<Record> {
        if r == NULL_REF || r.is_empty() {
            return None;
        }
        let decl = model::class(class)?;
        if !self.cache.contains_key(decl.name) {
            let loaded = match self
                .session
                .call(&format!("{}.get_all_records", decl.name), &[])
            {
                Ok(Value::Struct(m)) => Some(
                    m.into_iter()
                        .filter_map(|(k, v)| match v {
                            Value::Struct(r) => Some((k, r)),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            };
            self.cache.insert(decl.name, loaded);
        }
        self.cache[decl.name].as_ref()?.get(r).cloned()
    }

    /// `get_uuid_from_ref`: the uuid of a ref, or `<not in database>`.
    pub fn uuid_of(&mut self, class: &str, r: &str) -> String {
        self.lookup(class, r)
            .and_then(|rec| rec.get("uuid").map(value_text))
            .unwrap_or_else(|| NID.to_string())
    }

    /// `get_name_from_ref`: the name-label of a ref, or `<not in database>`.
    pub fn name_of(&mut self, class: &str, r: &str) -> String {
        self.lookup(class, r)
            .and_then(|rec| rec.get("name_label").map(value_text))
            .unwrap_or_else(|| NID.to_string())
    }

    /// xapi's `ref_convert` for error parameters: a ref of any known class becomes
    /// `uuid (name-label)`; anything else is left alone.
    pub fn ref_convert(&mut self, p: &str) -> String {
        if !p.starts_with("OpaqueRef:") || p == NULL_REF {
            return p.to_string();
        }
        for c in model::CLASSES {
            if c.cli.is_empty() {
                continue;
            }
            if let Ok(Value::Str(uuid)) = self
                .session
                .call(&format!("{}.get_uuid", c.name), &[p.into()])
            {
                if c.has_name_label() {
                    if let Ok(n) = self
                        .session
                        .call(&format!("{}.get_name_label", c.name), &[p.into()])
                    {
                        return format!("{uuid} ({})", value_text(&n));
                    }
                }
                return uuid;
            }
        }
        p.to_string()
    }
}

/// The fields `xe` knows for a class, in record order.
pub fn cli_fields(class: &'static ClassDecl) -> impl Iterator<Item = &'static FieldDecl> {
    class.fields.iter().filter(|f| !f.cli.is_empty())
}

/// Whether `-param-set field=value` works (a settable scalar).
pub fn settable(f: &FieldDecl) -> bool {
    f.access == model::Access::RW
        && f.source == Source::Stored
        && (f.cli_scalar || !matches!(f.ty, Ty::Set(_) | Ty::Map(..)))
}

/// Whether the field has a set view (`get_set`).
pub fn is_set(f: &FieldDecl) -> bool {
    !f.cli_scalar && matches!(f.ty, Ty::Set(_))
}

/// Whether the field has a map view (`get_map`).
pub fn is_map(f: &FieldDecl) -> bool {
    !f.cli_scalar && matches!(f.ty, Ty::Map(..))
}

/// Whether sets/maps of this field can be changed (`add_to_set`/`add_to_map`).
pub fn mutable_collection(f: &FieldDecl) -> bool {
    f.access == model::Access::RW && f.source == Source::Stored && (is_set(f) || is_map(f))
}

/// A scalar printed xe's way for its type.
fn scalar(ctx: &mut Ctx, ty: Ty, v: &Value) -> String {
    match (ty, v) {
        (Ty::Float, Value::Float(f)) => format!("{f:.3}"),
        (Ty::Float, v) => value_text(v)
            .parse::<f64>()
            .map(|f| format!("{f:.3}"))
            .unwrap_or_else(|_| value_text(v)),
        (Ty::Bool, Value::Str(s)) => model::parse_bool(s)
            .map(|b| b.to_string())
            .unwrap_or_else(|| s.clone()),
        (Ty::Enum(e), v) => {
            let s = value_text(v);
            if e.cli_lowercase {
                s.to_lowercase()
            } else {
                s
            }
        }
        (Ty::Ref(class), v) => ctx.uuid_of(class, &value_text(v)),
        (_, v) => value_text(v),
    }
}

fn elems(v: &Value) -> &[Value] {
    v.as_array().unwrap_or(&[])
}

fn pairs(v: &Value) -> Vec<(String, Value)> {
    v.as_struct()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Statefile fields hold VDI refs as strings; xe prints their uuids.
fn holds_vdi_refs(f: &FieldDecl) -> bool {
    f.name == "ha_statefiles"
}

/// The stored value of a field, or its type's zero when the server omitted it.
fn stored(obj: &Obj, f: &FieldDecl) -> Value {
    obj.rec.get(f.name).cloned().unwrap_or_else(|| f.ty.zero())
}

/// The set view of a field (`get_set`), elements printed as xe prints them.
pub fn get_set(ctx: &mut Ctx, obj: &Obj, f: &FieldDecl) -> Vec<String> {
    let Ty::Set(elem) = f.ty else {
        return Vec::new();
    };
    let v = stored(obj, f);
    elems(&v).iter().map(|e| scalar(ctx, *elem, e)).collect()
}

/// The map view of a field (`get_map`).
pub fn get_map(ctx: &mut Ctx, obj: &Obj, f: &FieldDecl) -> Vec<(String, String)> {
    let Ty::Map(_, vt) = f.ty else {
        return Vec::new();
    };
    let v = stored(obj, f);
    pairs(&v)
        .into_iter()
        .map(|(k, v)| (k, scalar(ctx, *vt, &v)))
        .collect()
}

/// The printed value of a field (`field.get`). `expensive` fields print `<expensive field>`
/// unless `compute_expensive`.
pub fn get(
    ctx: &mut Ctx,
    obj: &Obj,
    f: &FieldDecl,
    compute_expensive: bool,
) -> Result<String, CliError> {
    if f.expensive && !compute_expensive {
        return Ok("<expensive field>".into());
    }
    match f.source {
        Source::Follow { via, field } => {
            let Some(Ty::Ref(target)) = obj.class.field(via).map(|d| d.ty) else {
                return Ok(NID.into());
            };
            let r = value_text(&obj.rec.get(via).cloned().unwrap_or(Value::str(NULL_REF)));
            Ok(match ctx.lookup(target, &r) {
                None => NID.into(),
                Some(rec) => {
                    let tf = model::class(target).and_then(|c| c.field(field));
                    let v = rec.get(field).cloned().unwrap_or(Value::void());
                    match tf {
                        Some(tf) => scalar(ctx, tf.ty, &v),
                        None => value_text(&v),
                    }
                }
            })
        }
        Source::Computed(rule) => computed(ctx, obj, rule),
        Source::Stored => {
            if obj.class.name == "host_cpu" && f.name == "utilisation" {
                return Ok(cpu_utilisation(ctx, obj));
            }
            let v = stored(obj, f);
            Ok(match f.ty {
                Ty::Set(elem) => {
                    let items: Vec<String> = elems(&v)
                        .iter()
                        .map(|e| {
                            if holds_vdi_refs(f) {
                                ctx.uuid_of("VDI", &value_text(e))
                            } else {
                                scalar(ctx, *elem, e)
                            }
                        })
                        .collect();
                    // records.ml keeps `concat_with_comma` for tags, for compatibility.
                    items.join(if f.name == "tags" { ", " } else { "; " })
                }
                Ty::Map(_, vt) => pairs(&v)
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {}", scalar(ctx, *vt, &v)))
                    .collect::<Vec<_>>()
                    .join("; "),
                ty => scalar(ctx, ty, &v),
            })
        }
    }
}

/// `host-cpu` utilisation: xe asks the host for data source `cpu<N>` and prints `%.3f`, or
/// `<unknown>` when it cannot.
fn cpu_utilisation(ctx: &mut Ctx, obj: &Obj) -> String {
    let host = obj.rec.get("host").map(value_text).unwrap_or_default();
    let n = obj.rec.get("number").map(value_text).unwrap_or_default();
    match ctx.try_call(
        "host.query_data_source",
        &[host.into(), format!("cpu{n}").into()],
    ) {
        Ok(Ok(v)) => value_text(&v)
            .parse::<f64>()
            .map(|f| format!("{f:.3}"))
            .unwrap_or_else(|_| "<unknown>".into()),
        _ => "<unknown>".into(),
    }
}

fn computed(ctx: &mut Ctx, obj: &Obj, rule: &str) -> Result<String, CliError> {
    match rule {
        // sr-list's host: `<shared>` for several PBDs, else the name of the one PBD's host.
        "sr-host" => {
            let pbds: Vec<String> = obj
                .rec
                .get("PBDs")
                .map(|v| elems(v).iter().map(value_text).collect())
                .unwrap_or_default();
            if pbds.len() > 1 {
                return Ok("<shared>".into());
            }
            let host = match pbds.first() {
                Some(p) => ctx
                    .lookup("PBD", p)
                    .and_then(|r| r.get("host").map(value_text))
                    .unwrap_or_else(|| NULL_REF.into()),
                None => NULL_REF.into(),
            };
            Ok(ctx.name_of("host", &host))
        }
        // host.compute_free_memory; a server without that call gets `<unknown>`.
        "host-memory-free-computed" => {
            match ctx.try_call("host.compute_free_memory", &[obj.reference.clone().into()])? {
                Ok(v) => Ok(value_text(&v)),
                Err(e) if e.code == "MESSAGE_METHOD_UNKNOWN" => Ok("<unknown>".into()),
                Err(e) => Err(CliError::Api(e)),
            }
        }
        _ => Ok(String::new()),
    }
}

/// The key xe prints for a field in `*-list`/`*-param-list`: name, marker, deprecation.
pub fn key(f: &FieldDecl) -> String {
    let mut k = format!("{} {}", f.cli, f.cli_marker());
    if f.deprecated {
        k.push_str(" [DEPRECATED]");
    }
    k
}

/// How a filter or `param-set` key names a field (`get_field_type`).
#[derive(Debug)]
pub enum FieldRef {
    /// A field by its exact name.
    Normal(&'static FieldDecl),
    /// `map:key` or the old `map-key`.
    Map(&'static FieldDecl, String),
    /// `set:contains` (or `set-contains`).
    Set(&'static FieldDecl, String),
}

/// Resolve a parameter name to a field like `get_field_type`; `Err` is xe's failure text.
pub fn field_ref(class: &'static ClassDecl, k: &str) -> Result<FieldRef, String> {
    if let Some(f) = class.cli_field(k) {
        return Ok(FieldRef::Normal(f));
    }
    if let Some((name, rest)) = k.split_once(':') {
        let f = class
            .cli_field(name)
            .ok_or_else(|| format!("Unknown field '{k}'"))?;
        return if is_set(f) {
            Ok(FieldRef::Set(f, rest.to_string()))
        } else if is_map(f) {
            Ok(FieldRef::Map(f, rest.to_string()))
        } else {
            Err(format!("Field '{}' is not a set or map", f.cli))
        };
    }
    // Old syntax `map-name-key`: the longest map field that prefixes it, then sets.
    for want_map in [true, false] {
        let mut cands: Vec<&'static FieldDecl> = cli_fields(class)
            .filter(|f| if want_map { is_map(f) } else { is_set(f) })
            .collect();
        cands.sort_by_key(|f| std::cmp::Reverse(f.cli.len()));
        if let Some(f) = cands
            .into_iter()
            .find(|f| k.starts_with(&format!("{}-", f.cli)))
        {
            let rest = k[f.cli.len() + 1..].to_string();
            return Ok(if want_map {
                FieldRef::Map(f, rest)
            } else {
                FieldRef::Set(f, rest)
            });
        }
    }
    Err(format!("Unknown field '{k}'"))
}

/// `filter_records_on_fields` for one `(key, value)`: keep the records that match. Like xapi,
/// an empty list stays empty without looking at the key.
pub fn filter(ctx: &mut Ctx, objs: Vec<Obj>, k: &str, v: &str) -> Result<Vec<Obj>, CliError> {
    let Some(first) = objs.first() else {
        return Ok(objs);
    };
    let fr = field_ref(first.class, k).map_err(CliError::Failure)?;
    if let FieldRef::Set(_, c) = &fr {
        if c != "contains" {
            return Err(CliError::failure(
                "Invalid syntax for set filtering (should be set-param:contains=key)",
            ));
        }
    }
    let mut out = Vec::new();
    for o in objs {
        let keep = match &fr {
            FieldRef::Normal(f) => get(ctx, &o, f, true)? == v,
            FieldRef::Map(f, key) => get_map(ctx, &o, f)
                .iter()
                .any(|(mk, mv)| mk == key && mv == v),
            FieldRef::Set(f, _) => get_set(ctx, &o, f).iter().any(|m| m == v),
        };
        if keep {
            out.push(o);
        }
    }
    Ok(out)
}

/// Fetch one object by uuid (`<class>.get_by_uuid` then `get_record`).
pub fn by_uuid(ctx: &mut Ctx, class: &'static ClassDecl, uuid: &str) -> Result<Obj, CliError> {
    let r = value_text(&ctx.call(&format!("{}.get_by_uuid", class.name), &[uuid.into()])?);
    let rec = ctx.call(&format!("{}.get_record", class.name), &[r.clone().into()])?;
    Ok(Obj {
        class,
        reference: r,
        rec: rec.as_struct().cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::classes::{POOL, VM};

    fn describe(r: Result<FieldRef, String>) -> String {
        match r {
            Ok(FieldRef::Normal(f)) => format!("normal {}", f.cli),
            Ok(FieldRef::Map(f, k)) => format!("map {} {k}", f.cli),
            Ok(FieldRef::Set(f, k)) => format!("set {} {k}", f.cli),
            Err(e) => format!("error {e}"),
        }
    }

    #[test]
    fn field_names_resolve_like_get_field_type() {
        assert_eq!(
            describe(field_ref(&POOL, "name-label")),
            "normal name-label"
        );
        assert_eq!(
            describe(field_ref(&POOL, "other-config:a")),
            "map other-config a"
        );
        // The old `map-key` syntax picks the longest map field that prefixes the name.
        assert_eq!(
            describe(field_ref(&POOL, "other-config-a-b")),
            "map other-config a-b"
        );
        assert_eq!(
            describe(field_ref(&POOL, "tags:contains")),
            "set tags contains"
        );
        assert_eq!(
            describe(field_ref(&POOL, "ha-configuration:timeout")),
            "error Field 'ha-configuration' is not a set or map"
        );
        assert_eq!(
            describe(field_ref(&VM, "bogus")),
            "error Unknown field 'bogus'"
        );
        assert_eq!(
            describe(field_ref(&VM, "bogus:x")),
            "error Unknown field 'bogus:x'"
        );
    }

    #[test]
    fn keys_carry_markers_and_deprecation() {
        assert_eq!(
            key(VM.cli_field("ha-always-run").unwrap()),
            "ha-always-run ( RW) [DEPRECATED]"
        );
        assert_eq!(key(POOL.cli_field("tags").unwrap()), "tags (SRW)");
        assert_eq!(
            key(VM.cli_field("memory-actual").unwrap()),
            "memory-actual ( RO)"
        );
        assert!(settable(VM.cli_field("order").unwrap()));
        assert!(!settable(VM.cli_field("power-state").unwrap()));
        assert!(!settable(POOL.cli_field("other-config").unwrap()));
        assert!(mutable_collection(POOL.cli_field("other-config").unwrap()));
        assert!(!mutable_collection(
            POOL.cli_field("ha-configuration").unwrap()
        ));
    }
}
