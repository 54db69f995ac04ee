//! Replays the real T-BC daemon log `crates/ptp-state/tests/data/daemon-log-tbc.txt` (origin and licence in that folder's README)
//! (42,359 lines; profiles `00-tbc-tt` = ptp4l.0.config with master-only ports ens4f0/ens8f0,
//! `01-tbc-tr` = ptp4l.1.config + ts2phc.1.config + phc2sys, slave port ens4f1, T-BC, leading
//! interface ens4f0) and pins the events it must produce.
//!
//! The Go sidecar sends 126 os-clock events on this log (DECISIONS.md); the intended rule gives
//! the ten below, one per real transition of the OS clock.

use oran_api::Resource;
use ptp_state::{ClockType, Engine, EngineConfig, LineKind, ProfileInfo, TimedChange, replay};

fn fixture() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/daemon-log-tbc.txt");
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "fixture {path} cannot be read ({e}); it is part of the repository \
             (crates/ptp-state/tests/data, see its README for its origin)"
        )
    })
}

fn engine() -> Engine {
    let tt = ProfileInfo {
        interfaces: vec!["ens4f0".into(), "ens8f0".into()],
        ..ProfileInfo::new("00-tbc-tt")
    };
    let tr = ProfileInfo {
        interfaces: vec!["ens4f1".into()],
        clock_type: ClockType::TBc,
        leading_interface: Some("ens4f0".into()),
        ..ProfileInfo::new("01-tbc-tr")
    };
    Engine::new(
        EngineConfig::new("cnfdg3")
            .with_profile("ptp4l.0.config", tt)
            .with_profile("ptp4l.1.config", tr)
            .with_alias("ens4f0", "ens4fx")
            .with_alias("ens4f1", "ens4fx")
            .with_alias("ens8f0", "ens8fx"),
    )
}

fn short(r: Resource) -> &'static str {
    match r {
        Resource::SyncState => "sync",
        Resource::OsClockSyncState => "os",
        Resource::ClockClass => "class",
        Resource::LockState => "lock",
        Resource::GnssSyncStatus => "gnss",
        Resource::SynceLockState => "synce",
        Resource::SynceClockQuality => "ql",
    }
}

fn describe(c: &TimedChange) -> String {
    let vals: Vec<&str> = c.change.values.iter().map(|v| v.value.as_str()).collect();
    format!("{} {} {}", c.line, short(c.change.resource), vals.join(" "))
}

/// klog wall time of a change, `HH:MM:SS.micro` (the replay timeline is klog time).
fn tod(at: u64) -> String {
    let day = 86_400 * 1_000_000_000u64;
    let ns = at % day;
    let s = ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ns % 1_000_000_000 / 1000
    )
}

