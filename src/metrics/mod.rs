//! Metrics: what happened to messages and packets, and the CSV rows.
pub mod connections;
pub mod energy;
pub mod latencies;
pub mod record;
pub mod sink;
pub(crate) mod stats;
pub mod summary;
pub mod timeseries;
