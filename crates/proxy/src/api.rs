//! The REST API v2 under `/api/ocloudNotifications/v2/`, with the Go producer's status codes and
//! bodies for successful answers and RFC 7807 problem details for every error.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use oran_api::{API_BASE_PATH, Resource, ResourceSelector, SubscriptionInfo};
use serde::Serialize;

use crate::hub::{Hub, HubError};
use crate::security::{AuthDecision, Authenticator, EndpointPolicy};

/// The OpenAPI 3 description of this API, served at `GET /api/ocloudNotifications/v2/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Routes answered without authentication (under the API base path).
pub const UNAUTHENTICATED: [&str; 2] = ["health", "openapi.json"];

/// What the edge checks before routing: bearer tokens, and the EndpointUri policy used by
/// subscription creation.
#[derive(Clone, Default)]
pub struct Guard {
    /// Authentication; `None`: off.
    pub auth: Option<Arc<Authenticator>>,
    /// Where subscriptions may send notifications.
    pub endpoints: Arc<EndpointPolicy>,
    /// Where authentication decisions are counted (`None`: not counted).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Requests per client (`max_requests_per_client`); `None`: no limit.
    pub requests: Option<Arc<crate::budget::ClientBudgets>>,
}

/// The largest request body accepted by default.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";

/// The detail of an error answer, carried to the edge middleware that writes the problem body.
#[derive(Clone)]
struct ProblemDetail(String);

fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let mut resp = status.into_response();
    resp.extensions_mut().insert(ProblemDetail(detail.into()));
    resp
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        let status = match &self {
            HubError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HubError::NotFound(_) => StatusCode::NOT_FOUND,
            HubError::Conflict(_) => StatusCode::CONFLICT,
            HubError::Limit(_) => StatusCode::FORBIDDEN,
            HubError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        problem(status, self.to_string())
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
}

/// JSON with one-space indentation, as Go's `json.MarshalIndent(v, "", " ")`.
fn pretty<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).expect("serialisable");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The API router (without the edge middleware; see [`service`]).
pub fn router(hub: Arc<Hub>, max_body: usize, api_port: u16) -> Router {
    let base = API_BASE_PATH.trim_end_matches('/');
    let publishers = Arc::new(publishers_body(hub.node(), api_port));
    Router::new()
        .route(
            &format!("{base}/subscriptions"),
            post(create_subscription)
                .get(list_subscriptions)
                .delete(delete_all_subscriptions),
        )
        .route(
            &format!("{base}/subscriptions/{{id}}"),
            get(get_subscription).delete(delete_subscription),
        )
        .route(&format!("{base}/health"), get(health))
        .route(
            &format!("{base}/publishers"),
            get(move || {
                let body = publishers.clone();
                async move { json_response(StatusCode::OK, (*body).clone()) }
            }),
        )
        .route(&format!("{base}/dummy"), post(dummy))
        .route(
            &format!("{base}/openapi.json"),
            get(|| async { json_response(StatusCode::OK, OPENAPI_JSON.to_owned()) }),
        )
        .route(&format!("{base}/{{*rest}}"), get(current_state))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(hub)
}

/// The router wrapped in the edge middleware (path normalisation, HEAD refusal, problem bodies),
/// ready to serve, without authentication or EndpointUri policy.
pub fn service(hub: Arc<Hub>, max_body: usize, api_port: u16) -> Router {
    service_with(hub, max_body, api_port, Guard::default())
}

/// [`service`] with authentication and the EndpointUri policy of `guard`.
pub fn service_with(hub: Arc<Hub>, max_body: usize, api_port: u16, guard: Guard) -> Router {
    let inner = router(hub, max_body, api_port).layer(Extension(guard.endpoints.clone()));
    // The middleware must see the request before routing (to normalise the path), so the
    // router is nested inside a router whose only job is that middleware.
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn_with_state(guard, edge))
}

/// The address of the client of a connection (IPv4-mapped IPv6 addresses as IPv4), a request
/// extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// 429 problem+json with `Retry-After`: `wait` in whole seconds, rounded up.
fn too_many(why: String, wait: std::time::Duration) -> Response {
    let mut r = problem(StatusCode::TOO_MANY_REQUESTS, why);
    let secs = wait.as_millis().div_ceil(1000).max(1);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
    r
}

