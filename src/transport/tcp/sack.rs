//! Sender-side SACK scoreboard (RFC 2018, RFC 6675 "pipe") and RACK-TLP
//! loss detection (RFC 8985) for the `linux-like` profile.
//!
//! One [`TxSeg`] per segment sent, in sequence order, from SND.UNA to
//! SND.MAX; a retransmission keeps the segment's boundaries and moves its
//! transmit time. Loss is decided by time, as Linux does since 4.18 (RACK):
//! a segment is lost when one sent after it was delivered (cumulatively
//! acknowledged or SACKed) and more than RACK.rtt + RACK.reo_wnd has passed
//! since it was sent (RFC 8985 §6.2). Without SACK the connection keeps the
//! RFC 5681/6582 duplicate-ACK machinery; this module is used only when
//! SACK was negotiated. Allocated once per connection (boxed); the segment
//! list is given back whenever everything sent is acknowledged, so an idle
//! connection holds none.

use super::congestion::{seq_le, seq_lt};
use crate::sim::SimTime;

/// Segment flag: delivered by a SACK block.
const SACKED: u8 = 1;
/// Segment flag: marked lost, not yet retransmitted.
const LOST: u8 = 2;
/// Segment flag: retransmitted at least once.
const RETRANS: u8 = 4;

/// One sent segment `[start, end)` (a FIN counts as one sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxSeg {
    pub start: u32,
    pub end: u32,
    /// Time of the latest (re)transmission.
    pub xmit: SimTime,
    flags: u8,
}

impl TxSeg {
    /// Delivered by a SACK block (not yet cumulatively acknowledged).
    pub fn sacked(&self) -> bool {
        self.flags & SACKED != 0
    }
    /// Marked lost and waiting for its retransmission.
    pub fn lost(&self) -> bool {
        self.flags & LOST != 0
    }
    /// Retransmitted at least once.
    pub fn retransmitted(&self) -> bool {
        self.flags & RETRANS != 0
    }
    fn len(&self) -> u32 {
        self.end.wrapping_sub(self.start)
    }
}

/// What one ACK told the scoreboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// RTT of the oldest newly cumulatively acknowledged segment that was
    /// never retransmitted (Karn-safe), ns.
    pub rtt_ns: Option<u64>,
    /// Some cumulatively acknowledged byte had been retransmitted.
    pub acked_retransmitted: bool,
    /// Segments newly delivered (cumulatively or by SACK).
    pub delivered: u32,
}

/// The scoreboard and RACK/TLP state of one connection.
#[derive(Debug, Clone, Default)]
pub struct Scoreboard {
    segs: Vec<TxSeg>,
    /// RACK.xmit_ts / RACK.end_seq / RACK.rtt of the most recently sent
    /// segment known delivered (RFC 8985 §6.1).
    rack_xmit: Option<SimTime>,
    rack_end: u32,
    rack_rtt: u64,
    /// Smallest RTT seen (RACK.min_RTT), ns; 0 = none yet.
    min_rtt: u64,
    /// Reordering was observed (RACK.reord).
    reord: bool,
    /// Highest sequence delivered by a SACK block (RACK.fack).
    fack: u32,
    /// TLP episode: `TLP.end_seq` and whether the probe was a
    /// retransmission (RFC 8985 §7.3).
    pub tlp_end: Option<u32>,
    pub tlp_retrans: bool,
    /// After an RTO: SND.MAX − 1 at the timeout; the loss state (Linux
    /// CA_Loss) lasts until the cumulative ACK passes it.
    pub loss_point: Option<u32>,
}

impl Scoreboard {
    /// Segments outstanding, oldest first.
    pub fn segments(&self) -> &[TxSeg] {
        &self.segs
    }

    /// Forget everything (connection closed).
    pub fn clear(&mut self) {
        self.segs = Vec::new();
        self.tlp_end = None;
        self.loss_point = None;
    }

    /// New data `[start, end)` sent at `now`.
    pub fn on_send(&mut self, start: u32, end: u32, now: SimTime) {
        if let Some(last) = self.segs.last_mut() {
            // A segment re-sent from the same start with more bytes (never in
            // SACK mode, but keep the list consistent if it happens).
            if seq_lt(start, last.end) {
                last.end = end;
                last.xmit = now;
                return;
            }
        }
        self.segs.push(TxSeg {
            start,
            end,
            xmit: now,
            flags: 0,
        });
    }

    /// Segment `i` was retransmitted at `now`.
    pub fn on_retransmit(&mut self, i: usize, now: SimTime) {
        if let Some(s) = self.segs.get_mut(i) {
            s.xmit = now;
            s.flags = (s.flags & !LOST) | RETRANS;
        }
    }

