//! `ptp-events proxy`: the producer's command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use proxy::{DeliveryConfig, Ingest, IngestConfig, Producer, ProducerConfig};
use ptp_state::EngineConfig;

/// Flags and environment of the producer (names follow the Go `cloud-event-proxy`).
#[derive(Args, Debug, Clone)]
pub struct ProxyArgs {
    /// This node's name, used verbatim in resource addresses (/cluster/node/<NODE_NAME>/...).
    #[arg(long = "node-name", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Port of the REST API (/api/ocloudNotifications/v2/).
    #[arg(long, default_value_t = 9043)]
    pub api_port: u16,
    /// Address the REST API binds to (0.0.0.0: every interface, as in a pod).
    #[arg(long, default_value = "0.0.0.0")]
    pub api_bind: IpAddr,
    /// Address of the Prometheus /metrics endpoint (":9091" means every interface); "off" disables it.
    #[arg(long, default_value = ":9091")]
    pub metrics_addr: String,
    /// Directory of the durable subscription store (created if missing).
    #[arg(long, env = "STORE_PATH", default_value = "/var/lib/ptp-events")]
    pub store_path: PathBuf,
    /// Host shown in each subscription's UriLocation. A NODE_NAME token is replaced by the short
    /// node name, a NODE_IP token by $NODE_IP; the port is --api-port.
    #[arg(
        long,
        default_value = "http://ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043"
    )]
    pub transport_host: String,
    /// The node's IP, substituted for a NODE_IP token in --transport-host.
    #[arg(long, env = "NODE_IP")]
    pub node_ip: Option<String>,
    /// REST API version; only 2.0 is supported (v1 was removed, as in the Go producer).
    #[arg(long, default_value = "2.0")]
    pub api_version: String,
    /// Timeout of one notification POST, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub delivery_timeout_ms: u64,
    /// Timeout of the initial notification sent while creating a subscription, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub initial_notification_timeout_ms: u64,
    /// Waits before retrying a POST that failed at the transport level (comma-separated ms).
    #[arg(long, default_value = "100,400,1600", value_delimiter = ',')]
    pub retry_backoff_ms: Vec<u64>,
    /// Consecutive undeliverable events after which an endpoint's subscriptions are removed.
    #[arg(long, default_value_t = 10)]
    pub failure_budget: u32,
    /// Events queued per subscriber endpoint; when full, the oldest is dropped (and counted).
    #[arg(long, default_value_t = 1024)]
    pub queue_capacity: usize,
    /// UNIX socket where linuxptp-daemon writes its lines ("off": in-process only).
    #[arg(
        long,
        env = "EVENT_SOCKET",
        default_value = "/cloud-native/events.sock"
    )]
    pub socket: String,
    /// The daemon's HTTP API, as the Go producer finds it in the pod (its daemon serves
    /// http://localhost:8081): on each socket connection /port-aliases gives the interface
    /// aliases used in value ResourceAddresses (`ens1fx`) and /emit-logs asks for a state
    /// replay. When nothing answers, raw interface names are used (said once, then quiet; not
    /// asked again for 10 s). `off` disables it.
    #[arg(long, env = "DAEMON_API", default_value = "http://localhost:8081", value_parser = parse_daemon_api)]
    pub daemon_api: DaemonApi,
    /// Where the daemon writes its rendered configs (`ptp4l.N.config` with a `#profile:` first
    /// line and interface sections); read, as the Go sidecar does, to learn configs and
    /// interfaces. Re-read every --config-update-interval.
    #[arg(long, env = "PTP_RUN_DIR", default_value = "/var/run")]
    pub ptp_config_dir: PathBuf,
    /// The profile directory (the operator's ConfigMap mount): `<dir>/<NODE_NAME>` gives each
    /// profile's thresholds (ptpClockThreshold).
    #[arg(long, env = "PTP_PROFILE_PATH", default_value = "/etc/linuxptp")]
    pub profile_dir: PathBuf,
    /// How often the rendered configs and the profile file are re-read, in seconds (every
    /// second until a first config is found).
    #[arg(long, env = "CONFIG_UPDATE_INTERVAL", default_value_t = 10)]
    pub config_update_interval: u64,
    /// A process that comes back within this time after going down causes no state change (ms).
    #[arg(long, default_value_t = 5000)]
    pub downtime_threshold_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = proxy::api::DEFAULT_MAX_BODY)]
    pub max_body_bytes: usize,
    /// Most subscriptions in total; creations beyond are refused with 403.
    #[arg(long, default_value_t = proxy::DEFAULT_MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,
    /// Most subscriptions whose EndpointUri names one consumer host:port; beyond: 403.
    #[arg(long, default_value_t = proxy::DEFAULT_MAX_SUBSCRIPTIONS_PER_HOST)]
    pub max_subscriptions_per_host: usize,
    /// Time an HTTP/1.1 client has to send a request's headers, in milliseconds (slow-header
    /// clients are disconnected).
    #[arg(long, default_value_t = proxy::DEFAULT_HEADER_READ_TIMEOUT.as_millis() as u64)]
    pub header_read_timeout_ms: u64,
    /// Most REST API connections open at once; beyond, new connections are closed at once.
    #[arg(long, default_value_t = proxy::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Most REST API connections open at once from one client address.
    #[arg(long, default_value_t = proxy::DEFAULT_MAX_CONNECTIONS_PER_CLIENT)]
    pub max_connections_per_client: usize,
    /// An API connection with no traffic either way for this long is closed, in milliseconds
    /// (a connection that sends nothing at all: after --header-read-timeout-ms).
    #[arg(long, default_value_t = proxy::DEFAULT_IDLE_TIMEOUT.as_millis() as u64)]
    pub idle_timeout_ms: u64,
    /// File of bearer tokens, one per line (re-read when it changes). When set, every API route
    /// except health and openapi.json needs `Authorization: Bearer <token>`. Off by default.
    #[arg(long, env = "AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Authenticate bearer tokens with the Kubernetes API server (TokenReview): every API route
    /// except health and openapi.json needs a token the API server accepts (e.g. a consumer
    /// pod's service-account token). The producer's service account needs the ClusterRole
    /// system:auth-delegator. Combined with --auth-token-file, either kind of token is
    /// accepted. Off by default.
    #[arg(long, env = "AUTH_TOKEN_REVIEW", default_value = "false", value_parser = clap::builder::FalseyValueParser::new())]
    pub auth_token_review: bool,
    /// The API server for TokenReview (https URL). Default: in-cluster,
    /// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
    #[arg(long)]
    pub kube_api_server: Option<String>,
    /// CA certificates (PEM) of the API server. Default: the pod's service-account ca.crt.
    #[arg(long, env = "KUBE_CA_FILE")]
    pub kube_ca_file: Option<PathBuf>,
    /// The producer's own token for the API server (re-read on every review). Default: the
    /// pod's service-account token.
    #[arg(long, env = "KUBE_TOKEN_FILE")]
    pub kube_token_file: Option<PathBuf>,
    /// Audiences the presented tokens must be valid for (comma-separated); default: the API
    /// server's own (a plain service-account token).
    #[arg(long, env = "AUTH_AUDIENCE", value_delimiter = ',')]
    pub auth_audience: Vec<String>,
    /// Users admitted after TokenReview (comma-separated), e.g.
    /// system:serviceaccount:vdu:consumer. With neither --auth-allow-user nor
    /// --auth-allow-group, every identity the API server authenticates is admitted.
    #[arg(long, env = "AUTH_ALLOW_USER", value_delimiter = ',')]
    pub auth_allow_user: Vec<String>,
    /// Groups admitted after TokenReview (comma-separated), e.g. system:serviceaccounts:vdu
    /// (every service account of namespace vdu). Others get 403.
    #[arg(long, env = "AUTH_ALLOW_GROUP", value_delimiter = ',')]
    pub auth_allow_group: Vec<String>,
    /// How long an accepted (or forbidden) token is remembered, in milliseconds.
    #[arg(long, default_value_t = proxy::tokenreview::DEFAULT_CACHE_TTL.as_millis() as u64)]
    pub auth_cache_ttl_ms: u64,
    /// How long a refused token is remembered, in milliseconds.
    #[arg(long, default_value_t = proxy::tokenreview::DEFAULT_NEGATIVE_CACHE_TTL.as_millis() as u64)]
    pub auth_negative_cache_ttl_ms: u64,
    /// Timeout of one TokenReview request, in milliseconds.
    #[arg(long, default_value_t = proxy::tokenreview::DEFAULT_TIMEOUT.as_millis() as u64)]
    pub kube_api_timeout_ms: u64,
    /// Most TokenReviews one client address may cause per 10 s (new tokens; cached verdicts
    /// cost nothing). Beyond, its requests with new tokens get 429 with Retry-After. 0: no
    /// limit.
    #[arg(long, default_value_t = proxy::tokenreview::DEFAULT_REVIEWS_PER_CLIENT)]
    pub auth_max_reviews_per_client: u32,
    /// Most API requests per second from one client address (bursts up to that many);
    /// beyond, 429 with Retry-After. /health and /openapi.json are not counted. 0: no limit.
    #[arg(long, default_value_t = 0)]
    pub max_requests_per_client: u32,
    /// Where subscriptions may send notifications (repeatable, or comma-separated): address
    /// blocks (`10.128.0.0/14`, `127.0.0.1`), host names (`consumer.ns.svc`) or name suffixes
    /// (`.svc.cluster.local`). Host names are resolved and every address must be in a block
    /// unless the name itself matches. Default: anywhere.
    #[arg(long, value_delimiter = ',')]
    pub endpoint_allow: Vec<proxy::security::AllowRule>,
    /// Serve the API over TLS with this certificate chain (PEM, leaf first); needs --tls-key.
    /// Re-read when the file changes (new connections get the new certificate). Off by default.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: require a client certificate issued by a CA of this PEM file (needs
    /// --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve /metrics over TLS too, with the API's certificate (--tls-cert) and, with
    /// --tls-client-ca, requiring a client certificate of that CA from the scraper.
    // Without --tls-cert: refused at start, not by the parser, so that METRICS_TLS=false works.
    #[arg(long, env = "METRICS_TLS", default_value = "false", value_parser = clap::builder::FalseyValueParser::new())]
    pub metrics_tls: bool,
    /// Serve a read-only status page of the node on the metrics listener (its limits, and its
    /// TLS with --metrics-tls): `/status/` is the picture `replay --report` draws (offsets,
    /// states, clock class, processes, the events), updated as it happens from
    /// `/status/events`. Off by default: the metrics port is open on every interface of the
    /// node. Shows the recent window (200,000 offset samples per clock, 5,000 events).
    #[arg(long, env = "STATUS_PAGE", default_value = "false", value_parser = clap::builder::FalseyValueParser::new())]
    pub status_page: bool,
    /// Deliver to https EndpointUris, trusting consumer certificates issued by a CA of this PEM
    /// file (re-read when it changes). Without it, https EndpointUris are refused (400).
    #[arg(long, env = "DELIVERY_CA_FILE")]
    pub delivery_ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) presented to https consumers that require mutual TLS;
    /// needs --delivery-client-key and --delivery-ca-file.
    #[arg(long, env = "DELIVERY_CLIENT_CERT", requires_all = ["delivery_client_key", "delivery_ca_file"])]
    pub delivery_client_cert: Option<PathBuf>,
    /// The private key of --delivery-client-cert (PEM).
    #[arg(long, env = "DELIVERY_CLIENT_KEY", requires = "delivery_client_cert")]
    pub delivery_client_key: Option<PathBuf>,
}

