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
pub mod budget;
mod conns;
mod hub;
mod idle;
pub mod ingest;
pub mod metrics;
pub mod security;
mod sender;
pub mod store;
pub mod tls;
pub mod tokenreview;
pub mod uds;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use hub::{DeliveryConfig, Hub, HubError, Published, StateSource};
pub use ingest::{Ingest, IngestConfig, IngestError, LineSender};
pub use metrics::Metrics;
pub use sender::{Sender, TransportError, get as http_get};
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

/// Limits and security of the REST API (see `docs/security.md`). The default is what
/// [`Producer::start`] uses: no authentication, every EndpointUri allowed, generous limits.
#[derive(Debug, Clone)]
pub struct ApiPolicy {
    /// File of static bearer tokens (one per line); `None`: no static tokens.
    pub auth_token_file: Option<PathBuf>,
    /// Kubernetes TokenReview authentication; `None`: off. With both this and
    /// `auth_token_file`, a token accepted by either is admitted.
    pub token_review: Option<tokenreview::TokenReviewConfig>,
    /// Where subscriptions may send notifications; empty: anywhere.
    pub endpoint_allow: Vec<security::AllowRule>,
    /// Most subscriptions in total.
    pub max_subscriptions: usize,
    /// Most subscriptions whose EndpointUri names one consumer `host:port`.
    pub max_subscriptions_per_host: usize,
    /// Time a client has to send a request's headers over HTTP/1.1 (with TLS, also the time
    /// it has to complete the TLS handshake).
    pub header_read_timeout: Duration,
    /// TLS (and, with a client CA, mutual TLS) on the API; `None`: plain HTTP/1.1 and h2c.
    pub tls: Option<tls::TlsFiles>,
    /// Serve `/metrics` over TLS too, with the API's certificate and client-certificate policy
    /// (`tls`, which it needs); `false`: plain HTTP.
    pub metrics_tls: bool,
    /// Most API connections open at once; a connection beyond is closed at once (counted in
    /// `cne_api_connections_refused_total`).
    pub max_connections: usize,
    /// Most API connections open at once from one client address (so that one client cannot
    /// take every slot).
    pub max_connections_per_client: usize,
    /// An API connection with no traffic either way for this long is closed (one that sends
    /// nothing at all is closed after `header_read_timeout`).
    pub idle_timeout: Duration,
    /// Most requests per `request_window` from one client address (bursts up to that many); beyond, 429
    /// with `Retry-After`. `health` and `openapi.json` are not counted. 0: no limit (the
    /// default).
    pub max_requests_per_client: u32,
    /// The window of `max_requests_per_client` (1 s; the budget refills at that many per
    /// window).
    pub request_window: Duration,
    /// More routes served on the metrics listener, under its limits and TLS (the binary's
    /// opt-in status page); `None`: only `/metrics`.
    pub metrics_routes: Option<axum::Router>,
}

