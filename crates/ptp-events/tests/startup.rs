//! `ptp-events proxy` refuses to start on unusable security files, naming the flag and the file.

mod common;

use std::process::Stdio;

use common::{free_port, proxy_command};

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
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "someone else's");
}
