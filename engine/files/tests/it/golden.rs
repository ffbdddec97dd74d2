//! Golden end-to-end replay: every scenario in `fixtures/*.jsonl` runs
//! through the pipeline with the shipped signal definitions, and its actions
//! must equal `fixtures/<scenario>.expected.jsonl` line for line.
//! `UPDATE_GOLDEN=1 cargo test` rewrites the expected files (review the diff).

use std::io::BufReader;

use intent_core::{Action, Pipeline, PipelineConfig};
use intent_files::replay::replay_reader;
use serde_json::Value;

use crate::{root, shipped_defs};

/// Runs a scenario as `intent replay` does; returns actions and rejected line numbers.
pub fn run_scenario(name: &str) -> (Vec<Action>, Vec<u64>, Pipeline) {
    let path = root().join("fixtures").join(format!("{name}.jsonl"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut pipeline = Pipeline::new(shipped_defs(), PipelineConfig::default());
    let mut actions = Vec::new();
    let mut rejected = Vec::new();
    replay_reader(
        &mut pipeline,
        name,
        BufReader::new(file),
        |a| actions.extend_from_slice(a),
        |r| rejected.push(r.line),
        |_| {},
    )
    .unwrap();
    pipeline.finish(&mut actions);
    (actions, rejected, pipeline)
}

/// What each scenario must fire, in order: (rule, account, trigger event or
/// timer time). This pins the behaviour the scenarios were written for, so a
/// careless regeneration of the golden files cannot hide a regression.
/// (rule, account, trigger event id or timer time).
type Firing = (&'static str, &'static str, &'static str);

const EXPECTED_FIRINGS: &[(&str, &[Firing])] = &[
    (
        "hospital_comparison",
        &[("comparison_page_repeat", "hosp-zhongshan", "h-5")],
    ),
    (
        "manufacturing_title_change",
        &[
            ("multi_doc_download", "mfg-huaxin", "m-4"),
            ("decision_maker_changed", "mfg-huaxin", "m-6"),
        ],
    ),
    (
        "silent_lead",
        &[(
            "silent_after_first_touch",
            "lead-silent",
            "2026-03-04T09:00:00.000Z",
        )],
    ),
    (
        "influencer_campaign",
        &[
            ("influencer_lead", "brand-glow", "i-2"),
            ("influencer_lead", "brand-glow", "i-5"),
        ],
    ),
    (
        "mixed_language",
        &[
            ("budget_confirmed", "clinic-bridge", "x-4"),
            ("score_threshold", "clinic-bridge", "x-4"),
            ("evaluation_in_progress", "clinic-bridge", "x-5"),
        ],
    ),
    (
        "dirty_input",
        &[
            ("comparison_page_repeat", "dirty-co", "d-3"),
            ("budget_confirmed", "dirty-co", "d-4"),
            ("score_threshold", "dirty-co", "d-4"),
        ],
    ),
];

#[test]
fn every_scenario_matches_its_golden_actions() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut scenarios: Vec<String> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") && !n.ends_with(".expected.jsonl"))
        .map(|n| n.trim_end_matches(".jsonl").to_string())
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 6, "scenarios: {scenarios:?}");
    for name in &scenarios {
        let (actions, _, _) = run_scenario(name);
        let got: Vec<String> = actions.iter().map(Action::to_json_line).collect();
        let expected_path = root()
            .join("fixtures")
            .join(format!("{name}.expected.jsonl"));
        if update {
            std::fs::write(
                &expected_path,
                got.iter().map(|l| format!("{l}\n")).collect::<String>(),
            )
            .unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
                expected_path.display()
            )
        });
        let expected: Vec<Value> = expected
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<Value> = got
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got, expected, "scenario {name}");
    }
}

#[test]
fn scenarios_fire_what_they_were_written_for() {
    for (name, firings) in EXPECTED_FIRINGS {
        let (actions, _, _) = run_scenario(name);
        let got: Vec<(String, String, String)> = actions
            .iter()
            .map(|a| {
                let trigger = a
                    .trigger_event
                    .clone()
                    .unwrap_or_else(|| a.event_ts.to_rfc3339());
                (a.rule.to_string(), a.account.clone(), trigger)
            })
            .collect();
        let want: Vec<(String, String, String)> = firings
            .iter()
            .map(|(r, a, t)| (r.to_string(), a.to_string(), t.to_string()))
            .collect();
        assert_eq!(got, want, "scenario {name}");
    }
}

#[test]
fn recommendations_follow_the_account_industry() {
    let (actions, _, pipeline) = run_scenario("hospital_comparison");
    assert_eq!(
        pipeline
            .explain("hosp-zhongshan")
            .unwrap()
            .industry
            .as_deref(),
        Some("medical")
    );
    assert!(
        actions[0].recommendation.contains("white paper")
            && actions[0]
                .recommendation
                .contains("local service appointment")
    );
    assert_eq!(actions[0].evidence.events, ["h-1", "h-3", "h-5"]);
}

#[test]
fn dirty_input_rejects_bad_lines_and_ignores_duplicates() {
    let (actions, rejected, pipeline) = run_scenario("dirty_input");
    assert_eq!(
        rejected,
        [5, 6, 7, 8, 10],
        "line numbers of the malformed lines"
    );
    let stats = pipeline.stats();
    assert_eq!(stats.duplicates, 2);
    assert_eq!(stats.rejected, 5);
    assert_eq!(
        stats.late, 1,
        "d-0 arrives 80 minutes behind the newest event"
    );
    assert_eq!(stats.superseded, 0);
    let ids: Vec<&str> = actions.iter().map(|a| a.id.as_str()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique);
}

#[test]
fn silence_is_broken_by_inbound_activity_but_not_by_outbound_email() {
    let (actions, _, pipeline) = run_scenario("silent_lead");
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].account, "lead-silent");
    assert_eq!(actions[0].evidence.events, ["s-1"]);
    assert_eq!(pipeline.stats().timers_fired, 1);
}
