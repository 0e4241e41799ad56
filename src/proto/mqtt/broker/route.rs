//! Routing: the retained store, fan-out to matching sessions, the per-client
//! in-flight window and queue, resends, and `$SYS` publication.

use std::ops::Bound;
use std::sync::Arc;

use crate::sim::SimTime;

use super::super::events::{BrokerEvent, ConnId};
use super::super::packet::{PacketType, QoS, QosPid};
use super::super::session::{Msg, OutState, Outbound, Pending, Session, SubIds};
use super::super::subtree::SessionIdx;
use super::super::topic::{TopicFilter, TopicName};
use super::{Broker, Out};

impl Broker {
    /// Publish `msg` to every matching subscription; with `retain`, update
    /// the retained store first (§3.3.1.3).
    /// Returns the number of copies handed to sessions. `origin` is the
    /// publishing session, for 5.0 No Local.
    pub(super) fn route(
        &mut self,
        now: SimTime,
        msg: Arc<Msg>,
        retain: bool,
        origin: Option<SessionIdx>,
    ) -> usize {
        if retain {
            if msg.payload.is_empty() {
                // [MQTT-3.3.1-10]: a zero-byte retained message deletes the
                // retained message on its topic (and is forwarded as usual,
                // [MQTT-3.3.1-11]).
                self.retained.remove(&msg.topic);
            } else {
                // [MQTT-3.3.1-5]: replaces any previous one.
                self.retained.insert(msg.topic.clone(), msg.clone());
            }
            self.stats.retained_messages = self.retained.len() as u64;
        }
        let mut targets = std::mem::take(&mut self.scratch);
        // One copy per session, at the highest QoS of its overlapping
        // subscriptions (§3.3.5).
        self.tree.matches(&msg.topic, &mut targets);
        let mut copies = 0;
        for &(idx, granted) in &targets {
            // [MQTT-3.8.4-6]: downgrade to the granted QoS; RETAIN is 0 on
            // normal forwarding [MQTT-3.3.1-9] unless a 5.0 subscription
            // asked Retain As Published.
            let (granted, keep_retain, sub_ids) = match self.sub_options(idx, &msg.topic, origin) {
                SubMatch::Plain => (granted, false, None),
                SubMatch::NoneLeft => continue,
                SubMatch::Options { qos, rap, ids } => (qos, rap, ids),
            };
            self.deliver(
                now,
                idx,
                &msg,
                msg.qos.min(granted),
                keep_retain && retain,
                sub_ids,
            );
            copies += 1;
        }
        self.scratch = targets;
        if !self.shared.is_empty() {
            copies += self.route_shared(now, &msg, retain);
        }
        copies
    }

    /// How a 5.0 session's own subscriptions shape the copy it gets of a
    /// message on `topic` (§3.8.3.1): No Local drops subscriptions of the
    /// publishing session, the highest QoS of those left is granted,
    /// Retain As Published and Subscription Identifiers are collected.
    fn sub_options(
        &self,
        idx: SessionIdx,
        topic: &TopicName,
        origin: Option<SessionIdx>,
    ) -> SubMatch {
        let Some(s) = self.session(idx) else {
            return SubMatch::Plain;
        };
        let Some(v) = s.v5.as_ref().filter(|v| !v.opts.is_empty()) else {
            return SubMatch::Plain;
        };
        let mut best: Option<QoS> = None;
        let mut rap = false;
        let mut ids: Vec<u32> = Vec::new();
        for (f, q) in &s.q().subs {
            if is_shared(f) || !f.matches(topic) {
                continue;
            }
            let e = v
                .opts
                .binary_search_by(|e| e.filter.cmp(f))
                .ok()
                .and_then(|i| v.opts.get(i));
            if let Some(e) = e {
                if e.no_local && origin == Some(idx) {
                    continue; // [MQTT-3.8.3-3]
                }
                rap |= e.retain_as_published;
                if e.id != 0 {
                    ids.push(e.id);
                }
            }
            best = Some(best.map_or(*q, |b| b.max(*q)));
        }
        match best {
            None => SubMatch::NoneLeft,
            Some(qos) => SubMatch::Options {
                qos,
                rap,
                ids: (!ids.is_empty()).then(|| Arc::from(ids)),
            },
        }
    }