/// Collapses repeated slashes, checks the bearer token, refuses HEAD, and turns every error
/// answer into `application/problem+json`.
async fn edge(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.contains("//") {
        let mut clean = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && clean.ends_with('/')) {
                clean.push(c);
            }
        }
        let pq = match req.uri().query() {
            Some(q) => format!("{clean}?{q}"),
            None => clean,
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    let instance = req.uri().path().to_owned();
    let exempt = instance
        .strip_prefix(API_BASE_PATH)
        .is_some_and(|rest| UNAUTHENTICATED.contains(&rest.trim_end_matches('/')));
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    // The request budget first: a flood costs no token check.
    let limited = match (&guard.requests, client) {
        (Some(budgets), Some(c)) if !exempt => budgets.charge(c),
        _ => None,
    };
    if let (Some(m), Some(_)) = (&guard.metrics, limited) {
        m.rate_limited.inc();
    }
    let decision = if let Some(wait) = limited {
        AuthDecision::TooManyRequests(
            "this client sends more requests than --max-requests-per-client allows; retry later"
                .into(),
            wait,
        )
    } else if let Some(auth) = guard.auth.as_ref().filter(|_| !exempt) {
        auth.check(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            client,
        )
        .await
    } else {
        AuthDecision::Allow
    };
    if let (Some(m), Some(_), None) = (
        &guard.metrics,
        guard.auth.as_ref().filter(|_| !exempt),
        limited,
    ) {
        let result = match decision {
            AuthDecision::Allow => "allowed",
            AuthDecision::Unauthenticated(_) => "unauthenticated",
            AuthDecision::Forbidden(_) => "forbidden",
            AuthDecision::Unavailable(_) => "unavailable",
            AuthDecision::TooManyRequests(..) => "limited",
        };
        m.auth.with_label_values(&[result]).inc();
    }
    let resp = if let AuthDecision::Unauthenticated(why) = decision {
        let mut r = problem(StatusCode::UNAUTHORIZED, why);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ocloudNotifications\""),
        );
        r
    } else if let AuthDecision::Forbidden(why) = decision {
        problem(StatusCode::FORBIDDEN, why)
    } else if let AuthDecision::Unavailable(why) = decision {
        let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, why);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else if let AuthDecision::TooManyRequests(why, wait) = decision {
        too_many(why, wait)
    } else if req.method() == Method::HEAD {
        // Ask the router which methods this path has: a method no route takes gets its 405
        // with the route's Allow (or the 404 of an unknown path).
        let mut probe = req;
        *probe.method_mut() = Method::from_bytes(b"PROBE").expect("a method token");
        let routed = next.run(probe).await;
        if routed.status() == StatusCode::METHOD_NOT_ALLOWED {
            let mut r = problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "HEAD is not supported by this API; use GET",
            );
            if let Some(allow) = routed.headers().get(header::ALLOW) {
                r.headers_mut().insert(header::ALLOW, allow.clone());
            }
            r
        } else {
            routed
        }
    } else {
        next.run(req).await
    };
    // HEAD is refused above: an Allow header must not offer it (RFC 9110 §10.2.1).
    let mut resp = resp;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = resp
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
        && allow
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("HEAD"))
    {
        let kept: Vec<&str> = allow
            .split(',')
            .map(str::trim)
            .filter(|m| !m.eq_ignore_ascii_case("HEAD") && !m.is_empty())
            .collect();
        if let Ok(v) = HeaderValue::from_str(&kept.join(",")) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
    }
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes())
    {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let detail = match parts.extensions.get::<ProblemDetail>() {
        Some(d) => d.0.clone(),
        None => match status {
            StatusCode::NOT_FOUND => format!("no route for {instance}"),
            StatusCode::METHOD_NOT_ALLOWED => format!("method not allowed on {instance}"),
            StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
            _ => status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_owned(),
        },
    };
    let body = serde_json::to_string(&Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or(""),
        status: status.as_u16(),
        detail: &detail,
        instance: &instance,
    })
    .expect("serialisable");
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// An RFC 7807 problem body, keys in the order of the RFC's examples.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    instance: &'a str,
}

