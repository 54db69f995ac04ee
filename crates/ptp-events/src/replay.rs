//! `ptp-events replay`: why did this node go HOLDOVER last night? Feed a daemon log through the
//! state engine and print the events a subscriber would have received.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use clap::Args;
use oran_api::{CloudEvent, EventTime};
use ptp_state::{Engine, EngineConfig, Replayer, Thresholds};

/// Flags of `replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The log: a linuxptp-daemon container log or raw linuxptp output; `-` reads stdin.
    pub log: PathBuf,
    /// Node name used in resource addresses.
    #[arg(long = "node-name", env = "NODE_NAME", default_value = "replay-node")]
    pub node_name: String,
    /// Year of the log (klog timestamps carry none); default: this year.
    #[arg(long)]
    pub year: Option<i32>,
    /// holdOverTimeout in seconds, for configs the log names no profile for.
    #[arg(long, default_value_t = 5)]
    pub holdover_timeout: u64,
    /// maxOffsetThreshold in ns.
    #[arg(long, default_value_t = 100, allow_hyphen_values = true)]
    pub max_offset: i64,
    /// minOffsetThreshold in ns.
    #[arg(long, default_value_t = -100, allow_hyphen_values = true)]
    pub min_offset: i64,
    /// Process downtime under which a restart produces no state change, in ms.
    #[arg(long, default_value_t = 5000)]
    pub downtime_threshold_ms: u64,
    /// Print the final metrics (Prometheus text) after the events.
    #[arg(long)]
    pub metrics: bool,
    /// Also write a self-contained HTML report here: offsets with thresholds, state bands,
    /// clock class, processes on one time axis, and the event list (no network needed to view).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

/// One output line: where in the log, the delivery address, and the event as delivered.
#[derive(serde::Serialize)]
struct Record<'a> {
    line: usize,
    address: String,
    event: &'a CloudEvent,
}

/// The calendar time of a point on the replay timeline (klog month/day/time of day), or `None`
/// when the log had no klog timestamps (the timeline then starts at 0).
fn calendar(at: u64, year: i32) -> Option<DateTime<Utc>> {
    const DAY: u64 = 86_400 * 1_000_000_000;
    let days = at / DAY;
    let (month, day) = ((days / 31) as u32, (days % 31) as u32);
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let tod = at % DAY;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc() + Duration::from_nanos(tod))
}

