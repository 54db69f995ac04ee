//! Hardening of the REST API: optional bearer-token authentication and the EndpointUri policy
//! against server-side request forgery. See `docs/security.md`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What identifies a version of a file without reading it: modification time, size and inode
/// (a file replaced by rename, as a Secret or projected token update does, gets a new inode).
pub(crate) type FileStamp = Option<(SystemTime, u64, u64)>;

/// The [`FileStamp`] of `path`; `None` when it cannot be read.
pub(crate) fn file_stamp(path: &Path) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| {
        (
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
            m.ino(),
        )
    })
}

/// Static bearer tokens read from a file (one per line; blank lines and `#` comments ignored),
/// re-read when the file's modification time, size or inode changes (a replaced Secret).
pub struct TokenFile {
    path: PathBuf,
    state: Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    stamp: FileStamp,
    tokens: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// Reads the file once; an unreadable or empty file is an error at start.
    pub fn open(path: &Path) -> Result<TokenFile, String> {
        let t = TokenFile {
            path: path.to_path_buf(),
            state: Mutex::new(TokenState::default()),
        };
        t.refresh();
        let n = t.state.lock().expect("token lock").tokens.len();
        if n == 0 {
            return Err(format!(
                "--auth-token-file {}: cannot be read or holds no token",
                path.display()
            ));
        }
        Ok(t)
    }

    /// Re-reads the file when it changed. A file that disappears or cannot be read leaves no
    /// valid token (fail closed): every request is refused until it is readable again.
    fn refresh(&self) {
        let stamp = file_stamp(&self.path);
        let mut st = self.state.lock().expect("token lock");
        if stamp.is_some() && st.stamp == stamp {
            return;
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                if !st.tokens.is_empty() || st.stamp.is_some() {
                    tracing::warn!(file = %self.path.display(), error = %e, "token file unreadable; refusing every authenticated request");
                }
                st.tokens.clear();
                st.stamp = None;
                return;
            }
        };
        st.tokens = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        st.stamp = stamp;
        tracing::info!(file = %self.path.display(), tokens = st.tokens.len(), "loaded bearer tokens");
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        authorization
            .and_then(bearer_token)
            .is_some_and(|t| self.accepts(t))
    }

    /// Whether `presented` (the token, without the scheme) is one of the tokens.
    fn accepts(&self, presented: &[u8]) -> bool {
        self.refresh();
        let st = self.state.lock().expect("token lock");
        // Compare with every token, in time independent of where the bytes differ.
        st.tokens
            .iter()
            .fold(false, |ok, t| ok | constant_time_eq(t, presented))
    }
}

/// What the edge does with a request after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Serve it.
    Allow,
    /// 401: no token, or not an accepted one.
    Unauthenticated(String),
    /// 403: authenticated, but not admitted.
    Forbidden(String),
    /// 503: the token could not be checked (TokenReview unavailable).
    Unavailable(String),
    /// 429: the client has caused too many token reviews; retry after the duration.
    TooManyRequests(String, std::time::Duration),
}

/// The API's authentication: static tokens, Kubernetes TokenReview, or both (a token accepted
/// by either is admitted; the static file is checked first, without a network call).
#[derive(Debug, Default)]
pub struct Authenticator {
    /// `--auth-token-file`.
    pub tokens: Option<TokenFile>,
    /// `--auth-token-review`.
    pub review: Option<crate::tokenreview::TokenReviewer>,
}

impl Authenticator {
    /// Whether any authentication is configured.
    pub fn is_on(&self) -> bool {
        self.tokens.is_some() || self.review.is_some()
    }

