//! The evidence and talk-track index, end to end through the pipeline with
//! the shipped definitions: the index analyses like the matcher (English
//! stems, Chinese characters), personal data never reaches it, talk tracks
//! are paired and scored by outcome, and the filters hold.

use intent_core::{Pipeline, PipelineConfig};
use intent_search::evidence::EvidenceBuilder;
use intent_search::{EvidenceIndex, EvidenceSink, SearchError, SearchRequest, SearchResults};

use crate::shipped_defs;

const EVENTS: &[&str] = &[
    r#"{"id":"crm-h","ts":"2026-03-01T08:00:00Z","account":"hosp-zs","kind":"crm","type":"first_touch","industry":"medical"}"#,
    r#"{"id":"e1","ts":"2026-03-02T09:00:00Z","account":"hosp-zs","kind":"email","direction":"inbound",
        "contact":{"id":"li.na@zs-hospital.cn","title":"Radiology Director"},
        "subject":"CT service","body":"We need remote diagnostics for our CT scanners. Call me on +86 138 1234 5678 or write to li.na@zs-hospital.cn."}"#,
    r#"{"id":"t1","ts":"2026-03-05T10:00:00Z","account":"hosp-zs","kind":"transcript","speaker_role":"rep","meeting_id":"m-zs-1",
        "text":"How much downtime did the scanners cause last quarter?"}"#,
    r#"{"id":"t2","ts":"2026-03-05T10:01:00Z","account":"hosp-zs","kind":"transcript","speaker_role":"customer","meeting_id":"m-zs-1",
        "contact":{"id":"c-zhou","title":"副院长"},"text":"这个远程诊断功能解决了我们基层医院长期以来的痛点。"}"#,
    r#"{"id":"crm-m","ts":"2026-03-06T08:00:00Z","account":"mfg-hx","kind":"crm","type":"first_touch","industry":"manufacturing"}"#,
    r#"{"id":"t3","ts":"2026-03-07T15:00:00Z","account":"mfg-hx","kind":"transcript","speaker_role":"rep","meeting_id":"m-hx-1",
        "text":"How much DOWNTIME did the scanner cause last quarter?"}"#,
    r#"{"id":"t4","ts":"2026-03-07T15:02:00Z","account":"mfg-hx","kind":"transcript","speaker_role":"customer","meeting_id":"m-hx-1",
        "contact":{"id":"c-wang","title":"Plant Director"},"text":"Honestly, this feature solved our unplanned downtime pain on line 3."}"#,
    r#"{"id":"t5","ts":"2026-03-08T15:00:00Z","account":"mfg-hx","kind":"transcript","speaker_role":"customer","meeting_id":"li.na@zs-hospital.cn/standup",
        "text":"My card is 4111 1111 1111 1111, ID 11010519491231002X."}"#,
    r#"{"id":"w1","ts":"2026-03-09T15:00:00Z","account":"hosp-zs","kind":"crm","type":"deal_won"}"#,
    r#"{"id":"w2","ts":"2026-03-20T15:00:00Z","account":"mfg-hx","kind":"crm","type":"deal_lost"}"#,
];

fn build(dir: &std::path::Path) -> EvidenceIndex {
    let defs = shipped_defs();
    let index = EvidenceIndex::create(dir, &defs.analyzer).unwrap();
    let mut sink = EvidenceSink::new(EvidenceBuilder::default(), index.writer(1, 0).unwrap());
    let mut pipeline = Pipeline::new(defs, PipelineConfig::default());
    let mut actions = Vec::new();
    for line in EVENTS {
        let line = line.replace('\n', " ");
        let event = intent_core::ingest::decode(line.as_bytes()).unwrap();
        pipeline
            .process_observed(&event, &mut actions, |defs, obs| {
                sink.observe(defs, &event, obs)
            })
            .unwrap();
    }
    assert!(sink.error.is_none());
    // Two e-mail/utterance masks: a phone and an address in e1 (the
    // contact id is masked too); a card and an ID in t5.
    assert_eq!(sink.builder.masked.phone, 1);
    assert_eq!(sink.builder.masked.bank_card, 1);
    assert_eq!(sink.builder.masked.id_number, 1);
    assert!(sink.builder.masked.email >= 2);
    sink.writer.commit().unwrap();
    index.refresh().unwrap();
    index
}

