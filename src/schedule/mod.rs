//! Schedules as data: client-count stages, turnover (arrivals, session
//! lengths, churn) and publish-rate stages. The plan builds them, the load
//! runner and the publisher follow them; they import neither.

pub mod rate;
pub mod shape;
