//! Table tests of the state machines (linuxptp-daemon.md §3.4, §3.6) with explicit `now`.

use std::time::Duration;

use oran_api::Resource;
use ptp_state::{Change, ClockType, Engine, EngineConfig, Nanos, ProfileInfo, Thresholds};

const S: Nanos = 1_000_000_000;
const NODE: &str = "n1";

fn oc(th: Thresholds) -> Engine {
    Engine::new(EngineConfig::new(NODE).with_profile(
        "ptp4l.0.config",
        ProfileInfo {
            interfaces: vec!["ens1f0".into(), "ens1f1".into()],
            thresholds: th,
            ..ProfileInfo::new("oc")
        },
    ))
}

fn offset(o: i64, servo: u8) -> String {
    format!("ptp4l[1.0]: [ptp4l.0.config:6] master offset {o} s{servo} freq +1 path delay 500")
}

fn phc(o: i64, servo: u8) -> String {
    format!(
        "phc2sys[1.0]: [ptp4l.0.config:6] CLOCK_REALTIME phc offset {o} s{servo} freq +1 delay 500"
    )
}

const SLAVE: &str = "ptp4l[1.0]: [ptp4l.0.config:5] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED";
const FAULTY: &str = "ptp4l[1.0]: [ptp4l.0.config:5] port 1 (ens1f0): SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)";

/// The states (value of each notification) of the changes of `r`.
fn states(out: &[Change], r: Resource) -> Vec<String> {
    out.iter()
        .filter(|c| c.resource == r)
        .map(|c| c.values[0].value.clone())
        .collect()
}

fn feed(e: &mut Engine, line: &str, now: Nanos) -> Vec<Change> {
    let mut out = Vec::new();
    e.feed(line, now, &mut out);
    out
}

fn locked_oc() -> Engine {
    let mut e = oc(Thresholds::default());
    feed(&mut e, SLAVE, 0);
    let out = feed(&mut e, &offset(5, 2), S);
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);
    e
}

#[test]
fn thresholds_at_inside_and_outside_the_boundary() {
    // (max, min, offset, servo) -> state from an undecided clock. Equal is out of range.
    let cases = [
        (100, -100, 99, 2, "LOCKED"),
        (100, -100, 100, 2, "FREERUN"),
        (100, -100, 101, 2, "FREERUN"),
        (100, -100, -99, 2, "LOCKED"),
        (100, -100, -100, 2, "FREERUN"),
        (100, -100, -101, 2, "FREERUN"),
        (100, -100, 0, 3, "LOCKED"),
        (100, -100, 0, 1, "FREERUN"),
        (100, -100, 0, 0, "FREERUN"),
        (50, -10, 49, 2, "LOCKED"),
        (50, -10, 50, 2, "FREERUN"),
        (50, -10, -10, 2, "FREERUN"),
        (50, -10, -9, 2, "LOCKED"),
    ];
    for (max, min, o, servo, want) in cases {
        let mut e = oc(Thresholds {
            max_offset: max,
            min_offset: min,
            ..Thresholds::default()
        });
        let out = feed(&mut e, &offset(o, servo), S);
        assert_eq!(
            states(&out, Resource::LockState),
            [want],
            "max {max} min {min} offset {o} s{servo}"
        );
    }
}

#[test]
fn lock_state_transitions_of_section_3_4() {
    // Each row: lines after a LOCKED clock, expected lock-state events.
    let cases: &[(&[&str], &[&str])] = &[
        // LOCKED, in range: no event (edge-triggered).
        (&["o:3:2", "o:-3:2"], &[]),
        // LOCKED, out of range: FREERUN.
        (&["o:100:2"], &["FREERUN"]),
        // FREERUN -> LOCKED only in range.
        (
            &["o:100:2", "o:150:2", "o:-100:2", "o:99:2"],
            &["FREERUN", "LOCKED"],
        ),
        // servo unlocked: FREERUN; then a locked in-range sample.
        (&["o:0:0", "o:0:1", "o:0:2"], &["FREERUN", "LOCKED"]),
        // Unknown servo state s5: ignored for the state.
        (&["o:500:5"], &[]),
    ];
    for (lines, want) in cases {
        let mut e = locked_oc();
        let mut out = Vec::new();
        for l in *lines {
            let p: Vec<&str> = l.split(':').collect();
            e.feed(
                &offset(p[1].parse().unwrap(), p[2].parse().unwrap()),
                2 * S,
                &mut out,
            );
        }
        assert_eq!(states(&out, Resource::LockState), *want, "{lines:?}");
    }
}

