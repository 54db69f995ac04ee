//! Bearer tokens checked by the Kubernetes API server (`authentication.k8s.io/v1`
//! `TokenReview`), with an allow list of users and groups and a cache.
//!
//! For each token not in the cache the producer POSTs
//! `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":…,"audiences":[…]}}`
//! to `<api-server>/apis/authentication.k8s.io/v1/tokenreviews`, authenticated with its own
//! service-account token (re-read from its file on every review: the kubelet rotates it) over
//! HTTPS trusting only the cluster CA file (re-read when it changes). The answer's
//! `status.authenticated`, `status.user` and `status.audiences` decide. The producer's service
//! account needs the ClusterRole `system:auth-delegator`.
//!
//! Verdicts are cached by the SHA-256 of the token (the token itself is not kept): accepted and
//! forbidden ones for `cache_ttl`, refused ones for `negative_cache_ttl`, in two caches (forged
//! tokens cannot evict valid ones). Concurrent requests with one token share one review; at most
//! [`MAX_REVIEWS_IN_FLIGHT`] reviews run at once, and each client address may cause at most
//! `reviews_per_client` reviews per `review_window` (a token bucket; beyond, 429 with
//! `Retry-After`, so that one client cycling forged tokens cannot keep the API server and the
//! review slots busy; cached verdicts cost nothing). When the API server
//! cannot be asked (unreachable, timeout, an error answer, the producer's own credentials
//! refused), the request is refused with 503 and nothing is cached: authentication fails closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::security::{FileStamp, file_stamp};

use serde::Deserialize;
use serde_json::json;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

/// Where a pod finds its service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The path of the TokenReview collection.
pub const TOKENREVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// Default of [`TokenReviewConfig::cache_ttl`].
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default of [`TokenReviewConfig::negative_cache_ttl`].
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(10);
/// Default of [`TokenReviewConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most verdicts kept in each cache (accepted/forbidden, refused); beyond, expired ones are
/// dropped, then all of that cache.
const CACHE_CAPACITY: usize = 10_000;
/// Most reviews sent to the API server at once; beyond, a request is answered 503.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 64;
/// Default of [`TokenReviewConfig::reviews_per_client`].
pub const DEFAULT_REVIEWS_PER_CLIENT: u32 = 20;
/// Default of [`TokenReviewConfig::review_window`].
pub const DEFAULT_REVIEW_WINDOW: Duration = Duration::from_secs(10);

/// How to reach the API server and whom to admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenReviewConfig {
    /// The API server, `https://host:port`.
    pub api_server: String,
    /// PEM file of the CA(s) that issued the API server's certificate.
    pub ca_file: PathBuf,
    /// The producer's own service-account token.
    pub token_file: PathBuf,
    /// Audiences the tokens must be valid for (`spec.audiences`); empty: the API server's.
    pub audiences: Vec<String>,
    /// Users admitted (`system:serviceaccount:<namespace>:<name>`, ...).
    pub allow_users: Vec<String>,
    /// Groups admitted (`system:serviceaccounts:<namespace>`, ...). With neither users nor
    /// groups, every authenticated identity is admitted.
    pub allow_groups: Vec<String>,
    /// How long an accepted (or forbidden) token's verdict is kept.
    pub cache_ttl: Duration,
    /// How long a refused token's verdict is kept.
    pub negative_cache_ttl: Duration,
    /// Timeout of one review (connection included).
    pub timeout: Duration,
    /// Most reviews one client address may cause per `review_window` (cached verdicts cost
    /// nothing); 0: no limit.
    pub reviews_per_client: u32,
    /// The window of `reviews_per_client`: the budget refills at `reviews_per_client` per window.
    pub review_window: Duration,
}

