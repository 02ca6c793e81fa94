//! Fault injection for the reference server: a target that misbehaves on
//! purpose, at a rate per fault, so that stampede's own handling of broken
//! servers is exercised (`stampede serve --fault reset=0.05,...`, or a
//! scenario's `[faults]` table).
//!
//! Each subscriber or request route (`/poll`, `/lp`, `/sse`, `/stream`,
//! `/ws`, `/echo`, `/hello`; never `/pub` or the controls) rolls once per
//! request among the faults that apply to it (SSE faults only on `/sse`):
//! with probability `rate` that fault is enacted.
//! Faults below HTTP (reset, stall, half-open, slow headers, malformed
//! HTTP) are enacted by the connection's own socket wrapper, armed by the
//! request; the others are answers built here. Every fault maps to exactly
//! one error kind on the client ([`FaultKind::counted_as`]).

mod answer;
mod socket;

pub use answer::inject;
pub use socket::{ConnFault, FaultHandle, FaultListener, FaultyIo};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::fault::ErrorKind;
use crate::rng::Rng;

/// The faults the target can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// RST a few hundred bytes into the response (mid-stream for streams).
    Reset,
    /// Hold the response for `stall_for` before writing it.
    Stall,
    /// Go silent and never send FIN (held for up to a minute).
    HalfOpen,
    /// Write the response head one byte every 200 ms.
    SlowHeaders,
    /// Answer bytes that are not HTTP.
    MalformedHttp,
    /// Answer `503 Service Unavailable`.
    Status5xx,
    /// Answer `429 Too Many Requests` with `Retry-After: 1`.
    Status429,
    /// SSE: two events without the blank line between them.
    SseNoBlankLine,
    /// SSE: one line of `oversize_bytes`.
    SseHugeLine,
    /// SSE: an event that is not UTF-8.
    SseInvalidUtf8,
    /// WebSocket: a frame with a reserved opcode.
    WsBadOpcode,
    /// WebSocket: a masked frame from the server (servers must not mask).
    WsMaskedFrame,
    /// WebSocket: a frame header claiming a 1 TiB payload.
    WsOversizedFrame,
    /// WebSocket: the TCP connection ends without a close frame.
    WsNoClose,
    /// One message (poll body, SSE event, NDJSON line, WebSocket message)
    /// of `oversize_bytes`.
    OversizedMessage,
}

/// A route that faults may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Poll,
    LongPoll,
    Sse,
    Ndjson,
    Ws,
    Echo,
    Hello,
}

impl Route {
    const ALL: [Route; 7] = [
        Route::Poll,
        Route::LongPoll,
        Route::Sse,
        Route::Ndjson,
        Route::Ws,
        Route::Echo,
        Route::Hello,
    ];

    fn of(path: &str) -> Option<Route> {
        let first = path.trim_start_matches('/').split('/').next()?;
        Some(match first {
            "poll" => Route::Poll,
            "lp" => Route::LongPoll,
            "sse" => Route::Sse,
            "stream" => Route::Ndjson,
            "ws" => Route::Ws,
            "echo" => Route::Echo,
            "hello" => Route::Hello,
            _ => return None,
        })
    }

    fn streams(self) -> bool {
        matches!(self, Route::Sse | Route::Ndjson | Route::Ws | Route::Echo)
    }
}

impl FaultKind {
    /// Every fault, in documentation order.
    pub const ALL: [FaultKind; 15] = [
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::HalfOpen,
        FaultKind::SlowHeaders,
        FaultKind::MalformedHttp,
        FaultKind::Status5xx,
        FaultKind::Status429,
        FaultKind::SseNoBlankLine,
        FaultKind::SseHugeLine,
        FaultKind::SseInvalidUtf8,
        FaultKind::WsBadOpcode,
        FaultKind::WsMaskedFrame,
        FaultKind::WsOversizedFrame,
        FaultKind::WsNoClose,
        FaultKind::OversizedMessage,
    ];

