//! Grouped bar charts with whiskers, drawn with plotters' SVG backend.
//!
//! A chart is one or more panels stacked vertically. In a panel, each group
//! (a workload, a load, a latency statistic) has one bar per series (EEVDF,
//! then each configuration): the bar is the series' centre (a mean over
//! its rounds and boots), the whisker its min–max, so the noise of the
//! emulator is visible beside the difference. A dashed line marks a
//! reference, such as 1.0 for a ratio to EEVDF.
//!
//! Text is written as SVG `<text>` elements in a generic font family and
//! laid out with plotters' built-in estimate (no `ttf` feature): no font
//! file, fontconfig or freetype is needed to draw, and the viewer renders
//! the text with its own fonts.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::results::Spread;

/// One panel: groups along x, a bar per series in each.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub groups: Vec<String>,
    pub series: Vec<Series>,
    /// A horizontal dashed line (e.g. 1.0: as fast as EEVDF).
    pub reference: Option<f64>,
}

/// A series: one value per group of its panel (`None`: not measured).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub values: Vec<Option<Spread>>,
}

const PANEL_HEIGHT: u32 = 420;
const WIDTH: u32 = 1000;
const FONT: &str = "sans-serif";

/// Configurations' colours, in order: dark enough on white to tell apart
/// (plotters' palettes start with a pale yellow among the first few).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// EEVDF's bars are grey in every chart, so the baseline looks the same
/// everywhere; configurations take the colours in turn.
fn color(label: &str, configs_before: usize) -> RGBColor {
    if label == "EEVDF" {
        return RGBColor(150, 150, 150);
    }
    COLORS[configs_before % COLORS.len()]
}

/// Draws `panels` under `title` into the SVG file `path`.
pub fn render(path: &Path, title: &str, panels: &[Panel]) -> Result<()> {
    let height = 40 + PANEL_HEIGHT * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    draw(&root, title, panels).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, title: &str, panels: &[Panel]) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 22))?;
    if panels.is_empty() {
        return Ok(());
    }
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

fn draw_panel(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, panel: &Panel) -> DrawResult {
    let ngroups = panel.groups.len().max(1);
    let nseries = panel.series.len().max(1);
    let top = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .map(|v| v.max.max(v.center))
        .chain(panel.reference)
        .fold(0.0_f64, f64::max);
    // Headroom above the tallest whisker for the legend, which sits inside
    // the plot's upper right corner.
    let legend_rows = panel.series.len() as f64;
    let y_max = if top > 0.0 {
        top * (1.15 + 0.07 * legend_rows)
    } else {
        1.0
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..ngroups as f64, 0.0..y_max)?;
    // The x axis is continuous (bars sit at fractions of a group); group
    // names are drawn under each group's centre below, not as tick labels.
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(panel.y_label.as_str())
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let (bx, by) = area.get_base_pixel();
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, name) in panel.groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        area.draw_text(name, &style, (x - bx, y - by + 8))?;
    }

    // Each group's bars share at most 80% of its width, centred in it.
    let width = (0.8 / nseries as f64).min(0.2);
    let first = 0.5 - width * nseries as f64 / 2.0;
    let mut configs = 0;
    for (s, series) in panel.series.iter().enumerate() {
        let col = color(&series.label, configs);
        if series.label != "EEVDF" {
            configs += 1;
        }
        let bars = series.values.iter().enumerate().filter_map(|(g, v)| {
            let x0 = g as f64 + first + s as f64 * width;
            v.map(|v| Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v.center)], col.filled()))
        });
        chart
            .draw_series(bars)?
            .label(series.label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
        // Whiskers: min–max of the runs, with caps; a single run has none.
        let whiskers = series.values.iter().enumerate().filter_map(|(g, v)| {
            let v = v.filter(|v| v.n > 1)?;
            let x = g as f64 + first + (s as f64 + 0.45) * width;
            let cap = width * 0.2;
            Some(PathElement::new(
                vec![
                    (x - cap, v.max),
                    (x + cap, v.max),
                    (x, v.max),
                    (x, v.min),
                    (x - cap, v.min),
                    (x + cap, v.min),
                ],
                BLACK.stroke_width(1),
            ))
        });
        chart.draw_series(whiskers)?;
    }
    if let Some(r) = panel.reference {
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, r), (ngroups as f64, r)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
