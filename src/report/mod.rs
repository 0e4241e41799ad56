//! Turning a run into files: atomic writes, pcap captures, the manifest.

pub mod atomic;
pub mod cdf;
pub mod charts;
pub mod html;
pub mod manifest;
pub mod pcap;
pub mod timeseries_chart;
