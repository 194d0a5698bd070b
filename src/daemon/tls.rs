//! The server certificate: self-signed on first start, kept in the state directory.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use axum_server::tls_rustls::RustlsConfig;

use super::{io, DaemonError};

const CERT_FILE: &str = "xapi-ssl.pem";
const KEY_FILE: &str = "xapi-ssl.key";

/// Load the certificate and key, generating them first if this is the first start.
pub async fn load_or_create(state_dir: &Path) -> Result<RustlsConfig, DaemonError> {
    let cert_path = state_dir.join(CERT_FILE);
    let key_path = state_dir.join(KEY_FILE);
    if !cert_path.exists() || !key_path.exists() {
        let host = crate::host::hostname();
        let names = vec![host, "localhost".to_string(), "127.0.0.1".to_string()];
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| DaemonError::Tls(e.to_string()))?;
        write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())?;
        write_private(&cert_path, certified.cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), "generated a self-signed server certificate");
    }
    RustlsConfig::from_pem_file(&cert_path, &key_path)
        .await
        .map_err(|e| DaemonError::Tls(format!("loading {}: {e}", cert_path.display())))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DaemonError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .map_err(io(format!("writing {}", path.display())))?;
    f.sync_all()
        .map_err(io(format!("syncing {}", path.display())))
}
