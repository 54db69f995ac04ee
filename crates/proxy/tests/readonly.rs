//! The store's file system is read-only when the producer starts (a real tmpfs remounted
//! read-only): the producer refuses to start with an error naming the store and the cause,
//! nothing stored is damaged, and it starts with every subscription once the file system is
//! writable again. (A file system cannot be remounted read-only under a running producer: Linux
//! refuses while the database file is open for writing, so that case cannot happen short of an
//! emergency remount; a full disk, tests/faults.rs, is the running case.)

mod common;

use std::process::Command;

use common::*;

fn mount(args: &[&str], dir: &std::path::Path) -> bool {
    Command::new("mount")
        .args(args)
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_read_only_store_is_a_clear_start_error_and_nothing_is_lost() {
    if !root_or_skip(
        "a_read_only_store_is_a_clear_start_error_and_nothing_is_lost",
        "needs root to mount a tmpfs",
    ) {
        return;
    }
    let fs = Tmpfs(tempfile::tempdir().unwrap());
    assert!(
        mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], fs.0.path()),
        "mount tmpfs"
    );
    let store = fs.0.path().join("store");
    let p = producer(&store).await;
    let c = Consumer::start(Behaviour::Ok).await;
    let mut created = Vec::new();
    for i in 0..3 {
        let resp = subscribe(&p, &lock_state(), &format!("{}?n={i}", c.url)).await;
        assert_eq!(resp.status(), 201);
        created.push(resp.json::<oran_api::SubscriptionInfo>().await.unwrap());
    }

    p.stop().await;

    assert!(
        mount(&["-o", "remount,ro"], fs.0.path()),
        "remount read-only"
    );
    let err = proxy::Producer::start(config(&store, fast_delivery()))
        .await
        .err()
        .expect("a read-only store cannot be opened for writing");
    let text = err.to_string();
    assert!(
        text.contains("subscriptions.redb") && text.contains("Read-only file system"),
        "{text}"
    );

    assert!(
        mount(&["-o", "remount,rw"], fs.0.path()),
        "remount read-write"
    );
    let p = producer(&store).await;
    assert_eq!(p.hub.len(), 3);
    for s in &created {
        assert_eq!(p.hub.get(&s.subscription_id).as_ref(), Some(s));
    }
    let resp = subscribe(&p, &lock_state(), &format!("{}?n=rw", c.url)).await;
    assert_eq!(resp.status(), 201);
    p.stop().await;
}