    /// Decides about a request's `Authorization` header, sent from `client` (when known).
    pub async fn check(
        &self,
        authorization: Option<&[u8]>,
        client: Option<std::net::IpAddr>,
    ) -> AuthDecision {
        use crate::tokenreview::Verdict;
        let Some(presented) = authorization.and_then(bearer_token) else {
            return AuthDecision::Unauthenticated(
                "this API needs an Authorization: Bearer <token> header".into(),
            );
        };
        if let Some(t) = &self.tokens
            && t.accepts(presented)
        {
            return AuthDecision::Allow;
        }
        let Some(review) = &self.review else {
            return AuthDecision::Unauthenticated(
                "the Bearer token is not one of --auth-token-file".into(),
            );
        };
        let Ok(token) = std::str::from_utf8(presented) else {
            return AuthDecision::Unauthenticated("the Bearer token is not text".into());
        };
        match review.review(token, client).await {
            Verdict::Allowed(_) => AuthDecision::Allow,
            // The API server's reason (which may describe the cluster's authenticators) is
            // logged, not told to an unauthenticated client.
            Verdict::Refused(_) => AuthDecision::Unauthenticated(
                "the Bearer token was not accepted by the Kubernetes API server (TokenReview); the producer's log says why".into(),
            ),
            Verdict::Forbidden(why) => AuthDecision::Forbidden(why),
            // The details (addresses, credentials) are logged, not told to the client.
            Verdict::Unavailable(_) => AuthDecision::Unavailable(
                "the bearer token cannot be checked now (the Kubernetes API server is unavailable); retry later".into(),
            ),
            Verdict::Limited(wait) => AuthDecision::TooManyRequests(
                "this client has presented too many new bearer tokens (--auth-max-reviews-per-client); retry later".into(),
                wait,
            ),
        }
    }
}

/// The token of a `Bearer` authorization value.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let t = value[7..].trim_ascii();
    (!t.is_empty()).then_some(t)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One `--endpoint-allow` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// An address block: every address the EndpointUri host resolves to must be in some block.
    Cidr(IpAddr, u8),
    /// A host name, matched exactly (case-insensitive).
    Host(String),
    /// A host-name suffix (`.svc.cluster.local`): the host ends with it.
    Suffix(String),
}

impl std::str::FromStr for AllowRule {
    type Err = String;
    fn from_str(s: &str) -> Result<AllowRule, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty --endpoint-allow rule".into());
        }
        if let Some((addr, len)) = s.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|e| format!("--endpoint-allow {s:?}: bad address: {e}"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u8 = len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
                format!("--endpoint-allow {s:?}: prefix length must be 0..={max}")
            })?;
            return Ok(AllowRule::Cidr(addr, len));
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(AllowRule::Cidr(addr, if addr.is_ipv4() { 32 } else { 128 }));
        }
        let lower = s.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("*.") {
            return Ok(AllowRule::Suffix(format!(".{rest}")));
        }
        if lower.starts_with('.') {
            return Ok(AllowRule::Suffix(lower));
        }
        Ok(AllowRule::Host(lower))
    }
}

impl std::fmt::Display for AllowRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowRule::Cidr(a, l) => write!(f, "{a}/{l}"),
            AllowRule::Host(h) | AllowRule::Suffix(h) => f.write_str(h),
        }
    }
}

fn in_block(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    // An IPv4-mapped IPv6 address is checked as the IPv4 address it is.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The EndpointUri policy: empty means every endpoint is allowed (the default).
#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    rules: Vec<AllowRule>,
}

impl EndpointPolicy {
    /// A policy of these rules.
    pub fn new(rules: Vec<AllowRule>) -> EndpointPolicy {
        EndpointPolicy { rules }
    }

