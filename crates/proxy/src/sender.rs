//! One HTTP/1.1 keep-alive connection to one subscriber endpoint, owned by that endpoint's
//! delivery worker: no shared pool to look up or contend on, reconnects after any failure.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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

/// A lazily (re)connected HTTP/1.1 connection to one endpoint.
pub struct Sender {
    uri: Uri,
    authority: String,
    path: String,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Sender {
    /// A sender for `url` (http only: the producer has no TLS client).
    pub fn new(url: &url::Url) -> Result<Sender, TransportError> {
        if url.scheme() != "http" {
            return Err(TransportError::BadUrl(format!(
                "{url}: scheme {} is not supported for delivery (use http)",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| TransportError::BadUrl(format!("{url}: no host")))?;
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
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e| TransportError::BadUrl(format!("{url}: {e}")))?;
        Ok(Sender {
            uri,
            authority,
            path,
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
        match tokio::time::timeout(timeout, self.exchange(body)).await {
            Ok(Ok(status)) => Ok(status),
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

    async fn exchange(&mut self, body: Bytes) -> Result<StatusCode, TransportError> {
        let reused = self.conn.as_ref().is_some_and(|c| !c.is_closed());
        if !reused {
            self.conn = Some(self.connect().await?);
        }
        let result = self.send(body.clone()).await;
        match result {
            // A kept-alive connection the server closed while idle: one fresh try.
            Err(TransportError::Io(_)) if reused => {
                self.conn = Some(self.connect().await?);
                self.send(body).await
            }
            other => other,
        }
    }

    async fn send(&mut self, body: Bytes) -> Result<StatusCode, TransportError> {
        let conn = self.conn.as_mut().expect("connected");
        conn.ready()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let req = Request::post(self.path.as_str())
            .header(
                header::HOST,
                self.uri.authority().map(|a| a.as_str()).unwrap_or(""),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("ptp-events/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| TransportError::BadUrl(e.to_string()))?;
        let resp = conn
            .send_request(req)
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let status = resp.status();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        Ok(status)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let stream = TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// A one-off `GET` on a fresh connection: the status and the body (at most 1 MiB).
pub async fn get(url: &url::Url, timeout: Duration) -> Result<(StatusCode, Bytes), TransportError> {
    let s = Sender::new(url)?;
    let exchange = async {
        let mut conn = s.connect().await?;
        conn.ready()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let req = Request::get(s.path.as_str())
            .header(
                header::HOST,
                s.uri.authority().map(|a| a.as_str()).unwrap_or(""),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| TransportError::BadUrl(e.to_string()))?;
        let resp = conn
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
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| TransportError::Timeout(timeout))?
}
