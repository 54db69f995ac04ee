//! The REST client for one publisher (producer).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oran_api::{API_BASE_PATH, SubscriptionInfo};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::{ApiError, Error, problem_of, root_cause};
use crate::event::{Event, decode_events};

/// The default timeout of one request. Creating a subscription includes the producer's initial
/// notification to your endpoint (up to 2 s per resource on the Go producer), hence not less.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default timeout to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one publisher's REST API v2 (`/api/ocloudNotifications/v2/`).
///
/// Cheap to clone (the connection pool is shared). Works against this project's producer and the
/// Go `cloud-event-proxy` alike.
///
/// ```no_run
/// # async fn demo() -> Result<(), ptp_events_client::Error> {
/// use ptp_events_client::{Client, Resource, resource_address};
/// let client = Client::new("localhost:9043")?;
/// client.health().await?;
/// let lock_state = resource_address("lab-node", Resource::LockState);
/// let sub = client.subscribe(&lock_state, "http://127.0.0.1:8989/event").await?;
/// println!("subscribed: {}", sub.subscription_id);
/// let now = client.current_state(&lock_state).await?;
/// println!("lock state: {:?}, offset {:?} ns", now.sync_state(), now.offset_ns());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api: Url,
    timeout: Duration,
    token: Option<Arc<BearerToken>>,
}

