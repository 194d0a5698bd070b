//! XenAPI client: transports, protocol choice and sessions.
//!
//! This module owns getting a call to a XenAPI server and its outcome back: the local Unix
//! socket and plain HTTP through the small hand-written [`http`] client (no TLS set-up, so the
//! local path stays fast), HTTPS through reqwest (no certificate verification by default, like
//! xe; optionally verified against CA certificates, or pinned to one certificate by [`pin`]), JSON-RPC on `/jsonrpc` by
//! default with XML-RPC on `/` selectable or as an automatic fallback, and [`Session`]s. It never
//! formats anything for a user; `xe` does that from [`ClientError`] values.

pub mod ca;
pub mod http;
pub mod pin;

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{ApiError, Value};
use crate::wire::{jsonrpc, xmlrpc};

/// The default path of the local daemon's socket, as xapi's.
pub const DEFAULT_SOCKET: &str = "/var/lib/xcp/xapi";

/// Which RPC encoding to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// JSON-RPC 2.0 on `POST /jsonrpc`.
    JsonRpc,
    /// XML-RPC on `POST /`.
    XmlRpc,
}

/// How to verify an HTTPS server's certificate.
#[derive(Clone, Debug, Default)]
pub enum TlsVerify {
    /// Accept any certificate, as xe does (`verify_cert:None`).
    #[default]
    None,
    /// Verify the chain against these certificates as trust anchors ([`ca::load`]), with the
    /// usual hostname check.
    Ca(Vec<rustls::pki_types::CertificateDer<'static>>),
    /// Accept exactly the certificate with this fingerprint, whatever its names.
    Pin(pin::Fingerprint),
}

/// Where to connect.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// The local daemon's Unix socket; on failure, plain HTTP to `127.0.0.1:fallback_port`.
    Local {
        /// Socket path.
        socket: PathBuf,
        /// TCP port for the fallback.
        fallback_port: u16,
    },
    /// Plain HTTP.
    Http {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// HTTPS.
    Https {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Certificate verification.
        verify: TlsVerify,
    },
}

/// Why a call did not produce an API outcome.
#[derive(Debug)]
pub enum TransportError {
    /// The connection could not be made (`connect` failed).
    Connect(io::Error),
    /// The host name did not resolve.
    Resolve {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
    },
    /// The TLS connection could not be made or the HTTPS request failed before a response.
    Tls(String),
    /// The server closed the connection or sent garbage.
    Lost(String),
    /// The server answered with an HTTP error status.
    Http(u16),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Connect(e) => write!(f, "connect: {e}"),
            TransportError::Resolve { host, port } => write!(f, "cannot resolve {host}:{port}"),
            TransportError::Tls(e) => write!(f, "TLS: {e}"),
            TransportError::Lost(e) => write!(f, "connection lost: {e}"),
            TransportError::Http(s) => write!(f, "HTTP status {s}"),
        }
    }
}

/// The outcome of a failed call: the server's API error, or no answer.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an API error.
    Api(ApiError),
    /// No usable answer.
    Transport(TransportError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api(e) => write!(f, "{e}"),
            ClientError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<ApiError> for ClientError {
    fn from(e: ApiError) -> Self {
        ClientError::Api(e)
    }
}

enum Link {
    Unix(http::Conn<UnixStream>),
    Tcp(http::Conn<TcpStream>),
    Https(reqwest::blocking::Client, String),
}

/// A connection to one server, speaking one protocol; reconnects transparently when a kept-alive
/// socket was closed by the server.
pub struct Connection {
    endpoint: Endpoint,
    link: Option<Link>,
    protocol: Protocol,
    fallback: bool,
    next_id: u64,
    debug: Debug,
    debug_log: Vec<String>,
}

/// Where debug lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Debug {
    /// Nowhere.
    Off,
    /// Straight to stderr (`--debug`).
    Stderr,
    /// Kept, for the caller to print if the command fails (`--debug-on-fail`).
    Buffer,
}

