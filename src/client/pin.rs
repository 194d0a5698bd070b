//! Certificate pinning: trust exactly one server certificate, named by its SHA-256 fingerprint.
//!
//! A XenServer host's certificate is usually self-signed for a name the client may not use (an
//! IP address, a management VLAN name), so CA verification with a hostname check (`--cacert`)
//! does not fit it. A pin accepts the one certificate whose DER bytes hash to the pinned
//! fingerprint, whatever names it carries and whoever signed it; the handshake signature is still
//! verified against that certificate's key, so only its private key holder can answer.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The SHA-256 fingerprint of a certificate's DER encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Parse a pin: `sha256:<64 hex digits>` (colons between bytes allowed, as
    /// `openssl x509 -fingerprint -sha256` prints them), or the path of a PEM file whose first
    /// certificate is the one to pin.
    pub fn parse(spec: &str) -> Result<Fingerprint, String> {
        if let Some(hex) = spec.strip_prefix("sha256:") {
            let digits: String = hex.chars().filter(|c| *c != ':').collect();
            let bytes = (0..digits.len())
                .step_by(2)
                .map(|i| {
                    digits
                        .get(i..i + 2)
                        .and_then(|d| u8::from_str_radix(d, 16).ok())
                })
                .collect::<Option<Vec<u8>>>();
            return match bytes.map(<[u8; 32]>::try_from) {
                Some(Ok(b)) if digits.is_ascii() => Ok(Fingerprint(b)),
                _ => Err(format!(
                    "certificate pin '{spec}' is not sha256: followed by 64 hex digits"
                )),
            };
        }
        let pem = std::fs::read(spec).map_err(|e| format!("{spec}: {e}"))?;
        let cert = CertificateDer::pem_slice_iter(&pem)
            .next()
            .ok_or_else(|| format!("{spec}: no PEM certificate in the file"))?
            .map_err(|e| format!("{spec}: {e}"))?;
        Ok(Fingerprint::of_der(&cert))
    }
}

/// A rustls verifier that accepts only the pinned certificate.
#[derive(Debug)]
struct Pinned {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Names, issuer and validity dates do not matter: the pin names this exact certificate.
        if Fingerprint::of_der(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration trusting only the certificate with fingerprint `pin`.
pub fn client_config(pin: Fingerprint) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { pin, provider }))
            .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_from_hex_with_or_without_colons() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let a = Fingerprint::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(a.0[1], 0x11);
        assert_eq!(a.0[31], 0xff);
        let colons: Vec<String> = (0..32).map(|i| hex[2 * i..2 * i + 2].to_string()).collect();
        assert_eq!(
            Fingerprint::parse(&format!("sha256:{}", colons.join(":"))).unwrap(),
            a
        );
        for bad in ["sha256:00", "sha256:zz", &format!("sha256:{hex}00")] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pem_file_pins_its_first_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["h".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.pem");
        std::fs::write(&f, cert.cert.pem()).unwrap();
        assert_eq!(
            Fingerprint::parse(f.to_str().unwrap()).unwrap(),
            Fingerprint::of_der(cert.cert.der())
        );
        assert!(Fingerprint::parse("/nonexistent/pin.pem").is_err());
    }
}