async fn create_subscription(
    State(hub): State<Arc<Hub>>,
    Extension(policy): Extension<Arc<EndpointPolicy>>,
    body: Bytes,
) -> Response {
    let request = match SubscriptionInfo::from_json(&body) {
        Ok(r) => r,
        Err(e) => {
            hub.metrics()
                .subscriptions
                .with_label_values(&["failed to create"])
                .inc();
            return problem(StatusCode::BAD_REQUEST, e);
        }
    };
    if request.missing_field().is_none()
        && let Err(why) = policy.check(&request.endpoint_uri).await
    {
        hub.metrics()
            .subscriptions
            .with_label_values(&["failed to create"])
            .inc();
        tracing::info!(error = %why, "subscription refused");
        return problem(StatusCode::BAD_REQUEST, why);
    }
    match hub.subscribe(request).await {
        Ok(info) => {
            let mut resp = json_response(
                StatusCode::CREATED,
                serde_json::to_string(&info).expect("serialisable"),
            );
            if let Ok(v) = HeaderValue::from_str(&info.uri_location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Err(e) => {
            tracing::info!(error = %e, "subscription refused");
            e.into_response()
        }
    }
}

async fn list_subscriptions(State(hub): State<Arc<Hub>>) -> Response {
    json_response(StatusCode::OK, pretty(&hub.list()))
}

async fn get_subscription(State(hub): State<Arc<Hub>>, Path(id): Path<String>) -> Response {
    match hub.get(&id) {
        Some(info) => json_response(
            StatusCode::OK,
            serde_json::to_string(&info).expect("serialisable"),
        ),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("no subscription with id {id:?}"),
        ),
    }
}

async fn delete_subscription(State(hub): State<Arc<Hub>>, Path(id): Path<String>) -> Response {
    match hub.unsubscribe(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn delete_all_subscriptions(State(hub): State<Arc<Hub>>) -> Response {
    match hub.unsubscribe_all().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn health() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "OK",
    )
        .into_response()
}

async fn dummy() -> Response {
    (StatusCode::NO_CONTENT, [(header::CONTENT_TYPE, JSON)]).into_response()
}

async fn current_state(State(hub): State<Arc<Hub>>, Path(rest): Path<String>) -> Response {
    let Some(address) = rest.strip_suffix("/CurrentState") else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no route for {API_BASE_PATH}{rest}"),
        );
    };
    let address = format!("/{}", address.trim_start_matches('/'));
    let sel = match ResourceSelector::parse(&address, hub.node()) {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::NOT_FOUND, e.to_string()),
    };
    if let Some(r) = sel.single {
        return match hub.current_event(r) {
            Some(ev) => json_response(StatusCode::OK, ev.to_json()),
            None => problem(
                StatusCode::NOT_FOUND,
                format!("{address}: no data yet for this resource"),
            ),
        };
    }
    let events: Vec<_> = sel
        .covers
        .iter()
        .filter_map(|r| hub.current_event(r))
        .collect();
    if events.is_empty() {
        return problem(
            StatusCode::NOT_FOUND,
            format!("{address}: no data yet for any resource it covers"),
        );
    }
    json_response(
        StatusCode::OK,
        serde_json::to_string(&events).expect("serialisable"),
    )
}

/// The seven publishers as `GET /publishers` shows them (Go decoders need every field set).
fn publishers_body(node: &str, api_port: u16) -> String {
    let list: Vec<SubscriptionInfo> = Resource::ALL
        .into_iter()
        .map(|r| {
            let address = r.address(node);
            let id = uuid::Uuid::new_v3(&uuid::Uuid::NAMESPACE_URL, address.as_bytes()).to_string();
            SubscriptionInfo {
                resource_address: address,
                endpoint_uri: format!("http://localhost:{api_port}{API_BASE_PATH}dummy"),
                uri_location: format!("http://localhost:{api_port}{API_BASE_PATH}publishers/{id}"),
                subscription_id: id,
            }
        })
        .collect();
    pretty(&list)
}
