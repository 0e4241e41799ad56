//! Network layer: IPv4/UDP and IPv6/6LoWPAN wire formats, checksums, fragmentation and
//! reassembly, routing, packet buffers.

pub mod addr;
pub mod checksum;
pub mod frag;
pub mod frag6;
pub mod ip;
pub mod ipv6;
pub mod l3;
pub mod packet;
pub mod reassembly;
pub(crate) mod routing;
pub mod udp;
pub mod wire;

pub use wire::WireError;
