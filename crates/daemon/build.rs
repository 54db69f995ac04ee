//! Builds the clock-write shim (shim/clock_shim.c) into a shared object embedded in the crate
//! ([`daemon::shim`]): the C compiler that links Rust programs on Linux builds it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=shim/clock_shim.c");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("clock_shim.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(&out)
        .arg("shim/clock_shim.c")
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} for the clock shim: {e}"));
    assert!(
        status.success(),
        "building shim/clock_shim.c failed: {status}"
    );
}
