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
use tokio::net::UnixListener;
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
    readers: Arc<Readers>,
}

/// The daemon connections being read, each by a thread of its own (see [`read_lines`]).
#[derive(Default)]
struct Readers {
    /// A handle on each open connection, to end its reader when ingest stops.
    open: Mutex<HashMap<u64, std::os::unix::net::UnixStream>>,
    next: AtomicU64,
}

/// Daemon connections read at once; one more is refused (the daemon makes one).
pub const MAX_DAEMON_CONNECTIONS: usize = 16;

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
        let feeder = Arc::new(Feeder {
            engine: engine.clone(),
            hub,
            observer: cfg.observer.clone(),
            start: Instant::now(),
            order: Mutex::new(Vec::new()),
            timer: tokio::sync::Notify::new(),
            armed: AtomicU64::new(u64::MAX),
        });
        let mut tasks = vec![tokio::spawn(run_engine(feeder.clone(), rx))];
        let readers = Arc::new(Readers::default());
        let mut socket = None;
        if let Some(path) = &cfg.socket {
            let (listener, bound) = bind_socket(path).await?;
            socket = Some(bound);
            tracing::info!(socket = %path.display(), "listening for linuxptp-daemon lines");
            tasks.push(tokio::spawn(accept(
                listener,
                feeder,
                counters.clone(),
                cfg.daemon_api.clone(),
                readers.clone(),
            )));
        }
        Ok(Ingest {
            engine,
            sender,
            socket,
            tasks,
            readers,
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
        for (_, conn) in self.readers.open.lock().expect("readers lock").drain() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
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
    feeder: Arc<Feeder>,
    counters: Arc<Counters>,
    daemon_api: Option<url::Url>,
    readers: Arc<Readers>,
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
        if readers.open.lock().expect("readers lock").len() >= MAX_DAEMON_CONNECTIONS {
            tracing::warn!(
                max = MAX_DAEMON_CONNECTIONS,
                "daemon socket connection refused: too many open"
            );
            continue;
        }
        counters.connections.fetch_add(1, Ordering::Relaxed);
        counters.connections_open.fetch_add(1, Ordering::Relaxed);
        tracing::info!("daemon connected");
        let feeder = feeder.clone();
        let counters = counters.clone();
        let daemon_api = daemon_api.clone();
        let readers = readers.clone();
        tokio::spawn(async move {
            // The aliases first (at most 2 s; the daemon's lines wait in the socket meanwhile),
            // so that the first events already carry them; then the replay request.
            if let Some(api) = daemon_api.clone()
                && ask_aliases(&api, &feeder.engine).await
            {
                tokio::spawn(async move { ask_replay(api).await });
            }
            let stream = match stream.into_std().and_then(|s| {
                s.set_nonblocking(false)?;
                Ok(s)
            }) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "daemon socket connection unusable");
                    counters.connections_open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            };
            let id = readers.next.fetch_add(1, Ordering::Relaxed);
            if let Ok(handle) = stream.try_clone() {
                readers
                    .open
                    .lock()
                    .expect("readers lock")
                    .insert(id, handle);
            }
            let runtime = tokio::runtime::Handle::current();
            let spawned = std::thread::Builder::new()
                .name("ingest-reader".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    read_lines(stream, &feeder, &counters, daemon_api.as_ref(), &runtime);
                    let mut open = readers.open.lock().expect("readers lock");
                    // Stopping ingest empties the map first: that is no daemon lost.
                    if open.remove(&id).is_some() && open.is_empty() {
                        drop(open);
                        feeder.daemon_lost();
                    }
                    counters.connections_open.fetch_sub(1, Ordering::Relaxed);
                    tracing::info!("daemon disconnected");
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a daemon socket reader");
            }
        });
    }
}

