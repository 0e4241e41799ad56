//! The end of a transmission (IEEE 802.15.4-2006 §7.5.6.4): each
//! receiver's verdict from the medium, delivery of the frame to the IP layer
//! of its receivers (duplicates of a retried frame dropped), the ACK a
//! receiver sends one turnaround later, and what the sender does next.

use super::*;

impl World<'_> {
    pub(super) fn on_tx_end(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        tx: TxId,
    ) {
        let mut results = std::mem::take(&mut self.radio.results);
        let mut locks = std::mem::take(&mut self.radio.locks);
        let tag = {
            let rm = &mut self.radio.media[medium];
            let tag = rm
                .tags
                .get(tx as usize)
                .copied()
                .unwrap_or(TxTag::Interferer);
            // who needs a verdict: a unicast's destination, a broadcast's every receiver
            let target = match tag {
                TxTag::Data { n } => rm.mac[n as usize]
                    .queue
                    .front()
                    .filter(|_| rm.mac[n as usize].tx == Some(tx))
                    .map_or(NONE, |f| f.dst),
                // an ACK cut short by its sender's crash reaches nobody
                TxTag::Ack { n, to, .. } if rm.mac[n as usize].ack_tx == Some(tx) => to,
                TxTag::Ack { .. } => NONE,
                TxTag::Interferer => NONE,
            };
            rm.medium.end_tx(
                tx,
                |r| target == BCAST || r == target,
                &mut results,
                &mut locks,
            );
            tag
        };
        self.radio.locks = locks;
        self.refresh_locks(now, medium);
        match tag {
            TxTag::Data { n } => self.data_end(now, queue, medium, n, tx, &results),
            TxTag::Ack {
                n,
                to,
                seq,
                flow,
                counted,
            } => self.ack_end(
                now,
                queue,
                medium,
                (n, to, seq),
                tx,
                flow,
                counted,
                &results,
            ),
            TxTag::Interferer => {}
        }
        self.radio.results = results;
    }

    pub(super) fn data_end(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        member: u32,
        tx: TxId,
        results: &[RxResult],
    ) {
        let ta = self.spec(medium).phy.turnaround;
        let mac = self.spec(medium).mac;
        let rm = &mut self.radio.media[medium];
        if rm.mac[member as usize].tx != Some(tx) {
            return; // the sender crashed mid-frame: the frame is lost everywhere
        }
        rm.medium.set_hearing(member, now + ta);
        let mn = &mut rm.mac[member as usize];
        mn.tx = None;
        let Some(frame) = mn.queue.front().copied() else {
            return;
        };
        let meta = self.pool.get(frame.pkt).meta;
        let (_, ppdu) = self.frame_bytes(medium, frame.pkt, frame.dst == BCAST);
        let mut deliver = std::mem::take(&mut self.radio.deliver);
        deliver.clear();
        let mut reached = false;
        if frame.dst == BCAST {
            for r in results.iter().filter(|r| r.in_range) {
                self.radio_row(
                    frame.start,
                    medium,
                    member,
                    r.rx,
                    meta,
                    meta.kind,
                    ppdu,
                    outcome_str(r.outcome),
                );
                match r.outcome {
                    RxOutcome::Delivered => deliver.push(r.rx),
                    RxOutcome::Collision if meta.counted => {
                        if let Some(s) = self.flow_stats(meta.flow) {
                            s.collisions += 1;
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let d = frame.dst;
            let out = results
                .iter()
                .find(|r| r.rx == d)
                .map_or(RxOutcome::LostChannel, |r| r.outcome);
            self.radio_row(
                frame.start,
                medium,
                member,
                d,
                meta,
                meta.kind,
                ppdu,
                outcome_str(out),
            );
            if out == RxOutcome::Collision && meta.counted {
                if let Some(s) = self.flow_stats(meta.flow) {
                    s.collisions += 1;
                }
            }
            if out == RxOutcome::Delivered {
                reached = true;
                let rm = &mut self.radio.media[medium];
                let rx = &mut rm.mac[d as usize];
                let dup = rx.recent.contains(&(member, frame.seq));
                if !dup {
                    let p = rx.recent_pos as usize;
                    rx.recent[p] = (member, frame.seq);
                    rx.recent_pos = ((p + 1) % rx.recent.len()) as u8;
                    deliver.push(d);
                }
                // §7.5.6.4: ACK aTurnaroundTime after the frame, without CSMA,
                // unless the receiver is busy with its own exchange
                if mac.ack
                    && rx.up
                    && rx.ack_tx.is_none()
                    && matches!(
                        rx.state,
                        MacState::Idle | MacState::Deferred | MacState::Backoff
                    )
                {
                    rx.ack_gen = rx.ack_gen.wrapping_add(1);
                    rx.ack_pending = Some((member, frame.seq, meta.flow, meta.counted));
                    let g = rx.ack_gen;
                    rm.medium.set_deaf(d);
                    let _ = queue.push(
                        now + ta,
                        Ev::Radio {
                            m: medium as u16,
                            kind: K_ACK,
                            idx: d,
                            gen: g,
                        },
                    );
                    self.refresh(now, medium, d);
                }
            }
        }
        // hand copies to the receivers' IP layer
        if !deliver.is_empty() {
            let data = std::mem::take(&mut self.pool.get_mut(frame.pkt).data);
            for &r in &deliver {
                let c = self.pool.alloc_with(meta, &data);
                if let Some(t) = self.trace.as_mut() {
                    t.copy(frame.pkt, c);
                }
                self.radio_input(now, queue, medium, (member, frame.dst), r, c);
            }
            self.pool.get_mut(frame.pkt).data = data;
        }
        self.radio.deliver = deliver;
        // the sender's side (its queue may have changed only at its tail)
        let rm = &mut self.radio.media[medium];
        if let Some(f) = rm.mac[member as usize].queue.front_mut() {
            f.reached |= reached;
        }
        if frame.dst != BCAST && mac.ack {
            rm.mac[member as usize].state = MacState::WaitAck;
            self.set_timer(queue, medium, member, now + mac.ack_wait);
            self.refresh(now, medium, member);
        } else {
            rm.mac[member as usize].queue.pop_front();
            if frame.dst != BCAST && !reached {
                self.mac_drop(
                    now,
                    medium,
                    member,
                    frame.dst,
                    frame.pkt,
                    MacDrop::Lost,
                    false,
                );
            } else {
                self.pool.free(frame.pkt);
            }
            self.mac_start(now, queue, medium, member);
        }
    }

    pub(super) fn on_ack_start(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        acker: u32,
        gen: u32,
    ) {
        let duty = self.spec(medium).duty;
        let rm = &mut self.radio.media[medium];
        let mn = &mut rm.mac[acker as usize];
        let Some((to, seq, flow, counted)) = mn.ack_pending.filter(|_| mn.ack_gen == gen && mn.up)
        else {
            if mn.ack_gen == gen {
                rm.medium.set_hearing(acker, now);
            }
            return;
        };
        mn.ack_pending = None;
        let mut locks = std::mem::take(&mut self.radio.locks);
        let tx = {
            let hear = Self::hear_fn(&rm.mac, duty, now);
            rm.medium
                .begin_tx(now, acker, mac154::ACK_PSDU_BYTES, hear, &mut locks)
        };
        self.radio.locks = locks;
        if rm.tags.len() <= tx as usize {
            rm.tags.resize(tx as usize + 1, TxTag::Interferer);
        }
        rm.tags[tx as usize] = TxTag::Ack {
            n: acker,
            to,
            seq,
            flow,
            counted,
        };
        rm.mac[acker as usize].ack_tx = Some(tx);
        let air = rm.medium.airtime(mac154::ACK_PSDU_BYTES);
        let _ = queue.push(
            now + air,
            Ev::Radio {
                m: medium as u16,
                kind: K_TX_END,
                idx: tx,
                gen: 0,
            },
        );
        let ppdu = mac154::ACK_PSDU_BYTES + self.spec(medium).phy.phy_header_bytes;
        self.capture_ack(now, medium, seq);
        // an ACK frame is link layer through and through
        self.radio.media[medium].medium.stats.link_bytes += u64::from(ppdu);
        if counted {
            self.charge_air(medium, flow, ppdu);
            if let Some(s) = self.flow_stats(flow) {
                s.bytes_on_wire += u64::from(ppdu);
                s.bytes_link += u64::from(ppdu);
            }
        }
        self.refresh(now, medium, acker);
        self.refresh_locks(now, medium);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn ack_end(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        (a, to, seq): (u32, u32, u8),
        tx: TxId,
        flow: u32,
        counted: bool,
        results: &[RxResult],
    ) {
        let ta = self.spec(medium).phy.turnaround;
        let ppdu = mac154::ACK_PSDU_BYTES + self.spec(medium).phy.phy_header_bytes;
        let rm = &mut self.radio.media[medium];
        if rm.mac[a as usize].ack_tx == Some(tx) {
            rm.mac[a as usize].ack_tx = None;
            rm.medium.set_hearing(a, now + ta);
        }
        self.refresh(now, medium, a);
        let out = results
            .iter()
            .find(|r| r.rx == to)
            .map_or(RxOutcome::LostChannel, |r| r.outcome);
        let meta = PacketMeta {
            flow,
            counted,
            kind: "mac_ack",
            ..Default::default()
        };
        let air = self.radio.media[medium]
            .medium
            .airtime(mac154::ACK_PSDU_BYTES);
        self.radio_row(
            SimTime(now.0 - air.0),
            medium,
            a,
            to,
            meta,
            "mac_ack",
            ppdu,
            outcome_str(out),
        );
        let rm = &mut self.radio.media[medium];
        let sender = &mut rm.mac[to as usize];
        // the ACK answers the head frame (sequence number checked)
        let waiting =
            sender.state == MacState::WaitAck && sender.queue.front().is_some_and(|f| f.seq == seq);
        if out == RxOutcome::Delivered && waiting {
            if let Some(f) = sender.queue.pop_front() {
                self.pool.free(f.pkt);
            }
            self.mac_start(now, queue, medium, to);
        }
    }
}
