//! TLS settings with the Collector's `configtls` names, turned into rustls
//! configs shared by every client (HTTP exporters and gRPC channels).

use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use std::sync::Arc;

/// Client-side `tls:` block.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientSettings {
    /// gRPC: plaintext instead of TLS (the Collector's meaning).
    pub insecure: bool,
    /// Accept any server certificate. For tests only.
    pub insecure_skip_verify: bool,
    pub ca_file: Option<String>,
    pub ca_pem: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name_override: Option<String>,
    /// "1.2" or "1.3".
    pub min_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: cannot read {what} `{path}`: {reason}")]
    Read {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("tls: {0}")]
    Invalid(String),
}

fn read_file(what: &'static str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        what,
        path: path.into(),
        reason: e.to_string(),
    })
}

fn parse_certs(
    what: &'static str,
    path: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut &pem[..]).collect();
    let certs = certs.map_err(|e| TlsError::Read {
        what,
        path: path.into(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Read {
            what,
            path: path.into(),
            reason: "no PEM certificate found".into(),
        });
    }
    Ok(certs)
}

impl TlsClientSettings {
    /// A rustls client config; `alpn` lists the protocols to offer.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version.as_deref() {
            None | Some("1.2") | Some("") => rustls::DEFAULT_VERSIONS,
            Some("1.3") => &[&rustls::version::TLS13],
            Some(other) => {
                return Err(TlsError::Invalid(format!(
                    "min_version `{other}` is not supported (use 1.2 or 1.3)"
                )))
            }
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            if let Some(path) = &self.ca_file {
                for c in parse_certs("ca_file", path, &read_file("ca_file", path)?)? {
                    roots.add(c).map_err(|e| TlsError::Invalid(e.to_string()))?;
                }
            }
            if let Some(pem) = &self.ca_pem {
                for c in parse_certs("ca_pem", "(inline)", pem.as_bytes())? {
                    roots.add(c).map_err(|e| TlsError::Invalid(e.to_string()))?;
                }
            }
            if self.ca_file.is_none() && self.ca_pem.is_none() {
                let native = rustls_native_certs::load_native_certs();
                for c in native.certs {
                    // Skip certificates the store cannot parse rather than fail.
                    let _ = roots.add(c);
                }
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = parse_certs("cert_file", cert, &read_file("cert_file", cert)?)?;
                let key_pem = read_file("key_file", key)?;
                let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
                    .map_err(|e| TlsError::Read {
                        what: "key_file",
                        path: key.clone(),
                        reason: e.to_string(),
                    })?
                    .ok_or_else(|| TlsError::Read {
                        what: "key_file",
                        path: key.clone(),
                        reason: "no PEM private key found".into(),
                    })?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| TlsError::Invalid(e.to_string()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::Invalid(
                    "cert_file and key_file must be set together".into(),
                ))
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

impl TlsClientSettings {
    /// A hyper connector that speaks TLS (per these settings, including
    /// `server_name_override`) to `https://` URIs and plain TCP to `http://`
    /// ones. `alpn` lists the protocols to offer (`h2` for gRPC; `h2` and
    /// `http/1.1` for HTTP clients); the client decides which HTTP version it
    /// speaks, so the connector enables both.
    pub fn https_connector(
        &self,
        alpn: &[&[u8]],
        http: HttpConnector,
    ) -> Result<HttpsConnector<HttpConnector>, TlsError> {
        // hyper-rustls panics when the config already lists ALPN protocols:
        // it derives them from the HTTP versions enabled below.
        let config = self.client_config(&[])?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        let builder = match self.server_name_override.as_deref() {
            Some(name) if !name.is_empty() => {
                let name = ServerName::try_from(name.to_string()).map_err(|_| {
                    TlsError::Invalid(
                        "server_name_override is not a valid DNS name or IP address".into(),
                    )
                })?;
                builder.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            _ => builder,
        };
        let h1 = alpn.contains(&&b"http/1.1"[..]);
        let h2 = alpn.contains(&&b"h2"[..]);
        Ok(match (h1, h2) {
            (true, true) => builder.enable_http1().enable_http2().wrap_connector(http),
            (false, true) => builder.enable_http2().wrap_connector(http),
            _ => builder.enable_http1().wrap_connector(http),
        })
    }
}

/// `insecure_skip_verify`: trusts any certificate but still checks that the
/// handshake is signed by it.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds_with_system_roots() {
        let cfg = TlsClientSettings::default()
            .client_config(&[b"h2"])
            .unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn connectors_build_for_grpc_and_http_with_a_server_name_override() {
        let s = TlsClientSettings {
            server_name_override: Some("example.com".into()),
            ..Default::default()
        };
        s.https_connector(&[b"h2"], HttpConnector::new()).unwrap();
        s.https_connector(&[b"h2", b"http/1.1"], HttpConnector::new())
            .unwrap();
        let bad = TlsClientSettings {
            server_name_override: Some("not a name".into()),
            ..Default::default()
        };
        assert!(bad.https_connector(&[b"h2"], HttpConnector::new()).is_err());
    }

    #[test]
    fn missing_files_name_the_option_and_path() {
        let s = TlsClientSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = s.client_config(&[]).unwrap_err().to_string();
        assert!(
            e.contains("ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let half = TlsClientSettings {
            cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(half.client_config(&[]).is_err());
    }
}
