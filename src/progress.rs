//! Live progress: indicatif bars on a terminal (one per running group:
//! connections, deliveries, current p99), a plain status line every few
//! seconds otherwise (CI logs), nothing with `--quiet`. Fed once per
//! interval by the run loop, never per request.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Plain status lines on stderr.
    Plain,
    /// Nothing.
    Quiet,
}

/// One group's live figures.
#[derive(Debug, Clone)]
pub struct Status {
    /// Group label.
    pub name: String,
    /// Seconds into the phase.
    pub elapsed_s: u64,
    /// Planned phase length, seconds.
    pub phase_s: u64,
    /// Open connections.
    pub connections: i64,
    /// Clients in the group.
    pub clients: u64,
    /// Deliveries so far.
    pub deliveries: u64,
    /// Deliveries per second in the last interval.
    pub rate: f64,
    /// p99 delivery latency of the last interval, ms.
    pub p99_ms: Option<f64>,
    /// Errors so far.
    pub errors: u64,
}

impl Status {
    fn line(&self) -> String {
        format!(
            "conn {}/{} | deliveries {} ({:.0}/s) | p99 {} | errors {}",
            self.connections,
            self.clients,
            thousands(self.deliveries),
            self.rate,
            self.p99_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
            self.errors
        )
    }
}

/// The progress display of one run.
pub struct Progress {
    bars: Option<(MultiProgress, Vec<(String, ProgressBar)>)>,
    plain: bool,
    last_plain: Instant,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// A display of the chosen kind.
    pub fn new(display: Display) -> Self {
        let tty = std::io::stderr().is_terminal();
        let (bars, plain) = match display {
            Display::Quiet => (None, false),
            Display::Plain => (None, true),
            Display::Auto if tty => (
                Some((
                    MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    Vec::new(),
                )),
                false,
            ),
            Display::Auto => (None, true),
        };
        Progress {
            bars,
            plain,
            last_plain: Instant::now(),
        }
    }

    /// Prints a line (above the bars on a terminal).
    pub fn say(&self, line: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None if self.plain => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            None => {}
        }
    }

    /// Starts bars for a phase's groups.
    pub fn phase(&mut self, title: &str, groups: &[(String, u64)]) {
        self.say(title);
        if let Some((multi, bars)) = &mut self.bars {
            for (_, b) in bars.drain(..) {
                b.finish();
            }
            let style =
                ProgressStyle::with_template("{prefix:>12} [{bar:24}] {pos:>3}/{len}s {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            for (name, secs) in groups {
                let bar = multi.add(ProgressBar::new(*secs).with_style(style.clone()));
                bar.set_prefix(name.clone());
                bars.push((name.clone(), bar));
            }
        }
    }

    /// Updates the display with one interval's figures for every running group.
    pub fn update(&mut self, statuses: &[Status]) {
        if let Some((_, bars)) = &self.bars {
            for s in statuses {
                if let Some((_, bar)) = bars.iter().find(|(n, _)| *n == s.name) {
                    bar.set_length(s.phase_s);
                    bar.set_position(s.elapsed_s.min(s.phase_s));
                    bar.set_message(s.line());
                }
            }
        } else if self.plain && self.last_plain.elapsed() >= PLAIN_EVERY {
            self.last_plain = Instant::now();
            let mut err = std::io::stderr().lock();
            for s in statuses {
                let _ = writeln!(
                    err,
                    "[{:>4}s/{}s] {}: {}",
                    s.elapsed_s,
                    s.phase_s,
                    s.name,
                    s.line()
                );
            }
        }
    }

    /// Clears the bars.
    pub fn finish(&mut self) {
        if let Some((multi, bars)) = &mut self.bars {
            for (_, b) in bars.drain(..) {
                b.finish();
            }
            let _ = multi.clear();
        }
    }
}

/// `12345678` → `12,345,678`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(12345678), "12,345,678");
    }
}
