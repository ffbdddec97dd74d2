//! Decoding and validation: raw bytes in, a validated [`Event`] or a
//! [`DecodeError`] naming the field and the reason out.
//!
//! Decoding is zero-copy where the JSON allows it (strings without escapes
//! borrow from the input). Every input, however malformed, yields either an
//! event or an error; nothing here panics.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use thiserror::Error;

use crate::event::{
    Body, Contact, CrmEvent, CrmType, Direction, EmailEvent, Event, Kind, SpeakerRole,
    TranscriptEvent, WebAction, WebEvent,
};
use crate::time::Timestamp;

/// Size limits applied while validating, in bytes unless named otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Whole encoded event.
    pub max_event_bytes: usize,
    /// Each of the long text fields (`body`, `text`).
    pub max_text_bytes: usize,
    /// Short string fields (`url`, `title`, `subject`, contact fields ...).
    pub max_field_bytes: usize,
    /// Number of entries in `attrs`.
    pub max_attrs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1024 * 1024,
            max_text_bytes: 256 * 1024,
            max_field_bytes: 4 * 1024,
            max_attrs: 64,
        }
    }
}

/// Longest accepted event or contact id, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest accepted account name, in characters.
pub const MAX_ACCOUNT_CHARS: usize = 64;

/// Why an event was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    /// The input is not UTF-8 or not a JSON object; the parser's message.
    #[error("not a JSON object: {0}")]
    Syntax(String),
    /// A required field is absent (or `null`).
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field is present but of the wrong type or value.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, dotted for nested ones (`contact.id`, `attrs.<name>`).
        field: String,
        /// What is wrong with it; a quoted value is clipped to 40 characters.
        reason: String,
    },
    /// A field (or the whole `event`) is over its byte limit in [`Limits`].
    #[error("{field} too large: {size} bytes > limit {limit}")]
    TooLarge {
        /// The field (`contact` for any contact field), or `event` for the
        /// whole input.
        field: &'static str,
        /// Its size, in bytes.
        size: usize,
        /// The limit it exceeded, in bytes.
        limit: usize,
    },
}

impl DecodeError {
    /// The offending field, when the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeError::Syntax(_) => None,
            DecodeError::Missing(field) => Some(field),
            DecodeError::Invalid { field, .. } => Some(field),
            DecodeError::TooLarge { field, .. } => Some(field),
        }
    }

    /// A short stable label for counting rejections by reason.
    pub fn reason_label(&self) -> String {
        match self {
            DecodeError::Syntax(_) => "syntax".into(),
            DecodeError::Missing(field) => format!("missing {field}"),
            // Per-field, without the data-dependent part (`attrs.<name>`), so
            // that counting rejections by label stays bounded.
            DecodeError::Invalid { field, .. } => {
                format!("invalid {}", field.split('.').next().unwrap_or(field))
            }
            DecodeError::TooLarge { field, .. } => format!("{field} too large"),
        }
    }

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A JSON value as it appeared, kept loosely typed so that a wrong type turns
/// into an error naming the field rather than a generic serde message. Parsed
/// in one pass; strings borrow from the input when they have no escapes.
#[derive(Debug, Clone)]
enum Loose<'a> {
    Null,
    Bool,
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Object(Vec<(Cow<'a, str>, Loose<'a>)>),
    Array,
}

impl Loose<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Loose::Null => "null",
            Loose::Bool => "a boolean",
            Loose::Int(_) | Loose::Float(_) => "a number",
            Loose::Str(_) => "a string",
            Loose::Object(_) => "an object",
            Loose::Array => "an array",
        }
    }
}

/// An object key, borrowed from the input unless it had escapes. (serde's
/// own `Cow<str>` always allocates.)
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Loose::Float(v as f64), Loose::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: Loose<'de> = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Loose::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

