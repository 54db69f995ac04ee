//! GNSS from gpsd: a client of gpsd's JSON socket protocol (`?WATCH={"enable":true,"json":true}`,
//! then one JSON object per line), reduced to what the T-GM machine needs: the fix mode of each
//! `TPV` report, gpsd's estimated time error (`ept`), and the leap seconds when gpsd knows them.
//!
//! gpsd and its reports are real: on a machine without a receiver, gpsd is fed by `gpsfake`
//! (tests and the lab). What gpsd 3.22 does that matters here (observed with gpsfake):
//! * a fix lost with empty NMEA fields gives `TPV` reports with `"mode":1`; some losses give no
//!   report at all, so silence is a loss too (the machine's `gnssTimeout`);
//! * with NMEA input `ept` is a fixed 0.005 s estimate (a u-blox receiver in binary mode reports
//!   its real time accuracy there);
//! * gpsd 3.22 reports no spoofing or jamming flags for NMEA receivers (`jam` appears with some
//!   binary protocols, and is read when present): those come from the T-GM emulation file.
//!
//! A gpsd that is absent, closes, or stays silent is never waited on without bound: a connect
//! takes at most [`RETRY`], a connection silent for [`SILENCE`] is made again, the client
//! reconnects every [`RETRY`], each episode is logged once.
//!
//! For machines without a receiver (the tests and the lab): [`nmea_second`] writes NMEA that
//! gpsd understands, and [`Gpsfake`] runs `gpsfake` (which starts its own gpsd) on a port, in
//! its own process group, killed with SIGKILL on drop (gpsfake can outlive its log and ignore
//! SIGTERM).

use std::time::Duration;

pub use ptp_state::gpsd::{DecodeError, Report, decode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// How long a connect may take, and the pause before the next attempt.
pub const RETRY: Duration = Duration::from_millis(500);

/// A connection that brings no line for this long is dropped and made again (gpsd reports at
/// least once a second while it has a device; a half-open connection would otherwise be waited
/// on forever).
pub const SILENCE: Duration = Duration::from_secs(10);

/// The longest line read whole (gpsd's SKY reports with many satellites are a few KiB).
const MAX_LINE: usize = 64 * 1024;

/// The `?WATCH` command that asks gpsd for JSON reports.
pub const WATCH: &str = "?WATCH={\"enable\":true,\"json\":true};\n";

/// What the client hands on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A report.
    Report(Report),
    /// The connection was lost (or never made); the reason.
    Down(String),
}

