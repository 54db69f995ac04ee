//! Ingest: linuxptp-daemon lines in, state changes published to the [`Hub`].
//!
//! Lines arrive over the Go `linuxptp-daemon` socket protocol (newline-terminated text on a UNIX
//! stream socket, default `/cloud-native/events.sock`, any number of daemon connections over
//! time) or over an in-process channel (the all-in-one shape). One task owns the
//! [`ptp_state::Engine`]: it feeds every line with the time it arrived, fires the engine's timers
//! (holdover, process-down debounce) at their deadlines, and publishes each change. The same
//! engine answers CurrentState and renders the `openshift_ptp_*` metrics, through
//! [`StateSource`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oran_api::{EventTime, Resource, Value};
use ptp_state::{Change, Engine, EngineConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::hub::{Hub, StateSource};

/// The longest line accepted; longer ones are skipped (and counted), never buffered whole.
pub const MAX_LINE: usize = 64 * 1024;

/// How lines reach the producer.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The engine's configuration (node, profiles, aliases, downtime threshold).
    pub engine: EngineConfig,
    /// The UNIX socket to listen on (`None`: in-process only).
    pub socket: Option<PathBuf>,
    /// The daemon's HTTP API (`http://localhost:8081` next to the Go daemon): on every new socket
    /// connection `GET /emit-logs` asks it to replay the current state, and `GET /port-aliases`
    /// gives the interface aliases. `None`: not asked.
    pub daemon_api: Option<url::Url>,
    /// Lines buffered between the readers and the engine (readers wait when it is full).
    pub channel_capacity: usize,
    /// Told of every line the engine takes and every change it makes (a live picture of the
    /// node: the lab's web page); `None`: nothing extra is done per line.
    pub observer: Option<Arc<dyn IngestObserver>>,
}

/// Watches the engine's input and output (see [`IngestConfig::observer`]). Called on the engine
/// task: keep it short.
pub trait IngestObserver: Send + Sync + std::fmt::Debug {
    /// A line, at `at` ns since ingest started.
    fn line(&self, line: &str, at: u64);
    /// A change the engine made at `at`, caused by `line` (`None`: a timer).
    fn change(&self, change: &Change, at: u64, line: Option<&str>);
}

impl IngestConfig {
    /// In-process only, for `node`, with defaults.
    pub fn new(engine: EngineConfig) -> Self {
        IngestConfig {
            engine,
            socket: None,
            daemon_api: None,
            channel_capacity: 16 * 1024,
            observer: None,
        }
    }
}

/// Why ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The socket could not be bound.
    #[error("cannot listen on the daemon socket (--socket) {path}: {message}")]
    Socket {
        /// The socket path.
        path: String,
        /// What went wrong, and what to do.
        message: String,
    },
}

#[derive(Default)]
struct Counters {
    lines: AtomicU64,
    oversized: AtomicU64,
    connections: AtomicU64,
    connections_open: AtomicU64,
}

/// The engine as the hub's [`StateSource`].
struct EngineSource {
    engine: Arc<Mutex<Engine>>,
    counters: Arc<Counters>,
}

impl StateSource for EngineSource {
    fn current(&self, resource: Resource) -> Option<Vec<Value>> {
        self.engine.lock().expect("engine lock").current(resource)
    }

    fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let engine = self.engine.lock().expect("engine lock");
        engine.render_metrics(out);
        let stats = engine.stats();
        let (parsed, skipped) = (stats.parsed(), stats.skipped());
        drop(engine);
        let c = &self.counters;
        let _ = write!(
            out,
            "# HELP cne_ingest_lines_total Daemon lines received, by how the state engine took them\n\
             # TYPE cne_ingest_lines_total counter\n\
             cne_ingest_lines_total{{result=\"parsed\"}} {parsed}\n\
             cne_ingest_lines_total{{result=\"skipped\"}} {skipped}\n\
             cne_ingest_lines_total{{result=\"oversized\"}} {}\n\
             # HELP cne_ingest_connections_total Daemon socket connections accepted\n\
             # TYPE cne_ingest_connections_total counter\n\
             cne_ingest_connections_total {}\n\
             # HELP cne_ingest_connections_open Daemon socket connections open now\n\
             # TYPE cne_ingest_connections_open gauge\n\
             cne_ingest_connections_open {}\n",
            c.oversized.load(Ordering::Relaxed),
            c.connections.load(Ordering::Relaxed),
            c.connections_open.load(Ordering::Relaxed),
        );
    }
}

/// A handle to feed lines in-process. Cheap to clone.
#[derive(Clone)]
pub struct LineSender {
    tx: mpsc::Sender<String>,
    counters: Arc<Counters>,
}