/// Builds a [`Client`] with non-default settings.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    publisher: String,
    api_path: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    token: Option<BearerToken>,
    ca_file: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer <token>` with every request (for a producer started with
    /// `--auth-token-file` or TokenReview authentication).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(BearerToken::Static(token.into()));
        self
    }

    /// Like [`ClientBuilder::bearer_token`], with the token read from a file, re-read when the
    /// file changes: a Kubernetes projected service-account token, which the kubelet rotates,
    /// stays valid. Surrounding white space is ignored. The file must be readable at
    /// [`ClientBuilder::build`].
    pub fn bearer_token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token = Some(BearerToken::File(TokenFile::new(path.into())));
        self
    }

    /// Trusts only the CA certificates of this PEM file for `https://` publishers (without it,
    /// the system's trust store is used).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate (PEM chain, leaf first) and its private key (PEM) to
    /// `https://` publishers that require mutual TLS.
    pub fn client_identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// Sets the API path (default `/api/ocloudNotifications/v2/`, or the path given in the
    /// publisher URL).
    pub fn api_path(mut self, path: impl Into<String>) -> Self {
        self.api_path = Some(path.into());
        self
    }

    /// Sets the timeout of a whole request (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the timeout to connect (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let api = api_url(&self.publisher, self.api_path.as_deref())?;
        let config = |message: String| Error::Config {
            publisher: self.publisher.clone(),
            message,
        };
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        if let Some(ca) = &self.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| config(format!("CA file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| config(format!("CA file {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(config(format!(
                    "CA file {}: no PEM certificate in it",
                    ca.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        } else if api.scheme() == "http" {
            // No TLS on this connection: do not load the system's trust store, which a slim
            // container image does not have (the platform verifier then refuses to build).
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
        if let Some((cert, key)) = &self.identity {
            let mut pem = std::fs::read(cert)
                .map_err(|e| config(format!("client certificate {}: {e}", cert.display())))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| config(format!("client key {}: {e}", key.display())))?,
            );
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                config(format!(
                    "client certificate {} / key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(id);
        }
        if let Some(token) = &self.token {
            token.value().map_err(config)?;
        }
        let http = builder.build().map_err(|e| {
            let mut why = format!("{e}: {}", crate::error::root_cause(&e));
            if api.scheme() == "https" && self.ca_file.is_none() {
                why.push_str(
                    " (https without a CA file uses the system trust store: install one, e.g. \
                     Debian's ca-certificates, or give the publisher's CA file)",
                );
            }
            config(format!("cannot build an HTTP client: {why}"))
        })?;
        Ok(Client {
            http,
            api,
            timeout: self.timeout,
            token: self.token.map(Arc::new),
        })
    }
}

/// The producer's API port, used when a publisher address gives none.
pub const DEFAULT_API_PORT: u16 = 9043;

/// Whether `url` (with a scheme) names a port in its authority.
fn explicit_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    }
}

/// The API root URL of a publisher given as `host:port`, `http://host:port` or a full URL (no
/// port: [`DEFAULT_API_PORT`]).
fn api_url(publisher: &str, api_path: Option<&str>) -> Result<Url, Error> {
    let invalid = |message: String| Error::InvalidAddress {
        address: publisher.to_owned(),
        message,
    };
    let p = publisher.trim();
    if p.is_empty() {
        return Err(invalid("empty publisher address".into()));
    }
    let with_scheme = if p.contains("://") {
        p.to_owned()
    } else {
        format!("http://{p}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(format!(
            "scheme {:?} is not supported (use http or https)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    // No port given: the API's port (9043), never http's 80.
    if !explicit_port(&with_scheme) {
        url.set_port(Some(DEFAULT_API_PORT))
            .map_err(|()| invalid("cannot set the port".into()))?;
    }
    let path = match api_path {
        Some(p) => p.to_owned(),
        None if url.path() != "/" => url.path().to_owned(),
        None => API_BASE_PATH.to_owned(),
    };
    let mut path = format!("/{}", path.trim_matches('/'));
    if path != "/" {
        path.push('/');
    }
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

impl Client {
    /// A client of the publisher at `publisher`: `host:port` (as `--http-event-publishers`
    /// takes it), `http://host:port`, or a full URL whose path is the API path.
    ///
    /// ```
    /// let c = ptp_events_client::Client::new("localhost:9043")?;
    /// assert_eq!(c.api_url().as_str(), "http://localhost:9043/api/ocloudNotifications/v2/");
    /// # Ok::<(), ptp_events_client::Error>(())
    /// ```
    pub fn new(publisher: &str) -> Result<Client, Error> {
        Client::builder(publisher).build()
    }

    /// A builder for a client of `publisher` (see [`Client::new`]).
    pub fn builder(publisher: &str) -> ClientBuilder {
        ClientBuilder {
            publisher: publisher.to_owned(),
            api_path: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            token: None,
            ca_file: None,
            identity: None,
        }
    }

    /// The API root, ending with `/`.
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    fn url(&self, rel: &str) -> String {
        format!("{}{}", self.api, rel.trim_start_matches('/'))
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let m = method_name(&method);
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            // A token file that became unreadable is reported as the call's error.
            let value = token.value().map_err(|message| Error::Config {
                publisher: self.api.to_string(),
                message,
            })?;
            req = req.bearer_auth(value);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::Timeout {
                    method: m,
                    url: url.to_owned(),
                    timeout: self.timeout,
                }
            } else if e.is_connect() {
                Error::Connect {
                    method: m,
                    url: url.to_owned(),
                    cause: root_cause(&e),
                    source: Box::new(e),
                }
            } else {
                Error::Transport {
                    method: m,
                    url: url.to_owned(),
                    cause: root_cause(&e),
                    source: Box::new(e),
                }
            }
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        Ok((status, bytes.to_vec()))
    }

    /// Calls and accepts only `ok`; any other status becomes a typed error.
    async fn expect(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        ok: StatusCode,
    ) -> Result<Vec<u8>, Error> {
        let name = method_name(&method);
        let (status, bytes) = self.call(method, url, body).await?;
        if status == ok {
            return Ok(bytes);
        }
        let (title, detail) = problem_of(&bytes);
        Err(Error::from_status(ApiError {
            method: name,
            url: url.to_owned(),
            status: status.as_u16(),
            title,
            detail,
        }))
    }

    /// `GET /health`: `Ok` when the publisher answers 200.
    pub async fn health(&self) -> Result<(), Error> {
        self.expect(Method::GET, &self.url("health"), None, StatusCode::OK)
            .await
            .map(drop)
    }

    /// `POST /subscriptions`: subscribes `endpoint_uri` to `resource_address`.
    ///
    /// Before answering, the producer POSTs an initial notification to `endpoint_uri`, which
    /// must answer 204 (the [`crate::receiver`] does), so the receiver must already be
    /// listening. Errors: [`Error::BadRequest`] (malformed, or the endpoint did not answer the
    /// initial notification with 204), [`Error::NotFound`] (unknown resource),
    /// [`Error::Conflict`] (this endpoint already subscribes to this resource).
    pub async fn subscribe(
        &self,
        resource_address: &str,
        endpoint_uri: &str,
    ) -> Result<SubscriptionInfo, Error> {
        let request = SubscriptionInfo {
            resource_address: resource_address.to_owned(),
            endpoint_uri: endpoint_uri.to_owned(),
            ..SubscriptionInfo::default()
        };
        let url = self.url("subscriptions");
        let body = serde_json::to_vec(&request).expect("a SubscriptionInfo serialises");
        let bytes = self
            .expect(Method::POST, &url, Some(body), StatusCode::CREATED)
            .await?;
        let info =
            SubscriptionInfo::from_json(&bytes).map_err(|message| Error::InvalidResponse {
                method: "POST",
                url: url.clone(),
                message,
            })?;
        if info.subscription_id.is_empty() {
            return Err(Error::InvalidResponse {
                method: "POST",
                url,
                message: "the created subscription has no SubscriptionId".into(),
            });
        }
        Ok(info)
    }

    /// Subscribes like [`Client::subscribe`]; when the publisher answers 409 (this endpoint
    /// already subscribes to `resource_address`, e.g. left by an earlier run of this application
    /// that was killed), deletes that one subscription (only this endpoint's, to this resource;
    /// other applications' are untouched) and subscribes again, so the initial notification
    /// arrives and the returned id is live.
    pub async fn subscribe_replacing_own(
        &self,
        resource_address: &str,
        endpoint_uri: &str,
    ) -> Result<SubscriptionInfo, Error> {
        match self.subscribe(resource_address, endpoint_uri).await {
            Err(e) if e.is_conflict() => {}
            other => return other,
        }
        tracing::info!(publisher = %self.api_url(), resource = %resource_address, endpoint = %endpoint_uri,
            "this endpoint already subscribes to the resource (409); replacing its subscription");
        self.replace_own(resource_address, endpoint_uri).await
    }

    /// After a 409: deletes `endpoint_uri`'s subscription(s) to `resource_address` and
    /// subscribes again.
    pub(crate) async fn replace_own(
        &self,
        resource_address: &str,
        endpoint_uri: &str,
    ) -> Result<SubscriptionInfo, Error> {
        let ours = self.subscriptions().await?;
        for s in ours.iter().filter(|s| {
            s.endpoint_uri.trim() == endpoint_uri.trim()
                && same_address(&s.resource_address, resource_address)
        }) {
            match self.unsubscribe(&s.subscription_id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        self.subscribe(resource_address, endpoint_uri).await
    }

    /// `GET /publishers`: the resources this publisher offers (their `ResourceAddress`es name
    /// its node).
    pub async fn publishers(&self) -> Result<Vec<SubscriptionInfo>, Error> {
        self.get_list("publishers").await
    }

    /// The node(s) this publisher serves, from the addresses of [`Client::publishers`]
    /// (`/cluster/node/<node>/...`), sorted and without duplicates.
    pub async fn served_nodes(&self) -> Result<Vec<String>, Error> {
        let mut nodes: Vec<String> = self
            .publishers()
            .await?
            .iter()
            .filter_map(|p| crate::address::node_of(&p.resource_address).map(str::to_owned))
            .collect();
        nodes.sort();
        nodes.dedup();
        Ok(nodes)
    }

    /// `GET /subscriptions`: every subscription of this publisher (of every consumer). Go's
    /// `null` for none is an empty list.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>, Error> {
        self.get_list("subscriptions").await
    }

    /// `GET /<what>`: a JSON list of subscription objects (Go's `null`: empty).
    async fn get_list(&self, what: &str) -> Result<Vec<SubscriptionInfo>, Error> {
        let url = self.url(what);
        let bytes = self.expect(Method::GET, &url, None, StatusCode::OK).await?;
        let list: Option<Vec<SubscriptionInfo>> =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidResponse {
                method: "GET",
                url,
                message: format!("not a list of {what}: {e}"),
            })?;
        Ok(list.unwrap_or_default())
    }

    /// `GET /subscriptions/{id}`.
    pub async fn subscription(&self, id: &str) -> Result<SubscriptionInfo, Error> {
        let url = self.url(&format!("subscriptions/{}", path_segment(id)));
        let bytes = self.expect(Method::GET, &url, None, StatusCode::OK).await?;
        SubscriptionInfo::from_json(&bytes).map_err(|message| Error::InvalidResponse {
            method: "GET",
            url,
            message,
        })
    }

    /// `DELETE /subscriptions/{id}`: [`Error::NotFound`] when there is no such subscription.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), Error> {
        let url = self.url(&format!("subscriptions/{}", path_segment(id)));
        self.expect(Method::DELETE, &url, None, StatusCode::NO_CONTENT)
            .await
            .map(drop)
    }

    /// `DELETE /subscriptions`: deletes **every** subscription of this publisher, including other
    /// consumers'. To remove only yours, call [`Client::unsubscribe`] for each of them.
    pub async fn unsubscribe_all(&self) -> Result<(), Error> {
        self.expect(
            Method::DELETE,
            &self.url("subscriptions"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await
        .map(drop)
    }

    /// `GET /{ResourceAddress}/CurrentState`: the current state of one resource.
    /// [`Error::NotFound`] when the resource is unknown or has no data yet.
    pub async fn current_state(&self, resource_address: &str) -> Result<Event, Error> {
        let (url, mut events) = self.current_state_raw(resource_address).await?;
        if events.len() != 1 {
            return Err(Error::InvalidResponse {
                method: "GET",
                url,
                message: format!(
                    "expected one event, got {} (the address covers several resources: use current_states)",
                    events.len()
                ),
            });
        }
        Ok(events.remove(0))
    }

    /// `GET /{ResourceAddress}/CurrentState` for an address that may cover several resources
    /// (e.g. `/cluster/node/<n>/sync` on this project's producer): every event of the answer.
    pub async fn current_states(&self, resource_address: &str) -> Result<Vec<Event>, Error> {
        self.current_state_raw(resource_address)
            .await
            .map(|(_, events)| events)
    }

    async fn current_state_raw(
        &self,
        resource_address: &str,
    ) -> Result<(String, Vec<Event>), Error> {
        let address = resource_address.trim().trim_start_matches('/');
        if address.is_empty() {
            return Err(Error::InvalidAddress {
                address: resource_address.to_owned(),
                message: "empty resource address".into(),
            });
        }
        let url = self.url(&format!("{address}/CurrentState"));
        let bytes = self.expect(Method::GET, &url, None, StatusCode::OK).await?;
        let events = decode_events(&bytes).map_err(|e| Error::InvalidResponse {
            method: "GET",
            url: url.clone(),
            message: e.0,
        })?;
        Ok((url, events))
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "REQUEST",
    }
}

/// Escapes the characters that would change the path's meaning.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            ' ' => out.push_str("%20"),
            c => out.push(c),
        }
    }
    out
}

/// Installs rustls' `ring` provider as the process default unless one is installed already.
///
/// The SDK builds reqwest without a TLS provider of its own; [`ClientBuilder::build`] calls this.
/// A program that also builds its own `reqwest` clients in the same process should call it (or
/// install a provider) first, since reqwest refuses to build a client without one.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Where the bearer token comes from. Its `Debug` never shows the token.
enum BearerToken {
    Static(String),
    File(TokenFile),
}

impl BearerToken {
    fn value(&self) -> Result<String, String> {
        match self {
            BearerToken::Static(t) => Ok(t.clone()),
            BearerToken::File(f) => f.value(),
        }
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerToken::Static(_) => f.write_str("BearerToken(<redacted>)"),
            BearerToken::File(t) => write!(f, "BearerToken(file {})", t.path.display()),
        }
    }
}

impl Clone for BearerToken {
    fn clone(&self) -> Self {
        match self {
            BearerToken::Static(t) => BearerToken::Static(t.clone()),
            BearerToken::File(f) => BearerToken::File(TokenFile::new(f.path.clone())),
        }
    }
}

/// A token file, re-read when its modification time, size or inode changes (the kubelet
/// replaces projected tokens by swapping a symbolic link).
struct TokenFile {
    path: PathBuf,
    cached: std::sync::Mutex<Option<(FileStamp, String)>>,
}

type FileStamp = (std::time::SystemTime, u64, u64);

impl TokenFile {
    fn new(path: PathBuf) -> TokenFile {
        TokenFile {
            path,
            cached: std::sync::Mutex::new(None),
        }
    }

    fn value(&self) -> Result<String, String> {
        use std::os::unix::fs::MetadataExt;
        let unreadable = |e: std::io::Error| format!("token file {}: {e}", self.path.display());
        let meta = std::fs::metadata(&self.path).map_err(unreadable)?;
        let stamp = (
            meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH),
            meta.len(),
            meta.ino(),
        );
        let mut cached = self.cached.lock().expect("token lock");
        if let Some((s, t)) = cached.as_ref()
            && *s == stamp
        {
            return Ok(t.clone());
        }
        let token = std::fs::read_to_string(&self.path)
            .map_err(unreadable)?
            .trim()
            .to_owned();
        if token.is_empty() {
            return Err(format!("token file {} is empty", self.path.display()));
        }
        *cached = Some((stamp, token.clone()));
        Ok(token)
    }
}

