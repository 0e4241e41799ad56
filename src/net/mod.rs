//! Network layer: IPv4/UDP wire formats, fragmentation, routing, packet buffers.
pub mod packet;
pub mod routing;