/// Connects to gpsd at `addr` (`host:port`) and sends every report (and every loss of the
/// connection) to `tx`, until `stop` or until `tx` is closed. Reconnects every [`RETRY`].
pub async fn run(addr: String, tx: mpsc::Sender<Event>, mut stop: watch::Receiver<bool>) {
    let mut logged_down = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let why = tokio::select! {
            _ = stop.changed() => return,
            r = session(&addr, &tx, &mut logged_down) => r,
        };
        if tx.is_closed() {
            return;
        }
        if !logged_down {
            tracing::warn!(gpsd = %addr, reason = %why, "GNSS: gpsd not available (a GNSS loss); retrying");
            logged_down = true;
        }
        if tx.send(Event::Down(why)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// One connection: returns why it ended.
async fn session(addr: &str, tx: &mpsc::Sender<Event>, logged_down: &mut bool) -> String {
    let stream = match tokio::time::timeout(RETRY, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return format!("cannot connect: {e}"),
        Err(_) => return format!("connect took longer than {RETRY:?}"),
    };
    let (read, mut write) = stream.into_split();
    if let Err(e) = write.write_all(WATCH.as_bytes()).await {
        return format!("cannot send ?WATCH: {e}");
    }
    if *logged_down {
        tracing::info!(gpsd = %addr, "GNSS: connected to gpsd again");
        *logged_down = false;
    } else {
        tracing::info!(gpsd = %addr, "GNSS: connected to gpsd");
    }
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    let mut bad_logged = false;
    loop {
        buf.clear();
        // Bounded: a line longer than MAX_LINE ends the session (gpsd never sends one).
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let n = match tokio::time::timeout(SILENCE, limited.read_until(b'\n', &mut buf)).await {
            Err(_) => return format!("no line for {SILENCE:?}; connecting again"),
            Ok(Ok(0)) => return "gpsd closed the connection".into(),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return format!("read failed: {e}"),
        };
        if n > MAX_LINE {
            return format!("a line longer than {MAX_LINE} bytes");
        }
        let line = String::from_utf8_lossy(&buf);
        match decode(&line) {
            Ok(r) => {
                if tx.send(Event::Report(r)).await.is_err() {
                    return "the T-GM runner stopped".into();
                }
            }
            Err(e) if !bad_logged => {
                bad_logged = true;
                tracing::warn!(gpsd = %addr, error = %e, "GNSS: a line from gpsd was not understood; skipped");
            }
            Err(_) => {}
        }
    }
}

/// One second of NMEA for `gpsfake` (the stand-in for a receiver in the tests and the lab) (GGA, GSA, RMC with checksums) at `t` seconds after 05:00:00: a 3D fix,
/// or no fix (empty position fields, GGA quality 0, GSA mode 1, RMC status V).
pub fn nmea_second(t: u32, fix: bool) -> String {
    fn sentence(body: &str) -> String {
        let sum = body.bytes().fold(0u8, |a, b| a ^ b);
        format!("${body}*{sum:02X}\r\n")
    }
    let (h, m, s) = (5 + t / 3600, (t / 60) % 60, t % 60);
    let hms = format!("{h:02}{m:02}{s:02}.00");
    if fix {
        sentence(&format!(
            "GPGGA,{hms},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
        )) + &sentence("GPGSA,A,3,04,05,09,12,24,25,29,31,,,,,2.5,1.3,2.1")
            + &sentence(&format!(
                "GPRMC,{hms},A,4807.038,N,01131.000,E,022.4,084.4,041226,003.1,W"
            ))
    } else {
        sentence(&format!("GPGGA,{hms},,,,,0,00,99.99,,,,,,"))
            + &sentence("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99")
            + &sentence(&format!("GPRMC,{hms},V,,,,,,,041226,,,N"))
    }
}

/// A gpsd fed by gpsfake on `127.0.0.1:port`, replaying `seconds` (true: a 3D fix) in a loop
/// (or once), 0.1 s between sentences. gpsfake runs in its own process group, killed (SIGKILL)
/// on drop: it can outlive its log and ignore SIGTERM.
pub struct Gpsfake {
    child: std::process::Child,
    /// gpsd's port.
    pub port: u16,
}

impl Gpsfake {
    /// Starts gpsfake (`/usr/bin/gpsfake`) replaying `seconds` from `<dir>/<name>.nmea`, its
    /// output in `<dir>/<name>.gpsfake.log`.
    pub fn start(
        dir: &std::path::Path,
        name: &str,
        port: u16,
        seconds: &[bool],
        once: bool,
    ) -> std::io::Result<Gpsfake> {
        use std::os::unix::process::CommandExt;
        let log = dir.join(format!("{name}.nmea"));
        let text: String = seconds
            .iter()
            .enumerate()
            .map(|(t, fix)| nmea_second(t as u32, *fix))
            .collect();
        std::fs::write(&log, text)?;
        let mut c = std::process::Command::new("/usr/bin/gpsfake");
        if once {
            c.arg("-1");
        }
        let out = std::fs::File::create(dir.join(format!("{name}.gpsfake.log")))?;
        let child = c
            .args(["-q", "-c", "0.1", "-P", &port.to_string()])
            .arg(&log)
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Gpsfake { child, port })
    }

    /// Kills gpsfake and its gpsd (the whole group) and waits for gpsfake.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Gpsfake {
    fn drop(&mut self) {
        self.kill();
    }
}
