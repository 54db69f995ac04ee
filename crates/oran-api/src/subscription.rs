//! The `SubscriptionInfo` object of the O-RAN API.

use serde::{Deserialize, Serialize};

/// A subscription as the API writes and reads it.
///
/// Key order on the wire is `ResourceAddress, EndpointUri, SubscriptionId, UriLocation` (field
/// order here); the last two are left out when empty, as the Go SDK does. Decoding ignores unknown
/// keys and takes missing keys as empty: whether a field is mandatory is the caller's check
/// ([`SubscriptionInfo::missing_field`]), so it can answer with a precise error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    /// The resource subscribed to, e.g. `/cluster/node/node1/sync/ptp-status/lock-state`.
    #[serde(rename = "ResourceAddress", default)]
    pub resource_address: String,
    /// Where notifications are POSTed.
    #[serde(rename = "EndpointUri", default)]
    pub endpoint_uri: String,
    /// The producer's id for the subscription (ignored on create).
    #[serde(
        rename = "SubscriptionId",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub subscription_id: String,
    /// The subscription's own URL (ignored on create).
    #[serde(
        rename = "UriLocation",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub uri_location: String,
}

impl SubscriptionInfo {
    /// Decodes a request body: a JSON object whose known keys hold strings. Unknown keys are
    /// ignored. The error says what was wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Err("empty body: expected a SubscriptionInfo JSON object".into()),
            Some(b'{') => {}
            Some(_) => {
                return Err("expected a JSON object with ResourceAddress and EndpointUri".into());
            }
        }
        serde_json::from_slice(body).map_err(|e| format!("malformed SubscriptionInfo: {e}"))
    }

    /// The first mandatory key that is missing or empty, as the Go SDK names it.
    pub fn missing_field(&self) -> Option<&'static str> {
        if self.endpoint_uri.is_empty() {
            Some("EndpointUri")
        } else if self.resource_address.is_empty() {
            Some("ResourceAddress")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_go_key_order() {
        let s = SubscriptionInfo {
            resource_address: "/cluster/node/node1/mock".into(),
            endpoint_uri: "http://127.0.0.1:18001/event".into(),
            subscription_id: "a903d39a-8af2-467c-bcef-3c9e481e5c56".into(),
            uri_location: "http://localhost:9043/api/ocloudNotifications/v2/subscriptions/a903d39a-8af2-467c-bcef-3c9e481e5c56".into(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"ResourceAddress":"/cluster/node/node1/mock","EndpointUri":"http://127.0.0.1:18001/event","SubscriptionId":"a903d39a-8af2-467c-bcef-3c9e481e5c56","UriLocation":"http://localhost:9043/api/ocloudNotifications/v2/subscriptions/a903d39a-8af2-467c-bcef-3c9e481e5c56"}"#
        );
    }

    #[test]
    fn decodes_leniently_and_names_missing_fields() {
        let s: SubscriptionInfo =
            serde_json::from_str(r#"{"endpointUri":"x","ResourceAddress":"/a","extra":[1]}"#)
                .unwrap();
        assert_eq!(s.missing_field(), Some("EndpointUri"));
        let s: SubscriptionInfo = serde_json::from_str(r#"{"EndpointUri":"http://a"}"#).unwrap();
        assert_eq!(s.missing_field(), Some("ResourceAddress"));
        assert!(SubscriptionInfo::from_json(br#"{"EndpointUri":5}"#).is_err());
        assert!(SubscriptionInfo::from_json(b"[]").is_err());
        assert!(SubscriptionInfo::from_json(b"  ").is_err());
        assert!(SubscriptionInfo::from_json(b"{bad").is_err());
    }
}
