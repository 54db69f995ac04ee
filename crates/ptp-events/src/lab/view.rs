//! The lab's built-in consumer: subscribes to every resource of the node and prints a live view.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::StatusCode;
use chrono::Utc;
use oran_api::{CloudEvent, Resource};

/// What the view knows of each resource.
#[derive(Default)]
pub struct ViewState {
    latest: BTreeMap<Resource, CloudEvent>,
    /// Every event received (resource, state/value summary, latency ms), oldest first.
    pub events: Vec<(Resource, String, f64)>,
}

impl ViewState {
    /// The one-line status of every resource that has data.
    pub fn status_line(&self) -> String {
        let mut s = String::new();
        for r in Resource::ALL {
            let Some(ev) = self.latest.get(&r) else {
                continue;
            };
            if ev
                .data
                .values
                .iter()
                .any(|v| v.resource_address.ends_with("/ptp-not-set"))
            {
                continue;
            }
            if !s.is_empty() {
                s.push_str(" | ");
            }
            let _ = write!(s, "{} {}", short(r), summary(ev));
        }
        if s.is_empty() {
            "no data yet".into()
        } else {
            s
        }
    }
}

fn short(r: Resource) -> &'static str {
    match r {
        Resource::SyncState => "sync-state",
        Resource::OsClockSyncState => "os-clock",
        Resource::ClockClass => "clock-class",
        Resource::LockState => "lock-state",
        Resource::GnssSyncStatus => "gnss",
        Resource::SynceLockState => "synce",
        Resource::SynceClockQuality => "synce-ql",
    }
}

/// `LOCKED offset -5 ns`, `class 6`, ...
fn summary(ev: &CloudEvent) -> String {
    let mut parts = Vec::new();
    for v in &ev.data.values {
        let what = v.resource_address.rsplit('/').next().unwrap_or("");
        match (v.data_type.as_str(), what) {
            ("notification", _) => parts.push(v.value.clone()),
            ("metric", "gpsFix") => parts.push(format!("gpsFix {}", v.value)),
            ("metric", "Ql") => parts.push(format!("QL {}", v.value)),
            ("metric", "extQl") => parts.push(format!("extQL {}", v.value)),
            ("metric", _) if ev.resource() == Some(Resource::ClockClass) => {
                parts.push(format!("class {}", v.value))
            }
            ("metric", _) => parts.push(format!("offset {} ns", v.value)),
            _ => {}
        }
    }
    parts.join(" ")
}

/// The running view.
pub struct View {
    /// Where the producer POSTs.
    pub endpoint: String,
    /// What it has seen.
    pub state: Arc<Mutex<ViewState>>,
}

impl View {
    /// Starts the endpoint on 127.0.0.1 and prints each event (when `print`).
    pub async fn start(print: bool) -> anyhow::Result<View> {
        let state: Arc<Mutex<ViewState>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the lab consumer's endpoint")?;
        let addr: SocketAddr = listener.local_addr()?;
        let s = state.clone();
        let app = axum::Router::new().route(
            "/event",
            axum::routing::post(move |body: Bytes| {
                let s = s.clone();
                async move {
                    let Ok(ev) = CloudEvent::from_json(&body) else {
                        return StatusCode::BAD_REQUEST;
                    };
                    let latency =
                        (Utc::now() - ev.time.0).num_microseconds().unwrap_or(0) as f64 / 1e3;
                    let Some(r) = ev.resource() else {
                        return StatusCode::NO_CONTENT;
                    };
                    let placeholder = ev
                        .data
                        .values
                        .iter()
                        .any(|v| v.resource_address.ends_with("/ptp-not-set"));
                    let text = if placeholder {
                        "no data yet (initial notification placeholder)".to_owned()
                    } else {
                        summary(&ev)
                    };
                    let mut st = s.lock().expect("view lock");
                    st.latest.insert(r, ev.clone());
                    st.events.push((r, text.clone(), latency));
                    if print {
                        println!(
                            "{}  {:<12} {:<46} latency {:>7.3} ms",
                            ev.time.0.format("%H:%M:%S%.3f"),
                            short(r),
                            text,
                            latency
                        );
                        println!("      now: {}", st.status_line());
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(View {
            endpoint: format!("http://{addr}/event"),
            state,
        })
    }

    /// Subscribes the view to every resource of `node` on the producer at `api`.
    pub async fn subscribe(&self, api: SocketAddr, node: &str) -> anyhow::Result<()> {
        let body = format!(
            r#"{{"ResourceAddress":"/cluster/node/{node}/sync","EndpointUri":"{}"}}"#,
            self.endpoint
        );
        let url = url::Url::parse(&format!(
            "http://{api}{}subscriptions",
            oran_api::API_BASE_PATH
        ))?;
        let status = post(&url, body.clone()).await?;
        anyhow::ensure!(
            status == 201,
            "the lab consumer's subscription got HTTP {status}"
        );
        // Heal: another consumer may delete it (the Go consumer's 409 recovery deletes every
        // subscription); check every 2 s and subscribe again when it is gone.
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let Ok((st, list)) = proxy::http_get(&url, Duration::from_secs(5)).await else {
                    continue;
                };
                if st.as_u16() != 200 {
                    continue;
                }
                let ours = serde_json::from_slice::<Vec<serde_json::Value>>(&list)
                    .map(|l| l.iter().any(|s| s["EndpointUri"] == endpoint.as_str()))
                    .unwrap_or(true);
                if !ours && matches!(post(&url, body.clone()).await, Ok(201)) {
                    println!(
                        "lab: the lab's own subscription was deleted (by another consumer?); subscribed again"
                    );
                }
            }
        });
        Ok(())
    }
}

async fn post(url: &url::Url, body: String) -> anyhow::Result<u16> {
    let mut s = proxy::Sender::new(url, None, None)?;
    Ok(s.post(Bytes::from(body), Duration::from_secs(10))
        .await?
        .as_u16())
}
