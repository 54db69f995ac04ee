//! Errors of the [`crate::Client`].

use std::fmt;
use std::time::Duration;

/// An error answer of the API: the status, and the problem details when the producer sent them.
///
/// Our producer answers errors with RFC 7807 `application/problem+json`
/// (`{"type","title","status","detail","instance"}`); the Go producer answers O-RAN routes with
/// an empty body and its extension routes with `{"error":"..."}`. [`ApiError::detail`] is the
/// `detail` (or `error`, or a short text body) when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The request method.
    pub method: &'static str,
    /// The request URL.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The problem's `title`, if any.
    pub title: Option<String>,
    /// What was wrong, as the producer said it, if it did.
    pub detail: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = http_reason(self.status);
        write!(
            f,
            "{} {}: HTTP {} {reason}",
            self.method, self.url, self.status
        )?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// What this project's producer says in a CurrentState 404 for a resource without data (kept in
/// step with the producer's answer; the tests exercise both together).
pub(crate) const NO_DATA_YET: &str = "no data yet";

/// Why a [`crate::Client`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400: the request was malformed, or (on subscribe) the initial notification to the
    /// EndpointUri failed or was not answered 204.
    #[error("{0}")]
    BadRequest(ApiError),
    /// 404: unknown resource or subscription, or (CurrentState) no data yet.
    #[error("{0}")]
    NotFound(ApiError),
    /// 409: this EndpointUri already subscribes to this ResourceAddress.
    #[error("{0}")]
    Conflict(ApiError),
    /// 401: no token, or the publisher does not accept it.
    #[error("{0}")]
    Unauthorized(ApiError),
    /// 403: refused by the publisher's policy (a subscription limit, or an authenticated
    /// identity it does not allow).
    #[error("{0}")]
    Forbidden(ApiError),
    /// The client's own configuration cannot be used (a CA, certificate, key or token file).
    #[error("publisher {publisher}: {message}")]
    Config {
        /// The publisher.
        publisher: String,
        /// What is wrong.
        message: String,
    },
    /// Any other unexpected status.
    #[error("{0}")]
    Status(ApiError),
    /// No answer within the timeout.
    #[error("{method} {url}: no answer within {timeout:?}")]
    Timeout {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The publisher could not be reached (connection refused, DNS, ...).
    #[error("{method} {url}: cannot connect: {cause}")]
    Connect {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The root cause, e.g. `Connection refused (os error 111)`.
        cause: String,
        /// The transport error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another transport error (connection reset, malformed HTTP, ...).
    #[error("{method} {url}: {cause}")]
    Transport {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The root cause, e.g. `connection closed before message completed`.
        cause: String,
        /// The transport error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A success status with a body that is not what the API promises.
    #[error("{method} {url}: unexpected answer: {message}")]
    InvalidResponse {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The publisher address (or a resource address) cannot form a URL.
    #[error("invalid address {address:?}: {message}")]
    InvalidAddress {
        /// The address given.
        address: String,
        /// What was wrong.
        message: String,
    },
}

impl Error {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|a| a.status)
    }

    /// The producer's explanation of an error answer, when it gave one.
    pub fn detail(&self) -> Option<&str> {
        self.api().and_then(|a| a.detail.as_deref())
    }

    /// The error answer, when the publisher answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::BadRequest(a)
            | Error::NotFound(a)
            | Error::Conflict(a)
            | Error::Unauthorized(a)
            | Error::Forbidden(a)
            | Error::Status(a) => Some(a),
            _ => None,
        }
    }

    /// 409: the subscription exists already.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// 404 from CurrentState because the resource exists but has no data yet (linuxptp has not
    /// reported, or this node has no such clock): worth asking again later. `false` for an
    /// unknown resource, another node's address or a malformed one, which asking again will not
    /// fix. Told apart by this project's producer (its problem `detail` says "no data yet"); the
    /// Go producer answers every 404 with an empty body, so there this is always `false` and
    /// only [`Error::is_not_found`] holds.
    pub fn is_no_data_yet(&self) -> bool {
        matches!(self, Error::NotFound(a) if a.detail.as_deref().is_some_and(|d| d.contains(NO_DATA_YET)))
    }

    /// 400.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Error::BadRequest(_))
    }

    /// The request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The publisher did not answer at all (cannot connect, timeout, transport error): it is
    /// probably down or restarting.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Connect { .. } | Error::Transport { .. }
        )
    }

    pub(crate) fn from_status(api: ApiError) -> Error {
        match api.status {
            400 => Error::BadRequest(api),
            404 => Error::NotFound(api),
            401 => Error::Unauthorized(api),
            403 => Error::Forbidden(api),
            409 => Error::Conflict(api),
            _ => Error::Status(api),
        }
    }
}

/// The innermost message of an error chain (reqwest's own message is only "error sending
/// request for url (...)", the useful part is underneath).
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Title and detail of an error body: problem+json, Go's `{"error":...}`, or a short text.
pub(crate) fn problem_of(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return (None, None);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let field = |k: &str| {
            map.get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let detail = field("detail")
            .or_else(|| field("error"))
            .or_else(|| field("status"));
        return (field("title"), detail);
    }
    // A text body such as Go's "404 page not found"; long bodies (an HTML page) are cut.
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    (None, Some(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_from_problem_go_error_text_or_nothing() {
        let p = br#"{"type":"about:blank","title":"Conflict","status":409,"detail":"EndpointUri x already subscribes to y","instance":"/a"}"#;
        assert_eq!(
            problem_of(p),
            (
                Some("Conflict".into()),
                Some("EndpointUri x already subscribes to y".into())
            )
        );
        assert_eq!(
            problem_of(br#"{"error":"publisher not found"}"#),
            (None, Some("publisher not found".into()))
        );
        assert_eq!(
            problem_of(b"404 page not found\n"),
            (None, Some("404 page not found".into()))
        );
        assert_eq!(problem_of(b""), (None, None));
    }

    #[test]
    fn display_names_request_status_and_detail() {
        let e = Error::from_status(ApiError {
            method: "POST",
            url: "http://h/api/ocloudNotifications/v2/subscriptions".into(),
            status: 409,
            title: None,
            detail: Some("exists".into()),
        });
        assert!(e.is_conflict());
        assert_eq!(
            e.to_string(),
            "POST http://h/api/ocloudNotifications/v2/subscriptions: HTTP 409 Conflict: exists"
        );
        let e = Error::from_status(ApiError {
            method: "GET",
            url: "u".into(),
            status: 404,
            title: None,
            detail: None,
        });
        assert_eq!(e.to_string(), "GET u: HTTP 404 Not Found");
        assert_eq!(e.detail(), None);
    }
}
