use serde::Serialize;
use utoipa::ToSchema;

/// One problem with one field of a request, addressed by a JSON Pointer
/// (RFC 6901) into the request body so that clients can highlight it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON Pointer to the offending value, e.g. `/source/kafka/topics/0`.
    pub pointer: String,
    pub detail: String,
}

/// Collects every field error of a request instead of stopping at the first,
/// so a user fixes a payload in one round trip.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<FieldError>,
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
    }

    pub fn check(&mut self, ok: bool, pointer: impl Into<String>, detail: impl Into<String>) {
        if !ok {
            self.error(pointer, detail);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
pub const MAX_IDENTIFIER_CHARS: usize = 255;
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// Human-facing names (pipes, destinations, keys): letters, digits, spaces and
/// `_ . -`. Quotes, semicolons, backticks, `$` and the like are refused so a
/// name can never smuggle SQL or shell syntax into a generated statement, a
/// log line or a Terraform plan.
pub fn check_display_name(v: &mut Validation, pointer: &str, name: &str) {
    let chars = name.chars().count();
    if chars == 0 || name.trim().is_empty() {
        v.error(pointer, "must not be empty");
    } else if chars > MAX_NAME_CHARS {
        v.error(
            pointer,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        );
    } else if name.trim() != name {
        v.error(pointer, "must not start or end with whitespace");
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-')))
    {
        v.error(
            pointer,
            format!("may contain only letters, digits, spaces and `_ . -`; found {bad:?}"),
        );
    }
}

pub fn check_description(v: &mut Validation, pointer: &str, text: &str) {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        v.error(
            pointer,
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    } else if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        v.error(pointer, "must not contain control characters");
    }
}

/// ClickHouse database, table and column names. ClickHouse accepts almost
/// anything in backquotes, but Sluice keeps to plain identifiers so that
/// every generated statement is unambiguous; nested columns use dots.
pub fn check_identifier(v: &mut Validation, pointer: &str, name: &str, allow_dots: bool) {
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let valid_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || (allow_dots && c == '.'));
    if name.is_empty() {
        v.error(pointer, "must not be empty");
    } else if name.len() > MAX_IDENTIFIER_CHARS {
        v.error(
            pointer,
            format!("must be at most {MAX_IDENTIFIER_CHARS} characters"),
        );
    } else if !valid_start || !valid_rest || name.ends_with('.') || name.contains("..") {
        let rule = if allow_dots {
            "must start with a letter or `_` and contain only ASCII letters, digits, `_` and single dots between parts"
        } else {
            "must start with a letter or `_` and contain only ASCII letters, digits and `_`"
        };
        v.error(pointer, rule);
    }
}

/// A PEM document (certificate or key): checked for shape only; the worker
/// and the destination check report what TLS itself thinks of it.
pub fn check_pem(v: &mut Validation, pointer: &str, pem: &str, expected_label: &str) {
    if pem.len() > MAX_PEM_BYTES {
        v.error(pointer, format!("must be at most {MAX_PEM_BYTES} bytes"));
    } else if !pem.contains("-----BEGIN ") || !pem.contains("-----END ") {
        v.error(
            pointer,
            format!("must be a PEM-encoded {expected_label} (-----BEGIN ...-----)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_ok(name: &str) -> bool {
        let mut v = Validation::new();
        check_display_name(&mut v, "/name", name);
        v.is_empty()
    }

    #[test]
    fn display_names() {
        for good in [
            "orders",
            "Orders pipe 2",
            "ingest_v1.2-eu",
            "заказы",
            "注文",
        ] {
            assert!(name_ok(good), "{good}");
        }
        let too_long = "x".repeat(MAX_NAME_CHARS + 1);
        for bad in [
            "",
            "   ",
            " lead",
            "trail ",
            "a'; DROP TABLE pipes; --",
            "$(rm -rf /)",
            "`id`",
            "a|b",
            "a\nb",
            "a\u{0}b",
            too_long.as_str(),
        ] {
            assert!(!name_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn identifiers() {
        let ok = |s: &str, dots| {
            let mut v = Validation::new();
            check_identifier(&mut v, "/t", s, dots);
            v.is_empty()
        };
        assert!(ok("events", false));
        assert!(ok("_events_2", false));
        assert!(ok("a.b", true));
        assert!(!ok("a.b", false));
        assert!(!ok("a..b", true));
        assert!(!ok("a.", true));
        assert!(!ok("1abc", false));
        assert!(!ok("x; DROP", false));
        assert!(!ok("", false));
        assert!(!ok(&"a".repeat(256), false));
    }
}
