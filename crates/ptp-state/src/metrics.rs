//! Prometheus text exposition of the `openshift_ptp_*` metrics, with the Go names, labels and
//! encodings (all gauges).

use std::fmt::Write;

use oran_api::SyncState;

use crate::engine::{Engine, Family, Kind, Sample};

/// `0 = FREERUN, 1 = LOCKED, 2 = HOLDOVER`.
pub fn clock_state_value(s: SyncState) -> i64 {
    match s {
        SyncState::Locked | SyncState::Synchronized => 1,
        SyncState::Holdover => 2,
        _ => 0,
    }
}

/// Appends `v` to `out` escaped as a Prometheus label value (`\\`, `\"`, `\n`).
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

struct MetricFamily {
    name: &'static str,
    help: &'static str,
    samples: Vec<(String, String)>,
}

impl MetricFamily {
    fn new(name: &'static str, help: &'static str) -> Self {
        MetricFamily {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let mut l = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                l.push(',');
            }
            l.push_str(k);
            l.push_str("=\"");
            escape_label_value(v, &mut l);
            l.push('"');
        }
        // Later samples with the same labels replace earlier ones.
        let value = value.to_string();
        match self.samples.iter_mut().find(|(x, _)| *x == l) {
            Some(s) => s.1 = value,
            None => self.samples.push((l, value)),
        }
    }

    fn write(mut self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        self.samples.sort();
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (l, v) in &self.samples {
            let _ = writeln!(out, "{}{{{}}} {}", self.name, l, v);
        }
    }
}

fn offsets(
    fams: &mut [MetricFamily; 4],
    from: &str,
    process: &str,
    node: &str,
    iface: &str,
    s: &Sample,
) {
    let labels = [
        ("from", from),
        ("iface", iface),
        ("node", node),
        ("process", process),
    ];
    fams[0].add(&labels, s.offset);
    fams[1].add(&labels, s.max);
    fams[2].add(&labels, s.freq);
    fams[3].add(&labels, s.delay);
}

