//! Every per-account list stays within its cap however much one account
//! does: contacts, title history, topics, evidence, keywords and
//! occurrences (ARCHITECTURE.md, "Every per-account list is capped").

use intent_core::graph::account::{
    MAX_CONTACTS, MAX_EVIDENCE, MAX_KEYWORDS, MAX_OCCURRENCES, MAX_TITLE_HISTORY, MAX_TOPICS,
};
use intent_core::{Pipeline, PipelineConfig};
use serde_json::json;

use crate::shipped_defs;

/// One account, 3,000 events in time order, a minute apart: a new contact
/// and title each time, pricing visits, budget e-mails, and e-mails whose
/// words are all new (open topics).
fn busy_account(pipeline: &mut Pipeline) {
    let start = 1_772_400_000_000i64;
    let mut out = Vec::new();
    for i in 0..3_000i64 {
        let ts = start + i * 60_000;
        let contact = json!({"id": format!("c-{}", i % 40), "title": format!("Director {i}")});
        let event = match i % 3 {
            0 => json!({"id": format!("w-{i}"), "ts": ts, "account": "busy", "kind": "web",
                        "contact": contact, "url": format!("https://vendor.example/pricing/{i}"),
                        "action": "view", "dwell_ms": 30_000}),
            1 => json!({"id": format!("b-{i}"), "ts": ts, "account": "busy", "kind": "email",
                        "direction": "inbound", "contact": contact, "subject": "Budget",
                        "body": "Good news: the budget is approved, funding approved, budget allocated."}),
            _ => json!({"id": format!("t-{i}"), "ts": ts, "account": "busy", "kind": "email",
                        "direction": "inbound", "contact": contact, "subject": format!("topic{i}"),
                        "body": format!("zeta{i} omicron{i} lambda{i} kappa{i} sigma{i} upsilon{i}")}),
        };
        pipeline
            .process_bytes(event.to_string().as_bytes(), &mut out)
            .unwrap();
        out.clear();
    }
}

#[test]
fn no_per_account_list_grows_past_its_cap() {
    let mut pipeline = Pipeline::new(shipped_defs(), PipelineConfig::default());
    busy_account(&mut pipeline);
    pipeline
        .graph()
        .with_account("busy", |core| {
            assert!(
                core.n_events >= 3_000,
                "every event applied: {}",
                core.n_events
            );
            assert_eq!(core.contacts.len(), MAX_CONTACTS, "40 contacts seen");
            for contact in &core.contacts {
                assert!(contact.title_history.len() <= MAX_TITLE_HISTORY);
            }
            assert_eq!(core.topics.len(), MAX_TOPICS, "1,000 e-mails of new words");
            assert!(!core.signals.is_empty());
            for signal in &core.signals {
                assert!(
                    signal.evidence.len() <= MAX_EVIDENCE,
                    "{:?}",
                    signal.evidence.len()
                );
                assert!(signal.keywords().len() <= MAX_KEYWORDS);
                assert!(signal.occurrences().len() <= MAX_OCCURRENCES);
            }
            let budget = shipped_defs().signal_idx("budget_confirmed").unwrap();
            let budget = core.signal(budget).expect("budget signal raised");
            assert_eq!(budget.evidence.len(), MAX_EVIDENCE, "1,000 budget e-mails");
        })
        .expect("the account exists");
}
