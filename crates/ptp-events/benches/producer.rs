//! Producer benchmark (not a test): delivery latency, isolation, creation rate and memory.
//!
//! `cargo bench -p ptp-events --bench producer -- [latency|latency-oop|latency-tls|isolation|create|memory|all]`
//!
//! Latency is measured from the publication of an event into the producer's event source
//! (`Hub::publish`) to the moment the consumer's handler has read the whole POST body, over every
//! (event, healthy endpoint) pair, as the Go producer was measured (peer-performance.md) except for
//! the starting point (the socket ingest does not exist yet). Consumers run in the same process
//! on their own single-threaded runtime, on loopback; the producer has the other runtime.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use std::io::Write;

use proxy::{DeliveryConfig, Ingest, IngestConfig, Producer, ProducerConfig};
use ptp_state::EngineConfig;

#[path = "producer/oop.rs"]
mod oop;
#[path = "../../proxy/tests/common/pki.rs"]
mod pki;

type Log = Arc<Mutex<Vec<(Instant, Bytes)>>>;

struct Consumers {
    rt: tokio::runtime::Runtime,
}

impl Consumers {
    fn new() -> Self {
        Consumers {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("bench-consumer")
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// A consumer endpoint answering 204 after `delay`; records (receipt time, body). A lean
    /// hyper server (HTTP/1.1 keep-alive), so that the consumers' own cost weighs little in the
    /// measurement.
    fn start(&self, delay: Duration) -> (String, Log) {
        self.start_with(delay, None)
    }

    /// As [`Consumers::start`], over TLS with `tls` when given (an `https` EndpointUri).
    fn start_with(&self, delay: Duration, tls: Option<tokio_rustls::TlsAcceptor>) -> (String, Log) {
        let log: Log = Arc::default();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let l = log.clone();
        self.rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                let l = l.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let l = l.clone();
                            async move {
                                let body = http_body_util::BodyExt::collect(req.into_body())
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let now = Instant::now();
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                l.lock().unwrap().push((now, body));
                                let mut resp =
                                    hyper::Response::new(http_body_util::Empty::<Bytes>::new());
                                *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                .await;
                        }
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        (format!("{scheme}://{addr}/event"), log)
    }
}

fn producer_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::env::var("BENCH_WORKERS")
                .ok()
                .and_then(|w| w.parse().ok())
                .unwrap_or(2),
        )
        .thread_name("bench-producer")
        .enable_all()
        .build()
        .unwrap()
}

fn config(dir: &std::path::Path) -> ProducerConfig {
    ProducerConfig {
        node_name: "node1".into(),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        store_path: dir.to_path_buf(),
        uri_location_base: "http://localhost:9043".into(),
        delivery: DeliveryConfig::default(),
        max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
    }
}

/// TLS for the benchmark's consumers: an acceptor with a certificate for 127.0.0.1, and the
/// producer's delivery TLS trusting its CA (written under `dir`).
fn consumer_tls(
    dir: &std::path::Path,
) -> (tokio_rustls::TlsAcceptor, Arc<proxy::tls::DeliveryTls>) {
    use tokio_rustls::rustls;
    let ca = pki::ca("bench consumer CA");
    let leaf = pki::leaf(&ca, "bench consumer", true);
    let ca_file = dir.join("consumer-ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(
        rustls::pki_types::pem::PemObject::from_pem_slice(leaf.key_pem.as_bytes())
            .map(|k: rustls::pki_types::PrivatePkcs8KeyDer| k.secret_pkcs8_der().to_vec())
            .unwrap(),
    )
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der.clone()], key)
    .unwrap();
    let delivery = proxy::tls::DeliveryTls::open(proxy::tls::DeliveryTlsFiles {
        ca: ca_file,
        client_identity: None,
    })
    .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        Arc::new(delivery),
    )
}

