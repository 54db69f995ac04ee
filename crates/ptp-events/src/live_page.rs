//! The replay report's picture of a node, as it happens: `lab --web` (the lab's node) and the
//! producer's opt-in `--status-page` (on its metrics listener). The page (`GET <base>`) is the
//! report of everything the engine took so far; `GET <base>events` is a server-sent event stream
//! whose every message is the report's content rendered again, at most twice a second and only
//! after a change, which the page's one inline script swaps in. Nothing is fetched from
//! elsewhere; read-only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use ptp_state::Change;
use tokio::sync::watch;

use crate::report::{EventRow, Report};

/// Offset samples kept per series (3.5 hours at 16 a second) and events kept: the page shows
/// that recent window, in bounded memory (about 3 MB per clock).
const KEEP_SAMPLES: usize = 200_000;
const KEEP_EVENTS: usize = 5_000;

/// The live picture: fed by the ingest observer hook, rendered once per change and shared by
/// every viewer.
#[derive(Debug)]
pub struct LivePage {
    report: Mutex<Report>,
    version: watch::Sender<u64>,
    started: SystemTime,
    /// The content last rendered, and the version it shows.
    rendered: Mutex<(u64, Arc<String>)>,
}

impl LivePage {
    /// An empty picture titled `title`, offsets drawn against `min`/`max` ns.
    pub fn new(title: &str, min: i64, max: i64) -> Arc<LivePage> {
        Arc::new(LivePage {
            report: Mutex::new(Report::new(title, min, max).with_limits(KEEP_SAMPLES, KEEP_EVENTS)),
            version: watch::channel(0).0,
            started: SystemTime::now(),
            rendered: Mutex::new((u64::MAX, Arc::new(String::new()))),
        })
    }

    fn when(&self) -> impl Fn(u64) -> String + '_ {
        move |at| {
            chrono::DateTime::<chrono::Utc>::from(self.started + Duration::from_nanos(at))
                .format("%H:%M:%S%.3f")
                .to_string()
        }
    }

    /// The content now: rendered again only when something changed since the last rendering.
    fn body(&self) -> Arc<String> {
        let version = *self.version.borrow();
        let mut cache = self.rendered.lock().expect("render lock");
        if cache.0 != version {
            let when = self.when();
            let body = self.report.lock().expect("report lock").body(&when);
            *cache = (version, Arc::new(body));
        }
        cache.1.clone()
    }

    fn page(&self) -> String {
        let when = self.when();
        self.report.lock().expect("report lock").page(
            &when,
            r#"<p id="status">live: updated as the engine takes lines (server-sent events)</p>
<script>
const es = new EventSource("events" + location.search);
let updates = 0;
es.onmessage = (e) => {
  document.getElementById("report").innerHTML = e.data;
  document.body.dataset.updates = ++updates;
};
es.onerror = () => { document.getElementById("status").textContent = "not updating: the stream ended (the lab stopped, or ?max was reached)"; };
</script>"#,
        )
    }
}

impl proxy::ingest::IngestObserver for LivePage {
    fn line(&self, line: &str, at: u64) {
        self.report.lock().expect("report lock").line(line, at);
        // The offsets move too: the stream sends them (at most twice a second).
        self.version.send_modify(|v| *v += 1);
    }

    fn change(&self, change: &Change, at: u64, line: Option<&str>) {
        self.report
            .lock()
            .expect("report lock")
            .event(EventRow::new(
                change.resource,
                &change.values,
                at,
                0,
                line.unwrap_or("(a timer: no line)"),
            ));
        self.version.send_modify(|v| *v += 1);
    }
}

/// The page at `base` (ending in `/`) and its stream at `<base>events`.
pub fn router(page: Arc<LivePage>, base: &str) -> axum::Router {
    let p = page.clone();
    axum::Router::new()
        .route(base, get(move || async move { Html(p.page()) }))
        .route(
            &format!("{base}events"),
            get(move |uri: axum::http::Uri| {
                let page = page.clone();
                let max = uri.query().and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("max="))
                        .and_then(|v| v.parse::<u32>().ok())
                });
                async move { events(page, max).into_response() }
            }),
        )
}

/// Serves the page at `/` on `addr` until `stop` (the lab); returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    page: Arc<LivePage>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("lab --web {addr}: cannot listen: {e}"))?;
    let bound = listener.local_addr()?;
    let app = router(page, "/");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(bound)
}

/// The stream: the content now, then again after each change (at most every 500 ms). With
/// `/events?max=N` it ends after N messages, with a long `retry` so that the browser does not
/// reconnect at once: a browser whose page must finish loading (a headless one taking a picture)
/// asks for a bounded stream, the page passing its own query on.
fn events(
    page: Arc<LivePage>,
    max: Option<u32>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = page.version.subscribe();
    let stream =
        futures_util::stream::unfold((page, rx, 0u32), move |(page, mut rx, sent)| async move {
            if max.is_some_and(|m| sent >= m) {
                return None;
            }
            if sent > 0 {
                rx.changed().await.ok()?;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            rx.borrow_and_update();
            let mut ev = Event::default().data(page.body().as_str());
            if max.is_some() {
                ev = ev.retry(Duration::from_secs(3600));
            }
            Some((Ok(ev), (page, rx, sent + 1)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