    /// Whether the policy allows everything.
    pub fn is_open(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a host name (lower case) is allowed by a host-name rule (then its addresses are
    /// not checked).
    pub fn allows_name(&self, host: &str) -> bool {
        self.rules.iter().any(|r| match r {
            AllowRule::Host(h) => h == host,
            AllowRule::Suffix(s) => host.ends_with(s.as_str()),
            AllowRule::Cidr(..) => false,
        })
    }

    /// Whether an address is inside an allowed block.
    pub fn allows_addr(&self, ip: IpAddr) -> bool {
        self.rules.iter().any(|r| match r {
            AllowRule::Cidr(n, l) => in_block(ip, *n, *l),
            _ => false,
        })
    }

    /// The addresses to connect to for delivery, checked again at connection time (a name
    /// resolving elsewhere than when the subscription was created, DNS rebinding, or a policy
    /// tightened since): for a name allowed by a host-name rule, all of `resolved`; otherwise
    /// those inside an allowed block, an error when there is none.
    pub fn connect_addrs(
        &self,
        host: &str,
        resolved: Vec<std::net::SocketAddr>,
    ) -> Result<Vec<std::net::SocketAddr>, String> {
        if self.is_open() || self.allows_name(&host.to_ascii_lowercase()) {
            return Ok(resolved);
        }
        let (ok, refused): (Vec<_>, Vec<_>) =
            resolved.into_iter().partition(|a| self.allows_addr(a.ip()));
        if ok.is_empty() {
            let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
            return Err(format!(
                "{host} now resolves to {}, outside the endpoint policy (--endpoint-allow); not connecting",
                if list.is_empty() {
                    "no address".to_owned()
                } else {
                    list.join(", ")
                }
            ));
        }
        Ok(ok)
    }

    /// Checks an EndpointUri: a host matching a host-name rule is allowed; otherwise the host
    /// (an address, or every address its name resolves to) must be inside an address block.
    /// The error names the policy.
    pub async fn check(&self, endpoint: &str) -> Result<(), String> {
        if self.is_open() {
            return Ok(());
        }
        let refuse = |why: String| {
            let rules: Vec<String> = self.rules.iter().map(ToString::to_string).collect();
            format!(
                "EndpointUri {endpoint:?} is refused by the endpoint policy (--endpoint-allow {}): {why}",
                rules.join(", ")
            )
        };
        let url =
            url::Url::parse(endpoint.trim()).map_err(|e| refuse(format!("not a URL: {e}")))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(a)) => vec![IpAddr::V4(a)],
            Some(url::Host::Ipv6(a)) => vec![IpAddr::V6(a)],
            Some(url::Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                if self.allows_name(&d) {
                    return Ok(());
                }
                let resolved = tokio::net::lookup_host((d.as_str(), port))
                    .await
                    .map_err(|e| {
                        refuse(format!(
                            "host {d} matches no name rule and does not resolve: {e}"
                        ))
                    })?;
                let v: Vec<IpAddr> = resolved.map(|a| a.ip()).collect();
                if v.is_empty() {
                    return Err(refuse(format!("host {d} resolves to no address")));
                }
                v
            }
            None => return Err(refuse("no host".into())),
        };
        for ip in &addrs {
            if !self.allows_addr(*ip) {
                return Err(refuse(format!("address {ip} is in no allowed block")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At connection time: a name that now resolves (also) outside the blocks connects only to
    /// the allowed addresses, or not at all; a name allowed by name, and an open policy, take
    /// whatever it resolves to.
    #[test]
    fn delivery_connects_only_to_allowed_addresses() {
        let a = |s: &str| -> std::net::SocketAddr { s.parse().unwrap() };
        let p = EndpointPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "consumer.ns.svc".parse().unwrap(),
        ]);
        assert_eq!(
            p.connect_addrs(
                "app.example",
                vec![a("169.254.169.254:80"), a("127.0.0.5:80")]
            ),
            Ok(vec![a("127.0.0.5:80")])
        );
        let err = p
            .connect_addrs("app.example", vec![a("169.254.169.254:80")])
            .unwrap_err();
        assert!(
            err.contains("169.254.169.254") && err.contains("--endpoint-allow"),
            "{err}"
        );
        assert!(p.connect_addrs("app.example", vec![]).is_err());
        assert_eq!(
            p.connect_addrs("Consumer.NS.svc", vec![a("169.254.169.254:80")]),
            Ok(vec![a("169.254.169.254:80")])
        );
        assert_eq!(
            EndpointPolicy::default().connect_addrs("x", vec![a("169.254.169.254:80")]),
            Ok(vec![a("169.254.169.254:80")])
        );
    }

    #[test]
    fn rules_parse_and_match() {
        let r: AllowRule = "10.0.0.0/8".parse().unwrap();
        assert_eq!(r, AllowRule::Cidr("10.0.0.0".parse().unwrap(), 8));
        assert!("10.0.0.0/33".parse::<AllowRule>().is_err());
        assert_eq!(
            "*.svc.cluster.local".parse::<AllowRule>().unwrap(),
            AllowRule::Suffix(".svc.cluster.local".into())
        );
        assert!(in_block(
            "10.1.2.3".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(!in_block(
            "11.1.2.3".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_block(
            "::ffff:127.0.0.1".parse().unwrap(),
            "127.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_block(
            "fd00::1".parse().unwrap(),
            "fd00::".parse().unwrap(),
            8
        ));
        assert!(in_block(
            "1.2.3.4".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
