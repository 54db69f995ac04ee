//! Reproduces the notification sequence of wire-api-v2.md Appendix B (Go PTP plugin, node
//! `node1`, alias map `{"ens1f0":"ens1fx"}`, thresholds 100 / -100 / 5 s) from the §10.2 input
//! lines.
//!
//! One deliberate difference: the final phc2sys `PTP_PROCESS_STATUS 0` is published only after
//! the 5 s downtime debounce (DECISIONS.md), so the test ticks past it; the SyncE lock-state is
//! `notification`/`enumeration` where Go sends `metric`/`decimal64.3` (DECISIONS.md).

use oran_api::{DataType, Resource};
use ptp_state::{Change, Engine, EngineConfig, Nanos, ProfileInfo};

const S: Nanos = 1_000_000_000;

fn fmt(c: &Change) -> String {
    let vals: Vec<String> = c
        .values
        .iter()
        .map(|v| {
            let t = if v.data_type == DataType::Notification {
                "n"
            } else {
                "m"
            };
            format!("{t}:{}={}", v.resource_address, v.value)
        })
        .collect();
    format!("{:?} {}", c.resource, vals.join(" "))
}

#[test]
fn appendix_b_sequence() {
    let profile = ProfileInfo {
        interfaces: vec!["ens1f0".into()],
        ..ProfileInfo::new("test-profile")
    };
    let mut e = Engine::new(
        EngineConfig::new("node1")
            .with_profile("ptp4l.0.config", profile)
            .with_alias("ens1f0", "ens1fx"),
    );
    let mut out = Vec::new();
    let mut t = 1000 * S;
    let lines_1 = [
        "ptp4l[999.000]: [ptp4l.0.config:5] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
        "ptp4l[1000.100]: [ptp4l.0.config] master offset -5 s2 freq -1234 path delay 500",
        "phc2sys[1000.200]: [ptp4l.0.config] CLOCK_REALTIME phc offset 3 s2 freq -100 delay 600",
        "ptp4l[1000.300]: [ptp4l.0.config] CLOCK_CLASS_CHANGE 6.000000",
        "ptp4l[1000.400]: [ptp4l.0.config] master offset 7 s2 freq -1234 path delay 500",
        "ptp4l[72444.514]: [ptp4l.0.config:5] port 1 (ens1f0): SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)",
        "ptp4l[1000.600]: [ptp4l.0.config] CLOCK_CLASS_CHANGE 7.000000",
    ];
    for l in lines_1 {
        t += S / 10;
        e.feed(l, t, &mut out);
    }
    let faulty_at = t - S / 10;
    // The holdover timer: one nanosecond early nothing happens.
    let deadline = faulty_at + 5 * S;
    assert_eq!(e.next_deadline(), Some(deadline));
    let n = out.len();
    e.tick(deadline - 1, &mut out);
    assert_eq!(out.len(), n);
    e.tick(deadline, &mut out);
    t = deadline;
    let lines_2 = [
        "ptp4l[1006.000]: [ptp4l.0.config] CLOCK_CLASS_CHANGE 248.000000",
        "phc2sys[1006.100]: [ptp4l.0.config] CLOCK_REALTIME phc offset 3 s2 freq -100 delay 600",
        "ptp4l[1006.200]: [ptp4l.0.config:5] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
        "ptp4l[1006.300]: [ptp4l.0.config] master offset 4 s2 freq -1234 path delay 500",
        "phc2sys[1006.400]: [ptp4l.0.config] CLOCK_REALTIME phc offset 2 s2 freq -100 delay 600",
        "ptp4l[1006.500]: [ptp4l.0.config] master offset 500 s2 freq -1234 path delay 500",
        "ptp4l[1006.600]: [ptp4l.0.config] master offset 1 s2 freq -1234 path delay 500",
        "gnss[1000000500]:[ts2phc.0.config] ens1f0 gnss_status 3 offset 5 s2",
        "gnss[1000000501]:[ts2phc.0.config] ens1f0 gnss_status 0 offset 5 s0",
        "synce4l[1722456110]: [synce4l.0.config] ens7f0 device synce1 eec_state EEC_LOCKED network_option 2 s2",
        "synce4l[1722458091]:[synce4l.0.config] ens7f0 clock_quality PRTC device synce1 ext_ql 0x20 network_option 2 ql 0x1 s2",
        "phc2sys[1011.000]: [ptp4l.0.config] PTP_PROCESS_STATUS 0",
    ];
    for l in lines_2 {
        t += S / 10;
        e.feed(l, t, &mut out);
    }
    // The phc2sys down is published once the 5 s downtime threshold has passed.
    let n = out.len();
    e.tick(t + 5 * S - 1, &mut out);
    assert_eq!(out.len(), n);
    e.tick(t + 5 * S, &mut out);

    let lock = "/cluster/node/node1/ens1fx/master";
    let sync = "/cluster/node/node1/sync/sync-status/sync-state";
    let os = "/cluster/node/node1/CLOCK_REALTIME";
    let want = [
        format!("LockState n:{lock}=LOCKED m:{lock}=-5"),
        format!("SyncState n:{sync}=LOCKED"),
        format!("OsClockSyncState n:{os}=LOCKED m:{os}=3"),
        format!("ClockClass m:{lock}=6"),
        format!("LockState n:{lock}=HOLDOVER m:{lock}=7"),
        format!("SyncState n:{sync}=HOLDOVER"),
        format!("ClockClass m:{lock}=7"),
        format!("LockState n:{lock}=FREERUN m:{lock}=7"),
        format!("SyncState n:{sync}=FREERUN"),
        format!("ClockClass m:{lock}=248"),
        format!("OsClockSyncState n:{os}=FREERUN m:{os}=3"),
        format!("LockState n:{lock}=LOCKED m:{lock}=4"),
        format!("OsClockSyncState n:{os}=LOCKED m:{os}=2"),
        format!("SyncState n:{sync}=LOCKED"),
        format!("LockState n:{lock}=FREERUN m:{lock}=500"),
        format!("SyncState n:{sync}=FREERUN"),
        format!("LockState n:{lock}=LOCKED m:{lock}=1"),
        format!("SyncState n:{sync}=LOCKED"),
        format!("GnssSyncStatus n:{lock}=SYNCHRONIZED m:{lock}=5 m:{lock}/gpsFix=3"),
        format!("GnssSyncStatus n:{lock}=FAILURE-NOFIX m:{lock}=5 m:{lock}/gpsFix=0"),
        "SynceLockState n:/cluster/node/node1/synce1/ens7f0=LOCKED".to_owned(),
        "SynceClockQuality m:/cluster/node/node1/synce1/ens7f0/Ql=1 m:/cluster/node/node1/synce1/ens7f0/extQl=32".to_owned(),
        format!("OsClockSyncState n:{os}=FREERUN m:{os}=-9999999999999999"),
        format!("SyncState n:{sync}=FREERUN"),
    ];
    let got: Vec<String> = out.iter().map(fmt).collect();
    assert_eq!(got, want, "got:\n{}", got.join("\n"));

    // CurrentState has the same shapes (no /CLOCK_CLASS suffix) and the latest values.
    let cc = e.current(Resource::ClockClass).unwrap();
    assert_eq!(cc[0].resource_address, lock);
    assert_eq!(cc[0].value, "248");
    let q = e.current(Resource::SynceClockQuality).unwrap();
    assert_eq!(
        q[1].resource_address,
        "/cluster/node/node1/synce1/ens7f0/extQl"
    );
    let mut m = String::new();
    e.render_metrics(&mut m);
    for l in [
        r#"openshift_ptp_clock_class{config="ptp4l.0.config",node="node1",process="ptp4l"} 248"#,
        r#"openshift_ptp_clock_state{iface="ens1fx",node="node1",process="ptp4l"} 1"#,
        r#"openshift_ptp_offset_ns{from="master",iface="ens1fx",node="node1",process="ptp4l"} 1"#,
        r#"openshift_ptp_threshold{node="node1",profile="test-profile",threshold="HoldOverTimeout"} 5"#,
    ] {
        assert!(m.lines().any(|x| x == l), "missing {l}\n{m}");
    }
}
