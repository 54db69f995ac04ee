//! The PTP events producer: the REST API v2 (O-RAN O-Cloud Notification API), durable
//! subscriptions, per-subscriber delivery and `/metrics`.
//!
//! The shape:
//! - [`Hub`] holds the subscriptions (backed by the crash-safe [`Store`]), the latest event per
//!   resource, and one delivery worker per subscriber endpoint. Anything that produces events
//!   (the state engine, a test) calls [`Hub::publish`]; a [`StateSource`] answers CurrentState.
//! - [`api`] is the HTTP layer (axum); [`Producer::start`] binds the API and metrics listeners.
//!
//! What it is not: it does not parse linuxptp output (that is the state engine) and it does not
//! run linuxptp (that is the daemon).
#![forbid(unsafe_code)]

pub mod api;
mod hub;
pub mod ingest;
pub mod metrics;
mod sender;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use hub::{DeliveryConfig, Hub, HubError, Published, StateSource};
pub use ingest::{Ingest, IngestConfig, IngestError, LineSender};
pub use metrics::Metrics;
pub use sender::{Sender, TransportError};
pub use store::{Store, StoreError};

use axum::http::header;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Everything the producer needs to start.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// This node's name (`NODE_NAME`), used verbatim in resource addresses.
    pub node_name: String,
    /// Where the REST API listens.
    pub api_addr: SocketAddr,
    /// Where `/metrics` listens (`None`: not served).
    pub metrics_addr: Option<SocketAddr>,
    /// The store directory.
    pub store_path: PathBuf,
    /// Scheme, host and port used in `UriLocation` (see [`uri_location_base`]).
    pub uri_location_base: String,
    /// Delivery policy.
    pub delivery: DeliveryConfig,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

/// The `UriLocation` base derived from `--transport-host` as the Go producer does: a missing
/// scheme becomes `http://`, the `NODE_IP` token is replaced by `node_ip` when given, else the
/// `NODE_NAME` token by the short node name; the host is kept and the port is `api_port`.
pub fn uri_location_base(
    transport_host: &str,
    node_name: &str,
    node_ip: Option<&str>,
    api_port: u16,
) -> String {
    let mut t = transport_host.trim().to_owned();
    match node_ip {
        Some(ip) if !ip.is_empty() && t.contains("NODE_IP") => t = t.replace("NODE_IP", ip),
        _ => {
            let short = node_name.split('.').next().unwrap_or(node_name);
            t = t.replace("NODE_NAME", short);
        }
    }
    if !t.contains("://") {
        t = format!("http://{t}");
    }
    match url::Url::parse(&t) {
        Ok(u) => {
            let host = match u.host() {
                Some(url::Host::Ipv6(a)) => format!("[{a}]"),
                Some(h) => h.to_string(),
                None => String::new(),
            };
            format!("{}://{host}:{api_port}", u.scheme())
        }
        Err(_) => format!("http://:{api_port}"),
    }
}

/// A running producer.
pub struct Producer {
    /// The hub (publish events here).
    pub hub: Arc<Hub>,
    /// The bound API address.
    pub api_addr: SocketAddr,
    /// The bound metrics address.
    pub metrics_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Producer {
    /// Opens the store, loads the subscriptions, binds the listeners and starts serving.
    pub async fn start(cfg: ProducerConfig) -> Result<Producer, StartError> {
        let (store, loaded) = Store::open(&cfg.store_path).map_err(StartError::Store)?;
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(
            &cfg.node_name,
            &cfg.uri_location_base,
            store,
            loaded,
            metrics,
            cfg.delivery.clone(),
        );
        let api = TcpListener::bind(cfg.api_addr)
            .await
            .map_err(|e| StartError::Bind("API", cfg.api_addr, e))?;
        let api_addr = api
            .local_addr()
            .map_err(|e| StartError::Bind("API", cfg.api_addr, e))?;
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let app = api::service(hub.clone(), cfg.max_body_bytes, api_addr.port());
        let mut stop = rx.clone();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(api, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "API server failed");
            }
        }));
        let mut metrics_addr = None;
        if let Some(addr) = cfg.metrics_addr {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Bind("metrics", addr, e))?;
            metrics_addr = Some(
                l.local_addr()
                    .map_err(|e| StartError::Bind("metrics", addr, e))?,
            );
            let h = hub.clone();
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let h = h.clone();
                    async move {
                        let mut text = h.metrics().render();
                        h.render_source_metrics(&mut text);
                        (
                            [(
                                header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            text,
                        )
                            .into_response()
                    }
                }),
            );
            let mut stop = rx.clone();
            tasks.push(tokio::spawn(async move {
                let serve = axum::serve(l, app).with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "metrics server failed");
                }
            }));
        }
        tracing::info!(api = %api_addr, metrics = ?metrics_addr, store = %cfg.store_path.display(), node = %cfg.node_name, "producer ready");
        Ok(Producer {
            hub,
            api_addr,
            metrics_addr,
            tasks,
            shutdown,
        })
    }

    /// Stops accepting requests and waits for the servers to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.hub.close_store().await;
    }

    /// Runs until `signal` resolves, then stops.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.stop().await;
    }
}

/// Why the producer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or loaded.
    #[error("{0} (is another producer using this --store-path?)")]
    Store(StoreError),
    /// A listener could not be bound.
    #[error("cannot listen for the {0} on {1}: {2}")]
    Bind(&'static str, SocketAddr, std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_location_base_follows_go() {
        assert_eq!(
            uri_location_base("http://localhost:9043", "n1", None, 9043),
            "http://localhost:9043"
        );
        assert_eq!(
            uri_location_base(
                "ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043",
                "worker-0.example.com",
                None,
                9043
            ),
            "http://ptp-event-publisher-service-worker-0.openshift-ptp.svc.cluster.local:9043"
        );
        assert_eq!(
            uri_location_base("http://NODE_IP:9043", "n1", Some("10.1.2.3"), 8080),
            "http://10.1.2.3:8080"
        );
    }
}
