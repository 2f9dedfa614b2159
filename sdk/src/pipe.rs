//! Windows named pipes as blocking streams with timeouts, for the Thrift transports (which
//! are synchronous). Pipes are tokio's (`tokio::net::windows::named_pipe`: safe, overlapped
//! I/O), driven by one small runtime of this module; each read or write waits at most the
//! stream's timeout and fails with `TimedOut` after it. A stream and its clones share one
//! pipe: Thrift uses a connection one request at a time (write, then read), so the halves
//! never wait on each other.

use std::{
    io::{self, Read, Write},
    path::Path,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::windows::named_pipe::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions},
    runtime::Runtime,
};

/// The runtime that drives every pipe of the process (one worker thread).
fn runtime() -> io::Result<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("osprey-pipes")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| io::Error::other(e.clone()))
}

enum Pipe {
    Client(NamedPipeClient),
    Server(NamedPipeServer),
}

/// One end of a named pipe connection.
#[derive(Clone)]
pub struct PipeStream {
    pipe: Arc<Mutex<Pipe>>,
    timeout: Option<Duration>,
}

/// Waits for `f` at most `timeout`.
async fn limited<T>(
    timeout: Option<Duration>,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout {
        None => f.await,
        Some(d) => tokio::time::timeout(d, f)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "named pipe: timed out"))?,
    }
}

impl PipeStream {
    /// Connects to the pipe `name` (`\\.\pipe\...`), waiting up to `timeout` for a free
    /// instance; reads and writes are limited to `timeout` too.
    pub fn connect(name: &Path, timeout: Option<Duration>) -> io::Result<Self> {
        let rt = runtime()?;
        let name = name.as_os_str().to_owned();
        let client = rt.block_on(limited(timeout, async move {
            loop {
                match ClientOptions::new().open(&name) {
                    Ok(c) => return Ok(c),
                    // ERROR_PIPE_BUSY: every instance is taken; a new one comes soon.
                    Err(e) if e.raw_os_error() == Some(231) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }))?;
        Ok(Self {
            pipe: Arc::new(Mutex::new(Pipe::Client(client))),
            timeout,
        })
    }

    /// A second handle on the same connection (the reader or the writer half).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pipe> {
        self.pipe.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Read for PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rt = runtime()?;
        let timeout = self.timeout;
        let mut pipe = self.lock();
        rt.block_on(limited(timeout, async {
            match &mut *pipe {
                Pipe::Client(c) => c.read(buf).await,
                Pipe::Server(s) => s.read(buf).await,
            }
        }))
    }
}

impl Write for PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let rt = runtime()?;
        let timeout = self.timeout;
        let mut pipe = self.lock();
        rt.block_on(limited(timeout, async {
            match &mut *pipe {
                Pipe::Client(c) => c.write(buf).await,
                Pipe::Server(s) => s.write(buf).await,
            }
        }))
    }

    fn flush(&mut self) -> io::Result<()> {
        let rt = runtime()?;
        let timeout = self.timeout;
        let mut pipe = self.lock();
        rt.block_on(limited(timeout, async {
            match &mut *pipe {
                Pipe::Client(c) => c.flush().await,
                Pipe::Server(s) => s.flush().await,
            }
        }))
    }
}

/// The server side of a pipe name: one instance waiting for a client at a time.
pub struct PipeListener {
    name: std::ffi::OsString,
    next: Mutex<Option<NamedPipeServer>>,
}

impl PipeListener {
    /// Creates the first instance of `name`: an error if another process listens there.
    pub fn bind(name: &Path) -> io::Result<Self> {
        let rt = runtime()?;
        let _guard = rt.enter();
        let first = ServerOptions::new()
            .first_pipe_instance(true)
            .create(name.as_os_str())?;
        Ok(Self {
            name: name.as_os_str().to_owned(),
            next: Mutex::new(Some(first)),
        })
    }

    /// Waits for a client on the current instance, makes the next one, and returns the
    /// connection (no timeout: a server waits for requests).
    pub fn accept(&self) -> io::Result<PipeStream> {
        let rt = runtime()?;
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let server = match next.take() {
            Some(s) => s,
            None => {
                let _guard = rt.enter();
                ServerOptions::new().create(&self.name)?
            }
        };
        rt.block_on(server.connect())?;
        {
            let _guard = rt.enter();
            *next = Some(ServerOptions::new().create(&self.name)?);
        }
        Ok(PipeStream {
            pipe: Arc::new(Mutex::new(Pipe::Server(server))),
            timeout: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn name(n: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!(
            r"\\.\pipe\osprey-sdk-test-{n}-{}",
            std::process::id()
        ))
    }

    #[test]
    fn a_pipe_carries_bytes_both_ways_and_a_silent_peer_times_out() {
        let path = name("echo");
        let listener = PipeListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let mut s = listener.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            s.flush().unwrap();
            // Silent until the client gave up.
            std::thread::sleep(Duration::from_millis(800));
        });
        let mut c = PipeStream::connect(&path, Some(Duration::from_millis(300))).unwrap();
        let mut w = c.try_clone().unwrap();
        w.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        let e = c.read(&mut b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        server.join().unwrap();
    }

    #[test]
    fn a_pipe_nobody_listens_on_is_an_error() {
        // (A second listener on one name is refused by Windows, FILE_FLAG_FIRST_PIPE_INSTANCE;
        // wine does not implement that flag, so it is not asserted here.)
        assert!(PipeStream::connect(&name("nobody"), Some(Duration::from_millis(100))).is_err());
    }
}
