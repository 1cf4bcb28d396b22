//! `powerbi-exporter healthcheck`: the container's liveness probe, and with `--ready` its
//! readiness probe (the image has no shell and no curl). It asks `/-/healthy` (or `/-/ready`)
//! on the exporter's own address, over TLS when the web config turns TLS on.
//!
//! Invariant: it answers "yes" exactly when the exporter's HTTP server handled the request:
//! 2xx, or 401 when basic auth is in force (the probe has no password, only the file's bcrypt
//! hashes), or a TLS alert refusing the probe's missing client certificate (the server did the
//! handshake). So readiness is only known without basic auth or client certificates; behind
//! them a running server counts as ready. It never verifies the server's certificate: it talks
//! to its own process on loopback, and liveness is not trust.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, DigitallySignedStruct, SignatureScheme};

const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the exporter is not considered alive.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} did not answer: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} answered {head:?}")]
    Status { addr: SocketAddr, head: String },
}

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/-/healthy`: the process serves.
    Alive,
    /// `/-/ready`: the first source document has been applied (503 before).
    Ready,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Probe::Alive => "/-/healthy",
            Probe::Ready => "/-/ready",
        }
    }
}

/// Probes `addr`, with TLS when `tls` is set.
pub fn check(addr: SocketAddr, tls: bool, probe: Probe) -> Result<(), HealthError> {
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|source| HealthError::Connect { addr, source })?;
    let io = |source| HealthError::Io { addr, source };
    tcp.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let head = if tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| io(std::io::Error::other(e)))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))
            .map_err(|e| io(std::io::Error::other(e)))?;
        match ask(addr, probe, rustls::StreamOwned::new(conn, tcp)) {
            Err(e) if refused_client_certificate(&e) => return Ok(()),
            other => other.map_err(io)?,
        }
    } else {
        ask(addr, probe, tcp).map_err(io)?
    };
    let alive = head.starts_with(b"HTTP/1.") && (head[9] == b'2' || head[9..12] == *b"401");
    if alive {
        Ok(())
    } else {
        Err(HealthError::Status {
            addr,
            head: String::from_utf8_lossy(&head).into_owned(),
        })
    }
}

/// Sends the request and reads the status line's first 12 bytes.
fn ask(addr: SocketAddr, probe: Probe, mut stream: impl Read + Write) -> std::io::Result<[u8; 12]> {
    let path = probe.path();
    stream.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    stream.flush()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(head)
}

/// Whether the server ended the handshake because the probe has no client certificate.
fn refused_client_certificate(e: &std::io::Error) -> bool {
    let alert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    matches!(
        alert,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::HandshakeFailure
        ))
    )
}

/// Accepts any server certificate (signatures are still checked, so the handshake is real).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

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