/// Field names the contract knows, by slot; anything else is ignored for
/// forward compatibility.
fn field_slot(name: &str) -> Option<usize> {
    Some(match name {
        "id" => 0,
        "ts" => 1,
        "account" => 2,
        "kind" => 3,
        "contact" => 4,
        "url" => 5,
        "title" => 6,
        "dwell_ms" => 7,
        "action" => 8,
        "referrer" => 9,
        "attrs" => 10,
        "text" => 11,
        "subject" => 12,
        "body" => 13,
        "direction" => 14,
        "speaker" => 15,
        "speaker_role" => 16,
        "meeting_id" => 17,
        "type" => 18,
        "old_title" => 19,
        "new_title" => 20,
        "stage" => 21,
        "industry" => 22,
        _ => return None,
    })
}

/// The top-level fields as they came, before validation: (slot, value)
/// pairs, so nothing large is initialised or moved per event.
struct RawEvent<'a> {
    fields: Vec<(u8, Loose<'a>)>,
}

impl<'de> Deserialize<'de> for RawEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawEvent<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut raw = RawEvent {
                    fields: Vec::with_capacity(12),
                };
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match field_slot(&key) {
                        // A repeated key keeps its last value, like most JSON parsers.
                        Some(slot) => {
                            let value = map.next_value()?;
                            match raw.fields.iter_mut().find(|(s, _)| *s as usize == slot) {
                                Some(existing) => existing.1 = value,
                                None => raw.fields.push((slot as u8, value)),
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        deserializer.deserialize_map(RawVisitor)
    }
}

impl<'a> RawEvent<'a> {
    fn take(&mut self, name: &str) -> Option<Loose<'a>> {
        let slot = field_slot(name)? as u8;
        let idx = self.fields.iter().position(|(s, _)| *s == slot)?;
        match self.fields.swap_remove(idx).1 {
            Loose::Null => None,
            other => Some(other),
        }
    }
}

/// Decodes and validates one event with the default limits.
pub fn decode(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    decode_with(bytes, &Limits::default())
}

/// Decodes and validates one event.
pub fn decode_with<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Event<'a>, DecodeError> {
    if bytes.len() > limits.max_event_bytes {
        return Err(DecodeError::TooLarge {
            field: "event",
            size: bytes.len(),
            limit: limits.max_event_bytes,
        });
    }
    // One SIMD-friendly UTF-8 pass, then parsing from `str` (measured ~10 %
    // faster than letting serde_json check UTF-8 string by string).
    let text =
        std::str::from_utf8(bytes).map_err(|e| DecodeError::Syntax(format!("not UTF-8: {e}")))?;
    let mut raw: RawEvent<'a> =
        serde_json::from_str(text).map_err(|e| DecodeError::Syntax(e.to_string()))?;
    Validator { limits }.event(&mut raw)
}

struct Validator<'l> {
    limits: &'l Limits,
}

