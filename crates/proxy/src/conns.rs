//! Open connections by client address: the per-client cap, and room for newcomers. When every
//! slot is taken, a client address holding fewer connections than the biggest holder less one
//! gets one of that holder's: its connection idle the longest is asked to close (so a request in
//! progress is the last thing cut). Many addresses together therefore cannot keep a new client
//! out, only make the shares even.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::idle::Activity;

/// The open connections of every client address, in the order they came.
#[derive(Default)]
pub(crate) struct Clients {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_client: HashMap<IpAddr, VecDeque<Entry>>,
    next_id: u64,
}

struct Entry {
    id: u64,
    /// When it was accepted: its last activity until it is served.
    since: Instant,
    /// Its traffic, once served (after its TLS handshake).
    activity: Option<Arc<Activity>>,
    /// Whether it holds a slot (only then does closing it free one).
    holding: bool,
    evict: Arc<Notify>,
}

impl Entry {
    /// Its last traffic, or when it was accepted if it has had none. Not when it started being
    /// served: tasks start in any order, so two silent connections would rank by scheduling
    /// rather than by arrival.
    fn last_active(&self) -> Instant {
        self.activity
            .as_ref()
            .and_then(|a| a.last_traffic())
            .map_or(self.since, |t| t.max(self.since))
    }
}

impl Clients {
    /// How many connections `client` has open (or waiting for a slot).
    pub(crate) fn count(&self, client: IpAddr) -> usize {
        let inner = self.inner.lock().expect("clients lock");
        inner.by_client.get(&client).map_or(0, VecDeque::len)
    }

    /// Counts a new connection of `client` until the returned registration is dropped;
    /// `holding`: whether it holds a slot already (else [`Registration::holding`] says when).
    pub(crate) fn register(self: &Arc<Self>, client: IpAddr, holding: bool) -> Registration {
        let mut inner = self.inner.lock().expect("clients lock");
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = Arc::new(Notify::new());
        inner.by_client.entry(client).or_default().push_back(Entry {
            id,
            since: Instant::now(),
            activity: None,
            holding,
            evict: evict.clone(),
        });
        Registration {
            clients: self.clone(),
            client,
            id,
            evict,
        }
    }

    /// Makes room for `client`: if another address holds more connections than `client` plus
    /// one, that address's connection idle the longest among those holding a slot is asked to
    /// close (and is no longer counted). True if one was asked.
    pub(crate) fn make_room_for(&self, client: IpAddr) -> bool {
        let mut inner = self.inner.lock().expect("clients lock");
        let mine = inner.by_client.get(&client).map_or(0, VecDeque::len);
        let Some((&victim, _)) = inner
            .by_client
            .iter()
            .filter(|(c, conns)| {
                **c != client && conns.len() > mine + 1 && conns.iter().any(|e| e.holding)
            })
            .max_by_key(|(_, conns)| conns.len())
        else {
            return false;
        };
        let conns = inner.by_client.get_mut(&victim).expect("victim present");
        let idlest = conns
            .iter()
            .enumerate()
            .filter(|(_, e)| e.holding)
            .min_by_key(|(_, e)| e.last_active())
            .map(|(i, _)| i)
            .expect("a connection holding a slot");
        let entry = conns.remove(idlest).expect("index in range");
        if conns.is_empty() {
            inner.by_client.remove(&victim);
        }
        // A permit is stored if the connection is not waiting yet: the request is not lost.
        entry.evict.notify_one();
        tracing::debug!(%client, %victim, "connection closed to make room for another client");
        true
    }

    fn update(&self, client: IpAddr, id: u64, f: impl FnOnce(&mut Entry)) {
        let mut inner = self.inner.lock().expect("clients lock");
        if let Some(e) = inner
            .by_client
            .get_mut(&client)
            .and_then(|conns| conns.iter_mut().find(|e| e.id == id))
        {
            f(e);
        }
    }
}

/// One counted connection; uncounted when dropped.
pub(crate) struct Registration {
    clients: Arc<Clients>,
    client: IpAddr,
    id: u64,
    evict: Arc<Notify>,
}

impl Registration {
    /// The connection now holds a slot: it may be asked to make room.
    pub(crate) fn holding(&self) {
        self.clients
            .update(self.client, self.id, |e| e.holding = true);
    }

    /// The connection is being served with this activity tracker.
    pub(crate) fn serving(&self, activity: Arc<Activity>) {
        self.clients
            .update(self.client, self.id, |e| e.activity = Some(activity));
    }

    /// Resolves when the connection is asked to close to make room for another client.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.clients.inner.lock().expect("clients lock");
        if let Some(conns) = inner.by_client.get_mut(&self.client) {
            conns.retain(|e| e.id != self.id);
            if conns.is_empty() {
                inner.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    async fn asked(r: &Registration) -> bool {
        tokio::time::timeout(Duration::from_millis(100), r.evicted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_idlest_of_the_biggest_holder_makes_room_and_shares_even_out() {
        let clients = Arc::new(Clients::default());
        let a: Vec<_> = (0..4).map(|_| clients.register(ip(1), true)).collect();
        let b: Vec<_> = (0..2).map(|_| clients.register(ip(2), false)).collect();
        for r in &b {
            r.holding();
        }
        // a[1] has been quiet since it came; the others (even a[0], which came first) have had
        // traffic since.
        tokio::time::sleep(Duration::from_millis(5)).await;
        for i in [0, 2, 3] {
            let activity = Activity::new();
            activity.mark(true);
            a[i].serving(activity);
        }
        assert_eq!((clients.count(ip(1)), clients.count(ip(2))), (4, 2));
        // A newcomer: the biggest holder (4) loses its idlest.
        assert!(clients.make_room_for(ip(3)));
        assert!(
            asked(&a[1]).await,
            "the idlest connection is asked to close"
        );
        for i in [0, 2, 3] {
            assert!(!asked(&a[i]).await);
        }
        assert_eq!(clients.count(ip(1)), 3);
        let c = clients.register(ip(3), true);
        // 2 (b) against 3 (a): not more than one apart, so b cannot take from a; nor a from b.
        assert!(!clients.make_room_for(ip(2)));
        assert!(!clients.make_room_for(ip(1)));
        drop(b);
        drop(c);
        // Connections still waiting for a slot are never asked: closing one frees nothing.
        let waiting: Vec<_> = (0..5).map(|_| clients.register(ip(4), false)).collect();
        assert!(clients.make_room_for(ip(5)), "ip(1) holds 3 slots");
        assert_eq!(clients.count(ip(4)), 5);
        drop(waiting);
        drop(a);
        assert_eq!(clients.inner.lock().unwrap().by_client.len(), 0);
    }

    /// Silent connections rank by arrival, not by when their tasks began serving them (tasks
    /// start in any order under load): the first to arrive is the idlest.
    #[tokio::test]
    async fn silent_connections_rank_by_arrival_not_by_when_served() {
        let clients = Arc::new(Clients::default());
        let a: Vec<_> = (0..3).map(|_| clients.register(ip(1), true)).collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Served last to first, none has sent anything.
        for r in a.iter().rev() {
            r.serving(Activity::new());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(clients.make_room_for(ip(2)));
        assert!(asked(&a[0]).await, "the first to arrive is the idlest");
        assert!(!asked(&a[1]).await && !asked(&a[2]).await);
    }
}
