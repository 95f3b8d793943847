//! A TCP proxy the tests put between a worker and RabbitMQ or Redis, to cut
//! the worker's connections and refuse new ones for a while, as a network
//! fault or a restart of the service would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `upstream`.
    pub async fn start(upstream: &str) -> Self {
        Self::start_on("127.0.0.1:0", upstream).await
    }

    /// Listens on `listen` (a service that comes up at a known address) and forwards to `upstream`.
    pub async fn start_on(listen: &str, upstream: &str) -> Self {
        let listener = TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let upstream = upstream.to_owned();
        let accept = tokio::spawn({
            let (down, links) = (down.clone(), links.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().await.push(link);
                }
            }
        });
        Self {
            addr,
            down,
            links,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`];
    /// returns how many live connections it cut.
    pub async fn cut(&self) -> usize {
        self.down.store(true, Ordering::SeqCst);
        let mut cut = 0;
        for link in self.links.lock().await.drain(..) {
            if !link.is_finished() {
                cut += 1;
            }
            link.abort();
        }
        cut
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
