//! Stateful fuzz target `tcp_pair`: two real [`Connection`]s (a client
//! that connects, a server that listens) joined by a channel whose every
//! segment's fate — delivered, dropped, duplicated, delayed past later
//! ones — is read from the input, with writes and reads on both sides and
//! time advances in between.
//!
//! Layout: byte 0 picks the profiles (bit 0 client Linux-like instead of
//! RFC, bit 1 server likewise) and bits 2–3 the path MTU (1500, 576, 296,
//! 1280); bytes 1–4 the two initial sequence numbers (`× 65 537`, so runs
//! start near the 2^32 wrap too); then actions, see [`run`].
//!
//! Invariants (a panic reports a broken one):
//! * stream integrity: what each side has read is exactly a prefix of
//!   what the other side wrote (each side writes a position-dependent
//!   pattern, so a lost, repeated or misplaced byte shows);
//! * every segment a connection emits decodes with the segment codec, to
//!   the sequence number, flags and payload length it reported;
//! * liveness, bounded: when the input ends the channel stops losing;
//!   unless a forged segment was injected or a side was closed, reset or
//!   gave up, every byte written arrives within a bounded number of
//!   steps (at most [`DRAIN_STEPS`] wake-ups);
//! * nothing panics.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::sim::{SimDuration, SimTime};
use crate::transport::tcp::segment::TcpRepr;
use crate::transport::tcp::{Connection, Event, Profile, Segment};

use super::Script;

const ADDR: [SocketAddrV4; 2] = [
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40_000),
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 1883),
];
const MTUS: [u16; 4] = [1500, 576, 296, 1280];
/// One-way delay of the channel.
const DELAY: SimDuration = SimDuration::from_millis(10);
/// Wake-ups the final lossless phase may take to deliver everything.
pub const DRAIN_STEPS: usize = 20_000;

/// Deliberate faults, so tests can show that each check fires.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpFaults {
    /// `Connection::mutant_deliver_out_of_order` on both sides: the
    /// receiver takes out-of-order data as the next bytes.
    pub out_of_order: bool,
    /// Check every emitted segment with its last byte cut off.
    pub truncate_emitted: bool,
    /// The model counts one byte more as written by side 0 than the
    /// connection took: a byte that can never arrive.
    pub phantom_write: bool,
}

struct Flight {
    at: SimTime,
    order: u64,
    to: usize,
    bytes: Vec<u8>,
}

struct Pair {
    now: SimTime,
    conns: [Connection; 2],
    /// Bytes each side's application wrote (accepted by `write`).
    written: [usize; 2],
    /// Bytes each side's application read.
    read: [Vec<u8>; 2],
    flights: Vec<Flight>,
    order: u64,
    /// The last segment each side emitted, for forged copies.
    last: [Vec<u8>; 2],
    forged: bool,
    closed: bool,
    broken: bool,
    faults: TcpFaults,
    buf: Vec<u8>,
}

/// Byte `i` of side `side`'s stream: position-dependent and not periodic
/// with any small period, so a misplaced chunk does not match.
fn pattern(side: usize, i: usize) -> u8 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9) ^ ((i as u64) >> 7) ^ (side as u64 * 0x5555);
    (x ^ (x >> 13)) as u8
}

impl Pair {
    fn new(s: &mut Script<'_>, faults: TcpFaults) -> Pair {
        let b = s.byte();
        let profile = |bit: u8| {
            if b & bit != 0 {
                Profile::LinuxLike
            } else {
                Profile::Rfc
            }
        };
        let mtu = MTUS[usize::from((b >> 2) & 3)];
        let iss_c = u32::from(s.u16()).wrapping_mul(65_537);
        let iss_s = u32::from(s.u16()).wrapping_mul(65_537);
        let mut client = Connection::connect(profile(1).config(), ADDR[0], ADDR[1], mtu, iss_c);
        let mut server = Connection::listen(profile(2).config(), ADDR[1], mtu, iss_s);
        if faults.out_of_order {
            client.mutant_deliver_out_of_order();
            server.mutant_deliver_out_of_order();
        }
        Pair {
            now: SimTime::ZERO,
            conns: [client, server],
            written: [0; 2],
            read: [Vec::new(), Vec::new()],
            flights: Vec::new(),
            order: 0,
            last: [Vec::new(), Vec::new()],
            forged: false,
            closed: false,
            broken: false,
            faults,
            buf: Vec::with_capacity(2048),
        }
    }

