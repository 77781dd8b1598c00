//! TLS towards PostgreSQL: a `tokio_postgres` connector over rustls (ring)
//! that verifies the server against the CA certificates of `tls_ca`.
//!
//! `sslmode=require` and `verify-ca` verify the chain (and the dates) but
//! not the name; `verify-full` verifies the name too, against
//! `tls_server_name` or else the conninfo's host. The connector offers the
//! ALPN protocol `postgresql` (for `sslnegotiation=direct`) and gives the
//! server certificate's `tls-server-end-point` hash (RFC 5929) for SCRAM
//! channel binding.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ring::digest;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsConnector;

/// How much of the server's certificate is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verify {
    /// The chain up to a CA of `tls_ca`, and the dates (`require`,
    /// `verify-ca`).
    Chain,
    /// The chain, the dates and the server's name (`verify-full`).
    Full,
}

/// Makes a [`Connect`] per host: the `tokio_postgres` side of TLS.
#[derive(Clone)]
pub(super) struct MakeRustls {
    config: Arc<ClientConfig>,
    /// The name to verify and send (SNI) instead of the conninfo's host.
    server_name: Option<String>,
}

impl MakeRustls {
    /// Loads the CA certificates of `ca` (PEM), and the client certificate
    /// and key when given, and builds the client configuration; the error
    /// says what is wrong with which file.
    pub(super) fn new(
        ca: &Path,
        verify: Verify,
        server_name: Option<String>,
        client: Option<(&Path, &Path)>,
    ) -> Result<MakeRustls, String> {
        let shown = ca.display();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("tls_ca {shown}: {e}; give a readable PEM file of CAs"))?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!(
                "tls_ca {shown} holds no usable CA certificate (-----BEGIN CERTIFICATE-----)"
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match verify {
            Verify::Full => builder.with_root_certificates(roots),
            Verify::Chain => {
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| format!("tls_ca {shown}: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
            }
        };
        let mut config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        format!("tls_cert {}: {e}; give a readable PEM file", cert.display())
                    })?;
                if chain.is_empty() {
                    return Err(format!(
                        "tls_cert {} holds no certificate (-----BEGIN CERTIFICATE-----)",
                        cert.display()
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!(
                        "tls_key {}: {e}; give a readable PEM private key (PKCS#8, PKCS#1 or SEC1)",
                        key.display()
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("tls_cert and tls_key: {e}; do they belong together?"))?
            }
        };
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        if let Some(name) = &server_name {
            check_name(name)?;
        }
        Ok(MakeRustls {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Checks that `name` can be verified: a DNS name or an IP address.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    ServerName::try_from(name)
        .map(|_| ())
        .map_err(|e| format!("{name:?} is not a DNS name or IP address ({e})"))
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<Connect> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{name:?} is not a DNS name or IP address to verify ({e}); set tls_server_name"
                ),
            )
        })?;
        Ok(Connect {
            connector: TlsConnector::from(Arc::clone(&self.config)),
            name,
        })
    }
}

/// The TLS handshake with one host.
pub(super) struct Connect {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, socket: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, socket).await?;
            Ok(Stream(stream))
        })
    }
}

/// A TLS connection to the server.
pub(super) struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> TlsStream for Stream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, connection) = self.0.get_ref();
        match connection.peer_certificates().and_then(<[_]>::first) {
            Some(cert) => ChannelBinding::tls_server_end_point(end_point_hash(cert)),
            None => ChannelBinding::none(),
        }
    }
}

impl<S> AsyncRead for Stream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for Stream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Verifies the chain and the dates as webpki does, but not the name:
/// `sslmode=require` and `verify-ca`.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, once the chain verified.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// The `tls-server-end-point` channel binding of `cert` (RFC 5929 section
/// 4.1): its hash with the hash of its signature algorithm, SHA-256 for
/// MD5, SHA-1 and anything else.
fn end_point_hash(cert: &[u8]) -> Vec<u8> {
    /// ecdsa-with-SHA384, sha384WithRSAEncryption.
    const SHA384: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
    ];
    /// ecdsa-with-SHA512, sha512WithRSAEncryption.
    const SHA512: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
    ];
    let algorithm = match signature_algorithm(cert) {
        Some(oid) if SHA384.contains(&oid) => &digest::SHA384,
        Some(oid) if SHA512.contains(&oid) => &digest::SHA512,
        _ => &digest::SHA256,
    };
    digest::digest(algorithm, cert).as_ref().to_vec()
}

/// The object identifier (its DER content) of a certificate's
/// `signatureAlgorithm`: `Certificate ::= SEQUENCE { tbsCertificate,
/// signatureAlgorithm SEQUENCE { algorithm OID, … }, signature }`.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der(cert, 0x30)?;
    let (_tbs, rest) = der(certificate, 0x30)?;
    let (algorithm, _) = der(rest, 0x30)?;
    let (oid, _) = der(algorithm, 0x06)?;
    Some(oid)
}

/// Splits a DER element with `tag` off the front of `input`: its content
/// and what follows. `None` for another tag or a length past the input.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    (len <= rest.len()).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_der_elements() {
        assert_eq!(
            der(&[0x06, 0x01, 0x2a, 0xff], 0x06),
            Some((&[0x2a][..], &[0xff][..]))
        );
        assert_eq!(
            der(&[0x30, 0x81, 0x01, 0x05], 0x30),
            Some((&[0x05][..], &[][..]))
        );
        assert_eq!(der(&[0x30, 0x02, 0x05], 0x30), None);
        assert_eq!(der(&[0x30, 0x80], 0x30), None);
        assert_eq!(der(&[0x30, 0x85, 1, 1, 1, 1, 1], 0x30), None);
        assert_eq!(der(&[0x31, 0x00], 0x30), None);
        assert_eq!(der(&[], 0x30), None);
    }

    #[test]
    fn hashes_with_the_signature_algorithm() {
        // SEQUENCE { SEQUENCE {}, SEQUENCE { OID ecdsa-with-SHA384 }, BIT STRING }
        let mut cert = vec![0x30, 0x11, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08];
        cert.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
        cert.extend_from_slice(&[0x03, 0x01, 0x00]);
        assert_eq!(
            signature_algorithm(&cert),
            Some(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03][..])
        );
        assert_eq!(end_point_hash(&cert).len(), 48);
        // ecdsa-with-SHA256, and anything unreadable: SHA-256.
        *cert.get_mut(15).unwrap() = 0x02;
        assert_eq!(end_point_hash(&cert).len(), 32);
        assert_eq!(end_point_hash(b"not a certificate").len(), 32);
    }
}
