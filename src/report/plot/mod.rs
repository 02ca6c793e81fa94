//! Drawing with plotters onto SVG strings: line charts with shaded spans
//! and labelled marks, bar panels, and a legend column beside the plot so
//! long series names never cover data. What to draw is decided in
//! [`super::charts`]; axes are [`super::axis`]. Nothing here knows about
//! runs.

mod bar;
mod legend;

use std::sync::OnceLock;

use plotters::backend::SVGBackend;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::Axis;
use crate::error::{Error, Result};

pub use bar::bar_chart;
use legend::{draw_legend, split_for_legend, Swatch};

/// Chart size in pixels: readable on a slide.
pub const SIZE: (u32, u32) = (1000, 600);

const FONT: &str = "sans-serif";
/// Secondary text: value labels, "n/a", "no samples".
const SOFT_TEXT: RGBColor = RGBColor(0x44, 0x44, 0x44);
/// Bundled so text can be measured without system fonts (plotters' own
/// font loading needs fontconfig); the SVG viewer renders with its own font.
static FONT_DATA: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Tableau 10: distinct on white and for the common colour-vision
/// deficiencies.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The `i`-th series colour.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Registers the bundled font with plotters, once per process: plotters
/// keeps fonts in a global table and re-registering per chart only churns it.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_DATA).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Chart {
            chart: "(all)".into(),
            message: "the bundled font cannot be loaded".into(),
        })
    }
}

/// One line; `None` points break it.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// A dot at every point (few points, each a measurement).
    pub markers: bool,
    /// (x, y) in data units.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A shaded span of x, with its legend text.
#[derive(Debug, Clone)]
pub struct Band {
    /// Start, data units.
    pub from: f64,
    /// End, data units.
    pub to: f64,
    /// Darkness, 0..1.
    pub shade: f64,
    /// Legend text (entries with equal text are shown once).
    pub label: String,
}

/// A labelled vertical line.
#[derive(Debug, Clone)]
pub struct Mark {
    /// Position, data units.
    pub at: f64,
    /// Text beside its top.
    pub text: String,
}

/// A complete line chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Title.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Lines.
    pub lines: Vec<Line>,
    /// Shaded spans.
    pub bands: Vec<Band>,
    /// Vertical marks.
    pub marks: Vec<Mark>,
    /// Shown in the middle when there is no line, e.g. "no samples".
    pub empty_text: String,
}

/// Up to four line charts in a 2 × 2 grid sharing one legend; each
/// chart's title is its panel caption.
#[derive(Debug, Clone)]
pub struct LinePanels {
    /// Title.
    pub title: String,
    /// Panels.
    pub panels: Vec<LineChart>,
}

/// One bar; `None` draws "n/a" instead.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Height.
    pub value: Option<f64>,
}

/// One bar panel of a [`BarChart`].
#[derive(Debug, Clone)]
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// Vertical axis title, with units.
    pub y_desc: String,
    /// Bars.
    pub bars: Vec<Bar>,
    /// Shown at the top of the panel, e.g. why bars read n/a.
    pub note: String,
}

/// Bar panels in two rows sharing one legend.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Title.
    pub title: String,
    /// Panels.
    pub panels: Vec<Panel>,
    /// Legend: (text, colour).
    pub legend: Vec<(String, RGBColor)>,
}

fn chart_err(chart: &str) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Chart {
        chart: chart.to_string(),
        message,
    }
}

