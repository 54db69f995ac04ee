//! Structure-aware profile target: the input builds 0-4 `PtpProfile`s field by field from the
//! vocabulary of real profiles (names, interfaces, ptp4l/phc2sys/ts2phc options, config lines,
//! scheduling, thresholds, ptpSettings) with odd values mixed in, instead of going through the
//! YAML and JSON parsers first as the byte-level `profile` target must.
//!
//! Properties checked, besides "no panic":
//! - `validate` accepts exactly what `plan` renders ("a profile set that passes renders without
//!   error");
//! - the profiles survive a JSON and a YAML round trip through `parse_profiles` unchanged;
//! - every rendered config parses back to the same config (`render` of `parse` is the same text);
//! - the producer's read-back of each rendered file (`parse_rendered_config`) finds the file's
//!   profile name, run id and, for ptp4l, the interfaces of the plan;
//! - the Go sidecar, which reads the profile name with `profile: \s*([\w-_]+)` (ASCII `\w`) over
//!   the whole file, reads the same name as this daemon wrote (`sidecar_profile_name`, whose
//!   agreement with a real regex engine the `profile` target checks).
#![no_main]
use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ptp_config::{
    LinuxptpConf, NodeSelector, PtpClockThreshold, PtpProfile, RenderOptions, parse_profiles,
    parse_rendered_config, plan, sidecar_profile_name, validate,
};

const NAMES: &[&str] = &[
    "ordinary",
    "bc-profile",
    "tgm_1",
    "profile1",
    "profile2",
    "ha",
    "",
    "a b",
    "café",
    "x:y",
];
const IFACES: &[&str] = &[
    "ens1f0",
    "ens1f1",
    "ens4f0",
    "ens8f0",
    "",
    "eth0.100",
    "a-very-long-interface",
    "en[s]1",
    "veth0",
];
const PTP4L_OPTS: &[&str] = &[
    "-2 -s",
    "-2",
    "-2 -S",
    "-4 -E",
    " ",
    "",
    "-2 -s --summary_interval -4",
    "-i ens1f0 -2",
    "-f /etc/ptp4l.conf",
    "-2 \"-s\"",
    "--interface=ens1f0",
    "-m -2",
];
const PHC2SYS_OPTS: &[&str] = &[
    "-a -r -n 24",
    "-a -r -r -n 24 -m -N 8 -R 16",
    "-s ens1f0 -c CLOCK_REALTIME -w",
    " ",
    "",
    "-r -u 0 -m -N 8 -R 16 -s ens4f0 -n 24",
    "-f x",
];
const TS2PHC_OPTS: &[&str] = &[" ", "", "-s generic", "-m"];
const SECTIONS: &[&str] = &[
    "[global]",
    "[ens1f0]",
    "[ens1f1]",
    "[ens4f0]",
    "[nmea]",
    "[unicast_master_table]",
    "[ens8f0]",
    "[",
    "[]",
    "[a b]",
    "[x]junk",
];
const OPTIONS: &[&str] = &[
    "slaveOnly 1",
    "slaveOnly 0",
    "clientOnly 1",
    "masterOnly 1",
    "serverOnly 0",
    "domainNumber 24",
    "network_transport L2",
    "summary_interval -4",
    "boundary_clock_jbod 1",
    "message_tag [custom]",
    "uds_address /tmp/x",
    "leapfile /usr/share/zoneinfo/leap-seconds.list",
    "ts2phc.master 1",
    "ts2phc.nmea_serialport /dev/gnss0",
    "logging_level 6",
    "# a comment",
    "novalue",
    "  padded   value  ",
    "",
];

