//! The SDK against the real producer with its security on: TLS, mutual TLS and bearer tokens
//! (a token file re-read when it changes), over real TLS on loopback.

#[path = "../../proxy/tests/common/pki.rs"]
mod pki;

use std::path::Path;

use pki::{ca, leaf, replace, write};
use proxy::tls::TlsFiles;
use proxy::{ApiPolicy, DeliveryConfig, Producer, ProducerConfig};
use ptp_events_client::{Client, Error, Resource, receiver, resource_address};

const NODE: &str = "node1";

fn config(d: &Path) -> ProducerConfig {
    ProducerConfig {
        node_name: NODE.into(),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        store_path: d.join("store"),
        uri_location_base: "http://localhost:9043".into(),
        delivery: DeliveryConfig::default(),
        max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
    }
}

#[tokio::test]
async fn https_with_client_certificate_and_rotated_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_ca = ca("producer CA");
    let client_ca = ca("consumer CA");
    let server = leaf(&server_ca, "producer", true);
    let consumer = leaf(&client_ca, "consumer", false);
    let tokens = write(d, "tokens", "token-one\n");
    let producer = Producer::start_with(
        config(d),
        ApiPolicy {
            auth_token_file: Some(tokens.clone()),
            tls: Some(TlsFiles {
                cert: write(d, "tls.crt", &server.cert_pem),
                key: write(d, "tls.key", &server.key_pem),
                client_ca: Some(write(d, "client-ca.crt", &client_ca.pem)),
            }),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let publisher = format!("https://localhost:{}", producer.api_addr.port());
    let ca_file = write(d, "ca.crt", &server_ca.pem);
    let cert = write(d, "client.crt", &consumer.cert_pem);
    let key = write(d, "client.key", &consumer.key_pem);
    let token_file = write(d, "my-token", "token-one\n");

    let c = Client::builder(&publisher)
        .ca_file(&ca_file)
        .client_identity(&cert, &key)
        .bearer_token_file(&token_file)
        .build()
        .unwrap();
    assert_eq!(
        c.api_url().as_str(),
        format!("{publisher}/api/ocloudNotifications/v2/")
    );
    c.health().await.unwrap();
    let (handler, mut events) = receiver::channel(8);
    let r = ptp_events_client::Receiver::bind("127.0.0.1:0", handler)
        .await
        .unwrap();
    let lock_state = resource_address(NODE, Resource::LockState);
    let sub = c.subscribe(&lock_state, &r.endpoint_uri()).await.unwrap();
    assert_eq!(sub.resource_address, lock_state);
    tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
        .await
        .expect("initial notification")
        .expect("receiver open");
    assert_eq!(c.subscriptions().await.unwrap().len(), 1);

    // The producer's tokens change; so does the consumer's file (as a rotated Secret or
    // projected token): the client sends the new token without being rebuilt.
    replace(&tokens, "token-two\n");
    let err = c.subscriptions().await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err}");
    assert_eq!(err.status(), Some(401));
    replace(&token_file, "token-two\n");
    assert_eq!(c.subscriptions().await.unwrap().len(), 1);

    // Without a token: 401, typed.
    let no_token = Client::builder(&publisher)
        .ca_file(&ca_file)
        .client_identity(&cert, &key)
        .build()
        .unwrap();
    assert!(matches!(
        no_token.subscriptions().await.unwrap_err(),
        Error::Unauthorized(_)
    ));
    // health needs no token.
    no_token.health().await.unwrap();

    // Without a client certificate the TLS handshake is refused: no HTTP answer.
    let anonymous = Client::builder(&publisher)
        .ca_file(&ca_file)
        .bearer_token_file(&token_file)
        .build()
        .unwrap();
    let err = anonymous.health().await.unwrap_err();
    assert!(err.status().is_none(), "{err}");

    // Trusting another CA: the producer's certificate is refused.
    let other_ca = write(d, "other-ca.crt", &ca("another CA").pem);
    let wrong = Client::builder(&publisher)
        .ca_file(&other_ca)
        .client_identity(&cert, &key)
        .build()
        .unwrap();
    let err = wrong.health().await.unwrap_err();
    assert!(err.status().is_none(), "{err}");

    // Plain http to the TLS port gets nothing either.
    let plain = Client::new(&format!("127.0.0.1:{}", producer.api_addr.port())).unwrap();
    assert!(plain.health().await.is_err());
}

