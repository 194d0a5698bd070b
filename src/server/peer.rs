//! Calls from this host to another host of the pool: JSON-RPC for intra-pool messages, and raw
//! forwarding of a member's local-socket requests to the master.
//!
//! Pool hosts use self-signed certificates, so TLS is not verified here; intra-pool messages
//! are authenticated by the pool secret instead.

use std::time::Duration;

use axum::body::Bytes;

use crate::model::{ApiError, Value};
use crate::wire::jsonrpc;

/// Header a member sets when it forwards a local-socket request: the pool secret, which makes
/// the master trust the call as the member's local root.
pub const FORWARDED_HEADER: &str = "x-xenha-pool-forwarded";

/// Where a member receives the whole pool database from its master.
pub const DATABASE_PATH: &str = "/pool/internal/database";
/// Header carrying the pool secret on [`DATABASE_PATH`].
pub const SECRET_HEADER: &str = "x-xenha-pool-secret";
/// Header carrying the master's epoch on [`DATABASE_PATH`].
pub const EPOCH_HEADER: &str = "x-xenha-pool-epoch";

/// The slowest transfer a full database copy is allowed: a copy may take as long as sending
/// it at this rate (plus the peer timeout) before the member counts as unreachable. A pool
/// link slower than 1 MiB/s is not one a pool can run on; a fixed timeout would instead make a
/// database beyond a few megabytes impossible to copy at all, and the member could never
/// come back.
pub const SLOWEST_COPY_BYTES_PER_SEC: u64 = 1 << 20;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The peer answered with an API error.
    #[error("{0}")]
    Api(ApiError),
}

/// How to reach the other hosts of the pool.
#[derive(Clone)]
pub struct Peers {
    /// For the pool's own housekeeping (pings, replication, recovery): a peer that does not
    /// answer within the timeout counts as unreachable.
    client: reqwest::Client,
    /// For operations that take as long as they take (a forwarded API call, a domain stop
    /// with its grace period): only connecting is bounded. The caller decides how long to
    /// wait, as it would talking to the master directly.
    patient: reqwest::Client,
    /// For fetching a whole database copy, whose size is not known before it arrives: as long
    /// as the peer keeps sending (each read bounded by the timeout), the copy may take as long
    /// as it takes.
    copying: reqwest::Client,
    scheme: String,
    port: u16,
    timeout: Duration,
}

impl Peers {
    /// Peers reached at `scheme://<host address>:port`, with housekeeping calls bounded by
    /// `timeout` and every connection attempt by the same.
    pub fn new(scheme: &str, port: u16, timeout: Duration) -> Peers {
        // Every client bounds connecting by the peer timeout; `total` bounds a whole call,
        // `read` each read of its answer.
        let build = |total: Option<Duration>, read: Option<Duration>| {
            let mut b = reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .connect_timeout(timeout);
            if let Some(t) = total {
                b = b.timeout(t);
            }
            if let Some(r) = read {
                b = b.read_timeout(r);
            }
            b.build().expect("building the intra-pool HTTP client")
        };
        Peers {
            client: build(Some(timeout), None),
            patient: build(None, None),
            copying: build(None, Some(timeout)),
            scheme: scheme.to_string(),
            port,
            timeout,
        }
    }

    fn url(&self, address: &str, path: &str) -> String {
        format!("{}://{}:{}{}", self.scheme, address, self.port, path)
    }

