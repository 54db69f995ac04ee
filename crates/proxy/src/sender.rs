//! One HTTP/1.1 keep-alive connection to one subscriber endpoint, owned by that endpoint's
//! delivery worker: no shared pool to look up or contend on, reconnects after any failure.
//!
//! The exchange is written here rather than with hyper's client connection: a POST is the
//! endpoint's request head, built once, and the event's body bytes, shared by every endpoint,
//! put on the socket by one vectored write; the answer's head is read with httparse (hyper's
//! own parser) and its body, if any, is framed as RFC 9112 says (length, chunked, or up to the
//! end of the connection) and discarded. Measured in BENCHMARKS.md ("Delivery near the floor"):
//! hyper's client spent several microseconds of CPU per POST in its dispatch (a channel and a
//! oneshot between the request half and the connection task, a header map per request) and
//! kept an 8 KiB read buffer for every idle kept-alive connection; this keeps nothing between
//! two exchanges but the socket.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use http::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::security::EndpointPolicy;
use crate::tls::DeliveryTls;

/// How a transport error begins when the request got no byte of an answer (write failed, or the
/// connection ended or broke before the answer): only those are retried on a new connection.
const UNANSWERED: &str = "no answer: ";

/// The longest answer head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The longest answer body read; a POST's longer answer closes the connection instead.
const MAX_BODY: usize = 1 << 20;