/// Reads newline-terminated lines and feeds them to the engine on this thread, every complete
/// line of one read together: a line becomes an event here, without a hand-over to another
/// task. A thread blocked in `read` (one per daemon connection, usually one) is woken by the
/// kernel straight away, where the async runtime's reactor added a wake-up and a task hop
/// (docs/delivery-path.md). A line longer than [`MAX_LINE`] is skipped to its newline without
/// being buffered whole. With the daemon's API, a `CMD RESTART` (a new profile set, maybe new
/// interfaces) asks for the aliases again before it is passed on: the first connection often
/// comes before the daemon's first profile is applied, when it has no interfaces to name yet.
fn read_lines(
    stream: std::os::unix::net::UnixStream,
    feeder: &Feeder,
    counters: &Counters,
    daemon: Option<&url::Url>,
    runtime: &tokio::runtime::Handle,
) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut batch: Vec<String> = Vec::new();
    let mut oversized = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "daemon socket read failed");
                break;
            }
        };
        let mut used = 0;
        let mut restart = false;
        while used < buf.len() {
            let rest = &buf[used..];
            let (chunk, done) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], Some(i + 1)),
                None => (rest, None),
            };
            if !oversized {
                if line.len() + chunk.len() > MAX_LINE {
                    oversized = true;
                    line.clear();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            used += done.unwrap_or(rest.len());
            if done.is_none() {
                break;
            }
            if oversized {
                counters.oversized.fetch_add(1, Ordering::Relaxed);
            } else {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line));
                counters.lines.fetch_add(1, Ordering::Relaxed);
                if daemon.is_some() && text == "CMD RESTART" {
                    // What came before the restart is fed first; the aliases are asked while
                    // the rest waits in the socket.
                    restart = true;
                    line.clear();
                    break;
                }
                batch.push(text.into_owned());
            }
            line.clear();
            oversized = false;
        }
        reader.consume(used);
        feeder.feed(&batch);
        batch.clear();
        if restart && let Some(api) = daemon {
            runtime.block_on(ask_aliases(api, &feeder.engine));
            feeder.feed(&["CMD RESTART".to_owned()]);
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

/// Feeds lines to the engine and publishes the changes, from whichever task has the lines (a
/// socket reader, or the in-process channel's task), and fires the engine's timers.
struct Feeder {
    engine: Arc<Mutex<Engine>>,
    hub: Arc<Hub>,
    observer: Option<Arc<dyn IngestObserver>>,
    start: Instant,
    /// Held from feeding to publishing (the engine's own lock is released before publishing,
    /// for CurrentState): changes reach the hub in the order the engine made them, whichever
    /// task made them. Holds the changes buffer, reused.
    order: Mutex<Vec<Change>>,
    /// Wakes the timer when a feed moved the engine's next deadline before [`Feeder::armed`].
    timer: tokio::sync::Notify,
    /// The deadline the timer sleeps until (ns since `start`; `u64::MAX`: none).
    armed: AtomicU64,
}

impl Feeder {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Feeds `lines`, arrived now, and publishes what they change.
    fn feed(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut changes = self.order.lock().expect("order lock");
        let t = self.now();
        // Which changes each line made, for the observer, told after the engine's lock is
        // released (an observer never delays the engine's other users).
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let deadline = {
            let mut e = self.engine.lock().expect("engine lock");
            for line in lines {
                let before = changes.len();
                e.feed(line, t, &mut changes);
                if self.observer.is_some() {
                    spans.push((before, changes.len()));
                }
            }
            e.next_deadline()
        };
        if deadline.is_some_and(|d| d < self.armed.load(Ordering::Acquire)) {
            self.timer.notify_one();
        }
        if let Some(o) = &self.observer {
            for (line, (a, b)) in lines.iter().zip(spans) {
                o.line(line, t);
                for c in &changes[a..b] {
                    o.change(c, t, Some(line));
                }
            }
        }
        self.publish(&mut changes);
    }

    /// The last daemon connection ended (see [`Engine::daemon_lost`]).
    fn daemon_lost(&self) {
        let mut changes = self.order.lock().expect("order lock");
        let t = self.now();
        let deadline = {
            let mut e = self.engine.lock().expect("engine lock");
            e.daemon_lost(t, &mut changes);
            e.next_deadline()
        };
        if deadline.is_some_and(|d| d < self.armed.load(Ordering::Acquire)) {
            self.timer.notify_one();
        }
        if let Some(o) = &self.observer {
            for c in changes.iter() {
                o.change(c, t, None);
            }
        }
        self.publish(&mut changes);
    }

    /// Fires the timers due now.
    fn tick(&self) {
        let mut changes = self.order.lock().expect("order lock");
        let t = self.now();
        self.engine
            .lock()
            .expect("engine lock")
            .tick(t, &mut changes);
        if let Some(o) = &self.observer {
            for c in changes.iter() {
                o.change(c, t, None);
            }
        }
        self.publish(&mut changes);
    }

    fn publish(&self, changes: &mut Vec<Change>) {
        for c in changes.drain(..) {
            self.hub.publish(c.resource, c.values, EventTime::now());
        }
    }
}

/// The in-process lines, and the engine's timers.
async fn run_engine(feeder: Arc<Feeder>, mut rx: mpsc::Receiver<String>) {
    let mut batch: Vec<String> = Vec::with_capacity(256);
    loop {
        // Armed under the engine's lock: a feed either comes before (and its deadline is seen
        // here) or after (and compares with this one, waking the timer when earlier).
        let deadline = {
            let e = feeder.engine.lock().expect("engine lock");
            let d = e.next_deadline();
            feeder.armed.store(d.unwrap_or(u64::MAX), Ordering::Release);
            d
        };
        let sleep = async {
            match deadline {
                Some(d) => {
                    tokio::time::sleep_until((feeder.start + Duration::from_nanos(d)).into()).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    return;
                }
                feeder.feed(&batch);
                batch.clear();
            }
            () = sleep => feeder.tick(),
            // A socket reader's line moved the next deadline earlier: sleep again until it.
            () = feeder.timer.notified() => {}
        }
    }
}
