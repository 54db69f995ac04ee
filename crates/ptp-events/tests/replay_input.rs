//! `replay` on bad input: a line longer than the producer's 64 KiB cap is cut and counted
//! (memory stays bounded); a file in which nothing is understood, a directory and a missing
//! file are errors that name the path and exit non-zero.

use std::process::{Command, Stdio};

fn replay(path: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
        .arg("replay")
        .arg(path)
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn long_lines_are_cut_and_counted_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let mut text = String::new();
    text.push_str("ptp4l[1.000]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\n");
    text.push_str(&"x".repeat(3 * 1024 * 1024)); // 3 MiB without a newline, then one
    text.push('\n');
    for i in 0..5 {
        text.push_str(&format!(
            "ptp4l[{}.000]: [ptp4l.0.config] master offset 5 s2 freq 0 path delay 500\n",
            2 + i
        ));
    }
    std::fs::write(&log, text).unwrap();
    let (code, out, err) = replay(&log);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 longer than 64 KiB cut"), "{err}");
    assert!(
        out.contains("LOCKED"),
        "the lines after the long one replay: {out}"
    );
}

#[test]
fn nothing_understood_a_directory_and_a_missing_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.txt");
    std::fs::write(&garbage, "hello\nworld\n").unwrap();
    let (code, _, err) = replay(&garbage);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no line was understood") && err.contains("garbage.txt"),
        "{err}"
    );
    let (code, _, err) = replay(dir.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    let missing = dir.path().join("missing.txt");
    let (code, _, err) = replay(&missing);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing.txt"), "{err}");
}
