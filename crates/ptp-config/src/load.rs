//! Reading profiles in the forms a user has: the operator's per-node ConfigMap value (a JSON
//! array of profiles, or one legacy profile object) and `PtpConfig` custom resources (YAML or
//! JSON, several per file, `---`-separated, or a `List`), plus a whole `ConfigMap` manifest.

use std::path::Path;

use serde_json::Value;

use crate::error::{ConfigError, FieldError};
use crate::profile::{PtpConfig, PtpProfile};

/// Which node the profiles are for: its name and its label keys (for `recommend[].match`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSelector {
    /// `NODE_NAME`.
    pub name: String,
    /// Label keys the node carries (`node-role.kubernetes.io/worker`); `key=value` is accepted
    /// and only the key is compared, as the operator does.
    pub labels: Vec<String>,
}

impl NodeSelector {
    /// A node with a name and no labels.
    pub fn new(name: impl Into<String>) -> Self {
        NodeSelector {
            name: name.into(),
            labels: Vec::new(),
        }
    }

    fn has_label(&self, key: &str) -> bool {
        self.labels
            .iter()
            .any(|l| l.split_once('=').map_or(l.as_str(), |(k, _)| k) == key)
    }
}

/// The form the input was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// The operator's per-node value: a JSON (or YAML) array of profiles, or one profile object.
    NodeProfiles,
    /// One or more `PtpConfig` resources; profiles chosen by `spec.recommend`.
    PtpConfig,
    /// A `ConfigMap` manifest; the profiles are `data.<node name>`.
    ConfigMap,
}

/// Reads and parses `path` (see [`parse_profiles`]). Errors name the file.
pub fn load_profiles(
    path: &Path,
    node: &NodeSelector,
) -> Result<(InputForm, Vec<PtpProfile>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_profiles(&text, node).map_err(|e| e.with_origin(&path.display().to_string()))
}

fn syntax(detail: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        origin: "<input>".into(),
        detail: detail.into(),
    }
}

/// Parses profile text in any supported form and selects this node's profiles. Does **not**
/// validate them: call [`crate::validate`] (or [`crate::plan`], which does) before using them.
/// Whitespace-only text means "no profiles".
pub fn parse_profiles(
    text: &str,
    node: &NodeSelector,
) -> Result<(InputForm, Vec<PtpProfile>), ConfigError> {
    let docs = documents(text)?;
    if docs.is_empty() {
        return Ok((InputForm::NodeProfiles, Vec::new()));
    }
    let mut configs: Vec<(usize, PtpConfig)> = Vec::new();
    let mut direct: Option<(InputForm, Vec<PtpProfile>)> = None;
    for (i, doc) in docs.into_iter().enumerate() {
        let what = format!("document {}", i + 1);
        match classify(&doc) {
            Shape::Profiles => {
                let p: Vec<PtpProfile> = serde_json::from_value(doc)
                    .map_err(|e| syntax(format!("{what}: not a list of PtpProfile: {e}")))?;
                push_direct(&mut direct, InputForm::NodeProfiles, p, &what)?;
            }
            Shape::Profile => {
                let p: PtpProfile = serde_json::from_value(doc)
                    .map_err(|e| syntax(format!("{what}: not a PtpProfile: {e}")))?;
                push_direct(&mut direct, InputForm::NodeProfiles, vec![p], &what)?;
            }
            Shape::ConfigMap => {
                let data = doc.get("data").and_then(|d| d.get(&node.name));
                let Some(Value::String(s)) = data else {
                    return Err(syntax(format!(
                        "{what}: ConfigMap has no data key {:?} (the node name); fix: set \
                         NODE_NAME/--node-name to one of its keys",
                        node.name
                    )));
                };
                let (_, p) = parse_profiles(s, node).map_err(|e| match e {
                    ConfigError::Syntax { detail, .. } => {
                        syntax(format!("{what}: data.{}: {detail}", node.name))
                    }
                    e => e,
                })?;
                push_direct(&mut direct, InputForm::ConfigMap, p, &what)?;
            }
            Shape::PtpConfig => {
                let c: PtpConfig = serde_json::from_value(doc)
                    .map_err(|e| syntax(format!("{what}: not a PtpConfig: {e}")))?;
                configs.push((i, c));
            }
            Shape::List(items) => {
                for item in items {
                    let c: PtpConfig = serde_json::from_value(item).map_err(|e| {
                        syntax(format!("{what}: List item is not a PtpConfig: {e}"))
                    })?;
                    configs.push((i, c));
                }
            }
            Shape::Other(kind) => {
                return Err(syntax(format!(
                    "{what}: {kind} is not a PtpConfig or ConfigMap; fix: give a PtpConfig \
                     resource, or the operator's per-node JSON array of profiles"
                )));
            }
        }
    }
    match (direct, configs.is_empty()) {
        (Some(d), true) => Ok(d),
        (Some(_), false) => Err(syntax(
            "mixes PtpConfig resources with a plain profile list; fix: use one form per file",
        )),
        (None, _) => Ok((InputForm::PtpConfig, select(&configs, node)?)),
    }
}

