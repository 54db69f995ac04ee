//! The REST client for one publisher (producer).

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
}

/// Builds a [`Client`] with non-default settings.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    publisher: String,
    api_path: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl ClientBuilder {
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
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| Error::InvalidAddress {
                address: self.publisher.clone(),
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Client {
            http,
            api,
            timeout: self.timeout,
        })
    }
}

/// The API root URL of a publisher given as `host:port`, `http://host:port` or a full URL.
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
    if url.scheme() != "http" {
        return Err(invalid(format!(
            "scheme {:?} is not supported (the PTP events API is plain HTTP)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
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

    /// `GET /subscriptions`: every subscription of this publisher (of every consumer). Go's
    /// `null` for none is an empty list.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>, Error> {
        let url = self.url("subscriptions");
        let bytes = self.expect(Method::GET, &url, None, StatusCode::OK).await?;
        let list: Option<Vec<SubscriptionInfo>> =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidResponse {
                method: "GET",
                url,
                message: format!("not a list of subscriptions: {e}"),
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
        assert!(base("https://h:1").is_err());
        assert!(base("http://").is_err());
    }
}
