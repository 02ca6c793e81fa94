//! The column registry: every `summary.csv` column once, with its unit, the
//! groups it applies to, its meaning and how to read it from a row. The
//! gate (thresholds, comparisons), the HTML tables, `--repeat` medians,
//! `merge` and the README's column table all read this list; it is built
//! from the row's own declaration in [`super::summary`], so the file's
//! header and the registry cannot disagree.

use std::sync::OnceLock;

use super::record::{Access, Field};
use super::summary::SummaryRow;
use crate::fault::ErrorKind;
use crate::transport::TransportKind;

/// Which groups a column can have a value for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every group.
    All,
    /// Subscribers of the event stream (not request, echo or ws-rpc load).
    Subscribers,
    /// Kinds that count messages which are not data: subscribers, and
    /// ws-rpc (server pushes between replies).
    Messages,
    /// Kinds whose sessions are confirmed after connecting (all but
    /// plain request load).
    Sessions,
    /// Kinds that make one request per exchange (pollers, request, echo).
    RequestBased,
    /// Request and echo load: exchanges without a publisher.
    Exchanges,
    /// Exchanges answered with an HTTP status: request load and pollers
    /// (and echo, whose upgrade is one).
    Status,
    /// Interval and long pollers.
    Pollers,
    /// Long pollers.
    LongPollers,
    /// Kinds whose sessions may upgrade from polling to a WebSocket.
    Upgraders,
}

impl Applies {
    /// True when a group of `kind` can have a value in the column.
    pub fn to(self, kind: TransportKind) -> bool {
        match self {
            Applies::All => true,
            Applies::Subscribers => kind.subscribes(),
            Applies::Messages => kind.info().counts_messages,
            Applies::Sessions => kind.confirms_sessions(),
            Applies::RequestBased => kind.is_request_based(),
            Applies::Exchanges => !kind.subscribes(),
            Applies::Status => !kind.subscribes() || kind.is_poller(),
            Applies::Pollers => kind.is_poller(),
            Applies::LongPollers => kind.is_long_poller(),
            Applies::Upgraders => kind.info().upgrades,
        }
    }

    /// Words for the README.
    pub fn describe(self) -> &'static str {
        match self {
            Applies::All => "all",
            Applies::Subscribers => "subscribers",
            Applies::Messages => "subscribers, ws-rpc",
            Applies::Sessions => "subscribers, echo, ws-rpc",
            Applies::RequestBased => "pollers, request, echo, socketio, ws-rpc",
            Applies::Exchanges => "request, echo, ws-rpc",
            Applies::Status => "pollers, request, echo, ws-rpc",
            Applies::Pollers => "pollers",
            Applies::LongPollers => "long-poll",
            Applies::Upgraders => "socketio",
        }
    }
}

/// A column's documentation, attached where the row is declared.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// Unit (`ms`, `s`, `MB`, `count`, ...; empty for text).
    pub unit: &'static str,
    /// Groups it applies to.
    pub applies: Applies,
    /// What it means (Markdown).
    pub meaning: &'static str,
    /// Header in the HTML report's main table (`None`: full table only).
    pub main: Option<&'static str>,
}

/// A column's documentation.
pub const fn col(unit: &'static str, applies: Applies, meaning: &'static str) -> Info {
    Info {
        unit,
        applies,
        meaning,
        main: None,
    }
}

impl Info {
    /// Also shown in the HTML report's main table, headed `label`.
    pub const fn main(mut self, label: &'static str) -> Info {
        self.main = Some(label);
        self
    }
}

/// One `summary.csv` column.
pub struct Column(Field<SummaryRow, Info>);

/// Every column, in file order.
pub fn all() -> &'static [Column] {
    static ALL: OnceLock<Vec<Column>> = OnceLock::new();
    ALL.get_or_init(|| SummaryRow::fields().into_iter().map(Column).collect())
}

/// The numeric columns: every one a threshold, comparison or median may name.
pub fn numeric() -> impl Iterator<Item = &'static Column> {
    all().iter().filter(|c| c.is_numeric())
}

/// The column named `name`.
pub fn find(name: &str) -> Option<&'static Column> {
    all().iter().find(|c| c.name() == name)
}

/// The numeric column named `name`.
pub fn find_numeric(name: &str) -> Option<&'static Column> {
    find(name).filter(|c| c.is_numeric())
}

impl Column {
    /// Name (the CSV header).
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    fn info(&self) -> Info {
        match (&self.0.info, &self.0.access) {
            (Some(i), _) => *i,
            (None, Access::Error(_)) => col("count", Applies::All, ""),
            (None, _) => col("", Applies::All, ""),
        }
    }

    /// Unit.
    pub fn unit(&self) -> &'static str {
        self.info().unit
    }

    /// Meaning (Markdown).
    pub fn meaning(&self) -> String {
        match self.0.access {
            Access::Error(k) => {
                format!("failed exchanges of kind `{}`: {}", k.label(), k.meaning())
            }
            _ => self.info().meaning.to_string(),
        }
    }

    /// Which groups it applies to.
    pub fn applies(&self) -> Applies {
        self.info().applies
    }

    /// True when a group with transport label `transport` can have a value
    /// (an unknown label, from a newer file, counts as yes).
    pub fn applies_to(&self, transport: &str) -> bool {
        TransportKind::from_label(transport).is_none_or(|k| self.applies().to(k))
    }

    /// Its header in the HTML report's main table.
    pub fn main_label(&self) -> Option<&'static str> {
        self.info().main
    }

    /// The error kind it counts, for an `errors_<kind>` column.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self.0.access {
            Access::Error(k) => Some(k),
            _ => None,
        }
    }

    /// The value in `row` (`None`: empty cell, or a text column).
    pub fn value(&self, row: &SummaryRow) -> Option<f64> {
        self.0.number(row)
    }

    /// Sets the cell of `row` (rounded for integer columns).
    pub fn set(&self, row: &mut SummaryRow, v: f64) {
        self.0.set_number(row, v)
    }

    /// True for numeric columns.
    pub fn is_numeric(&self) -> bool {
        self.0.is_numeric()
    }

    /// True for integer columns.
    pub fn is_integral(&self) -> bool {
        self.0.is_integral()
    }
}

/// The README's column table, generated.
pub fn markdown_table() -> String {
    let mut s = String::from("| column | unit | applies to | meaning |\n|---|---|---|---|\n");
    for c in all() {
        let unit = if c.unit().is_empty() {
            "text"
        } else {
            c.unit()
        };
        s.push_str(&format!(
            "| `{}` | {unit} | {} | {} |\n",
            c.name(),
            c.applies().describe(),
            c.meaning()
        ));
    }
    s
}
