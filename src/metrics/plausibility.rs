//! Warnings for results that cannot be what the user meant to measure: a
//! phase in which nothing was published, no client subscribed, or every
//! expected event was lost, and accounting that points at a broken setup
//! (a poller without a working cursor, a long poll that is not held).
//!
//! A run never reports "everything lost, 0 errors" without saying why:
//! these checks read the summary rows only, so they are pure and the run
//! loop just prints what they return (on stderr and in `run.json`).

use super::summary::GroupResult;
use crate::transport::TransportKind;

/// What one phase published, as the publisher saw it.
#[derive(Debug, Clone, Copy)]
pub struct Publishing<'a> {
    /// Events published successfully.
    pub published: u64,
    /// Publish requests that failed.
    pub errors: u64,
    /// The first publish error, if any.
    pub first_error: Option<&'a str>,
}

/// Long polls per client per second above which a long poll that
/// delivers less than one event per request is a hot loop, not a held
/// request.
const HOT_LOOP_PER_CLIENT_S: f64 = 5.0;

/// Warnings for phase `phase` with the results of its groups.
pub fn phase_warnings(phase: usize, publishing: Publishing, groups: &[GroupResult]) -> Vec<String> {
    let mut out = Vec::new();
    let subscribers: Vec<&GroupResult> = groups.iter().filter(|g| g.accounting.is_some()).collect();
    if subscribers.is_empty() {
        return out;
    }
    // Room members' own messages count as published too.
    let by_members: u64 = subscribers
        .iter()
        .filter_map(|g| g.accounting.map(|(_, p)| p))
        .sum();
    if publishing.published == 0 && by_members == 0 {
        out.push(match publishing.first_error {
            Some(e) => format!(
                "phase {phase}: no event was published ({} publish errors; first: {e})",
                publishing.errors
            ),
            None => format!("phase {phase}: no event was published (is the hold too short for the publish rate?)"),
        });
        return out;
    }
    for g in subscribers {
        let row = g.row();
        let (expected, delivered) = (row.expected.unwrap_or(0), row.delivered.unwrap_or(0));
        let name = &g.name;
        if expected == 0 {
            out.push(format!(
                "phase {phase}, group {name}: no client was subscribed while {} events were published",
                publishing.published
            ));
        } else if delivered == 0 {
            out.push(format!(
                "phase {phase}, group {name}: every expected event was lost ({expected}); {}",
                errors_said(&row)
            ));
        }
        let duplicated = row.duplicated.unwrap_or(0);
        if duplicated > delivered.max(10) {
            out.push(format!(
                "phase {phase}, group {name}: {duplicated} duplicates for {delivered} deliveries: \
                 the server sends events again that the client already had{}",
                if g.transport.is_request_based() {
                    " (a poller without a working cursor?)"
                } else {
                    " (a resume that replays from the start?)"
                }
            ));
        }
        if g.transport == TransportKind::LongPoll && g.clients > 0 && row.measured_s > 0.0 {
            let per_client_s = row.requests as f64 / g.clients as f64 / row.measured_s;
            if per_client_s > HOT_LOOP_PER_CLIENT_S && row.requests > delivered {
                out.push(format!(
                    "phase {phase}, group {name}: {per_client_s:.0} long polls per client per second for \
                     {delivered} deliveries: the server answers at once instead of holding the poll \
                     (is the hold parameter in the long_poll URL right?)"
                ));
            }
        }
    }
    out
}

fn errors_said(row: &crate::metrics::summary::SummaryRow) -> String {
    if row.errors == 0 {
        return "0 errors: the clients saw no fault, so the events never reached them \
                (wrong channel or URL, or a server that does not fan out?)"
            .into();
    }
    let kinds: Vec<String> = crate::fault::ErrorKind::ALL
        .into_iter()
        .filter_map(|k| {
            let n = row.errors_of(k);
            (n > 0).then(|| format!("{n} {}", k.label()))
        })
        .collect();
    format!(
        "{} errors ({}): see run.json's error examples",
        row.errors,
        kinds.join(", ")
    )
}

/// The run-level verdict on the publisher: `Some(reason)` when it never
/// published one event although it tried (the run then fails, exit 3).
pub fn publisher_never_succeeded(phases: &[Publishing]) -> Option<String> {
    let tried: u64 = phases.iter().map(|p| p.published + p.errors).sum();
    let ok: u64 = phases.iter().map(|p| p.published).sum();
    (tried > 0 && ok == 0).then(|| {
        let first = phases
            .iter()
            .find_map(|p| p.first_error)
            .unwrap_or("no error recorded");
        format!("the publisher never succeeded ({tried} attempts; first error: {first})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ledger::Tally;
    use crate::metrics::recorder::Interval;

    fn group(transport: TransportKind, tally: Tally, published: u64) -> GroupResult {
        GroupResult {
            name: "g".into(),
            transport,
            clients: 2,
            accounting: Some((tally, published)),
            measured: Interval::default(),
            measured_s: 4.0,
            client: Default::default(),
            target: None,
            health: Default::default(),
        }
    }

    const OK: Publishing = Publishing {
        published: 20,
        errors: 0,
        first_error: None,
    };

    #[test]
    fn everything_lost_with_no_errors_says_why() {
        let t = Tally {
            expected: 40,
            lost: 40,
            ..Tally::default()
        };
        let w = phase_warnings(0, OK, &[group(TransportKind::Sse, t, 20)]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("every expected event was lost (40)") && w[0].contains("0 errors"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn nothing_published_and_nobody_subscribed_are_named() {
        let none = Publishing {
            published: 0,
            errors: 3,
            first_error: Some("refused: connection refused"),
        };
        let w = phase_warnings(1, none, &[group(TransportKind::Sse, Tally::default(), 0)]);
        assert!(
            w[0].starts_with("phase 1: no event was published (3 publish errors"),
            "{w:?}"
        );
        let w = phase_warnings(0, OK, &[group(TransportKind::Sse, Tally::default(), 20)]);
        assert!(
            w[0].contains("no client was subscribed while 20 events"),
            "{w:?}"
        );
        assert_eq!(
            publisher_never_succeeded(&[none, none]).as_deref(),
            Some("the publisher never succeeded (6 attempts; first error: refused: connection refused)")
        );
        assert_eq!(publisher_never_succeeded(&[OK, none]), None);
        assert_eq!(publisher_never_succeeded(&[]), None);
    }

    #[test]
    fn duplicates_far_above_deliveries_name_the_cursor() {
        let t = Tally {
            expected: 40,
            delivered: 40,
            duplicated: 400,
            ..Tally::default()
        };
        let w = phase_warnings(0, OK, &[group(TransportKind::Poll, t, 20)]);
        assert!(
            w.len() == 1 && w[0].contains("without a working cursor"),
            "{w:?}"
        );
        let fine = Tally {
            expected: 40,
            delivered: 40,
            duplicated: 3,
            ..Tally::default()
        };
        assert!(phase_warnings(0, OK, &[group(TransportKind::Poll, fine, 20)]).is_empty());
    }
}