#[test]
fn slave_fault_goes_holdover_then_freerun_exactly_at_the_timeout() {
    for (tick_at, want) in [
        (2 * S + 5 * S - 1, &[][..]),
        (2 * S + 5 * S, &["FREERUN"][..]),
        (2 * S + 60 * S, &["FREERUN"][..]),
    ] {
        let mut e = locked_oc();
        let out = feed(&mut e, FAULTY, 2 * S);
        assert_eq!(states(&out, Resource::LockState), ["HOLDOVER"]);
        assert_eq!(states(&out, Resource::SyncState), ["HOLDOVER"]);
        // The offset of a holdover event is the last known one.
        assert_eq!(out[0].values[1].value, "5");
        assert_eq!(e.next_deadline(), Some(7 * S));
        let mut out = Vec::new();
        e.tick(tick_at, &mut out);
        assert_eq!(states(&out, Resource::LockState), want, "tick at {tick_at}");
        if !want.is_empty() {
            assert_eq!(states(&out, Resource::SyncState), ["FREERUN"]);
            assert_eq!(e.next_deadline(), None);
        }
    }
}

#[test]
fn the_timeout_also_fires_from_feed_before_the_line() {
    let mut e = locked_oc();
    feed(&mut e, FAULTY, 2 * S);
    // A sample arriving late: the timer fires first (FREERUN), then the in-range sample locks.
    let out = feed(&mut e, &offset(1, 2), 7 * S);
    assert_eq!(states(&out, Resource::LockState), ["FREERUN", "LOCKED"]);
}

#[test]
fn holdover_is_left_only_for_locked_in_range() {
    let mut e = locked_oc();
    feed(&mut e, FAULTY, 2 * S);
    let mut out = Vec::new();
    for l in [offset(0, 0), offset(0, 1), offset(100, 2), offset(-100, 2)] {
        e.feed(&l, 3 * S, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    e.feed(&offset(99, 2), 4 * S, &mut out);
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);
    // The timer is closed.
    assert_eq!(e.next_deadline(), None);
    e.tick(100 * S, &mut out);
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);
}

#[test]
fn port_changes_that_start_holdover() {
    let cases = [
        ("SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)", true),
        ("SLAVE to UNCALIBRATED on SYNCHRONIZATION_FAULT", true),
        ("SLAVE to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES", true),
        ("SLAVE to GRAND_MASTER on X", true),
        ("SLAVE to LISTENING on X", true),
        ("SLAVE to PASSIVE on X", false),
        ("new foreign master 507c6f.fffe.1fb16c-4", false),
    ];
    for (ev, holdover) in cases {
        let mut e = locked_oc();
        let out = feed(
            &mut e,
            &format!("ptp4l[1.0]: [ptp4l.0.config:5] port 1 (ens1f0): {ev}"),
            2 * S,
        );
        let want: &[&str] = if holdover { &["HOLDOVER"] } else { &[] };
        assert_eq!(states(&out, Resource::LockState), want, "{ev}");
    }
    // A fault on a port that was not SLAVE does nothing; nor on port 2 (MASTER).
    let mut e = locked_oc();
    let out = feed(
        &mut e,
        "ptp4l[1.0]: [ptp4l.0.config:5] port 2 (ens1f1): MASTER to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)",
        2 * S,
    );
    assert!(out.is_empty());
    // linuxptp 3.1 `port 1:` form: the interface comes from the profile.
    let mut e = locked_oc();
    let out = feed(
        &mut e,
        "ptp4l[5199193.712]: [ptp4l.0.config] port 1: SLAVE to UNCALIBRATED on SYNCHRONIZATION_FAULT",
        2 * S,
    );
    assert_eq!(states(&out, Resource::LockState), ["HOLDOVER"]);
    assert_eq!(
        out[0].values[0].resource_address,
        "/cluster/node/n1/ens1f0/master"
    );
}