#[test]
fn tbc_log_gives_the_reviewed_event_sequence() {
    let log = fixture();
    let mut e = engine();
    let changes = replay(&mut e, log.lines());
    let got: Vec<String> = changes.iter().map(describe).collect();
    #[rustfmt::skip]
    let want = [
        // 653 `T-BC[1757326334]:[ts2phc.1.config] ens4f0 offset 99999999999 T-BC-STATUS s0`:
        // first decision of the T-BC (ts2phc.1 shares ptp4l.1's clock): FREERUN, and with it the node.
        "653 lock FREERUN 99999999999",
        "653 sync FREERUN",
        // 883 first phc2sys sample `CLOCK_REALTIME phc offset -414 s0`: OS clock FREERUN.
        "883 os FREERUN -414",
        // 5202 (klog-embedded) `CLOCK_CLASS_CHANGE 6`; the repeat at 5269 is not an edge.
        "5202 class 6",
        // 5312 `T-BC-STATUS s2` offset -3: LOCKED; the sync-state waits for the OS clock ...
        "5312 lock LOCKED -3",
        // ... which locks on the next phc2sys sample (5313, offset -19, s2, in range): node LOCKED.
        "5313 os LOCKED -19",
        "5313 sync LOCKED",
        // 7599 ptp4l.0 dies (10:13:37.48). 7723 the daemon reports `T-BC-STATUS s1`: HOLDOVER.
        "7723 lock HOLDOVER 0",
        "7723 sync HOLDOVER",
        // 7726 `CLOCK_CLASS_CHANGE 135` (T-BC holdover in spec).
        "7726 class 135",
        // 7729 phc2sys sample while the T-BC is in holdover: worst of (LOCKED, HOLDOVER).
        "7729 os HOLDOVER -6",
        // 7763 ptp4l.1 `PTP_PROCESS_STATUS:0` at 10:13:39.50 and no UP before 8451 (10:13:56): the
        // down is published 5 s later (10:13:44.52 on the replay timeline), stamped on the first line after it
        // (8402). phc2sys (down at 7858) drives the OS clock which is already FREERUN then.
        "8402 os FREERUN -9999999999999999",
        "8402 sync FREERUN",
        // 8422 the restarted T-BC starts again at s0.
        "8422 lock FREERUN 99999999999",
        // Second lock-up: class 6 (12932), T-BC s2 (13000), phc2sys in range (13002).
        "12932 class 6",
        "13000 lock LOCKED 2",
        "13002 os LOCKED 4",
        "13002 sync LOCKED",
        // Second outage: T-BC s1 (14072), class 135 (14074), phc2sys sample (14077) ...
        "14072 lock HOLDOVER 0",
        "14072 sync HOLDOVER",
        "14074 class 135",
        "14077 os HOLDOVER 15",
        // ... ptp4l.1 down at 14086 (10:14:56.62), back only at 14856 (10:15:13): published 5 s
        // later, 10:15:01.66 (first line after: 14807).
        "14807 os FREERUN -9999999999999999",
        "14807 sync FREERUN",
        "14836 lock FREERUN 99999999999",
        // Third lock-up; `CLOCK_CLASS_CHANGE 6` at 19360.
        "19360 class 6",
        "19426 lock LOCKED 2",
        "19427 os LOCKED -6",
        "19427 sync LOCKED",
        // Third outage without holdover: ptp4l.1 down at 30818 (10:18:55.11), up at 31499
        // (10:19:11): published 5 s later, 10:19:00.14 (line 31449); T-BC s0 at 31482.
        "31449 os FREERUN -9999999999999999",
        "31449 sync FREERUN",
        "31482 lock FREERUN 99999999999",
        // Final lock-up; the `CLOCK_CLASS_CHANGE 6` at 35940 repeats the current class: no event.
        "36007 lock LOCKED -1",
        "36009 os LOCKED 6",
        "36009 sync LOCKED",
    ];
    assert_eq!(got, want, "full sequence:\n{}", got.join("\n"));

    // Every lock-state and clock-class value is addressed to the leading interface's alias.
    for c in &changes {
        let ra = &c.change.values[0].resource_address;
        match c.change.resource {
            Resource::LockState | Resource::ClockClass => {
                assert_eq!(ra, "/cluster/node/cnfdg3/ens4fx/master")
            }
            Resource::OsClockSyncState => assert_eq!(ra, "/cluster/node/cnfdg3/CLOCK_REALTIME"),
            Resource::SyncState => {
                assert_eq!(ra, "/cluster/node/cnfdg3/sync/sync-status/sync-state")
            }
            r => panic!("unexpected {r:?}"),
        }
    }
    // Debounced downs carry their deadline: 5 s after the `now` of the PTP_PROCESS_STATUS:0 line.
    // That `now` is a few tens of ms past the line's own klog stamp (10:13:39.501252, ...),
    // because the raw lines just before it map slightly later on the timeline (the monotonic
    // offset is a lower bound taken over the whole log) and time never goes back.
    let downs: Vec<String> = changes
        .iter()
        .filter(|c| {
            c.change
                .values
                .get(1)
                .is_some_and(|v| v.value == "-9999999999999999")
        })
        .map(|c| tod(c.at))
        .collect();
    assert_eq!(
        downs,
        ["10:13:44.524877", "10:15:01.655877", "10:19:00.143877"]
    );
    let os_events = changes
        .iter()
        .filter(|c| c.change.resource == Resource::OsClockSyncState)
        .count();
    assert_eq!(os_events, 10);
}

