//! First start and every start: make sure the pool database describes this host truthfully.
//!
//! On first start this creates a one-host pool: the host (identity from the state directory's
//! `inventory` file, written before anything else so an interrupted bootstrap resumes instead
//! of inventing a second host), its metrics, one `host_cpu` per logical CPU, and the pool with
//! this host as master. On every start it refreshes what can change underneath us: memory,
//! CPUs, liveness.

use super::{io, Config, DaemonError};
use crate::host::{self, cpuinfo, inventory, HostFacts};
use crate::model::classes::{HOST, HOST_METRICS, POOL};
use crate::model::Value;
use crate::pool::Database;
use crate::server::{auth, hostfacts, Server};

/// Make sure this host, its CPUs and metrics, and the pool exist and are current; return the
/// host's ref.
pub fn ensure(db: &Database, config: &Config, facts: &HostFacts) -> Result<String, DaemonError> {
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
    let cpu_info = hostfacts::cpu_info(&facts.cpus);
    let hostname = facts.hostname.clone();
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
        hostfacts::apply(t, &host_ref, facts)?;
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
        generated_root_password(config)?
    };
    auth::set_password(server, "root", &password, crate::model::Role::PoolAdmin)?;
    Ok(())
}

/// The generated root password: the one in the state directory's `root-password` file if an
/// earlier first start wrote it but stopped before storing root's credential (its reader may
/// already have it), otherwise a new one, written there (0600) whole or not at all.
fn generated_root_password(config: &Config) -> Result<String, DaemonError> {
    let path = config.state_dir.join("root-password");
    let shown = path.display();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            if let Some(password) = text.lines().next().filter(|l| !l.is_empty()) {
                tracing::warn!(path = %shown, "root has no password yet; using the one generated earlier in this file");
                return Ok(password.to_string());
            }
            // An empty file (left by a version that wrote in place) told no one anything:
            // replace it.
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("reading {shown}"))(e)),
    }
    let generated = uuid::Uuid::new_v4().simple().to_string();
    crate::host::files::write_whole(&path, format!("{generated}\n").as_bytes())
        .map_err(io(format!("writing {shown}")))?;
    tracing::warn!(path = %shown, "generated a root password and wrote it here (mode 0600)");
    Ok(generated)
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

/// What this host knows about itself: CPUs (from `--cpuinfo` or /proc/cpuinfo), memory (from
/// `--memory-total` or /proc/meminfo), its address and host name.
pub fn gather_facts(config: &Config) -> Result<HostFacts, DaemonError> {
    let cpus = match &config.cpuinfo_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
            let cpus = cpuinfo::parse_cpuinfo(&text);
            // A file of something else would otherwise quietly make a host without CPUs.
            if cpus.is_empty() {
                return Err(DaemonError::Config(format!(
                    "{}: no CPU found (expected the format of /proc/cpuinfo, a \"processor\" \
                     line per logical CPU)",
                    path.display()
                )));
            }
            cpus
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
    Ok(HostFacts {
        cpus,
        memory_total,
        memory_overhead: config.memory_overhead,
        address,
        hostname: host::hostname(),
    })
}