impl Validator<'_> {
    fn event<'a>(&self, raw: &mut RawEvent<'a>) -> Result<Event<'a>, DecodeError> {
        let id = self.required_str(raw, "id")?;
        check_chars("id", &id, MAX_ID_CHARS)?;
        let ts = match raw.take("ts").ok_or(DecodeError::Missing("ts"))? {
            Loose::Int(ms) => Timestamp::from_millis(ms).ok_or_else(|| {
                DecodeError::invalid("ts", format!("{ms} ms is outside years 1970..9999"))
            })?,
            Loose::Str(s) => Timestamp::parse_rfc3339(&s).ok_or_else(|| {
                DecodeError::invalid(
                    "ts",
                    format!("'{}' is not RFC 3339 nor integer ms", clip(&s)),
                )
            })?,
            other => {
                return Err(DecodeError::invalid(
                    "ts",
                    format!("not RFC 3339 nor integer ms (got {})", other.type_name()),
                ))
            }
        };
        let account = self.required_str(raw, "account")?;
        check_chars("account", &account, MAX_ACCOUNT_CHARS)?;
        if let Some(bad) = account
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(DecodeError::invalid(
                "account",
                format!(
                    "'{}' has a character outside [A-Za-z0-9_-]: {bad:?}",
                    clip(&account)
                ),
            ));
        }
        let kind_text = self.required_str(raw, "kind")?;
        let kind = one_of(
            "kind",
            &kind_text,
            Kind::parse,
            "web, email, transcript, crm",
        )?;
        let contact = match raw.take("contact") {
            None => None,
            Some(Loose::Object(obj)) => Some(self.contact(obj)?),
            Some(other) => {
                return Err(DecodeError::invalid(
                    "contact",
                    format!("expected an object, got {}", other.type_name()),
                ))
            }
        };
        let attrs = match raw.take("attrs") {
            None => Vec::new(),
            Some(Loose::Object(obj)) => self.attrs(obj)?,
            Some(other) => {
                return Err(DecodeError::invalid(
                    "attrs",
                    format!("expected an object of numbers, got {}", other.type_name()),
                ))
            }
        };
        let body = match kind {
            Kind::Web => Body::Web(self.web(raw)?),
            Kind::Email => Body::Email(self.email(raw)?),
            Kind::Transcript => Body::Transcript(self.transcript(raw)?),
            Kind::Crm => Body::Crm(self.crm(raw)?),
        };
        Ok(Event {
            id,
            ts,
            account,
            contact,
            attrs,
            body,
        })
    }

    fn web<'a>(&self, raw: &mut RawEvent<'a>) -> Result<WebEvent<'a>, DecodeError> {
        let url = self.required_str(raw, "url")?;
        self.short("url", &url)?;
        let action = self.opt_one_of(
            raw,
            "action",
            WebAction::parse,
            "view, download, register, qa, search, form",
        )?;
        let dwell_ms = match raw.take("dwell_ms") {
            None => None,
            Some(Loose::Int(ms)) if ms >= 0 => Some(ms as u64),
            Some(Loose::Float(ms)) if ms >= 0.0 && ms.is_finite() => Some(ms as u64),
            Some(other) => {
                return Err(DecodeError::invalid(
                    "dwell_ms",
                    format!(
                        "expected a non-negative number of milliseconds, got {}",
                        describe(&other)
                    ),
                ))
            }
        };
        let title = self.opt_short(raw, "title")?;
        let referrer = self.opt_short(raw, "referrer")?;
        let text = self.opt_long(raw, "text")?;
        Ok(WebEvent {
            url,
            title,
            dwell_ms,
            action,
            referrer,
            text,
        })
    }

    fn email<'a>(&self, raw: &mut RawEvent<'a>) -> Result<EmailEvent<'a>, DecodeError> {
        let subject = self.opt_short(raw, "subject")?;
        let body = self.opt_long(raw, "body")?;
        if subject.is_none() && body.is_none() {
            return Err(DecodeError::Missing("body"));
        }
        let direction = self.opt_one_of(raw, "direction", Direction::parse, "inbound, outbound")?;
        Ok(EmailEvent {
            subject,
            body,
            direction,
        })
    }

    fn transcript<'a>(&self, raw: &mut RawEvent<'a>) -> Result<TranscriptEvent<'a>, DecodeError> {
        let text = self.required_str(raw, "text")?;
        self.long("text", &text)?;
        let speaker_role =
            self.opt_one_of(raw, "speaker_role", SpeakerRole::parse, "customer, rep")?;
        Ok(TranscriptEvent {
            text,
            speaker: self.opt_short(raw, "speaker")?,
            speaker_role,
            meeting_id: self.opt_short(raw, "meeting_id")?,
        })
    }

    fn crm<'a>(&self, raw: &mut RawEvent<'a>) -> Result<CrmEvent<'a>, DecodeError> {
        let type_text = self.required_str(raw, "type")?;
        let crm_type = one_of(
            "type",
            &type_text,
            CrmType::parse,
            "first_touch, contact_title_changed, contact_left, stage_changed, deal_won, deal_lost, call_logged",
        )?;
        let old_title = self.opt_short(raw, "old_title")?;
        let new_title = self.opt_short(raw, "new_title")?;
        if crm_type == CrmType::ContactTitleChanged && new_title.is_none() {
            return Err(DecodeError::Missing("new_title"));
        }
        Ok(CrmEvent {
            crm_type,
            old_title,
            new_title,
            stage: self.opt_short(raw, "stage")?,
            industry: self.opt_short(raw, "industry")?,
        })
    }

    fn contact<'a>(&self, map: Vec<(Cow<'a, str>, Loose<'a>)>) -> Result<Contact<'a>, DecodeError> {
        let mut contact = Contact::default();
        for (key, value) in map {
            let slot = match key.as_ref() {
                "id" => &mut contact.id,
                "name" => &mut contact.name,
                "title" => &mut contact.title,
                "email" => &mut contact.email,
                _ => continue,
            };
            let field = format!("contact.{key}");
            match value {
                Loose::Null => {}
                Loose::Str(s) => {
                    if s.len() > self.limits.max_field_bytes {
                        return Err(DecodeError::TooLarge {
                            field: "contact",
                            size: s.len(),
                            limit: self.limits.max_field_bytes,
                        });
                    }
                    *slot = Some(s);
                }
                other => {
                    return Err(DecodeError::invalid(
                        field,
                        format!("expected a string, got {}", other.type_name()),
                    ))
                }
            }
        }
        if let Some(id) = &contact.id {
            check_chars("contact.id", id, MAX_ID_CHARS)?;
        }
        Ok(contact)
    }

    fn attrs<'a>(
        &self,
        map: Vec<(Cow<'a, str>, Loose<'a>)>,
    ) -> Result<Vec<(Cow<'a, str>, f64)>, DecodeError> {
        if map.len() > self.limits.max_attrs {
            return Err(DecodeError::invalid(
                "attrs",
                format!("{} entries > limit {}", map.len(), self.limits.max_attrs),
            ));
        }
        let mut attrs = Vec::with_capacity(map.len());
        for (key, value) in map {
            let number = match value {
                // null counts as absent, as everywhere in the contract.
                Loose::Null => continue,
                Loose::Int(v) => v as f64,
                Loose::Float(v) if v.is_finite() => v,
                other => {
                    return Err(DecodeError::invalid(
                        format!("attrs.{}", clip(&key)),
                        format!("expected a number, got {}", describe(&other)),
                    ))
                }
            };
            if key.is_empty() || key.len() > 64 {
                return Err(DecodeError::invalid(
                    "attrs",
                    "attribute names are 1-64 bytes",
                ));
            }
            attrs.retain(|(k, _): &(Cow<'a, str>, f64)| k != &key);
            attrs.push((key, number));
        }
        Ok(attrs)
    }

    fn required_str<'a>(
        &self,
        raw: &mut RawEvent<'a>,
        name: &'static str,
    ) -> Result<Cow<'a, str>, DecodeError> {
        self.opt_str(raw, name)?.ok_or(DecodeError::Missing(name))
    }

    fn opt_str<'a>(
        &self,
        raw: &mut RawEvent<'a>,
        name: &'static str,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match raw.take(name) {
            None => Ok(None),
            Some(Loose::Str(s)) => Ok(Some(s)),
            Some(other) => Err(DecodeError::invalid(
                name,
                format!("expected a string, got {}", other.type_name()),
            )),
        }
    }

    /// An optional field with enumerated values.
    fn opt_one_of<T>(
        &self,
        raw: &mut RawEvent<'_>,
        name: &'static str,
        parse: fn(&str) -> Option<T>,
        choices: &str,
    ) -> Result<Option<T>, DecodeError> {
        self.opt_str(raw, name)?
            .map(|text| one_of(name, &text, parse, choices))
            .transpose()
    }

    fn opt_short<'a>(
        &self,
        raw: &mut RawEvent<'a>,
        name: &'static str,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        let value = self.opt_str(raw, name)?;
        if let Some(v) = &value {
            self.short(name, v)?;
        }
        Ok(value)
    }

    fn opt_long<'a>(
        &self,
        raw: &mut RawEvent<'a>,
        name: &'static str,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        let value = self.opt_str(raw, name)?;
        if let Some(v) = &value {
            self.long(name, v)?;
        }
        Ok(value)
    }

    fn short(&self, name: &'static str, value: &str) -> Result<(), DecodeError> {
        check_size(name, value, self.limits.max_field_bytes)
    }

    fn long(&self, name: &'static str, value: &str) -> Result<(), DecodeError> {
        check_size(name, value, self.limits.max_text_bytes)
    }
}

