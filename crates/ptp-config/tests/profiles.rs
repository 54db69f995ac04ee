//! Both input forms, validation errors and byte-exact rendering.

use ptp_config::{
    ConfigError, InputForm, NodeSelector, ProcessKind, RenderOptions, parse_profiles,
    parse_rendered_config, plan, read_rendered_configs, sidecar_profile_name,
};

/// The ordinary-clock example of the OpenShift docs, as a PtpConfig resource, plus a second
/// PtpConfig in the same file for other nodes.
const CR_YAML: &str = r#"
apiVersion: ptp.openshift.io/v1
kind: PtpConfig
metadata:
  name: ordinary-clock-ptp-config
  namespace: openshift-ptp
spec:
  profile:
  - name: ordinary-clock
    interface: ens787f1
    ptp4lOpts: "-2 -s --summary_interval -4"
    phc2sysOpts: "-a -r -m -n 24 -N 8 -R 16"
    ptpSchedulingPolicy: SCHED_FIFO
    ptpSchedulingPriority: 10
    ptpSettings:
      logReduce: "true"
    ptp4lConf: |
      [global]
      #
      # Default Data Set
      #
      twoStepFlag 1
      slaveOnly 1
      priority1 128
      priority2 128
      domainNumber 24
      clockClass 255
      clock_servo pi
      # comment
      [ens787f1]
      masterOnly 0
    ptpClockThreshold:
      holdOverTimeout: 5
      maxOffsetThreshold: 100
      minOffsetThreshold: -100
  recommend:
  - profile: ordinary-clock
    priority: 4
    match:
    - nodeLabel: "node-role.kubernetes.io/worker"
---
apiVersion: ptp.openshift.io/v1
kind: PtpConfig
metadata:
  name: gm-config
spec:
  profile:
  - name: grandmaster
    interface: ens1f0
    ptp4lOpts: "-2"
    ts2phcOpts: " "
    ts2phcConf: |
      [nmea]
      ts2phc.master 1
      [global]
      use_syslog 0
      ts2phc.nmea_serialport /dev/gnss0
      [ens1f0]
      ts2phc.extts_polarity rising
    ptpSettings:
      clockType: T-GM
  recommend:
  - profile: grandmaster
    priority: 1
    match:
    - nodeName: gm-node
"#;

/// The operator's per-node ConfigMap value (`/etc/linuxptp/<node>`), as the operator renders it.
const NODE_JSON: &str = r#"[{"name":"slave","interface":"ens1f0","ptp4lOpts":"-2 -s","phc2sysOpts":"-a -r -n 24","ptp4lConf":"[global]\n#comment\ndomainNumber 24\nslaveOnly 1\n\n[ens1f0]\nmasterOnly 0\n","ptpSchedulingPolicy":"SCHED_OTHER","ptpSchedulingPriority":10,"ptpClockThreshold":{"holdOverTimeout":5,"maxOffsetThreshold":100,"minOffsetThreshold":-100},"ptpSettings":{"logReduce":"false"}},
 {"name":"a-master","interface":"ens2f0","ptp4lOpts":"-2","ptp4lConf":"[global]\npriority1 127\n"}]"#;

fn worker() -> NodeSelector {
    NodeSelector {
        name: "worker-0".into(),
        labels: vec!["node-role.kubernetes.io/worker=".into()],
    }
}

fn opts() -> RenderOptions {
    RenderOptions::default()
}

#[test]
fn ptpconfig_yaml_picks_this_nodes_profile_by_recommend() {
    let (form, p) = parse_profiles(CR_YAML, &worker()).expect("parses");
    assert_eq!(form, InputForm::PtpConfig);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].name(), "ordinary-clock");
    assert_eq!(p[0].ptp_scheduling_priority, Some(10));
    assert_eq!(p[0].thresholds().max_offset, 100);
    let (_, gm) = parse_profiles(CR_YAML, &NodeSelector::new("gm-node")).expect("parses");
    assert_eq!(gm[0].name(), "grandmaster");
    let plan = plan(&gm, &opts()).expect("valid");
    let kinds: Vec<_> = plan.processes().map(|p| p.kind).collect();
    assert_eq!(kinds, [ProcessKind::Ts2phc, ProcessKind::Ptp4l]);
    let ts2phc = &plan.profiles[0].processes[0];
    assert!(
        ts2phc
            .config_text
            .contains("message_tag [ts2phc.0.config:{level}]")
    );
    assert_eq!(ts2phc.status_config, "ts2phc.0.config");
    assert_eq!(
        plan.profiles[0].profile_info().clock_type,
        ptp_state::ClockType::TGm
    );
}

