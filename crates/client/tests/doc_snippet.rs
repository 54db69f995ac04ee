//! docs/consumer.md §3 as a new application developer uses it: a fresh crate outside this
//! workspace, its `Cargo.toml` and `main.rs` taken from the doc's code blocks (the path
//! placeholder replaced by this checkout's path), must build. Offline: the workspace's lock file
//! pins the same versions the workspace already fetched.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first fenced block after `heading` whose info string starts with `lang`.
fn block(doc: &str, heading: &str, lang: &str) -> String {
    let from = doc
        .find(heading)
        .unwrap_or_else(|| panic!("{heading:?} not in the doc"));
    let rest = &doc[from..];
    let open = rest
        .find(&format!("```{lang}"))
        .unwrap_or_else(|| panic!("no ```{lang} block after {heading:?}"));
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap() + 1].to_owned()
}

#[test]
fn the_docs_sdk_snippet_builds_as_a_crate_outside_the_workspace() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = repo.canonicalize().unwrap();
    let doc = std::fs::read_to_string(repo.join("docs/consumer.md")).unwrap();
    let heading = "## 3. Your own application, with the SDK";
    let manifest = block(&doc, heading, "toml");
    let main = block(&doc, heading, "rust");
    let placeholder = "/path/to/ptp-events/crates/client";
    assert!(manifest.contains(placeholder), "{manifest}");
    assert!(
        manifest.contains("[package]"),
        "a whole manifest: {manifest}"
    );
    let manifest = manifest.replace(
        placeholder,
        &repo.join("crates/client").display().to_string(),
    );

    // Outside the workspace: a directory that is not under the repository.
    let app = tempfile::tempdir().unwrap();
    assert!(!app.path().starts_with(&repo));
    std::fs::create_dir(app.path().join("src")).unwrap();
    std::fs::write(app.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::write(app.path().join("src/main.rs"), main).unwrap();
    std::fs::copy(repo.join("Cargo.lock"), app.path().join("Cargo.lock")).unwrap();

    // Its own target directory (the workspace's is locked by the `cargo test` running this),
    // kept under the workspace's so that later runs reuse it.
    let target: PathBuf = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join("doc-snippet");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(app.path())
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the doc's snippet does not build outside the workspace:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(target.join("debug/my-ptp-app").exists());
}
