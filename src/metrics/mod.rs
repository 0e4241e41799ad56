//! Metrics: statistics helpers for run summaries.

pub mod stats;
