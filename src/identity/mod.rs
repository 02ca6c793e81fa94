//! Every client its own identity: who a client is ([`Who`]: its
//! scenario-wide number, group, shard, session counter, data row and
//! token), the templates that use it, and the data feeders and signed
//! tokens behind it. Everything is compiled when the plan is built (an
//! unknown placeholder or column is a scenario error naming the
//! template's `file:line:column`); at run time a client renders its own
//! URL, headers and request body per session only when they differ
//! between clients, so groups without personal templates cost nothing.
//!
//! A leaf: the transports use it, so it imports no planning, load,
//! metrics or report module (the plan reads the files: `plan::identity`;
//! sessions are personalized by `transport::personal`).

use std::sync::Arc;

use serde::Serialize;

pub mod data;
pub mod template;
pub mod token;

use template::Names;

/// Who one client is, as templates see it.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// Scenario-wide number: the group's first number plus the client's
    /// number in its group (the same in every shard).
    pub client: u64,
    /// Group name.
    pub group: Arc<str>,
    /// Shard index (0 unsharded).
    pub shard: u32,
    /// Connection attempts before the current one.
    pub session: u64,
    /// The client's data row, every feeder's columns in order.
    pub data: Arc<[Arc<str>]>,
    /// The client's signed token, once signed.
    pub token: Option<Arc<str>>,
}

/// The run's data feeders.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Identity {
    /// Feeders, in scenario order.
    pub feeders: Vec<data::Feeder>,
    /// Every feeder's columns, in order (what `{data.<column>}` names).
    #[serde(skip)]
    pub columns: Vec<String>,
}

impl Identity {
    /// The run's feeders.
    pub fn new(feeders: Vec<data::Feeder>) -> Identity {
        let columns = feeders.iter().flat_map(|f| f.columns.clone()).collect();
        Identity { feeders, columns }
    }

    /// True without feeders.
    pub fn is_empty(&self) -> bool {
        self.feeders.is_empty()
    }

    /// The names templates may use (`token`: the group signs tokens).
    pub fn names(&self, token: bool) -> Names<'_> {
        Names {
            columns: &self.columns,
            token,
        }
    }

    /// Client `client`'s data row (all feeders' columns).
    pub fn row(&self, client: u64) -> Arc<[Arc<str>]> {
        self.feeders
            .iter()
            .flat_map(|f| {
                let row = &f.rows[f.row_of(client)];
                (0..f.columns.len()).map(move |i| row.get(i).cloned().unwrap_or_else(|| "".into()))
            })
            .collect()
    }
}