#[test]
fn a_node_without_a_matching_recommend_gets_a_named_error() {
    let e = parse_profiles(CR_YAML, &NodeSelector::new("other")).expect_err("no match");
    let s = e.to_string();
    assert!(
        s.contains("spec.recommend") && s.contains("nodeName: other"),
        "{s}"
    );
}

#[test]
fn operator_configmap_json_parses_and_orders_like_go() {
    let (form, p) = parse_profiles(NODE_JSON, &worker()).expect("parses");
    assert_eq!(form, InputForm::NodeProfiles);
    let plan = plan(&p, &opts()).expect("valid");
    // Profiles without phc2sysOpts first: "a-master" gets run id 0.
    let names: Vec<_> = plan
        .profiles
        .iter()
        .map(|p| (p.run_id, p.profile.name().to_owned()))
        .collect();
    assert_eq!(names, [(0, "a-master".to_owned()), (1, "slave".to_owned())]);
}

#[test]
fn a_configmap_manifest_is_read_at_the_node_key() {
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ptp-configmap\ndata:\n  worker-0: {}\n",
        serde_json::to_string(NODE_JSON).expect("json")
    );
    let (form, p) = parse_profiles(&cm, &worker()).expect("parses");
    assert_eq!(form, InputForm::ConfigMap);
    assert_eq!(p.len(), 2);
}

#[test]
fn rendering_matches_the_go_daemon_byte_for_byte() {
    let (_, p) = parse_profiles(NODE_JSON, &worker()).expect("parses");
    let plan = plan(&p, &opts()).expect("valid");
    let slave = &plan.profiles[1];
    let ptp4l = &slave.processes[0];
    assert_eq!(ptp4l.config_file, "ptp4l.1.config");
    assert_eq!(
        ptp4l.config_text,
        "#profile: slave\n\n[global]\ndomainNumber 24\nslaveOnly 1\nmessage_tag [ptp4l.1.config:{level}]\nuds_address /var/run/ptp4l.1.socket\nsummary_interval 1\n[ens1f0]\nmasterOnly 0"
    );
    assert_eq!(
        ptp4l.argv,
        [
            "/usr/sbin/ptp4l",
            "-f",
            "/var/run/ptp4l.1.config",
            "-2",
            "-s",
            "-m"
        ]
    );
    let phc2sys = &slave.processes[1];
    assert_eq!(
        phc2sys.config_text,
        "#profile: slave\n\n[ens1f0]\n[global]\nmessage_tag [ptp4l.1.config:{level}]\nuds_address /var/run/ptp4l.1.socket"
    );
    assert_eq!(
        phc2sys.argv,
        [
            "/usr/sbin/phc2sys",
            "-f",
            "/var/run/phc2sys.1.config",
            "-a",
            "-r",
            "-n",
            "24",
            "-m"
        ]
    );
    assert_eq!(phc2sys.status_config, "ptp4l.1.config");
    assert_eq!(phc2sys.start_after_offset_from, ["ptp4l.1.config"]);
    // The master: interface section appended after [global], summary_interval added.
    assert_eq!(
        plan.profiles[0].processes[0].config_text,
        "#profile: a-master\n\n[global]\npriority1 127\nmessage_tag [ptp4l.0.config:{level}]\nuds_address /var/run/ptp4l.0.socket\nsummary_interval 1\n[ens2f0]"
    );
    assert_eq!(slave.clock_kind, ptp_config::ClockKind::Oc);
    assert_eq!(plan.profiles[0].clock_kind, ptp_config::ClockKind::Gm);
    // The added summary_interval is said: with it, no lock state comes from this ptp4l.
    assert_eq!(ptp4l.warnings.len(), 1);
    assert!(
        ptp4l.warnings[0].starts_with("profile \"slave\": ptp4l gets summary_interval 1")
            && ptp4l.warnings[0].contains("--summary_interval -4"),
        "{:?}",
        ptp4l.warnings
    );
    assert!(phc2sys.warnings.is_empty());
}

#[test]
fn sched_fifo_prefixes_chrt_and_summary_interval_in_opts_is_respected() {
    let (_, p) = parse_profiles(CR_YAML, &worker()).expect("parses");
    let plan = plan(&p, &opts()).expect("valid");
    let ptp4l = &plan.profiles[0].processes[0];
    assert_eq!(
        ptp4l.argv[..6],
        [
            "/bin/chrt",
            "-f",
            "10",
            "/usr/sbin/ptp4l",
            "-f",
            "/var/run/ptp4l.0.config"
        ]
    );
    assert!(!ptp4l.config_text.contains("summary_interval"));
    assert!(ptp4l.warnings.is_empty(), "{:?}", ptp4l.warnings);
    // `-m` is already there ("-a -r -m ..."): not added twice.
    let phc2sys = &plan.profiles[0].processes[1];
    assert_eq!(phc2sys.argv.iter().filter(|a| *a == "-m").count(), 1);
}