/// Default of [`ApiPolicy::max_subscriptions`].
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 10_000;
/// Default of [`ApiPolicy::max_subscriptions_per_host`].
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_HOST: usize = 2_000;
/// Default of [`ApiPolicy::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default of [`ApiPolicy::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default of [`ApiPolicy::max_connections_per_client`].
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;
/// Concurrent HTTP/2 streams per connection the API allows.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Most connections open at once on the metrics port (Prometheus keeps one per scraper).
pub const METRICS_MAX_CONNECTIONS: usize = 64;
/// Most connections from one client address on the metrics port.
pub const METRICS_MAX_CONNECTIONS_PER_CLIENT: usize = 16;
/// Largest request header block (HTTP/1.1 read buffer, HTTP/2 header list).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default of [`ApiPolicy::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ApiPolicy {
    fn default() -> ApiPolicy {
        ApiPolicy {
            auth_token_file: None,
            token_review: None,
            endpoint_allow: Vec::new(),
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_subscriptions_per_host: DEFAULT_MAX_SUBSCRIPTIONS_PER_HOST,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            tls: None,
            metrics_tls: false,
            metrics_routes: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_requests_per_client: 0,
            request_window: Duration::from_secs(1),
        }
    }
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
    /// Opens the store, loads the subscriptions, binds the listeners and starts serving, with
    /// the default [`ApiPolicy`].
    pub async fn start(cfg: ProducerConfig) -> Result<Producer, StartError> {
        Producer::start_with(cfg, ApiPolicy::default()).await
    }

    /// [`Producer::start`] with an explicit API policy (authentication, limits, EndpointUri
    /// policy).
    pub async fn start_with(
        cfg: ProducerConfig,
        policy: ApiPolicy,
    ) -> Result<Producer, StartError> {
        let metrics = Arc::new(Metrics::new());
        let auth = security::Authenticator {
            tokens: match &policy.auth_token_file {
                Some(path) => Some(security::TokenFile::open(path).map_err(StartError::Auth)?),
                None => None,
            },
            review: match &policy.token_review {
                Some(cfg) => Some(
                    tokenreview::TokenReviewer::new(cfg.clone())
                        .map_err(StartError::Auth)?
                        .count_in(metrics.token_reviews.clone()),
                ),
                None => None,
            },
        };
        let auth = auth.is_on().then(|| Arc::new(auth));
        let tls = match &policy.tls {
            Some(files) => Some(Arc::new(
                tls::TlsReloader::open(files.clone()).map_err(StartError::Tls)?,
            )),
            None if policy.metrics_tls => {
                return Err(StartError::Tls(
                    "--metrics-tls needs --tls-cert and --tls-key (the metrics port is served with the API's certificate)".into(),
                ));
            }
            None => None,
        };
        let (store, loaded) = Store::open(&cfg.store_path).map_err(StartError::Store)?;
        let endpoints = Arc::new(security::EndpointPolicy::new(policy.endpoint_allow.clone()));
        let hub = Hub::new(
            &cfg.node_name,
            &cfg.uri_location_base,
            store,
            loaded,
            metrics.clone(),
            cfg.delivery.clone(),
            endpoints.clone(),
        );
        hub.set_limits(policy.max_subscriptions, policy.max_subscriptions_per_host);
        let api = TcpListener::bind(cfg.api_addr)
            .await
            .map_err(|e| StartError::Bind("API", cfg.api_addr, e))?;
        let api_addr = api
            .local_addr()
            .map_err(|e| StartError::Bind("API", cfg.api_addr, e))?;
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let guard = api::Guard {
            auth,
            metrics: Some(metrics.clone()),
            endpoints,
            requests: (policy.max_requests_per_client > 0).then(|| {
                Arc::new(budget::ClientBudgets::new(
                    policy.max_requests_per_client,
                    policy.request_window,
                    "request",
                ))
            }),
        };
        let app = api::service_with(hub.clone(), cfg.max_body_bytes, api_addr.port(), guard);
        tasks.push(tokio::spawn(serve_limited(
            api,
            app,
            ServeLimits {
                name: "API",
                header_read_timeout: policy.header_read_timeout,
                idle_timeout: policy.idle_timeout,
                max_connections: policy.max_connections.max(1),
                max_connections_per_client: policy.max_connections_per_client.max(1),
                open: metrics.connections_open.clone(),
                refused: metrics.connections_refused.clone(),
            },
            tls.clone(),
            rx.clone(),
        )));
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
            let mut app = axum::Router::new().route(
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
            if let Some(extra) = &policy.metrics_routes {
                app = app.merge(extra.clone());
            }
            // The same connection limits and timeouts as the API (a port open on every interface
            // of the node), with a cap of its own sized for a few scrapers.
            tasks.push(tokio::spawn(serve_limited(
                l,
                app,
                ServeLimits {
                    name: "metrics",
                    header_read_timeout: policy.header_read_timeout,
                    idle_timeout: policy.idle_timeout,
                    max_connections: METRICS_MAX_CONNECTIONS,
                    max_connections_per_client: METRICS_MAX_CONNECTIONS_PER_CLIENT,
                    open: metrics.metrics_connections_open.clone(),
                    refused: metrics.metrics_connections_refused.clone(),
                },
                if policy.metrics_tls {
                    tls.clone()
                } else {
                    None
                },
                rx.clone(),
            )));
        }
        tracing::info!(api = %api_addr, tls = tls.is_some(), metrics_tls = policy.metrics_tls, mutual_tls = policy.tls.as_ref().is_some_and(|t| t.client_ca.is_some()), metrics = %metrics_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()), store = %cfg.store_path.display(), node = %cfg.node_name, "API and metrics listening");
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