#[test]
fn a_free_running_clock_does_not_go_to_holdover() {
    let mut e = oc(Thresholds::default());
    feed(&mut e, SLAVE, 0);
    feed(&mut e, &offset(500, 2), S);
    let out = feed(&mut e, FAULTY, 2 * S);
    assert!(out.is_empty());
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn custom_holdover_timeout() {
    let mut e = oc(Thresholds {
        hold_over_timeout: Duration::from_secs(30),
        ..Thresholds::default()
    });
    feed(&mut e, SLAVE, 0);
    feed(&mut e, &offset(5, 2), S);
    feed(&mut e, FAULTY, 2 * S);
    assert_eq!(e.next_deadline(), Some(32 * S));
}

#[test]
fn os_clock_is_the_worst_of_phc2sys_and_the_ptp_clock_and_does_not_flap() {
    let mut e = locked_oc();
    let out = feed(&mut e, &phc(3, 2), 2 * S);
    assert_eq!(states(&out, Resource::OsClockSyncState), ["LOCKED"]);
    // The node was already LOCKED (from the PTP clock alone): no sync-state event.
    assert!(states(&out, Resource::SyncState).is_empty());
    // ptp4l in HOLDOVER: nothing for the OS clock until the next phc2sys sample.
    let out = feed(&mut e, FAULTY, 3 * S);
    assert!(states(&out, Resource::OsClockSyncState).is_empty());
    let out = feed(&mut e, &phc(3, 2), 3 * S + 1);
    assert_eq!(states(&out, Resource::OsClockSyncState), ["HOLDOVER"]);
    // Many samples, interleaved with other processes' lines: one state, no events.
    let mut out = Vec::new();
    for i in 0..100 {
        e.feed(&phc(i % 7 - 3, 2), 3 * S + 2 + i as u64, &mut out);
        e.feed(
            "ts2phc[1.0]: [ts2phc.0.config:6] /dev/ptp6 offset -1 s2 freq -3972",
            3 * S + 2 + i as u64,
            &mut out,
        );
        e.feed(&offset(3, 2), 3 * S + 2 + i as u64, &mut out);
    }
    // The ptp4l sample re-locked the clock (in range); the OS clock follows on the next sample.
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);
    assert_eq!(states(&out, Resource::OsClockSyncState), ["LOCKED"]);
    // phc2sys out of range alone.
    let out = feed(&mut e, &phc(100, 2), 10 * S);
    assert_eq!(states(&out, Resource::OsClockSyncState), ["FREERUN"]);
    assert_eq!(out[0].values[1].value, "100");
}

#[test]
fn process_restart_shorter_than_the_downtime_threshold_is_silent() {
    let down = "ptp4l[1757326417]:[ptp4l.0.config] PTP_PROCESS_STATUS:0";
    let up = "ptp4l[1757326418]:[ptp4l.0.config] PTP_PROCESS_STATUS:1";
    // (time of the UP after the DOWN at 10 s, expected lock-state events)
    for (up_at, want) in [
        (Some(10 * S + 1), &[][..]),
        (Some(15 * S - 1), &[][..]),
        (Some(15 * S), &["FREERUN"][..]),
        (None, &["FREERUN"][..]),
    ] {
        let mut e = locked_oc();
        feed(&mut e, &phc(3, 2), 2 * S);
        let mut out = Vec::new();
        e.feed(down, 10 * S, &mut out);
        assert!(out.is_empty());
        assert_eq!(e.next_deadline(), Some(15 * S));
        if let Some(t) = up_at {
            e.feed(up, t, &mut out);
        }
        e.tick(100 * S, &mut out);
        assert_eq!(states(&out, Resource::LockState), want, "up at {up_at:?}");
        if !want.is_empty() {
            // What ptp4l drives: its clock and the OS clock that follows it.
            assert_eq!(out[0].values[1].value, "-9999999999999999");
            assert_eq!(states(&out, Resource::OsClockSyncState), ["FREERUN"]);
            assert_eq!(states(&out, Resource::SyncState), ["FREERUN"]);
        }
    }
}

