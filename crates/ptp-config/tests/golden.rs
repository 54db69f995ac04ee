//! Rendered configs and command lines compared with expected files for a boundary clock and a
//! T-GM profile (the ordinary clock is in profiles.rs), per linuxptp-daemon.md §1.3.
//!
//! Where the T-GM expectation differs from the Go daemon, on purpose for now (the T-GM helpers
//! are not run by this daemon, see docs/daemon.md): `ts2phc.nmea_serialport` is not rewritten to
//! the gpspipe FIFO, the dpll holdover options (`--ts2phc.holdover`, `--servo_offset_threshold`,
//! `--servo_num_offset_values`) are not appended, and `leapfile` is set only when the daemon is
//! given `--leapfile`.

use ptp_config::{ClockKind, NodeSelector, RenderOptions, parse_profiles, plan};

fn opts() -> RenderOptions {
    RenderOptions::default()
}

const BC_JSON: &str = r#"[{"name":"bc","interface":"ens1f0","ptp4lOpts":"-2 --summary_interval -4","phc2sysOpts":"-a -r -n 24","ptp4lConf":"[ens1f0]\nmasterOnly 0\n[ens1f1]\nmasterOnly 1\n[global]\ndomainNumber 24\nclock_servo pi\n","ptpClockThreshold":{"holdOverTimeout":5,"maxOffsetThreshold":100,"minOffsetThreshold":-100}}]"#;

const TGM_JSON: &str = r#"[{"name":"tgm","interface":"ens2f0","ptp4lOpts":"-2 --summary_interval -4","ts2phcOpts":" ","ptp4lConf":"[ens2f0]\nmasterOnly 1\n[global]\ndomainNumber 24\n","ts2phcConf":"[nmea]\nts2phc.master 1\n[global]\nuse_syslog 0\nverbose 1\nts2phc.nmea_serialport /dev/gnss0\n[ens2f0]\nts2phc.extts_polarity rising\n","ptpSettings":{"clockType":"T-GM"}}]"#;

fn expected(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn render_all(json: &str) -> (ptp_config::Plan, String) {
    let (_, p) = parse_profiles(json, &NodeSelector::new("node1")).expect("parses");
    let plan = plan(&p, &opts()).expect("valid");
    let mut out = String::new();
    for pp in &plan.profiles {
        for proc in &pp.processes {
            out.push_str(&format!(
                "=== {} ({})\n$ {}\n{}\n",
                proc.config_file,
                proc.config_path.display(),
                proc.argv.join(" "),
                proc.config_text
            ));
        }
    }
    (plan, out)
}

#[test]
fn boundary_clock_renders_as_expected() {
    let (plan, text) = render_all(BC_JSON);
    assert_eq!(plan.profiles[0].clock_kind, ClockKind::Bc);
    assert_eq!(text, expected("bc.txt"), "actual:\n{text}");
}

#[test]
fn t_gm_renders_as_expected() {
    let (plan, text) = render_all(TGM_JSON);
    assert_eq!(plan.profiles[0].clock_kind, ClockKind::Gm);
    assert_eq!(text, expected("tgm.txt"), "actual:\n{text}");
}
