//! `ptp-events consumer`: the reference consumer, with the flags and environment of the Go
//! `cloud-event-proxy` example consumer (`examples/consumer`), built on the consumer SDK.
//!
//! It listens for events on `--local-api-addr`, subscribes `http://<local-api-addr>/event` to the
//! node's PTP resources on **every** publisher of `--http-event-publishers`, keeps the
//! subscriptions alive across publisher restarts, optionally polls CurrentState, and logs every
//! event with its latency.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ptp_events_client::{
    Client, ConflictPolicy, Event, Receiver, ReceiverTls, Subscriber, SubscriberHandle,
    expand_resource, ptp_resource_addresses, substitute_node_tokens,
};

/// Flags and environment of the reference consumer (names follow the Go example consumer).
#[derive(Args, Debug, Clone)]
pub struct ConsumerArgs {
    /// host:port of this consumer as the publishers reach it; EndpointUri is
    /// http://<local-api-addr>/event. An IP host is listened on as given, `localhost` on the
    /// loopback, a name (a Service) on every interface.
    #[arg(long, default_value = "localhost:8989")]
    pub local_api_addr: String,
    /// API path of the publishers.
    #[arg(long, default_value = oran_api::API_BASE_PATH)]
    pub api_path: String,
    /// Publishers (host:port, http://host:port or https://host:port), comma-separated; every
    /// one is used.
    /// NODE_NAME / NODE_IP tokens are replaced as the Go consumer does (e.g.
    /// ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043).
    #[arg(long, default_value = "localhost:9043", value_delimiter = ',')]
    pub http_event_publishers: Vec<String>,
    /// This node's name; resource addresses are /cluster/node/<NODE_NAME>/...
    #[arg(long = "node-name", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// The node's IP, substituted for a NODE_IP token in the publishers.
    #[arg(long, env = "NODE_IP")]
    pub node_ip: Option<String>,
    /// Which resources to subscribe to: PTP (the five PTP sync resources), MOCK or HW (the Go
    /// plugins' addresses, which this project's producer does not offer).
    #[arg(long, env = "CONSUMER_TYPE", default_value = "PTP", value_parser = parse_consumer_type)]
    pub consumer_type: ConsumerType,
    /// Poll CurrentState of every resource (true/false, 1/0, as Go's ParseBool).
    #[arg(long, env = "ENABLE_STATUS_CHECK", default_value = "false", value_parser = parse_go_bool)]
    pub enable_status_check: bool,
    /// Resources to subscribe to instead of CONSUMER_TYPE's, comma-separated: full addresses
    /// or paths below /cluster/node/<NODE_NAME> (e.g. /sync/synce-status/lock-state).
    #[arg(long, value_delimiter = ',')]
    pub resources: Vec<String>,
    /// How often each publisher is checked (health, and that our subscriptions still exist).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub check_interval: Duration,
    /// How often an unhealthy or not yet subscribed publisher is retried.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_interval: Duration,
    /// How often CurrentState is polled when ENABLE_STATUS_CHECK is set.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub status_check_interval: Duration,
    /// Timeout of one request to a publisher.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// What to do on 409 (our endpoint already subscribed): replace-own (only this endpoint's
    /// subscription; other applications' are untouched) or delete-all (every subscription of
    /// every consumer of the publisher, as the Go consumer does: opt-in only).
    #[arg(long, value_enum, default_value_t = OnConflict::ReplaceOwn)]
    pub on_conflict: OnConflict,
    /// Leave the subscriptions on the publishers at exit (by default ours are deleted).
    #[arg(long)]
    pub keep_subscriptions: bool,
    /// Send `Authorization: Bearer <token>` with the token of this file (re-read when it
    /// changes), for publishers with authentication on: a static token, or the pod's
    /// service-account token (/var/run/secrets/kubernetes.io/serviceaccount/token) for a
    /// publisher using TokenReview.
    #[arg(long, env = "PUBLISHER_TOKEN_FILE")]
    pub publisher_token_file: Option<std::path::PathBuf>,
    /// Trust only these CA certificates (PEM) for https:// publishers (default: the system's).
    #[arg(long, env = "PUBLISHER_CA_FILE")]
    pub publisher_ca_file: Option<std::path::PathBuf>,
    /// Client certificate (PEM chain) for publishers that require mutual TLS; needs
    /// --tls-client-key.
    #[arg(long, requires = "tls_client_key")]
    pub tls_client_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-client-cert.
    #[arg(long, requires = "tls_client_cert")]
    pub tls_client_key: Option<std::path::PathBuf>,
    /// Receive events over TLS with this certificate chain (PEM; it must name the host of
    /// --local-api-addr): the EndpointUri becomes https://<local-api-addr>/event, and the
    /// publishers need the CA that issued it (--delivery-ca-file). Re-read when it changes.
    #[arg(long, env = "LOCAL_TLS_CERT", requires = "local_tls_key")]
    pub local_tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --local-tls-cert.
    #[arg(long, env = "LOCAL_TLS_KEY", requires = "local_tls_cert")]
    pub local_tls_key: Option<std::path::PathBuf>,
    /// With --local-tls-cert: accept events only from clients presenting a certificate issued
    /// by this CA (PEM), i.e. publishers given one with --delivery-client-cert (mutual TLS).
    /// Others are refused during the TLS handshake. Re-read when it changes.
    #[arg(long, env = "LOCAL_TLS_CLIENT_CA", requires = "local_tls_cert")]
    pub local_tls_client_ca: Option<std::path::PathBuf>,
    /// Obsolete (Go consumer); ignored with a warning.
    #[arg(long, hide = true)]
    pub api_addr: Option<String>,
    /// Obsolete (Go consumer); ignored with a warning.
    #[arg(long, hide = true)]
    pub api_version: Option<String>,
}

