//! Where the extension protocol runs: a UNIX socket on Linux and macOS, a named pipe on
//! Windows (`\\.\pipe\osquery.em`, and `\\.\pipe\osquery.em.<uuid>` for an extension, as
//! osquery names them). Both give a [`Stream`] whose every read and write is limited by a
//! timeout, clonable into a reader and a writer half; a [`Listener`] accepts them. The rules
//! above them are the same on every platform: one caller per connection, and a connection
//! that failed (a timeout included) is dropped, never reused.

use std::{io, path::Path, time::Duration};

#[cfg(windows)]
pub use crate::pipe::{PipeListener as Inner, PipeStream as Stream};
#[cfg(unix)]
pub use std::os::unix::net::UnixStream as Stream;

/// A connection to `path`, every read and write limited to `timeout`.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<Stream> {
    let timeout = Some(timeout.max(Duration::from_millis(10)));
    #[cfg(unix)]
    {
        let s = Stream::connect(path)?;
        s.set_read_timeout(timeout)?;
        s.set_write_timeout(timeout)?;
        Ok(s)
    }
    #[cfg(windows)]
    {
        Stream::connect(path, timeout)
    }
}

/// A listener at `path`, accepting connections.
pub struct Listener {
    #[cfg(unix)]
    inner: std::os::unix::net::UnixListener,
    #[cfg(windows)]
    inner: Inner,
}

impl Listener {
    /// Listens at `path`. On UNIX a stale socket of that name is replaced and the socket is
    /// made mode 0600 (only its owner may connect); on Windows the first instance of the
    /// pipe is created (another process listening there is an error).
    pub fn bind(path: &Path) -> io::Result<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                std::fs::remove_file(path)?;
            }
            let inner = std::os::unix::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            Ok(Self { inner })
        }
        #[cfg(windows)]
        {
            Ok(Self {
                inner: Inner::bind(path)?,
            })
        }
    }

    /// The next connection (blocking; its reads and writes have no timeout).
    pub fn accept(&self) -> io::Result<Stream> {
        #[cfg(unix)]
        {
            self.inner.accept().map(|(s, _)| s)
        }
        #[cfg(windows)]
        {
            self.inner.accept()
        }
    }

    /// Removes what [`Listener::bind`] made (the socket file; nothing on Windows).
    pub fn remove(path: &Path) {
        #[cfg(unix)]
        {
            let _ = std::fs::remove_file(path);
        }
        #[cfg(windows)]
        {
            let _ = path;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        path::PathBuf,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use thrift::server::TProcessor as _;

    use super::*;
    use crate::{
        client,
        osquery::{
            ExtensionPluginRequest, ExtensionResponse, ExtensionStatus, ExtensionSyncHandler,
            ExtensionSyncProcessor, TExtensionSyncClient as _,
        },
    };

    /// A path for a listener of this test: a socket in a fresh folder, or a pipe name.
    fn place(name: &str) -> (PathBuf, Option<PathBuf>) {
        #[cfg(unix)]
        {
            let dir =
                std::env::temp_dir().join(format!("osprey-sdk-{name}-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            (dir.join("em"), Some(dir))
        }
        #[cfg(windows)]
        {
            (
                PathBuf::from(format!(
                    r"\\.\pipe\osprey-sdk-{name}-{}",
                    std::process::id()
                )),
                None,
            )
        }
    }

    struct Counting(Arc<AtomicUsize>);

    impl ExtensionSyncHandler for Counting {
        fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
            Ok(ExtensionStatus::default())
        }
        fn handle_call(
            &self,
            registry: String,
            item: String,
            _: ExtensionPluginRequest,
        ) -> thrift::Result<ExtensionResponse> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(ExtensionResponse {
                status: Some(ExtensionStatus {
                    code: Some(0),
                    message: Some(format!("{registry}/{item}/{n}")),
                    uuid: None,
                }),
                response: Some(Vec::new()),
            })
        }
        fn handle_shutdown(&self) -> thrift::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn thrift_calls_cross_the_transport_and_a_silent_peer_times_out() {
        let (path, dir) = place("calls");
        let listener = Listener::bind(&path).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let served = calls.clone();
        std::thread::spawn(move || {
            // First connection: answered, one request at a time. Second: never answered.
            let s = listener.accept().unwrap();
            let (mut i, mut o) =
                client::protocols(s.try_clone().unwrap(), s, crate::wire::REQUEST_MAX);
            let p = ExtensionSyncProcessor::new(Counting(served));
            while p.process(&mut i, &mut o).is_ok() {}
            let _silent = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(2));
        });
        let mut c = client::extension(&path, Duration::from_secs(5)).unwrap();
        for n in 0..3 {
            let r = c
                .call("table".into(), "t".into(), ExtensionPluginRequest::new())
                .unwrap();
            assert_eq!(r.status.unwrap().message.unwrap(), format!("table/t/{n}"));
        }
        drop(c);
        let mut c = client::extension(&path, Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        assert!(c.ping().is_err());
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
