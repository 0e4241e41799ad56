//! Network layer: IPv4/UDP wire formats, fragmentation, routing.
