//! Structure-aware engine target: the input chooses an engine configuration (profiles, clock
//! types, thresholds, interfaces, aliases, downtime threshold) and a sequence of well-formed
//! linuxptp-daemon lines (every line kind the parser knows, with numbers near the thresholds and
//! at the extremes, names with characters that need escaping; a few with a damaged header, cut
//! short or trailed by an odd character) and clock advances. Byte mutations of the plain `engine`
//! target rarely spell a whole valid line; here every input is a session.
//!
//! Properties checked, besides "no panic":
//! - the engine is deterministic: two engines fed the same session emit the same changes and
//!   render the same metrics;
//! - a resource the engine has published a change for has a current state (CurrentState never
//!   answers "no data" for something a subscriber was told about), until a `CMD RESTART`, after
//!   which the engine forgets everything by design until the daemon replays;
//! - the metrics are always valid Prometheus text exposition (names, label escaping, values).
#![no_main]
use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use oran_api::Resource;
use ptp_state::{ClockType, Control, Engine, EngineConfig, ParsedLine, ProfileInfo, Thresholds};

const CONFIGS: &[&str] = &[
    "ptp4l.0.config",
    "ptp4l.1.config",
    "ts2phc.0.config",
    "ts2phc.1.config",
    "phc2sys.0.config",
    "synce4l.0.config",
    "chronyd.0.config",
];
const IFACES: &[&str] = &[
    "ens1f0",
    "ens1f1",
    "ens2f0",
    "ens4f0",
    "ens8f0",
    "/dev/ptp0",
    "en\"s\\1\nx",
    "",
];
const PORT_EVENTS: &[&str] = &[
    "INITIALIZING to LISTENING on INIT_COMPLETE",
    "LISTENING to UNCALIBRATED on RS_SLAVE",
    "UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
    "LISTENING to SLAVE on MASTER_CLOCK_SELECTED",
    "LISTENING to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
    "UNCALIBRATED to MASTER on RS_GRAND_MASTER",
    "SLAVE to UNCALIBRATED on SYNCHRONIZATION_FAULT",
    "SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)",
    "MASTER to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)",
    "FAULTY to LISTENING on INIT_COMPLETE",
    "SLAVE to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
    "SLAVE to GRAND_MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
    "SLAVE to LISTENING on INIT_COMPLETE",
    "SLAVE to PASSIVE on RS_PASSIVE",
    "MASTER to PASSIVE on RS_PASSIVE",
    "UNCALIBRATED to LISTENING on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
    "MASTER to UNCALIBRATED on RS_SLAVE",
    "LISTENING to PASSIVE on RS_PASSIVE",
];

fn pick<'a>(u: &mut Unstructured<'_>, from: &[&'a str]) -> Result<&'a str> {
    Ok(from[u.choose_index(from.len())?])
}

/// An offset near the default and chosen thresholds, or anywhere.
fn offset(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0..=4u8)? {
        0..=2 => u.int_in_range(-300..=300)?,
        3 => *u.choose(&[
            99_999_999_999,
            -99_999_999_999,
            i64::MAX,
            i64::MIN,
            1_000_000_000,
        ])?,
        _ => u.arbitrary()?,
    })
}

fn servo(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(format!("s{}", u.int_in_range(0..=4u8)?))
}

/// Characters a header or payload rarely meets: ASCII and Unicode whitespace (from each block the
/// whitespace table distinguishes) and non-ASCII text of each UTF-8 length.
const ODD: &[&str] = &[
    " ",
    "\t",
    "\n",
    "\x0c",
    "\r",
    "\u{85}",
    "\u{a0}",
    "\u{1680}",
    "\u{2003}",
    "\u{2028}",
    "\u{205f}",
    "\u{3000}",
    "\u{e9}",
    "\u{20ac}",
    "\u{1f570}",
    "x",
];