impl LineSender {
    /// Sends one line (without its newline); waits while the engine is behind. Returns `false`
    /// once ingest has stopped.
    pub async fn send(&self, line: impl Into<String>) -> bool {
        self.counters.lines.fetch_add(1, Ordering::Relaxed);
        self.tx.send(line.into()).await.is_ok()
    }
}

/// Running ingest.
pub struct Ingest {
    engine: Arc<Mutex<Engine>>,
    sender: LineSender,
    socket: Option<crate::uds::BoundPath>,
    tasks: Vec<JoinHandle<()>>,
}

impl Ingest {
    /// Starts the engine task (and the socket listener when configured) and plugs the engine into
    /// `hub` as its state source.
    pub async fn start(hub: Arc<Hub>, cfg: IngestConfig) -> Result<Ingest, IngestError> {
        let engine = Arc::new(Mutex::new(Engine::new(cfg.engine)));
        let counters = Arc::new(Counters::default());
        hub.set_state_source(Arc::new(EngineSource {
            engine: engine.clone(),
            counters: counters.clone(),
        }));
        let (tx, rx) = mpsc::channel(cfg.channel_capacity.max(1));
        let sender = LineSender {
            tx,
            counters: counters.clone(),
        };
        let mut tasks = vec![tokio::spawn(run_engine(
            engine.clone(),
            hub,
            rx,
            cfg.observer.clone(),
        ))];
        let mut socket = None;
        if let Some(path) = &cfg.socket {
            let (listener, bound) = bind_socket(path).await?;
            socket = Some(bound);
            tracing::info!(socket = %path.display(), "listening for linuxptp-daemon lines");
            tasks.push(tokio::spawn(accept(
                listener,
                sender.clone(),
                cfg.daemon_api.clone(),
                engine.clone(),
            )));
        }
        Ok(Ingest {
            engine,
            sender,
            socket,
            tasks,
        })
    }

    /// The in-process line channel.
    pub fn sender(&self) -> LineSender {
        self.sender.clone()
    }

    /// Forwards every line of `rx` (e.g. the daemon's in-process channel) into the engine.
    pub fn attach(&mut self, mut rx: mpsc::Receiver<String>) {
        let sender = self.sender.clone();
        self.tasks.push(tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if !sender.send(line).await {
                    return;
                }
            }
        }));
    }

    /// The engine (to learn profiles or aliases).
    pub fn engine(&self) -> Arc<Mutex<Engine>> {
        self.engine.clone()
    }

    /// Stops listening and removes the socket file.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
        if let Some(bound) = self.socket {
            bound.remove();
        }
    }
}

/// Binds the socket; a stale socket (nobody accepting) is replaced, a live one or any other kind
/// of file at the path is an error and is left untouched.
async fn bind_socket(path: &Path) -> Result<(UnixListener, crate::uds::BoundPath), IngestError> {
    let err = |message: String| IngestError::Socket {
        path: path.display().to_string(),
        message,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        // Only the socket's own directory is created (`/cloud-native` in a pod): a mistyped path
        // is an error, not a tree of new directories.
        if !dir.is_dir() {
            std::fs::create_dir(dir).map_err(|e| {
                err(format!(
                    "cannot create its directory {} (only the last directory is created): {e}",
                    dir.display()
                ))
            })?;
        }
    }
    crate::uds::bind_listener(path).await.map_err(err)
}

async fn accept(
    listener: UnixListener,
    sender: LineSender,
    daemon_api: Option<url::Url>,
    engine: Arc<Mutex<Engine>>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "daemon socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let c = &sender.counters;
        c.connections.fetch_add(1, Ordering::Relaxed);
        c.connections_open.fetch_add(1, Ordering::Relaxed);
        tracing::info!("daemon connected");
        let sender = sender.clone();
        let daemon_api = daemon_api.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            // The aliases first (at most 2 s; the daemon's lines wait in the socket meanwhile),
            // so that the first events already carry them; then the replay request.
            if let Some(api) = daemon_api.clone()
                && ask_aliases(&api, &engine).await
            {
                tokio::spawn(async move { ask_replay(api).await });
            }
            read_lines(stream, &sender, daemon_api.as_ref().map(|a| (a, &engine))).await;
            sender
                .counters
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            tracing::info!("daemon disconnected");
        });
    }
}

/// Reads newline-terminated lines; a line longer than [`MAX_LINE`] is skipped to its newline
/// without being buffered whole.
/// With the daemon's API, a `CMD RESTART` (a new profile set, maybe new interfaces) asks for the
/// aliases again before it is passed on: the first connection often comes before the daemon's
/// first profile is applied, when it has no interfaces to name yet.
async fn read_lines(
    stream: UnixStream,
    sender: &LineSender,
    daemon: Option<(&url::Url, &Arc<Mutex<Engine>>)>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut oversized = false;
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "daemon socket read failed");
                break;
            }
        };
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !oversized {
            if line.len() + chunk.len() > MAX_LINE {
                oversized = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            if oversized {
                sender.counters.oversized.fetch_add(1, Ordering::Relaxed);
            } else {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line));
                if let Some((api, engine)) = daemon
                    && text == "CMD RESTART"
                {
                    ask_aliases(api, engine).await;
                }
                if !sender.send(text.into_owned()).await {
                    return;
                }
            }
            line.clear();
            oversized = false;
        }
    }
}

