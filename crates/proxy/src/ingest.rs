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

/// The daemon's line announcing a new profile set (see [`read_lines`]).
const RESTART: &str = "CMD RESTART";

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
    open: Mutex<OpenReaders>,
    next: AtomicU64,
}

#[derive(Default)]
struct OpenReaders {
    /// A handle on each open connection, to end its reader when ingest stops.
    conns: HashMap<u64, std::os::unix::net::UnixStream>,
    /// Ingest has stopped: no connection is taken, and the readers' end is no daemon lost.
    stopped: bool,
}

impl Readers {
    /// Takes a new connection, at its accept (before anything waits): the cap, [`Ingest::stop`]
    /// and the count of daemons left see it from then on.
    fn register(&self, stream: &std::os::unix::net::UnixStream) -> Result<u64, String> {
        let handle = stream
            .try_clone()
            .map_err(|e| format!("connection unusable: {e}"))?;
        let mut open = self.open.lock().expect("readers lock");
        if open.stopped {
            return Err("ingest has stopped".into());
        }
        if open.conns.len() >= MAX_DAEMON_CONNECTIONS {
            return Err(format!("too many open (at most {MAX_DAEMON_CONNECTIONS})"));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        open.conns.insert(id, handle);
        Ok(id)
    }

    /// Connection `id` ended (its reader returned, or none could be started). The last one to
    /// end is the daemon lost, told to the engine under this lock: a daemon connecting meanwhile
    /// registers either before (and no daemon is lost) or after the engine took the loss (and
    /// its lines, which say its processes are up, come after it).
    fn end(&self, id: u64, feeder: &Feeder, counters: &Counters) {
        let mut open = self.open.lock().expect("readers lock");
        if open.conns.remove(&id).is_some() && open.conns.is_empty() && !open.stopped {
            feeder.daemon_lost();
        }
        drop(open);
        counters.connections_open.fetch_sub(1, Ordering::Relaxed);
        tracing::info!("daemon disconnected");
    }
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
                cfg.daemon_api
                    .clone()
                    .map(|url| Arc::new(DaemonApi::new(url))),
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
        let mut open = self.readers.open.lock().expect("readers lock");
        open.stopped = true;
        // Each reader sees the end of its connection and returns (not waited for here: one may
        // be publishing its last lines).
        for (_, conn) in open.conns.drain() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        drop(open);
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
    daemon_api: Option<Arc<DaemonApi>>,
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
        let stream = match stream.into_std().and_then(|s| {
            s.set_nonblocking(false)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "daemon socket connection unusable");
                continue;
            }
        };
        let id = match readers.register(&stream) {
            Ok(id) => id,
            Err(why) => {
                tracing::warn!("daemon socket connection refused: {why}");
                continue;
            }
        };
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
                && api.ask_aliases(&feeder.engine).await
            {
                tokio::spawn(async move { api.ask_replay().await });
            }
            let runtime = tokio::runtime::Handle::current();
            let (f, c, r) = (feeder.clone(), counters.clone(), readers.clone());
            let spawned = std::thread::Builder::new()
                .name("ingest-reader".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    read_lines(stream, &f, &c, daemon_api.as_deref(), &runtime);
                    r.end(id, &f, &c);
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a daemon socket reader");
                readers.end(id, &feeder, &counters);
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
    daemon: Option<&DaemonApi>,
    runtime: &tokio::runtime::Handle,
) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, stream);
    let mut lines = Lines::default();
    let mut batch: Vec<String> = Vec::new();
    let restart_line = daemon.map(|_| RESTART);
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
        let (used, restart) = lines.take(buf, counters, &mut batch, restart_line);
        reader.consume(used);
        feeder.feed(&batch);
        batch.clear();
        if restart && let Some(api) = daemon {
            runtime.block_on(api.ask_aliases(&feeder.engine));
            feeder.feed(&[RESTART.to_owned()]);
        }
    }
}

/// Cuts a byte stream into lines (LF or CRLF): every complete line of a read is taken at once,
/// a partial one is kept for the next read, and a line longer than [`MAX_LINE`] is skipped to
/// its newline (counted) without being buffered whole.
#[derive(Default)]
struct Lines {
    line: Vec<u8>,
    oversized: bool,
}

