//! CA files (`--cacert`): the trust anchors an HTTPS server's chain is verified against.
//!
//! The file is read and every certificate in it checked before anything is contacted, so a
//! missing, empty or corrupt file is reported as what it is rather than as an unreachable server.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// The certificates of the PEM file at `path`, each usable as a trust anchor; the error names
/// the file and what is wrong with it.
pub fn load(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no PEM certificate in the file"));
    }
    // PEM armour around bytes that are no certificate parses fine; adding it as a trust anchor
    // is what decodes it.
    let mut store = RootCertStore::empty();
    for c in &certs {
        store.add(c.clone()).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_exist_and_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        let name = f.to_str().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        std::fs::write(&f, format!("{}{}", a.cert.pem(), b.cert.pem())).unwrap();
        let certs = load(name).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[1].as_ref(), b.cert.der().as_ref());

        assert!(load("/nonexistent/ca.pem")
            .unwrap_err()
            .starts_with("/nonexistent/ca.pem: No such file"));
        std::fs::write(&f, "not a certificate\n").unwrap();
        assert_eq!(
            load(name).unwrap_err(),
            format!("{name}: no PEM certificate in the file")
        );
        std::fs::write(
            &f,
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(load(name).unwrap_err().starts_with(&format!("{name}: ")));
    }
}