#[tokio::test]
async fn unusable_tls_and_token_files_are_named_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing");
    let err = Client::builder("https://localhost:1")
        .ca_file(&missing)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    let not_pem = write(d, "not-pem", "hello\n");
    let err = Client::builder("https://localhost:1")
        .ca_file(&not_pem)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let err = Client::builder("localhost:1")
        .bearer_token_file(&missing)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("token file"), "{err}");
    let empty = write(d, "empty", "\n");
    let err = Client::builder("localhost:1")
        .bearer_token_file(&empty)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = Client::builder("localhost:1")
        .client_identity(&not_pem, &not_pem)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("client certificate"), "{err}");
}

#[tokio::test]
async fn a_refused_list_never_makes_the_subscriber_delete_anything() {
    use ptp_events_client::{ConflictPolicy, Subscriber, ptp_resource_addresses};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tokens = write(d, "tokens", "ours\nother-consumer\n");
    let producer = Producer::start_with(
        config(d),
        ApiPolicy {
            auth_token_file: Some(tokens.clone()),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let publisher = producer.api_addr.to_string();
    // Another consumer's subscription on the same producer.
    let other = Client::builder(&publisher)
        .bearer_token("other-consumer")
        .build()
        .unwrap();
    let (other_handler, _other_events) = receiver::channel(8);
    let other_rx = ptp_events_client::Receiver::bind("127.0.0.1:0", other_handler)
        .await
        .unwrap();
    other
        .subscribe(
            &resource_address(NODE, Resource::LockState),
            &other_rx.endpoint_uri(),
        )
        .await
        .unwrap();
    // Ours, with the Go consumer's conflict policy (delete every subscription on 409).
    let (handler, _events) = receiver::channel(64);
    let rx = ptp_events_client::Receiver::bind("127.0.0.1:0", handler)
        .await
        .unwrap();
    let ours = Client::builder(&publisher)
        .bearer_token("ours")
        .build()
        .unwrap();
    let handle = Subscriber::new(rx.endpoint_uri())
        .publisher(ours)
        .resources(ptp_resource_addresses(NODE))
        .on_conflict(ConflictPolicy::DeleteAll)
        .check_interval(Duration::from_millis(100))
        .retry_interval(Duration::from_millis(50))
        .spawn();
    assert!(handle.wait_subscribed(Duration::from_secs(10)).await);
    assert_eq!(producer.hub.list().len(), 6);
    let ids: Vec<String> = handle.status()[0]
        .subscriptions
        .iter()
        .map(|s| s.subscription_id.clone())
        .collect();

    // Our token is refused for a while (health stays open): the list fails with 401.
    replace(&tokens, "other-consumer\n");
    assert!(
        handle
            .wait_until(Duration::from_secs(10), |s| s[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("401")))
            .await,
        "{:?}",
        handle.status()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Accepted again: nothing was deleted or created; every subscription is the same.
    replace(&tokens, "ours\nother-consumer\n");
    assert!(
        handle
            .wait_until(Duration::from_secs(10), |s| s[0].last_error.is_none())
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        producer.hub.list().len(),
        6,
        "the other consumer's one survives"
    );
    let status = handle.status();
    assert_eq!(status[0].created, 5, "{status:?}");
    let now: Vec<String> = status[0]
        .subscriptions
        .iter()
        .map(|s| s.subscription_id.clone())
        .collect();
    assert_eq!(now, ids);
    handle.stop_and_unsubscribe().await;
    assert_eq!(producer.hub.list().len(), 1);
}

/// A TLS receiver (https EndpointUri) fed by the real producer delivering over TLS: events
/// arrive, a rotated certificate is served to new connections, unusable files are named.
#[tokio::test]
async fn tls_receiver_gets_events_from_a_producer_delivering_over_tls() {
    use proxy::tls::{DeliveryTls, DeliveryTlsFiles};
    use ptp_events_client::{Receiver, ReceiverTls};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let consumer_ca = ca("consumer CA");
    let first = leaf(&consumer_ca, "consumer", true);
    let tls = ReceiverTls {
        cert: write(d, "receiver.crt", &first.cert_pem),
        key: write(d, "receiver.key", &first.key_pem),
        client_ca: None,
    };
    let (handler, mut events) = receiver::channel(8);
    let r = Receiver::bind_tls("127.0.0.1:0", "/event", handler, tls.clone())
        .await
        .unwrap();
    let port = r.local_addr().port();
    assert_eq!(r.endpoint_uri(), format!("https://127.0.0.1:{port}/event"));

    let mut cfg = config(d);
    let delivery = DeliveryConfig {
        tls: Some(std::sync::Arc::new(
            DeliveryTls::open(DeliveryTlsFiles {
                ca: write(d, "consumer-ca.crt", &consumer_ca.pem),
                client_identity: None,
            })
            .unwrap(),
        )),
        ..DeliveryConfig::default()
    };
    cfg.delivery = delivery;
    let producer = Producer::start_with(cfg, ApiPolicy::default())
        .await
        .unwrap();
    let c = Client::new(&format!("127.0.0.1:{}", producer.api_addr.port())).unwrap();
    let lock_state = resource_address(NODE, Resource::LockState);
    c.subscribe(&lock_state, &r.endpoint_uri()).await.unwrap();
    let initial = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
        .await
        .expect("initial notification")
        .unwrap();
    assert_eq!(initial.resource(), Some(Resource::LockState));

    // The certificate rotated to one of a new CA, which the producer now trusts alone: a new
    // connection (another subscription's initial notification) succeeds only if the receiver
    // serves the new certificate.
    let new_ca = ca("rotated consumer CA");
    let second = leaf(&new_ca, "consumer rotated", true);
    replace(&tls.key, &second.key_pem);
    replace(&tls.cert, &second.cert_pem);
    replace(&d.join("consumer-ca.crt"), &new_ca.pem);
    let sync_state = resource_address(NODE, Resource::SyncState);
    c.subscribe(&sync_state, &format!("{}?again", r.endpoint_uri()))
        .await
        .unwrap();
    let again = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
        .await
        .expect("initial notification over the rotated certificate")
        .unwrap();
    assert_eq!(again.resource(), Some(Resource::SyncState));
    // A plain-http subscription to the TLS port is refused.
    let plain = c
        .subscribe(&sync_state, &format!("http://127.0.0.1:{port}/event"))
        .await
        .unwrap_err();
    assert!(plain.is_bad_request(), "{plain}");
    r.stop().await.unwrap();

    // Unusable files: an InvalidInput error naming the file.
    let garbage = write(d, "garbage.crt", "garbage\n");
    let err = Receiver::bind_tls(
        "127.0.0.1:0",
        "/event",
        receiver::channel(1).0,
        ReceiverTls {
            cert: garbage,
            key: tls.key.clone(),
            client_ca: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("garbage.crt"), "{err}");
}

/// A receiver with `client_ca` (mutual TLS): the producer presenting a client certificate of
/// that CA delivers; a producer without one cannot subscribe (its initial notification is
/// refused in the handshake, so creation fails with 400); the CA file replaced by another CA
/// applies at the next connection; an unusable CA file is named at bind.
#[tokio::test]
async fn mutual_tls_receiver_takes_events_only_from_producers_with_a_certificate() {
    use proxy::tls::{DeliveryTls, DeliveryTlsFiles};
    use ptp_events_client::{Receiver, ReceiverTls};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let consumer_ca = ca("consumer CA");
    let receiver_cert = leaf(&consumer_ca, "consumer", true);
    let producer_ca = ca("producer CA");
    let tls = ReceiverTls {
        cert: write(d, "receiver.crt", &receiver_cert.cert_pem),
        key: write(d, "receiver.key", &receiver_cert.key_pem),
        client_ca: Some(write(d, "producer-ca.crt", &producer_ca.pem)),
    };
    let (handler, mut events) = receiver::channel(8);
    let r = Receiver::bind_tls("127.0.0.1:0", "/event", handler, tls.clone())
        .await
        .unwrap();
    let consumer_ca_file = write(d, "consumer-ca.crt", &consumer_ca.pem);
    // A producer delivering with the given client identity (None: without one).
    let producer = |dir: &Path, identity: Option<&pki::Leaf>| {
        let mut cfg = config(dir);
        let client_identity = identity.map(|id| {
            (
                write(dir, "producer.crt", &id.cert_pem),
                write(dir, "producer.key", &id.key_pem),
            )
        });
        cfg.delivery = DeliveryConfig {
            tls: Some(std::sync::Arc::new(
                DeliveryTls::open(DeliveryTlsFiles {
                    ca: consumer_ca_file.clone(),
                    client_identity,
                })
                .unwrap(),
            )),
            ..DeliveryConfig::default()
        };
        Producer::start_with(cfg, ApiPolicy::default())
    };
    let lock_state = resource_address(NODE, Resource::LockState);
    let recv = async |events: &mut tokio::sync::mpsc::Receiver<ptp_events_client::Event>| {
        tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("an event")
            .unwrap()
    };

    // With the producer's certificate: subscribed, events arrive.
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let good = producer(d1.path(), Some(&leaf(&producer_ca, "producer", false)))
        .await
        .unwrap();
    let c = Client::new(&format!("127.0.0.1:{}", good.api_addr.port())).unwrap();
    c.subscribe(&lock_state, &r.endpoint_uri()).await.unwrap();
    assert_eq!(
        recv(&mut events).await.resource(),
        Some(Resource::LockState)
    );

    // Without a client certificate, or with one of another CA: the initial notification is
    // refused in the handshake, so the subscription is not created; nothing reaches the handler.
    let other_ca = ca("someone else's CA");
    for (dir, identity) in [
        (d2.path(), None),
        (d3.path(), Some(leaf(&other_ca, "x", false))),
    ] {
        let bad = producer(dir, identity.as_ref()).await.unwrap();
        let c = Client::new(&format!("127.0.0.1:{}", bad.api_addr.port())).unwrap();
        let err = c
            .subscribe(&lock_state, &r.endpoint_uri())
            .await
            .unwrap_err();
        assert!(err.is_bad_request(), "{err}");
        assert!(bad.hub.list().is_empty());
        bad.stop().await;
    }
    assert!(
        events.try_recv().is_err(),
        "nothing from the refused producers"
    );

    // The client CA rotated to another: the first producer's certificate is no longer taken at
    // the next connection (a new subscription's initial notification), the new CA's is.
    let rotated_ca = ca("rotated producer CA");
    replace(tls.client_ca.as_ref().unwrap(), &rotated_ca.pem);
    let sync_state = resource_address(NODE, Resource::SyncState);
    let err = c
        .subscribe(&sync_state, &format!("{}?again", r.endpoint_uri()))
        .await
        .unwrap_err();
    assert!(err.is_bad_request(), "{err}");
    let d4 = tempfile::tempdir().unwrap();
    let rotated = producer(d4.path(), Some(&leaf(&rotated_ca, "producer", false)))
        .await
        .unwrap();
    let c4 = Client::new(&format!("127.0.0.1:{}", rotated.api_addr.port())).unwrap();
    c4.subscribe(&sync_state, &r.endpoint_uri()).await.unwrap();
    assert_eq!(
        recv(&mut events).await.resource(),
        Some(Resource::SyncState)
    );
    r.stop().await.unwrap();
    good.stop().await;
    rotated.stop().await;

    // An unusable CA file: an InvalidInput error naming it.
    let garbage = write(d, "garbage-ca.crt", "garbage\n");
    let err = Receiver::bind_tls(
        "127.0.0.1:0",
        "/event",
        receiver::channel(1).0,
        ReceiverTls {
            client_ca: Some(garbage),
            ..tls
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("garbage-ca.crt"), "{err}");
}
