//! What can go wrong in `xe`, and the exact text xe prints for it (`xapi_cli.ml`
//! `exception_handler`, `cli_util.ml` `server_error`, `newcli.ml` `main`). Every variant exits 1.

use std::io::Write;

use crate::client::{ClientError, TransportError};
use crate::model::{errors, ApiError};

/// A failed `xe` command.
#[derive(Debug)]
pub enum CliError {
    /// `Unknown command: <cmd>` + usage hint.
    UnknownCommand(String),
    /// `Required parameter not found: <p>` + usage hint.
    ParamNotFound(String),
    /// `Syntax error: <msg>` + usage hint (xapi always passes an empty message).
    Syntax(String),
    /// `Error: <msg>` (xapi's `Cli_failure` and `Record_failure`).
    Failure(String),
    /// An API error, printed as its doc string and parameters. Parameters that were refs have
    /// already been turned into `uuid (name)` by the caller where possible.
    Api(ApiError),
    /// `Error code: <code>` / `Error parameters: <p>` (a code with no declaration).
    Code(String, Vec<String>),
    /// The server could not be reached or stopped answering.
    Transport(TransportError, TransportKind),
    /// `--multiple` failures: one `operation failed on <uuid>: <msg>` line each, on stdout.
    Multiple(Vec<String>),
}

/// Which transport a [`TransportError`] came from: the texts differ between xe's direct TCP and
/// its stunnel path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Unix socket or plain TCP.
    Plain,
    /// TLS.
    Tls,
}

impl CliError {
    /// `failwith`-style `Error: <msg>`.
    pub fn failure(msg: impl Into<String>) -> CliError {
        CliError::Failure(msg.into())
    }

    /// An API error from a client error.
    pub fn from_client(e: ClientError, kind: TransportKind) -> CliError {
        match e {
            ClientError::Api(a) => CliError::Api(a),
            ClientError::Transport(t) => CliError::Transport(t, kind),
        }
    }

    /// Write the error's text to stderr, exactly as xe does.
    pub fn write(&self, err: &mut dyn Write) {
        let usage = "For usage run: 'xe help'\n";
        let _ = match self {
            CliError::UnknownCommand(c) => write!(err, "Unknown command: {c}\n{usage}"),
            CliError::ParamNotFound(p) => write!(err, "Required parameter not found: {p}\n{usage}"),
            CliError::Syntax(m) => write!(err, "Syntax error: {m}\n{usage}"),
            CliError::Failure(m) => writeln!(err, "Error: {m}"),
            CliError::Api(e) => write_api_error(err, e),
            CliError::Code(code, params) => write!(
                err,
                "Error code: {code}\nError parameters: {}\n",
                params.join(", ")
            ),
            CliError::Transport(t, kind) => write_transport_error(err, t, *kind),
            CliError::Multiple(_) => Ok(()),
        };
    }
}

fn write_api_error(err: &mut dyn Write, e: &ApiError) -> std::io::Result<()> {
    if e.code == errors::code::SESSION_AUTHENTICATION_FAILED {
        let text = if e
            .params
            .first()
            .map(String::as_str)
            .unwrap_or("")
            .is_empty()
        {
            "Username/password must be specified"
        } else {
            "Authentication failed"
        };
        return write!(err, "{text}\nFor usage run: 'xe help'\n");
    }
    let Some(decl) = errors::lookup(&e.code) else {
        return write!(
            err,
            "Error code: {}\nError parameters: {}\n",
            e.code,
            e.params.join(", ")
        );
    };
    writeln!(err, "{}", decl.doc)?;
    let n = decl.params.len().max(e.params.len());
    for i in 0..n {
        match (decl.params.get(i), e.params.get(i)) {
            (Some(name), Some(v)) => writeln!(err, "{name}: {v}")?,
            (None, Some(v)) => writeln!(err, "<extra>: {v}")?,
            (Some(name), None) => writeln!(err, "{name}: <unknown>")?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// `strerror` text of an OS error, without Rust's ` (os error N)` suffix.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn write_transport_error(
    err: &mut dyn Write,
    t: &TransportError,
    kind: TransportKind,
) -> std::io::Result<()> {
    match (t, kind) {
        (TransportError::Lost(_), _) => writeln!(err, "Lost connection to the server."),
        (TransportError::Http(_), _) => writeln!(err, "Server internal error."),
        (_, TransportKind::Tls) => writeln!(
            err,
            "Unable to contact server. Please check server and port settings."
        ),
        (TransportError::Connect(e), TransportKind::Plain) => {
            writeln!(err, "Error: {} (calling connect )", strerror(e))
        }
        (TransportError::Resolve { host, port }, TransportKind::Plain) => writeln!(
            err,
            "No addrinfo found for host: {host}, port: {port}Host '{host}' not found."
        ),
        (TransportError::Tls(_), TransportKind::Plain) => writeln!(
            err,
            "Unable to contact server. Please check server and port settings."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: CliError) -> String {
        let mut v = Vec::new();
        e.write(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn api_errors_print_doc_then_named_params() {
        assert_eq!(
            text(CliError::Api(ApiError::uuid_invalid("VM", "deadbeef"))),
            "The uuid you supplied was invalid.\ntype: VM\nuuid: deadbeef\n"
        );
        assert_eq!(
            text(CliError::Api(ApiError::new(
                "HA_NOT_ENABLED",
                Vec::<String>::new()
            ))),
            "The operation could not be performed because HA is not enabled on the Pool\n"
        );
        assert_eq!(
            text(CliError::Api(ApiError::new("INVALID_VALUE", ["f"]))),
            "The value given is invalid\nfield: f\nvalue: <unknown>\n"
        );
        assert_eq!(
            text(CliError::Api(ApiError::new("HA_NOT_ENABLED", ["x"]))),
            "The operation could not be performed because HA is not enabled on the Pool\n<extra>: x\n"
        );
        assert_eq!(
            text(CliError::Api(ApiError::new("NO_SUCH_CODE", ["a", "b"]))),
            "Error code: NO_SUCH_CODE\nError parameters: a, b\n"
        );
    }

    #[test]
    fn authentication_failures_have_their_own_text() {
        assert_eq!(
            text(CliError::Api(ApiError::new(
                "SESSION_AUTHENTICATION_FAILED",
                ["root", "Authentication failure"]
            ))),
            "Authentication failed\nFor usage run: 'xe help'\n"
        );
        assert_eq!(
            text(CliError::Api(ApiError::new(
                "SESSION_AUTHENTICATION_FAILED",
                ["", "x"]
            ))),
            "Username/password must be specified\nFor usage run: 'xe help'\n"
        );
    }

    #[test]
    fn frontend_errors_carry_the_usage_hint() {
        assert_eq!(
            text(CliError::UnknownCommand("no-such-cmd".into())),
            "Unknown command: no-such-cmd\nFor usage run: 'xe help'\n"
        );
        assert_eq!(
            text(CliError::ParamNotFound("master-address".into())),
            "Required parameter not found: master-address\nFor usage run: 'xe help'\n"
        );
        assert_eq!(
            text(CliError::Syntax(String::new())),
            "Syntax error: \nFor usage run: 'xe help'\n"
        );
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            text(CliError::Transport(
                TransportError::Connect(refused),
                TransportKind::Plain
            )),
            "Error: Connection refused (calling connect )\n"
        );
    }
}
