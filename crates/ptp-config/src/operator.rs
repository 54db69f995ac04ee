//! The `PtpOperatorConfig` resource: only what the daemon needs from it.

use serde::Deserialize;

/// `spec.ptpEventConfig.enableEventPublisher` of a `PtpOperatorConfig` given as YAML or JSON
/// (several `---` documents allowed: the first of `kind: PtpOperatorConfig`, else the first
/// non-empty one). Absent means false, the operator's default. Besides YAML booleans, the
/// strings `true`/`false`/`yes`/`no`/`on`/`off` are accepted, as the Go YAML 1.1 reader does.
pub fn event_publisher_enabled(text: &str) -> Result<bool, String> {
    const PATH: &str = "spec.ptpEventConfig.enableEventPublisher";
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = serde_norway::Value::deserialize(de)
            .map_err(|e| format!("document {}: not valid YAML: {e}", i + 1))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    let kind = |v: &serde_norway::Value| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned);
    let chosen = docs
        .iter()
        .find(|v| kind(v).as_deref() == Some("PtpOperatorConfig"))
        .or_else(|| docs.first())
        .ok_or("empty file: expected a PtpOperatorConfig")?;
    match kind(chosen).as_deref() {
        None | Some("PtpOperatorConfig") => {}
        Some(k) => return Err(format!("kind {k}: expected a PtpOperatorConfig")),
    }
    let value = chosen
        .get("spec")
        .and_then(|s| s.get("ptpEventConfig"))
        .and_then(|p| p.get("enableEventPublisher"));
    match value {
        None | Some(serde_norway::Value::Null) => Ok(false),
        Some(serde_norway::Value::Bool(b)) => Ok(*b),
        Some(serde_norway::Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" => Ok(true),
            "false" | "no" | "off" | "n" => Ok(false),
            _ => Err(format!("{PATH}: {s:?} is not a boolean")),
        },
        Some(other) => Err(format!("{PATH}: {other:?} is not a boolean")),
    }
}
