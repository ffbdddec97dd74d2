//! Loading signal definitions: the shipped set, and broken copies refused
//! with file, line and reason, all errors at once.

use std::path::Path;

use intent_core::signal_defs::{DefErrors, SignalSet};

use crate::root;

/// Copies the shipped signal-defs into a temp dir, applies `edit` to one file.
fn broken_copy(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("signal-defs"), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn errors_of(dir: &Path) -> Vec<String> {
    match intent_files::load_dir(dir) {
        Ok(_) => panic!("broken definitions were accepted"),
        Err(DefErrors(errors)) => errors
            .iter()
            .map(|e| {
                format!(
                    "{}:{}: {}",
                    e.file.strip_prefix(dir).unwrap().display(),
                    e.line,
                    e.message
                )
            })
            .collect(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not found"))
        + 1
}

#[test]
fn the_shipped_set_loads_with_the_required_signals_and_rules() {
    let set = intent_files::load_dir(&root().join("signal-defs")).unwrap();
    assert!(set.warnings.is_empty(), "warnings: {:?}", set.warnings);
    assert!(set.signals.len() >= 12);
    for rule in [
        "comparison_page_repeat",
        "competitor_dwell",
        "multi_doc_download",
        "live_qa_engaged",
        "budget_confirmed",
        "decision_maker_changed",
        "silent_after_first_touch",
        "score_threshold",
        "influencer_lead",
    ] {
        assert!(set.rule_idx(rule).is_some(), "missing rule {rule}");
    }
    for industry in ["medical", "manufacturing", "retail"] {
        let lib = set
            .libraries
            .iter()
            .find(|l| l.industry.as_deref() == Some(industry))
            .unwrap();
        assert!(
            lib.n_phrases >= 80,
            "{industry} has {} phrases",
            lib.n_phrases
        );
    }
    assert_eq!(set.version.len(), 12);
}

#[test]
fn every_problem_is_reported_with_file_and_line() {
    let signals = std::fs::read_to_string(root().join("signal-defs/signals.toml")).unwrap();
    let rules = std::fs::read_to_string(root().join("signal-defs/rules.toml")).unwrap();
    let dir = broken_copy("signals.toml", |t| {
        t.replacen("half_life = \"7d\"", "half_life = \"-7d\"", 1)
            .replacen(r"url = '(?i)(white-?paper", r"url = '(?i)((white-?paper", 1)
    });
    let path = dir.path().join("rules.toml");
    let r = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        r.replacen("signal = \"live_qa\"", "signal = \"live_qna\"", 1)
            .replacen("{count} questions", "{cuont} questions", 1),
    )
    .unwrap();
    let errors = errors_of(dir.path());
    let expect = [
        format!(
            "signals.toml:{}: half_life: must be positive, got '-7d'",
            line_of(&signals, "half_life = \"7d\"")
        ),
        format!(
            "rules.toml:{}: unknown signal 'live_qna'",
            line_of(&rules, "signal = \"live_qa\"")
        ),
        format!(
            "rules.toml:{}: reason: unknown placeholder {{cuont}}",
            line_of(&rules, "{count} questions")
        ),
    ];
    for e in &expect {
        assert!(
            errors.iter().any(|got| got.starts_with(e.as_str())),
            "expected `{e}` in {errors:#?}"
        );
    }
    let regex_line = line_of(&signals, r"url = '(?i)(white-?paper");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("signals.toml:{regex_line}: url: bad regex"))),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn unknown_fields_and_syntax_errors_name_the_line() {
    let signals = std::fs::read_to_string(root().join("signal-defs/signals.toml")).unwrap();
    let dir = broken_copy("signals.toml", |t| {
        t.replacen("weight = 6.0", "wieght = 6.0", 1)
    });
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let line = line_of(&signals, "weight = 6.0");
    assert!(
        errors[0].starts_with(&format!("signals.toml:{line}: unknown field `wieght`")),
        "{errors:#?}"
    );

    let dir = broken_copy("rules.toml", |t| format!("{t}\n[[rule]\nid = 3\n"));
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("rules.toml:"), "{errors:#?}");
    assert_ne!(errors[0].split(':').nth(1), Some("0"));
}

#[test]
fn duplicate_ids_and_misused_fields_are_refused() {
    let dir = broken_copy("rules.toml", |t| {
        format!(
            "{t}\n[[rule]]\nid = \"budget_confirmed\"\nkind = \"threshold\"\nscore_above = 50.0\nrecommendation = \"x\"\nreason = \"y\"\n\n\
             [[rule]]\nid = \"odd\"\nkind = \"threshold\"\nscore_above = 50.0\nsignal = \"live_qa\"\nrecommendation = \"x\"\nreason = \"y\"\n"
        )
    });
    let errors = errors_of(dir.path());
    assert!(
        errors
            .iter()
            .any(|e| e.contains("rule 'budget_confirmed' is already defined at")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("signal: not used by rules of kind threshold")),
        "{errors:#?}"
    );
}