/// Whether a stored address and a requested one are the same resource (the producer stores the
/// canonical address, with a `.` node segment resolved to the node name).
pub(crate) fn same_address(stored: &str, requested: &str) -> bool {
    let (a, b) = (stored.trim(), requested.trim());
    a == b
        || b.split_once("/./")
            .is_some_and(|(_, tail)| a.ends_with(&format!("/{tail}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_forms() {
        let base = |p: &str| api_url(p, None).map(|u| u.to_string());
        assert_eq!(
            base("localhost:9043").unwrap(),
            "http://localhost:9043/api/ocloudNotifications/v2/"
        );
        assert_eq!(
            base("http://10.0.0.1:9043").unwrap(),
            "http://10.0.0.1:9043/api/ocloudNotifications/v2/"
        );
        assert_eq!(
            base("http://h:1/ocloudNotifications/v2").unwrap(),
            "http://h:1/ocloudNotifications/v2/"
        );
        assert_eq!(
            api_url("h:1", Some("/api/ocloudNotifications/v2/"))
                .unwrap()
                .as_str(),
            "http://h:1/api/ocloudNotifications/v2/"
        );
        assert!(base("").is_err());
        assert_eq!(
            base("https://h:1").unwrap(),
            "https://h:1/api/ocloudNotifications/v2/"
        );
        assert!(base("ftp://h:1").is_err());
        assert!(base("http://").is_err());
        // No port: the API's 9043, not http's 80; an explicit 80 stays.
        assert_eq!(
            base("localhost").unwrap(),
            "http://localhost:9043/api/ocloudNotifications/v2/"
        );
        assert_eq!(
            base("https://h/api/ocloudNotifications/v2").unwrap(),
            "https://h:9043/api/ocloudNotifications/v2/"
        );
        // (the URL form drops a port equal to the scheme's default)
        assert_eq!(
            base("http://h:80").unwrap(),
            "http://h/api/ocloudNotifications/v2/"
        );
        assert_eq!(
            base("[fd00::1]").unwrap(),
            "http://[fd00::1]:9043/api/ocloudNotifications/v2/"
        );
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let c = Client::builder("localhost:1")
            .bearer_token("s3cr3t-token")
            .build()
            .unwrap();
        let b = Client::builder("localhost:1").bearer_token("s3cr3t-token");
        for text in [format!("{c:?}"), format!("{b:?}")] {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
    }
}
