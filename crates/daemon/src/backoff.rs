//! The restart policy of DECISIONS.md: first restart after 1 s, doubling to a 30 s cap, and
//! back to 1 s once a process has run 60 s.

use std::time::Duration;

/// Restart timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The first delay (1 s).
    pub initial: Duration,
    /// The cap (30 s).
    pub max: Duration,
    /// A run at least this long resets the delay to `initial` (60 s).
    pub reset_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// The delay state of one supervised process.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RestartPolicy,
    next: Duration,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(policy: RestartPolicy) -> Self {
        Backoff {
            policy,
            next: policy.initial,
        }
    }

    /// The delay before restarting a process that ran for `ran`, and the doubling for the next.
    pub fn after_exit(&mut self, ran: Duration) -> Duration {
        if ran >= self.policy.reset_after {
            self.next = self.policy.initial;
        }
        let d = self.next.min(self.policy.max);
        self.next = (d * 2).min(self.policy.max);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_to_a_thirty_second_cap() {
        let mut b = Backoff::new(RestartPolicy::default());
        let got: Vec<u64> = (0..8)
            .map(|_| b.after_exit(Duration::from_millis(10)).as_secs())
            .collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn resets_after_sixty_seconds_of_running() {
        let mut b = Backoff::new(RestartPolicy::default());
        for _ in 0..5 {
            b.after_exit(Duration::from_secs(1));
        }
        assert_eq!(
            b.after_exit(Duration::from_secs(59)),
            Duration::from_secs(30)
        );
        assert_eq!(
            b.after_exit(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(b.after_exit(Duration::from_secs(3)), Duration::from_secs(2));
    }
}
