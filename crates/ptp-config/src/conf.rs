//! The linuxptp ini model of the Go daemon's `Ptp4lConf`: ordered sections of ordered
//! `key value` options, parsed and rendered exactly as `PopulatePtp4lConf` /
//! `RenderPtp4lConf` do.

/// `[global]`.
pub const GLOBAL: &str = "[global]";
/// `[nmea]` (ts2phc).
pub const NMEA: &str = "[nmea]";
/// `[unicast_master_table]`.
pub const UNICAST: &str = "[unicast_master_table]";

/// One `[section]` with its options in order. `name` keeps its brackets (`[global]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The header, brackets included.
    pub name: String,
    /// `key value` pairs in order; values are trimmed.
    pub options: Vec<(String, String)>,
}

/// A parsed linuxptp config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxptpConf {
    /// Sections in order of first appearance.
    pub sections: Vec<Section>,
}

/// A line of a `*Conf` text that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfLineError {
    /// 1-based line number in the field's text.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl LinuxptpConf {
    /// Parses `*Conf` text: lines are trimmed, empty lines and `#` comments dropped, a line
    /// starting with `[` opens a section (text after the first `]` is ignored, as in Go), any
    /// other line is `key value` split at the first blank. Unlike Go, which silently drops them,
    /// an option before any section and a key without a value are errors (ptp4l would reject
    /// or misread both).
    pub fn parse(text: &str) -> Result<Self, ConfLineError> {
        let mut conf = LinuxptpConf::default();
        let mut current: Option<String> = None;
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                let Some(close) = line.find(']') else {
                    return Err(ConfLineError {
                        line: i + 1,
                        problem: format!("section header {line:?} has no closing ']'"),
                        fix: format!("write it as \"{line}]\""),
                    });
                };
                let name = format!("{}]", &line[..close]);
                if name == "[]" {
                    return Err(ConfLineError {
                        line: i + 1,
                        problem: "empty section name \"[]\"".into(),
                        fix: "name the section: [global] or [<interface>]".into(),
                    });
                }
                conf.add_section(&name);
                current = Some(name);
                continue;
            }
            let Some(section) = &current else {
                return Err(ConfLineError {
                    line: i + 1,
                    problem: format!("option {line:?} is not in a section"),
                    fix: "put a [global] line above it".into(),
                });
            };
            let Some(split) = line.find([' ', '\t']) else {
                return Err(ConfLineError {
                    line: i + 1,
                    problem: format!("option {line:?} has no value"),
                    fix: format!("write it as \"{line} <value>\""),
                });
            };
            let (key, value) = (&line[..split], line[split..].trim());
            let section = section.clone();
            conf.set(&section, key, value, false);
        }
        Ok(conf)
    }

    /// Adds an empty section at the end unless it exists (Go `AddInterfaceSection`).
    pub fn add_section(&mut self, name: &str) {
        if !self.sections.iter().any(|s| s.name == name) {
            self.sections.push(Section {
                name: name.to_owned(),
                options: Vec::new(),
            });
        }
    }

    /// Go `setOption`: creates the section at the end if needed; with `overwrite` replaces every
    /// option of that key, else (or when absent) appends.
    pub fn set(&mut self, section: &str, key: &str, value: &str, overwrite: bool) {
        self.add_section(section);
        let Some(s) = self.sections.iter_mut().rev().find(|s| s.name == section) else {
            return;
        };
        let mut found = false;
        if overwrite {
            for (k, v) in s.options.iter_mut() {
                if k == key {
                    *v = value.to_owned();
                    found = true;
                }
            }
        }
        if !found {
            s.options.push((key.to_owned(), value.to_owned()));
        }
    }

    /// The first value of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|s| s.name == section)
            .flat_map(|s| s.options.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The interface sections in order (every section but `[global]`, `[nmea]` and
    /// `[unicast_master_table]`), without brackets: ptp4l port N is the N-th.
    pub fn interfaces(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter(|s| ![GLOBAL, NMEA, UNICAST].contains(&s.name.as_str()))
            .map(|s| s.name.replace(['[', ']'], ""))
            .collect()
    }

    /// Go `RenderPtp4lConf`: `#profile: <name>\n`, then `\n[section]` and `\nkey value` for
    /// each section and option. No trailing newline.
    pub fn render(&self, profile: &str) -> String {
        let mut out = format!("#profile: {profile}\n");
        for s in &self.sections {
            out.push('\n');
            out.push_str(&s.name);
            for (k, v) in &s.options {
                out.push('\n');
                out.push_str(k);
                out.push(' ');
                out.push_str(v);
            }
        }
        out
    }
}
