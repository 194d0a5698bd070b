//! Test harness: a real `xapid` process on free 127.0.0.1 ports with a temporary state
//! directory. It is killed when dropped, so no test leaves a process behind; every wait is
//! bounded.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The root password every test daemon starts with.
pub const PASSWORD: &str = "xenha-test-password";

/// A running test daemon.
pub struct TestDaemon {
    /// The state directory (kept alive for restarts).
    pub dir: tempfile::TempDir,
    /// Plain HTTP address, `127.0.0.1:port`.
    pub http: String,
    /// HTTPS address.
    pub https: String,
    /// The local socket.
    pub socket: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    /// Whether the daemon gets [`PASSWORD`] through `XAPID_ROOT_PASSWORD`.
    password_env: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestDaemon {
    /// Start a fresh daemon.
    pub fn start() -> TestDaemon {
        TestDaemon::start_with(&[])
    }

    /// Start a pool host on loopback address `ip`, serving plain HTTP on `port` (the same port
    /// for every host of a test pool) and reaching its peers the same way.
    pub fn start_at(ip: &str, port: u16, extra: &[&str]) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("xapi.sock");
        let mut args: Vec<String> = [
            "--address",
            ip,
            "--pool-scheme",
            "http",
            "--pool-port",
            &port.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let https_port = TcpListener::bind(format!("{ip}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut d = TestDaemon {
            http: format!("{ip}:{port}"),
            https: format!("{ip}:{https_port}"),
            socket,
            dir,
            child: None,
            extra: args,
            password_env: true,
        };
        d.spawn();
        d
    }

    /// Start a fresh daemon with extra `xapid` flags (kept for restarts).
    pub fn start_with(extra: &[&str]) -> TestDaemon {
        Self::start_in(tempfile::tempdir().unwrap(), extra, true)
    }

    /// Start a daemon on a state directory the test prepared, without `XAPID_ROOT_PASSWORD`
    /// (for the other sources of root's first password).
    pub fn start_prepared(dir: tempfile::TempDir, extra: &[&str]) -> TestDaemon {
        Self::start_in(dir, extra, false)
    }

    /// Start a daemon on 127.0.0.1 in `dir`, with root's first password from the environment
    /// or not.
    fn start_in(dir: tempfile::TempDir, extra: &[&str], password_env: bool) -> TestDaemon {
        let socket = dir.path().join("xapi.sock");
        let mut d = TestDaemon {
            http: format!("127.0.0.1:{}", free_port()),
            https: format!("127.0.0.1:{}", free_port()),
            socket,
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            password_env,
        };
        d.spawn();
        d
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("xapid.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xapid"));
        cmd.args(["--state-dir", self.dir.path().to_str().unwrap()])
            .args(["--listen", &self.https, "--http-listen", &self.http])
            .args(["--socket", self.socket.to_str().unwrap()]);
        // A short failed-login delay keeps tests quick, unless the test sets its own.
        if !self.extra.iter().any(|a| a == "--auth-failure-delay-ms") {
            cmd.args(["--auth-failure-delay-ms", "200"]);
        }
        match self.password_env {
            true => cmd.env("XAPID_ROOT_PASSWORD", PASSWORD),
            false => cmd.env_remove("XAPID_ROOT_PASSWORD"),
        };
        let child = cmd
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting xapid");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.http).is_err() || !self.socket.exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("xapid exited early with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "xapid did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("xapid.log")).unwrap_or_default()
    }

    /// Stop with SIGTERM and return the exit status (bounded wait).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("xapid ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) for the daemon to exit on its own, e.g. after being ejected from a pool.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("xapid did not exit:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal (`STOP`, `CONT`, ...) to the daemon.
    #[allow(dead_code)]
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("daemon running").id();
        Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
    }

    /// Freeze the daemon (SIGSTOP): it keeps its sockets but answers nothing, like a hung
    /// host. It resumes (SIGCONT) when the guard is dropped, also when the test panics first;
    /// dropping the daemon itself would kill it, frozen or not.
    #[allow(dead_code)]
    pub fn pause(&self) -> Paused<'_> {
        self.signal("STOP");
        Paused(self)
    }

    /// The exit status, if the daemon has exited on its own.
    #[allow(dead_code)]
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    /// Kill with SIGKILL (no chance to clean up).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same state directory and ports, with `flag value` set anew (a host
    /// that comes back with other hardware).
    pub fn restart_with(&mut self, flag: &str, value: &str) {
        if let Some(i) = self.extra.iter().position(|a| a == flag) {
            self.extra.drain(i..i + 2);
        }
        self.extra.extend([flag.to_string(), value.to_string()]);
        self.restart();
    }

    /// Start again on the same state directory and ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the daemon first");
        self.spawn();
    }

    /// `http://127.0.0.1:port`
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }
}

