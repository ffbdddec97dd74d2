//! `intent report`: the page is self-contained, has every chart the data
//! calls for, is the same bytes on every run, and renders in headless
//! Chromium to a picture with the charts in it. The rendered PNGs are kept
//! in `target/report-check/` for a person to look at.
//!
//! Chromium (Debian package `chromium`) is looked up on PATH or in
//! `$CHROMIUM`; without it the render check is skipped with a note, unless
//! `INTENT_REQUIRE_CHROMIUM=1` (as `.ci/run` sets), which makes it fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::root;

fn report(args: &[&str], out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_intent"))
        .current_dir(root())
        .arg("report")
        .arg("--no-index")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(out.join("report.html")).unwrap()
}

fn bank_args() -> Vec<&'static str> {
    vec![
        "--events",
        "fixtures/bank-marketing/events.jsonl",
        "--outcomes",
        "fixtures/bank-marketing/outcomes.jsonl",
        "--signals",
        "fixtures/bank-marketing/signal-defs",
        "--at-days",
        "1",
    ]
}

/// Charts, and the page refers to nothing outside itself.
fn check_self_contained(html: &str) -> usize {
    let lower = html.to_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "url(", "src=", "@import",
    ] {
        assert!(!lower.contains(banned), "the page uses {banned}");
    }
    assert_eq!(lower.find("href="), None, "the page links out");
    let opened = html.matches("<svg").count();
    assert_eq!(opened, html.matches("</svg>").count(), "unbalanced <svg>");
    assert!(!html.contains("drawing failed"), "a chart failed to draw");
    opened
}

#[test]
fn the_bank_report_has_every_chart_and_the_figures_of_the_walk_through() {
    let dir = tempfile::tempdir().unwrap();
    let html = report(&bank_args(), dir.path());
    // 6 trajectories, firings over time, ROC, calibration, weights.
    assert_eq!(check_self_contained(&html), 10);
    assert!(html.contains("0.531 → 0.772"), "tune before/after");
    assert!(html.contains("<div class=\"figure\">0.541<small>ROC AUC, 1 days before the outcome"));
    assert!(html.contains("held out, learned, AUC 0.772"));
    assert!(html.contains("Firings per rule and week"));
    for rule in ["call_first", "returning_customer", "over_contacted"] {
        assert!(html.contains(&format!("<td>{rule}</td>")), "{rule} row");
    }
    assert!(html.contains("<td>rates_high</td><td>2.00</td><td>-2.25</td><td>-4.25</td>"));
    // The same bytes on every run.
    let again = tempfile::tempdir().unwrap();
    assert!(
        report(&bank_args(), again.path()) == html,
        "the page differs between runs"
    );
}

#[test]
fn without_outcomes_the_report_shows_trajectories_and_firings() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--events"];
    let scenarios = [
        "fixtures/hospital_comparison.jsonl",
        "fixtures/manufacturing_title_change.jsonl",
        "fixtures/mixed_language.jsonl",
    ];
    args.extend(scenarios);
    args.extend(["--accounts", "hosp-zhongshan,mfg-huaxin"]);
    let html = report(&args, dir.path());
    assert_eq!(check_self_contained(&html), 3);
    assert!(html.contains("No outcomes were given"));
    assert!(html.contains("Firings per rule and day"));
    // plotters writes each text on a line of its own inside <text>.
    for text in ["hosp-zhongshan", "mfg-huaxin", "decision_maker_changed"] {
        assert!(html.contains(&format!(">\n{text}\n</text>")), "{text}");
    }
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

#[test]
fn the_page_renders_in_headless_chromium_with_its_charts() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var("INTENT_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "chromium is required (INTENT_REQUIRE_CHROMIUM=1) but was not found"
        );
        eprintln!("note: no chromium on PATH; the render check is skipped");
        return;
    };
    let keep = root().join("target/report-check");
    std::fs::create_dir_all(&keep).unwrap();
    let html_dir = keep.join("bank");
    report(&bank_args(), &html_dir);
    let png = keep.join("bank.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1240,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html_dir.join("report.html").display()))
        .output()
        .unwrap();
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (1240, 1600));
    let channels = frame.color_type.samples();
    let rgb = |i: usize| (pixels[i], pixels[i + 1], pixels[i + 2]);
    let count = |color: (u8, u8, u8)| {
        (0..frame.buffer_size())
            .step_by(channels)
            .filter(|&i| rgb(i) == color)
            .count()
    };
    // The trajectories' line colour, the call_first firing colour (red) and
    // the text: the charts were drawn, not just the page's frame.
    let blue = count((31, 119, 180));
    let red = count((214, 39, 40));
    let white = count((255, 255, 255));
    let total = (frame.width * frame.height) as usize;
    assert!(blue > 2_000, "trajectory lines: {blue} px");
    assert!(red > 100, "firing markers: {red} px");
    assert!(white < total * 97 / 100, "the page is almost blank");
    eprintln!("rendered {} ({} px of line colour)", png.display(), blue);
}
