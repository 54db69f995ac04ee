//! The producer's Prometheus metrics: the Go `cne_*` gauges under their names and labels, and our
//! own delivery metrics with proper Prometheus names.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Every metric the producer exports.
pub struct Metrics {
    registry: Registry,
    /// `cne_api_events_published{address,status}`: events handed to delivery, by CE `source`.
    pub events_published: GaugeVec,
    /// `cne_api_subscriptions{status}`: `active`, `failed to create`, `failed to delete`.
    pub subscriptions: GaugeVec,
    /// `cne_api_publishers{status}`.
    pub publishers: GaugeVec,
    /// `cne_events_received{type,status}`: one per POST attempt outcome per subscriber.
    pub events_received: GaugeVec,
    /// Seconds from publication to the consumer's answer.
    pub delivery_latency: Histogram,
    /// Events waiting per subscriber endpoint.
    pub queue_depth: IntGaugeVec,
    /// Events dropped because a subscriber's queue was full.
    pub dropped: IntCounter,
    /// Subscriber endpoints removed after exhausting the failure budget.
    pub endpoints_removed: IntCounter,
    /// Subscriptions removed with those endpoints.
    pub subscriptions_removed: IntCounter,
    /// Delivery attempts retried after a transport error.
    pub retries: IntCounter,
    /// `cne_api_auth_total{result}`: authentication decisions on the API (only when
    /// authentication is on): `allowed`, `unauthenticated`, `forbidden`, `unavailable`,
    /// `limited` (429: the client used its TokenReview budget).
    pub auth: IntCounterVec,
    /// `cne_api_tokenreviews_total{result}`: TokenReviews sent to the Kubernetes API server
    /// (cache misses), by verdict: `allowed`, `refused`, `forbidden`, `unavailable`.
    pub token_reviews: IntCounterVec,
    /// `cne_api_rate_limited_total`: requests answered 429 for `--max-requests-per-client`.
    pub rate_limited: IntCounter,
    /// `cne_api_connections_open`: API connections open now.
    pub connections_open: IntGauge,
    /// `cne_api_connections_refused_total{reason}`: connections closed at once, over
    /// `--max-connections` (`total`) or `--max-connections-per-client` (`per_client`), and
    /// connections closed to make room for another client address (`evicted`).
    pub connections_refused: IntCounterVec,
    /// `cne_metrics_connections_open`: connections to the metrics port open now.
    pub metrics_connections_open: IntGauge,
    /// `cne_metrics_connections_refused_total{reason}`: metrics-port connections closed at once,
    /// over its cap (`total`) or its per-client cap (`per_client`), or to make room (`evicted`).
    pub metrics_connections_refused: IntCounterVec,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let events_published = gauge(
            "cne_api_events_published",
            "Metric to get number of events published by the rest api",
            &["address", "status"],
        );
        let subscriptions = gauge(
            "cne_api_subscriptions",
            "Metric to get number of subscriptions",
            &["status"],
        );
        let publishers = gauge(
            "cne_api_publishers",
            "Metric to get number of publishers",
            &["status"],
        );
        let events_received = gauge(
            "cne_events_received",
            "Metric to get number of events received",
            &["type", "status"],
        );
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                "cne_delivery_latency_seconds",
                "Time from an event's publication to the subscriber's answer to its POST",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(delivery_latency.clone()))
            .expect("unique metric");
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "cne_delivery_queue_depth",
                "Events waiting to be delivered, per subscriber endpoint",
            ),
            &["endpoint"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(queue_depth.clone()))
            .expect("unique metric");
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let auth = counter_vec(
            "cne_api_auth_total",
            "Authentication decisions on the REST API, by result",
            &["result"],
        );
        let token_reviews = counter_vec(
            "cne_api_tokenreviews_total",
            "TokenReviews sent to the Kubernetes API server (cache misses), by verdict",
            &["result"],
        );
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let m = Metrics {
            connections_open: int_gauge(
                "cne_api_connections_open",
                "REST API connections open now",
            ),
            metrics_connections_open: int_gauge(
                "cne_metrics_connections_open",
                "Connections to the metrics port open now",
            ),
            metrics_connections_refused: counter_vec(
                "cne_metrics_connections_refused_total",
                "Metrics-port connections closed at once, over its cap (total) or its per-client cap (per_client), or closed to make room for another client address (evicted)",
                &["reason"],
            ),
            connections_refused: counter_vec(
                "cne_api_connections_refused_total",
                "REST API connections closed at once, over --max-connections (total) or --max-connections-per-client (per_client), or closed to make room for another client address (evicted)",
                &["reason"],
            ),
            auth,
            token_reviews,
            rate_limited: counter(
                "cne_api_rate_limited_total",
                "REST API requests answered 429 for --max-requests-per-client",
            ),
            events_published,
            subscriptions,
            publishers,
            events_received,
            delivery_latency,
            queue_depth,
            dropped: counter(
                "cne_delivery_dropped_total",
                "Events dropped because a subscriber's queue was full (oldest first)",
            ),
            endpoints_removed: counter(
                "cne_delivery_endpoints_removed_total",
                "Subscriber endpoints removed after exhausting the delivery failure budget",
            ),
            subscriptions_removed: counter(
                "cne_delivery_subscriptions_removed_total",
                "Subscriptions removed together with an unreachable endpoint",
            ),
            retries: counter(
                "cne_delivery_retries_total",
                "Delivery attempts retried after a transport error",
            ),
            registry,
        };
        // Every documented counter exists from the start, at 0, so that rate() and absent()
        // work before the first refusal.
        for reason in ["total", "per_client", "evicted"] {
            m.connections_refused.with_label_values(&[reason]);
            m.metrics_connections_refused.with_label_values(&[reason]);
        }
        m
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
