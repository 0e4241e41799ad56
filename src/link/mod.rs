//! Links: rate, propagation delay, MTU, drop-tail queue and loss models.

pub mod channel;
pub mod trace;
