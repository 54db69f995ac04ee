//! TLS and mutual TLS for the REST API (off unless a certificate and key are given).
//!
//! rustls with the `ring` provider. The certificate, key and client CA files are watched by a
//! cheap stamp (modification time, size and inode of each, one `stat` per file) checked on every
//! accepted connection: when it changes, the files are re-read and a new configuration is built;
//! new connections get it, open ones keep theirs. A new set of files that cannot be used
//! (unparsable, a key that does not match the certificate, a missing file) is logged once and
//! the previous configuration is kept. ALPN offers `h2` and `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

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

fn stamp_of(files: &TlsFiles) -> Stamp {
    let mut paths: Vec<&Path> = vec![&files.cert, &files.key];
    if let Some(ca) = &files.client_ca {
        paths.push(ca);
    }
    paths.into_iter().map(crate::security::file_stamp).collect()
}

struct State {
    /// Stamp of the files the current configuration was built from.
    loaded: Stamp,
    /// Stamp of the last files that could not be used (not retried, not logged again).
    failed: Option<Stamp>,
    acceptor: TlsAcceptor,
}

/// The current TLS acceptor, rebuilt when the files change.
pub struct TlsReloader {
    files: TlsFiles,
    state: Mutex<State>,
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
        let loaded = stamp_of(&files);
        let config = server_config(&files)?;
        Ok(TlsReloader {
            state: Mutex::new(State {
                loaded,
                failed: None,
                acceptor: TlsAcceptor::from(Arc::new(config)),
            }),
            files,
        })
    }

    /// The acceptor for a new connection: the files are re-read first if their stamp changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let now = stamp_of(&self.files);
        let mut st = self.state.lock().expect("tls state lock");
        if now != st.loaded && st.failed.as_ref() != Some(&now) {
            match server_config(&self.files) {
                Ok(config) => {
                    st.acceptor = TlsAcceptor::from(Arc::new(config));
                    st.loaded = now;
                    st.failed = None;
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS files changed but cannot be used; keeping the previous certificate");
                    st.failed = Some(now);
                }
            }
        }
        st.acceptor.clone()
    }
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
