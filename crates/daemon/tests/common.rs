//! Helpers shared by the daemon's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
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

pub fn prerequisites() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root (network namespaces need root)".into());
    }
    for bin in ["/usr/sbin/ptp4l", "/usr/sbin/phc_ctl"] {
        if !Path::new(bin).exists() {
            return Err(format!("{bin} is missing (apt-get install linuxptp)"));
        }
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("`ip` is missing (apt-get install iproute2)".into());
    }
    Ok(())
}

/// CLOCK_REALTIME's frequency offset as `phc_ctl` reads it.
pub fn realtime_freq() -> String {
    let out = Command::new("phc_ctl")
        .args(["CLOCK_REALTIME", "freq"])
        .output()
        .expect("phc_ctl");
    // phc_ctl prints to stdout or stderr depending on its version.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_once("offset is")
        .map(|(_, f)| f.trim().to_owned())
        .unwrap_or_else(|| panic!("phc_ctl CLOCK_REALTIME freq: {text}"))
}

/// A process that disciplines CLOCK_REALTIME (its frequency may change under the test).
pub fn time_daemon() -> Option<String> {
    let rd = std::fs::read_dir("/proc").ok()?;
    for e in rd.flatten() {
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            let c = comm.trim();
            if [
                "chronyd",
                "ntpd",
                "systemd-timesyn",
                "ptp4l",
                "phc2sys",
                "timemaster",
            ]
            .contains(&c)
            {
                return Some(c.to_owned());
            }
        }
    }
    None
}

pub fn pmc(sock: &Path, cmd: &str) -> Vec<(String, String)> {
    let out = Command::new("/usr/sbin/pmc")
        .args(["-u", "-b", "0", "-s"])
        .arg(sock)
        .arg(cmd)
        .output()
        .expect("run pmc");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some(k), Some(v), None) => Some((k.to_owned(), v.to_owned())),
                _ => None,
            }
        })
        .collect()
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why gpsd-based tests cannot run here, if they cannot.
pub fn gpsd_prerequisites() -> Result<(), String> {
    for bin in ["/usr/sbin/gpsd", "/usr/bin/gpsfake"] {
        if !Path::new(bin).exists() {
            return Err(format!(
                "{bin} is missing (apt-get install gpsd gpsd-clients)"
            ));
        }
    }
    Ok(())
}

/// A TCP port nothing listens on now.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Lines from the daemon, the engine fed with them, and its events (resource, first value).
pub struct Seen {
    pub rx: mpsc::Receiver<String>,
    pub lines: Vec<(Duration, String)>,
    pub engine: Option<ptp_state::Engine>,
    pub events: Vec<(Duration, String, String)>,
    pub t0: Instant,
}

impl Seen {
    pub fn pump(&mut self, line: Option<String>) {
        let now = ptp_state::nanos(self.t0.elapsed());
        let mut out = Vec::new();
        if let Some(l) = line {
            if let Some(e) = self.engine.as_mut() {
                e.feed(&l, now, &mut out);
            }
            self.lines.push((self.t0.elapsed(), l));
        } else if let Some(e) = self.engine.as_mut() {
            e.tick(now, &mut out);
        }
        for c in out {
            let r = format!("{:?}", c.resource);
            let v = c.values[0].value.clone();
            println!("  [{:>6.2?}] {r} {v}", self.t0.elapsed());
            self.events.push((self.t0.elapsed(), r, v));
        }
    }

    pub async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Seen) -> bool,
    ) -> Duration {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last lines:\n{}",
                self.lines[self.lines.len().saturating_sub(30)..]
                    .iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            match tokio::time::timeout(Duration::from_millis(50), self.rx.recv()).await {
                Ok(Some(l)) => self.pump(Some(l)),
                Ok(None) => panic!("line channel closed"),
                Err(_) => self.pump(None),
            }
        }
        let at = self.t0.elapsed();
        println!("{what}: at {at:.2?}");
        at
    }

    pub fn line_at(&self, pred: impl Fn(&str) -> bool) -> Option<Duration> {
        self.lines.iter().find(|(_, l)| pred(l)).map(|(t, _)| *t)
    }

    pub fn has_after(&self, from: usize, pred: impl Fn(&str) -> bool) -> bool {
        self.lines[from..].iter().any(|(_, l)| pred(l))
    }

    /// The values of every event of `resource` (its `Debug` name, e.g. `GnssSyncStatus`).
    pub fn of(&self, resource: &str) -> Vec<&str> {
        self.events
            .iter()
            .filter(|(_, r, _)| r == resource)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    pub fn classes(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|(_, r, _)| r == "ClockClass")
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    pub fn lock_states(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|(_, r, _)| r == "LockState")
            .map(|(_, _, v)| v.as_str())
            .collect()
    }
}
