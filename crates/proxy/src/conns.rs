//! Open connections by client address: the per-client cap, and room for newcomers. When every
//! slot is taken, a client address holding fewer connections than the biggest holder less one
//! gets one of that holder's: its oldest connection is asked to close. So many addresses
//! together cannot keep a new client out, only make the shares even.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The open connections of every client address, oldest first.
#[derive(Default)]
pub(crate) struct Clients {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_client: HashMap<IpAddr, VecDeque<(u64, Arc<Notify>)>>,
    next_id: u64,
}

impl Clients {
    /// How many connections `client` has open.
    pub(crate) fn count(&self, client: IpAddr) -> usize {
        let inner = self.inner.lock().expect("clients lock");
        inner.by_client.get(&client).map_or(0, VecDeque::len)
    }

    /// Counts a new connection of `client` until the returned registration is dropped.
    pub(crate) fn register(self: &Arc<Self>, client: IpAddr) -> Registration {
        let mut inner = self.inner.lock().expect("clients lock");
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = Arc::new(Notify::new());
        inner
            .by_client
            .entry(client)
            .or_default()
            .push_back((id, evict.clone()));
        Registration {
            clients: self.clone(),
            client,
            id,
            evict,
        }
    }

    /// Makes room for `client`: if another address holds more connections than `client` plus
    /// one, that address's oldest connection is asked to close (and no longer counted). True if
    /// one was asked.
    pub(crate) fn make_room_for(&self, client: IpAddr) -> bool {
        let mut inner = self.inner.lock().expect("clients lock");
        let mine = inner.by_client.get(&client).map_or(0, VecDeque::len);
        let Some((&victim, _)) = inner
            .by_client
            .iter()
            .filter(|(c, conns)| **c != client && conns.len() > mine + 1)
            .max_by_key(|(_, conns)| conns.len())
        else {
            return false;
        };
        let conns = inner.by_client.get_mut(&victim).expect("victim present");
        let (_, evict) = conns.pop_front().expect("victim has connections");
        if conns.is_empty() {
            inner.by_client.remove(&victim);
        }
        // A permit is stored if the connection is not waiting yet: the request is not lost.
        evict.notify_one();
        tracing::debug!(%client, %victim, "connection closed to make room for another client");
        true
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
    /// Resolves when the connection is asked to close to make room for another client.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.clients.inner.lock().expect("clients lock");
        if let Some(conns) = inner.by_client.get_mut(&self.client) {
            conns.retain(|(id, _)| *id != self.id);
            if conns.is_empty() {
                inner.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test]
    async fn the_biggest_holder_gives_up_its_oldest_and_shares_even_out() {
        let clients = Arc::new(Clients::default());
        let a: Vec<_> = (0..4).map(|_| clients.register(ip(1))).collect();
        let b: Vec<_> = (0..2).map(|_| clients.register(ip(2))).collect();
        assert_eq!((clients.count(ip(1)), clients.count(ip(2))), (4, 2));
        // A newcomer: the biggest holder (4) loses its oldest.
        assert!(clients.make_room_for(ip(3)));
        tokio::time::timeout(std::time::Duration::from_secs(1), a[0].evicted())
            .await
            .expect("the oldest of the biggest holder is asked to close");
        assert_eq!(clients.count(ip(1)), 3);
        let c = clients.register(ip(3));
        // 2 (b) against 3 (a): not more than one apart, so b cannot take from a; nor a from b.
        assert!(!clients.make_room_for(ip(2)));
        assert!(!clients.make_room_for(ip(1)));
        // An address never takes from itself.
        drop(b);
        drop(c);
        assert!(!clients.make_room_for(ip(1)));
        // Dropping an evicted registration (no longer counted) and the others empties the table.
        drop(a);
        assert_eq!(clients.inner.lock().unwrap().by_client.len(), 0);
    }
}
