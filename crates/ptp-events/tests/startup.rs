//! `ptp-events proxy` refuses to start on unusable security files, naming the flag and the file.

mod common;

use std::process::Stdio;

use common::{free_port, proxy_command, sigterm};

fn refused(extra: &[&str], dir: &std::path::Path) -> String {
    let out = proxy_command(dir, free_port())
        .args(extra)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {extra:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unusable_delivery_tls_files_stop_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.crt");
    let err = refused(
        &["--delivery-ca-file", missing.to_str().unwrap()],
        dir.path(),
    );
    assert!(
        err.contains("--delivery-ca-file") && err.contains("missing-ca.crt"),
        "{err}"
    );
    let garbage = dir.path().join("garbage.crt");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let err = refused(
        &["--delivery-ca-file", garbage.to_str().unwrap()],
        dir.path(),
    );
    assert!(err.contains("no PEM certificate"), "{err}");
    // A client certificate needs its key and the CA file.
    let err = refused(&["--delivery-client-cert", "/x.crt"], dir.path());
    assert!(err.contains("--delivery-client-key"), "{err}");
}

/// `--socket` at anything but a socket nobody answers on: refused, exit non-zero, the message
/// names the flag and the path, and what was there is untouched.
#[test]
fn socket_flag_never_replaces_what_is_not_a_stale_socket() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("precious"), "keep me").unwrap();
    std::os::unix::fs::symlink(p("precious"), p("link")).unwrap();
    std::fs::create_dir(p("dir")).unwrap();
    for (name, kind) in [
        ("precious", "a regular file"),
        ("link", "a symbolic link"),
        ("dir", "a directory"),
    ] {
        let path = p(name);
        let err = refused(&["--socket", path.to_str().unwrap()], dir.path());
        assert!(
            err.contains("--socket") && err.contains(path.to_str().unwrap()) && err.contains(kind),
            "{name}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(p("precious")).unwrap(), "keep me");
    assert!(std::fs::symlink_metadata(p("link")).unwrap().is_symlink());
    assert!(p("dir").is_dir());

    // A mistyped directory: only the socket's own directory is created, never a tree.
    let deep = p("typo").join("deeper").join("events.sock");
    let err = refused(&["--socket", deep.to_str().unwrap()], dir.path());
    assert!(
        err.contains("--socket") && err.contains("only the last directory is created"),
        "{err}"
    );
    assert!(!p("typo").exists());

    // A live socket: refused, and it still answers.
    let live = std::os::unix::net::UnixListener::bind(p("live.sock")).unwrap();
    let err = refused(&["--socket", p("live.sock").to_str().unwrap()], dir.path());
    assert!(err.contains("already listening"), "{err}");
    assert!(std::os::unix::net::UnixStream::connect(p("live.sock")).is_ok());
    drop(live);
}

/// A stale socket is replaced; at exit the producer removes only the socket it bound: a file
/// put in its place meanwhile survives.
#[test]
fn stale_socket_is_replaced_and_only_our_own_is_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("events.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let mut child = proxy_command(dir.path(), free_port())
        .arg("--socket")
        .arg(&sock)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "stale socket not replaced"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_file(&sock).unwrap();
    std::fs::write(&sock, "someone else's").unwrap();
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "someone else's");
}

/// Logs written to a pipe carry no colour escapes; with `--log-format json` every line parses
/// as JSON, the fatal one included (level ERROR, the reason, the error chain).
#[test]
fn piped_logs_have_no_escapes_and_json_covers_the_fatal_line() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the daemon socket should be: the producer logs its start, then
    // fails.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    for json in [false, true] {
        let mut c = proxy_command(dir.path(), free_port());
        c.arg("--socket").arg(&file);
        c.env("LOG_LEVEL", "info").env_remove("NO_COLOR");
        if json {
            c.args(["--log-format", "json"]);
        }
        let out = c.stderr(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "a runtime failure exits 1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains('\u{1b}'), "ESC in piped logs: {err}");
        assert!(err.lines().count() >= 2, "the start is logged too: {err}");
        // "ready" only once every listener is up: the daemon socket was refused.
        assert!(!err.contains("producer ready"), "{err}");
        if json {
            let mut fatal = None;
            for l in err.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                if v["level"] == "ERROR" {
                    fatal = Some(v);
                }
            }
            let fatal = fatal.unwrap_or_else(|| panic!("no ERROR line: {err}"));
            let msg = fatal["fields"]["message"].as_str().unwrap();
            assert!(
                msg.contains("cannot listen") || msg.contains("in use"),
                "{fatal}"
            );
            assert!(fatal["fields"]["error_chain"].is_string(), "{fatal}");
        } else {
            assert!(err.lines().last().unwrap().starts_with("error: "), "{err}");
        }
    }
}

/// A misspelt or empty level never silences the process: a bad LOG_LEVEL (or RUST_LOG) is
/// refused at start with the reason, exit 2 (a usage error); an empty one means the default.
#[test]
fn a_bad_log_level_is_refused_and_an_empty_one_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("LOG_LEVEL", "infoo"),
        ("LOG_LEVEL", "verbose"),
        ("RUST_LOG", "loud"),
        ("LOG_LEVEL", "proxy=infoo"),
    ] {
        let out = proxy_command(dir.path(), free_port())
            .env_remove("LOG_LEVEL")
            .env(var, value)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        assert!(err.contains(var) && err.contains(value), "{err}");
    }
    // Empty: the default level (info): the start is logged, then the refused socket.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let out = proxy_command(dir.path(), free_port())
        .arg("--socket")
        .arg(&file)
        .env("LOG_LEVEL", "")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("INFO"),
        "an empty LOG_LEVEL must not silence: {err}"
    );
}

