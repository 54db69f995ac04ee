//! The daemon's gpsd client against a real gpsd (Debian's 3.22) fed by gpsfake with NMEA logs
//! the test generates, and against stand-ins that close or stall. Needs `gpsd` and
//! `gpsd-clients` (skipped with the reason otherwise; required under `CI=true`).

mod common;

use std::time::{Duration, Instant};

use common::{free_tcp_port, gpsd_prerequisites};
use daemon::gpsd::Gpsfake;
use daemon::gpsd::{self, Event, Report};
use ptp_state::tgm::{TgmMachine, TgmParams};
use tokio::sync::{mpsc, watch};

fn skip() -> bool {
    match gpsd_prerequisites() {
        Ok(()) => false,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {why}"
            );
            println!("SKIPPED the gpsd tests: {why}");
            true
        }
    }
}

/// The next event satisfying `pred` within `limit`.
async fn next(
    rx: &mut mpsc::Receiver<Event>,
    limit: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("client stopped"),
            Err(_) => panic!("nothing within {limit:?}"),
        }
    }
}

fn tpv(mode: u8) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Report(Report::Tpv { mode: m, .. }) if *m == mode)
}

#[tokio::test]
async fn fix_loss_restart_and_time_error_from_a_real_gpsd() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    // 6 s of 3D fix, then no fix: replayed once (gpsd exits at the end of the log).
    let mut seconds = vec![true; 6];
    seconds.extend([false; 8]);
    let mut fake = Gpsfake::start(dir.path(), "loss", port, &seconds, true).expect("gpsfake");
    let (tx, mut rx) = mpsc::channel(64);
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(gpsd::run(format!("127.0.0.1:{port}"), tx, stop_rx));

    // (gpsd's first 3D reports may come before it has a time, without `ept`)
    let e = next(&mut rx, Duration::from_secs(15), |e| {
        matches!(
            e,
            Event::Report(Report::Tpv {
                mode: 3,
                ept: Some(_),
                ..
            })
        )
    })
    .await;
    let Event::Report(r) = e else { unreachable!() };
    let reading = r.reading(200).unwrap();
    // NMEA gives gpsd's fixed estimate of the time error: 5 ms.
    assert_eq!(reading.time_error_ns, Some(5_000_000.0));
    // A threshold above it: GNSSAvailable; below it: a fix with a too large time error.
    let mut ok = TgmMachine::new(
        TgmParams {
            gnss_offset_threshold_ns: 10_000_000.0,
            ..TgmParams::default()
        },
        true,
    );
    ok.gnss(reading, 1);
    assert!(ok.gnss_available(1));
    let mut strict = TgmMachine::new(
        TgmParams {
            gnss_offset_threshold_ns: 1_000_000.0,
            ..TgmParams::default()
        },
        true,
    );
    strict.gnss(reading, 1);
    assert!(!strict.gnss_available(1), "5 ms is above a 1 ms threshold");

    // The fix is lost: gpsd reports mode 1.
    let lost = next(&mut rx, Duration::from_secs(10), tpv(1)).await;
    let Event::Report(r) = lost else {
        unreachable!()
    };
    ok.gnss(r.reading(200).unwrap(), 2);
    assert!(!ok.gnss_available(2));

    // gpsd killed (gpsfake and its gpsd, SIGKILL): the client says so at once (a GNSS loss),
    // never hangs.
    fake.kill();
    let t = Instant::now();
    next(&mut rx, Duration::from_secs(5), |e| {
        matches!(e, Event::Down(_))
    })
    .await;
    println!("gpsd gone: reported {:.2?} after the kill", t.elapsed());

    // A new gpsd on the same port: the client reconnects and reports the fix again.
    let _fake = Gpsfake::start(dir.path(), "again", port, &[true; 4], false).expect("gpsfake");
    let t = Instant::now();
    next(&mut rx, Duration::from_secs(15), tpv(3)).await;
    println!(
        "reports again {:.2?} after the new gpsd started",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_gpsd_that_closes_or_stalls_is_a_loss_never_a_hang() {
    // Stand-ins for a broken gpsd (no real one is needed for these).
    let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing_addr = closing.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = closing.accept().await.unwrap();
            drop(s);
        }
    });
    let (tx, mut rx) = mpsc::channel(64);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(gpsd::run(closing_addr.to_string(), tx, stop_rx.clone()));
    match next(&mut rx, Duration::from_secs(5), |_| true).await {
        Event::Down(why) => assert!(why.contains("closed"), "{why}"),
        other => panic!("{other:?}"),
    }
    // And again after RETRY: it keeps trying, one event per attempt.
    next(&mut rx, Duration::from_secs(5), |e| {
        matches!(e, Event::Down(_))
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops at once")
        .unwrap();

    // A gpsd that accepts and says nothing (nor reads): no report ever; the machine's silence
    // bound makes it a loss; stopping the client does not wait for the silent peer.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = silent.accept().await.unwrap();
            held.push(s);
        }
    });
    let (tx, mut rx) = mpsc::channel(64);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(gpsd::run(silent_addr.to_string(), tx, stop_rx));
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err(),
        "nothing from a silent gpsd"
    );
    let mut m = TgmMachine::new(TgmParams::default(), true);
    assert!(!m.gnss_available(2_000_000_000));
    assert_eq!(m.tick(2_000_000_000), None, "Free-Run stays");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops at once")
        .unwrap();

    // Nothing listening at all.
    let port = free_tcp_port();
    let (tx, mut rx) = mpsc::channel(64);
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(gpsd::run(format!("127.0.0.1:{port}"), tx, stop_rx));
    match next(&mut rx, Duration::from_secs(5), |_| true).await {
        Event::Down(why) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("{other:?}"),
    }
}
