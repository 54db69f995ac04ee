//! The event receiver: the HTTP endpoint (EndpointUri) the producer POSTs events to.
//!
//! Three ways in, from the most to the least ready-made:
//! - [`Receiver::bind`] listens on an address and calls your handler for every event
//!   ([`Receiver::bind_tls`]: the same over TLS, for `https://` EndpointUris);
//! - [`router`] / [`router_at`] give an axum [`Router`] to merge into your own server;
//! - [`crate::decode_event`] decodes a body for any other HTTP framework (answer 204 on success,
//!   400 on error, 204 on an empty body).
//!
//! Every event is answered **204 No Content** after your handler returns: the producer insists
//! on 204 (an initial notification answered otherwise fails the subscription), and a handler
//! that takes long delays the next events to this endpoint (the producer times out after 2 s).
//! An empty body (the Go producer's endpoint check) is answered 204 without calling the
//! handler; an undecodable body is answered 400 with an `application/problem+json` message.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::event::{Event, decode_event};

/// The path the reference consumer receives events on (`http://<addr>/event`).
pub const DEFAULT_EVENT_PATH: &str = "/event";

/// What the receiver calls for every event.
///
/// Implemented for every `Fn(Event) -> impl Future<Output = ()>` closure that is `Clone + Send +
/// Sync + 'static`, and for [`ChannelHandler`].
pub trait EventHandler: Clone + Send + Sync + 'static {
    /// Handles one event; the producer gets its 204 when this returns.
    fn handle(&self, event: Event) -> impl Future<Output = ()> + Send;
}

impl<F, Fut> EventHandler for F
where
    F: Fn(Event) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn handle(&self, event: Event) -> impl Future<Output = ()> + Send {
        self(event)
    }
}

/// An [`EventHandler`] that sends every event into a channel (see [`channel`]).
#[derive(Debug, Clone)]
pub struct ChannelHandler(mpsc::Sender<Event>);

impl EventHandler for ChannelHandler {
    async fn handle(&self, event: Event) {
        // When the channel is full the producer waits for its 204: back-pressure, not loss.
        if self.0.send(event).await.is_err() {
            tracing::debug!("event receiver channel closed; event dropped");
        }
    }
}

/// A handler that forwards events into a bounded channel, and the channel's receiving end.
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// let (handler, mut events) = ptp_events_client::receiver::channel(64);
/// let receiver = ptp_events_client::Receiver::bind("127.0.0.1:0", handler).await?;
/// # drop(receiver);
/// while let Some(event) = events.recv().await {
///     println!("{event}");
/// }
/// # Ok(()) }
/// ```
pub fn channel(capacity: usize) -> (ChannelHandler, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (ChannelHandler(tx), rx)
}

/// An axum router that receives events on `POST /event`.
pub fn router<H: EventHandler>(handler: H) -> Router {
    router_at(DEFAULT_EVENT_PATH, handler)
}

/// An axum router that receives events on `POST <path>`.
///
/// ```
/// use ptp_events_client::receiver;
/// let app: axum::Router = receiver::router_at("/ptp/events", |event: ptp_events_client::Event| async move {
///     println!("{:?} {:?}", event.resource(), event.sync_state());
/// });
/// # drop(app);
/// ```
pub fn router_at<H: EventHandler>(path: &str, handler: H) -> Router {
    Router::new().route(
        path,
        axum::routing::post(move |body: axum::body::Body| {
            let handler = handler.clone();
            async move {
                // The whole body within BODY_TIMEOUT: a sender trickling it cannot hold the
                // connection (the handler itself may take as long as it needs).
                match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
                {
                    Ok(Ok(bytes)) => receive(&handler, &bytes).await,
                    Ok(Err(_)) => problem(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the body is larger than {MAX_BODY} bytes, or was cut"),
                    ),
                    Err(_) => problem(
                        StatusCode::REQUEST_TIMEOUT,
                        format!("the body was not received within {BODY_TIMEOUT:?}"),
                    ),
                }
            }
        }),
    )
}