fn subscribe(
    rt: &tokio::runtime::Runtime,
    api: SocketAddr,
    endpoint: &str,
    client: &reqwest::Client,
) {
    let status = rt.block_on(async {
        client
            .post(format!("http://{api}/api/ocloudNotifications/v2/subscriptions"))
            .body(format!(
                r#"{{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","EndpointUri":"{endpoint}"}}"#
            ))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 201, "subscribing {endpoint}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i]
}

/// The producer with its socket ingest, and the "daemon" end of the socket.
struct Rig {
    rt: tokio::runtime::Runtime,
    producer: Producer,
    daemon: std::os::unix::net::UnixStream,
    _ingest: Ingest,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_delivery(DeliveryConfig::default(), tempfile::tempdir().unwrap())
    }

    fn with_delivery(delivery: DeliveryConfig, dir: tempfile::TempDir) -> Rig {
        let rt = producer_rt();
        let mut cfg = config(&dir.path().join("store"));
        cfg.delivery = delivery;
        let producer = rt.block_on(Producer::start(cfg)).unwrap();
        let socket = dir.path().join("events.sock");
        let mut cfg = IngestConfig::new(EngineConfig::new("node1"));
        cfg.socket = Some(socket.clone());
        let ingest = rt
            .block_on(Ingest::start(producer.hub.clone(), cfg))
            .unwrap();
        let mut daemon = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        // Preamble: the slave port and a first locked sample (lock-state LOCKED).
        daemon
            .write_all(b"ptp4l[1000.000]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\nptp4l[1000.001]: [ptp4l.0.config] master offset -5 s2 freq -1234 path delay 500\n")
            .unwrap();
        Rig {
            rt,
            producer,
            daemon,
            _ingest: ingest,
            _dir: dir,
        }
    }

    fn stop(self) {
        self.rt.block_on(self.producer.stop());
    }
}

/// Writes `flips` daemon lines into the socket at `rate`/s, each alternately outside (FREERUN)
/// and inside (LOCKED) the +-100 ns thresholds, so that each makes a lock-state event (and a
/// sync-state event), and returns the sorted latencies (ms) from the line's `write()` to the
/// consumer's receipt over `healthy` (subscribed to lock-state: the k-th event is flip k).
fn run_flips(rig: &mut Rig, healthy: &[Log], flips: usize, rate: f64) -> Vec<f64> {
    let mut sent = Vec::with_capacity(flips);
    let start = Instant::now();
    for k in 0..flips {
        pace(start, k, rate);
        let line = flip_line(k);
        let at = Instant::now();
        rig.daemon.write_all(line.as_bytes()).unwrap();
        sent.push(at);
    }
    // Wait for every healthy consumer to have every event (bounded).
    let deadline = Instant::now() + Duration::from_secs(120);
    for log in healthy {
        while log.lock().unwrap().len() < flips && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut lat = Vec::new();
    let mut missing = 0;
    for log in healthy {
        let log = log.lock().unwrap();
        missing += flips.saturating_sub(log.len());
        for (i, (at, body)) in log.iter().enumerate().take(flips) {
            let ev = oran_api::CloudEvent::from_json(body).unwrap();
            let want = if i % 2 == 0 { "FREERUN" } else { "LOCKED" };
            assert_eq!(ev.data.values[0].value, want, "event {i} out of order");
            lat.push(at.duration_since(sent[i]).as_secs_f64() * 1e3);
        }
    }
    assert_eq!(missing, 0, "events missing at healthy consumers");
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat
}

fn latency(subscribers: usize, flips: usize, rate: f64) {
    latency_with(subscribers, flips, rate, false)
}

/// Latency with `subscribers` consumers, over TLS (`https` EndpointUris) when `tls`.
fn latency_with(subscribers: usize, flips: usize, rate: f64, tls: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, delivery) = if tls {
        let (a, d) = consumer_tls(dir.path());
        (
            Some(a),
            DeliveryConfig {
                tls: Some(d),
                ..DeliveryConfig::default()
            },
        )
    } else {
        (None, DeliveryConfig::default())
    };
    let mut rig = Rig::with_delivery(delivery, dir);
    let consumers = Consumers::new();
    let client = http_client();
    let mut logs = Vec::new();
    for _ in 0..subscribers {
        let (url, log) = consumers.start_with(Duration::ZERO, acceptor.clone());
        subscribe(&rig.rt, rig.producer.api_addr, &url, &client);
        logs.push(log);
    }
    // Let initial notifications settle, then measure from a clean log.
    std::thread::sleep(Duration::from_millis(300));
    for l in &logs {
        l.lock().unwrap().clear();
    }
    let cpu0 = cpu_seconds();
    let prod0 = thread_cpu_seconds("bench-producer");
    let lat = run_flips(&mut rig, &logs, flips, rate);
    let cpu = cpu_seconds() - cpu0;
    let prod = thread_cpu_seconds("bench-producer") - prod0;
    println!(
        "latency{} subscribers={subscribers:<5} flips={flips} rate={rate}/s  p50={:.3} ms  p99={:.3} ms  max={:.3} ms  (n={}, CPU per flip: producer {:.2} ms, whole process incl. consumers {:.2} ms)",
        if tls { "-tls" } else { "" },
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len(),
        prod * 1e3 / flips as f64,
        cpu * 1e3 / flips as f64
    );
    rig.stop();
}

/// An endpoint that answers one POST (the initial notification) with 204 on one connection
/// (closed after it), then stops listening: every later connection is refused.
fn dead_after_one(consumers: &Consumers) -> String {
    let listener = consumers
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    consumers.rt.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        drop(listener);
        let svc = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
            let mut resp = hyper::Response::new(http_body_util::Empty::<Bytes>::new());
            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
            Ok::<_, std::convert::Infallible>(resp)
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
            .await;
    });
    format!("http://{addr}/event")
}

