//! What a ptp4l announces when it is the grandmaster of its downstream (a T-BC's TT, a T-GM's
//! ptp4l), kept as a state machine wants it: `desired` is SET with GRANDMASTER_SETTINGS_NP
//! whenever it differs from what was last applied, and checked against ptp4l's own data set (a
//! restarted ptp4l starts again from its config).

use std::path::PathBuf;

use ptp_mgmt::{Client, ClientConfig, GrandmasterSettings};

use crate::class::Ptp4lTarget;

/// One ptp4l's announce.
pub(crate) struct Announcer {
    target: Ptp4lTarget,
    local_dir: PathBuf,
    /// Who speaks in the log (`T-BC: TT`, `T-GM: ptp4l`).
    who: &'static str,
    client: Option<Client>,
    /// What the ptp4l must announce.
    pub desired: GrandmasterSettings,
    applied: Option<GrandmasterSettings>,
}

impl Announcer {
    pub fn new(target: Ptp4lTarget, local_dir: PathBuf, who: &'static str) -> Announcer {
        Announcer {
            target,
            local_dir,
            who,
            client: None,
            desired: GrandmasterSettings::default(),
            applied: None,
        }
    }

    /// The management client of this ptp4l (made on first use).
    pub fn client(&mut self) -> Option<&mut Client> {
        if self.client.is_none() {
            self.client = self
                .target
                .client(&self.local_dir, ClientConfig::default().timeout)
                .map_err(|e| tracing::warn!(error = %e, who = self.who, "management client"))
                .ok();
        }
        self.client.as_mut()
    }

    /// Sets `desired` when it differs from what was applied.
    pub async fn apply(&mut self) {
        if self.applied == Some(self.desired) {
            return;
        }
        let (who, desired) = (self.who, self.desired);
        let Some(c) = self.client() else { return };
        match c.set_grandmaster_settings(desired).await {
            Ok(echo) => {
                tracing::info!(class = echo.clock_quality.class, "{who}: announce set");
                self.applied = Some(echo);
            }
            Err(e) if e.is_absent() => {} // not started yet, or restarting
            Err(e) => tracing::warn!(error = %e, "{who}: cannot set the announce"),
        }
    }

    /// Compares the ptp4l's announce with what was applied: a restarted ptp4l announces its
    /// config again, so it is set again at the next [`Announcer::apply`].
    pub async fn verify(&mut self) {
        let who = self.who;
        let Some(c) = self.client.as_mut() else {
            return;
        };
        match c.grandmaster_settings().await {
            Ok(now) if Some(now) != self.applied => {
                tracing::info!(
                    "{who}: the announce differs from the state's (restarted?): setting it again"
                );
                self.applied = None;
            }
            Err(e) if e.is_absent() => self.applied = None,
            _ => {}
        }
    }
}
