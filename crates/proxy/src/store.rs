//! The durable subscription store: an embedded, crash-safe database (redb) under `--store-path`.
//!
//! Every write is a redb transaction committed with `Durability::Immediate` (fsync'd) before the
//! caller's future resolves, so the API answers 201 only once the subscription is on disk. A single
//! writer thread takes every pending operation and commits them together (group commit): many
//! concurrent creations share one fsync. redb's copy-on-write commit means a `kill -9` at any
//! moment leaves the last committed state, never a file that fails to open.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use oran_api::SubscriptionInfo;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("subscriptions");
/// The database file inside the store directory.
pub const STORE_FILE: &str = "subscriptions.redb";
/// The most operations committed in one transaction.
const MAX_BATCH: usize = 512;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("subscription store {path}: {message}")]
pub struct StoreError {
    path: String,
    message: String,
}

impl StoreError {
    fn new(path: &Path, message: impl std::fmt::Display) -> Self {
        StoreError {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

enum Op {
    Put(Box<SubscriptionInfo>),
    Remove(Vec<String>),
    Clear,
    Close,
}

struct Request {
    op: Op,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the store's writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Request>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in directory `dir` and returns every stored subscription.
    pub fn open(dir: &Path) -> Result<(Store, Vec<SubscriptionInfo>), StoreError> {
        if !dir.is_dir() {
            // Only the last component is created (mode 0700, as the Go producer's store): a
            // mistyped path must not grow a tree of directories.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
                && !parent.is_dir()
            {
                return Err(StoreError::new(
                    dir,
                    format!(
                        "its parent directory {} does not exist (only the last directory is created)",
                        parent.display()
                    ),
                ));
            }
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| StoreError::new(dir, format!("cannot create directory: {e}")))?;
        }
        let path = dir.join(STORE_FILE);
        let db = open_db(&path).map_err(|e| StoreError::new(&path, format!("cannot open: {e}")))?;
        let loaded = load(&db).map_err(|e| StoreError::new(&path, format!("cannot load: {e}")))?;
        let (tx, rx) = mpsc::channel::<Request>();
        let thread_path = path.clone();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(db, rx, thread_path))
            .map_err(|e| StoreError::new(&path, format!("cannot start writer: {e}")))?;
        Ok((Store { tx, path }, loaded))
    }

    /// Stores `info` (keyed by its `SubscriptionId`) durably.
    pub async fn put(&self, info: SubscriptionInfo) -> Result<(), StoreError> {
        self.submit(Op::Put(Box::new(info))).await
    }

    /// Removes the subscriptions with these ids durably (unknown ids are ignored).
    pub async fn remove(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.submit(Op::Remove(ids)).await
    }

    /// Removes every subscription durably.
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.submit(Op::Clear).await
    }

    /// Closes the database (after every operation submitted before) and releases its lock, so
    /// that the same directory can be opened again in this process. Later operations fail.
    pub async fn close(&self) {
        let _ = self.submit(Op::Close).await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit(&self, op: Op) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { op, done })
            .map_err(|_| StoreError::new(&self.path, "writer thread has stopped"))?;
        wait.await
            .map_err(|_| StoreError::new(&self.path, "writer thread has stopped"))?
    }
}

fn load(db: &Database) -> Result<Vec<SubscriptionInfo>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(SUBSCRIPTIONS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in table.iter()? {
        let (key, value) = row?;
        match serde_json::from_slice::<SubscriptionInfo>(value.value()) {
            Ok(info) if info.missing_field().is_none() => out.push(info),
            Ok(_) | Err(_) => tracing::warn!(
                id = key.value(),
                "skipping a stored subscription that does not decode"
            ),
        }
    }
    Ok(out)
}

fn open_db(path: &Path) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(4 << 20).create(path)
}

fn writer(db: Database, rx: mpsc::Receiver<Request>, path: PathBuf) {
    let mut db = Some(db);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && !matches!(batch.last(), Some(r) if matches!(r.op, Op::Close))
        {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let close = batch.last().is_some_and(|r| matches!(r.op, Op::Close));
        // After a failed write redb refuses further writes until reopened; reopen (which also
        // recovers to the last committed state) before trying again.
        if db.is_none() {
            match open_db(&path) {
                Ok(d) => {
                    tracing::info!(path = %path.display(), "store reopened after a write failure");
                    db = Some(d);
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "store cannot be reopened")
                }
            }
        }
        let result = match &db {
            Some(d) => commit(d, &batch).map_err(|e| StoreError::new(&path, e)),
            None => Err(StoreError::new(
                &path,
                "the store could not be reopened after a write failure",
            )),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, ops = batch.len(), "store write failed");
            db = None;
        }
        if close {
            drop(db.take());
            for r in batch {
                let _ = r.done.send(result.clone());
            }
            // Anything submitted after the close fails: the receiver is dropped here.
            return;
        }
        for r in batch {
            let _ = r.done.send(result.clone());
        }
    }
}

fn commit(db: &Database, batch: &[Request]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(SUBSCRIPTIONS)?;
        for r in batch {
            match &r.op {
                Op::Put(info) => {
                    let bytes = serde_json::to_vec(info).expect("SubscriptionInfo serialises");
                    table.insert(info.subscription_id.as_str(), bytes.as_slice())?;
                }
                Op::Remove(ids) => {
                    for id in ids {
                        table.remove(id.as_str())?;
                    }
                }
                Op::Clear => {
                    table.retain(|_, _| false)?;
                }
                Op::Close => {}
            }
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str) -> SubscriptionInfo {
        SubscriptionInfo {
            resource_address: "/cluster/node/n1/sync".into(),
            endpoint_uri: format!("http://127.0.0.1:9/{id}"),
            subscription_id: id.into(),
            uri_location: format!("http://localhost:9043/x/{id}"),
        }
    }

    #[tokio::test]
    async fn survives_reopen_and_applies_ops_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, loaded) = Store::open(dir.path()).unwrap();
            assert!(loaded.is_empty());
            let puts: Vec<_> = (0..50).map(|i| store.put(sub(&format!("s{i}")))).collect();
            for p in puts {
                p.await.unwrap();
            }
            store
                .remove(vec!["s3".into(), "nope".into()])
                .await
                .unwrap();
            store.close().await;
            assert!(store.put(sub("late")).await.is_err());
        }
        let (store, mut loaded) = Store::open(dir.path()).unwrap();
        loaded.sort_by(|a, b| a.subscription_id.cmp(&b.subscription_id));
        assert_eq!(loaded.len(), 49);
        assert!(loaded.iter().all(|s| s.subscription_id != "s3"));
        assert_eq!(loaded[0], sub("s0"));
        store.clear().await.unwrap();
        store.close().await;
        let (_, loaded) = Store::open(dir.path()).unwrap();
        assert!(loaded.is_empty());
    }

    #[test]
    fn an_unusable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file).err().expect("a file is not a directory");
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
