use std::fmt;

use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A write-only value: a password, a private key, a secret access key.
///
/// It can be deserialized from a request but deliberately implements neither
/// `Serialize` nor a revealing `Debug`, so it cannot end up in a response, a
/// stored JSON document or a log line by accident. The store encrypts it
/// separately (see `sluice-store`'s secret bag).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value; grep for it when auditing secret use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .write_only(Some(true))
            .description(Some(
                "Write-only: stored encrypted and never returned by any endpoint.",
            ))
            .into()
    }
}

impl ToSchema for Secret {}

/// For `skip_serializing_if`: a secret field is never written out. Spelled
/// this way rather than `skip_serializing` so the OpenAPI document still
/// lists the field (as `writeOnly`) for clients that send it.
pub fn never_written<T>(_: &T) -> bool {
    true
}

/// The `serialize_with` of a secret field; `never_written` keeps serde from
/// ever calling it, and `Secret` itself stays without `Serialize`.
pub fn refuse_to_write<S: serde::Serializer>(_: &Option<Secret>, _: S) -> Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom("secrets are never serialized"))
}

/// The secrets of one pipe or destination, keyed by their slot name (see
/// `PipeSpec::secret_slots`). The store seals the whole bag as one encrypted
/// value; this type only moves secrets between a spec and the bag.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretBag(std::collections::BTreeMap<String, Secret>);

