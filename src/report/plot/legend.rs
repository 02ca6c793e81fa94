//! The legend column beside a plot: its width from the texts, a swatch and
//! a text per series, long texts shortened in the middle.

use plotters::backend::SVGBackend;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, FONT};

/// How a legend row shows its series.
pub(super) enum Swatch {
    Line { color: RGBColor, dashed: bool },
    Fill { color: RGBColor, shade: f64 },
}

const LEGEND_FONT: u32 = 15;
const LEGEND_ROW: i32 = 24;

pub(super) type Areas<'a> = (
    DrawingArea<SVGBackend<'a>, Shift>,
    DrawingArea<SVGBackend<'a>, Shift>,
);

/// Splits off a right-hand column wide enough for the legend texts (at most
/// 40% of the chart; longer texts are shortened in the middle).
pub(super) fn split_for_legend<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    legend: &[(String, Swatch)],
) -> std::result::Result<Areas<'a>, Box<dyn std::error::Error>> {
    let style = TextStyle::from((FONT, LEGEND_FONT).into_font());
    let mut widest = 0u32;
    for (t, _) in legend {
        widest = widest.max(root.estimate_text_size(&shorten(t), &style)?.0);
    }
    let (w, _) = root.dim_in_pixel();
    let col = (widest + 60).clamp(140, w * 2 / 5);
    Ok(root.split_horizontally(w.saturating_sub(col)))
}

pub(super) fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    legend: &[(String, Swatch)],
) -> DrawResult {
    let style = TextStyle::from((FONT, LEGEND_FONT).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (text, swatch)) in legend.iter().enumerate() {
        let y = 40 + i as i32 * LEGEND_ROW;
        match swatch {
            Swatch::Line { color, dashed } => {
                let s = color.stroke_width(3);
                if *dashed {
                    area.draw(&PathElement::new(vec![(8, y), (18, y)], s))?;
                    area.draw(&PathElement::new(vec![(24, y), (34, y)], s))?;
                } else {
                    area.draw(&PathElement::new(vec![(8, y), (34, y)], s))?;
                }
            }
            Swatch::Fill { color, shade } => {
                let fill = color.mix(*shade).filled();
                area.draw(&Rectangle::new([(8, y - 7), (34, y + 7)], fill))?;
                area.draw(&Rectangle::new(
                    [(8, y - 7), (34, y + 7)],
                    BLACK.mix(0.3).stroke_width(1),
                ))?;
            }
        }
        area.draw(&Text::new(shorten(text), (42, y), style.clone()))?;
    }
    Ok(())
}

/// Long legend texts keep their start and end: `run-label/group` stays
/// recognisable by both.
fn shorten(text: &str) -> String {
    const MAX: usize = 44;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= MAX {
        return text.to_string();
    }
    let head: String = chars[..MAX / 2 - 1].iter().collect();
    let tail: String = chars[chars.len() - MAX / 2..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_keep_both_ends() {
        let s = shorten(&format!("{}/websocket", "x".repeat(60)));
        assert!(s.ends_with("/websocket") && s.starts_with("xx") && s.contains('…'));
    }
}
