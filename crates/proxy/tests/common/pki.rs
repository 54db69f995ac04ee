//! Certificates made for one test (rcgen): a CA, and server or client certificates it issues.
#![allow(dead_code)]

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

/// A certificate authority made for one test.
pub struct Ca {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate issued by `ca`: (certificate PEM, key PEM, certificate DER).
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

pub fn leaf(ca: &Ca, name: &str, server: bool) -> Leaf {
    let sans = if server {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        Vec::new()
    };
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

/// Replaces `path` atomically (write a temporary file, rename), as a Secret update does.
pub fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Writes `text` to `dir/name`; the path.
pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A TLS server identity written to `dir` (`tls.crt`, `tls.key`, and `client-ca.crt` with a
/// client CA: mutual TLS).
pub fn tls_files(dir: &Path, server: &Leaf, client_ca: Option<&Ca>) -> proxy::tls::TlsFiles {
    proxy::tls::TlsFiles {
        cert: write(dir, "tls.crt", &server.cert_pem),
        key: write(dir, "tls.key", &server.key_pem),
        client_ca: client_ca.map(|ca| write(dir, "client-ca.crt", &ca.pem)),
    }
}
