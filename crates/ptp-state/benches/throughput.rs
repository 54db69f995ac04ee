//! Parse-and-decide throughput over the real T-BC daemon log.
//!
//! `cargo bench -p ptp-state --bench throughput` (release profile). Prints lines/second for the
//! parser alone and for `Engine::feed` (parse + state machines + timers), single-threaded.

use std::hint::black_box;
use std::time::Instant;

use ptp_state::{Engine, EngineConfig, ReplayClock, parse_line};

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/daemon-log-tbc.txt");
    let log = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("fixture {path} cannot be read ({e})"));
    let lines: Vec<&str> = log.lines().collect();
    // Times come from the log itself, computed up front so that only the engine is measured.
    let mut clock = ReplayClock::new();
    let times: Vec<u64> = lines.iter().map(|l| clock.observe(l)).collect();
    let passes = 40;
    let total = (lines.len() * passes) as f64;

    let t = Instant::now();
    for _ in 0..passes {
        for l in &lines {
            black_box(parse_line(black_box(l)));
        }
    }
    let parse = total / t.elapsed().as_secs_f64();

    let mut out = Vec::new();
    let mut events = 0usize;
    let t = Instant::now();
    for pass in 0..passes {
        let mut e = Engine::new(EngineConfig::new("bench-node"));
        let base = pass as u64 * 10_000_000_000_000;
        for (l, now) in lines.iter().zip(&times) {
            e.feed(black_box(l), base + now, &mut out);
            events += out.len();
            out.clear();
        }
        black_box(&e);
    }
    let feed = total / t.elapsed().as_secs_f64();

    // The protocol lines only (what the socket carries), without the klog chatter.
    let proto: Vec<(&str, u64)> = lines
        .iter()
        .zip(&times)
        .filter(|(l, _)| !matches!(parse_line(l), ptp_state::ParsedLine::Unknown))
        .map(|(l, t)| (*l, *t))
        .collect();
    let t = Instant::now();
    for pass in 0..passes {
        let mut e = Engine::new(EngineConfig::new("bench-node"));
        let base = pass as u64 * 10_000_000_000_000;
        for (l, now) in &proto {
            e.feed(black_box(l), base + now, &mut out);
            out.clear();
        }
        black_box(&e);
    }
    let proto_rate = (proto.len() * passes) as f64 / t.elapsed().as_secs_f64();

    println!(
        "fixture: {} lines ({} protocol lines), {passes} passes",
        lines.len(),
        proto.len()
    );
    println!("parse only:              {:>12.0} lines/s", parse);
    println!(
        "feed (parse + decide):   {:>12.0} lines/s  ({} events)",
        feed, events
    );
    println!("feed, protocol lines:    {:>12.0} lines/s", proto_rate);
}
