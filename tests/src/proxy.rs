//! A fault-injecting TCP proxy for real-process failover tests, owned by the test process.
//!
//! Put a `Proxy` in front of each address a master is reached on (the ports its peers,
//! workers and clients dial) and `cut()` it to cut that master off from its peers and
//! workers, `heal()` it to let them reconnect: a network partition between real OS
//! processes without root, iptables or network namespaces. Because gRPC/HTTP2 keeps
//! long-lived connections, refusing new connections alone would partition nothing, so a
//! cut closes every open connection through the proxy, on both sides, before `cut()`
//! returns; while cut, new connections are accepted and closed at once.
//!
//! Must not: alter, reorder or drop bytes of a connection it forwards (both directions
//! are forwarded verbatim, half-close included; `set_delay` only delays), connect
//! anywhere but the one target it was given or listen anywhere but 127.0.0.1, need its
//! caller to be async (it runs its own tokio runtime), or outlive its owner: dropping it
//! closes the listener and every connection.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

/// How long `cut()` and `drop` wait for the connections they abort to be closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest chunk read from one side before it is written to the other.
const CHUNK: usize = 64 * 1024;

/// A TCP proxy on 127.0.0.1 forwarding every connection to one target, which can be cut
/// (all traffic stops, open connections are closed) and healed. See the module docs.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// `Some` until drop.
    runtime: Option<Runtime>,
}

/// State shared by the `Proxy` handle and the tasks on its runtime.
struct Shared {
    target: String,
    state: Mutex<State>,
    /// Signalled whenever a connection task is dropped (finished or aborted).
    closed: Condvar,
    accepted: AtomicU64,
    forwarded: AtomicU64,
    delay_nanos: AtomicU64,
}

struct State {
    cut: bool,
    stopping: bool,
    next_id: u64,
    /// Every connection task not yet dropped. A task is inserted under the same lock that
    /// `cut()` takes to set `cut` and abort them all, so none can slip past a cut.
    open: HashMap<u64, AbortHandle>,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards every accepted connection to `target`
    /// (e.g. "127.0.0.1:4567"), which is connected to afresh for each connection.
    pub fn start(target: &str) -> io::Result<Proxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hearth-proxy")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared {
            target: target.to_string(),
            state: Mutex::new(State {
                cut: false,
                stopping: false,
                next_id: 0,
                open: HashMap::new(),
            }),
            closed: Condvar::new(),
            accepted: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            delay_nanos: AtomicU64::new(0),
        });
        runtime.spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// The address clients should connect to ("127.0.0.1:PORT").
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The address every connection is forwarded to, as given to `start`.
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// Cuts the proxy: from now on new connections are accepted and closed at once, and
    /// every open connection is closed on both sides before this returns. Nothing passes
    /// until `heal()`. Cutting a cut proxy does nothing more.
    ///
    /// Panics if open connections are still not closed after 5 s (a bug in the proxy).
    pub fn cut(&self) {
        self.shared.lock().cut = true;
        if let Err(still_open) = self.shared.close_all() {
            panic!(
                "proxy {} -> {}: {still_open} connections still open {CLOSE_TIMEOUT:?} after cut",
                self.addr, self.shared.target
            );
        }
    }

    /// Heals the proxy: new connections are forwarded again. Connections closed by the
    /// cut stay closed; clients have to reconnect.
    pub fn heal(&self) {
        self.shared.lock().cut = false;
    }

    /// Whether the proxy is currently cut.
    pub fn is_cut(&self) -> bool {
        self.shared.lock().cut
    }

    /// Number of connections accepted so far, including those closed at once because
    /// the proxy was cut (see `forwarded()` for only those passed on).
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Number of connections accepted while not cut and handed on to be forwarded to
    /// the target (whether or not the target then accepted them).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Adds `d` of latency before each chunk is forwarded, in both directions, on open
    /// and new connections alike. `Duration::ZERO` removes it. Bytes are never reordered.
    pub fn set_delay(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos.store(nanos, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    /// Stops accepting, closes every connection and the listener, and stops the runtime.
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        let _ = self.shared.close_all();
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Blocking to wait is not allowed inside an async context.
                runtime.shutdown_background();
            } else {
                // Drops the accept loop (closing the listener) before returning.
                runtime.shutdown_timeout(CLOSE_TIMEOUT);
            }
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("cut", &self.is_cut())
            .finish()
    }
}

impl Shared {
    /// The state, even if a thread panicked while holding the lock (nothing it guards
    /// can be left half-updated).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::SeqCst))
    }

    /// Aborts every open connection task and waits until all have been dropped, which
    /// closes their sockets. `Err` holds how many were still open after `CLOSE_TIMEOUT`.
    /// Callers set `cut` or `stopping` first, so no new connection can be registered.
    fn close_all(&self) -> Result<(), usize> {
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut state = self.lock();
        for handle in state.open.values() {
            handle.abort();
        }
        while !state.open.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return Err(state.open.len());
            }
            state = self
                .closed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors or the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let mut state = shared.lock();
        if state.cut || state.stopping {
            drop(state);
            drop(client);
            continue;
        }
        let id = state.next_id;
        state.next_id += 1;
        let task = Tracked {
            future: Box::pin(forward(client, shared.clone())),
            _registration: Registration {
                id,
                shared: shared.clone(),
            },
        };
        // The task deregisters itself when dropped, which takes this lock, so its
        // removal cannot come before this insertion.
        let handle = tokio::spawn(task);
        state.open.insert(id, handle.abort_handle());
        shared.forwarded.fetch_add(1, Ordering::SeqCst);
    }
}

