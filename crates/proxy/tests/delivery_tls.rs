//! Delivery to `https` EndpointUris (`DeliveryConfig::tls`, `--delivery-ca-file`): over real
//! TLS on loopback to consumers serving certificates generated here (rcgen), with mutual TLS,
//! untrusted certificates, and the CA file rotated without a restart.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use oran_api::{CloudEvent, EventTime, Resource};
use pki::{Ca, Leaf, ca, leaf, replace};
use proxy::tls::{DeliveryTls, DeliveryTlsFiles, TlsReloader};
use proxy::{ApiPolicy, Producer};

/// A consumer serving HTTPS on loopback with `server` (and requiring client certificates of
/// `client_ca` when given); answers 204 and keeps what it receives.
struct TlsConsumer {
    url: String,
    received: Arc<Mutex<Vec<CloudEvent>>>,
    _dir: tempfile::TempDir,
}

async fn tls_consumer(server: &Leaf, client_ca: Option<&Ca>) -> TlsConsumer {
    let dir = tempfile::tempdir().unwrap();
    let files = pki::tls_files(dir.path(), server, client_ca);
    let tls = TlsReloader::open(files).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Arc<Mutex<Vec<CloudEvent>>> = Arc::default();
    let got = received.clone();
    let app = axum::Router::new().route(
        "/event",
        axum::routing::post(move |body: Bytes| {
            let got = got.clone();
            async move {
                let ev = CloudEvent::from_json(&body).expect("a valid CloudEvent");
                got.lock().unwrap().push(ev);
                http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = tls.acceptor();
            let app = app.clone();
            tokio::spawn(async move {
                // A handshake the consumer refuses just ends the connection.
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    TlsConsumer {
        url: format!("https://127.0.0.1:{}/event", addr.port()),
        received,
        _dir: dir,
    }
}

impl TlsConsumer {
    async fn wait_for(&self, n: usize) -> Vec<CloudEvent> {
        for _ in 0..500 {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{} events received, {n} expected",
            self.received.lock().unwrap().len()
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A producer delivering over TLS with `files`.
async fn producer_with(dir: &Path, files: Option<DeliveryTlsFiles>) -> Producer {
    let mut delivery = fast_delivery();
    delivery.tls = files.map(|f| Arc::new(DeliveryTls::open(f).unwrap()));
    Producer::start_with(config(&dir.join("store"), delivery), ApiPolicy::default())
        .await
        .unwrap()
}

/// A producer whose delivery trusts `ca` (written to a file it returns), without a client
/// certificate.
async fn trusting(ca: &Ca) -> (tempfile::TempDir, PathBuf, Producer) {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "consumer-ca.crt", &ca.pem);
    let files = DeliveryTlsFiles {
        ca: ca_file.clone(),
        client_identity: None,
    };
    let p = producer_with(dir.path(), Some(files)).await;
    (dir, ca_file, p)
}

#[tokio::test]
async fn events_are_delivered_over_tls_to_trusted_consumers_only() {
    let consumer_ca = ca("consumer CA");
    let good = tls_consumer(&leaf(&consumer_ca, "consumer", true), None).await;
    let other_ca = ca("another CA");
    let untrusted = tls_consumer(&leaf(&other_ca, "impostor", true), None).await;

    let (_dir, ca_file, p) = trusting(&consumer_ca).await;

    // The initial notification and then every event go over TLS.
    assert_eq!(subscribe(&p, &lock_state(), &good.url).await.status(), 201);
    for i in 0..5 {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let events = good.wait_for(6).await;
    assert_eq!(events.len(), 6);
    assert!(
        events[1..]
            .iter()
            .all(|e| e.source == Resource::LockState.source())
    );

    // A consumer whose certificate the CA file did not issue: the initial notification fails,
    // so the subscription is refused, and the reason names TLS.
    let detail = assert_problem(subscribe(&p, &lock_state(), &untrusted.url).await, 400).await;
    assert!(detail.contains("TLS"), "{detail}");
    assert!(untrusted.received.lock().unwrap().is_empty());

    // The CA file replaced (a rotated consumer CA): new connections trust the new CA at once.
    replace(&ca_file, &other_ca.pem);
    assert_eq!(
        subscribe(&p, &lock_state(), &untrusted.url).await.status(),
        201
    );
    assert_eq!(untrusted.wait_for(1).await.len(), 1);
    // ... and no longer the old one (a new connection to a new consumer of the old CA).
    let old = tls_consumer(&leaf(&consumer_ca, "consumer 2", true), None).await;
    assert_problem(subscribe(&p, &lock_state(), &old.url).await, 400).await;
    // A CA file that becomes unusable keeps the previous CA.
    replace(&ca_file, "not a certificate\n");
    let another = tls_consumer(&leaf(&other_ca, "consumer 3", true), None).await;
    assert_eq!(
        subscribe(&p, &lock_state(), &another.url).await.status(),
        201
    );
}

#[tokio::test]
async fn mutual_tls_to_consumers_that_require_it() {
    let consumer_ca = ca("consumer CA");
    let producer_ca = ca("producer client CA");
    let strict = tls_consumer(&leaf(&consumer_ca, "consumer", true), Some(&producer_ca)).await;
    // Without a client certificate: refused by the consumer, so the subscription is refused.
    let (_dir, ca_file, p) = trusting(&consumer_ca).await;
    assert_problem(subscribe(&p, &lock_state(), &strict.url).await, 400).await;
    drop(p);

    // With one the consumer's CA issued: delivered.
    let id = leaf(&producer_ca, "ptp-events producer", false);
    let dir2 = tempfile::tempdir().unwrap();
    let p = producer_with(
        dir2.path(),
        Some(DeliveryTlsFiles {
            ca: ca_file,
            client_identity: Some((
                write(dir2.path(), "client.crt", &id.cert_pem),
                write(dir2.path(), "client.key", &id.key_pem),
            )),
        }),
    )
    .await;
    assert_eq!(
        subscribe(&p, &lock_state(), &strict.url).await.status(),
        201
    );
    p.hub.publish(
        Resource::LockState,
        lock_values("FREERUN", 9),
        EventTime::now(),
    );
    assert_eq!(strict.wait_for(2).await.len(), 2);
}

#[tokio::test]
async fn https_endpoints_need_the_delivery_ca_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer_with(dir.path(), None).await;
    let detail = assert_problem(
        subscribe(&p, &lock_state(), "https://127.0.0.1:9/event").await,
        400,
    )
    .await;
    assert!(detail.contains("--delivery-ca-file"), "{detail}");
    let detail = assert_problem(
        subscribe(&p, &lock_state(), "ftp://127.0.0.1:9/event").await,
        400,
    )
    .await;
    assert!(detail.contains("use http or https"), "{detail}");

    // Unusable files are refused at start, naming the flag and the file.
    let not_pem = write(dir.path(), "garbage.crt", "garbage\n");
    let err = DeliveryTls::open(DeliveryTlsFiles {
        ca: not_pem.clone(),
        client_identity: None,
    })
    .unwrap_err();
    assert!(
        err.contains("--delivery-ca-file") && err.contains("garbage.crt"),
        "{err}"
    );
    let consumer_ca = ca("consumer CA");
    let ca_file = write(dir.path(), "ca.crt", &consumer_ca.pem);
    let id = leaf(&consumer_ca, "client", false);
    let other = leaf(&consumer_ca, "other", false);
    let err = DeliveryTls::open(DeliveryTlsFiles {
        ca: ca_file,
        client_identity: Some((
            write(dir.path(), "client.crt", &id.cert_pem),
            write(dir.path(), "other.key", &other.key_pem),
        )),
    })
    .unwrap_err();
    assert!(err.contains("--delivery-client-cert"), "{err}");
}
