//! A minimal HTTP/1.1 GET over a fresh loopback connection, for tests of HTTP endpoints
//! (the management API) that need no client library: the status and the body.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::time::Duration;

/// `GET path` on `addr` with `Connection: close` (and `Authorization: Bearer <token>` when
/// given); waits at most `timeout` for the answer. Panics when the server cannot be reached
/// or the answer is not HTTP.
pub fn get(
    addr: impl ToSocketAddrs,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("the HTTP server accepts");
    s.set_read_timeout(Some(timeout)).expect("a read timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("the request is written");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("the answer is read");
    let status = raw
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: not an HTTP answer: {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
