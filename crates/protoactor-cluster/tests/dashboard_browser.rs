//! The dashboard in a real browser: Debian's `chromium` driven headless by `chromedriver`
//! (WebDriver over HTTP). Three members under load; the page must show the members, the
//! kinds, a non-zero activation rate and the grain calls per kind with a rate and a latency,
//! and a member that stops must be shown as gone.
//! A screenshot is written to `$CARGO_TARGET_TMPDIR/dashboard.png` for a person to look at.
//! Skipped loudly without `chromedriver`, failing instead with `PROTOACTOR_BROWSER=required`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor_cluster::management::{ManagementConfig, ManagementServer};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_testkit::cluster::NodeBuilder;
use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::ChildProcess;
use protoactor_testkit::skip::unavailable;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// One WebDriver call: `method path` with a JSON body; the answer's `value`.
fn webdriver(port: u16, method: &str, path: &str, body: &Value) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read by Content-Length: the driver may keep the connection open.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            });
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
                return v["value"].clone();
            }
        }
        assert!(n > 0, "{method} {path}: the connection closed early");
    }
}

/// Runs `script` in the page and returns its value.
fn eval(port: u16, session: &str, script: &str) -> Value {
    webdriver(
        port,
        "POST",
        &format!("/session/{session}/execute/sync"),
        &json!({"script": script, "args": []}),
    )
}

/// Polls `script` until `ok` holds for its value; panics with the last value after `WAIT`.
fn await_page(port: u16, session: &str, script: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = eval(port, session, script);
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed it; last: {v}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_members_kinds_rates_and_a_member_that_is_gone() {
    if Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_err()
    {
        return unavailable::<()>(
            "PROTOACTOR_BROWSER",
            "the dashboard browser test",
            "chromedriver is not installed (apt-get install chromium chromium-driver)",
        )
        .unwrap_or(());
    }
    let agent = InMemAgent::new();
    let mut nodes = NodeBuilder::new("dash")
        .with_hello_kinds(&["hello", "counter"])
        .members(3, || TestProvider::new(&agent));
    let ids: Vec<String> = nodes.iter().map(|n| n.id()).collect();
    for n in &nodes {
        assert!(n.await_ids(&ids, true, WAIT).await);
    }
    let server = ManagementServer::start(
        &nodes[0].cluster,
        ManagementConfig::new("127.0.0.1:0".parse().unwrap()).with_token("t0k"),
    )
    .unwrap();

    // Load: new grains of both kinds all the time, so activation rates are not zero.
    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let (running, cluster) = (running.clone(), nodes[0].cluster.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while running.load(Ordering::Relaxed) {
                let kind = if i.is_multiple_of(2) {
                    "hello"
                } else {
                    "counter"
                };
                let _ = cluster
                    .request(
                        format!("g-{i}"),
                        kind,
                        protoactor_testkit::cluster::HelloRequest { name: "x".into() },
                        &Default::default(),
                    )
                    .await;
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let port = free_port();
    let _driver = ChildProcess::spawn_all_lines("chromedriver", {
        let mut c = Command::new("chromedriver");
        c.arg(format!("--port={port}"));
        c
    });
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let session = webdriver(
        port,
        "POST",
        "/session",
        &json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,900"]}}}}),
    );
    let session = session["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    // The browser quits with the session, even when an assertion fails.
    struct Quit(u16, String);
    impl Drop for Quit {
        fn drop(&mut self) {
            webdriver(
                self.0,
                "DELETE",
                &format!("/session/{}", self.1),
                &json!({}),
            );
        }
    }
    let quit = Quit(port, session.clone());
    let url = format!("{}/dashboard?token=t0k", server.url());
    webdriver(
        port,
        "POST",
        &format!("/session/{session}/url"),
        &json!({ "url": url }),
    );

    // Members, kinds and a non-zero rate appear.
    let rows = "return [...document.querySelectorAll('#members tbody tr')].map(r => \
                [r.dataset.member, r.className, r.cells[3].textContent])";
    await_page(port, &session, rows, |v| {
        let shown: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(|r| r[0].as_str()).collect())
            .unwrap_or_default();
        ids.iter().all(|id| shown.contains(&id.as_str()))
    });
    let kinds = "return [...document.querySelectorAll('#activations tbody tr')].map(r => \
                 [r.dataset.kind, parseFloat(r.cells[3].textContent) || 0])";
    await_page(port, &session, kinds, |v| {
        let a = v.as_array().cloned().unwrap_or_default();
        let has = |k: &str| a.iter().any(|r| r[0] == k);
        has("hello") && has("counter") && a.iter().any(|r| r[1].as_f64().unwrap_or(0.0) > 0.0)
    });
    // The load's grain calls per kind and method, with a rate and a latency.
    let calls = "return [...document.querySelectorAll('#requests tbody tr')].map(r => \
                 [r.dataset.kind, r.dataset.method, parseFloat(r.cells[3].textContent) || 0, \
                 r.cells[6].textContent])";
    await_page(port, &session, calls, |v| {
        let a = v.as_array().cloned().unwrap_or_default();
        ["hello", "counter"].iter().all(|k| {
            a.iter().any(|r| {
                r[0] == *k
                    && r[2].as_f64().unwrap_or(0.0) > 0.0
                    && r[3].as_str().is_some_and(|t| t.ends_with(" ms"))
            })
        })
    });

    let png = webdriver(
        port,
        "GET",
        &format!("/session/{session}/screenshot"),
        &json!({}),
    );
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, base64_decode(png.as_str().unwrap())).unwrap();
    eprintln!("dashboard screenshot: {}", out.display());

    // A member that stops without a graceful leave is shown as gone.
    let gone = nodes.pop().unwrap();
    let gone_id = gone.id();
    gone.stop(false).await;
    await_page(port, &session, rows, |v| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .any(|r| r[0] == gone_id.as_str() && r[1] == "gone" && r[2] == "gone")
        })
    });

    drop(quit);
    running.store(false, Ordering::Relaxed);
    let _ = load.await;
    server.stop();
    for n in nodes {
        n.stop(true).await;
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