/// Why a POST got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The endpoint URL cannot be used.
    #[error("unusable EndpointUri: {0}")]
    BadUrl(String),
    /// No connection (refused, unreachable, DNS).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The connection broke during the exchange (reset, closed), or the answer was not HTTP.
    #[error("connection lost: {0}")]
    Io(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

fn io(e: std::io::Error) -> TransportError {
    TransportError::Io(e.to_string())
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

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
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

/// A lazily (re)connected HTTP/1.1 connection to one endpoint. Nothing runs between two
/// exchanges; a connection the server closed meanwhile is noticed on the next exchange and
/// replaced.
pub struct Sender {
    authority: String,
    /// The host of the URL (a name, or an address without brackets).
    host: String,
    /// Checked again on every connection (not when open).
    policy: Option<Arc<EndpointPolicy>>,
    /// The request target (path and query).
    target: Box<str>,
    /// The headers every request carries (Host, Content-Type, User-Agent), each ending in CRLF.
    headers: Box<str>,
    /// `POST <target> HTTP/1.1`, the headers and `content-length: `, built once.
    post_head: Box<[u8]>,
    /// For `https`: the TLS client and the name the certificate must carry.
    tls: Option<(Arc<DeliveryTls>, ServerName<'static>)>,
    /// Bounds the connections being opened to this endpoint's host (see [`ConnectGate`]).
    gate: Option<ConnectGate>,
    conn: Option<Stream>,
}

/// Bounds how many connections to one consumer `host:port` are being opened at once (connected
/// and not yet answered their first request). When many subscriptions of one consumer process
/// start delivering together (the first event after they were created, or after a restart), a
/// connection storm overflows the consumer's accept queue, and every dropped SYN is retried only
/// after a second. Shared by the endpoints of one `host:port` only: another consumer never waits
/// on it.
#[derive(Clone)]
pub struct ConnectGate(Arc<Semaphore>);

impl ConnectGate {
    /// Connections opened to one `host:port` at once.
    pub const OPENING: usize = 32;

    /// A gate for one consumer `host:port`.
    pub fn new() -> ConnectGate {
        ConnectGate(Arc::new(Semaphore::new(Self::OPENING)))
    }

    /// Whether a clone of this gate exists besides this one.
    pub fn in_use(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

impl Default for ConnectGate {
    fn default() -> Self {
        ConnectGate::new()
    }
}

/// What an exchange got back.
struct Answer {
    status: StatusCode,
    body: Bytes,
    /// Whether the connection can carry the next request.
    reusable: bool,
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
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let bad = |what: &str| TransportError::BadUrl(format!("{url}: {what}"));
        // A URL never carries CR, LF or spaces in these parts (the url crate escapes them), so
        // neither can the request head; checked anyway, as http's header types did.
        if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("the path cannot be a request target"));
        }
        // The Host header: the URL's authority without userinfo, port only when given.
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        if host_header.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("the host cannot be a Host header"));
        }
        let headers = format!(
            "host: {host_header}\r\ncontent-type: application/json\r\nuser-agent: ptp-events/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        let post_head = format!("POST {target} HTTP/1.1\r\n{headers}content-length: ")
            .into_bytes()
            .into_boxed_slice();
        Ok(Sender {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            policy: policy.filter(|p| !p.is_open()).cloned(),
            authority,
            target: target.into(),
            headers: headers.into(),
            post_head,
            tls,
            gate: None,
            conn: None,
        })
    }

    /// Opens new connections through `gate` (see [`ConnectGate`]).
    pub fn with_gate(mut self, gate: ConnectGate) -> Sender {
        self.gate = Some(gate);
        self
    }

    /// POSTs `body` as `application/json` and returns the answer's status; the answer's body is
    /// read and discarded so that the connection can be reused. `timeout` bounds each attempt
    /// (connecting, writing, the answer); waiting for the [`ConnectGate`] is not counted in it.
    pub async fn post(
        &mut self,
        body: Bytes,
        timeout: Duration,
    ) -> Result<StatusCode, TransportError> {
        self.exchange(Method::POST, &body, timeout)
            .await
            .map(|(status, _)| status)
    }

    /// One request and its answer: on the kept-alive connection when it is still open and
    /// silent, else (or when it failed before any byte of an answer) on a new one. The connection
    /// is out of `self` during the exchange and put back only after a complete answer that
    /// allows it: an exchange cut short (a timeout, the caller dropping this future) leaves no
    /// half-used connection behind.
    async fn exchange(
        &mut self,
        method: Method,
        body: &Bytes,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), TransportError> {
        if let Some(mut stream) = self.conn.take()
            && idle_and_open(&mut stream)
        {
            match tokio::time::timeout(timeout, self.send(&mut stream, &method, body)).await {
                Err(_) => return Err(TransportError::Timeout(timeout)),
                // A 408 on a kept-alive connection is the server timing out the idle
                // connection (it may have come just before the check above, or after it), not
                // an answer to this request: repeated once on a new one (RFC 9110 §15.5.9).
                Ok(Ok(a)) if a.status == StatusCode::REQUEST_TIMEOUT => {}
                Ok(Ok(a)) => return Ok(self.keep(stream, a)),
                // Only when nothing of an answer came back: the consumer never saw this request
                // (a retry after an answer began could deliver the event twice). One fresh try,
                // as hyper's pool does.
                Ok(Err(TransportError::Io(m))) if m.starts_with(UNANSWERED) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
        // A new connection: opened through the gate, which is held until its first answer.
        let _opening: Option<OwnedSemaphorePermit> = match &self.gate {
            Some(g) => g.0.clone().acquire_owned().await.ok(),
            None => None,
        };
        let attempt = async {
            let mut stream = self.connect().await?;
            let answer = self.send(&mut stream, &method, body).await?;
            Ok::<_, TransportError>((stream, answer))
        };
        let (stream, answer) = tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| TransportError::Timeout(timeout))??;
        Ok(self.keep(stream, answer))
    }

    fn keep(&mut self, stream: Stream, a: Answer) -> (StatusCode, Bytes) {
        if a.reusable {
            self.conn = Some(stream);
        }
        (a.status, a.body)
    }

    /// One request and its answer on `stream`.
    async fn send(
        &self,
        stream: &mut Stream,
        method: &Method,
        body: &Bytes,
    ) -> Result<Answer, TransportError> {
        let mut digits = [0u8; 24];
        let length = content_length(body.len(), &mut digits);
        let other_head;
        let head: &[u8] = if *method == Method::POST {
            &self.post_head
        } else {
            other_head = format!(
                "{method} {} HTTP/1.1\r\n{}content-length: ",
                self.target, self.headers
            );
            other_head.as_bytes()
        };
        let mut parts = [IoSlice::new(head), IoSlice::new(length), IoSlice::new(body)];
        let mut parts: &mut [IoSlice<'_>] = &mut parts;
        while !parts.is_empty() {
            let n = stream
                .write_vectored(parts)
                .await
                .map_err(|e| TransportError::Io(format!("{UNANSWERED}{e}")))?;
            if n == 0 {
                return Err(TransportError::Io(
                    "the connection took no more bytes".into(),
                ));
            }
            IoSlice::advance_slices(&mut parts, n);
        }
        // TLS may write here: a failure is still before any answer.
        stream
            .flush()
            .await
            .map_err(|e| TransportError::Io(format!("{UNANSWERED}{e}")))?;
        read_answer(stream, *method != Method::POST).await
    }

    async fn connect(&self) -> Result<Stream, TransportError> {
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
        Ok(match &self.tls {
            None => Stream::Plain(stream),
            Some((tls, name)) => Stream::Tls(Box::new(
                tls.connector()
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| TransportError::Connect(format!("TLS: {e}")))?,
            )),
        })
    }
}

/// Whether a kept-alive connection is still open and has sent nothing since its last answer.
/// A server that closed it while idle, or answered before closing (a `408 Request Timeout`, as
/// many servers send to an idle connection), has left an end or bytes to read: a request written
/// there would be lost or, worse, get that stale answer as its own. Checked without waiting.
fn idle_and_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    // TLS: a record that is no data for us (a session ticket) is taken and still reads Pending.
    Pin::new(stream).poll_read(&mut cx, &mut buf).is_pending()
}

/// `n` in decimal followed by the end of the head (`\r\n\r\n`), in `out`.
fn content_length(mut n: usize, out: &mut [u8; 24]) -> &[u8] {
    let end = out.len();
    out[end - 4..].copy_from_slice(b"\r\n\r\n");
    let mut i = end - 4;
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}

/// How the answer's body is delimited (RFC 9112 §6.3).
enum Framing {
    None,
    Length(usize),
    Chunked,
    /// Up to the end of the connection.
    Close,
}

/// Reads more of the answer into `buf`; `Ok(0)` at the end of the connection. `unanswered`:
/// no byte of an answer (not even an interim one) has come back yet.
async fn fill(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    unanswered: bool,
) -> Result<usize, TransportError> {
    buf.reserve(2048);
    stream.read_buf(buf).await.map_err(|e| {
        if unanswered {
            TransportError::Io(format!("{UNANSWERED}{e}"))
        } else {
            io(e)
        }
    })
}

/// Reads one answer: its head, and its body (kept when `keep_body`, else discarded).
async fn read_answer(stream: &mut Stream, keep_body: bool) -> Result<Answer, TransportError> {
    let mut buf: Vec<u8> = Vec::new();
    // An interim answer came: the server has the request (a failure after it is not retried).
    let mut interim = false;
    // The head, skipping interim (1xx) answers.
    let (status, framing, mut reusable, mut at) = loop {
        let parsed = {
            // As many as hyper's client accepted.
            let mut headers = [httparse::EMPTY_HEADER; 100];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => Some(head_of(&resp, n)?),
                Ok(httparse::Status::Partial) => None,
                Err(e) => {
                    return Err(TransportError::Io(format!(
                        "the answer is not HTTP/1.1: {e}"
                    )));
                }
            }
        };
        match parsed {
            Some((code, _, _, n)) if (100..200).contains(&code) => {
                buf.drain(..n);
                interim = true;
                continue;
            }
            Some((code, framing, reusable, n)) => {
                let status = StatusCode::from_u16(code)
                    .map_err(|_| TransportError::Io(format!("answer status {code} is invalid")))?;
                break (status, framing, reusable, n);
            }
            None if buf.len() > MAX_HEAD => {
                return Err(TransportError::Io(
                    "the answer's head is over 64 KiB".into(),
                ));
            }
            None => {}
        }
        let unanswered = buf.is_empty() && !interim;
        if fill(stream, &mut buf, unanswered).await? == 0 {
            return Err(TransportError::Io(if buf.is_empty() && !interim {
                format!("{UNANSWERED}the connection closed")
            } else {
                "the connection closed in the answer's head".into()
            }));
        }
    };
    let mut body: Vec<u8> = Vec::new();
    let mut keep = |part: &[u8], body_len: &mut usize| -> bool {
        *body_len += part.len();
        if keep_body && *body_len <= MAX_BODY {
            body.extend_from_slice(part);
        }
        *body_len <= MAX_BODY
    };
    let mut body_len = 0usize;
    match framing {
        Framing::None => {}
        Framing::Length(len) => {
            if len > MAX_BODY {
                if keep_body {
                    return Err(TransportError::Io(format!(
                        "the answer's body ({len} bytes) is over 1 MiB"
                    )));
                }
                // Only the status was wanted: not read, and the connection is not reused.
                reusable = false;
            } else {
                while buf.len() - at < len {
                    if fill(stream, &mut buf, false).await? == 0 {
                        return Err(TransportError::Io(
                            "the connection closed in the answer's body".into(),
                        ));
                    }
                }
                keep(&buf[at..at + len], &mut body_len);
                at += len;
            }
        }
        Framing::Chunked => loop {
            match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete((n, size))) => {
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    if size == 0 {
                        at += n;
                        // Trailers, up to an empty line; at most 64 KiB of them in all.
                        let trailers = at;
                        loop {
                            if at - trailers > MAX_HEAD {
                                return Err(TransportError::Io(
                                    "the answer's trailers are over 64 KiB".into(),
                                ));
                            }
                            match buf[at..].windows(2).position(|w| w == b"\r\n") {
                                Some(0) => {
                                    at += 2;
                                    break;
                                }
                                Some(i) => at += i + 2,
                                None => {
                                    if buf.len() - trailers > MAX_HEAD {
                                        return Err(TransportError::Io(
                                            "the answer's trailers are over 64 KiB".into(),
                                        ));
                                    }
                                    if fill(stream, &mut buf, false).await? == 0 {
                                        return Err(TransportError::Io(
                                            "the connection closed in the answer's trailers".into(),
                                        ));
                                    }
                                }
                            }
                        }
                        break;
                    }
                    if size > MAX_BODY || body_len + size > MAX_BODY {
                        if keep_body {
                            return Err(TransportError::Io(
                                "the answer's body is over 1 MiB".into(),
                            ));
                        }
                        reusable = false;
                        break;
                    }
                    while buf.len() - at < n + size + 2 {
                        if fill(stream, &mut buf, false).await? == 0 {
                            return Err(TransportError::Io(
                                "the connection closed in the answer's body".into(),
                            ));
                        }
                    }
                    keep(&buf[at + n..at + n + size], &mut body_len);
                    if &buf[at + n + size..at + n + size + 2] != b"\r\n" {
                        return Err(TransportError::Io(
                            "a chunk of the answer does not end in CRLF".into(),
                        ));
                    }
                    at += n + size + 2;
                    // Discarded bytes need not stay in memory.
                    if !keep_body {
                        buf.drain(..at);
                        at = 0;
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if buf.len() - at > 1024 {
                        return Err(TransportError::Io("a chunk size line is over 1 KiB".into()));
                    }
                    if fill(stream, &mut buf, false).await? == 0 {
                        return Err(TransportError::Io(
                            "the connection closed in the answer's body".into(),
                        ));
                    }
                }
                Err(_) => {
                    return Err(TransportError::Io(
                        "the answer's chunked body is malformed".into(),
                    ));
                }
            }
        },
        // The body of a POST's answer is not wanted: its status is returned at once, without
        // waiting for a server that may keep the connection open after it.
        Framing::Close if !keep_body => reusable = false,
        Framing::Close => {
            reusable = false;
            loop {
                let fits = keep(&buf[at..], &mut body_len);
                if !fits {
                    if keep_body {
                        return Err(TransportError::Io("the answer's body is over 1 MiB".into()));
                    }
                    break;
                }
                buf.clear();
                at = 0;
                if fill(stream, &mut buf, false).await? == 0 {
                    break;
                }
            }
        }
    }
    // Bytes after the answer (nothing was asked for them): the connection is not trusted again.
    if at < buf.len() {
        reusable = false;
    }
    Ok(Answer {
        status,
        body: Bytes::from(body),
        reusable,
    })
}

