//! What a load run reports: the table on the terminal, the JSON document,
//! the HdrHistogram interval log and the latency-by-percentile plot.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::measure::{Percentiles, RunResult};

/// One rate: the floor (when measured) and the engine side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<RunResult>,
    pub engine: RunResult,
    /// Engine minus floor, per percentile (ms), when both ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference_ms: Option<Percentiles>,
    /// Engine over floor, per percentile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Percentiles>,
    /// p99 within the bound, nothing lost, the rate achieved.
    pub meets_slo: bool,
    /// Something that makes the figures doubtful (e.g. the engine runs other
    /// definitions than those the expected actions were computed with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: String,
    pub nats_server: String,
    pub mode: String,
    pub accounts: usize,
    pub zipf: f64,
    pub mix: String,
    pub intent_share: f64,
    pub seed: u64,
    pub duration_s: f64,
    pub slo_p99_ms: f64,
    pub rows: Vec<Row>,
    /// The highest rate that met the SLO, when a sweep ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaking_point: Option<f64>,
}

pub fn combine(a: &Percentiles, b: &Percentiles, f: impl Fn(f64, f64) -> f64) -> Percentiles {
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    Percentiles {
        count: a.count,
        p50_ms: r(f(a.p50_ms, b.p50_ms)),
        p90_ms: r(f(a.p90_ms, b.p90_ms)),
        p99_ms: r(f(a.p99_ms, b.p99_ms)),
        p999_ms: r(f(a.p999_ms, b.p999_ms)),
        p9999_ms: r(f(a.p9999_ms, b.p9999_ms)),
        max_ms: r(f(a.max_ms, b.max_ms)),
        mean_ms: r(f(a.mean_ms, b.mean_ms)),
    }
}

impl Row {
    /// Compares the engine with the floor on the same events (those that
    /// trigger actions) where the floor measured them.
    pub fn new(rate: f64, floor: Option<RunResult>, engine: RunResult, slo_p99_ms: f64) -> Row {
        let same = |f: &RunResult| {
            f.latency_triggering
                .clone()
                .unwrap_or_else(|| f.latency.clone())
        };
        let difference_ms = floor
            .as_ref()
            .map(|f| combine(&engine.latency, &same(f), |e, f| e - f));
        let ratio = floor.as_ref().map(|f| {
            combine(&engine.latency, &same(f), |e, f| {
                if f > 0.0 {
                    e / f
                } else {
                    f64::NAN
                }
            })
        });
        let meets_slo = engine.lost == 0
            && engine.send_errors == 0
            && engine.latency.p99_ms <= slo_p99_ms
            && engine.achieved_rate >= 0.98 * rate;
        Row {
            rate,
            floor,
            engine,
            difference_ms,
            ratio,
            meets_slo,
            warning: None,
        }
    }
}

fn line(out: &mut impl Write, name: &str, p: &Percentiles, extra: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "  {name:<14} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}  {extra}",
        p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.p9999_ms, p.max_ms
    )
}

fn run_extra(r: &RunResult) -> String {
    let mut extra = format!(
        "n={} sent {:.0}/s (max behind {}), answers {}/{} lost {}",
        r.latency.count, r.achieved_rate, r.max_backlog, r.received, r.expected, r.lost
    );
    if r.duplicates > 0 {
        extra.push_str(&format!(", {} duplicates", r.duplicates));
    }
    if r.unmatched > 0 {
        extra.push_str(&format!(", {} unmatched", r.unmatched));
    }
    if r.send_errors > 0 {
        extra.push_str(&format!(", {} send errors", r.send_errors));
    }
    extra
}

