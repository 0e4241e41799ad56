//! Radio energy at the end of a run (the energy columns of runs.csv,
//! nodes.csv and links.csv): per radio and per medium.

use crate::link::medium::MediumStats;

/// Energy of one radio at the end of a run, mJ per state (tx, rx, listen, sleep).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEnergy {
    pub node: String,
    pub medium: String,
    pub duty_cycled: bool,
    pub mj: [f64; 4],
}

/// What the radios did in a run.
#[derive(Debug, Clone, Default)]
pub struct RadioReport {
    pub nodes: Vec<NodeEnergy>,
    pub media: Vec<(String, MediumStats)>,
}

impl RadioReport {
    /// Total energy per state over every radio (`None` without media).
    pub fn total_mj(&self) -> Option<[f64; 4]> {
        if self.media.is_empty() {
            return None;
        }
        let mut t = [0.0; 4];
        for n in &self.nodes {
            for (a, b) in t.iter_mut().zip(n.mj) {
                *a += b;
            }
        }
        Some(t)
    }
}