impl Engine {
    /// Appends the Prometheus text exposition (classic format, `# HELP`/`# TYPE ... gauge`) of
    /// every `openshift_ptp_*` series the engine knows.
    pub fn render_metrics(&self, out: &mut String) {
        let ctx = &self.ctx;
        let node = ctx.node.as_str();
        let mut off = [
            MetricFamily::new(
                "openshift_ptp_offset_ns",
                "Metric to get the ptp offset in ns",
            ),
            MetricFamily::new(
                "openshift_ptp_max_offset_ns",
                "Metric to get the ptp max offset in ns",
            ),
            MetricFamily::new(
                "openshift_ptp_frequency_adjustment_ns",
                "Metric to get the ptp frequency adjustment in ns",
            ),
            MetricFamily::new(
                "openshift_ptp_delay_ns",
                "Metric to get the ptp delay in ns",
            ),
        ];
        let mut state = MetricFamily::new(
            "openshift_ptp_clock_state",
            "0 = FREERUN, 1 = LOCKED, 2 = HOLDOVER",
        );
        let mut class = MetricFamily::new(
            "openshift_ptp_clock_class",
            "6 = Locked, 7 = PRC unlocked in-spec, 52/187 = PRC unlocked out-of-spec, 135 = T-BC holdover in-spec, 165 = T-BC holdover out-of-spec, 248 = Default, 255 = Slave Only Clock",
        );
        let mut role = MetricFamily::new(
            "openshift_ptp_interface_role",
            "0 = PASSIVE, 1 = SLAVE, 2 = MASTER, 3 = FAULTY, 4 = UNKNOWN, 5 = LISTENING",
        );
        let mut status = MetricFamily::new("openshift_ptp_process_status", "0 = DOWN, 1 = UP");
        let mut restarts = MetricFamily::new(
            "openshift_ptp_process_restart_count",
            "Number of times the process was reported UP",
        );
        let mut threshold = MetricFamily::new(
            "openshift_ptp_threshold",
            "Profile thresholds: HoldOverTimeout (s), MaxOffsetThreshold and MinOffsetThreshold (ns); for a T-BC also MaxInSpecOffset, LocalMaxHoldoverOffSet (ns), LocalHoldoverTimeout (s), inSyncConditionThreshold (ns), inSyncConditionTimes",
        );
        let mut nmea = MetricFamily::new(
            "openshift_ptp_nmea_status",
            "0 = UNAVAILABLE, 1 = AVAILABLE",
        );
        let mut freq_status = MetricFamily::new(
            "openshift_ptp_frequency_status",
            "DPLL frequency status: -1 = UNKNOWN, 0 = INVALID, 1 = FREERUN, 2 = LOCKED, 3 = LOCKED_HO_ACQ, 4 = HOLDOVER",
        );
        let mut phase_status = MetricFamily::new(
            "openshift_ptp_phase_status",
            "DPLL phase status: -1 = UNKNOWN, 0 = INVALID, 1 = FREERUN, 2 = LOCKED, 3 = LOCKED_HO_ACQ, 4 = HOLDOVER",
        );
        let mut pps_status =
            MetricFamily::new("openshift_ptp_pps_status", "0 = UNAVAILABLE, 1 = AVAILABLE");
        let mut gnss_status = MetricFamily::new(
            "openshift_ptp_gnss_status",
            "0 = NOFIX, 1 = Dead Reckoning Only, 2 = 2D-FIX, 3 = 3D-FIX, 4 = GPS+dead reckoning fix, 5 = Time only fix",
        );
        let mut ha =
            MetricFamily::new("openshift_ptp_ha_profile_status", "0 = INACTIVE 1 = ACTIVE");
        let mut ssm = MetricFamily::new(
            "openshift_ptp_synce_ssm_ql",
            "SyncE SSM quality level (ql_type SSM) and extended SSM (ql_type Extended SSM)",
        );

        for g in self.sorted_groups() {
            let main_alias = g.main_iface().map(|i| ctx.alias(i));
            if g.family == Family::Ptp4l {
                let iface = main_alias.unwrap_or("master");
                if g.ptp4l.seen {
                    offsets(&mut off, "master", "ptp4l", node, iface, &g.ptp4l);
                }
                let ptp4l_state = if g.kind == Kind::Ptp4l {
                    g.main.state
                } else {
                    g.ptp4l.state
                };
                if let Some(s) = ptp4l_state {
                    state.add(
                        &[("iface", iface), ("node", node), ("process", "ptp4l")],
                        clock_state_value(s),
                    );
                }
                if let Some(c) = g.class {
                    class.add(
                        &[("config", &g.name), ("node", node), ("process", "ptp4l")],
                        c,
                    );
                }
            }
            if let (Some(s), Kind::TBc | Kind::TGm) = (g.main.state, g.kind) {
                let process = if g.kind == Kind::TBc { "T-BC" } else { "GM" };
                let iface = main_alias.unwrap_or("master");
                state.add(
                    &[("iface", iface), ("node", node), ("process", process)],
                    clock_state_value(s),
                );
                if g.kind == Kind::TBc {
                    let s = Sample {
                        seen: true,
                        offset: g.main.offset,
                        max: g.main.offset,
                        ..Sample::default()
                    };
                    offsets(&mut off, process, process, node, iface, &s);
                }
            }
            for p in &g.ports {
                role.add(
                    &[("iface", &p.iface), ("node", node), ("process", "ptp4l")],
                    p.role.metric_value(),
                );
            }
            for e in &g.ts2phc {
                let iface = ctx.alias(&e.iface);
                if e.sample.seen {
                    offsets(&mut off, "master", "ts2phc", node, iface, &e.sample);
                }
                if let Some(s) = e.sample.state {
                    state.add(
                        &[("iface", iface), ("node", node), ("process", "ts2phc")],
                        clock_state_value(s),
                    );
                }
                if let Some(n) = e.nmea {
                    nmea.add(
                        &[("iface", iface), ("node", node), ("process", "ts2phc")],
                        n,
                    );
                }
            }
            for d in &g.dpll {
                let iface = ctx.alias(&d.iface);
                let l = [
                    ("from", "dpll"),
                    ("iface", iface),
                    ("node", node),
                    ("process", "dpll"),
                ];
                freq_status.add(&l, d.frequency_status);
                phase_status.add(&l, d.phase_status);
                pps_status.add(&l, d.pps_status);
                let s = Sample {
                    seen: true,
                    offset: d.offset,
                    max: d.offset,
                    ..Sample::default()
                };
                offsets(&mut off, "dpll", "dpll", node, iface, &s);
                state.add(
                    &[("iface", iface), ("node", node), ("process", "dpll")],
                    clock_state_value(d.state),
                );
            }
            for e in &g.gnss {
                let iface = ctx.alias(&e.iface);
                let l = [
                    ("from", "gnss"),
                    ("iface", iface),
                    ("node", node),
                    ("process", "gnss"),
                ];
                gnss_status.add(&l, e.gps_fix);
                let s = Sample {
                    seen: true,
                    offset: e.offset,
                    max: e.offset,
                    ..Sample::default()
                };
                offsets(&mut off, "gnss", "gnss", node, iface, &s);
                state.add(
                    &[("iface", iface), ("node", node), ("process", "gnss")],
                    clock_state_value(e.state),
                );
            }
            for (p, s) in &g.ha {
                ha.add(&[("node", node), ("process", "phc2sys"), ("profile", p)], s);
            }
        }
        if self.os.sample.seen || self.os.published.is_some() {
            let from = if self.os.from.is_empty() {
                "phc"
            } else {
                self.os.from
            };
            if self.os.sample.seen {
                offsets(
                    &mut off,
                    from,
                    "phc2sys",
                    node,
                    "CLOCK_REALTIME",
                    &self.os.sample,
                );
            }
            if let Some(s) = self.os.published {
                state.add(
                    &[
                        ("iface", "CLOCK_REALTIME"),
                        ("node", node),
                        ("process", "phc2sys"),
                    ],
                    clock_state_value(s),
                );
            }
        }
        for p in &self.procs {
            let l = [
                ("config", p.config.as_str()),
                ("node", node),
                ("process", p.process.as_str()),
            ];
            status.add(&l, u8::from(p.up));
            restarts.add(&l, p.restarts);
        }
        for (_, p) in &self.profiles {
            let th = p.thresholds;
            let name = p.name.as_str();
            threshold.add(
                &[
                    ("node", node),
                    ("profile", name),
                    ("threshold", "HoldOverTimeout"),
                ],
                th.hold_over_timeout.as_secs(),
            );
            threshold.add(
                &[
                    ("node", node),
                    ("profile", name),
                    ("threshold", "MaxOffsetThreshold"),
                ],
                th.max_offset,
            );
            threshold.add(
                &[
                    ("node", node),
                    ("profile", name),
                    ("threshold", "MinOffsetThreshold"),
                ],
                th.min_offset,
            );
            for (t, v) in &p.extra_thresholds {
                threshold.add(
                    &[("node", node), ("profile", name), ("threshold", t.as_str())],
                    *v,
                );
            }
        }
        for p in &self.synce {
            let Some((ql, ext)) = p.ql else { continue };
            let profile = self
                .profiles
                .iter()
                .find(|(c, _)| c == &p.config)
                .map_or("", |(_, pi)| pi.name.as_str());
            let no = p.network_option.map(|n| n.to_string()).unwrap_or_default();
            let base = [
                ("device", p.device.as_str()),
                ("iface", p.iface.as_str()),
                ("network_option", no.as_str()),
                ("node", node),
                ("process", "synce4l"),
                ("profile", profile),
            ];
            let mut l = base.to_vec();
            l.push(("ql_type", "SSM"));
            ssm.add(&l, ql);
            if let Some(e) = ext {
                l.pop();
                l.push(("ql_type", "Extended SSM"));
                ssm.add(&l, e);
            }
        }
        let [a, b, c, d] = off;
        for f in [
            a,
            b,
            c,
            d,
            state,
            class,
            role,
            status,
            restarts,
            threshold,
            nmea,
            freq_status,
            phase_status,
            pps_status,
            gnss_status,
            ha,
            ssm,
        ] {
            f.write(out);
        }
    }
}