impl TokenReviewConfig {
    /// The in-cluster configuration: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`
    /// and the service account's `ca.crt` and `token`, unless `api_server` is given.
    pub fn in_cluster(api_server: Option<&str>) -> Result<TokenReviewConfig, String> {
        let api_server = match api_server {
            Some(s) => s.trim_end_matches('/').to_owned(),
            None => {
                let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
                    "TokenReview: KUBERNETES_SERVICE_HOST is not set (not in a pod?); give --kube-api-server".to_owned()
                })?;
                let port =
                    std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
                if host.contains(':') {
                    format!("https://[{host}]:{port}")
                } else {
                    format!("https://{host}:{port}")
                }
            }
        };
        let dir = Path::new(SERVICE_ACCOUNT_DIR);
        Ok(TokenReviewConfig {
            api_server,
            ca_file: dir.join("ca.crt"),
            token_file: dir.join("token"),
            audiences: Vec::new(),
            allow_users: Vec::new(),
            allow_groups: Vec::new(),
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            timeout: DEFAULT_TIMEOUT,
            reviews_per_client: DEFAULT_REVIEWS_PER_CLIENT,
            review_window: DEFAULT_REVIEW_WINDOW,
        })
    }
}

/// What the review decided about one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated and admitted; the user name.
    Allowed(String),
    /// Not authenticated (or not for our audience); why.
    Refused(String),
    /// Authenticated, but the user is not admitted; why.
    Forbidden(String),
    /// The API server could not be asked; why (not cached).
    Unavailable(String),
    /// Not asked: the client has used its review budget; when to retry (not cached).
    Limited(Duration),
}

#[derive(Deserialize, Default)]
struct Review {
    #[serde(default)]
    status: ReviewStatus,
}

#[derive(Deserialize, Default)]
struct ReviewStatus {
    #[serde(default)]
    authenticated: bool,
    #[serde(default)]
    user: ReviewUser,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize, Default)]
struct ReviewUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// The cache key of a token: its SHA-256 (the token itself is not kept).
fn token_key(token: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Asks the API server about bearer tokens.
pub struct TokenReviewer {
    cfg: TokenReviewConfig,
    url: String,
    /// The HTTPS client and the stamp of the CA file it trusts.
    http: Mutex<(FileStamp, reqwest::Client)>,
    /// Accepted and forbidden verdicts.
    cache: Mutex<HashMap<[u8; 32], (Instant, Verdict)>>,
    /// Refused verdicts.
    negative_cache: Mutex<HashMap<[u8; 32], (Instant, Verdict)>>,
    /// Reviews under way, by token.
    inflight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<Verdict>>>>,
    in_flight: tokio::sync::Semaphore,
    /// Reviews each client address may cause.
    budgets: crate::budget::ClientBudgets,
    /// Reviews by verdict, when counted.
    outcomes: Option<prometheus::IntCounterVec>,
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewer")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn https_client(ca_file: &Path, timeout: Duration) -> Result<reqwest::Client, String> {
    let pem = std::fs::read(ca_file)
        .map_err(|e| format!("TokenReview CA file {}: {e}", ca_file.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("TokenReview CA file {}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("TokenReview CA file {}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "TokenReview CA file {}: no PEM certificate in it",
            ca_file.display()
        ));
    }
    let tls = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TokenReview TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("TokenReview HTTPS client: {e}"))
}

fn read_token(path: &Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("service-account token {}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("service-account token {} is empty", path.display()));
    }
    Ok(t.to_owned())
}

impl TokenReviewer {
    /// Checks the configuration: the API server URL is https, the CA file holds a certificate,
    /// the token file is readable. The API server itself is not contacted.
    pub fn new(cfg: TokenReviewConfig) -> Result<TokenReviewer, String> {
        let url = url::Url::parse(&cfg.api_server)
            .map_err(|e| format!("--kube-api-server {:?}: {e}", cfg.api_server))?;
        if url.scheme() != "https" {
            return Err(format!(
                "--kube-api-server {:?}: must be https (service-account tokens are secrets)",
                cfg.api_server
            ));
        }
        read_token(&cfg.token_file)?;
        let client = https_client(&cfg.ca_file, cfg.timeout)?;
        let full = format!("{}{TOKENREVIEW_PATH}", url.as_str().trim_end_matches('/'));
        let stamp = file_stamp(&cfg.ca_file);
        Ok(TokenReviewer::with_client(cfg, full, stamp, client))
    }

