//! Idle-connection limits of the API listener: a connection that sends nothing after it opens
//! is closed after the header read timeout, and one with no traffic in either direction for the
//! idle timeout is closed too. Without this a client could hold a `--max-connections` slot with
//! a silent socket (hyper's HTTP/1 header timer starts only once the HTTP version is known, and
//! HTTP/2 has no idle timer at all).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Milliseconds since `base` of the last read and the last byte transferred either way; a read
/// of 0 means nothing has been read yet.
#[derive(Debug)]
pub struct Activity {
    base: Instant,
    last_read: AtomicU64,
    last_any: AtomicU64,
}

impl Activity {
    /// Activity starting now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last_read: AtomicU64::new(0),
            last_any: AtomicU64::new(0),
        })
    }

    /// When the connection last had traffic either way; `None` before any.
    pub fn last_traffic(&self) -> Option<Instant> {
        match self.last_any.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }

    pub(crate) fn mark(&self, read: bool) {
        // +1: a read at the very first millisecond still counts as a read.
        let ms = self.base.elapsed().as_millis() as u64 + 1;
        if read {
            self.last_read.store(ms, Ordering::Relaxed);
        }
        self.last_any.store(ms, Ordering::Relaxed);
    }

    /// Completes when the connection should be closed: nothing read within `first_byte`, or no
    /// traffic for `idle`.
    pub async fn expired(&self, first_byte: Duration, idle: Duration) {
        loop {
            let deadline = if self.last_read.load(Ordering::Relaxed) == 0 {
                self.base + first_byte
            } else {
                self.base + Duration::from_millis(self.last_any.load(Ordering::Relaxed)) + idle
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// An I/O stream that records its activity.
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Tracked<T> {
    /// Wraps `inner`, recording into `activity`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Tracked<T> {
        Tracked { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.mark(true);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.mark(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.mark(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