impl SecretBag {
    /// Moves every secret out of the slots, leaving them empty.
    pub fn take_from<'a>(
        slots: impl IntoIterator<Item = (&'static str, &'a mut Option<Secret>)>,
    ) -> Self {
        let mut bag = Self::default();
        for (name, slot) in slots {
            if let Some(secret) = slot.take() {
                bag.0.insert(name.to_owned(), secret);
            }
        }
        bag
    }

    /// Puts secrets back into the slots that exist and are empty; a secret
    /// whose slot no longer exists (credentials removed) is dropped.
    pub fn fill<'a>(
        &self,
        slots: impl IntoIterator<Item = (&'static str, &'a mut Option<Secret>)>,
    ) {
        for (name, slot) in slots {
            if slot.is_none() {
                *slot = self.0.get(name).cloned();
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn insert(&mut self, name: impl Into<String>, secret: Secret) {
        self.0.insert(name.into(), secret);
    }
}

/// What secrets are bound to: each entry is a field that says where a
/// secret is sent or as whom, its value, and the secret slots it guards
/// (those whose name starts with the scope; `""` guards every slot)
/// (`DestinationSpec::secret_binding`, `PipeSpec::secret_binding`).
pub type Binding = Vec<(&'static str, Option<String>, &'static str)>;

/// Secrets are only ever sent to the endpoint they were given for. When an
/// edit changes a binding entry, every stored secret it guards that the
/// edited spec still has must be sent again; this names those slots (as
/// JSON Pointers into the request body) that were not. Call it before
/// `SecretBag::fill`.
pub fn secrets_to_resend<'a>(
    before: &Binding,
    after: &Binding,
    edited_slots: impl IntoIterator<Item = (&'static str, &'a mut Option<Secret>)>,
    stored: &SecretBag,
) -> Vec<crate::FieldError> {
    let changed: Vec<(&str, &str)> = if before.len() == after.len() {
        before
            .iter()
            .zip(after)
            .filter(|(a, b)| a != b)
            .map(|((name, _, scope), _)| (*name, *scope))
            .collect()
    } else {
        after
            .iter()
            .map(|(name, _, scope)| (*name, *scope))
            .collect()
    };
    edited_slots
        .into_iter()
        .filter(|(name, slot)| slot.is_none() && stored.0.contains_key(*name))
        .filter_map(|(name, _)| {
            let why: Vec<&str> = changed
                .iter()
                .filter(|(_, scope)| name.starts_with(scope))
                .map(|(field, _)| *field)
                .collect();
            (!why.is_empty()).then(|| crate::FieldError {
                pointer: format!("/{}", name.replace('.', "/")),
                detail: format!(
                    "must be sent again: {} changed, and a stored secret is only sent to the endpoint it was given for",
                    why.join(", ")
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_binding_needs_the_stored_secrets_again() {
        let mut stored = SecretBag::default();
        stored.insert("password", Secret::new("old"));
        let before: Binding = vec![
            ("url", Some("https://a".into()), ""),
            ("username", Some("u".into()), ""),
        ];
        let moved: Binding = vec![
            ("url", Some("https://evil".into()), ""),
            ("username", Some("u".into()), ""),
        ];

        let mut not_sent: Option<Secret> = None;
        let missing = secrets_to_resend(&before, &moved, [("password", &mut not_sent)], &stored);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].pointer, "/password");
        assert!(
            missing[0].detail.contains("url changed"),
            "{}",
            missing[0].detail
        );

        let mut sent = Some(Secret::new("new"));
        assert!(secrets_to_resend(&before, &moved, [("password", &mut sent)], &stored).is_empty());
        let mut not_sent: Option<Secret> = None;
        assert!(
            secrets_to_resend(&before, &before, [("password", &mut not_sent)], &stored).is_empty()
        );
        // Nothing stored, nothing to send again.
        let mut not_sent: Option<Secret> = None;
        assert!(secrets_to_resend(
            &before,
            &moved,
            [("password", &mut not_sent)],
            &SecretBag::default()
        )
        .is_empty());
        // Nested slot names become pointers into the body.
        let mut stored = SecretBag::default();
        stored.insert("source.kafka.credentials.password", Secret::new("p"));
        stored.insert(
            "source.kafka.schemaRegistry.credentials.password",
            Secret::new("r"),
        );
        let binding = |brokers: &str, registry: &str| -> Binding {
            vec![
                (
                    "source.kafka.brokers",
                    Some(brokers.into()),
                    "source.kafka.credentials",
                ),
                (
                    "source.kafka.schemaRegistry.url",
                    Some(registry.into()),
                    "source.kafka.schemaRegistry",
                ),
            ]
        };
        let (mut kafka, mut registry): (Option<Secret>, Option<Secret>) = (None, None);
        let missing = secrets_to_resend(
            &binding("a:9092", "http://r"),
            &binding("b:9092", "http://r"),
            [
                ("source.kafka.credentials.password", &mut kafka),
                (
                    "source.kafka.schemaRegistry.credentials.password",
                    &mut registry,
                ),
            ],
            &stored,
        );
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].pointer, "/source/kafka/credentials/password");
        // Each secret is guarded by its own endpoint only.
        let missing = secrets_to_resend(
            &binding("a:9092", "http://r"),
            &binding("a:9092", "http://elsewhere"),
            [
                ("source.kafka.credentials.password", &mut kafka),
                (
                    "source.kafka.schemaRegistry.credentials.password",
                    &mut registry,
                ),
            ],
            &stored,
        );
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(
            missing[0].pointer,
            "/source/kafka/schemaRegistry/credentials/password"
        );
    }

    #[test]
    fn bag_moves_secrets_out_and_back() {
        let mut a = Some(Secret::new("one"));
        let mut b: Option<Secret> = None;
        let bag = SecretBag::take_from([("a", &mut a), ("b", &mut b)]);
        assert!(a.is_none());
        assert_eq!(bag.iter().count(), 1);

        let mut a2 = Some(Secret::new("newer"));
        let mut b2 = None;
        bag.fill([("a", &mut a2), ("b", &mut b2)]);
        assert_eq!(a2.unwrap().expose(), "newer", "a newer secret wins");
        assert!(b2.is_none());

        let mut a3 = None;
        bag.fill([("a", &mut a3)]);
        assert_eq!(a3.unwrap().expose(), "one");
        assert_eq!(format!("{bag:?}"), r#"SecretBag({"a": Secret(***)})"#);
    }
}