    /// First segment marked lost (oldest first), as (index, start, end).
    pub fn next_lost(&self) -> Option<(usize, u32, u32)> {
        self.segs
            .iter()
            .enumerate()
            .find(|(_, s)| s.lost() && !s.sacked())
            .map(|(i, s)| (i, s.start, s.end))
    }

    /// Last segment not SACKed (the TLP retransmission), as (index, start,
    /// end).
    pub fn last_unsacked(&self) -> Option<(usize, u32, u32)> {
        self.segs
            .iter()
            .enumerate()
            .rev()
            .find(|(_, s)| !s.sacked())
            .map(|(i, s)| (i, s.start, s.end))
    }

    /// Transmit time of the oldest outstanding segment.
    pub fn head_xmit(&self) -> Option<SimTime> {
        self.segs.first().map(|s| s.xmit)
    }

    /// Segments outstanding (not cumulatively acknowledged).
    pub fn outstanding(&self) -> usize {
        self.segs.len()
    }

    /// RFC 6675 §4 pipe: bytes neither SACKed nor marked lost (a lost
    /// segment counts again once retransmitted, when its mark is cleared).
    pub fn pipe(&self) -> u32 {
        self.segs
            .iter()
            .filter(|s| s.flags & (SACKED | LOST) == 0)
            .map(TxSeg::len)
            .sum()
    }

    /// Every segment not SACKed is lost (RTO, RFC 8985 §6.3 / Linux
    /// tcp_enter_loss keeping SACKed segments).
    pub fn mark_all_lost(&mut self) {
        for s in &mut self.segs {
            if !s.sacked() {
                s.flags |= LOST;
            }
        }
        self.tlp_end = None;
    }

    /// Process an ACK: cumulative `ack` and SACK `blocks` (absolute
    /// sequence numbers), at `now`. Updates RACK (RFC 8985 §6.2 steps 1–3).
    pub fn on_ack(&mut self, now: SimTime, ack: u32, blocks: &[(u32, u32)]) -> Delivery {
        let mut d = Delivery::default();
        let rack = |sb_min: &mut u64, s: &TxSeg, out: &mut (Option<SimTime>, u32, u64)| {
            let rtt = now.saturating_since(s.xmit).as_nanos();
            // Step 2: a retransmitted segment delivered sooner than the
            // minimum RTT is the original's ACK; do not take its time.
            if s.retransmitted() && rtt < *sb_min {
                return;
            }
            if !s.retransmitted() && (*sb_min == 0 || rtt < *sb_min) {
                *sb_min = rtt.max(1);
            }
            let newer = match out.0 {
                None => true,
                Some(x) => s.xmit > x || (s.xmit == x && seq_lt(out.1, s.end)),
            };
            if newer {
                *out = (Some(s.xmit), s.end, rtt);
            }
        };
        let mut state = (self.rack_xmit, self.rack_end, self.rack_rtt);
        let mut min_rtt = self.min_rtt;
        // Cumulatively acknowledged segments.
        let mut n = 0;
        for s in &self.segs {
            if !seq_le(s.end, ack) {
                break;
            }
            n += 1;
            if !s.sacked() {
                d.delivered += 1;
                if s.retransmitted() {
                    d.acked_retransmitted = true;
                } else if d.rtt_ns.is_none() {
                    d.rtt_ns = Some(now.saturating_since(s.xmit).as_nanos());
                }
                if !s.retransmitted() && seq_lt(s.end, self.fack) {
                    // Delivered below a SACKed sequence without being
                    // retransmitted: the network reordered (RFC 8985 §6.2
                    // step 1, RACK.reord).
                    self.reord = true;
                }
                rack(&mut min_rtt, s, &mut state);
            }
        }
        self.segs.drain(..n);
        if self.segs.is_empty() {
            // Give the list back while nothing is outstanding: an idle
            // connection (most of a million clients') keeps no segment
            // storage; the next send allocates it again.
            self.segs = Vec::new();
        }
        if let Some(first) = self.segs.first_mut() {
            // A cumulative ACK inside a segment (never at our boundaries,
            // but a peer may trim): keep the rest.
            if seq_lt(first.start, ack) && seq_lt(ack, first.end) {
                first.start = ack;
            }
        }
        // SACKed segments.
        for &(l, r) in blocks {
            if !seq_lt(ack, r) {
                continue; // below the cumulative ACK (a D-SACK or stale)
            }
            for s in &mut self.segs {
                if seq_le(l, s.start) && seq_le(s.end, r) && !s.sacked() {
                    s.flags = (s.flags & !LOST) | SACKED;
                    d.delivered += 1;
                    if !s.retransmitted() && seq_lt(s.end, self.fack) {
                        self.reord = true;
                    }
                    rack(&mut min_rtt, s, &mut state);
                }
            }
            if seq_lt(self.fack, r) {
                self.fack = r;
            }
        }
        if seq_lt(self.fack, ack) {
            self.fack = ack;
        }
        self.rack_xmit = state.0;
        self.rack_end = state.1;
        self.rack_rtt = state.2;
        self.min_rtt = min_rtt;
        d
    }

