//! Out-of-process consumers, and the loopback floor they are compared with.
//!
//! The consumers a user runs are other processes, on other cores. So the benchmark starts itself
//! again as `producer receive`: a separate process with one single-threaded Tokio runtime serving
//! HTTP/1.1 (hyper) on one port, where subscriber `i` is the path `/event/<i>` (1000 subscribers
//! are 1000 paths and 1000 kept-alive connections, as in the independent harness). When the
//! machine has at least two cores, the receiver is pinned to the last one (`taskset`) and the
//! benchmark (producer and the "daemon" writing the socket) to the others.
//!
//! Times are CLOCK_MONOTONIC nanoseconds, which both processes read from the same clock: the
//! receiver stamps the moment it has the whole POST body, before it answers 204. It keeps its
//! records until the benchmark asks for them on its stdin (`count`, `dump`, `clear`), so that
//! nothing is written while a measurement runs.
//!
//! The floor is measured against the same receiver in the same run: a minimal client (one
//! blocking `std::net::TcpStream`, keep-alive, the same request line, headers and body size as
//! the producer's POST) paced like the events, doing nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every process of the machine).
pub fn mono_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_REALTIME in nanoseconds since the epoch (what a CloudEvent's `time` is in).
pub fn real_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Pins the calling thread, and every thread it starts afterwards, to `cores`.
pub fn pin_self(cores: &[usize]) {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cores {
        set.set(c);
    }
    rustix::thread::sched_setaffinity(None, &set).expect("sched_setaffinity");
}

/// Where the producer's side and the receiver run: `None` when the machine has one core, or
/// when `BENCH_NO_PIN` is set (every process on every core, as an unpinned node runs them).
pub fn placement() -> Option<(Vec<usize>, usize)> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let has_taskset = Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let wanted = std::env::var_os("BENCH_NO_PIN").is_none();
    (wanted && n >= 2 && has_taskset).then(|| ((0..n - 1).collect(), n - 1))
}

/// One POST the receiver had: the subscriber's index, when its body was complete, whether it
/// was a FREERUN (`b'F'`) or LOCKED (`b'L'`) event (`b'?'` else), and the event's `time`.
#[derive(Debug, Clone)]
pub struct Record {
    pub path: u32,
    pub ns: u64,
    pub kind: u8,
    pub time: String,
}

