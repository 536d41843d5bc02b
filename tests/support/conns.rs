//! What the TLS server and the proxies share: a stop flag, the connections to shut down and
//! the threads to join when the server is dropped.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

#[derive(Default)]
pub struct Conns {
    stop: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Conns {
    /// True once the server is being dropped.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Keeps a handle on `s` so that stopping can shut it down (waking a blocked read).
    pub fn track(&self, s: &TcpStream) {
        if let Ok(c) = s.try_clone() {
            self.streams.lock().unwrap().push(c);
        }
    }

    /// Runs `f` on a named thread that stopping joins.
    pub fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        let h = thread::Builder::new().name(name.into()).spawn(f).unwrap();
        self.threads.lock().unwrap().push(h);
    }

    /// Stops the server listening on `addr`: wakes its `acceptor` (blocked in `accept`) with a
    /// connection of our own and joins it, then shuts every tracked connection down and joins
    /// every thread, again until none is left (a thread may start another meanwhile).
    pub fn shut_down(&self, addr: SocketAddr, acceptor: Option<JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(addr);
        if let Some(h) = acceptor {
            let _ = h.join();
        }
        loop {
            for s in self.streams.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
            let threads: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
            if threads.is_empty() {
                return;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// A test server's shared state, which holds its [`Conns`].
pub trait Server: Send + Sync + 'static {
    fn conns(&self) -> &Conns;
}

/// Accepts connections on `listener` (thread `NAME-accept`) until the server stops, running
/// `handle` for each on a tracked thread `NAME-conn`. Returns the acceptor, for `shut_down`.
pub fn accept<T: Server>(
    owner: &Arc<T>,
    listener: TcpListener,
    name: &str,
    handle: impl Fn(TcpStream, &Arc<T>) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let owner = owner.clone();
    let handle = Arc::new(handle);
    let conn_name = format!("{name}-conn");
    thread::Builder::new()
        .name(format!("{name}-accept"))
        .spawn(move || {
            for stream in listener.incoming() {
                if owner.conns().stopping() {
                    return;
                }
                let Ok(stream) = stream else { continue };
                owner.conns().track(&stream);
                let (owner2, handle) = (owner.clone(), handle.clone());
                owner.conns().spawn(&conn_name, move || handle(stream, &owner2));
            }
        })
        .unwrap()
}
