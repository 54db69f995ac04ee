//! The metrics exposition: Go names and encodings, label escaping, and `promtool check metrics`.

use ptp_state::{Engine, EngineConfig, ProfileInfo};

fn busy_engine(alias: &str) -> Engine {
    let mut e = Engine::new(
        EngineConfig::new("node-\"1\"")
            .with_profile(
                "ptp4l.0.config",
                ProfileInfo {
                    interfaces: vec!["ens1f0".into()],
                    ..ProfileInfo::new("prof\\ile")
                },
            )
            .with_profile("synce4l.0.config", ProfileInfo::new("synce-profile"))
            .with_alias("ens1f0", alias),
    );
    let mut out = Vec::new();
    for l in [
        "ptp4l[1.0]: [ptp4l.0.config:5] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
        "ptp4l[1.0]: [ptp4l.0.config:5] port 2 (ens1f1): LISTENING to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
        "ptp4l[1.1]: [ptp4l.0.config:6] master offset -5 s2 freq -1234 path delay 500",
        "phc2sys[1.2]: [ptp4l.0.config:6] CLOCK_REALTIME phc offset 3 s2 freq -100 delay 600",
        "ptp4l[1757326382]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 6",
        "ptp4l[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
        "phc2sys[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
        "phc2sys[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:0",
        "phc2sys[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1",
        "ts2phc[1726600506]:[ts2phc.1.config] ens7f0 nmea_status 1 offset 0 s2",
        "ts2phc[1896327.319]: [ts2phc.1.config] ens7f0 master offset -1 s2 freq -2",
        "dpll[1700598434]:[ts2phc.1.config] ens7f0 frequency_status 3 offset 4 phase_status 3 pps_status 1 s2",
        "gnss[1689014431]:[ts2phc.1.config] ens7f0 gnss_status 5 offset 0 s2",
        "GM[1689282762]:[ts2phc.1.config] ens7f0 T-GM-STATUS s2",
        "synce4l[1722458091]:[synce4l.0.config] ens7f0 clock_quality PRTC device synce1 ext_ql 0x20 network_option 2 ql 0x1 s2",
        "phc2sys[1710435400]:[phc2sys.2.config] ptp_ha_profile profile1 state 1",
    ] {
        e.feed(l, 0, &mut out);
    }
    e
}

#[test]
fn go_names_labels_and_encodings() {
    let e = busy_engine("ens1fx");
    let mut m = String::new();
    e.render_metrics(&mut m);
    for l in [
        "# TYPE openshift_ptp_offset_ns gauge",
        r#"openshift_ptp_offset_ns{from="master",iface="ens1fx",node="node-\"1\"",process="ptp4l"} -5"#,
        r#"openshift_ptp_clock_state{iface="ens1fx",node="node-\"1\"",process="ptp4l"} 1"#,
        r#"openshift_ptp_clock_state{iface="ens7f0",node="node-\"1\"",process="GM"} 1"#,
        r#"openshift_ptp_interface_role{iface="ens1f1",node="node-\"1\"",process="ptp4l"} 2"#,
        r#"openshift_ptp_process_status{config="ptp4l.0.config",node="node-\"1\"",process="phc2sys"} 1"#,
        r#"openshift_ptp_process_restart_count{config="ptp4l.0.config",node="node-\"1\"",process="phc2sys"} 2"#,
        r#"openshift_ptp_threshold{node="node-\"1\"",profile="prof\\ile",threshold="MinOffsetThreshold"} -100"#,
        r#"openshift_ptp_nmea_status{iface="ens7f0",node="node-\"1\"",process="ts2phc"} 1"#,
        r#"openshift_ptp_pps_status{from="dpll",iface="ens7f0",node="node-\"1\"",process="dpll"} 1"#,
        r#"openshift_ptp_gnss_status{from="gnss",iface="ens7f0",node="node-\"1\"",process="gnss"} 5"#,
        r#"openshift_ptp_ha_profile_status{node="node-\"1\"",process="phc2sys",profile="profile1"} 1"#,
        r#"openshift_ptp_synce_ssm_ql{device="synce1",iface="ens7f0",network_option="2",node="node-\"1\"",process="synce4l",profile="synce-profile",ql_type="Extended SSM"} 32"#,
    ] {
        assert!(m.lines().any(|x| x == l), "missing {l}\n{m}");
    }
}

