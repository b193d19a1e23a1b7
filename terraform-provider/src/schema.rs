//! Resource schemas, declared once: the same declaration gives Terraform its
//! schema (tfplugin6 attributes, nested where the API nests), the cty type
//! values are encoded with, the API field each attribute maps to, and which
//! changes force a replacement. Pure.

use std::collections::BTreeMap;

use magma_protocol::tfplugin6 as tf;
use serde_json::Value as Json;

use crate::cty::{Type, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// Set by the provider only.
    Computed,
    /// The user may set it; otherwise the API's default shows.
    OptionalComputed,
}

#[derive(Debug, Clone)]
pub enum Kind {
    String,
    Number,
    Bool,
    StringList,
    /// A map of strings (`map(string)`).
    StringMap,
    /// A nested object (protocol 6 nested attributes).
    Single(Vec<Attr>),
    /// A list of nested objects.
    List(Vec<Attr>),
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub name: &'static str,
    /// The API's JSON field; `None` for attributes the API does not have
    /// (`id`, rotation versions, `stopped`).
    pub api: Option<&'static str>,
    pub kind: Kind,
    pub presence: Presence,
    pub description: &'static str,
    pub sensitive: bool,
    /// Sent to the API, never stored in state (Terraform 1.11 write-only).
    pub write_only: bool,
    /// The API refuses to change it: a change replaces the resource.
    pub replace: bool,
}

impl Attr {
    fn new(name: &'static str, kind: Kind, presence: Presence, description: &'static str) -> Self {
        Attr {
            name,
            api: Some(""),
            kind,
            presence,
            description,
            sensitive: false,
            write_only: false,
            replace: false,
        }
    }

    pub fn string(name: &'static str, presence: Presence, description: &'static str) -> Self {
        Self::new(name, Kind::String, presence, description)
    }
    pub fn number(name: &'static str, presence: Presence, description: &'static str) -> Self {
        Self::new(name, Kind::Number, presence, description)
    }
    pub fn bool(name: &'static str, presence: Presence, description: &'static str) -> Self {
        Self::new(name, Kind::Bool, presence, description)
    }
    pub fn strings(name: &'static str, presence: Presence, description: &'static str) -> Self {
        Self::new(name, Kind::StringList, presence, description)
    }
    pub fn string_map(name: &'static str, presence: Presence, description: &'static str) -> Self {
        Self::new(name, Kind::StringMap, presence, description)
    }
    pub fn single(
        name: &'static str,
        presence: Presence,
        description: &'static str,
        attrs: Vec<Attr>,
    ) -> Self {
        Self::new(name, Kind::Single(attrs), presence, description)
    }
    pub fn list(
        name: &'static str,
        presence: Presence,
        description: &'static str,
        attrs: Vec<Attr>,
    ) -> Self {
        Self::new(name, Kind::List(attrs), presence, description)
    }

    /// The API names it differently (camelCase, or `password` for
    /// `password_wo`).
    pub fn api(mut self, field: &'static str) -> Self {
        self.api = Some(field);
        self
    }
    pub fn local(mut self) -> Self {
        self.api = None;
        self
    }
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }
    pub fn secret(mut self) -> Self {
        self.sensitive = true;
        self.write_only = true;
        self
    }

    pub fn api_field(&self) -> Option<String> {
        match self.api {
            None => None,
            Some("") => Some(camel(self.name)),
            Some(field) => Some(field.to_owned()),
        }
    }

    pub fn cty(&self) -> Type {
        match &self.kind {
            Kind::String => Type::String,
            Kind::Number => Type::Number,
            Kind::Bool => Type::Bool,
            Kind::StringList => Type::List(Box::new(Type::String)),
            Kind::StringMap => Type::Map(Box::new(Type::String)),
            Kind::Single(attrs) => object_type(attrs),
            Kind::List(attrs) => Type::List(Box::new(object_type(attrs))),
        }
    }

    fn to_tf(&self) -> tf::schema::Attribute {
        let nested =
            |attrs: &[Attr], nesting: tf::schema::object::NestingMode| tf::schema::Object {
                attributes: attrs.iter().map(Attr::to_tf).collect(),
                nesting: nesting as i32,
                ..Default::default()
            };
        let (r#type, nested_type) = match &self.kind {
            Kind::Single(attrs) => (
                Vec::new(),
                Some(nested(attrs, tf::schema::object::NestingMode::Single)),
            ),
            Kind::List(attrs) => (
                Vec::new(),
                Some(nested(attrs, tf::schema::object::NestingMode::List)),
            ),
            _ => (self.cty().to_json_bytes(), None),
        };
        tf::schema::Attribute {
            name: self.name.to_owned(),
            r#type,
            nested_type,
            description: self.description.to_owned(),
            required: self.presence == Presence::Required,
            optional: matches!(
                self.presence,
                Presence::Optional | Presence::OptionalComputed
            ),
            computed: matches!(
                self.presence,
                Presence::Computed | Presence::OptionalComputed
            ),
            sensitive: self.sensitive,
            write_only: self.write_only,
            ..Default::default()
        }
    }
}

