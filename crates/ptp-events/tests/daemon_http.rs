//! The daemon's HTTP endpoints (Go's `:8081`), with the real binary supervising a stand-in
//! ptp4l: `/ready` follows the profile, the process and its output; `/emit-logs` publishes the
//! current state again; `/port-aliases` gives the interfaces' aliases.

mod common;
#[path = "../../proxy/tests/common/conns.rs"]
mod conns;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Kill, free_port, http_client, is_placeholder, proxy_command, recorder, subscribe_when_up,
    write_exec,
};

const NODE: &str = "node1";

async fn get(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http_client()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
        {
            Ok(r) => return (r.status().as_u16(), r.text().await.unwrap()),
            Err(e) => {
                assert!(Instant::now() < deadline, "daemon HTTP not up: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Polls `/ready` until its answer satisfies `want` (20 s at most); returns it.
async fn ready_until(port: u16, what: &str, want: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(port, "/ready").await;
        if want(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /ready still {status} {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `run/` and `bin/` under `dir`, with a stand-in ptp4l that prints nothing until the file
/// `go` exists, then a port state line and an offset every 100 ms.
fn stand_in(dir: &Path) {
    let p = |n: &str| dir.join(n);
    for d in ["run", "bin"] {
        std::fs::create_dir_all(p(d)).unwrap();
    }
    write_exec(
        &p("bin").join("ptp4l"),
        &format!(
            r#"#!/bin/sh
name=$(basename "$2")
while [ ! -e '{go}' ]; do sleep 0.05; done
echo "ptp4l[1.000]: [$name:5] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"
while :; do
  echo "ptp4l[2.000]: [$name:6] master offset 5 s2 freq 0 path delay 500"
  sleep 0.1
done
"#,
            go = p("go").display()
        ),
    );
}

const PROFILE: &str = r#"[{"name":"slave","interface":"ens1f0","ptp4lOpts":"-2 -s","ptp4lConf":"[global]\nslaveOnly 1\n"}]"#;

/// `ptp-events daemon` on `dir` (profile `profile.json`, stand-ins in `bin`), printing its
/// lines (collected in the returned buffer), HTTP on `http_addr`.
fn daemon(dir: &Path, http_addr: &str) -> (Kill, Arc<Mutex<String>>) {
    daemon_with(dir, http_addr, None)
}

/// [`daemon`], dialling the producer's `socket` when given.
fn daemon_with(dir: &Path, http_addr: &str, socket: Option<&Path>) -> (Kill, Arc<Mutex<String>>) {
    let p = |n: &str| dir.join(n);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ptp-events"));
    cmd.args(["daemon", "--node-name", NODE, "--stop-grace", "1"]);
    match socket {
        Some(s) => cmd.arg("--socket").arg(s),
        None => cmd.arg("--no-socket"),
    };
    let mut child = cmd
        .arg("--print-lines")
        .arg("--profile-file")
        .arg(p("profile.json"))
        .arg("--run-dir")
        .arg(p("run"))
        .arg("--bin-dir")
        .arg(p("bin"))
        .args(["--http-addr", http_addr])
        .args(["--poll-interval", "0.1"])
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut o = sink.lock().unwrap();
            o.push_str(&l);
            o.push('\n');
        }
    });
    (Kill(child), out)
}

/// `GET /ready` with `Connection: close` on a raw connection, read until the daemon closes it;
/// retried until the daemon listens (20 s at most).
async fn closed_probe(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "daemon HTTP not up: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("the daemon closes a Connection: close request")
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_emit_logs_and_port_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    stand_in(dir.path());
    let port = free_port();
    let (_daemon, out) = daemon(dir.path(), &format!("127.0.0.1:{port}"));
    let count = |needle: &str| out.lock().unwrap().matches(needle).count();

    // No profile file yet.
    let (status, body) = get(port, "/ready").await;
    assert_eq!(status, 503);
    assert!(body.contains("no profile applied yet"), "{body}");
    // ... and why, once the daemon has looked for it.
    ready_until(port, "the reason", |s, b| {
        s == 503 && b.contains("profile.json: cannot read")
    })
    .await;
    assert_eq!(get(port, "/port-aliases").await, (200, "{}".to_owned()));

    // A profile: ptp4l runs but has printed nothing.
    std::fs::write(p("profile.json"), PROFILE).unwrap();
    let (_, body) = ready_until(port, "ptp4l started", |_, b| b.contains("printed nothing")).await;
    assert!(body.contains("ptp4l (ptp4l.0.config)"), "{body}");
    let (status, aliases) = get(port, "/port-aliases").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&aliases).unwrap(),
        serde_json::json!({"ens1f0": "ens1fx"})
    );

    // It prints: ready.
    std::fs::write(p("go"), "").unwrap();
    let (status, body) = ready_until(port, "output", |s, _| s == 200).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    // /emit-logs publishes the current state again: the port state line once more.
    assert_eq!(count("UNCALIBRATED to SLAVE"), 1);
    let (status, body) = get(port, "/emit-logs").await;
    assert_eq!(status, 200);
    let n: usize = body
        .trim()
        .strip_prefix("emitted ")
        .and_then(|b| b.strip_suffix(" lines"))
        .unwrap()
        .parse()
        .unwrap();
    // The process status, the port state and the last offset.
    assert!(n >= 3, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while count("UNCALIBRATED to SLAVE") < 2 {
        assert!(
            Instant::now() < deadline,
            "not re-emitted:\n{}",
            out.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // ptp4l killed: not ready while it is down, nor after the restart until the new run has
    // printed (it stays silent until `go` exists again).
    std::fs::remove_file(p("go")).unwrap();
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &p("bin").join("ptp4l").display().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (_, body) = ready_until(port, "ptp4l killed", |s, _| s == 503).await;
    assert!(body.contains("is not running"), "{body}");
    ready_until(port, "ptp4l restarted, silent", |_, b| {
        b.contains("printed nothing")
    })
    .await;
    std::fs::write(p("go"), "").unwrap();
    ready_until(port, "ptp4l restarted, printing", |s, _| s == 200).await;
}

/// The endpoints are a convenience: a port already taken is logged and PTP supervision runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occupied_http_port_does_not_stop_supervision() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    std::fs::write(dir.path().join("go"), "").unwrap();
    std::fs::write(dir.path().join("profile.json"), PROFILE).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut d, out) = daemon(dir.path(), &taken.local_addr().unwrap().to_string());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.lock().unwrap().contains("master offset") {
        assert!(d.0.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "no ptp4l output");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The endpoints are reachable by every process in the node's network namespace: silent
/// connections beyond the cap (64, from one address too: every local client is 127.0.0.1) are
/// closed at once, the kept ones by the header read timeout (10 s); a client from another
/// address gets the slot of the idlest of them meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_capped_and_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    let port = free_port();
    let (_daemon, _out) = daemon(dir.path(), &format!("127.0.0.1:{port}"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Up, asked with `Connection: close` and read to its end: the daemon closed that connection
    // itself, so it no longer holds a slot when the silent ones come.
    closed_probe(addr).await;
    // Accepted in the order they connect: the first 64 are kept, the other 36 closed at once.
    let mut held = conns::open_silent(addr, 100).await;
    conns::expect_all_closed(&mut held[64..], Duration::from_secs(5), "over the cap").await;
    assert_eq!(
        conns::count_closed(&mut held[..64], Duration::from_millis(20)).await,
        0
    );
    ptp_events_client::install_crypto_provider();
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let resp = other
        .get(format!("http://127.0.0.1:{port}/port-aliases"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // It took the oldest silent connection's slot.
    conns::expect_all_closed(&mut held[..1], Duration::from_secs(5), "made room").await;
    let started = Instant::now();
    conns::expect_all_closed(&mut held, Duration::from_secs(15), "header read timeout").await;
    eprintln!(
        "daemon HTTP: 36 of 100 closed at once, 1 made room, the rest closed within {:?}",
        started.elapsed()
    );
    assert_eq!(get(port, "/port-aliases").await.0, 200);
}

/// The pod's pair: our daemon and our producer side by side, the producer asking the daemon's
/// API for the interface aliases as the Go producer does. The value ResourceAddress carries the
/// alias (`ens1fx`); with `--daemon-api off`, or with nothing answering there, the raw name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_publishes_the_daemons_interface_alias() {
    for (api, want) in [
        (Some(true), "ens1fx"),  // the daemon's API, as the pod has it
        (Some(false), "ens1f0"), // a port where nothing answers
        (None, "ens1f0"),        // --daemon-api off
    ] {
        let dir = tempfile::tempdir().unwrap();
        stand_in(dir.path());
        std::fs::write(dir.path().join("profile.json"), PROFILE).unwrap();
        let socket = dir.path().join("events.sock");
        let (http, port) = (free_port(), free_port());
        let daemon_api = match api {
            Some(true) => format!("http://127.0.0.1:{http}"),
            Some(false) => format!("http://127.0.0.1:{}", free_port()),
            None => "off".to_owned(),
        };
        let mut child = proxy_command(dir.path(), port)
            .arg("--socket")
            .arg(&socket)
            .arg("--ptp-config-dir")
            .arg(dir.path().join("run"))
            .args(["--daemon-api", &daemon_api])
            .env("LOG_LEVEL", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut o = sink.lock().unwrap();
                o.push_str(&l);
                o.push('\n');
            }
        });
        let _producer = Kill(child);
        let (endpoint, seen) = recorder(|v| {
            (!is_placeholder(v)).then(|| {
                v["data"]["values"][0]["ResourceAddress"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .await;
        subscribe_when_up(
            port,
            &format!("/cluster/node/{NODE}/sync/ptp-status/lock-state"),
            &endpoint,
            Duration::from_secs(20),
        )
        .await;
        let (_daemon, _out) = daemon_with(dir.path(), &format!("127.0.0.1:{http}"), Some(&socket));
        std::fs::write(dir.path().join("go"), "").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let ra = loop {
            if let Some(ra) = seen.lock().unwrap().first().cloned() {
                break ra;
            }
            assert!(
                Instant::now() < deadline,
                "no lock-state event ({daemon_api})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            ra,
            format!("/cluster/node/{NODE}/{want}/master"),
            "--daemon-api {daemon_api}"
        );
        // The producer's log has one line per published change, old → new.
        let want_line = format!("to=/cluster/node/{NODE}/{want}/master=LOCKED");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log.lock().unwrap().contains(&want_line) {
            assert!(
                Instant::now() < deadline,
                "no 'state change published' line with {want_line}: {}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `/ready` names a missing profile directory (the operator's ConfigMap not mounted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_a_missing_profile_directory() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    let port = free_port();
    let missing = dir.path().join("no-such-dir");
    let _daemon = Kill(
        Command::new(env!("CARGO_BIN_EXE_ptp-events"))
            .args(["daemon", "--node-name", NODE, "--no-socket"])
            .arg("--profile-file")
            .arg(missing.join(NODE))
            .arg("--run-dir")
            .arg(dir.path().join("run"))
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .env("LOG_LEVEL", "warn")
            .spawn()
            .unwrap(),
    );
    let want = format!("the profile directory {} does not exist", missing.display());
    ready_until(port, "the missing directory", |s, b| {
        s == 503 && b.contains(&want)
    })
    .await;
}
