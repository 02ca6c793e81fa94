//! The Prometheus text exposition format (version 0.0.4, as node_exporter
//! and client libraries serve it on `/metrics`), read line by line: `#`
//! lines (HELP, TYPE, comments) are skipped; a sample line is
//! `name{label="value",...} value [timestamp]`, label values escaped with
//! `\\`, `\"` and `\n`, values floats including `NaN`, `+Inf` and `-Inf`.
//! A malformed line is reported with its number and skipped: one bad line
//! of a third-party exporter must not hide the others. OpenMetrics' `# EOF`
//! and exemplars (`# {...}` after the value) are tolerated.

use crate::fault::quote;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole exposition; returns the samples and, for each malformed
/// line, `line N: why`.
pub fn parse(text: &str) -> (Vec<Sample>, Vec<String>) {
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(s) => samples.push(s),
            Err(why) => errors.push(format!("line {}: {why}", i + 1)),
        }
    }
    (samples, errors)
}

fn is_name_char(c: char, first: bool) -> bool {
    c == '_' || c == ':' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(line.len(), |(i, _)| i);
    if name_end == 0 {
        return Err(format!("no metric name in {}", quote(line)));
    }
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let k_end = rest
                .char_indices()
                .find(|&(i, c)| !is_name_char(c, i == 0) || c == ':')
                .map_or(rest.len(), |(i, _)| i);
            if k_end == 0 {
                return Err(format!("bad label name in {}", quote(line)));
            }
            let key = rest[..k_end].to_string();
            rest = rest[k_end..].trim_start();
            rest = rest
                .strip_prefix('=')
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('"'))
                .ok_or_else(|| format!("label {key} has no =\"value\" in {}", quote(line)))?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "unterminated value of label {key} in {}",
                            quote(line)
                        ))
                    }
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err(format!("unterminated value of label {key}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((key, value));
            rest = rest[end + 1..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected , or }} after label in {}", quote(line)));
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let v = fields
        .next()
        .ok_or_else(|| format!("no value in {}", quote(line)))?;
    let value = match v {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .map_err(|_| format!("value {} is not a number", quote(v)))?,
    };
    // A timestamp may follow (ignored: the scrape's own time is used), then
    // an OpenMetrics exemplar.
    if let Some(t) = fields.next().filter(|t| !t.starts_with('#')) {
        t.parse::<f64>()
            .map_err(|_| format!("timestamp {} is not a number", quote(t)))?;
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// True when `name` matches `pattern`: equal, or a glob whose `*`s stand
/// for any run of characters (`node_network_*_bytes_total`).
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_node_exporter_lines() {
        let text =
            "# HELP node_cpu_seconds_total Seconds.\n# TYPE node_cpu_seconds_total counter\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1.5e+03\n\
            node_memory_MemTotal_bytes 8.3e+09\n\
            process_open_fds 12 1700000000000\n\
            weird{a=\"x\\\"y\\\\z\\n\", b = \"\",} -Inf\n\
            nan_one NaN\n\
            # EOF\n";
        let (s, errors) = parse(text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].name, "node_cpu_seconds_total");
        assert_eq!(s[0].label("mode"), Some("idle"));
        assert_eq!(s[0].value, 1500.0);
        assert_eq!(s[2].value, 12.0);
        assert_eq!(
            s[3].labels,
            [
                ("a".into(), "x\"y\\z\n".into()),
                ("b".into(), String::new())
            ]
        );
        assert_eq!(s[3].value, f64::NEG_INFINITY);
        assert!(s[4].value.is_nan());
    }

    #[test]
    fn bad_lines_are_named_and_skipped() {
        let (s, errors) =
            parse("ok 1\n{a=\"b\"} 2\nx{a=\"b} 3\ny{a=b} 4\nz one\nw 1 later\nfine 2\n");
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["ok", "fine"]
        );
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("line 2:"), "{errors:?}");
        assert!(errors[3].contains("\"one\""), "{errors:?}");
    }

    proptest::proptest! {
        /// Any text: no panic, and every line is a sample, a skipped
        /// comment or blank, or a named error.
        #[test]
        fn any_text_parses_without_panicking(text in "(\\PC{0,40}\n){0,8}") {
            let (samples, errors) = parse(&text);
            let lines = text.lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#')).count();
            proptest::prop_assert_eq!(samples.len() + errors.len(), lines);
        }

        #[test]
        fn globs_never_panic(p in "[a-z*_]{0,12}", n in "[a-z_]{0,12}") {
            let _ = matches(&p, &n);
        }
    }

    #[test]
    fn globs_match_names() {
        assert!(matches(
            "node_network_*_bytes_total",
            "node_network_receive_bytes_total"
        ));
        assert!(matches("node_memory_*", "node_memory_MemAvailable_bytes"));
        assert!(matches("process_open_fds", "process_open_fds"));
        assert!(!matches("process_open_fds", "process_open_fds_x"));
        assert!(!matches(
            "node_network_*_bytes_total",
            "node_network_receive_packets_total"
        ));
        assert!(matches("*", "anything"));
        assert!(!matches("a*b*c", "ac"));
    }
}
