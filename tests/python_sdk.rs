//! The official XenAPI Python SDK drives `xapid` over XML-RPC (tests/python/sdk_checks.py).
//! `scripts/test` installs the SDK; CI runs this test.

mod common;

use common::{TestDaemon, PASSWORD};

#[test]
fn the_official_python_sdk_drives_xapid() {
    let d = TestDaemon::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_checks.py");
    let out = std::process::Command::new("python3")
        .args([script, &d.http_url(), PASSWORD])
        .output()
        .expect("python3 is needed for this test (scripts/test installs the XenAPI SDK)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK checks failed.\nstdout:\n{stdout}\nstderr:\n{stderr}\nxapid log:\n{}",
        d.log()
    );
    let n: usize = stdout
        .trim()
        .strip_prefix("sdk checks passed: ")
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert_eq!(n, 18, "every check in sdk_checks.py ran");
}
