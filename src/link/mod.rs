//! Links: point-to-point, full duplex, each direction a pipeline of rules.
//!
//! A packet handed to a link direction passes these rules in order; each rule
//! says what it does to one packet:
//!
//! 1. **admin state** — a link that is down accepts nothing (routing does not
//!    send onto it; anything still queued when it goes down is dropped as
//!    `lost_link_down`).
//! 2. **MTU** — a packet larger than the MTU is fragmented by the sending node
//!    before it reaches the queue (or dropped as `drops_mtu` when DF is set);
//!    see `net::frag`. The link itself never sees an oversize packet.
//! 3. **queue** — drop-tail: if the transmitter is busy and `queue` packets
//!    already wait, the packet is dropped (`lost_queue`); otherwise it waits in
//!    FIFO order.
//! 4. **schedule** — the transmitter serialises one packet at a time:
//!    transmission time = ⌈bytes·8/rate⌉ ns, starting when the previous one ends.
//! 5. **loss model** — decided once per packet when its transmission starts,
//!    from the direction's own `Channel` state and random stream
//!    (`lost_channel`); a lost packet still occupies the transmitter.
//! 6. **propagation** — a surviving packet arrives `delay` after its last bit
//!    left, i.e. at start + transmission + delay. A packet whose transmission
//!    started before the link went down still arrives (it was on the wire).

pub mod channel;
pub mod energy;
pub mod mac154;
pub mod medium;
pub mod model;
pub mod phy;
pub mod sixlowpan;

use crate::net::packet::PacketHandle;
use crate::sim::{SimDuration, SimRng};
use channel::Channel;
use model::LinkSpec;
use std::collections::VecDeque;

/// Per-direction counters (packets and bytes of IP packets).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirStats {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub delivered: u64,
    pub lost_channel: u64,
    pub lost_queue: u64,
    pub lost_link_down: u64,
    /// Nanoseconds the transmitter was busy.
    pub busy_ns: u64,
}

/// One direction of a link.
/// Packets waiting for a link direction's transmitter, FIFO. Boxed and
/// allocated on the first packet that has to wait: most access links of a
/// large fleet never queue (one reading every few seconds), and the
/// `VecDeque`'s 32 bytes inline, twice per link, were 64 of each link's
/// 320 bytes (mqttsn-10k: 10,012 links).
#[derive(Debug, Default)]
#[allow(
    clippy::box_collection,
    reason = "8 bytes inline instead of the VecDeque's 32, on every link direction"
)]
pub struct WaitQueue(Option<Box<VecDeque<PacketHandle>>>);

impl WaitQueue {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn push_back(&mut self, pkt: PacketHandle) {
        self.0.get_or_insert_with(Default::default).push_back(pkt);
    }
    pub fn pop_front(&mut self) -> Option<PacketHandle> {
        self.0.as_mut().and_then(|q| q.pop_front())
    }
}

#[derive(Debug)]
pub struct LinkDir {
    pub from: u32,
    pub to: u32,
    pub queue: WaitQueue,
    pub busy: bool,
    /// Largest queue length since the time series last sampled it. Here,
    /// not in [`DirStats`], where its 4 bytes padded the direction to 128
    /// bytes (now 112; a link 256, not 288).
    pub queue_peak: u32,
    pub channel: Channel,
    pub rng: SimRng,
    pub stats: DirStats,
}

/// A full-duplex point-to-point link.
#[derive(Debug)]
pub struct Link {
    pub rate_bps: u64,
    pub delay: SimDuration,
    pub mtu: u32,
    pub queue_cap: u32,
    pub up: bool,
    pub dirs: [LinkDir; 2],
}

/// What the queue rule decided for a packet offered to a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The transmitter was idle: the caller starts transmitting it now.
    StartNow,
    /// Queued behind others.
    Queued,
    /// Queue full: the caller drops it as `lost_queue`.
    Dropped,
}

impl Link {
    /// Build a link from its spec; each direction gets its own loss stream
    /// `link/<name>/<a>-><b>`.
    pub fn new(spec: &LinkSpec, seed: u64, node_names: &[String]) -> Self {
        let dir = |from: usize, to: usize| LinkDir {
            from: from as u32,
            to: to as u32,
            queue: WaitQueue::default(),
            busy: false,
            queue_peak: 0,
            channel: Channel::new(&spec.loss),
            rng: SimRng::stream(
                seed,
                &format!(
                    "link/{}/{}->{}",
                    spec.name, node_names[from], node_names[to]
                ),
            ),
            stats: DirStats::default(),
        };
        Link {
            rate_bps: spec.rate_bps,
            delay: spec.delay,
            mtu: spec.mtu,
            queue_cap: spec.queue,
            up: true,
            dirs: [dir(spec.a, spec.b), dir(spec.b, spec.a)],
        }
    }

    /// Offer a packet to direction `d` (the queue rule).
    pub fn offer(&mut self, d: usize, pkt: PacketHandle) -> Offer {
        let cap = self.queue_cap as usize;
        let dir = &mut self.dirs[d];
        if !dir.busy {
            dir.busy = true;
            Offer::StartNow
        } else if dir.queue.len() < cap {
            dir.queue.push_back(pkt);
            dir.queue_peak = dir.queue_peak.max(dir.queue.len() as u32);
            Offer::Queued
        } else {
            dir.stats.lost_queue += 1;
            Offer::Dropped
        }
    }

    /// Serialisation time of `bytes` on this link.
    pub fn tx_time(&self, bytes: usize) -> SimDuration {
        SimDuration::transmission(bytes as u64, self.rate_bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large fleet has one access link per sensor (mqttsn-10k: 10,012
    /// links): 288 bytes a link before the wait queue was boxed and the
    /// queue peak left [`DirStats`].
    #[test]
    fn a_link_stays_small() {
        let size = std::mem::size_of::<Link>();
        assert!(size <= 256, "Link is {size} bytes");
    }

    /// The boxed queue is FIFO and counts what waits.
    #[test]
    fn the_wait_queue_is_fifo() {
        let mut q = WaitQueue::default();
        assert!(q.is_empty() && q.pop_front().is_none());
        for i in 0..3 {
            q.push_back(PacketHandle(i));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop_front(), Some(PacketHandle(0)));
        assert_eq!(q.pop_front(), Some(PacketHandle(1)));
        assert_eq!(q.len(), 1);
    }
}
