//! Accepting connections: at most `max_connections` open at once, and a connection that does not send a request's
//! headers within `header_read_timeout` (the first request, or the next one on a kept-alive connection) is closed.
//! Idle connections cannot pile up until the process runs out of file descriptors and `/healthz` stops answering.
//!
//! At the cap the listener stops accepting: new connections wait in the kernel's backlog until an open one closes
//! (idle ones do within the header-read timeout). A failed `accept` (out of file descriptors) is logged and retried
//! after a pause, never a busy loop. On shutdown, no new connection is accepted, idle ones are closed and requests in
//! flight finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Most header lines hyper itself reads before answering a bare `431`; the API refuses more than
/// [`MAX_HEADER_COUNT`] with its JSON body first.
const HYPER_MAX_HEADERS: usize = 256;
/// Most bytes hyper buffers for a request's head before answering a bare `431`; the API refuses more than
/// [`MAX_HEADER_BYTES`] with its JSON body first.
const HYPER_MAX_HEAD_BYTES: usize = 128 * 1024;
/// Most header lines a request may carry: beyond this it is `431 headers_too_large` with the JSON error body.
pub const MAX_HEADER_COUNT: usize = 100;
/// Most bytes of header names and values a request may carry: beyond this it is `431 headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How many connections, and how patiently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers (also the idle time of a kept-alive one); `None`
    /// waits for ever.
    pub header_read_timeout: Option<Duration>,
}

/// The connection cap that fits the process's file-descriptor limit: `wanted`, or fewer when the soft
/// `RLIMIT_NOFILE` leaves less than `wanted` plus a reserve for the database, buyers' connections and plugins.
pub fn fitting_connection_cap(wanted: usize) -> usize {
    const RESERVE: u64 = 256;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !read || limit.rlim_cur == libc::RLIM_INFINITY {
        return wanted;
    }
    let room = limit.rlim_cur.saturating_sub(RESERVE).max(16);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Serves `app` on `listener` within `limits` until `stop` turns true, then drains.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_HEAD_BYTES);

    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed; retrying shortly");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            // hyper's header-read timeout starts once it knows the protocol, which takes a first byte: a connection
            // that never sends one (before the timeout, or before shutdown) is closed here.
            if let Some(timeout) = header_read_timeout {
                let mut first = [0u8; 1];
                let first_byte = tokio::select! {
                    peeked = tokio::time::timeout(timeout, stream.peek(&mut first)) => matches!(peeked, Ok(Ok(n)) if n > 0),
                    _ = stopping.wait_for(|stop| *stop) => false,
                };
                if !first_byte {
                    drop(permit);
                    return;
                }
            }
            let service = app.map_request(|request: hyper::Request<Incoming>| request.map(Body::new));
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