/// The receiver process (`producer receive`): returns when its stdin closes.
pub fn receiver_main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records: Arc<Mutex<Vec<Record>>> = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let r = records.clone();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut out = std::io::BufWriter::new(std::io::stdout());
        for cmd in stdin.lock().lines() {
            let Ok(cmd) = cmd else { break };
            match cmd.trim() {
                "count" => writeln!(out, "{}", r.lock().unwrap().len()).unwrap(),
                "clear" => {
                    r.lock().unwrap().clear();
                    writeln!(out, "ok").unwrap();
                }
                "dump" => {
                    let taken = std::mem::take(&mut *r.lock().unwrap());
                    for rec in taken {
                        writeln!(
                            out,
                            "{} {} {} {}",
                            rec.path, rec.ns, rec.kind as char, rec.time
                        )
                        .unwrap();
                    }
                    writeln!(out, "end").unwrap();
                }
                other => panic!("receiver: unknown command {other:?}"),
            }
            out.flush().unwrap();
        }
        std::process::exit(0);
    });
    rt.block_on(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let records = records.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let records = records.clone();
                        async move {
                            let path = req
                                .uri()
                                .path()
                                .strip_prefix("/event/")
                                .and_then(|p| p.parse::<u32>().ok())
                                .unwrap_or(u32::MAX);
                            let body = http_body_util::BodyExt::collect(req.into_body())
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let ns = mono_ns();
                            records.lock().unwrap().push(Record {
                                path,
                                ns,
                                kind: kind_of(&body),
                                time: time_of(&body).to_owned(),
                            });
                            let mut resp =
                                hyper::Response::new(http_body_util::Empty::<Bytes>::new());
                            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn kind_of(body: &[u8]) -> u8 {
    if find(body, b"\"FREERUN\"").is_some() {
        b'F'
    } else if find(body, b"\"LOCKED\"").is_some() {
        b'L'
    } else {
        b'?'
    }
}

fn time_of(body: &[u8]) -> &str {
    let key = b"\"time\":\"";
    let Some(at) = find(body, key) else {
        return "-";
    };
    let rest = &body[at + key.len()..];
    let end = rest.iter().position(|b| *b == b'"').unwrap_or(0);
    std::str::from_utf8(&rest[..end]).unwrap_or("-")
}

/// The receiver process, seen from the benchmark.
pub struct Receiver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl Receiver {
    /// Starts `producer receive`, pinned to `core` when given.
    pub fn spawn(core: Option<usize>) -> Receiver {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match core {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c.to_string()).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .arg("receive")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the receiver's port");
        Receiver {
            child,
            stdin,
            stdout,
            port,
        }
    }

    /// The EndpointUri of subscriber `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}/event/{i}", self.port)
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// POSTs received since the last `clear`/`dump`.
    pub fn count(&mut self) -> usize {
        self.ask("count").parse().unwrap()
    }

    /// Forgets what was received.
    pub fn clear(&mut self) {
        assert_eq!(self.ask("clear"), "ok");
    }

    /// Takes what was received, in the order received.
    pub fn dump(&mut self) -> Vec<Record> {
        writeln!(self.stdin, "dump").unwrap();
        self.stdin.flush().unwrap();
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line == "end" {
                return out;
            }
            let mut f = line.splitn(4, ' ');
            out.push(Record {
                path: f.next().unwrap().parse().unwrap(),
                ns: f.next().unwrap().parse().unwrap(),
                kind: f.next().unwrap().as_bytes()[0],
                time: f.next().unwrap_or("-").to_owned(),
            });
        }
    }

    /// Waits (bounded) until `n` POSTs were received.
    pub fn wait_for(&mut self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// CPU seconds the receiver process used.
    pub fn cpu_seconds(&self) -> f64 {
        super::tasks_cpu_seconds(&format!("/proc/{}/task", self.child.id()), |_| true)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds the calling thread has run (kernel time included).
fn thread_cpu() -> f64 {
    super::schedstat_seconds(std::path::Path::new("/proc/thread-self/schedstat"))
}

/// The floor clients' POST of `body` to the receiver's path `/event/<path>`: the head the
/// producer writes, byte for byte but the user agent's version.
fn post_request(path: usize, port: u16, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /event/{path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\nuser-agent: ptp-events/0\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// The loopback floor: `n` POSTs of `body` paced at `rate`/s from a minimal blocking client over
/// one kept-alive connection to the receiver. Returns the sorted one-way times (write → the
/// receiver has the body) and round trips (write → the 204 read), in ms.
pub fn floor(recv: &mut Receiver, body: &[u8], n: usize, rate: f64) -> (Vec<f64>, Vec<f64>) {
    let req = post_request(1_000_000, recv.port, body);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", recv.port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 1024];
    let mut rtt = Vec::with_capacity(n);
    let mut sent = Vec::with_capacity(n);
    recv.clear();
    let start = Instant::now();
    for k in 0..n {
        super::pace(start, k, rate);
        let t0 = mono_ns();
        s.write_all(&req).unwrap();
        let mut got = 0;
        while find(&buf[..got], b"\r\n\r\n").is_none() {
            let r = s.read(&mut buf[got..]).unwrap();
            assert!(r > 0, "the receiver closed the floor's connection");
            got += r;
        }
        let t1 = mono_ns();
        assert!(buf.starts_with(b"HTTP/1.1 204"), "floor: not a 204");
        sent.push(t0);
        rtt.push((t1 - t0) as f64 / 1e6);
    }
    let recs = recv.dump();
    assert_eq!(recs.len(), n, "floor: POSTs missing at the receiver");
    let mut one_way: Vec<f64> = recs
        .iter()
        .zip(&sent)
        .map(|(r, t0)| (r.ns - t0) as f64 / 1e6)
        .collect();
    one_way.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rtt.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (one_way, rtt)
}

/// The floor of the socket leg: `n` lines of `line`'s length written at `rate`/s into a UNIX
/// stream socket whose other end a thread of this process waits on in a blocking `read` (on the
/// producer's cores, as the producer's reader). Returns the sorted times (us) from the `write`
/// to the reader's `read` returning.
pub fn socket_floor(line: &[u8], n: usize, rate: f64) -> Vec<f64> {
    use std::os::unix::net::UnixStream;
    let (mut w, mut r) = UnixStream::pair().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = Vec::with_capacity(n);
        while at.len() < n {
            let got = r.read(&mut buf).unwrap();
            assert!(got > 0);
            at.push(mono_ns());
        }
        at
    });
    let mut sent = Vec::with_capacity(n);
    let start = Instant::now();
    for k in 0..n {
        super::pace(start, k, rate);
        sent.push(mono_ns());
        w.write_all(line).unwrap();
    }
    let got = reader.join().unwrap();
    let mut us: Vec<f64> = got
        .iter()
        .zip(&sent)
        .map(|(r, s)| (r - s) as f64 / 1e3)
        .collect();
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    us
}

/// The CPU floor of a POST when many go out together, as the producer's do for one event: a
/// minimal blocking client with `conns` kept-alive connections to the receiver writes the POST
/// on every connection, then reads every 204, `rounds` times at `rate`/s. Returns its CPU per
/// POST (us, kernel included: on loopback the sender's side also runs much of the receiving
/// TCP's work).
pub fn burst_floor_cpu(
    recv: &mut Receiver,
    body: &[u8],
    conns: usize,
    rounds: usize,
    rate: f64,
) -> f64 {
    let mut streams: Vec<(std::net::TcpStream, Vec<u8>)> = (0..conns)
        .map(|i| {
            let s = std::net::TcpStream::connect(("127.0.0.1", recv.port)).unwrap();
            s.set_nodelay(true).unwrap();
            (s, post_request(2_000_000 + i, recv.port, body))
        })
        .collect();
    let mut buf = [0u8; 1024];
    let mut cpu = 0.0;
    let start = Instant::now();
    for k in 0..rounds {
        super::pace(start, k, rate);
        let c0 = thread_cpu();
        for (s, req) in &mut streams {
            s.write_all(req).unwrap();
        }
        for (s, _) in &mut streams {
            let mut got = 0;
            while find(&buf[..got], b"\r\n\r\n").is_none() {
                let r = s.read(&mut buf[got..]).unwrap();
                assert!(r > 0, "the receiver closed a floor connection");
                got += r;
            }
        }
        cpu += thread_cpu() - c0;
    }
    recv.wait_for(conns * rounds, Duration::from_secs(30));
    recv.clear();
    cpu * 1e6 / (conns * rounds) as f64
}