/// `CONSUMER_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerType {
    /// The five PTP resources.
    Ptp,
    /// The Go mock plugin's `/cluster/node/<n>/mock`.
    Mock,
    /// The Go HW plugin's `/cluster/node/<n>/redfish/v1/Systems`.
    Hw,
}

fn parse_consumer_type(s: &str) -> Result<ConsumerType, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "PTP" => Ok(ConsumerType::Ptp),
        "MOCK" => Ok(ConsumerType::Mock),
        "HW" => Ok(ConsumerType::Hw),
        other => Err(format!("unknown CONSUMER_TYPE {other:?} (PTP, MOCK or HW)")),
    }
}

/// Go's `strconv.ParseBool`; an empty value is false.
fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false, 1/0)")),
    }
}

/// `250ms`, `2s`, `1m`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 30s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--on-conflict`.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum OnConflict {
    /// DELETE /subscriptions, then subscribe again (the Go consumer).
    DeleteAll,
    /// Delete only this endpoint's subscription to that resource, then subscribe again.
    ReplaceOwn,
}

/// Where to listen for `--local-api-addr` `host:port`: an IP literal is bound as given,
/// `localhost` is the loopback; a name (a Kubernetes Service, which is not an address of the
/// pod) is listened for on every interface, as the Go consumer always does.
fn bind_address(local: &str) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr};
    let host = local.rsplit_once(':').map_or(local, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    }
    host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The resources to subscribe to.
fn resources(args: &ConsumerArgs, node: &str) -> Vec<String> {
    if !args.resources.is_empty() {
        return args
            .resources
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(|r| expand_resource(r, node))
            .collect();
    }
    match args.consumer_type {
        ConsumerType::Ptp => ptp_resource_addresses(node),
        ConsumerType::Mock => {
            tracing::warn!(
                "CONSUMER_TYPE=MOCK: subscribing to the Go mock plugin's resource, which this project's producer does not offer"
            );
            vec![format!("/cluster/node/{node}/mock")]
        }
        ConsumerType::Hw => {
            tracing::warn!(
                "CONSUMER_TYPE=HW: subscribing to the Go HW plugin's redfish resource, which this project's producer does not offer"
            );
            vec![format!("/cluster/node/{node}/redfish/v1/Systems")]
        }
    }
}

