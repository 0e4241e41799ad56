//! Packet buffers: a slab of reusable byte buffers with per-packet metadata.
//!
//! Every packet on the simulated wire is a real IPv4 or IPv6 packet, or a
//! 6LoWPAN frame payload on an 802.15.4 medium (`data`), so its
//! size, checksums and pcap bytes are exact. `PacketMeta` is the simulator's
//! bookkeeping that travels beside the bytes (like an ns-3 packet tag): which
//! flow the traffic belongs to and what kind of message it is, used only to
//! attribute metrics, never to make protocol decisions. Buffers are recycled
//! through a free list so steady-state forwarding does not allocate.

use crate::sim::SimTime;

/// A packet's bytes by layer (the `bytes_*` columns): 6LoWPAN headers,
/// transport and IP headers, security overlay (TLS/DTLS records,
/// handshakes, WebSocket framing), protocol headers, application payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layers {
    pub adaptation: u64,
    pub transport_ip: u64,
    pub security: u64,
    pub protocol: u64,
    pub payload: u64,
}

impl Layers {
    /// Every byte counted.
    pub fn total(&self) -> u64 {
        self.adaptation + self.transport_ip + self.security + self.protocol + self.payload
    }
}

/// How an IP packet's bytes split into layers, from its IP header and the
/// datagram layout `[transport header][sec_bytes][proto_bytes][app_bytes]`
/// in `meta` (transport header `meta.l4_header` bytes: UDP 8, TCP 20 +
/// options). Exact for fragments too: each byte is attributed by its
/// offset in the datagram.
pub fn layer_split(packet: &[u8], meta: &PacketMeta) -> Layers {
    let Some((s, _, data)) = crate::net::l3::datagram_part(packet) else {
        return Layers {
            transport_ip: packet.len() as u64,
            ..Layers::default()
        };
    };
    let mut l = part_split(s, data.len(), meta);
    l.transport_ip += (packet.len() - data.len()) as u64;
    l
}

/// The layers of the `len` bytes at offset `start` of a datagram's
/// transport part laid out as `meta` says (`transport_ip`: the transport
/// header among them).
pub fn part_split(start: usize, len: usize, meta: &PacketMeta) -> Layers {
    let e = start + len;
    let overlap = |a: usize, b: usize| e.min(b).saturating_sub(start.max(a)) as u64;
    let l4 = usize::from(meta.l4_header);
    let s = usize::from(meta.sec_bytes);
    let p = usize::from(meta.proto_bytes);
    let a = usize::from(meta.app_bytes);
    let transport_ip = overlap(0, l4);
    let security = overlap(l4, l4 + s);
    let payload = overlap(l4 + s + p, l4 + s + p + a);
    Layers {
        adaptation: 0,
        transport_ip,
        security,
        protocol: len as u64 - transport_ip - security - payload,
        payload,
    }
}

/// Index of a packet in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PacketHandle(pub u32);

/// `flow` value for traffic that belongs to no flow.
pub const NO_FLOW: u32 = u32::MAX;

/// Metric attribution of a packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacketMeta {
    /// Flow index, or `NO_FLOW`.
    pub flow: u32,
    /// Message kind for `packets.csv` (`udp`, `coap_con`, …).
    pub kind: &'static str,
    /// Whether this traffic belongs to the measured window (after warmup).
    pub counted: bool,
    /// When the packet was created (for diagnostics).
    pub created: SimTime,
    /// Bytes of the security overlay (TLS/DTLS record headers, tags,
    /// padding, handshakes; WebSocket framing) inside the transport
    /// payload, before the protocol headers.
    pub sec_bytes: u16,
    /// Bytes of protocol headers inside the UDP payload (e.g. CoAP header,
    /// token, options, payload marker), before the application payload.
    pub proto_bytes: u16,
    /// Bytes of application payload after them.
    pub app_bytes: u16,
    /// A protocol retransmission (its bytes count as the retransmission layer).
    pub retx: bool,
    /// Length of the transport header at the start of the datagram (UDP 8,
    /// TCP 20 + options).
    pub l4_header: u8,
    /// `connections.csv` record of the TCP endpoint that sent it, or
    /// `u32::MAX` outside TCP.
    pub conn: u32,
}

impl Default for PacketMeta {
    fn default() -> Self {
        PacketMeta {
            flow: NO_FLOW,
            kind: "ip",
            counted: false,
            created: SimTime::ZERO,
            sec_bytes: 0,
            proto_bytes: 0,
            app_bytes: 0,
            retx: false,
            l4_header: crate::net::udp::UdpRepr::HEADER_LEN as u8,
            conn: u32::MAX,
        }
    }
}

#[derive(Debug, Default)]
pub struct Packet {
    pub data: Vec<u8>,
    pub meta: PacketMeta,
}

/// Slab of packets with a free list.
#[derive(Debug, Default)]
pub struct PacketPool {
    slots: Vec<Packet>,
    free: Vec<u32>,
    live: usize,
}

impl PacketPool {
    pub fn new() -> Self {
        Self::default()
    }
    /// A packet with an empty (but possibly pre-sized) buffer.
    pub fn alloc(&mut self, meta: PacketMeta) -> PacketHandle {
        self.alloc_sized(meta, 128)
    }
    /// A packet holding a copy of `bytes`. A new slot's buffer is sized to
    /// `bytes` rather than the 128 bytes of [`PacketPool::alloc`]: copies
    /// come in bursts (a broadcast to 1,000 access links puts 1,000 copies
    /// of one small datagram in flight at once, each in its own slot, and
    /// the pool keeps every slot's buffer for reuse), so the extra
    /// capacity would be resident for the whole run.
    pub fn alloc_with(&mut self, meta: PacketMeta, bytes: &[u8]) -> PacketHandle {
        let id = self.alloc_sized(meta, bytes.len());
        self.slots[id.0 as usize].data.extend_from_slice(bytes);
        id
    }
    fn alloc_sized(&mut self, meta: PacketMeta, capacity: usize) -> PacketHandle {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            let p = &mut self.slots[i as usize];
            p.data.clear();
            p.meta = meta;
            PacketHandle(i)
        } else {
            self.slots.push(Packet {
                data: Vec::with_capacity(capacity),
                meta,
            });
            PacketHandle((self.slots.len() - 1) as u32)
        }
    }
    pub fn get(&self, id: PacketHandle) -> &Packet {
        &self.slots[id.0 as usize]
    }
    pub fn get_mut(&mut self, id: PacketHandle) -> &mut Packet {
        &mut self.slots[id.0 as usize]
    }
    pub fn free(&mut self, id: PacketHandle) {
        self.live = self.live.saturating_sub(1);
        self.free.push(id.0);
    }
    /// Packets currently allocated.
    pub fn live(&self) -> usize {
        self.live
    }
}