impl Lines {
    /// Appends the complete lines of `buf` to `out` and keeps the rest. Stops after a line equal
    /// to `stop_at` (not appended; what follows it is not taken) and says so. Returns how much
    /// of `buf` was used.
    fn take(
        &mut self,
        buf: &[u8],
        counters: &Counters,
        out: &mut Vec<String>,
        stop_at: Option<&str>,
    ) -> (usize, bool) {
        let mut used = 0;
        while used < buf.len() {
            let rest = &buf[used..];
            let (chunk, done) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], Some(i + 1)),
                None => (rest, None),
            };
            if !self.oversized {
                if self.line.len() + chunk.len() > MAX_LINE {
                    self.oversized = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            used += done.unwrap_or(rest.len());
            if done.is_none() {
                break;
            }
            if self.oversized {
                counters.oversized.fetch_add(1, Ordering::Relaxed);
            } else {
                let line = &self.line;
                let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
                counters.lines.fetch_add(1, Ordering::Relaxed);
                if stop_at == Some(&*text) {
                    self.line.clear();
                    return (used, true);
                }
                out.push(text.into_owned());
            }
            self.line.clear();
            self.oversized = false;
        }
        (used, false)
    }
}

/// The daemon's HTTP API, asked for its interface aliases and a replay of the current state.
/// When it fails to answer, it is not asked again for [`DAEMON_API_RETRY`], and its absence is
/// logged once (as the Go producer: raw names, quiet).
struct DaemonApi {
    url: url::Url,
    /// When it last failed to answer (unix ms; 0: never).
    failed_at: AtomicU64,
    absence_logged: std::sync::atomic::AtomicBool,
}

const DAEMON_API_RETRY: Duration = Duration::from_secs(10);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl DaemonApi {
    fn new(url: url::Url) -> DaemonApi {
        DaemonApi {
            url,
            failed_at: AtomicU64::new(0),
            absence_logged: Default::default(),
        }
    }

    /// `GET /port-aliases`: true when the daemon's API answered (worth asking for the replay).
    async fn ask_aliases(&self, engine: &Arc<Mutex<Engine>>) -> bool {
        let failed = self.failed_at.load(Ordering::Relaxed);
        if failed != 0 && unix_ms().saturating_sub(failed) < DAEMON_API_RETRY.as_millis() as u64 {
            tracing::debug!("daemon API failed moments ago; not asked");
            return false;
        }
        let Ok(u) = self.url.join("port-aliases") else {
            return false;
        };
        match crate::sender::get(&u, Duration::from_secs(2)).await {
            Ok((status, body)) if status.is_success() => {
                match serde_json::from_slice::<HashMap<String, String>>(&body) {
                    Ok(aliases) => {
                        tracing::info!(count = aliases.len(), "interface aliases from the daemon");
                        engine.lock().expect("engine lock").set_aliases(aliases);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "daemon /port-aliases is not a JSON object")
                    }
                }
                true
            }
            Ok((status, _)) => {
                tracing::warn!(status = status.as_u16(), "daemon /port-aliases failed");
                true
            }
            Err(e) => {
                self.failed_at.store(unix_ms(), Ordering::Relaxed);
                if !self.absence_logged.swap(true, Ordering::Relaxed) {
                    tracing::info!(api = %self.url, error = %e, "the daemon's API does not answer; raw interface names are used (said once)");
                } else {
                    tracing::debug!(error = %e, "daemon /port-aliases unavailable");
                }
                false
            }
        }
    }

    /// `GET /emit-logs`: the daemon replays its state on the socket.
    async fn ask_replay(&self) {
        let Ok(u) = self.url.join("emit-logs") else {
            return;
        };
        match crate::sender::get(&u, Duration::from_secs(5)).await {
            Ok((status, _)) if status.is_success() => {
                tracing::info!("asked the daemon to replay its state")
            }
            Ok((status, _)) => tracing::warn!(status = status.as_u16(), "daemon /emit-logs failed"),
            Err(e) => {
                self.failed_at.store(unix_ms(), Ordering::Relaxed);
                tracing::debug!(error = %e, "daemon /emit-logs unavailable")
            }
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
        let observed = self.observer.is_some();
        self.apply(lines, |e, t, changes, spans| {
            for line in lines {
                let before = changes.len();
                e.feed(line, t, changes);
                if observed {
                    spans.push((before, changes.len()));
                }
            }
        });
    }

    /// The last daemon connection ended (see [`Engine::daemon_lost`]).
    fn daemon_lost(&self) {
        self.apply(&[], |e, t, changes, _| e.daemon_lost(t, changes));
    }

    /// Fires the timers due now.
    fn tick(&self) {
        self.apply(&[], |e, t, changes, _| e.tick(t, changes));
    }

    /// Runs `op` on the engine at the time now and publishes what it changed, under the order
    /// lock; wakes the timer when the engine's next deadline moved before the one it sleeps
    /// until. `op` records which changes each of `lines` made (for the observer, told after the
    /// engine's lock is released: an observer never delays the engine's other users); with no
    /// lines, the changes are a timer's.
    fn apply(
        &self,
        lines: &[String],
        op: impl FnOnce(&mut Engine, u64, &mut Vec<Change>, &mut Vec<(usize, usize)>),
    ) {
        let mut changes = self.order.lock().expect("order lock");
        let t = self.now();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let deadline = {
            let mut e = self.engine.lock().expect("engine lock");
            op(&mut e, t, &mut changes, &mut spans);
            e.next_deadline()
        };
        let wake_timer = deadline.is_some_and(|d| d < self.armed.load(Ordering::Acquire));
        if let Some(o) = &self.observer {
            if lines.is_empty() {
                for c in changes.iter() {
                    o.change(c, t, None);
                }
            }
            for (line, (a, b)) in lines.iter().zip(spans) {
                o.line(line, t);
                for c in &changes[a..b] {
                    o.change(c, t, Some(line));
                }
            }
        }
        self.publish(&mut changes);
        // After publishing: waking the timer's task can switch this core to it before the
        // events are out. It reads the new deadline under the engine's lock, so a later wake-up
        // loses nothing.
        if wake_timer {
            self.timer.notify_one();
        }
    }

    fn publish(&self, changes: &mut Vec<Change>) {
        for c in changes.drain(..) {
            self.hub.publish(c.resource, c.values, EventTime::now());
        }
    }
}