/// Longest an event body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest event body accepted (events are a few KiB).
pub const MAX_BODY: usize = 1 << 20;

/// An `application/problem+json` answer.
fn problem(status: StatusCode, detail: String) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or(""),
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn receive<H: EventHandler>(handler: &H, body: &[u8]) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return StatusCode::NO_CONTENT.into_response();
    }
    match decode_event(body) {
        Ok(event) => {
            handler.handle(event).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "rejected an undecodable event body");
            problem(StatusCode::BAD_REQUEST, format!("not a PTP event: {e}"))
        }
    }
}

/// TLS for a [`Receiver`]: its certificate chain (PEM, leaf first) and private key (PEM:
/// PKCS#8, PKCS#1 or SEC1), and optionally the CA that the producer's client certificate must be
/// issued by (mutual TLS). The files are re-read when any of them changes (checked on every new
/// connection), so a rotated certificate or CA applies without a restart; files that cannot be
/// used are logged and the previous ones kept.
///
/// With `client_ca`, a connection without a client certificate of that CA is refused during the
/// handshake: nobody but the producer (given that certificate with `--delivery-client-cert`)
/// can post events to the receiver, so a forged `LOCKED` or `FREERUN` never reaches the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverTls {
    /// The certificate chain file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// The CA certificate(s) (PEM) that clients must present a certificate of; `None`: no client
    /// certificate asked for.
    pub client_ca: Option<PathBuf>,
}

/// The modification time and length of a file (`None` when it cannot be read).
fn stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl ReceiverTls {
    fn stamps(&self) -> [Option<(std::time::SystemTime, u64)>; 3] {
        [
            stamp(&self.cert),
            stamp(&self.key),
            self.client_ca.as_deref().and_then(stamp),
        ]
    }

    /// The acceptor these files describe; an error naming the file that cannot be used.
    fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let bad = |path: &PathBuf, e: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("receiver TLS {}: {e}", path.display()),
            )
        };
        let read_certs = |path: &PathBuf| {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(path, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(path, &e))?;
            if certs.is_empty() {
                return Err(bad(path, &"no PEM certificate in the file"));
            }
            Ok(certs)
        };
        let certs = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| bad(&self.key, &e))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&self.cert, &e))?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in read_certs(ca)? {
                    roots.add(c).map_err(|e| bad(ca, &e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| bad(ca, &e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| bad(&self.cert, &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Most connections a receiver serves at once; beyond, a new connection is closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most connections from one client address (a producer opens one per EndpointUri).
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 64;
/// Time a client has to send a request's headers; a kept-alive connection idle for longer is
/// closed (the producer reconnects).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// On [`Receiver::stop`], time requests in flight get to finish.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The receiver's TLS files, their stamps when last read, and the acceptor built from them.
struct TlsSource {
    files: ReceiverTls,
    loaded: [Option<(std::time::SystemTime, u64)>; 3],
    acceptor: TlsAcceptor,
}

impl TlsSource {
    fn open(files: ReceiverTls) -> io::Result<TlsSource> {
        // The stamps first: a change while the files are read is seen at the next connection.
        let loaded = files.stamps();
        let acceptor = files.acceptor()?;
        Ok(TlsSource {
            files,
            loaded,
            acceptor,
        })
    }

    /// The acceptor for a new connection, rebuilt first if the files changed (files that cannot
    /// be used are logged and the previous certificate kept).
    fn current(&mut self) -> TlsAcceptor {
        let now = self.files.stamps();
        if now != self.loaded {
            self.loaded = now;
            match self.files.acceptor() {
                Ok(a) => {
                    self.acceptor = a;
                    tracing::info!(cert = %self.files.cert.display(), "receiver TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "receiver TLS files changed but cannot be used; keeping the previous certificate");
                }
            }
        }
        self.acceptor.clone()
    }
}

/// Open connections by client address.
type PerClient = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One connection of a client, counted while it lives.
struct ClientShare {
    map: PerClient,
    client: std::net::IpAddr,
}

impl ClientShare {
    /// Counts a connection of `client`, unless it has [`MAX_CONNECTIONS_PER_CLIENT`] already.
    fn take(map: &PerClient, client: std::net::IpAddr) -> Option<ClientShare> {
        let mut m = map.lock().expect("per-client lock");
        let n = m.entry(client).or_default();
        if *n >= MAX_CONNECTIONS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientShare {
            map: map.clone(),
            client,
        })
    }
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut m = self.map.lock().expect("per-client lock");
        if let Some(n) = m.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.client);
            }
        }
    }
}

/// Serves one connection until it ends, or until `stop` (then [`STOP_GRACE`] for the request
/// in flight).
async fn serve_connection<I>(io: I, app: Router, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(
            hyper_util::rt::TokioIo::new(io),
            hyper_util::service::TowerToHyperService::new(app),
        );
    tokio::pin!(conn);
    let stopped = async {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(STOP_GRACE, conn).await;
        }
    }
}