    /// Call `method` on the host at `address` over JSON-RPC, bounded by the peer timeout.
    pub async fn call(
        &self,
        address: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, PeerError> {
        self.call_with(&self.client, address, method, params).await
    }

    /// Call `method` on the host at `address`, bounded by `limit` (connecting included) instead
    /// of the peer timeout: for a question any live host answers at once, such as a liveness
    /// ping, where waiting longer only delays noticing that the host is gone.
    pub async fn call_within(
        &self,
        limit: Duration,
        address: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, PeerError> {
        let request = self.request(&self.client, address, method, params);
        Self::answer(address, request.timeout(limit)).await
    }

    /// Call `method` on the host at `address` and wait for its answer however long the
    /// operation takes (only connecting is bounded).
    pub async fn call_patiently(
        &self,
        address: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, PeerError> {
        self.call_with(&self.patient, address, method, params).await
    }

    /// Call `method` on the host at `address` for an answer that holds a whole database copy:
    /// bounded by progress (each read within the peer timeout), not by its total duration.
    pub async fn call_for_copy(
        &self,
        address: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, PeerError> {
        self.call_with(&self.copying, address, method, params).await
    }

    async fn call_with(
        &self,
        client: &reqwest::Client,
        address: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, PeerError> {
        Self::answer(address, self.request(client, address, method, params)).await
    }

    /// The JSON-RPC request calling `method` on the host at `address` through `client`.
    fn request(
        &self,
        client: &reqwest::Client,
        address: &str,
        method: &str,
        params: Vec<Value>,
    ) -> reqwest::RequestBuilder {
        let body = jsonrpc::encode_call(jsonrpc::Version::V2, method, &params, 1);
        client
            .post(self.url(address, "/jsonrpc"))
            .header("content-type", "application/json")
            .body(body)
    }

    /// Send `request` and read its JSON-RPC answer.
    async fn answer(address: &str, request: reqwest::RequestBuilder) -> Result<Value, PeerError> {
        let unreachable =
            |e: &dyn std::fmt::Display| PeerError::Unreachable(format!("{address}: {e}"));
        let response = request.send().await.map_err(|e| unreachable(&e))?;
        let bytes = response.bytes().await.map_err(|e| unreachable(&e))?;
        match jsonrpc::parse_response(&bytes) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(PeerError::Api(e)),
            Err(e) => Err(unreachable(&e)),
        }
    }

    /// How long sending a database copy of `bytes` may take: the peer timeout (connecting, the
    /// member's commit) plus the transfer at [`SLOWEST_COPY_BYTES_PER_SEC`].
    pub fn copy_timeout(&self, bytes: usize) -> Duration {
        self.timeout + Duration::from_secs_f64(bytes as f64 / SLOWEST_COPY_BYTES_PER_SEC as f64)
    }

    /// Send the host at `address` the whole pool database (a serialised dump), bounded by
    /// [`Peers::copy_timeout`] for its size rather than the housekeeping timeout.
    pub async fn send_database(
        &self,
        address: &str,
        secret: &str,
        epoch: i64,
        dump: String,
    ) -> Result<(), PeerError> {
        let request = self
            .patient
            .post(self.url(address, DATABASE_PATH))
            .timeout(self.copy_timeout(dump.len()))
            .header(SECRET_HEADER, secret)
            .header(EPOCH_HEADER, epoch.to_string())
            .body(dump);
        Self::answer(address, request).await.map(|_| ())
    }

    /// Forward a raw request to the master; returns its status, content type and body. The
    /// answer is awaited however long the call takes, as the caller would await the master.
    pub async fn forward(
        &self,
        address: &str,
        path: &str,
        body: Bytes,
        secret: &str,
    ) -> Result<(u16, String, Bytes), PeerError> {
        let response = self
            .patient
            .post(self.url(address, path))
            .header(FORWARDED_HEADER, secret)
            .body(body)
            .send()
            .await
            .map_err(|e| PeerError::Unreachable(format!("{address}: {e}")))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/plain")
            .to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PeerError::Unreachable(format!("{address}: {e}")))?;
        Ok((status, content_type, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_copy_may_take_longer_the_larger_it_is() {
        let peers = Peers::new("http", 1, Duration::from_secs(3));
        assert_eq!(peers.copy_timeout(0), Duration::from_secs(3));
        // 64 MiB at the slowest allowed rate: 64 s on top of the housekeeping timeout.
        assert_eq!(
            peers.copy_timeout(64 << 20),
            Duration::from_secs(3 + 64 * (1 << 20) / SLOWEST_COPY_BYTES_PER_SEC)
        );
        assert!(peers.copy_timeout(1 << 30) > peers.copy_timeout(64 << 20));
    }
}