/// Parses a Go-style listen address: ":9091", "127.0.0.1:9091", or "off".
pub fn parse_listen_addr(s: &str) -> anyhow::Result<Option<SocketAddr>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") || s.is_empty() {
        return Ok(None);
    }
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().with_context(|| format!("{s:?}: bad port"))?;
        return Ok(Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        )));
    }
    let addr = s
        .parse()
        .with_context(|| format!("{s:?}: expected HOST:PORT, :PORT or off"))?;
    Ok(Some(addr))
}

impl ProxyArgs {
    /// The producer configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<ProducerConfig> {
        let major = self
            .api_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        match major {
            None => {
                return Err(crate::usage(
                    "--api-version",
                    format!(
                        "{:?} is not a version (only 2.0 is supported)",
                        self.api_version
                    ),
                ));
            }
            Some(m) if m < 2 => {
                return Err(crate::usage(
                    "--api-version",
                    "REST API v1 is no longer supported. Please update the API version to 2.0.",
                ));
            }
            Some(_) => {}
        }
        let node_name = match &self.node_name {
            Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
            _ => {
                return Err(crate::usage(
                    "NODE_NAME",
                    "not set: set the NODE_NAME environment variable (or --node-name) to this node's name",
                ));
            }
        };
        if self.queue_capacity == 0 {
            return Err(crate::usage("--queue-capacity", "must be at least 1"));
        }
        if self.failure_budget == 0 {
            return Err(crate::usage("--failure-budget", "must be at least 1"));
        }
        if self.delivery_timeout_ms == 0 {
            return Err(crate::usage("--delivery-timeout-ms", "must be at least 1"));
        }
        if self.initial_notification_timeout_ms == 0 {
            return Err(crate::usage(
                "--initial-notification-timeout-ms",
                "must be at least 1",
            ));
        }
        let mut uri_location_base = proxy::uri_location_base(
            &self.transport_host,
            &node_name,
            self.node_ip.as_deref(),
            self.api_port,
        );
        match url::Url::parse(&uri_location_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => {
                return Err(crate::usage(
                    "--transport-host",
                    format!(
                        "{:?}: expected a host or an http(s) URL, e.g. http://ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043",
                        self.transport_host
                    ),
                ));
            }
        }
        if self.tls_cert.is_some()
            && let Some(rest) = uri_location_base.strip_prefix("http://")
        {
            // The API is only served over TLS then.
            uri_location_base = format!("https://{rest}");
        }
        Ok(ProducerConfig {
            uri_location_base,
            node_name,
            api_addr: SocketAddr::new(self.api_bind, self.api_port),
            metrics_addr: parse_listen_addr(&self.metrics_addr)
                .map_err(|e| crate::usage("--metrics-addr", e))?,
            store_path: self.store_path.clone(),
            delivery: DeliveryConfig {
                timeout: Duration::from_millis(self.delivery_timeout_ms),
                initial_timeout: Duration::from_millis(self.initial_notification_timeout_ms),
                retry_backoff: self
                    .retry_backoff_ms
                    .iter()
                    .map(|ms| Duration::from_millis(*ms))
                    .collect(),
                failure_budget: self.failure_budget,
                queue_capacity: self.queue_capacity,
                tls: match &self.delivery_ca_file {
                    Some(ca) => Some(std::sync::Arc::new(
                        proxy::tls::DeliveryTls::open(proxy::tls::DeliveryTlsFiles {
                            ca: ca.clone(),
                            client_identity: self
                                .delivery_client_cert
                                .clone()
                                .zip(self.delivery_client_key.clone()),
                        })
                        .map_err(anyhow::Error::msg)?,
                    )),
                    None => None,
                },
            },
            max_body_bytes: self.max_body_bytes,
        })
    }
}