/// Connection-level limits of an HTTP listener ([`serve_limited`]).
pub struct ServeLimits {
    /// What is served, for the log: `API`, `metrics`.
    pub name: &'static str,
    /// Time a connection has to send its first request's headers (after its TLS handshake).
    pub header_read_timeout: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once; beyond, a new one is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// Connections open now.
    pub open: prometheus::IntGauge,
    /// Connections closed at once, by reason (`total`, `per_client`).
    pub refused: prometheus::IntCounterVec,
}

impl ServeLimits {
    /// Limits with counters of their own that no registry reports, for a listener whose
    /// counters are not exported.
    pub fn unreported(
        name: &'static str,
        header_read_timeout: Duration,
        idle_timeout: Duration,
        max_connections: usize,
        max_connections_per_client: usize,
    ) -> ServeLimits {
        ServeLimits {
            name,
            header_read_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_client,
            open: prometheus::IntGauge::new("connections_open", "connections open")
                .expect("valid metric"),
            refused: prometheus::IntCounterVec::new(
                prometheus::Opts::new("connections_refused", "connections refused"),
                &["reason"],
            )
            .expect("valid metric"),
        }
    }
}

/// One open connection's slot under the cap, counted in `open` while it lives (its client's
/// share is its [`conns::Registration`]).
struct ConnectionSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    open: prometheus::IntGauge,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// How long a newcomer waits for the slot of a connection asked to make room for it.
const MAKE_ROOM_WAIT: Duration = Duration::from_secs(1);

/// A new connection's slot: taken at once, or queued for the one a connection asked to make
/// room frees.
enum Slot {
    Now(tokio::sync::OwnedSemaphorePermit),
    Queued(QueuedSlot),
}

/// A slot being waited for (already in the semaphore's queue).
type QueuedSlot = std::pin::Pin<
    Box<
        dyn Future<Output = Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>>
            + Send,
    >,
>;

