//! End to end over the real UNIX socket: linuxptp-daemon lines written into the socket reach a
//! subscribed consumer as the Go producer's CloudEvents; CurrentState and metrics agree.

mod common;

use std::time::Duration;

use common::*;
use proxy::{Ingest, IngestConfig};
use ptp_state::EngineConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

fn ingest_config(socket: &std::path::Path) -> IngestConfig {
    let mut engine = EngineConfig::new(NODE);
    engine.default_thresholds.hold_over_timeout = Duration::from_millis(800);
    let mut cfg = IngestConfig::new(engine);
    cfg.socket = Some(socket.to_path_buf());
    cfg
}

async fn write_lines(s: &mut UnixStream, lines: &[&str]) {
    for l in lines {
        s.write_all(l.as_bytes()).await.unwrap();
        s.write_all(b"\n").await.unwrap();
    }
    s.flush().await.unwrap();
}

fn summary(ev: &oran_api::CloudEvent) -> String {
    let v: Vec<&str> = ev.data.values.iter().map(|v| v.value.as_str()).collect();
    format!("{} {}", ev.source.rsplit('/').next().unwrap(), v.join(" "))
}

#[tokio::test]
async fn socket_lines_become_events_current_state_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let ingest = Ingest::start(p.hub.clone(), ingest_config(&socket))
        .await
        .unwrap();
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync", &c.url)
            .await
            .status(),
        201
    );
    let initial = c.count();
    assert_eq!(initial, 7, "placeholders while there is no data");

    let mut daemon = UnixStream::connect(&socket).await.unwrap();
    write_lines(
        &mut daemon,
        &[
            "ptp4l[1000.100]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
            "ptp4l[1000.200]: [ptp4l.0.config] master offset -5 s2 freq -1234 path delay 500",
            "phc2sys[1000.300]: [ptp4l.0.config] CLOCK_REALTIME phc offset 3 s2 freq -100 delay 600",
            "ptp4l[1000.400]: [ptp4l.0.config] CLOCK_CLASS_CHANGE 6.000000",
            "this line means nothing to anyone",
        ],
    )
    .await;
    let events = c.wait_for(initial + 4, Duration::from_secs(5)).await;
    let got: Vec<String> = events[initial..].iter().map(summary).collect();
    assert_eq!(
        got,
        [
            "lock-state LOCKED -5",
            "sync-state LOCKED",
            "os-clock-sync-state LOCKED 3",
            "clock-class 6"
        ]
    );
    let lock = &events[initial];
    assert_eq!(lock.event_type, "event.sync.ptp-status.ptp-state-change");
    assert_eq!(
        lock.data.values[0].resource_address,
        "/cluster/node/node1/ens1f0/master"
    );
    let os = &events[initial + 2];
    assert_eq!(
        os.data.values[0].resource_address,
        "/cluster/node/node1/CLOCK_REALTIME"
    );

    // Offsets alone publish nothing, but CurrentState carries the latest one.
    write_lines(
        &mut daemon,
        &["ptp4l[1001.200]: [ptp4l.0.config] master offset 7 s2 freq -1234 path delay 500"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.count(), initial + 4);
    let cs: oran_api::CloudEvent = client()
        .get(url(
            &p,
            "/cluster/node/node1/sync/ptp-status/lock-state/CurrentState",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary(&cs), "lock-state LOCKED 7");

    // The SLAVE port faults: HOLDOVER now, FREERUN when holdOverTimeout (0.8 s) runs out.
    write_lines(&mut daemon, &["ptp4l[1002.000]: [ptp4l.0.config:5] port 1 (ens1f0): SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)"]).await;
    let events = c.wait_for(initial + 8, Duration::from_secs(5)).await;
    let got: Vec<String> = events[initial + 4..].iter().map(summary).collect();
    assert_eq!(
        got,
        [
            "lock-state HOLDOVER 7",
            "sync-state HOLDOVER",
            "lock-state FREERUN 7",
            "sync-state FREERUN",
        ]
    );

    // The daemon reconnects (a new connection); an oversized line is skipped, not fatal.
    drop(daemon);
    let mut daemon = UnixStream::connect(&socket).await.unwrap();
    let huge = "x".repeat(200 * 1024);
    write_lines(
        &mut daemon,
        &[
            &huge,
            "ptp4l[1003.000]: [ptp4l.0.config:5] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
            "ptp4l[1003.100]: [ptp4l.0.config] master offset 4 s2 freq -1234 path delay 500",
        ],
    )
    .await;
    let events = c.wait_for(initial + 10, Duration::from_secs(5)).await;
    let got: Vec<String> = events[initial + 8..].iter().map(summary).collect();
    assert_eq!(got, ["lock-state LOCKED 4", "sync-state LOCKED"]);

    let metrics = scrape(&p).await;
    for want in [
        "openshift_ptp_clock_state{iface=\"ens1f0\",node=\"node1\",process=\"ptp4l\"} 1",
        "openshift_ptp_offset_ns{from=\"master\",iface=\"ens1f0\",node=\"node1\",process=\"ptp4l\"} 4",
        "cne_ingest_lines_total{result=\"oversized\"} 1",
        "cne_ingest_lines_total{result=\"skipped\"} 1",
        "cne_ingest_connections_total 2",
        "cne_api_events_published{address=\"/sync/ptp-status/lock-state\",status=\"success\"} 4",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }
    promtool_check(&metrics);
    ingest.stop();
    assert!(!socket.exists(), "socket removed on stop");
}

#[tokio::test]
async fn a_live_socket_is_not_stolen_and_a_stale_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let first = Ingest::start(p.hub.clone(), ingest_config(&socket))
        .await
        .unwrap();
    let err = Ingest::start(p.hub.clone(), ingest_config(&socket))
        .await
        .err()
        .expect("second listener refused");
    assert!(err.to_string().contains("already listening"), "{err}");
    first.stop();
    // A stale socket file (nobody listening) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(stale);
    assert!(socket.exists());
    let second = Ingest::start(p.hub.clone(), ingest_config(&socket))
        .await
        .unwrap();
    second.stop();
}