#[test]
fn zero_downtime_threshold_publishes_at_once() {
    let mut cfg = EngineConfig::new(NODE);
    cfg.downtime_threshold = Duration::ZERO;
    let mut e = Engine::new(cfg);
    feed(&mut e, &phc(3, 2), S);
    let out = feed(
        &mut e,
        "phc2sys[1.0]: [ptp4l.0.config] PTP_PROCESS_STATUS 0",
        2 * S,
    );
    assert_eq!(states(&out, Resource::OsClockSyncState), ["FREERUN"]);
}

#[test]
fn restart_command_drops_process_state() {
    let mut e = locked_oc();
    assert!(e.current(Resource::LockState).is_some());
    let out = feed(&mut e, "CMD RESTART", 2 * S);
    assert!(out.is_empty());
    assert_eq!(e.current(Resource::LockState), None);
    assert_eq!(e.current(Resource::SyncState), None);
    feed(&mut e, SLAVE, 3 * S);
    let out = feed(&mut e, &offset(5, 2), 3 * S);
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);
    assert_eq!(states(&out, Resource::SyncState), ["LOCKED"]);
    assert!(feed(&mut e, "CMD LIVE_START", 4 * S).is_empty());
}

fn tgm() -> Engine {
    Engine::new(
        EngineConfig::new(NODE)
            .with_profile(
                "ts2phc.0.config",
                ProfileInfo {
                    interfaces: vec!["ens2f0".into()],
                    clock_type: ClockType::TGm,
                    leading_interface: Some("ens2f0".into()),
                    ..ProfileInfo::new("gm")
                },
            )
            .with_alias("ens2f0", "ens2fx"),
    )
}

fn dpll(s: u8) -> String {
    format!(
        "dpll[1700598434]:[ts2phc.0.config] ens2f0 frequency_status 3 offset 0 phase_status 3 pps_status 1 s{s}"
    )
}
fn gnss(fix: u8, s: u8) -> String {
    format!("gnss[1689014431]:[ts2phc.0.config] ens2f0 gnss_status {fix} offset 0 s{s}")
}
fn ts2phc(o: i64, tail: &str) -> String {
    format!("ts2phc[1896327.319]: [ts2phc.0.config] ens2f0 master offset {o} s2 freq -2{tail}")
}

