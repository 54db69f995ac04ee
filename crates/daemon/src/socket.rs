//! The UNIX socket outlet: the daemon is the client of the producer's listening socket
//! (`/cloud-native/events.sock`), as the Go daemon is of cloud-event-proxy.
//!
//! On every connection it writes `CMD RESTART` if one is still undelivered, then the replay
//! (the last process status, port state, clock class and offset line of each process; no ptp4l
//! offset once no port of its config is SLAVE), then
//! `CMD LIVE_START`, then live lines. A lost connection is redialled after 250 ms, then every
//! 500 ms: trying a local socket costs one syscall, and a producer that restarts (the Go one does
//! on every `CMD RESTART`) gets lines again within half a second of its socket reappearing. While it is down, lines wait in the hub's bounded buffer (oldest dropped,
//! counted); at reconnect those stale lines are replaced by the replay.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::hub::Hub;

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two dials of the producer's socket.
const MAX_REDIAL: Duration = Duration::from_millis(500);

async fn write_lines(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    lines: &[String],
) -> std::io::Result<()> {
    let mut buf = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    match tokio::time::timeout(WRITE_TIMEOUT, w.write_all(buf.as_bytes())).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out after 5 s",
        )),
    }
}

/// Runs until `stop` turns true.
pub async fn run(hub: Arc<Hub>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(250);
    let mut logged_down = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let stream = tokio::select! {
            r = UnixStream::connect(&path) => r,
            _ = stop.changed() => return,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(socket = %path.display(), error = %e, "cannot connect to the event socket; retrying every 500 ms");
                    logged_down = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {},
                    _ = stop.changed() => return,
                }
                delay = (delay * 2).min(MAX_REDIAL);
                continue;
            }
        };
        delay = Duration::from_millis(250);
        logged_down = false;
        tracing::info!(socket = %path.display(), "connected to the event socket; replaying state");
        let (mut r, mut w) = stream.into_split();
        let first = hub.on_connect();
        if let Err(e) = write_lines(&mut w, &first).await {
            tracing::warn!(error = %e, "event socket write failed; reconnecting");
            continue;
        }
        hub.count_written(first.len());
        let mut scratch = [0u8; 256];
        loop {
            tokio::select! {
                batch = hub.next_batch() => {
                    if let Err(e) = write_lines(&mut w, &batch).await {
                        tracing::warn!(error = %e, lost = batch.len(), "event socket write failed; reconnecting");
                        break;
                    }
                    hub.count_written(batch.len());
                }
                n = r.read(&mut scratch) => {
                    // The protocol is one-way; EOF or an error means the peer went away.
                    if matches!(n, Ok(0) | Err(_)) {
                        tracing::warn!("event socket closed by the peer; reconnecting");
                        break;
                    }
                }
                _ = stop.changed() => {
                    // Flush what is already buffered, briefly.
                    if let Ok(batch) = tokio::time::timeout(Duration::from_millis(200), hub.next_batch()).await {
                        let _ = write_lines(&mut w, &batch).await;
                    }
                    return;
                }
            }
        }
    }
}