    /// One copy per matching shared subscription group, to one member:
    /// round robin over the members in subscription order, skipping
    /// offline sessions unless every member is offline (§4.8.2 leaves the
    /// rule to the server; docs/mqtt.md states this one).
    fn route_shared(&mut self, now: SimTime, msg: &Arc<Msg>, retain: bool) -> usize {
        let mut picks: Vec<(SessionIdx, QoS, TopicFilter)> = Vec::new();
        for ((filter, group), g) in self.shared.iter_mut() {
            if g.members.is_empty() || !filter.matches(&msg.topic) {
                continue;
            }
            let n = g.members.len();
            let online = |i: usize| {
                g.members.get(i).is_some_and(|&(idx, _)| {
                    self.sessions
                        .get(idx as usize)
                        .and_then(|s| s.as_ref())
                        .is_some_and(|s| s.conn.is_some())
                })
            };
            let start = g.next % n;
            let pick = (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| online(i))
                .unwrap_or(start);
            g.next = pick + 1;
            if let Some(&(idx, q)) = g.members.get(pick) {
                let full = share_filter(group, filter);
                picks.push((idx, q, full));
            }
        }
        let copies = picks.len();
        for (idx, granted, full) in picks {
            let (rap, ids) = self
                .session(idx)
                .and_then(|s| s.v5.as_ref())
                .and_then(|v| {
                    let i = v.opts.binary_search_by(|e| e.filter.cmp(&full)).ok()?;
                    let e = v.opts.get(i)?;
                    Some((
                        e.retain_as_published,
                        (e.id != 0).then(|| Arc::from([e.id])),
                    ))
                })
                .unwrap_or((false, None));
            self.deliver(now, idx, msg, msg.qos.min(granted), rap && retain, ids);
        }
        copies
    }

    /// Whether any subscription (plain or shared) matches `topic`.
    pub(super) fn has_subscribers(&mut self, topic: &TopicName) -> bool {
        let mut targets = std::mem::take(&mut self.scratch);
        self.tree.matches(topic, &mut targets);
        let any = !targets.is_empty()
            || self
                .shared
                .iter()
                .any(|((f, _), g)| !g.members.is_empty() && f.matches(topic));
        targets.clear();
        self.scratch = targets;
        any
    }

    /// Retained messages whose topic `filter` matches, in topic order. A
    /// filter without wildcards is one lookup; otherwise only topics sharing
    /// its literal prefix are tested.
    pub(super) fn retained_matching(&self, filter: &TopicFilter) -> Vec<Arc<Msg>> {
        if !filter.has_wildcards() {
            return self
                .retained
                .get(filter.as_str())
                .cloned()
                .into_iter()
                .collect();
        }
        let prefix = filter.literal_prefix();
        self.retained
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(t, _)| t.as_str().starts_with(prefix))
            .filter(|(t, _)| filter.matches(t))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Hand `msg` at `qos` to session `idx`: send now, queue it (window
    /// full or client offline), or drop it (queue full, or QoS 0 offline).
    pub(super) fn deliver(
        &mut self,
        now: SimTime,
        idx: SessionIdx,
        msg: &Arc<Msg>,
        qos: QoS,
        retain: bool,
        sub_ids: SubIds,
    ) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        let max_inflight = inflight_cap(self.config.max_inflight, s);
        match s.conn {
            Some(conn) if qos == QoS::AtMostOnce => {
                self.outq.push_back((
                    conn,
                    Out::Publish {
                        msg: msg.clone(),
                        qos_pid: QosPid::AtMostOnce,
                        retain,
                        dup: false,
                        sub_ids,
                    },
                ));
                return;
            }
            Some(conn) if s.q().inflight.len() < max_inflight && s.q().queue.is_empty() => {
                if self.config.mutant_skip_qos1
                    && qos == QoS::AtLeastOnce
                    && self.stats.publishes_sent % 5 == 4
                {
                    // the test-only broken broker: this copy is never sent
                    self.stats.publishes_sent += 1;
                    return;
                }
                let p = Pending {
                    msg: msg.clone(),
                    qos,
                    retain,
                    sub_ids,
                };
                self.send_new(now, idx, conn, p);
                return;
            }
            None if qos == QoS::AtMostOnce && !self.config.queue_qos0_offline => {
                self.stats.dropped_qos0_offline += 1;
                let ev = BrokerEvent::Dropped {
                    client_id: s.client_id.clone(),
                    topic: msg.topic.clone(),
                    qos,
                };
                self.events.push_back(ev);
                return;
            }
            _ => {}
        }
        if s.q().queue.len() >= self.config.max_queued {
            self.stats.dropped_queue_full += 1;
            let ev = BrokerEvent::Dropped {
                client_id: s.client_id.clone(),
                topic: msg.topic.clone(),
                qos,
            };
            self.events.push_back(ev);
            return;
        }
        s.qm().queue.push_back(Pending {
            msg: msg.clone(),
            qos,
            retain,
            sub_ids,
        });
    }

