//! `replay LOG --report FILE.html`: one self-contained HTML page of what a log says, for the
//! operator who asks "why did this node go HOLDOVER at 03:12?".
//!
//! On one time axis: each clock's offset with the thresholds drawn, the state bands (LOCKED /
//! HOLDOVER / FREERUN) of every published resource (lock-state per clock, OS clock, GNSS,
//! sync-state), the clock-class steps, and each linuxptp process up/down; below, every event a
//! subscriber would have received, each linked to its mark on the axis and carrying the log line
//! that caused it; a summary on top (HOLDOVER and FREERUN episodes, the longest, first and last).
//!
//! Charts are inline SVG written here: no script, no font, no network fetch, so the file opens
//! from disk anywhere and stays small. Offsets are downsampled to the minimum and maximum of each
//! horizontal pixel (a spike is never lost); transitions are never downsampled.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ptp_state::{Nanos, ParsedLine};

/// The page's style sheet (inline: the file fetches nothing).
const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 8px} table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
code{font-size:12px;word-break:break-all} .summary td{border:none;padding:1px 8px 1px 0}
svg text{font-size:11px;fill:#333} .axis{text-anchor:middle} .grid{stroke:#eee}
.lanebg{fill:#fafafa;stroke:#ddd} .offset{fill:none;stroke:#1f5fa8;stroke-width:1}
.threshold{stroke:#c62828;stroke-dasharray:4 3} .thlabel{fill:#c62828;font-size:10px}
.state.LOCKED,.proc.up{fill:#2e7d32} .state.HOLDOVER{fill:#ef8f00} .state.FREERUN,.proc.down{fill:#c62828}
.state.other{fill:#9e9e9e} .class.c6{fill:#2e7d32} .class.cdeg{fill:#ef8f00} .class.cfree{fill:#c62828} .class.cslave{fill:#90a4ae}
.classlabel{fill:#fff;font-size:10px} .mark{stroke:#555;stroke-width:1.5} .mark.FREERUN{stroke:#c62828} .mark.HOLDOVER{stroke:#ef8f00} .mark.LOCKED{stroke:#2e7d32}
b.LOCKED{color:#2e7d32} b.HOLDOVER{color:#ef8f00} b.FREERUN{color:#c62828} tr:target{background:#fff6d5}
";

/// The chart's drawing width in pixels (offset buckets).
const WIDTH: f64 = 1200.0;
/// Left margin for lane labels.
const LEFT: f64 = 210.0;

/// One published event, as the report lists it.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Timeline time.
    pub at: Nanos,
    /// 1-based log line (0: none, live).
    pub line: usize,
    /// The resource's short name (`lock-state`, `clock-class`, ...).
    pub resource: String,
    /// `(address, value)` of each value of the event.
    pub values: Vec<(String, String)>,
    /// The log line that caused it.
    pub log_line: String,
}

impl EventRow {
    /// The row of a change of `resource` to `values`.
    pub fn new(
        resource: oran_api::Resource,
        values: &[oran_api::Value],
        at: Nanos,
        line: usize,
        log_line: &str,
    ) -> EventRow {
        EventRow {
            at,
            line,
            resource: resource
                .source()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned(),
            values: values
                .iter()
                .map(|v| (v.resource_address.clone(), v.value.clone()))
                .collect(),
            log_line: log_line.to_owned(),
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    /// Per pixel bucket: (min, max) and the sample count; filled at the end.
    samples: Vec<(Nanos, i64)>,
}

/// Collects what the report shows while the log is replayed.
#[derive(Debug)]
pub struct Report {
    /// At most this many offset samples per series and events are kept (the oldest tenth goes
    /// when full): a live page's window; `None` (a replay): everything.
    limits: Option<(usize, usize)>,
    title: String,
    thresholds: (i64, i64),
    first: Option<Nanos>,
    last: Nanos,
    offsets: BTreeMap<String, Series>,
    processes: BTreeMap<String, Vec<(Nanos, bool)>>,
    events: Vec<EventRow>,
}

impl Report {
    /// A report titled `title`, the offsets drawn against `min`/`max` thresholds (ns).
    pub fn new(title: &str, min: i64, max: i64) -> Report {
        Report {
            limits: None,
            title: title.to_owned(),
            thresholds: (min, max),
            first: None,
            last: 0,
            offsets: BTreeMap::new(),
            processes: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Keeps at most `samples` offsets per series and `events` events (the most recent ones).
    pub fn with_limits(mut self, samples: usize, events: usize) -> Report {
        self.limits = Some((samples.max(10), events.max(10)));
        self
    }

    fn seen(&mut self, at: Nanos) {
        self.first.get_or_insert(at);
        self.last = self.last.max(at);
    }

    /// One log line at timeline time `at` (its offsets and process status).
    pub fn line(&mut self, line: &str, at: Nanos) {
        let (key, offset) = match ptp_state::parse_line(line) {
            ParsedLine::Ptp4lOffset { config, offset, .. } => (format!("ptp4l {config}"), offset),
            ParsedLine::Phc2sysOffset { clock, offset, .. } => (format!("phc2sys {clock}"), offset),
            ParsedLine::Ts2phcOffset { iface, offset, .. } => (format!("ts2phc {iface}"), offset),
            ParsedLine::ProcessStatus {
                process,
                config,
                up,
            } => {
                self.seen(at);
                self.processes
                    .entry(format!("{process} {config}"))
                    .or_default()
                    .push((at, up));
                return;
            }
            _ => return,
        };
        self.seen(at);
        let s = &mut self.offsets.entry(key).or_default().samples;
        s.push((at, offset));
        if let Some((max, _)) = self.limits
            && s.len() > max
        {
            s.drain(..max / 10);
            self.first = self
                .offsets
                .values()
                .filter_map(|s| s.samples.first().map(|x| x.0))
                .min();
        }
    }

    /// One published event.
    pub fn event(&mut self, row: EventRow) {
        self.seen(row.at);
        self.events.push(row);
        if let Some((_, max)) = self.limits
            && self.events.len() > max
        {
            self.events.drain(..max / 10);
        }
    }

    /// The number of events.
    pub fn events(&self) -> usize {
        self.events.len()
    }

    /// The HTML page. `when` formats a timeline time for people (calendar time when the log
    /// had it).
    /// The report's content (summary, timeline, event list), without the page around it.
    pub fn body(&self, when: &dyn Fn(Nanos) -> String) -> String {
        let t0 = self.first.unwrap_or(0);
        let span = (self.last.saturating_sub(t0)).max(1) as f64;
        let x = |t: Nanos| LEFT + (t.saturating_sub(t0)) as f64 / span * WIDTH;
        let mut svg = String::new();
        let mut y = 30.0;
        // (the time axis is drawn last, when the height is known)
        // Offsets, one lane each.
        let (lo, hi) = self.thresholds;
        for (name, s) in &self.offsets {
            let h = 70.0;
            // The y-range: the thresholds with room, widened to the data up to 10x them (beyond:
            // clipped and marked).
            let limit = hi
                .unsigned_abs()
                .max(lo.unsigned_abs())
                .saturating_mul(10)
                .max(1) as f64;
            let (dmin, dmax) = s
                .samples
                .iter()
                .fold((lo as f64, hi as f64), |(a, b), (_, o)| {
                    let o = (*o as f64).clamp(-limit, limit);
                    (a.min(o), b.max(o))
                });
            let (dmin, dmax) = (dmin * 1.1, dmax * 1.1);
            let yv = |v: f64| y + h - (v.clamp(dmin, dmax) - dmin) / (dmax - dmin) * h;
            let _ = write!(
                svg,
                r#"<text x="4" y="{:.1}" class="lane">offset {} (ns)</text><rect x="{LEFT}" y="{y:.1}" width="{WIDTH}" height="{h}" class="lanebg"/>"#,
                y + h / 2.0,
                esc(name)
            );
            for (th, label) in [(hi, "max"), (lo, "min")] {
                let yy = yv(th as f64);
                let _ = write!(
                    svg,
                    r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" class="threshold"/><text x="{:.1}" y="{:.1}" class="thlabel">{label} {th}</text>"#,
                    LEFT + WIDTH,
                    LEFT + WIDTH + 4.0,
                    yy + 4.0,
                );
            }
            let mut points = String::new();
            for (px, (mn, mx)) in buckets(&s.samples, t0, span) {
                let px = LEFT + px;
                let _ = write!(points, "{px:.1},{:.1} {px:.1},{:.1} ", yv(mn), yv(mx));
            }
            let clipped = s
                .samples
                .iter()
                .filter(|(_, o)| (*o as f64).abs() > limit)
                .count();
            let _ = write!(
                svg,
                r#"<polyline points="{}" class="offset"><title>{} samples{}</title></polyline>"#,
                points.trim_end(),
                s.samples.len(),
                if clipped > 0 {
                    format!(", {clipped} beyond ±{limit} ns drawn at the edge")
                } else {
                    String::new()
                }
            );
            y += h + 12.0;
        }
        // State lanes: one per published address that carries a state.
        let mut lanes: BTreeMap<String, Vec<(Nanos, String)>> = BTreeMap::new();
        let mut classes: Vec<(Nanos, String, usize)> = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            if e.resource == "clock-class" {
                if let Some((_, v)) = e.values.first() {
                    classes.push((e.at, v.clone(), i));
                }
                continue;
            }
            for (addr, v) in &e.values {
                if v.parse::<f64>().is_err() {
                    // `sync-state sync/sync-status/sync-state` says it twice: the resource alone.
                    let name = if short(addr).starts_with("sync/") {
                        e.resource.clone()
                    } else {
                        format!("{} {}", e.resource, short(addr))
                    };
                    lanes.entry(name).or_default().push((e.at, v.clone()));
                }
            }
        }
        let end = self.last;
        // A lane of bands: each (time, class, tooltip) lasts until the next one.
        let bands = |svg: &mut String,
                     y: f64,
                     h: f64,
                     name: &str,
                     steps: &[(Nanos, String, String)]| {
            let _ = write!(
                svg,
                r#"<text x="4" y="{:.1}" class="lane">{}</text>"#,
                y + h - 4.0,
                esc(name)
            );
            for (k, (at, class, tip)) in steps.iter().enumerate() {
                let until = steps.get(k + 1).map_or(end, |n| n.0);
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{:.2}" height="{h}" class="{class}"><title>{} from {}</title></rect>"#,
                    x(*at),
                    (x(until) - x(*at)).max(1.0),
                    esc(tip),
                    esc(&when(*at))
                );
            }
        };
        for (name, steps) in &lanes {
            let steps: Vec<_> = steps
                .iter()
                .map(|(at, v)| (*at, format!("state {}", state_class(v)), v.clone()))
                .collect();
            bands(&mut svg, y, 16.0, name, &steps);
            y += 22.0;
        }
        // Clock class steps.
        if !classes.is_empty() {
            let _ = write!(
                svg,
                r#"<text x="4" y="{:.1}" class="lane">clock class</text>"#,
                y + 11.0
            );
            for (k, (at, v, i)) in classes.iter().enumerate() {
                let until = classes.get(k + 1).map_or(end, |n| n.0);
                let _ = write!(
                    svg,
                    r##"<a href="#ev-{i}"><rect x="{:.1}" y="{y:.1}" width="{:.2}" height="16" class="class c{}"><title>class {} from {}</title></rect><text x="{:.1}" y="{:.1}" class="classlabel">{}</text></a>"##,
                    x(*at),
                    (x(until) - x(*at)).max(1.0),
                    class_kind(v),
                    esc(v),
                    esc(&when(*at)),
                    x(*at) + 2.0,
                    y + 12.0,
                    esc(v)
                );
            }
            y += 22.0;
        }
        // Processes.
        for (name, ups) in &self.processes {
            let steps: Vec<_> = ups
                .iter()
                .map(|(at, up)| {
                    let (class, tip) = if *up {
                        ("proc up", "up")
                    } else {
                        ("proc down", "DOWN")
                    };
                    (*at, class.to_owned(), tip.to_owned())
                })
                .collect();
            bands(&mut svg, y, 12.0, name, &steps);
            y += 18.0;
        }
        // Event marks: every event, linked to its row.
        let _ = write!(
            svg,
            r#"<text x="4" y="{:.1}" class="lane">events</text>"#,
            y + 10.0
        );
        for (i, e) in self.events.iter().enumerate() {
            let _ = write!(
                svg,
                r##"<a href="#ev-{i}"><line id="mark-{i}" x1="{xx:.1}" y1="{y:.1}" x2="{xx:.1}" y2="{:.1}" class="mark transition {}"><title>{} {} (line {})</title></line></a>"##,
                y + 14.0,
                state_class(e.values.first().map_or("", |v| v.1.as_str())),
                esc(&when(e.at)),
                esc(&e.resource),
                e.line,
                xx = x(e.at)
            );
        }
        y += 24.0;
        let mut axis = String::new();
        for i in 0..=6 {
            let t = t0 + (span * f64::from(i) / 6.0) as Nanos;
            let _ = write!(
                axis,
                r#"<line x1="{x:.1}" y1="20" x2="{x:.1}" y2="{:.0}" class="grid"/><text x="{x:.1}" y="14" class="axis">{}</text>"#,
                y - 4.0,
                esc(&when(t)),
                x = x(t)
            );
        }
        let svg = axis + &svg;

        // The event list.
        let mut rows = String::new();
        for (i, e) in self.events.iter().enumerate() {
            let values: Vec<String> = e
                .values
                .iter()
                .map(|(a, v)| {
                    format!(
                        "{} = <b class=\"{}\">{}</b>",
                        esc(short(a)),
                        state_class(v),
                        esc(v)
                    )
                })
                .collect();
            let _ = write!(
                rows,
                r##"<tr id="ev-{i}" class="event"><td><a href="#mark-{i}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>"##,
                esc(&when(e.at)),
                esc(&e.resource),
                values.join("<br>"),
                if e.line == 0 {
                    "–".to_owned()
                } else {
                    e.line.to_string()
                },
                esc(&e.log_line)
            );
        }
        let summary = self.summary(when);
        format!(
            r#"<h1>{title}</h1>
{summary}
<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="timeline">{svg}</svg>
<h2>Events a subscriber would have received ({n})</h2>
<table><thead><tr><th>time</th><th>resource</th><th>values</th><th>log line</th><th>caused by</th></tr></thead><tbody>
{rows}</tbody></table>
"#,
            title = esc(&self.title),
            w = LEFT + WIDTH + 90.0,
            h = y,
            n = self.events.len(),
        )
    }

    /// The whole page of [`Report::body`]: `footer` at the end of the body (HTML).
    pub fn page(&self, when: &dyn Fn(Nanos) -> String, footer: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n<div id=\"report\">{}</div>\n{footer}\n</body></html>\n",
            esc(&self.title),
            self.body(when)
        )
    }

    /// The standalone report page (`replay --report`).
    pub fn html(&self, when: &dyn Fn(Nanos) -> String) -> String {
        self.page(
            when,
            "<p>Made by <code>ptp-events replay --report</code>: offsets are the minimum and maximum of each pixel column; every transition is drawn.</p>",
        )
    }

    /// HOLDOVER and FREERUN episodes of the lock-state clocks: how many, the longest, the first
    /// and the last.
    fn summary(&self, when: &dyn Fn(Nanos) -> String) -> String {
        let mut current: BTreeMap<&str, (&str, Nanos)> = BTreeMap::new();
        let mut episodes: Vec<(&str, Nanos, Nanos, &str)> = Vec::new(); // state, from, to, clock
        for e in self.events.iter().filter(|e| e.resource == "lock-state") {
            for (addr, v) in &e.values {
                if v.parse::<f64>().is_ok() {
                    continue; // the offset of the same clock
                }
                match current.get(addr.as_str()).copied() {
                    Some((prev, _)) if prev == v => {}
                    prev => {
                        if let Some((prev, since)) = prev
                            && (prev == "HOLDOVER" || prev == "FREERUN")
                        {
                            episodes.push((prev, since, e.at, addr));
                        }
                        current.insert(addr, (v.as_str(), e.at));
                    }
                }
            }
        }
        for (addr, (state, since)) in &current {
            if *state == "HOLDOVER" || *state == "FREERUN" {
                episodes.push((state, *since, self.last, addr));
            }
        }
        let mut out = String::from(r#"<table class="summary">"#);
        let _ = write!(
            out,
            "<tr><td>log</td><td>{} to {}, {} events</td></tr>",
            esc(&when(self.first.unwrap_or(0))),
            esc(&when(self.last)),
            self.events.len()
        );
        for state in ["HOLDOVER", "FREERUN"] {
            let mine: Vec<_> = episodes.iter().filter(|e| e.0 == state).collect();
            if mine.is_empty() {
                let _ = write!(out, "<tr><td>{state}</td><td>none</td></tr>");
                continue;
            }
            let longest = mine.iter().max_by_key(|e| e.2 - e.1).expect("non-empty");
            let first = mine.iter().min_by_key(|e| e.1).expect("non-empty");
            let last = mine.iter().max_by_key(|e| e.1).expect("non-empty");
            let _ = write!(
                out,
                "<tr><td>{state}</td><td>{} episode{}; longest {:.1} s ({}, from {}); first at {}; last at {}</td></tr>",
                mine.len(),
                if mine.len() == 1 { "" } else { "s" },
                (longest.2 - longest.1) as f64 / 1e9,
                esc(short(longest.3)),
                esc(&when(longest.1)),
                esc(&when(first.1)),
                esc(&when(last.1))
            );
        }
        out.push_str("</table>");
        out
    }
}

/// Pixel buckets of `samples`: (x offset, (min, max)).
fn buckets(samples: &[(Nanos, i64)], t0: Nanos, span: f64) -> Vec<(f64, (f64, f64))> {
    let mut out: Vec<(f64, (f64, f64))> = Vec::new();
    let mut current: Option<(i64, f64, f64)> = None;
    for (t, o) in samples {
        let px = ((t.saturating_sub(t0)) as f64 / span * WIDTH).floor() as i64;
        let o = *o as f64;
        current = match current {
            Some((p, mn, mx)) if p == px => Some((p, mn.min(o), mx.max(o))),
            Some((p, mn, mx)) => {
                out.push((p as f64, (mn, mx)));
                Some((px, o, o))
            }
            None => Some((px, o, o)),
        };
    }
    if let Some((p, mn, mx)) = current {
        out.push((p as f64, (mn, mx)));
    }
    out
}

fn state_class(v: &str) -> &'static str {
    match v {
        "LOCKED" | "SYNCHRONIZED" => "LOCKED",
        "HOLDOVER" | "ACQUIRING-SYNC" => "HOLDOVER",
        "FREERUN" | "FAILURE-NOFIX" => "FREERUN",
        _ => "other",
    }
}

fn class_kind(v: &str) -> &'static str {
    match v.parse::<u8>() {
        Ok(6) => "6",
        Ok(255) => "slave",
        Ok(248) => "free",
        _ => "deg",
    }
}

/// The part of a resource address after the node (`/cluster/node/n1/ens1fx/master` → `ens1fx/master`).
fn short(addr: &str) -> &str {
    addr.strip_prefix("/cluster/node/")
        .and_then(|r| r.split_once('/'))
        .map_or(addr, |(_, rest)| rest)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_every_extreme() {
        // 10,000 samples in a second, one spike: it survives the downsampling.
        let mut s: Vec<(Nanos, i64)> = (0..10_000).map(|i| (i * 100_000, 5)).collect();
        s[7_777].1 = 90_000;
        let b = buckets(&s, 0, 1e9);
        assert!(b.len() <= WIDTH as usize + 1);
        assert!(b.iter().any(|(_, (_, mx))| *mx == 90_000.0));
        assert_eq!(esc("<a&\"b>"), "&lt;a&amp;&quot;b&gt;");
        assert_eq!(short("/cluster/node/n1/ens1fx/master"), "ens1fx/master");
    }
}
