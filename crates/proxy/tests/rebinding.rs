//! DNS rebinding for real: the name of a subscription's EndpointUri resolves inside the endpoint
//! policy when the subscription is created, then, through the system resolver, to an address
//! outside it. The producer must not dial that address, and must deliver again once the name
//! points back inside the policy.
//!
//! The test runs the producer in its own process in a private mount namespace (`unshare
//! --mount`), where `/etc/hosts` is a file the test rewrites: glibc reads `/etc/hosts` at every
//! lookup, as a resolver with a zero TTL would answer. Needs root; CI runs it.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use oran_api::{EventTime, Resource};
use proxy::{ApiPolicy, Producer};

const NAME: &str = "consumer.rebinding.test";
/// Set (to the hosts file) in the child that runs in the private mount namespace.
const INNER: &str = "PTP_EVENTS_REBINDING_HOSTS";
/// How long a delivery may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

fn point_name_at(hosts: &PathBuf, ip: &str) {
    // Rewritten in place (same inode), so the bind mount over /etc/hosts shows the new text.
    std::fs::write(hosts, format!("127.0.0.1 localhost\n{ip} {NAME}\n")).unwrap();
}

async fn resolves_to(port: u16) -> Vec<String> {
    tokio::net::lookup_host((NAME, port))
        .await
        .map(|a| a.map(|a| a.ip().to_string()).collect())
        .unwrap_or_default()
}

/// `cne_delivery_retries_total`: delivery attempts retried after a transport error (here: after
/// the connect-time policy check refused the address).
fn retries(p: &Producer) -> u64 {
    p.hub
        .metrics()
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("cne_delivery_retries_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test]
async fn a_name_rebound_outside_the_policy_is_never_dialled() {
    let Some(hosts) = std::env::var_os(INNER).map(PathBuf::from) else {
        return outer();
    };
    // In the private mount namespace: /etc/hosts is `hosts`.
    let mounted = Command::new("mount")
        .args(["--bind"])
        .arg(&hosts)
        .arg("/etc/hosts")
        .status()
        .unwrap();
    assert!(mounted.success(), "mount --bind over /etc/hosts failed");

    // The consumer on 127.0.0.1, and on the same port on 127.0.0.2 the "internal service" the
    // rebinding aims at.
    // Both answer `Connection: close`, so that every delivery dials anew (and resolves the name
    // again).
    let consumer = Consumer::start_on("127.0.0.1:0".parse().unwrap(), Behaviour::Close).await;
    let port = consumer.addr.port();
    let victim =
        Consumer::start_on(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Close).await;
    point_name_at(&hosts, "127.0.0.1");
    assert_eq!(resolves_to(port).await, ["127.0.0.1"]);

    let dir = tempfile::tempdir().unwrap();
    let p = Producer::start_with(
        config(dir.path(), fast_delivery()),
        ApiPolicy {
            endpoint_allow: vec!["127.0.0.1/32".parse().unwrap()],
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let endpoint = format!("http://{NAME}:{port}/event");
    assert_eq!(subscribe(&p, &lock_state(), &endpoint).await.status(), 201);
    // The initial notification of a new subscription, then an event: both delivered.
    consumer.wait_for(1, WAIT).await; // the initial notification
    let publish = |offset| {
        p.hub.publish(
            Resource::LockState,
            lock_values("FREERUN", offset),
            EventTime::now(),
        )
    };
    let initial = consumer.count();
    publish(1);
    consumer.wait_for(initial + 1, WAIT).await; // the first event
    let before = consumer.count();
    assert_eq!(retries(&p), 0);

    // Rebound: the same name now resolves to 127.0.0.2, outside the policy.
    point_name_at(&hosts, "127.0.0.2");
    assert_eq!(
        resolves_to(port).await,
        ["127.0.0.2"],
        "the rebinding is live"
    );
    publish(2);
    // The producer tried (and retried: 2 retries in these tests) and was refused each time.
    let deadline = Instant::now() + Duration::from_secs(10);
    while retries(&p) < 2 {
        assert!(Instant::now() < deadline, "no refused delivery attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        victim.count(),
        0,
        "the producer dialled the rebound address"
    );
    assert_eq!(consumer.count(), before);
    assert_eq!(
        p.hub.list().len(),
        1,
        "one refusal is within the failure budget"
    );

    // Back inside the policy: delivery resumes.
    point_name_at(&hosts, "127.0.0.1");
    publish(3);
    consumer.wait_for(before + 1, WAIT).await; // delivery resumed
    assert_eq!(victim.count(), 0);
    eprintln!(
        "rebinding: {} deliveries to the consumer, 0 to the rebound address",
        consumer.count()
    );
    p.stop().await;
}

/// Re-runs this test in a private mount namespace, with a hosts file to rewrite.
fn outer() {
    if !root_or_skip(
        "a_name_rebound_outside_the_policy_is_never_dialled",
        "needs root for unshare --mount",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_name_rebound_outside_the_policy_is_never_dialled",
            "--nocapture",
        ])
        .env(INNER, &hosts)
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the test in the private mount namespace failed:\n{stdout}\n{stderr}"
    );
}