impl ProxyArgs {
    /// The API policy these flags describe (authentication, limits, EndpointUri policy).
    pub fn policy(&self) -> anyhow::Result<proxy::ApiPolicy> {
        if self.max_subscriptions == 0 || self.max_subscriptions_per_host == 0 {
            return Err(crate::usage(
                "--max-subscriptions, --max-subscriptions-per-host",
                "must be at least 1",
            ));
        }
        if self.header_read_timeout_ms == 0 {
            return Err(crate::usage(
                "--header-read-timeout-ms",
                "must be at least 1",
            ));
        }
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            return Err(crate::usage(
                "--max-connections, --max-connections-per-client",
                "must be at least 1",
            ));
        }
        if self.idle_timeout_ms == 0 {
            return Err(crate::usage("--idle-timeout-ms", "must be at least 1"));
        }
        let token_review = if self.auth_token_review {
            let mut cfg =
                proxy::tokenreview::TokenReviewConfig::in_cluster(self.kube_api_server.as_deref())
                    .map_err(anyhow::Error::msg)?;
            if let Some(f) = &self.kube_ca_file {
                cfg.ca_file = f.clone();
            }
            if let Some(f) = &self.kube_token_file {
                cfg.token_file = f.clone();
            }
            cfg.audiences = self.auth_audience.clone();
            cfg.allow_users = self.auth_allow_user.clone();
            cfg.allow_groups = self.auth_allow_group.clone();
            cfg.cache_ttl = Duration::from_millis(self.auth_cache_ttl_ms);
            cfg.negative_cache_ttl = Duration::from_millis(self.auth_negative_cache_ttl_ms);
            if self.kube_api_timeout_ms == 0 {
                return Err(crate::usage("--kube-api-timeout-ms", "must be at least 1"));
            }
            cfg.timeout = Duration::from_millis(self.kube_api_timeout_ms);
            cfg.reviews_per_client = self.auth_max_reviews_per_client;
            Some(cfg)
        } else {
            let given = self.kube_api_server.is_some()
                || self.kube_ca_file.is_some()
                || self.kube_token_file.is_some()
                || !self.auth_audience.is_empty()
                || !self.auth_allow_user.is_empty()
                || !self.auth_allow_group.is_empty();
            if given {
                return Err(crate::usage(
                    "--kube-api-server, --kube-ca-file, --kube-token-file, --auth-audience, \
                     --auth-allow-user, --auth-allow-group",
                    "need --auth-token-review",
                ));
            }
            None
        };
        Ok(proxy::ApiPolicy {
            auth_token_file: self.auth_token_file.clone(),
            token_review,
            endpoint_allow: self.endpoint_allow.clone(),
            max_subscriptions: self.max_subscriptions,
            max_subscriptions_per_host: self.max_subscriptions_per_host,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_requests_per_client: self.max_requests_per_client,
            request_window: Duration::from_secs(1),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(proxy::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }),
                (None, None) => None,
                _ => {
                    return Err(crate::usage(
                        "--tls-cert, --tls-key",
                        "go together (give both or neither)",
                    ));
                }
            },
            metrics_tls: self.metrics_tls,
            metrics_routes: None,
        })
    }
}

