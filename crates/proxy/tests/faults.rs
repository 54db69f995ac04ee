//! Faults caused for real: the store's disk fills up (a small tmpfs mounted by the test).

mod common;

use std::process::Command;

use common::*;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_creation_cleanly_and_service_resumes() {
    if !root_or_skip(
        "a_full_disk_fails_creation_cleanly_and_service_resumes",
        "needs root to mount a tmpfs",
    ) {
        return;
    }
    let Some(fs) = Tmpfs::mount("2m") else {
        panic!("mount -t tmpfs failed although running as root");
    };
    let store = fs.dir.path().join("store");
    let p = producer(&store).await;
    let c = Consumer::start(Behaviour::Ok).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let resp = subscribe(&p, &lock_state(), &format!("{}?before={i}", c.url)).await;
        assert_eq!(resp.status(), 201);
        created.push(resp.json::<oran_api::SubscriptionInfo>().await.unwrap());
    }
    // Fill the disk.
    let filler = fs.dir.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut failure = None;
    for i in 0..5000 {
        let resp = subscribe(&p, &lock_state(), &format!("{}?n={i}", c.url)).await;
        match resp.status().as_u16() {
            201 => created.push(resp.json::<oran_api::SubscriptionInfo>().await.unwrap()),
            500 => {
                failure = Some(assert_problem(resp, 500).await);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let detail = failure.expect("the store never reported the full disk");
    assert!(detail.contains("subscription store"), "{detail}");
    eprintln!("full disk after {} subscriptions: {detail}", created.len());
    // Nothing acknowledged was damaged and the server is fine; a deletion fails cleanly too.
    let list = p.hub.list();
    assert_eq!(list.len(), created.len());
    assert_eq!(
        client()
            .get(url(&p, "/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Space comes back: creation works again.
    std::fs::remove_file(&filler).unwrap();
    let resp = subscribe(&p, &lock_state(), &format!("{}?n=again", c.url)).await;
    assert_eq!(resp.status(), 201);
    p.stop().await;
    let p = producer(&store).await;
    assert_eq!(
        p.hub.len(),
        created.len() + 1,
        "everything acknowledged is on disk"
    );
    for s in &created {
        assert_eq!(p.hub.get(&s.subscription_id).as_ref(), Some(s));
    }
    p.stop().await;
}
