//! The server certificate: self-signed on first start, kept in the state directory.
//!
//! The key and certificate are each written to a temporary file and renamed into place, key
//! first, so an interrupted first start leaves either nothing, a key alone, or the pair. Files
//! left empty by older versions (which wrote in place) are treated as absent. A file with
//! content is never replaced: it may be the operator's own, so if it cannot be used the daemon
//! refuses to start and names it.

use std::path::Path;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{io, DaemonError};

const CERT_FILE: &str = "xapi-ssl.pem";
const KEY_FILE: &str = "xapi-ssl.key";

/// Load the certificate and key, generating them first if this is the first start.
pub async fn load_or_create(state_dir: &Path) -> Result<RustlsConfig, DaemonError> {
    let cert_path = state_dir.join(CERT_FILE);
    let key_path = state_dir.join(KEY_FILE);
    let (cert, key) = (read_if_any(&cert_path)?, read_if_any(&key_path)?);
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            let certified = rcgen::generate_simple_self_signed(subject_names())
                .map_err(|e| DaemonError::Tls(e.to_string()))?;
            let key = certified.signing_key.serialize_pem().into_bytes();
            let cert = certified.cert.pem().into_bytes();
            write_private(&key_path, &key)?;
            write_private(&cert_path, &cert)?;
            tracing::info!(path = %cert_path.display(), "generated a self-signed server certificate");
            (cert, key)
        }
        // A first start stopped between the two renames: certify the key it left (which
        // replaces nothing).
        (None, Some(key)) => {
            let cert = self_sign(&key_path, &key)?;
            write_private(&cert_path, &cert)?;
            tracing::warn!(path = %cert_path.display(), key = %key_path.display(), "the key had no certificate; generated a self-signed one for it");
            (cert, key)
        }
        (Some(_), None) => {
            return Err(DaemonError::Tls(format!(
                "{} has a certificate but its key {} is missing or empty; refusing to start \
                 (restore the key, or remove both files to generate a new pair)",
                cert_path.display(),
                key_path.display()
            )))
        }
    };
    check_contents(&cert_path, &cert, &key_path, &key)?;
    RustlsConfig::from_pem(cert, key).await.map_err(|e| {
        DaemonError::Tls(format!(
            "{} and {} do not make a usable pair: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })
}

/// The names the self-signed certificate is issued for.
fn subject_names() -> Vec<String> {
    vec![
        crate::host::hostname(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ]
}

/// The file's bytes, or `None` if it is missing or empty (an empty one can only be a write
/// that never finished: warn, as it is about to be replaced).
fn read_if_any(path: &Path) -> Result<Option<Vec<u8>>, DaemonError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => {
            tracing::warn!(path = %path.display(), "empty (left by an interrupted first start?); treated as missing");
            Ok(None)
        }
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// A self-signed certificate (PEM) for the key in `key_pem`.
fn self_sign(key_path: &Path, key_pem: &[u8]) -> Result<Vec<u8>, DaemonError> {
    let unusable = |e: &dyn std::fmt::Display| {
        DaemonError::Tls(format!(
            "{} holds no usable private key ({e}); refusing to start",
            key_path.display()
        ))
    };
    let text = std::str::from_utf8(key_pem).map_err(|e| unusable(&e))?;
    let key = rcgen::KeyPair::from_pem(text).map_err(|e| unusable(&e))?;
    let cert = rcgen::CertificateParams::new(subject_names())
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| DaemonError::Tls(e.to_string()))?;
    Ok(cert.pem().into_bytes())
}

/// Refuse, naming the file, a certificate file without a certificate or a key file without a
/// key.
fn check_contents(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<(), DaemonError> {
    let certs = CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>();
    if !matches!(certs, Ok(c) if !c.is_empty()) {
        return Err(DaemonError::Tls(format!(
            "{} holds no PEM certificate; refusing to start (fix it, or remove it and {} to \
             generate a new pair)",
            cert_path.display(),
            key_path.display()
        )));
    }
    if PrivateKeyDer::from_pem_slice(key).is_err() {
        return Err(DaemonError::Tls(format!(
            "{} holds no PEM private key; refusing to start (fix it, or remove it and {} to \
             generate a new pair)",
            key_path.display(),
            cert_path.display()
        )));
    }
    Ok(())
}

/// Write `bytes` to `path` (mode 0600) whole or not at all.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DaemonError> {
    crate::host::files::write_whole(path, bytes).map_err(io(format!("writing {}", path.display())))
}
