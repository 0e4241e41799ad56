//! Turning a run into files: atomic writes, pcap captures, the manifest.

pub mod atomic;
pub(crate) mod cdf;
pub mod charts;
pub mod diagram;
pub(crate) mod html;
pub(crate) mod manifest;
pub mod pcap;
pub(crate) mod timeseries_chart;
