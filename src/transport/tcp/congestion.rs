//! NewReno congestion control (RFC 5681, RFC 6582) with the initial window
//! of RFC 6928, in bytes. The connection reports ACKs, duplicate ACKs and
//! timeouts; this says how much may be in flight and when to retransmit.
//!
//! - Initial window (RFC 6928): min(10·MSS, max(2·MSS, 14600)) — or the
//!   RFC 5681 value min(4·MSS, max(2·MSS, 4380)) with `iw10 = false`.
//! - Slow start (cwnd < ssthresh): cwnd += min(acked, MSS) per ACK
//!   (RFC 5681 §3.1, appropriate byte counting with L = 1 MSS).
//! - Congestion avoidance: cwnd += MSS·MSS/cwnd per ACK (≥ 1 byte).
//! - Third duplicate ACK: fast retransmit; ssthresh = max(FlightSize/2,
//!   2·MSS); cwnd = ssthresh + 3·MSS; recover = highest sequence sent
//!   (RFC 6582 §3.2 step 2). Further duplicates inflate cwnd by MSS.
//! - In recovery, a partial ACK (below `recover`) retransmits the next hole
//!   and deflates cwnd by the newly acknowledged amount minus one MSS
//!   (RFC 6582 §3.2 step 4); a full ACK ends recovery with cwnd =
//!   min(ssthresh, FlightSize + MSS) (step 3).
//! - Retransmission timeout: ssthresh = max(FlightSize/2, 2·MSS), cwnd =
//!   1·MSS (the loss window, RFC 5681 §3.1), recovery abandoned.

/// What the connection should do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Retransmit the segment starting at the first unacknowledged byte.
    FastRetransmit,
    /// In recovery: retransmit the first unacknowledged byte (next hole).
    RetransmitHole,
}

/// NewReno state, all in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    dupacks: u32,
    /// `Some(recover)` while in fast recovery.
    recover: Option<u32>,
}

impl NewReno {
    pub fn new(mss: u32, iw10: bool) -> Self {
        let mss = mss.max(1);
        let iw = if iw10 {
            (10 * mss).min((2 * mss).max(14_600))
        } else {
            (4 * mss).min((2 * mss).max(4_380))
        };
        NewReno {
            mss,
            cwnd: iw,
            ssthresh: u32::MAX,
            dupacks: 0,
            recover: None,
        }
    }
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }
    pub fn ssthresh(&self) -> u32 {
        self.ssthresh
    }
    pub fn in_recovery(&self) -> bool {
        self.recover.is_some()
    }

    fn half_flight(&self, flight: u32) -> u32 {
        (flight / 2).max(2 * self.mss)
    }

    /// A cumulative ACK advanced `snd_una` to `ack` acknowledging `acked`
    /// new bytes; `flight` is the bytes still outstanding after it.
    pub fn on_ack(&mut self, ack: u32, acked: u32, flight: u32) -> Action {
        self.dupacks = 0;
        if let Some(recover) = self.recover {
            // sequence comparison modulo 2^32 (RFC 9293 §3.4)
            if (ack.wrapping_sub(recover) as i32) >= 0 {
                self.recover = None;
                self.cwnd = self.ssthresh.min(flight + self.mss);
                return Action::Nothing;
            }
            self.cwnd = self
                .cwnd
                .saturating_sub(acked)
                .saturating_add(self.mss)
                .max(self.mss);
            return Action::RetransmitHole;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.saturating_add(acked.min(self.mss));
        } else {
            let inc =
                ((u64::from(self.mss) * u64::from(self.mss)) / u64::from(self.cwnd.max(1))).max(1);
            self.cwnd = self.cwnd.saturating_add(inc as u32);
        }
        Action::Nothing
    }

    /// A duplicate ACK; `flight` outstanding bytes, `snd_max` the highest
    /// sequence number sent.
    pub fn on_dupack(&mut self, flight: u32, snd_max: u32) -> Action {
        if self.recover.is_some() {
            self.cwnd = self.cwnd.saturating_add(self.mss);
            return Action::Nothing;
        }
        self.dupacks += 1;
        if self.dupacks == 3 {
            self.ssthresh = self.half_flight(flight);
            self.cwnd = self.ssthresh + 3 * self.mss;
            self.recover = Some(snd_max);
            return Action::FastRetransmit;
        }
        Action::Nothing
    }

    /// The retransmission timer expired.
    pub fn on_timeout(&mut self, flight: u32) {
        self.ssthresh = self.half_flight(flight);
        self.cwnd = self.mss;
        self.dupacks = 0;
        self.recover = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn initial_windows() {
        assert_eq!(NewReno::new(1460, true).cwnd(), 14_600);
        assert_eq!(NewReno::new(1000, true).cwnd(), 10_000);
        assert_eq!(NewReno::new(536, false).cwnd(), 2144);
        assert_eq!(NewReno::new(1460, false).cwnd(), 4380);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(MSS, true);
        // one RTT of ACKs for a full window doubles it
        for _ in 0..10 {
            c.on_ack(0, MSS, 0);
        }
        assert_eq!(c.cwnd(), 20_000);
        c.on_timeout(20_000);
        assert_eq!((c.cwnd(), c.ssthresh()), (MSS, 10_000));
        while c.cwnd() < c.ssthresh() {
            c.on_ack(0, MSS, 0);
        }
        let w = c.cwnd();
        // avoidance: about one MSS per window of ACKs
        for _ in 0..(w / MSS) {
            c.on_ack(0, MSS, 0);
        }
        assert!(c.cwnd() > w && c.cwnd() <= w + MSS, "{} vs {w}", c.cwnd());
    }

    #[test]
    fn third_dupack_fast_retransmits_and_newreno_recovers_two_losses() {
        let mut c = NewReno::new(MSS, true);
        // 10 segments out (0..10000); segments 0 and 5000 lost
        assert_eq!(c.on_dupack(10_000, 10_000), Action::Nothing);
        assert_eq!(c.on_dupack(10_000, 10_000), Action::Nothing);
        assert_eq!(c.on_dupack(10_000, 10_000), Action::FastRetransmit);
        assert_eq!(c.ssthresh(), 5000);
        assert_eq!(c.cwnd(), 8000);
        c.on_dupack(10_000, 10_000);
        assert_eq!(c.cwnd(), 9000, "inflated by further duplicates");
        // partial ACK up to the second hole at 5000: retransmit it, stay in recovery
        assert_eq!(c.on_ack(5000, 5000, 5000), Action::RetransmitHole);
        assert!(c.in_recovery());
        // full ACK covers `recover`: recovery ends without a timeout
        assert_eq!(c.on_ack(10_000, 5000, 0), Action::Nothing);
        assert!(!c.in_recovery());
        assert_eq!(c.cwnd(), 1000, "min(ssthresh 5000, flight 0 + MSS)");
    }
}