/// Parses one of a field's enumerated values, or names the field and the choices.
fn one_of<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
    choices: &str,
) -> Result<T, DecodeError> {
    parse(text).ok_or_else(|| {
        DecodeError::invalid(field, format!("'{}' is not one of {choices}", clip(text)))
    })
}

fn check_size(name: &'static str, value: &str, limit: usize) -> Result<(), DecodeError> {
    if value.len() > limit {
        Err(DecodeError::TooLarge {
            field: name,
            size: value.len(),
            limit,
        })
    } else {
        Ok(())
    }
}

fn check_chars(name: &str, value: &str, max_chars: usize) -> Result<(), DecodeError> {
    let n = value.chars().count();
    if n == 0 {
        Err(DecodeError::invalid(name, "must not be empty"))
    } else if n > max_chars {
        Err(DecodeError::invalid(
            name,
            format!("{n} characters > limit {max_chars}"),
        ))
    } else {
        Ok(())
    }
}

fn describe(value: &Loose<'_>) -> String {
    match value {
        Loose::Int(v) => v.to_string(),
        Loose::Float(v) => v.to_string(),
        Loose::Str(s) => format!("'{}'", clip(s)),
        other => other.type_name().to_string(),
    }
}

/// Shortens a value quoted in an error message.
fn clip(text: &str) -> Cow<'_, str> {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{}…", text.chars().take(MAX).collect::<String>()))
    }
}