/// The status, the body's framing, whether the connection stays open, and the head's length.
fn head_of(
    resp: &httparse::Response<'_, '_>,
    len: usize,
) -> Result<(u16, Framing, bool, usize), TransportError> {
    let code = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    let mut reusable = http11;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut encoded = false;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    reusable = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    reusable = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // Digits only: `parse` would also take a sign.
            let n: usize = Some(value)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    TransportError::Io(format!(
                        "the answer's Content-Length {value:?} is not a number"
                    ))
                })?;
            if length.is_some_and(|l| l != n) {
                return Err(TransportError::Io(
                    "the answer has two different Content-Lengths".into(),
                ));
            }
            length = Some(n);
        }
    }
    if code == 101 {
        // No upgrade was asked for: what follows is not HTTP/1.1.
        return Err(TransportError::Io(
            "the answer switched protocols (101), which no request asked for".into(),
        ));
    }
    let framing = if (100..200).contains(&code) || code == 204 || code == 304 {
        Framing::None
    } else if encoded {
        // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length, and a message with both
        // (or with Transfer-Encoding in HTTP/1.0) may be an attempt to desynchronise the two
        // ends: its connection is not used again.
        if length.is_some() || !http11 {
            reusable = false;
        }
        if chunked && http11 {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok((code, framing, reusable, len))
}

/// A one-off `GET` on a fresh connection (`http`): the status and the body (at most 1 MiB).
pub async fn get(url: &url::Url, timeout: Duration) -> Result<(StatusCode, Bytes), TransportError> {
    if url.scheme() != "http" {
        return Err(TransportError::BadUrl(format!(
            "{url}: only http is supported here"
        )));
    }
    Sender::new(url, None, None)?
        .exchange(Method::GET, &Bytes::new(), timeout)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A raw HTTP/1.1 server on loopback that answers each request with the next of `answers`
    /// (closing the connection after an answer marked `true`), recording the connections it
    /// accepted and the requests it read.
    struct Raw {
        url: url::Url,
        accepted: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    fn read_request(s: &mut std::net::TcpStream) -> Option<Vec<u8>> {
        let mut req = Vec::new();
        let mut byte = [0u8; 1];
        while !req.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).ok()? == 0 {
                return None;
            }
            req.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).ok()?;
        req.extend_from_slice(&body);
        Some(req)
    }

    fn raw(answers: Vec<(&'static [u8], bool)>) -> Raw {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (accepted.clone(), requests.clone());
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                a.fetch_add(1, Ordering::SeqCst);
                while let Some(req) = read_request(&mut s) {
                    r.lock().unwrap().push(req);
                    let Some((answer, close)) = answers.next() else {
                        return;
                    };
                    s.write_all(answer).unwrap();
                    if close {
                        break;
                    }
                }
            }
        });
        Raw {
            url: url::Url::parse(&format!("http://127.0.0.1:{port}/event?x=1")).unwrap(),
            accepted,
            requests,
        }
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_post_is_one_exact_request_and_the_connection_is_kept() {
        let srv = raw(vec![
            (b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", false),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ]);
        let mut s = Sender::new(&srv.url, None, None).unwrap();
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(s.post(Bytes::from_static(b"[1]"), T).await.unwrap(), 204);
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 1);
        let port = srv.url.port().unwrap();
        let reqs = srv.requests.lock().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&reqs[0]),
            format!(
                "POST /event?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\nuser-agent: ptp-events/{}\r\ncontent-length: 2\r\n\r\n{{}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(reqs[1].ends_with(b"content-length: 3\r\n\r\n[1]"));
    }

    #[tokio::test]
    async fn answers_with_bodies_interim_answers_and_chunks_keep_the_connection() {
        let srv = raw(vec![
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false),
            (b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", false),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: t\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ]);
        let mut s = Sender::new(&srv.url, None, None).unwrap();
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 404);
        let (status, body) = s.exchange(Method::GET, &Bytes::new(), T).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"hello!"[..]));
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_that_end_the_connection_are_not_reused() {
        let srv = raw(vec![
            (b"HTTP/1.0 204 No Content\r\n\r\n", false),
            (
                b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\nto the end", true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ]);
        let mut s = Sender::new(&srv.url, None, None).unwrap();
        for want in [204, 204, 200, 204] {
            assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), want);
        }
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_kept_alive_connection_closed_by_the_server_is_replaced_once() {
        let srv = raw(vec![
            (b"HTTP/1.1 204 No Content\r\n\r\n", true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ]);
        let mut s = Sender::new(&srv.url, None, None).unwrap();
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_malformed_or_cut_answer_is_a_transport_error() {
        for answer in [
            &b"hello there\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let srv = raw(vec![(answer, true)]);
            let mut s = Sender::new(&srv.url, None, None).unwrap();
            let e = s.post(Bytes::from_static(b"{}"), T).await.unwrap_err();
            assert!(
                matches!(e, TransportError::Io(_)),
                "{:?}: {e}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn a_post_answered_with_a_huge_body_gets_its_status_without_reading_it() {
        let srv = raw(vec![
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\nxx",
                false,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ]);
        let mut s = Sender::new(&srv.url, None, None).unwrap();
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 200);
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 2);
    }

    /// A server that answered and then, while the connection was idle, sent a `408` and closed
    /// it: the next POST goes on a new connection and gets its own answer, never the stale 408.
    #[tokio::test]
    async fn an_idle_connection_that_got_a_408_or_its_end_is_not_reused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!(
            "http://127.0.0.1:{}/e",
            listener.local_addr().unwrap().port()
        ))
        .unwrap();
        let (idle_tx, idle_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            read_request(&mut first).unwrap();
            first.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
            idle_rx.recv().unwrap();
            first
                .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
                .unwrap();
            drop(first);
            let (mut second, _) = listener.accept().unwrap();
            let req = read_request(&mut second).unwrap();
            second
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .unwrap();
            req
        });
        let mut s = Sender::new(&url, None, None).unwrap();
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        idle_tx.send(()).unwrap();
        // Not waited for: whether the 408 is seen before the request is written (the idle
        // check) or read as its answer (repeated on a new connection), the POST gets its own.
        assert_eq!(s.post(Bytes::from_static(b"[2]"), T).await.unwrap(), 204);
        assert!(server.join().unwrap().ends_with(b"[2]"));
    }

    /// A kept-alive connection that breaks after part of an answer came back is an error, not
    /// retried: the consumer may have taken the event.
    #[tokio::test]
    async fn a_reused_connection_cut_inside_an_answer_is_not_retried() {
        // Cut inside the status line, or after a complete interim answer.
        for cut in [&b"HTTP/1.1 2"[..], b"HTTP/1.1 100 Continue\r\n\r\n"] {
            let srv = raw(vec![
                (b"HTTP/1.1 204 No Content\r\n\r\n", false),
                (cut, true),
                (b"HTTP/1.1 204 No Content\r\n\r\n", false),
            ]);
            let mut s = Sender::new(&srv.url, None, None).unwrap();
            assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
            let e = s.post(Bytes::from_static(b"{}"), T).await.unwrap_err();
            assert!(
                matches!(&e, TransportError::Io(m) if !m.starts_with(UNANSWERED)),
                "{e}"
            );
            assert_eq!(srv.requests.lock().unwrap().len(), 2);
            assert_eq!(srv.accepted.load(Ordering::SeqCst), 1);
            // The next POST opens a new connection.
            assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
            assert_eq!(srv.accepted.load(Ordering::SeqCst), 2);
        }
    }

    /// Answers whose framing cannot be trusted, or that the next request must not follow.
    #[tokio::test]
    async fn doubtful_framing_ends_the_connection_or_is_an_error() {
        // Transfer-Encoding with Content-Length, or in HTTP/1.0: the body is read as chunked
        // (1.1) or to the end (1.0), and the connection is not used again.
        let srv = raw(vec![
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                false,
            ),
            (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ]);
        let mut s = Sender::new(&srv.url, None, None).unwrap();
        let (status, body) = s.exchange(Method::GET, &Bytes::new(), T).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
        assert!(s.conn.is_none());
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 200);
        assert_eq!(s.post(Bytes::from_static(b"{}"), T).await.unwrap(), 204);
        assert_eq!(srv.accepted.load(Ordering::SeqCst), 3);
        // A signed Content-Length, or a 101 nobody asked for: errors.
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ] {
            let srv = raw(vec![(answer, true)]);
            let mut s = Sender::new(&srv.url, None, None).unwrap();
            let e = s.post(Bytes::from_static(b"{}"), T).await.unwrap_err();
            assert!(matches!(e, TransportError::Io(_)), "{e}");
        }
    }

    /// A POST's answer framed by the end of the connection gives its status at once, even when
    /// the server keeps the connection open; endless trailers are an error, not a growing buffer.
    #[tokio::test]
    async fn open_ended_answers_do_not_hold_a_post() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!(
            "http://127.0.0.1:{}/e",
            listener.local_addr().unwrap().port()
        ))
        .unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            read_request(&mut c).unwrap();
            c.write_all(b"HTTP/1.1 200 OK\r\n\r\nno length, not closed")
                .unwrap();
            let _ = done_rx.recv();
            let (mut c, _) = listener.accept().unwrap();
            read_request(&mut c).unwrap();
            c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
                .unwrap();
            // Trailer lines until the client gives up.
            while c
                .write_all(b"x: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n")
                .is_ok()
            {}
        });
        let mut s = Sender::new(&url, None, None).unwrap();
        let status = s.post(Bytes::from_static(b"{}"), T).await.unwrap();
        assert_eq!(status, 200);
        assert!(s.conn.is_none());
        done_tx.send(()).unwrap();
        let e = s.exchange(Method::GET, &Bytes::new(), T).await.unwrap_err();
        assert!(
            matches!(&e, TransportError::Io(m) if m.contains("trailers")),
            "{e}"
        );
    }

    /// At most [`ConnectGate::OPENING`] connections to one consumer are being opened at once
    /// (connected, first answer not yet read); each answer lets the next one in, and every POST
    /// completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_connect_gate_bounds_connections_being_opened() {
        const POSTS: usize = ConnectGate::OPENING + 8;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!(
            "http://127.0.0.1:{}/e",
            listener.local_addr().unwrap().port()
        ))
        .unwrap();
        // accepted, answered, the most accepted-and-unanswered seen at an accept
        let counts = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
        let (token_tx, token_rx) = std::sync::mpsc::channel::<()>();
        let token_rx = Arc::new(Mutex::new(token_rx));
        let c = counts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                {
                    let mut c = c.lock().unwrap();
                    c.0 += 1;
                    c.2 = c.2.max(c.0 - c.1);
                }
                let (c, tokens) = (c.clone(), token_rx.clone());
                std::thread::spawn(move || {
                    read_request(&mut conn).unwrap();
                    tokens.lock().unwrap().recv().unwrap();
                    c.lock().unwrap().1 += 1;
                    conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                    // Held open, as a kept-alive consumer does.
                    let _ = read_request(&mut conn);
                });
            }
        });
        let gate = ConnectGate::new();
        let mut posts = tokio::task::JoinSet::new();
        for _ in 0..POSTS {
            let mut s = Sender::new(&url, None, None)
                .unwrap()
                .with_gate(gate.clone());
            posts.spawn(async move { s.post(Bytes::from_static(b"{}"), T * 4).await });
        }
        let accepted = |n: usize| {
            let counts = counts.clone();
            async move {
                let deadline = std::time::Instant::now() + T;
                while counts.lock().unwrap().0 < n {
                    assert!(std::time::Instant::now() < deadline, "{n} never accepted");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        accepted(ConnectGate::OPENING).await;
        // One answer: one more connection is let in.
        token_tx.send(()).unwrap();
        accepted(ConnectGate::OPENING + 1).await;
        for _ in 1..POSTS {
            token_tx.send(()).unwrap();
        }
        while let Some(r) = posts.join_next().await {
            assert_eq!(r.unwrap().unwrap(), 204);
        }
        let (accepted, answered, most) = *counts.lock().unwrap();
        assert_eq!((accepted, answered), (POSTS, POSTS));
        assert!(most <= ConnectGate::OPENING, "{most} opened at once");
    }

    #[test]
    fn content_length_digits() {
        for n in [0usize, 7, 10, 398, 1 << 20, usize::MAX] {
            let mut out = [0u8; 24];
            assert_eq!(
                content_length(n, &mut out),
                format!("{n}\r\n\r\n").as_bytes()
            );
        }
    }
}
