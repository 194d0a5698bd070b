//! Storage repositories, their PBDs and VDIs, as the API sees them. The bytes are handled by
//! [`crate::host::storage`] on a host that has the SR attached: this one when it can, another
//! through a pool-internal call otherwise.

use std::collections::BTreeMap;

use super::peer::PeerError;
use super::Server;
use crate::host::storage::{self, StorageError, StorageOp};
use crate::model::classes::{HOST, PBD, SR, VDI};
use crate::model::{ApiError, Value, NULL_REF};
use crate::server::str_field;

/// Block SR regions start on 1 MiB boundaries.
const REGION_ALIGN: u64 = 1 << 20;

fn map_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_struct)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn backend_failure(e: StorageError) -> ApiError {
    match e {
        StorageError::UnknownDriver(d) => ApiError::new("SR_UNKNOWN_DRIVER", [d]),
        other => ApiError::new(
            "SR_BACKEND_FAILURE",
            ["1".to_string(), String::new(), other.to_string()],
        ),
    }
}

/// Run a storage operation on `host`.
pub async fn run_on(server: &Server, host: &str, op: &StorageOp) -> Result<String, ApiError> {
    if host == server.this_host {
        return storage::execute(op).map_err(backend_failure);
    }
    let address = server
        .db
        .read()
        .field(HOST.name, host, "address")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))?;
    let m = &server.membership;
    let params = vec![
        Value::str(m.secret()),
        Value::Str(serde_json::to_string(op).expect("ops serialise")),
    ];
    match m
        .peers
        .call(&address, "host.internal_storage", params)
        .await
    {
        Ok(v) => Ok(v.as_str().unwrap_or_default().to_string()),
        Err(PeerError::Api(e)) => Err(e),
        Err(PeerError::Unreachable(_)) => Err(ApiError::new("HOST_OFFLINE", [host])),
    }
}

/// `host.internal_storage` on this host.
pub fn internal(server: &Server, secret: &str, op: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    let op: StorageOp =
        serde_json::from_str(op).map_err(|e| ApiError::invalid_value("op", &e.to_string()))?;
    storage::execute(&op)
        .map(Value::Str)
        .map_err(backend_failure)
}

/// `SR.create`: check the storage from `host` (and, for a shared SR, from every host), then
/// record the SR with a PBD per host, attached where the check passed.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    server: &Server,
    host: &str,
    device_config: &Value,
    name_label: &str,
    name_description: &str,
    sr_type: &str,
    content_type: &str,
    shared: bool,
    sm_config: &Value,
) -> Result<Value, ApiError> {
    if !storage::SR_TYPES.contains(&sr_type) {
        return Err(ApiError::new("SR_UNKNOWN_DRIVER", [sr_type]));
    }
    let config = map_of(Some(device_config));
    let hosts: Vec<String> = {
        let t = server.db.read();
        if t.get(HOST.name, host).is_none() {
            return Err(ApiError::handle_invalid(HOST.name, host));
        }
        let others = t
            .all(HOST.name)
            .map(|(r, _)| r.clone())
            .filter(|h| shared && h != host);
        std::iter::once(host.to_string()).chain(others).collect()
    };
    let check = StorageOp::Check {
        sr_type: sr_type.to_string(),
        config: config.clone(),
    };
    // The named host must reach the storage; others that cannot get an unplugged PBD.
    let physical_size: i64 = run_on(server, host, &check).await?.parse().unwrap_or(0);
    let mut attached = vec![true];
    for h in &hosts[1..] {
        attached.push(run_on(server, h, &check).await.is_ok());
    }
    let sr = server.db.write(|t| {
        let sr = t.create(
            &SR,
            [
                ("name_label", Value::str(name_label)),
                ("name_description", Value::str(name_description)),
                ("type", Value::str(sr_type)),
                ("content_type", Value::str(content_type)),
                ("shared", Value::Bool(shared)),
                ("physical_size", Value::Int(physical_size)),
                ("sm_config", sm_config.clone()),
            ],
        );
        let mut pbds = Vec::new();
        for (h, plugged) in hosts.iter().zip(&attached) {
            let pbd = t.create(
                &PBD,
                [
                    ("host", Value::str(h.clone())),
                    ("SR", Value::str(sr.clone())),
                    ("device_config", device_config.clone()),
                    ("currently_attached", Value::Bool(*plugged)),
                ],
            );
            t.add_to_set(&HOST, h, "PBDs", &pbd)?;
            pbds.push(Value::Str(pbd));
        }
        t.set(&SR, &sr, "PBDs", Value::Array(pbds))?;
        Ok(sr)
    })?;
    Ok(Value::Str(sr))
}

