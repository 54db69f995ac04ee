//! Errors that name the input, the field and the fix.

use std::fmt;
use std::path::PathBuf;

/// One problem with one field of one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The profile's name (or `profile[i]` when it has none); `None` for file-level fields.
    pub profile: Option<String>,
    /// The field, as a user writes it (`ptp4lConf`, `ptpClockThreshold.holdOverTimeout`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl FieldError {
    pub(crate) fn new(
        profile: Option<&str>,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        FieldError {
            profile: profile.map(str::to_owned),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.profile {
            write!(f, "profile {p:?}: ")?;
        }
        write!(f, "{}: {}; fix: {}", self.field, self.problem, self.fix)
    }
}

/// Why a profile source could not be used. Nothing is applied when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is neither valid JSON nor YAML of a known shape.
    #[error("{origin}: {detail}")]
    Syntax {
        /// The file (or `<input>`).
        origin: String,
        /// What is wrong, with the fix.
        detail: String,
    },
    /// One or more fields are invalid (all of them are listed).
    #[error("{origin}: {} invalid field(s):\n  {}", .errors.len(), join(.errors))]
    Invalid {
        /// The file (or `<input>`).
        origin: String,
        /// Every problem found.
        errors: Vec<FieldError>,
    },
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

impl ConfigError {
    /// The field errors, if this is [`ConfigError::Invalid`].
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }

    /// The same error, naming `new` as its input (a file path) instead.
    pub fn with_origin_public(self, new: &str) -> Self {
        self.with_origin(new)
    }

    pub(crate) fn with_origin(self, new: &str) -> Self {
        match self {
            ConfigError::Syntax { detail, .. } => ConfigError::Syntax {
                origin: new.to_owned(),
                detail,
            },
            ConfigError::Invalid { errors, .. } => ConfigError::Invalid {
                origin: new.to_owned(),
                errors,
            },
            e => e,
        }
    }
}
