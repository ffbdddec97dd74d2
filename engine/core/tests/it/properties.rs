//! Property tests: the decoder on arbitrary input, the event contract's round
//! trip, and the score's monotonicity in evidence.

use intent_core::event::Event;
use intent_core::ingest::decode;
use intent_core::{Pipeline, PipelineConfig};
use proptest::prelude::*;
use serde_json::json;

use crate::shipped_defs;

fn account() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ,.!?'-]{0,80}",
        "[\\p{Han}，。！？ ]{0,40}",
        any::<String>().prop_map(|s| s.chars().take(60).collect()),
    ]
}

/// Valid events of every kind, as JSON values.
fn event_json() -> impl Strategy<Value = serde_json::Value> {
    let common = (
        "[a-z0-9-]{1,40}",
        0i64..4_000_000_000_000,
        account(),
        proptest::option::of((
            "[a-z0-9]{1,10}",
            proptest::option::of(text()),
            proptest::option::of(text()),
        )),
    );
    let body = prop_oneof![
        (text(), proptest::option::of(text()), proptest::option::of(0u64..10_000_000), 0usize..6, proptest::option::of(0.0f64..1e9))
            .prop_map(|(url, title, dwell, action, views)| {
                let mut v = json!({"kind": "web", "url": format!("https://x.test/{url}"),
                    "action": (["view", "download", "register", "qa", "search", "form"][action])});
                if let Some(t) = title { v["title"] = json!(t); }
                if let Some(d) = dwell { v["dwell_ms"] = json!(d); }
                if let Some(views) = views { v["attrs"] = json!({"video_views": views}); }
                v
            }),
        (text(), text(), any::<bool>()).prop_map(|(subject, body, inbound)| json!({
            "kind": "email", "subject": subject, "body": body,
            "direction": if inbound { "inbound" } else { "outbound" }})),
        (text(), any::<bool>()).prop_map(|(text, customer)| json!({
            "kind": "transcript", "text": text, "speaker_role": if customer { "customer" } else { "rep" }})),
        (0usize..6, text(), text()).prop_map(|(t, old, new)| json!({"kind": "crm",
            "type": (["first_touch", "contact_title_changed", "contact_left", "stage_changed", "deal_won", "deal_lost"][t]),
            "old_title": old, "new_title": new})),
    ];
    (common, body).prop_map(|((id, ts, account, contact), mut body)| {
        body["id"] = json!(id);
        body["ts"] = json!(ts);
        body["account"] = json!(account);
        if let Some((cid, name, title)) = contact {
            let mut c = json!({"id": cid});
            if let Some(n) = name {
                c["name"] = json!(n);
            }
            if let Some(t) = title {
                c["title"] = json!(t);
            }
            body["contact"] = c;
        }
        body
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_mutated_valid_events_never_panics(event in event_json(), cut in 0usize..400, byte in any::<u8>()) {
        let mut bytes = event.to_string().into_bytes();
        if !bytes.is_empty() {
            let at = cut % bytes.len();
            bytes[at] = byte;
            let _ = decode(&bytes);
            let _ = decode(&bytes[..at]);
        }
    }

    #[test]
    fn valid_events_round_trip(event in event_json()) {
        let encoded = event.to_string();
        let decoded: Event<'_> = decode(encoded.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {encoded}")))?;
        let re_encoded = decoded.to_json().to_string();
        let again = decode(re_encoded.as_bytes()).unwrap();
        prop_assert_eq!(again, decoded);
    }

    #[test]
    fn more_evidence_never_lowers_the_score(events in proptest::collection::vec(event_json(), 1..12), extra in 0usize..4) {
        let defs = shipped_defs();
        prop_assume!(defs.signals.iter().all(|s| s.weight >= 0.0));
        let mut pipeline = Pipeline::new(defs, PipelineConfig::default());
        let mut actions = Vec::new();
        let base_ts = 1_800_000_000_000i64;
        for (i, mut e) in events.into_iter().enumerate() {
            e["account"] = json!("acct");
            e["id"] = json!(format!("e{i}"));
            e["ts"] = json!(base_ts + i as i64);
            let _ = pipeline.process_bytes(e.to_string().as_bytes(), &mut actions);
        }
        let ts = base_ts + 100;
        let before = pipeline.score_at("acct", intent_core::Timestamp(ts)).unwrap_or(0.0);
        // An event that is an occurrence of a positive-weight signal, at a later time.
        let evidence = [
            json!({"kind": "email", "direction": "inbound", "body": "the budget is approved"}),
            json!({"kind": "web", "url": "https://v.test/pricing", "action": "view"}),
            json!({"kind": "transcript", "speaker_role": "customer", "text": "we will publish the tender documents"}),
            json!({"kind": "web", "url": "https://v.test/docs/a.pdf", "action": "download"}),
        ][extra].clone();
        let mut e = evidence;
        e["id"] = json!("extra");
        e["ts"] = json!(ts);
        e["account"] = json!("acct");
        pipeline.process_bytes(e.to_string().as_bytes(), &mut actions).unwrap();
        // Compared at the same instant: scores decay between events.
        let after = pipeline.score_at("acct", intent_core::Timestamp(ts)).unwrap();
        prop_assert!(after > before || (before > 99.99 && after >= before - 1e-9), "score went from {} to {}", before, after);
    }
}

/// The shipped definitions, file by file, as compile sources.
fn shipped_sources() -> Vec<intent_core::signal_defs::Source> {
    let mut sources = Vec::new();
    let root = crate::root().join("signal-defs");
    for dir in [root.clone(), root.join("libraries")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                sources.push(intent_core::signal_defs::Source { path, text });
            }
        }
    }
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    sources
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any edit of a definitions file yields a set or errors with lines
    /// inside the file, never a panic.
    #[test]
    fn mutated_signal_defs_never_panic(file in 0usize..8, at in 0usize..20_000, cut in 0usize..40, insert in "[a-z_\"=\\[\\]{}#.\\n 0-9-]{0,12}") {
        let mut sources = shipped_sources();
        let file = file % sources.len();
        let text = &sources[file].text;
        let mut at = at % text.len().max(1);
        while !text.is_char_boundary(at) { at -= 1; }
        let mut end = (at + cut).min(text.len());
        while !text.is_char_boundary(end) { end += 1; }
        let mutated = format!("{}{}{}", &text[..at], insert, &text[end..]);
        let n_lines = mutated.lines().count() + 1;
        sources[file].text = mutated;
        if let Err(errors) = intent_core::signal_defs::compile_sources(&sources) {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                let lines = sources.iter().find(|s| s.path == e.file).map_or(0, |s| s.text.lines().count() + 1);
                prop_assert!(e.line <= lines.max(n_lines), "{}", e);
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}
