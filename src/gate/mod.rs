//! The CI gate: thresholds on summary columns (evaluated at the end of a run,
//! optionally while it runs), comparison of a run with a baseline, and the
//! formats CI systems read (JUnit XML, Markdown, CSV). Reads summaries only;
//! never runs anything.

pub mod baseline;
pub mod compare;
pub mod output;
pub mod threshold;

use crate::folder;
use crate::folder::summary::SummaryRow;

/// The numeric `summary.csv` columns a threshold or comparison may name:
/// every numeric column of the registry.
pub fn columns() -> Vec<&'static str> {
    folder::columns::numeric().map(|c| c.name()).collect()
}

/// False when `column` can never have a value for a group of `transport`
/// (e.g. `lost` for request load): a `*` threshold skips such groups.
pub fn applies(column: &str, transport: &str) -> bool {
    folder::columns::find(column).is_none_or(|c| c.applies_to(transport))
}

/// The value of a numeric column in a row (`None`: empty cell or unknown).
pub fn column_value(row: &SummaryRow, column: &str) -> Option<f64> {
    folder::columns::find(column)?.value(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_column_is_gateable() {
        let cols = columns();
        for c in [
            "storm_reconnect_p99_ms",
            "storm_all_receiving_s",
            "errors_tls",
            "lost",
        ] {
            assert!(cols.contains(&c), "{c}");
        }
        assert!(!cols.contains(&"group") && !cols.contains(&"transport"));
        assert!(applies("status_2xx", "poll") && applies("status_2xx", "long-poll"));
        assert!(!applies("status_2xx", "sse") && !applies("lost", "request"));
        // A `[thresholds]` key or an SLO term may name any of them.
        let groups = vec!["sse".to_string()];
        for c in &cols {
            let t = threshold::parse(&format!("*.{c}"), "< 2000", &groups);
            assert!(t.is_ok(), "{c}: {t:?}");
        }
    }
}
