//! Silent client connections, and how a server ends them.
#![allow(dead_code)]

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// `n` connections to `addr` that send nothing.
pub async fn open_silent(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    held
}

/// How many of `streams` the server has closed: each is given `wait` to show its end.
pub async fn count_closed(streams: &mut [TcpStream], wait: Duration) -> usize {
    let mut closed = 0;
    for s in streams {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(wait, s.read(&mut b)).await {
            closed += 1;
        }
    }
    closed
}

/// Waits until the server has closed every one of `streams`, at most `limit` for each.
pub async fn expect_all_closed(streams: &mut [TcpStream], limit: Duration, why: &str) {
    for s in streams {
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(limit, s.read(&mut b))
            .await
            .unwrap_or_else(|_| panic!("a silent connection must be closed: {why}"));
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
}
