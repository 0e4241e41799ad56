//! Network layer: IPv4/UDP wire formats, fragmentation, routing.

pub mod checksum;
pub mod frag;
pub mod ip;
pub mod udp;
pub mod wire;

pub use wire::WireError;
