//! Network layer: IPv4/UDP wire formats, checksums, fragmentation and
//! reassembly, routing, packet buffers.

pub mod addr;
pub mod checksum;
pub mod frag;
pub mod ip;
pub mod packet;
pub(crate) mod routing;
pub mod udp;
pub mod wire;

pub use wire::WireError;
