//! The `intent` binary as a user runs it.

use std::process::Command;

use crate::root;

fn intent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_intent"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn replay_prints_the_golden_actions_and_a_summary() {
    let out = intent(&["replay", "fixtures/hospital_comparison.jsonl"]);
    assert!(out.status.success());
    let expected =
        std::fs::read_to_string(root().join("fixtures/hospital_comparison.expected.jsonl"))
            .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("read 6 events: 6 applied, 0 rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("comparison_page_repeat: 1"), "{stderr}");
}

#[test]
fn replay_reports_bad_lines_and_carries_on() {
    let out = intent(&[
        "replay",
        "fixtures/dirty_input.jsonl",
        "--explain",
        "dirty-co",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("fixtures/dirty_input.jsonl:5: rejected: missing field account"),
        "{stderr}"
    );
    assert!(stderr.contains(
        "fixtures/dirty_input.jsonl:6: rejected: ts: 'last tuesday' is not RFC 3339 nor integer ms"
    ));
    assert!(stderr.contains("Account dirty-co scores"), "{stderr}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
}

#[test]
fn until_fires_pending_silence_timers() {
    let input = r#"{"id":"f1","ts":"2026-03-02T09:00:00Z","account":"quiet","kind":"crm","type":"first_touch"}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.jsonl");
    std::fs::write(&path, format!("{input}\n")).unwrap();
    let path = path.to_str().unwrap();
    let without = intent(&["replay", path, "--signals", "signal-defs"]);
    assert_eq!(String::from_utf8(without.stdout).unwrap(), "");
    let with = intent(&["replay", path, "--until", "2026-03-05T00:00:00Z"]);
    let stdout = String::from_utf8(with.stdout).unwrap();
    assert!(
        stdout.contains("\"rule\":\"silent_after_first_touch\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"event_ts\":\"2026-03-04T09:00:00.000Z\""),
        "{stdout}"
    );
}

#[test]
fn check_accepts_the_shipped_set_and_refuses_a_broken_one() {
    let ok = intent(&["check", "signal-defs"]);
    assert!(ok.status.success());
    assert!(String::from_utf8(ok.stdout).unwrap().contains("10 rules"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[[signal]]\nid = \"x\"\nweight = 1.0\nhalf_life = \"0s\"\n[signal.when]\nkinds = [\"fax\"]\n").unwrap();
    let bad = intent(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("bad.toml:4: half_life: must be positive, got '0s'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.toml:6: kinds: 'fax' is not one of web, email, transcript, crm"),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn synth_output_replays_without_rejections() {
    let synth = intent(&[
        "synth",
        "--events",
        "2000",
        "--accounts",
        "50",
        "--seed",
        "3",
    ]);
    assert!(synth.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.jsonl");
    std::fs::write(&path, &synth.stdout).unwrap();
    let out = intent(&["replay", path.to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("read 2000 events: 2000 applied, 0 rejected"),
        "{stderr}"
    );
}
