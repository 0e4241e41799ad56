//! Channel access of every member (IEEE 802.15.4-2006 §7.5.1.4 unslotted
//! CSMA-CA): queueing, the wake-window and duty-limit deferral, backoff, CCA,
//! the RX→TX turnaround and the start of a data frame; the MAC timer
//! dispatch, ACK timeouts and interferer bursts. The end of a transmission
//! (verdicts, delivery, ACKs) is in `exchange.rs`.

use super::*;

impl World<'_> {
    pub(super) fn mac_enqueue(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
        dst: u32,
        pkt: PacketHandle,
    ) {
        let cap = self.spec(medium).mac.queue as usize;
        let mn = &mut self.radio.media[medium].mac[member as usize];
        if !mn.up {
            return self.mac_drop(now, medium, member, dst, pkt, MacDrop::NodeDown, false);
        }
        if mn.queue.len() > cap {
            return self.mac_drop(now, medium, member, dst, pkt, MacDrop::Queue, false);
        }
        mn.seq = mn.seq.wrapping_add(1);
        let seq = mn.seq;
        mn.queue.push_back(Frame {
            pkt,
            dst,
            seq,
            attempts: 0,
            reached: false,
            start: now,
        });
        if mn.state == MacState::Idle {
            self.mac_start(now, queue, medium, member);
        }
    }

    pub(super) fn set_timer(
        &mut self,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
        at: SimTime,
    ) {
        let mn = &mut self.radio.media[medium].mac[member as usize];
        mn.gen = mn.gen.wrapping_add(1);
        let _ = queue.push(
            at,
            Ev::Radio {
                m: medium as u16,
                kind: K_MAC,
                idx: member,
                gen: mn.gen,
            },
        );
    }

    /// Begin channel access for the frame at the head of `n`'s queue.
    pub(super) fn mac_start(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
    ) {
        let duty = self.spec(medium).duty;
        let rm = &mut self.radio.media[medium];
        let any_duty = rm.any_duty;
        let Some(&head) = rm.mac[member as usize].queue.front() else {
            rm.mac[member as usize].state = MacState::Idle;
            return self.refresh(now, medium, member);
        };
        let mut t = now.max(rm.mac[member as usize].next_tx);
        if rm.mac[member as usize].acking() {
            // the radio owes an ACK (no CSMA before it): start after it is sent
            let ack = rm.medium.airtime(mac154::ACK_PSDU_BYTES);
            let ta = rm.medium.phy.turnaround;
            t = t.max(now + ta + ack + ta);
        }
        let sleepy = if head.dst == BCAST {
            any_duty
        } else {
            rm.mac[head.dst as usize].duty
        };
        if let (true, Some(dc)) = (sleepy, duty) {
            // synchronous duty cycle: wait for the receivers' next wake window
            if dc.awake_ns(t, t + SimDuration::from_nanos(1)) == 0 {
                let p = dc.period.as_nanos().max(1);
                t = SimTime((t.as_nanos() / p + 1) * p);
            }
        }
        if t > now {
            rm.mac[member as usize].state = MacState::Deferred;
            self.set_timer(queue, medium, member, t);
            return self.refresh(now, medium, member);
        }
        self.mac_access(now, queue, medium, member);
    }

    fn mac_access(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, medium: usize, member: u32) {
        let mac = self.spec(medium).mac;
        if mac.csma {
            let mn = &mut self.radio.media[medium].mac[member as usize];
            mn.nb = 0;
            mn.be = mac.min_be;
            self.mac_backoff(now, queue, medium, member);
        } else {
            self.mac_turnaround(now, queue, medium, member);
        }
    }

    fn mac_backoff(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
    ) {
        let unit = self.spec(medium).mac.unit_backoff;
        let mn = &mut self.radio.media[medium].mac[member as usize];
        let slots = mn.rng.below(1u64 << mn.be);
        mn.state = MacState::Backoff;
        self.set_timer(queue, medium, member, now + unit.saturating_mul(slots));
        self.refresh(now, medium, member);
    }

    fn mac_turnaround(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
    ) {
        let ta = self.spec(medium).phy.turnaround;
        let rm = &mut self.radio.media[medium];
        rm.mac[member as usize].state = MacState::Turnaround;
        rm.medium.set_deaf(member);
        self.set_timer(queue, medium, member, now + ta);
        self.refresh(now, medium, member);
    }

    fn cca_busy(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, medium: usize, member: u32) {
        let mac = self.spec(medium).mac;
        let mn = &mut self.radio.media[medium].mac[member as usize];
        mn.nb += 1;
        mn.be = (mn.be + 1).min(mac.max_be);
        if mn.nb > mac.max_backoffs {
            // channel access failure: reported upward, the frame is dropped
            if let Some(f) = mn.queue.pop_front() {
                self.mac_drop(
                    now,
                    medium,
                    member,
                    f.dst,
                    f.pkt,
                    MacDrop::CcaFail,
                    f.reached,
                );
            }
            self.mac_start(now, queue, medium, member);
        } else {
            self.mac_backoff(now, queue, medium, member);
        }
    }

    /// A radio event.
    pub(crate) fn on_radio(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        kind: u8,
        idx: u32,
        gen: u32,
    ) {
        match kind {
            K_MAC => {
                let mn = &self.radio.media[medium].mac[idx as usize];
                if mn.gen == gen && mn.up {
                    self.on_mac_timer(now, queue, medium, idx);
                }
            }
            K_TX_END => self.on_tx_end(now, queue, medium, idx),
            K_ACK => self.on_ack_start(now, queue, medium, idx, gen),
            _ => self.on_interferer(now, queue, medium, idx as usize),
        }
    }

    pub(super) fn on_mac_timer(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
    ) {
        let cca = self.spec(medium).mac.cca_duration;
        let state = self.radio.media[medium].mac[member as usize].state;
        match state {
            MacState::Deferred => self.mac_access(now, queue, medium, member),
            MacState::Backoff => {
                if self.radio.media[medium].mac[member as usize].acking() {
                    return self.cca_busy(now, queue, medium, member);
                }
                let rm = &mut self.radio.media[medium];
                rm.mac[member as usize].state = MacState::Cca;
                rm.medium.start_cca(member);
                self.set_timer(queue, medium, member, now + cca);
                self.refresh(now, medium, member);
            }
            MacState::Cca => {
                let rm = &mut self.radio.media[medium];
                let busy = rm.medium.end_cca(member) || rm.mac[member as usize].acking();
                if busy {
                    self.cca_busy(now, queue, medium, member);
                } else {
                    self.mac_turnaround(now, queue, medium, member);
                }
            }
            MacState::Turnaround => self.mac_transmit(now, queue, medium, member),
            MacState::WaitAck => self.on_ack_timeout(now, queue, medium, member),
            MacState::Idle | MacState::Tx => {}
        }
    }

    /// Whether member `r` can receive at `now` (up, and awake if duty-cycled).
    pub(super) fn hear_fn<'a>(
        mac: &'a [MacNode],
        duty: Option<crate::link::energy::DutyCycle>,
        now: SimTime,
    ) -> impl FnMut(u32) -> bool + 'a {
        move |r: u32| {
            let mn = &mac[r as usize];
            let idle = matches!(
                mn.state,
                MacState::Idle | MacState::Deferred | MacState::Backoff
            );
            mn.up
                && !(mn.dozing && idle)
                && (!mn.duty
                    || !idle
                    || duty
                        .is_some_and(|dc| dc.awake_ns(now, now + SimDuration::from_nanos(1)) == 1))
        }
    }

    fn mac_transmit(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
    ) {
        let Some(&head) = self.radio.media[medium].mac[member as usize].queue.front() else {
            return self.mac_start(now, queue, medium, member);
        };
        let (psdu, ppdu) = self.frame_bytes(medium, head.pkt, head.dst == BCAST);
        let spec = self.spec(medium);
        let (duty, limit) = (spec.duty, spec.mac.tx_duty_limit);
        let rm = &mut self.radio.media[medium];
        let airtime = rm.medium.airtime(psdu);
        let mut locks = std::mem::take(&mut self.radio.locks);
        let tx = {
            let hear = Self::hear_fn(&rm.mac, duty, now);
            rm.medium.begin_tx(now, member, psdu, hear, &mut locks)
        };
        self.radio.locks = locks;
        if rm.tags.len() <= tx as usize {
            rm.tags.resize(tx as usize + 1, TxTag::Interferer);
        }
        rm.tags[tx as usize] = TxTag::Data { n: member };
        let mn = &mut rm.mac[member as usize];
        mn.state = MacState::Tx;
        mn.tx = Some(tx);
        if let Some(lim) = limit {
            // transmit duty cycle: silent for airtime·(1/limit − 1) after the frame
            let quiet = (airtime.as_nanos() as f64 * (1.0 / lim - 1.0)).ceil() as u64;
            mn.next_tx = now + airtime + SimDuration::from_nanos(quiet);
        }
        let retry = head.attempts > 0;
        if let Some(f) = mn.queue.front_mut() {
            f.attempts += 1;
            f.start = now;
        }
        let _ = queue.push(
            now + airtime,
            Ev::Radio {
                m: medium as u16,
                kind: K_TX_END,
                idx: tx,
                gen: 0,
            },
        );
        self.count_frame_bytes(medium, head.pkt, ppdu, retry);
        self.capture_data(now, medium, member, head);
        self.refresh(now, medium, member);
        self.refresh_locks(now, medium);
    }

    pub(super) fn on_ack_timeout(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
    ) {
        let max = self.spec(medium).mac.max_frame_retries;
        let mn = &mut self.radio.media[medium].mac[member as usize];
        let Some(&f) = mn.queue.front() else {
            return self.mac_start(now, queue, medium, member);
        };
        if f.attempts > max {
            mn.queue.pop_front();
            self.mac_drop(now, medium, member, f.dst, f.pkt, MacDrop::NoAck, f.reached);
        }
        self.mac_start(now, queue, medium, member);
    }

    pub(super) fn on_interferer(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        interferer: usize,
    ) {
        let it = self.spec(medium).interferers[interferer].clone();
        let rm = &mut self.radio.media[medium];
        let s = rm.medium.interferer_sender(interferer);
        let mut locks = std::mem::take(&mut self.radio.locks);
        let tx = rm.medium.begin_tx(now, s, 0, |_| false, &mut locks);
        self.radio.locks = locks;
        if rm.tags.len() <= tx as usize {
            rm.tags.resize(tx as usize + 1, TxTag::Interferer);
        }
        rm.tags[tx as usize] = TxTag::Interferer;
        let _ = queue.push(
            now + it.burst,
            Ev::Radio {
                m: medium as u16,
                kind: K_TX_END,
                idx: tx,
                gen: 0,
            },
        );
        let _ = queue.push(
            now + it.period,
            Ev::Radio {
                m: medium as u16,
                kind: K_INTERF,
                idx: interferer as u32,
                gen: 0,
            },
        );
    }
}
