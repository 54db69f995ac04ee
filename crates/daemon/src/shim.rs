//! Emulated clock writes: a small `LD_PRELOAD` library (`shim/clock_shim.c`, built and embedded
//! by `build.rs`) that swallows every clock write of linuxptp (`clock_adjtime` with modes set,
//! `clock_settime`) and passes reads through. With it a software ptp4l (`-S`) reaches SLAVE and
//! `s2` while CLOCK_REALTIME stays untouched: the lab and the tests run any number of locked
//! slaves, with or without a time daemon on the host. Nothing is disciplined: the clocks are
//! emulated, and whatever runs with the shim says so.

use std::path::{Path, PathBuf};

/// The shared object.
pub const CLOCK_SHIM_SO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/clock_shim.so"));

/// Writes the shim to `dir/clock_shim.so` (mode 0644) and returns its path.
pub fn install(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("clock_shim.so");
    let tmp = dir.join(".clock_shim.so.tmp");
    std::fs::write(&tmp, CLOCK_SHIM_SO)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The command prefix that runs a program with the shim preloaded (`env LD_PRELOAD=<so>`),
/// to append to [`crate::DaemonOptions::command_prefix`].
pub fn prefix(so: &Path) -> Vec<String> {
    vec!["env".into(), format!("LD_PRELOAD={}", so.display())]
}
