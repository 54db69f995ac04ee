//! The single ordered stream of lines leaving the daemon, its two outlets (an in-process
//! channel, a UNIX socket buffer) and the replay cache used after a socket reconnect.
//!
//! Publishing never waits: the channel is fed with `try_send` (a full channel drops the line
//! and counts it), the socket buffer is bounded and drops its oldest line (counted).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use ptp_state::parse::{Control, ParsedLine, PortRole, split_header};
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::lines::{CMD_LIVE_START, CMD_RESTART};

/// Counters of the outlets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Lines published.
    pub published: u64,
    /// Lines the in-process channel refused because it was full.
    pub channel_dropped: u64,
    /// Lines dropped from the socket buffer (oldest first) because it was full.
    pub socket_dropped: u64,
    /// Buffered lines discarded at a reconnect (superseded by the replay).
    pub socket_superseded: u64,
    /// Lines written to the socket (replays included).
    pub socket_written: u64,
    /// Successful socket connections.
    pub socket_connects: u64,
}

/// The last line of each kind that matters for a newcomer (reference §5.2 `/emit-logs`).
#[derive(Debug, Default, Clone)]
struct ReplayCache {
    status: BTreeMap<(String, String), String>,
    /// The last state line of each port, and whether the port is SLAVE after it.
    ports: BTreeMap<(String, u16), (String, bool)>,
    class: BTreeMap<String, String>,
    offsets: BTreeMap<(String, String, String), String>,
}

impl ReplayCache {
    /// `parsed` is `line` as [`ptp_state::parse_line`] reads it (parsed once per published line).
    fn observe(&mut self, line: &str, parsed: ParsedLine<'_>) {
        let process = || split_header(line).map_or("", |h| h.process).to_owned();
        match parsed {
            ParsedLine::ProcessStatus {
                process, config, ..
            } => {
                self.status
                    .insert((config.to_owned(), process.to_owned()), line.to_owned());
            }
            ParsedLine::PortEvent {
                config,
                port,
                change: Some(change),
                ..
            } => {
                let slave = change.role == PortRole::Slave;
                self.ports
                    .insert((config.to_owned(), port), (line.to_owned(), slave));
                // ptp4l prints offsets only while a port is SLAVE or UNCALIBRATED: once no port
                // is SLAVE, the last offset line is history. Replayed after this port line, it
                // would tell a newcomer the clock still runs as it did then (e.g. LOCKED after
                // the grandmaster was lost); the offsets printed from now on are cached anew.
                if !slave && !self.ports.iter().any(|((c, _), (_, s))| c == config && *s) {
                    self.offsets
                        .retain(|(c, p, _), _| !(c == config && p == "ptp4l"));
                }
            }
            ParsedLine::ClockClassChange { config, .. } => {
                self.class.insert(config.to_owned(), line.to_owned());
            }
            ParsedLine::Ptp4lOffset { config, .. } | ParsedLine::Ptp4lSummary { config, .. } => {
                self.offsets.insert(
                    (config.to_owned(), process(), String::new()),
                    line.to_owned(),
                );
            }
            ParsedLine::Phc2sysOffset { config, clock, .. }
            | ParsedLine::Phc2sysSummary { config, clock, .. } => {
                self.offsets.insert(
                    (config.to_owned(), process(), clock.to_owned()),
                    line.to_owned(),
                );
            }
            ParsedLine::Ts2phcOffset { config, iface, .. } => {
                self.offsets.insert(
                    (config.to_owned(), process(), iface.to_owned()),
                    line.to_owned(),
                );
            }
            ParsedLine::Control(Control::Restart) => *self = ReplayCache::default(),
            _ => {}
        }
    }

    /// Process status first (so a newcomer knows what runs), then port states, clock
    /// classes and the last offsets.
    fn lines(&self) -> Vec<String> {
        self.status
            .values()
            .chain(self.ports.values().map(|(l, _)| l))
            .chain(self.class.values())
            .chain(self.offsets.values())
            .cloned()
            .collect()
    }
}

