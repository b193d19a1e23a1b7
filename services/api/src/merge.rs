//! JSON Merge Patch (RFC 7396): PATCH bodies name only what changes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::extract::parse_json;
use crate::problem::Problem;

/// `current` with `patch` merged in, read back as a `T` with the same
/// validation (and field pointers) as a request body.
pub fn apply_patch<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: &Map<String, Value>,
) -> Result<T, Problem> {
    let mut document = serde_json::to_value(current).map_err(|_| Problem::internal())?;
    merge(&mut document, patch);
    let bytes = serde_json::to_vec(&document).map_err(|_| Problem::internal())?;
    parse_json(&bytes)
}

pub fn merge(target: &mut Value, patch: &Map<String, Value>) {
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(object) = target else {
        return;
    };
    for (key, value) in patch {
        match value {
            Value::Null => {
                object.remove(key);
            }
            Value::Object(inner) => merge(object.entry(key.clone()).or_insert(Value::Null), inner),
            other => {
                object.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7396_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge(&mut target, patch.as_object().unwrap());
            assert_eq!(target, expected);
        }
    }
}