/// Draws a line chart; returns the SVG text.
pub fn line_chart(c: &LineChart) -> Result<String> {
    ensure_font()?;
    let err = chart_err(&c.title);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_line_chart(&root, c).map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw_line_chart(root: &DrawingArea<SVGBackend<'_>, Shift>, c: &LineChart) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(&c.title, (FONT, 28))?;
    let mut legend: Vec<(String, Swatch)> = c
        .lines
        .iter()
        .map(|l| {
            let s = Swatch::Line {
                color: l.color,
                dashed: l.dashed,
            };
            (l.label.clone(), s)
        })
        .collect();
    for b in &c.bands {
        if !legend.iter().any(|(t, _)| *t == b.label) {
            let s = Swatch::Fill {
                color: BLACK,
                shade: b.shade,
            };
            legend.push((b.label.clone(), s));
        }
    }
    let (plot, legend_area) = split_for_legend(&root, &legend)?;
    draw_plot(&plot, c, None)?;
    draw_legend(&legend_area, &legend)?;
    Ok(())
}

/// Draws a line chart's lines, bands and marks on its axes into `area`;
/// with `caption`, as a small captioned panel.
fn draw_plot(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &LineChart,
    caption: Option<&str>,
) -> DrawResult {
    let (label_size, desc_size) = if caption.is_some() {
        (13, 14)
    } else {
        (16, 18)
    };
    let mut builder = ChartBuilder::on(area);
    if let Some(t) = caption {
        builder.caption(t, (FONT, 17));
    }
    let mut chart = builder
        .margin(if caption.is_some() { 8 } else { 12 })
        .x_label_area_size(if caption.is_some() { 45 } else { 60 })
        .y_label_area_size(if caption.is_some() { 70 } else { 85 })
        .build_cartesian_2d(c.x.coord(), c.y.coord())?;
    let (xfmt, yfmt) = (|v: &f64| c.x.label(*v), |v: &f64| c.y.label(*v));
    chart
        .configure_mesh()
        .x_desc(&c.x.desc)
        .y_desc(&c.y.desc)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .label_style((FONT, label_size))
        .axis_desc_style((FONT, desc_size))
        .bold_line_style(BLACK.mix(0.15))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    let (y0, y1) = (c.y.lo, c.y.hi);
    for b in &c.bands {
        let (x0, x1) = (c.x.map(b.from), c.x.map(b.to));
        if x1 > x0 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x1, y1)],
                BLACK.mix(b.shade).filled(),
            )))?;
        }
    }
    for m in &c.marks {
        let x = c.x.map(m.at);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, y0), (x, y1)],
            BLACK.mix(0.45).stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, y1)) + Text::new(m.text.clone(), (4, 4), (FONT, 14)),
        ))?;
    }
    for l in &c.lines {
        let style = l.color.stroke_width(2);
        for seg in segments(&l.points, &c.x, &c.y) {
            if l.markers {
                let dots = seg.iter().map(|p| Circle::new(*p, 4, l.color.filled()));
                chart.draw_series(dots)?;
            }
            if seg.len() == 1 {
                chart.draw_series(std::iter::once(Circle::new(seg[0], 3, l.color.filled())))?;
            } else if l.dashed {
                chart.draw_series(DashedLineSeries::new(seg, 7, 5, style))?;
            } else {
                chart.draw_series(LineSeries::new(seg, style))?;
            }
        }
    }
    if c.lines.is_empty() {
        let mid = ((c.x.lo + c.x.hi) / 2.0, (y0 + y1) / 2.0);
        let style = TextStyle::from((FONT, 22).into_font())
            .color(&SOFT_TEXT)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart.draw_series(std::iter::once(Text::new(c.empty_text.clone(), mid, style)))?;
    }
    Ok(())
}

/// Runs of consecutive present points, mapped to plot coordinates.
fn segments(points: &[(f64, Option<f64>)], x: &Axis, y: &Axis) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for (px, py) in points {
        match py {
            Some(v) if v.is_finite() && px.is_finite() => cur.push((x.map(*px), y.map(*v))),
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Draws up to four line panels; returns the SVG text.
pub fn line_panels(c: &LinePanels) -> Result<String> {
    ensure_font()?;
    let err = chart_err(&c.title);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_line_panels(&root, c).map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_line_panels(root: &DrawingArea<SVGBackend<'_>, Shift>, c: &LinePanels) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(&c.title, (FONT, 28))?;
    // Panels show the same series: one legend entry per label.
    let mut legend: Vec<(String, Swatch)> = Vec::new();
    for l in c.panels.iter().flat_map(|p| &p.lines) {
        if !legend.iter().any(|(t, _)| *t == l.label) {
            let s = Swatch::Line {
                color: l.color,
                dashed: l.dashed,
            };
            legend.push((l.label.clone(), s));
        }
    }
    let (grid, legend_area) = split_for_legend(&root, &legend)?;
    for (area, p) in grid.split_evenly((2, 2)).iter().zip(&c.panels) {
        draw_plot(area, p, Some(&p.title))?;
    }
    draw_legend(&legend_area, &legend)?;
    Ok(())
}