    fn write(&mut self, side: usize, n: usize) {
        let start = self.written[side];
        let data: Vec<u8> = (start..start + n).map(|i| pattern(side, i)).collect();
        self.written[side] += self.conns[side].write(&data);
    }

    /// Read up to `max` bytes on `side` and check them.
    fn read(&mut self, side: usize, max: usize) {
        let mut tmp = [0u8; 1024];
        let mut left = max;
        while left > 0 {
            let n = self.conns[side].read(&mut tmp[..left.min(1024)]);
            if n == 0 {
                break;
            }
            left -= n;
            let from = self.read[side].len();
            for (k, &got) in tmp[..n].iter().enumerate() {
                let i = from + k;
                assert!(
                    i < self.written[1 - side],
                    "side {side} read byte {i}, but only {} were written",
                    self.written[1 - side]
                );
                assert_eq!(
                    got,
                    pattern(1 - side, i),
                    "side {side} read a wrong byte at stream offset {i}"
                );
            }
            self.read[side].extend_from_slice(&tmp[..n]);
        }
    }

    /// Take every segment both sides have to send; `fate` gives each one
    /// its copies' extra delays (none: dropped).
    fn transmit(&mut self, mut fate: impl FnMut(&[u8]) -> Vec<SimDuration>) {
        for side in 0..2 {
            loop {
                self.buf.clear();
                let Some(info) = self.conns[side].poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                assert_eq!(info.len, self.buf.len(), "transmit length != bytes written");
                let cut = usize::from(self.faults.truncate_emitted);
                let seg = &self.buf[..self.buf.len().saturating_sub(cut)];
                let (repr, payload) = TcpRepr::parse_unchecked(seg).unwrap_or_else(|e| {
                    panic!("emitted segment does not decode: {e} ({info:?}) {seg:02x?}")
                });
                assert_eq!(repr.seq, info.seq, "emitted segment: sequence number");
                assert_eq!(repr.flags, info.flags, "emitted segment: flags");
                assert_eq!(payload.len(), info.payload_len, "emitted segment: payload");
                for d in fate(&self.buf) {
                    self.order += 1;
                    self.flights.push(Flight {
                        at: self.now + DELAY + d,
                        order: self.order,
                        to: 1 - side,
                        bytes: self.buf.clone(),
                    });
                }
                self.last[side].clone_from(&self.buf);
            }
        }
    }

    fn deliver(&mut self, to: usize, bytes: &[u8]) {
        let src = *ADDR[1 - to].ip();
        let dst = *ADDR[to].ip();
        let _ = self.conns[to].handle_input(self.now, Segment::new(src, dst, bytes));
    }

