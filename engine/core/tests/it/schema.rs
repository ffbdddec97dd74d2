//! The published wire contract, `engine/event.schema.json`, stays in step
//! with the decoder: it parses, it names exactly the top-level fields
//! `intent_core::ingest` knows, and every example in it decodes.

use std::collections::BTreeSet;

use intent_core::event::Kind;
use intent_core::ingest::decode;
use serde_json::Value;

use crate::root;

/// The top-level fields the decoder reads (`field_slot` in ingest.rs).
const FIELDS: &str = "id ts account kind contact url title dwell_ms action referrer attrs text \
    subject body direction speaker speaker_role meeting_id type old_title new_title stage industry";

fn schema() -> Value {
    let path = root().join("engine/event.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Collects the keys of every `properties` map in `node` (top level and kind
/// branches), entering neither `contact`'s own fields nor `examples`.
fn property_names<'a>(node: &'a Value, out: &mut BTreeSet<&'a str>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "examples" => {}
                    "properties" => {
                        for (name, sub) in value.as_object().expect("properties is an object") {
                            out.insert(name);
                            if name != "contact" {
                                property_names(sub, out);
                            }
                        }
                    }
                    _ => property_names(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| property_names(item, out)),
        _ => {}
    }
}

#[test]
fn schema_parses_as_draft_2020_12() {
    let schema = schema();
    let draft = schema["$schema"].as_str().unwrap_or_default();
    assert_eq!(draft, "https://json-schema.org/draft/2020-12/schema");
    let id = schema["$id"].as_str().unwrap_or_default();
    assert_eq!(id, "https://intent-engine.example/event.schema.json");
    let open = &schema["additionalProperties"];
    assert_eq!(*open, true, "unknown top-level fields must stay allowed");
}

#[test]
fn schema_names_exactly_the_decoders_fields() {
    let schema = schema();
    let mut names = BTreeSet::new();
    property_names(&schema, &mut names);
    assert_eq!(names, FIELDS.split_whitespace().collect::<BTreeSet<_>>());
}

#[test]
fn every_schema_example_decodes() {
    let schema = schema();
    let examples = schema["examples"].as_array().expect("schema has examples");
    let mut kinds = BTreeSet::new();
    for example in examples {
        let text = serde_json::to_string(example).unwrap();
        let event = decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        kinds.insert(event.kind().as_str());
    }
    let all: BTreeSet<_> = Kind::ALL.into_iter().map(Kind::as_str).collect();
    assert_eq!(kinds, all, "one example per kind");
}