/// Runs the replay.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    // As the daemon checks a profile's thresholds: the window must not be upside down.
    if args.min_offset >= args.max_offset {
        return Err(crate::usage(
            "--min-offset",
            format!(
                "{} is not below --max-offset {}",
                args.min_offset, args.max_offset
            ),
        ));
    }
    let input: Box<dyn BufRead> = if args.log.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.log)
            .with_context(|| format!("{}: cannot open the log", args.log.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let year = args.year.unwrap_or_else(|| Utc::now().year());
    let mut cfg = EngineConfig::new(args.node_name.clone());
    cfg.downtime_threshold = Duration::from_millis(args.downtime_threshold_ms);
    cfg.default_thresholds = Thresholds {
        hold_over_timeout: Duration::from_secs(args.holdover_timeout),
        max_offset: args.max_offset,
        min_offset: args.min_offset,
    };
    let mut engine = Engine::new(cfg);
    let mut replayer = Replayer::new();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut seq = 0u64;
    let mut report = args.report.as_ref().map(|_| {
        crate::report::Report::new(
            &format!("PTP events of {}", args.log.display()),
            args.min_offset,
            args.max_offset,
        )
    });
    let mut emit = |changes: Vec<ptp_state::TimedChange>,
                    report: &mut Option<crate::report::Report>,
                    log_line: &str|
     -> anyhow::Result<()> {
        for ptp_state::TimedChange {
            line: line_no,
            at,
            change: c,
            timer,
        } in changes
        {
            let when = calendar(at, year);
            let time =
                EventTime(when.unwrap_or(DateTime::<Utc>::UNIX_EPOCH + Duration::from_nanos(at)));
            seq += 1;
            let ev = CloudEvent::new(c.resource, format!("replay-{seq}"), time, c.values);
            if let Some(r) = report.as_mut() {
                let timer_note;
                let cause = if timer {
                    // A timer (holdover timeout, process downtime): the line is only the first
                    // one read after its deadline.
                    timer_note = format!("(a timer expired; the next line read was: {log_line})");
                    timer_note.as_str()
                } else {
                    log_line
                };
                r.event(crate::report::EventRow::new(
                    c.resource,
                    &ev.data.values,
                    at,
                    line_no,
                    cause,
                ));
            }
            let record = Record {
                line: line_no,
                address: c.resource.address(&args.node_name),
                event: &ev,
            };
            let text = serde_json::to_string(&record)?;
            if let Err(e) = writeln!(out, "{text}") {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    std::process::exit(0);
                }
                return Err(e.into());
            }
        }
        Ok(())
    };
    let mut raw = Vec::new();
    let mut line_no = 0;
    let mut cut = 0u64;
    let mut reader = input;
    let name = args.log.display().to_string();
    loop {
        raw.clear();
        let Some(whole) = read_capped_line(&mut reader, &mut raw, MAX_LINE)
            .with_context(|| format!("{name}: cannot read the log"))?
        else {
            break;
        };
        line_no += 1;
        if !whole {
            // As the producer: a line longer than the cap is skipped, never held whole.
            cut += 1;
            continue;
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        let changes = replayer.line(&mut engine, line);
        if let Some(r) = report.as_mut() {
            r.line(line, replayer.now());
        }
        emit(changes, &mut report, line)?;
    }
    if args.metrics {
        let mut text = String::new();
        engine.render_metrics(&mut text);
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    let stats = engine.stats();
    // A log line (JSON under --log-format json), a warning when lines were cut or not one was
    // understood.
    let summary = format!(
        "replayed {line_no} lines: {} understood, {} skipped{}",
        stats.parsed(),
        stats.skipped(),
        if cut > 0 {
            format!(", {cut} longer than {} KiB cut", MAX_LINE / 1024)
        } else {
            String::new()
        }
    );
    if cut > 0 || (line_no > 0 && stats.parsed() == 0) {
        tracing::warn!(
            lines = line_no,
            understood = stats.parsed(),
            skipped = stats.skipped(),
            cut,
            "{summary}"
        );
    } else {
        tracing::info!(
            lines = line_no,
            understood = stats.parsed(),
            skipped = stats.skipped(),
            "{summary}"
        );
    }
    if let (Some(r), Some(path)) = (&report, &args.report) {
        let html = r.html(&|at| match calendar(at, year) {
            Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            None => format!("{:.3} s", at as f64 / 1e9),
        });
        std::fs::write(path, html)
            .with_context(|| format!("--report {}: cannot write", path.display()))?;
        tracing::info!(report = %path.display(), events = r.events(), "report written");
    }
    if line_no > 0 && stats.parsed() == 0 {
        anyhow::bail!("{name}: no line was understood (not linuxptp or linuxptp-daemon output?)");
    }
    Ok(())
}

/// The longest line read whole: the producer's socket ingest's cap.
use proxy::ingest::MAX_LINE;

/// Reads one line into `raw` (newline included). `None` at the end; `Some(false)` when the
/// line was longer than `max`: it is consumed to its newline but not kept (memory stays bounded
/// whatever the input, `/dev/zero` included).
fn read_capped_line(
    r: &mut dyn BufRead,
    raw: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut any = false;
    let mut whole = true;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(whole));
        }
        any = true;
        let (chunk, end) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if whole && raw.len() + n <= max + 1 {
            raw.extend_from_slice(chunk);
        } else {
            whole = false;
            raw.clear();
        }
        r.consume(n);
        if end {
            return Ok(Some(whole));
        }
    }
}
