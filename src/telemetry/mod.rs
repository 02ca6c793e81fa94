//! Telemetry: what stampede sends to, and reads from, the monitoring the
//! team already runs. It owns the wire formats (Prometheus remote write
//! with native histograms; the Prometheus text exposition format it
//! scrapes) and a tiny HTTP client of its own; it never measures load: the
//! run loop hands it the rows it writes to the run folder, so the folder
//! and the series cannot disagree.

pub mod exposition;
pub mod http;
pub mod native;
pub mod prompb;
pub mod remote_write;
pub mod scrape;