fn search(
    index: &EvidenceIndex,
    query: &str,
    edit: impl FnOnce(&mut SearchRequest),
) -> SearchResults {
    let mut request = SearchRequest {
        query: query.into(),
        limit: 10,
        ..SearchRequest::default()
    };
    edit(&mut request);
    index.search(&request).unwrap()
}

fn ids(results: &SearchResults) -> Vec<&str> {
    results.hits.iter().map(|h| h.event_id.as_str()).collect()
}

#[test]
fn the_index_analyses_like_the_matcher_in_english_and_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path());
    let stats = index.stats().unwrap();
    assert_eq!((stats.evidence, stats.snippets, stats.outcomes), (6, 2, 2));
    assert!(stats.bytes > 0);

    // "diagnosing" and "diagnostics" fold to the same stem.
    let hits = search(&index, "diagnosing", |_| {});
    assert_eq!(ids(&hits), ["e1"]);
    let hit = &hits.hits[0];
    assert_eq!(
        hit.text.marked("[", "]").matches("[diagnostics]").count(),
        1
    );
    // Its keywords are the library phrases the matcher found in it.
    assert!(
        hit.keywords.contains(&"remote diagnostics".to_string()),
        "{:?}",
        hit.keywords
    );
    assert!(
        hit.signals.contains(&"industry_topic_interest".to_string()),
        "{:?}",
        hit.signals
    );
    // 诊断 is a phrase of two characters inside 远程诊断.
    let hits = search(&index, "诊断", |_| {});
    assert_eq!(ids(&hits), ["t2"]);
    assert!(hits.hits[0]
        .text
        .marked("[", "]")
        .contains("远程[诊断]功能"));
    assert!(hits.hits[0]
        .signals
        .contains(&"customer_confirmed_value".to_string()));
    // A word that is nowhere: nothing, not an error.
    assert_eq!(search(&index, "blockchain", |_| {}).total, 0);
    // Words are AND-ed by default; OR is available.
    assert_eq!(search(&index, "diagnosing blockchain", |_| {}).total, 0);
    assert_eq!(search(&index, "diagnosing OR downtime", |_| {}).total, 4);
}

#[test]
fn personal_data_is_masked_before_it_is_stored_or_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path());
    let e1 = &search(&index, "remote diagnostics", |_| {}).hits[0];
    assert!(
        e1.text
            .fragment
            .contains("Call me on [phone] or write to [email]."),
        "{}",
        e1.text.fragment
    );
    assert_eq!(e1.contact.as_deref(), Some("[email]"));
    let t5 = &search(&index, "card", |_| {}).hits[0];
    assert_eq!(t5.text.fragment, "My card is [card], ID [id-number].");
    // The digits are in no indexed field.
    for query in [
        "4111",
        "13812345678",
        "\"138 1234 5678\"",
        "zs-hospital",
        "11010519491231002X",
    ] {
        assert_eq!(search(&index, query, |_| {}).total, 0, "{query}");
    }
    // Nor in any stored field of any document.
    let raw = ["zs-hospital", "138", "4111", "11010519491231002X", "li.na"];
    for snippets in [false, true] {
        let all = search(&index, "*", |r| {
            r.snippets = snippets;
            r.limit = 1000
        });
        assert!(all.total > 0);
        for hit in &all.hits {
            let stored = serde_json::to_string(hit).unwrap();
            for pii in raw {
                assert!(!stored.contains(pii), "{pii} in {stored}");
            }
        }
    }
}