#[tokio::test]
async fn in_process_channel_feeds_the_same_engine() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let mut ingest = Ingest::start(p.hub.clone(), IngestConfig::new(EngineConfig::new(NODE)))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    ingest.attach(rx);
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    for l in [
        "ptp4l[1.0]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
        "ptp4l[1.1]: [ptp4l.0.config] master offset 1 s2 freq 0 path delay 500",
    ] {
        tx.send(l.to_owned()).await.unwrap();
    }
    let events = c.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(summary(&events[1]), "lock-state LOCKED 1");
    ingest.stop();
}

/// A stand-in for the Go daemon's `:8081` API: `/port-aliases` and `/emit-logs` (counted).
async fn daemon_api() -> (url::Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let emits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let e = emits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let app = axum::Router::new()
        .route(
            "/port-aliases",
            axum::routing::get(|| async { r#"{"ens1f0":"ens1fx"}"# }),
        )
        .route(
            "/emit-logs",
            axum::routing::get(move || {
                let e = e.clone();
                async move {
                    e.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    "ok"
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, emits)
}

#[tokio::test]
async fn each_connection_asks_the_daemon_for_a_replay_and_aliases_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let (api, emits) = daemon_api().await;
    let mut cfg = ingest_config(&socket);
    cfg.daemon_api = Some(api);
    let ingest = Ingest::start(p.hub.clone(), cfg).await.unwrap();
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    for n in 1..=2 {
        let _daemon = UnixStream::connect(&socket).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while emits.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no /emit-logs for connection {n}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut daemon = UnixStream::connect(&socket).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_lines(
        &mut daemon,
        &[
            "ptp4l[1.0]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
            "ptp4l[1.1]: [ptp4l.0.config] master offset -5 s2 freq 0 path delay 500",
        ],
    )
    .await;
    let events = c.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        events[1].data.values[0].resource_address, "/cluster/node/node1/ens1fx/master",
        "the daemon's alias is used in value addresses"
    );
    ingest.stop();
}

/// The reader feeds every complete line of a read at once and keeps a partial one for the next
/// read: a line cut anywhere (even in its CRLF) and lines packed into one write give the same
/// events, in order.
#[tokio::test]
async fn lines_cut_across_reads_or_packed_in_one_write_are_each_taken_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let ingest = Ingest::start(p.hub.clone(), ingest_config(&socket))
        .await
        .unwrap();
    let c = Consumer::start(Behaviour::Ok).await;
    let lock = "/cluster/node/node1/sync/ptp-status/lock-state";
    assert_eq!(subscribe(&p, lock, &c.url).await.status(), 201);
    let initial = c.count();
    let mut daemon = UnixStream::connect(&socket).await.unwrap();
    let text = "ptp4l[1000.100]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\r\n\
                ptp4l[1000.200]: [ptp4l.0.config] master offset -5 s2 freq -1234 path delay 500\r\n\
                ptp4l[1000.300]: [ptp4l.0.config] master offset 5000 s2 freq -1234 path delay 500\n\
                ptp4l[1000.400]: [ptp4l.0.config] master offset 7 s2 freq -1234 path delay 500\n";
    // Cut inside a word, inside the first CRLF, and in the middle of the third line; the
    // reader is given time to take each piece on its own (it may not: either way must work).
    let first_crlf = text.find('\r').unwrap();
    let third = text.find("ptp4l[1000.300]").unwrap();
    for piece in [
        &text[..10],
        &text[10..first_crlf + 1],
        &text[first_crlf + 1..third + 20],
        &text[third + 20..],
    ] {
        daemon.write_all(piece.as_bytes()).await.unwrap();
        daemon.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let events = c.wait_for(initial + 3, Duration::from_secs(5)).await;
    let got: Vec<String> = events[initial..].iter().map(summary).collect();
    assert_eq!(
        got,
        [
            "lock-state LOCKED -5",
            "lock-state FREERUN 5000",
            "lock-state LOCKED 7"
        ]
    );
    let metrics = scrape(&p).await;
    assert!(
        metrics.contains("cne_ingest_lines_total{result=\"parsed\"} 4"),
        "{metrics}"
    );
    ingest.stop();
    p.stop().await;
}

/// Each daemon connection has a reader thread: a local client that opens connection after
/// connection gets at most [`proxy::ingest::MAX_DAEMON_CONNECTIONS`]; one more is closed at
/// once, and a connection that ends frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_connections_beyond_the_cap_are_closed() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let ingest = Ingest::start(p.hub.clone(), ingest_config(&socket))
        .await
        .unwrap();
    let max = proxy::ingest::MAX_DAEMON_CONNECTIONS;
    let open = |n: usize| connections_open(&p, n);
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(UnixStream::connect(&socket).await.unwrap());
    }
    open(max).await;
    let mut extra = UnixStream::connect(&socket).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("the connection over the cap is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    drop(held.pop());
    open(max - 1).await;
    let mut again = UnixStream::connect(&socket).await.unwrap();
    write_lines(
        &mut again,
        &["ptp4l[1000.100]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"],
    )
    .await;
    open(max).await;
    ingest.stop();
}

/// Waits until the producer's metrics say `n` daemon connections are open.
async fn connections_open(p: &proxy::Producer, n: usize) {
    let want = format!("cne_ingest_connections_open {n}\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(p).await;
        if m.contains(&want) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "want {want:?}: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connection counts against the cap from its accept, also while the producer is still
/// asking the daemon's API for aliases (here an API that never answers, 2 s per connection):
/// one over the cap is closed at once, and stopping ingest ends them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_waiting_for_the_daemon_api_count_against_the_cap() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = url::Url::parse(&format!("http://{}/", silent.local_addr().unwrap())).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut cfg = ingest_config(&socket);
    cfg.daemon_api = Some(api);
    let ingest = Ingest::start(p.hub.clone(), cfg).await.unwrap();
    let max = proxy::ingest::MAX_DAEMON_CONNECTIONS;
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(UnixStream::connect(&socket).await.unwrap());
    }
    connections_open(&p, max).await;
    let mut extra = UnixStream::connect(&socket).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("the connection over the cap is closed (without the cap it would be read for good)")
        .unwrap_or(0);
    assert_eq!(n, 0);
    ingest.stop();
    for mut s in held {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("stopping ingest ends every connection")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
}

/// The daemon's connection ends and no daemon comes back within the downtime threshold: the
/// processes it reported are taken as down (FREERUN); a daemon that comes back in time and
/// reports them up (as a restarted daemon does at once) makes no event.
#[tokio::test]
async fn a_daemon_gone_for_longer_than_the_downtime_threshold_is_freerun() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let p = producer(&dir.path().join("store")).await;
    let mut cfg = ingest_config(&socket);
    cfg.engine.downtime_threshold = Duration::from_millis(3000);
    let ingest = Ingest::start(p.hub.clone(), cfg).await.unwrap();
    let c = Consumer::start(Behaviour::Ok).await;
    let lock = "/cluster/node/node1/sync/ptp-status/lock-state";
    assert_eq!(subscribe(&p, lock, &c.url).await.status(), 201);
    let initial = c.count();
    let up = "ptp4l[1757326418]:[ptp4l.0.config] PTP_PROCESS_STATUS:1";
    let lines = [
        up,
        "ptp4l[1000.100]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
        "ptp4l[1000.200]: [ptp4l.0.config] master offset -5 s2 freq -1234 path delay 500",
    ];
    let mut daemon = UnixStream::connect(&socket).await.unwrap();
    write_lines(&mut daemon, &lines).await;
    let events = c.wait_for(initial + 1, Duration::from_secs(5)).await;
    assert_eq!(summary(&events[initial]), "lock-state LOCKED -5");

    // Gone (seen gone: no connection open) and back within the threshold, reporting ptp4l up:
    // nothing.
    drop(daemon);
    connections_open(&p, 0).await;
    let mut daemon = UnixStream::connect(&socket).await.unwrap();
    write_lines(&mut daemon, &[up]).await;
    // Past the threshold counted from the first connection's end: still nothing.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(
        c.count(),
        initial + 1,
        "a daemon back in time makes no event"
    );

    // Gone for good: FREERUN after the threshold, counted from when it was gone.
    let gone = std::time::Instant::now();
    drop(daemon);
    let events = c.wait_for(initial + 2, Duration::from_secs(10)).await;
    assert!(
        gone.elapsed() >= Duration::from_millis(3000),
        "FREERUN {:?} after the daemon left, before the threshold",
        gone.elapsed()
    );
    assert_eq!(
        summary(&events[initial + 1]),
        "lock-state FREERUN -9999999999999999"
    );
    ingest.stop();
    p.stop().await;
}