#[test]
fn tgm_state_derived_from_dpll_gnss_and_ts2phc() {
    // Each row: lines in order, expected lock-state events.
    let cases: &[(&[String], &[&str])] = &[
        (&[dpll(2), gnss(3, 2), ts2phc(-1, "")], &["LOCKED"]),
        // DPLL holdover -> HOLDOVER; DPLL freerun -> FREERUN.
        (
            &[dpll(2), gnss(3, 2), ts2phc(-1, ""), dpll(1)],
            &["LOCKED", "HOLDOVER"],
        ),
        (
            &[dpll(2), gnss(3, 2), ts2phc(-1, ""), dpll(0)],
            &["LOCKED", "FREERUN"],
        ),
        // GNSS lost, ts2phc still locked: keep LOCKED (wait for the DPLL) ...
        (
            &[
                dpll(2),
                gnss(3, 2),
                ts2phc(-1, ""),
                gnss(0, 0),
                ts2phc(-1, ""),
            ],
            &["LOCKED"],
        ),
        // ... then ts2phc in holdover -> HOLDOVER.
        (
            &[
                dpll(2),
                gnss(3, 2),
                ts2phc(-1, ""),
                gnss(0, 0),
                ts2phc(-1, " holdover"),
            ],
            &["LOCKED", "HOLDOVER"],
        ),
        // ts2phc out of range (equal to the threshold) -> FREERUN.
        (
            &[dpll(2), gnss(3, 2), ts2phc(-1, ""), ts2phc(100, "")],
            &["LOCKED", "FREERUN"],
        ),
        // Two `source ts not valid` force ts2phc FREERUN; one does not.
        (
            &[
                dpll(2),
                gnss(3, 2),
                ts2phc(-1, ""),
                "ts2phc[2.0]: [ts2phc.0.config:3] source ts not valid".into(),
            ],
            &["LOCKED"],
        ),
        (
            &[
                dpll(2),
                gnss(3, 2),
                ts2phc(-1, ""),
                "ts2phc[2.0]: [ts2phc.0.config:3] source ts not valid".into(),
                "ts2phc[2.1]: [ts2phc.0.config:3] source ts not valid".into(),
            ],
            &["LOCKED", "FREERUN"],
        ),
        // A GM status line is authoritative from then on.
        (
            &[
                dpll(2),
                gnss(3, 2),
                ts2phc(-1, ""),
                "GM[2000000100]:[ts2phc.0.config] ens2f0 T-GM-STATUS s1".into(),
                dpll(0),
            ],
            &["LOCKED", "HOLDOVER"],
        ),
    ];
    for (lines, want) in cases {
        let mut e = tgm();
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            e.feed(l, i as u64 * S, &mut out);
        }
        assert_eq!(states(&out, Resource::LockState), *want, "{lines:#?}");
    }
    let mut e = tgm();
    let mut out = Vec::new();
    for l in [dpll(2), gnss(3, 2), ts2phc(-1, "")] {
        e.feed(&l, 0, &mut out);
    }
    let lock: Vec<&Change> = out
        .iter()
        .filter(|c| c.resource == Resource::LockState)
        .collect();
    assert_eq!(
        lock[0].values[0].resource_address,
        "/cluster/node/n1/ens2fx/master"
    );
    assert_eq!(lock[0].values[1].value, "-1");
    // ts2phc down (debounced) takes the T-GM to FREERUN with the process-down offset.
    let mut out = Vec::new();
    e.feed(
        "ts2phc[1757326418]:[ts2phc.0.config] PTP_PROCESS_STATUS:0",
        10 * S,
        &mut out,
    );
    e.tick(15 * S, &mut out);
    assert_eq!(states(&out, Resource::LockState), ["FREERUN"]);
    assert_eq!(out[0].values[1].value, "-9999999999999999");
}

#[test]
fn gm_and_tbc_status_lines_are_edge_triggered() {
    let mut e = Engine::new(EngineConfig::new(NODE));
    let mut out = Vec::new();
    for s in ["s0", "s0", "s2", "s2", "s2", "s1", "s0", "s7"] {
        e.feed(
            &format!("GM[2000000100]:[ts2phc.0.config] ens2f0 T-GM-STATUS {s}"),
            0,
            &mut out,
        );
    }
    assert_eq!(
        states(&out, Resource::LockState),
        ["FREERUN", "LOCKED", "HOLDOVER", "FREERUN"]
    );
    let mut e = Engine::new(EngineConfig::new(NODE));
    let mut out = Vec::new();
    for s in ["s0", "s2", "s2"] {
        e.feed(
            &format!("T-BC[1757326334]:[ts2phc.1.config] ens4f0 offset 7 T-BC-STATUS {s}"),
            0,
            &mut out,
        );
    }
    assert_eq!(states(&out, Resource::LockState), ["FREERUN", "LOCKED"]);
    assert_eq!(states(&out, Resource::SyncState), ["FREERUN", "LOCKED"]);
}