/// Asks the daemon for its interface aliases and a replay of the current state.
/// When the daemon's API last failed to answer (unix ms; 0: never): it is not asked again for
/// [`DAEMON_API_RETRY`], and its absence is logged once (as the Go producer: raw names, quiet).
static DAEMON_API_FAILED_AT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static DAEMON_API_ABSENCE_LOGGED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
const DAEMON_API_RETRY: Duration = Duration::from_secs(10);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `GET /port-aliases`: true when the daemon's API answered (worth asking for the replay).
async fn ask_aliases(api: &url::Url, engine: &Arc<Mutex<Engine>>) -> bool {
    let failed = DAEMON_API_FAILED_AT.load(Ordering::Relaxed);
    if failed != 0 && unix_ms().saturating_sub(failed) < DAEMON_API_RETRY.as_millis() as u64 {
        tracing::debug!("daemon API failed moments ago; not asked");
        return false;
    }
    let Ok(u) = api.join("port-aliases") else {
        return false;
    };
    match crate::sender::get(&u, Duration::from_secs(2)).await {
        Ok((status, body)) if status.is_success() => {
            match serde_json::from_slice::<HashMap<String, String>>(&body) {
                Ok(aliases) => {
                    tracing::info!(count = aliases.len(), "interface aliases from the daemon");
                    engine.lock().expect("engine lock").set_aliases(aliases);
                }
                Err(e) => tracing::warn!(error = %e, "daemon /port-aliases is not a JSON object"),
            }
            true
        }
        Ok((status, _)) => {
            tracing::warn!(status = status.as_u16(), "daemon /port-aliases failed");
            true
        }
        Err(e) => {
            DAEMON_API_FAILED_AT.store(unix_ms(), Ordering::Relaxed);
            if !DAEMON_API_ABSENCE_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::info!(api = %api, error = %e, "the daemon's API does not answer; raw interface names are used (said once)");
            } else {
                tracing::debug!(error = %e, "daemon /port-aliases unavailable");
            }
            false
        }
    }
}

/// `GET /emit-logs`: the daemon replays its state on the socket.
async fn ask_replay(api: url::Url) {
    let Ok(u) = api.join("emit-logs") else { return };
    match crate::sender::get(&u, Duration::from_secs(5)).await {
        Ok((status, _)) if status.is_success() => {
            tracing::info!("asked the daemon to replay its state")
        }
        Ok((status, _)) => tracing::warn!(status = status.as_u16(), "daemon /emit-logs failed"),
        Err(e) => {
            DAEMON_API_FAILED_AT.store(unix_ms(), Ordering::Relaxed);
            tracing::debug!(error = %e, "daemon /emit-logs unavailable")
        }
    }
}

async fn run_engine(
    engine: Arc<Mutex<Engine>>,
    hub: Arc<Hub>,
    mut rx: mpsc::Receiver<String>,
    observer: Option<Arc<dyn IngestObserver>>,
) {
    let start = Instant::now();
    let now = || start.elapsed().as_nanos() as u64;
    let mut changes: Vec<Change> = Vec::new();
    let mut batch: Vec<String> = Vec::with_capacity(256);
    loop {
        let deadline = engine.lock().expect("engine lock").next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until((start + Duration::from_nanos(d)).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    return;
                }
                let t = now();
                // Which changes each line made, for the observer, told after the engine's lock
                // is released (an observer never delays the engine's other users).
                let mut spans: Vec<(usize, usize)> = Vec::new();
                {
                    let mut e = engine.lock().expect("engine lock");
                    for line in &batch {
                        let before = changes.len();
                        e.feed(line, t, &mut changes);
                        if observer.is_some() {
                            spans.push((before, changes.len()));
                        }
                    }
                }
                if let Some(o) = &observer {
                    for (line, (a, b)) in batch.iter().zip(spans) {
                        o.line(line, t);
                        for c in &changes[a..b] {
                            o.change(c, t, Some(line));
                        }
                    }
                }
                batch.clear();
            }
            () = sleep => {
                let t = now();
                engine.lock().expect("engine lock").tick(t, &mut changes);
                if let Some(o) = &observer {
                    for c in &changes {
                        o.change(c, t, None);
                    }
                }
            }
        }
        for c in changes.drain(..) {
            hub.publish(c.resource, c.values, EventTime::now());
        }
    }
}
