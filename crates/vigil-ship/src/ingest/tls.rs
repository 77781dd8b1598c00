//! The TLS side of the receiver: its server configuration, and the
//! identity a client certificate gives.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::{IngestError, IngestTls};

fn setup_error(what: impl Into<String>, why: impl ToString) -> IngestError {
    IngestError::Tls {
        what: what.into(),
        why: why.to_string(),
    }
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, IngestError> {
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

/// The server configuration: TLS 1.2 and 1.3 with the ring provider, the
/// certificate chain and key of `tls`, and, with a client CA, client
/// certificates required and verified against it.
pub(super) fn server_config(tls: &IngestTls) -> Result<Arc<ServerConfig>, IngestError> {
    let certs = load_certs(&tls.cert, "ingest tls.cert")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        setup_error(
            format!("ingest tls.key {}", tls.key.display()),
            format!("{e}; give a readable PEM private key"),
        )
    })?;
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_error("ingest tls", e))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca, "ingest tls.client_ca")? {
                roots.add(cert).map_err(|e| {
                    setup_error(
                        format!("ingest tls.client_ca {}", ca.display()),
                        format!("{e}; give CA certificates"),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| setup_error("ingest tls.client_ca", e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        setup_error(
            "ingest tls.cert and tls.key",
            format!("{e}; do they belong together?"),
        )
    })?;
    Ok(Arc::new(config))
}

/// The client's identity from its certificate, as `client.connected` gives
/// it: the subject's common name (`CN=…`), else `sha256:<fingerprint>`.
pub(super) fn identity(cert: &CertificateDer<'_>) -> String {
    if let Some(cn) = vigil_event::der::subject_common_name(cert.as_ref()) {
        return format!("CN={cn}");
    }
    // The ring provider's SHA-256, through the suite that names it.
    let sha256 = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .map(|suite| suite.common.hash_provider.hash(cert.as_ref()));
    match sha256 {
        Some(digest) => {
            let mut hex = String::with_capacity(71);
            hex.push_str("sha256:");
            for b in digest.as_ref() {
                hex.push_str(&format!("{b:02x}"));
            }
            hex
        }
        None => "sha256:unknown".to_owned(),
    }
}
