//! Data feeders (`[[data]]`): CSV files with a header row whose columns
//! templates name as `{data.<column>}`. Which row a client takes is a pure
//! function of its scenario-wide number, so every shard of a run gives a
//! client the row the one-process run would (Gatling's feeder strategies):
//!
//! * `cycle` (default): row `client mod rows`;
//! * `unique`: row `client`; fewer rows than the scenario's clients is a
//!   scenario error when the plan is built;
//! * `random`: a row drawn by SplitMix64 from `seed` and the client number
//!   (the same draw in every run and shard with that seed).
//!
//! `secret = true` (or a list of columns) registers the values with
//! [`crate::secrets`]: they go on the wire and are written as
//! `{data.<column>}` everywhere else. Files are read by the plan
//! (`plan::identity`).

use std::sync::Arc;

use serde::Serialize;

/// How clients take rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Row `client mod rows`.
    Cycle,
    /// Row `client`; checked to exist.
    Unique,
    /// A seeded draw per client.
    Random {
        /// The seed.
        seed: u64,
    },
}

/// One checked feeder: its rows in memory.
#[derive(Debug, Clone, Serialize)]
pub struct Feeder {
    /// The file as written in the scenario.
    pub file: String,
    /// How clients take rows.
    pub strategy: Strategy,
    /// Its columns, in file order.
    pub columns: Vec<String>,
    /// Rows (never serialized: values may be secret).
    #[serde(skip)]
    pub rows: Arc<[Box<[Arc<str>]>]>,
    /// Number of rows.
    pub row_count: usize,
}

impl Feeder {
    /// The row client `client` (scenario-wide number) takes.
    pub fn row_of(&self, client: u64) -> usize {
        let n = self.rows.len().max(1) as u64;
        (match self.strategy {
            Strategy::Cycle | Strategy::Unique => client % n,
            Strategy::Random { seed } => {
                let mut r =
                    crate::rng::Rng::seeded(seed ^ client.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                r.next_u64() % n
            }
        }) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_pick_rows_by_client_number_only() {
        let rows: Arc<[Box<[Arc<str>]>]> = (0..5)
            .map(|i| vec![Arc::from(i.to_string().as_str())].into_boxed_slice())
            .collect();
        let mut f = Feeder {
            file: "u.csv".into(),
            strategy: Strategy::Cycle,
            columns: vec!["id".into()],
            rows,
            row_count: 5,
        };
        assert_eq!(
            (0..7).map(|c| f.row_of(c)).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 0, 1]
        );
        f.strategy = Strategy::Random { seed: 42 };
        let a: Vec<usize> = (0..50).map(|c| f.row_of(c)).collect();
        let b: Vec<usize> = (0..50).map(|c| f.row_of(c)).collect();
        assert_eq!(a, b, "the same draw every time");
        assert!(a.iter().all(|&r| r < 5));
        assert!(a.iter().any(|&r| r != a[0]));
        f.strategy = Strategy::Random { seed: 43 };
        assert_ne!(a, (0..50).map(|c| f.row_of(c)).collect::<Vec<_>>());
    }
}
