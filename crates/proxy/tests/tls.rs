//! TLS and mutual TLS on the API, over real TLS on loopback, with certificates generated here
//! (rcgen): HTTP/1.1 and HTTP/2 via ALPN, plain HTTP refused, client certificates required and
//! verified with `client_ca`, certificates rotated without a restart.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{BASE, config, fast_delivery, http};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pki::{Ca, Leaf, ca, leaf, replace};
use proxy::tls::TlsFiles;
use proxy::{ApiPolicy, Producer};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

struct Server {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    producer: Producer,
}

async fn start(server: &Leaf, client_ca: Option<&Ca>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let files = pki::tls_files(dir.path(), server, client_ca);
    let (cert, key) = (files.cert.clone(), files.key.clone());
    let producer = Producer::start_with(
        config(&dir.path().join("store"), fast_delivery()),
        ApiPolicy {
            tls: Some(files),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    Server {
        _dir: dir,
        cert,
        key,
        producer,
    }
}

fn client_config(trust: &Ca, alpn: &[&[u8]], identity: Option<&Leaf>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trust.der.clone()).unwrap();
    let b = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match identity {
        Some(l) => b
            .with_client_auth_cert(
                vec![l.der.clone()],
                PrivateKeyDer::from_pem_slice(l.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// A TLS connection: the request sender, the server's leaf certificate, the ALPN protocol.
struct Opened {
    conn: Conn,
    peer: CertificateDer<'static>,
    alpn: Option<Vec<u8>>,
}

async fn open(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Result<Opened, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(cfg).connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .map_err(|_| "handshake timed out".to_owned())?
    .map_err(|e| format!("handshake: {e}"))?;
    let (_, session) = tls.get_ref();
    let peer = session.peer_certificates().unwrap()[0].clone();
    let alpn = session.alpn_protocol().map(|p| p.to_vec());
    let io = TokioIo::new(tls);
    let conn = if alpn.as_deref() == Some(b"h2") {
        let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(c);
        Conn::H2(s)
    } else {
        let (s, c) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(c);
        Conn::H1(s)
    };
    Ok(Opened { conn, peer, alpn })
}

/// `GET /health` on an open connection: (status, body, HTTP version).
async fn health(conn: &mut Conn) -> Result<(u16, String, http::Version), String> {
    let uri = format!("https://localhost{BASE}/health");
    let req = |uri: &str| {
        http::Request::get(uri)
            .header(http::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let fut = async {
        let resp = match conn {
            Conn::H1(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req(&format!("{BASE}/health"))).await
            }
            Conn::H2(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req(&uri)).await
            }
        }
        .map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((
            parts.status.as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
            parts.version,
        ))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| "request timed out".to_owned())?
}

async fn open_and_get(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Result<Opened, String> {
    let mut o = open(addr, cfg).await?;
    let (status, body, _) = health(&mut o.conn).await?;
    if status != 200 || body != "OK" {
        return Err(format!("health answered {status} {body:?}"));
    }
    Ok(o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http1_and_http2_via_alpn_and_refuses_plain_http() {
    let ca1 = ca("test CA");
    let srv = start(&leaf(&ca1, "producer", true), None).await;
    let addr = srv.producer.api_addr;

    // HTTP/1.1 over TLS.
    let mut h1 = open(addr, client_config(&ca1, &[b"http/1.1"], None))
        .await
        .unwrap();
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (status, body, version) = health(&mut h1.conn).await.unwrap();
    assert_eq!(
        (status, body.as_str(), version),
        (200, "OK", http::Version::HTTP_11)
    );

    // HTTP/2 over TLS (ALPN h2), and the server prefers h2 when both are offered.
    let mut h2 = open(addr, client_config(&ca1, &[b"h2", b"http/1.1"], None))
        .await
        .unwrap();
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    let (status, body, version) = health(&mut h2.conn).await.unwrap();
    assert_eq!(
        (status, body.as_str(), version),
        (200, "OK", http::Version::HTTP_2)
    );

    // A client without ALPN still gets HTTP/1.1.
    open_and_get(addr, client_config(&ca1, &[], None))
        .await
        .unwrap();

    // A client that does not trust the issuing CA refuses the server.
    let other = ca("another CA");
    let err = open(addr, client_config(&other, &[b"http/1.1"], None))
        .await
        .err()
        .expect("an untrusted server certificate must fail the handshake");
    assert!(err.contains("handshake"), "{err}");

    // Plain HTTP/1.1 and h2c to the TLS port get no answer.
    let plain = http().timeout(Duration::from_secs(5)).build().unwrap();
    let r = plain
        .get(format!("http://{addr}{BASE}/health"))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP to the TLS port answered: {r:?}");
    let h2c = http()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = h2c.get(format!("http://{addr}{BASE}/health")).send().await;
    assert!(r.is_err(), "h2c to the TLS port answered: {r:?}");

    // The server is still fine.
    open_and_get(addr, client_config(&ca1, &[b"h2"], None))
        .await
        .unwrap();
    srv.producer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let srv = start(&leaf(&server_ca, "producer", true), Some(&client_ca)).await;
    let addr = srv.producer.api_addr;

    // No client certificate: refused (with TLS 1.3 the alert arrives after the client's side of
    // the handshake, so the request is what fails).
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let r = open_and_get(addr, client_config(&server_ca, &[alpn], None)).await;
        assert!(r.is_err(), "a client without a certificate was served");
    }
    // A certificate from another CA (even the server's own CA): refused.
    let stranger = leaf(&server_ca, "stranger", false);
    let r = open_and_get(addr, client_config(&server_ca, &[b"h2"], Some(&stranger))).await;
    assert!(
        r.is_err(),
        "a client certificate from another CA was accepted"
    );
    let self_made = ca("self-made");
    let forged = leaf(&self_made, "forged", false);
    let r = open_and_get(
        addr,
        client_config(&server_ca, &[b"http/1.1"], Some(&forged)),
    )
    .await;
    assert!(
        r.is_err(),
        "a client certificate from an unknown CA was accepted"
    );

    // A certificate from the client CA: served, over both protocols.
    let consumer = leaf(&client_ca, "consumer", false);
    for alpn in [&b"http/1.1"[..], b"h2"] {
        open_and_get(addr, client_config(&server_ca, &[alpn], Some(&consumer)))
            .await
            .unwrap();
    }
    srv.producer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_to_new_connections_and_a_bad_one_is_ignored() {
    let ca1 = ca("rotation CA");
    let first = leaf(&ca1, "first", true);
    let srv = start(&first, None).await;
    let addr = srv.producer.api_addr;
    let cfg = client_config(&ca1, &[b"http/1.1"], None);

    let mut old = open_and_get(addr, cfg.clone()).await.unwrap();
    assert_eq!(old.peer, first.der);

    // Rotation: new key and certificate. The next connection gets them at once (no polling
    // interval to wait for); the open connection keeps working.
    let second = leaf(&ca1, "second", true);
    replace(&srv.key, &second.key_pem);
    replace(&srv.cert, &second.cert_pem);
    let new = open_and_get(addr, cfg.clone()).await.unwrap();
    assert_eq!(
        new.peer, second.der,
        "a new connection after rotation got the old certificate"
    );
    assert_eq!(health(&mut old.conn).await.unwrap().0, 200);

    // A bad new certificate file (garbage), then a key that does not match the certificate: the
    // previous certificate stays in use.
    replace(
        &srv.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    );
    let o = open_and_get(addr, cfg.clone()).await.unwrap();
    assert_eq!(o.peer, second.der);
    let third = leaf(&ca1, "third", true);
    replace(&srv.cert, &third.cert_pem);
    let o = open_and_get(addr, cfg.clone()).await.unwrap();
    assert_eq!(o.peer, second.der, "a certificate without its key was used");
    // ...until its key arrives.
    replace(&srv.key, &third.key_pem);
    let o = open_and_get(addr, cfg.clone()).await.unwrap();
    assert_eq!(o.peer, third.der);

    // A missing file keeps the current certificate too.
    std::fs::remove_file(&srv.cert).unwrap();
    let o = open_and_get(addr, cfg).await.unwrap();
    assert_eq!(o.peer, third.der);
    srv.producer.stop().await;
}

#[tokio::test]
async fn unusable_tls_files_stop_the_producer_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("start CA");
    let a = leaf(&ca1, "a", true);
    let b = leaf(&ca1, "b", true);
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &a.cert_pem).unwrap();
    std::fs::write(&key, &b.key_pem).unwrap();
    let cases = [
        (
            cert.clone(),
            dir.path().join("missing.key"),
            None,
            "--tls-key",
        ),
        (cert.clone(), key.clone(), None, "--tls-cert"),
        (key.clone(), key.clone(), None, "no PEM certificate"),
        (
            cert.clone(),
            key.clone(),
            Some(dir.path().join("missing-ca.crt")),
            "--tls-client-ca",
        ),
    ];
    for (i, (cert, key, client_ca, expect)) in cases.into_iter().enumerate() {
        let r = Producer::start_with(
            config(&dir.path().join(format!("store{i}")), fast_delivery()),
            ApiPolicy {
                tls: Some(TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                ..ApiPolicy::default()
            },
        )
        .await;
        let e = r
            .err()
            .expect("unusable TLS files were accepted")
            .to_string();
        assert!(
            e.contains(expect),
            "case {i}: {e:?} does not mention {expect:?}"
        );
    }
}

/// `metrics_tls`: `/metrics` on its own port over TLS with the API's certificate, and with a
/// client CA only to scrapers presenting a certificate of it; plain HTTP gets no answer. Without
/// API TLS the producer refuses to start, naming the flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_tls_with_the_apis_certificate_and_client_ca() {
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let server = leaf(&server_ca, "producer", true);
    let dir = tempfile::tempdir().unwrap();
    let files = pki::tls_files(dir.path(), &server, Some(&client_ca));
    let p = Producer::start_with(
        config(&dir.path().join("store"), fast_delivery()),
        ApiPolicy {
            tls: Some(files),
            metrics_tls: true,
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let metrics = format!(
        "https://127.0.0.1:{}/metrics",
        p.metrics_addr.unwrap().port()
    );
    let scraper = |identity: Option<&Leaf>| {
        let mut b = http()
            .timeout(Duration::from_secs(5))
            .tls_certs_only([reqwest::Certificate::from_pem(server_ca.pem.as_bytes()).unwrap()]);
        if let Some(id) = identity {
            let pem = format!("{}{}", id.cert_pem, id.key_pem);
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    // A scraper with a certificate of the client CA: the metrics.
    let prometheus = leaf(&client_ca, "prometheus", false);
    let resp = scraper(Some(&prometheus))
        .get(&metrics)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("cne_metrics_connections_open 1"), "{text}");
    // Without one, or over plain HTTP: no answer.
    let r = scraper(None).get(&metrics).send().await;
    assert!(
        r.is_err(),
        "a scraper without a certificate was served: {r:?}"
    );
    let plain = metrics.replace("https://", "http://");
    let r = scraper(None).get(&plain).send().await;
    assert!(r.is_err(), "plain HTTP to the metrics port answered: {r:?}");
    p.stop().await;

    // metrics_tls without API TLS: refused at start.
    let err = Producer::start_with(
        config(&dir.path().join("store2"), fast_delivery()),
        ApiPolicy {
            metrics_tls: true,
            ..ApiPolicy::default()
        },
    )
    .await
    .err()
    .expect("metrics_tls without tls must not start");
    assert!(
        err.to_string().contains("--metrics-tls needs --tls-cert"),
        "{err}"
    );
}
