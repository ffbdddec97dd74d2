//! `intent tune` on a labeled history built so that the current weights
//! rank it wrong: winners asked for a demo once; losers looked at the
//! pricing page three times (which the shipped weights value more). The fit
//! must turn that around on held-out accounts, and `--write` must produce a
//! definitions directory `intent check` accepts, with only weights changed.

use std::process::Command;

use serde_json::{json, Value};

use crate::root;

fn history(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let day = 86_400_000i64;
    let start = 1_772_409_600_000i64; // 2026-03-02
    let mut events = Vec::new();
    let mut outcomes = Vec::new();
    for i in 0..400 {
        let account = format!("t-{i:03}");
        let won = i % 5 < 2;
        if won {
            events.push(json!({"id": format!("{account}-d"), "ts": start + i, "account": account, "kind": "email",
                "direction": "inbound", "contact": {"id": format!("{account}-c")},
                "subject": "Next steps", "body": "Could we schedule a demo for our team next week?"}));
        } else {
            for k in 0..3 {
                events.push(json!({"id": format!("{account}-p{k}"), "ts": start + i + k * day / 2, "account": account,
                    "kind": "web", "contact": {"id": format!("{account}-c")},
                    "url": "https://vendor.example/pricing", "title": "Pricing", "action": "view", "dwell_ms": 90000}));
            }
        }
        outcomes.push(json!({"account": account, "outcome": if won { "won" } else { "lost" }, "ts": start + 20 * day}));
    }
    events.sort_by_key(|e| e["ts"].as_i64().unwrap());
    let lines = |v: &[Value]| {
        v.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (e, o) = (dir.join("events.jsonl"), dir.join("outcomes.jsonl"));
    std::fs::write(&e, lines(&events)).unwrap();
    std::fs::write(&o, lines(&outcomes)).unwrap();
    (e, o)
}

fn tune(
    events: &std::path::Path,
    outcomes: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_intent"))
        .arg("tune")
        .arg("--events")
        .arg(events)
        .arg("--outcomes")
        .arg(outcomes)
        .arg("--signals")
        .arg(root().join("signal-defs"))
        .arg("--no-index")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn learned_weights_beat_the_current_ones_on_held_out_accounts_and_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (events, outcomes) = history(dir.path());
    let out = tune(&events, &outcomes, &["--json".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let weight = |name: &str| {
        let i = fit["signals"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s == name)
            .unwrap();
        fit["learned"][i].as_f64().unwrap()
    };
    assert!(weight("demo_request") > 0.0, "{fit}");
    assert!(
        weight("comparison_page_visit") < weight("demo_request"),
        "{fit}"
    );
    let (before, after) = (
        fit["holdout_auc_current"].as_f64().unwrap(),
        fit["holdout_auc_learned"].as_f64().unwrap(),
    );
    assert!(
        before < 0.5,
        "the shipped weights rank this history wrong: {before}"
    );
    assert!(after > 0.95, "{after}");
    let held = fit["holdout_accounts"].as_u64().unwrap();
    assert!(
        (90..150).contains(&held),
        "about 30 % of 400 held out: {held}"
    );

    // --write: a new directory, valid, with the learned weights and only
    // weight lines changed; the input is never the target.
    let target = dir.path().join("tuned");
    let out = tune(
        &events,
        &outcomes,
        &["--write".as_ref(), target.as_os_str()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let changed: Vec<&str> = stderr.lines().filter(|l| l.contains("  ->  ")).collect();
    assert!(
        !changed.is_empty() && changed.iter().all(|l| l.contains("weight =")),
        "{stderr}"
    );
    let check = Command::new(env!("CARGO_BIN_EXE_intent"))
        .arg("check")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let written = intent_files::load_dir(&target).unwrap();
    let demo = written.signal_idx("demo_request").unwrap();
    assert_eq!(
        written.signals[demo as usize].weight,
        weight("demo_request")
    );
    let refused = tune(
        &events,
        &outcomes,
        &["--write".as_ref(), root().join("signal-defs").as_os_str()],
    );
    assert!(!refused.status.success());
}