#[test]
fn clock_class_gnss_and_synce_are_edge_triggered() {
    let mut e = Engine::new(EngineConfig::new(NODE));
    let mut out = Vec::new();
    for l in [
        "ptp4l[1757326382]:[ts2phc.1.config] CLOCK_CLASS_CHANGE 6",
        "ptp4l[1757326382]:[ptp4l.1.config] CLOCK_CLASS_CHANGE 6.000000",
        "ptp4l[1757326382]:[ptp4l.1.config] CLOCK_CLASS_CHANGE 7",
        "gnss[1]:[ts2phc.0.config] ens2f0 gnss_status 3 offset 5 s2",
        "gnss[1]:[ts2phc.0.config] ens2f0 gnss_status 5 offset 9 s2",
        "gnss[1]:[ts2phc.0.config] ens2f0 gnss_status 3 offset 9 s0",
        "gnss[1]:[ts2phc.0.config] ens2f0 gnss_status 1 offset 9 s0",
        "synce4l[1]: [synce4l.0.config] ens7f0 device synce1 eec_state EEC_LOCKED network_option 2 s2",
        "synce4l[1]: [synce4l.0.config] ens7f0 device synce1 eec_state EEC_LOCKED network_option 2 s2",
        "synce4l[1]: [synce4l.0.config] ens7f0 device synce1 eec_state EEC_HOLDOVER network_option 2",
        "synce4l[1]:[synce4l.0.config] ens7f0 clock_quality PRC device synce1 network_option 1 ql 0x2 s2",
        "synce4l[1]:[synce4l.0.config] ens7f0 clock_quality PRC device synce1 network_option 1 ql 0x2 s2",
    ] {
        e.feed(l, 0, &mut out);
    }
    assert_eq!(
        out.iter()
            .map(|c| format!("{:?}", c.resource))
            .collect::<Vec<_>>(),
        [
            "ClockClass",
            "ClockClass",
            "GnssSyncStatus",
            "GnssSyncStatus",
            "SynceLockState",
            "SynceLockState",
            "SynceClockQuality"
        ]
    );
    assert_eq!(
        states(&out, Resource::GnssSyncStatus),
        ["SYNCHRONIZED", "ACQUIRING-SYNC"]
    );
    assert_eq!(
        states(&out, Resource::SynceLockState),
        ["LOCKED", "HOLDOVER"]
    );
    // extQl is 255 when extended QL is not enabled.
    let q = out.last().unwrap();
    assert_eq!(
        q.values[1].resource_address,
        "/cluster/node/n1/synce1/ens7f0/extQl"
    );
    assert_eq!(q.values[1].value, "255");
}

#[test]
fn unknown_lines_are_counted_and_skipped() {
    let mut e = Engine::new(EngineConfig::new(NODE));
    let mut out = Vec::new();
    for l in [
        "",
        "hello",
        "I0908 10:12:04.085236  624338 main.go:86] resync",
        "ptp4l[1.0]: [ptp4l.0.config:6] selected /dev/ptp9 as PTP clock",
    ] {
        e.feed(l, 0, &mut out);
    }
    assert!(out.is_empty());
    assert_eq!(e.stats().lines, 4);
    assert_eq!(e.stats().unknown(), 3);
    assert_eq!(e.stats().skipped(), 4);
    assert_eq!(e.stats().parsed(), 0);
}

