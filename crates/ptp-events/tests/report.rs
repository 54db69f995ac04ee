//! `replay --report`: the HTML report of the repository's recorded T-BC daemon log and of the
//! lab's recorded slave log. The file is self-contained (no script, no fetch), has one mark per
//! event on the time axis and one row per event, and stays small for a day of offsets. Loaded in
//! a real headless Chromium (Debian's `chromium`): no console message, the marks and rows in the
//! rendered DOM, a screenshot kept in `target/test-artifacts/`. Without Chromium that part says
//! SKIPPED (required under `CI=true`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn replay_report(log: &Path, extra: &[&str], report: &Path) -> usize {
    let out = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
        .arg("replay")
        .arg(log)
        .args(extra)
        .arg("--report")
        .arg(report)
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The events printed (JSON lines) are the events in the report.
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `html` in headless Chromium: the DOM as rendered, and a screenshot.
fn browse(chromium: &Path, html: &Path, png: &Path) -> String {
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1520,1400",
    ];
    let dom = Command::new(chromium)
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let stderr = String::from_utf8_lossy(&dom.stderr);
    assert!(
        !stderr.contains("CONSOLE") && !stderr.contains("Uncaught"),
        "console messages: {stderr}"
    );
    let shot = Command::new(chromium)
        .args(common)
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    assert!(
        std::fs::metadata(png).unwrap().len() > 10_000,
        "an empty screenshot"
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn reports_are_self_contained_complete_and_render_in_a_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "tbc",
            root.join("crates/ptp-state/tests/data/daemon-log-tbc.txt"),
            vec!["--year", "2026"],
        ),
        (
            "lab-oc",
            root.join("crates/ptp-events/lab/testbed-oc-slave.log"),
            vec!["--max-offset", "5000", "--min-offset", "-5000"],
        ),
    ];
    let browser = chromium();
    for (name, log, extra) in cases {
        let html = dir.path().join(format!("{name}.html"));
        let events = replay_report(&log, &extra, &html);
        assert!(events > 0, "{name}: no events");
        let text = std::fs::read_to_string(&html).unwrap();
        // Self-contained: nothing fetched, nothing run.
        for banned in ["<script", "<link", "src=", "@import", "url("] {
            assert!(!text.contains(banned), "{name}: {banned}");
        }
        assert_eq!(
            text.matches("http://").count(),
            1,
            "{name}: only the SVG namespace"
        );
        assert_eq!(
            text.matches(r#"class="mark transition"#).count(),
            events,
            "{name}: marks"
        );
        assert_eq!(
            text.matches(r#"class="event""#).count(),
            events,
            "{name}: rows"
        );
        assert!(text.contains("HOLDOVER") || name == "lab-oc");
        let Some(chromium) = &browser else {
            continue;
        };
        let png = artifacts().join(format!("report-{name}.png"));
        let dom = browse(chromium, &html, &png);
        assert_eq!(
            dom.matches(r#"id="mark-"#).count(),
            events,
            "{name}: marks in the DOM"
        );
        assert_eq!(
            dom.matches(r#"<tr id="ev-"#).count(),
            events,
            "{name}: rows in the DOM"
        );
        println!("{name}: {events} events; screenshot {}", png.display());
    }
    if browser.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is missing (apt-get install chromium)"
        );
        println!("SKIPPED the browser part: chromium is missing (apt-get install chromium)");
    }
}

/// A day of a 2 Hz slave (172,800 offset lines, a HOLDOVER in the middle): the report is
/// bounded by its pixel columns, not by the log.
#[test]
fn a_day_of_offsets_makes_a_small_report() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("day.log");
    let mut text = String::with_capacity(172_800 * 90);
    text.push_str("ptp4l[0.000]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\n");
    for i in 0..172_800u64 {
        let t = i as f64 / 2.0;
        if i == 86_400 {
            text.push_str(&format!("ptp4l[{t:.3}]: [ptp4l.0.config] port 1 (ens1f0): SLAVE to LISTENING on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES\n"));
        }
        if i == 86_404 {
            text.push_str(&format!("ptp4l[{t:.3}]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\n"));
        }
        let offset = (i % 17) as i64 - 8;
        text.push_str(&format!(
            "ptp4l[{t:.3}]: [ptp4l.0.config] master offset {offset} s2 freq -100 path delay 500\n"
        ));
    }
    std::fs::write(&log, text).unwrap();
    let html = dir.path().join("day.html");
    let events = replay_report(&log, &[], &html);
    let size = std::fs::metadata(&html).unwrap().len();
    println!("a day: {events} events, report {size} bytes");
    assert!(events >= 2);
    assert!(size < 200_000, "{size} bytes for a day");
}