    /// First transmission of a QoS 1/2 message: new packet identifier,
    /// into the in-flight window.
    fn send_new(&mut self, now: SimTime, idx: SessionIdx, conn: ConnId, p: Pending) {
        let Pending {
            msg,
            qos,
            retain,
            sub_ids,
        } = p;
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        let pid = s.alloc_pid();
        s.qm().inflight.push(Outbound {
            pid,
            msg: msg.clone(),
            qos,
            retain,
            sub_ids: sub_ids.clone(),
            state: if qos == QoS::AtLeastOnce {
                OutState::AwaitAck
            } else {
                OutState::AwaitRec
            },
            sent_at: now,
        });
        self.outq.push_back((
            conn,
            Out::Publish {
                msg,
                qos_pid: QosPid::new(qos, pid),
                retain,
                dup: false,
                sub_ids,
            },
        ));
        if let Some(r) = self.config.legacy_retry {
            self.retry_timers.insert((now + r, idx));
        }
    }

    /// Move queued messages into the in-flight window while it has room.
    pub(super) fn drain(&mut self, now: SimTime, idx: SessionIdx) {
        loop {
            let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
                return;
            };
            let max_inflight = inflight_cap(self.config.max_inflight, s);
            let Some(conn) = s.conn else { return };
            let next_qos0 = s
                .q()
                .queue
                .front()
                .is_some_and(|p| p.qos == QoS::AtMostOnce);
            if !next_qos0 && s.q().inflight.len() >= max_inflight {
                return;
            }
            let Some(p) = s.held().and_then(|q| q.queue.pop_front()) else {
                return;
            };
            if p.msg.expired(now) {
                // [MQTT-3.3.2-5]: onward delivery had not started
                self.stats.messages_expired += 1;
                continue;
            }
            if p.qos == QoS::AtMostOnce {
                self.outq.push_back((
                    conn,
                    Out::Publish {
                        msg: p.msg,
                        qos_pid: QosPid::AtMostOnce,
                        retain: p.retain,
                        dup: false,
                        sub_ids: p.sub_ids,
                    },
                ));
            } else {
                self.send_new(now, idx, conn, p);
            }
        }
    }

    /// Reconnection of a persistent session (§4.4): resend every
    /// unacknowledged PUBLISH with DUP = 1 and every PUBREL, with their
    /// original identifiers and in their original order [MQTT-4.4.0-1],
    /// then fill the window from the queue.
    pub(super) fn resume(&mut self, now: SimTime, idx: SessionIdx, conn: ConnId) {
        self.resend(now, idx, conn, None);
        self.drain(now, idx);
    }

    /// Resend in-flight messages of `idx` (all, or with `older_than` only
    /// those last sent at or before it).
    fn resend(&mut self, now: SimTime, idx: SessionIdx, conn: ConnId, older_than: Option<SimTime>) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        for o in s.held().into_iter().flat_map(|q| q.inflight.iter_mut()) {
            if older_than.is_some_and(|t| o.sent_at > t) {
                continue;
            }
            o.sent_at = now;
            let out = match o.state {
                OutState::AwaitAck | OutState::AwaitRec => Out::Publish {
                    msg: o.msg.clone(),
                    qos_pid: QosPid::new(o.qos, o.pid),
                    retain: o.retain,
                    dup: true, // [MQTT-3.3.1-1]
                    sub_ids: o.sub_ids.clone(),
                },
                OutState::AwaitComp => Out::Ack {
                    ty: PacketType::PubRel,
                    pid: o.pid,
                    retransmission: true,
                },
            };
            self.outq.push_back((conn, out));
        }
        if let (Some(r), false) = (self.config.legacy_retry, s.q().inflight.is_empty()) {
            let next = s
                .q()
                .inflight
                .iter()
                .map(|o| o.sent_at)
                .min()
                .unwrap_or(now)
                + r;
            self.retry_timers.insert((next, idx));
        }
    }

    /// `legacy_retry` (not MQTT 3.1.1): resend what has waited too long.
    pub(super) fn legacy_resend(&mut self, now: SimTime, idx: SessionIdx) {
        let Some(r) = self.config.legacy_retry else {
            return;
        };
        let Some(conn) = self.session(idx).and_then(|s| s.conn) else {
            return; // offline: §4.4 resend happens on reconnection
        };
        let cutoff = SimTime::from_nanos(now.as_nanos().saturating_sub(r.as_nanos()));
        self.resend(now, idx, conn, Some(cutoff));
    }

    /// Publish the retained `$SYS/broker/...` statistics (QoS 0).
    pub(super) fn publish_sys(&mut self, now: SimTime) {
        let connected = self.stats.clients_connected;
        let disconnected = self.stats.clients_disconnected;
        let sent = self.stats.packets_sent.saturating_sub(self.sent_at_start);
        let uptime = (now - self.started_at).as_nanos() / 1_000_000_000;
        let items = [
            ("$SYS/broker/clients/connected", connected.to_string()),
            ("$SYS/broker/clients/disconnected", disconnected.to_string()),
            (
                "$SYS/broker/clients/total",
                (connected + disconnected).to_string(),
            ),
            ("$SYS/broker/messages/sent", sent.to_string()),
            ("$SYS/broker/uptime", format!("{uptime} seconds")),
        ];
        for (topic, value) in items {
            let Ok(topic) = TopicName::new(topic) else {
                continue;
            };
            let msg = Arc::new(Msg::plain(
                topic,
                Arc::from(value.into_bytes()),
                QoS::AtMostOnce,
            ));
            self.route(now, msg, true, None);
        }
    }
}

/// What [`Broker::sub_options`] found.
enum SubMatch {
    /// No 5.0 options: the tree's granted QoS stands.
    Plain,
    /// Every matching subscription was No Local from the publisher.
    NoneLeft,
    Options {
        qos: QoS,
        rap: bool,
        ids: SubIds,
    },
}

/// A session's in-flight window: the broker's limit, capped by a 5.0
/// client's Receive Maximum.
fn inflight_cap(max_inflight: usize, s: &Session) -> usize {
    let cap = s.v5.as_ref().map_or(max_inflight, |v| {
        max_inflight.min(usize::from(v.receive_maximum))
    });
    cap.max(1)
}

/// True for a `$share/{group}/{filter}` filter (§4.8.2).
pub(super) fn is_shared(f: &TopicFilter) -> bool {
    f.as_str().starts_with("$share/")
}

/// The whole `$share/{group}/{filter}` filter of a group.
pub(super) fn share_filter(group: &str, filter: &TopicFilter) -> TopicFilter {
    TopicFilter::new(&format!("$share/{group}/{}", filter.as_str()))
        .unwrap_or_else(|_| filter.clone())
}
