//! A stand-in Kubernetes API server for TokenReview, over real HTTPS on loopback.
//!
//! No kube-apiserver can run on the test machines, so the stand-in speaks the documented wire
//! format of `POST /apis/authentication.k8s.io/v1/tokenreviews`: it checks the caller's own
//! bearer token, answers 201 with a `TokenReview` whose `status` has the shape the real API
//! server gives (`authenticated` left out when false, `user: {}`, `error` for an invalid token,
//! the audience intersection), and 401/403 `Status` objects for a caller it refuses.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy::tokenreview::TokenReviewConfig;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::{Ca, leaf};

pub const DEFAULT_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// An identity the stand-in knows: user name, groups, audiences the token is valid for.
#[derive(Clone)]
pub struct Identity {
    pub user: &'static str,
    pub groups: Vec<&'static str>,
    pub audiences: Vec<&'static str>,
}

pub fn service_account(ns: &'static str, user: &'static str) -> Identity {
    Identity {
        user,
        groups: vec![
            "system:serviceaccounts",
            Box::leak(format!("system:serviceaccounts:{ns}").into_boxed_str()),
            "system:authenticated",
        ],
        audiences: vec![DEFAULT_AUDIENCE],
    }
}

#[derive(Default)]
pub struct ApiState {
    /// The token the producer must present (its own service account's).
    pub caller_token: String,
    /// When set, the caller is refused with 403 (no system:auth-delegator binding).
    pub forbid_caller: bool,
    /// When set, every review is received (recorded) and answered 429, as API Priority and
    /// Fairness does when the API server is overloaded.
    pub throttle: bool,
    pub tokens: HashMap<String, Identity>,
    /// Every review request body received.
    pub requests: Vec<Value>,
}

pub struct ApiServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<ApiState>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub fn reviews(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

pub fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

pub async fn tokenreviews(
    State(state): State<Arc<Mutex<ApiState>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let mut st = state.lock().unwrap();
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(st.caller_token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(status_object(401, "Unauthorized", "Unauthorized")),
        );
    }
    if st.forbid_caller {
        return (
            StatusCode::FORBIDDEN,
            Json(status_object(
                403,
                "Forbidden",
                "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:openshift-ptp:linuxptp-daemon\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope",
            )),
        );
    }
    let Ok(review) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(status_object(400, "BadRequest", "not JSON")),
        );
    };
    if review["apiVersion"] != "authentication.k8s.io/v1"
        || review["kind"] != "TokenReview"
        || !review["spec"]["token"].is_string()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(status_object(400, "BadRequest", "not a TokenReview")),
        );
    }
    st.requests.push(review.clone());
    if st.throttle {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(status_object(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )),
        );
    }
    let token = review["spec"]["token"].as_str().unwrap();
    let wanted: Vec<String> = match review["spec"]["audiences"].as_array() {
        Some(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        None => vec![DEFAULT_AUDIENCE.to_owned()],
    };
    let status = match st.tokens.get(token) {
        None => {
            json!({"user": {}, "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]"})
        }
        Some(id) => {
            let common: Vec<&str> = id
                .audiences
                .iter()
                .copied()
                .filter(|a| wanted.iter().any(|w| w == a))
                .collect();
            if common.is_empty() {
                json!({"user": {}, "error": format!("[invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}]", id.audiences, wanted)})
            } else {
                json!({"authenticated": true,
                       "user": {"username": id.user, "uid": "4f6d2e1c-0000-4000-8000-000000000001",
                                "groups": id.groups,
                                "extra": {"authentication.kubernetes.io/pod-name": ["consumer-7c9f"]}},
                       "audiences": common})
            }
        }
    };
    let mut answer = review;
    answer["metadata"] = json!({"creationTimestamp": null});
    answer["status"] = status;
    (StatusCode::CREATED, Json(answer))
}

pub async fn api_server(server_ca: &Ca, caller_token: &str) -> ApiServer {
    let _ = crypto::ring::default_provider().install_default();
    let cert = leaf(server_ca, "kube-apiserver", true);
    let certs = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let mut cfg = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let state = Arc::new(Mutex::new(ApiState {
        caller_token: caller_token.to_owned(),
        ..ApiState::default()
    }));
    {
        let mut st = state.lock().unwrap();
        st.tokens.insert(
            "vdu-consumer-token".into(),
            service_account("vdu", "system:serviceaccount:vdu:consumer"),
        );
        st.tokens.insert(
            "other-app-token".into(),
            service_account("other", "system:serviceaccount:other:app"),
        );
        st.tokens.insert(
            "vdu-ptp-audience-token".into(),
            Identity {
                audiences: vec!["ptp-events"],
                ..service_account("vdu", "system:serviceaccount:vdu:consumer")
            },
        );
    }
    let app = axum::Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            axum::routing::post(tokenreviews),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Connections live in a JoinSet owned by the accept task: aborting that task closes them
    // all, as a stopped API server would.
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            while conns.try_join_next().is_some() {}
            let acceptor = acceptor.clone();
            let app = app.clone();
            conns.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    ApiServer { addr, state, task }
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub token_file: PathBuf,
}

pub fn setup(ca: &Ca, own_token: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    let token_file = dir.path().join("token");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    std::fs::write(&token_file, format!("{own_token}\n")).unwrap();
    Setup {
        dir,
        ca_file,
        token_file,
    }
}

pub fn review_config(s: &Setup, api: &str) -> TokenReviewConfig {
    let mut cfg = TokenReviewConfig::in_cluster(Some(api)).unwrap();
    cfg.ca_file = s.ca_file.clone();
    cfg.token_file = s.token_file.clone();
    cfg.timeout = Duration::from_secs(3);
    cfg
}
