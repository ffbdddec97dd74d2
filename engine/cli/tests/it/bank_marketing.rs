//! The analyst walk-through on real labeled data: the UCI Bank Marketing
//! sample (4,119 clients, CC BY 4.0, Moro et al. 2014) converted by
//! `intent import bank-marketing`, backtested with an analyst's guessed
//! weights, tuned, and backtested again. The figures are the ones README
//! and BENCHMARKS.md quote; the run is deterministic, so they are exact.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::root;

fn fixture() -> PathBuf {
    root().join("fixtures/bank-marketing")
}

fn intent(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_intent"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "intent {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn history_args(command: &str, signals: &Path, at_days: &str) -> Vec<std::ffi::OsString> {
    let f = fixture();
    let mut args: Vec<std::ffi::OsString> = vec![
        command.into(),
        "--events".into(),
        f.join("events.jsonl").into(),
        "--outcomes".into(),
        f.join("outcomes.jsonl").into(),
        "--signals".into(),
        signals.into(),
        "--at-days".into(),
        at_days.into(),
        "--json".into(),
    ];
    // Tests never write the default ./intent-index (they run in parallel).
    args.push("--no-index".into());
    args
}

fn run_json(args: Vec<std::ffi::OsString>) -> Value {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    serde_json::from_str(&intent(&args)).unwrap()
}

fn lift<'a>(report: &'a Value, signal: &str) -> &'a Value {
    report["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == signal)
        .unwrap_or_else(|| panic!("no signal {signal}"))
}

#[test]
fn the_shipped_conversion_is_what_the_converter_writes() {
    let out = tempfile::tempdir().unwrap();
    intent(&[
        "import".as_ref(),
        "bank-marketing".as_ref(),
        fixture().join("bank-additional.csv").as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ]);
    for name in ["events.jsonl", "outcomes.jsonl"] {
        let written = std::fs::read(out.path().join(name)).unwrap();
        let shipped = std::fs::read(fixture().join(name)).unwrap();
        assert!(
            written == shipped,
            "{name} differs from the converter's output"
        );
    }
    let outcomes = std::fs::read_to_string(fixture().join("outcomes.jsonl")).unwrap();
    assert_eq!(outcomes.lines().count(), 4119);
    assert_eq!(outcomes.matches("\"won\"").count(), 451);
}

#[test]
fn backtest_then_tune_on_real_outcomes() {
    let guessed = fixture().join("signal-defs");
    // Backtest builds the evidence index as it goes (here: outcomes only,
    // the bank's history has no text).
    let index = tempfile::tempdir().unwrap();
    let index_dir = index.path().join("idx");
    let mut args = history_args("backtest", &guessed, "1");
    args.retain(|a| a != "--no-index");
    args.extend(["--index".into(), index_dir.clone().into()]);
    let before = run_json(args);
    assert!(index_dir.join("intent-index.json").exists());
    let report = &before["report"];
    assert_eq!(report["accounts_with_outcome"], 4119);
    assert_eq!(report["won"], 451);
    assert_eq!(report["events_rejected"], 0);
    assert_eq!(report["classifier"]["roc_auc"], 0.541);
    // Clients who said yes in an earlier campaign: 64 % win rate, lift 7.
    assert_eq!(lift(report, "said_yes_before")["with"], 140);
    assert_eq!(lift(report, "said_yes_before")["lift"], 7.086);
    // The analyst guessed high rates help; the outcomes say the opposite.
    assert_eq!(lift(report, "rates_high")["lift"], 0.205);
    // A call's length is not known the day before it.
    assert_eq!(lift(report, "long_call")["with"], 0);

    let tuned_dir = tempfile::tempdir().unwrap();
    let tuned = tuned_dir.path().join("tuned");
    let mut args = history_args("tune", &guessed, "1");
    args.extend(["--write".into(), tuned.clone().into()]);
    let fit = run_json(args);
    assert_eq!(fit["holdout_auc_current"], 0.531);
    assert_eq!(fit["holdout_auc_learned"], 0.772);
    let weight = |name: &str| {
        let i = fit["signals"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s == name)
            .unwrap();
        (
            fit["current"][i].as_f64().unwrap(),
            fit["learned"][i].as_f64().unwrap(),
        )
    };
    let (current, learned) = weight("rates_high");
    assert!(current > 0.0 && learned < 0.0, "{current} → {learned}");
    assert_eq!(weight("long_call").1, 0.0);
    assert!(weight("said_yes_before").1 > 4.0);

    let after = run_json(history_args("backtest", &tuned, "1"));
    assert_eq!(after["report"]["classifier"]["roc_auc"], 0.762);
    assert!(
        after["report"]["classifier"]["precision_top_10pct"].as_f64()
            > report["classifier"]["precision_top_10pct"].as_f64()
    );

    // With the decision taken after the final call, its length leaks the
    // outcome into the score.
    let leaky = run_json(history_args("backtest", &guessed, "0"));
    assert_eq!(leaky["report"]["classifier"]["roc_auc"], 0.72);
    assert!(
        lift(&leaky["report"], "long_call")["lift"]
            .as_f64()
            .unwrap()
            > 3.0
    );
}