#[test]
fn a_refused_change_leaves_the_running_set_in_force() {
    let mut pipeline = intent_core::Pipeline::new(
        crate::shipped_defs(),
        intent_core::PipelineConfig::default(),
    );
    let version = pipeline.defs().version.clone();
    let dir = broken_copy("rules.toml", |t| {
        t.replacen("kind = \"count\"", "kind = \"sometimes\"", 1)
    });
    if let Ok(set) = intent_files::load_dir(dir.path()) {
        pipeline.set_signals(std::sync::Arc::new(set));
    }
    assert_eq!(pipeline.defs().version, version);
    // A good change is swapped in and carried by actions.
    let dir = broken_copy("rules.toml", |t| {
        t.replacen("cooldown = \"30d\"", "cooldown = \"20d\"", 1)
    });
    let set = intent_files::load_dir(dir.path()).unwrap();
    let new_version = set.version.clone();
    assert_ne!(new_version, version);
    pipeline.set_signals(std::sync::Arc::new(set));
    let mut actions = Vec::new();
    let event = r#"{"id":"b1","ts":"2026-03-02T09:00:00Z","account":"a","kind":"email","body":"the budget is approved"}"#;
    pipeline
        .process_bytes(event.as_bytes(), &mut actions)
        .unwrap();
    assert_eq!(actions[0].signals_version, new_version);
}

/// A definitions directory of one file.
fn defs_of(text: &str) -> (tempfile::TempDir, Result<SignalSet, Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calls.toml"), text).unwrap();
    let loaded = intent_files::load_dir(dir.path()).map_err(|_| errors_of(dir.path()));
    (dir, loaded)
}

#[test]
fn attribute_bounds_select_events_of_any_kind() {
    let (_dir, set) = defs_of(
        r#"
[[signal]]
id = "long_call"
weight = 2.0
half_life = "30d"
when = { kinds = ["crm"], crm_types = ["call_logged"], attrs = [{ name = "call_duration_s", min = 300 }] }

[[signal]]
id = "middle_aged"
weight = 1.0
half_life = "365d"
when = { kinds = ["crm", "web"], attrs = [{ name = "age", min = 30, max = 49.5 }] }

[[rule]]
id = "hot"
kind = "threshold"
score_above = 1.0
recommendation = "call back"
reason = "score {score}"
"#,
    );
    let set = set.unwrap_or_else(|e| panic!("{e:#?}"));
    let mut pipeline = intent_core::Pipeline::new(std::sync::Arc::new(set), Default::default());
    let mut actions = Vec::new();
    let events = [
        // Too short, then exactly the bound, then no duration at all.
        r#"{"id":"c1","ts":"2026-05-01T10:00:00Z","account":"a","kind":"crm","type":"call_logged","attrs":{"call_duration_s":299.9}}"#,
        r#"{"id":"c2","ts":"2026-05-02T10:00:00Z","account":"b","kind":"crm","type":"call_logged","attrs":{"call_duration_s":300}}"#,
        r#"{"id":"c3","ts":"2026-05-02T10:00:00Z","account":"c","kind":"crm","type":"call_logged"}"#,
        // Both bounds are inclusive; the attribute may sit on a web event too.
        r#"{"id":"w1","ts":"2026-05-02T10:00:00Z","account":"d","kind":"web","url":"/","attrs":{"age":49.5}}"#,
        r#"{"id":"w2","ts":"2026-05-02T10:00:00Z","account":"e","kind":"web","url":"/","attrs":{"age":50}}"#,
        r#"{"id":"w3","ts":"2026-05-02T10:00:00Z","account":"f","kind":"crm","type":"first_touch","attrs":{"age":30}}"#,
    ];
    for event in events {
        pipeline
            .process_bytes(event.as_bytes(), &mut actions)
            .unwrap();
    }
    let signals = |account: &str| -> Vec<String> {
        pipeline
            .explain(account)
            .map(|e| e.signals.iter().map(|s| s.signal.to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(signals("a"), Vec::<String>::new());
    assert_eq!(signals("b"), ["long_call"]);
    assert_eq!(signals("c"), Vec::<String>::new());
    assert_eq!(signals("d"), ["middle_aged"]);
    assert_eq!(signals("e"), Vec::<String>::new());
    assert_eq!(signals("f"), ["middle_aged"]);
}

#[test]
fn bad_attribute_bounds_are_refused_with_their_line() {
    let text = r#"
[[signal]]
id = "a"
weight = 1.0
half_life = "30d"
when = { kinds = ["crm"], attrs = [{ name = "call_duration_s" }] }

[[signal]]
id = "b"
weight = 1.0
half_life = "30d"
when = { kinds = ["crm"], attrs = [{ name = "x", min = 5, max = 1 }] }
"#;
    let (_dir, loaded) = defs_of(text);
    let Err(errors) = loaded else {
        panic!("accepted")
    };
    let at = |needle: &str| format!("calls.toml:{}:", line_of(text, needle));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&at("\"call_duration_s\" }"))
                && e.contains("give 'call_duration_s' a min, a max or both")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with(&at("min = 5, max = 1"))
            && e.contains("min 5 of 'x' is above its max 1")),
        "{errors:#?}"
    );
    // A misspelt bound stops the file at its line, naming what is allowed.
    let (_dir, loaded) = defs_of(&text.replace("min = 5, max = 1", "above = 5"));
    let Err(errors) = loaded else {
        panic!("accepted")
    };
    assert_eq!(
        errors,
        [format!(
            "calls.toml:{}: unknown field `above`, expected one of `name`, `min`, `max`",
            line_of(text, "min = 5, max = 1")
        )]
    );
}
