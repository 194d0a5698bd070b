//! HTTP: `POST /` and `/RPC2` speak XML-RPC, `POST /jsonrpc` speaks JSON-RPC, `OPTIONS`
//! answers CORS preflights. Malformed requests get HTTP 500 with an HTML body, as xapi does;
//! bodies over [`MAX_BODY`] get 413 without being read further.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::{dispatch, Server, Transport};
use crate::wire::{jsonrpc, xmlrpc, WireError};

/// The largest request body accepted. API requests are small; this bounds what one caller can
/// make the daemon buffer.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

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
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Endpoint { server, transport })
}

async fn xml(State(ep): State<Endpoint>, body: Bytes) -> Response {
    let call = match xmlrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return malformed("Xmlrpc.Parse_error", &e),
    };
    let outcome = dispatch::call(&ep.server, ep.transport, &call.method, call.params).await;
    respond("text/xml", xmlrpc::encode_response(&outcome))
}

async fn json(State(ep): State<Endpoint>, body: Bytes) -> Response {
    let call = match jsonrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return malformed("Jsonrpc.Malformed_method_request", &e),
    };
    let outcome = dispatch::call(&ep.server, ep.transport, &call.method, call.params).await;
    respond(
        "application/json",
        jsonrpc::encode_response(call.version, &call.id, &outcome),
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