    /// Stable name (CLI, scenario key, run.json).
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Stall => "stall",
            FaultKind::HalfOpen => "half_open",
            FaultKind::SlowHeaders => "slow_headers",
            FaultKind::MalformedHttp => "malformed_http",
            FaultKind::Status5xx => "status_5xx",
            FaultKind::Status429 => "status_429",
            FaultKind::SseNoBlankLine => "sse_no_blank_line",
            FaultKind::SseHugeLine => "sse_huge_line",
            FaultKind::SseInvalidUtf8 => "sse_invalid_utf8",
            FaultKind::WsBadOpcode => "ws_bad_opcode",
            FaultKind::WsMaskedFrame => "ws_masked_frame",
            FaultKind::WsOversizedFrame => "ws_oversized_frame",
            FaultKind::WsNoClose => "ws_no_close",
            FaultKind::OversizedMessage => "oversized_message",
        }
    }

    /// The fault named `label`.
    pub fn from_label(label: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.label() == label)
    }

    /// The error kind a stampede client counts this fault under (timeouts
    /// assume `stall_for` is longer than the client's `request_timeout` /
    /// `read_timeout`, and oversized payloads that `oversize_bytes` is over
    /// the client's limits).
    pub fn counted_as(self) -> ErrorKind {
        match self {
            FaultKind::Reset | FaultKind::WsNoClose => ErrorKind::Reset,
            FaultKind::Stall | FaultKind::HalfOpen | FaultKind::SlowHeaders => ErrorKind::Timeout,
            FaultKind::MalformedHttp
            | FaultKind::SseNoBlankLine
            | FaultKind::SseInvalidUtf8
            | FaultKind::WsBadOpcode
            | FaultKind::WsMaskedFrame => ErrorKind::Protocol,
            FaultKind::Status5xx => ErrorKind::Status,
            FaultKind::Status429 => ErrorKind::RateLimited,
            FaultKind::SseHugeLine | FaultKind::WsOversizedFrame | FaultKind::OversizedMessage => {
                ErrorKind::Limit
            }
        }
    }

    fn applies(self, route: Route) -> bool {
        match self {
            FaultKind::SseNoBlankLine | FaultKind::SseHugeLine | FaultKind::SseInvalidUtf8 => {
                route == Route::Sse
            }
            FaultKind::WsBadOpcode
            | FaultKind::WsMaskedFrame
            | FaultKind::WsOversizedFrame
            | FaultKind::WsNoClose => matches!(route, Route::Ws | Route::Echo),
            // Request mode discards bodies unread: no limit to exceed.
            FaultKind::OversizedMessage => route != Route::Hello,
            _ => true,
        }
    }
}

/// Which faults, how often, and their parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultPlan {
    /// Probability of each fault per request of a route it applies to; the
    /// rates of the faults that apply to one route sum to at most 1.
    pub rates: BTreeMap<&'static str, f64>,
    /// How long `stall` holds a response.
    #[serde(rename = "stall_for_s", with = "crate::units::secs")]
    pub stall_for: Duration,
    /// Size of `oversized_message` and `sse_huge_line` payloads.
    pub oversize_bytes: usize,
    #[serde(skip)]
    kinds: Vec<(FaultKind, f64)>,
}

