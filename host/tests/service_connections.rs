//! Connection hygiene through the real server, over raw TCP: a connection that sends no request headers within
//! `header_read_timeout_ms` is closed (also a kept-alive one, and one stalled half-way through its headers), open
//! connections are capped at `max_connections` (at the cap a new one waits until another closes, and `/healthz`
//! answers again once one has), and a request with too many or too large headers is `431` with the JSON error body.

#[path = "common/service.rs"]
mod service_harness;

use std::time::{Duration, Instant};

use serde_json::Value;
use service_harness::{TestService, api_keys, exchange_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OPERATOR: &str = "op-key";

async fn start(server: &str) -> TestService {
    let keys = api_keys(&[("operator", None, OPERATOR)]);
    TestService::start(&format!("[server]\n{server}\n{}", exchange_head(&keys, "post_deadline_ms = 5000"))).await
}

fn addr(service: &TestService) -> std::net::SocketAddr {
    service.service.addr
}

/// Reads until the server closes the connection (or `limit` passes): what it sent, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (received, false),
        }
    }
}

/// One `GET /healthz` on its own connection: the status line, or `None` when no answer came within `limit`.
async fn healthz(service: &TestService, limit: Duration) -> Option<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr(service)).await.ok()?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        text.lines().next().map(str::to_owned)
    };
    tokio::time::timeout(limit, attempt).await.ok().flatten()
}

#[tokio::test]
async fn a_connection_that_sends_no_headers_in_time_is_closed() {
    let service = start("header_read_timeout_ms = 400").await;

    let mut silent = TcpStream::connect(addr(&service)).await.expect("connects");
    let started = Instant::now();
    let (sent, closed) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(closed, "a silent connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the timeout: {:?}", started.elapsed());
    assert!(sent.is_empty() || String::from_utf8_lossy(&sent).starts_with("HTTP/1.1 408"), "{sent:?}");

    let mut stalled = TcpStream::connect(addr(&service)).await.expect("connects");
    stalled.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").await.expect("writes half the headers");
    assert!(read_until_closed(&mut stalled, Duration::from_secs(10)).await.1, "a stalled head is closed");

    // A kept-alive connection is served, then closed once idle for as long.
    let mut kept = TcpStream::connect(addr(&service)).await.expect("connects");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("writes a request");
    let (answer, closed) = read_until_closed(&mut kept, Duration::from_secs(10)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    assert!(closed, "the idle kept-alive connection is closed");
    service.shutdown().await;
}

#[tokio::test]
async fn open_connections_are_capped_and_a_freed_slot_serves_again() {
    let service = start("max_connections = 8\nheader_read_timeout_ms = 60000").await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(addr(&service)).await.expect("connects"));
    }
    // Let the server accept all eight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(healthz(&service, Duration::from_millis(700)).await, None, "at the cap a ninth connection waits");

    drop(idle.pop());
    let answer = healthz(&service, Duration::from_secs(10)).await;
    assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"), "a freed slot serves the next connection");
    drop(idle);
    service.shutdown().await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_431_with_the_json_error_body() {
    let service = start("").await;
    let url = service.url("/healthz");
    let mut many = service.client.get(&url);
    for n in 0..150 {
        many = many.header(format!("x-filler-{n}"), "1");
    }
    let large = service.client.get(&url).header("x-large", "a".repeat(40 * 1024));
    for request in [many, large] {
        let answer = request.send().await.expect("an answer");
        assert_eq!(answer.status(), 431);
        let content_type = answer.headers()["content-type"].to_str().expect("text").to_owned();
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let body: Value = answer.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "headers_too_large", "{body}");
    }
    let fine = service.client.get(&url).header("x-small", "a".repeat(1024)).send().await.expect("an answer");
    assert_eq!(fine.status(), 200);
    service.shutdown().await;
}