fn pick<'a>(u: &mut Unstructured<'_>, from: &[&'a str]) -> Result<&'a str> {
    Ok(from[u.choose_index(from.len())?])
}

fn text(u: &mut Unstructured<'_>, from: &[&str]) -> Result<String> {
    Ok(if u.ratio(1, 10)? {
        u.arbitrary::<&str>()?.to_owned()
    } else {
        pick(u, from)?.to_owned()
    })
}

fn opt(u: &mut Unstructured<'_>, from: &[&str]) -> Result<Option<String>> {
    Ok(if u.arbitrary()? {
        Some(text(u, from)?)
    } else {
        None
    })
}

fn conf(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    if u.ratio(1, 3)? {
        return Ok(None);
    }
    let mut lines = Vec::new();
    for _ in 0..u.int_in_range(0..=8usize)? {
        lines.push(if u.ratio(1, 3)? {
            text(u, SECTIONS)?
        } else {
            text(u, OPTIONS)?
        });
    }
    if u.ratio(2, 3)? && !lines.is_empty() {
        lines.insert(0, "[global]".into());
    }
    Ok(Some(lines.join(if u.ratio(1, 8)? { "\r\n" } else { "\n" })))
}

fn profile(u: &mut Unstructured<'_>) -> Result<PtpProfile> {
    let mut settings = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=3usize)? {
        let key = pick(u, &["clockType", "haProfiles", "leadingInterface", "other"])?;
        let value = match key {
            "clockType" => text(u, &["T-GM", "T-BC", "OC", ""])?,
            "haProfiles" => text(
                u,
                &[
                    "profile1,profile2",
                    "profile1",
                    " ordinary , ha ",
                    "missing",
                ],
            )?,
            _ => text(u, IFACES)?,
        };
        settings.insert(key.to_owned(), value);
    }
    let threshold = if u.arbitrary()? {
        let int = |u: &mut Unstructured<'_>| -> Result<Option<i64>> {
            Ok(match u.int_in_range(0..=3u8)? {
                0 => None,
                1 => Some(u.int_in_range(-200..=200)?),
                2 => Some(*u.choose(&[0, 5, 100, -100, i64::MAX, i64::MIN])?),
                _ => Some(u.arbitrary()?),
            })
        };
        Some(PtpClockThreshold {
            hold_over_timeout: int(u)?,
            max_offset_threshold: int(u)?,
            min_offset_threshold: int(u)?,
            process_downtime_thresholds: None,
        })
    } else {
        None
    };
    Ok(PtpProfile {
        name: opt(u, NAMES)?,
        interface: opt(u, IFACES)?,
        ptp4l_opts: opt(u, PTP4L_OPTS)?,
        phc2sys_opts: opt(u, PHC2SYS_OPTS)?,
        ts2phc_opts: opt(u, TS2PHC_OPTS)?,
        synce4l_opts: if u.ratio(1, 8)? {
            opt(u, &["", " ", "-m"])?
        } else {
            None
        },
        chronyd_opts: if u.ratio(1, 8)? {
            opt(u, &["", " ", "-d"])?
        } else {
            None
        },
        ptp4l_conf: conf(u)?,
        phc2sys_conf: if u.ratio(1, 4)? { conf(u)? } else { None },
        ts2phc_conf: if u.ratio(1, 4)? { conf(u)? } else { None },
        synce4l_conf: None,
        chronyd_conf: None,
        ptp_scheduling_policy: opt(u, &["SCHED_FIFO", "SCHED_OTHER", "", "SCHED_RR"])?,
        ptp_scheduling_priority: if u.arbitrary()? {
            Some(*u.choose(&[0, 1, 10, 65, 66, -1, i64::MAX])?)
        } else {
            None
        },
        ptp_clock_threshold: threshold,
        ptp_settings: settings,
        plugins: None,
    })
}

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    let mut profiles = Vec::new();
    for _ in 0..u.int_in_range(0..=4usize)? {
        profiles.push(profile(u)?);
    }
    let opts = RenderOptions::default();
    let valid = validate(&profiles);
    let rendered = plan(&profiles, &opts);
    assert_eq!(
        valid.is_ok(),
        rendered.is_ok(),
        "validate and plan disagree: {valid:?} / {rendered:?}"
    );

    if !profiles.is_empty() {
        let node = NodeSelector::new("node1");
        let json = serde_json::to_string(&profiles).expect("profiles serialize");
        let (_, back) = parse_profiles(&json, &node).expect("own JSON parses");
        assert_eq!(
            back, profiles,
            "JSON round trip changed the profiles: {json}"
        );
        let yaml = serde_norway::to_string(&profiles).expect("profiles serialize as YAML");
        let (_, back) = parse_profiles(&yaml, &node).expect("own YAML parses");
        assert_eq!(
            back, profiles,
            "YAML round trip changed the profiles:\n{yaml}"
        );
    }

    let Ok(plan) = rendered else { return Ok(()) };
    for p in &plan.profiles {
        for proc in &p.processes {
            let text = &proc.config_text;
            let conf = LinuxptpConf::parse(text).expect("a rendered config parses");
            assert_eq!(&conf.render(&proc.profile), text, "render(parse) differs");
            let back = parse_rendered_config(&proc.config_file, Path::new("/x"), text)
                .expect("a rendered config reads back");
            assert_eq!(back.profile.as_deref(), Some(proc.profile.as_str()));
            assert_eq!(back.run_id, proc.run_id);
            assert_eq!(back.process, proc.kind.name());
            if proc.config_file.starts_with("ptp4l.") {
                assert_eq!(
                    back.interfaces, p.interfaces,
                    "ptp4l interfaces read back differ"
                );
            }
            assert_eq!(
                sidecar_profile_name(text),
                Some(proc.profile.as_str()),
                "the Go sidecar would read another profile name from {text:?}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = check(&mut u);
});
