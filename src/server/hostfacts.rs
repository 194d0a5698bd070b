//! A host's facts in the pool database: applying [`HostFacts`] to its records. The master
//! does this for itself at start and for a member whenever it brings the member back, so a
//! member's restart with new memory or CPUs reaches the database through the master.

use super::{now_datetime, vm};
use crate::host::{cpuinfo, HostFacts};
use crate::model::classes::{HOST, HOST_CPU, HOST_METRICS};
use crate::model::{ApiError, Value};
use crate::pool::Txn;

/// `host.cpu_info` for these CPUs.
pub fn cpu_info(cpus: &[cpuinfo::Cpu]) -> Value {
    let summary = cpuinfo::summarise(cpus);
    Value::string_map([
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
    ])
}

/// Make the host's records say what `facts` says: CPUs (replaced only when the hardware
/// changed, so their UUIDs stay stable), `cpu_info`, memory, address, host name, version; the
/// host is live.
pub fn apply(t: &mut Txn<'_>, host_ref: &str, facts: &HostFacts) -> Result<(), ApiError> {
    let cpus = &facts.cpus;
    let cpu_info = cpu_info(cpus);
    let (memory_total, memory_overhead) = (facts.memory_total, facts.memory_overhead);
    let (address, hostname) = (facts.address.as_str(), facts.hostname.as_str());
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
