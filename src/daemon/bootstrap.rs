//! First start and every start: make sure the pool database describes this host truthfully.
//!
//! On first start this creates a one-host pool: the host (identity from the state directory's
//! `inventory` file, written before anything else so an interrupted bootstrap resumes instead
//! of inventing a second host), its metrics, one `host_cpu` per logical CPU, and the pool with
//! this host as master. On every start it refreshes what can change underneath us: memory,
//! CPUs, liveness.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::{io, Config, DaemonError};
use crate::host::{self, cpuinfo, inventory};
use crate::model::classes::{HOST, HOST_CPU, HOST_METRICS, POOL};
use crate::model::{ApiError, Value};
use crate::pool::{Database, Txn};
use crate::server::{auth, now_datetime, vm, Server};

/// Make sure this host, its CPUs and metrics, and the pool exist and are current; return the
/// host's ref.
pub fn ensure(db: &Database, config: &Config) -> Result<String, DaemonError> {
    let host_uuid = match inventory::read(&config.state_dir).map_err(io("reading the inventory"))? {
        Some(inv) => inv.installation_uuid,
        None => {
            let uuid = uuid::Uuid::new_v4().to_string();
            let inv = inventory::Inventory {
                installation_uuid: uuid.clone(),
                master_address: None,
                epoch: 1,
            };
            inventory::write(&config.state_dir, &inv).map_err(io("writing the inventory"))?;
            uuid
        }
    };
    let cpus = match &config.cpuinfo_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
            cpuinfo::parse_cpuinfo(&text)
        }
        None => cpuinfo::read_local().map_err(io("reading /proc/cpuinfo"))?,
    };
    let memory_total = match config.memory_total {
        Some(m) => m,
        None => host::meminfo::read_local_total().map_err(io("reading /proc/meminfo"))?,
    };
    let address = config
        .address
        .clone()
        .or_else(|| {
            [config.https_listen, config.http_listen]
                .into_iter()
                .flatten()
                .map(|a| a.ip())
                .find(|ip| !ip.is_unspecified())
                .map(|ip| ip.to_string())
        })
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let hostname = host::hostname();
    let summary = cpuinfo::summarise(&cpus);
    let cpu_info = Value::string_map([
        ("cpu_count", summary.cpu_count.to_string()),
        ("socket_count", summary.socket_count.to_string()),
        ("threads_per_core", summary.threads_per_core.to_string()),
        ("vendor", summary.vendor.clone()),
        ("speed", summary.speed.to_string()),
        ("modelname", summary.modelname.clone()),
        ("family", summary.family.to_string()),
        ("model", summary.model.to_string()),
        ("stepping", summary.stepping.clone()),
        ("flags", summary.flags.clone()),
    ]);
    let host_ref = db.write(|t| {
        let existing = t.base().by_uuid(&host_uuid).map(|(_, r)| r.to_string());
        let host_ref = match existing {
            Some(r) => r,
            None => {
                let metrics = t.create(&HOST_METRICS, []);
                let name = config
                    .name_label
                    .clone()
                    .unwrap_or_else(|| hostname.clone());
                t.create(
                    &HOST,
                    [
                        ("uuid", Value::str(host_uuid.clone())),
                        ("name_label", Value::str(name)),
                        ("name_description", Value::str("Default install")),
                        ("metrics", Value::str(metrics)),
                    ],
                )
            }
        };
        refresh_host(
            t,
            &host_ref,
            &cpus,
            &cpu_info,
            memory_total,
            config.memory_overhead,
            &address,
            &hostname,
        )?;
        if t.base().all(POOL.name).next().is_none() {
            t.create(
                &POOL,
                [
                    ("master", Value::str(host_ref.clone())),
                    ("cpu_info", cpu_info.clone()),
                ],
            );
        }
        Ok(host_ref)
    })?;
    Ok(host_ref)
}

