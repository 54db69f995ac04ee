//! UNIX socket paths that this process binds: it replaces a path only when that path is a socket
//! nobody answers on, and at exit removes only the socket it bound itself (same device and
//! inode). Anything else at the path (a regular file, a symlink, a directory, a device) is an
//! error that names the path, and nothing is touched: a mistyped `--socket /etc/passwd` run as
//! root must not delete a system file.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

/// A socket file this process bound; [`BoundPath::remove`] removes it only while it is still
/// that socket.
#[derive(Debug, Clone)]
pub struct BoundPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundPath {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket if the path is still the one this process bound; true if removed.
    /// Something else put there meanwhile (a file, another process's socket) is left alone.
    pub fn remove(&self) -> bool {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino => {
                std::fs::remove_file(&self.path).is_ok()
            }
            Ok(_) => {
                tracing::warn!(
                    path = %self.path.display(),
                    "the socket this process bound was replaced by something else: left in place"
                );
                false
            }
            Err(_) => false,
        }
    }
}

/// What kind of file is at a path, in words.
fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_file() {
        "a regular file"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else if ft.is_fifo() {
        "a named pipe"
    } else {
        "not a socket"
    }
}

/// Binds a listening socket at `path`. A socket file that nobody answers on (left by a process
/// that died) is replaced; a socket somebody answers on, or any other kind of file, is an error
/// saying what is there. The parent directory must exist.
pub async fn bind_listener(path: &Path) -> Result<(UnixListener, BoundPath), String> {
    clear_stale(path).await?;
    let listener = UnixListener::bind(path).map_err(|e| e.to_string())?;
    let bound = bound_path(path).map_err(|e| format!("bound, but cannot stat it: {e}"))?;
    Ok((listener, bound))
}

/// Makes `path` free for a new socket: nothing there, or a stale socket (removed). Anything else
/// is an error and is left untouched.
pub async fn clear_stale(path: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot inspect it: {e}")),
    };
    let ft = meta.file_type();
    if !ft.is_socket() {
        return Err(format!(
            "it exists and is {}, not a socket; refusing to replace it (remove it yourself or \
             give another path)",
            kind(ft)
        ));
    }
    let live = tokio::time::timeout(Duration::from_millis(200), UnixStream::connect(path))
        .await
        // No answer within the time: something holds it (a full backlog); not stale.
        .map_or(true, |r| r.is_ok());
    if live {
        return Err("another process is already listening on it (a second producer?)".into());
    }
    std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket: {e}"))
}

/// The identity of the socket just bound at `path`.
pub fn bound_path(path: &Path) -> io::Result<BoundPath> {
    let m = std::fs::symlink_metadata(path)?;
    Ok(BoundPath {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_stale_socket_is_replaced_and_only_our_own_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);

        // A regular file, a symlink to a file, a directory: errors, untouched.
        std::fs::write(p("file"), "precious").unwrap();
        let e = bind_listener(&p("file")).await.unwrap_err();
        assert!(e.contains("a regular file"), "{e}");
        assert_eq!(std::fs::read_to_string(p("file")).unwrap(), "precious");
        std::os::unix::fs::symlink(p("file"), p("link")).unwrap();
        let e = bind_listener(&p("link")).await.unwrap_err();
        assert!(e.contains("a symbolic link"), "{e}");
        assert!(std::fs::symlink_metadata(p("link")).unwrap().is_symlink());
        std::fs::create_dir(p("dir")).unwrap();
        let e = bind_listener(&p("dir")).await.unwrap_err();
        assert!(e.contains("a directory"), "{e}");
        assert!(p("dir").is_dir());

        // A live socket: an error, still served.
        let (live, _bound) = bind_listener(&p("live")).await.unwrap();
        let e = bind_listener(&p("live")).await.unwrap_err();
        assert!(e.contains("already listening"), "{e}");
        assert!(UnixStream::connect(p("live")).await.is_ok());
        drop(live);

        // The socket now has nobody behind it: stale, replaced.
        let (_again, bound) = bind_listener(&p("live")).await.unwrap();
        assert!(UnixStream::connect(p("live")).await.is_ok());

        // At exit, something else put in its place is left alone; our own socket goes.
        std::fs::remove_file(p("live")).unwrap();
        std::fs::write(p("live"), "someone else's").unwrap();
        assert!(!bound.remove());
        assert_eq!(
            std::fs::read_to_string(p("live")).unwrap(),
            "someone else's"
        );
        let (_s, own) = bind_listener(&p("own")).await.unwrap();
        assert!(own.remove());
        assert!(!p("own").exists());
    }
}
