//! A TCP proxy in front of the real Prometheus that fails on cue: once a request containing a
//! pattern arrives (`kube_pod_container_info`: discovery;
//! `container_memory_working_set_bytes`: the recommendation data), it closes every connection and refuses what follows, or holds the request without
//! an answer. Not a mock: every request it lets through is answered by Prometheus.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does once a request contains the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection, and every later one at once: the datasource went down.
    Down,
    /// Never answer that request (nor any later one): the datasource hangs.
    Hang,
}

#[derive(Debug)]
struct State {
    pattern: &'static str,
    fault: Fault,
    tripped: bool,
}

/// A proxy; stops when dropped.
pub struct Proxy {
    /// Its base URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy to `upstream` (`http://host:port`) that fails with `fault` from the first
    /// request containing `pattern` on.
    pub async fn start(upstream: &str, pattern: &'static str, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let state = Arc::new(Mutex::new(State {
            pattern,
            fault,
            tripped: false,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), shared.clone()));
            }
        });
        Proxy { url, state, task }
    }

    /// Whether the fault has happened.
    pub fn tripped(&self) -> bool {
        self.state.lock().unwrap().tripped
    }
}

async fn serve(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let check = |chunk: &[u8]| {
        let mut s = state.lock().unwrap();
        if !s.tripped && String::from_utf8_lossy(chunk).contains(s.pattern) {
            s.tripped = true;
        }
        s.tripped.then_some(s.fault)
    };
    if check(b"") == Some(Fault::Down) {
        return; // refused: closed at once
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.into_split();
    let upward = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            match check(&buf[..n]) {
                Some(Fault::Down) => return,
                Some(Fault::Hang) => std::future::pending::<()>().await,
                None => {
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let downward = tokio::io::copy(&mut from_server, &mut to_client);
    // Whichever side ends first ends the connection (dropping both halves closes it).
    tokio::select! {
        () = upward => {}
        _ = downward => {}
    }
}
