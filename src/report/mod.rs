//! Turning a run into files: pcap captures (CSV and charts as they land).

pub mod pcap;
