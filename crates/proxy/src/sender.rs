//! One HTTP/1.1 keep-alive connection to one subscriber endpoint, owned by that endpoint's
//! delivery worker: no shared pool to look up or contend on, reconnects after any failure.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::security::EndpointPolicy;
use crate::tls::DeliveryTls;

/// Why a POST got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The endpoint URL cannot be used.
    #[error("unusable EndpointUri: {0}")]
    BadUrl(String),
    /// No connection (refused, unreachable, DNS).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The connection broke during the exchange (reset, closed).
    #[error("connection lost: {0}")]
    Io(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// A connection to an endpoint: plain (`http`) or TLS (`https`).
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Connection = hyper::client::conn::http1::Connection<TokioIo<Stream>, Full<Bytes>>;
/// A live connection: the request half and the connection future that drives it.
type Live = (SendRequest<Full<Bytes>>, Pin<Box<Connection>>);

/// A lazily (re)connected HTTP/1.1 connection to one endpoint. The connection is driven by the
/// task that sends (no task per connection): between exchanges nothing needs to run, and a
/// connection the server closed meanwhile is noticed on the next exchange and replaced.
pub struct Sender {
    authority: String,
    /// The host of the URL (a name, or an address without brackets).
    host: String,
    /// Checked again on every connection (not when open).
    policy: Option<Arc<EndpointPolicy>>,
    /// The request target (path and query), parsed once.
    target: Uri,
    /// Host, Content-Type and User-Agent, built once.
    headers: http::HeaderMap,
    /// For `https`: the TLS client and the name the certificate must carry.
    tls: Option<(Arc<DeliveryTls>, ServerName<'static>)>,
    conn: Option<Live>,
}

impl Sender {
    /// A sender for `url`: `http`, or `https` when `tls` is given. Every connection it makes
    /// goes only to addresses `policy` allows at that time.
    pub fn new(
        url: &url::Url,
        tls: Option<&Arc<DeliveryTls>>,
        policy: Option<&Arc<EndpointPolicy>>,
    ) -> Result<Sender, TransportError> {
        let host = url
            .host_str()
            .ok_or_else(|| TransportError::BadUrl(format!("{url}: no host")))?;
        let tls = match (url.scheme(), tls) {
            ("http", _) => None,
            ("https", Some(t)) => {
                // An IPv6 literal is bracketed in a URL, not in a certificate.
                let name = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(name.to_owned())
                    .map_err(|e| TransportError::BadUrl(format!("{url}: {e}")))?;
                Some((t.clone(), name))
            }
            ("https", None) => {
                return Err(TransportError::BadUrl(format!(
                    "{url}: https delivery needs --delivery-ca-file (the CA of the consumers' certificates)"
                )));
            }
            (other, _) => {
                return Err(TransportError::BadUrl(format!(
                    "{url}: scheme {other} is not supported for delivery (use http or https)"
                )));
            }
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let bad = |e: &dyn std::fmt::Display| TransportError::BadUrl(format!("{url}: {e}"));
        let uri: Uri = url.as_str().parse().map_err(|e| bad(&e))?;
        let target: Uri = path.parse().map_err(|e| bad(&e))?;
        let mut headers = http::HeaderMap::with_capacity(3);
        let host = uri.authority().map(|a| a.as_str()).unwrap_or("");
        headers.insert(
            header::HOST,
            http::HeaderValue::from_str(host).map_err(|e| bad(&e))?,
        );
        headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::USER_AGENT,
            http::HeaderValue::from_static(concat!("ptp-events/", env!("CARGO_PKG_VERSION"))),
        );
        Ok(Sender {
            host: url
                .host_str()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            policy: policy.filter(|p| !p.is_open()).cloned(),
            authority,
            target,
            headers,
            tls,
            conn: None,
        })
    }

    /// POSTs `body` as `application/json` and returns the answer's status; the answer's body is
    /// read and discarded so that the connection can be reused.
    pub async fn post(
        &mut self,
        body: Bytes,
        timeout: Duration,
    ) -> Result<StatusCode, TransportError> {
        match tokio::time::timeout(timeout, self.exchange(Method::POST, body)).await {
            Ok(Ok((status, _))) => Ok(status),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), TransportError> {
        let reused = self.conn.is_some();
        if !reused {
            self.conn = Some(self.connect().await?);
        }
        match self.send(method.clone(), body.clone()).await {
            // A kept-alive connection the server closed while idle: one fresh try.
            Err(TransportError::Io(_)) if reused => {
                self.conn = Some(self.connect().await?);
                self.send(method, body).await
            }
            other => other,
        }
    }

    async fn send(
        &mut self,
        method: Method,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), TransportError> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.target.clone();
        *req.headers_mut() = self.headers.clone();
        let (sender, conn) = self.conn.as_mut().expect("connected");
        let result = {
            let exchange = async {
                sender
                    .ready()
                    .await
                    .map_err(|e| TransportError::Io(e.to_string()))?;
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| TransportError::Io(e.to_string()))?;
                let status = resp.status();
                let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
                    .collect()
                    .await
                    .map_err(|e| TransportError::Io(e.to_string()))?
                    .to_bytes();
                Ok((status, body))
            };
            tokio::pin!(exchange);
            // Drive the connection while the exchange runs. The connection can end first and
            // still have delivered the answer (an endpoint that closes after each response, as
            // `Connection: close` servers do): then the exchange completes from what was read,
            // or fails at once because the connection is gone.
            tokio::select! {
                biased;
                r = &mut exchange => (r, false),
                c = conn.as_mut() => {
                    let r = exchange.await.map_err(|e| match c {
                        Ok(()) => e,
                        Err(ce) => TransportError::Io(ce.to_string()),
                    });
                    (r, true)
                }
            }
        };
        let (result, ended) = result;
        if ended {
            self.conn = None;
        }
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn connect(&self) -> Result<Live, TransportError> {
        let stream = match &self.policy {
            None => TcpStream::connect(self.authority.as_str())
                .await
                .map_err(|e| TransportError::Connect(e.to_string()))?,
            Some(policy) => {
                let resolved: Vec<std::net::SocketAddr> =
                    tokio::net::lookup_host(self.authority.as_str())
                        .await
                        .map_err(|e| TransportError::Connect(e.to_string()))?
                        .collect();
                let addrs = policy
                    .connect_addrs(&self.host, resolved)
                    .map_err(TransportError::Connect)?;
                TcpStream::connect(addrs.as_slice())
                    .await
                    .map_err(|e| TransportError::Connect(e.to_string()))?
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(stream),
            Some((tls, name)) => Stream::Tls(Box::new(
                tls.connector()
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| TransportError::Connect(format!("TLS: {e}")))?,
            )),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        Ok((sender, Box::pin(conn)))
    }
}

/// A one-off `GET` on a fresh connection (`http`): the status and the body (at most 1 MiB).
pub async fn get(url: &url::Url, timeout: Duration) -> Result<(StatusCode, Bytes), TransportError> {
    if url.scheme() != "http" {
        return Err(TransportError::BadUrl(format!(
            "{url}: only http is supported here"
        )));
    }
    let mut s = Sender::new(url, None, None)?;
    tokio::time::timeout(timeout, s.exchange(Method::GET, Bytes::new()))
        .await
        .map_err(|_| TransportError::Timeout(timeout))?
}
