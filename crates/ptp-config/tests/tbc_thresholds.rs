//! A T-BC profile's parameters reach the `openshift_ptp_threshold` metric (FUNC-TBC020-R7:
//! the metric equals the configuration), next to the legacy thresholds.

use ptp_config::{NodeSelector, RenderOptions, parse_profiles, plan};
use ptp_state::{Engine, EngineConfig};

#[test]
fn the_tbc_parameters_are_threshold_series() {
    let text = r#"[
      {"name":"00-tbc-tt","interface":"ens1f1","ptp4lOpts":"-2","ptp4lConf":"[global]\nmasterOnly 1\n",
       "ptpSettings":{"controllingProfile":"01-tbc-tr"}},
      {"name":"01-tbc-tr","interface":"ens1f0","ptp4lOpts":"-2 -s","phc2sysOpts":"",
       "ptpSettings":{"clockType":"T-BC","MaxInSpecOffset":"1200","LocalHoldoverTimeout":"3600",
                      "inSyncConditionThreshold":"50","inSyncConditionTimes":"3"}}
    ]"#;
    let (_, profiles) = parse_profiles(text, &NodeSelector::new("n1")).expect("profiles");
    let plan = plan(&profiles, &RenderOptions::default()).expect("plan");
    let mut cfg = EngineConfig::new("n1");
    for (c, p) in plan.profile_infos() {
        cfg = cfg.with_profile(c, p);
    }
    let mut text = String::new();
    Engine::new(cfg).render_metrics(&mut text);
    for (t, v) in [
        ("MaxInSpecOffset", "1200"),
        ("LocalMaxHoldoverOffSet", "1500"),
        ("LocalHoldoverTimeout", "3600"),
        ("inSyncConditionThreshold", "50"),
        ("inSyncConditionTimes", "3"),
        ("HoldOverTimeout", "5"),
    ] {
        let line = format!(
            "openshift_ptp_threshold{{node=\"n1\",profile=\"01-tbc-tr\",threshold=\"{t}\"}} {v}"
        );
        assert!(text.contains(&line), "missing {line}\n{text}");
    }
    // The TT profile has only the legacy series.
    assert!(
        !text.contains("profile=\"00-tbc-tt\",threshold=\"MaxInSpecOffset\""),
        "{text}"
    );
}