#[test]
fn promtool_parses_the_output() {
    let promtool = std::path::Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        eprintln!("promtool not installed (Debian package `prometheus`); skipping");
        return;
    }
    let e = busy_engine("we\"ird\\alias\nx");
    let mut m = String::new();
    e.render_metrics(&mut m);
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // promtool did read it all: the Go names draw their expected naming findings ...
    assert!(
        report
            .contains("openshift_ptp_offset_ns metric names should not contain abbreviated units"),
        "{report}"
    );
    // ... and only those; never a parse error.
    for l in report.lines().filter(|l| !l.trim().is_empty()) {
        let expected = l.contains("abbreviated units")
            || l.contains("counter metrics should have \"_total\" suffix")
            || l.contains(
                "non-histogram and non-summary metrics should not have \"_count\" suffix",
            )
            || l.contains("non-counter metrics should not have \"_total\" suffix");
        assert!(
            expected,
            "unexpected promtool finding: {l}\nfull report:\n{report}\nmetrics:\n{m}"
        );
    }
}

/// The lines the daemon's T-GM runner writes (`tgm_status_line`, `gnss_line`, `dpll_line`, the
/// class line, an emulated ts2phc line) give the T-GM's events and the Go metrics.
#[test]
fn our_tgm_lines_give_events_and_metrics() {
    use ptp_state::tgm::{DpllState, TgmState, dpll_line, gnss_line, tgm_status_line};
    let mut e = Engine::new(EngineConfig::new("n1").with_profile(
        "ptp4l.0.config",
        ProfileInfo {
            interfaces: vec!["ens1f0".into()],
            ..ProfileInfo::new("tgm")
        },
    ));
    let mut out = Vec::new();
    let cfg = "ts2phc.0.config";
    for (i, (state, gnss_ok)) in [
        (TgmState::FreeRun, false),
        (TgmState::Locked, true),
        (TgmState::HoldoverInSpec, false),
        (TgmState::HoldoverOutOfSpec, false),
    ]
    .into_iter()
    .enumerate()
    {
        let t = i as u64 + 1;
        for l in [
            format!("ts2phc[{t}.000]: [{cfg}] ens1f0 offset -3 s2 freq -12"),
            gnss_line(t, cfg, "ens1f0", if gnss_ok { 3 } else { 0 }, 20, gnss_ok),
            dpll_line(t, cfg, "ens1f0", DpllState::Locked, 0),
            format!("ptp4l[{t}]:[{cfg}] CLOCK_CLASS_CHANGE {}", state.class()),
            tgm_status_line(t, cfg, "ens1f0", state),
        ] {
            e.feed(&l, t * 1_000_000_000, &mut out);
        }
    }
    let of = |r: &str| -> Vec<String> {
        out.iter()
            .filter(|c| format!("{:?}", c.resource) == r)
            .map(|c| c.values[0].value.clone())
            .collect()
    };
    assert_eq!(of("ClockClass"), ["248", "6", "7", "140"]);
    assert_eq!(
        of("LockState"),
        ["FREERUN", "LOCKED", "HOLDOVER"],
        "no E1 at T6"
    );
    assert_eq!(
        of("GnssSyncStatus"),
        ["FAILURE-NOFIX", "SYNCHRONIZED", "FAILURE-NOFIX"]
    );
    let mut text = String::new();
    e.render_metrics(&mut text);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    assert!(
        line("openshift_ptp_clock_class{").ends_with(" 140"),
        "{text}"
    );
    assert!(line("openshift_ptp_gnss_status{").ends_with(" 0"), "{text}");
}
