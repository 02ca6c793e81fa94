//! The latency metrics: each is an HDR histogram in microseconds and, per
//! group, one `.hlog` file named by its label — written only when the
//! group can record it ([`Latency::recorded_by`]).

use crate::transport::TransportKind;

/// Latency metrics, each an HDR histogram in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Receive time minus publish time.
    Delivery,
    /// TCP connect.
    Connect,
    /// Subscription confirmed after TCP connect (upgrade / first response).
    Subscribe,
    /// From a client's first connect attempt to its first event.
    FirstEvent,
    /// One poll, request or echo, from its intended start to its last byte
    /// (corrected for coordinated omission).
    Request,
    /// The same exchanges from when they were really sent (uncorrected:
    /// what a closed-loop tool like wrk reports).
    RequestUncorrected,
    /// TLS handshake, after TCP connect (`https://` / `wss://` targets).
    Tls,
    /// `[storm]`: from the drop to the client's re-subscription.
    StormReconnect,
    /// `[storm]`: from the drop to the client's first event after it.
    StormReceiving,
    /// Engine.IO's upgrade: from the WebSocket's connect to the switch.
    Upgrade,
    /// A room member's publish, from its intended instant to the target's
    /// acknowledgement: the HTTP response (`via = "http"`), a STOMP
    /// RECEIPT, an MQTT PUBACK.
    PublishAck,
}

impl Latency {
    /// Every metric, in file order.
    pub const ALL: [Latency; 11] = [
        Latency::Delivery,
        Latency::Connect,
        Latency::Subscribe,
        Latency::FirstEvent,
        Latency::Request,
        Latency::RequestUncorrected,
        Latency::Tls,
        Latency::StormReconnect,
        Latency::StormReceiving,
        Latency::Upgrade,
        Latency::PublishAck,
    ];

    /// Stable label (file names, tags).
    pub fn label(self) -> &'static str {
        match self {
            Latency::Delivery => "delivery",
            Latency::Connect => "connect",
            Latency::Subscribe => "subscribe",
            Latency::FirstEvent => "first-event",
            Latency::Request => "request",
            Latency::RequestUncorrected => "request-uncorrected",
            Latency::Tls => "tls",
            Latency::StormReconnect => "storm-reconnect",
            Latency::StormReceiving => "storm-receiving",
            Latency::Upgrade => "upgrade",
            Latency::PublishAck => "publish-ack",
        }
    }

    /// True for metrics summarized over the whole phase: connections are
    /// made during the ramp, before the measured window (and a storm may
    /// come during the warm-up).
    pub fn whole_phase(self) -> bool {
        matches!(
            self,
            Latency::Connect
                | Latency::Subscribe
                | Latency::FirstEvent
                | Latency::Tls
                | Latency::StormReconnect
                | Latency::StormReceiving
                | Latency::Upgrade
        )
    }
}

/// What decides which interval logs a group can fill.
#[derive(Debug, Clone, Copy)]
pub struct LogScope {
    /// The group's transport.
    pub transport: TransportKind,
    /// The target is `https://` / `wss://`.
    pub tls: bool,
    /// The scenario has a `[storm]`.
    pub storm: bool,
    /// The group's clients publish and the target acknowledges each
    /// publish (see `GroupPlan::publish_acks`).
    pub publish_acks: bool,
}

impl Latency {
    /// True when a group in `scope` can record this metric: only those
    /// logs are written (a missing log reads as empty).
    pub fn recorded_by(self, scope: LogScope) -> bool {
        let k = scope.transport;
        match self {
            Latency::Connect => true,
            Latency::Delivery | Latency::FirstEvent => k.subscribes(),
            Latency::Subscribe => k.confirms_sessions(),
            Latency::Request | Latency::RequestUncorrected => k.is_request_based(),
            Latency::Tls => scope.tls,
            Latency::StormReconnect | Latency::StormReceiving => scope.storm && k.subscribes(),
            Latency::Upgrade => k.info().upgrades,
            Latency::PublishAck => scope.publish_acks,
        }
    }
}

/// The metrics whose interval logs a group in `scope` has, in file order.
pub fn logged(scope: LogScope) -> Vec<Latency> {
    Latency::ALL
        .into_iter()
        .filter(|m| m.recorded_by(scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(transport: TransportKind, tls: bool, storm: bool) -> Vec<&'static str> {
        logged(LogScope {
            transport,
            tls,
            storm,
            publish_acks: false,
        })
        .into_iter()
        .map(Latency::label)
        .collect()
    }

    #[test]
    fn only_what_a_group_can_record() {
        use TransportKind::*;
        assert_eq!(
            files(Sse, false, false),
            ["delivery", "connect", "subscribe", "first-event"]
        );
        assert_eq!(
            files(Poll, false, false),
            [
                "delivery",
                "connect",
                "subscribe",
                "first-event",
                "request",
                "request-uncorrected"
            ]
        );
        assert_eq!(
            files(Request, false, true),
            ["connect", "request", "request-uncorrected"]
        );
        assert_eq!(
            files(Echo, true, false),
            [
                "connect",
                "subscribe",
                "request",
                "request-uncorrected",
                "tls"
            ]
        );
        let ws = files(Websocket, true, true);
        assert!(ws.contains(&"tls") && ws.contains(&"storm-reconnect"));
        // Every kind has at least its connect log.
        for k in TransportKind::ALL {
            assert!(files(k, false, false).contains(&"connect"));
        }
    }
}
