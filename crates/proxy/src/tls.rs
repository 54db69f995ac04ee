//! TLS and mutual TLS for the REST API (off unless a certificate and key are given), and the
//! TLS client that delivers to `https` EndpointUris (off unless a CA file is given).
//!
//! rustls with the `ring` provider. The certificate, key and client CA files are watched by a
//! cheap stamp (modification time, size and inode of each, one `stat` per file) checked on every
//! new connection (accepted or made): when it changes, the files are re-read and a new
//! configuration is built; new connections get it, open ones keep theirs. A new set of files
//! that cannot be used (unparsable, a key that does not match the certificate, a missing file)
//! is logged once and the previous configuration is kept. The API's ALPN offers `h2` and
//! `http/1.1`; delivery speaks `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig, crypto};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The files of the API's TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The server private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, mutual TLS: every client must present a certificate issued by one of these
    /// CA certificates (PEM).
    pub client_ca: Option<PathBuf>,
}

type Stamp = Vec<crate::security::FileStamp>;

fn stamp_of(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| crate::security::file_stamp(p))
        .collect()
}

type Build<T> = Box<dyn Fn() -> Result<T, String> + Send + Sync>;

struct ReloadState<T> {
    /// Stamp of the files the current value was built from.
    loaded: Stamp,
    /// Stamp of the last files that could not be used (not retried, not logged again).
    failed: Option<Stamp>,
    value: T,
}

/// A value built from files, rebuilt when the files' stamp changes. A new set of files that
/// cannot be used is logged once and the previous value kept.
struct Reloading<T> {
    paths: Vec<PathBuf>,
    /// What is reloaded, for the log.
    what: &'static str,
    build: Build<T>,
    state: Mutex<ReloadState<T>>,
}

impl<T: Clone> Reloading<T> {
    fn open(paths: Vec<PathBuf>, what: &'static str, build: Build<T>) -> Result<Self, String> {
        let loaded = stamp_of(&paths);
        let value = build()?;
        Ok(Reloading {
            paths,
            what,
            build,
            state: Mutex::new(ReloadState {
                loaded,
                failed: None,
                value,
            }),
        })
    }

    /// The current value: the files are re-read first if their stamp changed.
    fn current(&self) -> T {
        let now = stamp_of(&self.paths);
        let mut st = self.state.lock().expect("tls state lock");
        if now != st.loaded && st.failed.as_ref() != Some(&now) {
            match (self.build)() {
                Ok(value) => {
                    st.value = value;
                    st.loaded = now;
                    st.failed = None;
                    tracing::info!(file = %self.paths[0].display(), "{} reloaded", self.what);
                }
                Err(e) => {
                    tracing::error!(error = %e, "{} files changed but cannot be used; keeping the previous ones", self.what);
                    st.failed = Some(now);
                }
            }
        }
        st.value.clone()
    }
}

/// The current TLS acceptor, rebuilt when the files change.
pub struct TlsReloader {
    files: TlsFiles,
    acceptor: Reloading<TlsAcceptor>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Reads the files; an error (naming the flag and the file) if they cannot be used.
    pub fn open(files: TlsFiles) -> Result<TlsReloader, String> {
        let mut paths = vec![files.cert.clone(), files.key.clone()];
        paths.extend(files.client_ca.clone());
        let f = files.clone();
        let acceptor = Reloading::open(
            paths,
            "TLS certificate",
            Box::new(move || Ok(TlsAcceptor::from(Arc::new(server_config(&f)?)))),
        )?;
        Ok(TlsReloader { files, acceptor })
    }

    /// The acceptor for a new connection: the files are re-read first if their stamp changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.current()
    }
}

/// The files of the TLS client that delivers to `https` EndpointUris.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTlsFiles {
    /// The CA certificate(s) (PEM) that consumer certificates must be issued by.
    pub ca: PathBuf,
    /// The producer's client certificate chain and key (PEM), for consumers that require
    /// mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// The current TLS connector for delivery, rebuilt when the files change.
pub struct DeliveryTls {
    files: DeliveryTlsFiles,
    connector: Reloading<TlsConnector>,
}

impl std::fmt::Debug for DeliveryTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl DeliveryTls {
    /// Reads the files; an error (naming the flag and the file) if they cannot be used.
    pub fn open(files: DeliveryTlsFiles) -> Result<DeliveryTls, String> {
        let mut paths = vec![files.ca.clone()];
        if let Some((c, k)) = &files.client_identity {
            paths.extend([c.clone(), k.clone()]);
        }
        let f = files.clone();
        let connector = Reloading::open(
            paths,
            "delivery TLS",
            Box::new(move || Ok(TlsConnector::from(Arc::new(client_config(&f)?)))),
        )?;
        Ok(DeliveryTls { files, connector })
    }

    /// The connector for a new connection: the files are re-read first if they changed.
    pub fn connector(&self) -> TlsConnector {
        self.connector.current()
    }
}

/// Builds the delivery client configuration from the files (HTTP/1.1 only, as delivery is).
pub fn client_config(files: &DeliveryTlsFiles) -> Result<ClientConfig, String> {
    let provider = Arc::new(crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in read_certs(&files.ca, "--delivery-ca-file")? {
        roots
            .add(c)
            .map_err(|e| format!("--delivery-ca-file {}: {e}", files.ca.display()))?;
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let mut config = match &files.client_identity {
        Some((cert, key)) => {
            let certs = read_certs(cert, "--delivery-client-cert")?;
            let k = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("--delivery-client-key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(certs, k).map_err(|e| {
                format!(
                    "--delivery-client-cert {} / --delivery-client-key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds the server configuration from the files.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let provider = Arc::new(crypto::ring::default_provider());
    let certs = read_certs(&files.cert, "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("--tls-key {}: {e}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca, "--tls-client-ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "--tls-cert {} / --tls-key {}: {e}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}