/// Serves `app` (the API, or `/metrics`) on `listener` until `stop` turns true, within `limits`
/// (connection caps, header read and idle timeouts): HTTP/1.1 (the header read timeout against
/// slow-header clients) and h2c with prior knowledge on the same port; with `tls`,
/// HTTP/1.1 and HTTP/2 over TLS (ALPN `h2`, `http/1.1`), the handshake bounded by the header
/// read timeout. On stop, open connections finish their requests (at most 10 s).
pub async fn serve_limited(
    listener: TcpListener,
    app: axum::Router,
    limits: ServeLimits,
    tls: Option<Arc<tls::TlsReloader>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let header_read_timeout = limits.header_read_timeout;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    // HTTP/2: bounded streams per connection, and the rapid-reset defence (a client that keeps
    // resetting streams before they are served gets GOAWAY) stated explicitly.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(20)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let clients = Arc::new(conns::Clients::default());
    let mut last_refusal_log: Option<std::time::Instant> = None;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and the like: do not spin.
                tracing::warn!(error = %e, "{} accept failed", limits.name);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // An IPv4 client over an IPv6 socket counts as the IPv4 address it is.
        let client = match peer.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        // Over its share: refused. All slots taken: queued for the next free slot (a queued
        // waiter comes before any later `try_acquire`, so the slot freed for it cannot be
        // taken by the next connection accepted), then another address's idlest connection is
        // asked to make room if that address holds more than this one plus one; else refused.
        let permit = if clients.count(client) >= limits.max_connections_per_client {
            Err("per_client")
        } else {
            match slots.clone().try_acquire_owned() {
                Ok(p) => Ok(Slot::Now(p)),
                Err(_) => {
                    let mut queued = Box::pin(slots.clone().acquire_owned());
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    match queued.as_mut().poll(&mut cx) {
                        std::task::Poll::Ready(Ok(p)) => Ok(Slot::Now(p)),
                        std::task::Poll::Pending if clients.make_room_for(client) => {
                            limits.refused.with_label_values(&["evicted"]).inc();
                            Ok(Slot::Queued(queued))
                        }
                        _ => Err("total"),
                    }
                }
            }
        };
        let permit = match permit {
            Ok(p) => p,
            Err(reason) => {
                // Over a limit: closed at once (the client sees the connection end).
                limits.refused.with_label_values(&[reason]).inc();
                if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        %client,
                        max = limits.max_connections,
                        max_per_client = limits.max_connections_per_client,
                        "{} connection refused: too many open (reason {reason}) (logged at most every 10 s)",
                        limits.name
                    );
                    last_refusal_log = Some(std::time::Instant::now());
                }
                drop(stream);
                continue;
            }
        };
        let registration = clients.register(client, matches!(permit, Slot::Now(_)));
        let _ = stream.set_nodelay(true);
        // The client's address, for the per-client TokenReview budget.
        let svc =
            TowerToHyperService::new(app.clone().layer(axum::Extension(api::ClientAddr(client))));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let (idle_timeout, name) = (limits.idle_timeout, limits.name);
        let open = limits.open.clone();
        tokio::spawn(async move {
            // The slot: at once, or the one a connection asked to make room frees.
            let permit = match permit {
                Slot::Now(p) => p,
                Slot::Queued(queued) => match tokio::time::timeout(MAKE_ROOM_WAIT, queued).await {
                    Ok(Ok(p)) => {
                        registration.holding();
                        p
                    }
                    _ => {
                        tracing::debug!("{name}: no slot was freed in time; connection closed");
                        return;
                    }
                },
            };
            open.inc();
            let _slot = ConnectionSlot {
                _permit: permit,
                open,
            };
            let serve = async {
                match acceptor {
                    None => {
                        serve_tracked(
                            stream,
                            &builder,
                            svc,
                            watcher,
                            header_read_timeout,
                            idle_timeout,
                            &registration,
                        )
                        .await
                    }
                    Some(acceptor) => {
                        let stream = match tokio::time::timeout(
                            header_read_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "{name} TLS handshake failed");
                                return Ok(());
                            }
                            Err(_) => {
                                tracing::debug!("{name} TLS handshake timed out");
                                return Ok(());
                            }
                        };
                        // The handshake's own bytes do not count: the first request must follow
                        // within the header read timeout.
                        serve_tracked(
                            stream,
                            &builder,
                            svc,
                            watcher,
                            header_read_timeout,
                            idle_timeout,
                            &registration,
                        )
                        .await
                    }
                }
            };
            let served = tokio::select! {
                r = serve => r,
                () = registration.evicted() => {
                    tracing::debug!("{name} connection closed to make room for another client");
                    Ok(())
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "{name} connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connections still open after 10 s; stopping anyway",
            limits.name
        );
    }
}

/// Serves one connection whose traffic is tracked: closed when it sends nothing within
/// `first_byte` or has no traffic for `idle`.
async fn serve_tracked<I>(
    io: I,
    builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    svc: hyper_util::service::TowerToHyperService<axum::Router>,
    watcher: hyper_util::server::graceful::Watcher,
    first_byte: Duration,
    idle: Duration,
    registration: &conns::Registration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = idle::Activity::new();
    registration.serving(activity.clone());
    let io = hyper_util::rt::TokioIo::new(idle::Tracked::new(io, activity.clone()));
    let conn = builder.serve_connection_with_upgrades(io, svc).into_owned();
    tokio::select! {
        r = watcher.watch(conn) => r,
        _ = activity.expired(first_byte, idle) => {
            tracing::debug!("connection idle: closed");
            Ok(())
        }
    }
}

/// Why the producer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or loaded.
    #[error("{0}{hint}", hint = if .0.to_string().contains("already open") {
        " (is another producer using this --store-path?)"
    } else {
        ""
    })]
    Store(StoreError),
    /// A listener could not be bound.
    #[error("cannot listen for the {0} on {1}: {2}")]
    Bind(&'static str, SocketAddr, std::io::Error),
    /// The bearer-token file could not be used.
    #[error("{0}")]
    Auth(String),
    /// The TLS certificate, key or client CA could not be used.
    #[error("{0}")]
    Tls(String),
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