/// Runs the reference consumer until SIGINT/SIGTERM.
pub async fn run(args: ConsumerArgs) -> anyhow::Result<()> {
    if args.api_addr.is_some() || args.api_version.is_some() {
        tracing::warn!("--api-addr and --api-version are obsolete and ignored");
    }
    let node = match args.node_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => {
            tracing::warn!("NODE_NAME is not set; using \"mock\" as the Go consumer does");
            "mock".to_owned()
        }
    };
    let local = args
        .local_api_addr
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let port = local
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .ok_or_else(|| {
            crate::usage(
                "--local-api-addr",
                format!("{local:?}: expected host:port (e.g. localhost:8989)"),
            )
        })?;
    let tls = args
        .local_tls_cert
        .clone()
        .zip(args.local_tls_key.clone())
        .map(|(cert, key)| ReceiverTls {
            cert,
            key,
            client_ca: args.local_tls_client_ca.clone(),
        });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint_uri = format!("{scheme}://{local}/event");

    let mut clients = Vec::new();
    for p in args
        .http_event_publishers
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    {
        let address = substitute_node_tokens(p, &node, args.node_ip.as_deref());
        let mut builder = Client::builder(&address)
            .api_path(args.api_path.clone())
            .timeout(args.request_timeout);
        if let Some(f) = &args.publisher_token_file {
            builder = builder.bearer_token_file(f);
        }
        if let Some(f) = &args.publisher_ca_file {
            builder = builder.ca_file(f);
        }
        if let (Some(cert), Some(key)) = (&args.tls_client_cert, &args.tls_client_key) {
            builder = builder.client_identity(cert, key);
        }
        let client = builder
            .build()
            .with_context(|| format!("--http-event-publishers {p}"))?;
        tracing::info!(publisher = %client.api_url(), "updated apiAddr={address}, apiPath={}", args.api_path);
        clients.push(client);
    }
    if clients.is_empty() {
        bail!("--http-event-publishers: no publisher given");
    }
    let resources = resources(&args, &node);
    if resources.is_empty() {
        bail!("--resources: no resource given");
    }

    let bind_ip = bind_address(&local);
    let receiver = match tls {
        None => Receiver::bind((bind_ip, port), on_event).await,
        Some(tls) => Receiver::bind_tls((bind_ip, port), "/event", on_event, tls).await,
    }
    .with_context(|| format!("cannot listen on port {port} (from --local-api-addr {local})"))?;
    tracing::info!(endpoint_uri = %endpoint_uri, listen = %std::net::SocketAddr::new(bind_ip, port), "Starting local API listening to :{port}");

    let mut subscriber = Subscriber::new(endpoint_uri)
        .resources(resources.clone())
        .check_interval(args.check_interval)
        .retry_interval(args.retry_interval)
        .on_conflict(match args.on_conflict {
            OnConflict::DeleteAll => ConflictPolicy::DeleteAll,
            OnConflict::ReplaceOwn => ConflictPolicy::ReplaceOwn,
        });
    for c in &clients {
        subscriber = subscriber.publisher(c.clone());
    }
    let handle = subscriber.spawn();

    let poller = args.enable_status_check.then(|| {
        let clients = clients.clone();
        let resources = resources.clone();
        let status = handle.watch();
        let interval = args.status_check_interval;
        tokio::spawn(poll_current_state(clients, resources, status, interval))
    });

    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    if let Some(p) = poller {
        p.abort();
    }
    stop(handle, args.keep_subscriptions).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), receiver.stop()).await;
    Ok(())
}

async fn stop(handle: SubscriberHandle, keep: bool) {
    if keep {
        handle.stop().await;
    } else if tokio::time::timeout(Duration::from_secs(10), handle.stop_and_unsubscribe())
        .await
        .is_err()
    {
        tracing::warn!("could not delete every subscription within 10 s");
    }
}

async fn on_event(event: Event) {
    tracing::info!("received event {}", event.raw().to_json());
    tracing::info!(
        "Latency for the event: {} ms",
        event.latency().num_milliseconds()
    );
    tracing::debug!("Event: {event}");
}

async fn poll_current_state(
    clients: Vec<Client>,
    resources: Vec<String>,
    status: tokio::sync::watch::Receiver<Vec<ptp_events_client::PublisherStatus>>,
    interval: Duration,
) {
    tokio::time::sleep(interval.min(Duration::from_secs(5))).await;
    loop {
        for (i, client) in clients.iter().enumerate() {
            // As the Go consumer: skipped while not subscribed.
            let subscribed = status
                .borrow()
                .get(i)
                .is_some_and(|s| !s.subscriptions.is_empty());
            if !subscribed {
                continue;
            }
            for r in &resources {
                match client.current_state(r).await {
                    Ok(ev) => tracing::info!("Got CurrentState: {} ", ev.raw().to_json()),
                    Err(e) if e.is_no_data_yet() => {
                        tracing::info!(resource = %r, "CurrentState: no data yet ({e})")
                    }
                    Err(e) => tracing::warn!(resource = %r, "CurrentState: error {e}"),
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_go_bools() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_go_bool("TRUE"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
        assert_eq!(parse_consumer_type("ptp"), Ok(ConsumerType::Ptp));
        assert!(parse_consumer_type("nope").is_err());
    }
}

#[cfg(test)]
mod bind_tests {
    use super::bind_address;

    #[test]
    fn the_given_host_is_bound_and_a_name_means_every_interface() {
        assert_eq!(bind_address("127.0.0.1:8989").to_string(), "127.0.0.1");
        assert_eq!(bind_address("localhost:8989").to_string(), "127.0.0.1");
        assert_eq!(bind_address("[::1]:8989").to_string(), "::1");
        assert_eq!(bind_address("10.1.2.3:27017").to_string(), "10.1.2.3");
        assert_eq!(
            bind_address(
                "consumer-events-subscription-service.cloud-events.svc.cluster.local:27017"
            )
            .to_string(),
            "0.0.0.0"
        );
    }
}
