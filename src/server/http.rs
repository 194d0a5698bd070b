//! HTTP: `POST /` and `/RPC2` speak XML-RPC, `POST /jsonrpc` speaks JSON-RPC, `OPTIONS`
//! answers CORS preflights. Malformed requests get HTTP 500 with an HTML body, as xapi does;
//! bodies over [`MAX_BODY`] get 413 without being read further.
//!
//! `POST /pool/internal/database` is the one non-RPC route: the master sends a member the whole
//! pool database there. A database outgrows any sensible RPC body limit, so this route has its
//! own, much larger one, and reads nothing until the pool secret in the headers checks out.
//!
//! Every API call runs in a task of its own, so a client that hangs up does not cancel an
//! operation half-way; a member's forwarded call waits for the master however long it takes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::membership::PoolRole;
use super::peer::{DATABASE_PATH, EPOCH_HEADER, FORWARDED_HEADER, SECRET_HEADER};
use super::{dispatch, Server, Transport};
use crate::model::{ApiError, Value};
use crate::wire::{jsonrpc, xmlrpc, WireError};

/// The largest request body accepted. API requests are small; this bounds what one caller can
/// make the daemon buffer.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The largest pool database a member accepts from its master.
pub const MAX_DATABASE: usize = 1024 * 1024 * 1024;

#[derive(Clone)]
struct Endpoint {
    server: Arc<Server>,
    transport: Transport,
}

/// The router for one listener. `transport` says whether callers are trusted (Unix socket).
pub fn router(server: Arc<Server>, transport: Transport) -> Router {
    Router::new()
        .route("/", post(xml).options(preflight))
        .route("/RPC2", post(xml).options(preflight))
        .route("/jsonrpc", post(json).options(preflight))
        .route(DATABASE_PATH, post(database))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Endpoint { server, transport })
}

async fn xml(State(ep): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let call = match xmlrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return malformed("Xmlrpc.Parse_error", &e),
    };
    let transport = transport_of(&ep, &headers);
    let on_error = |e| respond("text/xml", xmlrpc::encode_response(&Err(e)));
    if let Some(r) = forward_if_member(&ep, transport, &call.method, "/", body, on_error).await {
        return r;
    }
    let outcome = run_to_completion(&ep, transport, call.method, call.params).await;
    respond("text/xml", xmlrpc::encode_response(&outcome))
}

async fn json(State(ep): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let call = match jsonrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return malformed("Jsonrpc.Malformed_method_request", &e),
    };
    let transport = transport_of(&ep, &headers);
    let version = call.version;
    let on_error = {
        let id = call.id.clone();
        move |e| {
            respond(
                "application/json",
                jsonrpc::encode_response(version, &id, &Err(e)),
            )
        }
    };
    if let Some(r) =
        forward_if_member(&ep, transport, &call.method, "/jsonrpc", body, on_error).await
    {
        return r;
    }
    let outcome = run_to_completion(&ep, transport, call.method, call.params).await;
    respond(
        "application/json",
        jsonrpc::encode_response(version, &call.id, &outcome),
    )
}

/// Run one API call in a task of its own and wait for it. The HTTP server drops a handler
/// whose client went away; the operation must not stop half-way because of that (a VM
/// stopped but still recorded running), so it finishes and only its answer is lost.
async fn run_to_completion(
    ep: &Endpoint,
    transport: Transport,
    method: String,
    params: Vec<Value>,
) -> Result<Value, ApiError> {
    let server = ep.server.clone();
    let task =
        tokio::spawn(async move { dispatch::call(&server, transport, &method, params).await });
    task.await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("the call failed: {e}"))))
}

/// The master sending this member the whole database. The answer is a JSON-RPC response, so
/// the master reads success and API errors the same way as for its other calls.
async fn database(State(ep): State<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let outcome = match ep.server.membership.check_secret(&header(SECRET_HEADER)) {
        Err(e) => Err(e),
        Ok(()) => match header(EPOCH_HEADER).parse::<i64>() {
            Err(_) => Err(ApiError::invalid_value(EPOCH_HEADER, &header(EPOCH_HEADER))),
            Ok(epoch) => match axum::body::to_bytes(body, MAX_DATABASE).await {
                Err(e) => Err(ApiError::invalid_value("database", &e.to_string())),
                Ok(dump) => match std::str::from_utf8(&dump) {
                    Err(e) => Err(ApiError::invalid_value("database", &e.to_string())),
                    Ok(dump) => {
                        let secret = header(SECRET_HEADER);
                        super::membership::restore(&ep.server, &secret, epoch, dump)
                    }
                },
            },
        },
    };
    respond(
        "application/json",
        jsonrpc::encode_response(jsonrpc::Version::V2, &serde_json::json!(1), &outcome),
    )
}

/// A call a member forwarded from its local socket is trusted as that socket's caller, but only
/// when it carries the pool secret.
fn transport_of(ep: &Endpoint, headers: &HeaderMap) -> Transport {
    let forwarded = headers.get(FORWARDED_HEADER).and_then(|v| v.to_str().ok());
    match forwarded {
        Some(secret) if ep.server.membership.check_secret(secret).is_ok() => Transport::Unix,
        _ => ep.transport,
    }
}

/// On a pool member, a call on the local socket that is not answered locally goes to the
/// master, byte for byte, and the master's answer comes back the same way.
async fn forward_if_member(
    ep: &Endpoint,
    transport: Transport,
    method: &str,
    path: &str,
    body: Bytes,
    on_error: impl FnOnce(ApiError) -> Response,
) -> Option<Response> {
    let PoolRole::Member { master } = ep.server.membership.role() else {
        return None;
    };
    if transport != Transport::Unix || dispatch::runs_on_members(method) {
        return None;
    }
    let secret = ep.server.membership.secret();
    Some(
        match ep
            .server
            .membership
            .peers
            .forward(&master, path, body, &secret)
            .await
        {
            Ok((status, content_type, bytes)) => {
                let mut r = (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    bytes,
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r
            }
            Err(e) => {
                tracing::warn!(%master, error = %e, "cannot forward a local call to the master");
                on_error(ApiError::new("CANNOT_CONTACT_HOST", [master]))
            }
        },
    )
}

async fn preflight() -> Response {
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    r
}

fn respond(content_type: &'static str, body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// xapi's answer to a request it cannot parse: HTTP 500 and an HTML page naming the error.
fn malformed(kind: &str, e: &WireError) -> Response {
    tracing::debug!(kind, error = %e, "malformed request");
    let detail = html_escape(&format!("{kind}(\"{e}\")"));
    let body = format!(
        "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while \
         and try again. If the problem persists, please contact your support representative.<h1> Additional \
         information </h1>{detail}</body></html>"
    );
    let mut r = (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
