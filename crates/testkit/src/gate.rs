//! A TCP gate in front of a real server (PostgreSQL, the registry): it forwards bytes both ways
//! until it is closed, then drops every open connection and refuses new ones until it is
//! opened again. Not a mock: everything that passes is answered by the real server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A gate; stops when dropped.
pub struct Gate {
    /// `127.0.0.1:<port>` it listens on.
    pub addr: String,
    open: Arc<AtomicBool>,
    closed_at: watch::Sender<u64>,
    generation: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Gate {
    /// A gate to `upstream` (`host:port`), open.
    pub async fn start(upstream: &str) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("gate port");
        let addr = listener.local_addr().expect("gate address").to_string();
        let open = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (closed_at, closed) = watch::channel(0u64);
        let upstream = upstream.to_owned();
        let task = {
            let (open, generation) = (open.clone(), generation.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(client); // refused: closed at once
                        continue;
                    }
                    let mine = generation.load(Ordering::SeqCst);
                    tokio::spawn(forward(client, upstream.clone(), closed.clone(), mine));
                }
            })
        };
        Gate {
            addr,
            open,
            closed_at,
            generation,
            task,
        }
    }

    /// Closes the gate: open connections are dropped, new ones refused.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        let next = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.closed_at.send(next);
    }

    /// Opens it again.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways until either side ends or the gate closes after this connection opened.
async fn forward(
    mut client: TcpStream,
    upstream: String,
    mut closed: watch::Receiver<u64>,
    mine: u64,
) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = closed.wait_for(|&generation| generation > mine) => {}
    }
}
