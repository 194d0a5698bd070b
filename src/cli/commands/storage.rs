//! Storage commands with their own implementations in xapi: `sr-create`, `vdi-create`.

use indexmap::IndexMap;

use super::super::args::CommandLine;
use super::super::errors::CliError;
use super::super::printer::{Out, Printer};
use super::super::records::Ctx;
use super::{bool_param, bytes_of_string, map_params};
use crate::client::value_text;
use crate::model::Value;

fn size(field: &str, v: &str) -> Result<i64, CliError> {
    bytes_of_string(v).ok_or_else(|| {
        CliError::failure(format!(
            "Failed to parse field '{field}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{v}'"
        ))
    })
}

/// `parse_host_uuid ~default_master`: `host-uuid=`, else the master when the pool has one host
/// or `default_master` holds.
fn parse_host_uuid(
    cmd: &CommandLine,
    ctx: &mut Ctx,
    default_master: bool,
) -> Result<Value, CliError> {
    if let Some(u) = cmd.get("host-uuid") {
        return ctx.call("host.get_by_uuid", &[u.into()]);
    }
    let hosts = ctx.call("host.get_all", &[])?;
    let standalone = hosts.as_array().is_some_and(|a| a.len() == 1);
    if !(standalone || default_master) {
        return Err(CliError::failure("Required parameter not found: host-uuid"));
    }
    let pools = ctx.call("pool.get_all", &[])?;
    let pool = pools
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| CliError::failure("No pool"))?;
    ctx.call("pool.get_master", &[pool])
}

/// `sr_create`: `SR.create` on the given host (the master for a shared SR); the new uuid is
/// printed with a raw `Print`, so `--minimal` does not hide it. `device-config:K-filename=F`
/// sends the contents of the local file F as `K`.
pub(super) fn sr_create(cmd: &CommandLine, ctx: &mut Ctx, p: &mut Printer) -> Result<(), CliError> {
    let name_label = cmd.get("name-label").unwrap_or("");
    let name_description = cmd.get("name-description").unwrap_or("");
    let shared = bool_param(cmd, "shared")?;
    let host = parse_host_uuid(cmd, ctx, shared)?;
    let physical_size = cmd
        .get("physical-size")
        .and_then(bytes_of_string)
        .unwrap_or(0);
    let ty = cmd.get("type").unwrap_or("");
    let content_type = cmd.get("content-type").unwrap_or("");
    let mut device_config = Vec::new();
    for (k, v) in map_params(cmd, "device-config") {
        match k.strip_suffix("-filename") {
            Some(key) => match std::fs::read_to_string(&v) {
                Ok(text) => device_config.push((key.to_string(), text)),
                Err(_) => {
                    // xapi's `PrintStderr` adds no newline, then `failwith`.
                    p.stderr_raw(&format!("File not found: {v}"));
                    return Err(CliError::failure("File not found"));
                }
            },
            None => device_config.push((k, v)),
        }
    }
    let sm_config = map_params(cmd, "sm-config");
    let sr = ctx.call(
        "SR.create",
        &[
            host,
            Value::string_map(device_config),
            Value::Int(physical_size),
            name_label.into(),
            name_description.into(),
            ty.into(),
            content_type.into(),
            Value::Bool(shared),
            Value::string_map(sm_config),
        ],
    )?;
    let uuid = ctx.call("SR.get_uuid", &[sr])?;
    p.line(&value_text(&uuid));
    Ok(())
}

/// `vdi_create`: `VDI.create` with xapi's record.
pub(super) fn vdi_create(
    cmd: &CommandLine,
    ctx: &mut Ctx,
    p: &mut Printer,
) -> Result<(), CliError> {
    let sr = ctx.call("SR.get_by_uuid", &[cmd.get("sr-uuid").unwrap_or("").into()])?;
    let name_label = cmd.get("name-label").unwrap_or("");
    let virtual_size = size("virtual-size", cmd.get("virtual-size").unwrap_or(""))?;
    let ty = match cmd.get("type") {
        None => "user",
        Some(t @ ("system" | "user" | "suspend" | "crashdump")) => t,
        Some(t) => return Err(CliError::failure(format!("Unknown vdi type: {t}"))),
    };
    let sharable = bool_param(cmd, "sharable")?;
    let sm_config = map_params(cmd, "sm-config");
    let tags: Vec<Value> = map_params(cmd, "tags")
        .into_iter()
        .map(|(k, _)| Value::Str(k))
        .collect();
    let mut rec: IndexMap<String, Value> = IndexMap::new();
    rec.insert("name_label".into(), name_label.into());
    rec.insert("name_description".into(), "".into());
    rec.insert("SR".into(), sr);
    rec.insert("virtual_size".into(), Value::Int(virtual_size));
    rec.insert("type".into(), ty.into());
    rec.insert("sharable".into(), Value::Bool(sharable));
    rec.insert("read_only".into(), Value::Bool(false));
    rec.insert("xenstore_data".into(), Value::Struct(IndexMap::new()));
    rec.insert("other_config".into(), Value::Struct(IndexMap::new()));
    rec.insert("sm_config".into(), Value::string_map(sm_config));
    rec.insert("tags".into(), Value::Array(tags));
    let vdi = ctx.call("VDI.create", &[Value::Struct(rec)])?;
    let uuid = ctx.call("VDI.get_uuid", &[vdi])?;
    p.print(Out::List(vec![value_text(&uuid)]));
    Ok(())
}
