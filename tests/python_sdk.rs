//! The official XenAPI Python SDK drives `xapid` over XML-RPC (tests/python/sdk_checks.py).
//! `scripts/test` installs the SDK; CI runs this test.

mod common;

use std::path::PathBuf;

use common::{TestDaemon, PASSWORD};

/// The Python that has the SDK: `XENHA_PYTHON` (set by scripts/test), else the venv
/// scripts/test makes under target/ when the system Python refuses pip installs, else python3.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("XENHA_PYTHON").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/xenapi-venv/bin/python3");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

#[test]
fn the_official_python_sdk_drives_xapid() {
    let d = TestDaemon::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_checks.py");
    let python = python();
    let out = std::process::Command::new(&python)
        .args([script, &d.http_url(), PASSWORD])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/test installs Python and the XenAPI SDK)",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK checks failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}\nxapid log:\n{}",
        python.display(),
        d.log()
    );
    let n: usize = stdout
        .trim()
        .strip_prefix("sdk checks passed: ")
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert_eq!(n, 30, "every check in sdk_checks.py ran");
}