/// The `<process>[<ts>]: [<config>:<level>] ` header, in one of the forms the daemon writes
/// (chronyd's `chronyd[<ts>][<config>]: ` among them), sometimes behind the daemon's klog prefix.
/// One header in eight has each of its parts kept, dropped, replaced or followed by an [`ODD`]
/// character: that reaches each rejection of the header splitter and its handling of Unicode
/// around the payload, which random strings reach only by luck (they kept finding new edges
/// there run after run).
fn header(u: &mut Unstructured<'_>, process: &str, config: &str) -> Result<String> {
    let ts: u32 = u.arbitrary()?;
    let level = ts % 8;
    let h = match u.int_in_range(0..=3u8)? {
        0 => format!("{process}[{ts}.{:03}]: [{config}:{level}] ", ts % 1000),
        1 => format!("{process}[{ts}]:[{config}] "),
        2 => format!("{process}[{ts}][{config}]: "),
        _ => format!("{process}[{ts}]: [{config}] "),
    };
    let h = if u.ratio(1, 8)? {
        // Each part of the header kept, dropped or spoiled independently.
        let mut h = String::new();
        let mut part = |u: &mut Unstructured<'_>, good: &str| -> Result<()> {
            match u.int_in_range(0..=5u8)? {
                0 => {}
                1 => h.push_str(pick(u, ODD)?),
                2 => {
                    h.push_str(good);
                    h.push_str(pick(u, ODD)?);
                }
                _ => h.push_str(good),
            }
            Ok(())
        };
        part(u, process)?;
        part(u, "[")?;
        part(u, &ts.to_string())?;
        part(u, "]")?;
        let sep = pick(u, &[": ", ":", ""])?;
        part(u, sep)?;
        part(u, "[")?;
        part(u, config)?;
        part(u, &format!(":{level}"))?;
        part(u, "]")?;
        let sep = pick(u, &[" ", ": ", ":", ""])?;
        part(u, sep)?;
        h
    } else {
        h
    };
    Ok(if u.ratio(1, 6)? {
        format!("I0908 10:13:02.182194  624338 event_tbc.go:266] {h}")
    } else {
        h
    })
}

fn line(u: &mut Unstructured<'_>) -> Result<String> {
    let config = pick(u, CONFIGS)?;
    let iface = pick(u, IFACES)?;
    let kind = u.int_in_range(0..=23u8)?;
    Ok(match kind {
        0..=3 => format!(
            "{}master offset {:>10} {} freq {:+} path delay {}",
            header(u, "ptp4l", config)?,
            offset(u)?,
            servo(u)?,
            u.int_in_range(-100_000..=100_000i64)?,
            u.int_in_range(0..=5_000i64)?
        ),
        4..=6 => {
            let port = u.int_in_range(0..=4u16)?;
            let event = pick(u, PORT_EVENTS)?;
            if u.ratio(1, 4)? {
                format!("{}port {port}: {event}", header(u, "ptp4l", config)?)
            } else {
                format!(
                    "{}port {port} ({iface}): {event}",
                    header(u, "ptp4l", config)?
                )
            }
        }
        7 => format!(
            "{}rms {} max {} freq {:+} +/- {} delay {} +/- {}",
            header(u, "ptp4l", config)?,
            u.int_in_range(0..=500i64)?,
            offset(u)?,
            u.int_in_range(-100_000..=100_000i64)?,
            u.int_in_range(0..=50i64)?,
            u.int_in_range(0..=5_000i64)?,
            u.int_in_range(0..=50i64)?
        ),
        8..=9 => format!(
            "{}CLOCK_REALTIME {} offset {:>9} {} freq {:+} delay {}",
            header(u, "phc2sys", config)?,
            pick(u, &["phc", "sys"])?,
            offset(u)?,
            servo(u)?,
            u.int_in_range(-100_000..=100_000i64)?,
            u.int_in_range(0..=5_000i64)?
        ),
        10 => format!(
            "{}ptp_ha_profile {} state {}",
            header(u, "phc2sys", config)?,
            pick(u, &["profile1", "profile2", "tbc"])?,
            u.int_in_range(0..=2u8)?
        ),
        11..=12 => format!(
            "{}{iface} {}offset {:>10} {} freq {:+}{}",
            header(u, "ts2phc", config)?,
            if u.arbitrary()? { "master " } else { "" },
            offset(u)?,
            servo(u)?,
            u.int_in_range(-100_000..=100_000i64)?,
            if u.ratio(1, 4)? { " holdover" } else { "" }
        ),
        13 => format!(
            "{}{iface} nmea_status {} offset {} {}",
            header(u, "ts2phc", config)?,
            u.int_in_range(0..=1u8)?,
            offset(u)?,
            servo(u)?
        ),
        14 => format!("{}source ts not valid", header(u, "ts2phc", config)?),
        15 => format!(
            "{}{iface} frequency_status {} offset {} phase_status {} pps_status {} {}",
            header(u, "dpll", config)?,
            u.int_in_range(-1..=4i8)?,
            offset(u)?,
            u.int_in_range(-1..=4i8)?,
            u.int_in_range(0..=1u8)?,
            servo(u)?
        ),
        16 => format!(
            "{}{iface} gnss_status {} offset {} {}",
            header(u, "gnss", config)?,
            u.int_in_range(0..=5u8)?,
            offset(u)?,
            servo(u)?
        ),
        17 => format!(
            "{}{iface} T-GM-STATUS {}",
            header(u, "GM", config)?,
            servo(u)?
        ),
        18 => format!(
            "{}{iface} offset {} T-BC-STATUS {}",
            header(u, "T-BC", config)?,
            offset(u)?,
            servo(u)?
        ),
        19 => {
            let dev = pick(u, &["synce1", "synce2"])?;
            if u.arbitrary()? {
                format!(
                    "{}{iface} device {dev} clock_quality ql 0x{:x} ext_ql 0x{:x} network_option {}",
                    header(u, "synce4l", config)?,
                    u.arbitrary::<u8>()?,
                    u.arbitrary::<u8>()?,
                    u.int_in_range(1..=2u8)?
                )
            } else {
                format!(
                    "{}{iface} device {dev} eec_state {} {}",
                    header(u, "synce4l", config)?,
                    pick(
                        u,
                        &[
                            "EEC_LOCKED",
                            "EEC_LOCKED_HO_ACQ",
                            "EEC_HOLDOVER",
                            "EEC_FREERUN",
                            "EEC_INVALID"
                        ]
                    )?,
                    servo(u)?
                )
            }
        }
        20 => format!(
            "{}{}",
            header(u, "chronyd", config)?,
            pick(
                u,
                &[
                    "Selected source 10.0.0.1",
                    "Can't synchronise: no selectable sources"
                ]
            )?
        ),
        21 => {
            let process = pick(
                u,
                &[
                    "ptp4l", "phc2sys", "ts2phc", "gnss", "dpll", "synce4l", "chronyd",
                ],
            )?;
            if u.ratio(2, 3)? {
                format!(
                    "{}PTP_PROCESS_STATUS:{}",
                    header(u, process, config)?,
                    u.int_in_range(0..=1u8)?
                )
            } else {
                format!(
                    "{}CLOCK_CLASS_CHANGE {}",
                    header(u, process, config)?,
                    u.choose(&[6u16, 7, 135, 140, 165, 248, 255, 256])?
                )
            }
        }
        22 => pick(u, &["CMD RESTART", "CMD LIVE_START"])?.to_owned(),
        _ => u.arbitrary::<&str>()?.to_owned(),
    })
}

