//! Keeping subscriptions alive on one or several publishers, across their restarts.

use std::time::Duration;

use oran_api::SubscriptionInfo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::Error;

/// How often a subscribed publisher is checked (health, and that our subscriptions still
/// exist), as in the Go reference consumer.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How often an unhealthy or not fully subscribed publisher is retried.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// What to do when the publisher answers 409 (our endpoint already subscribes to a resource but
/// we do not know that subscription, e.g. after our own restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// Delete only this endpoint's subscription to that resource and subscribe again (so the
    /// initial notification arrives). Other consumers are untouched.
    #[default]
    ReplaceOwn,
    /// `DELETE /subscriptions` (every subscription of every consumer of that publisher), then
    /// subscribe to everything again: what the Go reference consumer does.
    DeleteAll,
}

/// The state of one publisher, as a [`SubscriberHandle`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStatus {
    /// The publisher's API URL.
    pub publisher: String,
    /// Whether its last health check succeeded.
    pub healthy: bool,
    /// Our live subscriptions on it.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// The resource addresses we still have to subscribe to there.
    pub missing: Vec<String>,
    /// How many subscriptions were created there so far (grows when it restarts and loses them).
    pub created: u64,
    /// The last error, if the last round failed.
    pub last_error: Option<String>,
}

impl PublisherStatus {
    /// Healthy and subscribed to every resource.
    pub fn is_subscribed(&self) -> bool {
        self.healthy && self.missing.is_empty() && !self.subscriptions.is_empty()
    }
}

/// Subscribes one endpoint to a set of resources on every publisher, and keeps it so.
///
/// Per publisher: waits until it is healthy, subscribes to every resource, recovers from 409
/// ([`ConflictPolicy`]), then checks every [`DEFAULT_CHECK_INTERVAL`] that it is healthy and
/// that our subscriptions still exist; a publisher that restarted and lost them (or that was
/// down) is subscribed to again.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ptp_events_client::{Client, Subscriber, ptp_resource_addresses};
/// let handle = Subscriber::new("http://10.0.0.5:8989/event")
///     .publisher(Client::new("localhost:9043")?)
///     .resources(ptp_resource_addresses("worker-0"))
///     .spawn();
/// // ... later
/// handle.stop_and_unsubscribe().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Subscriber {
    endpoint_uri: String,
    resources: Vec<String>,
    publishers: Vec<Client>,
    check_interval: Duration,
    retry_interval: Duration,
    on_conflict: ConflictPolicy,
}

/// What one subscription attempt achieved.
#[derive(Debug, Default)]
pub struct SubscribeOutcome {
    /// The subscriptions created.
    pub created: Vec<SubscriptionInfo>,
    /// The resources that could not be subscribed to, and why.
    pub failed: Vec<(String, Error)>,
    /// Whether a 409 made us delete every subscription of the publisher
    /// ([`ConflictPolicy::DeleteAll`]); subscriptions known before are gone.
    pub deleted_all: bool,
}

impl Subscriber {
    /// A subscriber for `endpoint_uri` (where your [`crate::Receiver`] listens), with no
    /// publisher and no resource yet.
    pub fn new(endpoint_uri: impl Into<String>) -> Subscriber {
        Subscriber {
            endpoint_uri: endpoint_uri.into(),
            resources: Vec::new(),
            publishers: Vec::new(),
            check_interval: DEFAULT_CHECK_INTERVAL,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            on_conflict: ConflictPolicy::default(),
        }
    }

    /// Adds a publisher.
    pub fn publisher(mut self, client: Client) -> Self {
        self.publishers.push(client);
        self
    }

    /// Adds a resource address (duplicates are ignored).
    pub fn resource(mut self, address: impl Into<String>) -> Self {
        let a = address.into();
        if !self.resources.contains(&a) {
            self.resources.push(a);
        }
        self
    }

    /// Adds resource addresses.
    pub fn resources<I, S>(self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        addresses.into_iter().fold(self, |s, a| s.resource(a))
    }