/// A bad flag value is a usage error, exit 2, naming the flag the user gave.
#[test]
fn bad_flag_values_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    std::fs::write(
        &log,
        "ptp4l[1.0]: [ptp4l.0.config] master offset 5 s2 freq 0 path delay 1\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_ptp-events");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "daemon",
                "--node-name",
                "n",
                "--no-socket",
                "--http-addr",
                "bogus",
                "--profile-file",
            ]
            .into_iter()
            .map(String::from)
            .chain([dir.path().join("p").display().to_string()])
            .collect(),
            "--http-addr",
        ),
        (
            vec!["replay", "--min-offset", "10", "--max-offset", "5"]
                .into_iter()
                .map(String::from)
                .chain([log.display().to_string()])
                .collect(),
            "--min-offset",
        ),
    ];
    for (args, flag) in cases {
        let out = std::process::Command::new(bin)
            .args(&args)
            .env("LOG_LEVEL", "warn")
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    for (args, flag, says) in [
        (
            ["--api-version", "banana"],
            "--api-version",
            "not a version",
        ),
        (
            ["--api-version", "1.0"],
            "--api-version",
            "v1 is no longer supported",
        ),
        (
            ["--delivery-timeout-ms", "0"],
            "--delivery-timeout-ms",
            "at least 1",
        ),
        (
            ["--transport-host", "not a url"],
            "--transport-host",
            "expected a host or an http(s) URL",
        ),
        (
            ["--transport-host", "ftp://x"],
            "--transport-host",
            "expected a host or an http(s) URL",
        ),
        (
            ["--max-subscriptions", "0"],
            "--max-subscriptions",
            "at least 1",
        ),
        (
            ["--max-connections", "0"],
            "--max-connections",
            "at least 1",
        ),
        (["--queue-capacity", "0"], "--queue-capacity", "at least 1"),
    ] {
        let out = proxy_command(dir.path(), free_port())
            .args(["--socket", "off"])
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(flag) && err.contains(says), "{args:?}: {err}");
    }
    let mut no_node = proxy_command(dir.path(), free_port());
    no_node.env_remove("NODE_NAME");
    exits_with(no_node, 2, &["NODE_NAME: not set"]);
    let mut consumer = std::process::Command::new(bin);
    consumer
        .args(["consumer", "--local-api-addr", "bogus"])
        .env("LOG_LEVEL", "warn");
    exits_with(consumer, 2, &["--local-api-addr", "bogus"]);
    // proxy_command sets --metrics-addr off; this one gives it a bad value itself.
    let mut metrics = std::process::Command::new(bin);
    metrics
        .args([
            "proxy",
            "--api-bind",
            "127.0.0.1",
            "--metrics-addr",
            "bogus",
        ])
        .args(["--api-port", &free_port().to_string()])
        .arg("--store-path")
        .arg(dir.path().join("store"))
        .env("NODE_NAME", "n1")
        .env("LOG_LEVEL", "warn");
    exits_with(metrics, 2, &["--metrics-addr: \"bogus\""]);
}

/// Runs `cmd`, asserts its exit code and that stderr contains every needle.
fn exits_with(mut cmd: std::process::Command, code: i32, needles: &[&str]) {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{cmd:?}: missing {n:?} in {err}");
    }
}

/// A `--store-path` whose parent does not exist is refused, naming it; nothing is created.
#[test]
fn a_store_path_under_a_missing_parent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // proxy_command's store is `<dir>/store`: here `<dir>` is the missing `typo`.
    let mut cmd = proxy_command(&dir.path().join("typo"), free_port());
    cmd.args(["--socket", "off"]);
    exits_with(cmd, 1, &["typo", "does not exist"]);
    assert!(!dir.path().join("typo").exists(), "nothing created");
}

/// Every subcommand, not only the producer: logs to a pipe carry no ESC byte, and with
/// `--log-format json` every stderr line parses as JSON, the fatal one included.
#[test]
fn every_subcommand_logs_plain_or_json_to_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_ptp-events");
    let garbage = dir.path().join("garbage.log");
    std::fs::write(&garbage, "not a linuxptp line\n").unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let check = |what: &str, err: &str, json: bool| {
        assert!(!err.contains('\u{1b}'), "{what}: ESC in piped logs: {err}");
        assert!(!err.trim().is_empty(), "{what}: nothing logged");
        if json {
            for l in err.lines() {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {l}"));
                assert!(v["level"].is_string(), "{what}: {l}");
            }
        }
    };
    for json in [false, true] {
        let format = if json { "json" } else { "text" };
        // Fatal at start: replay of a file with no understood line; a consumer on a busy port.
        for (what, args) in [
            ("replay", vec!["replay", garbage.to_str().unwrap()]),
            (
                "consumer",
                vec![
                    "consumer",
                    "--local-api-addr",
                    &busy_addr,
                    "--http-event-publishers",
                    "127.0.0.1:1",
                ],
            ),
        ] {
            let out = std::process::Command::new(bin)
                .args(&args)
                .args(["--log-format", format])
                .env("LOG_LEVEL", "info")
                .env_remove("NO_COLOR")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{what}");
            check(what, &String::from_utf8_lossy(&out.stderr), json);
        }
        // The daemon runs on (waiting for its profile file): stopped once it has logged.
        let mut child = std::process::Command::new(bin)
            .args(["daemon", "--node-name", "n1", "--no-socket"])
            .args(["--http-addr", "off", "--log-format", format])
            .arg("--profile-file")
            .arg(dir.path().join("missing-profile"))
            .env("LOG_LEVEL", "info")
            .env_remove("NO_COLOR")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
        sigterm(&child);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        assert!(child.wait().unwrap().success());
        check("daemon", &(first + &rest), json);
    }
    drop(busy);
}
