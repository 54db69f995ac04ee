//! Resource addresses of a node and the address of its publisher service.

use oran_api::Resource;

/// The port the producer's REST API listens on by default.
pub const DEFAULT_PUBLISHER_PORT: u16 = 9043;

/// The namespace the PTP operator runs in on OpenShift.
pub const DEFAULT_NAMESPACE: &str = "openshift-ptp";

/// The resources the reference consumer subscribes to, in the Go consumer's order:
/// os-clock-sync-state, clock-class, lock-state, gnss-sync-status, sync-state (SyncE is left out,
/// as in the Go consumer).
pub const PTP_RESOURCES: [Resource; 5] = [
    Resource::OsClockSyncState,
    Resource::ClockClass,
    Resource::LockState,
    Resource::GnssSyncStatus,
    Resource::SyncState,
];

/// The address of `resource` on `node`: `/cluster/node/<node>/sync/...`.
///
/// ```
/// use ptp_events_client::{Resource, resource_address};
/// assert_eq!(
///     resource_address("worker-0", Resource::LockState),
///     "/cluster/node/worker-0/sync/ptp-status/lock-state"
/// );
/// ```
pub fn resource_address(node: &str, resource: Resource) -> String {
    resource.address(node)
}

/// The addresses of [`PTP_RESOURCES`] on `node`.
///
/// ```
/// let all = ptp_events_client::ptp_resource_addresses("worker-0");
/// assert_eq!(all.len(), 5);
/// assert!(all.contains(&"/cluster/node/worker-0/sync/sync-status/sync-state".to_string()));
/// ```
pub fn ptp_resource_addresses(node: &str) -> Vec<String> {
    PTP_RESOURCES.iter().map(|r| r.address(node)).collect()
}

/// Expands a resource given on a command line or in a config file into a full address:
/// a full address (`/cluster/node/...`) is kept, a short path (`/sync/ptp-status/lock-state` or
/// `sync/ptp-status/lock-state`) is placed under `/cluster/node/<node>`.
///
/// ```
/// use ptp_events_client::expand_resource;
/// assert_eq!(
///     expand_resource("sync/ptp-status/lock-state", "n1"),
///     "/cluster/node/n1/sync/ptp-status/lock-state"
/// );
/// assert_eq!(expand_resource("/cluster/node/n2/sync", "n1"), "/cluster/node/n2/sync");
/// ```
pub fn expand_resource(resource: &str, node: &str) -> String {
    let r = resource.trim();
    if r.starts_with("/cluster/") {
        r.to_owned()
    } else {
        format!("/cluster/node/{node}/{}", r.trim_start_matches('/'))
    }
}

/// The node a `/cluster/node/<node>/...` address names.
pub(crate) fn node_of(address: &str) -> Option<&str> {
    address
        .trim()
        .strip_prefix("/cluster/node/")
        .and_then(|rest| rest.split('/').next())
        .filter(|n| !n.is_empty())
}

/// The short node name: the text before the first `.` (`worker-0.example.com` → `worker-0`).
pub fn short_node_name(node: &str) -> &str {
    node.split('.').next().unwrap_or(node)
}

/// Replaces the `NODE_IP` / `NODE_NAME` tokens of a publisher address as the Go consumer and
/// producer do: when `node_ip` is given (non-empty) and the template has a `NODE_IP` token, it is
/// replaced by `node_ip`; otherwise every `NODE_NAME` token is replaced by the short node name.
///
/// ```
/// use ptp_events_client::substitute_node_tokens;
/// assert_eq!(
///     substitute_node_tokens(
///         "ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043",
///         "worker-0.example.com",
///         None,
///     ),
///     "ptp-event-publisher-service-worker-0.openshift-ptp.svc.cluster.local:9043"
/// );
/// assert_eq!(substitute_node_tokens("NODE_IP:9043", "n", Some("10.0.0.7")), "10.0.0.7:9043");
/// ```
pub fn substitute_node_tokens(template: &str, node_name: &str, node_ip: Option<&str>) -> String {
    match node_ip {
        Some(ip) if !ip.is_empty() && template.contains("NODE_IP") => {
            template.replace("NODE_IP", ip)
        }
        _ => template.replace("NODE_NAME", short_node_name(node_name)),
    }
}

/// The per-node publisher service of a Kubernetes deployment:
/// `ptp-event-publisher-service-<short node>.<namespace>.svc.cluster.local:9043`.
///
/// ```
/// assert_eq!(
///     ptp_events_client::publisher_service_address("worker-0.lab", "openshift-ptp"),
///     "ptp-event-publisher-service-worker-0.openshift-ptp.svc.cluster.local:9043"
/// );
/// ```
pub fn publisher_service_address(node: &str, namespace: &str) -> String {
    format!(
        "ptp-event-publisher-service-{}.{namespace}.svc.cluster.local:{DEFAULT_PUBLISHER_PORT}",
        short_node_name(node)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ip_wins_only_when_the_template_asks_for_it() {
        assert_eq!(
            substitute_node_tokens("svc-NODE_NAME:9043", "n1.x", Some("10.1.1.1")),
            "svc-n1:9043"
        );
        assert_eq!(
            substitute_node_tokens("NODE_IP:9043", "n1", Some("")),
            "NODE_IP:9043"
        );
        assert_eq!(
            substitute_node_tokens("localhost:9043", "n1", None),
            "localhost:9043"
        );
    }

    #[test]
    fn reference_consumer_resources_are_the_go_ones() {
        let a = ptp_resource_addresses("node1");
        assert_eq!(
            a,
            [
                "/cluster/node/node1/sync/sync-status/os-clock-sync-state",
                "/cluster/node/node1/sync/ptp-status/clock-class",
                "/cluster/node/node1/sync/ptp-status/lock-state",
                "/cluster/node/node1/sync/gnss-status/gnss-sync-status",
                "/cluster/node/node1/sync/sync-status/sync-state",
            ]
        );
    }
}