pub fn object_type(attrs: &[Attr]) -> Type {
    Type::Object(attrs.iter().map(|a| (a.name.to_owned(), a.cty())).collect())
}

pub fn tf_schema(attrs: &[Attr], description: &str) -> tf::Schema {
    tf::Schema {
        version: 0,
        block: Some(tf::schema::Block {
            attributes: attrs.iter().map(Attr::to_tf).collect(),
            description: description.to_owned(),
            ..Default::default()
        }),
    }
}

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What to send to the API: every attribute with an API field and a known,
/// non-null value. Write-only attributes are read from `config` (they are
/// null in plans and state) and sent only when `with_secrets`.
pub fn to_api(attrs: &[Attr], value: &Value, config: &Value, with_secrets: bool) -> Json {
    let mut object = serde_json::Map::new();
    for attr in attrs {
        let Some(field) = attr.api_field() else {
            continue;
        };
        // Computed-only attributes are the API's to say (`hasPassword`).
        if attr.presence == Presence::Computed {
            continue;
        }
        let source = if attr.write_only {
            if !with_secrets {
                continue;
            }
            config.get(attr.name)
        } else {
            value.get(attr.name)
        };
        let json = match &attr.kind {
            Kind::Single(nested) if !source.is_null() => {
                Some(to_api(nested, source, config.get(attr.name), with_secrets))
            }
            Kind::List(nested) => source.as_list().map(|items| {
                let configs = config.get(attr.name).as_list().unwrap_or_default();
                Json::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            to_api(
                                nested,
                                item,
                                configs.get(i).unwrap_or(&Value::Null),
                                with_secrets,
                            )
                        })
                        .collect(),
                )
            }),
            _ => scalar_to_json(source),
        };
        if let Some(json) = json {
            object.insert(field, json);
        }
    }
    Json::Object(object)
}

fn scalar_to_json(value: &Value) -> Option<Json> {
    match value {
        Value::String(s) => Some(Json::String(s.clone())),
        Value::Bool(b) => Some(Json::Bool(*b)),
        Value::Number(_) => value.as_i64().map(Json::from).or_else(|| {
            value
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
        }),
        Value::List(items) => Some(Json::Array(
            items.iter().filter_map(scalar_to_json).collect(),
        )),
        Value::Map(entries) => Some(Json::Object(
            entries
                .iter()
                .filter_map(|(k, v)| scalar_to_json(v).map(|v| (k.clone(), v)))
                .collect(),
        )),
        _ => None,
    }
}

/// State from an API answer. Write-only attributes are always null; local
/// attributes (`id`, versions, `stopped`) come from `locals`.
pub fn from_api(attrs: &[Attr], json: &Json, locals: &BTreeMap<&str, Value>) -> Value {
    let mut object = BTreeMap::new();
    for attr in attrs {
        let value = match attr.api_field() {
            _ if attr.write_only => Value::Null,
            None => locals.get(attr.name).cloned().unwrap_or(Value::Null),
            Some(field) => match (json.get(&field), &attr.kind) {
                (None | Some(Json::Null), _) => Value::Null,
                (Some(nested @ Json::Object(_)), Kind::Single(inner)) => {
                    from_api(inner, nested, &BTreeMap::new())
                }
                (Some(Json::Array(items)), Kind::List(inner)) => Value::List(
                    items
                        .iter()
                        .map(|item| from_api(inner, item, &BTreeMap::new()))
                        .collect(),
                ),
                (Some(Json::Array(items)), Kind::StringList) => Value::List(
                    items
                        .iter()
                        .map(|i| i.as_str().map_or(Value::Null, Value::string))
                        .collect(),
                ),
                (Some(Json::Object(entries)), Kind::StringMap) => Value::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map_or(Value::Null, Value::string)))
                        .collect(),
                ),
                (Some(Json::String(s)), Kind::String) => Value::string(s.clone()),
                (Some(Json::Bool(b)), Kind::Bool) => Value::Bool(*b),
                (Some(Json::Number(n)), Kind::Number) => Value::Number(n.clone().into()),
                // A shape the schema does not expect: shown as unset rather
                // than failing the whole read.
                _ => Value::Null,
            },
        };
        object.insert(attr.name.to_owned(), value);
    }
    Value::Object(object)
}

/// Attribute paths whose change forces a replacement: marked attributes
/// whose planned value differs from the prior state, looking inside nested
/// objects (a whole list of objects counts as one value).
pub fn replacements(attrs: &[Attr], prior: &Value, planned: &Value) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    collect_replacements(attrs, prior, planned, &mut Vec::new(), &mut paths);
    paths
}

fn collect_replacements(
    attrs: &[Attr],
    prior: &Value,
    planned: &Value,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    for attr in attrs {
        let (before, after) = (prior.get(attr.name), planned.get(attr.name));
        prefix.push(attr.name.to_owned());
        if attr.replace && before != after && after.is_known() {
            out.push(prefix.clone());
        } else if let Kind::Single(nested) = &attr.kind {
            collect_replacements(nested, before, after, prefix, out);
        }
        prefix.pop();
    }
}

