//! Chart axes: linear, log decades and the HdrHistogram "nines" percentile
//! scale. Log and nines axes are drawn on a linear coordinate holding the
//! transformed value, with our own tick positions and labels: one concrete
//! coordinate type for every chart, and tick labels that read `99.9%` or
//! `100` instead of plotters' defaults.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

use super::format;

/// Highest percentile drawn on a nines axis: 99.999%.
pub const MAX_NINES: f64 = 5.0;

/// Maps a percentile (0..1) to the nines axis: `log10(1 / (1 - q))`, so 90%
/// is 1, 99% is 2, 99.9% is 3; capped at [`MAX_NINES`].
pub fn nines_x(q: f64) -> f64 {
    if q.is_nan() || q <= 0.0 {
        0.0
    } else if q >= 1.0 {
        MAX_NINES
    } else {
        (1.0 / (1.0 - q)).log10().clamp(0.0, MAX_NINES)
    }
}

/// The percentile (0..1) at nines-axis position `x`.
pub fn nines_q(x: f64) -> f64 {
    1.0 - 10f64.powf(-x)
}

/// Tick label of a nines-axis position: 0 → `0%`, 2 → `99%`, 5 → `99.999%`.
pub fn nines_label(x: f64) -> String {
    let decimals = (x.round() as i64 - 2).max(0) as usize;
    format!("{:.*}%", decimals, nines_q(x) * 100.0)
}

/// How an axis maps data values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// From zero up.
    Linear,
    /// Decades; values at or below zero sit on the lowest decade.
    Log,
    /// Values already on the nines scale (see [`nines_x`]).
    Nines,
}

/// One axis: its title (with units) and the data range it must show.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Axis title, with units.
    pub desc: String,
    /// Mapping.
    pub scale: Scale,
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// Ticks chosen by the caller (plot coordinate, label) instead of
    /// computed ones; empty for computed ticks.
    pub(super) fixed: Vec<(f64, String)>,
}

impl Axis {
    /// An axis showing `values` (data units) on `scale`.
    pub fn new(desc: impl Into<String>, scale: Scale, values: impl Iterator<Item = f64>) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            if scale == Scale::Log && v <= 0.0 {
                continue;
            }
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let (lo, hi) = match scale {
            Scale::Nines => (0.0, MAX_NINES),
            Scale::Linear => {
                let hi = if hi.is_finite() && hi > 0.0 {
                    hi * 1.08
                } else {
                    1.0
                };
                (0.0, hi)
            }
            Scale::Log => {
                if !lo.is_finite() {
                    (0.0, 1.0)
                } else {
                    let lo = lo.log10().floor();
                    // Headroom: a line at exactly 1,000 ms must not sit on the frame.
                    let hi = (hi * 1.1).log10().ceil().max(lo + 1.0);
                    (lo, hi)
                }
            }
        };
        Axis {
            desc: desc.into(),
            scale,
            lo,
            hi,
            fixed: Vec::new(),
        }
    }

    /// Labelled ticks exactly at these data values (e.g. the values of a
    /// sweep, labelled as written), instead of computed ones.
    pub fn with_ticks(mut self, ticks: impl IntoIterator<Item = (f64, String)>) -> Axis {
        self.fixed = ticks.into_iter().map(|(v, l)| (self.map(v), l)).collect();
        self
    }

    /// Named positions 0, 1, 2, … with half a step of margin: for values
    /// that are not numbers.
    pub fn categories(desc: impl Into<String>, names: &[String]) -> Axis {
        Axis {
            desc: desc.into(),
            scale: Scale::Linear,
            lo: -0.5,
            hi: names.len().max(1) as f64 - 0.5,
            fixed: names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64, n.clone()))
                .collect(),
        }
    }

    /// Linear unless the positive values span more than `ratio` (then
    /// log): one transport at 1 ms and another at 1 s both stay readable.
    pub fn auto(desc: &str, values: &[f64], ratio: f64) -> Axis {
        let pos = values.iter().copied().filter(|v| *v > 0.0 && v.is_finite());
        let (lo, hi) = pos.fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        if hi > 0.0 && hi / lo > ratio {
            Axis::new(
                format!("{desc}, log scale"),
                Scale::Log,
                values.iter().copied(),
            )
        } else {
            Axis::new(desc, Scale::Linear, values.iter().copied())
        }
    }

    /// Data value → plot coordinate.
    pub fn map(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear | Scale::Nines => v.clamp(self.lo, self.hi),
            Scale::Log if v > 0.0 => v.log10().clamp(self.lo, self.hi),
            Scale::Log => self.lo,
        }
    }

    #[cfg(test)]
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }

    pub(super) fn coord(&self) -> Ticked {
        let (bold, light) = self.ticks();
        Ticked {
            lo: self.lo,
            hi: self.hi,
            bold,
            light,
        }
    }

    /// Labelled ticks and light grid lines, in plot coordinates.
    pub(super) fn ticks(&self) -> (Vec<f64>, Vec<f64>) {
        if !self.fixed.is_empty() {
            return (self.fixed.iter().map(|t| t.0).collect(), Vec::new());
        }
        match self.scale {
            Scale::Nines => ((0..=MAX_NINES as i32).map(f64::from).collect(), Vec::new()),
            Scale::Log => {
                let decades: Vec<f64> = (self.lo as i32..=self.hi as i32).map(f64::from).collect();
                let light = decades
                    .iter()
                    .flat_map(|d| (2..10).map(move |m| d + f64::from(m).log10()))
                    .filter(|v| *v < self.hi)
                    .collect();
                (decades, light)
            }
            Scale::Linear => {
                let step = nice_step(self.hi - self.lo);
                let n = ((self.hi - self.lo) / step).floor() as i64;
                let bold = (0..=n).map(|i| self.lo + i as f64 * step).collect();
                let light = (0..2 * n + 2)
                    .map(|i| self.lo + i as f64 * step / 2.0)
                    .filter(|v| *v <= self.hi)
                    .collect();
                (bold, light)
            }
        }
    }

    pub(super) fn label(&self, v: f64) -> String {
        let nearest = self
            .fixed
            .iter()
            .min_by(|a, b| (a.0 - v).abs().total_cmp(&(b.0 - v).abs()));
        if let Some((_, l)) = nearest {
            return l.clone();
        }
        match self.scale {
            Scale::Nines => nines_label(v),
            // Decades print exactly: 0.01, 0.1, 1, 10, 1,000.
            Scale::Log => format::thousands(10f64.powf(v), (-v.round()).max(0.0) as usize),
            Scale::Linear => {
                // As many decimals as the tick step needs: 0, 20, 40 or 0.5, 1.0.
                let step = nice_step(self.hi - self.lo);
                format::thousands(v, (-step.log10().floor()).max(0.0) as usize)
            }
        }
    }
}