fn config(u: &mut Unstructured<'_>) -> Result<EngineConfig> {
    let mut cfg = EngineConfig::new(pick(u, &["fuzz-node", "node\"1"])?);
    cfg.downtime_threshold = Duration::from_secs(u.int_in_range(0..=10)?);
    for run in 0..u.int_in_range(0..=2usize)? {
        let mut interfaces = Vec::new();
        for _ in 0..u.int_in_range(0..=3usize)? {
            interfaces.push(pick(u, IFACES)?.to_owned());
        }
        let thresholds = Thresholds {
            hold_over_timeout: Duration::from_secs(u.int_in_range(0..=120)?),
            max_offset: *u.choose(&[100, 50, 0, -5, 1_000, i64::MAX])?,
            min_offset: *u.choose(&[-100, -50, 0, 60, -1_000, i64::MIN])?,
        };
        let clock_type = *u.choose(&[
            ClockType::Auto,
            ClockType::Oc,
            ClockType::Bc,
            ClockType::TBc,
            ClockType::TGm,
        ])?;
        let leading_interface = if u.arbitrary()? {
            Some(pick(u, IFACES)?.to_owned())
        } else {
            None
        };
        let p = ProfileInfo {
            name: format!("profile{run}"),
            thresholds,
            interfaces,
            clock_type,
            leading_interface,
            // A T-BC's further threshold series (their rendering is checked as text too).
            extra_thresholds: if run % 2 == 1 {
                vec![
                    ("MaxInSpecOffset".into(), 1500),
                    ("inSyncConditionTimes".into(), 1),
                ]
            } else {
                Vec::new()
            },
        };
        cfg = cfg.with_profile(format!("ptp4l.{run}.config"), p);
    }
    if u.arbitrary()? {
        cfg = cfg.with_alias(pick(u, IFACES)?, "ens1fx");
    }
    Ok(cfg)
}