    /// Sets how often a subscribed publisher is checked (default 30 s).
    pub fn check_interval(mut self, d: Duration) -> Self {
        self.check_interval = d;
        self
    }

    /// Sets how often an unhealthy or not fully subscribed publisher is retried (default 2 s;
    /// never longer than the check interval).
    pub fn retry_interval(mut self, d: Duration) -> Self {
        self.retry_interval = d;
        self
    }

    /// Sets the reaction to 409 (default [`ConflictPolicy::ReplaceOwn`]).
    pub fn on_conflict(mut self, policy: ConflictPolicy) -> Self {
        self.on_conflict = policy;
        self
    }

    /// The EndpointUri.
    pub fn endpoint_uri(&self) -> &str {
        &self.endpoint_uri
    }

    /// The resource addresses.
    pub fn resource_addresses(&self) -> &[String] {
        &self.resources
    }

    /// Subscribes to `resources` on `client` once, recovering from 409 as configured. Resources
    /// that fail are reported in the outcome, the others are subscribed.
    pub async fn subscribe(&self, client: &Client, resources: &[String]) -> SubscribeOutcome {
        self.subscribe_logging(client, resources, true).await
    }

    /// [`Subscriber::subscribe`]; failures are logged as warnings only when `warn` (else at
    /// debug: the caller reports them once).
    async fn subscribe_logging(
        &self,
        client: &Client,
        resources: &[String],
        warn: bool,
    ) -> SubscribeOutcome {
        let mut out = SubscribeOutcome::default();
        let mut todo: Vec<String> = resources.to_vec();
        let mut i = 0;
        while i < todo.len() {
            let address = todo[i].clone();
            i += 1;
            match client.subscribe(&address, &self.endpoint_uri).await {
                Ok(info) => {
                    log_created(client, &info);
                    out.created.push(info);
                }
                Err(e) if e.is_conflict() => match self.on_conflict {
                    ConflictPolicy::DeleteAll if !out.deleted_all => {
                        tracing::warn!(publisher = %client.api_url(), resource = %address,
                            "subscription exists already (409); deleting all subscriptions and subscribing again");
                        if let Err(e) = client.unsubscribe_all().await {
                            out.failed.push((address, e));
                            continue;
                        }
                        out.deleted_all = true;
                        out.created.clear();
                        out.failed.clear();
                        todo = self.resources.clone();
                        i = 0;
                    }
                    ConflictPolicy::DeleteAll => out.failed.push((address, e)),
                    ConflictPolicy::ReplaceOwn => {
                        tracing::warn!(publisher = %client.api_url(), resource = %address,
                            "subscription exists already (409); replacing this endpoint's subscription");
                        match client.replace_own(&address, &self.endpoint_uri).await {
                            Ok(info) => {
                                log_created(client, &info);
                                out.created.push(info);
                            }
                            Err(e) => out.failed.push((address, e)),
                        }
                    }
                },
                Err(e) => {
                    if warn {
                        tracing::warn!(publisher = %client.api_url(), resource = %address, error = %e,
                            "cannot create subscription");
                    } else {
                        tracing::debug!(publisher = %client.api_url(), resource = %address, error = %e,
                            "cannot create subscription");
                    }
                    out.failed.push((address, e));
                }
            }
        }
        out
    }

    /// Starts one task per publisher that keeps the subscriptions alive.
    pub fn spawn(self) -> SubscriberHandle {
        let initial: Vec<PublisherStatus> = self
            .publishers
            .iter()
            .map(|c| PublisherStatus {
                publisher: c.api_url().to_string(),
                missing: self.resources.clone(),
                ..PublisherStatus::default()
            })
            .collect();
        let (status, status_rx) = watch::channel(initial);
        let (stop, stop_rx) = watch::channel(false);
        let tasks = (0..self.publishers.len())
            .map(|i| {
                let me = self.clone();
                let status = status.clone();
                let stop = stop_rx.clone();
                tokio::spawn(async move { me.keep(i, status, stop).await })
            })
            .collect();
        SubscriberHandle {
            subscriber: self,
            status: status_rx,
            stop,
            tasks,
        }
    }

