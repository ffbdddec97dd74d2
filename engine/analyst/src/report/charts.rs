//! The report's charts, drawn with plotters into SVG strings (embedded in
//! the page as they are: no images to fetch).

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use super::{FiringBins, Trajectory, TuneView};
use crate::metrics::CalibrationBin;
use intent_core::time::Timestamp;

/// A chart that could not be drawn: the page shows this instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("drawing failed: {0}")]
pub struct ChartError(String);

/// An SVG chart, or why it could not be drawn.
pub type ChartResult = Result<String, ChartError>;

/// plotters' errors are generic over the backend and hold no source worth
/// keeping past the page: their text is what the page shows.
fn err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

fn date(ms: i64) -> String {
    let text = Timestamp(ms).to_string();
    text.get(..10).unwrap_or(&text).to_string()
}

/// Colours that stay apart on white and in grey print.
fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

type Chart<'a, X, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>;

/// The legend box of a chart's labelled series.
fn legend<X: Ranged, Y: Ranged>(
    chart: &mut Chart<'_, X, Y>,
    position: SeriesLabelPosition,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(err)
}

/// A legend entry with a filled square, for bars.
fn legend_box<X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, X, Y>,
    label: &str,
    style: ShapeStyle,
) -> Result<(), ChartError> {
    chart
        .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], style));
    Ok(())
}

/// One account's score over time, its rule firings marked and named.
pub fn trajectory(t: &Trajectory, rules: &[String]) -> ChartResult {
    let span = t.span;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let outcome = match t.outcome {
            Some(true) => " (won)",
            Some(false) => " (lost)",
            None => "",
        };
        let (from, to) = (span.0, span.1.max(span.0 + 1));
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{}{outcome}", t.account), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(36)
            .build_cartesian_2d(from..to, 0f64..100f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(4)
            .y_labels(5)
            .x_label_formatter(&|x| date(*x))
            .y_desc("score")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                t.points.iter().copied(),
                color(0).stroke_width(2),
            ))
            .map_err(err)?;
        // Firings close in time get their labels stacked, not overprinted.
        let near = (to - from) / 12;
        let mut placed: Vec<i64> = Vec::new();
        for (ts, rule, score) in &t.firings {
            let i = rules.iter().position(|r| r == rule).unwrap_or(0) + 1;
            let stacked = placed.iter().filter(|p| (**p - ts).abs() < near).count();
            placed.push(*ts);
            let c = color(i);
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (*ts, *score),
                    7,
                    c.filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    rule.clone(),
                    (*ts, (score + 6.0 + 9.0 * stacked as f64).min(97.0)),
                    ("sans-serif", 11).into_font().color(&c),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Firings per rule and day or week, one line per rule.
pub fn firings_over_time(bins: &FiringBins, rules: &[String]) -> ChartResult {
    let series = &bins.by_rule;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1120, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let from = series
            .values()
            .filter_map(|s| s.first().map(|p| p.0))
            .min()
            .unwrap_or(0);
        let to = series
            .values()
            .filter_map(|s| s.last().map(|p| p.0))
            .max()
            .unwrap_or(1)
            .max(from + 1);
        let max = series
            .values()
            .flat_map(|s| s.iter().map(|p| p.1))
            .max()
            .unwrap_or(1)
            .max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                if bins.bin_days == 1 {
                    "Firings per rule and day"
                } else {
                    "Firings per rule and week"
                },
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(from..to, 0u64..max + max / 10 + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|x| date(*x))
            .y_desc("firings")
            .draw()
            .map_err(err)?;
        for (rule, points) in series {
            let i = rules.iter().position(|r| r == rule).unwrap_or(0) + 1;
            let c = color(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(err)?
                .label(rule.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// ROC curves with the chance diagonal; each curve labelled with its AUC.
pub fn roc(curves: &[(String, &[(f64, f64)])]) -> ChartResult {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (440, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("ROC curve", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate")
            .y_desc("true-positive rate")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.3).stroke_width(1),
            ))
            .map_err(err)?;
        for (i, (label, points)) in curves.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Calibration: per score bin, the mean score (as a share) beside the win
/// rate; bin sizes written over the bars.
pub fn calibration(bins: &[CalibrationBin]) -> ChartResult {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (620, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Calibration: win rate by score bin", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..100f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("score at decision time")
            .y_desc("share")
            .draw()
            .map_err(err)?;
        let mean = color(0);
        let won = color(2);
        for bin in bins.iter().filter(|b| b.accounts > 0) {
            let mid = (bin.from + bin.to) / 2.0;
            if let Some(m) = bin.mean_score {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(bin.from + 1.0, 0.0), (mid, m / 100.0)],
                        mean.mix(0.6).filled(),
                    )))
                    .map_err(err)?;
            }
            if let Some(rate) = bin.win_rate {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(mid, 0.0), (bin.to - 1.0, rate)],
                        won.filled(),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("n={}", bin.accounts),
                        (
                            bin.from + 1.0,
                            (rate.max(bin.mean_score.unwrap_or(0.0) / 100.0) + 0.04).min(0.97),
                        ),
                        ("sans-serif", 11),
                    )))
                    .map_err(err)?;
            }
        }
        legend_box(&mut chart, "mean score / 100", mean.mix(0.6).filled())?;
        legend_box(&mut chart, "win rate", won.filled())?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Current and learned weight of each signal, side by side.
pub fn weights(view: &TuneView) -> ChartResult {
    let fit = &view.fit;
    let n = fit.signals.len().max(1);
    let height = 80 + 26 * n as u32;
    let lo = fit
        .current
        .iter()
        .chain(&fit.learned)
        .fold(0f64, |a, &b| a.min(b));
    let hi = fit
        .current
        .iter()
        .chain(&fit.learned)
        .fold(0f64, |a, &b| a.max(b));
    let pad = ((hi - lo) * 0.08).max(0.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Signal weights: current and learned", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(190)
            .build_cartesian_2d(lo - pad..hi + pad, 0f64..n as f64)
            .map_err(err)?;
        let names = fit.signals.clone();
        chart
            .configure_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                let i = y.floor() as usize;
                if (y - i as f64 - 0.5).abs() < 0.26 && i < names.len() {
                    names[names.len() - 1 - i].clone()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .x_desc("weight")
            .draw()
            .map_err(err)?;
        let (cur, new) = (color(0), color(3));
        for (i, (c, l)) in fit.current.iter().zip(&fit.learned).enumerate() {
            let y = (n - 1 - i) as f64;
            chart
                .draw_series([
                    Rectangle::new([(0.0, y + 0.52), (*c, y + 0.88)], cur.filled()),
                    Rectangle::new([(0.0, y + 0.12), (*l, y + 0.48)], new.filled()),
                ])
                .map_err(err)?;
        }
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (0.0, n as f64)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        legend_box(&mut chart, "current", cur.filled())?;
        legend_box(&mut chart, "learned", new.filled())?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
