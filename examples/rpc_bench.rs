//! Calls per second of `host.get_record` against a release `xapid`, over XML-RPC and
//! JSON-RPC, with keep-alive HTTP/1.1 connections from several client threads.
//!
//! ```sh
//! cargo build --release --bin xapid --example rpc_bench
//! target/release/examples/rpc_bench [SECONDS] [CONNECTIONS]
//! ```
//!
//! The daemon is started on a free 127.0.0.1 port with a temporary state directory and
//! stopped at the end; nothing else is touched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn post(conn: &mut BufReader<TcpStream>, addr: &str, path: &str, body: &str) -> String {
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(req.as_bytes()).unwrap();
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut buf = vec![0; len];
    conn.read_exact(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Stops the daemon and removes its state however `main` ends, a panic included.
struct Daemon {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let connections: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let exe = std::env::current_exe().unwrap();
    let xapid = exe.parent().unwrap().parent().unwrap().join("xapid");
    let dir = std::env::temp_dir().join(format!("rpc-bench-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(&xapid)
        .args([
            "--state-dir",
            dir.to_str().unwrap(),
            "--listen",
            "none",
            "--socket",
            "none",
            "--http-listen",
            &addr,
        ])
        .env("XAPID_ROOT_PASSWORD", "bench")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {}: {e} (build it with --release first)",
                xapid.display()
            )
        });
    let _daemon = Daemon {
        child,
        dir: dir.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "xapid did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = BufReader::new(TcpStream::connect(&addr).unwrap());
    let login = post(
        &mut c,
        &addr,
        "/jsonrpc",
        r#"{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","bench"],"id":1}"#,
    );
    let result = |answer: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(answer).unwrap()["result"].clone()
    };
    let session = result(&login).as_str().unwrap().to_string();
    let hosts = post(
        &mut c,
        &addr,
        "/jsonrpc",
        &format!(r#"{{"jsonrpc":"2.0","method":"host.get_all","params":["{session}"],"id":1}}"#),
    );
    let host = result(&hosts)[0].as_str().unwrap().to_string();

    let json_body = format!(
        r#"{{"jsonrpc":"2.0","method":"host.get_record","params":["{session}","{host}"],"id":1}}"#
    );
    let xml_body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>host.get_record</methodName><params><param><value>{session}</value></param><param><value>{host}</value></param></params></methodCall>"
    );
    println!(
        "host.get_record, {connections} keep-alive connections, {seconds} s each, xapid on {addr}"
    );
    for (name, path, body) in [
        ("JSON-RPC", "/jsonrpc", json_body),
        ("XML-RPC", "/", xml_body),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..connections)
            .map(|_| {
                let (stop, count, addr, body) =
                    (stop.clone(), count.clone(), addr.clone(), body.clone());
                std::thread::spawn(move || {
                    let mut c = BufReader::new(TcpStream::connect(&addr).unwrap());
                    c.get_ref().set_nodelay(true).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let r = post(&mut c, &addr, path, &body);
                        assert!(r.contains("uuid"), "unexpected answer: {r}");
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let n = count.load(Ordering::Relaxed);
        println!(
            "{name:>9}: {:>8.0} calls/s ({n} calls)",
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
}
