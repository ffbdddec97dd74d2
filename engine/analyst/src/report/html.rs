//! The report page: one HTML file with its styles and SVG charts inline,
//! viewable with no network. Its content depends only on the data, so two
//! runs over the same history write the same bytes.

use std::fmt::Write as _;

use super::{charts, ReportData};

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
.meta { color: #555; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.figures { display: flex; gap: 24px; flex-wrap: wrap; }
.figure { font-size: 28px; font-weight: bold; }
.figure small { display: block; font-size: 12px; font-weight: normal; color: #555; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.note { color: #555; font-size: 13px; max-width: 900px; }
.error { color: #b00; }
";

fn chart(out: &mut String, svg: charts::ChartResult) {
    match svg {
        Ok(svg) => {
            // plotters writes an XML declaration-free <svg> element.
            out.push_str("<div>");
            out.push_str(&svg);
            out.push_str("</div>\n");
        }
        Err(e) => {
            let _ = writeln!(out, "<p class=\"error\">{}</p>", escape(&e.to_string()));
        }
    }
}

/// A table: a header row, then one row a line, every cell escaped.
fn table(out: &mut String, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    out.push_str("<table><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

/// The whole page.
pub fn page(data: &ReportData) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Intent report – signals {}</title><style>{STYLE}</style></head><body>\n",
        escape(&data.signals_version)
    );
    let _ = writeln!(out, "<h1>Intent report</h1>");
    let span = match (data.first_event, data.last_event) {
        (Some(f), Some(l)) => format!("{f} – {l}"),
        _ => "no events".into(),
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">Signal definitions {} ({}) · {} events read, {} rejected · {}</p>",
        escape(&data.signals_version),
        escape(&data.signals_source),
        data.events_read,
        data.events_rejected,
        escape(&span)
    );

    let rules: Vec<String> = data.firings_over_time.by_rule.keys().cloned().collect();
    if let Some(report) = &data.backtest {
        let c = &report.classifier;
        let _ = writeln!(out, "<h2>Summary</h2><div class=\"figures\">");
        let figure = |out: &mut String, value: String, label: &str| {
            let _ = writeln!(
                out,
                "<div class=\"figure\">{}<small>{}</small></div>",
                escape(&value),
                escape(label)
            );
        };
        figure(
            &mut out,
            format!("{}", report.accounts_with_outcome),
            &format!(
                "accounts with an outcome ({} won, {} lost)",
                report.won, report.lost
            ),
        );
        figure(
            &mut out,
            num(c.roc_auc),
            &format!("ROC AUC, {} days before the outcome", c.at_days),
        );
        figure(
            &mut out,
            num(c.precision_top_10pct),
            "win rate in the top 10 %",
        );
        if let Some(tune) = &data.tune {
            figure(
                &mut out,
                format!(
                    "{} → {}",
                    num(tune.fit.holdout_auc_current),
                    num(tune.fit.holdout_auc_learned)
                ),
                "held-out ROC AUC, current → learned weights",
            );
        }
        let _ = writeln!(out, "</div>");
    } else {
        let _ = writeln!(
            out,
            "<p class=\"note\">No outcomes were given (--outcomes): the ROC curve, calibration and tune sections are left out.</p>"
        );
    }

    let _ = writeln!(out, "<h2>Score trajectories</h2>");
    let _ = writeln!(
        out,
        "<p class=\"note\">{} The line is the score (0–100) at each of the account's events and sampled between them, from its first event to a while after its last, so the decay shows; triangles mark rule firings, named above them.</p>",
        if data.backtest.is_some() {
            "The accounts that scored highest at their decision time."
        } else {
            "The accounts with the highest scores at the end of the history."
        }
    );
    let _ = writeln!(out, "<div class=\"grid\">");
    for t in &data.trajectories {
        chart(&mut out, charts::trajectory(t, &rules));
    }
    if data.trajectories.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">No accounts.</p>");
    }
    let _ = writeln!(out, "</div>");

    let _ = writeln!(out, "<h2>Rule firings over time</h2>");
    if data.firings_over_time.by_rule.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">No rule fired.</p>");
    } else {
        chart(
            &mut out,
            charts::firings_over_time(&data.firings_over_time, &rules),
        );
    }

    if let Some(report) = &data.backtest {
        let _ = writeln!(
            out,
            "<h2>The score as a classifier</h2><div class=\"grid\">"
        );
        let mut curves: Vec<(String, &[(f64, f64)])> = vec![(
            format!("all accounts, AUC {}", num(report.classifier.roc_auc)),
            &data.roc,
        )];
        if let Some(tune) = &data.tune {
            curves.push((
                format!(
                    "held out, current, AUC {}",
                    num(tune.fit.holdout_auc_current)
                ),
                &tune.roc_current,
            ));
            curves.push((
                format!(
                    "held out, learned, AUC {}",
                    num(tune.fit.holdout_auc_learned)
                ),
                &tune.roc_learned,
            ));
        }
        chart(&mut out, charts::roc(&curves));
        chart(
            &mut out,
            charts::calibration(&report.classifier.calibration),
        );
        let _ = writeln!(out, "</div>");

        if let Some(tune) = &data.tune {
            let fit = &tune.fit;
            let _ = writeln!(out, "<h2>Tune: learned weights</h2>");
            let _ = writeln!(
                out,
                "<p class=\"note\">L2-regularised logistic regression on each account's decayed signal values at its decision time; fitted on {} accounts, compared on {} held out. Learned weights are rescaled to the current weights' total size.</p>",
                fit.train_accounts, fit.holdout_accounts
            );
            chart(&mut out, charts::weights(tune));
            table(
                &mut out,
                &["signal", "current", "learned", "change"],
                fit.signals
                    .iter()
                    .zip(&fit.current)
                    .zip(&fit.learned)
                    .map(|((s, c), l)| {
                        vec![
                            s.clone(),
                            format!("{c:.2}"),
                            format!("{l:.2}"),
                            format!("{:+.2}", l - c),
                        ]
                    }),
            );
        }

        let _ = writeln!(out, "<h2>Rules</h2>");
        table(
            &mut out,
            &[
                "rule",
                "fired",
                "precision",
                "recall",
                "median lead (days)",
                "false alarms / 100",
            ],
            report.rules.iter().map(|r| {
                vec![
                    r.rule.clone(),
                    r.fired.to_string(),
                    num(r.precision),
                    num(r.recall),
                    num(r.median_lead_days),
                    format!("{:.2}", r.false_alarms_per_100),
                ]
            }),
        );
        let _ = writeln!(out, "<h2>Signals</h2>");
        table(
            &mut out,
            &[
                "signal",
                "accounts with it",
                "win rate with",
                "without",
                "lift",
            ],
            report.signals.iter().map(|s| {
                vec![
                    s.signal.clone(),
                    s.with.to_string(),
                    num(s.win_rate_with),
                    num(s.win_rate_without),
                    num(s.lift),
                ]
            }),
        );
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<b>"A&B"</b> 'x' 诊断"#),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt; &#39;x&#39; 诊断"
        );
    }
}