/// Write-only attributes blanked, at every depth: Terraform refuses them in
/// plans and state.
pub fn without_write_only(attrs: &[Attr], value: &Value) -> Value {
    if !matches!(value, Value::Object(_)) {
        return value.clone();
    }
    let mut object = BTreeMap::new();
    for attr in attrs {
        let inner = value.get(attr.name);
        let blanked = match &attr.kind {
            _ if attr.write_only => Value::Null,
            Kind::Single(nested) => without_write_only(nested, inner),
            Kind::List(nested) => match inner.as_list() {
                Some(items) => Value::List(
                    items
                        .iter()
                        .map(|item| without_write_only(nested, item))
                        .collect(),
                ),
                None => inner.clone(),
            },
            _ => inner.clone(),
        };
        object.insert(attr.name.to_owned(), blanked);
    }
    Value::Object(object)
}

/// Marks computed attributes still null in a planned value as unknown: the
/// API decides them. Nested objects are visited when present.
pub fn unknown_computed(attrs: &[Attr], planned: &Value) -> Value {
    let mut object = BTreeMap::new();
    for attr in attrs {
        let value = planned.get(attr.name).clone();
        let computed = matches!(
            attr.presence,
            Presence::Computed | Presence::OptionalComputed
        );
        let value = match (&attr.kind, value) {
            (Kind::Single(nested), v @ Value::Object(_)) => unknown_computed(nested, &v),
            (_, Value::Null) if computed && !attr.write_only => Value::Unknown,
            (_, v) => v,
        };
        object.insert(attr.name.to_owned(), value);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Vec<Attr> {
        vec![
            Attr::string("id", Presence::Computed, "id").local(),
            Attr::string("name", Presence::Required, "name"),
            Attr::string("ca_certificate", Presence::Optional, "pem"),
            Attr::string("password_wo", Presence::Optional, "secret")
                .api("password")
                .secret(),
            Attr::single(
                "source",
                Presence::Required,
                "source",
                vec![Attr::string("stream_name", Presence::Required, "s").replace()],
            ),
        ]
    }

    fn state(name: &str, stream: &str) -> Value {
        Value::object([
            ("id", Value::string("1")),
            ("name", Value::string(name)),
            ("ca_certificate", Value::Null),
            ("password_wo", Value::Null),
            (
                "source",
                Value::object([("stream_name", Value::string(stream))]),
            ),
        ])
    }

    #[test]
    fn api_fields_are_camel_case_and_secrets_come_from_config() {
        let config = state("n", "s").with("password_wo", Value::string("hunter2"));
        let json = to_api(&attrs(), &state("n", "s"), &config, true);
        assert_eq!(
            json,
            serde_json::json!({"name": "n", "password": "hunter2", "source": {"streamName": "s"}})
        );
        let json = to_api(&attrs(), &state("n", "s"), &config, false);
        assert!(json.get("password").is_none());
    }

    #[test]
    fn answers_become_state_without_secrets() {
        let json = serde_json::json!({"name": "n", "source": {"streamName": "s"}, "extra": 1});
        let locals = BTreeMap::from([("id", Value::string("1"))]);
        assert_eq!(from_api(&attrs(), &json, &locals), state("n", "s"));
    }

    #[test]
    fn nested_immutable_changes_replace() {
        let paths = replacements(&attrs(), &state("n", "s"), &state("m", "t"));
        assert_eq!(
            paths,
            vec![vec!["source".to_owned(), "stream_name".to_owned()]]
        );
        assert!(replacements(&attrs(), &state("n", "s"), &state("m", "s")).is_empty());
    }

    #[test]
    fn write_only_values_never_reach_a_plan() {
        let with_secret = state("n", "s").with("password_wo", Value::string("p"));
        assert_eq!(without_write_only(&attrs(), &with_secret), state("n", "s"));
    }

    #[test]
    fn computed_nulls_become_unknown() {
        let planned = state("n", "s").with("id", Value::Null);
        let marked = unknown_computed(&attrs(), &planned);
        assert_eq!(marked.get("id"), &Value::Unknown);
        assert_eq!(marked.get("ca_certificate"), &Value::Null);
        assert_eq!(marked.get("password_wo"), &Value::Null);
    }

    #[test]
    fn the_schema_marks_write_only_and_nesting() {
        let schema = tf_schema(&attrs(), "d");
        let block = schema.block.unwrap();
        let password = block
            .attributes
            .iter()
            .find(|a| a.name == "password_wo")
            .unwrap();
        assert!(password.write_only && password.sensitive && password.optional);
        let source = block
            .attributes
            .iter()
            .find(|a| a.name == "source")
            .unwrap();
        assert!(source.r#type.is_empty());
        assert_eq!(source.nested_type.as_ref().unwrap().attributes.len(), 1);
    }
}
