//! TLS on both sides of the proxy: the server configuration clients see,
//! the client configuration towards PostgreSQL, the event each handshake
//! failure becomes, and the client identity taken from a certificate.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    ServerConfig, SignatureScheme,
};
use vigil_event::{Kind, catalog};

use crate::config::{ClientCertMode, ClientTls, UpstreamTls, UpstreamTlsMode};

/// ALPN protocol name of PostgreSQL's direct TLS (PostgreSQL 17).
pub(crate) const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A TLS setting that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct TlsSetupError {
    what: String,
    why: String,
}

impl TlsSetupError {
    pub(crate) fn new(what: impl Into<String>, why: impl ToString) -> Self {
        setup_error(what, why)
    }
}

fn setup_error(what: impl Into<String>, why: impl ToString) -> TlsSetupError {
    TlsSetupError {
        what: what.into(),
        why: why.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn load_certs(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            setup_error(
                format!("{what} {}", path.display()),
                format!("{e}; give a readable PEM file of certificates"),
            )
        })?;
    if certs.is_empty() {
        return Err(setup_error(
            format!("{what} {}", path.display()),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn load_roots(path: &Path, what: &str) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, what)? {
        roots.add(cert).map_err(|e| {
            setup_error(
                format!("{what} {}", path.display()),
                format!("{e}; give CA certificates"),
            )
        })?;
    }
    Ok(roots)
}

/// The TLS server configuration clients see.
pub(crate) fn server_config(tls: &ClientTls) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let certs = load_certs(&tls.cert, "tls.cert")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        setup_error(
            format!("tls.key {}", tls.key.display()),
            format!("{e}; give a readable PEM private key"),
        )
    })?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_error("tls", e))?;
    let builder = match (tls.client_cert, &tls.client_ca) {
        (ClientCertMode::None, _) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let roots = Arc::new(load_roots(ca, "tls.client_ca")?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if mode == ClientCertMode::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| setup_error("tls.client_ca", e))?,
            )
        }
        (_, None) => {
            return Err(setup_error(
                "tls.client_cert",
                "client certificates need tls.client_ca, the CA that issues them",
            ));
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        setup_error(
            "tls.cert and tls.key",
            format!("{e}; do they belong together?"),
        )
    })?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Arc::new(config))
}

/// The TLS client configuration towards PostgreSQL; `None` when disabled.
pub(crate) fn upstream_config(
    tls: &UpstreamTls,
) -> Result<Option<Arc<ClientConfig>>, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_error("upstream.tls", e))?;
    let config = match tls.mode {
        UpstreamTlsMode::Disable => return Ok(None),
        UpstreamTlsMode::VerifyFull => {
            let Some(ca) = &tls.ca_file else {
                return Err(setup_error(
                    "upstream.ca_file",
                    "tls = \"verify-full\" needs the CA that issued PostgreSQL's certificate",
                ));
            };
            builder
                .with_root_certificates(load_roots(ca, "upstream.ca_file")?)
                .with_no_client_auth()
        }
        UpstreamTlsMode::Prefer | UpstreamTlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// Accepts any server certificate, but still checks the handshake
/// signatures: libpq's `sslmode=require`.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Which side a TLS handshake failed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// vigil as the server, towards a client.
    Client,
    /// vigil as the client, towards PostgreSQL.
    Database,
}

/// The event a failed handshake becomes, and its reason in words.
pub(crate) fn classify(err: &io::Error, side: Side) -> (Kind, String) {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        let kind = match side {
            Side::Client => catalog::TLS_CLIENT_HANDSHAKE_FAILED,
            Side::Database => catalog::TLS_DATABASE_HANDSHAKE_FAILED,
        };
        return (
            kind,
            format!("connection failed during the handshake: {err}"),
        );
    };
    use catalog::*;
    let (client, database) = match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                (TLS_CLIENT_CERT_EXPIRED, TLS_DATABASE_CERT_EXPIRED)
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                TLS_CLIENT_CERT_NOT_YET_VALID,
                TLS_DATABASE_CERT_NOT_YET_VALID,
            ),
            CertificateError::UnknownIssuer => {
                (TLS_CLIENT_CERT_UNKNOWN_CA, TLS_DATABASE_CERT_UNKNOWN_CA)
            }
            CertificateError::Revoked => (TLS_CLIENT_CERT_REVOKED, TLS_DATABASE_CERT_REVOKED),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (TLS_CLIENT_CERT_INVALID, TLS_DATABASE_NAME_MISMATCH)
            }
            _ => (TLS_CLIENT_CERT_INVALID, TLS_DATABASE_CERT_INVALID),
        },
        rustls::Error::NoCertificatesPresented => {
            (TLS_CLIENT_CERT_MISSING, TLS_DATABASE_CERT_INVALID)
        }
        rustls::Error::PeerIncompatible(_)
        | rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            (TLS_CLIENT_PROTOCOL_REJECTED, TLS_DATABASE_PROTOCOL_REJECTED)
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            (TLS_CLIENT_HANDSHAKE_FAILED, TLS_DATABASE_CERT_INVALID)
        }
        _ => (TLS_CLIENT_HANDSHAKE_FAILED, TLS_DATABASE_HANDSHAKE_FAILED),
    };
    let reason = match tls {
        rustls::Error::AlertReceived(alert) => match side {
            Side::Client => format!("the client ended the handshake with alert {alert:?}"),
            Side::Database => format!("PostgreSQL ended the handshake with alert {alert:?}"),
        },
        other => other.to_string(),
    };
    (
        match side {
            Side::Client => client,
            Side::Database => database,
        },
        reason,
    )
}

/// The TLS version's name as PostgreSQL prints it (`TLSv1.3`).
pub(crate) fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The client's identity from its certificate: the subject's common name
/// (`CN=…`), else `sha256:<fingerprint>`.
pub(crate) fn identity(cert: &CertificateDer<'_>) -> String {
    match vigil_event::der::subject_common_name(cert.as_ref()) {
        Some(cn) => format!("CN={cn}"),
        None => {
            let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
            let mut hex = String::with_capacity(71);
            hex.push_str("sha256:");
            for b in digest.as_ref() {
                hex.push_str(&format!("{b:02x}"));
            }
            hex
        }
    }
}