fn io_lost(e: io::Error) -> TransportError {
    TransportError::Lost(e.to_string())
}

impl Connection {
    /// A connection to `endpoint`, made lazily on the first call. With `fallback`, a server
    /// that answers `/jsonrpc` with 404 or a non-JSON content type is spoken to in XML-RPC from
    /// then on.
    pub fn new(endpoint: Endpoint, protocol: Protocol, fallback: bool) -> Connection {
        Connection {
            endpoint,
            link: None,
            protocol,
            fallback,
            next_id: 0,
            debug: Debug::Off,
            debug_log: Vec::new(),
        }
    }

    /// Record each request and response: on stderr, or kept for [`Connection::debug_log`].
    pub fn set_debug(&mut self, mode: Debug) {
        self.debug = mode;
    }

    /// The debug lines kept in [`Debug::Buffer`] mode.
    pub fn debug_log(&self) -> &[String] {
        &self.debug_log
    }

    fn trace(&mut self, line: String) {
        match self.debug {
            Debug::Off => {}
            Debug::Stderr => eprintln!("{line}"),
            Debug::Buffer => self.debug_log.push(line),
        }
    }

    /// The protocol currently spoken.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn connect(&mut self) -> Result<Link, TransportError> {
        let endpoint = self.endpoint.clone();
        match &endpoint {
            Endpoint::Local {
                socket,
                fallback_port,
            } => match UnixStream::connect(socket) {
                Ok(s) => Ok(Link::Unix(http::Conn::new(s, "localhost"))),
                Err(e) => {
                    self.trace(format!(
                        "Connecting to Unix socket [{}] failed: {e}",
                        socket.display()
                    ));
                    let s = TcpStream::connect(("127.0.0.1", *fallback_port))
                        .map_err(TransportError::Connect)?;
                    let _ = s.set_nodelay(true);
                    Ok(Link::Tcp(http::Conn::new(s, "127.0.0.1")))
                }
            },
            Endpoint::Http { host, port } => {
                use std::net::ToSocketAddrs;
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                let mut addrs =
                    (bare, *port)
                        .to_socket_addrs()
                        .map_err(|_| TransportError::Resolve {
                            host: host.clone(),
                            port: *port,
                        })?;
                let addr = addrs.next().ok_or_else(|| TransportError::Resolve {
                    host: host.clone(),
                    port: *port,
                })?;
                let s = TcpStream::connect(addr).map_err(TransportError::Connect)?;
                let _ = s.set_nodelay(true);
                Ok(Link::Tcp(http::Conn::new(s, host)))
            }
            Endpoint::Https { host, port, verify } => {
                let mut b = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(3600))
                    .connect_timeout(Duration::from_secs(30));
                match verify {
                    TlsVerify::None => b = b.danger_accept_invalid_certs(true),
                    TlsVerify::Ca(ders) => {
                        let certs = ders
                            .iter()
                            .map(|d| reqwest::Certificate::from_der(d))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| TransportError::Tls(e.to_string()))?;
                        b = b.tls_certs_only(certs);
                    }
                    TlsVerify::Pin(fp) => {
                        let config = pin::client_config(*fp)
                            .map_err(|e| TransportError::Tls(e.to_string()))?;
                        b = b.tls_backend_preconfigured(config);
                    }
                }
                let client = b.build().map_err(|e| TransportError::Tls(e.to_string()))?;
                Ok(Link::Https(client, format!("https://{host}:{port}")))
            }
        }
    }

    fn post(
        &mut self,
        path: &str,
        ctype: &str,
        body: &[u8],
    ) -> Result<http::Response, TransportError> {
        // A kept-alive socket may have been closed by the server; retry once on a fresh one.
        for attempt in 0..2 {
            let fresh = self.link.is_none();
            if fresh {
                self.link = Some(self.connect()?);
            }
            let result = match self.link.as_mut().expect("connected") {
                Link::Unix(c) => c.post(path, ctype, body).map_err(io_lost),
                Link::Tcp(c) => c.post(path, ctype, body).map_err(io_lost),
                Link::Https(client, base) => {
                    let r = client
                        .post(format!("{base}{path}"))
                        .header("content-type", ctype)
                        .header("originator", "cli")
                        .body(body.to_vec())
                        .send()
                        .map_err(|e| TransportError::Tls(e.to_string()))?;
                    let status = r.status().as_u16();
                    let content_type = r
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    let body = r.bytes().map_err(|e| TransportError::Lost(e.to_string()))?;
                    Ok(http::Response {
                        status,
                        content_type,
                        body: body.to_vec(),
                    })
                }
            };
            match result {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.link = None;
                    if fresh || attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Call `method` with `params` (the session, if any, included) and return its outcome.
    pub fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        loop {
            self.next_id += 1;
            let (path, ctype, body) = match self.protocol {
                Protocol::JsonRpc => (
                    "/jsonrpc",
                    "application/json",
                    jsonrpc::encode_call(jsonrpc::Version::V2, method, params, self.next_id),
                ),
                Protocol::XmlRpc => ("/", "text/xml", xmlrpc::encode_call(method, params)),
            };
            if self.debug != Debug::Off {
                // Never leave a password in a debug log: the model names the parameters that
                // carry one (login passwords, pool.join's master password, user passwords).
                let secrets = crate::model::api()
                    .lookup(method)
                    .map(|m| m.secret_positions())
                    .unwrap_or_default();
                let shown = if secrets.is_empty() {
                    body.clone()
                } else {
                    let mut p = params.to_vec();
                    for i in secrets {
                        if let Some(v) = p.get_mut(i) {
                            *v = Value::str("******");
                        }
                    }
                    match self.protocol {
                        Protocol::JsonRpc => {
                            jsonrpc::encode_call(jsonrpc::Version::V2, method, &p, self.next_id)
                        }
                        Protocol::XmlRpc => xmlrpc::encode_call(method, &p),
                    }
                };
                self.trace(format!("-> {shown}"));
            }
            let resp = self
                .post(path, ctype, body.as_bytes())
                .map_err(ClientError::Transport)?;
            self.trace(format!(
                "<- {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            ));
            let json_ok = resp.content_type.starts_with("application/json");
            if self.protocol == Protocol::JsonRpc
                && self.fallback
                && (resp.status == 404 || !json_ok)
            {
                self.protocol = Protocol::XmlRpc;
                continue;
            }
            if resp.status != 200 {
                return Err(ClientError::Transport(TransportError::Http(resp.status)));
            }
            let outcome = match self.protocol {
                Protocol::JsonRpc => jsonrpc::parse_response(&resp.body),
                Protocol::XmlRpc => xmlrpc::parse_response(&resp.body),
            }
            .map_err(|e| ClientError::Transport(TransportError::Lost(e.to_string())))?;
            return outcome.map_err(ClientError::Api);
        }
    }
}

/// A logged-in session: every call gets the session reference as its first parameter.
pub struct Session {
    conn: Connection,
    /// The session reference, `OpaqueRef:…`.
    pub reference: String,
    local: bool,
}

/// The API version this client announces at login.
pub const API_VERSION: &str = "2.21";

impl Session {
    /// A session over `conn` for a reference obtained elsewhere (`local`: end it with
    /// `session.local_logout`).
    pub fn from_parts(conn: Connection, reference: String, local: bool) -> Session {
        Session {
            conn,
            reference,
            local,
        }
    }

    /// `session.login_with_password(uname, pwd, version, "cli")`.
    pub fn login_with_password(
        mut conn: Connection,
        uname: &str,
        pwd: &str,
    ) -> Result<Session, ClientError> {
        let r = conn.call(
            "session.login_with_password",
            &[uname.into(), pwd.into(), API_VERSION.into(), "cli".into()],
        )?;
        Ok(Session {
            conn,
            reference: value_text(&r),
            local: false,
        })
    }

    /// `session.slave_local_login_with_password(uname, pwd)`: a session good only on this host,
    /// which works even in emergency mode.
    pub fn slave_local_login_with_password(
        mut conn: Connection,
        uname: &str,
        pwd: &str,
    ) -> Result<Session, ClientError> {
        let r = conn.call(
            "session.slave_local_login_with_password",
            &[uname.into(), pwd.into()],
        )?;
        Ok(Session {
            conn,
            reference: value_text(&r),
            local: true,
        })
    }

    /// Call `method(session, params…)`.
    pub fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::Str(self.reference.clone()));
        all.extend_from_slice(params);
        self.conn.call(method, &all)
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// End the session (`session.logout`, or `session.local_logout` for a local session).
    pub fn logout(mut self) -> Result<(), ClientError> {
        let m = if self.local {
            "session.local_logout"
        } else {
            "session.logout"
        };
        self.call(m, &[]).map(|_| ())
    }
}

/// A value as plain text: strings as they are, ints and floats in decimal, bools as
/// `true`/`false`. XML-RPC carries ints as untyped strings and JSON-RPC as numbers; both come out
/// the same here.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::DateTime(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Nil => String::new(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Struct(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", value_text(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A one-shot fake server: answers each request on one connection with the next canned
    /// response, and returns the request paths it saw.
    fn fake(responses: Vec<(&'static str, String)>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut paths = Vec::new();
            for (ctype, body) in responses {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                paths.push(line.split(' ').nth(1).unwrap().to_string());
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut b = vec![0; len];
                r.read_exact(&mut b).unwrap();
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            paths
        });
        (port, h)
    }

    #[test]
    fn falls_back_to_xmlrpc_when_jsonrpc_answers_html() {
        let ok = xmlrpc::encode_response(&Ok(Value::str("OpaqueRef:s")));
        let (port, h) = fake(vec![("text/html", "<html/>".into()), ("text/xml", ok)]);
        let conn = Connection::new(
            Endpoint::Http {
                host: "127.0.0.1".into(),
                port,
            },
            Protocol::JsonRpc,
            true,
        );
        let s = Session::login_with_password(conn, "root", "pw").unwrap();
        assert_eq!(s.reference, "OpaqueRef:s");
        assert_eq!(s.connection().protocol(), Protocol::XmlRpc);
        assert_eq!(h.join().unwrap(), ["/jsonrpc", "/"]);
    }

    #[test]
    fn api_errors_come_back_as_values() {
        let err = jsonrpc::encode_response(
            jsonrpc::Version::V2,
            &serde_json::json!(1),
            &Err(ApiError::new(
                "SESSION_AUTHENTICATION_FAILED",
                ["root", "bad"],
            )),
        );
        let (port, h) = fake(vec![("application/json", err)]);
        let conn = Connection::new(
            Endpoint::Local {
                socket: "/nonexistent/xe-test.sock".into(),
                fallback_port: port,
            },
            Protocol::JsonRpc,
            true,
        );
        match Session::login_with_password(conn, "root", "x") {
            Err(ClientError::Api(e)) => {
                assert_eq!(e.code, "SESSION_AUTHENTICATION_FAILED");
                assert_eq!(e.params, ["root", "bad"]);
            }
            other => panic!("unexpected {:?}", other.err()),
        }
        assert_eq!(h.join().unwrap(), ["/jsonrpc"]);
    }

    #[test]
    fn refused_connections_are_transport_errors() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut c = Connection::new(
            Endpoint::Http {
                host: "127.0.0.1".into(),
                port,
            },
            Protocol::XmlRpc,
            false,
        );
        assert!(matches!(
            c.call("session.logout", &[]),
            Err(ClientError::Transport(TransportError::Connect(_)))
        ));
    }
}