    /// A reviewer posting to `url` with `client` (trusting the CA file of `stamp`), empty caches.
    fn with_client(
        cfg: TokenReviewConfig,
        url: String,
        stamp: FileStamp,
        client: reqwest::Client,
    ) -> TokenReviewer {
        TokenReviewer {
            budgets: crate::budget::ClientBudgets::new(
                cfg.reviews_per_client,
                cfg.review_window,
                "TokenReview",
            ),
            http: Mutex::new((stamp, client)),
            url,
            cfg,
            cache: Mutex::new(HashMap::new()),
            negative_cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            in_flight: tokio::sync::Semaphore::new(MAX_REVIEWS_IN_FLIGHT),
            outcomes: None,
        }
    }

    /// Counts every review sent in `counter`, labelled by verdict (`allowed`, `refused`,
    /// `forbidden`, `unavailable`).
    pub fn count_in(mut self, counter: prometheus::IntCounterVec) -> TokenReviewer {
        self.outcomes = Some(counter);
        self
    }

    /// The client to use, rebuilt when the CA file changed (a CA file that became unusable
    /// keeps the previous client, with a warning).
    fn client(&self) -> reqwest::Client {
        let now = file_stamp(&self.cfg.ca_file);
        let mut http = self.http.lock().expect("tokenreview lock");
        if now.is_some() && now != http.0 {
            match https_client(&self.cfg.ca_file, self.cfg.timeout) {
                Ok(c) => {
                    tracing::info!(file = %self.cfg.ca_file.display(), "TokenReview CA reloaded");
                    *http = (now, c);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TokenReview CA file changed but cannot be used; keeping the previous one");
                    http.0 = now;
                }
            }
        }
        http.1.clone()
    }

    /// Decides about `token` presented by `client` (when known), from the cache or by asking
    /// the API server. Concurrent requests with the same uncached token share one review, which
    /// is charged to the client that started it.
    pub async fn review(&self, token: &str, client: Option<IpAddr>) -> Verdict {
        let key = token_key(token);
        if let Some(v) = self.cached(&key) {
            return v;
        }
        let cell = self
            .inflight
            .lock()
            .expect("inflight lock")
            .entry(key)
            .or_default()
            .clone();
        // A client over its budget gets `Err` and leaves the cell empty: requests of other
        // clients waiting on it then try themselves, on their own budgets.
        let verdict = cell
            .get_or_try_init(|| async {
                // Another request may have finished a review of this token meanwhile.
                if let Some(v) = self.cached(&key) {
                    return Ok(v);
                }
                let v = self.review_now(token, client).await?;
                self.remember(key, &v);
                Ok(v)
            })
            .await
            .cloned();
        let mut inflight = self.inflight.lock().expect("inflight lock");
        if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(&key);
        }
        verdict.unwrap_or_else(Verdict::Limited)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Verdict> {
        let now = Instant::now();
        let lookup = |cache: &Mutex<HashMap<[u8; 32], (Instant, Verdict)>>| {
            cache
                .lock()
                .expect("cache lock")
                .get(key)
                .filter(|(expiry, _)| *expiry > now)
                .map(|(_, v)| v.clone())
        };
        lookup(&self.cache).or_else(|| lookup(&self.negative_cache))
    }