#[allow(clippy::too_many_arguments)]
fn refresh_host(
    t: &mut Txn<'_>,
    host_ref: &str,
    cpus: &[cpuinfo::Cpu],
    cpu_info: &Value,
    memory_total: i64,
    memory_overhead: i64,
    address: &str,
    hostname: &str,
) -> Result<(), ApiError> {
    let rec = t
        .get(HOST.name, host_ref)
        .cloned()
        .ok_or_else(|| ApiError::handle_invalid(HOST.name, host_ref))?;
    // Replace the CPU objects only when the hardware changed, so their UUIDs stay stable.
    let old_cpus: Vec<String> = rec["host_CPUs"]
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let unchanged = old_cpus.len() == cpus.len()
        && old_cpus.iter().zip(cpus).all(|(r, c)| {
            t.get(HOST_CPU.name, r).is_some_and(|rec| {
                rec["modelname"].as_str() == Some(c.modelname.as_str())
                    && rec["flags"].as_str() == Some(c.flags.as_str())
            })
        });
    let cpu_refs: Vec<Value> = if unchanged {
        old_cpus.into_iter().map(Value::Str).collect()
    } else {
        for r in &old_cpus {
            if t.get(HOST_CPU.name, r).is_some() {
                t.delete(&HOST_CPU, r)?;
            }
        }
        cpus.iter()
            .map(|c| {
                Value::Str(t.create(
                    &HOST_CPU,
                    [
                        ("host", Value::str(host_ref)),
                        ("number", Value::Int(c.number)),
                        ("vendor", Value::str(c.vendor.clone())),
                        ("speed", Value::Int(c.speed)),
                        ("model", Value::Int(c.model)),
                        ("family", Value::Int(c.family)),
                        ("modelname", Value::str(c.modelname.clone())),
                        ("stepping", Value::str(c.stepping.clone())),
                        ("flags", Value::str(c.flags.clone())),
                    ],
                ))
            })
            .collect()
    };
    let metrics = rec["metrics"].as_str().unwrap_or_default().to_string();
    t.update(&HOST, host_ref, |h| {
        h.insert("host_CPUs".into(), Value::Array(cpu_refs));
        h.insert("cpu_info".into(), cpu_info.clone());
        h.insert("memory_overhead".into(), Value::Int(memory_overhead));
        h.insert("address".into(), Value::str(address));
        h.insert("hostname".into(), Value::str(hostname));
        h.insert(
            "software_version".into(),
            Value::string_map([
                ("product_brand", "xenha"),
                ("product_version", env!("CARGO_PKG_VERSION")),
            ]),
        );
    })?;
    t.update(&HOST_METRICS, &metrics, |m| {
        m.insert("memory_total".into(), Value::Int(memory_total));
        m.insert("live".into(), Value::Bool(true));
        m.insert("last_updated".into(), Value::DateTime(now_datetime()));
    })?;
    let free = vm::host_free_memory(t, host_ref);
    t.update(&HOST_METRICS, &metrics, |m| {
        m.insert("memory_free".into(), Value::Int(free));
    })
}

/// On first start, give root a password: from `--root-password-file`, from
/// `XAPID_ROOT_PASSWORD`, or generated and written to a 0600 file in the state directory.
pub fn ensure_root_password(server: &Server, config: &Config) -> Result<(), DaemonError> {
    if server.db.read().credential("root").is_some() {
        if config.root_password_file.is_some() || config.root_password_env.is_some() {
            tracing::info!("root already has a password; the initial password setting is ignored");
        }
        return Ok(());
    }
    // A host ejected from a pool kept its root credential aside; it is root's again.
    if let Some(credential) = inventory::take_kept_root_credential(&config.state_dir)
        .map_err(io("reading the kept root credential"))?
    {
        auth::restore_credential(server, "root", credential, crate::model::Role::PoolAdmin)?;
        inventory::remove_kept_root_credential(&config.state_dir)
            .map_err(io("removing the kept root credential"))?;
        tracing::info!("root keeps the password it had in the pool it was ejected from");
        return Ok(());
    }
    let password = if let Some(path) = &config.root_password_file {
        let text =
            std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
        let first = text.lines().next().unwrap_or("").to_string();
        if first.is_empty() {
            return Err(DaemonError::Config(format!(
                "{} holds no password",
                path.display()
            )));
        }
        first
    } else if let Some(p) = &config.root_password_env {
        p.clone()
    } else {
        let generated = uuid::Uuid::new_v4().simple().to_string();
        let path = config.state_dir.join("root-password");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("writing {}", path.display())))?;
        writeln!(f, "{generated}").map_err(io(format!("writing {}", path.display())))?;
        tracing::warn!(path = %path.display(), "generated a root password and wrote it here (mode 0600)");
        generated
    };
    auth::set_password(server, "root", &password, crate::model::Role::PoolAdmin)?;
    Ok(())
}

/// The pool secret, created with the pool on a master's first start.
pub fn ensure_pool_secret(config: &Config) -> Result<String, DaemonError> {
    if let Some(s) =
        inventory::read_secret(&config.state_dir).map_err(io("reading the pool secret"))?
    {
        return Ok(s);
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    inventory::write_secret(&config.state_dir, &secret).map_err(io("writing the pool secret"))?;
    Ok(secret)
}