#[test]
fn talk_tracks_pair_the_rep_line_with_the_answer_and_carry_win_rates() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path());
    // The rep line of both snippets mentions downtime; only one answer says pain.
    assert_eq!(search(&index, "downtime", |r| r.snippets = true).total, 2);
    let hits = search(&index, "downtime pain", |r| r.snippets = true);
    assert_eq!(ids(&hits), ["t4"]);
    let t4 = &hits.hits[0];
    assert_eq!(
        t4.rep_text.as_ref().unwrap().marked("[", "]"),
        "How much [DOWNTIME] did the scanner cause last quarter?"
    );
    assert!(t4
        .text
        .fragment
        .contains("this feature solved our unplanned downtime pain"));
    assert!(
        t4.tags.contains(&"industry:manufacturing".to_string()),
        "{:?}",
        t4.tags
    );
    assert!(
        t4.tags.contains(&"role:Plant Director".to_string()),
        "{:?}",
        t4.tags
    );
    assert!(
        t4.tags.iter().any(|t| t.starts_with("topic:")),
        "{:?}",
        t4.tags
    );
    assert_eq!(t4.meeting_id.as_deref(), Some("m-hx-1"));
    // The same rep line, cased and inflected differently, was used with the
    // hospital (won) and the plant (lost).
    let track = t4.track.as_ref().unwrap();
    assert_eq!((track.accounts, track.won, track.lost), (2, 1, 1));
    assert_eq!(track.win_rate, Some(0.5));

    let zh = search(&index, "痛点", |r| r.snippets = true);
    assert_eq!(ids(&zh), ["t2"]);
    assert!(zh.hits[0].tags.contains(&"industry:medical".to_string()));
    assert!(zh.hits[0].tags.contains(&"role:副院长".to_string()));
    // A customer answer without the value signal makes no snippet.
    assert_eq!(search(&index, "card", |r| r.snippets = true).total, 0);
}

#[test]
fn filters_narrow_by_account_kind_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path());
    let all = search(&index, "downtime OR diagnostics OR card", |_| {});
    assert_eq!(all.total, 5);
    let by_account = search(&index, "downtime OR diagnostics OR card", |r| {
        r.account = Some("mfg-hx".into())
    });
    assert_eq!(by_account.total, 3);
    let emails = search(&index, "downtime OR diagnostics OR card", |r| {
        r.kind = Some("email".into())
    });
    assert_eq!(ids(&emails), ["e1"]);
    // Back from the newest e-mail or utterance (t5, 2026-03-08T15:00; the
    // later lost deal is an outcome, not evidence): one day reaches t3,
    // 03-07T15:00, inclusive.
    let recent = search(&index, "downtime OR diagnostics OR card", |r| {
        r.since = Some("1d".into())
    });
    let mut recent_ids = ids(&recent);
    recent_ids.sort();
    assert_eq!(recent_ids, ["t3", "t4", "t5"]);
    let since_time = search(&index, "downtime OR diagnostics OR card", |r| {
        r.since = Some("2026-03-08T00:00:00Z".into())
    });
    assert_eq!(ids(&since_time), ["t5"]);
    let bad = index.search(&SearchRequest {
        query: "x".into(),
        kind: Some("web".into()),
        limit: 10,
        ..SearchRequest::default()
    });
    assert!(
        matches!(bad, Err(SearchError::Query(m)) if m.contains("kind: 'web' is not email or transcript"))
    );
}

#[test]
fn an_index_is_only_used_with_its_own_analyzer() {
    let dir = tempfile::tempdir().unwrap();
    drop(build(dir.path()));
    let other = intent_core::extract::Analyzer::new("english", 0).unwrap();
    let err = EvidenceIndex::open(dir.path(), Some(&other)).err().unwrap();
    assert!(err.to_string().contains("built with analyzer english (prefix fold 7), but the definitions now use english (prefix fold 0)"), "{err}");
    // Opened without expectations, it uses the recorded analyzer.
    let index = EvidenceIndex::open(dir.path(), None).unwrap();
    assert_eq!(search(&index, "diagnosing", |_| {}).total, 1);
    // A directory with other content is never emptied.
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("notes.txt"), "keep me").unwrap();
    let err = EvidenceIndex::create(foreign.path(), &other).err().unwrap();
    assert!(matches!(err, SearchError::NotAnIndex { .. }));
    assert!(foreign.path().join("notes.txt").exists());
}
