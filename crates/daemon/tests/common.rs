//! Helpers shared by the daemon's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Receives lines until one satisfies `pred` or `timeout` passes; returns every line seen.
pub async fn wait_for(
    rx: &mut mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(l)) => {
                seen.push(l.clone());
                if pred(&l) {
                    return l;
                }
            }
            Ok(None) => panic!("line channel closed while waiting for {what}"),
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {what}; last lines:\n{}",
                seen[seen.len().saturating_sub(30)..].join("\n")
            ),
        }
    }
}

/// Pids of processes whose command line contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) {
            // Zombies count too: they have an empty cmdline, so check the state.
            out.push(pid);
        }
    }
    out
}

/// Zombie children of this test process.
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a.trim().to_owned()) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        if f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str()) {
            out.push(pid);
        }
    }
    out
}

pub fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