#[test]
fn tbc_log_final_state_metrics_and_stats() {
    let log = fixture();
    let mut e = engine();
    replay(&mut e, log.lines());
    let st = e.stats();
    assert_eq!(st.lines, 42_359);
    assert_eq!(st.count(LineKind::Ptp4lOffset), 8_059);
    assert_eq!(st.count(LineKind::Phc2sysOffset), 8_040);
    assert_eq!(st.count(LineKind::TbcStatus), 508);
    assert_eq!(st.count(LineKind::Dpll), 1_500);
    assert_eq!(st.count(LineKind::Ts2phcOffset), 499);
    assert_eq!(st.count(LineKind::ProcessStatus), 36);
    assert_eq!(st.count(LineKind::ClockClassChange), 7);
    assert_eq!(st.count(LineKind::PortEvent), 95);
    assert_eq!(st.unknown(), 22_792);

    let cur = |r| {
        e.current(r)
            .map(|v| v.into_iter().map(|v| v.value).collect::<Vec<_>>())
    };
    assert_eq!(cur(Resource::SyncState).unwrap(), ["LOCKED"]);
    // The latest offsets, not the ones of the last event.
    assert_eq!(cur(Resource::LockState).unwrap(), ["LOCKED", "0"]);
    assert_eq!(cur(Resource::OsClockSyncState).unwrap(), ["LOCKED", "7"]);
    assert_eq!(cur(Resource::ClockClass).unwrap(), ["6"]);
    assert_eq!(cur(Resource::GnssSyncStatus), None);
    assert_eq!(cur(Resource::SynceLockState), None);

    let mut m = String::new();
    e.render_metrics(&mut m);
    for line in [
        r#"openshift_ptp_clock_state{iface="ens4fx",node="cnfdg3",process="T-BC"} 1"#,
        r#"openshift_ptp_clock_state{iface="CLOCK_REALTIME",node="cnfdg3",process="phc2sys"} 1"#,
        r#"openshift_ptp_clock_state{iface="ens4fx",node="cnfdg3",process="ptp4l"} 1"#,
        r#"openshift_ptp_offset_ns{from="master",iface="ens4fx",node="cnfdg3",process="ptp4l"} -2"#,
        r#"openshift_ptp_delay_ns{from="master",iface="ens4fx",node="cnfdg3",process="ptp4l"} 1588"#,
        r#"openshift_ptp_offset_ns{from="phc",iface="CLOCK_REALTIME",node="cnfdg3",process="phc2sys"} 7"#,
        r#"openshift_ptp_frequency_adjustment_ns{from="phc",iface="CLOCK_REALTIME",node="cnfdg3",process="phc2sys"} 2844"#,
        r#"openshift_ptp_clock_class{config="ptp4l.1.config",node="cnfdg3",process="ptp4l"} 6"#,
        r#"openshift_ptp_interface_role{iface="ens4f1",node="cnfdg3",process="ptp4l"} 1"#,
        r#"openshift_ptp_interface_role{iface="ens4f0",node="cnfdg3",process="ptp4l"} 2"#,
        r#"openshift_ptp_process_status{config="ptp4l.1.config",node="cnfdg3",process="phc2sys"} 1"#,
        r#"openshift_ptp_process_restart_count{config="ptp4l.1.config",node="cnfdg3",process="phc2sys"} 8"#,
        r#"openshift_ptp_process_restart_count{config="ts2phc.1.config",node="cnfdg3",process="ts2phc"} 4"#,
        r#"openshift_ptp_threshold{node="cnfdg3",profile="01-tbc-tr",threshold="HoldOverTimeout"} 5"#,
        r#"openshift_ptp_frequency_status{from="dpll",iface="ens8fx",node="cnfdg3",process="dpll"} 3"#,
        r#"openshift_ptp_phase_status{from="dpll",iface="ens4fx",node="cnfdg3",process="dpll"} 3"#,
        "# TYPE openshift_ptp_process_restart_count gauge",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line}\n{m}");
    }
}