/// The in-process lines, and the engine's timers.
async fn run_engine(feeder: Arc<Feeder>, rx: mpsc::Receiver<String>) {
    let mut batch: Vec<String> = Vec::with_capacity(256);
    // Closed when every in-process sender is gone; the timers are still served (the socket's
    // readers feed the engine without it).
    let mut rx = Some(rx);
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
            n = async { rx.as_mut().expect("checked").recv_many(&mut batch, 256).await }, if rx.is_some() => {
                if n == 0 {
                    rx = None;
                    continue;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` to one [`Lines`] as successive reads, as `read_lines` does (a stop line
    /// leaves the rest of the read for the next call), and returns the lines taken, the stop
    /// line shown as `<stop>`.
    fn cut(pieces: &[&[u8]], counters: &Counters) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for piece in pieces {
            let mut rest: &[u8] = piece;
            loop {
                let (used, stopped) = lines.take(rest, counters, &mut out, Some(RESTART));
                rest = &rest[used..];
                if stopped {
                    out.push("<stop>".into());
                } else {
                    assert!(rest.is_empty(), "a read is used whole unless stopped");
                    break;
                }
            }
        }
        out
    }

    /// Every way of cutting the stream into three reads (inside words, inside a CRLF, right
    /// after a newline, around the stop line) gives the same lines, each once, in order.
    #[test]
    fn lines_cut_anywhere_are_taken_once_in_order() {
        let text: &[u8] =
            b"a first line\r\nsecond\nCMD RESTART\r\n\r\nthird, after an empty one\nlast\npartial";
        let want = [
            "a first line",
            "second",
            "<stop>",
            "",
            "third, after an empty one",
            "last",
        ];
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let counters = Counters::default();
                let got = cut(&[&text[..i], &text[i..j], &text[j..]], &counters);
                assert_eq!(got, want, "cut at {i} and {j}");
                assert_eq!(counters.lines.load(Ordering::Relaxed), 6);
            }
        }
    }

    /// A line over [`MAX_LINE`] is skipped to its newline and counted, however it is cut; the
    /// lines around it are kept, and a line of exactly [`MAX_LINE`] is a line.
    #[test]
    fn an_oversized_line_is_skipped_whole_and_counted() {
        let long = vec![b'x'; MAX_LINE + 1];
        let exact = vec![b'y'; MAX_LINE];
        let mut text = b"before\n".to_vec();
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\nmiddle\n");
        text.extend_from_slice(&exact);
        text.extend_from_slice(b"\nafter\n");
        for at in [
            0,
            3,
            7,
            100,
            MAX_LINE,
            MAX_LINE + 7,
            MAX_LINE + 8,
            MAX_LINE + 9,
            text.len(),
        ] {
            let counters = Counters::default();
            let got = cut(&[&text[..at], &text[at..]], &counters);
            assert_eq!(got.len(), 4, "cut at {at}");
            assert_eq!(got[..2], ["before", "middle"], "cut at {at}");
            assert_eq!(got[2].len(), MAX_LINE);
            assert_eq!(got[3], "after");
            assert_eq!(counters.oversized.load(Ordering::Relaxed), 1);
        }
    }
}