impl ProxyArgs {
    /// The ingest configuration these flags describe.
    pub fn ingest(&self, node: &str) -> IngestConfig {
        let mut engine = EngineConfig::new(node);
        engine.downtime_threshold = Duration::from_millis(self.downtime_threshold_ms);
        let mut cfg = IngestConfig::new(engine);
        cfg.socket = match self.socket.trim() {
            "" | "off" => None,
            p => Some(PathBuf::from(p)),
        };
        cfg.daemon_api = self.daemon_api.0.clone().map(|mut u| {
            if !u.path().ends_with('/') {
                u.set_path(&format!("{}/", u.path()));
            }
            u
        });
        cfg
    }
}

/// `--daemon-api`: a URL, or `off`.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonApi(pub Option<url::Url>);

fn parse_daemon_api(s: &str) -> Result<DaemonApi, String> {
    match s.trim() {
        "" | "off" => Ok(DaemonApi(None)),
        v => url::Url::parse(v)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| DaemonApi(Some(u)))
            .ok_or_else(|| format!("{v:?} is not an http(s) URL (or `off`)")),
    }
}

/// Runs the producer until SIGINT/SIGTERM.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let node = cfg.node_name.clone();
    let mut ingest_cfg = args.ingest(&cfg.node_name);
    let mut policy = args.policy()?;
    if args.status_page {
        if cfg.metrics_addr.is_none() {
            return Err(crate::usage(
                "--status-page",
                "is served on the metrics listener: --metrics-addr must not be off",
            ));
        }
        let page = crate::live_page::LivePage::new(&format!("PTP events of {node}"), -100, 100);
        ingest_cfg.observer = Some(page.clone());
        policy.metrics_routes = Some(crate::live_page::router(page, "/status/"));
    }
    let producer = Producer::start_with(cfg, policy).await?;
    let socket = ingest_cfg
        .socket
        .as_ref()
        .map_or_else(|| "off".to_owned(), |p| p.display().to_string());
    let ingest = Ingest::start(producer.hub.clone(), ingest_cfg).await?;
    // Every listener is up (API, metrics, the daemon socket).
    tracing::info!(api = %producer.api_addr, socket = %socket, "producer ready");
    let learn = tokio::spawn(learn_profiles(
        ingest.engine(),
        args.ptp_config_dir.clone(),
        args.profile_dir.join(&node),
        node.clone(),
        Duration::from_secs(args.config_update_interval.max(1)),
    ));
    producer.run_until(crate::shutdown_signal()).await;
    learn.abort();
    ingest.stop();
    tracing::info!("producer stopped");
    Ok(())
}

