//! A fault-injecting TCP proxy for partition tests.
//!
//! Each node advertises the address of its proxy to the other nodes, so all Raft and
//! forwarding traffic to node k passes through proxy k. Nodes open their outbound
//! connections from their own address (`raft.bind_ip`), so a proxy knows which node a
//! connection comes from, and a partition is a set of source addresses the proxy
//! refuses — new connections are closed at once, established ones are cut. Clients of
//! the API connect to nodes directly and are not affected: a test can still talk to a
//! node on the minority side and watch it fail to commit.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Shared {
    blocked: BTreeSet<IpAddr>,
    /// Established connections by source address, each with a cut switch.
    conns: HashMap<u64, (IpAddr, watch::Sender<bool>)>,
    next: u64,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    pub listen: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(listen: SocketAddr, target: SocketAddr) -> std::io::Result<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let shared = Arc::new(Mutex::new(Shared {
            blocked: BTreeSet::new(),
            conns: HashMap::new(),
            next: 0,
        }));
        let listener = runtime.block_on(TcpListener::bind(listen))?;
        let s = shared.clone();
        runtime.spawn(async move {
            loop {
                let Ok((inbound, from)) = listener.accept().await else {
                    continue;
                };
                let (id, mut cut) = {
                    let mut g = s.lock().unwrap();
                    if g.blocked.contains(&from.ip()) {
                        continue; // dropping `inbound` closes it
                    }
                    g.next += 1;
                    let id = g.next;
                    let (tx, rx) = watch::channel(false);
                    g.conns.insert(id, (from.ip(), tx));
                    (id, rx)
                };
                let s2 = s.clone();
                tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        let (mut ri, mut wi) = inbound.into_split();
                        let (mut ro, mut wo) = outbound.into_split();
                        tokio::select! {
                            _ = tokio::io::copy(&mut ri, &mut wo) => {}
                            _ = tokio::io::copy(&mut ro, &mut wi) => {}
                            _ = cut.wait_for(|c| *c) => {}
                        }
                    }
                    s2.lock().unwrap().conns.remove(&id);
                });
            }
        });
        Ok(Proxy {
            listen,
            shared,
            _runtime: runtime,
        })
    }

    /// Refuses connections from `ips` (and cuts the ones already open); an empty set
    /// heals.
    pub fn block(&self, ips: &[IpAddr]) {
        let mut g = self.shared.lock().unwrap();
        g.blocked = ips.iter().copied().collect();
        let blocked = g.blocked.clone();
        for (ip, cut) in g.conns.values() {
            if blocked.contains(ip) {
                let _ = cut.send(true);
            }
        }
    }
}