/// The table on the terminal.
pub fn print(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "loadgen: {} mode, {} accounts (zipf {}), mix {}, intent share {}, {} s per rate; {}; {}",
        report.mode,
        report.accounts,
        report.zipf,
        report.mix,
        report.intent_share,
        report.duration_s,
        report.nats_server,
        report.machine
    )?;
    for row in &report.rows {
        writeln!(
            out,
            "\nrate {:.0} events/s{}",
            row.rate,
            if row.meets_slo { "" } else { "  (SLO not met)" }
        )?;
        writeln!(
            out,
            "  {:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency ms", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        )?;
        if let Some(floor) = &row.floor {
            line(out, "floor (echo)", &floor.latency, &run_extra(floor))?;
            if let Some(same) = &floor.latency_triggering {
                let note = format!("n={}: the events the engine is measured on", same.count);
                line(out, " same events", same, &note)?;
            }
        }
        line(out, "engine", &row.engine.latency, &run_extra(&row.engine))?;
        if let Some(d) = &row.difference_ms {
            line(out, "engine - floor", d, "(same events)")?;
        }
        if let Some(r) = &row.ratio {
            line(out, "engine / floor", r, "")?;
        }
        if let Some(api) = &row.engine.api {
            line(
                out,
                "api score",
                &api.latency,
                &format!(
                    "n={} of {} sent at {:.0}/s; {} errors, {} unanswered",
                    api.latency.count, api.sent, api.target_rate, api.errors, api.unanswered
                ),
            )?;
        }
        if let Some(warning) = &row.warning {
            writeln!(out, "  warning: {warning}")?;
        }
        if let Some(stats) = &row.engine.engine_stats {
            let d = &stats["during_run"];
            let lat = &stats["after"]["latency"];
            writeln!(
                out,
                "  engine stats: {} in, {} applied, {} rejected, {} dlq, {} actions out; processing p50 {} µs p99 {} µs (since start)",
                d["events_in"], d["applied"], d["rejected"], d["dlq"], d["actions_out"], lat["p50_us"], lat["p99_us"]
            )?;
        }
    }
    if let Some(bp) = report.breaking_point {
        writeln!(
            out,
            "\nhighest rate meeting p99 ≤ {} ms with nothing lost: {bp:.0} events/s",
            report.slo_p99_ms
        )?;
    } else if report.rows.len() > 1 {
        writeln!(
            out,
            "\nno rate met p99 ≤ {} ms with nothing lost",
            report.slo_p99_ms
        )?;
    }
    Ok(())
}

pub fn write_json(report: &Report, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The histograms in the HdrHistogram interval-log format (V2, compressed),
/// one interval per run, tagged `floor-<rate>` / `engine-<rate>`; values in
/// microseconds (HdrHistogram's Java tools assume nanoseconds unless given
/// an output value unit ratio of 1000).
pub fn write_hdr_log(report: &Report, path: &Path) -> Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut serializer = V2Serializer::new();
    let base = report
        .rows
        .iter()
        .flat_map(|r| [r.floor.as_ref().and_then(|f| f.started), r.engine.started])
        .flatten()
        .min()
        .unwrap_or_else(std::time::SystemTime::now);
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("intent loadgen: event->action latency in microseconds")
        .with_base_time(base)
        .with_start_time(base)
        .begin_log_with(&mut file, &mut serializer)?;
    for row in &report.rows {
        let runs = [("floor", row.floor.as_ref()), ("engine", Some(&row.engine))];
        for (name, run) in runs {
            let Some(run) = run else { continue };
            let (Some(hist), Some(started)) = (&run.histogram, run.started) else {
                continue;
            };
            let offset = started.duration_since(base).unwrap_or_default();
            let tag = format!("{name}-{:.0}", row.rate);
            log.write_histogram(
                hist,
                offset,
                std::time::Duration::from_secs_f64(run.duration_s),
                Tag::new(&tag),
            )
            .map_err(|e| anyhow::anyhow!("writing the HdrHistogram log: {e:?}"))?;
        }
    }
    Ok(())
}

/// Latency by percentile (the HdrHistogram plot: x is 1/(1-p) on a log
/// scale), one curve per run, as SVG.
pub fn write_plot(report: &Report, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for row in &report.rows {
        let runs = [("floor", row.floor.as_ref()), ("engine", Some(&row.engine))];
        for (name, run) in runs {
            let Some(Some(hist)) = run.map(|r| &r.histogram) else {
                continue;
            };
            curves.push((format!("{name} {:.0}/s", row.rate), percentile_curve(hist)));
        }
    }
    let max_y = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(0.1f64, f64::max);
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "intent: event->action latency by percentile ({} mode)",
                report.mode
            ),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (1.0f64..100_000.0f64).log_scale(),
            (0.01f64..max_y * 1.2).log_scale(),
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| {
            let p = format!("{:.3}", 100.0 * (1.0 - 1.0 / x));
            format!("{}%", p.trim_end_matches('0').trim_end_matches('.'))
        })
        .draw()
        .map_err(plot_err)?;
    for (i, (label, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e:?}")
}

/// Points (1/(1-p), latency ms) from p = 0 to 99.999 %.
fn percentile_curve(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut x = 1.0f64;
    while x <= 100_000.0 {
        let q = 1.0 - 1.0 / x;
        let ms = hist.value_at_quantile(q) as f64 / 1000.0;
        points.push((x, ms.max(0.01)));
        x *= 1.15;
    }
    points
}
