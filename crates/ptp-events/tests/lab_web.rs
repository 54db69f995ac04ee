//! `lab --web`: the lab's live page. The page is the replay report's picture of the node so far;
//! `/events` streams it again after each change (server-sent events); a fault injected in the
//! lab reaches an open stream, and a real headless Chromium (Debian's `chromium`) showing the
//! page swaps the update in (its DOM then has the new marks), with no console message. Replay
//! mode (no root needed); without Chromium the browser part says SKIPPED (required under
//! `CI=true`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_client};

struct Lab {
    child: Child,
    web: u16,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("lab.sock");
        let web = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
            .args(["lab", "--quiet", "--mode", "replay", "--speed", "4"])
            .args(["--api-port", &free_port().to_string()])
            .args(["--metrics-port", &free_port().to_string()])
            .args(["--web", &format!("127.0.0.1:{web}")])
            .arg("--control")
            .arg(&control)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Lab {
            child,
            web,
            control,
            _dir: dir,
        }
    }

    fn inject(&self, fault: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
            .args(["lab", "--control"])
            .arg(&self.control)
            .args(["inject", fault])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    async fn page(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http_client()
                .get(format!("http://127.0.0.1:{}/", self.web))
                .send()
                .await
                && r.status() == 200
            {
                return r.text().await.unwrap();
            }
            assert!(Instant::now() < deadline, "the live page never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn marks(html: &str) -> usize {
    html.matches(r#"id="mark-"#).count()
}

/// The next server-sent event's data (its `data:` lines joined).
async fn next_message(resp: &mut reqwest::Response, buf: &mut String, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let msg: String = buf[..end]
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n");
            buf.drain(..end + 2);
            if !msg.is_empty() {
                return msg; // (keep-alive comments carry no data)
            }
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .expect("a message within the limit")
            .unwrap()
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_live_page_follows_the_lab_in_a_browser() {
    let lab = Lab::start();
    let page = lab.page().await;
    assert!(
        page.contains("<svg") && page.contains("EventSource"),
        "{page}"
    );
    assert_eq!(page.matches("http://").count(), 1, "only the SVG namespace");
    for banned in ["src=", "<link", "@import", "url("] {
        assert!(!page.contains(banned), "{banned}");
    }

    // The stream: the content now, then again after a fault.
    let mut resp = http_client()
        .get(format!("http://127.0.0.1:{}/events", lab.web))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let first = next_message(&mut resp, &mut buf, Duration::from_secs(5)).await;
    // Wait until the replay has locked (its first events are in), then lose the grandmaster.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.page().await.contains("\">LOCKED</b>") {
        assert!(Instant::now() < deadline, "the lab never locked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = marks(&lab.page().await);
    lab.inject("gm-loss");
    let after = loop {
        let m = next_message(&mut resp, &mut buf, Duration::from_secs(10)).await;
        if marks(&m) > before {
            break m;
        }
    };
    assert!(after.contains("HOLDOVER"), "gm-loss shows as HOLDOVER");
    assert!(marks(&after) > marks(&first));
    drop(resp);

    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is missing"
        );
        println!("SKIPPED the browser part: chromium is missing (apt-get install chromium)");
        return;
    };
    // The browser takes a bounded stream (2 messages): the page now, then the update after the
    // next fault, injected while it waits.
    let url = format!("http://127.0.0.1:{}/?max=2", lab.web);
    let browser = std::thread::spawn({
        let chromium = chromium.to_owned();
        move || {
            Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--enable-logging=stderr",
                    "--v=0",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                ])
                .arg(url)
                .output()
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lab.inject("gm-restore");
    let out = browser.join().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("CONSOLE") && !stderr.contains("Uncaught"),
        "console messages: {stderr}"
    );
    assert!(
        dom.contains(r#"data-updates="2""#),
        "the page took both messages: {dom}"
    );
    assert_eq!(
        marks(&dom),
        marks(&lab.page().await),
        "the browser shows what the lab has"
    );
    // A picture for people (artefact).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let png = target.join("test-artifacts").join("lab-live-page.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let shot = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(["--window-size=1520,900", "--virtual-time-budget=5000"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("http://127.0.0.1:{}/?max=1", lab.web))
        .output()
        .unwrap();
    assert!(shot.status.success(), "{shot:?}");
    println!("screenshot {}", png.display());
}