/// One connection: connects to the target and forwards both directions until both have
/// been closed, or either fails (then both sockets are closed).
async fn forward(mut client: TcpStream, shared: Arc<Shared>) {
    let Ok(mut upstream) = TcpStream::connect(shared.target.as_str()).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let _ = tokio::try_join!(
        pump(client_read, upstream_write, &shared),
        pump(upstream_read, client_write, &shared),
    );
}

/// Copies `from` to `to` chunk by chunk; on EOF shuts down `to`'s write side (passing a
/// half-close on) and returns, leaving the other direction running.
async fn pump<R, W>(mut from: R, mut to: W, shared: &Shared) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        let delay = shared.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// A connection task's future with its registration. Fields drop in order, so the
/// sockets owned by `future` are closed before the registration is removed: once
/// `open` is empty, every connection is closed.
struct Tracked {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
    _registration: Registration,
}

impl Future for Tracked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

struct Registration {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().open.remove(&self.id);
        self.shared.closed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, TcpStream as StdStream};
    use std::sync::mpsc;

    /// Longest any single wait in these tests may take.
    const DEADLINE: Duration = Duration::from_secs(5);

    /// A server on 127.0.0.1:0 running `handler` on each connection, on its own runtime
    /// (dropped, with its connections, when the server is).
    struct Server {
        addr: String,
        _runtime: Runtime,
    }

    impl Server {
        fn start<F, Fut>(handler: F) -> Server
        where
            F: Fn(TcpStream) -> Fut + Send + 'static,
            Fut: Future<Output = ()> + Send + 'static,
        {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            runtime.spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(handler(stream));
                }
            });
            Server {
                addr,
                _runtime: runtime,
            }
        }

        /// Writes back whatever it reads; closes its write side once the client closed its.
        fn echo() -> Server {
            Server::start(|mut stream: TcpStream| async move {
                let _ = stream.set_nodelay(true);
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            })
        }
    }

    fn connect(addr: &str) -> StdStream {
        let s = StdStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.set_write_timeout(Some(DEADLINE)).unwrap();
        s
    }

    fn round_trip(s: &mut StdStream, msg: &[u8]) {
        s.write_all(msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }

    fn read_to_end(s: &mut StdStream) -> Vec<u8> {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    }

    /// Deterministic bytes that are not all alike (xorshift), to catch corruption.
    fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Panics unless a read on `s` gives EOF or an error (reset) within `DEADLINE`.
    fn assert_closed(s: &mut StdStream, what: &str) {
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("{what}: read {n} bytes, expected the connection closed"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: still open after {DEADLINE:?}")
            }
            Err(_) => {}
        }
    }

    /// Panics unless a new connection to `addr` gets nothing back for what it sends.
    fn assert_no_echo(addr: &str, what: &str) {
        let Ok(mut s) = StdStream::connect(addr) else {
            return; // refused: nothing passed
        };
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        // The proxy may have closed it already, so the write may fail: fine.
        let _ = s.write_all(b"anyone there?");
        assert_closed(&mut s, what);
    }

    #[test]
    fn data_passes_both_ways_uncorrupted() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        assert_eq!(proxy.target(), echo.addr);
        assert!(proxy.addr().starts_with("127.0.0.1:"));
        let mut s = connect(&proxy.addr());
        for i in 0..100u32 {
            round_trip(&mut s, format!("ping {i}").as_bytes());
        }
        // A large stream, written while it is read back so neither side's buffers fill.
        let data = pattern(4 << 20, 7);
        let mut writer = s.try_clone().unwrap();
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let back = read_to_end(&mut s);
        t.join().unwrap();
        assert!(back == data, "echoed bytes differ from those sent");
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.forwarded(), 1);
    }

    #[test]
    fn concurrent_connections_do_not_mix() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let addr = proxy.addr();
                std::thread::spawn(move || {
                    let mut s = connect(&addr);
                    let data = pattern(256 << 10, i + 1);
                    let mut writer = s.try_clone().unwrap();
                    let sent = data.clone();
                    let w = std::thread::spawn(move || {
                        writer.write_all(&sent).unwrap();
                        writer.shutdown(Shutdown::Write).unwrap();
                    });
                    let back = read_to_end(&mut s);
                    w.join().unwrap();
                    assert!(back == data, "connection {i} got other bytes back");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(proxy.connections(), 8);
    }

    #[test]
    fn client_half_close_is_passed_on() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        let mut s = connect(&proxy.addr());
        let data = pattern(100 << 10, 3);
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // The echo server only ends its reply once it has seen our EOF through the proxy.
        assert!(read_to_end(&mut s) == data);
    }

    #[test]
    fn server_half_close_leaves_the_other_direction_open() {
        let (tx, rx) = mpsc::channel::<usize>();
        let tx = Mutex::new(tx);
        let server = Server::start(move |mut stream: TcpStream| {
            let tx = tx.lock().unwrap().clone();
            async move {
                stream.write_all(b"hello").await.unwrap();
                stream.shutdown().await.unwrap();
                let mut got = Vec::new();
                stream.read_to_end(&mut got).await.unwrap();
                tx.send(got.len()).unwrap();
            }
        });
        let proxy = Proxy::start(&server.addr).unwrap();
        let mut s = connect(&proxy.addr());
        assert_eq!(read_to_end(&mut s), b"hello");
        // Our side still reaches the server after its side closed.
        s.write_all(&pattern(100 << 10, 5)).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), 100 << 10);
    }

    #[test]
    fn cut_closes_open_connections_and_refuses_new_ones_until_heal() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        let mut a = connect(&proxy.addr());
        let mut b = connect(&proxy.addr());
        round_trip(&mut a, b"before a");
        round_trip(&mut b, b"before b");
        assert!(!proxy.is_cut());

        let start = Instant::now();
        proxy.cut();
        assert!(proxy.is_cut());
        assert_closed(&mut a, "open connection a after cut");
        assert_closed(&mut b, "open connection b after cut");
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "cut took {took:?} to close open connections"
        );

        assert_no_echo(&proxy.addr(), "new connection while cut");
        proxy.cut(); // idempotent
        assert_no_echo(&proxy.addr(), "new connection while cut twice");

        proxy.heal();
        assert!(!proxy.is_cut());
        let mut c = connect(&proxy.addr());
        round_trip(&mut c, b"after heal");
        assert_closed(&mut a, "connection a after heal");

        assert_eq!(proxy.connections(), 5); // a, b, two while cut, c
        assert_eq!(proxy.forwarded(), 3); // a, b, c
    }

    #[test]
    fn cut_closes_the_target_side_too() {
        let (tx, rx) = mpsc::channel::<&'static str>();
        let tx = Mutex::new(tx);
        let server = Server::start(move |mut stream: TcpStream| {
            let tx = tx.lock().unwrap().clone();
            async move {
                tx.send("connected").unwrap();
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                tx.send("closed").unwrap();
            }
        });
        let proxy = Proxy::start(&server.addr).unwrap();
        let _client = connect(&proxy.addr());
        assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "connected");
        proxy.cut();
        assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "closed");
    }

    #[test]
    fn cut_interrupts_a_stream_in_flight() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        let mut s = connect(&proxy.addr());
        let mut writer = s.try_clone().unwrap();
        // Writes until the cut makes writing fail.
        let w = std::thread::spawn(move || {
            let chunk = pattern(64 << 10, 9);
            while writer.write_all(&chunk).is_ok() {}
        });
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < 1 << 20 {
            got += s.read(&mut buf).unwrap();
        }
        proxy.cut();
        // Drain whatever was already in our receive buffer; then EOF or reset.
        let drained = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break false
                }
                Err(_) => break true,
            }
        };
        assert!(drained, "connection still open {DEADLINE:?} after cut");
        s.shutdown(Shutdown::Both).unwrap_or(());
        w.join().unwrap();
    }

    #[test]
    fn unreachable_target_closes_the_client() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = free.local_addr().unwrap().to_string();
        drop(free);
        let proxy = Proxy::start(&target).unwrap();
        let mut s = connect(&proxy.addr());
        assert_closed(&mut s, "connection to an unreachable target");
        assert_eq!(proxy.forwarded(), 1);
    }

    #[test]
    fn delay_slows_each_direction_and_can_be_removed() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        let mut s = connect(&proxy.addr());
        round_trip(&mut s, b"warm up");
        proxy.set_delay(Duration::from_millis(100));
        let start = Instant::now();
        round_trip(&mut s, b"slow");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "round trip took {took:?}"
        );
        proxy.set_delay(Duration::ZERO);
        round_trip(&mut s, b"fast again");
    }

    #[test]
    fn drop_closes_connections_and_listener() {
        let echo = Server::echo();
        let proxy = Proxy::start(&echo.addr).unwrap();
        let addr = proxy.addr();
        let mut s = connect(&addr);
        round_trip(&mut s, b"hi");
        drop(proxy);
        assert_closed(&mut s, "connection after the proxy was dropped");
        assert!(
            StdStream::connect(&addr).is_err(),
            "proxy still listening on {addr} after drop"
        );
    }

    #[test]
    fn can_be_used_and_dropped_inside_a_runtime() {
        let echo = Server::echo();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let proxy = Proxy::start(&echo.addr).unwrap();
            let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
            s.write_all(b"async").await.unwrap();
            let mut back = [0u8; 5];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"async");
            proxy.cut();
            let n = tokio::time::timeout(DEADLINE, s.read(&mut back))
                .await
                .expect("still open after cut")
                .unwrap_or(0);
            assert_eq!(n, 0);
            drop(proxy);
        });
    }
}
