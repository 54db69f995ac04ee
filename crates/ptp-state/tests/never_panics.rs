//! Property tests: the parser and the engine never panic, whatever the input.

use proptest::prelude::*;
use ptp_state::{Engine, EngineConfig, ProfileInfo, parse_line};

fn engine() -> Engine {
    Engine::new(EngineConfig::new("n").with_profile(
        "ptp4l.0.config",
        ProfileInfo {
            interfaces: vec!["ens1f0".into()],
            ..ProfileInfo::new("p")
        },
    ))
}

/// Lines that look like the protocol, with random numbers and words in the slots.
fn protocol_line() -> impl Strategy<Value = String> {
    let word = "[a-zA-Z0-9_./:{}-]{0,12}";
    let num = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[-+]?[0-9]{0,25}",
        Just(String::new())
    ];
    let proc_ = prop_oneof![
        Just("ptp4l"),
        Just("phc2sys"),
        Just("ts2phc"),
        Just("dpll"),
        Just("gnss"),
        Just("GM"),
        Just("T-BC"),
        Just("synce4l"),
        Just("chronyd"),
        Just("x")
    ];
    let tag = prop_oneof![
        Just("[ptp4l.0.config:6]"),
        Just("[ptp4l.0.config]"),
        Just("[ts2phc.0.config:{level}]"),
        Just("[synce4l.0.config]"),
        Just("[phc2sys.1.config]"),
        Just("[]"),
        Just("[a:b:c]")
    ];
    let payload = prop_oneof![
        (num.clone(), 0u8..9, num.clone(), num.clone())
            .prop_map(|(o, s, f, d)| format!("master offset {o} s{s} freq {f} path delay {d}")),
        (num.clone(), num.clone(), num.clone())
            .prop_map(|(a, b, c)| format!("rms {a} max {b} freq {c} +/- 1 delay {a} +/- 2")),
        (num.clone(), 0u8..9, num.clone())
            .prop_map(|(o, s, f)| format!("CLOCK_REALTIME phc offset {o} s{s} freq {f} delay {o}")),
        (num.clone(), word)
            .prop_map(|(p, w)| format!("port {p} ({w}): SLAVE to FAULTY on FAULT_DETECTED")),
        num.clone()
            .prop_map(|p| format!("port {p}: LISTENING to SLAVE on X")),
        num.clone().prop_map(|n| format!("PTP_PROCESS_STATUS:{n}")),
        num.clone().prop_map(|n| format!("PTP_PROCESS_STATUS {n}")),
        num.clone().prop_map(|n| format!("CLOCK_CLASS_CHANGE {n}")),
        (num.clone(), 0u8..9).prop_map(|(o, s)| format!("ens2f0 offset {o} T-BC-STATUS s{s}")),
        (0u8..9).prop_map(|s| format!("ens2f0 T-GM-STATUS s{s}")),
        (num.clone(), num.clone(), 0u8..9).prop_map(|(a, b, s)| format!(
            "ens2f0 frequency_status {a} offset {b} phase_status {a} pps_status {b} s{s}"
        )),
        (num.clone(), num.clone(), 0u8..9)
            .prop_map(|(a, b, s)| format!("ens2f0 gnss_status {a} offset {b} s{s}")),
        (num.clone(), 0u8..9)
            .prop_map(|(o, s)| format!("/dev/ptp6 offset {o} s{s} freq -1 holdover")),
        Just("source ts not valid".to_owned()),
        (num.clone(), num.clone()).prop_map(|(a, b)| format!(
            "ens7f0 clock_quality PRTC device synce1 ext_ql {a} network_option 2 ql {b} s2"
        )),
        Just("ens7f0 device synce1 eec_state EEC_LOCKED network_option 2 s2".to_owned()),
        ".{0,80}",
    ];
    (proc_, "[0-9.]{0,14}", prop::bool::ANY, tag, payload).prop_map(
        |(p, ts, space, tag, payload)| {
            format!("{p}[{ts}]:{}{tag} {payload}", if space { " " } else { "" })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse_line(&s);
    }

    #[test]
    fn engine_never_panics_on_protocol_like_lines(
        lines in prop::collection::vec((protocol_line(), 0u64..20_000_000_000), 1..60),
        cmds in prop::collection::vec(prop_oneof![Just("CMD RESTART"), Just("CMD LIVE_START"), Just("CMD X")], 0..3),
    ) {
        let mut e = engine();
        let mut out = Vec::new();
        let mut now = 0u64;
        for (l, dt) in &lines {
            now = now.saturating_add(*dt);
            e.feed(l, now, &mut out);
            let _ = e.next_deadline();
        }
        for c in cmds {
            e.feed(c, now, &mut out);
        }
        e.tick(u64::MAX, &mut out);
        let mut m = String::new();
        e.render_metrics(&mut m);
        for r in oran_api::Resource::ALL {
            let _ = e.current(r);
        }
    }

    #[test]
    fn engine_never_panics_on_arbitrary_text(lines in prop::collection::vec(".{0,200}", 0..40), now in any::<u64>()) {
        let mut e = engine();
        let mut out = Vec::new();
        for l in &lines {
            e.feed(l, now, &mut out);
        }
        e.tick(u64::MAX, &mut out);
    }
}

#[test]
fn very_long_lines() {
    let mut e = engine();
    let mut out = Vec::new();
    let pad = " 1".repeat(1 << 20);
    for l in [
        format!("ptp4l[1.0]: [ptp4l.0.config:6] master offset 5 s2 freq 1 path delay 5{pad}"),
        format!("ptp4l[1.0]: [ptp4l.0.config:6] {}", "x".repeat(4 << 20)),
        format!("dpll[1]:[ts2phc.0.config] ens2f0 {pad} s2"),
        format!("{}[1.0]: [a.0.config] x", "p".repeat(1 << 20)),
        "[".repeat(1 << 20),
    ] {
        let _ = parse_line(&l);
        e.feed(&l, 0, &mut out);
    }
    // The first line still parses (its trailing padding is beyond what the grammar reads).
    assert!(
        out.iter()
            .any(|c| c.resource == oran_api::Resource::LockState)
    );
}