/// Run `xapid` on the state directory `dir` (with [`PASSWORD`] for root) expecting it to refuse
/// to start: its exit status and its log. The wait is bounded; a daemon that comes up instead
/// is killed and the test fails.
pub fn start_refused(dir: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let log_path = dir.join("xapid.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xapid"))
        .args(["--state-dir", dir.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--socket", dir.join("xapi.sock").to_str().unwrap()])
        .args(extra)
        .env("XAPID_ROOT_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting xapid");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (
                status,
                std::fs::read_to_string(&log_path).unwrap_or_default(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "xapid did not refuse to start:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon frozen by [`TestDaemon::pause`]; dropping this resumes it.
pub struct Paused<'a>(&'a TestDaemon);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if self.0.child.is_some() {
            self.0.signal("CONT");
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal HTTP/1.1 client for exact status, headers and bodies.
pub mod raw {
    use std::io::{Read, Write};
    use std::time::Duration;

    /// A response: status code, lower-cased headers, body.
    pub struct Response {
        /// Status code.
        pub status: u16,
        /// Headers, names lower-cased.
        pub headers: Vec<(String, String)>,
        /// Body bytes.
        pub body: String,
    }

    impl Response {
        /// First header with this (lower-case) name.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// POST `body` to `path` over a Unix socket, `Connection: close`.
    pub fn post_unix(socket: &std::path::Path, path: &str, body: &[u8]) -> Response {
        try_post_unix(socket, path, body).unwrap()
    }

    /// [`post_unix`] for a daemon that may be down: a failed connection is an error, not a panic.
    #[allow(dead_code)]
    pub fn try_post_unix(
        socket: &std::path::Path,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut s = std::os::unix::net::UnixStream::connect(socket)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        Ok(parse(&raw))
    }

    /// POST `body` to `path` on `addr` (TCP, plain HTTP), `Connection: close`.
    pub fn post(addr: &str, path: &str, body: &[u8]) -> Response {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // A server may answer (e.g. 413) before reading everything; that is not our error.
        let _ = s.write_all(body);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse(&raw)
    }

    fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap_or("")
            .split(' ')
            .nth(1)
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Response {
            status,
            headers,
            body,
        }
    }

    fn dechunk(mut s: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            s = &rest[n + 2..];
        }
        out
    }
}

/// Whether the shell `sh` is installed, for tests that run completion scripts in it. When it is
/// missing the test is to be skipped: say so on the real stderr (test output capture would hide
/// it), unless `XENHA_REQUIRE_SHELLS` is set (scripts/test installs the shells and sets it), in
/// which case a missing shell is a failure rather than a silent skip.
pub fn have_shell(sh: &str, test: &str) -> bool {
    use std::io::Write;
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", sh])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("XENHA_REQUIRE_SHELLS").is_none(),
            "{test}: {sh} is not installed, and XENHA_REQUIRE_SHELLS says it must be"
        );
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped, {sh} is not installed (command -v {sh} found nothing)"
        );
    }
    found
}

/// Wait (bounded) until `cond` holds, polling every 100 ms; panics naming `what` on timeout.
#[allow(dead_code)]
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run the `xe` binary against `d`'s local socket with a clean environment: exit code,
/// stdout, stderr.
#[allow(dead_code)]
pub fn xe(d: &TestDaemon, args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xe"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XAPI_SOCKET", &d.socket)
        .output()
        .expect("running xe");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// A pool of real daemons ready for HA: hosts on 127.0.0.<base+i> sharing one API port and one
