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
//! A gpsd that is absent, closes, or stays silent is never waited on without bound: connects
//! and reads are bounded, the client reconnects every [`RETRY`], each episode is logged once.

use std::time::Duration;

use ptp_state::tgm::GnssReading;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// How long a connect may take, and the pause before the next attempt.
pub const RETRY: Duration = Duration::from_millis(500);

/// The longest line read whole (gpsd's SKY reports with many satellites are a few KiB).
const MAX_LINE: usize = 64 * 1024;

/// The `?WATCH` command that asks gpsd for JSON reports.
pub const WATCH: &str = "?WATCH={\"enable\":true,\"json\":true};\n";

/// One report of interest.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A `TPV` (time-position-velocity) report.
    Tpv {
        /// The fix: 0 unknown, 1 none, 2 2D, 3 3D.
        mode: u8,
        /// gpsd's estimated time error, seconds.
        ept: Option<f64>,
        /// TAI − UTC − 19 as gpsd gives it (GPS leap seconds), when known.
        leapseconds: Option<i16>,
        /// The jamming indicator (0–255), when the receiver reports one.
        jam: Option<u8>,
    },
    /// Another class (`VERSION`, `DEVICES`, `WATCH`, `SKY`, ...), by name.
    Other(String),
}

impl Report {
    /// The machine's reading of a TPV (`None` for other reports). `jam_threshold`: a jamming
    /// indicator at or above it counts as jamming.
    pub fn reading(&self, jam_threshold: u8) -> Option<GnssReading> {
        match self {
            Report::Tpv { mode, ept, jam, .. } => Some(GnssReading {
                fix_mode: *mode,
                time_error_ns: ept.map(|s| s * 1e9),
                spoofed: false,
                jammed: jam.is_some_and(|j| j >= jam_threshold),
            }),
            Report::Other(_) => None,
        }
    }
}

/// Why a line is not a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// No `class`.
    #[error("a JSON object without \"class\"")]
    NoClass,
    /// A TPV whose `mode` is missing or not 0–3.
    #[error("TPV without a valid mode (0-3)")]
    BadMode,
}

/// Decodes one line of gpsd's JSON protocol.
pub fn decode(line: &str) -> Result<Report, DecodeError> {
    let v: serde_json::Value =
        serde_json::from_str(line.trim()).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| DecodeError::NotJson("not an object".into()))?;
    let class = obj
        .get("class")
        .and_then(|c| c.as_str())
        .ok_or(DecodeError::NoClass)?;
    if class != "TPV" {
        return Ok(Report::Other(class.to_owned()));
    }
    let mode = obj
        .get("mode")
        .and_then(|m| m.as_u64())
        .filter(|m| *m <= 3)
        .ok_or(DecodeError::BadMode)? as u8;
    let ept = obj
        .get("ept")
        .and_then(|e| e.as_f64())
        .filter(|e| e.is_finite() && *e >= 0.0);
    let leapseconds = obj
        .get("leapseconds")
        .and_then(|l| l.as_i64())
        .and_then(|l| i16::try_from(l).ok())
        .filter(|l| (0..=100).contains(l));
    let jam = obj
        .get("jam")
        .and_then(|j| j.as_u64())
        .and_then(|j| u8::try_from(j).ok());
    Ok(Report::Tpv {
        mode,
        ept,
        leapseconds,
        jam,
    })
}

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
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) => return "gpsd closed the connection".into(),
            Ok(n) => n,
            Err(e) => return format!("read failed: {e}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from gpsd 3.22 fed by gpsfake (a 3D fix, then a fix lost with empty fields).
    const RECORDED: &[&str] = &[
        r#"{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}"#,
        r#"{"class":"DEVICES","devices":[]}"#,
        r#"{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,"scaled":false,"timing":false,"split24":false,"pps":false}"#,
        r#"{"class":"TPV","device":"/dev/pts/2","mode":3,"time":"2026-12-04T05:00:03.000Z","ept":0.005,"lat":48.117300000,"lon":11.516666667,"altHAE":592.3000,"altMSL":545.4000,"alt":545.4000,"epv":48.300,"track":84.4000,"magtrack":81.3000,"magvar":-3.1,"speed":11.524}"#,
        r#"{"class":"TPV","device":"/dev/pts/2","mode":1,"time":"2026-12-04T05:00:09.000Z","ept":0.005}"#,
        r#"{"class":"DEVICE","path":"/dev/pts/2","activated":0}"#,
    ];

    #[test]
    fn recorded_gpsd_reports() {
        let r: Vec<_> = RECORDED.iter().map(|l| decode(l).unwrap()).collect();
        assert_eq!(r[0], Report::Other("VERSION".into()));
        assert_eq!(
            r[3],
            Report::Tpv {
                mode: 3,
                ept: Some(0.005),
                leapseconds: None,
                jam: None
            }
        );
        let g = r[3].reading(200).unwrap();
        assert_eq!(g.fix_mode, 3);
        assert_eq!(g.time_error_ns, Some(5_000_000.0));
        assert_eq!(r[4].reading(200).unwrap().fix_mode, 1);
        assert_eq!(r[5], Report::Other("DEVICE".into()));
        assert!(r[5].reading(200).is_none());
    }

    #[test]
    fn leap_seconds_and_jamming_when_present() {
        let r = decode(r#"{"class":"TPV","mode":3,"leapseconds":18,"jam":230}"#).unwrap();
        assert_eq!(
            r,
            Report::Tpv {
                mode: 3,
                ept: None,
                leapseconds: Some(18),
                jam: Some(230)
            }
        );
        assert!(r.reading(200).unwrap().jammed);
        assert!(!r.reading(240).unwrap().jammed);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "",
            "not json",
            "[1,2]",
            r#"{"mode":3}"#,
            r#"{"class":"TPV"}"#,
            r#"{"class":"TPV","mode":9}"#,
            r#"{"class":"TPV","mode":-1}"#,
            r#"{"class":7}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        // Odd values are dropped, not trusted.
        assert_eq!(
            decode(r#"{"class":"TPV","mode":2,"ept":-1,"leapseconds":99999,"jam":999}"#).unwrap(),
            Report::Tpv {
                mode: 2,
                ept: None,
                leapseconds: None,
                jam: None
            }
        );
    }
}
