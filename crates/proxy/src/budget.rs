//! Per-client budgets: a token bucket per client address, bounded in memory. Used for the TokenReviews a client may cause and for its requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most client addresses tracked; beyond, those with a full budget are dropped, then the one
/// charged longest ago.
pub const TRACKED_CLIENTS: usize = 10_000;

/// Whose budget a client address uses: its own (IPv4-mapped IPv6 as the IPv4 address). Not a
/// wider IPv6 prefix: in a Kubernetes IPv6 or dual-stack cluster a node's pods share one /64,
/// and a pod cannot use addresses of it other than its own.
pub fn budget_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    }
}

/// `per_window` units per `window` for each client, refilled continuously, at most
/// `per_window` at once.
pub struct ClientBudgets {
    per_window: u32,
    window: Duration,
    /// What is budgeted, for the log (`TokenReview`, `request`).
    what: &'static str,
    /// Units left and when last refilled, by client key.
    map: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// When a refusal was last logged (at most every 10 s).
    last_log: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ClientBudgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBudgets")
            .field("per_window", &self.per_window)
            .field("window", &self.window)
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl ClientBudgets {
    /// Budgets of `per_window` per `window` (0: no limit).
    pub fn new(per_window: u32, window: Duration, what: &'static str) -> ClientBudgets {
        ClientBudgets {
            per_window,
            window,
            what,
            map: Mutex::new(HashMap::new()),
            last_log: Mutex::new(None),
        }
    }

    /// Units per second.
    fn rate(&self) -> f64 {
        f64::from(self.per_window) / self.window.as_secs_f64().max(1e-3)
    }

    /// Takes one unit from `client`'s budget: `None` when there was one, else how long until
    /// there is.
    pub fn charge(&self, client: IpAddr) -> Option<Duration> {
        if self.per_window == 0 {
            return None;
        }
        let key = budget_key(client);
        let capacity = f64::from(self.per_window);
        let rate = self.rate();
        let now = Instant::now();
        let mut map = self.map.lock().expect("budget lock");
        if map.len() >= TRACKED_CLIENTS && !map.contains_key(&key) {
            map.retain(|_, (left, at)| {
                *left + now.duration_since(*at).as_secs_f64() * rate < capacity
            });
            // Still full: the client charged longest ago goes (not every limited client).
            if map.len() >= TRACKED_CLIENTS
                && let Some(oldest) = map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let (left, at) = map.entry(key).or_insert((capacity, now));
        *left = (*left + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *left >= 1.0 {
            *left -= 1.0;
            return None;
        }
        let wait = Duration::from_secs_f64((1.0 - *left) / rate);
        drop(map);
        let mut last = self.last_log.lock().expect("log lock");
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                %client,
                per_window = self.per_window,
                window_ms = self.window.as_millis() as u64,
                "{} budget of a client used up (answered 429; logged at most every 10 s)",
                self.what
            );
            *last = Some(now);
        }
        Some(wait)
    }

    /// Gives back one unit charged to `client`.
    pub fn refund(&self, client: IpAddr) {
        let capacity = f64::from(self.per_window);
        if let Some((left, _)) = self
            .map
            .lock()
            .expect("budget lock")
            .get_mut(&budget_key(client))
        {
            *left = (*left + 1.0).min(capacity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> ClientBudgets {
        ClientBudgets::new(3, Duration::from_secs(30), "test")
    }

    /// Each client address has its own budget, refilled over the window.
    #[test]
    fn per_client_refilled_bounded() {
        let r = budgets();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(r.charge(a), None);
        }
        // 3 per 30 s: the next one is 10 s away.
        let wait = r.charge(a).expect("budget used up");
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(r.charge(a).is_some());
        assert_eq!(r.charge(b), None, "another client has its own budget");
        // Refilled with time: 10 s later, one more.
        r.map.lock().unwrap().get_mut(&a).unwrap().1 -= Duration::from_secs(10);
        assert_eq!(r.charge(a), None);
        assert!(r.charge(a).is_some());
        // 0: no limit.
        let open = ClientBudgets::new(0, Duration::from_secs(1), "test");
        for _ in 0..1000 {
            assert_eq!(open.charge(a), None);
        }
        // A unit given back can be spent again.
        let r = budgets();
        for _ in 0..3 {
            assert_eq!(r.charge(a), None);
        }
        r.refund(a);
        assert_eq!(r.charge(a), None);
        assert!(r.charge(a).is_some());
        // IPv6 clients by address (pods of a node share its /64); IPv4-mapped addresses count
        // as IPv4.
        let v6a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::11".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(r.charge(v6a), None);
        }
        assert!(r.charge(v6a).is_some());
        assert_eq!(r.charge(v6b), None, "another pod of the same /64");
        assert!(
            r.charge("::ffff:10.0.0.1".parse().unwrap()).is_some(),
            "as 10.0.0.1"
        );
        // The table stays bounded, and a full table drops the client charged longest ago, not
        // every limited client.
        let r = budgets();
        let n = TRACKED_CLIENTS as u32;
        for i in 1..n {
            assert_eq!(r.charge(IpAddr::from(i.to_be_bytes())), None);
        }
        for _ in 0..3 {
            assert_eq!(r.charge(a), None);
        }
        for i in n..n + 100 {
            assert_eq!(r.charge(IpAddr::from(i.to_be_bytes())), None);
            assert!(r.map.lock().unwrap().len() <= TRACKED_CLIENTS);
        }
        assert!(r.charge(a).is_some(), "a limited client keeps its state");
        assert!(
            !r.map
                .lock()
                .unwrap()
                .contains_key(&IpAddr::from(1u32.to_be_bytes()))
        );
    }
}
