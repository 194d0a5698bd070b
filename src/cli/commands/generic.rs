//! The generic commands xapi generates for every class (`gen_cmds`, `make_param_funs`):
//! `-list`, `-param-list`, `-param-get`, `-param-set`, `-param-add`, `-param-remove`,
//! `-param-clear`, driven by the model's class table through [`super::super::records`].

use super::super::args::CommandLine;
use super::super::errors::CliError;
use super::super::printer::{Out, Printer, Rec};
use super::super::records::{
    self, by_uuid, cli_fields, field_ref, get, get_map, get_set, is_map, is_set, key,
    mutable_collection, settable, Ctx, FieldRef, Obj,
};
use super::{bool_param, Extras, Format, STDPARAMS};
use crate::model::{parse_bool, ClassDecl, FieldDecl, Ty, Value, NULL_REF};

/// `choose_params`: `params=` as given, or the default list; `params=all` means every field.
fn chosen<'a>(cmd: &'a CommandLine, defaults: &'a [&'a str]) -> Option<Vec<&'a str>> {
    match cmd.get("params") {
        Some("all") => None,
        Some(ps) => Some(ps.split(',').collect()),
        None if defaults.is_empty() => None,
        None => Some(defaults.to_vec()),
    }
}

/// `select_fields`: the fields to print, in record order, hidden ones dropped.
fn selected(class: &'static ClassDecl, names: &Option<Vec<&str>>) -> Vec<&'static FieldDecl> {
    cli_fields(class)
        .filter(|f| !f.hidden)
        .filter(|f| names.as_ref().is_none_or(|n| n.contains(&f.cli)))
        .collect()
}

fn record(
    ctx: &mut Ctx,
    o: &Obj,
    fields: &[&'static FieldDecl],
    expensive: bool,
) -> Result<Rec, CliError> {
    fields
        .iter()
        .map(|f| Ok((key(f), get(ctx, o, f, expensive)?)))
        .collect()
}

pub(super) fn list(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
    x: Extras,
) -> Result<(), CliError> {
    let all = ctx.all(class)?;
    let mut filters: Vec<(String, String)> = Vec::new();
    if class.name == "VM" {
        filters.push(("is-a-template".into(), "false".into()));
    }
    filters.extend(
        cmd.params
            .iter()
            .filter(|(k, _)| {
                k != "params" && !STDPARAMS.contains(&k.as_str()) && !k.starts_with("database:")
            })
            .cloned(),
    );
    let mut objs = all.clone();
    for (k, v) in &filters {
        objs = records::filter(ctx, objs, k, v)?;
    }
    if bool_param(cmd, "all")? {
        objs = all;
    }
    let fields = selected(class, &chosen(cmd, class.default_list));
    let mut table = Vec::new();
    for o in &objs {
        table.push(record(ctx, o, &fields, false)?);
    }
    emit(p, fields.as_slice(), table, x.format);
    Ok(())
}

/// Print records in the chosen format.
fn emit(p: &mut Printer, fields: &[&'static FieldDecl], table: Vec<Rec>, format: Format) {
    match format {
        Format::Xe => p.print(Out::Table(table)),
        Format::Json => {
            let arr: Vec<serde_json::Value> = table
                .iter()
                .map(|r| {
                    let mut m = serde_json::Map::new();
                    for (f, (_, v)) in fields.iter().zip(r) {
                        m.insert(f.cli.to_string(), serde_json::Value::String(v.clone()));
                    }
                    serde_json::Value::Object(m)
                })
                .collect();
            let text =
                serde_json::to_string_pretty(&serde_json::Value::Array(arr)).unwrap_or_default();
            p.print(Out::Msg(text));
        }
        Format::Table => {
            let mut t = comfy_table::Table::new();
            t.set_header(fields.iter().map(|f| f.cli));
            for r in &table {
                t.add_row(r.iter().map(|(_, v)| v.as_str()));
            }
            p.print(Out::Msg(t.to_string()));
        }
    }
}

pub(super) fn param_list(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
    x: Extras,
) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let fields = selected(class, &None);
    let r = record(ctx, &o, &fields, true)?;
    emit(p, &fields, vec![r], x.format);
    Ok(())
}

/// `field_lookup`: a field by CLI name (hidden ones included), or xe's `Missing parameter`.
/// The object named by `uuid=` and its field named by `param-name=`, looked up in that order
/// (so an unknown object is reported before an unknown field, as xe does).
fn object_and_field(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(Obj, &'static FieldDecl), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let f = lookup(class, cmd.get("param-name").unwrap_or(""))?;
    Ok((o, f))
}

fn lookup(class: &'static ClassDecl, name: &str) -> Result<&'static FieldDecl, CliError> {
    class
        .cli_field(name)
        .ok_or_else(|| CliError::Code("Missing parameter".into(), vec![name.into()]))
}

pub(super) fn param_get(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
) -> Result<(), CliError> {
    let (o, f) = object_and_field(class, cmd, ctx)?;
    if let (Some(k), true) = (cmd.get("param-key"), is_map(f)) {
        let v = get_map(ctx, &o, f)
            .into_iter()
            .find(|(mk, _)| mk == k)
            .map(|(_, v)| v)
            .ok_or_else(|| CliError::failure(format!("Key {k} not found in map")))?;
        p.print(Out::List(vec![v]));
    } else {
        let v = get(ctx, &o, f, true)?;
        p.print(Out::List(vec![v]));
    }
    Ok(())
}

/// `Record_util.bytes_of_string`: an integer with an optional unit (`b`, `KiB`/`kb`/`k`, `MiB`,
/// `GiB`, `TiB`, any case), as xe accepts for VM memory fields.
pub fn bytes_of_string(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let digits = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .count();
    let size: i64 = t[..digits].parse().ok()?;
    let suffix = t[digits..].split_whitespace().next().unwrap_or("");
    if size < 0 {
        return None;
    }
    let k: i64 = match suffix.to_ascii_lowercase().as_str() {
        "bytes" | "b" | "" => 1,
        "kib" | "kb" | "k" => 1 << 10,
        "mib" | "mb" | "m" => 1 << 20,
        "gib" | "gb" | "g" => 1 << 30,
        "tib" | "tb" | "t" => 1 << 40,
        _ => return None,
    };
    size.checked_mul(k)
}

/// Text to the wire value of a settable field, with xe's parse failures.
fn parse_for_set(ctx: &mut Ctx, f: &FieldDecl, v: &str) -> Result<Value, CliError> {
    if f.ty == Ty::Int && f.name.starts_with("memory_") {
        return bytes_of_string(v).map(Value::Int).ok_or_else(|| {
            CliError::failure(format!(
                "Failed to parse field '{}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{v}'",
                f.cli
            ))
        });
    }
    Ok(match f.ty {
        Ty::Int => Value::Int(v.trim().parse().map_err(|_| {
            CliError::failure(format!(
                "Failed to parse parameter '{}': expecting an integer",
                f.cli
            ))
        })?),
        Ty::Bool => Value::Bool(parse_bool(v).ok_or_else(|| {
            CliError::failure(format!(
                "Failed to parse parameter '{}': expecting a boolean (true or false)",
                f.cli
            ))
        })?),
        Ty::Float => Value::Float(v.trim().parse().map_err(|_| {
            CliError::failure(format!(
                "Failed to parse parameter '{}': expecting a float",
                f.cli
            ))
        })?),
        Ty::Ref(class) => {
            if v.is_empty() {
                Value::str(NULL_REF)
            } else {
                ctx.call(&format!("{class}.get_by_uuid"), &[v.into()])?
            }
        }
        _ => Value::str(v),
    })
}

pub(super) fn param_set(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(), CliError> {
    let o = by_uuid(ctx, class, cmd.get("uuid").unwrap_or(""))?;
    let this: Value = o.reference.clone().into();
    for (k, v) in &cmd.params {
        if k == "uuid" || STDPARAMS.contains(&k.as_str()) {
            continue;
        }
        match field_ref(class, k).map_err(CliError::Failure)? {
            FieldRef::Map(f, key) => {
                if !mutable_collection(f) {
                    return Err(CliError::failure(format!(
                        "Map field '{}' is read-only.",
                        f.cli
                    )));
                }
                if get_map(ctx, &o, f).iter().any(|(mk, _)| *mk == key) {
                    ctx.call(
                        &format!("{}.remove_from_{}", class.name, f.name),
                        &[this.clone(), key.clone().into()],
                    )?;
                }
                ctx.call(
                    &format!("{}.add_to_{}", class.name, f.name),
                    &[this.clone(), key.into(), v.clone().into()],
                )?;
            }
            FieldRef::Set(..) => return Err(CliError::failure("Cannot param-set on set fields")),
            FieldRef::Normal(f) => {
                if !settable(f) {
                    return Err(CliError::failure(if mutable_collection(f) {
                        format!("Field '{k}' is a map or set. use the 'name:key=value' syntax.")
                    } else {
                        format!("Field '{k}' is read-only.")
                    }));
                }
                let value = parse_for_set(ctx, f, v)?;
                ctx.call(
                    &format!("{}.set_{}", class.name, f.name),
                    &[this.clone(), value],
                )?;
            }
        }
    }
    Ok(())
}

pub(super) fn param_add(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(), CliError> {
    let (o, f) = object_and_field(class, cmd, ctx)?;
    let this: Value = o.reference.clone().into();
    if is_set(f) && mutable_collection(f) {
        let Some(k) = cmd.get("param-key") else {
            return Err(CliError::failure(
                "When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>",
            ));
        };
        return ctx
            .call(&format!("{}.add_{}", class.name, f.name), &[this, k.into()])
            .map(|_| ());
    }
    if is_map(f) && mutable_collection(f) {
        for (k, v) in &cmd.params {
            if ["uuid", "param-name", "param-key"].contains(&k.as_str())
                || STDPARAMS.contains(&k.as_str())
            {
                continue;
            }
            ctx.call(
                &format!("{}.add_to_{}", class.name, f.name),
                &[this.clone(), k.clone().into(), v.clone().into()],
            )?;
        }
        return Ok(());
    }
    if is_set(f) || is_map(f) {
        return Err(CliError::failure("Parameter is read-only"));
    }
    Err(CliError::failure(
        "Can only add to parameters of type Set or Map",
    ))
}

pub(super) fn param_remove(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(), CliError> {
    let (o, f) = object_and_field(class, cmd, ctx)?;
    let key = cmd.get("param-key").unwrap_or("").to_string();
    let this: Value = o.reference.clone().into();
    if (is_set(f) || is_map(f)) && !mutable_collection(f) {
        return Err(CliError::failure(
            "Cannot remove parameters from read-only map",
        ));
    }
    if is_set(f) {
        if !get_set(ctx, &o, f).contains(&key) {
            return Err(CliError::failure(format!("Key {key} is not in the set")));
        }
        return ctx
            .call(
                &format!("{}.remove_{}", class.name, f.name),
                &[this, key.into()],
            )
            .map(|_| ());
    }
    if is_map(f) {
        if !get_map(ctx, &o, f).iter().any(|(k, _)| *k == key) {
            return Err(CliError::failure(format!("Key {key} is not in map")));
        }
        ctx.call(
            &format!("{}.remove_from_{}", class.name, f.name),
            &[this, key.into()],
        )?;
        return Ok(());
    }
    Err(CliError::failure(
        "Can only remove from parameters of type Set or Map",
    ))
}

pub(super) fn param_clear(
    class: &'static ClassDecl,
    cmd: &CommandLine,
    ctx: &mut Ctx,
) -> Result<(), CliError> {
    let (o, f) = object_and_field(class, cmd, ctx)?;
    let this: Value = o.reference.clone().into();
    if is_set(f) && mutable_collection(f) {
        let raw = o.rec.get(f.name).cloned().unwrap_or_else(|| f.ty.zero());
        for m in raw.as_array().unwrap_or(&[]) {
            ctx.call(
                &format!("{}.remove_{}", class.name, f.name),
                &[this.clone(), m.clone()],
            )
            .map(|_| ())?;
        }
        return Ok(());
    }
    if is_map(f) && mutable_collection(f) {
        for (k, _) in get_map(ctx, &o, f) {
            ctx.call(
                &format!("{}.remove_from_{}", class.name, f.name),
                &[this.clone(), k.into()],
            )?;
        }
        return Ok(());
    }
    if settable(f) {
        let v = parse_for_set(ctx, f, "")
            .map_err(|_| CliError::failure("Cannot clear this parameter"))?;
        return match ctx.try_call(&format!("{}.set_{}", class.name, f.name), &[this, v])? {
            Ok(_) => Ok(()),
            Err(_) => Err(CliError::failure("Cannot clear this parameter")),
        };
    }
    Err(CliError::failure("Can only clear RW parameters"))
}