/// What the sidecar learns from the shared volumes: the rendered configs in `run_dir` (config
/// names, profile names, interfaces) and each profile's thresholds from `profile_file`.
pub fn read_profiles(
    run_dir: &std::path::Path,
    profile_file: &std::path::Path,
    node: &str,
) -> (Vec<(String, ptp_state::ProfileInfo)>, Vec<String>) {
    let mut notes = Vec::new();
    type Known = (ptp_state::Thresholds, Vec<(String, i64)>);
    let thresholds: std::collections::HashMap<String, Known> =
        match ptp_config::load_profiles(profile_file, &ptp_config::NodeSelector::new(node)) {
            Ok((_, profiles)) => profiles
                .iter()
                .map(|p| (p.name().to_owned(), (p.thresholds(), p.tbc_thresholds())))
                .collect(),
            Err(e) => {
                notes.push(format!("{e}; default thresholds are used"));
                Default::default()
            }
        };
    let configs = match ptp_config::read_rendered_configs(run_dir) {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("{}: {e}", run_dir.display()));
            Vec::new()
        }
    };
    let learned = configs
        .into_iter()
        .filter(|c| matches!(c.process.as_str(), "ptp4l" | "ts2phc"))
        .map(|c| {
            let (t, extra) = c
                .profile
                .as_ref()
                .and_then(|p| thresholds.get(p).cloned())
                .unwrap_or_default();
            let mut info = c.profile_info(t);
            info.extra_thresholds = extra;
            (c.config_name, info)
        })
        .collect();
    (learned, notes)
}