/// The producer learns a profile from the rendered configs some seconds after the daemon
/// started ptp4l, whose first port lines (linuxptp 3.1: no interface in them) came before: the
/// port is named `port1` until then, and the learned profile renames it, so that the lock
/// state, the port role and the offsets are published for the real interface.
#[test]
fn a_profile_learned_after_the_first_port_lines_names_the_port() {
    let mut e = Engine::new(EngineConfig::new(NODE));
    feed(
        &mut e,
        "ptp4l[1.0]: [ptp4l.0.config:5] port 1: LISTENING to UNCALIBRATED on RS_SLAVE",
        0,
    );
    feed(
        &mut e,
        "ptp4l[1.0]: [ptp4l.0.config:5] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
        0,
    );
    let mut before = String::new();
    e.render_metrics(&mut before);
    assert!(
        before
            .contains(r#"openshift_ptp_interface_role{iface="port1",node="n1",process="ptp4l"} 1"#),
        "{before}"
    );
    e.set_profile(
        "ptp4l.0.config",
        ProfileInfo {
            interfaces: vec!["ens1f0".into()],
            ..ProfileInfo::new("oc")
        },
    );
    let out = feed(&mut e, &offset(5, 2), S);
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);
    let lock = out
        .iter()
        .find(|c| c.resource == Resource::LockState)
        .unwrap();
    assert_eq!(
        lock.values[0].resource_address,
        "/cluster/node/n1/ens1f0/master"
    );
    let mut after = String::new();
    e.render_metrics(&mut after);
    assert!(
        after.contains(
            r#"openshift_ptp_interface_role{iface="ens1f0",node="n1",process="ptp4l"} 1"#
        ),
        "{after}"
    );
    assert!(!after.contains("port1"), "{after}");
    // A port the line itself names keeps that name.
    feed(
        &mut e,
        "ptp4l[1.0]: [ptp4l.0.config:5] port 2 (ens1f1): LISTENING to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
        2 * S,
    );
    e.set_profile(
        "ptp4l.0.config",
        ProfileInfo {
            interfaces: vec!["ens1f0".into(), "other".into()],
            ..ProfileInfo::new("oc")
        },
    );
    let mut last = String::new();
    e.render_metrics(&mut last);
    assert!(
        last.contains(r#"iface="ens1f1""#) && !last.contains(r#"iface="other""#),
        "{last}"
    );
}

/// A producer that starts (or restarts) after the clock lost its master hears, in the daemon's
/// replay, a port leaving SLAVE and no offset: FREERUN (when holdover began is unknown), never
/// silence, which would leave a consumer told HOLDOVER before the restart waiting for ever.
/// A live start (INITIALIZING, LISTENING, UNCALIBRATED) is not affected: no state until offsets.
#[test]
fn a_port_first_seen_leaving_slave_is_freerun() {
    let mut e = oc(Thresholds::default());
    let out = feed(
        &mut e,
        "ptp4l[9.0]: [ptp4l.0.config:5] port 1 (ens1f0): SLAVE to LISTENING on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
        S,
    );
    assert_eq!(states(&out, Resource::LockState), ["FREERUN"]);
    assert_eq!(states(&out, Resource::SyncState), ["FREERUN"]);
    assert_eq!(
        out[0].values[0].resource_address,
        "/cluster/node/n1/ens1f0/master"
    );
    // Nothing more until the clock locks again; then LOCKED.
    assert!(feed(&mut e, "ptp4l[10.0]: [ptp4l.0.config:5] port 1 (ens1f0): LISTENING to UNCALIBRATED on RS_SLAVE", 2 * S).is_empty());
    feed(&mut e, SLAVE, 3 * S);
    let out = feed(&mut e, &offset(5, 2), 4 * S);
    assert_eq!(states(&out, Resource::LockState), ["LOCKED"]);

    let mut live = oc(Thresholds::default());
    for l in [
        "ptp4l[1.0]: [ptp4l.0.config:5] port 1 (ens1f0): INITIALIZING to LISTENING on INIT_COMPLETE",
        "ptp4l[2.0]: [ptp4l.0.config:5] port 1 (ens1f0): LISTENING to UNCALIBRATED on RS_SLAVE",
    ] {
        assert!(feed(&mut live, l, S).is_empty(), "{l}");
    }
}

#[test]
fn a_lost_daemon_is_every_reported_process_down_after_the_downtime_threshold() {
    let up = "ptp4l[1757326418]:[ptp4l.0.config] PTP_PROCESS_STATUS:1";
    // (when a daemon reports ptp4l up again after the loss at 10 s, lock-state events)
    for (back_at, want) in [
        (Some(15 * S - 1), &[][..]),
        (Some(15 * S), &["FREERUN"][..]),
        (None, &["FREERUN"][..]),
    ] {
        let mut e = locked_oc();
        feed(&mut e, up, 2 * S);
        let mut out = Vec::new();
        e.daemon_lost(10 * S, &mut out);
        assert!(out.is_empty(), "nothing at the loss itself");
        assert_eq!(e.next_deadline(), Some(15 * S));
        if let Some(t) = back_at {
            e.feed(up, t, &mut out);
        }
        e.tick(100 * S, &mut out);
        assert_eq!(
            states(&out, Resource::LockState),
            want,
            "back at {back_at:?}"
        );
    }
    // A process never reported up is not made down.
    let mut e = locked_oc();
    let mut out = Vec::new();
    e.daemon_lost(10 * S, &mut out);
    assert_eq!(e.next_deadline(), None);
}
