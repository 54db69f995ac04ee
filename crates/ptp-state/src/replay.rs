//! Replaying a recorded log: one timeline from the lines' own timestamps, no wall clock.
//!
//! A daemon container log mixes three clocks: klog wall time without a year
//! (`I0908 10:12:04.085236`), the system monotonic clock of raw linuxptp lines
//! (`ptp4l[1306919.346]`), and unix seconds of daemon-generated lines (`T-BC[1757326334]`).
//! [`ReplayClock`] puts every line on **one timeline, the klog wall time**, expressed as
//! nanoseconds since the start of a virtual year of twelve 31-day months (so it needs no year and
//! still increases across a month end):
//!
//! * a klog line is at its own time;
//! * a raw linuxptp line is at `monotonic + offset`, where `offset` is the largest
//!   `klog time − monotonic` seen so far (a raw line written after a klog line cannot be older
//!   than it); without any klog line the timeline starts at 0 at the first raw line;
//! * a daemon-generated line (unix seconds, one-second resolution) and anything else is at the
//!   time of the line before it.
//!
//! Time never goes backwards: each line's time is the maximum of its own and the previous one.

use crate::config::Nanos;
use crate::engine::{Change, Engine};
use crate::parse::{split_header, split_klog};

/// Derives `now` for each line of a log; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct ReplayClock {
    last_klog: Option<u64>,
    mono_offset: Option<i128>,
    now: Nanos,
}

const DAY: u64 = 86_400 * 1_000_000_000;

/// Parses a `seconds.fraction` monotonic timestamp into nanoseconds; unix-seconds stamps of
/// daemon-generated lines (no fraction, ≥ 1e9) give `None`.
fn monotonic_ns(ts: &str) -> Option<u64> {
    let (s, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: u64 = s.parse().ok()?;
    if frac.is_empty() && secs >= 1_000_000_000 {
        return None;
    }
    let mut ns = 0u64;
    let mut scale = 1_000_000_000u64;
    for b in frac.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        if scale > 1 {
            scale /= 10;
            ns += u64::from(b - b'0') * scale;
        }
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

impl ReplayClock {
    /// A clock at 0 that has seen nothing.
    pub fn new() -> Self {
        ReplayClock::default()
    }

    /// The time of the last observed line.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Observes `line` and returns its time on the timeline.
    pub fn observe(&mut self, line: &str) -> Nanos {
        let line = line.trim();
        if let Some((month, day, tod, _)) = split_klog(line) {
            let t = (u64::from(month) * 31 + u64::from(day)) * DAY + tod;
            self.last_klog = Some(t);
            self.now = self.now.max(t);
        } else if let Some(m) = split_header(line).and_then(|h| monotonic_ns(h.timestamp)) {
            let lower = i128::from(self.last_klog.unwrap_or(0)) - i128::from(m);
            let off = self.mono_offset.map_or(lower, |o| o.max(lower));
            self.mono_offset = Some(off);
            let t = (i128::from(m) + off).clamp(0, i128::from(u64::MAX)) as u64;
            self.now = self.now.max(t);
        }
        self.now
    }
}

/// A change with where and when it happened in the replayed log.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedChange {
    /// 1-based number of the line whose feeding produced it (for a timer, the first line at or
    /// after its deadline).
    pub line: usize,
    /// Its time on the [`ReplayClock`] timeline (a timer's own deadline for timer changes).
    pub at: Nanos,
    /// The change.
    pub change: Change,
    /// Made by a timer (a holdover timeout, a process downtime), not by the line `line`.
    pub timer: bool,
}

/// Replays a log one line at a time (for logs read as a stream): each line gets its `now` from
/// a [`ReplayClock`]; timers due before it fire first, at their deadline.
#[derive(Debug, Default)]
pub struct Replayer {
    clock: ReplayClock,
    line: usize,
    buf: Vec<Change>,
}

impl Replayer {
    /// A replayer at the start of a log.
    pub fn new() -> Self {
        Replayer::default()
    }

    /// The timeline's time of the last line fed (0 before the first).
    pub fn now(&self) -> Nanos {
        self.clock.now
    }

    /// Feeds the next line of the log to `engine` and returns the changes it caused, in order.
    pub fn line(&mut self, engine: &mut Engine, line: &str) -> Vec<TimedChange> {
        self.line += 1;
        let now = self.clock.observe(line);
        let mut result = Vec::new();
        while let Some(d) = engine.next_deadline().filter(|d| *d <= now) {
            engine.tick(d, &mut self.buf);
            result.extend(self.timed(d, true));
        }
        engine.feed(line, now, &mut self.buf);
        result.extend(self.timed(now, false));
        result
    }

    fn timed(&mut self, at: Nanos, timer: bool) -> impl Iterator<Item = TimedChange> + '_ {
        let line = self.line;
        self.buf.drain(..).map(move |change| TimedChange {
            line,
            at,
            change,
            timer,
        })
    }
}

/// Feeds every line of a log to `engine` with `now` from a [`ReplayClock`] and returns the
/// changes in order. Timers due before a line fire first, at their deadline. Timers still pending
/// after the last line are not fired (call [`Engine::tick`] to flush them).
pub fn replay<'a>(
    engine: &mut Engine,
    lines: impl IntoIterator<Item = &'a str>,
) -> Vec<TimedChange> {
    let mut r = Replayer::new();
    lines
        .into_iter()
        .flat_map(|line| r.line(engine, line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timeline_that_never_goes_back() {
        let mut c = ReplayClock::new();
        let t0 = c.observe("I0908 10:12:06.573427  624338 daemon.go:928] ptp4l[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1");
        assert_eq!(t0, (9 * 31 + 8) * DAY + 36_726_573_427_000);
        // First raw line: anchored at the klog time.
        let t1 =
            c.observe("ptp4l[1031590.224]: [ptp4l.0.config:6] selected /dev/ptp9 as PTP clock");
        assert_eq!(t1, t0);
        let t2 = c.observe("ptp4l[1031590.249]: [ptp4l.0.config:5] port 1 (ens4f0): INITIALIZING to LISTENING on INIT_COMPLETE");
        assert_eq!(t2, t0 + 25_000_000);
        // Unix-seconds lines keep the time.
        assert_eq!(
            c.observe("T-BC[1757326334]:[ts2phc.1.config] ens4f0 offset 9 T-BC-STATUS s0"),
            t2
        );
        // An older klog time does not move time back.
        assert_eq!(c.observe("I0908 10:12:06.000000  1 x.go:1] y"), t2);
        assert_eq!(c.observe("garbage"), t2);
    }

    #[test]
    fn raw_only_logs_start_at_zero() {
        let mut c = ReplayClock::new();
        assert_eq!(c.observe("ptp4l[1000.100]: [ptp4l.0.config] x"), 0);
        assert_eq!(
            c.observe("ptp4l[1001.100]: [ptp4l.0.config] x"),
            1_000_000_000
        );
    }
}
