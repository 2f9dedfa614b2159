//! The config as serde reads it: every known key kept as untyped JSON, unknown keys collected.
//! Types are checked afterwards by [`super::validate`], which can name the key path of each
//! problem (serde's own errors cannot).

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
pub(super) struct Raw {
    pub options: Option<Value>,
    pub schedule: Option<Value>,
    pub packs: Option<Value>,
    pub decorators: Option<Value>,
    pub file_paths: Option<Value>,
    pub exclude_paths: Option<Value>,
    pub file_accesses: Option<Value>,
    pub file_paths_query: Option<Value>,
    pub kafka_topics: Option<Value>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl Raw {
    pub fn from_value(value: Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err(format!(
                "(top level): expected a JSON object, got {}",
                describe(&value)
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("(top level): {e}"))
    }
}

/// A short rendering of a JSON value for "got ..." messages.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => {
            let s = other.to_string();
            if s.chars().count() > 40 {
                format!("{}…", s.chars().take(40).collect::<String>())
            } else {
                s
            }
        }
    }
}
