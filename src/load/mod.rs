//! When things happen: the pacer (intended instants), the client loop (one
//! task per simulated client: open, observe, reconnect) and the phase runner
//! (ramp, warm-up, hold, drain, interval collection), and a room member's
//! messages to the publish endpoint (`via_http`). Load never names a
//! concrete transport: it reaches one through `TransportKind::visit`.

mod cancel;
pub mod client;
pub mod pacer;
pub mod runner;
mod via_http;
mod window;

// The schedules a phase follows live below the plan; load runs them.
pub use crate::schedule::{rate, shape};