impl FaultPlan {
    /// Parses `kind=rate,...,stall_for=5s,oversize_bytes=N` (several
    /// strings are joined).
    pub fn parse(specs: &[String]) -> Result<FaultPlan, String> {
        let mut plan = FaultPlan {
            rates: BTreeMap::new(),
            stall_for: Duration::from_secs(15),
            oversize_bytes: 5 << 20,
            kinds: Vec::new(),
        };
        for item in specs.iter().flat_map(|s| s.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected name=value"))?;
            let (key, value) = (key.trim(), value.trim().trim_matches('"'));
            match key {
                "stall_for" => {
                    plan.stall_for = humantime::parse_duration(value)
                        .map_err(|e| format!("stall_for {value:?}: {e}"))?;
                    if plan.stall_for > Duration::from_secs(3600) {
                        return Err("stall_for: at most 1h".into());
                    }
                }
                "oversize_bytes" => {
                    plan.oversize_bytes = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=(256 << 20)).contains(n))
                        .ok_or_else(|| format!("oversize_bytes {value:?}: 1..=268435456"))?;
                }
                _ => {
                    let kind = FaultKind::from_label(key).ok_or_else(|| {
                        let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.label()).collect();
                        format!(
                            "unknown fault {key:?}; use {}, stall_for or oversize_bytes",
                            names.join(", ")
                        )
                    })?;
                    let rate: f64 = value
                        .parse()
                        .ok()
                        .filter(|r: &f64| (0.0..=1.0).contains(r))
                        .ok_or_else(|| format!("{key}: rate {value:?} is not in [0, 1]"))?;
                    plan.rates.insert(kind.label(), rate);
                }
            }
        }
        plan.kinds = FaultKind::ALL
            .into_iter()
            .filter_map(|k| plan.rates.get(k.label()).map(|r| (k, *r)))
            .filter(|(_, r)| *r > 0.0)
            .collect();
        for route in Route::ALL {
            let total: f64 = plan
                .kinds
                .iter()
                .filter(|(k, _)| k.applies(route))
                .map(|(_, r)| r)
                .sum();
            if total > 1.0 + 1e-9 {
                return Err(format!(
                    "the rates of the faults that apply to {route:?} requests add up to {total}, more than 1"
                ));
            }
        }
        Ok(plan)
    }

    /// A scenario's `[faults]` table: the same keys as `--fault`.
    pub fn from_table(table: &toml::Table) -> Result<FaultPlan, String> {
        let items: Vec<String> = table
            .iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        FaultPlan::parse(&items)
    }

    /// The `--fault` argument that recreates this plan.
    pub fn to_spec(&self) -> String {
        let mut parts: Vec<String> = self.rates.iter().map(|(k, r)| format!("{k}={r}")).collect();
        parts.push(format!("stall_for={}ms", self.stall_for.as_millis()));
        parts.push(format!("oversize_bytes={}", self.oversize_bytes));
        parts.join(",")
    }

    /// True when no fault has a rate above zero.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    fn roll(&self, route: Route, rng: &mut Rng) -> Option<FaultKind> {
        let r = rng.unit();
        let mut cumulative = 0.0;
        for (kind, rate) in self.kinds.iter().filter(|(k, _)| k.applies(route)) {
            cumulative += rate;
            if r < cumulative {
                return Some(*kind);
            }
        }
        None
    }
}

/// Faults injected so far, by kind (for `/stats/faults` and tests).
#[derive(Debug)]
pub struct FaultState {
    plan: FaultPlan,
    injected: [AtomicU64; FaultKind::ALL.len()],
    stop: CancellationToken,
}

impl FaultState {
    /// State for `plan`; raw tasks it spawns end at `stop`.
    pub fn new(plan: FaultPlan, stop: CancellationToken) -> Self {
        FaultState {
            plan,
            injected: Default::default(),
            stop,
        }
    }

    /// Injections so far, by fault label.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        FaultKind::ALL
            .iter()
            .enumerate()
            .map(|(i, k)| (k.label(), self.injected[i].load(Ordering::Relaxed)))
            .collect()
    }

    fn count(&self, kind: FaultKind) {
        if let Some(i) = FaultKind::ALL.iter().position(|k| *k == kind) {
            self.injected[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_round_trip() {
        let p = FaultPlan::parse(&["reset=0.1, stall=0.05".into(), "stall_for=2s".into()]).unwrap();
        assert_eq!(p.rates["reset"], 0.1);
        assert_eq!(p.stall_for, Duration::from_secs(2));
        assert_eq!(FaultPlan::parse(&[p.to_spec()]).unwrap(), p);
        assert!(FaultPlan::parse(&["nope=0.1".into()]).is_err());
        assert!(FaultPlan::parse(&["reset=2".into()]).is_err());
        assert!(FaultPlan::parse(&["reset=0.6,stall=0.6".into()]).is_err());
        // Rates add up per route: SSE and WebSocket faults never meet.
        assert!(FaultPlan::parse(&["sse_huge_line=0.6,ws_no_close=0.6".into()]).is_ok());
        assert!(FaultPlan::parse(&["reset".into()]).is_err());
    }

    #[test]
    fn every_fault_has_a_label_and_a_kind() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_label(k.label()), Some(k));
            let _ = k.counted_as();
        }
    }

    #[test]
    fn rolls_follow_the_rates() {
        let p = FaultPlan::parse(&["reset=0.25,status_5xx=0.25".into()]).unwrap();
        let mut rng = Rng::seeded(1);
        let hits = (0..10_000)
            .filter(|_| p.roll(Route::Poll, &mut rng).is_some())
            .count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
    }
}
