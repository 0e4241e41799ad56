//! Turning a run into files: atomic writes, pcap captures, the manifest.

pub mod atomic;
#[cfg(feature = "native")]
pub(crate) mod cdf;
#[cfg(feature = "native")]
pub(crate) mod chart_style;
#[cfg(feature = "native")]
pub mod charts;
#[cfg(feature = "native")]
pub mod diagram;
#[cfg(feature = "native")]
pub(crate) mod html;
#[cfg(feature = "native")]
pub(crate) mod manifest;
pub mod pcap;
#[cfg(feature = "native")]
pub mod scaling;
#[cfg(feature = "native")]
pub(crate) mod timeseries_chart;

/// Make a name (link, scenario) safe as a file or directory name: ASCII
/// letters, digits, '-', '_' and '.', never starting with '.'.
pub fn file_safe(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // "..", "." and hidden names would write into the parent, the current
    // or a hidden directory
    if s.is_empty() {
        s.push('_');
    } else if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    s
}