/// `PBD.plug` / `PBD.unplug`.
pub async fn plug(server: &Server, pbd: &str, attach: bool) -> Result<Value, ApiError> {
    let (host, sr, sr_type, config, shared, others_attached) = {
        let t = server.db.read();
        let p = t
            .get(PBD.name, pbd)
            .ok_or_else(|| ApiError::handle_invalid(PBD.name, pbd))?;
        let sr = str_field(p, "SR").to_string();
        let s = t
            .get(SR.name, &sr)
            .ok_or_else(|| ApiError::handle_invalid(SR.name, &sr))?;
        let others = t.all(PBD.name).any(|(r, o)| {
            r != pbd
                && str_field(o, "SR") == sr
                && o.get("currently_attached") == Some(&Value::Bool(true))
        });
        (
            str_field(p, "host").to_string(),
            sr.clone(),
            str_field(s, "type").to_string(),
            map_of(p.get("device_config")),
            s.get("shared") == Some(&Value::Bool(true)),
            others,
        )
    };
    if attach {
        if !shared && others_attached {
            return Err(ApiError::new(
                "SR_NOT_SHARABLE",
                [sr.as_str(), host.as_str()],
            ));
        }
        run_on(server, &host, &StorageOp::Check { sr_type, config }).await?;
    }
    server
        .db
        .write(|t| t.set(&PBD, pbd, "currently_attached", Value::Bool(attach)))?;
    Ok(Value::void())
}

/// A host that has `sr` attached, preferring this one.
fn attached_host(server: &Server, sr: &str) -> Result<String, ApiError> {
    let t = server.db.read();
    let hosts: Vec<String> = t
        .all(PBD.name)
        .filter(|(_, p)| {
            str_field(p, "SR") == sr && p.get("currently_attached") == Some(&Value::Bool(true))
        })
        .map(|(_, p)| str_field(p, "host").to_string())
        .collect();
    if hosts.contains(&server.this_host) {
        return Ok(server.this_host.clone());
    }
    hosts
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new("SR_HAS_NO_PBDS", [sr]))
}

/// First fit for a region of `size` bytes among the block SR's existing VDIs.
fn free_region(server: &Server, sr: &str, size: u64, capacity: u64) -> Result<u64, ApiError> {
    let t = server.db.read();
    let mut used: Vec<(u64, u64)> = t
        .all(VDI.name)
        .filter(|(_, v)| str_field(v, "SR") == sr)
        .filter_map(|(_, v)| {
            let offset = v
                .get("sm_config")
                .and_then(Value::as_struct)?
                .get("offset")?
                .as_str()?
                .parse()
                .ok()?;
            Some((
                offset,
                v.get("virtual_size").and_then(Value::as_int).unwrap_or(0) as u64,
            ))
        })
        .collect();
    used.sort();
    let mut candidate = 0;
    for (offset, len) in used {
        if candidate + size <= offset {
            break;
        }
        candidate = (offset + len).div_ceil(REGION_ALIGN) * REGION_ALIGN;
    }
    if candidate + size > capacity {
        return Err(ApiError::new(
            "SR_FULL",
            [size.to_string(), capacity.to_string()],
        ));
    }
    Ok(candidate)
}

