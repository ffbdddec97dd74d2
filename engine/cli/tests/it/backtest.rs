//! `intent backtest` on a small labeled history whose figures are worked
//! out by hand in `fixtures/backtest/` (five accounts: two won after a
//! budget confirmation, one lost that confirmed a budget only after its
//! decision time, one lost after a pricing visit, one lost with no events).

use std::process::Command;

use serde_json::Value;

use crate::root;

fn backtest(extra: &[&str]) -> std::process::Output {
    let dir = root().join("fixtures/backtest");
    Command::new(env!("CARGO_BIN_EXE_intent"))
        .arg("backtest")
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .arg("--outcomes")
        .arg(dir.join("outcomes.jsonl"))
        .arg("--signals")
        .arg(root().join("signal-defs"))
        .arg("--no-index")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn rules_signals_and_the_score_are_measured_against_outcomes() {
    let out = backtest(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json["report"];
    assert_eq!(report["accounts_with_outcome"], 5);
    assert_eq!(
        (report["won"].as_u64(), report["lost"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(report["accounts_without_events"], 1);

    let rule = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "budget_confirmed")
        .unwrap();
    // Fired before the outcome for both winners and for bt-lost-1.
    assert_eq!(rule["fired"], 3);
    assert_eq!(rule["precision"], 0.667);
    assert_eq!(rule["recall"], 1.0);
    // Lead times 27.625 and 32.625 days.
    assert_eq!(rule["median_lead_days"], 30.125);
    // One lost account of five.
    assert_eq!(rule["false_alarms_per_100"], 20.0);

    let signal = |id: &str| {
        report["signals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["signal"] == id)
            .unwrap()
            .clone()
    };
    // At decision time (14 days before), bt-lost-1 had not yet confirmed.
    let budget = signal("budget_confirmed");
    assert_eq!(
        (budget["with"].as_u64(), budget["win_rate_with"].as_f64()),
        (Some(2), Some(1.0))
    );
    assert_eq!(budget["win_rate_without"], 0.0);
    assert!(
        budget["lift"].is_null(),
        "no win without it: lift undefined"
    );
    let pricing = signal("comparison_page_visit");
    assert_eq!(pricing["with"], 2);
    assert_eq!(pricing["lift"], 1.5, "(1/2) / (1/3)");

    let classifier = &report["classifier"];
    assert_eq!(classifier["roc_auc"], 1.0);
    assert_eq!(classifier["precision_top_10pct"], 1.0);
    let bins = classifier["calibration"].as_array().unwrap();
    assert_eq!(
        bins.iter()
            .map(|b| b["accounts"].as_u64().unwrap())
            .sum::<u64>(),
        5
    );
}

#[test]
fn a_baseline_prints_side_by_side_and_bad_outcomes_are_refused() {
    let out = backtest(&["--baseline", root().join("signal-defs").to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ROC AUC            1.000  baseline 1.000  (+0.000)"),
        "{text}"
    );
    assert!(text.contains("Δprecision"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("outcomes.jsonl");
    std::fs::write(&bad, "{\"account\":\"a\",\"outcome\":\"won\",\"ts\":\"2026-01-01T00:00:00Z\"}\n{\"account\":\"b\",\"outcome\":\"pending\",\"ts\":1}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_intent"))
        .arg("backtest")
        .arg("--events")
        .arg(root().join("fixtures/backtest/events.jsonl"))
        .arg("--outcomes")
        .arg(&bad)
        .arg("--signals")
        .arg(root().join("signal-defs"))
        .arg("--no-index")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("outcomes.jsonl:2: outcome: 'pending' is not won or lost"),
        "{stderr}"
    );
}