    /// Move time to `t`: deliver due segments in (time, order), fire due
    /// timers, note events.
    fn advance_to(&mut self, t: SimTime) {
        self.now = self.now.max(t);
        loop {
            let due = self
                .flights
                .iter()
                .enumerate()
                .filter(|(_, f)| f.at <= self.now)
                .min_by_key(|(_, f)| (f.at, f.order))
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let f = self.flights.swap_remove(i);
            self.deliver(f.to, &f.bytes);
        }
        for c in &mut self.conns {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        self.events();
    }

    fn events(&mut self) {
        for c in &mut self.conns {
            while let Some(e) = c.poll_event() {
                if matches!(e, Event::Reset | Event::ConnectionLost { .. }) {
                    self.broken = true;
                }
            }
        }
    }

    fn next_wakeup(&self) -> Option<SimTime> {
        let f = self.flights.iter().map(|f| f.at).min();
        [
            f,
            self.conns[0].poll_timeout(),
            self.conns[1].poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn complete(&self) -> bool {
        self.read[0].len() == self.written[1] && self.read[1].len() == self.written[0]
    }

    /// The input ended: lossless channel (unless faulted), both sides
    /// read everything, time jumps to each wake-up.
    fn drain(&mut self) {
        if self.faults.phantom_write {
            self.written[0] += 1;
        }
        for _ in 0..DRAIN_STEPS {
            self.read(0, usize::MAX);
            self.read(1, usize::MAX);
            self.transmit(|_| vec![SimDuration::ZERO]);
            self.events();
            if self.complete() {
                return;
            }
            let Some(t) = self.next_wakeup() else { break };
            self.advance_to(t);
        }
        if !(self.forged || self.closed || self.broken) {
            assert!(
                self.complete(),
                "stream stalled: side 0 read {} of {}, side 1 read {} of {} \
                 (states {:?}, {:?})",
                self.read[0].len(),
                self.written[1],
                self.read[1].len(),
                self.written[0],
                self.conns[0].state(),
                self.conns[1].state()
            );
        }
    }
}

/// Play `data` against a connection pair with `faults` (none for the fuzz
/// target).
///
/// Actions (opcode `% 7`, then arguments; a missing byte reads as 0):
/// 0 write `side n` (`(n + 1) × 16` bytes of the side's pattern);
/// 1 read `side n` (up to `n × 64` bytes, 0 = all); 2 transmit: every
/// segment waiting on both sides leaves, each with a fate byte `f`
/// (`f % 8`: 0–3 delivered, 4 dropped, 5 duplicated, 6–7 delivered after
/// an extra `(f >> 3) × 5 ms`, which reorders it); 3 advance time by
/// `(b + 1) × 10 ms` `b`; 4 jump to the next wake-up; 5 close `side`;
/// 6 forge: the last segment of `side` again with byte `at` (from 8 on:
/// acknowledgment, flags, window, checksum, urgent pointer, options —
/// never the sequence number or data offset) set to `v` `side at v`.
/// Then the drain phase (see the module doc).
pub fn run(data: &[u8], faults: TcpFaults) {
    let mut s = Script::new(data);
    let mut p = Pair::new(&mut s, faults);
    while !s.done() {
        let op = s.byte() % 7;
        match op {
            0 => {
                let side = usize::from(s.byte() & 1);
                let n = (usize::from(s.byte()) + 1) * 16;
                p.write(side, n);
            }
            1 => {
                let side = usize::from(s.byte() & 1);
                let n = usize::from(s.byte()) * 64;
                p.read(side, if n == 0 { usize::MAX } else { n });
            }
            2 => p.transmit(|_| {
                let f = s.byte();
                match f % 8 {
                    4 => vec![],
                    5 => vec![SimDuration::ZERO, SimDuration::ZERO],
                    6 | 7 => vec![SimDuration::from_millis(u64::from(f >> 3) * 5)],
                    _ => vec![SimDuration::ZERO],
                }
            }),
            3 => {
                let t = p.now + SimDuration::from_millis((u64::from(s.byte()) + 1) * 10);
                p.advance_to(t);
            }
            4 => {
                if let Some(t) = p.next_wakeup() {
                    p.advance_to(t);
                }
            }
            5 => {
                let side = usize::from(s.byte() & 1);
                p.conns[side].close();
                p.closed = true;
                p.events();
            }
            _ => {
                let side = usize::from(s.byte() & 1);
                let at = 8 + usize::from(s.byte());
                let v = s.byte();
                let mut seg = p.last[side].clone();
                // bytes 4..8 sequence number, 12 data offset: left alone,
                // so a forgery never places data elsewhere in the stream
                let header = TcpRepr::parse_unchecked(&seg).map_or(0, |(r, _)| r.header_len());
                if at < header && at != 12 {
                    seg[at] = v;
                    p.forged = true;
                    p.deliver(1 - side, &seg);
                    p.events();
                }
            }
        }
    }
    p.drain();
}