    async fn keep(
        &self,
        i: usize,
        status: watch::Sender<Vec<PublisherStatus>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let client = &self.publishers[i];
        let mut st = status.borrow()[i].clone();
        let mut memory = RoundMemory::default();
        loop {
            self.round(client, &mut st, &mut memory).await;
            status.send_modify(|all| all[i] = st.clone());
            let wait = if st.is_subscribed() && st.last_error.is_none() {
                self.check_interval
            } else if st.healthy && st.last_error.is_some() {
                // The publisher answers but refuses (a wrong node, a 403): asking every 2 s
                // forever helps nobody; back off to the check interval.
                memory.refused_rounds = memory.refused_rounds.saturating_add(1);
                let factor = 1u32 << (memory.refused_rounds - 1).min(6);
                self.retry_interval
                    .saturating_mul(factor)
                    .min(self.check_interval)
            } else {
                self.retry_interval.min(self.check_interval)
            };
            if !(st.healthy && st.last_error.is_some()) {
                memory.refused_rounds = 0;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One check of one publisher: health, then what is missing, then subscribe to it.
    async fn round(&self, client: &Client, st: &mut PublisherStatus, memory: &mut RoundMemory) {
        if let Err(e) = client.health().await {
            if st.healthy || st.last_error.is_none() {
                tracing::warn!(publisher = %client.api_url(), error = %e,
                    "publisher is not healthy; will subscribe again when it is back");
            }
            st.healthy = false;
            // Whatever it had may be gone when it comes back: verify then.
            st.last_error = Some(e.to_string());
            st.missing = self.resources.clone();
            return;
        }
        if !st.healthy {
            tracing::info!(publisher = %client.api_url(), "rest service returned healthy status");
            st.healthy = true;
        }
        // Which of ours still exist there.
        if !st.subscriptions.is_empty() {
            match client.subscriptions().await {
                Ok(listed) => {
                    let before = st.subscriptions.len();
                    st.subscriptions.retain(|s| {
                        listed
                            .iter()
                            .any(|l| l.subscription_id == s.subscription_id)
                    });
                    if st.subscriptions.len() < before {
                        tracing::warn!(publisher = %client.api_url(), lost = before - st.subscriptions.len(),
                            "publisher lost our subscriptions (restarted with an empty store?); subscribing again");
                    }
                }
                Err(e) => {
                    // Only a successful list says a subscription is gone. A refused or failed
                    // list (401/403, a 503 while the publisher cannot check tokens, a timeout)
                    // says nothing about them: subscribing again would meet 409 and, with
                    // ConflictPolicy::DeleteAll, delete every consumer's subscriptions.
                    tracing::warn!(publisher = %client.api_url(), error = %e,
                        "cannot list subscriptions; keeping ours and checking again");
                    st.last_error = Some(e.to_string());
                    return;
                }
            }
        }
        let missing: Vec<String> = self
            .resources
            .iter()
            .filter(|r| !st.subscriptions.iter().any(|s| covers(s, r)))
            .cloned()
            .collect();
        st.missing = missing.clone();
        if missing.is_empty() {
            st.last_error = None;
            return;
        }
        let out = self.subscribe_logging(client, &missing, false).await;
        if out.deleted_all {
            st.subscriptions.clear();
        }
        st.created += out.created.len() as u64;
        st.subscriptions.extend(out.created);
        st.missing = out.failed.iter().map(|(r, _)| r.clone()).collect();
        let errors: Vec<String> = out
            .failed
            .iter()
            .map(|(r, e)| format!("{r}: {e}"))
            .collect();
        // Each distinct set of failures is a warning once; the same again is at debug.
        if !errors.is_empty() && errors != memory.last_failures {
            for (address, e) in &out.failed {
                tracing::warn!(publisher = %client.api_url(), resource = %address, error = %e,
                    "cannot create subscription");
            }
            if !memory.node_hint_given && out.failed.iter().any(|(_, e)| e.is_not_found()) {
                // Said once; asked again next time when the publisher could not tell its node.
                memory.node_hint_given = self.hint_node(client, &out.failed).await;
            }
        }
        memory.last_failures = errors;
        st.last_error = memory.last_failures.first().cloned();
        if st.missing.is_empty() {
            tracing::info!(publisher = %client.api_url(), count = st.subscriptions.len(),
                "all subscriptions created successfully");
        }
    }
}

/// What one publisher's task remembers between rounds.
#[derive(Debug, Default)]
struct RoundMemory {
    /// Rounds in a row in which a healthy publisher refused something.
    refused_rounds: u32,
    /// The last round's failures (`address: error`), to warn once per distinct set.
    last_failures: Vec<String>,
    /// Whether the publisher's node was already compared with ours.
    node_hint_given: bool,
}

impl Subscriber {
    /// After a 404: says once which node the publisher serves when the addresses name another
    /// (a wrong `NODE_NAME` is the usual cause). Whether the publisher told its node.
    async fn hint_node(&self, client: &Client, failed: &[(String, Error)]) -> bool {
        let served = match client.served_nodes().await {
            Ok(n) if !n.is_empty() => n,
            _ => return false,
        };
        let asked: Vec<&str> = failed
            .iter()
            .filter_map(|(a, _)| crate::address::node_of(a))
            .filter(|n| *n != "." && !served.iter().any(|s| s == n))
            .collect();
        if let Some(node) = asked.first() {
            tracing::warn!(publisher = %client.api_url(), asked = %node, served = %served.join(","),
                "the publisher serves node {} but the subscriptions name node {node}: check NODE_NAME (or which publisher this is); retrying less and less often, up to every {:?}",
                served.join(", "), self.check_interval);
        }
        true
    }
}

/// Whether subscription `s` is the one for requested address `r`.
fn covers(s: &SubscriptionInfo, r: &str) -> bool {
    crate::client::same_address(&s.resource_address, r)
}

fn log_created(client: &Client, info: &SubscriptionInfo) {
    tracing::info!(
        publisher = %client.api_url(),
        id = %info.subscription_id,
        resource = %info.resource_address,
        endpoint = %info.endpoint_uri,
        uri_location = %info.uri_location,
        "created subscription"
    );
}

/// The running [`Subscriber`]: its status, and how to stop it.
#[derive(Debug)]
pub struct SubscriberHandle {
    subscriber: Subscriber,
    status: watch::Receiver<Vec<PublisherStatus>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SubscriberHandle {
    /// The status of every publisher, in the order they were added.
    pub fn status(&self) -> Vec<PublisherStatus> {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Vec<PublisherStatus>> {
        self.status.clone()
    }

    /// Waits until `pred` holds for the status, at most `timeout`; whether it did.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl FnMut(&Vec<PublisherStatus>) -> bool,
    ) -> bool {
        let mut rx = self.status.clone();
        tokio::time::timeout(timeout, rx.wait_for(pred))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until every publisher is subscribed to every resource, at most `timeout`.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |all| {
            all.iter().all(PublisherStatus::is_subscribed)
        })
        .await
    }

    /// Stops checking; the subscriptions stay on the publishers.
    pub async fn stop(self) -> Vec<PublisherStatus> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.status.borrow().clone()
    }

    /// Stops checking and deletes our subscriptions (only ours) from every publisher.
    pub async fn stop_and_unsubscribe(self) -> Vec<PublisherStatus> {
        let clients = self.subscriber.publishers.clone();
        let status = self.stop().await;
        for (client, st) in clients.iter().zip(&status) {
            for s in &st.subscriptions {
                match client.unsubscribe(&s.subscription_id).await {
                    Ok(()) => {
                        tracing::info!(publisher = %client.api_url(), id = %s.subscription_id,
                        resource = %s.resource_address, "deleted subscription")
                    }
                    Err(e) => {
                        tracing::warn!(publisher = %client.api_url(), id = %s.subscription_id,
                        error = %e, "cannot delete subscription")
                    }
                }
            }
        }
        status
    }
}