fn field_errors(json: &str) -> Vec<String> {
    let (_, p) = parse_profiles(json, &worker()).expect("parses");
    match plan(&p, &opts()) {
        Err(e @ ConfigError::Invalid { .. }) => {
            e.field_errors().iter().map(|f| f.to_string()).collect()
        }
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn invalid_profiles_name_the_field_and_the_fix() {
    let cases = [
        (
            r#"[{"interface":"eth0"}]"#,
            "name: missing; fix: give the profile a name",
        ),
        (
            r#"[{"name":"a b","interface":"eth0"}]"#,
            "profile \"a b\": name:",
        ),
        (
            // Found by the `profile_typed` fuzz target: the Go sidecar reads the name with
            // `profile: \s*([\w-_]+)`, whose `\w` is ASCII only, and would publish "caf".
            r#"[{"name":"café","interface":"eth0"}]"#,
            "profile \"café\": name: \"café\" has characters other than ASCII letters",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptp4lConf":"[global\nx 1"}]"#,
            "ptp4lConf: line 1: section header \"[global\" has no closing ']'; fix: write it as \"[global]\"",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptp4lConf":"slaveOnly 1"}]"#,
            "ptp4lConf: line 1: option \"slaveOnly 1\" is not in a section; fix: put a [global] line above it",
        ),
        (
            r#"[{"name":"p","ptp4lOpts":"-2 -s"}]"#,
            "interface: ptp4l would run without an interface",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptpSchedulingPolicy":"SCHED_RR"}]"#,
            "ptpSchedulingPolicy: \"SCHED_RR\" is not a policy; fix: use SCHED_OTHER or SCHED_FIFO",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptpSchedulingPolicy":"SCHED_FIFO"}]"#,
            "ptpSchedulingPriority: missing",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptpSchedulingPriority":99}]"#,
            "ptpSchedulingPriority: 99 is outside 1..65",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptpClockThreshold":{"maxOffsetThreshold":-200}}]"#,
            "ptpClockThreshold.minOffsetThreshold: -100 is not below maxOffsetThreshold -200",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptpClockThreshold":{"holdOverTimeout":-1}}]"#,
            "ptpClockThreshold.holdOverTimeout: -1 is negative",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptpSettings":{"clockType":"OC"}}]"#,
            "ptpSettings.clockType: \"OC\" is not a clock type",
        ),
        (
            r#"[{"name":"p","interface":"eth0","phc2sysOpts":"-a","ptpSettings":{"haProfiles":"x"}}]"#,
            "ptpSettings.haProfiles: names \"x\"",
        ),
        (
            r#"[{"name":"p","interface":"eth0","ptp4lOpts":"-f /etc/ptp4l.conf"}]"#,
            "ptp4lOpts: contains -f",
        ),
        (
            r#"[{"name":"p","interface":"eth0","synce4lOpts":"-m"}]"#,
            "synce4lOpts: this daemon runs ptp4l, phc2sys and ts2phc only",
        ),
        (
            r#"[{"name":"p","interface":"eth0"},{"name":"p","interface":"eth1"}]"#,
            "name: \"p\" is used twice",
        ),
    ];
    for (json, want) in cases {
        let errs = field_errors(json);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{json}\nwant {want:?}\ngot {errs:#?}"
        );
    }
    // Every problem is reported at once.
    let errs = field_errors(
        r#"[{"name":"p","ptpSchedulingPolicy":"X","ptpSchedulingPriority":0,"ptp4lConf":"x 1"}]"#,
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn yaml_syntax_errors_say_where() {
    let e =
        parse_profiles("kind: PtpConfig\nspec:\n  profile: [\n", &worker()).expect_err("bad yaml");
    assert!(
        e.to_string().contains("document 1: not valid YAML or JSON"),
        "{e}"
    );
    let e = parse_profiles("kind: Deployment\n", &worker()).expect_err("wrong kind");
    assert!(
        e.to_string()
            .contains("kind \"Deployment\" is not a PtpConfig"),
        "{e}"
    );
    // A file of plain text: said so, without nested quoting.
    let e = parse_profiles("keep me\n", &worker()).expect_err("plain text");
    assert!(
        e.to_string()
            .contains("plain text (\"keep me\") is not a PtpConfig"),
        "{e}"
    );
}

#[test]
fn rendered_configs_read_back_with_profile_and_interfaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts();
    o.run_dir = dir.path().to_owned();
    let (_, p) = parse_profiles(NODE_JSON, &worker()).expect("parses");
    let plan = plan(&p, &o).expect("valid");
    for pr in plan.processes() {
        std::fs::write(&pr.config_path, &pr.config_text).expect("write");
    }
    std::fs::write(dir.path().join("ptp4l.1.socket.junk"), "").expect("write");
    let back = read_rendered_configs(dir.path()).expect("reads");
    let got: Vec<_> = back
        .iter()
        .map(|c| {
            (
                c.config_name.as_str(),
                c.profile.as_deref(),
                c.interfaces.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "ptp4l.0.config",
                Some("a-master"),
                vec!["ens2f0".to_owned()]
            ),
            ("phc2sys.1.config", Some("slave"), vec!["ens1f0".to_owned()]),
            ("ptp4l.1.config", Some("slave"), vec!["ens1f0".to_owned()]),
        ]
    );
    assert_eq!(back[0].path, dir.path().join("ptp4l.0.config"));
    let info = back[2].profile_info(ptp_state::Thresholds::default());
    assert_eq!((info.name.as_str(), info.interfaces.len()), ("slave", 1));
}

/// The read-back of a rendered config takes the name as the Go sidecar's
/// `profile: \s*([\w-_]+)` does, with an ASCII `\w`: a producer running as a sidecar to the Go
/// daemon labels events and metrics exactly as the Go sidecar would.
#[test]
fn rendered_config_names_are_read_back_as_the_go_sidecar_reads_them() {
    let path = std::path::Path::new("/var/run/ptp4l.0.config");
    let read = |first: &str| {
        parse_rendered_config(
            "ptp4l.0.config",
            path,
            &format!("{first}\n[global]\n[ens1f0]"),
        )
        .and_then(|c| c.profile)
    };
    assert_eq!(
        read("#profile: bc-profile_1").as_deref(),
        Some("bc-profile_1")
    );
    assert_eq!(read("#profile:   tgm").as_deref(), Some("tgm"));
    assert_eq!(read("#profile: café").as_deref(), Some("caf"));
    // The regex runs over the whole file, as the sidecar's FindStringSubmatch does: a first
    // line without a name is passed over, and `\s*` crosses line ends.
    assert_eq!(read("#profile: é"), None);
    assert_eq!(read("[global]"), None);
    assert_eq!(
        sidecar_profile_name("#profile: é\n#profile: second"),
        Some("second")
    );
    assert_eq!(sidecar_profile_name("#profile: \n\t next"), Some("next"));
    // Only the literal blank follows the colon; Go's `\s` is ASCII, NBSP is not in it.
    assert_eq!(sidecar_profile_name("#profile:x"), None);
    assert_eq!(sidecar_profile_name("#profile: \u{a0}bc"), None);
    assert_eq!(sidecar_profile_name("profile: profile: x"), Some("profile"));
}

/// G.8275.1 admission (FUNC-TGM002-R5): a profile declaring the telecom profile
/// (`dataset_comparison G.8275.x`, domain 24-43) is refused when it breaks a mandated value,
/// each violation naming the parameter; conforming ones, and G.8275.2 domains, pass.
#[test]
fn g8275_1_profiles_must_use_the_mandated_values() {
    let profile = |opts: &str, conf: &str| {
        format!(
            r#"[{{"name":"tgm","interface":"ens1f0","ptp4lOpts":"{opts}","ptp4lConf":"[global]\ndataset_comparison G.8275.x\n{conf}","ptpSettings":{{"clockType":"T-GM"}}}}]"#
        )
    };
    let errs = field_errors(&profile(
        "-4 -S -P",
        r"domainNumber 24\npriority1 127\ntransportSpecific 0x1\n",
    ));
    let text = errs.join("\n");
    for param in [
        "ptp4l network_transport: UDPv4",
        "ptp4l time_stamping: software",
        "ptp4l delay_mechanism: P2P",
        "ptp4l priority1: 127",
        "ptp4l transportSpecific: 0x1",
    ] {
        assert!(text.contains(param), "missing {param:?} in\n{text}");
    }
    assert_eq!(errs.len(), 5, "{text}");
    // Conforming: accepted.
    for (o, conf) in [
        ("-2", r"domainNumber 24\npriority1 128\n"),
        (
            "",
            r"domainNumber 43\nnetwork_transport L2\ntime_stamping hardware\n",
        ),
        // G.8275.2 (domain 44-63) and undesignated testbeds are not G.8275.1.
        ("-4 -S", r"domainNumber 44\n"),
    ] {
        let (_, p) = parse_profiles(&profile(o, conf), &worker()).expect("parses");
        plan(&p, &opts()).unwrap_or_else(|e| panic!("{o} {conf}: {e}"));
    }
    // The command line wins over the config: domain 24 given there makes it G.8275.1.
    let errs = field_errors(&profile("--domainNumber 24 -S", r"domainNumber 44\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("ptp4l time_stamping: software"),
        "{errs:?}"
    );
}