/// Best-effort kind of an event that failed validation, for routing it to a
/// per-kind dead-letter subject; `unknown` when even that cannot be read.
pub fn sniff_kind(bytes: &[u8]) -> &'static str {
    #[derive(Deserialize)]
    struct KindOnly<'a> {
        #[serde(borrow)]
        kind: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<KindOnly<'_>>(bytes)
        .ok()
        .and_then(|k| k.kind)
        .and_then(|k| Kind::parse(&k))
        .map_or("unknown", Kind::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(input: &str, expected: &str) {
        let err = decode(input.as_bytes()).expect_err(input);
        assert_eq!(err.to_string(), expected, "input: {input}");
    }

    #[test]
    fn decodes_a_web_event_borrowing_strings() {
        let input = r#"{"id":"e1","ts":"2026-03-01T09:00:00Z","account":"acme-1","kind":"web",
            "url":"https://x.test/compare","dwell_ms":200000,"action":"view",
            "attrs":{"video_views":520000},"contact":{"id":"c1","title":"CTO"},"extra":[1,2]}"#;
        let event = decode(input.as_bytes()).unwrap();
        assert_eq!(event.id, "e1");
        assert!(matches!(event.id, Cow::Borrowed(_)));
        assert_eq!(event.account, "acme-1");
        assert_eq!(
            event.ts,
            Timestamp::parse_rfc3339("2026-03-01T09:00:00Z").unwrap()
        );
        let Body::Web(web) = &event.body else {
            panic!("not web")
        };
        assert_eq!(web.dwell_ms, Some(200_000));
        assert_eq!(web.action, Some(WebAction::View));
        assert_eq!(event.attrs, vec![(Cow::Borrowed("video_views"), 520_000.0)]);
        assert_eq!(event.contact.unwrap().title.as_deref(), Some("CTO"));
    }

    #[test]
    fn every_kind_carries_attrs() {
        let input = r#"{"id":"c1","ts":1,"account":"a","kind":"transcript","text":"hello",
            "speaker_role":"customer","attrs":{"call_duration_s":312,"prior_contacts":2.5}}"#;
        let event = decode(input.as_bytes()).unwrap();
        assert_eq!(event.attr("call_duration_s"), Some(312.0));
        assert_eq!(event.attr("prior_contacts"), Some(2.5));
        assert_eq!(event.attr("missing"), None);
        let crm = r#"{"id":"c2","ts":1,"account":"a","kind":"crm","type":"stage_changed",
            "attrs":{"campaign_touches":"three"}}"#;
        assert_eq!(
            decode(crm.as_bytes()).unwrap_err().to_string(),
            "attrs.campaign_touches: expected a number, got 'three'"
        );
    }

    #[test]
    fn errors_name_the_field_and_reason() {
        let cases = [
            (r#"{"id":"e","ts":1,"kind":"web","url":"u"}"#, "missing field account"),
            (r#"{"id":"e","ts":"yesterday","account":"a","kind":"web","url":"u"}"#,
             "ts: 'yesterday' is not RFC 3339 nor integer ms"),
            (r#"{"id":"e","ts":true,"account":"a","kind":"web","url":"u"}"#,
             "ts: not RFC 3339 nor integer ms (got a boolean)"),
            (r#"{"id":"e","ts":1,"account":"a.b","kind":"web","url":"u"}"#,
             "account: 'a.b' has a character outside [A-Za-z0-9_-]: '.'"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"fax"}"#,
             "kind: 'fax' is not one of web, email, transcript, crm"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"web"}"#, "missing field url"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"email","direction":"inbound"}"#, "missing field body"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"transcript","text":5}"#, "text: expected a string, got a number"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"crm","type":"contact_title_changed"}"#, "missing field new_title"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"web","url":"u","dwell_ms":-3}"#,
             "dwell_ms: expected a non-negative number of milliseconds, got -3"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"web","url":"u","attrs":{"views":"many"}}"#,
             "attrs.views: expected a number, got 'many'"),
            (r#"{"id":"","ts":1,"account":"a","kind":"web","url":"u"}"#, "id: must not be empty"),
            (r#"{"id":"e","ts":1,"account":"a","kind":"web","url":"u","contact":"bob"}"#,
             "contact: expected an object, got a string"),
            (r#"[1,2]"#, "not a JSON object: invalid type: sequence, expected an event object at line 1 column 0"),
        ];
        for (input, expected) in cases {
            check_err(input, expected);
        }
    }

    #[test]
    fn size_limits_are_enforced_and_configurable() {
        let body = "x".repeat(300);
        let input = format!(r#"{{"id":"e","ts":1,"account":"a","kind":"email","body":"{body}"}}"#);
        let limits = Limits {
            max_text_bytes: 100,
            ..Limits::default()
        };
        let err = decode_with(input.as_bytes(), &limits).unwrap_err();
        assert_eq!(err.to_string(), "body too large: 300 bytes > limit 100");
        assert_eq!(err.field(), Some("body"));
        assert!(decode(input.as_bytes()).is_ok());
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let input =
            r#"{"id":"e\"1","ts":1,"account":"a","kind":"transcript","text":"\u9884\u7b97 ok"}"#;
        let event = decode(input.as_bytes()).unwrap();
        assert_eq!(event.id, "e\"1");
        let Body::Transcript(t) = event.body else {
            panic!()
        };
        assert_eq!(t.text, "预算 ok");
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error() {
        let mut input =
            br#"{"id":"e","ts":1,"account":"a","kind":"transcript","text":"x"}"#.to_vec();
        let at = input.len() - 3;
        input[at] = 0xff;
        let err = decode(&input).unwrap_err();
        assert!(matches!(err, DecodeError::Syntax(_)), "{err}");
        assert_eq!(err.field(), None);
    }

    #[test]
    fn sniffs_kind_of_rejected_events() {
        assert_eq!(sniff_kind(br#"{"kind":"email","id":5}"#), "email");
        assert_eq!(sniff_kind(b"garbage"), "unknown");
        assert_eq!(sniff_kind(br#"{"kind":"fax"}"#), "unknown");
    }
}