/// A linear plotters coordinate with our own tick positions. (plotters'
/// `WithKeyPoints` over `f64` loses the mesh's label formatting.)
pub(super) struct Ticked {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) bold: Vec<f64>,
    pub(super) light: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let t = if span > 0.0 {
            (v - self.lo) / span
        } else {
            0.0
        };
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// A step of 1, 2 or 5 × 10^k giving about six ticks over `span`.
fn nice_step(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_scale_maps_percentiles_to_decades() {
        assert_eq!(nines_x(0.0), 0.0);
        assert!((nines_x(0.9) - 1.0).abs() < 1e-9);
        assert!((nines_x(0.99) - 2.0).abs() < 1e-9);
        assert!((nines_x(0.999) - 3.0).abs() < 1e-9);
        assert!((nines_x(0.99999) - 5.0).abs() < 1e-6);
        assert_eq!(nines_x(1.0), MAX_NINES);
        assert_eq!(nines_x(0.9999999), MAX_NINES);
        assert_eq!(nines_x(f64::NAN), 0.0);
        for x in [0.0, 0.5, 1.0, 2.5, 4.0] {
            assert!((nines_x(nines_q(x)) - x).abs() < 1e-9, "{x}");
        }
    }

    #[test]
    fn nines_ticks_read_as_percentiles() {
        let labels: Vec<String> = (0..=5).map(|x| nines_label(f64::from(x))).collect();
        assert_eq!(
            labels,
            ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].map(String::from)
        );
    }

    #[test]
    fn log_axis_spans_whole_decades() {
        let a = Axis::new("ms", Scale::Log, [0.3, 0.0, 250.0].into_iter());
        assert_eq!(a.range(), -1.0..3.0);
        assert_eq!(a.map(0.0), -1.0);
        assert_eq!(a.label(2.0), "100");
        assert_eq!(a.label(-1.0), "0.1");
        assert_eq!(a.label(3.0), "1,000");
        let auto = Axis::auto("ms", &[1.0, 2.0, 50.0], 100.0);
        assert_eq!(auto.scale, Scale::Linear);
        let auto = Axis::auto("ms", &[0.5, 900.0], 100.0);
        assert_eq!(auto.scale, Scale::Log);
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(7.0), 2.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