fn push_direct(
    direct: &mut Option<(InputForm, Vec<PtpProfile>)>,
    form: InputForm,
    p: Vec<PtpProfile>,
    what: &str,
) -> Result<(), ConfigError> {
    if direct.is_some() {
        return Err(syntax(format!(
            "{what}: a second profile list; fix: put all profiles in one list"
        )));
    }
    *direct = Some((form, p));
    Ok(())
}

enum Shape {
    Profiles,
    Profile,
    ConfigMap,
    PtpConfig,
    List(Vec<Value>),
    Other(String),
}

fn classify(doc: &Value) -> Shape {
    match doc {
        Value::Array(_) => Shape::Profiles,
        Value::Object(m) => match m.get("kind").and_then(Value::as_str) {
            Some("PtpConfig") => Shape::PtpConfig,
            Some("ConfigMap") => Shape::ConfigMap,
            Some("List") | Some("PtpConfigList") => Shape::List(
                m.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ),
            Some(k) => Shape::Other(format!("kind {k:?}")),
            None if m.contains_key("spec") => Shape::PtpConfig,
            None => Shape::Profile,
        },
        other => {
            let what = match other {
                Value::String(_) => "plain text",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "a scalar",
            };
            let mut shown = other.to_string();
            if shown.chars().count() > 40 {
                shown = format!("{}...", shown.chars().take(40).collect::<String>());
            }
            Shape::Other(format!("{what} ({shown})"))
        }
    }
}

/// JSON when it parses as JSON, else YAML documents. Empty/null documents are dropped.
fn documents(text: &str) -> Result<Vec<Value>, ConfigError> {
    let t = text.trim_start();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    if (t.starts_with('[') || t.starts_with('{'))
        && let Ok(v) = serde_json::from_str::<Value>(t)
    {
        return Ok(vec![v]);
    }
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(de).map_err(|e| {
            syntax(format!(
                "document {}: not valid YAML or JSON: {e}; fix: check the indentation and quoting \
                 near that line",
                i + 1
            ))
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The operator's `syncPtpConfig` choice for one node: recommend entries sorted by priority
/// (lowest first), entries without `match` ignored, a match by `nodeLabel` (key present) or
/// `nodeName`; every matching entry with the first matching priority is taken.
fn select(
    configs: &[(usize, PtpConfig)],
    node: &NodeSelector,
) -> Result<Vec<PtpProfile>, ConfigError> {
    let mut errors = Vec::new();
    let mut recs = Vec::new();
    for (doc, c) in configs {
        let cname = c
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("document {}", doc + 1));
        for (i, r) in c.spec.recommend.iter().enumerate() {
            recs.push((cname.clone(), i, r));
        }
    }
    recs.sort_by_key(|(_, _, r)| r.priority.unwrap_or(0));
    let matches = |r: &crate::profile::PtpRecommend| {
        r.match_rules.as_ref().is_some_and(|rules| {
            rules.iter().any(|m| {
                m.node_name.as_deref() == Some(node.name.as_str())
                    || m.node_label.as_deref().is_some_and(|l| node.has_label(l))
            })
        })
    };
    let first = recs
        .iter()
        .find(|(_, _, r)| matches(r))
        .map(|(_, _, r)| r.priority.unwrap_or(0));
    let Some(prio) = first else {
        let n: usize = configs.iter().map(|(_, c)| c.spec.recommend.len()).sum();
        return Err(ConfigError::Invalid {
            origin: "<input>".into(),
            errors: vec![FieldError::new(
                None,
                "spec.recommend",
                format!(
                    "none of the {n} recommend entries matches node {:?}",
                    node.name
                ),
                format!(
                    "add `match: [{{nodeName: {}}}]` to a recommend entry, or pass the node's \
                     labels with --node-label",
                    node.name
                ),
            )],
        });
    };
    let mut out: Vec<PtpProfile> = Vec::new();
    for (cname, i, r) in recs
        .iter()
        .filter(|(_, _, r)| r.priority.unwrap_or(0) == prio && matches(r))
    {
        let field = format!("PtpConfig {cname}: spec.recommend[{i}].profile");
        let Some(want) = r.profile.as_deref() else {
            errors.push(FieldError::new(
                None,
                field,
                "missing",
                "name a profile of spec.profile",
            ));
            continue;
        };
        let found: Vec<&PtpProfile> = configs
            .iter()
            .flat_map(|(_, c)| c.spec.profile.iter())
            .filter(|p| p.name.as_deref() == Some(want))
            .collect();
        match found.as_slice() {
            [] => errors.push(FieldError::new(
                None,
                field,
                format!("no profile named {want:?} in any spec.profile"),
                "fix the name or add the profile",
            )),
            [p] => {
                if !out.iter().any(|o| o.name.as_deref() == Some(want)) {
                    out.push((*p).clone());
                }
            }
            _ => errors.push(FieldError::new(
                None,
                field,
                format!("profile name {want:?} is defined {} times", found.len()),
                "give each profile a unique name",
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigError::Invalid {
            origin: "<input>".into(),
            errors,
        })
    }
}