async fn learn_profiles(
    engine: std::sync::Arc<std::sync::Mutex<ptp_state::Engine>>,
    run_dir: PathBuf,
    profile_file: PathBuf,
    node: String,
    every: Duration,
) {
    let mut last: Option<Vec<(String, ptp_state::ProfileInfo)>> = None;
    let mut last_notes = Vec::new();
    loop {
        let (run_dir2, file2, node2) = (run_dir.clone(), profile_file.clone(), node.clone());
        let read =
            tokio::task::spawn_blocking(move || read_profiles(&run_dir2, &file2, &node2)).await;
        if let Ok((learned, notes)) = read {
            if notes != last_notes {
                for n in &notes {
                    tracing::info!("{n}");
                }
                last_notes = notes;
            }
            if last.as_ref() != Some(&learned) {
                let mut e = engine.lock().expect("engine lock");
                for (config, info) in &learned {
                    tracing::info!(config = %config, profile = %info.name, interfaces = ?info.interfaces, "learned config");
                    e.set_profile(config, info.clone());
                }
                drop(e);
                last = Some(learned);
            }
        }
        // Until a config is found, look every second: the daemon renders them just before it
        // starts ptp4l, whose lines are attributed to an interface from them.
        let found = last.as_ref().is_some_and(|l| !l.is_empty());
        tokio::time::sleep(if found {
            every
        } else {
            every.min(Duration::from_secs(1))
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: ProxyArgs,
    }

    #[test]
    fn the_daemon_api_is_asked_where_the_go_producer_asks_it_unless_off() {
        // (DAEMON_API is not set where the tests run.)
        let default = W::try_parse_from(["proxy"]).expect("parses").a.daemon_api;
        assert_eq!(
            default.0.as_ref().map(url::Url::as_str),
            Some("http://localhost:8081/")
        );
        let off = W::try_parse_from(["proxy", "--daemon-api", "off"]).expect("parses");
        assert_eq!(off.a.daemon_api, DaemonApi(None));
        assert!(W::try_parse_from(["proxy", "--daemon-api", "banana"]).is_err());
        assert!(W::try_parse_from(["proxy", "--daemon-api", "ftp://x"]).is_err());
    }
}
