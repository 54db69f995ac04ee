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