/// A running event receiver (an HTTP server with the [`router`]).
#[derive(Debug)]
pub struct Receiver {
    local_addr: SocketAddr,
    path: String,
    /// Whether it serves TLS (`https://` EndpointUri).
    https: bool,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

impl Receiver {
    /// Listens on `addr` (e.g. `"0.0.0.0:8989"`, `"127.0.0.1:0"`) and receives events on
    /// `POST /event`.
    pub async fn bind<A: ToSocketAddrs, H: EventHandler>(
        addr: A,
        handler: H,
    ) -> io::Result<Receiver> {
        Receiver::bind_at(addr, DEFAULT_EVENT_PATH, handler).await
    }

    /// Listens on `addr` and receives events on `POST <path>`.
    pub async fn bind_at<A: ToSocketAddrs, H: EventHandler>(
        addr: A,
        path: &str,
        handler: H,
    ) -> io::Result<Receiver> {
        let listener = TcpListener::bind(addr).await?;
        Receiver::serve(listener, path, handler)
    }

    /// Serves on an already bound listener, receiving events on `POST <path>`.
    pub fn serve<H: EventHandler>(
        listener: TcpListener,
        path: &str,
        handler: H,
    ) -> io::Result<Receiver> {
        Receiver::start(listener, path, handler, None)
    }

    /// Listens on `addr` over TLS and receives events on `POST <path>` (for an `https://`
    /// EndpointUri; the producer needs the CA of the certificate, `--delivery-ca-file`).
    /// Unusable files are an [`io::ErrorKind::InvalidInput`] error naming the file.
    pub async fn bind_tls<A: ToSocketAddrs, H: EventHandler>(
        addr: A,
        path: &str,
        handler: H,
        tls: ReceiverTls,
    ) -> io::Result<Receiver> {
        let tls = TlsSource::open(tls)?;
        let listener = TcpListener::bind(addr).await?;
        Receiver::start(listener, path, handler, Some(tls))
    }

    /// Serves TLS on an already bound listener, receiving events on `POST <path>`.
    pub fn serve_tls<H: EventHandler>(
        listener: TcpListener,
        path: &str,
        handler: H,
        tls: ReceiverTls,
    ) -> io::Result<Receiver> {
        let tls = TlsSource::open(tls)?;
        Receiver::start(listener, path, handler, Some(tls))
    }

