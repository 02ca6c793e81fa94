//! Bar panels: up to four panels of labelled bars with a shared legend.

use plotters::backend::SVGBackend;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::legend::{draw_legend, split_for_legend, Swatch};
use super::{chart_err, ensure_font, BarChart, DrawResult, FONT, SIZE, SOFT_TEXT};
use crate::error::Result;
use crate::report::axis::{Axis, Scale, Ticked};
use crate::report::format;

/// Draws bar panels, two rows of them; returns the SVG text.
pub fn bar_chart(c: &BarChart) -> Result<String> {
    ensure_font()?;
    let err = chart_err(&c.title);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_bar_chart(&root, c).map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_bar_chart(root: &DrawingArea<SVGBackend<'_>, Shift>, c: &BarChart) -> DrawResult {
    root.fill(&WHITE)?;
    let root = root.titled(&c.title, (FONT, 28))?;
    let legend: Vec<(String, Swatch)> = c
        .legend
        .iter()
        .map(|(t, color)| {
            let s = Swatch::Fill {
                color: *color,
                shade: 1.0,
            };
            (t.clone(), s)
        })
        .collect();
    let (grid, legend_area) = split_for_legend(&root, &legend)?;
    let cols = c.panels.len().div_ceil(2).max(1);
    for (area, p) in grid.split_evenly((2, cols)).iter().zip(&c.panels) {
        let n = p.bars.len().max(1);
        let axis = Axis::new(
            p.y_desc.clone(),
            Scale::Linear,
            p.bars.iter().filter_map(|b| b.value.map(|v| v * 1.12)),
        );
        let centers: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
        let x = Ticked {
            lo: 0.0,
            hi: n as f64,
            bold: centers,
            light: Vec::new(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&p.title, (FONT, 17))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(x, axis.coord())?;
        // Bar labels that would run into each other are left to the
        // legend, which names every colour.
        let x_size = label_size(area.dim_in_pixel().0, n, &p.bars);
        let xfmt = |v: &f64| match x_size {
            Some(_) => p
                .bars
                .get(v.floor().max(0.0) as usize)
                .map_or(String::new(), |b| b.label.clone()),
            None => String::new(),
        };
        let yfmt = |v: &f64| axis.label(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .y_desc(&axis.desc)
            .label_style((FONT, 13))
            .x_label_style((FONT, x_size.unwrap_or(13)))
            .axis_desc_style((FONT, 14))
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        for (i, b) in p.bars.iter().enumerate() {
            let x = i as f64;
            let top_center = |v: f64| {
                let style = TextStyle::from((FONT, 13).into_font())
                    .color(&SOFT_TEXT)
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                (x + 0.5, axis.map(v), style)
            };
            match b.value {
                Some(v) => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.15, 0.0), (x + 0.85, axis.map(v))],
                        b.color.filled(),
                    )))?;
                    let (cx, cy, style) = top_center(v);
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((cx, cy)) + Text::new(format::num(v), (0, -3), style),
                    ))?;
                }
                None => {
                    let (cx, cy, style) = top_center(0.0);
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((cx, cy)) + Text::new("n/a", (0, -3), style),
                    ))?;
                }
            }
        }
        if !p.note.is_empty() {
            let style = TextStyle::from((FONT, 13).into_font())
                .color(&SOFT_TEXT)
                .pos(Pos::new(HPos::Center, VPos::Top));
            let top = (n as f64 / 2.0, axis.hi);
            chart.draw_series(std::iter::once(
                EmptyElement::at(top) + Text::new(p.note.clone(), (0, 6), style),
            ))?;
        }
    }
    draw_legend(&legend_area, &legend)?;
    Ok(())
}

/// The bar labels' font size in pixels: 13, or less down to 11 so that
/// the longest label fits a bar's share of a panel `width` pixels wide
/// (minus the y axis' 70 and the margins; about 0.55 em a character);
/// None when even 11 does not fit.
fn label_size(width: u32, n: usize, bars: &[super::Bar]) -> Option<u32> {
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let per_bar = (f64::from(width) - 86.0).max(1.0) / n as f64;
    let fits = (per_bar / (0.55 * longest as f64)).floor() as u32;
    (fits >= 11).then_some(fits.min(13))
}
