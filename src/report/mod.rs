//! Output files: atomic writes, pcap, manifest.
pub mod atomic;
pub mod manifest;
pub mod pcap;