fn isolation() {
    for with_bad in [false, true] {
        let mut rig = Rig::new();
        let consumers = Consumers::new();
        let client = http_client();
        let mut logs = Vec::new();
        for _ in 0..10 {
            let (url, log) = consumers.start(Duration::ZERO);
            subscribe(&rig.rt, rig.producer.api_addr, &url, &client);
            logs.push(log);
        }
        let mut keep = Vec::new();
        if with_bad {
            // One that answers every POST after 1.5 s (its initial notification too, which the
            // 2 s initial-notification timeout allows).
            let (slow_url, slow_log) = consumers.start(Duration::from_millis(1500));
            keep.push(slow_log);
            subscribe(&rig.rt, rig.producer.api_addr, &slow_url, &client);
            // One dead: answers the initial notification, then refuses connections.
            subscribe(
                &rig.rt,
                rig.producer.api_addr,
                &dead_after_one(&consumers),
                &client,
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        for l in &logs {
            l.lock().unwrap().clear();
        }
        let lat = run_flips(&mut rig, &logs, 200, 20.0);
        println!(
            "isolation 10 healthy{}  healthy p50={:.3} ms  p99={:.3} ms  max={:.3} ms  (n={})",
            if with_bad {
                " + 1 slow (1.5 s) + 1 dead"
            } else {
                " (control)            "
            },
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            lat.last().copied().unwrap_or(f64::NAN),
            lat.len()
        );
        rig.stop();
    }
}

fn create() {
    for clients in [1usize, 16] {
        let dir = tempfile::tempdir().unwrap();
        let rt = producer_rt();
        let consumers = Consumers::new();
        let producer = rt.block_on(Producer::start(config(dir.path()))).unwrap();
        let (url, _log) = consumers.start(Duration::ZERO);
        let api = producer.api_addr;
        let total = 2000;
        let start = Instant::now();
        rt.block_on(async {
            let client = http_client();
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (client, next, url) = (client.clone(), next.clone(), url.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= total {
                            break;
                        }
                        let r = client
                            .post(format!("http://{api}/api/ocloudNotifications/v2/subscriptions"))
                            .body(format!(
                                r#"{{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","EndpointUri":"{url}?n={i}"}}"#
                            ))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 201);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "create {total} subscriptions (each with its initial notification, fsync'd) with {clients:>2} client(s): {:.0}/s",
            total as f64 / secs
        );
        rt.block_on(producer.stop());
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn memory() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
        .args([
            "proxy",
            "--api-bind",
            "127.0.0.1",
            "--metrics-addr",
            "off",
            "--socket",
            "off",
            "--max-subscriptions",
            "20000",
            "--max-subscriptions-per-host",
            "20000",
        ])
        .args(["--api-port", &port.to_string()])
        .arg("--store-path")
        .arg(dir.path())
        .env("NODE_NAME", "node1")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let rt = producer_rt();
    let consumers = Consumers::new();
    let (url, _log) = consumers.start(Duration::ZERO);
    let api = format!("http://127.0.0.1:{port}/api/ocloudNotifications/v2");
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = http_client().get(format!("{api}/health")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_kib(child.id());
    let total = 10_000;
    let start = Instant::now();
    rt.block_on(async {
        let client = http_client();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, next, url, api) = (client.clone(), next.clone(), url.clone(), api.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    let r = client
                        .post(format!("{api}/subscriptions"))
                        .body(format!(
                            r#"{{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","EndpointUri":"{url}?n={i}"}}"#
                        ))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let full = rss_kib(child.id());
    println!(
        "memory (real binary, VmRSS): idle {:.1} MiB; with {total} subscriptions {:.1} MiB (created at {:.0}/s with 16 clients)",
        idle as f64 / 1024.0,
        full as f64 / 1024.0,
        total as f64 / secs
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    tasks_cpu_seconds("/proc/self/task", |comm| comm.starts_with(prefix))
}

/// CPU seconds run by the threads under `tasks` (a `/proc/<pid>/task` directory) that `pick`
/// takes by name, from `schedstat` (nanoseconds, kernel time included), not from the 10 ms
/// ticks of `stat`: a flip costs well under one tick.
fn tasks_cpu_seconds(tasks: &str, pick: impl Fn(&str) -> bool) -> f64 {
    let mut total = 0.0;
    for t in std::fs::read_dir(tasks).unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !pick(comm.trim_end()) {
            continue;
        }
        total += schedstat_seconds(&t.path().join("schedstat"));
    }
    total
}

/// The CPU seconds a task's `schedstat` file says it has run (0 when it cannot be read).
fn schedstat_seconds(path: &std::path::Path) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0) as f64
        / 1e9
}

/// Sleeps until the `k`-th moment of a series paced at `rate`/s from `start` (at once when late).
fn pace(start: Instant, k: usize, rate: f64) {
    let due = start + Duration::from_secs_f64(k as f64 / rate);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Latency with `subscribers` consumers out of process (see `oop.rs`), beside the loopback
/// floor measured in the same run, with the producer's CPU per delivered POST.
fn latency_oop(subscribers: usize, flips: usize, rate: f64) {
    let place = oop::placement();
    let all: Vec<usize> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    if let Some((producer_cores, _)) = &place {
        oop::pin_self(producer_cores);
    }
    let mut recv = oop::Receiver::spawn(place.as_ref().map(|p| p.1));
    // The floor, with a body the size of the producer's lock-state events.
    let sample = oran_api::CloudEvent::new(
        oran_api::Resource::LockState,
        "0b1c0e6c-1b7e-4a4e-9a51-9f2c1d0e4b11".into(),
        oran_api::EventTime::now(),
        vec![
            oran_api::Value::notification("/cluster/node/node1/ens1f0/master", "LOCKED"),
            oran_api::Value::metric("/cluster/node/node1/ens1f0/master", -5),
        ],
    )
    .to_json();
    let (one_way, rtt) = oop::floor(&mut recv, sample.as_bytes(), flips, rate);
    let socket_floor = oop::socket_floor(flip_line(1).as_bytes(), flips, rate);
    let floor_cpu =
        oop::burst_floor_cpu(&mut recv, sample.as_bytes(), subscribers.min(100), 50, rate);

    let mut rig = Rig::new();
    let client = http_client();
    for i in 0..subscribers {
        subscribe(&rig.rt, rig.producer.api_addr, &recv.url(i), &client);
    }
    recv.wait_for(subscribers, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    recv.clear();
    let prod0 = thread_cpu_seconds("bench-producer");
    let recv0 = recv.cpu_seconds();
    let mut sent = Vec::with_capacity(flips);
    let start = Instant::now();
    for k in 0..flips {
        pace(start, k, rate);
        let line = flip_line(k);
        let (mono, real) = (oop::mono_ns(), oop::real_ns());
        rig.daemon.write_all(line.as_bytes()).unwrap();
        sent.push((mono, real));
    }
    recv.wait_for(flips * subscribers, Duration::from_secs(120));
    let prod = thread_cpu_seconds("bench-producer") - prod0;
    let recv_cpu = recv.cpu_seconds() - recv0;
    let records = recv.dump();
    assert_eq!(
        records.len(),
        flips * subscribers,
        "events missing at the receiver"
    );
    let mut seen = vec![0usize; subscribers];
    let mut lat = Vec::with_capacity(records.len());
    // The first flip is also where every endpoint's delivery connection is opened; its worst
    // case is reported apart, and the percentiles are over every flip.
    let mut first_flip_max = 0f64;
    let mut to_event = Vec::with_capacity(flips);
    for r in &records {
        let i = r.path as usize;
        let k = seen[i];
        seen[i] += 1;
        let want = if k.is_multiple_of(2) { b'F' } else { b'L' };
        assert_eq!(r.kind, want, "subscriber {i}: event {k} out of order");
        let l = (r.ns - sent[k].0) as f64 / 1e6;
        lat.push(l);
        if k == 0 {
            first_flip_max = first_flip_max.max(l);
        }
        if i == 0 {
            let t = chrono::DateTime::parse_from_rfc3339(&r.time)
                .expect("the event's time")
                .timestamp_nanos_opt()
                .unwrap();
            to_event.push((t - sent[k].1) as f64 / 1e3);
        }
    }
    for v in [&mut lat, &mut to_event] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    let posts = (flips * subscribers) as f64;
    let (fp99, rp99) = (percentile(&one_way, 99.0), percentile(&rtt, 99.0));
    println!(
        "latency-oop subscribers={subscribers:<5} flips={flips} rate={rate}/s  p50={:.3} ms  p99={:.3} ms  max={:.3} ms  first flip max={:.3} ms  (n={}; {})",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
        first_flip_max,
        lat.len(),
        match &place {
            Some((p, r)) => format!("producer on cores {p:?}, receiver on core {r}"),
            None => "not pinned".into(),
        }
    );
    println!(
        "  floor (minimal client, same receiver): one-way p50={:.3} p99={:.3} ms, round trip p50={:.3} p99={:.3} ms; our p99 = {:.1}x the one-way floor p99, {:.1}x the round-trip floor p99",
        percentile(&one_way, 50.0),
        fp99,
        percentile(&rtt, 50.0),
        rp99,
        percentile(&lat, 99.0) / fp99,
        percentile(&lat, 99.0) / rp99,
    );
    println!(
        "  socket line -> CloudEvent time: p50={:.1} us  p99={:.1} us (socket floor: write -> a blocked reader's read p50={:.1} p99={:.1} us);  producer CPU: {:.1} us per flip (2 events), {:.2} us per delivered POST (the floor's client, POSTs on {} connections at once: {:.2} us per POST); receiver CPU {:.2} us per POST",
        percentile(&to_event, 50.0),
        percentile(&to_event, 99.0),
        percentile(&socket_floor, 50.0),
        percentile(&socket_floor, 99.0),
        prod * 1e6 / flips as f64,
        prod * 1e6 / posts,
        subscribers.min(100),
        floor_cpu,
        recv_cpu * 1e6 / posts,
    );
    rig.stop();
    drop(recv);
    oop::pin_self(&all);
}

/// The `k`-th flip's daemon line: alternately outside (FREERUN) and inside (LOCKED) +-100 ns.
fn flip_line(k: usize) -> String {
    let offset = if k.is_multiple_of(2) {
        1000 + k as i64
    } else {
        (k % 199) as i64 - 99
    };
    format!(
        "ptp4l[{}.{:03}]: [ptp4l.0.config] master offset {offset} s2 freq -1234 path delay 500\n",
        1001 + k / 1000,
        k % 1000
    )
}

fn main() {
    let what = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "all".into());
    if what == "receive" {
        oop::receiver_main();
        return;
    }
    let all = what == "all";
    if all || what == "latency" || what == "latency1" {
        latency(1, 200, 20.0);
    }
    if all || what == "latency" || what == "latency100" {
        latency(100, 200, 20.0);
    }
    if all || what == "latency" || what == "latency1000" {
        latency(1000, 200, 20.0);
    }
    if all || what == "latency-oop" || what == "latency-oop1" {
        latency_oop(1, 200, 20.0);
    }
    if all || what == "latency-oop" || what == "latency-oop100" {
        latency_oop(100, 200, 20.0);
    }
    if all || what == "latency-oop" || what == "latency-oop1000" {
        latency_oop(1000, 200, 20.0);
    }
    if all || what == "latency-tls" || what == "latency-tls1" {
        latency_with(1, 200, 20.0, true);
    }
    if all || what == "latency-tls" || what == "latency-tls100" {
        latency_with(100, 200, 20.0, true);
    }
    if all || what == "isolation" {
        isolation();
    }
    if all || what == "create" {
        create();
    }
    if all || what == "memory" {
        memory();
    }
}

/// A reqwest client (the SDK installs the TLS provider reqwest is built without).
fn http_client() -> reqwest::Client {
    ptp_events_client::install_crypto_provider();
    reqwest::Client::new()
}