/// HA port, joined to the first, with a shared file SR (`MGMT-HA`) plugged everywhere.
#[allow(dead_code)]
pub struct HaPool {
    /// The hosts, master first.
    pub hosts: Vec<TestDaemon>,
    /// Their addresses.
    pub ips: Vec<String>,
    /// The shared SR's UUID.
    pub sr_uuid: String,
    /// The directory behind the shared SR.
    pub shared: tempfile::TempDir,
    /// The API port every host serves on.
    pub port: u16,
    /// Held while the pool lives (dropped last, after its hosts are killed): one HA pool at a
    /// time per test binary. HA runs on timeouts of a few seconds; several pools electing and
    /// fencing at once on a loaded two-core CI machine miss them for reasons no test is about.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// The lock behind [`HaPool`]'s one-at-a-time rule.
static HA_POOLS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[allow(dead_code)]
impl HaPool {
    /// Every host's log, headed by its address: what a failing multi-host test must show.
    pub fn logs(&self) -> String {
        self.hosts
            .iter()
            .zip(&self.ips)
            .map(|(h, ip)| format!("==== {ip}\n{}", h.log()))
            .collect()
    }

    /// [`wait_for`], but a timeout shows every host's log.
    pub fn wait_for(&self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Form an [`HaPool`] with one host per entry of `memory_gib` (its memory in GiB).
#[allow(dead_code)]
pub fn ha_pool(base: u8, memory_gib: &[i64]) -> HaPool {
    ha_pool_at("127.0.0", base, memory_gib)
}

/// [`ha_pool`] on `net.<base+i>` (`net` such as `127.0.3`, a test's own loopback range).
#[allow(dead_code)]
pub fn ha_pool_at(net: &str, base: u8, memory_gib: &[i64]) -> HaPool {
    // A test that failed while holding the lock poisoned it; the next pool is still sound.
    let one_at_a_time = HA_POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let call = |d: &TestDaemon, method: &str, params: serde_json::Value| {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
                .to_string();
        let r: serde_json::Value =
            serde_json::from_str(&raw::post_unix(&d.socket, "/jsonrpc", body.as_bytes()).body)
                .unwrap();
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    };
    let port = free_port();
    let ha_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let ips: Vec<String> = (0..memory_gib.len())
        .map(|i| format!("{net}.{}", base + i as u8))
        .collect();
    let hosts: Vec<TestDaemon> = ips
        .iter()
        .zip(memory_gib)
        .map(|(ip, gib)| {
            let mem = (gib << 30).to_string();
            TestDaemon::start_at(ip, port, &["--ha-port", &ha_port, "--memory-total", &mem])
        })
        .collect();
    let login = |d: &TestDaemon| {
        call(
            d,
            "session.login_with_password",
            serde_json::json!(["root", ""]),
        )
    };
    for h in &hosts[1..] {
        let s = login(h);
        call(
            h,
            "pool.join",
            serde_json::json!([s, ips[0], "root", PASSWORD]),
        );
    }
    let shared = tempfile::tempdir().unwrap();
    let m = &hosts[0];
    let s = login(m);
    let pool = call(m, "pool.get_all", serde_json::json!([s]))[0].clone();
    let master = call(m, "pool.get_master", serde_json::json!([s, pool]));
    let sr = call(
        m,
        "SR.create",
        serde_json::json!([s, master, {"location": shared.path()}, 0, "MGMT-HA", "", "file", "", true, {}]),
    );
    let sr_uuid = call(m, "SR.get_uuid", serde_json::json!([s, sr]))
        .as_str()
        .unwrap()
        .to_string();
    HaPool {
        hosts,
        ips,
        sr_uuid,
        shared,
        port,
        _one_at_a_time: one_at_a_time,
    }
}

/// Panic unless the checked-in file `rel` (from the package root) is exactly `generated`;
/// `regenerate` is the command that brings it up to date.
#[allow(dead_code)]
pub fn assert_fresh(rel: &str, generated: &[u8], regenerate: &str) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let checked_in = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(checked_in == generated, "{rel} is stale: run {regenerate}");
}

/// The ref of the host at `address` as `d` sees it: `host.get_all_records` with `session` on
/// its local socket. Panics, showing the answer, when there is none.
#[allow(dead_code)]
pub fn host_by_address(
    d: &TestDaemon,
    session: &serde_json::Value,
    address: &str,
) -> serde_json::Value {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "method": "host.get_all_records", "params": [session], "id": 1
    })
    .to_string();
    let r: serde_json::Value =
        serde_json::from_str(&raw::post_unix(&d.socket, "/jsonrpc", body.as_bytes()).body).unwrap();
    let found = r["result"].as_object().and_then(|hosts| {
        hosts
            .iter()
            .find(|(_, h)| h["address"] == serde_json::json!(address))
    });
    match found {
        Some((host, _)) => serde_json::json!(host),
        None => panic!("no host at {address}: {r}"),
    }
}