struct Inner {
    channel: Option<mpsc::Sender<String>>,
    socket: bool,
    buffer: VecDeque<String>,
    capacity: usize,
    restart_pending: bool,
    replay: ReplayCache,
    stats: HubStats,
}

/// See the module documentation.
pub struct Hub {
    inner: Mutex<Inner>,
    notify: Notify,
    sane_offsets: watch::Sender<BTreeSet<String>>,
    /// Every published line, for in-daemon readers (the T-BC machine); a lagging reader loses
    /// the oldest lines, never blocks a publisher.
    tap: broadcast::Sender<String>,
}

impl Hub {
    /// A hub feeding `channel` (if any) and, if `socket`, a socket buffer of `capacity` lines.
    pub fn new(channel: Option<mpsc::Sender<String>>, socket: bool, capacity: usize) -> Self {
        Hub {
            inner: Mutex::new(Inner {
                channel,
                socket,
                buffer: VecDeque::new(),
                capacity: capacity.max(1),
                restart_pending: false,
                replay: ReplayCache::default(),
                stats: HubStats::default(),
            }),
            notify: Notify::new(),
            sane_offsets: watch::channel(BTreeSet::new()).0,
            tap: broadcast::channel(4096).0,
        }
    }

    /// Every line published from now on (a receiver that lags more than 4096 lines is told how
    /// many it missed).
    pub fn tap(&self) -> broadcast::Receiver<String> {
        self.tap.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes one line (no trailing newline) to every outlet, in order.
    pub fn publish(&self, line: String) {
        if self.tap.receiver_count() > 0 {
            let _ = self.tap.send(line.clone());
        }
        let parsed = ptp_state::parse_line(&line);
        if let ParsedLine::Ptp4lOffset { config, offset, .. }
        | ParsedLine::Ts2phcOffset { config, offset, .. } = parsed
            && offset.unsigned_abs() < 1_000_000_000
            && !self.sane_offsets.borrow().contains(config)
        {
            self.sane_offsets.send_modify(|s| {
                s.insert(config.to_owned());
            });
        }
        let mut g = self.lock();
        g.replay.observe(&line, parsed);
        if line == CMD_RESTART {
            g.restart_pending = true;
            self.sane_offsets.send_modify(BTreeSet::clear);
        }
        Self::to_outlets(&mut g, line);
        drop(g);
        self.notify.notify_one();
    }

    /// Hands one line to the socket buffer and the channel (the caller holds the lock, so lines
    /// keep their order across callers).
    fn to_outlets(g: &mut Inner, line: String) {
        g.stats.published += 1;
        if g.socket {
            if g.buffer.len() >= g.capacity {
                g.buffer.pop_front();
                g.stats.socket_dropped += 1;
            }
            g.buffer.push_back(line.clone());
        }
        if let Some(tx) = &g.channel {
            match tx.try_send(line) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    g.stats.channel_dropped += 1;
                    let n = g.stats.channel_dropped;
                    if n.is_power_of_two() {
                        tracing::warn!(dropped = n, "line channel full: lines dropped");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => g.channel = None,
            }
        }
    }

    /// Configs (`ptp4l.0.config`, `ts2phc.0.config`) that have reported an offset below 1 s
    /// since the last `CMD RESTART`: phc2sys waits for one of them.
    pub fn sane_offsets(&self) -> watch::Receiver<BTreeSet<String>> {
        self.sane_offsets.subscribe()
    }

    /// A socket connected: discards the buffered (stale) lines and returns what to write first:
    /// `CMD RESTART` if one was never delivered, the replay, then `CMD LIVE_START`.
    pub fn on_connect(&self) -> Vec<String> {
        let mut g = self.lock();
        g.stats.socket_connects += 1;
        let stale = g.buffer.len() as u64;
        g.stats.socket_superseded += stale;
        g.buffer.clear();
        let mut out = Vec::new();
        if g.restart_pending {
            out.push(CMD_RESTART.to_owned());
            g.restart_pending = false;
        }
        out.extend(g.replay.lines());
        out.push(CMD_LIVE_START.to_owned());
        out
    }

    /// Takes every buffered line (waiting for at least one).
    pub async fn next_batch(&self) -> Vec<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut g = self.lock();
                if !g.buffer.is_empty() {
                    let batch: Vec<String> = g.buffer.drain(..).collect();
                    if batch.iter().any(|l| l == CMD_RESTART) {
                        g.restart_pending = false;
                    }
                    return batch;
                }
            }
            notified.await;
        }
    }

    /// Counts lines written to the socket.
    pub fn count_written(&self, n: usize) {
        self.lock().stats.socket_written += n as u64;
    }

    /// Publishes the replay again (the last line of each kind that matters), as Go's
    /// `/emit-logs` makes its daemon do; returns how many lines.
    ///
    /// The replay is taken and handed to the outlets under one hold of the lock, so no newer
    /// line can be published between them (which would make the replayed line the last word),
    /// and the replayed lines are not observed again (the cache keeps what is newest).
    pub fn emit_replay(&self) -> usize {
        let mut g = self.lock();
        let lines = g.replay.lines();
        let n = lines.len();
        for l in lines {
            Self::to_outlets(&mut g, l);
        }
        drop(g);
        self.notify.notify_one();
        n
    }

    /// The replay a newcomer would get now (without the control lines).
    pub fn replay_lines(&self) -> Vec<String> {
        self.lock().replay.lines()
    }

    /// The counters.
    pub fn stats(&self) -> HubStats {
        self.lock().stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn replay_keeps_the_last_line_of_each_kind_per_process() {
        let hub = Hub::new(None, true, 16);
        for l in [
            "ptp4l[100]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
            "ptp4l[5217.361]: [ptp4l.0.config] port 1: LISTENING to UNCALIBRATED on RS_SLAVE",
            "ptp4l[5218.000]: [ptp4l.0.config] master offset -127 s0 freq -3007 path delay 2240",
            "ptp4l[5219.863]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
            "ptp4l[5219.900]: [ptp4l.0.config] port 1: new foreign master 507c6f.fffe.1fb16c-4",
            "ptp4l[5220.000]: [ptp4l.0.config] master offset -12 s2 freq -3007 path delay 2240",
            "phc2sys[5220.100]: [ptp4l.0.config] CLOCK_REALTIME phc offset -415 s2 freq +2856 delay 553",
            "phc2sys[101]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
            "ptp4l[102]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 6",
        ] {
            hub.publish(l.to_owned());
        }
        assert_eq!(
            hub.replay_lines(),
            [
                "phc2sys[101]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
                "ptp4l[100]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
                "ptp4l[5219.863]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
                "ptp4l[102]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 6",
                "phc2sys[5220.100]: [ptp4l.0.config] CLOCK_REALTIME phc offset -415 s2 freq +2856 delay 553",
                "ptp4l[5220.000]: [ptp4l.0.config] master offset -12 s2 freq -3007 path delay 2240",
            ]
        );
        let first = hub.on_connect();
        assert_eq!(first.last().map(String::as_str), Some(CMD_LIVE_START));
        assert_eq!(hub.stats().socket_superseded, 9);
    }

    /// A port that leaves SLAVE ends ptp4l's offsets: the replay must not carry the last one
    /// (a newcomer would decide LOCKED from it after the grandmaster was lost); other
    /// processes' offsets stay, and offsets printed afterwards are cached again.
    #[test]
    fn replay_drops_ptp4l_offsets_once_no_port_is_slave() {
        let hub = Hub::new(None, true, 16);
        let slave =
            "ptp4l[1.0]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED";
        let offset = "ptp4l[2.0]: [ptp4l.0.config] master offset 5 s2 freq 0 path delay 500";
        let phc =
            "phc2sys[2.1]: [ptp4l.0.config] CLOCK_REALTIME phc offset -4 s2 freq +1 delay 553";
        let master2 = "ptp4l[2.2]: [ptp4l.0.config] port 2: LISTENING to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES";
        let lost = "ptp4l[3.0]: [ptp4l.0.config] port 1: SLAVE to LISTENING on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES";
        for l in [slave, offset, phc, master2] {
            hub.publish(l.to_owned());
        }
        // Port 2 becoming MASTER does not end the offsets: port 1 is still SLAVE.
        assert_eq!(hub.replay_lines(), [slave, master2, phc, offset]);
        hub.publish(lost.to_owned());
        assert_eq!(hub.replay_lines(), [lost, master2, phc]);
        let again = "ptp4l[9.0]: [ptp4l.0.config] master offset 900 s0 freq 0 path delay 500";
        hub.publish(again.to_owned());
        assert_eq!(hub.replay_lines(), [lost, master2, phc, again]);
    }

    /// `/emit-logs` under concurrent publishing: every replayed line is one the cache held when
    /// it was taken, the cache always ends on the newest line, and nothing is lost.
    #[test]
    fn emitted_replay_never_becomes_the_last_word() {
        let slave =
            "ptp4l[1.0]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED";
        let faulty = "ptp4l[2.0]: [ptp4l.0.config] port 1: SLAVE to FAULTY on FAULT_DETECTED";
        for _ in 0..2000 {
            let (tx, mut rx) = mpsc::channel(64);
            let hub = Arc::new(Hub::new(Some(tx), true, 64));
            hub.publish(slave.to_owned());
            let go = Arc::new(std::sync::Barrier::new(2));
            let (h, g) = (hub.clone(), go.clone());
            let emitter = std::thread::spawn(move || {
                g.wait();
                h.emit_replay()
            });
            go.wait();
            hub.publish(faulty.to_owned());
            assert_eq!(emitter.join().unwrap(), 1);
            assert_eq!(hub.replay_lines(), [faulty]);
            // On the outlet, the FAULTY line comes last: a replayed SLAVE line is either before
            // it or not at all.
            let mut got = Vec::new();
            while let Ok(l) = rx.try_recv() {
                got.push(l);
            }
            assert_eq!(got.len(), 3, "{got:?}");
            assert_eq!(got.last().map(String::as_str), Some(faulty), "{got:?}");
            assert_eq!(hub.stats().published, 3);
        }
    }

    #[test]
    fn restart_clears_the_replay_and_is_delivered_after_a_reconnect() {
        let hub = Hub::new(None, true, 16);
        hub.publish("ptp4l[100]:[ptp4l.0.config] PTP_PROCESS_STATUS:1".into());
        hub.publish(CMD_RESTART.into());
        hub.publish("ptp4l[101]:[ptp4l.0.config] PTP_PROCESS_STATUS:1".into());
        assert_eq!(
            hub.on_connect(),
            [
                CMD_RESTART,
                "ptp4l[101]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
                CMD_LIVE_START
            ]
        );
        assert_eq!(
            hub.on_connect(),
            [
                "ptp4l[101]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
                CMD_LIVE_START
            ]
        );
    }

    #[test]
    fn full_buffers_drop_the_oldest_and_count() {
        let (tx, _rx) = mpsc::channel(2);
        let hub = Hub::new(Some(tx), true, 3);
        for i in 0..5 {
            hub.publish(format!("line {i}"));
        }
        let s = hub.stats();
        assert_eq!((s.socket_dropped, s.channel_dropped), (2, 3));
        let batch = futures_lite_block(hub.next_batch());
        assert_eq!(batch, ["line 2", "line 3", "line 4"]);
    }

    fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}
