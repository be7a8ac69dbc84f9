//! `--tls`: HTTPS, so that a phone on the LAN reaches the mock in a secure context
//! (WebCrypto, which PKCE and id_token checks need, exists only there).
//!
//! The certificate comes from `--tls-cert`/`--tls-key` (PEM), or is generated at
//! start (rcgen): a one-off local CA, and a certificate it signs for `localhost`, the
//! loopback addresses, the bound address and the public URL's host. Phones trust
//! user-installed CA certificates, not bare self-signed server certificates, hence
//! the two. The banner prints the CA's SHA-256 fingerprint, and
//! `{auth}/certificate.pem` serves it, so a phone can install and trust it.
//!
//! TLS handshakes run in tasks of their own, each with a time limit, so one slow
//! client cannot hold up the others; the finished connections are handed to axum
//! through [`TlsListener`], so serving and graceful shutdown are axum's as for
//! plain HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longer than any honest handshake on a LAN.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const BACKLOG: usize = 64;

/// The server's certificate and what it takes to serve with it.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    /// The certificate to trust (the generated CA, or the given chain's last) as
    /// PEM, for `{auth}/certificate.pem`.
    pub(crate) certificate_pem: String,
    /// Its SHA-256, `AB:CD:…`, as browsers and phones show it.
    pub(crate) fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("cannot make a TLS certificate: {0}")]
    Generate(String),
    #[error("TLS certificate and key do not work together: {0}")]
    Config(#[from] rustls::Error),
}

impl Tls {
    /// A certificate chain and its private key from PEM files.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |what, path: &Path, reason: String| TlsError::Read {
            what,
            path: path.display().to_string(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| read("certificate", cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(read("certificate", cert, "no CERTIFICATE in it".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read("key", key, e.to_string()))?;
        Self::new(chain, key)
    }

    /// A local CA, and a certificate it signs for `names` (host names or IP addresses).
    pub(crate) fn generate(names: Vec<String>) -> Result<Self, TlsError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "ccri-mock local CA (this run only)");
        let ca_certificate = ca.self_signed(&ca_key).map_err(fail)?;
        let server_key = KeyPair::generate().map_err(fail)?;
        let mut server = CertificateParams::new(names).map_err(fail)?;
        server.distinguished_name.push(DnType::CommonName, "ccri-mock");
        let server_certificate = server
            .signed_by(&server_key, &Issuer::new(ca, ca_key))
            .map_err(fail)?;
        let key = PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
        Self::new(
            vec![server_certificate.der().clone(), ca_certificate.der().clone()],
            key,
        )
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self, TlsError> {
        let trusted = chain.last().expect("a chain has a certificate").clone();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let fingerprint = Sha256::digest(&trusted)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &trusted);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate_pem: format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            ),
            fingerprint,
        })
    }
}

/// Finished TLS connections, for `axum::serve`.
pub(crate) struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    pub(crate) fn new(tcp: TcpListener, tls: &Tls) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (sender, connections) = mpsc::channel(BACKLOG);
        let acceptor = tls.acceptor.clone();
        tokio::spawn(async move {
            loop {
                // Stop (and close the port) as soon as the server is gone, not at
                // the next connection.
                let accepted = tokio::select! {
                    () = sender.closed() => return,
                    accepted = tcp.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, handed) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            connections,
            local_addr,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop never ends while this listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