    /// Caches a verdict: accepted and forbidden ones (which need a valid token) apart from
    /// refused ones, so that a flood of forged tokens cannot evict the valid ones.
    fn remember(&self, key: [u8; 32], verdict: &Verdict) {
        let (cache, ttl) = match verdict {
            Verdict::Allowed(_) | Verdict::Forbidden(_) => (&self.cache, self.cfg.cache_ttl),
            Verdict::Refused(_) => (&self.negative_cache, self.cfg.negative_cache_ttl),
            Verdict::Unavailable(_) | Verdict::Limited(_) => return,
        };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = cache.lock().expect("cache lock");
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, (e, _)| *e > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key, (now + ttl, verdict.clone()));
    }

    /// One review, counted; at most [`MAX_REVIEWS_IN_FLIGHT`] at once (beyond: unavailable).
    /// It is charged to `client`'s budget only when it is sent (`Err`: the budget is used up,
    /// retry after the duration) and given back when the API server could not be asked.
    async fn review_now(&self, token: &str, client: Option<IpAddr>) -> Result<Verdict, Duration> {
        let verdict = match self.in_flight.try_acquire() {
            Ok(_permit) => {
                if let Some(wait) = client.and_then(|c| self.budgets.charge(c)) {
                    return Err(wait);
                }
                let (v, reached) = self.ask(token).await;
                // Given back only when the API server did no work (an overloaded or throttling
                // API server must not switch the budget off).
                if let (false, Some(c)) = (reached, client) {
                    self.budgets.refund(c);
                }
                v
            }
            Err(_) => Verdict::Unavailable(format!(
                "more than {MAX_REVIEWS_IN_FLIGHT} token reviews in flight"
            )),
        };
        if let Some(c) = &self.outcomes {
            let label = match &verdict {
                Verdict::Allowed(_) => "allowed",
                Verdict::Refused(_) => "refused",
                Verdict::Forbidden(_) => "forbidden",
                Verdict::Unavailable(_) => "unavailable",
                Verdict::Limited(_) => "limited",
            };
            c.with_label_values(&[label]).inc();
        }
        match &verdict {
            Verdict::Unavailable(why) => {
                tracing::warn!(error = %why, "TokenReview unavailable; refusing the request");
            }
            Verdict::Limited(_) => {}
            Verdict::Refused(why) | Verdict::Forbidden(why) => {
                tracing::info!(reason = %why, "bearer token refused after TokenReview");
            }
            Verdict::Allowed(user) => {
                tracing::debug!(user = %user, "bearer token admitted after TokenReview");
            }
        }
        Ok(verdict)
    }

    /// Asks the API server; also whether the review reached it (`false`: nothing was sent, or
    /// the connection could not be made).
    async fn ask(&self, token: &str) -> (Verdict, bool) {
        let own = match read_token(&self.cfg.token_file) {
            Ok(t) => t,
            Err(e) => return (Verdict::Unavailable(e), false),
        };
        let mut spec = json!({ "token": token });
        if !self.cfg.audiences.is_empty() {
            spec["audiences"] = json!(self.cfg.audiences);
        }
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        });
        let resp = match self
            .client()
            .post(&self.url)
            .bearer_auth(own)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let mut cause: &dyn std::error::Error = &e;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                // A timeout or a broken answer may have cost the API server the review.
                let reached = !e.is_connect() && !e.is_builder();
                return (
                    Verdict::Unavailable(format!("POST {}: {e}: {cause}", self.url)),
                    reached,
                );
            }
        };
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return (
                Verdict::Unavailable(format!(
                    "POST {}: HTTP {status}: the API server refused the producer's own credentials \
                     (its service account needs the ClusterRole system:auth-delegator)",
                    self.url
                )),
                true,
            );
        }
        if !status.is_success() {
            return (
                Verdict::Unavailable(format!("POST {}: HTTP {status}", self.url)),
                true,
            );
        }
        let review: Review = match resp.json().await {
            Ok(r) => r,
            Err(e) => {
                return (
                    Verdict::Unavailable(format!("POST {}: unreadable answer: {e}", self.url)),
                    true,
                );
            }
        };
        (self.decide(review.status), true)
    }

    fn decide(&self, st: ReviewStatus) -> Verdict {
        if !st.authenticated {
            return Verdict::Refused(if st.error.is_empty() {
                "the token is not authenticated".into()
            } else {
                format!("the token is not authenticated: {}", st.error)
            });
        }
        if !self.cfg.audiences.is_empty()
            && !st.audiences.iter().any(|a| self.cfg.audiences.contains(a))
        {
            return Verdict::Refused(format!(
                "the token is not valid for the audience {:?}",
                self.cfg.audiences
            ));
        }
        let user = st.user.username;
        let open = self.cfg.allow_users.is_empty() && self.cfg.allow_groups.is_empty();
        if open
            || self.cfg.allow_users.contains(&user)
            || st
                .user
                .groups
                .iter()
                .any(|g| self.cfg.allow_groups.contains(g))
        {
            Verdict::Allowed(user)
        } else {
            Verdict::Forbidden(format!("{user} is not among the admitted users and groups"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewer(users: &[&str], groups: &[&str], audiences: &[&str]) -> TokenReviewer {
        let cfg = TokenReviewConfig {
            api_server: "https://127.0.0.1:1".into(),
            ca_file: "/nonexistent".into(),
            token_file: "/nonexistent".into(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            allow_users: users.iter().map(|s| s.to_string()).collect(),
            allow_groups: groups.iter().map(|s| s.to_string()).collect(),
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            timeout: DEFAULT_TIMEOUT,
            reviews_per_client: 3,
            review_window: Duration::from_secs(30),
        };
        TokenReviewer::with_client(cfg, String::new(), None, reqwest::Client::new())
    }

    fn status(json: &str) -> ReviewStatus {
        serde_json::from_str::<Review>(json).unwrap().status
    }

    #[test]
    fn decisions() {
        let _ = crypto::ring::default_provider().install_default();
        let ok = r#"{"status":{"authenticated":true,"user":{"username":"system:serviceaccount:vdu:app","groups":["system:serviceaccounts","system:serviceaccounts:vdu"]},"audiences":["ptp"]}}"#;
        let r = reviewer(&[], &[], &[]);
        assert_eq!(
            r.decide(status(ok)),
            Verdict::Allowed("system:serviceaccount:vdu:app".into())
        );
        let r = reviewer(&[], &["system:serviceaccounts:vdu"], &[]);
        assert!(matches!(r.decide(status(ok)), Verdict::Allowed(_)));
        let r = reviewer(&["system:serviceaccount:other:x"], &[], &[]);
        assert!(matches!(r.decide(status(ok)), Verdict::Forbidden(_)));
        let r = reviewer(&[], &[], &["ptp"]);
        assert!(matches!(r.decide(status(ok)), Verdict::Allowed(_)));
        let r = reviewer(&[], &[], &["other"]);
        assert!(matches!(r.decide(status(ok)), Verdict::Refused(_)));
        let r = reviewer(&[], &[], &[]);
        assert_eq!(
            r.decide(status(
                r#"{"status":{"authenticated":false,"error":"token expired"}}"#
            )),
            Verdict::Refused("the token is not authenticated: token expired".into())
        );
        // An answer without a status authenticates nobody.
        assert!(matches!(r.decide(status("{}")), Verdict::Refused(_)));
    }

    /// A flood of forged tokens (more than a cache holds, none expired) does not evict the
    /// verdicts of valid tokens; the refused ones stay bounded.
    #[test]
    fn forged_tokens_do_not_evict_valid_ones() {
        let _ = crypto::ring::default_provider().install_default();
        let r = reviewer(&[], &[], &[]);
        let valid = token_key("valid");
        let forbidden = token_key("forbidden");
        r.remember(valid, &Verdict::Allowed("app".into()));
        r.remember(forbidden, &Verdict::Forbidden("other".into()));
        for i in 0..3 * CACHE_CAPACITY {
            r.remember(
                token_key(&format!("forged-{i}")),
                &Verdict::Refused("bad".into()),
            );
            assert!(r.negative_cache.lock().unwrap().len() <= CACHE_CAPACITY);
        }
        assert_eq!(r.cached(&valid), Some(Verdict::Allowed("app".into())));
        assert_eq!(
            r.cached(&forbidden),
            Some(Verdict::Forbidden("other".into()))
        );
        let last = token_key(&format!("forged-{}", 3 * CACHE_CAPACITY - 1));
        assert_eq!(r.cached(&last), Some(Verdict::Refused("bad".into())));
        // An outage is never cached.
        let down = token_key("down");
        r.remember(down, &Verdict::Unavailable("timeout".into()));
        assert_eq!(r.cached(&down), None);
    }
}