    /// The accept loop: HTTP/1.1 (what producers speak), at most [`MAX_CONNECTIONS`] at once
    /// (beyond, a new connection is closed at once), [`HEADER_READ_TIMEOUT`] to send a request's
    /// headers (which also bounds a silent or idle kept-alive connection), and on stop
    /// [`STOP_GRACE`] for requests in flight.
    fn start<H: EventHandler>(
        listener: TcpListener,
        path: &str,
        handler: H,
        mut tls: Option<TlsSource>,
    ) -> io::Result<Receiver> {
        let local_addr = listener.local_addr()?;
        let https = tls.is_some();
        let app = router_at(path, handler);
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            let per_client: PerClient = Arc::default();
            let mut stop = rx.clone();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop.wait_for(|stop| *stop) => break,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and the like: do not spin.
                        tracing::warn!(error = %e, "receiver accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let client = match peer.ip() {
                    std::net::IpAddr::V6(v6) => v6
                        .to_ipv4_mapped()
                        .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
                    v4 => v4,
                };
                let Some(share) = ClientShare::take(&per_client, client) else {
                    tracing::warn!(%client, max = MAX_CONNECTIONS_PER_CLIENT, "receiver connection refused: too many from this client");
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        max = MAX_CONNECTIONS,
                        "receiver connection refused: too many open"
                    );
                    continue;
                };
                let acceptor = tls.as_mut().map(TlsSource::current);
                let (app, mut stop) = (app.clone(), rx.clone());
                tokio::spawn(async move {
                    let _slot = (permit, share);
                    match acceptor {
                        None => serve_connection(tcp, app, stop).await,
                        Some(acceptor) => {
                            // A handshake refused, not finished in time, or cut by stop just
                            // ends.
                            let handshake =
                                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                            let stopped = async {
                                let _ = stop.wait_for(|s| *s).await;
                            };
                            let stream = tokio::select! {
                                r = handshake => r.ok().and_then(Result::ok),
                                () = stopped => None,
                            };
                            if let Some(stream) = stream {
                                serve_connection(stream, app, stop).await;
                            }
                        }
                    }
                });
            }
            drop(listener);
            // Every connection gives its slot back within the grace.
            let _ = tokio::time::timeout(
                STOP_GRACE + Duration::from_secs(1),
                slots.acquire_many(MAX_CONNECTIONS as u32),
            )
            .await;
            Ok(())
        });
        Ok(Receiver {
            local_addr,
            path: path.to_owned(),
            https,
            shutdown,
            task,
        })
    }

    /// The address actually bound (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local address><path>` (`https://` over TLS), to use as EndpointUri when the
    /// producer runs on the same host (an unspecified address such as `0.0.0.0` becomes
    /// `127.0.0.1`). In a pod, build the EndpointUri from an address the producer can reach
    /// (pod IP or Service name) instead.
    pub fn endpoint_uri(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{addr}{}", self.path)
    }

    /// The EndpointUri a producer elsewhere reaches this receiver at: `host` (an IP address
    /// or a name; an IPv6 address gets its brackets) with this receiver's port, scheme and path.
    /// In a pod, `host` is the pod IP (the downward API's `status.podIP`, e.g. in `POD_IP`) or
    /// a Service name:
    ///
    /// ```no_run
    /// # async fn f(r: ptp_events_client::Receiver) {
    /// let pod_ip = std::env::var("POD_IP").expect("POD_IP from the downward API");
    /// let endpoint_uri = r.endpoint_uri_for(&pod_ip); // http://10.128.0.7:8989/event
    /// # }
    /// ```
    pub fn endpoint_uri_for(&self, host: &str) -> String {
        let host = host.trim();
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]"),
            Err(_) => host.to_owned(),
        };
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{host}:{}{}", self.local_addr.port(), self.path)
    }

    /// Stops listening and waits for in-flight requests to finish.
    pub async fn stop(self) -> io::Result<()> {
        let _ = self.shutdown.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    async fn post(app: Router, body: &'static [u8]) -> (StatusCode, String) {
        let req = axum::http::Request::post("/event")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn answers_204_400_and_204_for_empty() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let app = router(move |e: Event| {
            let s = s.clone();
            async move { s.lock().unwrap().push(e.id().to_owned()) }
        });
        let ok = br#"{"specversion":"1.0","id":"a","source":"/sync/sync-status/sync-state","type":"event.sync.sync-status.synchronization-state-change","time":"2026-11-25T13:45:19Z","data":{"version":"1.0","values":[]}}"#;
        assert_eq!(post(app.clone(), ok).await.0, StatusCode::NO_CONTENT);
        assert_eq!(post(app.clone(), b"").await.0, StatusCode::NO_CONTENT);
        let (status, body) = post(app.clone(), b"{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("not a PTP event"), "{body}");
        assert_eq!(*seen.lock().unwrap(), ["a"]);
    }

    /// A connection from `ip` (a loopback address) to `addr`.
    async fn connect_from(ip: &str, addr: SocketAddr) -> tokio::net::TcpStream {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        sock.connect(addr).await.unwrap()
    }

    /// What the receiver answers on `c` (the first bytes), or `None` when it closes without.
    async fn answer(c: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(limit, c.read(&mut buf))
            .await
            .expect("an answer or a close in time")
        {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        }
    }

    /// Over [`MAX_CONNECTIONS_PER_CLIENT`] from one address a new connection is closed at once
    /// while other addresses are served; a body that trickles gets 408 after [`BODY_TIMEOUT`];
    /// `stop` ends within the grace even with requests half sent.
    #[tokio::test]
    async fn connection_limits_body_deadline_and_bounded_stop() {
        use tokio::io::AsyncWriteExt;
        let (handler, mut events) = channel(4);
        let r = Receiver::bind("127.0.0.1:0", handler).await.unwrap();
        let addr = r.local_addr();
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_CLIENT {
            let mut c = connect_from("127.0.0.1", addr).await;
            // Half a request: the connection stays open, waiting for the rest.
            c.write_all(b"POST /event HTTP/1.1\r\n").await.unwrap();
            held.push(c);
        }
        // Let the receiver take them all.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut over = connect_from("127.0.0.1", addr).await;
        assert_eq!(answer(&mut over, Duration::from_secs(5)).await, None);
        // Another address is served.
        let body = br#"{"specversion":"1.0","id":"b","source":"/sync/sync-status/sync-state","type":"event.sync.sync-status.synchronization-state-change","time":"2026-11-25T13:45:19Z","data":{"version":"1.0","values":[]}}"#;
        let head = format!(
            "POST /event HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut c = connect_from("127.0.0.2", addr).await;
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(body).await.unwrap();
        let a = answer(&mut c, Duration::from_secs(5)).await.unwrap();
        assert!(a.starts_with("HTTP/1.1 204"), "{a}");
        assert_eq!(events.recv().await.unwrap().id(), "b");
        // A body that stops half way: 408, and the connection is given back.
        let mut slow = connect_from("127.0.0.3", addr).await;
        slow.write_all(head.as_bytes()).await.unwrap();
        slow.write_all(&body[..10]).await.unwrap();
        let t0 = std::time::Instant::now();
        let a = answer(&mut slow, BODY_TIMEOUT + Duration::from_secs(5))
            .await
            .unwrap();
        assert!(a.starts_with("HTTP/1.1 408"), "{a}");
        assert!(t0.elapsed() >= BODY_TIMEOUT - Duration::from_millis(500));
        // Stop with 64 half-sent requests open: done within the grace.
        let t0 = std::time::Instant::now();
        r.stop().await.unwrap();
        assert!(
            t0.elapsed() < STOP_GRACE + Duration::from_secs(2),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn endpoint_uri_for_a_pod_ip_or_a_service() {
        let (handler, _events) = channel(1);
        let r = Receiver::bind("0.0.0.0:0", handler).await.unwrap();
        let port = r.local_addr().port();
        assert_eq!(r.endpoint_uri(), format!("http://127.0.0.1:{port}/event"));
        assert_eq!(
            r.endpoint_uri_for("10.128.0.7"),
            format!("http://10.128.0.7:{port}/event")
        );
        assert_eq!(
            r.endpoint_uri_for("fd00::7"),
            format!("http://[fd00::7]:{port}/event")
        );
        assert_eq!(
            r.endpoint_uri_for("consumer.cloud-events.svc"),
            format!("http://consumer.cloud-events.svc:{port}/event")
        );
        r.stop().await.unwrap();
    }
}