/// `VDI.create`.
pub async fn create_vdi(server: &Server, args: &Value) -> Result<Value, ApiError> {
    let fields = args.as_struct().cloned().unwrap_or_default();
    let sr = fields
        .get("SR")
        .and_then(Value::as_str)
        .unwrap_or(NULL_REF)
        .to_string();
    let size = fields
        .get("virtual_size")
        .and_then(|v| crate::model::Ty::Int.coerce(v).ok())
        .and_then(|v| v.as_int())
        .unwrap_or(0);
    if size <= 0 {
        return Err(ApiError::invalid_value("virtual_size", &size.to_string()));
    }
    let (sr_type, config, capacity) = {
        let t = server.db.read();
        let s = t
            .get(SR.name, &sr)
            .ok_or_else(|| ApiError::handle_invalid(SR.name, &sr))?;
        let config = t
            .all(PBD.name)
            .find(|(_, p)| str_field(p, "SR") == sr)
            .map(|(_, p)| map_of(p.get("device_config")))
            .unwrap_or_default();
        (
            str_field(s, "type").to_string(),
            config,
            s.get("physical_size").and_then(Value::as_int).unwrap_or(0) as u64,
        )
    };
    let host = attached_host(server, &sr)?;
    let offset = if sr_type == "block" {
        free_region(server, &sr, size as u64, capacity)?
    } else {
        0
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    let op = StorageOp::CreateVdi {
        sr_type: sr_type.clone(),
        config,
        uuid: uuid.clone(),
        size: size as u64,
        offset,
    };
    let location = run_on(server, &host, &op).await?;
    let text = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let flag = |k: &str| {
        fields
            .get(k)
            .and_then(|v| crate::model::Ty::Bool.coerce(v).ok())
            == Some(Value::Bool(true))
    };
    let vdi_type = crate::model::classes::VDI
        .field("type")
        .expect("declared")
        .ty;
    let kind = fields
        .get("type")
        .and_then(|v| vdi_type.coerce(v).ok())
        .unwrap_or_else(|| Value::str("user"));
    let mut sm_config = map_of(fields.get("sm_config"));
    if sr_type == "block" {
        sm_config.insert("offset".into(), offset.to_string());
    }
    let vdi = server.db.write(|t| {
        let vdi = t.create(
            &VDI,
            [
                ("uuid", Value::str(uuid.clone())),
                ("name_label", Value::str(text("name_label"))),
                ("name_description", Value::str(text("name_description"))),
                ("SR", Value::str(sr.clone())),
                ("virtual_size", Value::Int(size)),
                (
                    "physical_utilisation",
                    Value::Int(if sr_type == "block" { size } else { 0 }),
                ),
                ("location", Value::str(location.clone())),
                ("type", kind.clone()),
                ("sharable", Value::Bool(flag("sharable"))),
                ("read_only", Value::Bool(flag("read_only"))),
                (
                    "other_config",
                    fields
                        .get("other_config")
                        .cloned()
                        .unwrap_or_else(|| Value::Struct(Default::default())),
                ),
                ("sm_config", Value::string_map(sm_config.clone())),
            ],
        );
        t.add_to_set(&SR, &sr, "VDIs", &vdi)?;
        t.update(&SR, &sr, |s| {
            let alloc = s
                .get("virtual_allocation")
                .and_then(Value::as_int)
                .unwrap_or(0)
                + size;
            s.insert("virtual_allocation".into(), Value::Int(alloc));
        })?;
        Ok(vdi)
    })?;
    Ok(Value::Str(vdi))
}

/// `VDI.destroy`.
pub async fn destroy_vdi(server: &Server, vdi: &str) -> Result<Value, ApiError> {
    let (sr, sr_type, config, location, size) = {
        let t = server.db.read();
        let v = t
            .get(VDI.name, vdi)
            .ok_or_else(|| ApiError::handle_invalid(VDI.name, vdi))?;
        let sr = str_field(v, "SR").to_string();
        let sr_type = t
            .field(SR.name, &sr, "type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let config = t
            .all(PBD.name)
            .find(|(_, p)| str_field(p, "SR") == sr)
            .map(|(_, p)| map_of(p.get("device_config")))
            .unwrap_or_default();
        (
            sr,
            sr_type,
            config,
            str_field(v, "location").to_string(),
            v.get("virtual_size").and_then(Value::as_int).unwrap_or(0),
        )
    };
    let host = attached_host(server, &sr)?;
    run_on(
        server,
        &host,
        &StorageOp::RemoveVdi {
            sr_type,
            config,
            location,
        },
    )
    .await?;
    server.db.write(|t| {
        t.delete(&VDI, vdi)?;
        t.remove_from_set(&SR, &sr, "VDIs", vdi)?;
        t.update(&SR, &sr, |s| {
            let alloc = s
                .get("virtual_allocation")
                .and_then(Value::as_int)
                .unwrap_or(0)
                - size;
            s.insert("virtual_allocation".into(), Value::Int(alloc.max(0)));
        })
    })?;
    Ok(Value::void())
}

/// `SR.destroy` (the SR must be empty) and `SR.forget` (no PBD may be attached): both drop the
/// SR's records; neither touches data that VDIs still hold.
pub fn remove(server: &Server, sr: &str, forget: bool) -> Result<Value, ApiError> {
    server.db.write(|t| {
        let s = t
            .get(SR.name, sr)
            .cloned()
            .ok_or_else(|| ApiError::handle_invalid(SR.name, sr))?;
        let pbds: Vec<String> = t
            .base()
            .all(PBD.name)
            .filter(|(_, p)| str_field(p, "SR") == sr)
            .map(|(r, _)| r.clone())
            .collect();
        if forget {
            if pbds.iter().any(|p| {
                t.get(PBD.name, p)
                    .is_some_and(|p| p.get("currently_attached") == Some(&Value::Bool(true)))
            }) {
                return Err(ApiError::new("SR_HAS_PBD", [sr]));
            }
        } else if !s
            .get("VDIs")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .is_empty()
        {
            return Err(ApiError::new::<String>("SR_NOT_EMPTY", []));
        }
        for p in &pbds {
            let host = t
                .get(PBD.name, p)
                .map(|r| str_field(r, "host").to_string())
                .unwrap_or_default();
            if t.get(HOST.name, &host).is_some() {
                t.remove_from_set(&HOST, &host, "PBDs", p)?;
            }
            t.delete(&PBD, p)?;
        }
        let vdis: Vec<String> = t
            .base()
            .all(VDI.name)
            .filter(|(_, v)| str_field(v, "SR") == sr)
            .map(|(r, _)| r.clone())
            .collect();
        for v in vdis {
            t.delete(&VDI, &v)?;
        }
        t.delete(&SR, sr)
    })?;
    Ok(Value::void())
}