fn session(u: &mut Unstructured<'_>) -> Result<()> {
    let cfg = config(u)?;
    // FUZZ_TRACE=1 <binary> <crash file> prints the session.
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    if trace {
        eprintln!("config: {cfg:?}");
    }
    let mut a = Engine::new(cfg.clone());
    let mut b = Engine::new(cfg);
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    let mut last: HashMap<Resource, Vec<oran_api::Value>> = HashMap::new();
    let mut now = 0u64;
    let mut steps = 0;
    while !u.is_empty() && steps < 200 {
        steps += 1;
        if u.ratio(1, 3)? {
            now = now.saturating_add(u.int_in_range(0..=30_000_000_000u64)?);
            if trace {
                eprintln!("tick {now}");
            }
            a.tick(now, &mut out_a);
            b.tick(now, &mut out_b);
        } else {
            let mut l = line(u)?;
            match u.int_in_range(0..=15u8)? {
                0 => l.push_str(pick(u, ODD)?),
                1 => {
                    // Cut short anywhere, as a torn write would.
                    let mut cut = u.int_in_range(0..=l.len())?;
                    while !l.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    l.truncate(cut);
                }
                _ => {}
            }
            if trace {
                eprintln!("feed {l:?}");
            }
            a.feed(&l, now, &mut out_a);
            b.feed(&l, now, &mut out_b);
            if ptp_state::parse_line(&l) == ParsedLine::Control(Control::Restart) {
                // The daemon re-applied its profiles: everything is forgotten until the replay.
                last.clear();
            }
        }
        assert_eq!(out_a, out_b, "two engines fed the same session differ");
        for c in out_a.drain(..) {
            last.insert(c.resource, c.values);
        }
        out_b.clear();
        for (r, published) in &last {
            let current = a.current(*r);
            assert!(
                current.is_some(),
                "{r:?} was published ({published:?}) but has no current state"
            );
        }
    }
    let (mut ma, mut mb) = (String::new(), String::new());
    a.render_metrics(&mut ma);
    b.render_metrics(&mut mb);
    assert_eq!(
        ma, mb,
        "two engines fed the same session render different metrics"
    );
    check_exposition(&ma);
    Ok(())
}

fn is_metric_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A sample value as Prometheus' parser takes it (Go `ParseFloat`: out-of-range values such as
/// `1e400` are refused; `NaN`, `+Inf`, `-Inf` are allowed).
fn is_value(v: &str) -> bool {
    ["NaN", "+Inf", "-Inf", "Inf"].contains(&v) || v.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Panics unless `text` is valid Prometheus text exposition format (0.0.4) as this renderer
/// writes it: `# HELP`/`# TYPE` lines with a valid name (one TYPE per family, before its
/// samples, a known type), samples `name{label="value",...} value [timestamp]` with single
/// blanks, label names not starting with a digit, values escaped (`\\`, `\"`, `\n` only).
fn check_exposition(text: &str) {
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut f = rest.splitn(3, ' ');
            let kind = f.next().unwrap_or("");
            let name = f.next().unwrap_or("");
            assert!(
                ["HELP", "TYPE"].contains(&kind),
                "bad comment line {line:?}"
            );
            assert!(is_metric_name(name), "bad name in {line:?}");
            if kind == "TYPE" {
                let t = f.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "bad type in {line:?}"
                );
                assert!(typed.insert(name.to_owned()), "second TYPE for {name}");
            }
            continue;
        }
        let b = line.as_bytes();
        let name_len = b
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b':')
            .count();
        let name = &line[..name_len];
        assert!(is_metric_name(name), "bad metric name in {line:?}");
        let mut i = name_len;
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                if b.get(i) == Some(&b'}') {
                    i += 1;
                    break;
                }
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                assert!(is_label_name(&line[start..i]), "bad label name in {line:?}");
                assert_eq!(
                    b.get(i),
                    Some(&b'='),
                    "no '=' after a label name in {line:?}"
                );
                assert_eq!(
                    b.get(i + 1),
                    Some(&b'"'),
                    "unquoted label value in {line:?}"
                );
                i += 2;
                loop {
                    match b.get(i) {
                        Some(b'\\') => {
                            assert!(
                                matches!(b.get(i + 1), Some(b'\\' | b'"' | b'n')),
                                "bad escape in {line:?}"
                            );
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\n') => panic!("raw newline in a label value in {line:?}"),
                        Some(_) => i += 1,
                        None => panic!("unterminated label value in {line:?}"),
                    }
                }
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => {}
                    _ => panic!("no ',' or '}}' after a label value in {line:?}"),
                }
            }
        }
        assert_eq!(
            b.get(i),
            Some(&b' '),
            "no blank before the value in {line:?}"
        );
        let mut fields = line[i + 1..].split(' ');
        let value = fields.next().unwrap_or("");
        assert!(is_value(value), "bad value {value:?} in {line:?}");
        if let Some(ts) = fields.next() {
            assert!(ts.parse::<i64>().is_ok(), "bad timestamp in {line:?}");
        }
        assert!(fields.next().is_none(), "trailing text in {line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = session(&mut u);
});