    /// RFC 8985 §6.2 step 4: the reordering window.
    fn reo_wnd(&self, srtt_ns: u64, in_recovery: bool) -> u64 {
        if !self.reord {
            if in_recovery {
                return 0;
            }
            let sacked = self.segs.iter().filter(|s| s.sacked()).count();
            if sacked >= 3 {
                return 0;
            }
        }
        (self.min_rtt / 4).min(srtt_ns)
    }

    /// RFC 8985 §6.2 step 5: mark segments lost. Returns how many were
    /// newly marked and the earliest time a still-undecided segment would
    /// be lost (the reordering timer, §6.3).
    pub fn detect_loss(
        &mut self,
        now: SimTime,
        srtt_ns: u64,
        in_recovery: bool,
    ) -> (u32, Option<SimTime>) {
        let Some(rx) = self.rack_xmit else {
            return (0, None);
        };
        let reo = self.reo_wnd(srtt_ns, in_recovery);
        let wait = self.rack_rtt.saturating_add(reo);
        let (mut lost, mut timer) = (0u32, None::<SimTime>);
        let rack_end = self.rack_end;
        for s in &mut self.segs {
            if s.flags & (SACKED | LOST) != 0 {
                continue;
            }
            let before = s.xmit < rx || (s.xmit == rx && seq_lt(s.end, rack_end));
            if !before {
                continue;
            }
            let deadline = s.xmit + crate::sim::SimDuration::from_nanos(wait);
            if deadline <= now {
                s.flags |= LOST;
                lost += 1;
            } else {
                timer = Some(timer.map_or(deadline, |t: SimTime| t.min(deadline)));
            }
        }
        (lost, timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn sack_marks_and_rack_detects_loss_after_rtt() {
        let mut sb = Scoreboard::default();
        for i in 0..4u32 {
            sb.on_send(100 + i * 10, 110 + i * 10, t(u64::from(i)));
        }
        // First segment lost; 2..4 SACKed at 10..13 ms.
        let d = sb.on_ack(t(10), 100, &[(110, 120)]);
        assert_eq!(d.delivered, 1);
        assert_eq!(sb.pipe(), 30);
        // RACK.rtt = 10 - 1 = 9 ms; reo_wnd = min_rtt/4 = 2.25 ms: the first
        // segment (sent at 0) is lost at 0 + 9 + 2.25 ms.
        let (lost, timer) = sb.detect_loss(t(10), 9_000_000, false);
        assert_eq!(lost, 0);
        assert_eq!(timer, Some(SimTime::from_nanos(11_250_000)));
        let (lost, _) = sb.detect_loss(t(12), 9_000_000, false);
        assert_eq!(lost, 1);
        assert_eq!(sb.next_lost(), Some((0, 100, 110)));
        assert_eq!(sb.pipe(), 20);
        sb.on_retransmit(0, t(12));
        assert_eq!(sb.pipe(), 30);
        let d = sb.on_ack(t(22), 140, &[]);
        assert_eq!(d.delivered, 3);
        assert!(d.acked_retransmitted);
        assert_eq!(sb.outstanding(), 0);
        // everything acknowledged: the segment list holds no storage
        assert_eq!(sb.segs.capacity(), 0);
    }

    #[test]
    fn three_sacked_means_no_reordering_window() {
        let mut sb = Scoreboard::default();
        for i in 0..5u32 {
            sb.on_send(i * 10, i * 10 + 10, t(0));
        }
        sb.on_ack(t(8), 0, &[(10, 40)]);
        // Same send time: ordered by end sequence; three SACKed → reo 0.
        let (lost, _) = sb.detect_loss(t(8), 8_000_000, false);
        assert_eq!(lost, 1);
    }

    #[test]
    fn reordering_is_learnt_from_late_original_delivery() {
        let mut sb = Scoreboard::default();
        sb.on_send(0, 10, t(0));
        sb.on_send(10, 20, t(1));
        sb.on_ack(t(5), 0, &[(10, 20)]);
        assert!(!sb.reord);
        sb.on_ack(t(6), 20, &[]);
        assert!(sb.reord);
    }
}
